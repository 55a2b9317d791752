//! The intake stage of ADR 0014: submissions are appended to the intake log and synced in
//! groups on one thread, acknowledged as *logged*, then handed in order to the committer, which
//! applies them to SQLite behind the acknowledgement.
//!
//! ```text
//! submit ─▶ [queue] ─▶ intake thread: append each, one fsync per group ─▶ logged(Ok)
//!                                   └─▶ committer: insert, record the applied position ─▶ applied(receipt)
//! ```
//!
//! Only one process may append to a data directory's intake log: the stage holds an exclusive
//! lock on `intake/lock`. A process that cannot take it (the `vigil` command line while the hub
//! runs) stores observations straight through the committer, as before ADR 0014.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::committer::{Committer, PreparedRow};
use super::intake_record;
use crate::intake::{IntakeLog, file_error};
use crate::{Completion, Logged, StoreError};

/// The intake log's directory inside the data directory.
pub const INTAKE_DIR: &str = "intake";
/// Most submissions appended before one sync.
const GROUP: usize = 1024;
/// Rows applied per transaction while replaying on open.
const REPLAY_ROWS: usize = 20_000;
/// How long a read waits for the committer to apply what was acknowledged before it began.
const READ_BARRIER: Duration = Duration::from_secs(10);

/// How far the log has been acknowledged and applied; reads wait on it (the read barrier).
#[derive(Debug)]
pub(crate) struct Progress {
    state: Mutex<Positions>,
    applied_moved: Condvar,
}

#[derive(Debug, Clone, Copy)]
struct Positions {
    /// The position after the last record synced (acknowledged as logged).
    logged: u64,
    /// The position after the last record applied to the database.
    applied: u64,
}

impl Progress {
    fn new(next: u64) -> Progress {
        Progress {
            state: Mutex::new(Positions {
                logged: next,
                applied: next,
            }),
            applied_moved: Condvar::new(),
        }
    }

    fn positions(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn logged(&self, next: u64) {
        self.positions().logged = next;
    }

    /// Called by the committer once records before `next` are committed.
    pub(crate) fn applied(&self, next: u64) {
        let mut positions = self.positions();
        positions.applied = positions.applied.max(next);
        self.applied_moved.notify_all();
    }

    fn applied_next(&self) -> u64 {
        self.positions().applied
    }

    /// Waits until everything acknowledged before this call is in the database, so that a read
    /// made after it never misses an acknowledged observation. Free when the committer has
    /// caught up; refuses with [`StoreError::Overloaded`] after [`READ_BARRIER`].
    pub(crate) fn wait_for_applied(&self) -> Result<(), StoreError> {
        let positions = self.positions();
        let target = positions.logged;
        let (positions, timeout) = self
            .applied_moved
            .wait_timeout_while(positions, READ_BARRIER, |p| p.applied < target)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if timeout.timed_out() && positions.applied < target {
            return Err(StoreError::Overloaded);
        }
        Ok(())
    }
}

struct Submission {
    rows: Vec<PreparedRow>,
    /// The rows encoded; `None` for a submission too large for one record (a bulk load),
    /// which goes to the committer unlogged, in its turn, and is told *logged* once applied.
    record: Option<Vec<u8>>,
    logged: Option<Logged>,
    applied: Completion,
}

/// The intake log opened and caught up with, ready for [`IntakeStage::start`].
pub(crate) struct Recovered {
    log: IntakeLog,
    /// Held for as long as the log is appended to.
    lock: File,
    /// Shared with the committer, which reports what it applied.
    pub(crate) progress: Arc<Progress>,
}

/// The intake thread's handle: dropping it lets the thread finish what queued, and waits.
pub(crate) struct IntakeStage {
    queue: Option<SyncSender<Submission>>,
    progress: Arc<Progress>,
    thread: Option<JoinHandle<()>>,
}

impl IntakeStage {
    /// Opens the intake log under `data_dir` if no other process holds it, and applies through
    /// `writer` every record after the applied position the database records; `Ok(None)` when
    /// another process holds the log.
    pub(crate) fn open(
        data_dir: &Path,
        writer: &mut Connection,
        segment_bytes: u64,
    ) -> Result<Option<Recovered>, StoreError> {
        let dir = data_dir.join(INTAKE_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| file_error(&dir, source))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| file_error(&lock_path, source))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(file_error(&lock_path, source));
            }
        }
        let applied = super::committer::applied_position(writer)?;
        let mut pending: Vec<(u64, Vec<PreparedRow>)> = Vec::new();
        let mut pending_rows = 0;
        let mut replayed = 0u64;
        let log = IntakeLog::open(&dir, segment_bytes, applied, |position, payload| {
            let rows = intake_record::decode(payload)?;
            pending_rows += rows.len();
            pending.push((position, rows));
            replayed += 1;
            if pending_rows >= REPLAY_ROWS {
                super::committer::apply_replayed(writer, std::mem::take(&mut pending))?;
                pending_rows = 0;
            }
            Ok(())
        })?;
        if !pending.is_empty() {
            super::committer::apply_replayed(writer, pending)?;
        }
        if replayed > 0 {
            tracing::info!(
                records = replayed,
                "applied intake records a previous run acknowledged but had not stored"
            );
        }
        let progress = Arc::new(Progress::new(log.next_position()));
        Ok(Some(Recovered {
            log,
            lock,
            progress,
        }))
    }

    /// Starts the intake thread with the recovered log (whose lock it keeps) in front of
    /// `committer`.
    pub(crate) fn start(
        recovered: Recovered,
        committer: Committer,
        queue: usize,
    ) -> Result<IntakeStage, StoreError> {
        let Recovered {
            log,
            lock,
            progress,
        } = recovered;
        let (sender, submissions) = sync_channel::<Submission>(queue);
        let thread_progress = Arc::clone(&progress);
        let thread = std::thread::Builder::new()
            .name("vigil-intake".into())
            .spawn(move || {
                run(log, &submissions, &committer, &thread_progress);
                // The lock is released only once the thread has stopped appending.
                drop(lock);
            })
            .map_err(|source| StoreError::File {
                path: "intake thread".into(),
                source,
            })?;
        Ok(IntakeStage {
            queue: Some(sender),
            progress,
            thread: Some(thread),
        })
    }

    /// Queues `rows` (encoded as `record`, if they fit one); `logged` runs once they are
    /// durable, `applied` once they are in the database. A full queue refuses at once with
    /// [`StoreError::Overloaded`].
    pub(crate) fn submit(
        &self,
        rows: Vec<PreparedRow>,
        record: Option<Vec<u8>>,
        logged: Option<Logged>,
        applied: Completion,
    ) {
        let submission = Submission {
            rows,
            record,
            logged,
            applied,
        };
        let Some(queue) = &self.queue else {
            fail(submission, StoreError::CommitterStopped);
            return;
        };
        match queue.try_send(submission) {
            Ok(()) => {}
            Err(TrySendError::Full(submission)) => fail(submission, StoreError::Overloaded),
            Err(TrySendError::Disconnected(submission)) => {
                fail(submission, StoreError::CommitterStopped);
            }
        }
    }

    /// The read barrier ([`Progress::wait_for_applied`]).
    pub(crate) fn wait_for_applied(&self) -> Result<(), StoreError> {
        self.progress.wait_for_applied()
    }
}

impl Drop for IntakeStage {
    fn drop(&mut self) {
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

fn fail(submission: Submission, error: StoreError) {
    super::refuse(submission.logged, submission.applied, error);
}

/// `applied`, preceded by `logged` with the same outcome (for a submission that is durable
/// only once in the database).
pub(crate) fn told_logged_once_applied(logged: Logged, applied: Completion) -> Completion {
    Box::new(move |result| {
        logged(result.as_ref().map(|_| ()).map_err(super::echo));
        applied(result);
    })
}

fn run(
    mut log: IntakeLog,
    submissions: &Receiver<Submission>,
    committer: &Committer,
    progress: &Progress,
) {
    // Whether the log failed (and said so): it refuses every later append until reopened.
    let mut stopped = false;
    while let Ok(first) = submissions.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match submissions.try_recv() {
                Ok(submission) => group.push(submission),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        // Each submission with its record's position (`None`: not logged, too large).
        let mut appended = Vec::with_capacity(group.len());
        for submission in group {
            let Some(record) = &submission.record else {
                appended.push((None, submission));
                continue;
            };
            match log.append(record) {
                Ok(position) => appended.push((Some(position), submission)),
                Err(error) => {
                    // The log refuses every later append too, until it is opened again: say
                    // so once, not once per sender.
                    if !stopped {
                        stopped = true;
                        tracing::error!(%error, "the intake log could not be written; ingest stops until the hub restarts");
                    }
                    let message = error.to_string();
                    fail(submission, StoreError::BatchFailed(message.clone()));
                }
            }
        }
        let logged_any = appended.iter().any(|(position, _)| position.is_some());
        if logged_any && let Err(error) = log.sync() {
            // Appended but not known durable: never acknowledged. If they did reach the disk,
            // the next open applies them, and the senders' retries are stored once.
            if !stopped {
                stopped = true;
                tracing::error!(%error, "the intake log could not be synced; ingest stops until the hub restarts");
            }
            let message = error.to_string();
            for (_, submission) in appended {
                fail(submission, StoreError::BatchFailed(message.clone()));
            }
            continue;
        }
        progress.logged(log.next_position());
        for (position, submission) in appended {
            let Submission {
                rows,
                logged,
                applied,
                ..
            } = submission;
            let applied = match (position, logged) {
                (Some(_), Some(logged)) => {
                    logged(Ok(()));
                    applied
                }
                (None, Some(logged)) => told_logged_once_applied(logged, applied),
                (_, None) => applied,
            };
            // Blocks while the committer's queue is full: the intake queue then fills and
            // refuses, so a slow database slows the senders instead of growing memory.
            committer.forward(rows, applied, position);
        }
        if let Err(error) = log.release(progress.applied_next()) {
            tracing::warn!(%error, "an applied intake segment could not be retired");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::mpsc::sync_channel;

    use vigil_model::phi::Phi;
    use vigil_model::{DeviceClass, DeviceId, Observation, PatientId, Quantity, Timestamp};

    use super::super::{CommitSettings, SqliteStore, Writes};
    use super::*;
    use crate::seal::Keyring;
    use crate::{
        ClinicalStore, Demographics, DeviceRecord, DeviceStatus, RegistryStore, TokenRecord,
    };

    fn t(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis).unwrap()
    }

    fn open_with(dir: &Path, settings: CommitSettings) -> SqliteStore {
        let keyring = Keyring::load(dir, None)
            .or_else(|_| Keyring::create(dir))
            .unwrap();
        SqliteStore::open_with(dir, Arc::new(keyring), settings).unwrap()
    }

    fn open(dir: &Path) -> SqliteStore {
        open_with(dir, CommitSettings::default())
    }

    fn patient() -> PatientId {
        PatientId::new("patient-1").unwrap()
    }

    fn oximeter() -> DeviceId {
        DeviceId::new("oximeter-1").unwrap()
    }

    /// A patient wearing an oximeter.
    fn admit(store: &SqliteStore) {
        store
            .add_device(
                &DeviceRecord {
                    id: oximeter(),
                    class: DeviceClass::PulseOximeter,
                    status: DeviceStatus::Registered,
                    created_at: t(0),
                    revoked_at: None,
                },
                &TokenRecord {
                    id: "tok".into(),
                    device: oximeter(),
                    secret_hash: vec![0; 32],
                    created_at: t(0),
                    expires_at: t(1),
                },
            )
            .unwrap();
        let demographics = Demographics {
            name: Phi::new("A. Patient".to_owned()),
            mrn: Phi::new("MRN-1".to_owned()),
            birth_date: Phi::new(time::macros::date!(1970 - 01 - 01)),
        };
        store.add_patient(&patient(), &demographics, t(0)).unwrap();
        store.assign_device(&oximeter(), &patient(), t(0)).unwrap();
    }

    fn spo2(sequence: u64) -> Observation {
        Observation {
            device: oximeter(),
            patient: Some(patient()),
            quantity: Quantity::Spo2,
            value: Phi::new(95.0),
            time: t(1_000 + i64::try_from(sequence).unwrap()),
            sequence,
            implausible: false,
        }
    }

    fn stored(store: &SqliteStore) -> usize {
        store
            .observations(&patient(), Quantity::Spo2, t(0), t(1_000_000))
            .unwrap()
            .len()
    }

    fn applied(store: &SqliteStore) -> u64 {
        super::super::committer::applied_position(&store.connection()).unwrap()
    }

    fn is_logged(store: &SqliteStore) -> bool {
        matches!(store.writes, Writes::Logged(_))
    }

    #[test]
    fn a_record_logged_but_not_applied_is_applied_on_open_and_only_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        admit(&store);
        store.commit_observations(vec![spo2(1)]).unwrap();
        let rows = store.prepare(&[spo2(2), spo2(3)]).unwrap();
        let owed = applied(&store);
        assert_eq!(owed, 1);
        drop(store);

        // What a crash between the acknowledgement and the commit leaves: a record in the log
        // after the position the database has applied.
        let mut log = IntakeLog::open(&tmp.path().join(INTAKE_DIR), 1 << 20, owed, |_, _| {
            panic!("nothing is owed yet")
        })
        .unwrap();
        assert_eq!(
            log.append(&intake_record::encode(&rows).unwrap()).unwrap(),
            1
        );
        log.sync().unwrap();
        drop(log);

        let store = open(tmp.path());
        assert_eq!(stored(&store), 3);
        assert_eq!(applied(&store), 2);
        let leaves = store
            .connection()
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get::<_, i64>(0))
            .unwrap();
        drop(store);

        let store = open(tmp.path());
        assert_eq!(stored(&store), 3);
        assert_eq!(applied(&store), 2);
        let again = store
            .connection()
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get::<_, i64>(0))
            .unwrap();
        assert_eq!(again, leaves);
    }

    #[test]
    fn logged_comes_before_applied_and_a_read_after_it_sees_the_observations() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        admit(&store);
        assert!(is_logged(&store));
        for round in 0..20u64 {
            let (logged_tx, logged_rx) = sync_channel(1);
            let (applied_tx, applied_rx) = sync_channel(1);
            store.submit_observations_logged(
                vec![spo2(2 * round), spo2(2 * round + 1)],
                Box::new(move |result| logged_tx.send(result).unwrap()),
                Box::new(move |result| applied_tx.send(result).unwrap()),
            );
            logged_rx.recv().unwrap().unwrap();
            // No wait for `applied`: the read waits for the committer itself.
            assert_eq!(stored(&store), usize::try_from(2 * round + 2).unwrap());
            let receipt = applied_rx.recv().unwrap().unwrap();
            assert_eq!((receipt.stored, receipt.duplicates), (2, 0));
        }
    }

    #[test]
    fn a_submission_too_large_for_one_record_is_stored_unlogged_in_its_turn() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open(tmp.path());
        admit(&store);
        let long = PatientId::new("p".repeat(64)).unwrap();
        let demographics = Demographics {
            name: Phi::new("B. Patient".to_owned()),
            mrn: Phi::new("MRN-2".to_owned()),
            birth_date: Phi::new(time::macros::date!(1970 - 01 - 01)),
        };
        store.add_patient(&long, &demographics, t(0)).unwrap();
        // About 200 bytes a row with 64-byte ids: 6,000 rows are over a record's 1 MiB.
        let bulk: Vec<Observation> = (0..6_000)
            .map(|sequence| Observation {
                device: DeviceId::new("d".repeat(64)).unwrap(),
                patient: Some(long.clone()),
                ..spo2(sequence)
            })
            .collect();
        assert!(intake_record::encode(&store.prepare(&bulk).unwrap()).is_err());
        store.commit_observations(vec![spo2(1)]).unwrap();
        let before = applied(&store);
        let receipt = store.commit_observations(bulk).unwrap();
        assert_eq!((receipt.stored, receipt.duplicates), (6_000, 0));
        // Not in the log: the applied position did not move for it.
        assert_eq!(applied(&store), before);
        // The next small one is logged again.
        store.commit_observations(vec![spo2(2)]).unwrap();
        assert_eq!(applied(&store), before + 1);
        let read = store
            .observations(&long, Quantity::Spo2, t(0), t(1_000_000))
            .unwrap();
        assert_eq!(read.len(), 6_000);
    }

    #[test]
    fn past_the_byte_budget_submissions_are_refused_until_the_queues_drain() {
        let tmp = tempfile::tempdir().unwrap();
        // Room for about one submission of one reading (its rows and its record).
        let settings = CommitSettings {
            queue_bytes: 400,
            ..CommitSettings::default()
        };
        let store = open_with(tmp.path(), settings);
        admit(&store);
        let (done, finished) = sync_channel(200);
        for sequence in 0..100 {
            let done = done.clone();
            store.submit_observations(
                vec![spo2(sequence)],
                Box::new(move |result| done.send(result).unwrap()),
            );
        }
        let results: Vec<_> = (0..100).map(|_| finished.recv().unwrap()).collect();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Overloaded)))
            .count();
        let stored = results.iter().filter(|r| r.is_ok()).count();
        // The burst outruns two syncs per submission: most wait their turn in vain.
        assert!(refused > 0, "none refused");
        assert_eq!(refused + stored, 100, "{results:?}");
        assert_eq!(self::stored(&store), stored);
        assert_eq!(store.queued.used(), 0);
        // Drained: the next is taken.
        store.commit_observations(vec![spo2(1_000)]).unwrap();
    }

    #[test]
    fn a_second_store_on_the_directory_writes_directly_and_the_lock_outlives_no_store() {
        let tmp = tempfile::tempdir().unwrap();
        let first = open(tmp.path());
        admit(&first);
        let second = open(tmp.path());
        assert!(is_logged(&first));
        assert!(!is_logged(&second));
        second.commit_observations(vec![spo2(1)]).unwrap();
        first.commit_observations(vec![spo2(2)]).unwrap();
        assert_eq!(stored(&first), 2);
        assert_eq!(stored(&second), 2);
        drop(second);
        drop(first);
        assert!(is_logged(&open(tmp.path())));
    }

    #[test]
    fn applied_segments_are_recycled_and_at_most_a_few_files_remain() {
        let tmp = tempfile::tempdir().unwrap();
        let settings = CommitSettings {
            intake_segment_bytes: 256,
            ..CommitSettings::default()
        };
        let store = open_with(tmp.path(), settings);
        admit(&store);
        for sequence in 0..40 {
            store.commit_observations(vec![spo2(sequence)]).unwrap();
        }
        let files: Vec<String> = std::fs::read_dir(tmp.path().join(INTAKE_DIR))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != "lock")
            .collect();
        // One record (about 180 bytes) per segment of 256: 40 segments had they been kept.
        let segments = files.iter().filter(|name| name.ends_with(".log")).count();
        let spares = files.iter().filter(|name| name.ends_with(".spare")).count();
        assert!(segments <= 3, "{files:?}");
        assert!(spares <= crate::intake::SPARES, "{files:?}");
        assert_eq!(segments + spares, files.len(), "{files:?}");
        drop(store);
        assert_eq!(stored(&open_with(tmp.path(), settings)), 40);
    }
}
