//! A hub on free loopback ports in a fresh data directory, for the hub's integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // each test file uses a part; a failure is a failed test

use rumqttc::{TlsConfiguration, Transport};
use vigil_hub::{Hub, Registry, RunningHub};
use vigil_model::phi::Phi;
use vigil_model::{Actor, DeviceClass, DeviceId, PatientId, Quantity, Timestamp};
use vigil_store::Demographics;

/// Initialises a data directory and starts a hub with both listeners on port 0 and the extra
/// `VIGIL_*` settings given.
pub(crate) async fn start_hub(
    settings: &[(&str, &str)],
) -> (tempfile::TempDir, Registry, RunningHub) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        (
            "VIGIL_HUB_HTTPS_LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        ("VIGIL_HUB_MQTT_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
    ];
    env.extend(
        settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = vigil_config::load_from_str(
        vigil_config::DEFAULT_CONFIG,
        vigil_config::Source::Default,
        env,
    )
    .unwrap()
    .config;
    Hub::initialise(dir.path(), &config).unwrap();
    let hub = Hub::open(dir.path(), config).unwrap();
    let registry = hub.registry().clone();
    let running = hub.start().await.unwrap();
    (dir, registry, running)
}

/// A running hub and its registry.
pub(crate) struct TestHub {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) registry: Registry,
    pub(crate) running: RunningHub,
}

pub(crate) async fn start() -> TestHub {
    start_with(&[]).await
}

pub(crate) async fn start_with(settings: &[(&str, &str)]) -> TestHub {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (dir, registry, running) = start_hub(settings).await;
    TestHub {
        _dir: dir,
        registry,
        running,
    }
}

impl TestHub {
    /// Registers, enrols (through the registry, as the HTTPS API does) and assigns a device;
    /// returns (certificate chain PEM, key PEM).
    pub(crate) fn device(&self, id: &str, patient: &str) -> (String, String) {
        let registry = &self.registry;
        let device = DeviceId::new(id).unwrap();
        let token = registry
            .register(Actor::System, device.clone(), DeviceClass::PulseOximeter)
            .unwrap()
            .token;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        let (_, chain) = registry.enroll(&token, csr.der()).unwrap();
        let store = registry.store();
        let patient_id = PatientId::new(patient).unwrap();
        let _ = store.add_patient(
            &patient_id,
            &Demographics {
                name: Phi::new("A".into()),
                mrn: Phi::new("B".into()),
                birth_date: Phi::new(time::macros::date!(1970 - 01 - 01)),
            },
            Timestamp::EPOCH,
        );
        store
            .assign_device(&device, &patient_id, Timestamp::EPOCH)
            .unwrap();
        (chain, key.serialize_pem())
    }

    pub(crate) fn tls(&self, identity: &(String, String)) -> Transport {
        Transport::tls_with_config(TlsConfiguration::Simple {
            ca: self.registry.ca().cert_pem().as_bytes().to_vec(),
            alpn: None,
            client_auth: Some((
                identity.0.as_bytes().to_vec(),
                identity.1.as_bytes().to_vec(),
            )),
        })
    }

    pub(crate) fn stored(&self, patient: &str) -> usize {
        self.registry
            .store()
            .observations(
                &PatientId::new(patient).unwrap(),
                Quantity::Spo2,
                Timestamp::EPOCH,
                Timestamp::from_unix_millis(4_000_000_000_000).unwrap(),
            )
            .unwrap()
            .len()
    }
}

pub(crate) fn pack(device: &str, seq: u64, value: u32) -> Vec<u8> {
    let now = Timestamp::now().unix_millis() / 1000;
    format!(r#"[{{"bn": "urn:vigil:device:{device}:", "bt": {now}, "seq_": {seq}, "n": "150456", "u": "%", "v": {value}}}]"#)
        .into_bytes()
}

/// Waits (up to 10 s) until the store holds alerts of every kind in `kinds`: detection runs
/// in the background, a few milliseconds behind the event. Returns the kinds stored.
pub(crate) async fn wait_for_alerts(
    store: &std::sync::Arc<dyn vigil_store::Store>,
    kinds: &[vigil_model::AlertKind],
) -> Vec<vigil_model::AlertKind> {
    let mut stored = Vec::new();
    for _ in 0..200 {
        stored = store
            .alerts(None, 1000)
            .unwrap()
            .iter()
            .map(|a| a.alert.kind)
            .collect();
        if kinds.iter().all(|k| stored.contains(k)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stored
}
