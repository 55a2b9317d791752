//! MQTT ingest with a real client (rumqttc), versions 3.1.1 and 5.0, over TLS with client
//! certificates: PUBACK after the observations are stored; every topic but the device's own
//! refused; a bad client id refused; one broken connection does not disturb another.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::Duration;

use rumqttc::{MqttOptions, QoS};
use tokio::io::AsyncWriteExt;

use common::{pack, start, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_3_1_1_publishes_are_acknowledged_after_commit_and_foreign_topics_close_the_connection()
 {
    let hub = start().await;
    let identity = hub.device("oxi-1", "p-1");
    let mut options = MqttOptions::new("oxi-1", "localhost", hub.running.mqtt.port());
    options.set_transport(hub.tls(&identity));
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 10);
    client
        .publish(
            "vigil/v1/d/oxi-1/obs",
            QoS::AtLeastOnce,
            false,
            pack("oxi-1", 1, 97),
        )
        .await
        .unwrap();
    client
        .subscribe("vigil/v1/d/oxi-1/cmd", QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .subscribe("vigil/v1/d/oxi-2/cmd", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut acked = false;
    let mut suback_codes = Vec::new();
    while !(acked && suback_codes.len() == 2) {
        match tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .unwrap()
            .unwrap()
        {
            rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) => {
                // The PUBACK comes after the commit: the observation is already readable.
                assert_eq!(hub.stored("p-1"), 1);
                acked = true;
            }
            rumqttc::Event::Incoming(rumqttc::Packet::SubAck(ack)) => {
                suback_codes.extend(ack.return_codes)
            }
            _ => {}
        }
    }
    assert_eq!(
        suback_codes,
        [
            rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce),
            rumqttc::SubscribeReasonCode::Failure
        ]
    );
    // Another device's topic: 3.1.1 has no refusal code, so the hub closes the connection.
    client
        .publish(
            "vigil/v1/d/oxi-2/obs",
            QoS::AtLeastOnce,
            false,
            pack("oxi-2", 1, 97),
        )
        .await
        .unwrap();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .unwrap()
        {
            Err(_) => break true,
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => break false,
            Ok(_) => {}
        }
    };
    assert!(
        closed,
        "a publication to another device's topic must not be acknowledged"
    );
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_5_refusals_carry_reason_codes() {
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
    let hub = start().await;
    let identity = hub.device("oxi-5", "p-5");
    // Empty client id: the hub assigns the device id.
    let mut options = rumqttc::v5::MqttOptions::new("", "localhost", hub.running.mqtt.port());
    options.set_transport(hub.tls(&identity));
    let (client, mut events) = rumqttc::v5::AsyncClient::new(options, 10);
    client
        .publish(
            "vigil/v1/d/oxi-5/obs",
            Q5::AtLeastOnce,
            false,
            pack("oxi-5", 1, 96),
        )
        .await
        .unwrap();
    client
        .publish(
            "vigil/v1/d/oxi-9/obs",
            Q5::AtLeastOnce,
            false,
            pack("oxi-9", 1, 96),
        )
        .await
        .unwrap();
    client
        .publish(
            "vigil/v1/d/oxi-5/obs",
            Q5::AtLeastOnce,
            false,
            b"not senml".to_vec(),
        )
        .await
        .unwrap();
    let mut reasons = Vec::new();
    let mut assigned = None;
    while reasons.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .unwrap()
            .unwrap()
        {
            rumqttc::v5::Event::Incoming(Packet::ConnAck(ack)) => {
                assigned = ack.properties.and_then(|p| p.assigned_client_identifier);
            }
            rumqttc::v5::Event::Incoming(Packet::PubAck(ack)) => reasons.push(ack.reason),
            _ => {}
        }
    }
    assert_eq!(assigned.as_deref(), Some("oxi-5"));
    assert_eq!(
        reasons,
        [
            PubAckReason::Success,
            PubAckReason::NotAuthorized,
            PubAckReason::PayloadFormatInvalid
        ]
    );
    assert_eq!(hub.stored("p-5"), 1);
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_that_is_not_the_device_is_refused() {
    let hub = start().await;
    let identity = hub.device("oxi-3", "p-3");
    let mut options = MqttOptions::new("someone-else", "localhost", hub.running.mqtt.port());
    options.set_transport(hub.tls(&identity));
    let (_client, mut events) = rumqttc::AsyncClient::new(options, 10);
    let error = tokio::time::timeout(Duration::from_secs(10), events.poll())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        format!("{error:?}").contains("BadClientId"),
        "expected CONNACK bad client id, got {error:?}"
    );
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_packet_closes_only_its_own_connection() {
    let hub = start().await;
    let broken = hub.device("oxi-6", "p-6");
    let healthy = hub.device("oxi-7", "p-7");

    // The broken device: a proper TLS connection and CONNECT, then garbage.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(hub.registry.ca().cert_der().clone()).unwrap();
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(broken.0.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(broken.1.as_bytes()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(hub.running.mqtt)
        .await
        .unwrap();
    let mut tls = connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let mut connect = bytes::BytesMut::new();
    rumqttc::mqttbytes::v4::Packet::Connect(rumqttc::mqttbytes::v4::Connect::new("oxi-6"))
        .write(&mut connect, 1024)
        .unwrap();
    tls.write_all(&connect).await.unwrap();
    tls.write_all(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3])
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut rest),
    )
    .await;
    assert!(read.is_ok(), "the hub closes the broken connection");

    // Meanwhile the healthy device is served as usual.
    let mut options = MqttOptions::new("oxi-7", "localhost", hub.running.mqtt.port());
    options.set_transport(hub.tls(&healthy));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 10);
    client
        .publish(
            "vigil/v1/d/oxi-7/obs",
            QoS::AtLeastOnce,
            false,
            pack("oxi-7", 1, 98),
        )
        .await
        .unwrap();
    loop {
        if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) =
            tokio::time::timeout(Duration::from_secs(10), events.poll())
                .await
                .unwrap()
                .unwrap()
        {
            break;
        }
    }
    assert_eq!(hub.stored("p-7"), 1);
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_device_is_slowed_then_disconnected_while_others_are_served() {
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::mqttbytes::v5::{DisconnectReasonCode, Packet};
    let hub = start_with(&[
        ("VIGIL_INGEST_MESSAGES_PER_SECOND", "5"),
        ("VIGIL_INGEST_BURST", "5"),
    ])
    .await;
    let flooder = hub.device("oxi-f", "p-f");
    let calm = hub.device("oxi-c", "p-c");

    let mut options = rumqttc::v5::MqttOptions::new("oxi-f", "localhost", hub.running.mqtt.port());
    options.set_transport(hub.tls(&flooder));
    let (client, mut events) = rumqttc::v5::AsyncClient::new(options, 1000);
    let flood = tokio::spawn(async move {
        for seq in 1..5_000u64 {
            if client
                .publish(
                    "vigil/v1/d/oxi-f/obs",
                    Q5::AtMostOnce,
                    false,
                    pack("oxi-f", seq, 95),
                )
                .await
                .is_err()
            {
                break;
            }
        }
    });

    // The calm device publishes meanwhile and is acknowledged.
    let mut options = MqttOptions::new("oxi-c", "localhost", hub.running.mqtt.port());
    options.set_transport(hub.tls(&calm));
    let (calm_client, mut calm_events) = rumqttc::AsyncClient::new(options, 10);
    calm_client
        .publish(
            "vigil/v1/d/oxi-c/obs",
            QoS::AtLeastOnce,
            false,
            pack("oxi-c", 1, 97),
        )
        .await
        .unwrap();
    let calm_task = tokio::spawn(async move {
        loop {
            if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) =
                calm_events.poll().await.unwrap()
            {
                return;
            }
        }
    });

    // The hub disconnects the flooder (0x96; the packet may be lost to a reset when the
    // flooder's unread data is discarded, so a closed connection counts too).
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(20), events.poll()).await {
            Ok(Ok(rumqttc::v5::Event::Incoming(Packet::Disconnect(disconnect)))) => {
                assert_eq!(
                    disconnect.reason_code,
                    DisconnectReasonCode::MessageRateTooHigh
                );
                break true;
            }
            Ok(Ok(_)) => {}
            Ok(Err(_)) => break true,
            Err(_) => break false,
        }
    };
    flood.abort();
    assert!(ended, "the flooding device must be disconnected");
    tokio::time::timeout(Duration::from_secs(10), calm_task)
        .await
        .unwrap()
        .unwrap();
    let kinds =
        common::wait_for_alerts(hub.registry.store(), &[vigil_model::AlertKind::Flood]).await;
    assert!(
        kinds.contains(&vigil_model::AlertKind::Flood),
        "a flood alert"
    );
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_with_the_same_certificate_takes_over_and_is_alerted() {
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::mqttbytes::v5::{DisconnectReasonCode, Packet};
    let hub = start().await;
    let identity = hub.device("oxi-twin", "p-twin");
    let connect = || {
        let mut options =
            rumqttc::v5::MqttOptions::new("oxi-twin", "localhost", hub.running.mqtt.port());
        options.set_transport(hub.tls(&identity));
        rumqttc::v5::AsyncClient::new(options, 10)
    };
    let (_first, mut first_events) = connect();
    loop {
        if let rumqttc::v5::Event::Incoming(Packet::ConnAck(_)) =
            tokio::time::timeout(Duration::from_secs(10), first_events.poll())
                .await
                .unwrap()
                .unwrap()
        {
            break;
        }
    }
    let (second, mut second_events) = connect();
    second
        .publish(
            "vigil/v1/d/oxi-twin/obs",
            Q5::AtLeastOnce,
            false,
            pack("oxi-twin", 1, 95),
        )
        .await
        .unwrap();
    let first_ended = tokio::spawn(async move {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), first_events.poll()).await {
                Ok(Ok(rumqttc::v5::Event::Incoming(Packet::Disconnect(d)))) => {
                    return d.reason_code == DisconnectReasonCode::SessionTakenOver;
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    });
    loop {
        if let rumqttc::v5::Event::Incoming(Packet::PubAck(_)) =
            tokio::time::timeout(Duration::from_secs(10), second_events.poll())
                .await
                .unwrap()
                .unwrap()
        {
            break;
        }
    }
    assert!(
        first_ended.await.unwrap(),
        "the older connection is closed (taken over)"
    );
    let kinds = common::wait_for_alerts(
        hub.registry.store(),
        &[vigil_model::AlertKind::IdentityConflict],
    )
    .await;
    assert!(
        kinds.contains(&vigil_model::AlertKind::IdentityConflict),
        "an identity-conflict alert"
    );
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed_on_arrival() {
    use tokio::io::AsyncReadExt;
    let hub = start_with(&[("VIGIL_HUB_MAX_CONNECTIONS", "2")]).await;
    // Two connections that never finish a handshake hold both places.
    let _first = tokio::net::TcpStream::connect(hub.running.mqtt)
        .await
        .unwrap();
    let _second = tokio::net::TcpStream::connect(hub.running.mqtt)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = tokio::net::TcpStream::connect(hub.running.mqtt)
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut byte))
        .await
        .expect("the hub closes the connection at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The places held are not closed.
    let mut held = _first;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), held.read(&mut byte))
            .await
            .is_err(),
        "a connection within the limit stays open"
    );
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cbor_pack_is_told_from_its_first_byte_and_a_wrong_content_type_is_refused() {
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PublishProperties};
    use vigil_model::{DeviceId, Timestamp};
    use vigil_wire::encode::{PackBuilder, ReadingTime};
    let hub = start().await;
    let identity = hub.device("oxi-c", "p-c");
    let mut options = rumqttc::v5::MqttOptions::new("oxi-c", "localhost", hub.running.mqtt.port());
    options.set_transport(hub.tls(&identity));
    let (client, mut events) = rumqttc::v5::AsyncClient::new(options, 10);
    let device = DeviceId::new("oxi-c").unwrap();
    let cbor = |seq| {
        let mut pack = PackBuilder::new(&device, seq, Timestamp::now()).unwrap();
        pack.reading(150_456, "%", 95.0, ReadingTime::Offset(0.0))
            .unwrap();
        pack.to_cbor()
    };
    let topic = "vigil/v1/d/oxi-c/obs";
    client
        .publish(topic, Q5::AtLeastOnce, false, cbor(1))
        .await
        .unwrap();
    let declared = |content_type: &str| PublishProperties {
        content_type: Some(content_type.to_owned()),
        ..PublishProperties::default()
    };
    client
        .publish_with_properties(
            topic,
            Q5::AtLeastOnce,
            false,
            cbor(2),
            declared("application/senml+cbor"),
        )
        .await
        .unwrap();
    client
        .publish_with_properties(
            topic,
            Q5::AtLeastOnce,
            false,
            cbor(3),
            declared("application/senml+json"),
        )
        .await
        .unwrap();
    client
        .publish_with_properties(
            topic,
            Q5::AtLeastOnce,
            false,
            cbor(4),
            declared("text/plain"),
        )
        .await
        .unwrap();
    let mut reasons = Vec::new();
    while reasons.len() < 4 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .unwrap()
            .unwrap();
        if let rumqttc::v5::Event::Incoming(Packet::PubAck(ack)) = event {
            reasons.push(ack.reason);
        }
    }
    assert_eq!(
        reasons,
        [
            PubAckReason::Success,
            PubAckReason::Success,
            PubAckReason::PayloadFormatInvalid,
            PubAckReason::PayloadFormatInvalid
        ]
    );
    assert_eq!(hub.stored("p-c"), 2);
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_handshakes_from_one_address_are_a_burst() {
    use tokio::io::AsyncReadExt;
    let hub = start().await;
    // Five clients from 127.0.0.1 that never present a certificate (they do not speak TLS).
    for _ in 0..5 {
        let mut tcp = tokio::net::TcpStream::connect(hub.running.mqtt)
            .await
            .unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n")
            .await
            .unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut sink)).await;
    }
    let kinds = common::wait_for_alerts(
        hub.registry.store(),
        &[vigil_model::AlertKind::AuthFailureBurst],
    )
    .await;
    assert!(
        kinds.contains(&vigil_model::AlertKind::AuthFailureBurst),
        "{kinds:?}"
    );
    hub.running.stop().await;
}
