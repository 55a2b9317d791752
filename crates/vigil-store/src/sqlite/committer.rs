//! Group commit of observations.
//!
//! Callers seal and hash their observations on their own threads ([`PreparedRow`]); one thread
//! owns a write connection, gathers what arrives within [`CommitSettings::max_wait`] (or until
//! [`CommitSettings::max_rows`]), checks that no patient in the batch was erased meanwhile,
//! inserts the rows, appends one audit leaf holding the rows' hashes, and commits: one fsync
//! for the whole batch. Only then does it tell each caller, so "stored" always means "on
//! disk". A caller whose observations cannot be stored (no patient, patient erased) is refused
//! alone; a database failure fails the whole batch, which is rolled back.
//!
//! Behind the intake log (ADR 0014, `intake_stage.rs`) the jobs carry their record's position:
//! the committer records the position after the batch's last one in the batch's own
//! transaction, and a batch that fails is tried again rather than failed, since its senders
//! were already told the observations are safe (the log keeps them until they are applied).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use vigil_model::{DeviceId, PatientId, Timestamp};

use super::audit_log::{append_leaf, batch_leaf};
use super::clinical::row_hash;
use super::intake_stage::Progress;
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
    /// Submissions waiting for the intake thread, and for the committer, at most each; beyond,
    /// a submission is refused with [`StoreError::Overloaded`] so that ingest can slow its
    /// senders.
    pub queue: usize,
    /// Bytes the queued submissions may hold in memory, both queues together (128 MiB, about
    /// 25 s of intake at 5,000 messages/s of 10 readings); beyond, refused as above.
    pub queue_bytes: usize,
    /// How often the log is copied into the database (5 s, measured: `sqlite/wal.rs`).
    pub checkpoint_interval: Duration,
    /// A log past this many bytes is restarted after its checkpoint (256 MiB).
    pub log_restart_bytes: i64,
    /// Intake log segments grow to about this size; each is recycled once applied (16 MiB,
    /// about 3 s of intake at 5,000 messages/s of 10 readings).
    pub intake_segment_bytes: u64,
}

impl Default for CommitSettings {
    fn default() -> Self {
        CommitSettings {
            max_wait: Duration::ZERO,
            max_rows: 20_000,
            queue: 4096,
            queue_bytes: 128 << 20,
            checkpoint_interval: super::wal::INTERVAL,
            log_restart_bytes: super::wal::LOG_RESTART_BYTES,
            intake_segment_bytes: 16 << 20,
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
    /// The job's intake record, when it came through the intake log.
    position: Option<u64>,
}

/// The committer thread's handle: dropping it lets the thread finish what queued, and waits.
pub(crate) struct Committer {
    queue: Option<SyncSender<Job>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Longest pause between attempts at a failing batch of logged observations.
const RETRY_CEILING: Duration = Duration::from_secs(2);

impl Committer {
    /// Starts the committer thread; between batches it lets the log restart when `restart`
    /// asks, and it reports applied intake positions to `progress`.
    pub(crate) fn start(
        connection: Connection,
        settings: CommitSettings,
        restart: Arc<LogRestart>,
        progress: Option<Arc<Progress>>,
    ) -> Result<Committer, StoreError> {
        let (queue, jobs) = sync_channel::<Job>(settings.queue);
        let stopping = Arc::new(AtomicBool::new(false));
        let thread_stopping = Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("vigil-committer".into())
            .spawn(move || {
                run(
                    connection,
                    &jobs,
                    settings,
                    &restart,
                    progress.as_deref(),
                    &thread_stopping,
                );
            })
            .map_err(|source| StoreError::File {
                path: "committer thread".into(),
                source,
            })?;
        Ok(Committer {
            queue: Some(queue),
            stopping,
            thread: Some(thread),
        })
    }

    fn queue(&self) -> Result<&SyncSender<Job>, StoreError> {
        self.queue.as_ref().ok_or(StoreError::CommitterStopped)
    }

    /// Queues rows stored straight to the database; a full queue refuses at once.
    pub(crate) fn submit(&self, rows: Vec<PreparedRow>, done: Completion) {
        let job = Job {
            rows,
            done,
            position: None,
        };
        let queue = match self.queue() {
            Ok(queue) => queue,
            Err(error) => return (job.done)(Err(error)),
        };
        match queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => (job.done)(Err(StoreError::Overloaded)),
            Err(TrySendError::Disconnected(job)) => (job.done)(Err(StoreError::CommitterStopped)),
        }
    }

    /// Queues rows from the intake thread (with their record's position, if they have one),
    /// waiting while the queue is full.
    pub(crate) fn forward(&self, rows: Vec<PreparedRow>, done: Completion, position: Option<u64>) {
        let job = Job {
            rows,
            done,
            position,
        };
        let sent = match self.queue() {
            Ok(queue) => queue.send(job).map_err(|error| error.0),
            Err(_) => Err(job),
        };
        if let Err(job) = sent {
            // Logged already: the next open applies it from the intake log.
            (job.done)(Err(StoreError::CommitterStopped));
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // Dropped by a callback on that very thread (it held the last handle): the thread
            // finishes by itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// The position after the last intake record the database holds (schema 6).
pub(crate) fn applied_position(connection: &Connection) -> Result<u64, StoreError> {
    let next: i64 =
        connection.query_row("SELECT next FROM intake_applied", [], |row| row.get(0))?;
    u64::try_from(next).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Applies intake records read back on open (their senders were told long ago).
pub(crate) fn apply_replayed(
    connection: &mut Connection,
    records: Vec<(u64, Vec<PreparedRow>)>,
) -> Result<(), StoreError> {
    let batch: Vec<Job> = records
        .into_iter()
        .map(|(position, rows)| Job {
            rows,
            done: Box::new(|_| {}),
            position: Some(position),
        })
        .collect();
    write(connection, &batch).map(|_| ())
}

fn run(
    mut connection: Connection,
    jobs: &Receiver<Job>,
    settings: CommitSettings,
    restart: &LogRestart,
    progress: Option<&Progress>,
    stopping: &AtomicBool,
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
        let logged = batch.iter().any(|job| job.position.is_some());
        let mut pause = Duration::from_millis(10);
        let mut committed = false;
        let results = loop {
            match write(&mut connection, &batch) {
                Ok(results) => {
                    committed = true;
                    break results;
                }
                Err(error) if logged && !stopping.load(Ordering::Relaxed) => {
                    // Acknowledged already: keep trying (the intake queue fills meanwhile and
                    // refuses new work, so senders slow down instead of memory growing).
                    tracing::error!(%error, "applying logged observations failed; trying again");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(RETRY_CEILING);
                }
                // Everything was rolled back; every caller learns why (logged ones stay in
                // the intake log for the next open).
                Err(error) => {
                    let message = error.to_string();
                    break batch
                        .iter()
                        .map(|_| Err(StoreError::BatchFailed(message.clone())))
                        .collect();
                }
            }
        };
        if let (true, Some(progress), Some(next)) = (committed, progress, next_position(&batch)) {
            progress.applied(next);
        }
        for (job, result) in batch.into_iter().zip(results) {
            (job.done)(result);
        }
        restart.catch_up(&connection);
    }
}

/// The position after the batch's last intake record, if it holds any.
fn next_position(batch: &[Job]) -> Option<u64> {
    batch
        .iter()
        .filter_map(|job| job.position)
        .max()
        .map(|last| last + 1)
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
    if let Some(next) = next_position(batch) {
        let next = i64::try_from(next).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.execute("UPDATE intake_applied SET next = MAX(next, ?1)", [next])?;
    }
    tx.commit()?;
    Ok(results)
}
