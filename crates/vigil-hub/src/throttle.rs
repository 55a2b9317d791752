//! Per-device message rate limits, shared by every listener.
//!
//! A token bucket per device: `rate` messages per second sustained, `burst` at once. A device
//! over its limit is first slowed (MQTT: the hub waits before reading its next message, so TCP
//! pushes back; HTTPS: 429 with Retry-After). A device still over its limit after
//! [`FLOOD_AFTER`] of continuous throttling is flooding: it is disconnected, and alerted once per
//! episode. Other devices' buckets are untouched, so one flooding device does not slow them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vigil_model::DeviceId;

/// Continuous throttling for this long makes a device a flooder.
pub const FLOOD_AFTER: Duration = Duration::from_secs(3);

/// What a device may do with its next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Now,
    /// Wait this long first.
    After(Duration),
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
    alerted: bool,
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
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.throttled_since = None;
            bucket.alerted = false;
            return Admission::Now;
        }
        let since = *bucket.throttled_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= FLOOD_AFTER {
            let first = !bucket.alerted;
            bucket.alerted = true;
            return Admission::Flooding { first };
        }
        // The message waits for its token; the bucket is spent for it now.
        let wait = (1.0 - bucket.tokens) / self.rate;
        bucket.tokens -= 1.0;
        Admission::After(Duration::from_secs_f64(wait.max(0.0)))
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
        for step in 1..=350u64 {
            let now = start + Duration::from_millis(step * 10);
            if let Admission::Flooding { first } = throttle.admit(&device, now) {
                floods.push((step, first));
            }
        }
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
