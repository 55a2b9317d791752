//! Attack scenarios: what an attacker does, to whom, from when to when — and the ground truth
//! that records it, so that detection can be measured against it.
//!
//! A scenario is JSON lines, one step per line:
//!
//! ```json
//! {"attack": "hide_desaturation", "patient": 2, "at": 60, "duration": 90}
//! {"attack": "flood", "patient": 0, "class": "bedside_monitor", "at": 120, "duration": 20}
//! ```
//!
//! `patient` is the patient's index in the ward; `class` picks which of their devices (each
//! attack has a natural default); `at` and `duration` are simulated seconds. Steps are
//! validated against the ward before the run: a step that names a patient or device the ward
//! does not have is refused with its line number.

use serde::{Deserialize, Serialize};
use vigil_model::{DeviceClass, Quantity};

use crate::events::{ClinicalEvent, ClinicalEventKind};
use crate::ward::{ScriptedEvent, Ward};

/// What the attacker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackKind {
    /// A second connection with the device's stolen certificate and key, sending plausible data.
    StolenCertificate,
    /// Captured messages of the device sent again, byte for byte.
    Replay,
    /// The oximeter reports a normal SpO2 while the patient desaturates (the run scripts the
    /// desaturation): plausible, false, and dangerous.
    HideDesaturation,
    /// The CGM reports hypoglycaemia the patient does not have, to provoke treatment.
    FakeHypoglycaemia,
    /// Values no patient can have.
    ImplausibleInjection,
    /// The device sends as fast as it can.
    Flood,
    /// The device publishes to another device's topic.
    ForeignTopic,
    /// The device sends bytes that are not MQTT.
    MalformedPackets,
    /// Enrolment again with the device's spent token.
    ReusedToken,
    /// Enrolment with a made-up token.
    ForgedToken,
}

impl AttackKind {
    /// Every attack, in a stable order.
    pub const ALL: &'static [AttackKind] = &[
        AttackKind::StolenCertificate,
        AttackKind::Replay,
        AttackKind::HideDesaturation,
        AttackKind::FakeHypoglycaemia,
        AttackKind::ImplausibleInjection,
        AttackKind::Flood,
        AttackKind::ForeignTopic,
        AttackKind::MalformedPackets,
        AttackKind::ReusedToken,
        AttackKind::ForgedToken,
    ];

    /// Stable snake_case name.
    pub fn key(self) -> &'static str {
        match self {
            AttackKind::StolenCertificate => "stolen_certificate",
            AttackKind::Replay => "replay",
            AttackKind::HideDesaturation => "hide_desaturation",
            AttackKind::FakeHypoglycaemia => "fake_hypoglycaemia",
            AttackKind::ImplausibleInjection => "implausible_injection",
            AttackKind::Flood => "flood",
            AttackKind::ForeignTopic => "foreign_topic",
            AttackKind::MalformedPackets => "malformed_packets",
            AttackKind::ReusedToken => "reused_token",
            AttackKind::ForgedToken => "forged_token",
        }
    }

    /// The device class attacked when a step names none.
    pub fn default_class(self) -> DeviceClass {
        match self {
            AttackKind::FakeHypoglycaemia => DeviceClass::ContinuousGlucoseMonitor,
            AttackKind::HideDesaturation | AttackKind::Replay | AttackKind::StolenCertificate => {
                DeviceClass::PulseOximeter
            }
            _ => DeviceClass::BedsideMonitor,
        }
    }

    /// Whether the attack changes the readings the device sends (rather than what happens on
    /// the network).
    pub fn alters_readings(self) -> bool {
        matches!(
            self,
            AttackKind::HideDesaturation
                | AttackKind::FakeHypoglycaemia
                | AttackKind::ImplausibleInjection
        )
    }
}

/// One step of a scenario, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackStep {
    /// What.
    pub attack: AttackKind,
    /// Whose device (patient index in the ward).
    pub patient: usize,
    /// Which of their devices (default: [`AttackKind::default_class`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<DeviceClass>,
    /// Start, simulated seconds.
    pub at: f64,
    /// How long, seconds.
    pub duration: f64,
}

/// A step resolved against a ward: the device index it targets.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAttack {
    /// The step.
    pub step: AttackStep,
    /// The attacked device's index in the ward.
    pub device: usize,
}

impl PlannedAttack {
    /// Start, simulated seconds.
    pub fn start(&self) -> f64 {
        self.step.at
    }

    /// End, simulated seconds.
    pub fn end(&self) -> f64 {
        self.step.at + self.step.duration
    }

    /// Whether the attack is under way at simulated time `t`.
    pub fn active(&self, t: f64) -> bool {
        t >= self.start() && t < self.end()
    }

    /// The reading the device sends instead of `truth` while the attack runs, or `None` to send
    /// the truth. `n` varies the forged value from one reading to the next (a constant would be
    /// the first thing a detector notices).
    pub fn alter(&self, quantity: Quantity, truth: f64, n: u64) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        let wobble = (n % 3) as f64; // 0, 1, 2
        match (self.step.attack, quantity) {
            // A healthy, unremarkable SpO2 over the real desaturation.
            (AttackKind::HideDesaturation, Quantity::Spo2) => Some(96.0 + wobble),
            // Level 2 hypoglycaemia (< 54 mg/dL; International Hypoglycaemia Study Group, Diabetes
            // Care 2017;40:155): the value that would prompt treatment.
            (AttackKind::FakeHypoglycaemia, Quantity::GlucoseInterstitial) => {
                Some(48.0 + 2.0 * wobble)
            }
            // A saturation above 100 % or a heart rate beyond any recorded human one.
            (AttackKind::ImplausibleInjection, Quantity::Spo2) => Some(120.0 + wobble),
            (AttackKind::ImplausibleInjection, Quantity::HeartRate) => Some(650.0 + wobble),
            _ => {
                let _ = truth;
                None
            }
        }
    }
}

/// Why a scenario is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// A line is not a valid step.
    #[error("scenario line {line}: {problem}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong (never the line's content).
        problem: String,
    },
    /// A step names a patient, or a device class of a patient, that the ward does not have.
    #[error("scenario line {line}: patient {patient} has no {class} in this ward")]
    NoSuchDevice {
        /// 1-based line number.
        line: usize,
        /// The patient index.
        patient: usize,
        /// The class looked for.
        class: DeviceClass,
    },
    /// A time is negative, not finite, or the duration is not positive.
    #[error("scenario line {line}: `at` must be ≥ 0 and `duration` > 0, both finite")]
    Time {
        /// 1-based line number.
        line: usize,
    },
}

/// A list of attack steps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scenario {
    /// The steps, in the order written.
    pub steps: Vec<AttackStep>,
}

impl Scenario {
    /// Parses JSON lines (blank lines and lines starting with `#` are skipped).
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let mut steps = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let step: AttackStep =
                serde_json::from_str(trimmed).map_err(|e| ScenarioError::Syntax {
                    line: line_no,
                    // serde_json's message names the field and column, not the value.
                    problem: e.to_string(),
                })?;
            let times_ok = step.at.is_finite()
                && step.at >= 0.0
                && step.duration.is_finite()
                && step.duration > 0.0;
            if !times_ok {
                return Err(ScenarioError::Time { line: line_no });
            }
            steps.push(step);
        }
        Ok(Scenario { steps })
    }

    /// Writes the scenario as JSON lines.
    pub fn to_json_lines(&self) -> String {
        self.steps
            .iter()
            .filter_map(|step| serde_json::to_string(step).ok())
            .map(|line| line + "\n")
            .collect()
    }

    /// Resolves each step to the device it attacks.
    pub fn plan(&self, ward: &Ward) -> Result<Vec<PlannedAttack>, ScenarioError> {
        self.steps
            .iter()
            .enumerate()
            .map(|(index, step)| {
                let class = step.class.unwrap_or_else(|| step.attack.default_class());
                let device = ward
                    .devices()
                    .iter()
                    .position(|d| d.patient() == step.patient && d.class() == class)
                    .ok_or(ScenarioError::NoSuchDevice {
                        line: index + 1,
                        patient: step.patient,
                        class,
                    })?;
                Ok(PlannedAttack {
                    step: step.clone(),
                    device,
                })
            })
            .collect()
    }

    /// The clinical events the steps need: a desaturation under every hidden desaturation
    /// (developing before the attack and resolving after it, so that the attack hides an event
    /// at its depth).
    pub fn clinical_events(&self) -> Vec<ScriptedEvent> {
        self.steps
            .iter()
            .filter(|step| step.attack == AttackKind::HideDesaturation)
            .filter_map(|step| {
                // The saturation takes up to its onset time to fall and to recover: start that
                // much before the attack and end that much after, so the attack hides the
                // depth of the event, not only its edges.
                let onset = ClinicalEventKind::Desaturation.onset_s();
                let start = (step.at - onset).max(0.0);
                let event = ClinicalEvent::typical(
                    ClinicalEventKind::Desaturation,
                    start,
                    step.at + step.duration + onset - start,
                )
                .ok()?;
                Some(ScriptedEvent {
                    patient: step.patient,
                    event,
                })
            })
            .collect()
    }

    /// The demo's timeline for `ward` over about `length` simulated seconds: every attack once,
    /// spread out so that each can be told apart, each on a patient who has the device it
    /// needs (an attack whose device nobody has is left out: a ward without a CGM cannot have
    /// its glucose faked).
    pub fn demo(ward: &Ward, length: f64) -> Scenario {
        Scenario::rounds(ward, length, 1)
    }

    /// `rounds` of the demo's timeline one after the other over `length` simulated seconds,
    /// each round on other patients (for scoring detection over many attacks).
    pub fn rounds(ward: &Ward, length: f64, rounds: usize) -> Scenario {
        let rounds = rounds.max(1);
        #[allow(clippy::cast_precision_loss)]
        let span = length / rounds as f64;
        let mut steps = Vec::new();
        for round in 0..rounds {
            #[allow(clippy::cast_precision_loss)]
            let start = span * round as f64;
            Scenario::round(ward, start, span, round * 11, rounds > 1, &mut steps);
        }
        Scenario { steps }
    }

    /// One round of every attack within `[start, start + span)`, appended to `steps`: the n-th
    /// attack on the first patient from `first + n` on who has its device and, when `scored`
    /// (several rounds, for `vigil eval`), for an attack that alters readings, whose device is
    /// free for it (see [`Scenario::free_for_alteration`]).
    fn round(
        ward: &Ward,
        start: f64,
        span: f64,
        first: usize,
        scored: bool,
        steps: &mut Vec<AttackStep>,
    ) {
        let slot = (span / 12.0).max(2.0);
        let patients = ward.patients().len().max(1);
        let timeline = [
            (AttackKind::ForgedToken, 1.0, 1.0),
            (AttackKind::HideDesaturation, 2.5, slot * 3.0),
            (AttackKind::StolenCertificate, 2.0, slot),
            (AttackKind::ImplausibleInjection, 3.0, slot * 0.5),
            (AttackKind::ForeignTopic, 4.0, 1.0),
            (AttackKind::Replay, 5.0, slot * 0.5),
            // Long enough for the hub to cut the device off (3 s over its rate limit).
            (AttackKind::Flood, 6.0, slot.max(6.0)),
            (AttackKind::FakeHypoglycaemia, 7.0, slot * 2.0),
            (AttackKind::MalformedPackets, 7.5, 1.0),
            (AttackKind::ReusedToken, 8.0, 1.0),
            (AttackKind::ImplausibleInjection, 9.0, slot * 0.5),
        ];
        for (n, &(attack, at, duration)) in timeline.iter().enumerate() {
            let class = attack.default_class();
            let at = start + slot * at;
            let chosen = (0..patients)
                .map(|k| (first + n + k) % patients)
                .filter(|&p| {
                    ward.devices()
                        .iter()
                        .any(|d| d.patient() == p && d.class() == class)
                })
                .find_map(|patient| {
                    if !attack.alters_readings() {
                        return Some((patient, duration.min(span - (at - start)).max(1.0)));
                    }
                    // An alteration must last long enough for the device to report during it
                    // (a CGM reports every 5 minutes): twice the period of the device's fastest
                    // channel, which carries what these attacks alter, not its battery level.
                    let period = Scenario::period(ward, patient, class);
                    let duration = duration.max(if period.is_finite() {
                        2.0 * period
                    } else {
                        0.0
                    });
                    let free = !scored
                        || Scenario::free_for_alteration(ward, steps, patient, class, at, period);
                    free.then_some((patient, duration))
                });
            if let Some((patient, duration)) = chosen {
                steps.push(AttackStep {
                    attack,
                    patient,
                    class: None,
                    at,
                    duration,
                });
            }
        }
    }

    /// The period of the fastest channel of `patient`'s device of `class`, seconds.
    fn period(ward: &Ward, patient: usize, class: DeviceClass) -> f64 {
        ward.devices()
            .iter()
            .filter(|d| d.patient() == patient && d.class() == class)
            .flat_map(|d| d.channels().map(|(_, period)| period))
            .fold(f64::INFINITY, f64::min)
    }

    /// Whether an alteration of `patient`'s device of `class` starting at `at` has a true
    /// reading to differ from: the device has reported before `at` (a real device has a
    /// history; the simulated ones start with the run), and its last alteration ended at least
    /// a period before (so one true reading came between). Otherwise the new attack's first
    /// forged reading is the device's first reading or the previous attack's, and no detector
    /// of changes could tell when it began: a scored attack should be one that is there to see.
    fn free_for_alteration(
        ward: &Ward,
        steps: &[AttackStep],
        patient: usize,
        class: DeviceClass,
        at: f64,
        period: f64,
    ) -> bool {
        let period = if period.is_finite() { period } else { 0.0 };
        let reported = ward
            .devices()
            .iter()
            .filter(|d| d.patient() == patient && d.class() == class)
            .all(|d| d.next_report() < at);
        reported
            && steps.iter().all(|s| {
                !(s.attack.alters_readings()
                    && s.patient == patient
                    && s.attack.default_class() == class)
                    || s.at + s.duration + period <= at
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ward::{DeviceMix, WardConfig};

    fn ward() -> Ward {
        Ward::new(
            7,
            WardConfig {
                patients: 3,
                devices: DeviceMix::Uniform(vec![
                    DeviceClass::BedsideMonitor,
                    DeviceClass::PulseOximeter,
                ]),
                ..WardConfig::default()
            },
        )
        .unwrap()
    }

    /// A ward of `patients` with a monitor and an oximeter each, and a CGM every other one.
    fn every_other_with_cgm(seed: u64, patients: usize) -> Ward {
        Ward::new(
            seed,
            WardConfig {
                patients,
                devices: DeviceMix::PerPatient(vec![
                    vec![DeviceClass::BedsideMonitor, DeviceClass::PulseOximeter],
                    vec![
                        DeviceClass::BedsideMonitor,
                        DeviceClass::PulseOximeter,
                        DeviceClass::ContinuousGlucoseMonitor,
                    ],
                ]),
                ..WardConfig::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn scored_rounds_alter_a_device_only_after_a_true_reading() {
        // Two of four patients have a CGM (5-minute readings); 8 rounds in 12 minutes would put
        // a fake hypoglycaemia on each CGM every 3 minutes, each lasting 10.
        let ward = every_other_with_cgm(5, 4);
        let scenario = Scenario::rounds(&ward, 720.0, 8);
        let plan = scenario.plan(&ward).unwrap();
        let altering: Vec<&PlannedAttack> = plan
            .iter()
            .filter(|a| a.step.attack.alters_readings())
            .collect();
        let hypos = altering
            .iter()
            .filter(|a| a.step.attack == AttackKind::FakeHypoglycaemia)
            .count();
        assert!(
            (1..8).contains(&hypos),
            "{hypos} of 8 rounds' fake hypoglycaemias"
        );
        for (i, a) in altering.iter().enumerate() {
            let device = &ward.devices()[a.device];
            let period = device
                .channels()
                .map(|(_, p)| p)
                .fold(f64::INFINITY, f64::min);
            assert!(
                device.next_report() < a.start(),
                "{a:?}: no true reading before"
            );
            for b in &altering[..i] {
                if b.device == a.device {
                    assert!(b.end() + period <= a.start(), "{b:?} then {a:?}");
                }
            }
        }
        // The network attacks are all still there, one a round.
        let floods = plan
            .iter()
            .filter(|a| a.step.attack == AttackKind::Flood)
            .count();
        assert_eq!(floods, 8);
    }

    #[test]
    fn a_scenario_parses_and_resolves_to_devices() {
        let scenario = Scenario::parse(
            "# a comment\n{\"attack\": \"flood\", \"patient\": 1, \"at\": 5, \"duration\": 2}\n\n\
             {\"attack\": \"hide_desaturation\", \"patient\": 2, \"at\": 30, \"duration\": 60}\n",
        )
        .unwrap();
        let plan = scenario.plan(&ward()).unwrap();
        assert_eq!(plan.len(), 2);
        let ward = ward();
        assert_eq!(
            ward.devices()[plan[0].device].class(),
            DeviceClass::BedsideMonitor
        );
        assert_eq!(ward.devices()[plan[0].device].patient(), 1);
        assert_eq!(
            ward.devices()[plan[1].device].class(),
            DeviceClass::PulseOximeter
        );
        assert!(plan[1].active(30.0) && plan[1].active(89.9) && !plan[1].active(90.0));
        // The hidden desaturation is a real one.
        let events = scenario.clinical_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].patient, 2);
        assert!(events[0].event.start() <= 30.0 && events[0].event.end() >= 90.0);
        assert_eq!(
            Scenario::parse(&scenario.to_json_lines()).unwrap(),
            scenario
        );
    }

    #[test]
    fn bad_steps_are_refused_with_their_line() {
        for (text, line) in [
            (
                "{\"attack\": \"teleport\", \"patient\": 0, \"at\": 1, \"duration\": 1}",
                1,
            ),
            ("\n{\"attack\": \"flood\", \"at\": 1, \"duration\": 1}", 2),
            (
                "{\"attack\": \"flood\", \"patient\": 0, \"at\": 1, \"duration\": 1, \"x\": 1}",
                1,
            ),
            ("not json", 1),
        ] {
            match Scenario::parse(text) {
                Err(ScenarioError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(
            Scenario::parse("{\"attack\": \"flood\", \"patient\": 0, \"at\": -1, \"duration\": 1}"),
            Err(ScenarioError::Time { line: 1 })
        );
        assert_eq!(
            Scenario::parse("{\"attack\": \"flood\", \"patient\": 0, \"at\": 1, \"duration\": 0}"),
            Err(ScenarioError::Time { line: 1 })
        );
        let missing = Scenario::parse(
            "{\"attack\": \"fake_hypoglycaemia\", \"patient\": 0, \"at\": 1, \"duration\": 5}",
        )
        .unwrap();
        assert!(matches!(
            missing.plan(&ward()),
            Err(ScenarioError::NoSuchDevice {
                line: 1,
                patient: 0,
                ..
            })
        ));
    }

    #[test]
    fn forged_readings_are_plausible_or_impossible_as_intended() {
        let step = |attack| PlannedAttack {
            step: AttackStep {
                attack,
                patient: 0,
                class: None,
                at: 0.0,
                duration: 1.0,
            },
            device: 0,
        };
        for n in 0..6 {
            let hidden = step(AttackKind::HideDesaturation)
                .alter(Quantity::Spo2, 82.0, n)
                .unwrap();
            assert!(Quantity::Spo2.check_range(hidden).is_ok() && hidden >= 94.0);
            let low = step(AttackKind::FakeHypoglycaemia)
                .alter(Quantity::GlucoseInterstitial, 110.0, n)
                .unwrap();
            assert!(Quantity::GlucoseInterstitial.check_range(low).is_ok() && low < 54.0);
            let impossible = step(AttackKind::ImplausibleInjection)
                .alter(Quantity::Spo2, 97.0, n)
                .unwrap();
            assert!(Quantity::Spo2.check_range(impossible).is_err());
            let impossible = step(AttackKind::ImplausibleInjection)
                .alter(Quantity::HeartRate, 70.0, n)
                .unwrap();
            assert!(Quantity::HeartRate.check_range(impossible).is_err());
        }
        assert_eq!(
            step(AttackKind::Flood).alter(Quantity::Spo2, 97.0, 0),
            None,
            "network attacks leave readings alone"
        );
    }

    #[test]
    fn the_demo_timeline_plays_every_attack_a_ward_has_devices_for() {
        let with_cgm = every_other_with_cgm(3, 3);
        let scenario = Scenario::demo(&with_cgm, 120.0);
        for kind in AttackKind::ALL {
            assert!(scenario.steps.iter().any(|s| s.attack == *kind), "{kind:?}");
        }
        // Network attacks fit the timeline; an alteration lasts two of its device's reporting
        // periods (a CGM reports every 5 minutes), whatever the timeline.
        assert!(
            scenario
                .steps
                .iter()
                .all(|s| s.attack.alters_readings() || s.at + s.duration <= 120.0)
        );
        let plan = scenario.plan(&with_cgm).unwrap();
        let hypo = plan
            .iter()
            .find(|a| a.step.attack == AttackKind::FakeHypoglycaemia)
            .unwrap();
        assert_eq!(hypo.step.patient, 1, "the only patient with a CGM");
        assert!(hypo.step.duration >= 600.0, "{}", hypo.step.duration);

        // Without a CGM, the glucose attack is left out and the rest still plays.
        let scenario = Scenario::demo(&ward(), 30.0);
        assert!(
            !scenario
                .steps
                .iter()
                .any(|s| s.attack == AttackKind::FakeHypoglycaemia)
        );
        assert_eq!(scenario.steps.len(), 10);
        assert!(scenario.plan(&ward()).is_ok());
        assert!(
            scenario
                .steps
                .iter()
                .all(|s| s.attack.alters_readings() || s.at + s.duration <= 30.0 + 1.0)
        );
    }
}
