//! Users and alerts: stored, handled, and clinical evidence sealed like the rest of the record.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use vigil_model::phi::Phi;
use vigil_model::{
    Alert, AlertKind, AlertStatus, DeviceId, Evidence, PatientId, Quantity, Role, Severity,
    Timestamp, UserId,
};
use vigil_store::seal::Keyring;
use vigil_store::{
    AlertStore, ClinicalStore, Demographics, SqliteStore, StoreError, UserRecord, UserStore,
};

fn t(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis).unwrap()
}

fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(dir, Arc::new(Keyring::create(dir).unwrap())).unwrap()
}

#[test]
fn users_are_added_once_and_disabled_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let nurse = UserRecord {
        id: UserId::new("n.okafor").unwrap(),
        role: Role::Clinician,
        created_at: t(1),
        disabled_at: None,
    };
    store.add_user(&nurse).unwrap();
    assert!(matches!(
        store.add_user(&nurse),
        Err(StoreError::UserExists(_))
    ));
    store.disable_user(&nurse.id, t(9)).unwrap();
    let stored = store.user(&nurse.id).unwrap().unwrap();
    assert_eq!(
        (stored.role, stored.disabled_at),
        (Role::Clinician, Some(t(9)))
    );
    assert_eq!(store.users().unwrap().len(), 1);
    assert!(matches!(
        store.disable_user(&UserId::new("ghost").unwrap(), t(1)),
        Err(StoreError::NoSuchUser(_))
    ));
}

#[test]
fn alerts_keep_facts_in_clear_and_clinical_evidence_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let patient = PatientId::new("p-3").unwrap();
    store
        .add_patient(
            &patient,
            &Demographics {
                name: Phi::new("X".into()),
                mrn: Phi::new("Y".into()),
                birth_date: Phi::new(time::macros::date!(2000 - 01 - 01)),
            },
            t(0),
        )
        .unwrap();
    let odd = 61.987_654_321_f64;
    let alert = Alert {
        time: t(5_000),
        severity: Severity::High,
        kind: AlertKind::CrossSignalMismatch,
        device: Some(DeviceId::new("oxi-3").unwrap()),
        patient: Some(patient.clone()),
        evidence: vec![
            Evidence::Fact {
                name: "window_seconds".into(),
                value: "30".into(),
            },
            Evidence::Clinical {
                quantity: Quantity::PulseRate,
                value: Phi::new(odd),
            },
        ],
        attack_technique: Some("T0856".into()),
    };
    let id = store.add_alert(&alert).unwrap();
    let stored = store.alert(id).unwrap().unwrap();
    assert_eq!(stored.alert, alert);
    assert_eq!(stored.status, AlertStatus::Open);

    let raw = std::fs::read(dir.path().join("vigil.db-wal")).unwrap_or_default();
    assert!(
        !raw.windows(8)
            .any(|w| w == odd.to_be_bytes() || w == odd.to_le_bytes())
    );

    let officer = UserId::new("sec.lee").unwrap();
    store
        .set_alert_status(id, AlertStatus::Acknowledged, &officer, t(6_000))
        .unwrap();
    assert_eq!(store.alerts(Some(AlertStatus::Open), 10).unwrap().len(), 0);
    let acknowledged = store.alerts(Some(AlertStatus::Acknowledged), 10).unwrap();
    assert_eq!(acknowledged[0].handled, Some((officer.clone(), t(6_000))));
    assert!(matches!(
        store.set_alert_status(99, AlertStatus::Closed, &officer, t(7_000)),
        Err(StoreError::NoSuchAlert(99))
    ));

    // After erasure the alert stays, without its clinical evidence.
    store.erase_patient(&patient, t(8_000)).unwrap();
    let after = store.alert(id).unwrap().unwrap();
    assert_eq!(after.alert.evidence.len(), 1);
}

#[test]
fn export_owes_each_sink_the_newest_alerts_after_its_cursor_which_never_moves_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.last_alert_id().unwrap(), 0);
    assert!(store.alerts_after(0, 10).unwrap().is_empty());
    let ids: Vec<u64> = (0..5)
        .map(|i| {
            store
                .add_alert(&Alert {
                    time: t(1_000 * i),
                    severity: Severity::Medium,
                    kind: AlertKind::ProtocolViolation,
                    device: None,
                    patient: None,
                    evidence: vec![],
                    attack_technique: None,
                })
                .unwrap()
        })
        .collect();
    assert_eq!(store.last_alert_id().unwrap(), ids[4]);
    let owed = |after: u64, limit: usize| -> Vec<u64> {
        store
            .alerts_after(after, limit)
            .unwrap()
            .iter()
            .map(|a| a.id)
            .collect()
    };
    assert_eq!(owed(ids[1], 10), ids[2..].to_vec(), "oldest first");
    assert_eq!(
        owed(0, 2),
        ids[3..].to_vec(),
        "the newest when more are owed"
    );
    assert!(owed(ids[4], 10).is_empty());

    assert_eq!(store.export_cursor("soc").unwrap(), None);
    store.set_export_cursor("soc", ids[3]).unwrap();
    store.set_export_cursor("soc", ids[1]).unwrap();
    assert_eq!(
        store.export_cursor("soc").unwrap(),
        Some(ids[3]),
        "never back"
    );
    assert_eq!(store.export_cursor("pager").unwrap(), None, "per sink");
    drop(store);
    let keyring = Keyring::load(dir.path(), None).unwrap();
    let reopened = SqliteStore::open(dir.path(), Arc::new(keyring)).unwrap();
    assert_eq!(reopened.export_cursor("soc").unwrap(), Some(ids[3]));
}
