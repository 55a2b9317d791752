//! `vigil bench ingest` and `vigil bench fhir` ([`fhir`]).
//!
//! `vigil bench ingest`: observations per second and publish-to-PUBACK latency through the whole
//! path (MQTT over mutual TLS, SenML decoding and validation, sealing, audit leaf, durable
//! commit), against a hub in its own process on loopback in a fresh data directory, or against
//! any MQTT server for comparison.

mod device;
mod fhir;
mod hub_process;
mod procfs;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{Semaphore, watch};
use vigil_model::DeviceId;

use crate::cli::{BenchCommand, BenchIngestArgs, LogArgs};
use crate::logging;
use device::{BenchDevice, Load};
use hub_process::HubProcess;

/// TLS handshakes under way at once while the devices connect.
const CONNECTING_AT_ONCE: usize = 64;

pub(crate) fn run(log: &LogArgs, command: BenchCommand) -> anyhow::Result<ExitCode> {
    logging::init(
        log,
        vigil_config::LogLevel::Warn,
        vigil_config::LogFormat::Human,
    )?;
    let args = match command {
        BenchCommand::Ingest(args) => args,
        BenchCommand::Fhir(args) => {
            fhir::run(&args)?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    if args.devices == 0 || args.readings == 0 || args.readings > 500 {
        bail!("--devices must be at least 1 and --readings between 1 and 500");
    }
    if args.in_flight == 0 || args.in_flight > 32 {
        bail!("--in-flight must be between 1 and 32 (the hub's Receive Maximum)");
    }
    if args.rate.is_some_and(|r| !(0.001..=1000.0).contains(&r)) {
        bail!("--rate must be between 0.001 and 1000 messages per second per device");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(ingest(args))?;
    Ok(ExitCode::SUCCESS)
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
    measure(args, address, host.to_owned(), roots, devices, None).await
}

/// A hub of our own in a fresh data directory, with provisioned devices.
async fn embedded(args: &BenchIngestArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a data directory")?;
    println!(
        "provisioning {} devices, each with its own key, certificate and patient…",
        args.devices
    );
    let path = dir.path().to_owned();
    let count = args.devices;
    let (devices, ca) = tokio::task::spawn_blocking(move || hub_process::provision(&path, count))
        .await
        .context("provisioning failed")??;
    let hub = HubProcess::start(dir.path())?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca)?;
    let result = measure(
        args,
        hub.mqtt,
        "localhost".to_owned(),
        roots,
        devices,
        Some(hub.pid()),
    )
    .await;
    hub.stop()?;
    result
}

/// Connects the devices to `address`, runs them for the configured time, and prints the
/// figures (with the hub process's own CPU and memory when `hub` names it).
async fn measure(
    args: &BenchIngestArgs,
    address: std::net::SocketAddr,
    host: String,
    roots: rustls::RootCertStore,
    devices: Vec<BenchDevice>,
    hub: Option<u32>,
) -> anyhow::Result<()> {
    let roots = Arc::new(roots);
    let total = devices.len();
    println!("connecting {total} devices…");
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut pending = Vec::with_capacity(total);
    for device in devices {
        let (roots, host, connecting) = (Arc::clone(&roots), host.clone(), Arc::clone(&connecting));
        pending.push(tokio::spawn(async move {
            let _slot = connecting.acquire_owned().await?;
            device::connect(address, host, roots, device).await
        }));
    }
    let mut connected = Vec::with_capacity(total);
    let mut failures = 0;
    for task in pending {
        match task.await {
            Ok(Ok(device)) => connected.push(device),
            Ok(Err(error)) => {
                failures += 1;
                tracing::warn!(%error, "a bench device could not connect");
            }
            Err(_) => failures += 1,
        }
    }
    let open = connected.len();
    if let Some(pid) = hub {
        println!(
            "{open} connections open; hub resident memory {} MiB",
            procfs::rss_kib(Some(pid)) / 1024
        );
    }
    if open == 0 {
        bail!("no device could connect");
    }

    let load = Load {
        readings: args.readings,
        in_flight: args.in_flight,
        rate: args.rate,
    };
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let cpu_before = (
        procfs::cpu_seconds(None),
        hub.map(|pid| procfs::cpu_seconds(Some(pid))),
    );
    let mut tasks = Vec::with_capacity(open);
    for (n, device) in connected.into_iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let phase = n as f64 / open as f64;
        tasks.push(tokio::spawn(device::publish(
            device,
            load,
            phase,
            stopped.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let mut latencies: Vec<(Instant, Duration)> = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(mut measured)) => latencies.append(&mut measured.latencies),
            Ok(Err(error)) => {
                failures += 1;
                tracing::warn!(%error, "a bench device failed");
            }
            Err(_) => failures += 1,
        }
    }
    let cpu = procfs::cpu_seconds(None) - cpu_before.0;
    let hub_cpu = hub
        .zip(cpu_before.1)
        .map(|(pid, before)| procfs::cpu_seconds(Some(pid)) - before);
    let timeline = args.timeline.then(|| Timeline::of(started, &latencies));
    let figures = Figures {
        latencies: latencies.into_iter().map(|(_, latency)| latency).collect(),
        elapsed,
        readings: args.readings,
    };
    println!(
        "devices {open}  readings/message {}  in flight/device {}  {}  measured {elapsed:.1} s",
        args.readings,
        args.in_flight,
        match args.rate {
            Some(rate) => format!("offered {rate} messages/s/device"),
            None => "closed loop".to_owned(),
        }
    );
    figures.print();
    if let Some(timeline) = timeline {
        timeline.print();
    }
    let share = |cpu: f64| 100.0 * cpu / elapsed;
    match (hub, hub_cpu) {
        (Some(pid), Some(hub_cpu)) => {
            println!(
                "hub CPU                {hub_cpu:.1} s ({:.0} % of one core)",
                share(hub_cpu)
            );
            println!(
                "hub peak memory (RSS)  {} MiB",
                procfs::peak_rss_kib(Some(pid)) / 1024
            );
            println!(
                "devices' CPU           {cpu:.1} s ({:.0} % of one core, the load generator)",
                share(cpu)
            );
        }
        _ => println!(
            "CPU (this process)     {cpu:.1} s ({:.0} % of one core)",
            share(cpu)
        ),
    }
    if failures > 0 {
        println!("devices that failed    {failures}");
    }
    Ok(())
}

/// Per second of a run (by when messages were due): how many were acknowledged, and their p99
/// and maximum time to PUBACK.
struct Timeline {
    seconds: Vec<Vec<Duration>>,
}

impl Timeline {
    fn of(started: Instant, latencies: &[(Instant, Duration)]) -> Timeline {
        let mut seconds: Vec<Vec<Duration>> = Vec::new();
        for &(due, latency) in latencies {
            #[allow(clippy::cast_possible_truncation)]
            let second = due.saturating_duration_since(started).as_secs() as usize;
            if seconds.len() <= second {
                seconds.resize_with(second + 1, Vec::new);
            }
            if let Some(bucket) = seconds.get_mut(second) {
                bucket.push(latency);
            }
        }
        Timeline { seconds }
    }

    fn print(mut self) {
        println!("second  acked  p99 ms  max ms");
        for (second, bucket) in self.seconds.iter_mut().enumerate() {
            bucket.sort_unstable();
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let p99 = bucket
                .get(((bucket.len().max(1) as f64 - 1.0) * 0.99).round() as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            let max = bucket.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            println!("{second:>6}  {:>5}  {p99:>6.1}  {max:>6.1}", bucket.len());
        }
    }
}

/// Latency and throughput of a run.
struct Figures {
    latencies: Vec<Duration>,
    elapsed: f64,
    readings: usize,
}

impl Figures {
    fn print(mut self) {
        self.latencies.sort_unstable();
        let latencies = &self.latencies;
        let percentile = |p: f64| -> f64 {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let index = ((latencies.len().max(1) as f64 - 1.0) * p).round() as usize;
            latencies
                .get(index)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let messages = latencies.len();
        #[allow(clippy::cast_precision_loss)]
        let (per_second, observations) = (
            messages as f64 / self.elapsed,
            (messages * self.readings) as f64 / self.elapsed,
        );
        println!("messages acknowledged  {messages}  ({per_second:.0}/s)");
        println!("observations acked     {observations:.0}/s");
        println!(
            "due → PUBACK           p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            percentile(0.5),
            percentile(0.99),
            percentile(1.0)
        );
    }
}
