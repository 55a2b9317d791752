//! `AuditEvent` from an entry of Vigil's audit log.
//!
//! The resource id is the entry's leaf index in the Merkle log, so a reader can ask the hub
//! for that leaf's inclusion proof. Codes, all from the FHIR R4 value sets (see [`codes`]):
//!
//! | Vigil action | `type` | `subtype` | `action` |
//! | --- | --- | --- | --- |
//! | read, create, update, delete | `rest` (audit-event-type) | `read`/`create`/`update`/`delete` (restful-interaction) | R/C/U/D |
//! | read of the audit log | DCM 110101 Audit Log Used | — | R |
//! | ingest | DCM 110107 Import | — | C |
//! | login, logout | DCM 110114 User Authentication | DCM 110122 Login, 110123 Logout | E |
//! | enrol, renew | DCM 110113 Security Alert | DCM 110137 User Security Attributes Changed | C |
//! | revoke | DCM 110113 | DCM 110137 | U |
//! | connect | DCM 110108 Network Entry | DCM 110124 Attach | E |
//! | command, approve | DCM 110113 | DCM 110132 Use of Restricted Function | E |
//! | configure, firmware | DCM 110113 | DCM 110131 Software Configuration | U |
//! | break-glass | DCM 110113 | DCM 110127 Emergency Override Started | E |
//! | consent | DCM 110113 | DCM 110135 Object Security Attributes Changed | U |
//! | rotate keys | DCM 110113 | DCM 110129 Security Configuration | U |
//! | erase | DCM 110110 Patient Record | — | D |
//!
//! Outcome (audit-event-outcome): success `0`; denied `4` minor failure (the request was
//! refused, as an HTTP 4xx); failed `8` serious failure (as an HTTP 5xx). `12` (major
//! failure: the system is no longer available) is not produced by a single entry.

use std::net::IpAddr;

use serde_json::{Map, Value, json};
use vigil_model::{Action, Actor, AuditEntry, Outcome, ResourceKind};

use crate::json::write_instant;
use crate::{codes, is_fhir_id};

/// The system that records the events: `AuditEvent.source`.
#[derive(Debug, Clone, Copy)]
pub struct AuditSource<'a> {
    /// The hub's name for people, e.g. the hospital site (`source.site`).
    pub site: &'a str,
    /// The hub's identity, a URI such as its certificate's SAN (`source.observer`).
    pub observer: &'a str,
}

type Coding = (&'static str, &'static str, &'static str);

const fn dcm(code: &'static str, display: &'static str) -> Coding {
    (codes::DICOM, code, display)
}

const fn rest(code: &'static str) -> Coding {
    (codes::RESTFUL_INTERACTION, code, code)
}

const SECURITY_ALERT: Coding = dcm("110113", "Security Alert");

/// `type`, `subtype` and `action` of a Vigil action.
fn classify(action: Action, resource: ResourceKind) -> (Coding, Option<Coding>, &'static str) {
    let rest_type = (codes::AUDIT_EVENT_TYPE, "rest", "RESTful Operation");
    match action {
        Action::Read if resource == ResourceKind::AuditLog => {
            (dcm("110101", "Audit Log Used"), None, "R")
        }
        Action::Read => (rest_type, Some(rest("read")), "R"),
        Action::Create => (rest_type, Some(rest("create")), "C"),
        Action::Update => (rest_type, Some(rest("update")), "U"),
        Action::Delete => (rest_type, Some(rest("delete")), "D"),
        Action::Ingest => (dcm("110107", "Import"), None, "C"),
        Action::Login => (
            dcm("110114", "User Authentication"),
            Some(dcm("110122", "Login")),
            "E",
        ),
        Action::Logout => (
            dcm("110114", "User Authentication"),
            Some(dcm("110123", "Logout")),
            "E",
        ),
        Action::Enroll | Action::Renew => (
            SECURITY_ALERT,
            Some(dcm("110137", "User security Attributes Changed")),
            "C",
        ),
        Action::Revoke => (
            SECURITY_ALERT,
            Some(dcm("110137", "User security Attributes Changed")),
            "U",
        ),
        Action::Connect => (
            dcm("110108", "Network Entry"),
            Some(dcm("110124", "Attach")),
            "E",
        ),
        Action::Command | Action::Approve => (
            SECURITY_ALERT,
            Some(dcm("110132", "Use of Restricted Function")),
            "E",
        ),
        Action::Configure | Action::Firmware => (
            SECURITY_ALERT,
            Some(dcm("110131", "Software Configuration")),
            "U",
        ),
        Action::BreakGlass => (
            SECURITY_ALERT,
            Some(dcm("110127", "Emergency Override Started")),
            "E",
        ),
        Action::Consent => (
            SECURITY_ALERT,
            Some(dcm("110135", "Object Security Attributes Changed")),
            "U",
        ),
        Action::RotateKeys => (
            SECURITY_ALERT,
            Some(dcm("110129", "Security Configuration")),
            "U",
        ),
        Action::Erase => (dcm("110110", "Patient Record"), None, "D"),
        // An action added to vigil-model after this table: still audited, coded generically
        // until it gets its own row.
        _ => (dcm("110100", "Application Activity"), None, "E"),
    }
}

fn coding((system, code, display): Coding) -> Value {
    json!({"system": system, "code": code, "display": display})
}

/// `outcome` code and display (audit-event-outcome).
fn outcome(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "0",
        Outcome::Denied => "4",
        Outcome::Failed => "8",
    }
}

/// Longest text kept from what an unauthenticated peer claimed.
const MAX_CLAIM: usize = 64;

fn agent(actor: &Actor) -> Value {
    match actor {
        Actor::User(user) => json!({
            "who": {"identifier": {"system": codes::VIGIL_USER, "value": user.as_str()}},
            "requestor": true,
        }),
        Actor::Device(device) => {
            let mut who = Map::new();
            if is_fhir_id(device.as_str()) {
                who.insert("reference".into(), format!("Device/{device}").into());
            }
            who.insert(
                "identifier".into(),
                json!({"system": codes::URI_SYSTEM,
                       "value": format!("{}{device}", vigil_model::id::DEVICE_URN_PREFIX)}),
            );
            json!({"who": who, "requestor": true})
        }
        Actor::System => json!({"name": "Vigil hub", "requestor": false}),
        Actor::Unauthenticated(claim) => {
            // What a peer claimed is untrusted: an IP address goes where FHIR keeps addresses,
            // anything else is kept short and without control characters.
            let claim = claim.trim();
            match claim.parse::<IpAddr>() {
                Ok(address) => json!({
                    "name": "unauthenticated peer",
                    "requestor": true,
                    "network": {"address": address.to_string(), "type": "2"},
                }),
                Err(_) => {
                    let kept: String = claim
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(MAX_CLAIM)
                        .collect();
                    let mut agent = json!({"name": "unauthenticated peer", "requestor": true});
                    if !kept.trim().is_empty() {
                        agent["altId"] = kept.into();
                    }
                    agent
                }
            }
        }
    }
}

fn entity(kind: ResourceKind, id: &str) -> Value {
    let (resource_type, role): (Option<&str>, Option<(&str, &str)>) = match kind {
        ResourceKind::Patient => (Some("Patient"), Some(("1", "Patient"))),
        ResourceKind::Device => (Some("Device"), Some(("4", "Domain Resource"))),
        ResourceKind::Observation => (Some("Observation"), Some(("4", "Domain Resource"))),
        ResourceKind::Alert => (Some("DetectedIssue"), Some(("3", "Report"))),
        ResourceKind::User => (None, Some(("11", "Security User Entity"))),
        ResourceKind::Certificate | ResourceKind::Key => (None, Some(("13", "Security Resource"))),
        ResourceKind::AuditLog => (Some("AuditEvent"), Some(("17", "Data Repository"))),
        ResourceKind::Configuration => (None, Some(("5", "Master file"))),
        _ => (None, None),
    };
    let mut what = Map::new();
    // An Observation entry names the patient whose observations were touched, not a resource
    // with that id, so it is an identifier, not a reference.
    if let Some(t) = resource_type.filter(|t| *t != "Observation" && *t != "AuditEvent")
        && is_fhir_id(id)
    {
        what.insert("reference".into(), format!("{t}/{id}").into());
    }
    let kept: String = id.chars().filter(|c| !c.is_control()).take(256).collect();
    if !kept.is_empty() {
        what.insert("identifier".into(), json!({"value": kept}));
    }
    let mut entity = Map::new();
    if !what.is_empty() {
        entity.insert("what".into(), Value::Object(what));
    }
    entity.insert(
        "type".into(),
        match resource_type {
            Some(t) => json!({"system": codes::RESOURCE_TYPES, "code": t, "display": t}),
            None => {
                json!({"system": codes::AUDIT_ENTITY_TYPE, "code": "2", "display": "System Object"})
            }
        },
    );
    if let Some((code, display)) = role {
        entity.insert(
            "role".into(),
            json!({"system": codes::OBJECT_ROLE, "code": code, "display": display}),
        );
    }
    Value::Object(entity)
}

/// The `AuditEvent` of the log entry at `leaf` (its index in the audit log).
pub fn audit_event(entry: &AuditEntry, leaf: u64, source: &AuditSource<'_>) -> Value {
    let (type_, subtype, action) = classify(entry.action, entry.resource.kind);
    let mut recorded = Vec::with_capacity(26);
    write_instant(&mut recorded, entry.time);
    let recorded = String::from_utf8_lossy(&recorded)
        .trim_matches('"')
        .to_owned();

    let mut event = Map::new();
    event.insert("resourceType".into(), "AuditEvent".into());
    event.insert("id".into(), leaf.to_string().into());
    event.insert("type".into(), coding(type_));
    if let Some(subtype) = subtype {
        event.insert("subtype".into(), json!([coding(subtype)]));
    }
    event.insert("action".into(), action.into());
    event.insert("recorded".into(), recorded.into());
    event.insert("outcome".into(), outcome(entry.outcome).into());
    if let Some(reason) = &entry.reason {
        match entry.outcome {
            // Why it was refused or failed.
            Outcome::Denied | Outcome::Failed => {
                event.insert("outcomeDesc".into(), reason.as_str().into());
            }
            // Why it was done (a break-glass justification).
            Outcome::Success => {
                event.insert("purposeOfEvent".into(), json!([{"text": reason.as_str()}]));
            }
        }
    }
    event.insert("agent".into(), json!([agent(&entry.actor)]));
    let mut source_json = json!({
        "observer": {"identifier": {"system": codes::URI_SYSTEM, "value": source.observer},
                     "display": source.site},
        "type": [{"system": codes::SECURITY_SOURCE_TYPE, "code": "4",
                  "display": "Application Server"}],
    });
    if !source.site.is_empty() {
        source_json["site"] = source.site.into();
    }
    event.insert("source".into(), source_json);
    event.insert(
        "entity".into(),
        json!([entity(entry.resource.kind, &entry.resource.id)]),
    );
    Value::Object(event)
}

/// Every action Vigil audits today, for tests that cover them all.
pub const ACTIONS: &[Action] = &[
    Action::Read,
    Action::Create,
    Action::Update,
    Action::Delete,
    Action::Ingest,
    Action::Login,
    Action::Logout,
    Action::Enroll,
    Action::Renew,
    Action::Revoke,
    Action::Connect,
    Action::Command,
    Action::Approve,
    Action::Configure,
    Action::BreakGlass,
    Action::Consent,
    Action::Erase,
    Action::RotateKeys,
    Action::Firmware,
];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use vigil_model::audit::Reason;
    use vigil_model::{DeviceId, Resource, Timestamp, UserId};

    const HUB: AuditSource<'static> = AuditSource {
        site: "St Elsewhere ICU",
        observer: "urn:vigil:hub:icu",
    };

    fn entry(actor: Actor, action: Action, kind: ResourceKind, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            time: Timestamp::from_unix_millis(1_764_403_200_000).unwrap(),
            actor,
            action,
            resource: Resource {
                kind,
                id: "p-17".into(),
            },
            outcome,
            reason: None,
        }
    }

    #[test]
    fn a_clinician_reading_a_record_is_a_rest_read() {
        let e = entry(
            Actor::User(UserId::new("dr.house").unwrap()),
            Action::Read,
            ResourceKind::Patient,
            Outcome::Success,
        );
        let got = audit_event(&e, 42, &HUB);
        assert_eq!(got["id"], "42");
        assert_eq!(got["type"]["code"], "rest");
        assert_eq!(got["subtype"][0]["system"], codes::RESTFUL_INTERACTION);
        assert_eq!(got["subtype"][0]["code"], "read");
        assert_eq!(got["action"], "R");
        assert_eq!(got["outcome"], "0");
        assert_eq!(got["recorded"], "2025-11-29T08:00:00.000Z");
        assert_eq!(got["agent"][0]["who"]["identifier"]["value"], "dr.house");
        assert_eq!(got["entity"][0]["what"]["reference"], "Patient/p-17");
        assert_eq!(got["entity"][0]["role"]["code"], "1");
        assert_eq!(got["source"]["type"][0]["code"], "4");
    }

    #[test]
    fn every_action_has_a_type_and_a_valid_action_code() {
        for action in ACTIONS {
            let (type_, subtype, code) = classify(*action, ResourceKind::Device);
            assert!(["C", "R", "U", "D", "E"].contains(&code), "{action:?}");
            assert!(
                type_.0 == codes::DICOM || type_.0 == codes::AUDIT_EVENT_TYPE,
                "{action:?}"
            );
            if type_.1 == "rest" {
                assert_eq!(subtype.unwrap().0, codes::RESTFUL_INTERACTION);
            }
            if type_.1 == "110100" {
                panic!("{action:?} falls through to the generic row");
            }
        }
        assert_eq!(classify(Action::Read, ResourceKind::AuditLog).0.1, "110101");
    }

    #[test]
    fn refusals_carry_their_reason_and_failures_their_outcome() {
        let mut e = entry(
            Actor::Device(DeviceId::new("pump-1").unwrap()),
            Action::Command,
            ResourceKind::Device,
            Outcome::Denied,
        );
        e.reason = Some(Reason::new("rate above the safety profile").unwrap());
        let got = audit_event(&e, 1, &HUB);
        assert_eq!(got["outcome"], "4");
        assert_eq!(got["outcomeDesc"], "rate above the safety profile");
        assert_eq!(got["agent"][0]["who"]["reference"], "Device/pump-1");
        e.outcome = Outcome::Failed;
        assert_eq!(audit_event(&e, 1, &HUB)["outcome"], "8");
        e.outcome = Outcome::Success;
        e.action = Action::BreakGlass;
        let got = audit_event(&e, 1, &HUB);
        assert_eq!(
            got["purposeOfEvent"][0]["text"],
            "rate above the safety profile"
        );
        assert_eq!(got["subtype"][0]["code"], "110127");
    }

    #[test]
    fn unauthenticated_claims_are_bounded_and_addresses_typed() {
        let got = audit_event(
            &entry(
                Actor::Unauthenticated("192.0.2.7".into()),
                Action::Connect,
                ResourceKind::Topic,
                Outcome::Denied,
            ),
            3,
            &HUB,
        );
        assert_eq!(got["agent"][0]["network"]["address"], "192.0.2.7");
        assert_eq!(got["agent"][0]["network"]["type"], "2");
        let long = format!("claims device {}\u{7}", "x".repeat(500));
        let got = audit_event(
            &entry(
                Actor::Unauthenticated(long),
                Action::Connect,
                ResourceKind::Device,
                Outcome::Denied,
            ),
            3,
            &HUB,
        );
        let alt = got["agent"][0]["altId"].as_str().unwrap();
        assert_eq!(alt.chars().count(), MAX_CLAIM);
        assert!(!alt.contains('\u{7}'));
        let system = audit_event(
            &entry(
                Actor::System,
                Action::RotateKeys,
                ResourceKind::Key,
                Outcome::Success,
            ),
            4,
            &HUB,
        );
        assert_eq!(system["agent"][0]["requestor"], false);
        assert_eq!(system["entity"][0]["type"]["code"], "2");
    }
}
