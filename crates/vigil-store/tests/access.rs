//! People's access: credentials (the second factor wrapped by the keyring), sign-in failures,
//! sessions, care team, consent, break-glass, the audit entries about a patient, and reading
//! observations page by page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::sync::Arc;

use vigil_model::phi::Phi;
use vigil_model::{
    Action, Actor, AuditEntry, DeviceClass, DeviceId, Observation, Outcome, PatientId, Quantity,
    Resource, ResourceKind, Role, Timestamp, UserId,
};
use vigil_store::seal::Keyring;
use vigil_store::{
    AccessStore, AuditStore, BreakGlassRecord, ClinicalStore, Demographics, DeviceRecord,
    DeviceStatus, ObservationQuery, RegistryStore, SqliteStore, StoreError, TokenRecord,
    UserRecord, UserSessionRecord, UserStore,
};

fn t(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis).unwrap()
}

fn open(dir: &Path) -> SqliteStore {
    let keyring = Keyring::load(dir, None)
        .or_else(|_| Keyring::create(dir))
        .unwrap();
    SqliteStore::open(dir, Arc::new(keyring)).unwrap()
}

fn user(store: &SqliteStore, name: &str, role: Role) -> UserId {
    let id = UserId::new(name).unwrap();
    store
        .add_user(&UserRecord {
            id: id.clone(),
            role,
            created_at: t(0),
            disabled_at: None,
        })
        .unwrap();
    id
}

fn patient(store: &SqliteStore, id: &str) -> PatientId {
    let id = PatientId::new(id).unwrap();
    store
        .add_patient(
            &id,
            &Demographics {
                name: Phi::new("Ada Example".into()),
                mrn: Phi::new(format!("MRN-{id}")),
                birth_date: Phi::new(time::macros::date!(1950 - 03 - 04)),
            },
            t(0),
        )
        .unwrap();
    id
}

fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(dir.join("vigil.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("vigil.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

#[test]
fn the_second_factor_secret_is_wrapped_survives_rotation_and_codes_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let admin = user(&store, "admin.kim", Role::Admin);
    assert_eq!(
        store.credentials(&admin).unwrap().unwrap(),
        vigil_store::Credentials {
            password: None,
            totp_secret: None,
            totp_step: None
        }
    );
    let secret: Vec<u8> = (0u8..20)
        .map(|b| b.wrapping_mul(37).wrapping_add(11))
        .collect();
    store
        .set_password(&admin, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
        .unwrap();
    store.set_totp_secret(&admin, Some(&secret)).unwrap();
    let credentials = store.credentials(&admin).unwrap().unwrap();
    assert_eq!(credentials.totp_secret.as_deref(), Some(secret.as_slice()));
    assert!(!format!("{credentials:?}").contains("argon2id"));
    assert!(
        !raw_bytes(dir.path())
            .windows(20)
            .any(|w| w == secret.as_slice()),
        "the second-factor secret is on disk in clear"
    );
    // A secret of the wrong length is refused.
    assert!(store.set_totp_secret(&admin, Some(&[1; 16])).is_err());

    // Each time step is accepted once, and never an older one.
    assert!(store.accept_totp_step(&admin, 100).unwrap());
    assert!(!store.accept_totp_step(&admin, 100).unwrap());
    assert!(!store.accept_totp_step(&admin, 99).unwrap());
    assert!(store.accept_totp_step(&admin, 101).unwrap());

    // A keyring rotation re-wraps the secret with the data keys.
    drop(store);
    let mut keyring = Keyring::load(dir.path(), None).unwrap();
    keyring.rotate(dir.path()).unwrap();
    let store = SqliteStore::open(dir.path(), Arc::new(keyring)).unwrap();
    store.rewrap_data_keys().unwrap();
    let kek: i64 = rusqlite::Connection::open(dir.path().join("vigil.db"))
        .unwrap()
        .query_row("SELECT totp_kek_id FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kek, 2);
    assert_eq!(
        store.credentials(&admin).unwrap().unwrap().totp_secret,
        Some(secret)
    );
    let ghost = UserId::new("ghost").unwrap();
    assert!(store.credentials(&ghost).unwrap().is_none());
    assert!(matches!(
        store.set_password(&ghost, "x"),
        Err(StoreError::NoSuchUser(_))
    ));
}

#[test]
fn sign_in_failures_are_kept_for_a_window_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let nurse = user(&store, "n.okafor", Role::Clinician);
    for at in [1_000, 2_000, 3_000] {
        store.record_sign_in_failure(&nurse, t(at), t(0)).unwrap();
    }
    // Failures before keep_after are forgotten.
    let kept = store
        .record_sign_in_failure(&nurse, t(9_000), t(2_500))
        .unwrap();
    assert_eq!(kept, vec![t(3_000), t(9_000)]);
    assert_eq!(store.sign_in_failures(&nurse).unwrap().len(), 2);
    store.clear_sign_in_failures(&nurse).unwrap();
    assert!(store.sign_in_failures(&nurse).unwrap().is_empty());
}

#[test]
fn sessions_are_touched_revoked_one_by_one_or_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let nurse = user(&store, "n.okafor", Role::Clinician);
    for id in ["s1", "s2"] {
        store
            .add_user_session(&UserSessionRecord {
                id: id.into(),
                user: nurse.clone(),
                created_at: t(1_000),
                last_used: t(1_000),
                expires_at: t(100_000),
                revoked_at: None,
            })
            .unwrap();
    }
    store.touch_user_session("s1", t(5_000)).unwrap();
    store.touch_user_session("s1", t(4_000)).unwrap(); // never moves back
    assert_eq!(
        store.user_session("s1").unwrap().unwrap().last_used,
        t(5_000)
    );
    assert!(store.revoke_user_session("s1", t(6_000)).unwrap());
    assert!(!store.revoke_user_session("s1", t(7_000)).unwrap());
    assert_eq!(
        store.user_session("s1").unwrap().unwrap().revoked_at,
        Some(t(6_000))
    );
    assert_eq!(store.revoke_sessions_of(&nurse, t(8_000)).unwrap(), 1);
    assert!(store.user_session("nope").unwrap().is_none());
    let ghost = UserSessionRecord {
        id: "s3".into(),
        user: UserId::new("ghost").unwrap(),
        created_at: t(0),
        last_used: t(0),
        expires_at: t(1),
        revoked_at: None,
    };
    assert!(matches!(
        store.add_user_session(&ghost),
        Err(StoreError::NoSuchUser(_))
    ));
}

#[test]
fn care_team_consent_and_break_glass_are_facts_with_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let doctor = user(&store, "dr.house", Role::Clinician);
    let other = user(&store, "dr.grey", Role::Clinician);
    let p1 = patient(&store, "p-1");
    let p2 = patient(&store, "p-2");

    assert!(store.add_to_care_team(&doctor, &p1, t(1)).unwrap());
    assert!(!store.add_to_care_team(&doctor, &p1, t(2)).unwrap());
    assert!(store.is_on_care_team(&doctor, &p1).unwrap());
    assert!(!store.is_on_care_team(&other, &p1).unwrap());
    assert_eq!(store.care_team_patients(&doctor).unwrap(), vec![p1.clone()]);
    assert!(store.remove_from_care_team(&doctor, &p1, t(3)).unwrap());
    assert!(!store.remove_from_care_team(&doctor, &p1, t(4)).unwrap());
    assert!(!store.is_on_care_team(&doctor, &p1).unwrap());
    // Back on the team later: a new period, the old one kept.
    assert!(store.add_to_care_team(&doctor, &p1, t(5)).unwrap());
    assert!(store.is_on_care_team(&doctor, &p1).unwrap());

    assert!(store.grant_consent(&p2, &other, t(10)).unwrap());
    assert!(!store.grant_consent(&p2, &other, t(11)).unwrap());
    assert!(store.has_consent(&p2, &other).unwrap());
    assert!(!store.has_consent(&p1, &other).unwrap());
    assert_eq!(store.consented_patients(&other).unwrap(), vec![p2.clone()]);
    assert!(store.withdraw_consent(&p2, &other, t(12)).unwrap());
    assert!(!store.has_consent(&p2, &other).unwrap());
    let consents = store.consents(&p2).unwrap();
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0].withdrawn_at, Some(t(12)));

    let grant = BreakGlassRecord {
        user: other.clone(),
        patient: p1.clone(),
        reason: "unresponsive on arrival".into(),
        opened_at: t(100),
        expires_at: t(1_000),
    };
    store.open_break_glass(&grant).unwrap();
    assert_eq!(
        store.active_break_glass(&other, &p1, t(500)).unwrap(),
        Some(t(1_000))
    );
    assert_eq!(
        store.active_break_glass(&other, &p1, t(1_000)).unwrap(),
        None
    );
    assert_eq!(store.active_break_glass(&other, &p2, t(500)).unwrap(), None);

    let unknown = PatientId::new("p-404").unwrap();
    assert!(matches!(
        store.add_to_care_team(&doctor, &unknown, t(1)),
        Err(StoreError::NoSuchPatient(_))
    ));
    assert!(matches!(
        store.grant_consent(&p1, &UserId::new("ghost").unwrap(), t(1)),
        Err(StoreError::NoSuchUser(_))
    ));
    let patient_user = user(&store, "ada", Role::Patient);
    store.set_user_patient(&patient_user, &p1).unwrap();
    assert_eq!(store.user_patient(&patient_user).unwrap(), Some(p1));
    assert_eq!(store.user_patient(&doctor).unwrap(), None);
}

fn read_entry(who: &UserId, kind: ResourceKind, id: &str, at: i64) -> AuditEntry {
    AuditEntry {
        time: t(at),
        actor: Actor::User(who.clone()),
        action: Action::Read,
        resource: Resource {
            kind,
            id: id.into(),
        },
        outcome: Outcome::Success,
        reason: None,
    }
}

#[test]
fn a_patient_sees_the_audit_entries_about_them_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let doctor = UserId::new("dr.house").unwrap();
    let a = store
        .append_audit(&read_entry(&doctor, ResourceKind::Patient, "p-1", 1))
        .unwrap();
    store
        .append_audit(&read_entry(&doctor, ResourceKind::Patient, "p-2", 2))
        .unwrap();
    store
        .append_audit(&read_entry(&doctor, ResourceKind::Device, "p-1", 3))
        .unwrap();
    let c = store
        .append_audit(&read_entry(&doctor, ResourceKind::Observation, "p-1", 4))
        .unwrap();
    let p1 = PatientId::new("p-1").unwrap();
    let about = store.patient_audit_entries(&p1, None, 10).unwrap();
    assert_eq!(
        about.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        vec![c, a]
    );
    let older = store.patient_audit_entries(&p1, Some(c), 10).unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].0, a);
}

fn register(store: &SqliteStore, id: &str) -> DeviceId {
    let device = DeviceId::new(id).unwrap();
    store
        .add_device(
            &DeviceRecord {
                id: device.clone(),
                class: DeviceClass::BedsideMonitor,
                status: DeviceStatus::Registered,
                created_at: t(0),
                revoked_at: None,
            },
            &TokenRecord {
                id: format!("tok-{id}"),
                device: device.clone(),
                secret_hash: vec![0; 32],
                created_at: t(0),
                expires_at: t(1),
            },
        )
        .unwrap();
    device
}

#[test]
fn observations_are_read_page_by_page_in_time_order_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let p1 = patient(&store, "p-1");
    let p2 = patient(&store, "p-2");
    let monitor = register(&store, "mon-1");
    store.assign_device(&monitor, &p1, t(0)).unwrap();
    // 50 messages of three readings sharing one time each, and one reading of another patient.
    let mut batch = Vec::new();
    for sequence in 0..50u64 {
        let time = t(10_000 + i64::try_from(sequence).unwrap() * 1_000);
        for (quantity, value) in [
            (Quantity::HeartRate, 60.0 + sequence as f64),
            (Quantity::Spo2, 97.0),
            (Quantity::RespirationRate, 14.0),
        ] {
            batch.push(Observation {
                device: monitor.clone(),
                patient: Some(p1.clone()),
                quantity,
                value: Phi::new(value),
                time,
                sequence,
                implausible: false,
            });
        }
    }
    batch.push(Observation {
        device: monitor.clone(),
        patient: Some(p2.clone()),
        quantity: Quantity::HeartRate,
        value: Phi::new(80.0),
        time: t(20_000),
        sequence: 999,
        implausible: true,
    });
    store.commit_observations(batch).unwrap();

    let mut query = ObservationQuery {
        patient: p1.clone(),
        quantities: Vec::new(),
        from: t(0),
        to: t(1_000_000),
        after: None,
        limit: 7,
    };
    assert_eq!(store.count_observations(&query).unwrap(), 150);
    let mut seen = Vec::new();
    loop {
        let page = store.observation_page(&query).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        let last = page.last().unwrap();
        query.after = Some((last.observation.time, last.id));
        seen.extend(page);
    }
    assert_eq!(seen.len(), 150);
    let mut ids: Vec<i64> = seen.iter().map(|s| s.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 150);
    assert!(
        seen.windows(2)
            .all(|w| (w[0].observation.time, w[0].id) < (w[1].observation.time, w[1].id))
    );

    // One quantity, a time range.
    let heart = ObservationQuery {
        patient: p1.clone(),
        quantities: vec![Quantity::HeartRate],
        from: t(20_000),
        to: t(25_000),
        after: None,
        limit: 100,
    };
    let page = store.observation_page(&heart).unwrap();
    assert_eq!(page.len(), 5);
    assert_eq!(*page[0].observation.value.expose(), 70.0);
    assert!(
        page.iter()
            .all(|s| s.observation.quantity == Quantity::HeartRate)
    );
    assert_eq!(store.count_observations(&heart).unwrap(), 5);

    // One by id, with its patient and flag.
    let other: Vec<_> = store
        .observation_page(&ObservationQuery {
            patient: p2.clone(),
            quantities: Vec::new(),
            from: t(0),
            to: t(1_000_000),
            after: None,
            limit: 10,
        })
        .unwrap();
    assert_eq!(other.len(), 1);
    let one = store.observation(other[0].id).unwrap().unwrap();
    assert_eq!(one.observation.patient, Some(p2.clone()));
    assert!(one.observation.implausible);
    assert!(store.observation(1_000_000).unwrap().is_none());

    let assignments = store.assignments_of(&p1).unwrap();
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].device, monitor);
    assert_eq!(assignments[0].to, None);
}
