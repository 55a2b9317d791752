//! Rate: each device's message and byte rates against its class norm and its own learned
//! baseline.
//!
//! The hub's throttle cuts a device off when it sends faster than the configured limit
//! (`ingest.messages_per_second`, 20 by default) for 3 s, and the identity detector alerts on
//! that. This detector is the part below the cut-off: a monitor that reports once a second and
//! starts sending eight messages a second is far from any configured limit, and far from what
//! it and every monitor usually send.
//!
//! **Windows.** Messages and bytes are counted per device in fixed [`WINDOW_MS`] windows of
//! event time (the hub's receive time), aligned to the Unix epoch so that the same events
//! always fall in the same windows. A window is closed by the device's first event in a later
//! one; the windows it skipped are learned as empty for as long as the device may be silent
//! (three of its usual intervals between messages, at most [`LEARN_GAP_WINDOWS`]): a longer
//! silence is an absence (a reconnection, a device unplugged) and teaches the baseline nothing.
//!
//! **Baseline.** Per device and meter (messages, bytes), an EWMA of the per-window count and an
//! EWMA of its absolute deviation (the spread), with a time constant of 60 windows (10 minutes).
//! During the first [`WARM_UP_WINDOWS`] they are plain running means; afterwards each window's
//! deviation is clipped (to four spreads, half the baseline or one message, whichever is largest)
//! before it is learned, so one burst or one silence moves the baseline by at most a sixtieth of
//! that clip; a window over the flood threshold is not learned at all, so a flood never becomes the
//! baseline (a device whose rate is legitimately raised is recalled every 10 minutes until it is
//! forgotten or re-registered). This is a robust (Huber-style) EWMA: it resists outliers as a
//! running median and MAD would, in two numbers per meter instead of a window of samples, which
//! matters with 10,000 devices and one detection thread. The spread is a mean absolute deviation,
//! not a MAD, but with clipped inputs it is as insensitive to the bursts it exists to judge.
//!
//! **Class norm.** [`class_norm`]: how fast a genuine device of the class reports. It is the
//! floor of every comparison, so a device that floods from its first minute (no baseline yet)
//! is judged against it alone, and a device whose own baseline is tiny (a CGM, twice in five
//! minutes) is not alerted for a handful of extra messages.
//!
//! **Flood.** A window is *over* when its count exceeds every one of: [`FLOOD_FACTOR`] times
//! the class norm; after warm-up, [`FLOOD_FACTOR`] times the baseline, and the baseline plus
//! [`SPREAD_FACTOR`] spreads. [`SUSTAINED_WINDOWS`] consecutive windows over (the last one may
//! still be open: the alert comes as soon as its count crosses) raise one
//! [`AlertKind::Flood`], and the episode is recalled every [`REMIND_EVERY_WINDOWS`] while it
//! lasts.
//!
//! **Backlog.** A device that was offline sends what it buffered when it reconnects: a burst,
//! then its usual rate. What a device did not send in its windows below its baseline (while
//! offline, or slowed) is *owed*, up to [`OWED_HORIZON_WINDOWS`] of its baseline (an hour);
//! what it sends above its baseline first repays that, and is neither judged nor learned. A
//! catch-up is also
//! short: the simulated devices buffer 120 packs and drain them as fast as acknowledgements
//! come, within the throttle's burst of 40 and 20 per second, so in at most two windows.
//!
//! **Collapse.** A streaming device (baseline of at least half a message a second) that keeps
//! sending but at less than a tenth of its baseline over [`COLLAPSE_WINDOWS`] windows (two
//! minutes) raises a low-severity [`AlertKind::Anomaly`]: a device reporting its numerics once
//! a minute instead of once a second has had its reports blocked or is failing. A device that
//! sends nothing cannot be told from one switched off (no disconnection event reaches
//! detection), so silence alone never alerts.
//!
//! **Thresholds.** Ordinary jitter of a 1 Hz device is 9–11 messages a window (spread about
//! one); four times the baseline is 40, far beyond jitter and beyond the 1.8× of a window
//! carrying an 8 s reconnection's backlog. Three windows make 30 s, longer than any drain of a
//! 120-pack buffer under the throttle, so a catch-up without owed credit (a device forgotten,
//! or new) still does not alert. Eight spreads keep bursty devices (a pump reporting each
//! change at once) from alerting on their own habits.
//!
//! Measured on simulated wards (docs/detection.md): no alert in 22.5 patient-days of normal
//! traffic with 24 clinical events a patient-day; a monitor sending five duplicates a second
//! on top of its own caught after 27 s; reports cut to one in 30 s caught after two minutes; a
//! two-minute backlog drained at once not alerted.
//!
//! Memory: about 150 bytes per device with its identifier; a device not seen for
//! [`FORGET_AFTER_MS`] is forgotten, and at most [`MAX_DEVICES`] are tracked. Time: a hash
//! lookup and a few floating-point operations per event.

use std::collections::HashMap;

use vigil_model::{Alert, AlertKind, DeviceClass, DeviceId, Evidence, Severity, Timestamp};

use crate::{Detector, Event};

/// The length of a counting window, milliseconds.
pub const WINDOW_MS: i64 = 10_000;
/// Windows a device's baseline learns before it is used: 5 minutes.
pub const WARM_UP_WINDOWS: u32 = 30;
/// How many times the class norm (and, after warm-up, the baseline) a window must exceed.
pub const FLOOD_FACTOR: f64 = 4.0;
/// How many spreads above the baseline a window must also be, after warm-up.
pub const SPREAD_FACTOR: f64 = 8.0;
/// Consecutive windows over that make a flood: 30 s.
pub const SUSTAINED_WINDOWS: u32 = 3;
/// While a flood lasts, it is raised again every this many windows (10 minutes).
pub const REMIND_EVERY_WINDOWS: u32 = 60;
/// A collapse is a rate below this fraction of the baseline...
pub const COLLAPSE_FRACTION: f64 = 0.1;
/// ...over this many consecutive windows (2 minutes).
pub const COLLAPSE_WINDOWS: u32 = 12;
/// Messages that must still arrive over a collapse: a device that is talking, not gone.
const COLLAPSE_MIN_MESSAGES: u32 = 2;
/// A window counts towards a collapse below this fraction of the baseline.
const LOW_WINDOW_FRACTION: f64 = 0.25;
/// Only devices whose baseline is at least this many messages a window (0.5 a second) can
/// collapse: a slow device's windows are mostly empty anyway.
const COLLAPSE_MIN_BASELINE: f64 = 5.0;
/// Weight of a new window in the baseline after warm-up: a time constant of 60 windows.
const ALPHA: f64 = 1.0 / 60.0;
/// Most empty windows learned as a device's rate (10 minutes): a longer silence is an absence.
pub const LEARN_GAP_WINDOWS: i64 = 60;
/// Most a device may owe, in windows of its baseline: an hour.
pub const OWED_HORIZON_WINDOWS: f64 = 360.0;
/// A device not seen for this long (event time) is forgotten: an hour.
pub const FORGET_AFTER_MS: i64 = 60 * 60_000;
/// How often idle devices are looked for, event time.
const SWEEP_EVERY_MS: i64 = 60_000;
/// Devices tracked at most; beyond it, new devices are not tracked until others are forgotten.
pub const MAX_DEVICES: usize = 100_000;

/// How fast a genuine device of a class reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassNorm {
    /// Messages per second.
    pub messages_per_second: f64,
    /// Bytes of a typical message.
    pub bytes_per_message: f64,
}

/// The norm of `class`.
///
/// Monitors, oximeters and ECG patches stream their numerics once a second (the simulator's
/// vitals channel, docs/simulator.md; IEEE 11073-10207 monitors publish numerics at 1 Hz). Every
/// other class reports in minutes (a CGM every 5, a cuff every 15, pumps every minute and on a
/// change) and is given one message every 5 s: the demo, which caps every period at 15 s, runs
/// such a device's two or three channels out of phase, and a pump reports a change at once. A
/// pack is at most about 1 KiB: a monitor's nine readings in SenML JSON are about 600 bytes.
pub fn class_norm(class: DeviceClass) -> ClassNorm {
    let messages_per_second = match class {
        DeviceClass::BedsideMonitor | DeviceClass::PulseOximeter | DeviceClass::EcgPatch => 1.0,
        DeviceClass::ContinuousGlucoseMonitor
        | DeviceClass::InsulinPump
        | DeviceClass::InfusionPump
        | DeviceClass::PacemakerMonitor
        | DeviceClass::BloodPressureCuff
        | DeviceClass::Thermometer => 0.2,
        // A class added later is given the streaming norm until it is described here.
        _ => 1.0,
    };
    ClassNorm {
        messages_per_second,
        bytes_per_message: 1024.0,
    }
}

/// Window length in seconds, for rates.
const WINDOW_S: f64 = 10.0;

/// One learned rate (messages or bytes per window).
#[derive(Debug, Clone, Copy, Default)]
struct Meter {
    /// Per window.
    baseline: f64,
    /// Mean absolute deviation per window.
    spread: f64,
    /// Not sent below the baseline, not yet repaid.
    owed: f64,
    /// Consecutive closed windows over.
    over: u32,
}

impl Meter {
    /// The count above which a window is over.
    fn threshold(&self, norm: f64, warm: bool) -> f64 {
        let class = FLOOD_FACTOR * norm;
        if !warm {
            return class;
        }
        class
            .max(FLOOD_FACTOR * self.baseline)
            .max(self.baseline + SPREAD_FACTOR * self.spread)
    }

    /// The part of a window's count that is judged: what repays nothing owed.
    fn effective(&self, count: f64) -> f64 {
        count - self.owed.min((count - self.baseline).max(0.0))
    }

    /// Closes a window of `count`; whether it was over.
    fn close(&mut self, count: f64, norm: f64, learned: u32, unit: f64) -> bool {
        let warm = learned >= WARM_UP_WINDOWS;
        let effective = self.effective(count);
        let over = effective > self.threshold(norm, warm);
        self.over = if over { self.over.saturating_add(1) } else { 0 };
        if count < self.baseline {
            self.owed =
                (self.owed + self.baseline - count).min(OWED_HORIZON_WINDOWS * self.baseline);
        } else {
            self.owed -= self.owed.min(count - self.baseline);
        }
        // A flood never becomes the baseline, and neither does a catch-up: what repaid a
        // debt was the rate of earlier windows.
        if over {
            return true;
        }
        if warm {
            let clip = (4.0 * self.spread).max(0.5 * self.baseline).max(unit);
            let deviation = (effective - self.baseline).clamp(-clip, clip);
            self.baseline += ALPHA * deviation;
            self.spread += ALPHA * (deviation.abs() - self.spread);
        } else {
            // Running means while warming up: every window so far weighs the same.
            let n = f64::from(learned + 1);
            let deviation = effective - self.baseline;
            self.baseline += deviation / n;
            self.spread += (deviation.abs() - self.spread) / n;
        }
        false
    }

    /// Adds what `windows` empty windows did not send to what is owed, without learning them.
    fn owe(&mut self, windows: f64) {
        self.owed = (self.owed + windows * self.baseline).min(OWED_HORIZON_WINDOWS * self.baseline);
        self.over = 0;
    }
}

/// What is kept per device.
#[derive(Debug, Clone)]
struct DeviceRate {
    class: DeviceClass,
    /// The open window's index (event time / WINDOW_MS).
    window: i64,
    messages: u32,
    bytes: u64,
    /// Windows learned, saturating.
    learned: u32,
    messages_meter: Meter,
    bytes_meter: Meter,
    /// The window of the last flood alert, so that one window raises once.
    flood_alerted: Option<i64>,
    /// Consecutive closed low windows, and the messages they held.
    low_windows: u32,
    low_messages: u32,
    collapse_alerted: bool,
    /// Last event time, Unix ms.
    seen_ms: i64,
}

impl DeviceRate {
    fn new(class: DeviceClass, window: i64, now_ms: i64) -> DeviceRate {
        DeviceRate {
            class,
            window,
            messages: 0,
            bytes: 0,
            learned: 0,
            messages_meter: Meter::default(),
            bytes_meter: Meter::default(),
            flood_alerted: None,
            low_windows: 0,
            low_messages: 0,
            collapse_alerted: false,
            seen_ms: now_ms,
        }
    }

    fn norms(&self) -> (f64, f64) {
        let norm = class_norm(self.class);
        let messages = norm.messages_per_second * WINDOW_S;
        (messages, messages * norm.bytes_per_message)
    }

    /// Closes the open window and any skipped ones, up to `window`.
    fn advance_to(&mut self, window: i64) {
        if window <= self.window {
            return;
        }
        // Precision: counts far below 2^52.
        #[allow(clippy::cast_precision_loss)]
        let (messages, bytes) = (f64::from(self.messages), self.bytes as f64);
        self.close(messages, bytes);
        let empty = window - self.window - 1;
        // Empty windows are the device's rate only as long as it can be silent: three of its
        // usual intervals between messages. Beyond, it was away; what it did not send is owed.
        let silent = self.learn_gap().min(empty);
        for _ in 0..silent {
            self.close(0.0, 0.0);
        }
        #[allow(clippy::cast_precision_loss)]
        let away = (empty - silent) as f64;
        if away > 0.0 {
            self.messages_meter.owe(away);
            self.bytes_meter.owe(away);
        }
        // A collapse is judged over windows where the device still talks: a longer silence is
        // an absence (switched off, unplugged, out of range).
        if empty >= i64::from(COLLAPSE_WINDOWS) {
            self.low_windows = 0;
            self.low_messages = 0;
            self.collapse_alerted = false;
        } else {
            for _ in silent..empty {
                self.note_low(0.0);
            }
        }
        self.window = window;
        self.messages = 0;
        self.bytes = 0;
    }

    /// Closes one window of `messages` and `bytes`: judged, then learned.
    fn close(&mut self, messages: f64, bytes: f64) {
        let (message_norm, byte_norm) = self.norms();
        let bytes_unit = class_norm(self.class).bytes_per_message;
        self.note_low(messages);
        self.messages_meter
            .close(messages, message_norm, self.learned, 1.0);
        self.bytes_meter
            .close(bytes, byte_norm, self.learned, bytes_unit);
        self.learned = self.learned.saturating_add(1);
    }

    /// Empty windows that may be learned as the device's rate: three of its usual intervals
    /// between messages, at least one window, at most [`LEARN_GAP_WINDOWS`].
    fn learn_gap(&self) -> i64 {
        let baseline = self.messages_meter.baseline;
        if baseline <= 3.0 / LEARN_GAP_WINDOWS as f64 {
            return LEARN_GAP_WINDOWS;
        }
        // Between 1 and LEARN_GAP_WINDOWS, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let gap = (3.0 / baseline).ceil() as i64;
        gap.clamp(1, LEARN_GAP_WINDOWS)
    }

    /// Counts a closing window of `messages` towards a collapse.
    fn note_low(&mut self, messages: f64) {
        let baseline = self.messages_meter.baseline;
        let eligible = self.learned >= WARM_UP_WINDOWS && baseline >= COLLAPSE_MIN_BASELINE;
        if eligible && messages < LOW_WINDOW_FRACTION * baseline {
            self.low_windows = self.low_windows.saturating_add(1);
            // A low window holds fewer messages than a quarter of a u32's worth.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let held = messages as u32;
            self.low_messages = self.low_messages.saturating_add(held);
        } else {
            self.low_windows = 0;
            self.low_messages = 0;
            self.collapse_alerted = false;
        }
    }

    /// Whether the open window makes a flood to raise now; which meter, its run of windows.
    fn flood(&mut self) -> Option<(Metric, u32)> {
        if self.flood_alerted == Some(self.window) {
            return None;
        }
        let warm = self.learned >= WARM_UP_WINDOWS;
        let (message_norm, byte_norm) = self.norms();
        #[allow(clippy::cast_precision_loss)]
        let open = [
            (
                Metric::Messages,
                &self.messages_meter,
                f64::from(self.messages),
                message_norm,
            ),
            (
                Metric::Bytes,
                &self.bytes_meter,
                self.bytes as f64,
                byte_norm,
            ),
        ];
        for (metric, meter, count, norm) in open {
            if meter.effective(count) <= meter.threshold(norm, warm) {
                continue;
            }
            let run = meter.over.saturating_add(1);
            if run == SUSTAINED_WINDOWS
                || (run > SUSTAINED_WINDOWS
                    && (run - SUSTAINED_WINDOWS).is_multiple_of(REMIND_EVERY_WINDOWS))
            {
                self.flood_alerted = Some(self.window);
                return Some((metric, run));
            }
        }
        None
    }

    /// Whether a collapse is to be raised now.
    fn collapse(&mut self) -> bool {
        if self.collapse_alerted || self.low_windows < COLLAPSE_WINDOWS {
            return false;
        }
        let expected = self.messages_meter.baseline * f64::from(self.low_windows);
        let sent = f64::from(self.low_messages);
        if self.low_messages >= COLLAPSE_MIN_MESSAGES && sent < COLLAPSE_FRACTION * expected {
            self.collapse_alerted = true;
            return true;
        }
        false
    }
}

/// Which rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Messages,
    Bytes,
}

impl Metric {
    fn as_str(self) -> &'static str {
        match self {
            Metric::Messages => "messages",
            Metric::Bytes => "bytes",
        }
    }
}

/// The rate detector.
#[derive(Debug, Default, Clone)]
pub struct Rate {
    devices: HashMap<DeviceId, DeviceRate>,
    latest_ms: i64,
    next_sweep_ms: i64,
    /// Events of devices not tracked because [`MAX_DEVICES`] were.
    untracked: u64,
}

impl Rate {
    /// Devices tracked.
    pub fn devices(&self) -> usize {
        self.devices.len()
    }

    /// Events not judged because [`MAX_DEVICES`] devices were already tracked.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    fn forget_idle(&mut self, now_ms: i64) {
        self.latest_ms = self.latest_ms.max(now_ms);
        if self.latest_ms < self.next_sweep_ms {
            return;
        }
        self.next_sweep_ms = self.latest_ms + SWEEP_EVERY_MS;
        let cutoff = self.latest_ms - FORGET_AFTER_MS;
        self.devices.retain(|_, d| d.seen_ms >= cutoff);
    }
}

impl Detector for Rate {
    fn name(&self) -> &'static str {
        "rate"
    }

    fn observe(&mut self, event: &Event, alerts: &mut Vec<Alert>) {
        let Event::Stored {
            at,
            device,
            class,
            patient,
            bytes,
            ..
        } = event
        else {
            return;
        };
        let now_ms = at.unix_millis();
        self.forget_idle(now_ms);
        let window = now_ms.div_euclid(WINDOW_MS);
        // Looked up before inserting, so that the hot path clones no identifier.
        if !self.devices.contains_key(device) {
            if self.devices.len() >= MAX_DEVICES {
                self.untracked += 1;
                return;
            }
            self.devices
                .insert(device.clone(), DeviceRate::new(*class, window, now_ms));
        }
        let Some(state) = self.devices.get_mut(device) else {
            return;
        };
        state.seen_ms = state.seen_ms.max(now_ms);
        // A late event (time never goes back for a device) counts in the open window.
        state.advance_to(window);
        state.messages = state.messages.saturating_add(1);
        state.bytes = state
            .bytes
            .saturating_add(u64::try_from(*bytes).unwrap_or(u64::MAX));
        if let Some((metric, run)) = state.flood() {
            alerts.push(flood(*at, device, patient, state, metric, run));
        }
        if state.collapse() {
            alerts.push(collapse(*at, device, patient, state));
        }
    }
}

fn fact(name: &str, value: String) -> Evidence {
    Evidence::Fact {
        name: name.into(),
        value,
    }
}

fn per_second(per_window: f64) -> String {
    format!("{:.2}", per_window / WINDOW_S)
}

/// A sustained rise well above the class norm and the device's baseline (T0814 Denial of
/// Service: below the throttle's cut-off, a device can still load the hub and the store).
fn flood(
    at: Timestamp,
    device: &DeviceId,
    patient: &vigil_model::PatientId,
    state: &DeviceRate,
    metric: Metric,
    run: u32,
) -> Alert {
    let (meter, count, norm) = match metric {
        Metric::Messages => (
            &state.messages_meter,
            f64::from(state.messages),
            class_norm(state.class).messages_per_second * WINDOW_S,
        ),
        #[allow(clippy::cast_precision_loss)]
        Metric::Bytes => {
            let norm = class_norm(state.class);
            (
                &state.bytes_meter,
                state.bytes as f64,
                norm.messages_per_second * norm.bytes_per_message * WINDOW_S,
            )
        }
    };
    let mut evidence = vec![
        fact("metric", metric.as_str().into()),
        fact("rate_per_second", per_second(count)),
        fact("class_norm_per_second", per_second(norm)),
    ];
    if state.learned >= WARM_UP_WINDOWS {
        evidence.push(fact("baseline_per_second", per_second(meter.baseline)));
        evidence.push(fact("spread_per_second", per_second(meter.spread)));
    } else {
        evidence.push(fact("baseline", "warming_up".into()));
    }
    evidence.push(fact("windows_over", run.to_string()));
    evidence.push(fact("window_seconds", (WINDOW_MS / 1000).to_string()));
    Alert {
        time: at,
        // Below the cut-off: the hub is not at risk yet, but a device does not do this by
        // itself. Look soon.
        severity: Severity::Medium,
        kind: AlertKind::Flood,
        device: Some(device.clone()),
        patient: Some(patient.clone()),
        evidence,
        attack_technique: Some("T0814".into()),
    }
}

/// A device still talking at a fraction of its rate (T0804 Block Reporting Message).
fn collapse(
    at: Timestamp,
    device: &DeviceId,
    patient: &vigil_model::PatientId,
    state: &DeviceRate,
) -> Alert {
    let windows = f64::from(state.low_windows);
    Alert {
        time: at,
        severity: Severity::Low,
        kind: AlertKind::Anomaly,
        device: Some(device.clone()),
        patient: Some(patient.clone()),
        evidence: vec![
            fact("metric", "rate_collapse".into()),
            fact(
                "rate_per_second",
                per_second(f64::from(state.low_messages) / windows),
            ),
            fact(
                "baseline_per_second",
                per_second(state.messages_meter.baseline),
            ),
            fact("windows_low", state.low_windows.to_string()),
            fact("window_seconds", (WINDOW_MS / 1000).to_string()),
        ],
        attack_technique: Some("T0804".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::PatientId;

    use super::super::plausibility::testing::{Noise, T0, fact};
    use super::*;
    use crate::Engine;

    const MONITOR: DeviceClass = DeviceClass::BedsideMonitor;
    const CGM: DeviceClass = DeviceClass::ContinuousGlucoseMonitor;

    /// A pack of `bytes` from `device`, received `ms` after T0.
    fn message(ms: i64, device: &str, class: DeviceClass, bytes: usize) -> Event {
        Event::Stored {
            at: Timestamp::from_unix_millis(T0 + ms).unwrap(),
            device: DeviceId::new(device).unwrap(),
            class,
            patient: PatientId::new("p-1").unwrap(),
            sequence: u64::try_from(ms).unwrap(),
            bytes,
            readings: Vec::new(),
            stored: 1,
            duplicates: 0,
        }
    }

    /// A device reporting every `period_ms` from `from_ms` to `to_ms`, each arrival late by
    /// up to 300 ms of network jitter, about 400 bytes ± 40.
    fn steady(
        noise: &mut Noise,
        device: &str,
        class: DeviceClass,
        period_ms: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Vec<Event> {
        (0..)
            .map(|i| from_ms + i * period_ms)
            .take_while(|&ms| ms < to_ms)
            .map(|ms| {
                let late = 150 + 50 * noise.within(3) as i64;
                let bytes = (400.0 + 10.0 * noise.within(4)) as usize;
                message(ms + late, device, class, bytes)
            })
            .collect()
    }

    /// `count` messages evenly over `[from_ms, from_ms + span_ms)`.
    fn burst(
        device: &str,
        class: DeviceClass,
        from_ms: i64,
        span_ms: i64,
        count: i64,
    ) -> Vec<Event> {
        (0..count)
            .map(|i| message(from_ms + i * span_ms / count, device, class, 400))
            .collect()
    }

    fn run(events: &[Event]) -> (Rate, Vec<Alert>) {
        let mut detector = Rate::default();
        let mut alerts = Vec::new();
        for event in events {
            detector.observe(event, &mut alerts);
        }
        (detector, alerts)
    }

    fn sorted(mut events: Vec<Event>) -> Vec<Event> {
        events.sort_by_key(|e| e.at().unix_millis());
        events
    }

    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;

    #[test]
    fn steady_devices_are_quiet_for_hours() {
        let mut noise = Noise::new(1);
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 6 * HOUR);
        // A CGM: glucose and battery, each every 5 minutes, out of phase.
        events.extend(steady(&mut noise, "cgm-1", CGM, 5 * MINUTE, 0, 6 * HOUR));
        events.extend(steady(
            &mut noise,
            "cgm-1",
            CGM,
            5 * MINUTE,
            137_000,
            6 * HOUR,
        ));
        // An insulin pump: every minute, and a change reported at once now and then.
        events.extend(steady(
            &mut noise,
            "pump-1",
            DeviceClass::InsulinPump,
            MINUTE,
            0,
            6 * HOUR,
        ));
        events.extend(steady(
            &mut noise,
            "pump-1",
            DeviceClass::InsulinPump,
            47 * MINUTE,
            20_000,
            6 * HOUR,
        ));
        let (detector, alerts) = run(&sorted(events));
        assert!(alerts.is_empty(), "{alerts:?}");
        let monitor = &detector.devices[&DeviceId::new("mon-1").unwrap()];
        assert!((monitor.messages_meter.baseline - 10.0).abs() < 0.5);
        assert!(monitor.messages_meter.spread < 1.0);
    }

    #[test]
    fn a_flood_from_the_first_minute_is_judged_against_the_class_norm() {
        // A new monitor sending 6 messages a second: no baseline yet, six times its class.
        let events = burst("mon-1", MONITOR, 0, 2 * MINUTE, 6 * 120);
        let (_, alerts) = run(&events);
        assert_eq!(alerts.len(), 1, "once per episode: {alerts:?}");
        let alert = &alerts[0];
        assert_eq!(alert.kind, AlertKind::Flood);
        assert_eq!(alert.severity, Severity::Medium);
        assert_eq!(fact(alert, "metric"), Some("messages"));
        assert_eq!(fact(alert, "baseline"), Some("warming_up"));
        assert_eq!(fact(alert, "windows_over"), Some("3"));
        assert_eq!(fact(alert, "class_norm_per_second"), Some("1.00"));
        // Raised as the third window crosses: within 30 s.
        assert!(alert.time.unix_millis() - T0 < 30_000);
    }

    #[test]
    fn a_sustained_rise_after_warm_up_is_a_flood_a_smaller_one_is_not() {
        let mut noise = Noise::new(2);
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 30 * MINUTE);
        // Three times its rate for 10 minutes: a lot, but not "well above".
        events.extend(burst("mon-1", MONITOR, 30 * MINUTE, 10 * MINUTE, 3 * 600));
        events.extend(steady(
            &mut noise,
            "mon-1",
            MONITOR,
            1000,
            40 * MINUTE,
            60 * MINUTE,
        ));
        let (_, alerts) = run(&events);
        assert!(alerts.is_empty(), "{alerts:?}");
        // Six times its rate for a minute.
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 30 * MINUTE);
        events.extend(burst("mon-1", MONITOR, 30 * MINUTE, MINUTE, 6 * 60));
        let (_, alerts) = run(&events);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let baseline: f64 = fact(&alerts[0], "baseline_per_second")
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.95..1.05).contains(&baseline), "{baseline}");
        assert_eq!(fact(&alerts[0], "rate_per_second"), Some("4.10"));
        assert!(fact(&alerts[0], "spread_per_second").is_some());
    }

    #[test]
    fn a_byte_flood_at_the_usual_message_rate_is_a_flood() {
        let mut noise = Noise::new(3);
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 30 * MINUTE);
        events.extend((0..120).map(|s| message(30 * MINUTE + s * 1000, "mon-1", MONITOR, 20_000)));
        let (_, alerts) = run(&events);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(fact(&alerts[0], "metric"), Some("bytes"));
    }

    #[test]
    fn a_backlog_catch_up_is_not_a_flood() {
        let mut noise = Noise::new(4);
        // Offline for two minutes, then the 120 buffered packs under the throttle (40 at once,
        // then 20 a second), then the usual rate.
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 30 * MINUTE);
        let back = 32 * MINUTE;
        events.extend(burst("mon-1", MONITOR, back, 100, 40));
        events.extend(burst("mon-1", MONITOR, back + 100, 4000, 80));
        events.extend(steady(
            &mut noise,
            "mon-1",
            MONITOR,
            1000,
            back + 4100,
            60 * MINUTE,
        ));
        let (_, alerts) = run(&events);
        assert!(alerts.is_empty(), "{alerts:?}");

        // Offline for 20 minutes, then the backlog at five times the rate for four minutes.
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 30 * MINUTE);
        let back = 50 * MINUTE;
        events.extend(burst("mon-1", MONITOR, back, 4 * MINUTE, 5 * 240));
        events.extend(steady(
            &mut noise,
            "mon-1",
            MONITOR,
            1000,
            back + 4 * MINUTE,
            80 * MINUTE,
        ));
        let (_, alerts) = run(&events);
        assert!(alerts.is_empty(), "repaying what it owed: {alerts:?}");

        // A device never seen before with a buffer of 120.
        let mut events = burst("mon-2", MONITOR, 0, 100, 40);
        events.extend(burst("mon-2", MONITOR, 100, 4000, 80));
        events.extend(steady(
            &mut noise,
            "mon-2",
            MONITOR,
            1000,
            4100,
            10 * MINUTE,
        ));
        let (_, alerts) = run(&events);
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn owing_does_not_cover_more_than_was_missed() {
        // Offline for 20 minutes (about 1,200 packs owed), then six times the rate for 10
        // minutes (3,000 above the baseline): once the debt is repaid, it is a flood.
        let mut noise = Noise::new(5);
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 30 * MINUTE);
        let back = 50 * MINUTE;
        events.extend(burst("mon-1", MONITOR, back, 10 * MINUTE, 6 * 600));
        let (_, alerts) = run(&events);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let after = alerts[0].time.unix_millis() - T0 - back;
        assert!((3 * MINUTE..6 * MINUTE).contains(&after), "{after}");
    }

    #[test]
    fn a_device_talking_at_a_tenth_of_its_rate_is_a_low_anomaly_silence_is_not() {
        let mut noise = Noise::new(6);
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 30 * MINUTE);
        // Silent for five minutes, then back: an outage.
        events.extend(steady(
            &mut noise,
            "mon-1",
            MONITOR,
            1000,
            35 * MINUTE,
            60 * MINUTE,
        ));
        let (_, alerts) = run(&events);
        assert!(alerts.is_empty(), "{alerts:?}");
        // Once every 20 s for five minutes.
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 30 * MINUTE);
        events.extend(steady(
            &mut noise,
            "mon-1",
            MONITOR,
            20_000,
            30 * MINUTE,
            35 * MINUTE,
        ));
        let (_, alerts) = run(&events);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, AlertKind::Anomaly);
        assert_eq!(alerts[0].severity, Severity::Low);
        assert_eq!(fact(&alerts[0], "metric"), Some("rate_collapse"));
        assert_eq!(alerts[0].attack_technique.as_deref(), Some("T0804"));
        // A slow device's empty windows are no collapse.
        let events = steady(&mut noise, "cgm-1", CGM, 5 * MINUTE, 0, 12 * HOUR);
        assert!(run(&events).1.is_empty());
    }

    #[test]
    fn a_long_flood_is_recalled_every_ten_minutes_not_every_window() {
        let mut noise = Noise::new(7);
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 30 * MINUTE);
        events.extend(burst(
            "mon-1",
            MONITOR,
            30 * MINUTE,
            25 * MINUTE,
            8 * 25 * 60,
        ));
        let (_, alerts) = run(&events);
        let runs: Vec<_> = alerts
            .iter()
            .map(|a| fact(a, "windows_over").unwrap())
            .collect();
        assert_eq!(runs, ["3", "63", "123"], "{alerts:?}");
        // Through the engine: the same.
        let mut engine = Engine::new(vec![Box::new(Rate::default())]);
        let raised: usize = events.iter().map(|e| engine.observe(e).len()).sum();
        assert_eq!(raised, 3);
    }

    #[test]
    fn the_same_events_raise_the_same_alerts() {
        let mut noise = Noise::new(8);
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 30 * MINUTE);
        events.extend(burst("mon-1", MONITOR, 30 * MINUTE, 5 * MINUTE, 8 * 300));
        events.extend(steady(
            &mut noise,
            "mon-1",
            MONITOR,
            20_000,
            35 * MINUTE,
            45 * MINUTE,
        ));
        let (_, first) = run(&events);
        let (_, second) = run(&events);
        assert_eq!(first.len(), 2);
        assert_eq!(first, second);
    }

    #[test]
    fn memory_is_bounded_and_idle_devices_are_forgotten() {
        let mut detector = Rate::default();
        let mut alerts = Vec::new();
        for n in 0..1000 {
            detector.observe(&message(n, &format!("d-{n}"), MONITOR, 400), &mut alerts);
        }
        assert_eq!(detector.devices(), 1000);
        // An hour and more later, only the device still reporting is kept.
        for minute in 0..=62 {
            detector.observe(&message(minute * MINUTE, "d-0", MONITOR, 400), &mut alerts);
        }
        assert_eq!(detector.devices(), 1);
        assert!(alerts.is_empty());
        assert!(
            std::mem::size_of::<DeviceRate>() <= 160,
            "{}",
            std::mem::size_of::<DeviceRate>()
        );
    }

    #[test]
    fn other_events_and_late_events_are_harmless() {
        let mut noise = Noise::new(9);
        let mut events = steady(&mut noise, "mon-1", MONITOR, 1000, 0, 10 * MINUTE);
        // Received out of order: counted in the open window.
        events.push(message(MINUTE, "mon-1", MONITOR, 400));
        events.push(Event::Flooding {
            at: Timestamp::from_unix_millis(T0).unwrap(),
            device: DeviceId::new("mon-1").unwrap(),
            over_for_ms: 1500,
        });
        let (_, alerts) = run(&events);
        assert!(alerts.is_empty(), "{alerts:?}");
    }
}
