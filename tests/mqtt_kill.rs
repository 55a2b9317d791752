//! A device publishes at QoS 1 while the hub is killed with SIGKILL: every observation the hub
//! acknowledged (PUBACK) is stored exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{device_serving_patient, enrol_with_guide, init, run, serve, stdout};
use rumqttc::{Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use vigil_model::{PatientId, Quantity, Timestamp};
use vigil_store::{ClinicalStore, SqliteStore};

fn pack(seq: u64) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(r#"[{{"bn": "urn:vigil:device:infusion-7:", "bt": {now}, "seq_": {seq}, "n": "157784", "u": "mL/h", "v": 100}}]"#)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_publication_survives_a_sigkill_of_the_hub() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    init(&data);
    let d = data.to_str().unwrap();
    let token = device_serving_patient(&data, "infusion-7", "infusion_pump", "p-1");

    // The test is about durability, not rate limits.
    let mut hub = serve(
        &data,
        &[
            ("VIGIL_INGEST_MESSAGES_PER_SECOND", "10000"),
            ("VIGIL_INGEST_BURST", "10000"),
        ],
    );
    let https = hub.https.clone();
    let mqtt = hub.mqtt_port;

    let device = tmp.path().join("device");
    std::fs::create_dir(&device).unwrap();
    let ca = data.join("pki/ca.crt.pem");
    let (enrolled, log) = enrol_with_guide(&device, &https, &ca, &token);
    assert!(enrolled, "{log}");

    let mut options = MqttOptions::new("infusion-7", "localhost", mqtt);
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: std::fs::read(&ca).unwrap(),
        alpn: None,
        client_auth: Some((
            std::fs::read(device.join("device.pem")).unwrap(),
            std::fs::read(device.join("device.key")).unwrap(),
        )),
    }));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 10);

    // One publication in flight at a time, so every PUBACK names its sequence number; a
    // killer thread strikes while publications keep going.
    let acked_count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let killer = {
        let acked_count = Arc::clone(&acked_count);
        std::thread::spawn(move || {
            let start = Instant::now();
            while acked_count.load(std::sync::atomic::Ordering::Relaxed) < 300
                && start.elapsed() < Duration::from_secs(30)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            // SIGKILL: no destructor, no flush, no goodbye.
            hub.child.kill().unwrap();
            hub.child.wait().unwrap();
            hub
        })
    };
    let mut acked: HashSet<u64> = HashSet::new();
    'publishing: for seq in 1..=100_000u64 {
        if client
            .publish(
                "vigil/v1/d/infusion-7/obs",
                QoS::AtLeastOnce,
                false,
                pack(seq),
            )
            .await
            .is_err()
        {
            break;
        }
        loop {
            match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                    acked.insert(seq);
                    acked_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    break;
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => break 'publishing,
            }
        }
    }
    let _hub = killer.join().unwrap();
    assert!(
        acked.len() >= 300,
        "only {} acknowledged before the kill",
        acked.len()
    );

    let keyring = vigil_store::seal::Keyring::load(&data, None).unwrap();
    let store = SqliteStore::open(&data, Arc::new(keyring)).unwrap();
    let stored = store
        .observations(
            &PatientId::new("p-1").unwrap(),
            Quantity::InfusionRate,
            Timestamp::EPOCH,
            Timestamp::from_unix_millis(4_000_000_000_000).unwrap(),
        )
        .unwrap();
    let mut seen = HashSet::new();
    for observation in &stored {
        assert!(
            seen.insert(observation.sequence),
            "sequence {} stored twice",
            observation.sequence
        );
    }
    let lost: Vec<_> = acked.difference(&seen).collect();
    eprintln!(
        "acked {} (max {:?}), stored {} (max {:?})",
        acked.len(),
        acked.iter().max(),
        seen.len(),
        seen.iter().max()
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged observations lost (e.g. {:?})",
        lost.len(),
        lost.first()
    );
    drop(store);
    let out = run(&["audit", "verify", "--data-dir", d]);
    assert!(out.status.success(), "{}", stdout(&out));
}
