//! The HTTPS device API against a real hub on loopback, with real TLS and a real HTTP client
//! (reqwest over rustls): enrolment, renewal, revocation on a live server, and every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use time::OffsetDateTime;
use vigil_hub::{Registry, RunningHub};
use vigil_model::{Action, Actor, DeviceClass, DeviceId, Outcome, Timestamp};
use vigil_pki::{NewToken, RevocationReason, ValidatedCsr};
use vigil_store::TokenRecord;

struct TestHub {
    dir: tempfile::TempDir,
    registry: Registry,
    running: RunningHub,
    base: String,
}

async fn start() -> TestHub {
    let (dir, registry, running) = common::start_hub(&[]).await;
    let base = format!("https://localhost:{}", running.https.port());
    TestHub {
        dir,
        registry,
        running,
        base,
    }
}

impl TestHub {
    fn ca_pem(&self) -> String {
        self.registry.ca().cert_pem().to_owned()
    }

    fn client(&self, identity: Option<&str>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca_pem().as_bytes()).unwrap()])
            .timeout(Duration::from_secs(10));
        if let Some(pem) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    fn register(&self, id: &str) -> String {
        self.registry
            .register(
                Actor::System,
                DeviceId::new(id).unwrap(),
                DeviceClass::InfusionPump,
            )
            .unwrap()
            .token
    }

    async fn enroll(&self, token: &str, csr: Vec<u8>) -> reqwest::Response {
        self.client(None)
            .post(format!("{}/api/v1/enroll", self.base))
            .bearer_auth(token)
            .body(csr)
            .send()
            .await
            .unwrap()
    }

    async fn renew(&self, identity: &str, csr: Vec<u8>) -> reqwest::Result<reqwest::Response> {
        self.client(Some(identity))
            .post(format!("{}/api/v1/renew", self.base))
            .body(csr)
            .send()
            .await
    }

    /// Waits until an audit entry matches (refused handshakes are written by a background
    /// thread).
    async fn audited(
        &self,
        matches: impl Fn(&vigil_model::AuditEntry) -> bool,
    ) -> vigil_model::AuditEntry {
        for _ in 0..100 {
            let entries = self.registry.store().audit_entries(0, 10_000).unwrap();
            if let Some((_, entry)) = entries.into_iter().find(|(_, e)| matches(e)) {
                return entry;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let entries = self.registry.store().audit_entries(0, 10_000).unwrap();
        panic!("no matching audit entry among {entries:#?}");
    }
}

/// A device key and a CSR for it; returns (CSR DER, key PEM).
fn device_key() -> (Vec<u8>, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap();
    (csr.der().to_vec(), key.serialize_pem())
}

async fn problem(response: reqwest::Response) -> (StatusCode, String, serde_json::Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, content_type, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_renew_with_key_rotation_and_revoke_on_the_live_hub() {
    let hub = start().await;
    let token = hub.register("pump-1");
    let (csr, key) = device_key();

    let response = hub.enroll(&token, csr.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()["content-type"],
        "application/pem-certificate-chain"
    );
    let chain = response.text().await.unwrap();
    assert!(chain.ends_with(&hub.ca_pem()), "the chain ends with the CA");
    let identity = format!("{chain}{key}");

    // The token is single use.
    let (status, content_type, body) = problem(hub.enroll(&token, csr).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["type"], "urn:vigil:problem:token-used");

    // Renewal over mutual TLS, keeping the key, then rotating it.
    let (same_key_csr, _) = {
        let key = rcgen::KeyPair::from_pem(&key).unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        (csr.der().to_vec(), ())
    };
    let renewed = hub.renew(&identity, same_key_csr).await.unwrap();
    assert_eq!(renewed.status(), StatusCode::CREATED);
    let (new_csr, new_key) = device_key();
    let rotated = hub.renew(&identity, new_csr).await.unwrap();
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let rotated_identity = format!("{}{new_key}", rotated.text().await.unwrap());
    let certificates = hub
        .registry
        .store()
        .certificates_of(&DeviceId::new("pump-1").unwrap())
        .unwrap();
    assert_eq!(
        certificates
            .iter()
            .map(|c| c.issued_via.as_str())
            .collect::<Vec<_>>(),
        ["enroll", "renew", "renew"]
    );

    // Revocation takes effect on the running hub, without a restart.
    hub.registry
        .revoke(
            Actor::System,
            &DeviceId::new("pump-1").unwrap(),
            RevocationReason::KeyCompromise,
        )
        .unwrap();
    let mut refused = false;
    for _ in 0..100 {
        let (csr, _) = device_key();
        if hub.renew(&rotated_identity, csr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused,
        "a revoked certificate must be refused at the handshake"
    );
    let entry = hub
        .audited(|e| e.action == Action::Connect && e.outcome == Outcome::Denied)
        .await;
    assert_eq!(
        entry.actor,
        Actor::Unauthenticated("claims device pump-1".into())
    );
    assert_eq!(entry.reason.unwrap().as_str(), "certificate revoked");
    // And detection names the revoked device.
    let kinds = common::wait_for_alerts(
        hub.registry.store(),
        &[vigil_model::AlertKind::RevokedCertificateUse],
    )
    .await;
    assert!(
        kinds.contains(&vigil_model::AlertKind::RevokedCertificateUse),
        "{kinds:?}"
    );
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refusals_are_401_problems_with_a_bearer_challenge() {
    let hub = start().await;
    let (csr, _) = device_key();

    let response = hub
        .client(None)
        .post(format!("{}/api/v1/enroll", hub.base))
        .body(csr.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"vigil-enrolment\""
    );
    let (status, _, body) = problem(response).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("urn:vigil:problem:token-missing")
        )
    );

    let (status, _, body) = problem(hub.enroll("not-a-token", csr.clone()).await).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("urn:vigil:problem:token-malformed")
        )
    );

    let unknown = NewToken::generate().unwrap();
    let (status, _, body) = problem(hub.enroll(&unknown.token, csr.clone()).await).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("urn:vigil:problem:token-invalid")
        )
    );

    // An expired token: registered, then given a token whose expiry has passed.
    hub.register("pump-2");
    let expired = NewToken::generate().unwrap();
    hub.registry
        .store()
        .add_token(&TokenRecord {
            id: expired.id.clone(),
            device: DeviceId::new("pump-2").unwrap(),
            secret_hash: expired.secret_hash.to_vec(),
            created_at: Timestamp::from_unix_millis(1_000).unwrap(),
            expires_at: Timestamp::from_unix_millis(2_000).unwrap(),
        })
        .unwrap();
    let (status, _, body) = problem(hub.enroll(&expired.token, csr).await).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("urn:vigil:problem:token-expired")
        )
    );
    // Secrets never come back in a problem.
    assert!(
        !body
            .to_string()
            .contains(expired.token.rsplit('.').next().unwrap())
    );
    hub.running.stop().await;
}

fn openssl_csr(dir: &Path, key_args: &[&str]) -> Vec<u8> {
    let mut args = vec!["req", "-new", "-newkey"];
    args.extend_from_slice(key_args);
    args.extend_from_slice(&[
        "-nodes", "-keyout", "k.pem", "-out", "r.csr", "-subj", "/CN=x",
    ]);
    let out = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("r.csr")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_4xx_and_do_not_burn_the_token() {
    let hub = start().await;
    let token = hub.register("pump-3");

    let weak = openssl_csr(hub.dir.path(), &["rsa:1024"]);
    let (status, _, body) = problem(hub.enroll(&token, weak).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["type"], "urn:vigil:problem:bad-csr");
    assert!(
        body["detail"].as_str().unwrap().contains("1024 bits"),
        "{body}"
    );

    for garbage in [
        b"".to_vec(),
        b"hello".to_vec(),
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".to_vec(),
        hub.ca_pem().into_bytes(),
    ] {
        let (status, _, body) = problem(hub.enroll(&token, garbage).await).await;
        assert_eq!(
            (status, body["type"].as_str()),
            (StatusCode::BAD_REQUEST, Some("urn:vigil:problem:bad-csr")),
            "{body}"
        );
    }

    let (status, _, body) = problem(hub.enroll(&token, vec![b'A'; 20 * 1024]).await).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("urn:vigil:problem:too-large")
        )
    );

    // After all that, the token still works: refusals happen before it is spent.
    let good = openssl_csr(
        hub.dir.path(),
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    assert_eq!(hub.enroll(&token, good).await.status(), StatusCode::CREATED);

    let (status, _, body) = problem(
        hub.client(None)
            .get(format!("{}/nowhere", hub.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["type"].as_str()),
        (StatusCode::NOT_FOUND, Some("urn:vigil:problem:not-found"))
    );
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_that_are_foreign_expired_early_or_for_servers_are_refused_and_audited() {
    let hub = start().await;
    hub.register("pump-4");
    let id = DeviceId::new("pump-4").unwrap();
    let ca = hub.registry.ca();
    let (csr, key) = device_key();
    let validated = ValidatedCsr::parse(&csr).unwrap();
    let now = OffsetDateTime::now_utc();
    let expired = ca
        .issue_device(
            &id,
            &validated,
            time::Duration::days(1),
            now - time::Duration::days(10),
        )
        .unwrap();
    let early = ca
        .issue_device(
            &id,
            &validated,
            time::Duration::days(30),
            now + time::Duration::days(2),
        )
        .unwrap();
    let server_key = rcgen::KeyPair::from_pem(&key).unwrap();
    let server = ca
        .issue_server(
            &["localhost".into()],
            &server_key,
            time::Duration::days(30),
            now,
        )
        .unwrap();
    let (foreign_ca, _) = vigil_pki::HospitalCa::generate("Elsewhere", now).unwrap();
    let foreign = foreign_ca
        .issue_device(&id, &validated, time::Duration::days(30), now)
        .unwrap();

    for (what, pem, reason) in [
        ("expired", &expired.pem, "certificate expired"),
        ("not yet valid", &early.pem, "certificate not yet valid"),
        (
            "server certificate",
            &server.pem,
            "certificate not for client authentication",
        ),
        (
            "another CA",
            &foreign.pem,
            "certificate not issued by the hospital CA",
        ),
    ] {
        let (csr, _) = device_key();
        let result = hub.renew(&format!("{pem}{key}"), csr).await;
        assert!(
            result.is_err(),
            "{what}: must be refused at the handshake, got {result:?}"
        );
        let entry = hub
            .audited(|e| {
                e.action == Action::Connect
                    && e.reason
                        .as_ref()
                        .is_some_and(|r| r.as_str().contains(reason))
            })
            .await;
        assert_eq!(entry.outcome, Outcome::Denied, "{what}");
    }
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_needs_a_certificate_that_names_a_device() {
    let hub = start().await;
    let (csr, key) = device_key();
    let (status, _, body) = problem(
        hub.client(None)
            .post(format!("{}/api/v1/renew", hub.base))
            .body(csr.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("urn:vigil:problem:certificate-required")
        )
    );

    // A client certificate from the hospital CA that names no device (signed with the CA key
    // directly, as a misconfigured tool might).
    let pki = vigil_pki::PkiDir::new(hub.dir.path());
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(pki.ca_key_path()).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&hub.ca_pem(), ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["printer.example".to_owned()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let device_key_pair = rcgen::KeyPair::from_pem(&key).unwrap();
    let nameless = params.signed_by(&device_key_pair, &issuer).unwrap();
    let response = hub
        .renew(&format!("{}{key}", nameless.pem()), csr)
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("urn:vigil:problem:certificate-not-a-device")
        )
    );
    hub.audited(|e| {
        e.reason
            .as_ref()
            .is_some_and(|r| r.as_str().contains("names no Vigil device"))
    })
    .await;
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_and_the_revocation_list_are_public() {
    let hub = start().await;
    let client = hub.client(None);
    let ca = client
        .get(format!("{}/pki/ca.pem", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ca.text().await.unwrap(), hub.ca_pem());
    let crl = client
        .get(format!("{}/pki/crl", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(crl.headers()["content-type"], "application/pkix-crl");
    let der = crl.bytes().await.unwrap();
    std::fs::write(hub.dir.path().join("crl.der"), &der).unwrap();
    std::fs::write(hub.dir.path().join("ca.pem"), hub.ca_pem()).unwrap();
    let out = Command::new("openssl")
        .args([
            "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-noout",
        ])
        .current_dir(hub.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("verify OK"));
    hub.running.stop().await;
}
