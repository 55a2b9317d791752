//! Persistent MQTT sessions and messages queued for devices, with real clients (rumqttc):
//! a message queued while a device is away reaches it when it comes back, is delivered once
//! acknowledged, sent again (duplicate) if it was not, and never once it has expired.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use vigil_model::{Actor, DeviceId, Timestamp};
use vigil_store::Channel;

use common::{TestHub, start};

const COMMAND: &[u8] = b"signed command bytes";

fn v5_client(
    hub: &TestHub,
    identity: &(String, String),
    device: &str,
    clean_start: bool,
    manual_acks: bool,
) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(device, "localhost", hub.running.mqtt.port());
    options.set_transport(hub.tls(identity));
    options.set_clean_start(clean_start);
    options.set_session_expiry_interval(Some(3600));
    options.set_manual_acks(manual_acks);
    AsyncClient::new(options, 10)
}

/// Polls until the CONNACK; whether a session was present.
async fn connack(events: &mut EventLoop) -> bool {
    loop {
        if let Event::Incoming(Packet::ConnAck(ack)) = poll(events).await {
            return ack.session_present;
        }
    }
}

async fn poll(events: &mut EventLoop) -> Event {
    tokio::time::timeout(Duration::from_secs(10), events.poll())
        .await
        .expect("the hub answers")
        .expect("the connection stays up")
}

/// The next PUBLISH from the hub, if one comes within `wait`.
async fn publication(
    events: &mut EventLoop,
    wait: Duration,
) -> Option<rumqttc::v5::mqttbytes::v5::Publish> {
    tokio::time::timeout(wait, async {
        loop {
            if let Event::Incoming(Packet::Publish(publish)) = poll(events).await {
                return publish;
            }
        }
    })
    .await
    .ok()
}

async fn queue(hub: &TestHub, device: &str, lifetime: Duration) -> u64 {
    let outbox = hub.running.outbox.clone();
    let device = DeviceId::new(device).unwrap();
    tokio::task::spawn_blocking(move || {
        outbox.queue(Actor::System, &device, Channel::Commands, COMMAND, lifetime)
    })
    .await
    .unwrap()
    .unwrap()
}

fn pending(hub: &TestHub, device: &str) -> usize {
    hub.registry
        .store()
        .pending_messages(&DeviceId::new(device).unwrap(), Timestamp::now(), 100)
        .unwrap()
        .len()
}

/// Waits until the hub has recorded the delivery.
async fn delivered(hub: &TestHub, device: &str) {
    for _ in 0..100 {
        if pending(hub, device) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery was not recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_queued_while_the_device_is_away_reaches_it_on_reconnect() {
    let hub = start().await;
    let identity = hub.device("pump-1", "p-1");
    let topic = "vigil/v1/d/pump-1/cmd";

    // First connection: subscribe, then leave.
    let (client, mut events) = v5_client(&hub, &identity, "pump-1", true, false);
    client.subscribe(topic, Q5::AtLeastOnce).await.unwrap();
    assert!(!connack(&mut events).await);
    while !matches!(poll(&mut events).await, Event::Incoming(Packet::SubAck(_))) {}
    client.disconnect().await.unwrap();
    while tokio::time::timeout(Duration::from_secs(5), events.poll())
        .await
        .is_ok_and(|r| r.is_ok())
    {}

    // Queued while away.
    let id = queue(&hub, "pump-1", Duration::from_secs(600)).await;
    assert_eq!(pending(&hub, "pump-1"), 1);

    // Back with the session: no new SUBSCRIBE, yet the command arrives.
    let (_client, mut events) = v5_client(&hub, &identity, "pump-1", false, false);
    assert!(connack(&mut events).await, "the session is resumed");
    let publish = publication(&mut events, Duration::from_secs(10))
        .await
        .expect("the queued command is delivered");
    assert_eq!(publish.topic.as_ref(), topic.as_bytes());
    assert_eq!(publish.payload.as_ref(), COMMAND);
    assert_eq!(publish.qos, Q5::AtLeastOnce);
    assert!(!publish.dup);
    let expiry = publish
        .properties
        .and_then(|p| p.message_expiry_interval)
        .unwrap();
    assert!((590..=600).contains(&expiry), "{expiry}");
    delivered(&hub, "pump-1").await;
    assert!(id > 0);
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_command_is_sent_again_as_a_duplicate() {
    let hub = start().await;
    let identity = hub.device("pump-2", "p-2");
    queue(&hub, "pump-2", Duration::from_secs(600)).await;

    // Receive it but never acknowledge it, then drop the connection.
    let (client, mut events) = v5_client(&hub, &identity, "pump-2", true, true);
    client
        .subscribe("vigil/v1/d/pump-2/cmd", Q5::AtLeastOnce)
        .await
        .unwrap();
    let first = publication(&mut events, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!first.dup);
    drop(client);
    drop(events);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        pending(&hub, "pump-2"),
        1,
        "not delivered until acknowledged"
    );

    let (_client, mut events) = v5_client(&hub, &identity, "pump-2", false, false);
    let again = publication(&mut events, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(again.dup, "a resend is marked duplicate");
    assert_eq!(again.payload.as_ref(), COMMAND);
    delivered(&hub, "pump-2").await;
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_command_is_never_sent_and_a_clean_start_forgets_subscriptions() {
    let hub = start().await;
    let identity = hub.device("pump-3", "p-3");
    let (client, mut events) = v5_client(&hub, &identity, "pump-3", true, false);
    client
        .subscribe("vigil/v1/d/pump-3/cmd", Q5::AtLeastOnce)
        .await
        .unwrap();
    while !matches!(poll(&mut events).await, Event::Incoming(Packet::SubAck(_))) {}
    client.disconnect().await.unwrap();
    drop(events);

    queue(&hub, "pump-3", Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    queue(&hub, "pump-3", Duration::from_secs(600)).await;

    // A clean start: no session, so nothing is sent until the device subscribes again.
    let (client, mut events) = v5_client(&hub, &identity, "pump-3", true, false);
    assert!(!connack(&mut events).await);
    assert!(
        publication(&mut events, Duration::from_millis(800))
            .await
            .is_none()
    );
    client
        .subscribe("vigil/v1/d/pump-3/cmd", Q5::AtLeastOnce)
        .await
        .unwrap();
    let publish = publication(&mut events, Duration::from_secs(10))
        .await
        .unwrap();
    let expiry = publish
        .properties
        .and_then(|p| p.message_expiry_interval)
        .unwrap();
    assert!(
        expiry > 500,
        "only the unexpired command is sent ({expiry})"
    );
    delivered(&hub, "pump-3").await;
    assert!(
        publication(&mut events, Duration::from_millis(800))
            .await
            .is_none(),
        "the expired command never comes"
    );
    hub.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_version_3_1_1_device_gets_a_command_at_once_and_keeps_its_session() {
    use rumqttc::{Event as E4, MqttOptions as O4, Packet as P4, QoS};
    let hub = start().await;
    let identity = hub.device("pump-4", "p-4");
    let connect = |clean: bool| {
        let mut options = O4::new("pump-4", "localhost", hub.running.mqtt.port());
        options.set_transport(hub.tls(&identity));
        options.set_clean_session(clean);
        rumqttc::AsyncClient::new(options, 10)
    };
    let (client, mut events) = connect(false);
    client
        .subscribe("vigil/v1/d/pump-4/cmd", QoS::AtLeastOnce)
        .await
        .unwrap();
    while !matches!(next4(&mut events).await, E4::Incoming(P4::SubAck(_))) {}
    queue(&hub, "pump-4", Duration::from_secs(60)).await;
    loop {
        if let E4::Incoming(P4::Publish(publish)) = next4(&mut events).await {
            assert_eq!(publish.payload.as_ref(), COMMAND);
            break;
        }
    }
    delivered(&hub, "pump-4").await;
    client.disconnect().await.unwrap();
    drop(events);

    // Clean Session 0: the session is kept, and a command queued meanwhile arrives.
    queue(&hub, "pump-4", Duration::from_secs(60)).await;
    let (_client, mut events) = connect(false);
    loop {
        match next4(&mut events).await {
            E4::Incoming(P4::ConnAck(ack)) => assert!(ack.session_present),
            E4::Incoming(P4::Publish(publish)) => {
                assert_eq!(publish.payload.as_ref(), COMMAND);
                break;
            }
            _ => {}
        }
    }
    delivered(&hub, "pump-4").await;
    hub.running.stop().await;
}

async fn next4(events: &mut rumqttc::EventLoop) -> rumqttc::Event {
    tokio::time::timeout(Duration::from_secs(10), events.poll())
        .await
        .unwrap()
        .unwrap()
}
