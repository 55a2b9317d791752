//! One simulated device of the bench: connect over mutual TLS with MQTT 3.1.1, then publish
//! QoS 1 SenML packs, either as fast as the acknowledgements allow (closed loop) or at a fixed
//! rate (open loop), and time each publication to its PUBACK.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;
use vigil_model::{DeviceId, Timestamp};

/// One device's identity for the bench.
pub(crate) struct BenchDevice {
    pub(crate) id: DeviceId,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

/// What each device sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// Readings per message.
    pub(crate) readings: usize,
    /// Publications unacknowledged at once, at most.
    pub(crate) in_flight: usize,
    /// Messages per second (open loop), or `None`: as fast as acknowledged (closed loop).
    pub(crate) rate: Option<f64>,
}

/// What one device measured.
#[derive(Debug, Default)]
pub(crate) struct Measured {
    /// For each acknowledged message, when it was due and the time from then to its PUBACK.
    pub(crate) latencies: Vec<(Instant, Duration)>,
}

/// A connected device, ready to publish.
pub(crate) struct Connected {
    id: DeviceId,
    tls: TlsStream<tokio::net::TcpStream>,
    input: BytesMut,
}

/// Connects `device` and completes the MQTT CONNECT.
pub(crate) async fn connect(
    address: std::net::SocketAddr,
    host: String,
    roots: Arc<rustls::RootCertStore>,
    device: BenchDevice,
) -> anyhow::Result<Connected> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(device.chain, device.key)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    let mut tls = connector.connect(ServerName::try_from(host)?, tcp).await?;
    let mut out = BytesMut::new();
    let mut input = BytesMut::with_capacity(256);
    let mut connect = v4::Connect::new(device.id.as_str());
    connect.keep_alive = 600;
    v4::Packet::Connect(connect).write(&mut out, 1 << 20)?;
    tls.write_all(&out).await?;
    match next_packet(&mut tls, &mut input).await? {
        v4::Packet::ConnAck(ack) if ack.code == v4::ConnectReturnCode::Success => {}
        other => bail!("connect refused: {other:?}"),
    }
    Ok(Connected {
        id: device.id,
        tls,
        input,
    })
}

/// Publishes with `load` until `stop` turns true, then waits (briefly) for the
/// acknowledgements still due. `phase` (0 to 1) spreads open-loop devices over the period.
pub(crate) async fn publish(
    mut device: Connected,
    load: Load,
    phase: f64,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Measured> {
    let topic = format!("vigil/v1/d/{}/obs", device.id);
    let mut measured = Measured::default();
    let mut out = BytesMut::new();
    let mut seq: u64 = 0;
    // Due publications not yet sent (the window was full), and those awaiting PUBACK, in order.
    let mut due: VecDeque<Instant> = VecDeque::new();
    let mut outstanding: VecDeque<(u16, Instant)> = VecDeque::new();
    let mut ticker = load.rate.map(|rate| {
        let period = Duration::from_secs_f64(1.0 / rate);
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + period.mul_f64(phase), period);
        // Late ticks are sent at once and timed from when they were due (no coordinated
        // omission: a slow hub shows as latency, not as a lower offered rate).
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        ticker
    });
    let mut stopping = false;
    let mut deadline: Option<Instant> = None;
    loop {
        if ticker.is_none() && !stopping {
            // Closed loop: the next publication is due as soon as the window has room.
            while due.len() + outstanding.len() < load.in_flight {
                due.push_back(Instant::now());
            }
        }
        while outstanding.len() < load.in_flight && !stopping {
            let Some(scheduled) = due.pop_front() else {
                break;
            };
            seq += 1;
            let mut publish = v4::Publish::new(
                topic.as_str(),
                rumqttc::mqttbytes::QoS::AtLeastOnce,
                pack(&device.id, seq, load.readings),
            );
            publish.pkid = u16::try_from(seq % 65_535 + 1).unwrap_or(1);
            out.clear();
            v4::Packet::Publish(publish.clone()).write(&mut out, 1 << 20)?;
            device.tls.write_all(&out).await?;
            outstanding.push_back((publish.pkid, scheduled));
        }
        if stopping && outstanding.is_empty() {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            break; // acknowledgements that never came are not counted
        }
        tokio::select! {
            tick = next_tick(&mut ticker), if !stopping => due.push_back(tick),
            packet = next_packet(&mut device.tls, &mut device.input), if !outstanding.is_empty() => {
                match packet? {
                    v4::Packet::PubAck(ack) => match outstanding.pop_front() {
                        Some((pkid, scheduled)) if pkid == ack.pkid => {
                            measured.latencies.push((scheduled, scheduled.elapsed()));
                        }
                        _ => bail!("acknowledgement out of order"),
                    },
                    other => bail!("unexpected answer: {other:?}"),
                }
            }
            changed = stop.changed(), if !stopping => {
                stopping = changed.is_err() || *stop.borrow();
                if stopping {
                    deadline = Some(Instant::now() + Duration::from_secs(10));
                }
            }
            () = tokio::time::sleep(Duration::from_millis(500)), if stopping => {}
        }
    }
    out.clear();
    v4::Packet::Disconnect.write(&mut out, 16)?;
    let _ = device.tls.write_all(&out).await;
    Ok(measured)
}

/// The next scheduled publication (never, in closed loop). Cancel-safe, as `Interval::tick` is.
async fn next_tick(ticker: &mut Option<tokio::time::Interval>) -> Instant {
    match ticker {
        Some(ticker) => ticker.tick().await.into_std(),
        None => std::future::pending().await,
    }
}

async fn next_packet<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    input: &mut BytesMut,
) -> anyhow::Result<v4::Packet> {
    loop {
        match v4::Packet::read(input, 1 << 20) {
            Ok(packet) => return Ok(packet),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(error) => bail!("bad packet from the hub: {error:?}"),
        }
        if stream.read_buf(input).await? == 0 {
            bail!("the hub closed the connection");
        }
    }
}

/// A bedside monitor's pack: heart rate, SpO2, pulse rate and temperature, repeated.
fn pack(device: &DeviceId, seq: u64, readings: usize) -> Vec<u8> {
    const VITALS: [(&str, &str, f64); 4] = [
        ("147842", "/min", 72.0),
        ("150456", "%", 97.0),
        ("149530", "/min", 71.0),
        ("150364", "Cel", 36.9),
    ];
    let now = Timestamp::now().unix_millis();
    let mut records = Vec::with_capacity(readings);
    for i in 0..readings {
        let (code, unit, value) = VITALS[i % VITALS.len()];
        #[allow(clippy::cast_precision_loss)]
        let offset = (i / VITALS.len()) as f64 * 0.001;
        if i == 0 {
            records.push(format!(
                r#"{{"bn": "urn:vigil:device:{device}:", "bt": {}.{:03}, "seq_": {seq}, "n": "{code}", "u": "{unit}", "v": {value}}}"#,
                now / 1000,
                now % 1000
            ));
        } else {
            records.push(format!(
                r#"{{"n": "{code}", "u": "{unit}", "v": {value}, "t": {offset}}}"#
            ));
        }
    }
    format!("[{}]", records.join(",")).into_bytes()
}
