//! `vigil sim`: a simulated fleet against a running hub. The patients and devices are
//! registered in the hub's data directory, as a clinical engineer would; the devices then enrol
//! and publish over the network like any device.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use vigil_sim::fleet::{FleetConfig, HubAddress, Stats, TruthLog};
use vigil_sim::{Scenario, Ward, WardConfig};

use super::{open_hub, ward};
use crate::cli::{LogArgs, SimArgs};

pub(crate) fn run(log: &LogArgs, args: SimArgs) -> anyhow::Result<ExitCode> {
    let hub = open_hub(log, &args.data_dir)?;
    anyhow::ensure!(
        args.clinical_events_per_day.is_finite()
            && (0.0..=1000.0).contains(&args.clinical_events_per_day),
        "--clinical-events-per-day must be between 0 and 1000"
    );
    let mut config = WardConfig {
        patients: usize::from(args.patients),
        events_per_patient_day: args.clinical_events_per_day,
        ..WardConfig::default()
    };
    let scenario = match (&args.scenario, args.attack_rounds) {
        (Some(path), _) => Scenario::parse(&read(path)?)?,
        // The devices do not depend on scripted events: plan on a first draw of the ward.
        (None, Some(rounds)) => Scenario::rounds(
            &Ward::new(args.seed, config.clone())?,
            f64::from(args.duration),
            usize::from(rounds),
        ),
        (None, None) => Scenario::default(),
    };
    config.scripted_events = scenario.clinical_events();
    let ward = Ward::new(args.seed, config)?;
    // Refuse a scenario that does not fit before registering anything.
    scenario.plan(&ward)?;
    let prefix = ward::free_prefix(&hub, &format!("sim{}-", args.seed))?;
    let tickets = ward::provision(&hub, &ward, &prefix)?;
    let ca_pem = hub.registry().ca().cert_pem().to_owned();
    drop(hub);

    let (host, _) = args.hub.rsplit_once(':').context("--hub is HOST:PORT")?;
    let mqtt = args.mqtt.clone().unwrap_or_else(|| format!("{host}:8883"));
    let truth_file = std::fs::File::create(&args.truth)
        .with_context(|| format!("cannot create {}", args.truth.display()))?;
    let mut truth = TruthLog::new(Box::new(std::io::BufWriter::new(truth_file)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stats = Arc::new(Stats::default());
    let devices = tickets.len();
    runtime.block_on(async {
        let mqtt = tokio::net::lookup_host(&mqtt)
            .await?
            .next()
            .with_context(|| format!("{mqtt} does not resolve"))?;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop.send(true);
            }
        });
        let config = FleetConfig {
            hub: HubAddress {
                https: format!("https://{}", args.hub),
                mqtt,
                server_name: host.to_owned(),
                ca_pem,
            },
            tickets,
            tick: Duration::from_secs(1),
            step: 1.0,
            duration: Some(f64::from(args.duration)),
        };
        vigil_sim::fleet::run(
            ward,
            &scenario,
            config,
            &mut truth,
            Arc::clone(&stats),
            stopped,
        )
        .await?;
        anyhow::Ok(())
    })?;
    use std::sync::atomic::Ordering::Relaxed;
    println!(
        "{} of {devices} devices enrolled; {} observations stored in {} messages; {} refused; {} reconnects; {} attacks played",
        stats.enrolled.load(Relaxed),
        stats.observations.load(Relaxed),
        stats.messages.load(Relaxed),
        stats.refused.load(Relaxed),
        stats.reconnects.load(Relaxed),
        stats.attacks.load(Relaxed),
    );
    println!(
        "ground truth: {} ({} records)",
        args.truth.display(),
        truth.written
    );
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> anyhow::Result<String> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        metadata.len() <= 1024 * 1024,
        "{}: a scenario is at most 1 MiB",
        path.display()
    );
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
