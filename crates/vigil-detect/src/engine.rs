//! Running the detectors, and deduplicating what they raise.

use std::collections::HashMap;

use vigil_model::{Alert, AlertKind, DeviceId, PatientId};

use crate::{Detector, Event};

/// An alert of the same kind about the same subject is raised at most once in this window.
pub const SUPPRESSION_WINDOW_MS: i64 = 60_000;

/// What an alert is about, for deduplication.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Device(DeviceId),
    Patient(PatientId),
    Nobody,
}

/// The detectors and the suppression state.
pub struct Engine {
    detectors: Vec<Box<dyn Detector>>,
    /// Last raised, per (kind, subject, rule), in Unix milliseconds.
    raised: HashMap<(AlertKind, Subject, Option<String>), i64>,
    /// Alerts suppressed as repeats so far.
    suppressed: u64,
    scratch: Vec<Alert>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field(
                "detectors",
                &self.detectors.iter().map(|d| d.name()).collect::<Vec<_>>(),
            )
            .field("suppressed", &self.suppressed)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with `detectors`.
    pub fn new(detectors: Vec<Box<dyn Detector>>) -> Engine {
        Engine {
            detectors,
            raised: HashMap::new(),
            suppressed: 0,
            scratch: Vec::new(),
        }
    }

    /// An engine with every built-in detector.
    pub fn with_all_detectors() -> Engine {
        Engine::new(crate::detectors::all())
    }

    /// Runs every detector over `event`; the alerts to raise (repeats suppressed).
    pub fn observe(&mut self, event: &Event) -> Vec<Alert> {
        self.scratch.clear();
        for detector in &mut self.detectors {
            detector.observe(event, &mut self.scratch);
        }
        let now = event.at().unix_millis();
        let mut out = Vec::new();
        for alert in self.scratch.drain(..) {
            let subject = match (&alert.device, &alert.patient) {
                (Some(device), _) => Subject::Device(device.clone()),
                (None, Some(patient)) => Subject::Patient(patient.clone()),
                (None, None) => Subject::Nobody,
            };
            // Two rules of the security officer's file are two detections, not repeats.
            let rule = (alert.kind == AlertKind::Rule)
                .then(|| {
                    alert.evidence.iter().find_map(|e| match e {
                        vigil_model::Evidence::Fact { name, value } if name == "rule" => {
                            Some(value.clone())
                        }
                        _ => None,
                    })
                })
                .flatten();
            let key = (alert.kind, subject, rule);
            match self.raised.get(&key) {
                Some(last) if now - last < SUPPRESSION_WINDOW_MS => self.suppressed += 1,
                _ => {
                    self.raised.insert(key, now);
                    out.push(alert);
                }
            }
        }
        // Forget what can no longer suppress anything, so memory follows the active subjects.
        if self.raised.len() > 4096 {
            self.raised
                .retain(|_, last| now - *last < SUPPRESSION_WINDOW_MS);
        }
        out
    }

    /// Alerts suppressed as repeats so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::{Severity, Timestamp};

    use super::*;

    /// Raises one alert about the event's device on every event.
    struct Always;

    impl Detector for Always {
        fn name(&self) -> &'static str {
            "always"
        }
        fn observe(&mut self, event: &Event, alerts: &mut Vec<Alert>) {
            if let Event::Connected { at, device, .. } = event {
                alerts.push(Alert {
                    time: *at,
                    severity: Severity::Low,
                    kind: AlertKind::IdentityConflict,
                    device: Some(device.clone()),
                    patient: None,
                    evidence: Vec::new(),
                    attack_technique: None,
                });
            }
        }
    }

    fn connected(device: &str, secs: i64) -> Event {
        Event::Connected {
            at: Timestamp::from_unix_millis(1_800_000_000_000 + secs * 1000).unwrap(),
            device: DeviceId::new(device).unwrap(),
            address: "10.0.0.1".parse().unwrap(),
            took_over: None,
        }
    }

    #[test]
    fn repeats_are_suppressed_within_the_window_per_subject() {
        let mut engine = Engine::new(vec![Box::new(Always)]);
        assert_eq!(engine.observe(&connected("a", 0)).len(), 1);
        assert_eq!(engine.observe(&connected("a", 30)).len(), 0);
        assert_eq!(
            engine.observe(&connected("b", 30)).len(),
            1,
            "another device"
        );
        assert_eq!(
            engine.observe(&connected("a", 61)).len(),
            1,
            "after the window"
        );
        assert_eq!(engine.suppressed(), 1);
    }

    /// Raises two rule alerts (rules `a` and `b`) about the event's device on every event.
    struct TwoRules;

    impl Detector for TwoRules {
        fn name(&self) -> &'static str {
            "two-rules"
        }
        fn observe(&mut self, event: &Event, alerts: &mut Vec<Alert>) {
            if let Event::Connected { at, device, .. } = event {
                for rule in ["a", "b"] {
                    alerts.push(Alert {
                        time: *at,
                        severity: Severity::Low,
                        kind: AlertKind::Rule,
                        device: Some(device.clone()),
                        patient: None,
                        evidence: vec![vigil_model::Evidence::Fact {
                            name: "rule".into(),
                            value: rule.into(),
                        }],
                        attack_technique: None,
                    });
                }
            }
        }
    }

    #[test]
    fn different_rules_are_not_repeats_of_each_other() {
        let mut engine = Engine::new(vec![Box::new(TwoRules)]);
        assert_eq!(engine.observe(&connected("a", 0)).len(), 2);
        assert_eq!(engine.observe(&connected("a", 10)).len(), 0);
        assert_eq!(engine.observe(&connected("a", 61)).len(), 2);
    }
}
