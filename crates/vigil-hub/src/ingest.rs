//! The ingest pipeline every listener shares: decode, validate against the vocabulary, check
//! sequence and clock, resolve the patient, flag implausible values, and commit durably. A
//! caller hears "accepted" only when the store says the observations are on disk.
//!
//! ```text
//! payload ─▶ SenML decode ─▶ per reading: known MDC code? reported by this class? unit accepted
//!   (→ canonical)? clock within bound? value possible (else kept, flagged, alerted)?
//!   ─▶ sequence vs last seen (gap → alert) ─▶ patient the device serves ─▶ submit ─▶ durable
//! ```
//!
//! Decisions (docs/protocol.md): a pack is accepted or refused whole; an implausible value is
//! stored flagged with an alert, never dropped; a duplicate sequence number is acknowledged and
//! stored once (the store deduplicates); a device that serves no patient is refused (there is no
//! one to seal its data for).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use vigil_model::{
    Alert, AlertKind, DeviceClass, DeviceId, Evidence, Observation, Quantity, Severity, Timestamp,
};
use vigil_store::{DeviceStatus, Receipt, Store, StoreError};
use vigil_wire::senml::{self, Encoding, SenmlError};

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
    patient: vigil_model::PatientId,
    sequence: u64,
    gap: Option<(u64, u64)>,
    observations: Vec<Observation>,
    now: Timestamp,
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
    last_sequence: Arc<Mutex<HashMap<DeviceId, u64>>>,
    throttle: Arc<Throttle>,
    contexts: Arc<Mutex<HashMap<DeviceId, Context>>>,
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
            last_sequence: Arc::new(Mutex::new(HashMap::new())),
            throttle: Arc::new(Throttle::new(20, 40)),
            contexts: Arc::new(Mutex::new(HashMap::new())),
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

    /// Limits each device to `rate` messages per second, `burst` at once (default 20 and 40).
    pub fn with_throttle(mut self, rate: u32, burst: u32) -> Ingest {
        self.throttle = Arc::new(Throttle::new(rate, burst));
        self
    }

    /// Stores an alert (logged if that fails: an alert must never stop ingest).
    pub async fn raise(&self, alert: Alert) {
        let store = Arc::clone(&self.store);
        if let Err(error) = blocking(move || store.add_alert(&alert).map(|_| ())).await {
            tracing::error!(%error, "alert could not be stored");
        }
    }

    /// Admits one message of `device` now; raises a flood alert at the start of an episode.
    pub async fn admit(&self, device: &DeviceId) -> Admission {
        let admission = self.throttle.admit(device, std::time::Instant::now());
        if let Admission::Flooding { first: true } = admission {
            tracing::warn!(device = %device, "device is flooding; disconnecting it");
            let alert = Alert {
                time: Timestamp::now(),
                severity: Severity::High,
                kind: AlertKind::Flood,
                device: Some(device.clone()),
                patient: None,
                evidence: vec![Evidence::Fact {
                    name: "throttled_for_seconds".into(),
                    value: crate::throttle::FLOOD_AFTER.as_secs().to_string(),
                }],
                attack_technique: Some("T0814".into()),
            };
            self.raise(alert).await;
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
            patient,
            sequence: pack.sequence,
            gap: self.sequence_gap(device, pack.sequence),
            observations,
            now,
        })
    }

    /// The concurrent half: store a prepared pack durably, then raise its alerts.
    pub async fn commit(&self, prepared: Prepared) -> Result<Accepted, IngestError> {
        let Prepared {
            device,
            patient,
            sequence,
            gap,
            observations,
            now,
        } = prepared;
        let device = &device;
        let implausible: Vec<Observation> = observations
            .iter()
            .filter(|o| o.implausible)
            .cloned()
            .collect();

        let (done, receipt) = oneshot::channel::<Result<Receipt, StoreError>>();
        self.store.submit_observations(
            observations,
            Box::new(move |result| {
                let _ = done.send(result);
            }),
        );
        let receipt = match receipt.await {
            Ok(Ok(receipt)) => receipt,
            Ok(Err(StoreError::Overloaded)) => return Err(IngestError::Overloaded),
            Ok(Err(error)) => return Err(IngestError::Store(error)),
            Err(_) => return Err(IngestError::Store(StoreError::CommitterStopped)),
        };

        // After the commit: alerts for what was stored flagged, and for a gap in the sequence.
        let mut alerts: Vec<Alert> = implausible
            .iter()
            .map(|o| Alert {
                time: now,
                severity: Severity::Medium,
                kind: AlertKind::ImplausibleValue,
                device: Some(device.clone()),
                patient: Some(patient.clone()),
                evidence: vec![
                    Evidence::Fact {
                        name: "sequence".into(),
                        value: o.sequence.to_string(),
                    },
                    Evidence::Clinical {
                        quantity: o.quantity,
                        value: o.value,
                    },
                ],
                attack_technique: Some("T0856".into()),
            })
            .collect();
        if let Some(gap) = gap {
            alerts.push(Alert {
                time: now,
                severity: Severity::Low,
                kind: AlertKind::SequenceGap,
                device: Some(device.clone()),
                patient: Some(patient.clone()),
                evidence: vec![
                    Evidence::Fact {
                        name: "expected_sequence".into(),
                        value: gap.0.to_string(),
                    },
                    Evidence::Fact {
                        name: "received_sequence".into(),
                        value: gap.1.to_string(),
                    },
                ],
                attack_technique: None,
            });
        }
        if !alerts.is_empty() {
            let store = Arc::clone(&self.store);
            if let Err(error) = blocking(move || {
                alerts
                    .iter()
                    .try_for_each(|a| store.add_alert(a).map(|_| ()))
            })
            .await
            {
                tracing::error!(%error, "alert could not be stored");
            }
        }
        Ok(Accepted {
            sequence,
            stored: receipt.stored,
            duplicates: receipt.duplicates,
            implausible: implausible.len(),
        })
    }

    /// Records the sequence number; returns (expected, received) when messages were skipped.
    fn sequence_gap(&self, device: &DeviceId, sequence: u64) -> Option<(u64, u64)> {
        let mut last = self
            .last_sequence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let previous = last.get(device).copied();
        if previous.is_none_or(|p| sequence > p) {
            last.insert(device.clone(), sequence);
        }
        match previous {
            Some(p) if sequence > p.saturating_add(1) => Some((p + 1, sequence)),
            _ => None,
        }
    }
}
