//! HTTPS ingest against a live hub: a device posts SenML packs over mutual TLS; 201 only after
//! the observations are durable; every refusal is a clear 4xx problem.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use vigil_hub::{Registry, RunningHub};
use vigil_model::phi::Phi;
use vigil_model::{Actor, AlertKind, DeviceClass, DeviceId, PatientId, Quantity, Timestamp};
use vigil_store::Demographics;

struct TestHub {
    _dir: tempfile::TempDir,
    registry: Registry,
    running: RunningHub,
    base: String,
}

async fn start() -> TestHub {
    let (dir, registry, running) = common::start_hub(&[]).await;
    let base = format!("https://localhost:{}", running.https.port());
    TestHub {
        _dir: dir,
        registry,
        running,
        base,
    }
}

impl TestHub {
    fn client(&self, identity: Option<&str>) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.registry.ca().cert_pem().as_bytes()).unwrap();
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(10));
        if let Some(pem) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    /// Registers and enrols a device; returns its identity (chain + key, PEM).
    async fn device(&self, id: &str, class: DeviceClass) -> String {
        let token = self
            .registry
            .register(Actor::System, DeviceId::new(id).unwrap(), class)
            .unwrap()
            .token;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        let chain = self
            .client(None)
            .post(format!("{}/api/v1/enroll", self.base))
            .bearer_auth(token)
            .body(csr.der().to_vec())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        format!("{chain}{}", key.serialize_pem())
    }

    fn patient(&self, patient: &str, device: &str) {
        let store = self.registry.store();
        let id = PatientId::new(patient).unwrap();
        store
            .add_patient(
                &id,
                &Demographics {
                    name: Phi::new("A".into()),
                    mrn: Phi::new("B".into()),
                    birth_date: Phi::new(time::macros::date!(1980 - 01 - 01)),
                },
                Timestamp::EPOCH,
            )
            .unwrap();
        store
            .assign_device(&DeviceId::new(device).unwrap(), &id, Timestamp::EPOCH)
            .unwrap();
    }

    async fn post(&self, identity: &str, device: &str, body: String) -> reqwest::Response {
        self.client(Some(identity))
            .post(format!(
                "{}/api/v1/devices/{device}/observations",
                self.base
            ))
            .header("content-type", "application/senml+json")
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

fn now_seconds() -> f64 {
    let millis = Timestamp::now().unix_millis();
    f64::from(u32::try_from(millis / 1000).unwrap())
}

/// A pack whose first record also carries the base name, base time and sequence number.
fn pack(device: &str, seq: u64, records: &str) -> String {
    let base = format!(
        r#"{{"bn": "urn:vigil:device:{device}:", "bt": {}, "seq_": {seq}, "#,
        now_seconds()
    );
    format!("[{}]", records.replacen('{', &base, 1))
}

async fn problem_type(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["type"].as_str().unwrap_or("").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_are_stored_once_converted_and_flagged() {
    let hub = start().await;
    let identity = hub.device("mon-1", DeviceClass::BedsideMonitor).await;
    hub.patient("p-1", "mon-1");

    let body = pack(
        "mon-1",
        1,
        r#"{"n": "147842", "u": "/min", "v": 72}, {"n": "150364", "u": "[degF]", "v": 98.6, "t": 1}, {"n": "147842", "u": "/min", "v": 74, "t": 2}"#,
    );
    let response = hub.post(&identity, "mon-1", body.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let receipt: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (receipt["stored"].as_u64(), receipt["duplicates"].as_u64()),
        (Some(3), Some(0))
    );

    // The same pack again (a redelivery): acknowledged, stored once.
    let receipt: serde_json::Value = hub
        .post(&identity, "mon-1", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (receipt["stored"].as_u64(), receipt["duplicates"].as_u64()),
        (Some(0), Some(3))
    );

    let store = hub.registry.store();
    let patient = PatientId::new("p-1").unwrap();
    let far = Timestamp::from_unix_millis(4_000_000_000_000).unwrap();
    let temperature = store
        .observations(&patient, Quantity::BodyTemperature, Timestamp::EPOCH, far)
        .unwrap();
    assert!(
        (temperature[0].value.expose() - 37.0).abs() < 1e-9,
        "converted to Cel"
    );
    assert_eq!(
        store
            .observations(&patient, Quantity::HeartRate, Timestamp::EPOCH, far)
            .unwrap()
            .len(),
        2
    );

    // An impossible heart rate is stored, flagged, and alerted; a skipped sequence is alerted.
    let receipt: serde_json::Value = hub
        .post(
            &identity,
            "mon-1",
            pack(
                "mon-1",
                5,
                r#"{"n": "147842", "u": "/min", "v": 700, "t": 3}"#,
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(receipt["implausible"].as_u64(), Some(1));
    let kinds = common::wait_for_alerts(
        store,
        &[AlertKind::ImplausibleValue, AlertKind::SequenceGap],
    )
    .await;
    assert!(kinds.contains(&AlertKind::ImplausibleValue), "{kinds:?}");
    assert!(kinds.contains(&AlertKind::SequenceGap), "{kinds:?}");
    let stored = store
        .observations(&patient, Quantity::HeartRate, Timestamp::EPOCH, far)
        .unwrap();
    assert!(stored.iter().any(|o| o.implausible));
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_a_clear_problem() {
    let hub = start().await;
    let monitor = hub.device("mon-2", DeviceClass::BedsideMonitor).await;
    let idle = hub.device("oxi-9", DeviceClass::PulseOximeter).await;
    hub.patient("p-2", "mon-2");
    let hr = r#"{"n": "147842", "u": "/min", "v": 72}"#;

    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        (
            &monitor,
            "oxi-9",
            pack("oxi-9", 1, hr),
            StatusCode::FORBIDDEN,
            "wrong-device",
        ),
        (
            &monitor,
            "mon-2",
            pack("mon-2", 1, r#"{"n": "999999", "u": "/min", "v": 1}"#),
            StatusCode::BAD_REQUEST,
            "unknown-quantity",
        ),
        (
            &monitor,
            "mon-2",
            pack("mon-2", 1, r#"{"n": "8418300", "u": "[iU]/h", "v": 1}"#),
            StatusCode::BAD_REQUEST,
            "quantity-not-for-class",
        ),
        (
            &monitor,
            "mon-2",
            pack("mon-2", 1, r#"{"n": "147842", "u": "bpm", "v": 72}"#),
            StatusCode::BAD_REQUEST,
            "unit-not-accepted",
        ),
        (
            &monitor,
            "mon-2",
            pack(
                "mon-2",
                1,
                r#"{"n": "147842", "u": "/min", "v": 72, "t": -3600}"#,
            ),
            StatusCode::BAD_REQUEST,
            "clock-skew",
        ),
        (
            &monitor,
            "mon-2",
            "[{\"n\": ".to_owned(),
            StatusCode::BAD_REQUEST,
            "bad-senml",
        ),
        (
            &monitor,
            "mon-2",
            format!("[{}]", " ".repeat(70 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
        ),
        (
            &idle,
            "oxi-9",
            pack("oxi-9", 1, r#"{"n": "150456", "u": "%", "v": 97}"#),
            StatusCode::CONFLICT,
            "no-patient",
        ),
    ];
    for (identity, path, body, status, kind) in cases {
        let (got, got_kind) = problem_type(hub.post(identity, path, body).await).await;
        assert_eq!(
            (got, got_kind.as_str()),
            (status, format!("urn:vigil:problem:{kind}").as_str())
        );
    }

    let wrong_type = hub
        .client(Some(&monitor))
        .post(format!("{}/api/v1/devices/mon-2/observations", hub.base))
        .header("content-type", "text/plain")
        .body(pack("mon-2", 1, hr))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem_type(wrong_type).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let anonymous = hub
        .client(None)
        .post(format!("{}/api/v1/devices/mon-2/observations", hub.base))
        .header("content-type", "application/senml+json")
        .body(pack("mon-2", 1, hr))
        .send()
        .await
        .unwrap();
    assert_eq!(problem_type(anonymous).await.0, StatusCode::UNAUTHORIZED);
    // Nothing refused was stored.
    let stored = hub
        .registry
        .store()
        .observations(
            &PatientId::new("p-2").unwrap(),
            Quantity::HeartRate,
            Timestamp::EPOCH,
            Timestamp::from_unix_millis(4_000_000_000_000).unwrap(),
        )
        .unwrap();
    assert!(stored.is_empty());
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cbor_pack_is_accepted_as_application_senml_cbor() {
    use vigil_wire::encode::{PackBuilder, ReadingTime};
    let hub = start().await;
    let identity = hub
        .device("cgm-1", DeviceClass::ContinuousGlucoseMonitor)
        .await;
    hub.patient("p-cbor", "cgm-1");
    let device = DeviceId::new("cgm-1").unwrap();
    let mut pack = PackBuilder::new(&device, 1, Timestamp::now()).unwrap();
    // 6.1 mmol/L: stored in mg/dL, the canonical unit.
    let code = Quantity::GlucoseInterstitial.spec().mdc.code();
    pack.reading(code, "mmol/L", 6.1, ReadingTime::Offset(0.0))
        .unwrap();
    let post = |content_type: &'static str, body: Vec<u8>| {
        hub.client(Some(&identity))
            .post(format!("{}/api/v1/devices/cgm-1/observations", hub.base))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = post("application/senml+cbor", pack.to_cbor())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let stored = hub
        .registry
        .store()
        .observations(
            &PatientId::new("p-cbor").unwrap(),
            Quantity::GlucoseInterstitial,
            Timestamp::EPOCH,
            Timestamp::from_unix_millis(4_000_000_000_000).unwrap(),
        )
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!((stored[0].value.expose() - 109.9).abs() < 0.2);

    // CBOR declared as JSON, and an unknown type: refused.
    let (status, problem) = problem_type(
        post("application/senml+json", pack.to_cbor())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let response = post("application/cbor", pack.to_cbor()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    hub.running.stop().await;
}
