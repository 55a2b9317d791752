//! Sequence numbers: replayed messages, and messages missing.
//!
//! A jump forward in a device's sequence means messages were lost (a device restarted, a
//! gateway dropped them) or someone else is sending under its name with numbers of their own:
//! a low-severity gap alert, for the record.
//!
//! Every pack carries its device's sequence number (docs/protocol.md). A genuine device sends
//! each number once, and after a lost connection sends the one unacknowledged pack again, which
//! the store recognises as a duplicate. So a device sending *several* packs the store already
//! holds within a minute, or a number below one it already used with readings the store has not
//! seen, is replaying (or being replayed): captured messages sent again, or a clone with the
//! same identity.

use std::collections::HashMap;

use vigil_model::{Alert, AlertKind, DeviceId, Evidence, Severity};

use crate::{Detector, Event};

/// Whole duplicate packs from one device within [`WINDOW_MS`] that make a replay.
pub const DUPLICATE_PACKS: usize = 2;
/// The window over which duplicate packs are counted.
pub const WINDOW_MS: i64 = 60_000;

#[derive(Debug, Default)]
struct DeviceState {
    highest: u64,
    /// Times (Unix ms) of recent packs the store already held entirely.
    duplicates: Vec<i64>,
}

/// The sequence detector.
#[derive(Debug, Default)]
pub struct Sequence {
    devices: HashMap<DeviceId, DeviceState>,
}

impl Detector for Sequence {
    fn name(&self) -> &'static str {
        "sequence"
    }

    fn observe(&mut self, event: &Event, alerts: &mut Vec<Alert>) {
        let Event::Stored {
            at,
            device,
            patient,
            sequence,
            stored,
            duplicates,
            ..
        } = event
        else {
            return;
        };
        let now = at.unix_millis();
        let state = self.devices.entry(device.clone()).or_default();
        let mut reason = None;
        if *stored == 0 && *duplicates > 0 {
            state.duplicates.retain(|t| now - t < WINDOW_MS);
            state.duplicates.push(now);
            if state.duplicates.len() >= DUPLICATE_PACKS {
                reason = Some((
                    "duplicate_packs_in_window",
                    state.duplicates.len().to_string(),
                ));
            }
        } else if *stored > 0 && *sequence < state.highest {
            // New readings under a number already used: not a resend.
            reason = Some(("highest_sequence_seen", state.highest.to_string()));
        } else if state.highest > 0 && *sequence > state.highest.saturating_add(1) {
            alerts.push(gap(event, state.highest + 1));
        }
        state.highest = state.highest.max(*sequence);
        if let Some((name, value)) = reason {
            alerts.push(Alert {
                time: *at,
                severity: Severity::High,
                kind: AlertKind::Replay,
                device: Some(device.clone()),
                patient: Some(patient.clone()),
                evidence: vec![
                    Evidence::Fact {
                        name: "sequence".into(),
                        value: sequence.to_string(),
                    },
                    Evidence::Fact {
                        name: name.into(),
                        value,
                    },
                ],
                // Replay attack is not in ATT&CK for ICS; Spoof Reporting Message is what it does.
                attack_technique: Some("T0856".into()),
            });
        }
    }
}

/// Messages missing before this pack: expected `expected`, received the event's sequence.
fn gap(event: &Event, expected: u64) -> Alert {
    let (at, device, patient, sequence) = match event {
        Event::Stored {
            at,
            device,
            patient,
            sequence,
            ..
        } => (*at, Some(device.clone()), Some(patient.clone()), *sequence),
        _ => (event.at(), None, None, 0),
    };
    Alert {
        time: at,
        severity: Severity::Low,
        kind: AlertKind::SequenceGap,
        device,
        patient,
        evidence: vec![
            Evidence::Fact {
                name: "expected_sequence".into(),
                value: expected.to_string(),
            },
            Evidence::Fact {
                name: "received_sequence".into(),
                value: sequence.to_string(),
            },
        ],
        attack_technique: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::{DeviceClass, PatientId, Timestamp};

    use super::*;

    fn pack(secs: i64, sequence: u64, stored: usize, duplicates: usize) -> Event {
        Event::Stored {
            at: Timestamp::from_unix_millis(1_800_000_000_000 + secs * 1000).unwrap(),
            device: DeviceId::new("oxi-1").unwrap(),
            class: DeviceClass::PulseOximeter,
            patient: PatientId::new("p-1").unwrap(),
            sequence,
            readings: Vec::new(),
            stored,
            duplicates,
        }
    }

    fn run(events: &[Event]) -> Vec<Alert> {
        let mut detector = Sequence::default();
        let mut alerts = Vec::new();
        for event in events {
            detector.observe(event, &mut alerts);
        }
        alerts
    }

    #[test]
    fn a_resend_after_a_reconnection_is_not_a_replay() {
        let alerts = run(&[
            pack(0, 1, 2, 0),
            pack(1, 2, 2, 0),
            pack(5, 2, 0, 2), // the unacknowledged pack, again
            pack(6, 3, 2, 0),
            pack(200, 4, 2, 0),
            pack(201, 4, 0, 2), // another drop, minutes later
        ]);
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn captured_packs_sent_again_are_a_replay() {
        let alerts = run(&[
            pack(0, 10, 2, 0),
            pack(1, 11, 2, 0),
            pack(2, 12, 2, 0),
            pack(30, 10, 0, 2),
            pack(30, 11, 0, 2),
        ]);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::Replay);
    }

    #[test]
    fn a_jump_forward_is_a_gap_and_the_first_pack_is_not() {
        let alerts = run(&[pack(0, 40, 2, 0), pack(1, 41, 2, 0), pack(2, 45, 2, 0)]);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::SequenceGap);
    }

    #[test]
    fn new_readings_under_an_old_number_are_a_replay() {
        let alerts = run(&[pack(0, 10, 2, 0), pack(1, 11, 2, 0), pack(2, 5, 2, 0)]);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::Replay);
    }
}
