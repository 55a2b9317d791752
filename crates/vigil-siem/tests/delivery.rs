//! Delivery over real sockets: UDP, TCP and TLS syslog receivers and an HTTPS webhook
//! receiver, each parsing what it gets; failures, overflow, a dead sink next to a live one,
//! reconnection after a receiver restarts, and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::*;
use tokio::net::TcpListener;
use tokio::sync::mpsc::unbounded_channel;
use vigil_siem::{
    Dispatcher, DispatcherHandle, Format, SiemConfig, SinkConfig, SinkKind, SinkStats,
};

fn config(sinks: Vec<SinkConfig>) -> SiemConfig {
    SiemConfig {
        hostname: Some("hub.example.org".into()),
        sinks,
        ..SiemConfig::default()
    }
}

fn start(sinks: Vec<SinkConfig>) -> DispatcherHandle {
    Dispatcher::start(config(sinks).sinks().unwrap()).unwrap()
}

/// Quick retries, so that the tests do not wait on production backoff.
fn quick(sink: SinkConfig) -> SinkConfig {
    SinkConfig {
        backoff_initial_ms: 50,
        backoff_max_ms: 200,
        ..sink
    }
}

fn stats(handle: &DispatcherHandle, name: &str) -> SinkStats {
    handle.stats().into_iter().find(|s| s.name == name).unwrap()
}

/// Waits until `condition` holds for the sink's counters.
async fn until(handle: &DispatcherHandle, name: &str, condition: impl Fn(&SinkStats) -> bool) {
    let start = Instant::now();
    loop {
        let now = stats(handle, name);
        if condition(&now) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_no_clinical_value(text: &str) {
    assert!(
        !text.contains(CLINICAL_TEXT),
        "clinical value left Vigil: {text}"
    );
    assert!(
        !text.contains("pulse"),
        "clinical quantity left Vigil: {text}"
    );
}

fn tls_sink(name: &str, address: SocketAddr, pki: &Pki) -> SinkConfig {
    SinkConfig {
        ca_file: Some(pki.ca_file.clone()),
        server_name: Some("localhost".into()),
        ..SinkConfig::syslog(name, SinkKind::Tls, &address.to_string())
    }
}

#[tokio::test]
async fn udp_carries_one_cef_message_per_datagram() {
    let (address, mut datagrams) = udp_receiver().await;
    let siem = start(vec![SinkConfig::syslog(
        "udp",
        SinkKind::Udp,
        &address.to_string(),
    )]);
    for n in 1..=3 {
        siem.send(n, &alert(n));
    }
    for n in 1..=3 {
        let datagram = String::from_utf8(next(&mut datagrams, 5).await).unwrap();
        assert_no_clinical_value(&datagram);
        let message = parse_syslog(&datagram);
        assert_eq!(message.pri, 20 * 8 + 2); // local4, high → Critical
        assert_eq!(message.hostname, "hub.example.org");
        assert_eq!(message.app, "vigil");
        assert_eq!(message.procid, std::process::id().to_string());
        assert_eq!(message.msgid, "cross_signal_mismatch");
        assert_eq!(message.sd_id, "vigil@32473");
        assert_eq!(message.param("id"), Some(n.to_string().as_str()));
        assert_eq!(message.param("device"), Some("oxi-3"));
        assert_eq!(message.param("patient"), Some("p-17"));
        assert!(message.timestamp.ends_with('Z') && message.timestamp.contains('.'));
        assert!(message.msg.starts_with("CEF:0|Vigil|Vigil|"));
        let extension = cef_extension(&message.msg);
        let value = |key: &str| {
            extension
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(value("externalId"), Some(n.to_string()));
        assert_eq!(value("src").as_deref(), Some("10.1.2.3"));
        assert_eq!(value("cs2").as_deref(), Some("p-17"));
        assert!(value("msg").unwrap().contains("note: a=b \\ \"q\" ] | x"));
    }
    let stats = siem.shutdown(Duration::from_secs(2)).await;
    assert_eq!(stats[0].sent, 3);
    assert_eq!(stats[0].dropped(), 0);
}

#[tokio::test]
async fn udp_datagrams_stay_within_the_configured_size() {
    let (address, mut datagrams) = udp_receiver().await;
    let siem = start(vec![SinkConfig {
        max_message_bytes: Some(700),
        format: Some(Format::Json),
        ..SinkConfig::syslog("udp", SinkKind::Udp, &address.to_string())
    }]);
    let mut big = alert(1);
    big.evidence
        .extend((0..20).map(|i| vigil_model::Evidence::Fact {
            name: format!("extra{i}"),
            value: "v".repeat(200),
        }));
    siem.send(1, &big);
    let datagram = next(&mut datagrams, 5).await;
    assert!(datagram.len() <= 700, "{}", datagram.len());
    let message = parse_syslog(&String::from_utf8(datagram).unwrap());
    let json: serde_json::Value = serde_json::from_str(&message.msg).unwrap();
    assert!(json["facts_omitted"].as_u64().unwrap() >= 20);
    siem.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn tcp_frames_json_messages_by_octet_counting_in_order_and_flushes_on_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, mut messages) = unbounded_channel();
    let _receiver = stream_receiver(listener, None, sender).await;
    let siem = start(vec![SinkConfig {
        format: Some(Format::Json),
        ..SinkConfig::syslog("tcp", SinkKind::Tcp, &address.to_string())
    }]);
    for n in 1..=50 {
        siem.send(n, &alert(n));
    }
    // Shutdown right away: what was handed over is flushed before it returns.
    let stats = siem.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        (stats[0].sent, stats[0].retried, stats[0].dropped()),
        (50, 0, 0)
    );
    for n in 1..=50 {
        let raw = next(&mut messages, 5).await;
        assert_no_clinical_value(&raw);
        let message = parse_syslog(&raw);
        let json: serde_json::Value = serde_json::from_str(&message.msg).unwrap();
        assert_eq!(json["id"], n);
        assert_eq!(json["kind"], "cross_signal_mismatch");
        assert_eq!(json["patient"], "p-17");
        assert_eq!(json["facts"]["note"], "a=b \\ \"q\" ] | x");
        assert_eq!(json["host"], "hub.example.org");
    }
}

#[tokio::test]
async fn tls_verifies_the_server_and_presents_a_client_certificate() {
    let pki = Pki::new("Test SIEM CA");
    let server = pki.leaf("server", &["localhost", "127.0.0.1"]);
    let client = pki.leaf("client", &["vigil-hub"]);
    // The receiver requires a client certificate from the same CA (mutual TLS).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, mut messages) = unbounded_channel();
    let _receiver =
        stream_receiver(listener, Some(pki.server(&server, Some(&pki), &[])), sender).await;
    let siem = start(vec![SinkConfig {
        client_cert_file: Some(client.cert_file.clone()),
        client_key_file: Some(client.key_file.clone()),
        ..tls_sink("tls", address, &pki)
    }]);
    for n in 1..=3 {
        siem.send(n, &alert(n));
    }
    for n in 1..=3 {
        let raw = next(&mut messages, 5).await;
        assert_no_clinical_value(&raw);
        assert_eq!(parse_syslog(&raw).param("id"), Some(n.to_string().as_str()));
    }
    assert_eq!(siem.shutdown(Duration::from_secs(2)).await[0].sent, 3);
}

#[tokio::test]
async fn tls_refuses_a_server_from_another_ca() {
    let trusted = Pki::new("Trusted CA");
    let other = Pki::new("Other CA");
    let impostor = other.leaf("server", &["localhost"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, mut messages) = unbounded_channel();
    let _receiver =
        stream_receiver(listener, Some(other.server(&impostor, None, &[])), sender).await;
    let siem = start(vec![SinkConfig {
        max_attempts: 2,
        ..quick(tls_sink("tls", address, &trusted))
    }]);
    siem.send(1, &alert(1));
    until(&siem, "tls", |s| s.dropped_failed == 1).await;
    nothing(&mut messages, 100).await;
    let stats = stats(&siem, "tls");
    assert_eq!((stats.sent, stats.retried), (0, 1));
}

#[tokio::test]
async fn an_address_that_does_not_resolve_is_retried_then_given_up() {
    let siem = start(vec![SinkConfig {
        max_attempts: 2,
        timeout_seconds: 2,
        ..quick(SinkConfig::syslog(
            "nowhere",
            SinkKind::Udp,
            "nonexistent.invalid:514",
        ))
    }]);
    siem.send(1, &alert(1));
    until(&siem, "nowhere", |s| s.dropped_failed == 1).await;
    assert_eq!(stats(&siem, "nowhere").retried, 1);
}

#[tokio::test]
async fn webhooks_are_signed_as_standard_webhooks_over_https() {
    let pki = Pki::new("Webhook CA");
    let server = pki.leaf("hook", &["localhost"]);
    let (address, mut deliveries) =
        webhook_receiver(pki.server(&server, None, &[b"http/1.1"]), Vec::new()).await;
    let siem = start(vec![SinkConfig {
        ca_file: Some(pki.ca_file.clone()),
        ..SinkConfig::webhook(
            "hook",
            &format!("https://localhost:{}/alerts", address.port()),
            SECRET.parse().unwrap(),
        )
    }]);
    for n in 1..=3 {
        siem.send(n, &alert(n));
    }
    let mut ids = Vec::new();
    for n in 1..=3 {
        let delivery = next(&mut deliveries, 10).await;
        assert!(delivery.signature_valid, "{delivery:?}");
        assert!(delivery.signature.starts_with("v1,"));
        assert!(delivery.id.starts_with("msg_"));
        assert_no_clinical_value(&delivery.raw_body);
        assert_eq!(delivery.body["type"], "vigil.alert");
        assert_eq!(delivery.body["data"]["id"], n);
        assert_eq!(delivery.body["data"]["device"], "oxi-3");
        assert_eq!(delivery.body["timestamp"], delivery.body["data"]["time"]);
        ids.push(delivery.id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "each alert has its own webhook-id");
    assert_eq!(siem.shutdown(Duration::from_secs(2)).await[0].sent, 3);
}

#[tokio::test]
async fn a_webhook_retry_keeps_its_id_and_is_signed_afresh() {
    let pki = Pki::new("Webhook CA");
    let server = pki.leaf("hook", &["localhost"]);
    let (address, mut deliveries) =
        webhook_receiver(pki.server(&server, None, &[b"http/1.1"]), vec![503, 429]).await;
    let siem = start(vec![quick(SinkConfig {
        ca_file: Some(pki.ca_file.clone()),
        ..SinkConfig::webhook(
            "hook",
            &format!("https://localhost:{}/alerts", address.port()),
            SECRET.parse().unwrap(),
        )
    })]);
    siem.send(7, &alert(7));
    let attempts = [
        next(&mut deliveries, 10).await,
        next(&mut deliveries, 10).await,
        next(&mut deliveries, 10).await,
    ];
    assert!(
        attempts
            .iter()
            .all(|a| a.signature_valid && a.id == attempts[0].id)
    );
    assert!(attempts.iter().all(|a| a.raw_body == attempts[0].raw_body));
    until(&siem, "hook", |s| s.sent == 1).await;
    let stats = stats(&siem, "hook");
    assert_eq!((stats.retried, stats.dropped()), (2, 0));
}

#[tokio::test]
async fn a_webhook_refusal_is_not_retried() {
    let pki = Pki::new("Webhook CA");
    let server = pki.leaf("hook", &["localhost"]);
    let (address, mut deliveries) =
        webhook_receiver(pki.server(&server, None, &[b"http/1.1"]), vec![401]).await;
    let siem = start(vec![quick(SinkConfig {
        ca_file: Some(pki.ca_file.clone()),
        ..SinkConfig::webhook(
            "hook",
            &format!("https://localhost:{}/alerts", address.port()),
            SECRET.parse().unwrap(),
        )
    })]);
    siem.send(1, &alert(1));
    siem.send(2, &alert(2));
    assert_eq!(next(&mut deliveries, 10).await.body["data"]["id"], 1);
    // The next alert goes on; the refused one is not tried again.
    assert_eq!(next(&mut deliveries, 10).await.body["data"]["id"], 2);
    until(&siem, "hook", |s| s.sent == 1).await;
    let stats = stats(&siem, "hook");
    assert_eq!((stats.dropped_failed, stats.retried), (1, 0));
}

#[tokio::test]
async fn a_webhook_to_a_server_outside_its_ca_is_never_sent() {
    let trusted = Pki::new("Trusted CA");
    let other = Pki::new("Other CA");
    let server = other.leaf("hook", &["localhost"]);
    let (address, mut deliveries) =
        webhook_receiver(other.server(&server, None, &[b"http/1.1"]), Vec::new()).await;
    let siem = start(vec![SinkConfig {
        ca_file: Some(trusted.ca_file.clone()),
        max_attempts: 2,
        ..quick(SinkConfig::webhook(
            "hook",
            &format!("https://localhost:{}/alerts", address.port()),
            SECRET.parse().unwrap(),
        ))
    }]);
    siem.send(1, &alert(1));
    until(&siem, "hook", |s| s.dropped_failed == 1).await;
    nothing(&mut deliveries, 100).await;
}

#[tokio::test]
async fn a_dead_sink_does_not_delay_a_live_one() {
    // Two sinks that hang: a TLS receiver and a webhook that accept TCP and never answer.
    let pki = Pki::new("CA");
    let (hung_tls, _a) = silent_receiver().await;
    let (hung_hook, _b) = silent_receiver().await;
    let (address, mut datagrams) = udp_receiver().await;
    let siem = start(vec![
        SinkConfig {
            timeout_seconds: 30,
            ..tls_sink("dead-tls", hung_tls, &pki)
        },
        SinkConfig {
            ca_file: Some(pki.ca_file.clone()),
            timeout_seconds: 30,
            ..SinkConfig::webhook(
                "dead-hook",
                &format!("https://localhost:{}/alerts", hung_hook.port()),
                SECRET.parse().unwrap(),
            )
        },
        SinkConfig::syslog("live", SinkKind::Udp, &address.to_string()),
    ]);
    let started = Instant::now();
    for n in 1..=20 {
        siem.send(n, &alert(n));
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "send blocked"
    );
    for n in 1..=20 {
        let message = parse_syslog(&String::from_utf8(next(&mut datagrams, 5).await).unwrap());
        assert_eq!(message.param("id"), Some(n.to_string().as_str()));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Shutdown does not wait for the dead sinks beyond its deadline, and says what it left.
    let stopping = Instant::now();
    let stats = siem.shutdown(Duration::from_millis(300)).await;
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "{:?}",
        stopping.elapsed()
    );
    let by_name = |name: &str| stats.iter().find(|s| s.name == name).unwrap().clone();
    assert_eq!(by_name("live").sent, 20);
    for dead in ["dead-tls", "dead-hook"] {
        let s = by_name(dead);
        assert_eq!((s.sent, s.dropped_shutdown), (0, 20), "{s:?}");
    }
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts() {
    // A port with nothing listening yet.
    let address = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let siem = start(vec![SinkConfig {
        queue: 3,
        backoff_initial_ms: 300,
        backoff_max_ms: 300,
        ..SinkConfig::syslog("tcp", SinkKind::Tcp, &address.to_string())
    }]);
    siem.send(1, &alert(1));
    until(&siem, "tcp", |s| s.retried >= 1 && s.queued == 0).await;
    for n in 2..=10 {
        siem.send(n, &alert(n));
    }
    let now = stats(&siem, "tcp");
    assert_eq!((now.queued, now.dropped_overflow), (3, 6));

    // The receiver comes up: the alert being retried, then the three newest, in order.
    let listener = TcpListener::bind(address).await.unwrap();
    let (sender, mut messages) = unbounded_channel();
    let _receiver = stream_receiver(listener, None, sender).await;
    for n in [1, 8, 9, 10] {
        let message = parse_syslog(&next(&mut messages, 10).await);
        assert_eq!(message.param("id"), Some(n.to_string().as_str()));
    }
    let stats = siem.shutdown(Duration::from_secs(2)).await;
    assert_eq!((stats[0].sent, stats[0].dropped_overflow), (4, 6));
}

/// A receiver that takes messages until it is stopped, then comes back on the same port.
async fn reconnects_after_restart(tls: bool) {
    let pki = Pki::new("CA");
    let server = pki.leaf("server", &["localhost"]);
    let server_config = tls.then(|| pki.server(&server, None, &[]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, mut messages) = unbounded_channel();
    let receiver = stream_receiver(listener, server_config.clone(), sender.clone()).await;
    let sink = if tls {
        tls_sink("stream", address, &pki)
    } else {
        SinkConfig::syslog("stream", SinkKind::Tcp, &address.to_string())
    };
    let siem = start(vec![quick(sink)]);
    siem.send(1, &alert(1));
    assert_eq!(
        parse_syslog(&next(&mut messages, 5).await).param("id"),
        Some("1")
    );

    // The receiver goes away (its listener and connection close) and misses nothing.
    receiver.abort();
    let _ = receiver.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    siem.send(2, &alert(2));
    until(&siem, "stream", |s| s.retried >= 1).await;
    let listener = TcpListener::bind(address).await.unwrap();
    let _receiver = stream_receiver(listener, server_config, sender).await;
    siem.send(3, &alert(3));
    for n in ["2", "3"] {
        assert_eq!(
            parse_syslog(&next(&mut messages, 10).await).param("id"),
            Some(n)
        );
    }
    let stats = siem.shutdown(Duration::from_secs(2)).await;
    assert_eq!((stats[0].sent, stats[0].dropped()), (3, 0));
}

#[tokio::test]
async fn tcp_reconnects_after_the_receiver_restarts() {
    reconnects_after_restart(false).await;
}

#[tokio::test]
async fn tls_reconnects_after_the_receiver_restarts() {
    reconnects_after_restart(true).await;
}

#[tokio::test]
async fn alerts_sent_after_shutdown_are_counted_not_lost_silently() {
    let (address, _datagrams) = udp_receiver().await;
    let siem = start(vec![SinkConfig::syslog(
        "udp",
        SinkKind::Udp,
        &address.to_string(),
    )]);
    let other = siem.clone();
    siem.shutdown(Duration::from_secs(1)).await;
    other.send(1, &alert(1));
    assert_eq!(stats(&other, "udp").dropped_shutdown, 1);
}

#[tokio::test]
async fn clinical_evidence_reaches_no_receiver_in_any_format() {
    let pki = Pki::new("CA");
    let server = pki.leaf("server", &["localhost"]);
    let (udp, mut datagrams) = udp_receiver().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = listener.local_addr().unwrap();
    let (sender, mut frames) = unbounded_channel();
    let _tcp = stream_receiver(listener, None, sender).await;
    let (hook, mut deliveries) =
        webhook_receiver(pki.server(&server, None, &[b"http/1.1"]), Vec::new()).await;
    let siem = start(vec![
        SinkConfig {
            format: Some(Format::Cef),
            ..SinkConfig::syslog("cef", SinkKind::Udp, &udp.to_string())
        },
        SinkConfig {
            format: Some(Format::Json),
            ..SinkConfig::syslog("json", SinkKind::Tcp, &tcp.to_string())
        },
        SinkConfig {
            ca_file: Some(pki.ca_file.clone()),
            ..SinkConfig::webhook(
                "hook",
                &format!("https://localhost:{}/alerts", hook.port()),
                SECRET.parse().unwrap(),
            )
        },
    ]);
    siem.send(1, &alert(1));
    let cef = String::from_utf8(next(&mut datagrams, 5).await).unwrap();
    let json = next(&mut frames, 5).await;
    let webhook = next(&mut deliveries, 10).await.raw_body;
    for text in [&cef, &json, &webhook] {
        // The alert itself arrived (its fact is there), its clinical value did not.
        assert!(text.contains("10.1.2.3"), "{text}");
        assert_no_clinical_value(text);
    }
    siem.shutdown(Duration::from_secs(2)).await;
}

/// Not a check: numbers for docs/siem.md. Run with
/// `cargo test --release -p vigil-siem --test delivery -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure_send_formatting_and_delivery() {
    const N: u64 = 100_000;
    let record = vigil_siem::Record::new(1, &alert(1));
    let origin = vigil_siem::Origin::new(Some("hub.example.org"), 32473).unwrap();
    for format in [Format::Cef, Format::Json] {
        let started = Instant::now();
        let mut bytes = 0;
        for _ in 0..N {
            bytes += vigil_siem::syslog::message(
                &record,
                &origin,
                vigil_siem::Facility::Local4,
                format,
                8192,
            )
            .len();
        }
        let elapsed = started.elapsed();
        println!(
            "format {format:?}: {:.2} µs per message, {} bytes each",
            elapsed.as_secs_f64() * 1e6 / N as f64,
            bytes as u64 / N
        );
    }

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, mut messages) = unbounded_channel();
    let _receiver = stream_receiver(listener, None, sender).await;
    let siem = start(vec![SinkConfig {
        queue: N as usize,
        ..SinkConfig::syslog("tcp", SinkKind::Tcp, &address.to_string())
    }]);
    let alert = alert(1);
    let started = Instant::now();
    for n in 0..N {
        siem.send(n, &alert);
    }
    let sending = started.elapsed();
    for _ in 0..N {
        next(&mut messages, 30).await;
    }
    let delivered = started.elapsed();
    let stats = siem.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats[0].sent, N);
    println!(
        "send(): {:.2} µs per alert; TCP delivery of {N} alerts: {:.2} s ({:.0} alerts/s)",
        sending.as_secs_f64() * 1e6 / N as f64,
        delivered.as_secs_f64(),
        N as f64 / delivered.as_secs_f64()
    );
}

/// Records what `Progress` is told.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<(String, u64)>>);

impl vigil_siem::Progress for Recorded {
    fn finished(&self, sink: &str, id: u64) {
        self.0.lock().unwrap().push((sink.to_owned(), id));
    }
}

#[tokio::test]
async fn progress_follows_each_sink_in_order_and_send_to_reaches_one_sink() {
    let (address, mut datagrams) = udp_receiver().await;
    let recorded = std::sync::Arc::new(Recorded::default());
    let siem = Dispatcher::start_with_progress(
        config(vec![
            SinkConfig::syslog("live", SinkKind::Udp, &address.to_string()),
            SinkConfig {
                max_attempts: 1,
                timeout_seconds: 2,
                ..quick(SinkConfig::syslog(
                    "nowhere",
                    SinkKind::Udp,
                    "nonexistent.invalid:514",
                ))
            },
        ])
        .sinks()
        .unwrap(),
        recorded.clone(),
    )
    .unwrap();
    // What a restart owes "live" alone, then alerts for every sink.
    assert!(siem.send_to("live", 1, &alert(1)));
    assert!(siem.send_to("live", 2, &alert(2)));
    assert!(!siem.send_to("no-such-sink", 3, &alert(3)));
    siem.send(3, &alert(3));
    for n in 1..=3 {
        let message = parse_syslog(&String::from_utf8(next(&mut datagrams, 5).await).unwrap());
        assert_eq!(message.param("id"), Some(n.to_string().as_str()));
    }
    // Given up is finished too: the unreachable sink will never try alert 3 again.
    until(&siem, "nowhere", |s| s.dropped_failed == 1).await;
    let stats = siem.shutdown(Duration::from_secs(2)).await;
    assert_eq!(stats[0].sent, 3);
    let recorded = recorded.0.lock().unwrap().clone();
    let of = |sink: &str| -> Vec<u64> {
        recorded
            .iter()
            .filter(|(s, _)| s == sink)
            .map(|(_, id)| *id)
            .collect()
    };
    assert_eq!(of("live"), vec![1, 2, 3]);
    assert_eq!(of("nowhere"), vec![3]);
}

#[tokio::test]
async fn alerts_abandoned_at_shutdown_are_not_reported_finished() {
    let (hung, _listener) = silent_receiver().await;
    let recorded = std::sync::Arc::new(Recorded::default());
    let pki = Pki::new("CA");
    let siem = Dispatcher::start_with_progress(
        config(vec![SinkConfig {
            timeout_seconds: 30,
            ..tls_sink("hung", hung, &pki)
        }])
        .sinks()
        .unwrap(),
        recorded.clone(),
    )
    .unwrap();
    for n in 1..=3 {
        siem.send(n, &alert(n));
    }
    let stats = siem.shutdown(Duration::from_millis(300)).await;
    assert_eq!(stats[0].dropped_shutdown, 3);
    assert!(recorded.0.lock().unwrap().is_empty());
}
