//! The fleet on the network: each virtual device of a [`Ward`] enrols through the hub's real
//! enrolment endpoint with its own key and token, connects over MQTT 5.0 with mutual TLS
//! ([`vigil_device`]), and publishes its readings with sequence numbers, reconnecting after a
//! drop; the scenario's attacks play on schedule; and every clinical event and attack is
//! written down as ground truth.
//!
//! The ward advances one fixed step per tick, whatever the wall clock does, so that a seed fixes
//! the readings and the ground truth of a run; only the wall-clock times stamped on them
//! differ from one run to the next.

mod attacker;
mod device;
mod truth;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use vigil_model::{DeviceId, PatientId, Timestamp};

use crate::attacks::{PlannedAttack, Scenario, ScenarioError};
use crate::ward::{DeviceReading, Ward};
pub use truth::TruthLog;

/// Where the hub is and how to trust it.
#[derive(Debug, Clone)]
pub struct HubAddress {
    /// Its HTTPS base URL (`https://host:port`), for enrolment.
    pub https: String,
    /// Its MQTT listener.
    pub mqtt: SocketAddr,
    /// The name its certificate carries (checked by TLS).
    pub server_name: String,
    /// The hospital CA certificate, PEM.
    pub ca_pem: String,
}

/// What a virtual device needs to join: its id and one-time enrolment token (from the hub's
/// registry), and the id of the patient it serves.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The device id the registry gave it.
    pub device: DeviceId,
    /// Its one-time enrolment token.
    pub token: String,
    /// The patient it serves.
    pub patient: PatientId,
}

/// How a fleet runs.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The hub.
    pub hub: HubAddress,
    /// One ticket per ward device, in the ward's device order.
    pub tickets: Vec<Ticket>,
    /// Wall-clock time per step.
    pub tick: Duration,
    /// Simulated seconds per step (equal to `tick` for real time).
    pub step: f64,
    /// Stop after this many simulated seconds (`None`: until stopped).
    pub duration: Option<f64>,
}

/// Live counters of a run, for a progress display.
#[derive(Debug, Default)]
pub struct Stats {
    /// Devices enrolled.
    pub enrolled: AtomicU64,
    /// Devices whose enrolment was refused.
    pub enrolment_refused: AtomicU64,
    /// Devices connected now.
    pub online: AtomicI64,
    /// Observations acknowledged (stored) by the hub.
    pub observations: AtomicU64,
    /// Messages acknowledged.
    pub messages: AtomicU64,
    /// Messages the hub refused.
    pub refused: AtomicU64,
    /// Reconnections after a drop.
    pub reconnects: AtomicU64,
    /// Readings a device could not send because it was offline too long (its buffer was full).
    pub dropped: AtomicU64,
    /// Attacks started.
    pub attacks: AtomicU64,
    /// Simulated seconds elapsed, in milliseconds.
    pub sim_millis: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The scenario does not fit the ward.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The tickets do not match the ward's devices.
    #[error("{tickets} tickets for {devices} devices")]
    Tickets {
        /// Tickets given.
        tickets: usize,
        /// Devices in the ward.
        devices: usize,
    },
    /// The step is not a positive, finite number of seconds.
    #[error("the step must be a positive number of seconds")]
    Step,
    /// The ground truth could not be written.
    #[error("cannot write the ground truth: {0}")]
    Truth(#[from] std::io::Error),
}

/// What every task of the run shares.
struct Shared {
    hub: HubAddress,
    stats: Arc<Stats>,
    /// The wall-clock time of simulated time 0.
    epoch: Timestamp,
    stop: watch::Receiver<bool>,
}

impl Shared {
    /// The wall-clock time of simulated time `t`.
    fn at(&self, t: f64) -> Timestamp {
        #[allow(clippy::cast_possible_truncation)]
        let millis = (t * 1000.0).round() as i64;
        Timestamp::from_unix_millis(self.epoch.unix_millis().saturating_add(millis))
            .unwrap_or(self.epoch)
    }
}

/// Runs `ward` against the hub until the configured duration has passed or `stop` turns true;
/// the clinical events and attacks go to `truth` as they begin. Returns the ward as it ended.
pub async fn run(
    mut ward: Ward,
    scenario: &Scenario,
    config: FleetConfig,
    truth: &mut TruthLog,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) -> Result<Ward, FleetError> {
    if config.tickets.len() != ward.devices().len() {
        return Err(FleetError::Tickets {
            tickets: config.tickets.len(),
            devices: ward.devices().len(),
        });
    }
    if !(config.step.is_finite() && config.step > 0.0) {
        return Err(FleetError::Step);
    }
    let plan = scenario.plan(&ward)?;
    // The first tick fires at once and advances the ward to `step`: that instant is simulated
    // time `step`, so simulated time 0 is one step earlier.
    #[allow(clippy::cast_possible_truncation)]
    let step_ms = (config.step * 1000.0).round() as i64;
    let now = Timestamp::now();
    let epoch =
        Timestamp::from_unix_millis(now.unix_millis().saturating_sub(step_ms)).unwrap_or(now);
    let shared = Arc::new(Shared {
        hub: config.hub.clone(),
        stats: Arc::clone(&stats),
        epoch,
        stop: stop.clone(),
    });
    let devices: Vec<device::Handle> = config
        .tickets
        .iter()
        .zip(ward.devices())
        .map(|(ticket, virtual_device)| {
            device::spawn(Arc::clone(&shared), ticket.clone(), virtual_device.class())
        })
        .collect();

    // The hub's id of each ward patient, for the ground truth.
    let mut patients: Vec<Option<PatientId>> = vec![None; ward.patients().len()];
    for (ticket, virtual_device) in config.tickets.iter().zip(ward.devices()) {
        if let Some(slot) = patients.get_mut(virtual_device.patient()) {
            *slot = Some(ticket.patient.clone());
        }
    }
    truth.run_start(ward.seed(), &patients, &config.tickets, &shared)?;
    let mut ticker = tokio::time::interval(config.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut started = vec![false; plan.len()];
    let mut forged_yet = vec![false; plan.len()];
    let mut restored_yet = vec![false; plan.len()];
    let mut seen_truth = 0;
    let mut due: Vec<DeviceReading> = Vec::new();
    let mut altered: u64 = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
                continue;
            }
        }
        ward.advance(config.step);
        let now = ward.now();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        stats
            .sim_millis
            .store((now * 1000.0) as u64, Ordering::Relaxed);
        if config.duration.is_some_and(|d| now > d) {
            break;
        }
        for record in ward.ground_truth().get(seen_truth..).unwrap_or_default() {
            truth.clinical(record, &patients, &shared)?;
        }
        seen_truth = ward.ground_truth().len();
        for (index, attack) in plan.iter().enumerate() {
            if !started[index] && now >= attack.start() {
                started[index] = true;
                Stats::add(&stats.attacks, 1);
                let ticket = &config.tickets[attack.device];
                truth.attack(
                    attack,
                    ticket,
                    ward.devices()[attack.device].class(),
                    &shared,
                )?;
                if !attack.step.attack.alters_readings() {
                    attacker::launch(
                        Arc::clone(&shared),
                        attack.clone(),
                        ticket.clone(),
                        &devices[attack.device],
                        &config.tickets,
                    );
                }
            }
        }
        due.clear();
        ward.collect_due(&mut due);
        let mut index = 0;
        while index < due.len() {
            let device = due[index].device;
            let mut readings = Vec::new();
            while index < due.len() && due[index].device == device {
                let mut reading = due[index].reading;
                for (n, attack) in plan.iter().enumerate() {
                    if attack.device != device {
                        continue;
                    }
                    if !attack.active(now) {
                        let after = now >= attack.end()
                            && forged_yet.get(n) == Some(&true)
                            && attack
                                .alter(reading.quantity, reading.canonical_value(), 0)
                                .is_some();
                        if let Some(done) = restored_yet.get_mut(n).filter(|done| after && !**done)
                        {
                            *done = true;
                            truth.restored(attack, &config.tickets[device], now, &shared)?;
                        }
                        continue;
                    }
                    if let Some(forged) = forged(attack, &reading, altered) {
                        reading.value = forged;
                        altered += 1;
                        if let Some(first) = forged_yet.get_mut(n).filter(|done| !**done) {
                            *first = true;
                            truth.first_forged(attack, &config.tickets[device], now, &shared)?;
                        }
                    }
                }
                readings.push(reading);
                index += 1;
            }
            if let Some(handle) = devices.get(device) {
                handle.send(readings, now);
            }
        }
    }
    truth.run_end(ward.now(), &shared)?;
    truth.flush()?;
    drop(devices); // each device task finishes its last message and disconnects
    Ok(ward)
}

/// The value an alteration attack sends instead of `reading`'s, in the reading's own unit.
fn forged(attack: &PlannedAttack, reading: &crate::SimReading, n: u64) -> Option<f64> {
    let canonical = attack.alter(reading.quantity, reading.canonical_value(), n)?;
    // Back to the device's unit: the canonical value scaled as the device's unit would be.
    let one = reading.quantity.to_canonical(1.0, reading.unit).ok()?;
    let zero = reading.quantity.to_canonical(0.0, reading.unit).ok()?;
    let scale = one - zero;
    if scale == 0.0 {
        return None;
    }
    Some((canonical - zero) / scale)
}

/// The channel size of a device task: batches waiting while it is offline (a real device
/// buffers a little, then drops the oldest).
const DEVICE_BUFFER: usize = 120;

/// What a device task is asked to do.
enum Input {
    /// Send these readings, taken at simulated time `at`.
    Readings(Vec<crate::SimReading>, f64),
    /// Misbehave on the network (flood, foreign topic, malformed packets) for this long; the
    /// other devices' ids are whose topics a foreign-topic attack uses.
    Misbehave(crate::attacks::AttackKind, Duration, Vec<DeviceId>),
}

/// A channel to a device task.
fn channel() -> (mpsc::Sender<Input>, mpsc::Receiver<Input>) {
    mpsc::channel(DEVICE_BUFFER)
}
