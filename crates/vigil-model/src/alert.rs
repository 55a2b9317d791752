//! Security alerts raised by detection.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{DeviceId, PatientId};
use crate::phi::Phi;
use crate::quantity::Quantity;
use crate::timestamp::Timestamp;

/// Where an alert is in its handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Raised, nobody has looked yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Dealt with.
    Closed,
}

impl AlertStatus {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Closed => "closed",
        }
    }
}

impl std::str::FromStr for AlertStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "open" => Ok(AlertStatus::Open),
            "acknowledged" => Ok(AlertStatus::Acknowledged),
            "closed" => Ok(AlertStatus::Closed),
            other => Err(format!("unknown alert status {other:?}")),
        }
    }
}

/// How urgently a person must look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; no action expected.
    Info,
    /// Look when convenient.
    Low,
    /// Look soon.
    Medium,
    /// Look now.
    High,
    /// A patient may be at risk now.
    Critical,
}

/// What was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// A value outside what is physically possible.
    ImplausibleValue,
    /// A change faster than is physically possible.
    ImpossibleChange,
    /// Two signals of one patient that cannot both be true.
    CrossSignalMismatch,
    /// A flat line or an exactly repeated sequence of values.
    RepeatedValues,
    /// A sequence number seen before.
    Replay,
    /// Messages missing from a device's sequence.
    SequenceGap,
    /// A device clock too far from the hub's.
    ClockSkew,
    /// A revoked certificate still trying to connect.
    RevokedCertificateUse,
    /// One certificate connected twice, or from a new place.
    IdentityConflict,
    /// A burst of authentication or authorisation failures.
    AuthFailureBurst,
    /// Publishing or subscribing outside a device's own topics.
    TopicProbe,
    /// Traffic that is not valid protocol: a fuzzer, an exploit attempt or a broken device.
    ProtocolViolation,
    /// An enrolment token presented that is spent, expired or forged.
    TokenMisuse,
    /// A device sending far more than its class or its own habit.
    Flood,
    /// A learned model found the behaviour abnormal.
    Anomaly,
    /// A rule from the security officer's rules file matched.
    Rule,
    /// A clinician opened a record outside their care team in an emergency.
    BreakGlass,
    /// A command refused by a safety profile.
    UnsafeCommand,
}

/// One piece of evidence for an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// A fact about traffic or identity: a count, a rate, an address, a sequence number. Not PHI.
    Fact {
        /// What the fact is, e.g. `messages_per_second`.
        name: String,
        /// Its value as text.
        value: String,
    },
    /// A clinical value; PHI, redacted when printed and left out of SIEM exports.
    Clinical {
        /// The quantity.
        quantity: Quantity,
        /// The value in the quantity's canonical unit.
        value: Phi<f64>,
    },
}

/// A security alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// When the condition was detected.
    pub time: Timestamp,
    /// How urgent.
    pub severity: Severity,
    /// What was detected.
    pub kind: AlertKind,
    /// The device concerned, if one is.
    pub device: Option<DeviceId>,
    /// The patient concerned, if one is.
    pub patient: Option<PatientId>,
    /// Why the detector believes it.
    pub evidence: Vec<Evidence>,
    /// The MITRE ATT&CK for ICS technique, e.g. `T0856` (Spoof Reporting Message), where one fits.
    pub attack_technique: Option<String>,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clinical_evidence_is_redacted_and_severities_order() {
        let alert = Alert {
            time: Timestamp::EPOCH,
            severity: Severity::High,
            kind: AlertKind::CrossSignalMismatch,
            device: DeviceId::new("oxi-3").ok(),
            patient: PatientId::new("p-17").ok(),
            evidence: vec![
                Evidence::Clinical {
                    quantity: Quantity::PulseRate,
                    value: Phi::new(72.0),
                },
                Evidence::Fact {
                    name: "window_seconds".into(),
                    value: "30".into(),
                },
            ],
            attack_technique: Some("T0856".into()),
        };
        let printed = format!("{alert:?}");
        assert!(!printed.contains("72"), "{printed}");
        assert!(printed.contains("window_seconds"));
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
    }
}
