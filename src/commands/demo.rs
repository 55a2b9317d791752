//! `vigil demo`: the whole of Vigil in one command. An embedded hub in a fresh (or given) data
//! directory, a simulated ward whose devices enrol and stream vitals over mutual TLS, a
//! scripted timeline of attacks, and a live summary; Ctrl-C ends it cleanly, with the audit
//! log checkpointed and verified.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use vigil_hub::Hub;
use vigil_sim::fleet::{FleetConfig, HubAddress, Stats, TruthLog};
use vigil_sim::{Population, Scenario, Ward, WardConfig};
use vigil_store::Store;

use super::{init, ward};
use crate::cli::{DemoArgs, LogArgs};
use crate::logging;

/// The ground truth file in the data directory.
pub(crate) const TRUTH_FILE: &str = "demo-ground-truth.jsonl";
/// Simulated seconds the attack timeline spans.
const TIMELINE: f64 = 120.0;
/// No device reports less often than this in the demo (a CGM's 5 minutes would show nothing).
const DEMO_REPORT_PERIOD: f64 = 15.0;

pub(crate) fn run(log: &LogArgs, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = args.data_dir.clone();
    let config = open_or_create(log, &dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(&dir, config, &args))
}

/// Initialises `dir` unless it already is; its configuration, with the demo's listeners on
/// loopback unless the environment says otherwise.
fn open_or_create(log: &LogArgs, dir: &Path) -> anyhow::Result<vigil_config::Config> {
    let fresh = !dir.join(vigil_config::CONFIG_FILE).exists();
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    for (key, value) in [
        ("VIGIL_HUB_HTTPS_LISTEN", "127.0.0.1:8443"),
        ("VIGIL_HUB_MQTT_LISTEN", "127.0.0.1:8883"),
        // The demo's own flood is the only one: keep the real limits.
    ] {
        if std::env::var_os(key).is_none() {
            env.push((key.to_owned(), value.to_owned()));
        }
    }
    let config = if fresh {
        let config = init::prepare(dir)?;
        logging::init(log, vigil_config::LogLevel::Error, config.log.format)?;
        init::create(dir, &config)?;
        vigil_config::load(dir, env)?.config
    } else {
        let loaded = vigil_config::load(dir, env)?;
        logging::init(log, vigil_config::LogLevel::Error, loaded.config.log.format)?;
        loaded.config
    };
    Ok(config)
}

async fn demo(
    dir: &Path,
    config: vigil_config::Config,
    args: &DemoArgs,
) -> anyhow::Result<ExitCode> {
    let timeline = args
        .duration
        .map_or(TIMELINE, |d| f64::from(d).min(TIMELINE));
    let mut ward_config = WardConfig {
        patients: usize::from(args.patients),
        population: Population {
            // A small ward should show a pump user or two.
            type1_diabetes: 0.3,
            ..Population::default()
        },
        max_report_period: Some(DEMO_REPORT_PERIOD),
        ..WardConfig::default()
    };
    // The devices do not depend on the scripted events: plan the attacks on a first draw of
    // the ward, then make it with the clinical events the attacks need.
    let scenario = Scenario::demo(&Ward::new(args.seed, ward_config.clone())?, timeline);
    ward_config.scripted_events = scenario.clinical_events();
    let ward = Ward::new(args.seed, ward_config)?;
    let fallback = config.clone();
    let hub = Hub::open(dir, config)?;
    let prefix = ward::free_prefix(&hub, "")?;
    let tickets = ward::provision(&hub, &ward, &prefix)?;
    let clinician = demo_clinician(&hub, &prefix)?;
    let store: Arc<dyn Store> = Arc::clone(hub.store());
    let ca_pem = hub.registry().ca().cert_pem().to_owned();
    let running = match hub.start().await {
        Ok(running) => running,
        Err(vigil_hub::HubError::Bind { .. }) => {
            // 8443 or 8883 taken (another hub?): any free port will do for the demo.
            let mut config = fallback;
            config.hub.https_listen.set_port(0);
            config.hub.mqtt_listen.set_port(0);
            Hub::open(dir, config)?.start().await?
        }
        Err(error) => return Err(error.into()),
    };

    let truth_path = dir.join(format!("{prefix}{TRUTH_FILE}"));
    let truth_file = std::fs::File::create(&truth_path)
        .with_context(|| format!("cannot create {}", truth_path.display()))?;
    let mut truth = TruthLog::new(Box::new(std::io::BufWriter::new(truth_file)));
    println!(
        "Vigil demo: hub at https://{} (MQTT {}), data in {}",
        running.https,
        running.mqtt,
        dir.display()
    );
    println!(
        "A ward of {} simulated patients with {} devices; seed {}; a timeline of {} attacks over {} s{}.",
        ward.patients().len(),
        tickets.len(),
        args.seed,
        scenario.steps.len(),
        timeline,
        args.duration.map_or_else(
            || "; Ctrl-C to stop".to_owned(),
            |d| format!("; stopping after {d} s")
        )
    );

    let (user, password, patient) = &clinician;
    println!(
        "Clinician {user} (password {password}) is on the care team of {patient}: sign in with\n  \
         curl --cacert {ca} -H 'content-type: application/json' -d '{{\"user\":\"{user}\",\"password\":\"{password}\"}}' https://localhost:{port}/api/v1/session\n  \
         then GET https://localhost:{port}/fhir/r4/Observation?patient={patient} with the token as a bearer.",
        ca = dir.join("pki/ca.crt.pem").display(),
        port = running.https.port(),
    );

    let stats = Arc::new(Stats::default());
    let (stop, stopped) = watch::channel(false);
    let interrupt = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = interrupt.send(true);
        }
    });
    let display = tokio::spawn(show(
        Arc::clone(&stats),
        Arc::clone(&store),
        tickets.len(),
        args.headless || !std::io::stdout().is_terminal(),
        stopped.clone(),
    ));
    let fleet = FleetConfig {
        hub: HubAddress {
            https: format!("https://localhost:{}", running.https.port()),
            mqtt: running.mqtt,
            server_name: "localhost".to_owned(),
            ca_pem,
        },
        tickets,
        tick: Duration::from_secs(1),
        step: 1.0,
        duration: args.duration.map(|d| d as f64),
    };
    let outcome = vigil_sim::fleet::run(
        ward,
        &scenario,
        fleet,
        &mut truth,
        Arc::clone(&stats),
        stopped,
    )
    .await;
    let _ = stop.send(true);
    let _ = display.await;
    // Let the devices finish their last message before the hub stops.
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;
    outcome?;
    summary(&stats, &*store, dir, &truth_path, truth.written)
}

/// The live summary: every second on a terminal (redrawn), every 5 seconds otherwise.
async fn show(
    stats: Arc<Stats>,
    store: Arc<dyn Store>,
    devices: usize,
    plain: bool,
    mut stopped: watch::Receiver<bool>,
) {
    let period = if plain {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(1)
    };
    let mut ticker = tokio::time::interval(period);
    let mut last = 0u64;
    let mut drawn = 0usize;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        let observations = stats.observations.load(Ordering::Relaxed);
        let rate = (observations - last) as f64 / period.as_secs_f64();
        last = observations;
        let alerts = alerts_by_kind(&store).await;
        let lines = [
            format!(
                "t={:>5.0} s  devices online {}/{}  observations stored {} ({:.0}/s)  refused {}  reconnects {}",
                stats.sim_millis.load(Ordering::Relaxed) as f64 / 1000.0,
                stats.online.load(Ordering::Relaxed).max(0),
                devices,
                observations,
                rate,
                stats.refused.load(Ordering::Relaxed),
                stats.reconnects.load(Ordering::Relaxed),
            ),
            format!(
                "           attacks played {}  alerts: {}",
                stats.attacks.load(Ordering::Relaxed),
                if alerts.is_empty() {
                    "none yet".to_owned()
                } else {
                    alerts
                },
            ),
        ];
        if !plain && drawn > 0 {
            // Back over the previous block.
            print!("\x1b[{drawn}A");
        }
        for line in &lines {
            if plain {
                println!("{line}");
            } else {
                println!("\x1b[2K{line}");
            }
        }
        drawn = lines.len();
    }
}

/// "kind count · kind count" of the alerts raised so far.
async fn alerts_by_kind(store: &Arc<dyn Store>) -> String {
    let store = Arc::clone(store);
    let alerts = tokio::task::spawn_blocking(move || store.alerts(None, 100_000))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for alert in &alerts {
        let kind = serde_json::to_value(alert.alert.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *counts.entry(kind).or_default() += 1;
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A clinician on the care team of the ward's first patient, so that the demo's data can be
/// read through FHIR while it runs: (user, password, patient).
fn demo_clinician(hub: &Hub, prefix: &str) -> anyhow::Result<(String, String, String)> {
    let user = vigil_model::UserId::new(format!("{prefix}dr.demo"))?;
    let patient = vigil_model::PatientId::new(format!("{prefix}patient-000"))?;
    let made = vigil_hub::access::users::create_user(
        hub.store().as_ref(),
        hub.registry().auditor(),
        vigil_model::Actor::System,
        user.clone(),
        vigil_model::Role::Clinician,
        None,
        None,
    )?;
    hub.store()
        .add_to_care_team(&user, &patient, vigil_model::Timestamp::now())?;
    Ok((
        user.as_str().to_owned(),
        made.password,
        patient.as_str().to_owned(),
    ))
}

fn summary(
    stats: &Stats,
    store: &dyn Store,
    dir: &Path,
    truth: &Path,
    truth_records: usize,
) -> anyhow::Result<ExitCode> {
    println!();
    println!(
        "Stopped. {} observations stored from {} devices; {} messages refused; {} attacks played.",
        stats.observations.load(Ordering::Relaxed),
        stats.enrolled.load(Ordering::Relaxed),
        stats.refused.load(Ordering::Relaxed),
        stats.attacks.load(Ordering::Relaxed)
    );
    let alerts = store.alerts(None, 100_000)?;
    println!("{} alerts in the store.", alerts.len());
    println!(
        "Ground truth ({truth_records} records: the run, its clinical events and attacks): {}",
        truth.display()
    );
    let verifier =
        vigil_hub::checkpoints::read_verifier(&dir.join(vigil_hub::checkpoints::AUDIT_PUB_FILE))?;
    let report = vigil_store::sqlite::verify::verify(dir, &verifier)?;
    if report.findings.is_empty() {
        println!(
            "Audit log verified: {} leaves, latest checkpoint covers {}.",
            report.leaves,
            report.latest_checkpoint.unwrap_or(0)
        );
    } else {
        println!(
            "Audit log FAILED verification: {} findings.",
            report.findings.len()
        );
    }
    println!("Next:");
    println!("  vigil audit verify --data-dir {}", dir.display());
    println!("  vigil device list --data-dir {}", dir.display());
    Ok(if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
