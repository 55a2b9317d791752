//! The embedded store: one SQLite file in WAL mode.
//!
//! `synchronous=FULL`: a transaction is on disk when `COMMIT` returns, which is what "durably
//! stored" means for the hub. `busy_timeout` lets the `vigil` command line and a running hub
//! share the file. `secure_delete` overwrites deleted content, so an erased patient's data key
//! does not linger in free pages. The file is created 0600 before SQLite opens it (SQLite gives
//! its `-wal` and `-shm` files the same mode).
//!
//! Observations are written by one committer thread with its own connection ([`committer`]),
//! behind the intake log when this process holds it ([`intake_stage`], ADR 0014); everything
//! else goes through a shared connection.

mod access;
mod audit_log;
mod budget;
mod clinical;
mod committer;
pub(crate) mod intake_record;
mod intake_stage;
mod outbox;
mod pages;
mod people;
mod registry;
pub mod verify;
mod wal;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;
use vigil_model::Timestamp;

use crate::seal::KeyEncryptionKeys;
use crate::{Completion, Logged, StoreError};

use clinical::Sealer;
pub use committer::CommitSettings;
use committer::{Committer, PreparedRow};
pub use intake_stage::INTAKE_DIR;
use intake_stage::IntakeStage;

/// The database file's name inside the data directory.
pub const DATABASE_FILE: &str = "vigil.db";

/// The schema, one script per version: a database at version `n` runs the scripts after `n`.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
    include_str!("schema_4.sql"),
    include_str!("schema_5.sql"),
    include_str!("schema_6.sql"),
];
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The SQLite store.
pub struct SqliteStore {
    connection: Mutex<Connection>,
    sealer: Arc<Sealer>,
    // Dropped in this order: the intake thread finishes, then the committer, then the last
    // checkpoint.
    writes: Writes,
    queued: Arc<budget::QueueBudget>,
    _checkpointer: wal::Checkpointer,
}

/// Where observations go.
enum Writes {
    /// Through the intake log, then the committer (this process holds the log).
    Logged(IntakeStage),
    /// Straight to the committer (another process holds the intake log).
    Direct(Committer),
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `vigil.db` in `data_dir` with default commit settings, and
    /// brings its schema up to date. `keys` wraps and unwraps patients' data keys.
    pub fn open(
        data_dir: &Path,
        keys: Arc<dyn KeyEncryptionKeys>,
    ) -> Result<SqliteStore, StoreError> {
        Self::open_with(data_dir, keys, CommitSettings::default())
    }

    /// Like [`SqliteStore::open`], with explicit group-commit settings.
    pub fn open_with(
        data_dir: &Path,
        keys: Arc<dyn KeyEncryptionKeys>,
        settings: CommitSettings,
    ) -> Result<SqliteStore, StoreError> {
        let path = data_dir.join(DATABASE_FILE);
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| StoreError::File {
                path: path.clone(),
                source,
            })?;
        let connection = connect(&path)?;
        migrate(&connection)?;
        wal::leave_checkpoints_to_the_checkpointer(&connection)?;
        let sealer = Arc::new(Sealer::new(keys));
        let mut writer = connect(&path)?;
        // The committer writes most of the data: give it a page cache that holds the indexes'
        // hot pages (64 MiB; SQLite's default is 2 MiB).
        writer.pragma_update(None, "cache_size", -65_536)?;
        wal::leave_checkpoints_to_the_checkpointer(&writer)?;
        let intake = IntakeStage::open(data_dir, &mut writer, settings.intake_segment_bytes)?;
        let restart = Arc::new(wal::LogRestart::default());
        let progress = intake.as_ref().map(|log| Arc::clone(&log.progress));
        let committer = Committer::start(writer, settings, Arc::clone(&restart), progress)?;
        let writes = match intake {
            Some(log) => Writes::Logged(IntakeStage::start(log, committer, settings.queue)?),
            None => Writes::Direct(committer),
        };
        let checkpointer = wal::Checkpointer::start(
            &path,
            settings.checkpoint_interval,
            settings.log_restart_bytes,
            restart,
        )?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
            sealer,
            writes,
            queued: budget::QueueBudget::new(settings.queue_bytes),
            _checkpointer: checkpointer,
        })
    }

    /// Queues prepared rows: `logged` (if any) runs once they are durable, `applied` once they
    /// are in the database. Without the intake log both are the database commit.
    fn submit_rows(&self, rows: Vec<PreparedRow>, logged: Option<Logged>, applied: Completion) {
        // A submission too large for one record (only bulk loads make one) is not logged.
        let record = match &self.writes {
            Writes::Logged(_) => intake_record::encode(&rows).ok(),
            Writes::Direct(_) => None,
        };
        let Some(charge) = self.queued.take(budget::cost(&rows, record.as_deref())) else {
            return refuse(logged, applied, StoreError::Overloaded);
        };
        // The bytes are given back once the submission is done with, however it ended.
        let applied: Completion = Box::new(move |result| {
            drop(charge);
            applied(result);
        });
        match &self.writes {
            Writes::Logged(stage) => stage.submit(rows, record, logged, applied),
            Writes::Direct(committer) => {
                let applied = match logged {
                    None => applied,
                    Some(logged) => intake_stage::told_logged_once_applied(logged, applied),
                };
                committer.submit(rows, applied);
            }
        }
    }

    /// The read barrier: waits until every observation acknowledged before the call is in the
    /// database (ADR 0014).
    pub(crate) fn caught_up(&self) -> Result<(), StoreError> {
        match &self.writes {
            Writes::Logged(stage) => stage.wait_for_applied(),
            Writes::Direct(_) => Ok(()),
        }
    }

    pub(crate) fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (a transaction that
        // did not commit rolls back), so a poisoned lock is safe to keep using.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Tells a submission's listeners that it was refused with `error`.
fn refuse(logged: Option<Logged>, applied: Completion, error: StoreError) {
    if let Some(logged) = logged {
        logged(Err(echo(&error)));
    }
    applied(Err(error));
}

/// The same refusal for a second listener (`StoreError` holds I/O errors, so is not `Clone`).
fn echo(error: &StoreError) -> StoreError {
    match error {
        StoreError::Overloaded => StoreError::Overloaded,
        StoreError::CommitterStopped => StoreError::CommitterStopped,
        StoreError::BatchFailed(message) => StoreError::BatchFailed(message.clone()),
        StoreError::Refused { patient, reason } => StoreError::Refused {
            patient: patient.clone(),
            reason: reason.clone(),
        },
        other => StoreError::BatchFailed(other.to_string()),
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", true)?;
    connection.pragma_update(None, "secure_delete", true)?;
    Ok(connection)
}

fn migrate(connection: &Connection) -> Result<(), StoreError> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (done, script) in MIGRATIONS.iter().enumerate() {
        let next = i64::try_from(done + 1).unwrap_or(i64::MAX);
        if version < next {
            // user_version changes inside the transaction: a crash leaves the old version.
            connection.execute_batch(&format!(
                "BEGIN IMMEDIATE; {script} PRAGMA user_version = {next}; COMMIT;"
            ))?;
        }
    }
    Ok(())
}

pub(crate) fn millis(t: Timestamp) -> i64 {
    t.unix_millis()
}

pub(crate) fn timestamp(millis: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_millis(millis).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Whether `table` has a row with this `id` (tables whose key column is `id`).
pub(crate) fn row_exists(
    connection: &Connection,
    table: &'static str,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(connection.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE id = ?1)"),
        [id],
        |row| row.get(0),
    )?)
}

pub(crate) fn is_constraint(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

#[cfg(test)]
mod tests;
