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

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How often the log is checkpointed (see the module documentation for why 5 s).
const INTERVAL: Duration = Duration::from_secs(5);
/// Size the log file is truncated back to after a checkpoint that emptied it, bytes.
const LOG_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

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
    pub(crate) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let connection = super::connect(path)?;
        leave_checkpoints_to_the_checkpointer(&connection)?;
        let (stop, stopped) = channel();
        std::thread::Builder::new()
            .name("vigil-wal".into())
            .spawn(move || run(&connection, &stopped))
            .map_err(|source| StoreError::File {
                path: "checkpointer thread".into(),
                source,
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn run(connection: &Connection, stopped: &Receiver<()>) {
    loop {
        let last = matches!(
            stopped.recv_timeout(INTERVAL),
            Ok(()) | Err(RecvTimeoutError::Disconnected)
        );
        // PASSIVE: copies what no reader still needs, without waiting for anyone.
        let done: rusqlite::Result<(i64, i64, i64)> =
            connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            });
        if let Err(error) = done {
            // The store does not log (ADR: errors go to callers); a failed checkpoint only lets
            // the log grow until the next one succeeds.
            let _ = error;
        }
        if last {
            return;
        }
    }
}
