//! The device side against a real hub: enrolment over HTTPS with a one-time token, then MQTT 5.0
//! over mutual TLS (publications acknowledged after commit, refusals with their reason codes,
//! queued commands received).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::PubAckReason;
use vigil_device::{EnrolError, Link, LinkOptions, Published, enrol, topics};
use vigil_hub::{Hub, Registry, RunningHub};
use vigil_model::phi::Phi;
use vigil_model::{Actor, AlertKind, DeviceClass, DeviceId, PatientId, Quantity, Timestamp};
use vigil_store::{Channel, Demographics};

async fn start_hub() -> (tempfile::TempDir, Registry, RunningHub) {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("VIGIL_HUB_HTTPS_LISTEN", "127.0.0.1:0"),
        ("VIGIL_HUB_MQTT_LISTEN", "127.0.0.1:0"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
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
    (dir, registry, hub.start().await.unwrap())
}

/// Registers `device` serving a new patient; its enrolment token.
fn register(registry: &Registry, device: &str, patient: &str) -> String {
    let id = DeviceId::new(device).unwrap();
    let token = registry
        .register(Actor::System, id.clone(), DeviceClass::PulseOximeter)
        .unwrap()
        .token;
    let patient = PatientId::new(patient).unwrap();
    let store = registry.store();
    store
        .add_patient(
            &patient,
            &Demographics {
                name: Phi::new("A".into()),
                mrn: Phi::new("B".into()),
                birth_date: Phi::new(time::macros::date!(1970 - 01 - 01)),
            },
            Timestamp::EPOCH,
        )
        .unwrap();
    store
        .assign_device(&id, &patient, Timestamp::EPOCH)
        .unwrap();
    token
}

/// The kinds of the alerts about `device`, once those in `wanted` are there (detection runs in
/// the background) or after 10 s.
async fn alerts_about(registry: &Registry, device: &str, wanted: &[AlertKind]) -> Vec<AlertKind> {
    let mut kinds = Vec::new();
    for _ in 0..200 {
        kinds = registry
            .store()
            .alerts(None, 1000)
            .unwrap()
            .into_iter()
            .filter(|a| {
                a.alert
                    .device
                    .as_ref()
                    .is_some_and(|d| d.as_str() == device)
            })
            .map(|a| a.alert.kind)
            .collect();
        if wanted.iter().all(|k| kinds.contains(k)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kinds
}

fn pack(device: &str, seq: u64) -> Vec<u8> {
    let now = Timestamp::now().unix_millis() / 1000;
    format!(r#"[{{"bn": "urn:vigil:device:{device}:", "bt": {now}, "seq_": {seq}, "n": "150456", "u": "%", "v": 97}}]"#)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_enrols_publishes_and_receives_a_command() {
    let (_dir, registry, running) = start_hub().await;
    let token = register(&registry, "oxi-1", "p-1");
    let hub = format!("https://localhost:{}", running.https.port());
    let ca = registry.ca().cert_pem().to_owned();

    let identity = enrol(&hub, &ca, &token).await.unwrap();
    assert_eq!(identity.device.as_str(), "oxi-1");
    // The token was spent.
    match enrol(&hub, &ca, &token).await {
        Err(EnrolError::Refused { status, .. }) => assert_eq!(status, 401),
        other => panic!("a spent token must be refused: {other:?}"),
    }

    let mut link = Link::connect(running.mqtt, &identity, &LinkOptions::default())
        .await
        .unwrap();
    let device = identity.device.clone();
    assert_eq!(
        link.publish(&topics::observations(&device), &pack("oxi-1", 1))
            .await
            .unwrap(),
        Published::Accepted
    );
    // Acknowledged means stored.
    let stored = registry
        .store()
        .observations(
            &PatientId::new("p-1").unwrap(),
            Quantity::Spo2,
            Timestamp::EPOCH,
            Timestamp::from_unix_millis(4_000_000_000_000).unwrap(),
        )
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        link.publish("vigil/v1/d/oxi-2/obs", &pack("oxi-2", 1))
            .await
            .unwrap(),
        Published::Refused(PubAckReason::NotAuthorized)
    );
    assert_eq!(
        link.publish(&topics::observations(&device), b"[]")
            .await
            .unwrap(),
        Published::Refused(PubAckReason::PayloadFormatInvalid)
    );

    assert_eq!(
        link.subscribe(&[topics::commands(&device), "vigil/v1/d/oxi-2/cmd".into()])
            .await
            .unwrap(),
        [true, false]
    );
    let outbox = running.outbox.clone();
    let to = device.clone();
    tokio::task::spawn_blocking(move || {
        outbox.queue(
            Actor::System,
            &to,
            Channel::Commands,
            b"command",
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap()
    .unwrap();
    let alerts = alerts_about(&registry, "oxi-1", &[AlertKind::TopicProbe]).await;
    assert!(alerts.contains(&AlertKind::TopicProbe), "{alerts:?}");
    let message = link
        .next_message(Duration::from_secs(10))
        .await
        .unwrap()
        .expect("the command arrives");
    assert_eq!(message.topic, topics::commands(&device));
    assert_eq!(message.payload.as_ref(), b"command");
    link.disconnect().await.unwrap();
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_id_and_a_forged_token_are_refused() {
    let (_dir, registry, running) = start_hub().await;
    let token = register(&registry, "oxi-3", "p-3");
    let hub = format!("https://localhost:{}", running.https.port());
    let ca = registry.ca().cert_pem().to_owned();

    let forged = format!("{}x", &token[..token.len() - 1]);
    assert!(matches!(
        enrol(&hub, &ca, &forged).await,
        Err(EnrolError::Refused { status: 401, .. })
    ));
    let identity = enrol(&hub, &ca, &token).await.unwrap();
    let options = LinkOptions {
        client_id: Some("oxi-9".into()),
        ..LinkOptions::default()
    };
    assert!(matches!(
        Link::connect(running.mqtt, &identity, &options).await,
        Err(vigil_device::LinkError::Refused(_))
    ));
    // Detection turned both refusals into alerts about the device.
    let alerts = alerts_about(
        &registry,
        "oxi-3",
        &[AlertKind::TokenMisuse, AlertKind::IdentityConflict],
    )
    .await;
    assert!(alerts.contains(&AlertKind::TokenMisuse), "{alerts:?}");
    assert!(alerts.contains(&AlertKind::IdentityConflict), "{alerts:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_keep_an_idle_link_open_and_silence_closes_it() {
    use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;
    let (_dir, registry, running) = start_hub().await;
    let token = register(&registry, "cgm-1", "p-ping");
    let hub = format!("https://localhost:{}", running.https.port());
    let identity = enrol(&hub, registry.ca().cert_pem(), &token).await.unwrap();
    let options = LinkOptions {
        keep_alive: 1, // the hub allows 1.5 s of silence
        ..LinkOptions::default()
    };
    let mut link = Link::connect(running.mqtt, &identity, &options)
        .await
        .unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        link.ping().await.unwrap();
    }
    // Silent for longer than 1.5 × the keep-alive: the hub closes with its reason.
    assert_eq!(
        link.closed().await.unwrap(),
        Some(DisconnectReasonCode::KeepAliveTimeout)
    );
    running.stop().await;
}
