//! The security officer's rules file on a running hub (loaded, reloaded on change, a broken
//! file refused with the rules in force kept), and failed HTTPS handshakes reported to
//! detection with their address.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_model::{AlertKind, Evidence};

use common::{start, wait_for_alerts};

/// A client that does not speak TLS: its handshake fails at the hub.
async fn garbage(address: std::net::SocketAddr) {
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut sink)).await;
}

const RULE: &str = r#"
[[rule]]
id = "loopback-handshake-failure"
description = "A failed MQTT handshake from the loopback network"
severity = "high"
technique = "T0866"
event = "refused"
refusals = ["bad_certificate"]
addresses = ["127.0.0.0/8"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_file_written_while_the_hub_runs_applies_and_a_broken_one_is_refused() {
    let hub = start().await;
    let path = hub._dir.path().join(vigil_hub::rules::RULES_FILE);
    std::fs::write(&path, RULE).unwrap();
    // The hub looks every second.
    tokio::time::sleep(vigil_hub::rules::RULES_POLL * 2).await;
    garbage(hub.running.mqtt).await;
    let kinds = wait_for_alerts(hub.registry.store(), &[AlertKind::Rule]).await;
    assert!(kinds.contains(&AlertKind::Rule), "{kinds:?}");
    let alerts = hub.registry.store().alerts(None, 100).unwrap();
    let rule = alerts
        .iter()
        .find(|a| a.alert.kind == AlertKind::Rule)
        .unwrap();
    assert!(rule.alert.evidence.iter().any(|e| matches!(
        e,
        Evidence::Fact { name, value } if name == "rule" && value == "loopback-handshake-failure"
    )));
    assert_eq!(rule.alert.attack_technique.as_deref(), Some("T0866"));

    // A broken file is refused, audited, and the rules in force stay.
    std::fs::write(&path, "[[rule]]\nid = \"half\"\n").unwrap();
    let mut refused = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        refused = hub
            .registry
            .store()
            .audit_entries(0, 10_000)
            .unwrap()
            .iter()
            .any(|(_, e)| {
                e.resource.id == vigil_hub::rules::RULES_FILE
                    && e.outcome == vigil_model::Outcome::Failed
            });
        if refused {
            break;
        }
    }
    assert!(refused, "the refused rules file was not audited");
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_https_handshakes_from_one_address_are_a_burst() {
    let hub = start().await;
    for _ in 0..5 {
        garbage(hub.running.https).await;
    }
    // Not TLS at all: a protocol violation, reported with the address; a client certificate
    // from another CA: a failed authentication.
    let kinds = wait_for_alerts(hub.registry.store(), &[AlertKind::ProtocolViolation]).await;
    assert!(kinds.contains(&AlertKind::ProtocolViolation), "{kinds:?}");

    let stranger = rcgen::generate_simple_self_signed(vec!["mallory".into()]).unwrap();
    let identity = format!(
        "{}{}",
        stranger.cert.pem(),
        stranger.signing_key.serialize_pem()
    );
    let ca = std::fs::read(hub._dir.path().join("pki/ca.crt.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/pki/ca.pem", hub.running.https.port());
    for _ in 0..5 {
        assert!(client.get(&url).send().await.is_err());
    }
    let kinds = wait_for_alerts(hub.registry.store(), &[AlertKind::AuthFailureBurst]).await;
    assert!(kinds.contains(&AlertKind::AuthFailureBurst), "{kinds:?}");
    hub.running.stop().await;
}
