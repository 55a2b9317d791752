//! Whether an event matches a rule's event kind and conditions.

use std::collections::BTreeSet;
use std::net::IpAddr;

use vigil_model::{DeviceClass, DeviceId, Evidence, PatientId, Quantity};

use super::{Cidr, EventKind};
use crate::{Event, Reading, Refusal};

/// A reading condition: the quantity, and, when given, the limits past which a reading
/// matches, in the quantity's canonical unit. Without limits, any reading of the quantity
/// matches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ValueTest {
    pub(super) quantity: Quantity,
    pub(super) above: Option<f64>,
    pub(super) below: Option<f64>,
}

impl ValueTest {
    fn matches(&self, reading: &Reading) -> bool {
        if reading.quantity != self.quantity {
            return false;
        }
        let value = *reading.value.expose();
        match (self.above, self.below) {
            (None, None) => true,
            (above, below) => above.is_some_and(|a| value > a) || below.is_some_and(|b| value < b),
        }
    }
}

/// A rule's event kind and conditions. An empty list or `None` is no condition.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Matcher {
    pub(super) event: EventKind,
    pub(super) devices: BTreeSet<DeviceId>,
    pub(super) classes: Vec<DeviceClass>,
    pub(super) refusals: Vec<Refusal>,
    pub(super) value: Option<ValueTest>,
    pub(super) duplicates: Option<bool>,
    pub(super) took_over: Option<bool>,
    pub(super) addresses: Vec<Cidr>,
    pub(super) not_addresses: Vec<Cidr>,
}

/// What a matching event says about itself, for counting and for the alert.
#[derive(Debug)]
pub(super) struct Hit<'e> {
    pub(super) device: Option<&'e DeviceId>,
    pub(super) patient: Option<&'e PatientId>,
    pub(super) address: Option<IpAddr>,
    /// The first reading past the rule's limits, and how many were.
    reading: Option<(&'e Reading, usize)>,
    /// Set when the rule has a duplicates condition: how many readings were duplicates.
    duplicates: Option<usize>,
}

impl Matcher {
    /// A matcher of `event` with no condition.
    #[cfg(test)]
    pub(super) fn any(event: EventKind) -> Matcher {
        Matcher {
            event,
            devices: BTreeSet::new(),
            classes: Vec::new(),
            refusals: Vec::new(),
            value: None,
            duplicates: None,
            took_over: None,
            addresses: Vec::new(),
            not_addresses: Vec::new(),
        }
    }

    /// The event's facts if it matches.
    pub(super) fn matches<'e>(&self, event: &'e Event) -> Option<Hit<'e>> {
        let hit = match (self.event, event) {
            (
                EventKind::Stored,
                Event::Stored {
                    device,
                    class,
                    patient,
                    readings,
                    duplicates,
                    ..
                },
            ) => {
                if !self.classes.is_empty() && !self.classes.contains(class) {
                    return None;
                }
                if self
                    .duplicates
                    .is_some_and(|want| want != (*duplicates > 0))
                {
                    return None;
                }
                let reading = match &self.value {
                    None => None,
                    Some(test) => {
                        let mut past = readings.iter().filter(|r| test.matches(r));
                        let first = past.next()?;
                        Some((first, 1 + past.count()))
                    }
                };
                Hit {
                    device: Some(device),
                    patient: Some(patient),
                    address: None,
                    reading,
                    duplicates: self.duplicates.map(|_| *duplicates),
                }
            }
            (
                EventKind::Connected,
                Event::Connected {
                    device,
                    address,
                    took_over,
                    ..
                },
            ) => {
                if self
                    .took_over
                    .is_some_and(|want| want != took_over.is_some())
                {
                    return None;
                }
                Hit::about(Some(device), Some(*address))
            }
            (
                EventKind::Refused,
                Event::Refused {
                    device,
                    address,
                    refusal,
                    ..
                },
            ) => {
                if !self.refusals.is_empty() && !self.refusals.contains(refusal) {
                    return None;
                }
                Hit::about(device.as_ref(), *address)
            }
            (EventKind::Flooding, Event::Flooding { device, .. }) => Hit::about(Some(device), None),
            _ => return None,
        };
        if !self.devices.is_empty() && !hit.device.is_some_and(|d| self.devices.contains(d)) {
            return None;
        }
        // An event without an address is in no range, and not known to be outside one either.
        if !self.addresses.is_empty()
            && !hit
                .address
                .is_some_and(|a| self.addresses.iter().any(|c| c.contains(a)))
        {
            return None;
        }
        if !self.not_addresses.is_empty()
            && hit
                .address
                .is_none_or(|a| self.not_addresses.iter().any(|c| c.contains(a)))
        {
            return None;
        }
        Some(hit)
    }
}

impl<'e> Hit<'e> {
    fn about(device: Option<&'e DeviceId>, address: Option<IpAddr>) -> Hit<'e> {
        Hit {
            device,
            patient: None,
            address,
            reading: None,
            duplicates: None,
        }
    }

    /// The evidence of an alert raised on this event: facts of traffic and identity, and the
    /// reading that matched as a clinical value (PHI).
    pub(super) fn evidence(&self, event: &Event, evidence: &mut Vec<Evidence>) {
        let fact = |name: &str, value: String| Evidence::Fact {
            name: name.into(),
            value,
        };
        match event {
            Event::Stored { sequence, .. } => {
                evidence.push(fact("event", EventKind::Stored.as_str().into()));
                evidence.push(fact("sequence", sequence.to_string()));
            }
            Event::Connected { took_over, .. } => {
                evidence.push(fact("event", EventKind::Connected.as_str().into()));
                if let Some(previous) = took_over {
                    evidence.push(fact("previous_address", previous.to_string()));
                }
            }
            Event::Refused { refusal, .. } => {
                evidence.push(fact("event", EventKind::Refused.as_str().into()));
                evidence.push(fact("refused", refusal.as_str().into()));
            }
            Event::Flooding { over_for_ms, .. } => {
                evidence.push(fact("event", EventKind::Flooding.as_str().into()));
                evidence.push(fact("over_rate_for_ms", over_for_ms.to_string()));
            }
        }
        if let Some(address) = self.address {
            evidence.push(fact("address", address.to_string()));
        }
        if let Some(duplicates) = self.duplicates {
            evidence.push(fact("duplicates", duplicates.to_string()));
        }
        if let Some((reading, count)) = self.reading {
            evidence.push(fact("matching_readings", count.to_string()));
            evidence.push(Evidence::Clinical {
                quantity: reading.quantity,
                value: reading.value,
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::{Phi, Timestamp};

    use super::*;

    fn at() -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000).unwrap()
    }

    fn stored(class: DeviceClass, readings: &[(Quantity, f64)], duplicates: usize) -> Event {
        Event::Stored {
            at: at(),
            device: DeviceId::new("pump-1").unwrap(),
            class,
            patient: PatientId::new("p-1").unwrap(),
            sequence: 9,
            bytes: 120,
            readings: readings
                .iter()
                .map(|(quantity, value)| Reading {
                    quantity: *quantity,
                    value: Phi::new(*value),
                    time: at(),
                })
                .collect(),
            stored: readings.len(),
            duplicates,
        }
    }

    fn connected(device: &str, address: &str, took_over: Option<&str>) -> Event {
        Event::Connected {
            at: at(),
            device: DeviceId::new(device).unwrap(),
            address: address.parse().unwrap(),
            took_over: took_over.map(|a| a.parse().unwrap()),
        }
    }

    fn refused(address: Option<&str>, refusal: Refusal) -> Event {
        Event::Refused {
            at: at(),
            device: None,
            address: address.map(|a| a.parse().unwrap()),
            refusal,
        }
    }

    fn flooding(device: &str) -> Event {
        Event::Flooding {
            at: at(),
            device: DeviceId::new(device).unwrap(),
            over_for_ms: 1500,
        }
    }

    fn cidrs(texts: &[&str]) -> Vec<Cidr> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn a_rule_matches_only_its_event_kind() {
        let events = [
            stored(DeviceClass::InfusionPump, &[], 0),
            connected("pump-1", "10.0.0.1", None),
            refused(None, Refusal::BadCertificate),
            flooding("pump-1"),
        ];
        for (kind, expected) in EventKind::ALL.iter().zip(&events) {
            let matcher = Matcher::any(*kind);
            for event in &events {
                assert_eq!(
                    matcher.matches(event).is_some(),
                    std::ptr::eq(event, expected),
                    "{kind:?} against {event:?}"
                );
            }
        }
    }

    #[test]
    fn devices() {
        let matcher = Matcher {
            devices: ["pump-1", "pump-2"]
                .iter()
                .map(|d| DeviceId::new(*d).unwrap())
                .collect(),
            ..Matcher::any(EventKind::Flooding)
        };
        assert!(matcher.matches(&flooding("pump-2")).is_some());
        assert!(matcher.matches(&flooding("pump-3")).is_none());
        let refusals = Matcher {
            event: EventKind::Refused,
            ..matcher
        };
        assert!(
            refusals
                .matches(&refused(Some("10.0.0.1"), Refusal::BadCertificate))
                .is_none(),
            "a refusal of no known device is not one of the devices"
        );
    }

    #[test]
    fn device_classes() {
        let matcher = Matcher {
            classes: vec![DeviceClass::InfusionPump, DeviceClass::InsulinPump],
            ..Matcher::any(EventKind::Stored)
        };
        assert!(
            matcher
                .matches(&stored(DeviceClass::InsulinPump, &[], 0))
                .is_some()
        );
        assert!(
            matcher
                .matches(&stored(DeviceClass::PulseOximeter, &[], 0))
                .is_none()
        );
    }

    #[test]
    fn refusal_kinds() {
        let matcher = Matcher {
            refusals: vec![Refusal::BadCertificate, Refusal::RevokedCertificate],
            ..Matcher::any(EventKind::Refused)
        };
        assert!(
            matcher
                .matches(&refused(None, Refusal::RevokedCertificate))
                .is_some()
        );
        assert!(
            matcher
                .matches(&refused(None, Refusal::ForeignTopic))
                .is_none()
        );
    }

    #[test]
    fn a_quantity_alone_matches_packs_that_carry_it() {
        let matcher = Matcher {
            value: Some(ValueTest {
                quantity: Quantity::InfusionRate,
                above: None,
                below: None,
            }),
            ..Matcher::any(EventKind::Stored)
        };
        let pump = DeviceClass::InfusionPump;
        assert!(
            matcher
                .matches(&stored(pump, &[(Quantity::InfusionRate, 5.0)], 0))
                .is_some()
        );
        assert!(
            matcher
                .matches(&stored(pump, &[(Quantity::BatteryLevel, 5.0)], 0))
                .is_none()
        );
    }

    #[test]
    fn above_and_below_are_strict_and_either_matches() {
        let matcher = Matcher {
            value: Some(ValueTest {
                quantity: Quantity::HeartRate,
                above: Some(180.0),
                below: Some(40.0),
            }),
            ..Matcher::any(EventKind::Stored)
        };
        let monitor = DeviceClass::BedsideMonitor;
        let hr = |v| stored(monitor, &[(Quantity::HeartRate, v)], 0);
        assert!(matcher.matches(&hr(180.5)).is_some());
        assert!(matcher.matches(&hr(39.0)).is_some());
        assert!(matcher.matches(&hr(180.0)).is_none(), "at the limit");
        assert!(matcher.matches(&hr(40.0)).is_none(), "at the limit");
        assert!(matcher.matches(&hr(80.0)).is_none());
        assert!(
            matcher
                .matches(&stored(monitor, &[(Quantity::PulseRate, 200.0)], 0))
                .is_none(),
            "another quantity"
        );
    }

    #[test]
    fn the_first_reading_past_the_limit_is_clinical_evidence() {
        let matcher = Matcher {
            value: Some(ValueTest {
                quantity: Quantity::InfusionRate,
                above: Some(500.0),
                below: None,
            }),
            ..Matcher::any(EventKind::Stored)
        };
        let event = stored(
            DeviceClass::InfusionPump,
            &[
                (Quantity::InfusionRate, 100.0),
                (Quantity::InfusionRate, 650.0),
                (Quantity::InfusionRate, 700.0),
            ],
            0,
        );
        let hit = matcher.matches(&event).unwrap();
        let mut evidence = Vec::new();
        hit.evidence(&event, &mut evidence);
        assert!(evidence.contains(&Evidence::Fact {
            name: "matching_readings".into(),
            value: "2".into()
        }));
        assert!(evidence.contains(&Evidence::Clinical {
            quantity: Quantity::InfusionRate,
            value: Phi::new(650.0)
        }));
        let printed = format!("{evidence:?}");
        assert!(!printed.contains("650"), "{printed}");
    }

    #[test]
    fn duplicates() {
        let with = Matcher {
            duplicates: Some(true),
            ..Matcher::any(EventKind::Stored)
        };
        let without = Matcher {
            duplicates: Some(false),
            ..Matcher::any(EventKind::Stored)
        };
        let pump = DeviceClass::InfusionPump;
        assert!(with.matches(&stored(pump, &[], 3)).is_some());
        assert!(with.matches(&stored(pump, &[], 0)).is_none());
        assert!(without.matches(&stored(pump, &[], 0)).is_some());
        assert!(without.matches(&stored(pump, &[], 1)).is_none());
    }

    #[test]
    fn took_over() {
        let with = Matcher {
            took_over: Some(true),
            ..Matcher::any(EventKind::Connected)
        };
        assert!(
            with.matches(&connected("m-1", "10.0.0.1", Some("10.0.0.2")))
                .is_some()
        );
        assert!(with.matches(&connected("m-1", "10.0.0.1", None)).is_none());
        let without = Matcher {
            took_over: Some(false),
            ..with
        };
        assert!(
            without
                .matches(&connected("m-1", "10.0.0.1", Some("10.0.0.2")))
                .is_none()
        );
        assert!(
            without
                .matches(&connected("m-1", "10.0.0.1", None))
                .is_some()
        );
    }

    #[test]
    fn addresses_inside_any_range() {
        let matcher = Matcher {
            addresses: cidrs(&["172.16.0.0/12", "fd00:99::/32"]),
            ..Matcher::any(EventKind::Connected)
        };
        assert!(
            matcher
                .matches(&connected("m-1", "172.20.1.1", None))
                .is_some()
        );
        assert!(
            matcher
                .matches(&connected("m-1", "fd00:99::7", None))
                .is_some()
        );
        assert!(
            matcher
                .matches(&connected("m-1", "::ffff:172.20.1.1", None))
                .is_some(),
            "IPv4 through a dual-stack listener"
        );
        assert!(
            matcher
                .matches(&connected("m-1", "10.0.0.1", None))
                .is_none()
        );
    }

    #[test]
    fn not_addresses_outside_every_range() {
        let matcher = Matcher {
            not_addresses: cidrs(&["10.20.0.0/16", "10.21.0.0/16"]),
            ..Matcher::any(EventKind::Refused)
        };
        let bad = Refusal::BadCertificate;
        assert!(matcher.matches(&refused(Some("10.22.0.1"), bad)).is_some());
        assert!(matcher.matches(&refused(Some("10.21.0.1"), bad)).is_none());
        assert!(
            matcher.matches(&refused(None, bad)).is_none(),
            "an unknown address is not known to be outside"
        );
        let inside = Matcher {
            addresses: cidrs(&["10.0.0.0/8"]),
            not_addresses: Vec::new(),
            ..matcher
        };
        assert!(inside.matches(&refused(None, bad)).is_none());
    }

    #[test]
    fn conditions_all_hold_together() {
        let matcher = Matcher {
            classes: vec![DeviceClass::InfusionPump],
            value: Some(ValueTest {
                quantity: Quantity::InfusionRate,
                above: Some(500.0),
                below: None,
            }),
            duplicates: Some(false),
            ..Matcher::any(EventKind::Stored)
        };
        let rate = |class, value, duplicates| {
            stored(class, &[(Quantity::InfusionRate, value)], duplicates)
        };
        assert!(
            matcher
                .matches(&rate(DeviceClass::InfusionPump, 600.0, 0))
                .is_some()
        );
        assert!(
            matcher
                .matches(&rate(DeviceClass::InfusionPump, 600.0, 1))
                .is_none()
        );
        assert!(
            matcher
                .matches(&rate(DeviceClass::InfusionPump, 400.0, 0))
                .is_none()
        );
        assert!(
            matcher
                .matches(&rate(DeviceClass::InsulinPump, 600.0, 0))
                .is_none()
        );
    }
}
