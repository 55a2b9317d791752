//! Messages queued for devices (sealed, expiring, delivered once) and MQTT sessions that
//! outlive a disconnection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::sync::Arc;

use vigil_model::phi::Phi;
use vigil_model::{DeviceClass, DeviceId, PatientId, Timestamp};
use vigil_store::seal::Keyring;
use vigil_store::{
    Channel, ClinicalStore, Demographics, DeviceRecord, DeviceStatus, OutboxStore, RegistryStore,
    SessionRecord, SqliteStore, StoreError, TokenRecord,
};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_800_000_000_000 + secs * 1000).unwrap()
}

fn open(dir: &Path) -> SqliteStore {
    let keyring = Keyring::load(dir, None)
        .or_else(|_| Keyring::create(dir))
        .unwrap();
    SqliteStore::open(dir, Arc::new(keyring)).unwrap()
}

fn register(store: &SqliteStore, id: &str) -> DeviceId {
    let device = DeviceId::new(id).unwrap();
    store
        .add_device(
            &DeviceRecord {
                id: device.clone(),
                class: DeviceClass::InsulinPump,
                status: DeviceStatus::Registered,
                created_at: t(-100),
                revoked_at: None,
            },
            &TokenRecord {
                id: format!("tok-{id}"),
                device: device.clone(),
                secret_hash: vec![0; 32],
                created_at: t(-100),
                expires_at: t(100),
            },
        )
        .unwrap();
    device
}

#[test]
fn queued_messages_wait_until_delivered_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let dev = register(&store, "pump-1");
    let first = store
        .queue_message(&dev, Channel::Commands, b"one", t(0), t(60))
        .unwrap();
    let second = store
        .queue_message(&dev, Channel::Firmware, b"two", t(1), t(10))
        .unwrap();
    let pending = store.pending_messages(&dev, t(5), 10).unwrap();
    assert_eq!(
        pending.iter().map(|m| m.id).collect::<Vec<_>>(),
        [first, second]
    );
    assert_eq!(pending[0].payload, b"one");
    assert_eq!(pending[1].channel, Channel::Firmware);
    assert_eq!(store.pending_messages(&dev, t(5), 1).unwrap().len(), 1);

    store.note_attempt(first).unwrap();
    assert_eq!(
        store.pending_messages(&dev, t(5), 1).unwrap()[0].attempts,
        1
    );

    // The second expires; the first is delivered once.
    assert_eq!(store.pending_messages(&dev, t(10), 10).unwrap().len(), 1);
    assert!(store.mark_delivered(first, t(11)).unwrap());
    assert!(!store.mark_delivered(first, t(12)).unwrap());
    assert!(store.pending_messages(&dev, t(12), 10).unwrap().is_empty());
    assert_eq!(store.purge_outbox(t(12)).unwrap(), 2);
}

#[test]
fn a_message_for_a_patients_device_is_sealed_and_erased_with_the_patient() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let dev = register(&store, "pump-2");
    let patient = PatientId::new("P-1").unwrap();
    store
        .add_patient(
            &patient,
            &Demographics {
                name: Phi::new("Ada Example".to_owned()),
                mrn: Phi::new("MRN-1".to_owned()),
                birth_date: Phi::new(time::macros::date!(1970 - 01 - 01)),
            },
            t(-50),
        )
        .unwrap();
    store.assign_device(&dev, &patient, t(-10)).unwrap();
    let secret = b"set-basal-rate 0.85 [iU]/h";
    store
        .queue_message(&dev, Channel::Commands, secret, t(0), t(60))
        .unwrap();
    assert_eq!(
        store.pending_messages(&dev, t(1), 10).unwrap()[0].payload,
        secret
    );
    drop(store);
    for file in ["vigil.db", "vigil.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{file}");
    }

    let store = open(dir.path());
    store.erase_patient(&patient, t(2)).unwrap();
    assert!(store.pending_messages(&dev, t(3), 10).unwrap().is_empty());
}

#[test]
fn unknown_devices_cannot_be_sent_anything() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let nobody = DeviceId::new("nobody").unwrap();
    assert!(matches!(
        store.queue_message(&nobody, Channel::Commands, b"x", t(0), t(1)),
        Err(StoreError::NoSuchDevice(_))
    ));
}

#[test]
fn sessions_outlive_a_disconnection_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let dev = register(&store, "oxi-1");
    let mut session = SessionRecord {
        commands: true,
        firmware: false,
        expiry_seconds: 30,
        ended_at: None,
    };
    store.save_session(&dev, &session).unwrap();
    assert_eq!(store.session(&dev, t(1000)).unwrap(), Some(session.clone()));
    session.ended_at = Some(t(0));
    store.save_session(&dev, &session).unwrap();
    assert_eq!(store.session(&dev, t(29)).unwrap(), Some(session.clone()));
    assert_eq!(store.session(&dev, t(30)).unwrap(), None);
    store.end_session(&dev).unwrap();
    assert_eq!(store.session(&dev, t(1)).unwrap(), None);
}
