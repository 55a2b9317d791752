//! `vigil bench ingest`: observations per second and publish-to-PUBACK latency through the whole
//! path (MQTT over mutual TLS, SenML decoding and validation, sealing, audit leaf, durable
//! commit), with an embedded hub on loopback in a fresh data directory.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_hub::Hub;
use vigil_model::phi::Phi;
use vigil_model::{Actor, DeviceClass, DeviceId, PatientId, Timestamp};
use vigil_store::Demographics;

use crate::cli::{BenchCommand, BenchIngestArgs, LogArgs};
use crate::logging;

pub(crate) fn run(log: &LogArgs, command: BenchCommand) -> anyhow::Result<ExitCode> {
    let BenchCommand::Ingest(args) = command;
    logging::init(
        log,
        vigil_config::LogLevel::Warn,
        vigil_config::LogFormat::Human,
    )?;
    if args.devices == 0 || args.readings == 0 || args.readings > 500 {
        bail!("--devices must be at least 1 and --readings between 1 and 500");
    }
    if args.in_flight == 0 || args.in_flight > 32 {
        bail!("--in-flight must be between 1 and 32 (the hub's Receive Maximum)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(ingest(args))?;
    Ok(ExitCode::SUCCESS)
}

/// One device's identity for the bench.
struct BenchDevice {
    id: DeviceId,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

async fn ingest(args: BenchIngestArgs) -> anyhow::Result<()> {
    match &args.server {
        Some(server) => external(&args, server).await,
        None => embedded(&args).await,
    }
}

/// Another MQTT server: the same identity on every connection.
async fn external(args: &BenchIngestArgs, server: &str) -> anyhow::Result<()> {
    let read = |path: &Option<std::path::PathBuf>, what: &str| -> anyhow::Result<Vec<u8>> {
        let path = path
            .as_ref()
            .with_context(|| format!("--{what} is required with --server"))?;
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let (ca, cert, key) = (
        read(&args.ca, "ca")?,
        read(&args.cert, "cert")?,
        read(&args.key, "key")?,
    );
    let (host, _) = server.rsplit_once(':').context("--server is HOST:PORT")?;
    let address = tokio::net::lookup_host(server)
        .await?
        .next()
        .with_context(|| format!("{server} does not resolve"))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&ca) {
        roots.add(certificate?)?;
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&cert).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(&key)?;
    let devices = (0..args.devices)
        .map(|n| {
            Ok(BenchDevice {
                id: DeviceId::new(format!("bench-{n:05}"))?,
                chain: chain.clone(),
                key: key.clone_key(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    measure(args, address, host.to_owned(), roots, devices).await
}

/// An embedded hub in a fresh data directory, with provisioned devices.
async fn embedded(args: &BenchIngestArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a data directory")?;
    let config = vigil_config::load_from_str(
        vigil_config::DEFAULT_CONFIG,
        vigil_config::Source::Default,
        [
            (
                "VIGIL_HUB_HTTPS_LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            ("VIGIL_HUB_MQTT_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            // The bench measures the path, not the rate limit.
            (
                "VIGIL_INGEST_MESSAGES_PER_SECOND".to_owned(),
                "10000".to_owned(),
            ),
            ("VIGIL_INGEST_BURST".to_owned(), "10000".to_owned()),
        ],
    )?
    .config;
    Hub::initialise(dir.path(), &config)?;
    let hub = Hub::open(dir.path(), config)?;
    println!(
        "provisioning {} devices, each with its own key, certificate and patient…",
        args.devices
    );
    let devices = provision(&hub, args.devices)?;
    let ca = hub.registry().ca().cert_der().clone();
    let running = hub.start().await?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca)?;
    let result = measure(args, running.mqtt, "localhost".to_owned(), roots, devices).await;
    running.stop().await;
    result
}

/// Runs the devices against `address` for the configured time and prints the figures.
async fn measure(
    args: &BenchIngestArgs,
    address: std::net::SocketAddr,
    host: String,
    roots: rustls::RootCertStore,
    devices: Vec<BenchDevice>,
) -> anyhow::Result<()> {
    let roots = Arc::new(roots);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let mut tasks = Vec::with_capacity(devices.len());
    for device in devices {
        let roots = Arc::clone(&roots);
        let stop = Arc::clone(&stop);
        let shape = (args.readings, args.in_flight);
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            run_device(address, host, roots, device, shape, stop).await
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<Duration> = Vec::new();
    let mut failures = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(mut device_latencies)) => latencies.append(&mut device_latencies),
            Ok(Err(error)) => {
                failures += 1;
                tracing::warn!(%error, "a bench device failed");
            }
            Err(_) => failures += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;

    latencies.sort_unstable();
    let messages = latencies.len();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies
            .get(index)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    #[allow(clippy::cast_precision_loss)]
    let (per_second, observations) = (
        messages as f64 / elapsed,
        (messages * args.readings) as f64 / elapsed,
    );
    println!(
        "devices {}  readings/message {}  in flight/device {}  measured {:.1} s",
        args.devices, args.readings, args.in_flight, elapsed
    );
    println!("messages acknowledged  {messages}  ({per_second:.0}/s)");
    println!("observations acked     {:.0}/s", observations);
    println!(
        "publish → PUBACK       p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(0.5),
        percentile(0.99),
        percentile(1.0)
    );
    println!(
        "CPU                    {:.1} s of {:.1} s wall ({:.0} % of one core)",
        cpu,
        elapsed,
        100.0 * cpu / elapsed
    );
    println!("peak memory (RSS)      {} MiB", peak_rss_kib() / 1024);
    if failures > 0 {
        println!("devices that failed    {failures}");
    }
    Ok(())
}

fn provision(hub: &Hub, count: usize) -> anyhow::Result<Vec<BenchDevice>> {
    let store = hub.store();
    let mut devices = Vec::with_capacity(count);
    for n in 0..count {
        let id = DeviceId::new(format!("bench-{n:05}"))?;
        let patient = PatientId::new(format!("bench-p-{n:05}"))?;
        hub.registry()
            .register(Actor::System, id.clone(), DeviceClass::BedsideMonitor)?;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let csr = rcgen::CertificateParams::default().serialize_request(&key)?;
        let chain = hub
            .registry()
            .issue_offline(Actor::System, &id, csr.der())?;
        store.add_patient(
            &patient,
            &Demographics {
                name: Phi::new(format!("Bench {n}")),
                mrn: Phi::new(format!("BENCH-{n}")),
                birth_date: Phi::new(time::macros::date!(1970 - 01 - 01)),
            },
            Timestamp::EPOCH,
        )?;
        store.assign_device(&id, &patient, Timestamp::EPOCH)?;
        devices.push(BenchDevice {
            id,
            chain: CertificateDer::pem_slice_iter(chain.as_bytes()).collect::<Result<_, _>>()?,
            key: PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())?,
        });
    }
    Ok(devices)
}

/// A device: connect, then publish QoS 1 packs one at a time until told to stop; returns the
/// publish-to-PUBACK latency of each.
async fn run_device(
    address: std::net::SocketAddr,
    host: String,
    roots: Arc<rustls::RootCertStore>,
    device: BenchDevice,
    (readings, in_flight): (usize, usize),
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Duration>> {
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
    let mut input = BytesMut::with_capacity(4096);
    let mut connect = v4::Connect::new(device.id.as_str());
    connect.keep_alive = 60;
    v4::Packet::Connect(connect).write(&mut out, 1 << 20)?;
    tls.write_all(&out).await?;
    match next_packet(&mut tls, &mut input).await? {
        v4::Packet::ConnAck(ack) if ack.code == v4::ConnectReturnCode::Success => {}
        other => bail!("connect refused: {other:?}"),
    }
    let topic = format!("vigil/v1/d/{}/obs", device.id);
    let mut latencies = Vec::new();
    let mut seq: u64 = 0;
    // Up to `in_flight` publications outstanding; acknowledgements come back in order.
    let mut outstanding: std::collections::VecDeque<(u16, Instant)> =
        std::collections::VecDeque::new();
    while !stop.load(Ordering::Relaxed) || !outstanding.is_empty() {
        while outstanding.len() < in_flight && !stop.load(Ordering::Relaxed) {
            seq += 1;
            let payload = pack(&device.id, seq, readings);
            let mut publish = v4::Publish::new(
                topic.as_str(),
                rumqttc::mqttbytes::QoS::AtLeastOnce,
                payload,
            );
            publish.pkid = u16::try_from(seq % 65_535 + 1).unwrap_or(1);
            out.clear();
            v4::Packet::Publish(publish.clone()).write(&mut out, 1 << 20)?;
            tls.write_all(&out).await?;
            outstanding.push_back((publish.pkid, Instant::now()));
        }
        if outstanding.is_empty() {
            break;
        }
        match next_packet(&mut tls, &mut input).await? {
            v4::Packet::PubAck(ack) => match outstanding.pop_front() {
                Some((pkid, sent)) if pkid == ack.pkid => latencies.push(sent.elapsed()),
                _ => bail!("acknowledgement out of order"),
            },
            other => bail!("unexpected answer: {other:?}"),
        }
    }
    out.clear();
    v4::Packet::Disconnect.write(&mut out, 16)?;
    let _ = tls.write_all(&out).await;
    Ok(latencies)
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

/// CPU time of this process (user + system), in seconds, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the ")".
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process, KiB, from /proc/self/status (VmHWM).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}
