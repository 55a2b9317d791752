//! Group commit of observations.
//!
//! Callers seal and hash their observations on their own threads ([`PreparedRow`]); one thread
//! owns a write connection, gathers what arrives within [`CommitSettings::max_wait`] (or until
//! [`CommitSettings::max_rows`]), checks that no patient in the batch was erased meanwhile,
//! inserts the rows, appends one audit leaf holding the rows' hashes, and commits: one fsync
//! for the whole batch. Only then does it tell each caller, so "stored" always means "on
//! disk". A caller whose observations cannot be stored (no patient, patient erased) is refused
//! alone; a database failure fails the whole batch, which is rolled back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use vigil_model::{DeviceId, PatientId, Timestamp};

use super::audit_log::{append_leaf, batch_leaf};
use super::clinical::row_hash;
use super::wal::LogRestart;
use crate::{Completion, Receipt, StoreError};

/// How the committer batches, and how the write-ahead log is kept (`sqlite/wal.rs`).
#[derive(Debug, Clone, Copy)]
pub struct CommitSettings {
    /// Longest a batch waits for more work after its first submission. Zero by default: a
    /// batch is whatever queued while the previous one was committing (group commit without a
    /// linger), which grows by itself with the load. A 2 ms linger, measured at 50,000
    /// observations/s, doubled the median time to PUBACK (7–8 ms against 2.7–3.5 ms) and gained
    /// no throughput (docs/performance.md).
    pub max_wait: Duration,
    /// A batch commits as soon as it holds this many observations.
    pub max_rows: usize,
    /// Submissions waiting for the committer, at most; beyond, `submit` refuses with
    /// [`StoreError::Overloaded`] so that ingest can slow its senders.
    pub queue: usize,
    /// How often the log is copied into the database (5 s, measured: `sqlite/wal.rs`).
    pub checkpoint_interval: Duration,
    /// A log past this many bytes is restarted after its checkpoint (256 MiB).
    pub log_restart_bytes: i64,
}

impl Default for CommitSettings {
    fn default() -> Self {
        CommitSettings {
            max_wait: Duration::ZERO,
            max_rows: 20_000,
            queue: 4096,
            checkpoint_interval: super::wal::INTERVAL,
            log_restart_bytes: super::wal::LOG_RESTART_BYTES,
        }
    }
}

/// An observation ready to insert: sealed and hashed by the caller.
pub(crate) struct PreparedRow {
    pub(crate) patient: PatientId,
    pub(crate) device: DeviceId,
    pub(crate) quantity: i64,
    pub(crate) time: i64,
    pub(crate) sequence: i64,
    pub(crate) flags: i64,
    pub(crate) sealed: Vec<u8>,
    /// Hash of everything above; the row hash adds the row id.
    pub(crate) content: [u8; 32],
}

struct Job {
    rows: Vec<PreparedRow>,
    done: Completion,
}

pub(crate) struct Committer {
    queue: SyncSender<Job>,
}

impl Committer {
    /// Starts the committer thread; between batches it lets the log restart when `restart`
    /// asks.
    pub(crate) fn start(
        connection: Connection,
        settings: CommitSettings,
        restart: Arc<LogRestart>,
    ) -> Result<Committer, StoreError> {
        let (queue, jobs) = sync_channel::<Job>(settings.queue);
        std::thread::Builder::new()
            .name("vigil-committer".into())
            .spawn(move || run(connection, &jobs, settings, &restart))
            .map_err(|source| StoreError::File {
                path: "committer thread".into(),
                source,
            })?;
        Ok(Committer { queue })
    }

    pub(crate) fn submit(&self, rows: Vec<PreparedRow>, done: Completion) {
        match self.queue.try_send(Job { rows, done }) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => (job.done)(Err(StoreError::Overloaded)),
            Err(TrySendError::Disconnected(job)) => (job.done)(Err(StoreError::CommitterStopped)),
        }
    }

    pub(crate) fn commit(&self, rows: Vec<PreparedRow>) -> Result<Receipt, StoreError> {
        let (reply, receipt) = sync_channel(1);
        let job = Job {
            rows,
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
    jobs: &Receiver<Job>,
    settings: CommitSettings,
    restart: &LogRestart,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        let mut rows = batch[0].rows.len();
        let deadline = Instant::now() + settings.max_wait;
        while rows < settings.max_rows {
            match jobs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => {
                    rows += job.rows.len();
                    batch.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let results = match write(&mut connection, &batch) {
            Ok(results) => results,
            // Everything was rolled back; every caller learns why.
            Err(error) => {
                let message = error.to_string();
                batch
                    .iter()
                    .map(|_| Err(StoreError::BatchFailed(message.clone())))
                    .collect()
            }
        };
        for (job, result) in batch.into_iter().zip(results) {
            (job.done)(result);
        }
        restart.catch_up(&connection);
    }
}

/// Writes one batch in one transaction; returns one result per job.
fn write(
    connection: &mut Connection,
    batch: &[Job],
) -> Result<Vec<Result<Receipt, StoreError>>, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let leaf: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_log",
        [],
        |row| row.get(0),
    )?;
    let leaf_index = u64::try_from(leaf).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // A patient erased after the caller sealed (another process, a moment ago) gets nothing.
    let mut live: HashMap<&PatientId, bool> = HashMap::new();
    {
        let mut has_key = tx
            .prepare_cached("SELECT wrapped IS NOT NULL FROM patient_keys WHERE patient_id = ?1")?;
        for row in batch.iter().flat_map(|job| &job.rows) {
            if !live.contains_key(&row.patient) {
                let alive: Option<bool> = has_key
                    .query_row([row.patient.as_str()], |r| r.get(0))
                    .optional()?;
                live.insert(&row.patient, alive == Some(true));
            }
        }
    }
    let mut stored_rows = Vec::new();
    let mut results = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO observations \
             (patient_id, device_id, quantity, time, sequence, flags, value, batch) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for job in batch {
            if let Some(erased) = job
                .rows
                .iter()
                .find(|r| live.get(&r.patient) != Some(&true))
            {
                results.push(Err(StoreError::Refused {
                    patient: erased.patient.clone(),
                    reason: "the patient's data key has been erased".into(),
                }));
                continue;
            }
            let (mut stored, mut duplicates) = (0, 0);
            for row in &job.rows {
                let inserted = insert.execute(params![
                    row.patient.as_str(),
                    row.device.as_str(),
                    row.quantity,
                    row.time,
                    row.sequence,
                    row.flags,
                    row.sealed,
                    leaf
                ])?;
                if inserted == 1 {
                    let id = tx.last_insert_rowid();
                    stored_rows.push((id, row_hash(id, &row.content)));
                    stored += 1;
                } else {
                    duplicates += 1;
                }
            }
            results.push(Ok(Receipt {
                batch: leaf_index,
                stored,
                duplicates,
            }));
        }
    }
    if !stored_rows.is_empty() {
        append_leaf(&tx, Timestamp::now(), "batch", &batch_leaf(&stored_rows))?;
    }
    tx.commit()?;
    Ok(results)
}
