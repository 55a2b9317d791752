//! Sequence numbers: replayed messages, and messages missing.
//!
//! A jump forward in a device's sequence means messages were lost (a device restarted, a
//! gateway dropped them) or someone else is sending under its name with numbers of their own:
//! a low-severity gap alert, for the record.
//!
//! Every pack carries its device's sequence number (docs/protocol.md). A genuine device sends
//! each number once, and after a lost connection sends the one unacknowledged pack again, which
//! the store recognises as a duplicate. So a device sending *several* packs the store already
//! holds within a minute, or new readings under a number it already used, is replaying (or
//! being replayed): captured messages sent again, or a clone with the same identity. (A number
//! below the highest seen is not enough: a clone that jumped far ahead would make every later
//! genuine pack look old.)

use std::collections::{HashMap, HashSet, VecDeque};

use vigil_model::{Alert, AlertKind, DeviceId, Evidence, Severity};

use crate::{Detector, Event};

/// Whole duplicate packs from one device within [`WINDOW_MS`] that make a replay.
pub const DUPLICATE_PACKS: usize = 2;
/// The window over which duplicate packs are counted.
pub const WINDOW_MS: i64 = 60_000;
/// Sequence numbers remembered per device (about 17 minutes of a 1 Hz monitor).
pub const REMEMBERED: usize = 1024;

#[derive(Debug, Default)]
struct DeviceState {
    /// The previous pack's number, for gaps.
    last: u64,
    /// Recently used numbers, oldest first, and the same as a set.
    order: VecDeque<u64>,
    seen: HashSet<u64>,
    /// Times (Unix ms) of recent packs the store already held entirely.
    duplicates: Vec<i64>,
}

impl DeviceState {
    fn remember(&mut self, sequence: u64) {
        if self.seen.insert(sequence) {
            self.order.push_back(sequence);
            if self.order.len() > REMEMBERED
                && let Some(oldest) = self.order.pop_front()
            {
                self.seen.remove(&oldest);
            }
        }
    }
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
        } else if *stored > 0 && state.seen.contains(sequence) {
            // New readings under a number already used: not a resend.
            reason = Some(("sequence_used_before", "true".to_owned()));
        } else if state.last > 0 && *sequence > state.last.saturating_add(1) {
            alerts.push(gap(event, state.last + 1));
        }
        state.last = *sequence;
        state.remember(*sequence);
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
            bytes: 200,
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
    fn new_readings_under_a_used_number_are_a_replay() {
        let alerts = run(&[pack(0, 10, 2, 0), pack(1, 11, 2, 0), pack(2, 10, 2, 0)]);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::Replay);
    }

    #[test]
    fn a_clone_far_ahead_does_not_make_the_genuine_device_look_replayed() {
        // The genuine device at 10, 11; a clone with numbers of its own; the genuine device
        // carries on: one gap when the clone jumps, nothing after.
        let alerts = run(&[
            pack(0, 10, 2, 0),
            pack(1, 1 << 40, 2, 0),
            pack(2, 11, 2, 0),
            pack(3, 12, 2, 0),
            pack(4, 13, 2, 0),
        ]);
        let kinds: Vec<AlertKind> = alerts.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [AlertKind::SequenceGap]);
    }

    #[test]
    fn memory_per_device_is_bounded() {
        let mut detector = Sequence::default();
        let mut alerts = Vec::new();
        for n in 1..5_000 {
            detector.observe(&pack(0, n, 1, 0), &mut alerts);
        }
        let state = detector.devices.values().next().unwrap();
        assert_eq!(state.order.len(), REMEMBERED);
        assert_eq!(state.seen.len(), REMEMBERED);
        assert!(alerts.is_empty());
    }
}
