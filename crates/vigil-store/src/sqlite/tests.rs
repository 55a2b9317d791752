use super::*;
use crate::{AuditStore, RegistryStore};
use crate::{CertificateRecord, DeviceRecord, DeviceStatus, TokenRecord, TokenRefusal};
use vigil_model::{Action, Actor, Outcome, Resource, ResourceKind};
use vigil_model::{AuditEntry, DeviceClass, DeviceId};

fn t(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis).unwrap()
}

fn id(text: &str) -> DeviceId {
    DeviceId::new(text).unwrap()
}

fn device(text: &str) -> DeviceRecord {
    DeviceRecord {
        id: id(text),
        class: DeviceClass::InsulinPump,
        status: DeviceStatus::Registered,
        created_at: t(1_000),
        revoked_at: None,
    }
}

fn token(token_id: &str, device: &str, hash: u8, expires: i64) -> TokenRecord {
    TokenRecord {
        id: token_id.into(),
        device: id(device),
        secret_hash: vec![hash; 32],
        created_at: t(1_000),
        expires_at: t(expires),
    }
}

fn certificate(serial: &str, device: &str, not_after: i64) -> CertificateRecord {
    CertificateRecord {
        serial: serial.into(),
        device: id(device),
        fingerprint: format!("fp-{serial}"),
        not_before: t(1_000),
        not_after: t(not_after),
        key_kind: "ecdsa-p256".into(),
        key_bits: 256,
        issued_at: t(2_000),
        issued_via: "enroll".into(),
        revoked_at: None,
        revocation_reason: None,
    }
}

fn keys(dir: &std::path::Path) -> std::sync::Arc<dyn crate::seal::KeyEncryptionKeys> {
    let keyring = match crate::seal::Keyring::load(dir, None) {
        Ok(keyring) => keyring,
        Err(_) => crate::seal::Keyring::create(dir).unwrap(),
    };
    std::sync::Arc::new(keyring)
}

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), keys(dir.path())).unwrap();
    (dir, store)
}

fn hash_is(expected: u8) -> impl Fn(&[u8]) -> bool {
    move |stored: &[u8]| stored == [expected; 32]
}

#[test]
fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _store) = open();
    let mode = std::fs::metadata(dir.path().join(DATABASE_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn devices_are_registered_once() {
    let (_dir, store) = open();
    store
        .add_device(&device("pump-1"), &token("t1", "pump-1", 7, 10_000))
        .unwrap();
    assert!(matches!(
        store.add_device(&device("pump-1"), &token("t2", "pump-1", 7, 10_000)),
        Err(StoreError::DeviceExists(_))
    ));
    assert_eq!(store.device(&id("pump-1")).unwrap(), Some(device("pump-1")));
    assert_eq!(store.device(&id("nope")).unwrap(), None);
    assert_eq!(store.devices().unwrap().len(), 1);
}

#[test]
fn a_token_is_spent_once_and_only_with_its_secret_before_expiry() {
    let (_dir, store) = open();
    store
        .add_device(&device("pump-1"), &token("t1", "pump-1", 7, 10_000))
        .unwrap();
    assert_eq!(
        store.spend_token("t1", t(5_000), &hash_is(8)).unwrap(),
        Err(TokenRefusal::Invalid)
    );
    assert_eq!(
        store.spend_token("zz", t(5_000), &hash_is(7)).unwrap(),
        Err(TokenRefusal::Invalid)
    );
    assert_eq!(
        store.spend_token("t1", t(10_000), &hash_is(7)).unwrap(),
        Err(TokenRefusal::Expired)
    );
    let spent = store
        .spend_token("t1", t(5_000), &hash_is(7))
        .unwrap()
        .unwrap();
    assert_eq!(spent.id, id("pump-1"));
    assert_eq!(
        store.spend_token("t1", t(5_001), &hash_is(7)).unwrap(),
        Err(TokenRefusal::AlreadyUsed)
    );
    // For alerting on refused tokens: whose it was, spent or not; nothing for an unknown id.
    assert_eq!(store.token_device("t1").unwrap(), Some(id("pump-1")));
    assert_eq!(store.token_device("zz").unwrap(), None);
}

#[test]
fn a_new_token_replaces_the_unused_one() {
    let (_dir, store) = open();
    store
        .add_device(&device("pump-1"), &token("t1", "pump-1", 7, 10_000))
        .unwrap();
    store.add_token(&token("t2", "pump-1", 9, 10_000)).unwrap();
    assert_eq!(
        store.spend_token("t1", t(5_000), &hash_is(7)).unwrap(),
        Err(TokenRefusal::AlreadyUsed)
    );
    assert!(
        store
            .spend_token("t2", t(5_000), &hash_is(9))
            .unwrap()
            .is_ok()
    );
    assert!(matches!(
        store.add_token(&token("t3", "ghost", 1, 10_000)),
        Err(StoreError::NoSuchDevice(_))
    ));
}

#[test]
fn certificates_activate_the_device_and_revocation_covers_them_all() {
    let (_dir, store) = open();
    store
        .add_device(&device("pump-1"), &token("t1", "pump-1", 7, 10_000))
        .unwrap();
    store
        .add_device(&device("pump-2"), &token("t2", "pump-2", 7, 10_000))
        .unwrap();
    store
        .record_certificate(&certificate("aa", "pump-1", 50_000))
        .unwrap();
    store
        .record_certificate(&certificate("bb", "pump-1", 90_000))
        .unwrap();
    store
        .record_certificate(&certificate("cc", "pump-2", 90_000))
        .unwrap();
    assert!(matches!(
        store.record_certificate(&certificate("aa", "pump-1", 50_000)),
        Err(StoreError::CertificateExists)
    ));
    assert!(matches!(
        store.record_certificate(&certificate("dd", "ghost", 50_000)),
        Err(StoreError::NoSuchDevice(_))
    ));
    assert_eq!(
        store.device(&id("pump-1")).unwrap().unwrap().status,
        DeviceStatus::Active
    );
    assert_eq!(store.certificates_of(&id("pump-1")).unwrap().len(), 2);
    assert_eq!(
        store
            .certificate_by_fingerprint("fp-cc")
            .unwrap()
            .unwrap()
            .device,
        id("pump-2")
    );

    let mut serials = store
        .revoke_device(&id("pump-1"), "key-compromise", t(60_000))
        .unwrap();
    serials.sort();
    assert_eq!(serials, ["aa", "bb"]);
    assert_eq!(
        store.device(&id("pump-1")).unwrap().unwrap().status,
        DeviceStatus::Revoked
    );
    assert!(
        store
            .revoke_device(&id("pump-1"), "again", t(61_000))
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.revoke_device(&id("ghost"), "x", t(1)),
        Err(StoreError::NoSuchDevice(_))
    ));
    // "aa" expired before now, so the CRL no longer needs it.
    let crl = store.revoked_certificates(t(60_000)).unwrap();
    assert_eq!(crl.len(), 1);
    assert_eq!(crl[0].serial, "bb");
    assert_eq!(crl[0].reason, "key-compromise");
    // A revoked device cannot get a new token.
    assert!(store.add_token(&token("t9", "pump-1", 1, 90_000)).is_err());
}

#[test]
fn a_token_of_a_revoked_device_is_refused() {
    let (_dir, store) = open();
    store
        .add_device(&device("pump-1"), &token("t1", "pump-1", 7, 10_000))
        .unwrap();
    store
        .revoke_device(&id("pump-1"), "cessation-of-operation", t(2_000))
        .unwrap();
    assert_eq!(
        store.spend_token("t1", t(3_000), &hash_is(7)).unwrap(),
        Err(TokenRefusal::AlreadyUsed)
    );
}

#[test]
fn crl_numbers_increase_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), keys(dir.path())).unwrap();
        assert_eq!(store.next_crl_number().unwrap(), 2);
        assert_eq!(store.next_crl_number().unwrap(), 3);
    }
    let store = SqliteStore::open(dir.path(), keys(dir.path())).unwrap();
    assert_eq!(store.next_crl_number().unwrap(), 4);
}

#[test]
fn audit_entries_are_kept_in_order_with_gapless_sequence_numbers() {
    let (_dir, store) = open();
    for i in 0..5 {
        let entry = AuditEntry {
            time: t(i),
            actor: Actor::System,
            action: Action::Enroll,
            resource: Resource {
                kind: ResourceKind::Device,
                id: format!("d{i}"),
            },
            outcome: Outcome::Success,
            reason: None,
        };
        assert_eq!(
            store.append_audit(&entry).unwrap(),
            u64::try_from(i).unwrap()
        );
    }
    let entries = store.audit_entries(2, 2).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!((entries[0].0, entries[0].1.resource.id.as_str()), (2, "d2"));
    assert_eq!((entries[1].0, entries[1].1.resource.id.as_str()), (3, "d3"));
    assert_eq!(store.leaf_hashes(0, 100).unwrap().len(), 5);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), keys(dir.path())).unwrap());
    let connection = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    connection.pragma_update(None, "user_version", 99).unwrap();
    drop(connection);
    assert!(matches!(
        SqliteStore::open(dir.path(), keys(dir.path())),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn a_database_of_an_older_schema_is_brought_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    let connection = Connection::open(&path).unwrap();
    connection
        .execute_batch(&format!("{} PRAGMA user_version = 1;", MIGRATIONS[0]))
        .unwrap();
    drop(connection);
    let store = SqliteStore::open(dir.path(), keys(dir.path())).unwrap();
    let version: i64 = store
        .connection()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let tables: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name IN ('outbox', 'mqtt_sessions')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(tables, 2);
}

#[test]
fn version_5_keeps_every_observation_its_id_and_its_uniqueness() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DATABASE_FILE);
    let connection = Connection::open(&path).unwrap();
    for script in &MIGRATIONS[..4] {
        connection.execute_batch(script).unwrap();
    }
    connection.pragma_update(None, "user_version", 4).unwrap();
    let insert = "INSERT OR IGNORE INTO observations \
        (id, patient_id, device_id, quantity, time, sequence, flags, value, batch) \
        VALUES (?1, 'p-1', 'oxi-1', 150456, ?2, ?3, 0, x'00', 0)";
    for n in 1..=3_i64 {
        connection
            .execute(insert, rusqlite::params![n * 10, 1_000 + n, n])
            .unwrap();
    }
    drop(connection);
    let store = SqliteStore::open(dir.path(), keys(dir.path())).unwrap();
    let connection = store.connection();
    let rows: Vec<(i64, i64, i64)> = connection
        .prepare("SELECT id, time, sequence FROM observations ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [(10, 1_001, 1), (20, 1_002, 2), (30, 1_003, 3)]);
    // The same reading again is stored once; another sequence number is another reading.
    assert_eq!(
        connection
            .execute(insert, rusqlite::params![40, 1_001, 1])
            .unwrap(),
        0
    );
    assert_eq!(
        connection
            .execute(insert, rusqlite::params![40, 1_001, 9])
            .unwrap(),
        1
    );
    // The uniqueness is checked with time first, and a patient's readings are still indexed.
    let first: String = connection
        .query_row(
            "SELECT name FROM pragma_index_info((SELECT name FROM pragma_index_list('observations') \
             WHERE origin = 'u')) WHERE seqno = 0",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(first, "time");
    let by_patient: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'observations_by_patient'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(by_patient, 1);
}
