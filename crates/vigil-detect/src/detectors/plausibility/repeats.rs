//! Repeated values: a device's newest readings of a vital sign repeating, value for value, a
//! *varying* run of its own readings from minutes before: a replayed recording (the Stuxnet
//! technique of playing recorded normal values back to the operators) or an injected loop.
//!
//! **What is not flagged, and why.** A flat line is not: it is clinically ordinary for every
//! vital sign Vigil receives. A paced heart shows the pacemaker's rate, exactly, for hours; a
//! ventilated patient on a mandatory mode breathes at the set rate; SpO2 is an integer that sits
//! at 97 or at 100 % on oxygen for long stretches (the simulator's oximeter noise, 0.3 %, is
//! well below its 1 % resolution); temperature at 0.1 °C resolution drifts by a few tenths an
//! hour; a CGM overnight moves by 1–2 mg/dL between readings. Nor is a run that alternates
//! between two values (SpO2 toggling 96/97 across a rounding boundary). Therapy settings and
//! device status are never looked at: a pump's basal program repeats every day by design, and
//! a battery level steps predictably.
//!
//! **What is flagged.** For each device and vital quantity the last [`HISTORY`] readings are
//! kept. When the newest readings equal, one for one, the readings a fixed number of places
//! earlier, and that matching run holds at least [`MIN_CHANGES`] changes from one reading to the
//! next over at least [`MIN_DISTINCT`] distinct values, the sequence is being repeated.
//!
//! The threshold comes from how often a genuine signal repeats itself by chance. Integer vital
//! signs repeat short runs surprisingly often: with a few hundred earlier positions to match
//! against, every new reading is another chance. On the simulator's ward (noise and resolution
//! of docs/simulator.md; 40 patients, 24 hours, every vital quantity, 256 readings of history)
//! the longest chance match held 14 changes, and each further change made a match about four
//! times rarer. A large hospital's year is about 10⁴ times as much data, which moves the
//! expected longest chance match to about 21 changes; [`MIN_CHANGES`] = 32 leaves a margin of
//! another factor of 4¹¹. Were real, more smoothed signals only twice as rare per change, the
//! longest chance match would reach about 27 changes and 32 would still leave a factor of 30. Changes, not readings, are counted because the information in a signal is in its
//! changes: a smoothed heart rate that moves every few seconds needs a longer matching run
//! than a noisy one, and a flat run carries none. At 1 Hz with the simulator's noise a replay
//! is recognised after 40–50 s; the replayed material must come from the device's last 256
//! readings (about 4 minutes of a 1 Hz numeric).
//!
//! Readings no newer than the device's latest of the quantity (a resend after a lost
//! connection, or captured messages sent again byte for byte, which the sequence detector
//! reports as a replay) are not new readings and are not counted as a repeat.

use std::collections::{HashMap, VecDeque};

use vigil_model::{Alert, AlertKind, DeviceId, Evidence, Quantity, QuantityKind, Severity};

use super::Observed;

/// Readings kept per device and vital quantity: about 4 minutes of a 1 Hz numeric, 21 hours of
/// a CGM. Memory: 2 KiB per stream.
pub const HISTORY: usize = 256;
/// Changes from one reading to the next that a repeated run must hold (see the module's
/// documentation for the measurement behind it).
pub const MIN_CHANGES: u16 = 32;
/// Distinct values a repeated run must take: a run between two values is a rounding boundary,
/// not a recording.
pub const MIN_DISTINCT: usize = 3;

/// The current run of readings equal to those a fixed number of places before them.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    /// Readings in the run.
    len: u16,
    /// Changes from one reading to the next within it.
    changes: u16,
}

/// One device's recent readings of one vital quantity.
struct Stream {
    quantity: Quantity,
    /// Oldest first. Kept as `f32`, which halves the memory and loses nothing that matters
    /// here: two canonical values from a device's display resolution (0.01 at the finest, at
    /// most 3000) that differ as `f64` also differ as `f32`, whose precision is 2⁻²⁴ relative.
    values: VecDeque<f32>,
    /// Index `lag − 1`: the run of newest readings equal to those `lag` places before them.
    runs: Vec<Run>,
    /// Measurement time of the newest reading, Unix ms.
    newest_ms: i64,
}

impl Stream {
    fn new(quantity: Quantity) -> Stream {
        Stream {
            quantity,
            values: VecDeque::with_capacity(HISTORY + 1),
            runs: vec![Run::default(); HISTORY],
            newest_ms: i64::MIN,
        }
    }

    /// Appends `value`; the run found repeated, and how many places back, if there is one.
    fn push(&mut self, value: f32) -> Option<(usize, Run)> {
        let n = self.values.len();
        let previous = self.values.back().copied();
        let mut candidate = false;
        for (index, run) in self.runs.iter_mut().enumerate() {
            let lag = index + 1;
            let Some(&earlier) = n.checked_sub(lag).and_then(|i| self.values.get(i)) else {
                // Fewer readings than `lag`: this and every longer lag have nothing to match.
                break;
            };
            if earlier == value {
                // The previous reading is in the run (len > 0): compare with it for a change.
                if run.len > 0 && previous != Some(value) {
                    run.changes = run.changes.saturating_add(1);
                }
                run.len = run.len.saturating_add(1);
                candidate |= run.changes >= MIN_CHANGES;
            } else {
                *run = Run::default();
            }
        }
        self.values.push_back(value);
        if self.values.len() > HISTORY {
            self.values.pop_front();
        }
        if !candidate {
            return None;
        }
        self.runs
            .iter()
            .enumerate()
            .find(|(_, run)| run.changes >= MIN_CHANGES && self.varied(usize::from(run.len)))
            .map(|(index, run)| (index + 1, *run))
    }

    /// Whether the newest `len` readings take at least [`MIN_DISTINCT`] values.
    fn varied(&self, len: usize) -> bool {
        let mut seen: Vec<f32> = Vec::with_capacity(MIN_DISTINCT);
        for &value in self.values.iter().rev().take(len) {
            if !seen.contains(&value) {
                seen.push(value);
                if seen.len() >= MIN_DISTINCT {
                    return true;
                }
            }
        }
        false
    }
}

/// One device's streams.
#[derive(Default)]
struct DeviceStreams {
    /// When the device was last seen (event time, Unix ms).
    seen_ms: i64,
    streams: Vec<Stream>,
}

/// The repeated-sequence detection.
#[derive(Default)]
pub(super) struct RepeatedSequence {
    devices: HashMap<DeviceId, DeviceStreams>,
}

impl RepeatedSequence {
    /// Adds `reading` to its stream; reports a repeated run.
    pub(super) fn observe(&mut self, reading: &Observed<'_>, alerts: &mut Vec<Alert>) {
        if reading.quantity.spec().kind != QuantityKind::Vital {
            return;
        }
        // Looked up before inserting, so that the hot path clones no identifier.
        if !self.devices.contains_key(reading.device) {
            self.devices
                .insert(reading.device.clone(), DeviceStreams::default());
        }
        let Some(device) = self.devices.get_mut(reading.device) else {
            return;
        };
        device.seen_ms = device.seen_ms.max(reading.at.unix_millis());
        let stream = match device
            .streams
            .iter()
            .position(|s| s.quantity == reading.quantity)
        {
            Some(position) => device.streams.get_mut(position),
            None => {
                device.streams.push(Stream::new(reading.quantity));
                device.streams.last_mut()
            }
        };
        let Some(stream) = stream else {
            return;
        };
        if reading.time_ms <= stream.newest_ms {
            return;
        }
        stream.newest_ms = reading.time_ms;
        // Precision lost here is far below any device's resolution (see `Stream::values`).
        #[allow(clippy::cast_possible_truncation)]
        let value = reading.value as f32;
        if let Some((lag, run)) = stream.push(value) {
            alerts.push(alert(reading, lag, run));
        }
    }

    /// Forgets devices last seen before `cutoff_ms`.
    pub(super) fn forget_before(&mut self, cutoff_ms: i64) {
        self.devices.retain(|_, device| device.seen_ms >= cutoff_ms);
    }

    /// Devices with state.
    pub(super) fn devices(&self) -> usize {
        self.devices.len()
    }
}

fn alert(reading: &Observed<'_>, lag: usize, run: Run) -> Alert {
    let fact = |name: &str, value: String| Evidence::Fact {
        name: name.into(),
        value,
    };
    Alert {
        time: reading.at,
        // The clinician sees a recording instead of the patient: look now.
        severity: Severity::High,
        kind: AlertKind::RepeatedValues,
        device: Some(reading.device.clone()),
        patient: Some(reading.patient.clone()),
        evidence: vec![
            fact("quantity", reading.quantity.spec().key.into()),
            fact("repeated_readings", run.len.to_string()),
            fact("changes_in_run", run.changes.to_string()),
            fact("readings_back", lag.to_string()),
        ],
        // Manipulation of View: recorded values played back so that the view shows a past
        // state, not the present one; ATT&CK's own example of the technique is Stuxnet
        // "replaying process input" to the operators.
        attack_technique: Some("T0832".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::DeviceClass;

    use super::super::testing::{Noise, fact, of_kind, pack, run};
    use super::*;
    use crate::Event;

    const MONITOR: DeviceClass = DeviceClass::BedsideMonitor;

    fn monitor(s: i64, quantity: Quantity, value: f64) -> Event {
        pack(s * 1000, "mon-1", MONITOR, "p-1", &[(quantity, value)])
    }

    /// An hour of a noisy, drifting heart rate at 1 Hz, whole /min.
    fn heart_rates(seed: u64, seconds: usize) -> Vec<f64> {
        let mut noise = Noise::new(seed);
        let mut drift = 75.0;
        (0..seconds)
            .map(|_| {
                drift = (drift + 0.1 * noise.within(1)).clamp(60.0, 90.0);
                (drift + 0.6 * noise.within(2)).round()
            })
            .collect()
    }

    #[test]
    fn a_replayed_varying_heart_rate_sequence_alerts() {
        let recorded = heart_rates(7, 120);
        // The attacker plays back seconds 20–110 from second 120 on, with fresh timestamps.
        let played = recorded.iter().chain(&recorded[20..110]);
        let events: Vec<Event> = played
            .zip(0i64..)
            .map(|(&v, s)| monitor(s, Quantity::HeartRate, v))
            .collect();
        let alerts = run(&events);
        let repeats = of_kind(&alerts, AlertKind::RepeatedValues);
        assert!(!repeats.is_empty(), "{alerts:?}");
        let first = repeats[0];
        assert_eq!(first.device.as_ref().unwrap().as_str(), "mon-1");
        assert_eq!(first.attack_technique.as_deref(), Some("T0832"));
        assert_eq!(fact(first, "readings_back"), Some("100"));
        assert_eq!(fact(first, "quantity"), Some("heart_rate"));
        let seconds_into_replay = first.time.unix_millis() - super::super::testing::T0 - 120_000;
        assert!(
            seconds_into_replay < 90_000,
            "found {seconds_into_replay} ms into the replay"
        );
    }

    #[test]
    fn an_injected_loop_alerts() {
        let pattern = [72.0, 74.0, 73.0, 75.0, 71.0, 72.0, 76.0, 74.0];
        let events: Vec<Event> = (0..120)
            .map(|s| monitor(s, Quantity::RespirationRate, pattern[s as usize % 8] - 56.0))
            .collect();
        assert!(!of_kind(&run(&events), AlertKind::RepeatedValues).is_empty());
    }

    #[test]
    fn a_genuine_noisy_heart_rate_does_not_alert() {
        let events: Vec<Event> = heart_rates(11, 3600)
            .into_iter()
            .zip(0i64..)
            .map(|(v, s)| monitor(s, Quantity::HeartRate, v))
            .collect();
        assert!(run(&events).is_empty());
    }

    #[test]
    fn spo2_constant_at_97_for_10_minutes_does_not_alert() {
        let events: Vec<Event> = (0..600).map(|s| monitor(s, Quantity::Spo2, 97.0)).collect();
        assert!(run(&events).is_empty());
    }

    #[test]
    fn flat_lines_and_two_value_toggles_do_not_alert() {
        // A paced heart at 60 /min, and SpO2 toggling on a rounding boundary, for 10 minutes.
        let mut events: Vec<Event> = (0..600)
            .map(|s| monitor(s, Quantity::HeartRate, 60.0))
            .collect();
        events.extend((0..600).map(|s| {
            monitor(
                600 + s,
                Quantity::Spo2,
                if s % 2 == 0 { 96.0 } else { 97.0 },
            )
        }));
        assert!(run(&events).is_empty());
    }

    #[test]
    fn a_resend_of_the_same_readings_is_not_a_repeat() {
        let rates = heart_rates(5, 100);
        let mut events: Vec<Event> = Vec::new();
        for (s, &v) in (0i64..).zip(&rates) {
            events.push(monitor(s, Quantity::HeartRate, v));
        }
        // The same packs again, byte for byte (same measurement times).
        for (s, &v) in (0i64..).zip(&rates) {
            events.push(monitor(s, Quantity::HeartRate, v));
        }
        assert!(run(&events).is_empty());
    }

    #[test]
    fn repeating_therapy_settings_do_not_alert() {
        let program = [0.8, 0.8, 1.0, 1.2, 1.0, 0.9, 0.8, 0.7];
        let events: Vec<Event> = (0..400)
            .map(|m| {
                pack(
                    m * 60_000,
                    "pump-1",
                    DeviceClass::InsulinPump,
                    "p-1",
                    &[(Quantity::InsulinBasalRate, program[m as usize % 8])],
                )
            })
            .collect();
        assert!(run(&events).is_empty());
    }

    #[test]
    fn the_history_is_bounded() {
        let mut stream = Stream::new(Quantity::HeartRate);
        for v in heart_rates(3, 1000) {
            stream.push(v as f32);
        }
        assert_eq!(stream.values.len(), HISTORY);
        assert_eq!(stream.runs.len(), HISTORY);
    }
}
