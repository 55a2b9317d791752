//! The ingest pipeline every listener shares: decode, validate against the vocabulary, check
//! sequence and clock, resolve the patient, flag implausible values, and commit durably. A
//! caller hears "accepted" only when the store says the observations are on disk: MQTT once
//! they are in the store's intake log ([`Ingest::log`], ADR 0014), HTTPS once they are in the
//! database ([`Ingest::commit`], since its answer says what was stored).
//!
//! ```text
//! payload ─▶ SenML decode ─▶ per reading: known MDC code? reported by this class? unit accepted
//!   (→ canonical)? clock within bound? value possible (else kept and flagged)?
//!   ─▶ patient the device serves ─▶ submit ─▶ intake log (PUBACK) ─▶ database (201)
//!   ─▶ detection (vigil-detect: alerts)
//! ```
//!
//! Decisions (docs/protocol.md): a pack is accepted or refused whole; an implausible value is
//! stored flagged with an alert, never dropped; a duplicate sequence number is acknowledged and
//! stored once (the store deduplicates); a device that serves no patient is refused (there is no
//! one to seal its data for).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use vigil_model::{DeviceClass, DeviceId, Observation, Quantity, Timestamp};
use vigil_store::{DeviceStatus, Receipt, Store, StoreError};
use vigil_wire::senml::{self, Encoding, SenmlError};

use crate::detection::Detection;
use crate::throttle::{Admission, Throttle};

/// What the sender is told after its pack is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The pack's sequence number.
    pub sequence: u64,
    /// Observations newly stored.
    pub stored: usize,
    /// Observations already stored (a redelivery).
    pub duplicates: usize,
    /// Observations stored flagged as physically impossible.
    pub implausible: usize,
}

/// A pack that passed every check, ready to commit.
#[derive(Debug)]
pub struct Prepared {
    device: DeviceId,
    class: DeviceClass,
    patient: vigil_model::PatientId,
    sequence: u64,
    observations: Vec<Observation>,
    now: Timestamp,
    bytes: usize,
}

/// Why a pack was refused. Carries positions and codes, never values.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The pack is not valid SenML in Vigil's profile.
    #[error(transparent)]
    Senml(#[from] SenmlError),
    /// A reading's MDC code is not a quantity Vigil knows.
    #[error("record {record}: MDC code {code} is not a quantity Vigil knows (see `vigil codes`)")]
    UnknownCode {
        /// Record index.
        record: usize,
        /// The code.
        code: u32,
    },
    /// The device's class does not report this quantity.
    #[error("record {record}: a device of class {class} does not report {quantity}")]
    NotReported {
        /// Record index.
        record: usize,
        /// The quantity.
        quantity: Quantity,
        /// The device's class.
        class: DeviceClass,
    },
    /// The unit is not accepted for the quantity.
    #[error("record {record}: {source}")]
    Unit {
        /// Record index.
        record: usize,
        /// Why.
        source: vigil_model::quantity::ValueError,
    },
    /// A reading's time is too far from the hub's clock.
    #[error("record {record}: time is more than {max_seconds} s from the hub's clock")]
    ClockSkew {
        /// Record index.
        record: usize,
        /// The bound.
        max_seconds: u32,
    },
    /// The device is not registered, or revoked.
    #[error("device {0} may not send observations")]
    DeviceNotAllowed(DeviceId),
    /// The device serves no patient at the moment.
    #[error("device {0} serves no patient; assign it first (vigil device assign)")]
    NoPatient(DeviceId),
    /// The store is overloaded: retry shortly.
    #[error("the hub is busy; retry shortly")]
    Overloaded,
    /// Storing failed.
    #[error("storing failed: {0}")]
    Store(StoreError),
}

/// The shared ingest pipeline.
#[derive(Clone)]
pub struct Ingest {
    store: Arc<dyn Store>,
    max_skew_ms: i64,
    max_skew_seconds: u32,
    throttle: Arc<Throttle>,
    contexts: Arc<Mutex<HashMap<DeviceId, Context>>>,
    detection: Option<Detection>,
}

/// What ingest needs to know about a device, cached for [`CONTEXT_TTL`]: a revocation or a new
/// patient assignment takes effect on open connections within that time.
#[derive(Clone)]
struct Context {
    class: DeviceClass,
    allowed: bool,
    patient: Option<vigil_model::PatientId>,
    fetched: std::time::Instant,
}

/// How long a device's class, status and patient are trusted before they are read again.
pub const CONTEXT_TTL: std::time::Duration = std::time::Duration::from_secs(2);

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, IngestError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| IngestError::Store(StoreError::BatchFailed(e.to_string())))?
        .map_err(IngestError::Store)
}

impl Ingest {
    /// A pipeline writing to `store`, refusing readings more than `max_skew_seconds` off.
    pub fn new(store: Arc<dyn Store>, max_skew_seconds: u32) -> Ingest {
        Ingest {
            store,
            max_skew_ms: i64::from(max_skew_seconds) * 1000,
            max_skew_seconds,
            throttle: Arc::new(Throttle::new(20, 40)),
            contexts: Arc::new(Mutex::new(HashMap::new())),
            detection: None,
        }
    }

    /// The device's class, whether it may send, and its patient now: from the cache, or read
    /// in one blocking call.
    async fn context(&self, device: &DeviceId, now: Timestamp) -> Result<Context, IngestError> {
        let cached = self
            .contexts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(device)
            .filter(|c| c.fetched.elapsed() < CONTEXT_TTL)
            .cloned();
        if let Some(context) = cached {
            return Ok(context);
        }
        let store = Arc::clone(&self.store);
        let id = device.clone();
        let (record, patient) = blocking(move || {
            let record = store.device(&id)?;
            let patient = store.patient_of(&id, now)?;
            Ok((record, patient))
        })
        .await?;
        let Some(record) = record else {
            return Err(IngestError::DeviceNotAllowed(device.clone()));
        };
        let context = Context {
            class: record.class,
            allowed: record.status != DeviceStatus::Revoked,
            patient,
            fetched: std::time::Instant::now(),
        };
        self.contexts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(device.clone(), context.clone());
        Ok(context)
    }

    /// Reports every stored pack (and, through [`Ingest::report`], the listeners' events) to
    /// `detection`.
    pub fn with_detection(mut self, detection: Detection) -> Ingest {
        self.detection = Some(detection);
        self
    }

    /// Reports `event` to detection, if the hub runs it.
    pub fn report(&self, event: vigil_detect::Event) {
        if let Some(detection) = &self.detection {
            detection.report(event);
        }
    }

    /// Limits each device to `rate` messages per second, `burst` at once (default 20 and 40).
    pub fn with_throttle(mut self, rate: u32, burst: u32) -> Ingest {
        self.throttle = Arc::new(Throttle::new(rate, burst));
        self
    }

    /// Admits one message of `device` now; tells detection when a flood episode is established.
    pub async fn admit(&self, device: &DeviceId) -> Admission {
        let admission = self.throttle.admit(device, std::time::Instant::now());
        match admission {
            Admission::AfterAlert(_) => {
                tracing::warn!(device = %device, "device is flooding; slowing it");
                self.report(vigil_detect::Event::Flooding {
                    at: Timestamp::now(),
                    device: device.clone(),
                    over_for_ms: u64::try_from(crate::throttle::ALERT_AFTER.as_millis())
                        .unwrap_or(u64::MAX),
                });
            }
            Admission::Flooding { first: true } => {
                tracing::warn!(device = %device, "device still flooding; disconnecting it");
            }
            _ => {}
        }
        admission
    }

    /// Accepts a SenML pack in `encoding` from an authenticated device; returns once it is
    /// durable.
    pub async fn accept(
        &self,
        device: &DeviceId,
        encoding: Encoding,
        payload: &[u8],
    ) -> Result<Accepted, IngestError> {
        let prepared = self.prepare(device, Some(encoding), payload).await?;
        self.commit(prepared).await
    }

    /// The ordered half of accepting a pack: check the device, decode, validate, and note the
    /// sequence number. A listener calls it in the order messages arrive, then may run several
    /// [`Ingest::commit`]s at once and acknowledge them in that same order. `encoding` is
    /// what the transport declared; `None`: told from the payload's first byte.
    pub async fn prepare(
        &self,
        device: &DeviceId,
        encoding: Option<Encoding>,
        payload: &[u8],
    ) -> Result<Prepared, IngestError> {
        let now = Timestamp::now();
        let context = self.context(device, now).await?;
        if !context.allowed {
            return Err(IngestError::DeviceNotAllowed(device.clone()));
        }
        let class = context.class;
        let pack = match encoding {
            Some(encoding) => senml::decode_as(encoding, payload, device, now)?,
            None => senml::decode(payload, device, now)?,
        };

        let mut observations = Vec::with_capacity(pack.readings.len());
        for (record, reading) in pack.readings.into_iter().enumerate() {
            let quantity =
                Quantity::from_mdc_code(reading.code).ok_or(IngestError::UnknownCode {
                    record,
                    code: reading.code,
                })?;
            if !class.reports(quantity) {
                return Err(IngestError::NotReported {
                    record,
                    quantity,
                    class,
                });
            }
            if reading.time.millis_since(now).abs() > self.max_skew_ms {
                return Err(IngestError::ClockSkew {
                    record,
                    max_seconds: self.max_skew_seconds,
                });
            }
            let observation = Observation::from_reported(
                device.clone(),
                quantity,
                *reading.value.expose(),
                &reading.unit,
                reading.time,
                pack.sequence,
            )
            .map_err(|source| IngestError::Unit { record, source })?;
            observations.push(observation);
        }

        let patient = context
            .patient
            .ok_or_else(|| IngestError::NoPatient(device.clone()))?;
        for observation in &mut observations {
            observation.patient = Some(patient.clone());
        }
        Ok(Prepared {
            device: device.clone(),
            class,
            patient,
            sequence: pack.sequence,
            observations,
            now,
            bytes: payload.len(),
        })
    }

    /// The concurrent half: store a prepared pack in the database, then raise its alerts.
    /// Answers with what the store did (stored, duplicates): for HTTPS, whose 201 reports it.
    pub async fn commit(&self, prepared: Prepared) -> Result<Accepted, IngestError> {
        let implausible = prepared
            .observations
            .iter()
            .filter(|o| o.implausible)
            .count();
        let sequence = prepared.sequence;
        let (done, receipt) = oneshot::channel::<Result<Receipt, StoreError>>();
        let (observations, detect) = self.split(prepared);
        self.store.submit_observations(
            observations,
            Box::new(move |result| {
                if let Ok(receipt) = &result {
                    detect(receipt);
                }
                let _ = done.send(result);
            }),
        );
        let receipt = match receipt.await {
            Ok(result) => result.map_err(store_refusal)?,
            Err(_) => return Err(IngestError::Store(StoreError::CommitterStopped)),
        };
        Ok(Accepted {
            sequence,
            stored: receipt.stored,
            duplicates: receipt.duplicates,
            implausible,
        })
    }

    /// The concurrent half for senders told only "safe" (MQTT's PUBACK): returns once the pack
    /// is durable in the store's intake log (ADR 0014), before the database holds it; every
    /// read that begins after sees it. Detection hears of it once it is in the database.
    pub async fn log(&self, prepared: Prepared) -> Result<(), IngestError> {
        let (done, logged) = oneshot::channel::<Result<(), StoreError>>();
        let (observations, detect) = self.split(prepared);
        self.store.submit_observations_logged(
            observations,
            Box::new(move |result| {
                let _ = done.send(result);
            }),
            Box::new(move |result| {
                if let Ok(receipt) = &result {
                    detect(receipt);
                }
            }),
        );
        match logged.await {
            Ok(result) => result.map_err(store_refusal),
            Err(_) => Err(IngestError::Store(StoreError::CommitterStopped)),
        }
    }

    /// The observations to store, and what tells detection once they are stored (it runs on
    /// the store's committer thread, and never blocks).
    fn split(
        &self,
        prepared: Prepared,
    ) -> (Vec<Observation>, impl FnOnce(&Receipt) + Send + use<>) {
        let Prepared {
            device,
            class,
            patient,
            sequence,
            observations,
            now,
            bytes,
        } = prepared;
        // What detection will see of the pack, taken before the store owns the observations.
        let seen = self.detection.clone().map(|detection| {
            let readings: Vec<vigil_detect::Reading> = observations
                .iter()
                .map(|o| vigil_detect::Reading {
                    quantity: o.quantity,
                    value: o.value,
                    time: o.time,
                })
                .collect();
            (detection, readings)
        });
        let detect = move |receipt: &Receipt| {
            if let Some((detection, readings)) = seen {
                detection.report(vigil_detect::Event::Stored {
                    at: now,
                    device,
                    class,
                    patient,
                    sequence,
                    bytes,
                    readings,
                    stored: receipt.stored,
                    duplicates: receipt.duplicates,
                });
            }
        };
        (observations, detect)
    }
}

fn store_refusal(error: StoreError) -> IngestError {
    match error {
        StoreError::Overloaded => IngestError::Overloaded,
        error => IngestError::Store(error),
    }
}
