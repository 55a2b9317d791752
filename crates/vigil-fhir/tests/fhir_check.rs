//! Every kind of resource this crate writes, validated by FHIR.js against the FHIR R4
//! definitions (`tools/fhir-check`). Needs Node.js and `npm ci` in tools/fhir-check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use vigil_fhir::audit::{ACTIONS, AuditSource, audit_event};
use vigil_fhir::capability::{CapabilityFacts, SmartEndpoints, capability_statement};
use vigil_fhir::device::{DeviceFacts, DeviceStatus, device};
use vigil_fhir::issue::{ALERT_KINDS, AlertFacts, detected_issue};
use vigil_fhir::observation::observation;
use vigil_fhir::patient::{PatientFacts, patient};
use vigil_fhir::{FhirError, Links, ResourceType, SearchsetWriter, search};
use vigil_model::audit::Reason;
use vigil_model::{
    Actor, Alert, AlertStatus, AuditEntry, DeviceClass, DeviceId, Evidence, Observation, Outcome,
    PatientId, Phi, Quantity, Resource, ResourceKind, Severity, Timestamp, UserId,
};

const T0: i64 = 1_764_403_200_000;

fn time(offset_ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0 + offset_ms).unwrap()
}

fn obs(quantity: Quantity, value: f64, patient: bool) -> Observation {
    Observation {
        device: DeviceId::new("mon-1").unwrap(),
        patient: patient.then(|| PatientId::new("p-17").unwrap()),
        quantity,
        value: Phi::new(value),
        time: time(1234),
        sequence: 1,
        implausible: quantity.check_range(value).is_err(),
    }
}

/// Every resource the crate writes, named.
fn resources() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add =
        |name: String, value: &Value| out.push((name, serde_json::to_vec(value).unwrap()));

    let id = PatientId::new("p-17").unwrap();
    let mrn = Phi::new("MRN-0042".to_owned());
    let name = Phi::new("Jane Doe".to_owned());
    let birth = Phi::new(time::macros::date!(1970 - 03 - 09));
    let full = PatientFacts {
        id: &id,
        mrn_system: "urn:oid:1.2.36.146.595.217.0.1",
        mrn: Some(&mrn),
        name: Some(&name),
        birth_date: Some(&birth),
    };
    add("patient-full".into(), &patient(&full).unwrap());
    let erased = PatientFacts {
        mrn: None,
        name: None,
        birth_date: None,
        ..full
    };
    add("patient-erased".into(), &patient(&erased).unwrap());

    for (i, class) in DeviceClass::ALL.iter().enumerate() {
        let device_id = DeviceId::new(format!("dev-{i}")).unwrap();
        let status = [
            DeviceStatus::Active,
            DeviceStatus::Inactive,
            DeviceStatus::Unknown,
        ][i % 3];
        let facts = DeviceFacts {
            id: &device_id,
            class: *class,
            status,
            patient: (i % 2 == 0).then_some(&id),
        };
        add(format!("device-{class}"), &device(&facts).unwrap());
    }

    for q in Quantity::ALL {
        let limits = q.spec().limits;
        let normal = (limits.min + limits.max) / 2.0;
        add(
            format!("observation-{q}"),
            &observation("o-1", &obs(*q, normal, true)).unwrap(),
        );
        add(
            format!("observation-{q}-high"),
            &observation("o-2", &obs(*q, limits.max + 1.0, true)).unwrap(),
        );
    }
    add(
        "observation-low".into(),
        &observation("o-3", &obs(Quantity::BodyTemperature, 3.5, true)).unwrap(),
    );
    add(
        "observation-no-patient".into(),
        &observation("o-4", &obs(Quantity::HeartRate, 60.0, false)).unwrap(),
    );

    let hub = AuditSource {
        site: "St Elsewhere ICU",
        observer: "urn:vigil:hub:icu-1",
    };
    let actors = [
        Actor::User(UserId::new("dr.house").unwrap()),
        Actor::Device(DeviceId::new("pump-1").unwrap()),
        Actor::System,
        Actor::Unauthenticated("2001:db8::1".into()),
        Actor::Unauthenticated("claims device pump-9".into()),
    ];
    let kinds = [
        ResourceKind::Patient,
        ResourceKind::Device,
        ResourceKind::Observation,
        ResourceKind::Alert,
        ResourceKind::User,
        ResourceKind::Certificate,
        ResourceKind::Configuration,
        ResourceKind::Key,
        ResourceKind::Topic,
        ResourceKind::AuditLog,
        ResourceKind::Firmware,
    ];
    let outcomes = [Outcome::Success, Outcome::Denied, Outcome::Failed];
    for (i, action) in ACTIONS.iter().enumerate() {
        let entry = AuditEntry {
            time: time(i as i64),
            actor: actors[i % actors.len()].clone(),
            action: *action,
            resource: Resource {
                kind: kinds[i % kinds.len()],
                id: if i % 4 == 3 {
                    "vigil/v1/d/x/obs".into()
                } else {
                    "p-17".into()
                },
            },
            outcome: outcomes[i % outcomes.len()],
            reason: (i % 2 == 0).then(|| Reason::new("emergency: unresponsive").unwrap()),
        };
        add(
            format!("audit-{action:?}"),
            &audit_event(&entry, i as u64, &hub),
        );
    }

    let statuses = [
        AlertStatus::Open,
        AlertStatus::Acknowledged,
        AlertStatus::Closed,
    ];
    for (i, kind) in ALERT_KINDS.iter().enumerate() {
        let alert = Alert {
            time: time(5),
            severity: [
                Severity::Info,
                Severity::Low,
                Severity::Medium,
                Severity::High,
                Severity::Critical,
            ][i % 5],
            kind: *kind,
            device: (i % 3 != 0).then(|| DeviceId::new("oxi-3").unwrap()),
            patient: (i % 2 == 0).then(|| PatientId::new("p-17").unwrap()),
            evidence: if i % 4 == 1 {
                Vec::new()
            } else {
                vec![
                    Evidence::Clinical {
                        quantity: Quantity::PulseRate,
                        value: Phi::new(141.0),
                    },
                    Evidence::Clinical {
                        quantity: Quantity::Spo2,
                        value: Phi::new(99.0),
                    },
                    Evidence::Fact {
                        name: "window_seconds".into(),
                        value: "30".into(),
                    },
                ]
            },
            attack_technique: (i % 2 == 1).then(|| "T0856".to_owned()),
        };
        let facts = AlertFacts {
            id: &format!("alert-{i}"),
            status: statuses[i % 3],
            alert: &alert,
        };
        add(
            format!("issue-{kind:?}-clinical"),
            &detected_issue(&facts, true).unwrap(),
        );
        add(
            format!("issue-{kind:?}-redacted"),
            &detected_issue(&facts, false).unwrap(),
        );
    }

    let errors = [
        FhirError::InvalidId,
        FhirError::NotFound(ResourceType::Observation),
        FhirError::Erased(ResourceType::Patient),
        FhirError::UnsupportedResource,
        FhirError::UnsupportedInteraction,
        FhirError::NotAcceptable,
        FhirError::Unauthenticated,
        FhirError::Forbidden,
        FhirError::Throttled,
        FhirError::Unrepresentable("device id"),
        FhirError::Internal,
        FhirError::Unavailable,
        search::parse(ResourceType::Observation, "date=yesterday", false)
            .unwrap_err()
            .into(),
        search::parse(ResourceType::Observation, "_sort=x", true)
            .unwrap_err()
            .into(),
        search::parse(ResourceType::Observation, &"a=1&".repeat(40), false)
            .unwrap_err()
            .into(),
    ];
    for (i, e) in errors.iter().enumerate() {
        add(format!("outcome-{i}"), &e.response().1);
    }

    let facts = CapabilityFacts {
        base_url: "https://hub.example/fhir/r4",
        version: "0.1.0",
        date: time(0),
        smart: Some(SmartEndpoints {
            authorize: "https://hub.example/oauth/authorize",
            token: "https://hub.example/oauth/token",
        }),
    };
    add("capability-smart".into(), &capability_statement(&facts));
    add(
        "capability".into(),
        &capability_statement(&CapabilityFacts {
            smart: None,
            ..facts
        }),
    );

    let base = "https://hub.example/fhir/r4";
    let query = search::parse(ResourceType::Observation, "patient=p-17&_count=3", false).unwrap();
    let self_url = format!("{base}/Observation?{}", query.link_query(None));
    let empty = SearchsetWriter::new(base).finish(
        Some(0),
        &Links {
            self_url: &self_url,
            ..Links::default()
        },
    );
    out.push(("bundle-empty".into(), empty));
    let mut writer = SearchsetWriter::new(base);
    for (i, q) in Quantity::ALL.iter().enumerate() {
        writer
            .push_observation(
                &format!("o-{i}"),
                &obs(*q, q.spec().limits.max * 2.0 + 1.0, true),
            )
            .unwrap();
    }
    writer.push_resource(&patient(&full).unwrap()).unwrap();
    let cursor = search::Cursor {
        time: time(1234),
        row: 14,
    };
    let next = format!("{base}/Observation?{}", query.link_query(Some(&cursor)));
    let previous = format!("{base}/Observation?{}", query.link_query(None));
    let bundle = writer.finish(
        None,
        &Links {
            self_url: &self_url,
            next: Some(&next),
            previous: Some(&previous),
        },
    );
    out.push(("bundle-next".into(), bundle));
    out
}

fn tool() -> PathBuf {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fhir-check");
    assert!(
        tool.join("node_modules/fhir").is_dir(),
        "FHIR.js is not installed: run `npm ci` in {}",
        tool.display()
    );
    tool
}

/// Runs the validator on files; returns success and its report.
fn fhir_check(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("node")
        .arg(tool().join("check.mjs"))
        .args(files)
        .output()
        .expect("node runs (install Node.js)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

fn write_all(dir: &Path, resources: &[(String, Vec<u8>)]) -> Vec<PathBuf> {
    resources
        .iter()
        .map(|(name, bytes)| {
            let path = dir.join(format!("{name}.json"));
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect()
}

/// Set `VIGIL_FHIR_OUT=<dir>` to keep the resources, e.g. for
/// `tools/fhir-check/check_fhir_resources.py`.
#[test]
fn every_resource_is_valid_fhir_r4() {
    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("VIGIL_FHIR_OUT").map(PathBuf::from);
    let out = keep.as_deref().unwrap_or(dir.path());
    std::fs::create_dir_all(out).unwrap();
    let resources = resources();
    assert!(resources.len() > 100, "{}", resources.len());
    let files = write_all(out, &resources);
    let (ok, report) = fhir_check(&files);
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!("{} resources, 0 errors", resources.len())),
        "{report}"
    );
}

#[test]
fn the_validator_catches_broken_resources() {
    let dir = tempfile::tempdir().unwrap();
    let good = observation("o-1", &obs(Quantity::HeartRate, 72.0, true)).unwrap();
    let mut broken = Vec::new();
    for (name, edit) in [
        ("status", ("status", Value::from("done"))),
        ("unexpected", ("valueFoo", Value::from("72"))),
        ("empty-array", ("category", Value::Array(Vec::new()))),
        (
            "bad-date",
            ("effectiveDateTime", Value::from("2025-13-01T00:00:00Z")),
        ),
        ("bad-id", ("id", Value::from("o_1"))),
    ] {
        let mut resource = good.clone();
        resource[edit.0] = edit.1;
        broken.push((name.to_owned(), serde_json::to_vec(&resource).unwrap()));
    }
    for file in write_all(dir.path(), &broken) {
        let (ok, report) = fhir_check(std::slice::from_ref(&file));
        assert!(!ok, "{} passed:\n{report}", file.display());
    }
}
