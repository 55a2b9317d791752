//! The hub under test for the embedded bench: a fresh data directory with provisioned devices,
//! served by `vigil serve` in its own process, so that its CPU time and memory are measured
//! apart from the simulated devices (and each side has its own open-file limit).

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use vigil_hub::Hub;
use vigil_model::phi::Phi;
use vigil_model::{Actor, DeviceClass, DeviceId, PatientId, Timestamp};
use vigil_store::Demographics;

use super::device::BenchDevice;

/// Settings of the hub under test: free loopback ports, and rate limits out of the way (the
/// bench measures the path, not the limiter).
const SETTINGS: &[(&str, &str)] = &[
    ("VIGIL_HUB_HTTPS_LISTEN", "127.0.0.1:0"),
    ("VIGIL_HUB_MQTT_LISTEN", "127.0.0.1:0"),
    ("VIGIL_INGEST_MESSAGES_PER_SECOND", "10000"),
    ("VIGIL_INGEST_BURST", "10000"),
    ("VIGIL_HUB_MAX_CONNECTIONS", "16384"),
    ("VIGIL_LOG_LEVEL", "warn"),
];

/// The configuration of a hub under test, written into `dir` (the default file) and loaded
/// with [`SETTINGS`], as `vigil serve` will see it.
pub(crate) fn bench_config(dir: &Path) -> anyhow::Result<vigil_config::Config> {
    std::fs::write(
        dir.join(vigil_config::CONFIG_FILE),
        vigil_config::DEFAULT_CONFIG,
    )
    .context("cannot write the bench configuration")?;
    let env = SETTINGS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    Ok(vigil_config::load(dir, env)?.config)
}

/// Initialises `dir` and provisions `count` bedside monitors, each with its own key,
/// certificate and patient; their identities and the CA certificate.
pub(crate) fn provision(
    dir: &Path,
    count: usize,
) -> anyhow::Result<(Vec<BenchDevice>, CertificateDer<'static>)> {
    let config = bench_config(dir)?;
    Hub::initialise(dir, &config)?;
    let hub = Hub::open(dir, config)?;
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
        if (n + 1) % 1000 == 0 {
            println!("  {} provisioned", n + 1);
        }
    }
    Ok((devices, hub.registry().ca().cert_der().clone()))
}

/// `vigil serve` over a provisioned data directory.
pub(crate) struct HubProcess {
    child: Child,
    /// Where its MQTT listener is.
    pub(crate) mqtt: std::net::SocketAddr,
    /// Where its HTTPS listener is.
    pub(crate) https: std::net::SocketAddr,
}

impl HubProcess {
    /// Starts `vigil serve --data-dir DIR` and waits for it to listen.
    pub(crate) fn start(dir: &Path) -> anyhow::Result<HubProcess> {
        let program = std::env::current_exe().context("cannot find the vigil program")?;
        let mut command = Command::new(program);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in SETTINGS {
            command.env(key, value);
        }
        let mut child = command.spawn().context("cannot start vigil serve")?;
        let stdout = child.stdout.take().context("no output from vigil serve")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let (mqtt, https) = loop {
            let Some(line) = lines.next() else {
                let _ = child.wait();
                bail!("vigil serve stopped before it listened");
            };
            let line = line?;
            if let Some(rest) = line.strip_prefix("vigil hub listening: ") {
                let address = |key: &str| -> anyhow::Result<std::net::SocketAddr> {
                    Ok(rest
                        .split_whitespace()
                        .find_map(|part| part.strip_prefix(key))
                        .with_context(|| format!("no {key} address in vigil serve's output"))?
                        .parse()?)
                };
                break (address("mqtt=")?, address("https=")?);
            }
        };
        // Keep the pipe drained so that the hub never blocks writing to it.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(HubProcess { child, mqtt, https })
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it as an operator would (SIGTERM) and waits for it.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            let _ = self.child.kill();
        }
        let exit = self.child.wait()?;
        if !exit.success() {
            bail!("vigil serve ended with {exit}");
        }
        Ok(())
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        // An error path: never leave the hub running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
