//! The clinical record: sealed at rest, bound to its rows, erasable, durable by group commit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use vigil_model::phi::Phi;
use vigil_model::{DeviceClass, DeviceId, Observation, PatientId, Quantity, Timestamp};
use vigil_store::seal::{KeyEncryptionKeys, Keyring, SealError};
use vigil_store::{
    AuditStore, ClinicalStore, Demographics, DeviceRecord, DeviceStatus, RegistryStore,
    SqliteStore, StoreError, TokenRecord,
};

const NAME: &str = "Margarethe Okonkwo-Villanueva";
const MRN: &str = "MRN-99177342";

fn t(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis).unwrap()
}

fn patient(id: &str) -> PatientId {
    PatientId::new(id).unwrap()
}

fn device(id: &str) -> DeviceId {
    DeviceId::new(id).unwrap()
}

fn demographics(name: &str, mrn: &str) -> Demographics {
    Demographics {
        name: Phi::new(name.to_owned()),
        mrn: Phi::new(mrn.to_owned()),
        birth_date: Phi::new(time::macros::date!(1961 - 04 - 17)),
    }
}

fn open(dir: &Path) -> SqliteStore {
    let keyring = Keyring::load(dir, None)
        .or_else(|_| Keyring::create(dir))
        .unwrap();
    SqliteStore::open(dir, Arc::new(keyring)).unwrap()
}

fn register(store: &SqliteStore, id: &str) {
    store
        .add_device(
            &DeviceRecord {
                id: device(id),
                class: DeviceClass::PulseOximeter,
                status: DeviceStatus::Registered,
                created_at: t(0),
                revoked_at: None,
            },
            &TokenRecord {
                id: format!("tok-{id}"),
                device: device(id),
                secret_hash: vec![0; 32],
                created_at: t(0),
                expires_at: t(1),
            },
        )
        .unwrap();
}

fn spo2(device_id: &str, patient_id: &str, sequence: u64, value: f64) -> Observation {
    Observation {
        device: device(device_id),
        patient: Some(patient(patient_id)),
        quantity: Quantity::Spo2,
        value: Phi::new(value),
        time: t(1_000 + i64::try_from(sequence).unwrap()),
        sequence,
        implausible: false,
    }
}

/// Every byte the store has on disk: the database, its write-ahead log, and the intake log's
/// segments (ADR 0014).
fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(dir.join("vigil.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("vigil.db-wal")) {
        bytes.extend(wal);
    }
    let mut segments = 0;
    for entry in std::fs::read_dir(dir.join(vigil_store::sqlite::INTAKE_DIR)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension() == Some("log".as_ref()) {
            bytes.extend(std::fs::read(path).unwrap());
            segments += 1;
        }
    }
    assert!(segments > 0, "no intake segment to look into");
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_stolen_database_file_reveals_no_identifier_and_no_vital_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .add_patient(&patient("p-1"), &demographics(NAME, MRN), t(0))
        .unwrap();
    register(&store, "oxi-1");
    let odd_value = 87.123_456_789;
    store
        .commit_observations(vec![spo2("oxi-1", "p-1", 1, odd_value)])
        .unwrap();

    let bytes = raw_bytes(dir.path());
    for needle in [
        NAME.as_bytes(),
        MRN.as_bytes(),
        b"1961-04-17",
        &odd_value.to_be_bytes()[..],
        &odd_value.to_le_bytes()[..],
        odd_value.to_string().as_bytes(),
    ] {
        assert!(
            !contains(&bytes, needle),
            "found {:?} in the raw database",
            String::from_utf8_lossy(needle)
        );
    }
    // The test can fail: the pseudonymous id is in clear on purpose, and is found.
    assert!(contains(&bytes, b"p-1"));

    let record = store.patient(&patient("p-1")).unwrap().unwrap();
    let demo = record.demographics.unwrap();
    assert_eq!(demo.name.expose(), NAME);
    assert_eq!(demo.mrn.expose(), MRN);
    let read = store
        .observations(&patient("p-1"), Quantity::Spo2, t(0), t(10_000))
        .unwrap();
    assert_eq!(*read[0].value.expose(), odd_value);
}

#[test]
fn ciphertexts_swapped_between_rows_or_patients_do_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .add_patient(&patient("p-1"), &demographics(NAME, MRN), t(0))
        .unwrap();
    store
        .add_patient(
            &patient("p-2"),
            &demographics("Other Person", "MRN-2"),
            t(0),
        )
        .unwrap();
    register(&store, "oxi-1");
    register(&store, "oxi-2");
    store
        .commit_observations(vec![
            spo2("oxi-1", "p-1", 1, 97.0),
            spo2("oxi-1", "p-1", 2, 88.0),
        ])
        .unwrap();
    store
        .commit_observations(vec![spo2("oxi-2", "p-2", 1, 99.0)])
        .unwrap();

    let sql = Connection::open(dir.path().join("vigil.db")).unwrap();
    // Within one patient: swap the two values (an attacker hiding a desaturation).
    sql.execute_batch(
        "UPDATE observations SET value = (SELECT value FROM observations WHERE sequence = 2 AND device_id = 'oxi-1') \
         WHERE sequence = 1 AND device_id = 'oxi-1';",
    )
    .unwrap();
    let err = store
        .observations(&patient("p-1"), Quantity::Spo2, t(0), t(10_000))
        .unwrap_err();
    assert!(matches!(err, StoreError::Seal(SealError::Open)), "{err}");
    // Across patients: p-2's name into p-1's row.
    sql.execute_batch(
        "UPDATE patients SET name = (SELECT name FROM patients WHERE id = 'p-2') WHERE id = 'p-1';",
    )
    .unwrap();
    assert!(matches!(
        store.patient(&patient("p-1")),
        Err(StoreError::Seal(SealError::Open))
    ));
    // Within a row: the MRN into the name field.
    sql.execute_batch("UPDATE patients SET name = mrn WHERE id = 'p-2';")
        .unwrap();
    assert!(matches!(
        store.patient(&patient("p-2")),
        Err(StoreError::Seal(SealError::Open))
    ));
}

#[test]
fn duplicates_are_stored_once_and_every_batch_is_an_audit_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .add_patient(&patient("p-1"), &demographics(NAME, MRN), t(0))
        .unwrap();
    register(&store, "oxi-1");
    let first = store
        .commit_observations(vec![
            spo2("oxi-1", "p-1", 1, 97.0),
            spo2("oxi-1", "p-1", 2, 96.0),
        ])
        .unwrap();
    assert_eq!((first.stored, first.duplicates), (2, 0));
    let again = store
        .commit_observations(vec![
            spo2("oxi-1", "p-1", 2, 96.0),
            spo2("oxi-1", "p-1", 3, 95.0),
        ])
        .unwrap();
    assert_eq!((again.stored, again.duplicates), (1, 1));
    assert_ne!(first.batch, again.batch);
    let read = store
        .observations(&patient("p-1"), Quantity::Spo2, t(0), t(10_000))
        .unwrap();
    assert_eq!(
        read.iter().map(|o| o.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Leaves: two patient-less registry entries are not written by the store itself; here the
    // leaves are exactly the two batches.
    assert_eq!(store.leaf_hashes(0, 100).unwrap().len(), 2);
}

#[test]
fn a_bad_submission_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    store
        .add_patient(&patient("p-1"), &demographics(NAME, MRN), t(0))
        .unwrap();
    register(&store, "oxi-1");
    let mut orphan = spo2("oxi-1", "p-1", 9, 90.0);
    orphan.patient = None;
    let stranger = spo2("oxi-1", "nobody", 10, 90.0);
    assert!(matches!(
        store.commit_observations(vec![orphan]),
        Err(StoreError::NoPatient(_))
    ));
    assert!(matches!(
        store.commit_observations(vec![stranger]),
        Err(StoreError::Refused { .. })
    ));
    assert_eq!(
        store
            .commit_observations(vec![spo2("oxi-1", "p-1", 11, 90.0)])
            .unwrap()
            .stored,
        1
    );
}

#[test]
fn concurrent_submissions_share_batches_and_all_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    store
        .add_patient(&patient("p-1"), &demographics(NAME, MRN), t(0))
        .unwrap();
    for d in 0..8 {
        register(&store, &format!("oxi-{d}"));
    }
    let threads: Vec<_> = (0..8)
        .map(|d| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..50)
                    .map(|seq| {
                        store
                            .commit_observations(vec![spo2(&format!("oxi-{d}"), "p-1", seq, 95.0)])
                            .unwrap()
                            .batch
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut batches: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(batches.len(), 400);
    batches.sort_unstable();
    batches.dedup();
    assert!(
        batches.len() < 400,
        "group commit puts concurrent submissions in shared batches"
    );
    let read = store
        .observations(&patient("p-1"), Quantity::Spo2, t(0), t(1_000_000))
        .unwrap();
    assert_eq!(read.len(), 400);
}

#[test]
fn erasing_a_patient_shreds_their_data_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .add_patient(&patient("p-1"), &demographics(NAME, MRN), t(0))
        .unwrap();
    register(&store, "oxi-1");
    store
        .assign_device(&device("oxi-1"), &patient("p-1"), t(0))
        .unwrap();
    store
        .commit_observations(vec![spo2("oxi-1", "p-1", 1, 97.0)])
        .unwrap();
    let wrapped: Vec<u8> = Connection::open(dir.path().join("vigil.db"))
        .unwrap()
        .query_row(
            "SELECT wrapped FROM patient_keys WHERE patient_id = 'p-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();

    store.erase_patient(&patient("p-1"), t(5)).unwrap();
    let record = store.patient(&patient("p-1")).unwrap().unwrap();
    assert!(record.demographics.is_none());
    assert_eq!(record.erased_at, Some(t(5)));
    assert!(matches!(
        store.observations(&patient("p-1"), Quantity::Spo2, t(0), t(10_000)),
        Err(StoreError::Seal(SealError::Erased))
    ));
    assert!(matches!(
        store.commit_observations(vec![spo2("oxi-1", "p-1", 2, 97.0)]),
        Err(StoreError::Refused { .. })
    ));
    assert_eq!(store.patient_of(&device("oxi-1"), t(10)).unwrap(), None);
    // The wrapped key is gone from the file, not only from the table (secure_delete).
    drop(store);
    assert!(!contains(&raw_bytes(dir.path()), &wrapped[..]));
    // A reopened store (new process, empty cache) cannot read them either.
    let store = open(dir.path());
    assert!(matches!(
        store.observations(&patient("p-1"), Quantity::Spo2, t(0), t(10_000)),
        Err(StoreError::Seal(SealError::Erased))
    ));
}

#[test]
fn rotating_the_keyring_rewraps_every_data_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .add_patient(&patient("p-1"), &demographics(NAME, MRN), t(0))
        .unwrap();
    store
        .add_patient(&patient("p-2"), &demographics("B", "MRN-B"), t(0))
        .unwrap();
    drop(store);
    let mut keyring = Keyring::load(dir.path(), None).unwrap();
    assert_eq!(keyring.rotate(dir.path()).unwrap(), 2);
    let store = SqliteStore::open(dir.path(), Arc::new(keyring)).unwrap();
    assert_eq!(store.rewrap_data_keys().unwrap(), 2);
    assert_eq!(store.rewrap_data_keys().unwrap(), 0);
    let kek: i64 = Connection::open(dir.path().join("vigil.db"))
        .unwrap()
        .query_row("SELECT MIN(kek_id) FROM patient_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kek, 2);
    assert_eq!(
        store
            .patient(&patient("p-1"))
            .unwrap()
            .unwrap()
            .demographics
            .unwrap()
            .mrn
            .expose(),
        MRN
    );
    // Without the keyring, nothing opens: the keys live outside the database.
    let other = Keyring::create(tempfile::tempdir().unwrap().path()).unwrap();
    assert_eq!(other.active_id(), 1);
    let stranger = SqliteStore::open(dir.path(), Arc::new(other)).unwrap();
    assert!(stranger.patient(&patient("p-1")).is_err());
}

#[test]
fn device_assignments_follow_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .add_patient(&patient("p-1"), &demographics(NAME, MRN), t(0))
        .unwrap();
    store
        .add_patient(&patient("p-2"), &demographics("B", "MRN-B"), t(0))
        .unwrap();
    register(&store, "oxi-1");
    store
        .assign_device(&device("oxi-1"), &patient("p-1"), t(100))
        .unwrap();
    store
        .assign_device(&device("oxi-1"), &patient("p-2"), t(200))
        .unwrap();
    assert_eq!(store.patient_of(&device("oxi-1"), t(50)).unwrap(), None);
    assert_eq!(
        store.patient_of(&device("oxi-1"), t(150)).unwrap(),
        Some(patient("p-1"))
    );
    assert_eq!(
        store.patient_of(&device("oxi-1"), t(250)).unwrap(),
        Some(patient("p-2"))
    );
    assert!(matches!(
        store.assign_device(&device("ghost"), &patient("p-1"), t(300)),
        Err(StoreError::NoSuchDevice(_))
    ));
    assert!(matches!(
        store.assign_device(&device("oxi-1"), &patient("nobody"), t(300)),
        Err(StoreError::NoSuchPatient(_))
    ));
}
