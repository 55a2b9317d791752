//! Learned models: per device and per patient, an online Half-Space Trees model ([`hst`]) of
//! that device's (or patient's) recent normal behaviour, scoring each new message against it.
//!
//! **What the models see** ([`features`]).
//!
//! - A device, per message: the interval since its previous message by its own clock, the
//!   message's size, how many readings it carries, and for each quantity its class reports
//!   (battery aside) the value on a ward scale and its change since the device's previous
//!   reading of it (0 and ½ when the message does not carry it). The trees are drawn once per
//!   device class; a device has only its mass counters.
//! - A patient, per message that brings a cardio-respiratory reading: how the patient's
//!   devices agree where physiology ties them together, from the latest readings measured within
//!   [`FRESH_MS`] of each other: ECG heart rate (monitor, patch) minus pulse rate, and oximeter
//!   SpO2 minus another device's SpO2 (a monitor's probe). A point is scored only when at least
//!   two devices contribute to it: one device alone is its own model's business. The absolute
//!   values are left out on purpose: with them, clinical desaturations were novel to the
//!   patient's model and alerted (17 alerts in 5 simulated patient-days in an early version);
//!   the agreement of two devices moves when one of them lies, and when the patient
//!   deteriorates only in atrial fibrillation (the pulse deficit).
//!
//! **Scoring.** Each point gets the fraction of trees in which it fell where the model's last
//! window of 250 points almost never went (see [`hst`]); a model's *score* is the EWMA of that
//! fraction over its last points (weight 1/[`SCORE_SPAN`]), so one odd message moves it by a
//! sixteenth and a sustained change of behaviour moves it to its own novelty. Nothing is scored
//! before the model's first window is full ([`hst::WINDOW`] points: four minutes of a 1 Hz
//! device, two of a patient with a monitor and an oximeter).
//!
//! **Alerting.** A score reaching [`DEVICE_THRESHOLD`] or [`PATIENT_THRESHOLD`] raises
//! [`AlertKind::Anomaly`] about the device (with its patient) or about the patient, once per
//! episode: the episode ends when the score falls below half the threshold. Severity: medium from
//! [`MEDIUM_FROM`], else low. Evidence: the model, the score, the threshold and the feature that
//! most often set the recent points apart, by name; never a value.
//!
//! **Memory and time.** A model is [`hst::Masses::BYTES`] (2,016) bytes of counters plus its state
//! ([`Anomaly::bytes_per_device`], [`Anomaly::bytes_per_patient`]): about 2.3 KB per device and 2.2
//! KB per patient, so 10,000 devices and 5,000 patients take about 34 MB. Models not seen for
//! [`FORGET_AFTER_MS`] are forgotten, and at most [`MAX_MODELS`] of each kind are kept. A point
//! costs two walks down 16 trees of depth 5.
//!
//! **What it cannot catch.** A forgery that looks like the device's last four minutes (a replay
//! of them: the plausibility detector's repeats catch that), a change slower than the window
//! follows, anything in a device's first window, and a slow device's anything for hours (a CGM's
//! first window is 250 readings). A device model's 16 trees of depth 5 over up to 19 features
//! split each feature only once or twice: it sees a change of the message's shape (size,
//! readings, interval) or values moving by a good part of their scale, not a heart rate shifted
//! from 80 to 95. And no model can tell a forged change from a clinical one: a real tachycardia
//! moves the heart rate where the window never went too. In simulated wards with 24 clinical
//! events a patient-day, the models raised 4.8 alerts a patient-day, every one during a
//! clinical event (none without clinical events): this detector is not in the default set
//! ([`super::all`]).
//!
pub mod features;
pub mod hst;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use vigil_model::{
    Alert, AlertKind, DeviceClass, DeviceId, Evidence, PatientId, Quantity, Severity, Timestamp,
};

use crate::{Detector, Event};

use features::{Layout, PATIENT_FEATURES, SLOTS};
use hst::{Forest, Masses};

/// The score at which a device model raises an anomaly: half the trees, sustained.
pub const DEVICE_THRESHOLD: f32 = 0.5;
/// The score at which a patient model raises one: two trees in three, sustained. Higher than a
/// device's: at 0.5, patient models alerted on more episodes of atrial fibrillation (whose
/// pulse deficit is a real disagreement) in simulated wards, and caught a hidden desaturation
/// only 5 s sooner.
pub const PATIENT_THRESHOLD: f32 = 0.65;
/// The score from which it is of medium severity.
pub const MEDIUM_FROM: f32 = 0.8;
/// Points the score averages over (the EWMA's weight is its inverse).
pub const SCORE_SPAN: f32 = 16.0;
/// A patient's reading older than this (by measurement time) is not part of the joint picture.
pub const FRESH_MS: i64 = 30_000;
/// A model not seen for this long (event time) is forgotten: an hour.
pub const FORGET_AFTER_MS: i64 = 60 * 60_000;
/// Models of each kind (devices, patients) kept at most.
pub const MAX_MODELS: usize = 50_000;
/// How often idle models are looked for, event time.
const SWEEP_EVERY_MS: i64 = 60_000;
/// The seed the trees are drawn from: fixed, so that alerts are reproducible.
pub const SEED: u64 = 0x5649_4749_4C5F_4853; // "VIGIL_HS"

/// A model's score and episode.
#[derive(Debug, Clone, Default)]
struct Scored {
    masses: Masses,
    score: f32,
    alerting: bool,
    /// Per feature, an EWMA of how often it set the recent points apart.
    blame: Vec<f32>,
    seen_ms: i64,
}

impl Scored {
    fn new(dimensions: usize, now_ms: i64) -> Scored {
        Scored {
            blame: vec![0.0; dimensions],
            seen_ms: now_ms,
            ..Scored::default()
        }
    }

    /// Scores and learns `point`; `Some(dimension)` when an episode starts, with the feature
    /// that most set the recent points apart.
    fn observe(
        &mut self,
        forest: &Forest,
        point: &[f32],
        threshold: f32,
        scratch: &mut Vec<u16>,
    ) -> Option<usize> {
        scratch.clear();
        scratch.resize(forest.dimensions(), 0);
        let was_ready = self.masses.ready();
        let novelty = forest.score_and_learn(&mut self.masses, point, scratch);
        if !was_ready {
            return None;
        }
        let weight = 1.0 / SCORE_SPAN;
        self.score += weight * (novelty - self.score);
        for (blame, &trees) in self.blame.iter_mut().zip(scratch.iter()) {
            *blame += weight * (f32::from(trees) - *blame);
        }
        if self.alerting {
            if self.score < threshold / 2.0 {
                self.alerting = false;
            }
            return None;
        }
        if self.score < threshold {
            return None;
        }
        self.alerting = true;
        let mut most = 0;
        for (d, blame) in self.blame.iter().enumerate() {
            if *blame > self.blame[most] {
                most = d;
            }
        }
        Some(most)
    }
}

/// A device's model and what its next point is computed from.
#[derive(Debug, Clone)]
struct DeviceModel {
    class: DeviceClass,
    scored: Scored,
    /// The previous reading per quantity of the layout (NaN: none yet).
    previous: Vec<f32>,
    /// The newest measurement time of the previous message, Unix ms.
    previous_ms: Option<i64>,
}

/// The latest reading of a patient's slot.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    value: f32,
    time_ms: i64,
    /// A hash of the device that measured it: only to count contributing devices.
    device: u64,
    set: bool,
}

/// A patient's model and joint picture.
#[derive(Debug, Clone)]
struct PatientModel {
    scored: Scored,
    slots: [Slot; SLOTS],
}

/// The per-device and per-patient learned models.
#[derive(Clone)]
pub struct Anomaly {
    /// Per device class (in `DeviceClass::ALL` order), its trees and layout.
    classes: Vec<(Forest, Layout)>,
    patient_forest: Forest,
    devices: HashMap<DeviceId, DeviceModel>,
    patients: HashMap<PatientId, PatientModel>,
    point: Vec<f32>,
    scratch: Vec<u16>,
    latest_ms: i64,
    next_sweep_ms: i64,
    untracked: u64,
}

impl std::fmt::Debug for Anomaly {
    /// Sizes only: models hold what clinical values looked like.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anomaly")
            .field("devices", &self.devices.len())
            .field("patients", &self.patients.len())
            .finish_non_exhaustive()
    }
}

impl Default for Anomaly {
    fn default() -> Anomaly {
        Anomaly::with_seed(SEED)
    }
}

impl Anomaly {
    /// Models whose trees are drawn from `seed` (the default is [`SEED`]).
    pub fn with_seed(seed: u64) -> Anomaly {
        let classes = DeviceClass::ALL
            .iter()
            .zip(1u64..)
            .map(|(class, n)| {
                let layout = Layout::of(*class);
                (
                    Forest::new(layout.dimensions(), seed.wrapping_add(n)),
                    layout,
                )
            })
            .collect();
        Anomaly {
            classes,
            patient_forest: Forest::new(PATIENT_FEATURES.len(), seed),
            devices: HashMap::new(),
            patients: HashMap::new(),
            point: Vec::new(),
            scratch: Vec::new(),
            latest_ms: 0,
            next_sweep_ms: 0,
            untracked: 0,
        }
    }

    /// Devices with a model.
    pub fn devices(&self) -> usize {
        self.devices.len()
    }

    /// Patients with a model.
    pub fn patients(&self) -> usize {
        self.patients.len()
    }

    /// Events of devices or patients not modelled because [`MAX_MODELS`] were.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Bytes a device's model takes (counters, state, its map entry and identifier).
    pub fn bytes_per_device() -> usize {
        Masses::BYTES
            + std::mem::size_of::<DeviceModel>()
            + std::mem::size_of::<DeviceId>()
            // Identifier text, previous values (a monitor's 8) and blame (its 19 features).
            + 16
            + 8 * 4
            + 19 * 4
    }

    /// Bytes a patient's model takes (counters, state, its map entry and identifier).
    pub fn bytes_per_patient() -> usize {
        Masses::BYTES
            + std::mem::size_of::<PatientModel>()
            + std::mem::size_of::<PatientId>()
            + 16
            + PATIENT_FEATURES.len() * 4
    }

    fn forget_idle(&mut self, now_ms: i64) {
        self.latest_ms = self.latest_ms.max(now_ms);
        if self.latest_ms < self.next_sweep_ms {
            return;
        }
        self.next_sweep_ms = self.latest_ms + SWEEP_EVERY_MS;
        let cutoff = self.latest_ms - FORGET_AFTER_MS;
        self.devices.retain(|_, m| m.scored.seen_ms >= cutoff);
        self.patients.retain(|_, m| m.scored.seen_ms >= cutoff);
    }

    /// The device's point for this message; `None` when it has no model (too many).
    #[allow(clippy::too_many_arguments)]
    fn device(
        &mut self,
        at: Timestamp,
        device: &DeviceId,
        class: DeviceClass,
        patient: &PatientId,
        bytes: usize,
        readings: &[crate::Reading],
        alerts: &mut Vec<Alert>,
    ) {
        let now_ms = at.unix_millis();
        let Some((forest, layout)) = self.classes.get(class as usize) else {
            return;
        };
        if !self.devices.contains_key(device) {
            if self.devices.len() >= MAX_MODELS {
                self.untracked += 1;
                return;
            }
            self.devices.insert(
                device.clone(),
                DeviceModel {
                    class,
                    scored: Scored::new(layout.dimensions(), now_ms),
                    previous: vec![f32::NAN; layout.quantities.len()],
                    previous_ms: None,
                },
            );
        }
        let Some(model) = self.devices.get_mut(device) else {
            return;
        };
        if model.class != class {
            // Re-registered under another class: its history is another device's.
            let fresh = DeviceModel {
                class,
                scored: Scored::new(layout.dimensions(), now_ms),
                previous: vec![f32::NAN; layout.quantities.len()],
                previous_ms: None,
            };
            *model = fresh;
        }
        model.scored.seen_ms = model.scored.seen_ms.max(now_ms);
        let newest_ms = readings.iter().map(|r| r.time.unix_millis()).max();
        let point = &mut self.point;
        point.clear();
        point.resize(layout.dimensions(), 0.0);
        for q in 0..layout.quantities.len() {
            point[features::TRAFFIC + 2 * q + 1] = 0.5;
        }
        point[0] = match (model.previous_ms, newest_ms) {
            (Some(previous), Some(newest)) => features::interval(newest - previous),
            _ => 0.5,
        };
        point[1] = features::size(bytes);
        point[2] = features::readings(readings.len());
        for reading in readings {
            let value = *reading.value.expose();
            if !usable(reading.quantity, value) {
                continue;
            }
            let (Some(index), Some(scale)) = (
                layout.position(reading.quantity),
                features::scale(reading.quantity),
            ) else {
                continue;
            };
            point[features::TRAFFIC + 2 * index] = scale.value(value);
            let previous = model.previous[index];
            if previous.is_finite() {
                point[features::TRAFFIC + 2 * index + 1] =
                    scale.change(value - f64::from(previous));
            }
            // Precision: features only.
            #[allow(clippy::cast_possible_truncation)]
            {
                model.previous[index] = value as f32;
            }
        }
        if let Some(newest) = newest_ms {
            model.previous_ms = Some(model.previous_ms.map_or(newest, |p| p.max(newest)));
        }
        if let Some(dimension) =
            model
                .scored
                .observe(forest, point, DEVICE_THRESHOLD, &mut self.scratch)
        {
            let feature = layout.name(dimension);
            let traffic = dimension < features::TRAFFIC;
            let finding = Finding {
                model: "device",
                score: model.scored.score,
                threshold: DEVICE_THRESHOLD,
                feature,
                traffic,
            };
            alerts.push(alert(at, Some(device), Some(patient), finding));
        }
    }

    fn patient(
        &mut self,
        at: Timestamp,
        device: &DeviceId,
        class: DeviceClass,
        patient: &PatientId,
        readings: &[crate::Reading],
        alerts: &mut Vec<Alert>,
    ) {
        let relevant = readings.iter().any(|r| {
            features::slot(class, r.quantity).is_some() && usable(r.quantity, *r.value.expose())
        });
        if !relevant {
            return;
        }
        let now_ms = at.unix_millis();
        if !self.patients.contains_key(patient) {
            if self.patients.len() >= MAX_MODELS {
                self.untracked += 1;
                return;
            }
            self.patients.insert(
                patient.clone(),
                PatientModel {
                    scored: Scored::new(PATIENT_FEATURES.len(), now_ms),
                    slots: [Slot::default(); SLOTS],
                },
            );
        }
        let Some(model) = self.patients.get_mut(patient) else {
            return;
        };
        model.scored.seen_ms = model.scored.seen_ms.max(now_ms);
        let device_hash = {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            device.hash(&mut hasher);
            hasher.finish()
        };
        let mut newest_ms = i64::MIN;
        for reading in readings {
            let value = *reading.value.expose();
            let Some(slot) = features::slot(class, reading.quantity) else {
                continue;
            };
            if !usable(reading.quantity, value) {
                continue;
            }
            let time_ms = reading.time.unix_millis();
            let entry = &mut model.slots[slot];
            if entry.set && time_ms < entry.time_ms {
                continue;
            }
            newest_ms = newest_ms.max(time_ms);
            #[allow(clippy::cast_possible_truncation)]
            {
                *entry = Slot {
                    value: value as f32,
                    time_ms,
                    device: device_hash,
                    set: true,
                };
            }
        }
        if newest_ms == i64::MIN {
            return;
        }
        // The picture as of this message: what was measured within FRESH_MS of it.
        let mut fresh: [Option<f64>; SLOTS] = [None; SLOTS];
        let mut contributors: [u64; SLOTS] = [0; SLOTS];
        for (i, slot) in model.slots.iter().enumerate() {
            if slot.set && (newest_ms - slot.time_ms).abs() <= FRESH_MS {
                fresh[i] = Some(f64::from(slot.value));
                contributors[i] = slot.device;
            }
        }
        let first = contributors.iter().find(|c| **c != 0).copied();
        let joint = first.is_some_and(|first| contributors.iter().any(|c| *c != 0 && *c != first));
        if !joint {
            return;
        }
        let point = &mut self.point;
        point.clear();
        point.push(features::difference(fresh[0], fresh[1], 25.0));
        point.push(features::difference(fresh[2], fresh[3], 10.0));
        if let Some(dimension) = model.scored.observe(
            &self.patient_forest,
            point,
            PATIENT_THRESHOLD,
            &mut self.scratch,
        ) {
            let feature = PATIENT_FEATURES
                .get(dimension)
                .copied()
                .unwrap_or("unknown")
                .to_owned();
            let finding = Finding {
                model: "patient",
                score: model.scored.score,
                threshold: PATIENT_THRESHOLD,
                feature,
                traffic: false,
            };
            alerts.push(alert(at, None, Some(patient), finding));
        }
    }
}

/// Whether a reading takes part: finite and possible (the limits detector alerts on the rest,
/// and one impossible value must not teach the models anything).
fn usable(quantity: Quantity, value: f64) -> bool {
    value.is_finite() && quantity.check_range(value).is_ok()
}

impl Detector for Anomaly {
    fn name(&self) -> &'static str {
        "anomaly"
    }

    fn observe(&mut self, event: &Event, alerts: &mut Vec<Alert>) {
        let Event::Stored {
            at,
            device,
            class,
            patient,
            bytes,
            readings,
            ..
        } = event
        else {
            return;
        };
        self.forget_idle(at.unix_millis());
        self.device(*at, device, *class, patient, *bytes, readings, alerts);
        self.patient(*at, device, *class, patient, readings, alerts);
    }
}

/// What a model found, for its alert.
struct Finding {
    model: &'static str,
    score: f32,
    threshold: f32,
    /// The feature's name (never its value).
    feature: String,
    /// Whether the feature is one of traffic, not of a value.
    traffic: bool,
}

fn alert(
    at: Timestamp,
    device: Option<&DeviceId>,
    patient: Option<&PatientId>,
    finding: Finding,
) -> Alert {
    let Finding {
        model,
        score,
        threshold,
        feature,
        traffic,
    } = finding;
    let fact = |name: &str, value: String| Evidence::Fact {
        name: name.into(),
        value,
    };
    Alert {
        time: at,
        severity: if score >= MEDIUM_FROM {
            Severity::Medium
        } else {
            Severity::Low
        },
        kind: AlertKind::Anomaly,
        device: device.cloned(),
        patient: patient.cloned(),
        evidence: vec![
            fact("model", model.into()),
            fact("score", format!("{score:.2}")),
            fact("threshold", format!("{threshold:.2}")),
            fact("feature", feature),
        ],
        // Values unlike the sender's own: its reports may be spoofed (a guess a person checks);
        // traffic unlike its own names no technique.
        attack_technique: (!traffic).then(|| "T0856".to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::Phi;

    use super::super::plausibility::testing::{Noise, T0, at, fact};
    use super::*;
    use crate::Reading;

    const MONITOR: DeviceClass = DeviceClass::BedsideMonitor;
    const OXIMETER: DeviceClass = DeviceClass::PulseOximeter;

    fn stored(
        ms: i64,
        device: &str,
        class: DeviceClass,
        bytes: usize,
        values: &[(Quantity, f64)],
    ) -> Event {
        Event::Stored {
            at: at(ms + 120),
            device: DeviceId::new(device).unwrap(),
            class,
            patient: PatientId::new("p-1").unwrap(),
            sequence: u64::try_from(ms).unwrap(),
            bytes,
            readings: values
                .iter()
                .map(|&(quantity, value)| Reading {
                    quantity,
                    value: Phi::new(value),
                    time: at(ms),
                })
                .collect(),
            stored: values.len(),
            duplicates: 0,
        }
    }

    /// A patient's monitor and oximeter at 1 Hz from second `from` to `to`, physiologically
    /// consistent, with the devices' noise; `spo2_at(s)` is the true SpO2 at second `s`, and
    /// `forge(s)` replaces what the oximeter reports.
    struct Ward {
        noise: Noise,
        heart_rate: f64,
    }

    impl Ward {
        fn new(seed: u64) -> Ward {
            Ward {
                noise: Noise::new(seed),
                heart_rate: 78.0,
            }
        }

        fn seconds(
            &mut self,
            from: i64,
            to: i64,
            spo2_at: impl Fn(i64) -> f64,
            forge: impl Fn(i64) -> Option<f64>,
        ) -> Vec<Event> {
            let mut events = Vec::new();
            for s in from..to {
                let ms = s * 1000;
                self.heart_rate = (self.heart_rate + 0.2 * self.noise.within(1)).clamp(65.0, 95.0);
                let hr = (self.heart_rate + 0.5 * self.noise.within(1)).round();
                let spo2 = spo2_at(s);
                let monitor_spo2 = (spo2 + 0.5 * self.noise.within(1)).round().min(100.0);
                let respiration = (16.0 + self.noise.within(1)).round();
                let bytes = (420.0 + 4.0 * self.noise.within(2)) as usize;
                events.push(stored(
                    ms,
                    "mon-1",
                    MONITOR,
                    bytes,
                    &[
                        (Quantity::HeartRate, hr),
                        (Quantity::PulseRate, hr + self.noise.within(1)),
                        (Quantity::Spo2, monitor_spo2),
                        (Quantity::RespirationRate, respiration),
                    ],
                ));
                let oximeter_spo2 = forge(s)
                    .unwrap_or_else(|| (spo2 + 0.5 * self.noise.within(1)).round().min(100.0));
                events.push(stored(
                    ms + 300,
                    "oxi-1",
                    OXIMETER,
                    230,
                    &[
                        (Quantity::Spo2, oximeter_spo2),
                        (Quantity::PulseRate, hr + self.noise.within(2)),
                    ],
                ));
            }
            events
        }
    }

    fn run(detector: &mut Anomaly, events: &[Event]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for event in events {
            detector.observe(event, &mut alerts);
        }
        alerts
    }

    fn steady(_: i64) -> f64 {
        97.0
    }

    const MINUTE: i64 = 60;

    #[test]
    fn a_steady_patient_and_its_devices_are_quiet_for_hours() {
        let mut ward = Ward::new(1);
        let mut detector = Anomaly::default();
        let events = ward.seconds(0, 3 * 60 * MINUTE, steady, |_| None);
        let alerts = run(&mut detector, &events);
        assert!(alerts.is_empty(), "{alerts:?}");
        assert_eq!((detector.devices(), detector.patients()), (2, 1));
    }

    #[test]
    fn a_real_desaturation_seen_by_both_devices_is_not_anomalous() {
        // 20 minutes steady, then SpO2 falls to 85 % over 30 s for 5 minutes and recovers.
        let spo2 = |s: i64| match s {
            s if s < 20 * MINUTE => 97.0,
            s if s < 20 * MINUTE + 30 => 97.0 - 12.0 * (s - 20 * MINUTE) as f64 / 30.0,
            s if s < 25 * MINUTE => 85.0,
            s if s < 25 * MINUTE + 30 => 85.0 + 12.0 * (s - 25 * MINUTE) as f64 / 30.0,
            _ => 97.0,
        };
        let mut ward = Ward::new(2);
        let events = ward.seconds(0, 40 * MINUTE, spo2, |_| None);
        let alerts = run(&mut Anomaly::default(), &events);
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn an_oximeter_hiding_a_desaturation_the_monitor_sees_is_a_patient_anomaly() {
        let spo2 = |s: i64| if s < 20 * MINUTE { 97.0 } else { 85.0 };
        let forge = |s: i64| (s >= 20 * MINUTE).then_some(96.0 + (s % 3) as f64);
        let mut ward = Ward::new(3);
        let events = ward.seconds(0, 30 * MINUTE, spo2, forge);
        let alerts = run(&mut Anomaly::default(), &events);
        assert!(!alerts.is_empty());
        let alert = &alerts[0];
        assert_eq!(alert.kind, AlertKind::Anomaly);
        assert_eq!(alert.device, None);
        assert_eq!(alert.patient.as_ref().unwrap().as_str(), "p-1");
        assert_eq!(fact(alert, "model"), Some("patient"));
        assert_eq!(fact(alert, "feature"), Some("spo2_oximeter_minus_other"));
        assert_eq!(fact(alert, "threshold"), Some("0.65"));
        assert_eq!(alert.attack_technique.as_deref(), Some("T0856"));
        let latency = alert.time.unix_millis() - T0 - 20 * MINUTE * 1000;
        assert!(latency < 30_000, "{latency} ms");
        // Facts hold names and scores, never a value.
        for evidence in &alert.evidence {
            assert!(matches!(evidence, Evidence::Fact { .. }));
            if let Evidence::Fact { value, .. } = evidence {
                assert!(!value.contains("85") && !value.contains("97"), "{value}");
            }
        }
        // One episode, one alert, however long the lie lasts.
        assert_eq!(alerts.len(), 1, "{alerts:?}");
    }

    #[test]
    fn a_device_whose_messages_are_replaced_by_another_pattern_is_a_device_anomaly() {
        let mut ward = Ward::new(4);
        let mut events = ward.seconds(0, 20 * MINUTE, steady, |_| None);
        // An impostor on the monitor's identity: plausible values, but its own kind of
        // message (the heart rate alone, smaller, at 125 ± 1).
        events.extend((20 * MINUTE..25 * MINUTE).map(|s| {
            stored(
                s * 1000,
                "mon-1",
                MONITOR,
                160,
                &[(Quantity::HeartRate, 124.0 + (s % 3) as f64)],
            )
        }));
        let alerts = run(&mut Anomaly::default(), &events);
        let device: Vec<&Alert> = alerts.iter().filter(|a| a.device.is_some()).collect();
        assert_eq!(device.len(), 1, "{alerts:?}");
        let alert = device[0];
        assert_eq!(alert.device.as_ref().unwrap().as_str(), "mon-1");
        assert_eq!(alert.patient.as_ref().unwrap().as_str(), "p-1");
        assert_eq!(fact(alert, "model"), Some("device"));
        let latency = alert.time.unix_millis() - T0 - 20 * MINUTE * 1000;
        assert!(latency < 30_000, "{latency} ms");
        assert!(fact(alert, "feature").is_some());
    }

    #[test]
    fn nothing_is_judged_before_the_first_window() {
        // Odd from its first message: nothing to compare with yet.
        let events: Vec<Event> = (0..i64::from(hst::WINDOW))
            .map(|s| {
                let hr = if s % 2 == 0 { 60.0 } else { 160.0 };
                stored(
                    s * 1000,
                    "mon-1",
                    MONITOR,
                    100 + 50 * (s % 7) as usize,
                    &[(Quantity::HeartRate, hr)],
                )
            })
            .collect();
        assert!(run(&mut Anomaly::default(), &events).is_empty());
    }

    #[test]
    fn the_same_events_raise_the_same_alerts_and_the_seed_does_not_decide_detection() {
        let spo2 = |s: i64| if s < 20 * MINUTE { 97.0 } else { 85.0 };
        let forge = |s: i64| (s >= 20 * MINUTE).then_some(96.0 + (s % 3) as f64);
        let events = Ward::new(5).seconds(0, 25 * MINUTE, spo2, forge);
        let first = run(&mut Anomaly::default(), &events);
        let second = run(&mut Anomaly::default(), &events);
        assert!(!first.is_empty());
        assert_eq!(first, second);
        for seed in [1, 2, 3] {
            let alerts = run(&mut Anomaly::with_seed(seed), &events);
            assert!(
                alerts.iter().any(|a| fact(a, "model") == Some("patient")),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn memory_is_bounded_small_and_idle_models_are_forgotten() {
        assert!(
            Anomaly::bytes_per_device() < 2_400,
            "{}",
            Anomaly::bytes_per_device()
        );
        assert!(
            Anomaly::bytes_per_patient() < 2_400,
            "{}",
            Anomaly::bytes_per_patient()
        );
        let mut detector = Anomaly::default();
        let mut ward = Ward::new(6);
        run(&mut detector, &ward.seconds(0, 10, steady, |_| None));
        assert_eq!((detector.devices(), detector.patients()), (2, 1));
        // An hour later, another device of another patient: the first ones are forgotten.
        let later = 62 * MINUTE * 1000;
        let mut other = stored(later, "oxi-2", OXIMETER, 230, &[(Quantity::Spo2, 97.0)]);
        if let Event::Stored { patient, .. } = &mut other {
            *patient = PatientId::new("p-2").unwrap();
        }
        run(&mut detector, &[other]);
        assert_eq!((detector.devices(), detector.patients()), (1, 1));
        let printed = format!("{detector:?}");
        assert!(
            printed.starts_with("Anomaly") && !printed.contains("97"),
            "{printed}"
        );
    }

    #[test]
    fn impossible_values_teach_nothing_and_other_events_are_ignored() {
        let mut detector = Anomaly::default();
        let mut alerts = Vec::new();
        detector.observe(
            &stored(
                0,
                "mon-1",
                MONITOR,
                400,
                &[(Quantity::Spo2, 120.0), (Quantity::HeartRate, f64::NAN)],
            ),
            &mut alerts,
        );
        detector.observe(
            &Event::Flooding {
                at: at(0),
                device: DeviceId::new("mon-1").unwrap(),
                over_for_ms: 1500,
            },
            &mut alerts,
        );
        assert!(alerts.is_empty());
        let model = &detector.devices[&DeviceId::new("mon-1").unwrap()];
        assert!(model.previous.iter().all(|v| v.is_nan()), "nothing kept");
        assert_eq!(detector.patients(), 0, "no usable joint reading");
    }
}
