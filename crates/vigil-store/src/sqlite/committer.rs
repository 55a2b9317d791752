//! Group commit of observations.
//!
//! One thread owns a write connection. Callers hand it observations; it gathers what arrives
//! within [`CommitSettings::max_wait`] (or until [`CommitSettings::max_rows`]), seals every
//! value, inserts the rows, appends one audit leaf holding the rows' hashes, and commits: one
//! fsync for the whole batch. Only then does it tell each caller, so "stored" always means "on
//! disk". A caller whose observations cannot be stored (no patient, patient erased) is refused
//! alone; a database failure fails the whole batch, which is rolled back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior, params};
use vigil_model::{Observation, PatientId, Timestamp};

use super::audit_log::{append_leaf, batch_leaf};
use super::clinical::{FLAG_IMPLAUSIBLE, Sealer, row_hash};
use crate::seal::observation_aad;
use crate::{Completion, Receipt, StoreError};

/// How the committer batches.
#[derive(Debug, Clone, Copy)]
pub struct CommitSettings {
    /// Longest a batch waits for more work after its first submission.
    pub max_wait: Duration,
    /// A batch commits as soon as it holds this many observations.
    pub max_rows: usize,
    /// Submissions waiting for the committer, at most; beyond, `submit` refuses with
    /// [`StoreError::Overloaded`] so that ingest can slow its senders.
    pub queue: usize,
}

impl Default for CommitSettings {
    fn default() -> Self {
        CommitSettings {
            max_wait: Duration::from_millis(2),
            max_rows: 20_000,
            queue: 4096,
        }
    }
}

struct Job {
    observations: Vec<Observation>,
    done: Completion,
}

pub(crate) struct Committer {
    queue: SyncSender<Job>,
}

impl Committer {
    pub(crate) fn start(
        connection: Connection,
        sealer: Arc<Sealer>,
        settings: CommitSettings,
    ) -> Result<Committer, StoreError> {
        let (queue, jobs) = sync_channel::<Job>(settings.queue);
        std::thread::Builder::new()
            .name("vigil-committer".into())
            .spawn(move || run(connection, &sealer, &jobs, settings))
            .map_err(|source| StoreError::File {
                path: "committer thread".into(),
                source,
            })?;
        Ok(Committer { queue })
    }

    pub(crate) fn submit(&self, observations: Vec<Observation>, done: Completion) {
        match self.queue.try_send(Job { observations, done }) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => (job.done)(Err(StoreError::Overloaded)),
            Err(TrySendError::Disconnected(job)) => (job.done)(Err(StoreError::CommitterStopped)),
        }
    }

    pub(crate) fn commit(&self, observations: Vec<Observation>) -> Result<Receipt, StoreError> {
        let (reply, receipt) = sync_channel(1);
        let job = Job {
            observations,
            done: Box::new(move |result| {
                let _ = reply.send(result);
            }),
        };
        self.queue
            .send(job)
            .map_err(|_| StoreError::CommitterStopped)?;
        receipt.recv().map_err(|_| StoreError::CommitterStopped)?
    }
}

fn run(
    mut connection: Connection,
    sealer: &Sealer,
    jobs: &Receiver<Job>,
    settings: CommitSettings,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        let mut rows = batch[0].observations.len();
        let deadline = Instant::now() + settings.max_wait;
        while rows < settings.max_rows {
            match jobs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => {
                    rows += job.observations.len();
                    batch.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let results = write(&mut connection, sealer, &batch);
        for (job, result) in batch.into_iter().zip(results) {
            (job.done)(result);
        }
    }
}

/// Writes one batch; returns one result per job.
fn write(
    connection: &mut Connection,
    sealer: &Sealer,
    batch: &[Job],
) -> Vec<Result<Receipt, StoreError>> {
    match write_transaction(connection, sealer, batch) {
        Ok(results) => results,
        Err(error) => {
            // Everything was rolled back; every caller learns why.
            let message = error.to_string();
            batch
                .iter()
                .map(|_| Err(StoreError::BatchFailed(message.clone())))
                .collect()
        }
    }
}

fn write_transaction(
    connection: &mut Connection,
    sealer: &Sealer,
    batch: &[Job],
) -> Result<Vec<Result<Receipt, StoreError>>, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let leaf: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_log",
        [],
        |row| row.get(0),
    )?;
    let leaf_index = u64::try_from(leaf).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut keys: HashMap<PatientId, Result<Arc<crate::seal::DataKey>, String>> = HashMap::new();
    let mut stored_rows = Vec::new();
    let mut counts = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO observations (patient_id, device_id, quantity, time, sequence, flags, value, batch) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (device_id, sequence, quantity) DO NOTHING \
             RETURNING id",
        )?;
        for job in batch {
            // Check the whole submission first, so it is stored entirely or not at all.
            let mut refused = None;
            for observation in &job.observations {
                let Some(patient) = &observation.patient else {
                    refused = Some(StoreError::NoPatient(observation.device.clone()));
                    break;
                };
                if !keys.contains_key(patient) {
                    let key = sealer.data_key(&tx, patient).map_err(|e| e.to_string());
                    keys.insert(patient.clone(), key);
                }
                if let Some(Err(reason)) = keys.get(patient) {
                    refused = Some(StoreError::Refused {
                        patient: patient.clone(),
                        reason: reason.clone(),
                    });
                    break;
                }
            }
            if let Some(error) = refused {
                counts.push(Err(error));
                continue;
            }
            let (mut stored, mut duplicates) = (0, 0);
            for observation in &job.observations {
                let Some(patient) = &observation.patient else {
                    continue;
                };
                let Some(Ok(key)) = keys.get(patient) else {
                    continue;
                };
                let quantity = observation.quantity.spec().mdc.code();
                let time = observation.time.unix_millis();
                let sequence = i64::try_from(observation.sequence).unwrap_or(i64::MAX);
                let flags = if observation.implausible {
                    FLAG_IMPLAUSIBLE
                } else {
                    0
                };
                let aad = observation_aad(
                    patient.as_str(),
                    observation.device.as_str(),
                    observation.sequence,
                    quantity,
                    time,
                );
                let sealed = key.seal(&observation.value.expose().to_be_bytes(), &aad)?;
                let mut inserted = insert.query(params![
                    patient.as_str(),
                    observation.device.as_str(),
                    i64::from(quantity),
                    time,
                    sequence,
                    flags,
                    sealed,
                    leaf
                ])?;
                match inserted.next()? {
                    Some(row) => {
                        let id: i64 = row.get(0)?;
                        stored_rows.push((
                            id,
                            row_hash(
                                id,
                                patient.as_str(),
                                observation.device.as_str(),
                                i64::from(quantity),
                                time,
                                sequence,
                                flags,
                                &sealed,
                            ),
                        ));
                        stored += 1;
                    }
                    None => duplicates += 1,
                }
            }
            counts.push(Ok((stored, duplicates)));
        }
    }
    if !stored_rows.is_empty() {
        let appended = append_leaf(&tx, Timestamp::now(), "batch", &batch_leaf(&stored_rows))?;
        debug_assert_eq!(appended, leaf_index);
    }
    tx.commit()?;
    Ok(counts
        .into_iter()
        .map(|count| {
            count.map(|(stored, duplicates)| Receipt {
                batch: leaf_index,
                stored,
                duplicates,
            })
        })
        .collect())
}
