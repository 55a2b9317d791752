//! Identity and protocol misuse: what the hub refused, turned into alerts.
//!
//! - Publishing or subscribing to another device's topics: topic probing (at once: a device's
//!   firmware knows its topics; a probe is deliberate or a compromised device).
//! - Bytes that are not MQTT from an authenticated device: a protocol violation.
//! - A spent, expired or forged enrolment token: token misuse (at once: a token is used once,
//!   by the device it was made for).
//! - A client id that is not the certificate's device: an identity conflict.
//! - A revoked certificate presented: revoked-certificate use.
//! - The same certificate connected twice at once: an identity conflict.
//! - A device cut off for flooding: a flood.
//! - Certificates refused from one address, [`FAILURES`] within [`WINDOW_MS`]: a burst of
//!   authentication failures (someone trying keys or certificates).

use std::collections::HashMap;
use std::net::IpAddr;

use vigil_model::{Alert, AlertKind, DeviceId, Evidence, Severity, Timestamp};

use crate::{Detector, Event, Refusal};

/// Refused certificates from one address that make a burst.
pub const FAILURES: usize = 5;
/// The window over which they are counted.
pub const WINDOW_MS: i64 = 60_000;
/// Addresses tracked before quiet ones are forgotten.
const MAX_ADDRESSES: usize = 10_000;

/// The identity detector.
#[derive(Debug, Default)]
pub struct Identity {
    failures: HashMap<IpAddr, Vec<i64>>,
}

impl Detector for Identity {
    fn name(&self) -> &'static str {
        "identity"
    }

    fn observe(&mut self, event: &Event, alerts: &mut Vec<Alert>) {
        let (at, device, address, refusal) = match event {
            Event::Refused {
                at,
                device,
                address,
                refusal,
            } => (at, device, address, refusal),
            Event::Connected {
                at,
                device,
                address,
                took_over: Some(previous),
            } => {
                alerts.push(identity_conflict(*at, device, *previous, *address));
                return;
            }
            Event::Flooding {
                at,
                device,
                over_for_ms,
            } => {
                alerts.push(flood(*at, device, *over_for_ms));
                return;
            }
            _ => return,
        };
        let (kind, severity, technique) = match refusal {
            // T0861 Point & Tag Identification: looking for other devices' data points.
            Refusal::ForeignTopic => (AlertKind::TopicProbe, Severity::High, Some("T0861")),
            // T0866 Exploitation of Remote Services.
            Refusal::MalformedPacket => (
                AlertKind::ProtocolViolation,
                Severity::Medium,
                Some("T0866"),
            ),
            // T0859 Valid Accounts: a credential that is not (or no longer) the caller's.
            Refusal::EnrolmentToken => (AlertKind::TokenMisuse, Severity::High, Some("T0859")),
            Refusal::ClientIdMismatch => {
                (AlertKind::IdentityConflict, Severity::High, Some("T0849"))
            }
            Refusal::RevokedCertificate => (
                AlertKind::RevokedCertificateUse,
                Severity::High,
                Some("T0859"),
            ),
            Refusal::BadCertificate => {
                let Some(address) = address else {
                    return;
                };
                let now = at.unix_millis();
                // Bounded: at most FAILURES timestamps per address, and addresses forgotten
                // once quiet for a window (a scan from many addresses must not grow this).
                if self.failures.len() >= MAX_ADDRESSES {
                    self.failures
                        .retain(|_, times| times.last().is_some_and(|t| now - t < WINDOW_MS));
                }
                let recent = self.failures.entry(*address).or_default();
                recent.retain(|t| now - t < WINDOW_MS);
                recent.push(now);
                if recent.len() > FAILURES {
                    recent.remove(0);
                }
                if recent.len() < FAILURES {
                    return;
                }
                (AlertKind::AuthFailureBurst, Severity::Medium, Some("T0859"))
            }
            Refusal::InvalidPayload => return,
        };
        let mut evidence = vec![Evidence::Fact {
            name: "refused".into(),
            value: refusal.as_str().into(),
        }];
        if let Some(address) = address {
            evidence.push(Evidence::Fact {
                name: "address".into(),
                value: address.to_string(),
            });
        }
        alerts.push(Alert {
            time: *at,
            severity,
            kind,
            device: device.clone(),
            patient: None,
            evidence,
            attack_technique: technique.map(str::to_owned),
        });
    }
}

/// One certificate connected from two places at once: a device that reconnected before its
/// old connection died, or a stolen certificate (T0849 Masquerading); a person judges.
fn identity_conflict(at: Timestamp, device: &DeviceId, previous: IpAddr, new: IpAddr) -> Alert {
    Alert {
        time: at,
        severity: Severity::High,
        kind: AlertKind::IdentityConflict,
        device: Some(device.clone()),
        patient: None,
        evidence: vec![
            Evidence::Fact {
                name: "previous_address".into(),
                value: previous.to_string(),
            },
            Evidence::Fact {
                name: "new_address".into(),
                value: new.to_string(),
            },
        ],
        attack_technique: Some("T0849".into()),
    }
}

/// A device cut off for its message rate (T0814 Denial of Service).
fn flood(at: Timestamp, device: &DeviceId, over_for_ms: u64) -> Alert {
    Alert {
        time: at,
        severity: Severity::High,
        kind: AlertKind::Flood,
        device: Some(device.clone()),
        patient: None,
        evidence: vec![Evidence::Fact {
            name: "over_rate_for_ms".into(),
            value: over_for_ms.to_string(),
        }],
        attack_technique: Some("T0814".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn refused(secs: i64, refusal: Refusal, address: &str) -> Event {
        Event::Refused {
            at: Timestamp::from_unix_millis(1_800_000_000_000 + secs * 1000).unwrap(),
            device: DeviceId::new("mon-1").ok(),
            address: address.parse().ok(),
            refusal,
        }
    }

    fn kinds(events: &[Event]) -> Vec<AlertKind> {
        let mut detector = Identity::default();
        let mut alerts = Vec::new();
        for event in events {
            detector.observe(event, &mut alerts);
        }
        alerts.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn each_refusal_of_a_known_device_is_its_own_alert() {
        assert_eq!(
            kinds(&[
                refused(0, Refusal::ForeignTopic, "10.0.0.2"),
                refused(1, Refusal::MalformedPacket, "10.0.0.2"),
                refused(2, Refusal::EnrolmentToken, "10.0.0.3"),
                refused(3, Refusal::ClientIdMismatch, "10.0.0.2"),
                refused(4, Refusal::RevokedCertificate, "10.0.0.2"),
            ]),
            [
                AlertKind::TopicProbe,
                AlertKind::ProtocolViolation,
                AlertKind::TokenMisuse,
                AlertKind::IdentityConflict,
                AlertKind::RevokedCertificateUse
            ]
        );
    }

    #[test]
    fn a_takeover_and_a_flood_are_alerts_a_plain_connection_is_not() {
        let at = Timestamp::from_unix_millis(1_800_000_000_000).unwrap();
        let device = DeviceId::new("oxi-1").unwrap();
        let connected = |took_over: Option<&str>| Event::Connected {
            at,
            device: device.clone(),
            address: "10.0.0.5".parse().unwrap(),
            took_over: took_over.map(|a| a.parse().unwrap()),
        };
        assert!(kinds(&[connected(None)]).is_empty());
        assert_eq!(
            kinds(&[
                connected(Some("10.0.0.6")),
                Event::Flooding {
                    at,
                    device: device.clone(),
                    over_for_ms: 1500
                }
            ]),
            [AlertKind::IdentityConflict, AlertKind::Flood]
        );
    }

    #[test]
    fn a_refused_payload_is_not_an_identity_alert() {
        assert!(kinds(&[refused(0, Refusal::InvalidPayload, "10.0.0.2")]).is_empty());
    }

    #[test]
    fn certificate_failures_alert_as_a_burst_per_address() {
        let spread: Vec<Event> = (0..4)
            .map(|i| refused(i * 30, Refusal::BadCertificate, "10.0.0.9"))
            .collect();
        assert!(
            kinds(&spread).is_empty(),
            "4 failures, or spread out, are not a burst"
        );
        let mut burst: Vec<Event> = (0..5)
            .map(|i| refused(i, Refusal::BadCertificate, "10.0.0.9"))
            .collect();
        burst.push(refused(5, Refusal::BadCertificate, "10.0.0.8"));
        assert_eq!(kinds(&burst), [AlertKind::AuthFailureBurst]);
    }
}
