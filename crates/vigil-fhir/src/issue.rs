//! `DetectedIssue` from a security alert.
//!
//! FHIR R4 binds `DetectedIssue.status` to `ObservationStatus` (required) and `severity` to
//! `detectedissue-severity` (high | moderate | low, required), so Vigil's values map:
//!
//! | Vigil | `status` | `mitigation` |
//! | --- | --- | --- |
//! | open | `preliminary` (not yet reviewed) | — |
//! | acknowledged | `preliminary` | "acknowledged" |
//! | closed | `final` | "closed" |
//!
//! | Vigil severity | `severity` |
//! | --- | --- |
//! | critical, high | `high` |
//! | medium | `moderate` |
//! | low, info | `low` |
//!
//! `code` carries the alert kind in Vigil's own system ([`codes::VIGIL_ALERT_KIND`]);
//! `reference` the MITRE ATT&CK for ICS technique page. Evidence facts (counts, rates,
//! addresses: not PHI) are `evidence.code.text`; clinical evidence (PHI) becomes contained
//! Observations referenced from `evidence.detail`, and only when the caller allows it. When
//! it does not, clinical evidence is left out entirely, not redacted in place.

use serde_json::{Map, Value, json};
use vigil_model::{Alert, AlertKind, AlertStatus, Evidence, Severity};

use crate::json::write_instant;
use crate::{FhirError, codes, fhir_id, is_fhir_id};

/// An alert with what the store keeps beside it.
#[derive(Debug, Clone, Copy)]
pub struct AlertFacts<'a> {
    /// The alert's id: the resource id.
    pub id: &'a str,
    /// Where it is in its handling.
    pub status: AlertStatus,
    /// The alert.
    pub alert: &'a Alert,
}

/// Longest evidence text kept.
const MAX_FACT: usize = 200;

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "high",
        Severity::Medium => "moderate",
        Severity::Low | Severity::Info => "low",
    }
}

/// The snake_case name of an alert kind, as `vigil_model` serialises it.
fn kind_key(kind: AlertKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whether `text` looks like an ATT&CK technique id: `T` and four digits, optionally a
/// sub-technique `.` and three digits.
fn is_technique(text: &str) -> bool {
    let b = text.as_bytes();
    let main = b.len() >= 5 && b[0] == b'T' && b[1..5].iter().all(u8::is_ascii_digit);
    main && (b.len() == 5
        || (b.len() == 9 && b[5] == b'.' && b[6..].iter().all(u8::is_ascii_digit)))
}

fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// The `DetectedIssue`. `include_clinical` decides whether clinical evidence (PHI) is part of
/// it: true only for a reader authorised to see the patient's data.
pub fn detected_issue(facts: &AlertFacts<'_>, include_clinical: bool) -> Result<Value, FhirError> {
    let alert = facts.alert;
    let mut issue = Map::new();
    issue.insert("resourceType".into(), "DetectedIssue".into());
    issue.insert("id".into(), fhir_id(facts.id, "alert id")?.into());

    let mut contained = Vec::new();
    let mut evidence = Vec::new();
    for item in &alert.evidence {
        match item {
            Evidence::Fact { name, value } => {
                let text = clean(&format!("{name}: {value}"), MAX_FACT);
                evidence.push(json!({"code": [{"text": text}]}));
            }
            Evidence::Clinical { quantity, value } if include_clinical => {
                let spec = quantity.spec();
                let unit = spec.canonical_unit().ucum;
                let local = format!("ev{}", contained.len() + 1);
                let mut coding: Vec<Value> = spec
                    .loinc
                    .iter()
                    .map(|l| json!({"system": codes::LOINC, "code": l.code, "display": l.display}))
                    .collect();
                coding.push(
                    json!({"system": codes::MDC, "code": spec.mdc.code().to_string(),
                                   "display": spec.mdc.refid}),
                );
                let value = value.expose();
                if !value.is_finite() {
                    return Err(FhirError::Unrepresentable("evidence value"));
                }
                let mut observation = json!({
                    "resourceType": "Observation",
                    "id": local,
                    "status": "final",
                    "code": {"coding": coding, "text": spec.name},
                    "valueQuantity": {"value": value, "unit": unit,
                                      "system": codes::UCUM, "code": unit},
                });
                if let Some(patient) = alert.patient.as_ref().filter(|p| is_fhir_id(p.as_str())) {
                    observation["subject"] = json!({"reference": format!("Patient/{patient}")});
                }
                contained.push(observation);
                evidence.push(json!({
                    "code": [{"text": spec.name}],
                    "detail": [{"reference": format!("#{local}")}],
                }));
            }
            Evidence::Clinical { .. } => {}
        }
    }
    if !contained.is_empty() {
        issue.insert("contained".into(), contained.into());
    }

    let (status, mitigation) = match facts.status {
        AlertStatus::Open => ("preliminary", None),
        AlertStatus::Acknowledged => ("preliminary", Some("acknowledged")),
        AlertStatus::Closed => ("final", Some("closed")),
    };
    issue.insert("status".into(), status.into());
    let key = kind_key(alert.kind);
    issue.insert(
        "code".into(),
        json!({"coding": [{"system": codes::VIGIL_ALERT_KIND, "code": key}],
               "text": key.replace('_', " ")}),
    );
    issue.insert("severity".into(), severity(alert.severity).into());
    if let Some(patient) = &alert.patient {
        let patient = fhir_id(patient.as_str(), "patient id")?;
        issue.insert(
            "patient".into(),
            json!({"reference": format!("Patient/{patient}")}),
        );
    }
    let mut when = Vec::with_capacity(26);
    write_instant(&mut when, alert.time);
    issue.insert(
        "identifiedDateTime".into(),
        String::from_utf8_lossy(&when).trim_matches('"').into(),
    );
    if let Some(device) = &alert.device {
        let device = fhir_id(device.as_str(), "device id")?;
        issue.insert(
            "implicated".into(),
            json!([{"reference": format!("Device/{device}")}]),
        );
    }
    if !evidence.is_empty() {
        issue.insert("evidence".into(), evidence.into());
    }
    issue.insert(
        "detail".into(),
        format!(
            "Vigil security alert: {} ({} severity)",
            key.replace('_', " "),
            alert.severity
        )
        .into(),
    );
    if let Some(technique) = alert
        .attack_technique
        .as_deref()
        .filter(|t| is_technique(t))
    {
        let path = technique.replace('.', "/");
        issue.insert(
            "reference".into(),
            format!("{}{path}/", codes::ATTACK_TECHNIQUE_URL).into(),
        );
    }
    if let Some(action) = mitigation {
        issue.insert("mitigation".into(), json!([{"action": {"text": action}}]));
    }
    Ok(Value::Object(issue))
}

/// Every alert kind Vigil raises today, for tests that cover them all.
pub const ALERT_KINDS: &[AlertKind] = &[
    AlertKind::ImplausibleValue,
    AlertKind::ImpossibleChange,
    AlertKind::CrossSignalMismatch,
    AlertKind::RepeatedValues,
    AlertKind::Replay,
    AlertKind::SequenceGap,
    AlertKind::ClockSkew,
    AlertKind::RevokedCertificateUse,
    AlertKind::IdentityConflict,
    AlertKind::AuthFailureBurst,
    AlertKind::TopicProbe,
    AlertKind::ProtocolViolation,
    AlertKind::TokenMisuse,
    AlertKind::Flood,
    AlertKind::Anomaly,
    AlertKind::Rule,
    AlertKind::BreakGlass,
    AlertKind::UnsafeCommand,
];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use vigil_model::{DeviceId, PatientId, Phi, Quantity, Timestamp};

    fn alert() -> Alert {
        Alert {
            time: Timestamp::from_unix_millis(1_764_403_200_000).unwrap(),
            severity: Severity::High,
            kind: AlertKind::CrossSignalMismatch,
            device: DeviceId::new("oxi-3").ok(),
            patient: PatientId::new("p-17").ok(),
            evidence: vec![
                Evidence::Clinical {
                    quantity: Quantity::PulseRate,
                    value: Phi::new(141.0),
                },
                Evidence::Fact {
                    name: "window_seconds".into(),
                    value: "30".into(),
                },
            ],
            attack_technique: Some("T0856".into()),
        }
    }

    #[test]
    fn carries_kind_severity_subject_and_technique() {
        let a = alert();
        let got = detected_issue(
            &AlertFacts {
                id: "a-1",
                status: AlertStatus::Open,
                alert: &a,
            },
            true,
        )
        .unwrap();
        assert_eq!(got["status"], "preliminary");
        assert_eq!(got["severity"], "high");
        assert_eq!(got["code"]["coding"][0]["code"], "cross_signal_mismatch");
        assert_eq!(got["patient"]["reference"], "Patient/p-17");
        assert_eq!(got["implicated"][0]["reference"], "Device/oxi-3");
        assert_eq!(got["identifiedDateTime"], "2025-11-29T08:00:00.000Z");
        assert_eq!(
            got["reference"],
            "https://attack.mitre.org/techniques/T0856/"
        );
        assert_eq!(got["contained"][0]["valueQuantity"]["value"], 141.0);
        assert_eq!(got["evidence"][0]["detail"][0]["reference"], "#ev1");
        assert_eq!(got["evidence"][1]["code"][0]["text"], "window_seconds: 30");
        assert!(got.get("mitigation").is_none());
    }

    #[test]
    fn without_clinical_permission_no_phi_is_left() {
        let a = alert();
        let got = detected_issue(
            &AlertFacts {
                id: "a-1",
                status: AlertStatus::Closed,
                alert: &a,
            },
            false,
        )
        .unwrap();
        let text = got.to_string();
        assert!(!text.contains("141"), "{text}");
        assert!(got.get("contained").is_none());
        assert_eq!(got["evidence"].as_array().unwrap().len(), 1);
        assert_eq!(got["status"], "final");
        assert_eq!(got["mitigation"][0]["action"]["text"], "closed");
    }

    #[test]
    fn severities_and_techniques_map_and_bad_techniques_are_dropped() {
        assert_eq!(severity(Severity::Critical), "high");
        assert_eq!(severity(Severity::Medium), "moderate");
        assert_eq!(severity(Severity::Info), "low");
        assert!(is_technique("T0856") && is_technique("T1078.001"));
        for bad in ["", "T08", "T0856x", "t0856", "T0856.1", "../../x"] {
            assert!(!is_technique(bad), "{bad}");
        }
        let mut a = alert();
        a.attack_technique = Some("javascript:alert(1)".into());
        let got = detected_issue(
            &AlertFacts {
                id: "a-1",
                status: AlertStatus::Acknowledged,
                alert: &a,
            },
            false,
        )
        .unwrap();
        assert!(got.get("reference").is_none());
        assert_eq!(got["mitigation"][0]["action"]["text"], "acknowledged");
    }

    #[test]
    fn every_kind_has_a_code() {
        for kind in ALERT_KINDS {
            assert_ne!(kind_key(*kind), "unknown", "{kind:?}");
        }
    }
}
