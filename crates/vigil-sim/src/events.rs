//! Clinical events: real deteriorations of a patient, not attacks.
//!
//! An event has a kind, a start, a duration and a target (the value its main signal is driven to).
//! It fades in and out smoothly (a raised cosine over the kind's onset time, at most a third of the
//! event) and is over at its end: the physiology it touched is back to what it would have been
//! without it, except where a body compartment lags (interstitial glucose follows blood glucose
//! by minutes) or cannot change faster (blood glucose climbs back from a hypoglycaemia at most
//! 5 mg/dL a minute).
//!
//! Each event that starts leaves a [`GroundTruth`] record labelled `clinical_event`. Detection is
//! scored against these records, and an alert on one of them is a true clinical alert, never an
//! attack.

use serde::{Deserialize, Serialize};
use vigil_model::Quantity;

use crate::rng::SimRng;

/// Seconds in a day.
const DAY_S: f64 = 86_400.0;

/// The kinds of clinical event the simulator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClinicalEventKind {
    /// Sinus tachycardia (pain, anxiety, bleeding, sepsis): heart rate above 100 /min, the usual
    /// adult definition. Blood pressure and respiration rise a little with it.
    Tachycardia,
    /// Oxygen desaturation (hypoventilation, sputum plugging, apnoea): SpO2 below 90 %, with a
    /// compensatory rise of respiration and heart rate.
    Desaturation,
    /// Hypotension (hypovolaemia, sepsis, drugs): systolic pressure below 90 `mm[Hg]`, with the
    /// reflex tachycardia of shock (shock index, heart rate over systolic pressure, above 0.9;
    /// Allgöwer and Burri, Dtsch Med Wochenschr 1967;92:1947).
    Hypotension,
    /// Hypoglycaemia: blood glucose below 70 mg/dL (level 1) or 54 mg/dL (level 2; International
    /// Hypoglycaemia Study Group, Diabetes Care 2017;40:155), with the adrenergic rise of heart
    /// rate.
    Hypoglycaemia,
    /// An episode of atrial fibrillation: an irregular, usually faster ventricular rate, and a
    /// *pulse deficit* — beats that follow a short interval fill the ventricle too little to make
    /// a peripheral pulse, so a pulse oximeter counts fewer pulses than the ECG counts beats.
    /// Photoplethysmography under-reads heart rate in AF by about 7 /min on average, and more at
    /// fast rates, where more beats follow short intervals ("Real-world validation of
    /// smartphone-based photoplethysmography for heart rate monitoring in atrial fibrillation",
    /// 50 patients, 3184 paired recordings: −6.6 /min in AF vs −0.4 /min in sinus rhythm). The
    /// simulated deficit grows with the ventricular rate, from about 7 /min at 100 /min to about
    /// 18 /min at 160 /min.
    AtrialFibrillation,
    /// Fever: temperature to 38 °C or more, heart rate up about 7 /min and respiration up about
    /// 1.5 /min per °C (acutely admitted medical patients: 7.2 /min and 1.4 /min per °C, Jensen et
    /// al., Acute Med 2019;18:141; young adults 8.5 /min per °C, Karjalainen and Viitasalo, Arch
    /// Intern Med 1986;146:1169).
    Fever,
}

/// Why a scripted event is refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum EventError {
    /// Start before 0 or not a finite number.
    #[error("event start must be a finite time ≥ 0 s")]
    BadStart,
    /// Duration not positive and finite.
    #[error("event duration must be finite and > 0 s")]
    BadDuration,
    /// Target outside what this kind of event can mean (e.g. a "tachycardia" to 80 /min).
    #[error(
        "{kind} target must lie within {min}..={max} {unit}",
        unit = .kind.signal().spec().canonical_unit().ucum
    )]
    BadTarget {
        /// The kind.
        kind: ClinicalEventKind,
        /// Lowest accepted target.
        min: f64,
        /// Highest accepted target.
        max: f64,
    },
}

impl ClinicalEventKind {
    /// Every kind, in the order their effects compose (see [`crate::physiology`]).
    pub const ALL: &'static [ClinicalEventKind] = &[
        ClinicalEventKind::Fever,
        ClinicalEventKind::Hypoglycaemia,
        ClinicalEventKind::Hypotension,
        ClinicalEventKind::Desaturation,
        ClinicalEventKind::Tachycardia,
        ClinicalEventKind::AtrialFibrillation,
    ];

    /// Stable snake_case name, as in ground-truth records.
    pub fn key(self) -> &'static str {
        match self {
            ClinicalEventKind::Tachycardia => "tachycardia",
            ClinicalEventKind::Desaturation => "desaturation",
            ClinicalEventKind::Hypotension => "hypotension",
            ClinicalEventKind::Hypoglycaemia => "hypoglycaemia",
            ClinicalEventKind::AtrialFibrillation => "atrial_fibrillation",
            ClinicalEventKind::Fever => "fever",
        }
    }

    /// The quantity the event's target is expressed in, in its canonical unit. Hypoglycaemia's
    /// target is blood glucose ([`Quantity::GlucoseCapillary`]); a CGM sees it minutes later in
    /// interstitial glucose.
    pub fn signal(self) -> Quantity {
        match self {
            ClinicalEventKind::Tachycardia | ClinicalEventKind::AtrialFibrillation => {
                Quantity::HeartRate
            }
            ClinicalEventKind::Desaturation => Quantity::Spo2,
            ClinicalEventKind::Hypotension => Quantity::NibpSystolic,
            ClinicalEventKind::Hypoglycaemia => Quantity::GlucoseCapillary,
            ClinicalEventKind::Fever => Quantity::BodyTemperature,
        }
    }

    /// Targets a scripted event may ask for: the kind's own definition on one side, a survivable
    /// extreme on the other.
    pub fn target_range(self) -> (f64, f64) {
        match self {
            ClinicalEventKind::Tachycardia => (101.0, 200.0),
            ClinicalEventKind::Desaturation => (60.0, 89.0),
            ClinicalEventKind::Hypotension => (50.0, 89.0),
            ClinicalEventKind::Hypoglycaemia => (25.0, 69.0),
            ClinicalEventKind::AtrialFibrillation => (60.0, 200.0),
            ClinicalEventKind::Fever => (38.0, 41.5),
        }
    }

    /// A typical target, for scripts that do not care.
    pub fn typical_target(self) -> f64 {
        match self {
            ClinicalEventKind::Tachycardia => 130.0,
            ClinicalEventKind::Desaturation => 85.0,
            ClinicalEventKind::Hypotension => 80.0,
            ClinicalEventKind::Hypoglycaemia => 50.0,
            ClinicalEventKind::AtrialFibrillation => 125.0,
            ClinicalEventKind::Fever => 39.0,
        }
    }

    /// How long the event takes to develop (and to resolve), seconds, before the cap of a third
    /// of the event. Arrhythmias start from one beat to the next; saturation falls within half a
    /// minute of apnoea; a pressure drop takes minutes; fever rises over about an hour. Glucose
    /// falls at most about 5 mg/dL per minute, so a hypoglycaemia that begins from a high glucose
    /// develops over longer than these 10 minutes (see [`ClinicalEvent::onset`]).
    pub fn onset_s(self) -> f64 {
        match self {
            ClinicalEventKind::AtrialFibrillation => 5.0,
            ClinicalEventKind::Tachycardia | ClinicalEventKind::Desaturation => 30.0,
            ClinicalEventKind::Hypotension => 120.0,
            ClinicalEventKind::Hypoglycaemia => 600.0,
            ClinicalEventKind::Fever => 3600.0,
        }
    }

    /// Durations (seconds) and targets of generated events.
    fn generated_ranges(self) -> ((f64, f64), (f64, f64)) {
        match self {
            ClinicalEventKind::Tachycardia => ((120.0, 1200.0), (110.0, 150.0)),
            ClinicalEventKind::Desaturation => ((60.0, 360.0), (80.0, 88.0)),
            ClinicalEventKind::Hypotension => ((600.0, 3600.0), (70.0, 85.0)),
            ClinicalEventKind::Hypoglycaemia => ((1800.0, 5400.0), (40.0, 62.0)),
            ClinicalEventKind::AtrialFibrillation => ((600.0, 10_800.0), (100.0, 150.0)),
            ClinicalEventKind::Fever => ((7200.0, 28_800.0), (38.3, 39.8)),
        }
    }
}

impl std::fmt::Display for ClinicalEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// Whether an event was asked for by the caller or drawn from the run's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOrigin {
    /// Given by the caller.
    Scripted,
    /// Drawn from the patient's event stream.
    Generated,
}

/// One clinical event of one patient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClinicalEvent {
    kind: ClinicalEventKind,
    start: f64,
    duration: f64,
    target: f64,
    origin: EventOrigin,
    /// Time to develop and to resolve, s, before the cap of a third of the event.
    onset: f64,
}

impl ClinicalEvent {
    /// A scripted event: `kind` starts at simulated second `start`, lasts `duration` seconds and
    /// drives its signal to `target` (canonical unit of [`ClinicalEventKind::signal`]).
    pub fn new(
        kind: ClinicalEventKind,
        start: f64,
        duration: f64,
        target: f64,
    ) -> Result<Self, EventError> {
        if !start.is_finite() || start < 0.0 {
            return Err(EventError::BadStart);
        }
        if !duration.is_finite() || duration <= 0.0 {
            return Err(EventError::BadDuration);
        }
        let (min, max) = kind.target_range();
        if !(min..=max).contains(&target) {
            return Err(EventError::BadTarget { kind, min, max });
        }
        Ok(Self {
            kind,
            start,
            duration,
            target,
            origin: EventOrigin::Scripted,
            onset: kind.onset_s(),
        })
    }

    /// A scripted event with the kind's typical target.
    pub fn typical(kind: ClinicalEventKind, start: f64, duration: f64) -> Result<Self, EventError> {
        Self::new(kind, start, duration, kind.typical_target())
    }

    /// The kind.
    pub fn kind(&self) -> ClinicalEventKind {
        self.kind
    }

    /// Start, simulated seconds since the run began.
    pub fn start(&self) -> f64 {
        self.start
    }

    /// End, simulated seconds since the run began.
    pub fn end(&self) -> f64 {
        self.start + self.duration
    }

    /// The value the event drives its signal to.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// Scripted or generated.
    pub fn origin(&self) -> EventOrigin {
        self.origin
    }

    /// How long the event takes to develop and to resolve, s: the kind's onset, or longer where
    /// the body cannot change faster (a glucose fall from a high level), and at most a third of
    /// the event.
    pub fn onset(&self) -> f64 {
        self.onset.min(self.duration / 3.0)
    }

    /// Sets the onset when the event begins, from the state of the body then. A generated event's
    /// duration grows by the extra onset and offset, so that its plateau keeps the length drawn.
    pub(crate) fn shape(&mut self, onset: f64) {
        if onset > self.onset {
            if self.origin == EventOrigin::Generated {
                self.duration += 2.0 * (onset - self.onset);
            }
            self.onset = onset;
        }
    }

    /// How fully the event is present at time `t`: 0 outside it, 1 on its plateau, a raised
    /// cosine in between (no step in value or slope, as a body does not step).
    pub fn envelope(&self, t: f64) -> f64 {
        let end = self.end();
        if t <= self.start || t >= end {
            return 0.0;
        }
        let ramp = self.onset();
        let x = ((t - self.start) / ramp).min((end - t) / ramp).min(1.0);
        0.5 - 0.5 * (std::f64::consts::PI * x).cos()
    }

    /// The ground-truth record of this event for `patient`.
    pub fn record(&self, patient: usize) -> GroundTruth {
        GroundTruth::ClinicalEvent(ClinicalEventRecord {
            event: self.kind,
            patient,
            start: self.start,
            end: self.end(),
            signal: self.kind.signal(),
            target: self.target,
            onset: self.onset(),
            origin: self.origin,
        })
    }
}

/// What really happened in a run, for scoring detection. Serialised with a `kind` tag:
/// `{"kind":"clinical_event","event":"desaturation","patient":3,"start":40.0,"end":100.0,…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroundTruth {
    /// A real clinical event of a patient: an alert on it is a true clinical alert, not an attack.
    ClinicalEvent(ClinicalEventRecord),
}

impl GroundTruth {
    /// The clinical event this record describes, if it is one.
    pub fn clinical_event(&self) -> Option<&ClinicalEventRecord> {
        match self {
            GroundTruth::ClinicalEvent(record) => Some(record),
        }
    }
}

/// The ground truth of one clinical event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClinicalEventRecord {
    /// What happened.
    pub event: ClinicalEventKind,
    /// The patient's index in the ward.
    pub patient: usize,
    /// Start, simulated seconds since the run began.
    pub start: f64,
    /// End, simulated seconds since the run began.
    pub end: f64,
    /// The quantity driven to `target`.
    pub signal: Quantity,
    /// The value `signal` is driven to, in its canonical unit.
    pub target: f64,
    /// Seconds the event takes to develop after `start` and to resolve before `end`.
    pub onset: f64,
    /// Scripted by the caller or drawn from the seed.
    pub origin: EventOrigin,
}

/// Draws events as a Poisson process, lazily, so that a run of any length needs no horizon.
#[derive(Debug, Clone)]
struct Generator {
    rng: SimRng,
    mean_gap_s: f64,
    weights: [(ClinicalEventKind, f64); 6],
    /// The next event, already drawn.
    next: Option<ClinicalEvent>,
    /// The arrival time of the last event drawn, before any shift: a later draw never starts
    /// before it, so every event starting by `t` has been drawn once the clock has passed `t`.
    clock: f64,
    /// End of the last generated event of each kind (index as in `weights`), so that one kind
    /// does not overlap itself.
    last_end: [f64; 6],
}

impl Generator {
    fn draw(&mut self) -> Option<ClinicalEvent> {
        // Four draws per event, whatever their values: the stream stays aligned.
        self.clock += self.rng.exponential(self.mean_gap_s);
        let pick = self.rng.uniform();
        let u_duration = self.rng.uniform();
        let u_target = self.rng.uniform();
        let total: f64 = self.weights.iter().map(|(_, w)| w).sum();
        let mut acc = 0.0;
        let mut chosen = self.weights.len() - 1;
        for (i, (_, w)) in self.weights.iter().enumerate() {
            acc += w / total;
            if pick < acc {
                chosen = i;
                break;
            }
        }
        let (kind, _) = self.weights.get(chosen).copied()?;
        let ((d_lo, d_hi), (t_lo, t_hi)) = kind.generated_ranges();
        let start = self.clock.max(self.last_end.get(chosen).copied()? + 600.0);
        let duration = d_lo + (d_hi - d_lo) * u_duration;
        if let Some(slot) = self.last_end.get_mut(chosen) {
            *slot = start + duration;
        }
        Some(ClinicalEvent {
            kind,
            start,
            duration,
            target: t_lo + (t_hi - t_lo) * u_target,
            origin: EventOrigin::Generated,
            onset: kind.onset_s(),
        })
    }
}

/// One patient's clinical events: scripted ones, generated ones, or both.
#[derive(Debug, Clone, Default)]
pub struct ClinicalEventSchedule {
    /// Events not yet started, latest first (popped from the back).
    pending: Vec<ClinicalEvent>,
    generator: Option<Generator>,
    active: Vec<ClinicalEvent>,
}

impl ClinicalEventSchedule {
    /// No events.
    pub fn none() -> Self {
        Self::default()
    }

    /// Exactly these events.
    pub fn scripted(events: impl IntoIterator<Item = ClinicalEvent>) -> Self {
        Self::none().with_scripted(events)
    }

    /// Events drawn at `events_per_day` per patient-day from `rng`. `diabetic` patients have
    /// hypoglycaemia six times as often as others (it is mostly a complication of insulin).
    pub fn generated(rng: SimRng, events_per_day: f64, diabetic: bool) -> Self {
        let mut schedule = Self::none();
        if events_per_day.is_finite() && events_per_day > 0.0 {
            let hypo = if diabetic { 0.30 } else { 0.05 };
            let mut generator = Generator {
                rng,
                mean_gap_s: DAY_S / events_per_day,
                weights: [
                    (ClinicalEventKind::Tachycardia, 0.22),
                    (ClinicalEventKind::Desaturation, 0.22),
                    (ClinicalEventKind::Hypotension, 0.14),
                    (ClinicalEventKind::Hypoglycaemia, hypo),
                    (ClinicalEventKind::AtrialFibrillation, 0.14),
                    (ClinicalEventKind::Fever, 0.12),
                ],
                next: None,
                clock: 0.0,
                last_end: [f64::NEG_INFINITY; 6],
            };
            generator.next = generator.draw();
            schedule.generator = Some(generator);
        }
        schedule
    }

    /// Adds scripted events.
    pub fn with_scripted(mut self, events: impl IntoIterator<Item = ClinicalEvent>) -> Self {
        for event in events {
            self.enqueue(event);
        }
        self
    }

    /// Inserts a pending event, latest first; among equal starts the earlier enqueued starts
    /// first.
    fn enqueue(&mut self, event: ClinicalEvent) {
        let at = self.pending.partition_point(|e| e.start > event.start);
        self.pending.insert(at, event);
    }

    /// Events present at some time in `(.., t]` that have not ended by `t`: moves those that
    /// started to the active list, after `shape` has fitted them to the body, and hands them to
    /// `started` (for ground truth).
    pub(crate) fn advance(
        &mut self,
        t: f64,
        started: &mut Vec<ClinicalEvent>,
        shape: &mut dyn FnMut(&mut ClinicalEvent),
    ) {
        // Generated events may start later than drawn (a kind does not overlap itself), so
        // everything that arrived by `t` is queued before anything is started.
        let mut arrived = Vec::new();
        if let Some(generator) = self.generator.as_mut() {
            while let Some(event) = generator.next {
                if generator.clock > t {
                    break;
                }
                arrived.push(event);
                generator.next = generator.draw();
            }
        }
        for event in arrived {
            self.enqueue(event);
        }
        while let Some(mut event) = self.pending.last().copied() {
            if event.start > t {
                break;
            }
            self.pending.pop();
            shape(&mut event);
            started.push(event);
            self.active.push(event);
        }
        self.active.retain(|e| e.end() > t);
    }

    /// The events under way.
    pub fn active(&self) -> &[ClinicalEvent] {
        &self.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_smooth_and_confined_to_the_event() {
        let e = ClinicalEvent::typical(ClinicalEventKind::Desaturation, 40.0, 60.0).unwrap();
        assert_eq!(e.envelope(40.0), 0.0);
        assert_eq!(e.envelope(100.0), 0.0);
        assert_eq!(e.envelope(200.0), 0.0);
        // A 60 s event ramps over 20 s (a third), not the kind's 30 s.
        assert!((e.envelope(60.0) - 1.0).abs() < 1e-12);
        assert!((e.envelope(70.0) - 1.0).abs() < 1e-12);
        assert!((e.envelope(50.0) - 0.5).abs() < 1e-12);
        let mut previous = 0.0;
        for i in 0..=200 {
            let v = e.envelope(40.0 + f64::from(i) * 0.1);
            assert!((v - previous).abs() < 0.02, "no step at {i}");
            previous = v;
        }
    }

    #[test]
    fn scripted_events_are_validated() {
        use ClinicalEventKind as K;
        assert_eq!(
            ClinicalEvent::new(K::Tachycardia, 0.0, 10.0, 80.0),
            Err(EventError::BadTarget {
                kind: K::Tachycardia,
                min: 101.0,
                max: 200.0
            })
        );
        assert_eq!(
            ClinicalEvent::new(K::Fever, -1.0, 10.0, 39.0),
            Err(EventError::BadStart)
        );
        assert_eq!(
            ClinicalEvent::new(K::Fever, 0.0, f64::NAN, 39.0),
            Err(EventError::BadDuration)
        );
        let err = ClinicalEvent::new(K::Hypoglycaemia, 0.0, 10.0, 90.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hypoglycaemia target must lie within 25..=69 mg/dL"
        );
        for kind in K::ALL {
            let (lo, hi) = kind.target_range();
            assert!((lo..=hi).contains(&kind.typical_target()));
            let ((_, _), (t_lo, t_hi)) = kind.generated_ranges();
            assert!(lo <= t_lo && t_hi <= hi, "{kind}");
        }
    }

    #[test]
    fn ground_truth_is_labelled_clinical() {
        let e = ClinicalEvent::new(ClinicalEventKind::Desaturation, 40.0, 60.0, 85.0).unwrap();
        let json = serde_json::to_value(e.record(3)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "clinical_event",
                "event": "desaturation",
                "patient": 3,
                "start": 40.0,
                "end": 100.0,
                "signal": "spo2",
                "target": 85.0,
                "onset": 20.0,
                "origin": "scripted"
            })
        );
        let back: GroundTruth = serde_json::from_value(json).unwrap();
        assert_eq!(back, e.record(3));
        assert!(
            !serde_json::to_string(&e.record(3))
                .unwrap()
                .contains("attack")
        );
    }

    #[test]
    fn schedule_starts_and_ends_events() {
        let a = ClinicalEvent::typical(ClinicalEventKind::Fever, 100.0, 50.0).unwrap();
        let b = ClinicalEvent::typical(ClinicalEventKind::Tachycardia, 10.0, 20.0).unwrap();
        let mut s = ClinicalEventSchedule::scripted([a, b]);
        let mut started = Vec::new();
        s.advance(5.0, &mut started, &mut |_| {});
        assert!(started.is_empty() && s.active().is_empty());
        s.advance(15.0, &mut started, &mut |_| {});
        assert_eq!(started, vec![b]);
        assert_eq!(s.active(), &[b]);
        s.advance(120.0, &mut started, &mut |_| {});
        assert_eq!(started, vec![b, a]);
        assert_eq!(s.active(), &[a]);
        s.advance(150.0, &mut started, &mut |_| {});
        assert!(s.active().is_empty());
    }

    #[test]
    fn generated_events_come_at_the_asked_rate_without_overlapping_their_kind() {
        let rng = SimRng::derive(5, "events", &[0]);
        let mut s = ClinicalEventSchedule::generated(rng, 4.0, true);
        let mut started = Vec::new();
        let days = 200.0;
        let mut t = 0.0;
        while t < days * DAY_S {
            t += 3600.0;
            s.advance(t, &mut started, &mut |_| {});
        }
        for pair in started.windows(2) {
            assert!(pair[0].start <= pair[1].start, "events start in order");
        }
        let rate = started.len() as f64 / days;
        // Shifts to avoid self-overlap stretch gaps a little; the rate stays near the target.
        assert!((3.0..=4.5).contains(&rate), "{rate} per day");
        for kind in ClinicalEventKind::ALL {
            let mine: Vec<_> = started.iter().filter(|e| e.kind == *kind).collect();
            assert!(!mine.is_empty(), "{kind} never generated");
            for pair in mine.windows(2) {
                assert!(pair[1].start >= pair[0].end(), "{kind} overlaps itself");
            }
            for e in mine {
                let (lo, hi) = kind.target_range();
                assert!((lo..=hi).contains(&e.target));
                assert_eq!(e.origin, EventOrigin::Generated);
            }
        }
    }
}
