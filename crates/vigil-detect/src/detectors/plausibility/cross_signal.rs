//! Cross-signal mismatch: two devices of one patient that measure the same physiology and
//! disagree, beyond what measurement error and physiology allow, for a sustained time.
//!
//! Each patient's latest reading per (quantity, device) is kept, with its measurement time. A
//! new reading is paired with the latest reading of the other signal of each comparison below
//! from every *other* device of the patient measured at most [`PAIR_WINDOW_MS`] away, and the
//! pair agrees or disagrees:
//!
//! - **Pulse rate against ECG heart rate** (a pulse oximeter's, or a monitor's, `PulseRate`
//!   against a monitor's, ECG patch's or pacemaker's `HeartRate`). In sinus rhythm every beat
//!   perfuses and the two agree within the devices' accuracy: ANSI/AAMI EC13 allows an ECG
//!   heart-rate meter ±10 % or ±5 /min, whichever is greater (current monitors state ±1 % or
//!   ±1 /min), and oximeters state a pulse-rate accuracy of about ±3 /min (ISO 80601-2-61
//!   requires it to be stated). In atrial fibrillation some beats come too early to eject a
//!   pulse: the pulse rate falls *below* the ECG rate by the pulse deficit, never above it. PPG
//!   under-reads the heart rate in AF by 6.6 /min on average, against 0.4 in sinus rhythm (50
//!   patients, 3184 paired recordings, "Real-world validation of smartphone-based
//!   photoplethysmography for heart rate monitoring in atrial fibrillation"); the simulator
//!   models a deficit of 0.18 /min per /min above 60 (7 at 100 /min, 16 at 150, 25 at 200) with
//!   a spread of 2 /min (docs/simulator.md).
//!
//!   So the pulse may lie above the ECG rate by the greater of [`PULSE_ABOVE_ECG_MIN`] /min
//!   and [`PULSE_ABOVE_ECG_FRACTION`] of the rate: at every rate at least the sum of both
//!   devices' allowed errors (8 /min at 60, 18 at 150, 23 at 200). It may lie below by the
//!   greater of [`PULSE_DEFICIT_MIN`] /min and [`PULSE_DEFICIT_FRACTION`] of the rate: at every
//!   rate from 60 to 200 /min at least the modelled deficit, twice its spread and both devices'
//!   allowed errors (12 /min at 60, 24 at 100, 38 at 150, 52 at 200).
//! - **SpO2 against SpO2** (a pulse oximeter's against a bedside monitor's). Both are pulse
//!   oximetry, specified to an accuracy A_rms of 2–3 % over 70–100 % (ISO 80601-2-61 allows
//!   up to 4 %; the FDA's 2013 guidance for 510(k) submissions asks ≤ 3 % for transmittance
//!   sensors). Two devices with independent errors of A_rms 2 % differ by about 2.8 % rms, of 3 %
//!   by about 4.2 %; [`SPO2_DIFFERENCE`] percentage points lies at 1.4–2 times that, and
//!   sustained. (The simulator's oximeters differ by about 1.3 % rms.) This is what catches a
//!   hidden desaturation: the monitor sees the patient's SpO2 fall to 85 % while an attacked
//!   oximeter reports 96–98 %.
//!
//! A disagreement alerts only when **sustained**: at least [`MIN_READINGS_EACH`] readings of
//! *each* device disagreeing with no agreeing pair in between, over at least
//! [`MIN_MISMATCH_MS`] of measurement time. One outlier from one device disagrees with at most
//! one reading of the other before its own next reading agrees again, so it can never alert.
//! And two genuine devices follow a real, fast change at different speeds: a heart-rate meter
//! takes up to about 11 s to follow a step in rate (the response time IEC 60601-2-27 and EC13
//! have monitors disclose; monitors state 6–11 s), and an oximeter averages over a window of up
//! to 16 s on common devices, so it lags by up to about half that.
//! A streak with no new disagreement for [`STREAK_GAP_MS`] starts again.
//!
//! One pattern needs no such wait: **an oximeter that steps up, away from agreement, while the
//! other stays hypoxaemic.** Its previous reading agreed with the other device; its new one, at
//! most [`STEP_WINDOW_MS`] later, is at least [`STEP_POINTS`] higher, so far above the other
//! device, which reads under [`HYPOXAEMIA_SPO2`] and has not risen with it. Lag cannot do
//! that: a displayed SpO2 that rises 8 points in 2 s (4 %/s) rises about nine times faster
//! than blood resaturates after an apnoea (mean resaturation slope 0.44 ± 0.03 %/s, resaturation
//! in about 12 s, in 33 patients with obstructive sleep apnoea: "Effect of obstructive sleep
//! apnea severity, sleep stage and position on patterns of oximetric desaturations and
//! resaturations", SLEEP meeting abstract 392), while the other oximeter, on the same blood,
//! has not moved at all. Nor can the artefacts of pulse oximetry, which read
//! falsely *low* (motion, poor perfusion, a probe coming off); a re-seated probe steps back
//! *to* the truth, so towards the other device. It is what an attacker who takes over an
//! oximeter in the middle of a desaturation produces, and it alerts, critical, at the stepped
//! device's second reading that still disagrees (its first could be a lone spike). An attacker
//! who ramps the forged value up slowly meets the sustained rule instead.
//!
//! Which device is lying cannot be told from two devices: the alert names the patient, with
//! `device: None` (so the engine suppresses repeats per patient), and both devices' ids as
//! facts, so that whoever looks checks both and does not trust the wrong one.
//!
//! Blood pressure against heart-rate trends is not compared: the baroreflex couples them only
//! loosely and with opposite signs in different events (tachycardia raises pressure,
//! hypotension raises heart rate), and a cuff reads every 15 minutes; no robust rule was found.

use std::collections::HashMap;

use vigil_model::{Alert, AlertKind, DeviceId, Evidence, PatientId, Phi, Quantity, Severity};

use super::Observed;

/// Two readings are compared only when measured at most this far apart: 10 s. Continuous
/// numerics arrive every second or two, so the latest of the other device is normally a second
/// old; a reading more than 10 s older no longer describes the same moment.
pub const PAIR_WINDOW_MS: i64 = 10_000;
/// The pulse rate may exceed the ECG heart rate by at most the greater of this, /min, …
pub const PULSE_ABOVE_ECG_MIN: f64 = 15.0;
/// … and this fraction of the heart rate: more than the ECG meter's allowed error (±10 % or
/// ±5 /min, ANSI/AAMI EC13) plus the oximeter's (±3 /min) at every rate.
pub const PULSE_ABOVE_ECG_FRACTION: f64 = 0.15;
/// The pulse rate may fall below the ECG heart rate by at most the greater of this, /min, …
pub const PULSE_DEFICIT_MIN: f64 = 25.0;
/// … and this fraction of the heart rate: more than the pulse deficit of atrial fibrillation
/// (modelled 0.18 /min per /min above 60: 7 at 100, 16 at 150, 25 at 200 /min), twice its
/// spread and both devices' allowed errors, at every rate from 60 to 200 /min.
pub const PULSE_DEFICIT_FRACTION: f64 = 0.30;
/// Two SpO2 readings may differ by at most this many percentage points: 1.4–2 times the rms
/// difference of two oximeters each within A_rms 2–3 % (ISO 80601-2-61).
pub const SPO2_DIFFERENCE: f64 = 6.0;
/// A disagreement is sustained when at least this many readings of each device disagree …
pub const MIN_READINGS_EACH: u32 = 3;
/// … over at least this much measurement time, ms: longer than a heart-rate meter takes to
/// follow a step in rate (up to about 11 s) and than an oximeter's averaging lags a fast
/// desaturation (about half of a window of up to 16 s).
pub const MIN_MISMATCH_MS: i64 = 15_000;
/// A disagreement with no new disagreeing pair for this long, ms, starts counting again.
pub const STREAK_GAP_MS: i64 = 30_000;
/// An oximeter's SpO2 that rises by at least this many points, %, …
pub const STEP_POINTS: f64 = 8.0;
/// … between two readings at most this far apart, ms, away from agreement with another
/// oximeter that stays hypoxaemic, is a forgery once its next reading still disagrees.
pub const STEP_WINDOW_MS: i64 = 2_000;
/// Below this SpO2, %, one of the two devices reports hypoxaemia (WHO, "Oxygen therapy for
/// children", 2016: SpO2 < 90 %): if it is the true one, the patient needs oxygen now and the
/// other device is hiding it, so the mismatch is critical.
pub const HYPOXAEMIA_SPO2: f64 = 90.0;

/// A pair of signals that measure the same physiology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// A pulse rate (first) against an ECG heart rate (second).
    PulseVsHeartRate,
    /// Two SpO2 readings; first is the device whose id sorts first.
    Spo2VsSpo2,
}

impl Comparison {
    const ALL: [Comparison; 2] = [Comparison::PulseVsHeartRate, Comparison::Spo2VsSpo2];

    /// The quantities of the first and second signal.
    fn quantities(self) -> (Quantity, Quantity) {
        match self {
            Comparison::PulseVsHeartRate => (Quantity::PulseRate, Quantity::HeartRate),
            Comparison::Spo2VsSpo2 => (Quantity::Spo2, Quantity::Spo2),
        }
    }

    /// Stable name, for evidence.
    fn key(self) -> &'static str {
        match self {
            Comparison::PulseVsHeartRate => "pulse_rate_vs_heart_rate",
            Comparison::Spo2VsSpo2 => "spo2_vs_spo2",
        }
    }

    /// Whether `first` and `second` (canonical units) cannot both be true.
    fn disagree(self, first: f64, second: f64) -> bool {
        match self {
            Comparison::PulseVsHeartRate => {
                let (pulse, heart) = (first, second);
                let above = PULSE_ABOVE_ECG_MIN.max(PULSE_ABOVE_ECG_FRACTION * heart);
                let deficit = PULSE_DEFICIT_MIN.max(PULSE_DEFICIT_FRACTION * heart);
                pulse > heart + above || pulse < heart - deficit
            }
            Comparison::Spo2VsSpo2 => (first - second).abs() > SPO2_DIFFERENCE,
        }
    }

    fn severity(self, first: f64, second: f64) -> Severity {
        match self {
            Comparison::Spo2VsSpo2 if first.min(second) < HYPOXAEMIA_SPO2 => Severity::Critical,
            _ => Severity::High,
        }
    }
}

/// A patient's latest reading of one quantity from one device.
struct Latest {
    quantity: Quantity,
    device: DeviceId,
    value: f64,
    time_ms: i64,
    /// The reading before it (value, measurement time), for steps.
    before: Option<(f64, i64)>,
    /// Event time it was last updated, for forgetting.
    seen_ms: i64,
}

impl Latest {
    /// This device's value at or just before `time_ms`: its latest reading, or the one before
    /// if the latest came after.
    fn value_at(&self, time_ms: i64) -> Option<f64> {
        if self.time_ms <= time_ms {
            return Some(self.value);
        }
        self.before
            .filter(|(_, at)| *at <= time_ms)
            .map(|(value, _)| value)
    }
}

/// A run of disagreeing pairs between two devices.
struct Streak {
    comparison: Comparison,
    first: DeviceId,
    second: DeviceId,
    /// Disagreeing readings of the first and second device.
    readings: (u32, u32),
    /// Measurement times of the earliest and latest disagreeing reading, Unix ms.
    since_ms: i64,
    until_ms: i64,
    /// Event time of the latest disagreement, for forgetting.
    seen_ms: i64,
    /// Whether the first (`Some(true)`) or second device began this streak by stepping up away
    /// from agreement with the other, which is hypoxaemic (see the module's documentation).
    stepped_first: Option<bool>,
}

/// One patient's signals.
#[derive(Default)]
struct PatientSignals {
    /// One per (quantity, device) of the compared quantities: a handful.
    latest: Vec<Latest>,
    /// One per pair of devices in disagreement.
    streaks: Vec<Streak>,
}

/// One side of a pair.
struct Side<'a> {
    device: &'a DeviceId,
    value: f64,
}

/// A pair of readings compared: first and second signal of `comparison`, and which of them is
/// the new reading.
struct Pair<'a> {
    comparison: Comparison,
    first: Side<'a>,
    second: Side<'a>,
    new_is_first: bool,
    /// Whether the new reading stepped up away from agreement with the other device.
    stepped: bool,
}

/// The cross-signal detection.
#[derive(Default)]
pub(super) struct CrossSignal {
    patients: HashMap<PatientId, PatientSignals>,
}

impl CrossSignal {
    /// Pairs `reading` with the patient's latest readings of the other signals; counts and
    /// reports sustained disagreements.
    pub(super) fn observe(&mut self, reading: &Observed<'_>, alerts: &mut Vec<Alert>) {
        let compared = Comparison::ALL.iter().any(|c| {
            let (first, second) = c.quantities();
            reading.quantity == first || reading.quantity == second
        });
        if !compared {
            return;
        }
        let at_ms = reading.at.unix_millis();
        if !self.patients.contains_key(reading.patient) {
            self.patients
                .insert(reading.patient.clone(), PatientSignals::default());
        }
        let Some(PatientSignals { latest, streaks }) = self.patients.get_mut(reading.patient)
        else {
            return;
        };
        let before = match latest
            .iter_mut()
            .find(|l| l.quantity == reading.quantity && l.device == *reading.device)
        {
            // A resend, a replay or a reading that arrives late: it was compared when it was
            // new, or is no longer the device's current view of the patient.
            Some(l) if reading.time_ms <= l.time_ms => {
                l.seen_ms = l.seen_ms.max(at_ms);
                return;
            }
            Some(l) => {
                let before = (l.value, l.time_ms);
                l.before = Some(before);
                l.value = reading.value;
                l.time_ms = reading.time_ms;
                l.seen_ms = l.seen_ms.max(at_ms);
                Some(before)
            }
            None => {
                latest.push(Latest {
                    quantity: reading.quantity,
                    device: reading.device.clone(),
                    value: reading.value,
                    time_ms: reading.time_ms,
                    before: None,
                    seen_ms: at_ms,
                });
                None
            }
        };
        for other in latest.iter() {
            if other.device == *reading.device
                || other.time_ms.abs_diff(reading.time_ms) > PAIR_WINDOW_MS.unsigned_abs()
            {
                continue;
            }
            for comparison in Comparison::ALL {
                let Some(mut pair) = pair(comparison, reading, other) else {
                    continue;
                };
                pair.stepped =
                    comparison == Comparison::Spo2VsSpo2 && stepped_away(reading, before, other);
                if let Some(alert) = count(streaks, &pair, reading) {
                    alerts.push(alert);
                }
            }
        }
    }

    /// Forgets readings and disagreements last seen before `cutoff_ms`, and patients with none.
    pub(super) fn forget_before(&mut self, cutoff_ms: i64) {
        self.patients.retain(|_, patient| {
            patient.latest.retain(|l| l.seen_ms >= cutoff_ms);
            patient.streaks.retain(|s| s.seen_ms >= cutoff_ms);
            !patient.latest.is_empty()
        });
    }

    /// Patients with state.
    pub(super) fn patients(&self) -> usize {
        self.patients.len()
    }
}

/// The new reading and another device's latest reading as a pair of `comparison`, if they are
/// its two signals.
fn pair<'a>(comparison: Comparison, new: &'a Observed<'_>, other: &'a Latest) -> Option<Pair<'a>> {
    let (first, second) = comparison.quantities();
    let new_side = Side {
        device: new.device,
        value: new.value,
    };
    let other_side = Side {
        device: &other.device,
        value: other.value,
    };
    let new_is_first = if first == second {
        // The same quantity on both sides: order by device, so that each pair of devices has
        // one streak whichever reported last.
        if new.quantity != first || other.quantity != first {
            return None;
        }
        new.device < &other.device
    } else if new.quantity == first && other.quantity == second {
        true
    } else if new.quantity == second && other.quantity == first {
        false
    } else {
        return None;
    };
    let (first, second) = if new_is_first {
        (new_side, other_side)
    } else {
        (other_side, new_side)
    };
    Some(Pair {
        comparison,
        first,
        second,
        new_is_first,
        stepped: false,
    })
}

/// Whether the new SpO2 `reading`, whose device read `before` (value, time) last, stepped up
/// away from agreement with `other`, which stays hypoxaemic (see the module's documentation).
fn stepped_away(reading: &Observed<'_>, before: Option<(f64, i64)>, other: &Latest) -> bool {
    let Some((previous, previous_ms)) = before else {
        return false;
    };
    let Some(other_then) = other.value_at(previous_ms) else {
        return false;
    };
    reading.time_ms - previous_ms <= STEP_WINDOW_MS
        && reading.value - previous >= STEP_POINTS
        && (previous - other_then).abs() <= SPO2_DIFFERENCE
        && other.value < HYPOXAEMIA_SPO2
        && reading.value - other.value > SPO2_DIFFERENCE
        && other.value - other_then < STEP_POINTS / 2.0
}

/// Counts `pair` into its streak: an agreement ends the streak, a disagreement extends it.
/// The alert, if the disagreement is now sustained.
fn count(streaks: &mut Vec<Streak>, pair: &Pair<'_>, reading: &Observed<'_>) -> Option<Alert> {
    let position = streaks.iter().position(|s| {
        s.comparison == pair.comparison
            && s.first == *pair.first.device
            && s.second == *pair.second.device
    });
    if !pair
        .comparison
        .disagree(pair.first.value, pair.second.value)
    {
        if let Some(position) = position {
            streaks.swap_remove(position);
        }
        return None;
    }
    let at_ms = reading.at.unix_millis();
    let fresh = || Streak {
        comparison: pair.comparison,
        first: pair.first.device.clone(),
        second: pair.second.device.clone(),
        readings: (0, 0),
        since_ms: reading.time_ms,
        until_ms: reading.time_ms,
        seen_ms: at_ms,
        stepped_first: None,
    };
    let streak = match position.and_then(|p| streaks.get_mut(p)) {
        Some(streak) if reading.time_ms - streak.until_ms > STREAK_GAP_MS => {
            *streak = fresh();
            streak
        }
        Some(streak) => streak,
        None => {
            streaks.push(fresh());
            streaks.last_mut()?
        }
    };
    if pair.new_is_first {
        streak.readings.0 += 1;
    } else {
        streak.readings.1 += 1;
    }
    // Only the reading that begins the streak can have stepped away from agreement.
    if pair.stepped && streak.readings.0 + streak.readings.1 == 1 {
        streak.stepped_first = Some(pair.new_is_first);
    }
    streak.since_ms = streak.since_ms.min(reading.time_ms);
    streak.until_ms = streak.until_ms.max(reading.time_ms);
    streak.seen_ms = streak.seen_ms.max(at_ms);
    let sustained = streak.readings.0 >= MIN_READINGS_EACH
        && streak.readings.1 >= MIN_READINGS_EACH
        && streak.until_ms - streak.since_ms >= MIN_MISMATCH_MS;
    // The stepped device's second disagreeing reading, with the other still hypoxaemic.
    let stepped = match streak.stepped_first {
        Some(true) => streak.readings.0 >= 2 && pair.second.value < HYPOXAEMIA_SPO2,
        Some(false) => streak.readings.1 >= 2 && pair.first.value < HYPOXAEMIA_SPO2,
        None => false,
    };
    (sustained || stepped).then(|| alert(pair, streak, reading))
}

fn alert(pair: &Pair<'_>, streak: &Streak, reading: &Observed<'_>) -> Alert {
    let (first_quantity, second_quantity) = pair.comparison.quantities();
    let fact = |name: &str, value: String| Evidence::Fact {
        name: name.into(),
        value,
    };
    Alert {
        time: reading.at,
        severity: pair
            .comparison
            .severity(pair.first.value, pair.second.value),
        kind: AlertKind::CrossSignalMismatch,
        // Either device may be the one lying: suppression and attention go to the patient.
        device: None,
        patient: Some(reading.patient.clone()),
        evidence: vec![
            fact("comparison", pair.comparison.key().into()),
            fact("first_device", pair.first.device.as_str().into()),
            Evidence::Clinical {
                quantity: first_quantity,
                value: Phi::new(pair.first.value),
            },
            fact("second_device", pair.second.device.as_str().into()),
            Evidence::Clinical {
                quantity: second_quantity,
                value: Phi::new(pair.second.value),
            },
            fact(
                "disagreeing_readings",
                (streak.readings.0 + streak.readings.1).to_string(),
            ),
            fact(
                "disagreeing_for_ms",
                (streak.until_ms - streak.since_ms).to_string(),
            ),
            fact("pair_window_ms", PAIR_WINDOW_MS.to_string()),
        ]
        .into_iter()
        .chain(streak.stepped_first.map(|first| {
            let device = if first { &streak.first } else { &streak.second };
            fact("stepped_away_device", device.as_str().into())
        }))
        .collect(),
        // Manipulation of View: one device reports a state of the patient that another device
        // shows is not the patient's ("the process itself could be in a much different state
        // than what is reported"), which is what a clinician would act on. Spoof Reporting
        // Message (T0856) is the means; the mismatch is evidence of the effect.
        attack_technique: Some("T0832".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::{DeviceClass, Quantity};

    use super::super::testing::{Noise, fact, of_kind, pack, run};
    use super::*;
    use crate::Event;

    const MONITOR: DeviceClass = DeviceClass::BedsideMonitor;
    const OXIMETER: DeviceClass = DeviceClass::PulseOximeter;

    /// `seconds` of a monitor (heart rate, SpO2) and an oximeter (pulse rate, SpO2) of one
    /// patient at 1 Hz, values from `at(second)`: (heart rate, monitor SpO2, pulse rate,
    /// oximeter SpO2).
    fn ward(seconds: i64, mut at: impl FnMut(i64) -> (f64, f64, f64, f64)) -> Vec<Event> {
        let mut events = Vec::new();
        for s in 0..seconds {
            let (heart, monitor_spo2, pulse, oximeter_spo2) = at(s);
            events.push(pack(
                s * 1000,
                "mon-1",
                MONITOR,
                "p-1",
                &[(Quantity::HeartRate, heart), (Quantity::Spo2, monitor_spo2)],
            ));
            events.push(pack(
                s * 1000 + 300,
                "oxi-1",
                OXIMETER,
                "p-1",
                &[
                    (Quantity::PulseRate, pulse),
                    (Quantity::Spo2, oximeter_spo2),
                ],
            ));
        }
        events
    }

    #[test]
    fn the_hidden_desaturation_alerts_for_the_patient_naming_both_devices() {
        // The monitor sees 85 %, the attacked oximeter reports 96–98 % for 30 s.
        let events = ward(30, |s| (95.0, 85.0, 95.0, 96.0 + (s % 3) as f64));
        let alerts = run(&events);
        let mismatches = of_kind(&alerts, AlertKind::CrossSignalMismatch);
        assert!(!mismatches.is_empty(), "{alerts:?}");
        let first = mismatches[0];
        assert_eq!(first.device, None);
        assert_eq!(first.patient.as_ref().unwrap().as_str(), "p-1");
        assert_eq!(
            first.severity,
            Severity::Critical,
            "one device reports hypoxaemia"
        );
        assert_eq!(first.attack_technique.as_deref(), Some("T0832"));
        assert_eq!(fact(first, "comparison"), Some("spo2_vs_spo2"));
        assert_eq!(fact(first, "first_device"), Some("mon-1"));
        assert_eq!(fact(first, "second_device"), Some("oxi-1"));
        // Sustained: not before 15 s of disagreement.
        assert!(first.time.unix_millis() - super::super::testing::T0 >= MIN_MISMATCH_MS);
        assert!(alerts.len() == mismatches.len(), "{alerts:?}");
    }

    /// The first cross-signal alert's time, seconds after the ward began.
    fn first_mismatch_s(events: &[Event]) -> Option<f64> {
        let alerts = run(events);
        of_kind(&alerts, AlertKind::CrossSignalMismatch)
            .first()
            .map(|a| (a.time.unix_millis() - super::super::testing::T0) as f64 / 1000.0)
    }

    #[test]
    fn an_oximeter_taken_over_in_a_desaturation_alerts_at_its_second_forged_reading() {
        // Both devices follow the patient down to 85 %; from second 40 the attacked oximeter
        // reports 96–98 % while the monitor still sees 85 %.
        let events = ward(60, |s| {
            let oximeter = if s >= 40 { 96.0 + (s % 3) as f64 } else { 85.5 };
            (95.0, 85.0, 95.0, oximeter)
        });
        let alerts = run(&events);
        let mismatches = of_kind(&alerts, AlertKind::CrossSignalMismatch);
        let first = mismatches.first().expect("an alert");
        assert_eq!(first.severity, Severity::Critical);
        assert_eq!(fact(first, "stepped_away_device"), Some("oxi-1"));
        // The oximeter's readings are at s + 0.3 s: the second forged one is at 41.3 s.
        let at = (first.time.unix_millis() - super::super::testing::T0) as f64 / 1000.0;
        assert!((41.0..=41.5).contains(&at), "alerted at {at} s");
    }

    #[test]
    fn a_real_resaturation_seen_first_by_one_device_does_not_step() {
        // After a desaturation to 84 %, the monitor's probe sees the saturation come back at
        // 1.5 and then 3 %/s (faster than blood resaturates); the oximeter follows 12 s later.
        for rate in [1.5, 3.0] {
            let recovered =
                move |s: i64, from: i64| (84.0 + rate * (s - from).max(0) as f64).min(97.0);
            let events = ward(90, |s| (95.0, recovered(s, 30), 95.0, recovered(s, 42)));
            assert_eq!(first_mismatch_s(&events), None, "at {rate} %/s");
        }
    }

    #[test]
    fn falsely_low_readings_and_a_reseated_probe_do_not_step() {
        // The monitor's probe reads falsely low for 10 s (motion), the oximeter the truth; then
        // the oximeter's probe comes off (70 %) and is re-seated, stepping back to the truth.
        let events = ward(60, |s| match s {
            10..20 => (80.0, 84.0, 80.0, 97.0),
            30..33 => (80.0, 97.0, 80.0, 70.0),
            _ => (80.0, 97.0, 80.0, 97.0),
        });
        assert_eq!(first_mismatch_s(&events), None);
    }

    #[test]
    fn a_step_is_a_forgery_only_away_from_agreement_over_hypoxaemia_and_for_two_readings() {
        // Against a monitor that is not hypoxaemic (92 %): the step is 8 and the disagreement
        // over 6, but neither device says the patient needs oxygen.
        let events = ward(25, |s| {
            (80.0, 92.0, 80.0, if s >= 10 { 100.0 } else { 92.0 })
        });
        assert_eq!(first_mismatch_s(&events), None, "not over hypoxaemia");
        // A lone spike: one reading up, then back.
        let events = ward(25, |s| {
            (80.0, 85.0, 80.0, if s == 10 { 97.0 } else { 85.0 })
        });
        assert_eq!(first_mismatch_s(&events), None, "a spike");
        // From disagreement already (no agreement to step away from): the sustained rule, which
        // 14 s of disagreement do not meet.
        let events = ward(14, |s| {
            (80.0, 85.0, 80.0, if s >= 10 { 97.0 } else { 92.0 })
        });
        assert_eq!(first_mismatch_s(&events), None, "no agreement before");
        // Both devices rising together, the oximeter ahead: not away from the monitor.
        let events = ward(25, |s| {
            let monitor = if s >= 10 { 89.0 } else { 84.0 };
            (80.0, monitor, 80.0, if s >= 10 { 97.0 } else { 85.0 })
        });
        assert_eq!(first_mismatch_s(&events), None, "rising together");
        // Seven points up is a fast resaturation, not a step.
        let events = ward(25, |s| {
            (80.0, 85.0, 80.0, if s >= 10 { 92.5 } else { 85.5 })
        });
        assert_eq!(first_mismatch_s(&events), None, "under the step");
    }

    #[test]
    fn spo2_within_the_accuracy_of_two_oximeters_does_not_alert() {
        let mut noise = Noise::new(1);
        let events = ward(600, |_| (80.0, 95.0, 80.0, 97.0));
        assert!(run(&events).is_empty());
        let events = ward(600, move |_| {
            (80.0, 94.0 + noise.within(1), 80.0, 96.0 + noise.within(2))
        });
        assert!(run(&events).is_empty());
    }

    #[test]
    fn an_af_pulse_deficit_of_20_at_a_heart_rate_of_140_does_not_alert() {
        let mut noise = Noise::new(2);
        let events = ward(600, move |_| {
            let heart = 140.0 + noise.within(8);
            (heart, 96.0, heart - 20.0 + noise.within(3), 96.0)
        });
        let alerts = run(&events);
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn noisy_agreement_within_3_does_not_alert() {
        let mut noise = Noise::new(3);
        let events = ward(600, move |s| {
            let heart = 70.0 + (s / 60) as f64;
            (heart, 97.0, heart + noise.within(3), 97.0)
        });
        assert!(run(&events).is_empty());
    }

    #[test]
    fn a_single_outlier_does_not_alert() {
        let events = ward(120, |s| match s {
            60 => (72.0, 97.0, 160.0, 70.0),
            _ => (72.0, 97.0, 73.0, 97.0),
        });
        assert!(run(&events).is_empty());
    }

    #[test]
    fn a_pulse_rate_sustained_above_the_ecg_rate_alerts() {
        // No rhythm makes the pulse faster than the heart: 110 against 72.
        let events = ward(30, |_| (72.0, 97.0, 110.0, 97.0));
        let alerts = run(&events);
        assert!(!alerts.is_empty());
        assert_eq!(
            fact(&alerts[0], "comparison"),
            Some("pulse_rate_vs_heart_rate")
        );
        assert_eq!(fact(&alerts[0], "first_device"), Some("oxi-1"));
        assert_eq!(fact(&alerts[0], "second_device"), Some("mon-1"));
        assert_eq!(alerts[0].severity, Severity::High);
    }

    #[test]
    fn a_pulse_rate_far_below_any_deficit_alerts() {
        // 40 against 140: more than 30 % of the rate (42) below it.
        let events = ward(30, |_| (140.0, 97.0, 40.0, 97.0));
        assert!(!run(&events).is_empty());
    }

    #[test]
    fn a_real_change_followed_by_one_device_seconds_later_does_not_alert() {
        // A desaturation to 85 % that the oximeter follows 12 s after the monitor, and a
        // tachycardia to 150 /min whose pulse rate the oximeter shows 12 s after the ECG.
        let events = ward(120, |s| {
            let monitor_spo2 = if s >= 20 { 85.0 } else { 97.0 };
            let oximeter_spo2 = if s >= 32 { 85.0 } else { 97.0 };
            let heart = if s >= 70 { 150.0 } else { 80.0 };
            let pulse = if s >= 82 { 150.0 } else { 80.0 };
            (heart, monitor_spo2, pulse, oximeter_spo2)
        });
        let alerts = run(&events);
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn readings_more_than_10_s_apart_are_not_compared() {
        let mut events = vec![pack(0, "mon-1", MONITOR, "p-1", &[(Quantity::Spo2, 85.0)])];
        // The oximeter reports only after the monitor's last reading is 11 s old.
        for s in 11..60 {
            events.push(pack(
                s * 1000,
                "oxi-1",
                OXIMETER,
                "p-1",
                &[(Quantity::Spo2, 97.0)],
            ));
        }
        assert!(run(&events).is_empty());
    }

    #[test]
    fn a_device_is_not_compared_with_itself_nor_with_another_patient() {
        let mut events = Vec::new();
        for s in 0..60 {
            // A monitor whose own pulse rate disagrees with its ECG (its own business), and an
            // oximeter on another patient.
            events.push(pack(
                s * 1000,
                "mon-1",
                MONITOR,
                "p-1",
                &[
                    (Quantity::HeartRate, 72.0),
                    (Quantity::PulseRate, 120.0),
                    (Quantity::Spo2, 85.0),
                ],
            ));
            events.push(pack(
                s * 1000,
                "oxi-2",
                OXIMETER,
                "p-2",
                &[(Quantity::Spo2, 97.0)],
            ));
        }
        assert!(run(&events).is_empty());
    }

    #[test]
    fn a_pacemaker_interrogation_alone_is_never_sustained() {
        // One heart-rate reading an hour cannot make three disagreeing readings of its device.
        let mut events = Vec::new();
        for s in 0..60 {
            if s == 5 {
                events.push(pack(
                    s * 1000,
                    "pm-1",
                    DeviceClass::PacemakerMonitor,
                    "p-1",
                    &[(Quantity::HeartRate, 60.0)],
                ));
            }
            events.push(pack(
                s * 1000,
                "oxi-1",
                OXIMETER,
                "p-1",
                &[(Quantity::PulseRate, 120.0)],
            ));
        }
        assert!(run(&events).is_empty());
    }

    #[test]
    fn the_thresholds_hold_where_they_say() {
        let pr = Comparison::PulseVsHeartRate;
        assert!(
            !pr.disagree(87.0, 72.0) && pr.disagree(87.5, 72.0),
            "15 above at 72"
        );
        assert!(
            !pr.disagree(183.5, 160.0) && pr.disagree(184.5, 160.0),
            "15 % above at 160"
        );
        assert!(
            !pr.disagree(47.0, 72.0) && pr.disagree(46.5, 72.0),
            "25 below at 72"
        );
        assert!(
            !pr.disagree(98.5, 140.0) && pr.disagree(97.5, 140.0),
            "30 % below at 140"
        );
        let spo2 = Comparison::Spo2VsSpo2;
        assert!(!spo2.disagree(91.0, 97.0) && spo2.disagree(90.5, 97.0));
        assert_eq!(spo2.severity(92.0, 99.0), Severity::High);
        assert_eq!(spo2.severity(89.0, 97.0), Severity::Critical);
    }
}
