//! Per-device message rate limits, shared by every listener.
//!
//! A token bucket per device: `rate` messages per second sustained, `burst` at once. A device
//! over its limit is first slowed (MQTT: the hub waits before reading its next message, so TCP
//! pushes back; HTTPS: 429 with Retry-After). A device over its limit for [`ALERT_AFTER`] of
//! continuous throttling is reported as flooding (once per episode, so that detection raises
//! the alert within two seconds); still over it after [`FLOOD_AFTER`], it is disconnected.
//! Other devices' buckets are untouched, so one flooding device does not slow them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vigil_model::DeviceId;

/// Continuous throttling for this long makes a device a flooder: it is disconnected.
pub const FLOOD_AFTER: Duration = Duration::from_secs(3);
/// Continuous throttling for this long is reported as a flood (before the disconnection).
pub const ALERT_AFTER: Duration = Duration::from_millis(1500);

/// What a device may do with its next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Now,
    /// Wait this long first.
    After(Duration),
    /// Wait this long first; the device has now been over its rate for [`ALERT_AFTER`] (once
    /// per episode): report the flood.
    AfterAlert(Duration),
    /// The device is flooding; `first` is true once per episode (raise the alert then).
    Flooding {
        /// Whether this is the first refusal of the episode.
        first: bool,
    },
}

struct Bucket {
    tokens: f64,
    last: Instant,
    throttled_since: Option<Instant>,
    /// The episode was reported (at [`ALERT_AFTER`]).
    alerted: bool,
    /// The episode reached [`FLOOD_AFTER`].
    cut_off: bool,
}

/// Token buckets for every device.
pub struct Throttle {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<DeviceId, Bucket>>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// `rate` messages per second sustained, `burst` at once (at least 1).
    pub fn new(rate: u32, burst: u32) -> Throttle {
        Throttle {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one message of `device` at `now`.
    pub fn admit(&self, device: &DeviceId, now: Instant) -> Admission {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(device.clone()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            throttled_since: None,
            alerted: false,
            cut_off: false,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.throttled_since = None;
            bucket.alerted = false;
            bucket.cut_off = false;
            return Admission::Now;
        }
        let since = *bucket.throttled_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= FLOOD_AFTER {
            let first = !bucket.cut_off;
            bucket.cut_off = true;
            return Admission::Flooding { first };
        }
        // The message waits for its token; the bucket is spent for it now.
        let wait = Duration::from_secs_f64(((1.0 - bucket.tokens) / self.rate).max(0.0));
        bucket.tokens -= 1.0;
        if !bucket.alerted && now.saturating_duration_since(since) >= ALERT_AFTER {
            bucket.alerted = true;
            return Admission::AfterAlert(wait);
        }
        Admission::After(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_messages_wait_then_a_flood_is_named_once() {
        let throttle = Throttle::new(10, 5);
        let device = DeviceId::new("pump-1").unwrap();
        let other = DeviceId::new("pump-2").unwrap();
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(throttle.admit(&device, start), Admission::Now);
        }
        let Admission::After(wait) = throttle.admit(&device, start) else {
            panic!("the sixth message at once waits");
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Another device is not affected.
        assert_eq!(throttle.admit(&other, start), Admission::Now);
        // Sending 100 messages a second against a limit of 10 for longer than FLOOD_AFTER.
        let mut floods = Vec::new();
        let mut reported = Vec::new();
        for step in 1..=350u64 {
            let now = start + Duration::from_millis(step * 10);
            match throttle.admit(&device, now) {
                Admission::Flooding { first } => floods.push((step, first)),
                Admission::AfterAlert(_) => reported.push(step),
                _ => {}
            }
        }
        assert_eq!(reported.len(), 1, "reported once per episode");
        assert!(
            (1500..3000).contains(&(reported[0] * 10)),
            "reported after ALERT_AFTER, before the cut-off: {reported:?}"
        );
        assert!(!floods.is_empty(), "a sustained flood is named");
        assert!(floods[0].0 * 10 >= 3_000, "not before FLOOD_AFTER");
        assert_eq!(
            floods.iter().filter(|(_, first)| *first).count(),
            1,
            "alerted once"
        );
        // After a quiet spell the device is welcome again.
        let much_later = start + Duration::from_secs(600);
        assert_eq!(throttle.admit(&device, much_later), Admission::Now);
    }
}
