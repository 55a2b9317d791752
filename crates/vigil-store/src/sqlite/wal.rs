//! Copying the write-ahead log back into the database (checkpointing) on a thread of its own.
//!
//! SQLite checkpoints by default inside whichever commit grows the log past 1,000 pages: on the
//! observation committer, that puts a copy of the whole log (and an fsync of the database file)
//! on the path of the publications waiting for their acknowledgement. Here every connection
//! leaves checkpoints to this thread, which runs a passive checkpoint (it never blocks a writer
//! or a reader) every few seconds. Durability is unchanged: a commit is durable once its log
//! frames are synced, checkpointed or not.
//!
//! The interval is measured, not guessed (docs/performance.md): a checkpoint still competes with
//! the committer's fsync for the disk, so checkpointing 4 times a second put a stall in every
//! second's tail (ingest p99 79 ms at 50,000 observations/s), and a checkpoint every 10 s moved so
//! much at once that each stalled commits for 100–300 ms; every 5 s kept p99 around 16–26 ms.
//! (Those measurements were made while the log never restarted; see below.)
//!
//! A checkpoint alone does not keep the log small: SQLite starts writing the log from its
//! beginning again only when a write transaction begins with every frame already copied, and
//! under a steady stream of commits that never happens, because commits land while the
//! checkpoint runs. The log then grew without bound (2.4 GB in a 20-second ingest bench; at any
//! steady load, given time). So once the log is past [`LOG_RESTART_BYTES`], the checkpointer
//! copies again what arrived during its first pass and asks the committer, through
//! [`LogRestart`], to copy the little left between two of its batches: its next transaction
//! then finds the log fully copied and restarts it. If a reader still holds an old snapshot at
//! that moment, the restart waits for the next round.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How often the log is checkpointed (see the module documentation for why 5 s).
pub(crate) const INTERVAL: Duration = Duration::from_secs(5);
/// Size the log file is truncated back to when it restarts, bytes. Truncation happens inside
/// the committer's first commit after the restart: cutting a log of 600 MB (5 s of the ingest
/// bench at 50,000 observations/s) back to 64 MiB there stalled commits enough to put ingest's
/// p99 at 270–380 ms; with 1 GiB the file stays allocated under load and is overwritten.
const LOG_SIZE_LIMIT: i64 = 1024 * 1024 * 1024;
/// A log past this size, bytes, is restarted after the checkpoint (see the module documentation).
pub(crate) const LOG_RESTART_BYTES: i64 = 256 * 1024 * 1024;

/// The checkpointer's request to the committer to let the log restart.
#[derive(Debug, Default)]
pub(crate) struct LogRestart {
    requested: AtomicBool,
}

impl LogRestart {
    fn request(&self) {
        self.requested.store(true, Ordering::Relaxed);
    }

    /// Whether a restart was requested since the last call.
    fn take(&self) -> bool {
        self.requested.swap(false, Ordering::Relaxed)
    }

    /// Called by the committer between batches: if a restart was requested, copies the frames
    /// committed since the checkpointer's last pass, so that its next transaction restarts
    /// the log.
    pub(crate) fn catch_up(&self, connection: &Connection) {
        if self.take() {
            // Best effort, like the checkpointer: a failure leaves the log to the next round.
            let _ = passive_checkpoint(connection);
        }
    }
}

/// A passive checkpoint (it copies what no reader still needs, waiting for no one): frames in
/// the log, and frames copied.
fn passive_checkpoint(connection: &Connection) -> rusqlite::Result<(i64, i64)> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

/// Turns automatic checkpoints off for `connection`: the checkpointer thread does them.
pub(crate) fn leave_checkpoints_to_the_checkpointer(
    connection: &Connection,
) -> Result<(), StoreError> {
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    connection.pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)?;
    Ok(())
}

/// The checkpointer thread; it stops (after a last checkpoint) when this is dropped.
pub(crate) struct Checkpointer {
    _stop: Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` with a connection of its own.
    /// It checkpoints every `interval`; when the log has grown past `restart_bytes`, it asks
    /// the committer through `restart` to let it restart.
    pub(crate) fn start(
        path: &Path,
        interval: Duration,
        restart_bytes: i64,
        restart: Arc<LogRestart>,
    ) -> Result<Checkpointer, StoreError> {
        let connection = super::connect(path)?;
        leave_checkpoints_to_the_checkpointer(&connection)?;
        let page_size: i64 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
        let restart_frames = restart_bytes / page_size.max(512);
        let (stop, stopped) = channel();
        std::thread::Builder::new()
            .name("vigil-wal".into())
            .spawn(move || run(&connection, &stopped, interval, &restart, restart_frames))
            .map_err(|source| StoreError::File {
                path: "checkpointer thread".into(),
                source,
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn run(
    connection: &Connection,
    stopped: &Receiver<()>,
    interval: Duration,
    restart: &LogRestart,
    restart_frames: i64,
) {
    loop {
        let last = matches!(
            stopped.recv_timeout(interval),
            Ok(()) | Err(RecvTimeoutError::Disconnected)
        );
        // Not logged: a failed checkpoint (a reader holding old frames, mostly) only lets the
        // log grow until the next one succeeds.
        if let Ok((frames, _)) = passive_checkpoint(connection)
            && frames > restart_frames
            && passive_checkpoint(connection).is_ok()
        {
            // The second pass copied what was committed during the first; the committer copies
            // the rest between two batches (see the module documentation).
            restart.request();
        }
        if last {
            return;
        }
    }
}
