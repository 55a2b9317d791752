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
    // The hub looks every second and audits what it loads.
    assert!(
        rules_audited(&hub, vigil_model::Outcome::Success).await,
        "the new rules file was not loaded"
    );
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
    assert!(
        rules_audited(&hub, vigil_model::Outcome::Failed).await,
        "the refused rules file was not audited"
    );
    hub.running.stop().await;
}

/// Waits (up to 10 s) for an audit entry of the rules file with `outcome`.
async fn rules_audited(hub: &common::TestHub, outcome: vigil_model::Outcome) -> bool {
    for _ in 0..100 {
        let found = hub
            .registry
            .store()
            .audit_entries(0, 10_000)
            .unwrap()
            .iter()
            .any(|(_, e)| e.resource.id == vigil_hub::rules::RULES_FILE && e.outcome == outcome);
        if found {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_exported_to_a_syslog_receiver_as_cef() {
    // The receiver first, so its port can go in the hub's siem.toml before the hub starts.
    let receiver = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = vigil_config::load_from_str(
        vigil_config::DEFAULT_CONFIG,
        vigil_config::Source::Default,
        [
            (
                "VIGIL_HUB_HTTPS_LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            ("VIGIL_HUB_MQTT_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ],
    )
    .unwrap()
    .config;
    vigil_hub::Hub::initialise(dir.path(), &config).unwrap();
    let siem = dir.path().join(vigil_hub::siem::SIEM_FILE);
    std::fs::write(
        &siem,
        format!(
            "[siem]\nhostname = \"hub.test\"\n\n[[siem.sinks]]\nname = \"soc\"\nkind = \"udp\"\naddress = \"127.0.0.1:{port}\"\nformat = \"cef\"\n"
        ),
    )
    .unwrap();
    // Readable by others: refused (the file may hold webhook secrets).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&siem, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let hub = vigil_hub::Hub::open(dir.path(), config.clone()).unwrap();
    assert!(matches!(
        hub.start().await,
        Err(vigil_hub::HubError::Siem(
            vigil_hub::siem::SiemFileError::Permissions(_)
        ))
    ));
    std::fs::set_permissions(&siem, std::fs::Permissions::from_mode(0o600)).unwrap();
    let hub = vigil_hub::Hub::open(dir.path(), config).unwrap();
    let running = hub.start().await.unwrap();

    garbage(running.https).await; // not TLS: a protocol violation
    let mut datagram = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), receiver.recv(&mut datagram))
        .await
        .expect("an exported alert within 10 s")
        .unwrap();
    let message = String::from_utf8_lossy(&datagram[..n]).into_owned();
    assert!(message.starts_with('<'), "{message}");
    assert!(message.contains(" hub.test vigil "), "{message}");
    assert!(message.contains("CEF:0|Vigil|Vigil|"), "{message}");
    assert!(message.contains("protocol_violation"), "{message}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_security_officer_sees_alerts_live_as_server_sent_events() {
    let hub = start().await;
    let store = hub.registry.store();
    let made = vigil_hub::access::users::create_user(
        store.as_ref(),
        hub.registry.auditor(),
        vigil_model::Actor::System,
        vigil_model::UserId::new("sec.lee").unwrap(),
        vigil_model::Role::SecurityOfficer,
        None,
        None,
    )
    .unwrap();
    let secret = made.totp.unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let code = vigil_auth::totp::code_at(&secret, now).unwrap();
    let ca = std::fs::read(hub._dir.path().join("pki/ca.crt.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", hub.running.https.port());
    let session: serde_json::Value = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"user": "sec.lee", "password": made.password, "code": code}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap().to_owned();

    // Without a token: refused.
    let anonymous = client
        .get(format!("{base}/api/v1/alerts/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);

    let mut stream = client
        .get(format!("{base}/api/v1/alerts/stream"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), reqwest::StatusCode::OK);
    assert!(
        stream.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    garbage(hub.running.https).await; // a protocol violation: an alert
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !received.contains("event: alert") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("an alert on the stream within 10 s")
            .unwrap()
            .expect("the stream stays open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        received.contains("\"kind\":\"protocol_violation\""),
        "{received}"
    );
    hub.running.stop().await;
}
