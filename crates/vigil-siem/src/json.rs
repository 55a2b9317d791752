//! The JSON form of an alert: one object per alert, the same object as a syslog MSG and as the
//! `data` of a webhook. Field names are stable (docs/siem.md is their reference); fields are
//! always present, `null` when unknown, except `facts_omitted`, present only when facts were
//! left out.
//!
//! ```json
//! {"id":42,"time":"2025-11-29T08:15:00.250Z","severity":"high","kind":"identity_conflict",
//!  "title":"Identity conflict","category":"identity","device":"pump-1","patient":null,
//!  "technique":"T0849","facts":{"new_address":"10.0.0.9"},"host":"hub.example.org",
//!  "product":"vigil","version":"0.1.0"}
//! ```

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::record::{Fact, Record, kind_category, kind_name, kind_title};

/// The webhook event type (Standard Webhooks' `type`).
pub const EVENT_TYPE: &str = "vigil.alert";

#[derive(Serialize)]
struct Alert<'a> {
    id: u64,
    time: String,
    severity: String,
    kind: String,
    title: String,
    category: &'static str,
    device: Option<&'a str>,
    patient: Option<&'a str>,
    technique: Option<&'a str>,
    facts: Facts<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    facts_omitted: Option<usize>,
    host: Option<&'a str>,
    product: &'static str,
    version: &'static str,
}

/// Facts as an object, in the detector's order (names are unique within a record).
struct Facts<'a>(&'a [Fact]);

impl Serialize for Facts<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for fact in self.0 {
            map.serialize_entry(&fact.name, &fact.value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    r#type: &'static str,
    timestamp: String,
    data: Alert<'a>,
}

fn alert<'a>(record: &'a Record, hostname: Option<&'a str>, shown_facts: usize) -> Alert<'a> {
    let shown = &record.facts[..shown_facts.min(record.facts.len())];
    let omitted = record.facts.len() - shown.len() + record.facts_dropped;
    Alert {
        id: record.id,
        time: record.time.to_string(),
        severity: record.severity.to_string(),
        kind: kind_name(record.kind),
        title: kind_title(record.kind),
        category: kind_category(record.kind),
        device: record.device.as_ref().map(|d| d.as_str()),
        patient: record.patient.as_ref().map(|p| p.as_str()),
        technique: record.technique.as_deref(),
        facts: Facts(shown),
        facts_omitted: (omitted > 0).then_some(omitted),
        host: hostname,
        product: "vigil",
        version: env!("CARGO_PKG_VERSION"),
    }
}

/// The alert object on one line, with its first `shown_facts` facts.
pub fn line(record: &Record, hostname: Option<&str>, shown_facts: usize) -> String {
    // Serialising owned strings and integers into a String cannot fail; the fallback keeps
    // that promise without a panic.
    serde_json::to_string(&alert(record, hostname, shown_facts)).unwrap_or_default()
}

/// A webhook body in the Standard Webhooks payload shape:
/// `{"type":"vigil.alert","timestamp":<alert time>,"data":<the alert object>}`.
pub fn webhook_body(record: &Record, hostname: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        r#type: EVENT_TYPE,
        timestamp: record.time.to_string(),
        data: alert(record, hostname, usize::MAX),
    })
    .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use vigil_model::{AlertKind, DeviceId, Evidence, Severity, Timestamp};

    fn record() -> Record {
        Record::new(
            42,
            &vigil_model::Alert {
                time: Timestamp::from_unix_millis(1_764_404_100_250).unwrap(),
                severity: Severity::High,
                kind: AlertKind::IdentityConflict,
                device: DeviceId::new("pump-1").ok(),
                patient: None,
                evidence: vec![
                    Evidence::Fact {
                        name: "previous_address".into(),
                        value: "10.0.0.5".into(),
                    },
                    Evidence::Fact {
                        name: "new_address".into(),
                        value: "10.0.0.9\"}".into(),
                    },
                ],
                attack_technique: Some("T0849".into()),
            },
        )
    }

    #[test]
    fn every_field_has_its_documented_name() {
        let value: Value = serde_json::from_str(&line(&record(), Some("hub"), 99)).unwrap();
        assert_eq!(
            value,
            json!({
                "id": 42,
                "time": Timestamp::from_unix_millis(1_764_404_100_250).unwrap().to_string(),
                "severity": "high",
                "kind": "identity_conflict",
                "title": "Identity conflict",
                "category": "identity",
                "device": "pump-1",
                "patient": null,
                "technique": "T0849",
                "facts": {"previous_address": "10.0.0.5", "new_address": "10.0.0.9\"}"},
                "host": "hub",
                "product": "vigil",
                "version": env!("CARGO_PKG_VERSION"),
            })
        );
    }

    #[test]
    fn facts_keep_their_order_and_omissions_are_counted() {
        let text = line(&record(), None, 99);
        assert!(text.find("previous_address") < text.find("new_address"));
        assert!(!text.contains('\n'));
        let value: Value = serde_json::from_str(&line(&record(), None, 1)).unwrap();
        assert_eq!(value["facts"], json!({"previous_address": "10.0.0.5"}));
        assert_eq!(value["facts_omitted"], 1);
    }

    #[test]
    fn webhook_body_wraps_the_same_object() {
        let body: Value = serde_json::from_slice(&webhook_body(&record(), None)).unwrap();
        assert_eq!(body["type"], "vigil.alert");
        assert_eq!(body["timestamp"], body["data"]["time"]);
        let alone: Value = serde_json::from_str(&line(&record(), None, usize::MAX)).unwrap();
        assert_eq!(body["data"], alone);
    }
}
