//! A reading the hub acknowledged is in every read that begins after the acknowledgement: a
//! device publishes at QoS 1 and, as soon as each PUBACK arrives, a clinician searches the
//! patient's Observations through FHIR and finds it. The PUBACK comes once the pack is in the
//! intake log, before the database holds it (ADR 0014); the read waits for the database to
//! catch up (the read barrier), so no client ever misses an acknowledged observation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::time::Duration;

use common::{P1, enrol_with_guide, run, stderr, stdout, ward};
use rumqttc::{Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};

const DEVICE: &str = "oxi-9";
const PUBLICATIONS: u64 = 30;

fn pack(seq: u64) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // One reading per pack, each at its own time.
    format!(
        r#"[{{"bn": "urn:vigil:device:{DEVICE}:", "bt": {:.3}, "seq_": {seq}, "n": "150456", "u": "%", "v": 97}}]"#,
        now - 60.0 + seq as f64 * 0.001
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_reading_is_in_the_next_fhir_search() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ward = ward(0, &[]);
    let d = ward.data.to_str().unwrap();

    // A second oximeter for the ward's first patient, enrolled as its maker's guide says.
    let out = run(&[
        "device",
        "add",
        "--data-dir",
        d,
        "--id",
        DEVICE,
        "--class",
        "pulse_oximeter",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out)
        .lines()
        .find(|l| l.starts_with("vigil1."))
        .unwrap()
        .to_owned();
    let out = run(&[
        "device",
        "assign",
        "--data-dir",
        d,
        "--id",
        DEVICE,
        "--patient",
        P1,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tmp = tempfile::tempdir().unwrap();
    let ca = ward.data.join("pki/ca.crt.pem");
    let (enrolled, log) = enrol_with_guide(tmp.path(), &ward.served.https, &ca, &token);
    assert!(enrolled, "{log}");

    let mut options = MqttOptions::new(DEVICE, "localhost", ward.served.mqtt_port);
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: std::fs::read(&ca).unwrap(),
        alpn: None,
        client_auth: Some((
            std::fs::read(tmp.path().join("device.pem")).unwrap(),
            std::fs::read(tmp.path().join("device.key")).unwrap(),
        )),
    }));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 10);
    let clinician = ward.sign_in("dr-care").await;
    let search = format!("/fhir/r4/Observation?patient={P1}&_count=100");

    for seq in 1..=PUBLICATIONS {
        client
            .publish(
                format!("vigil/v1/d/{DEVICE}/obs"),
                QoS::AtLeastOnce,
                false,
                pack(seq),
            )
            .await
            .unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
                Ok(Ok(_)) => {}
                other => panic!("no PUBACK for {seq}: {other:?}\n{}", ward.served.log()),
            }
        }
        // At once: no sleep, no retry.
        let reply = ward.get(&search, &clinician).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let bundle = reply.json();
        let found = bundle["entry"].as_array().map_or(0, |entries| {
            entries
                .iter()
                .filter(|e| e["resource"]["resourceType"] == "Observation")
                .count()
        });
        assert_eq!(
            found,
            usize::try_from(seq).unwrap(),
            "publication {seq} was acknowledged but the search right after found {found}"
        );
    }
}
