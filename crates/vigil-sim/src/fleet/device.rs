//! One virtual device on the network: enrol once, then connect, subscribe to its commands and
//! publish each batch of readings as a SenML pack with the next sequence number, waiting for
//! the hub's acknowledgement; after a drop, reconnect with back-off and send the unacknowledged
//! pack again, with the same sequence number (the hub stores it once).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use vigil_device::{Identity, Link, LinkError, LinkOptions, Published, topics};
use vigil_model::{DeviceClass, DeviceId};
use vigil_wire::encode::{PackBuilder, ReadingTime};
use vigil_wire::senml::Encoding;

use super::{Input, Shared, Stats, Ticket, channel};
use crate::attacks::AttackKind;

/// Messages of its own a device remembers (what a replay attacker would have captured).
const CAPTURED: usize = 16;
/// Wait before reconnecting after a drop, at first.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A connection that lasted this long resets the back-off.
const STABLE: Duration = Duration::from_secs(10);

/// A running device task.
pub(super) struct Handle {
    input: tokio::sync::mpsc::Sender<Input>,
    /// Its credentials once enrolled (what a thief would steal).
    pub(super) identity: Arc<OnceLock<Identity>>,
    /// Its last messages as sent (what a replay attacker would have captured).
    pub(super) captured: Arc<Mutex<VecDeque<Vec<u8>>>>,
    stats: Arc<Stats>,
}

impl Handle {
    /// Hands the device readings taken at simulated time `at`; dropped if it is too far behind.
    pub(super) fn send(&self, readings: Vec<crate::SimReading>, at: f64) {
        if readings.is_empty() {
            return;
        }
        let count = readings.len() as u64;
        if self.input.try_send(Input::Readings(readings, at)).is_err() {
            Stats::add(&self.stats.dropped, count);
        }
    }

    /// Asks the device to misbehave.
    pub(super) fn misbehave(&self, kind: AttackKind, length: Duration, others: Vec<DeviceId>) {
        let _ = self.input.try_send(Input::Misbehave(kind, length, others));
    }
}

/// Starts the task of the device `ticket` names.
pub(super) fn spawn(shared: Arc<Shared>, ticket: Ticket, class: DeviceClass) -> Handle {
    let (input, inputs) = channel();
    let identity = Arc::new(OnceLock::new());
    let captured = Arc::new(Mutex::new(VecDeque::with_capacity(CAPTURED)));
    let stats = Arc::clone(&shared.stats);
    let task = Task {
        shared,
        ticket,
        encoding: encoding_of(class),
        identity: Arc::clone(&identity),
        captured: Arc::clone(&captured),
        sequence: 0,
    };
    tokio::spawn(task.run(inputs));
    Handle {
        input,
        identity,
        captured,
        stats,
    }
}

/// Constrained devices (sensors on a patient, pumps) speak CBOR; monitors JSON.
fn encoding_of(class: DeviceClass) -> Encoding {
    match class {
        DeviceClass::ContinuousGlucoseMonitor
        | DeviceClass::InsulinPump
        | DeviceClass::EcgPatch
        | DeviceClass::Thermometer => Encoding::Cbor,
        _ => Encoding::Json,
    }
}

struct Task {
    shared: Arc<Shared>,
    ticket: Ticket,
    encoding: Encoding,
    identity: Arc<OnceLock<Identity>>,
    captured: Arc<Mutex<VecDeque<Vec<u8>>>>,
    sequence: u64,
}

impl Task {
    async fn run(mut self, mut inputs: tokio::sync::mpsc::Receiver<Input>) {
        let stats = Arc::clone(&self.shared.stats);
        let Some(identity) = self.enrol().await else {
            return;
        };
        let _ = self.identity.set(identity.clone());
        // The pack awaiting its acknowledgement, across reconnections.
        let mut unacknowledged: Option<(Vec<u8>, u64)> = None;
        let mut backoff = MIN_BACKOFF;
        let mut first = true;
        'connection: loop {
            if self.stopping() {
                return;
            }
            if !first {
                // Back off after every drop, longer while connections keep dropping fast (a
                // device fighting a thief for its session must not spin).
                tokio::time::sleep(backoff).await;
            }
            let mut link = match self.connect(&identity).await {
                Ok(link) => link,
                Err(_) => {
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    first = false;
                    continue;
                }
            };
            let connected = tokio::time::Instant::now();
            if !first {
                Stats::add(&stats.reconnects, 1);
            }
            first = false;
            stats
                .online
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ended = self
                .serve(&mut link, &mut inputs, &mut unacknowledged)
                .await;
            stats
                .online
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            backoff = if connected.elapsed() > STABLE {
                MIN_BACKOFF
            } else {
                (backoff * 2).min(MAX_BACKOFF)
            };
            match ended {
                Ended::Finished => {
                    let _ = link.disconnect().await;
                    return;
                }
                Ended::Dropped => continue 'connection,
            }
        }
    }

    /// Publishes until the inputs end (the run is over) or the link drops.
    async fn serve(
        &mut self,
        link: &mut Link,
        inputs: &mut tokio::sync::mpsc::Receiver<Input>,
        unacknowledged: &mut Option<(Vec<u8>, u64)>,
    ) -> Ended {
        let stats = Arc::clone(&self.shared.stats);
        let device = self.ticket.device.clone();
        if link
            .subscribe(&[topics::commands(&device), topics::firmware(&device)])
            .await
            .is_err()
        {
            return Ended::Dropped;
        }
        loop {
            if let Some((payload, readings)) = unacknowledged.as_ref() {
                match link.publish(&topics::observations(&device), payload).await {
                    Ok(Published::Accepted) => {
                        Stats::add(&stats.messages, 1);
                        Stats::add(&stats.observations, *readings);
                    }
                    Ok(Published::Refused(_)) => Stats::add(&stats.refused, 1),
                    Err(_) => return Ended::Dropped,
                }
                *unacknowledged = None;
            }
            // A device with nothing to say for a while (a CGM every 5 minutes, a pacemaker
            // interrogated hourly) pings within its keep-alive, or the hub closes the link.
            let idle = Duration::from_secs(u64::from(link.keep_alive().max(2)) / 2);
            let input = match tokio::time::timeout(idle, inputs.recv()).await {
                Ok(Some(input)) => input,
                Ok(None) => return Ended::Finished,
                Err(_) => {
                    if link.ping().await.is_err() {
                        return Ended::Dropped;
                    }
                    continue;
                }
            };
            match input {
                Input::Readings(readings, at) => {
                    if let Some(payload) = self.pack(&readings, at) {
                        self.capture(&payload);
                        *unacknowledged = Some((payload, readings.len() as u64));
                    }
                }
                Input::Misbehave(kind, length, others) => {
                    if self.misbehave(link, kind, length, &others).await.is_err() {
                        return Ended::Dropped;
                    }
                }
            }
        }
    }

    /// Enrols, retrying while the hub cannot be reached; `None` if the hub refused.
    async fn enrol(&self) -> Option<Identity> {
        let stats = &self.shared.stats;
        let mut wait = Duration::from_millis(250);
        for _ in 0..8 {
            match vigil_device::enrol(
                &self.shared.hub.https,
                &self.shared.hub.ca_pem,
                &self.ticket.token,
            )
            .await
            {
                Ok(identity) => {
                    Stats::add(&stats.enrolled, 1);
                    return Some(identity);
                }
                Err(vigil_device::EnrolError::Transport(_)) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    tracing::warn!(device = %self.ticket.device, %error, "enrolment refused");
                    Stats::add(&stats.enrolment_refused, 1);
                    return None;
                }
            }
            if self.stopping() {
                return None;
            }
        }
        Stats::add(&stats.enrolment_refused, 1);
        None
    }

    async fn connect(&self, identity: &Identity) -> Result<Link, LinkError> {
        let options = LinkOptions {
            server_name: self.shared.hub.server_name.clone(),
            ..LinkOptions::default()
        };
        Link::connect(self.shared.hub.mqtt, identity, &options).await
    }

    /// The next pack of the device, encoded.
    fn pack(&mut self, readings: &[crate::SimReading], at: f64) -> Option<Vec<u8>> {
        self.sequence += 1;
        let base = self.shared.at(at);
        let mut pack = PackBuilder::new(&self.ticket.device, self.sequence, base).ok()?;
        for reading in readings {
            let time = ReadingTime::At(self.shared.at(reading.time_offset));
            pack.reading(
                reading.quantity.spec().mdc.code(),
                reading.unit,
                reading.value,
                time,
            )
            .ok()?;
        }
        Some(pack.encode(self.encoding))
    }

    fn capture(&self, payload: &[u8]) {
        let mut captured = self
            .captured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if captured.len() == CAPTURED {
            captured.pop_front();
        }
        captured.push_back(payload.to_vec());
    }

    /// Plays a network attack from this device's own connection.
    async fn misbehave(
        &mut self,
        link: &mut Link,
        kind: AttackKind,
        length: Duration,
        others: &[DeviceId],
    ) -> Result<(), LinkError> {
        let device = self.ticket.device.clone();
        match kind {
            AttackKind::Flood => {
                // As fast as the connection takes them, acknowledged or not, until the hub
                // cuts the device off or the attack ends.
                let until = tokio::time::Instant::now() + length;
                let payload = self
                    .captured
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .back()
                    .cloned()
                    .unwrap_or_default();
                while tokio::time::Instant::now() < until {
                    link.publish_at_most_once(&topics::observations(&device), &payload)
                        .await?;
                }
                Ok(())
            }
            AttackKind::ForeignTopic => {
                for other in others.iter().take(3) {
                    let payload = self
                        .captured
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .back()
                        .cloned()
                        .unwrap_or_default();
                    let _ = link.publish(&topics::observations(other), &payload).await?;
                }
                Ok(())
            }
            AttackKind::MalformedPackets => {
                // Packet type 0 is reserved in MQTT: no valid packet starts with this byte.
                link.send_raw(&[0x00, 0x02, 0xde, 0xad]).await?;
                let _ = link.closed().await;
                Err(LinkError::Closed(None))
            }
            _ => Ok(()),
        }
    }

    fn stopping(&self) -> bool {
        *self.shared.stop.borrow()
    }
}

/// How serving a connection ended.
enum Ended {
    /// The run is over.
    Finished,
    /// The connection dropped: reconnect.
    Dropped,
}
