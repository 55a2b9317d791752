//! [`Record`]: what of an alert may leave Vigil.
//!
//! An [`Alert`] carries clinical evidence (PHI). Every sink formats a `Record` instead, made
//! once when the alert is handed to the dispatcher: clinical evidence is dropped there, so no
//! queue, retry buffer or formatter ever holds a clinical value, and no format can leak one by
//! forgetting to filter.
//!
//! Facts are text from detectors, and some of it (an address, a refusal) comes from the
//! network. A record bounds them (count and length) and replaces control characters, so a
//! hostile value can neither grow a message without limit nor break a log line or a terminal.

use std::fmt;

use vigil_model::{Alert, AlertKind, DeviceId, Evidence, PatientId, Severity, Timestamp};

/// Most facts a record keeps; the rest are counted in [`Record::facts_dropped`].
pub const MAX_FACTS: usize = 32;
/// Longest fact name, in bytes (the SD-NAME bound of RFC 5424 §6.3.3, so a name fits anywhere).
pub const MAX_FACT_NAME: usize = 32;
/// Longest ATT&CK technique id kept, in characters (ids look like `T1059.001`).
pub const MAX_TECHNIQUE: usize = 16;
/// Longest fact value, in bytes; longer text is cut at a character boundary and
/// ends in `...`.
pub const MAX_FACT_VALUE: usize = 256;

/// One fact about traffic or identity, as exported: a name and a value, both cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// `A-Z a-z 0-9 _ . -` only, 1 to [`MAX_FACT_NAME`] bytes, unique within its record.
    pub name: String,
    /// At most [`MAX_FACT_VALUE`] bytes, no control characters.
    pub value: String,
}

/// The exportable part of an alert: no clinical evidence, bounded, cleaned.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The alert's id in Vigil's store, so an analyst can open it in Vigil.
    pub id: u64,
    /// When the condition was detected.
    pub time: Timestamp,
    /// How urgent.
    pub severity: Severity,
    /// What was detected.
    pub kind: AlertKind,
    /// The device concerned, if one is.
    pub device: Option<DeviceId>,
    /// The patient's pseudonym (never the MRN or name), if a patient is concerned.
    pub patient: Option<PatientId>,
    /// The MITRE ATT&CK for ICS technique, e.g. `T0856`: `A-Z a-z 0-9 .` only.
    pub technique: Option<String>,
    /// Facts about traffic or identity, in the detector's order.
    pub facts: Vec<Fact>,
    /// Facts left out because the alert had more than [`MAX_FACTS`].
    pub facts_dropped: usize,
}

impl Record {
    /// The exportable part of `alert`, stored under `id`. Clinical evidence is left out.
    pub fn new(id: u64, alert: &Alert) -> Record {
        let mut facts: Vec<Fact> = Vec::new();
        let mut facts_dropped = 0;
        for evidence in &alert.evidence {
            match evidence {
                Evidence::Fact { name, value } => {
                    if facts.len() == MAX_FACTS {
                        facts_dropped += 1;
                        continue;
                    }
                    let name = unique_name(&facts, fact_name(name));
                    facts.push(Fact {
                        name,
                        value: clean_text(value),
                    });
                }
                // PHI: never exported, whatever the format (the reason `Record` exists).
                Evidence::Clinical { .. } => {}
            }
        }
        Record {
            id,
            time: alert.time,
            severity: alert.severity,
            kind: alert.kind,
            device: alert.device.clone(),
            patient: alert.patient.clone(),
            technique: alert
                .attack_technique
                .as_deref()
                .map(technique)
                .filter(|t| !t.is_empty()),
            facts,
            facts_dropped,
        }
    }

    /// The kind's stable name, as in Vigil's store and API: `identity_conflict`.
    pub fn kind_name(&self) -> String {
        kind_name(self.kind)
    }
}

/// The stable snake_case name of a kind, from its serde name so that a kind added to
/// `vigil-model` is named here without a table to keep in step.
pub fn kind_name(kind: AlertKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "unknown".to_owned(),
    }
}

/// A person's name for a kind: `identity_conflict` → `Identity conflict`.
pub fn kind_title(kind: AlertKind) -> String {
    let name = kind_name(kind).replace('_', " ");
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => name,
    }
}

/// The family a kind belongs to, for a SIEM's categories (CEF `cat`, JSON `category`).
pub fn kind_category(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::ImplausibleValue
        | AlertKind::ImpossibleChange
        | AlertKind::CrossSignalMismatch
        | AlertKind::RepeatedValues => "clinical_integrity",
        AlertKind::Replay | AlertKind::SequenceGap | AlertKind::ClockSkew => "message_integrity",
        AlertKind::RevokedCertificateUse
        | AlertKind::IdentityConflict
        | AlertKind::AuthFailureBurst
        | AlertKind::TokenMisuse => "identity",
        AlertKind::TopicProbe | AlertKind::ProtocolViolation | AlertKind::Flood => "network",
        AlertKind::Anomaly => "anomaly",
        AlertKind::Rule => "rule",
        AlertKind::BreakGlass => "access",
        AlertKind::UnsafeCommand => "command_safety",
        _ => "other",
    }
}

/// The snake_case name of a severity: `high`.
pub fn severity_name(severity: Severity) -> String {
    severity.to_string()
}

fn fact_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_FACT_NAME)
        .collect();
    if cleaned.is_empty() {
        "fact".to_owned()
    } else {
        cleaned
    }
}

/// `name`, or `name_2`, `name_3`… if a fact already has it: a JSON object and an SD-ELEMENT
/// both need unique names.
fn unique_name(facts: &[Fact], name: String) -> String {
    let taken = |candidate: &str| facts.iter().any(|f| f.name == candidate);
    if !taken(&name) {
        return name;
    }
    (2..)
        .map(|n| {
            let suffix = format!("_{n}");
            let keep = MAX_FACT_NAME.saturating_sub(suffix.len()).min(name.len());
            format!("{}{suffix}", &name[..keep])
        })
        .find(|candidate| !taken(candidate))
        .unwrap_or(name)
}

/// An ATT&CK technique id (`T0856`, `T1059.001`): letters, digits and dots, at most
/// [`MAX_TECHNIQUE`] of them; anything else is dropped rather than exported as an id.
fn technique(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .take(MAX_TECHNIQUE)
        .collect()
}

/// Control characters become U+FFFD; text longer than [`MAX_FACT_VALUE`] is cut.
fn clean_text(text: &str) -> String {
    const MORE: &str = "...";
    let mut out = String::with_capacity(text.len().min(MAX_FACT_VALUE + 4));
    // Work stays bounded by the limit, not by the input.
    for c in text.chars() {
        out.push(if c.is_control() { '\u{FFFD}' } else { c });
        if out.len() > MAX_FACT_VALUE {
            break;
        }
    }
    if out.len() > MAX_FACT_VALUE {
        let mut cut = MAX_FACT_VALUE - MORE.len();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(MORE);
    }
    out
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.value)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use vigil_model::{Phi, Quantity};

    fn alert(evidence: Vec<Evidence>) -> Alert {
        Alert {
            time: Timestamp::from_unix_millis(1_764_403_200_250).unwrap(),
            severity: Severity::High,
            kind: AlertKind::CrossSignalMismatch,
            device: DeviceId::new("oxi-3").ok(),
            patient: PatientId::new("p-17").ok(),
            evidence,
            attack_technique: Some("T0856".into()),
        }
    }

    fn fact(name: &str, value: &str) -> Evidence {
        Evidence::Fact {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn clinical_evidence_is_left_out_and_facts_kept_in_order() {
        let record = Record::new(
            7,
            &alert(vec![
                Evidence::Clinical {
                    quantity: Quantity::PulseRate,
                    value: Phi::new(141.0),
                },
                fact("comparison", "pulse_vs_heart_rate"),
                fact("window_ms", "30000"),
            ]),
        );
        assert_eq!(
            record.facts,
            vec![
                Fact {
                    name: "comparison".into(),
                    value: "pulse_vs_heart_rate".into()
                },
                Fact {
                    name: "window_ms".into(),
                    value: "30000".into()
                }
            ]
        );
        assert!(!format!("{record:?}").contains("141"));
        assert_eq!(record.id, 7);
        assert_eq!(record.kind_name(), "cross_signal_mismatch");
    }

    #[test]
    fn hostile_fact_text_is_bounded_and_cleaned() {
        let long = "x".repeat(10_000);
        let mut evidence = vec![
            fact("addr\"ess ]=", "10.0.0.1\n<13>1 forged"),
            fact("", &long),
            fact(&"n".repeat(100), "v"),
        ];
        evidence.extend((0..40).map(|i| fact("count", &i.to_string())));
        let record = Record::new(1, &alert(evidence));

        assert_eq!(record.facts[0].name, "addr_ess___");
        assert_eq!(record.facts[0].value, "10.0.0.1\u{FFFD}<13>1 forged");
        assert_eq!(record.facts[1].name, "fact");
        assert_eq!(record.facts[1].value.len(), MAX_FACT_VALUE);
        assert!(record.facts[1].value.ends_with("..."));
        assert_eq!(record.facts[2].name.len(), MAX_FACT_NAME);
        assert_eq!(record.facts.len(), MAX_FACTS);
        assert_eq!(record.facts_dropped, 3 + 40 - MAX_FACTS);
        // Repeated names are made unique: a JSON object and an SD-ELEMENT need that.
        assert_eq!(record.facts[3].name, "count");
        assert_eq!(record.facts[4].name, "count_2");
        assert_eq!(record.facts[5].name, "count_3");
    }

    #[test]
    fn a_technique_is_an_id_or_nothing() {
        let mut with = alert(vec![]);
        with.attack_technique = Some("T1059.001\" ]x".into());
        assert_eq!(
            Record::new(1, &with).technique.as_deref(),
            Some("T1059.001x")
        );
        with.attack_technique = Some("\"]".into());
        assert_eq!(Record::new(1, &with).technique, None);
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let record = Record::new(1, &alert(vec![fact("v", &"é".repeat(300))]));
        let value = &record.facts[0].value;
        assert!(value.len() <= MAX_FACT_VALUE && value.ends_with("..."));
        assert!(value.trim_end_matches("...").chars().all(|c| c == 'é'));
    }

    #[test]
    fn kinds_have_names_titles_and_categories() {
        assert_eq!(
            kind_name(AlertKind::RevokedCertificateUse),
            "revoked_certificate_use"
        );
        assert_eq!(kind_title(AlertKind::IdentityConflict), "Identity conflict");
        assert_eq!(kind_category(AlertKind::Flood), "network");
        assert_eq!(kind_category(AlertKind::Replay), "message_integrity");
        assert_eq!(severity_name(Severity::Critical), "critical");
    }
}
