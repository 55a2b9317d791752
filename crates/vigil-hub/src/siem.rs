//! Alert export (`siem.toml` in the data directory): syslog (RFC 5424, CEF or JSON) over
//! UDP, TCP or TLS, and signed webhooks, through `vigil-siem`'s dispatcher. A separate file
//! from `vigil.toml` because it holds an array of sinks and webhook secrets: it must be 0600.
//!
//! Export survives restarts and crashes: the store keeps, per sink, the highest alert id the
//! sink has finished with ([`StoreProgress`]), and at start each sink is handed, oldest first,
//! the stored alerts after it (at most its queue's length, the newest). A sink named for the
//! first time starts from the alerts raised after it was added. Delivery stays at least once:
//! an alert delivered just before a crash, whose progress was not yet recorded, is delivered
//! again (receivers deduplicate on the alert id).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil_siem::{Dispatcher, DispatcherHandle, Progress, SiemConfig};
use vigil_store::{Store, StoreError};

/// The export file's name in the data directory.
pub const SIEM_FILE: &str = "siem.toml";

/// Largest export file read.
const MAX_BYTES: u64 = 256 * 1024;

/// Why alert export could not start.
#[derive(Debug, thiserror::Error)]
pub enum SiemFileError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Others than its owner may read it (it may hold webhook secrets).
    #[error("{0} must not be readable by group or others (chmod 600): it may hold webhook secrets")]
    Permissions(PathBuf),
    /// Too large.
    #[error("{0} is larger than 256 KiB")]
    TooLarge(PathBuf),
    /// Not valid TOML, or not the export's keys (the message never quotes the file: it may
    /// hold secrets).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The store could not say, or record, how far export has got.
    #[error("alert export: {0}")]
    Store(#[from] StoreError),
    /// A sink cannot be built (a CA file missing, a bad address).
    #[error("{path}: {message}")]
    Sink {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The file: one `[siem]` table with its `[[siem.sinks]]`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    siem: SiemConfig,
}

/// Reads and validates `siem.toml` of a data directory; `None` when there is none.
pub fn read_config(data_dir: &Path) -> Result<Option<SiemConfig>, SiemFileError> {
    let path = data_dir.join(SIEM_FILE);
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SiemFileError::Read { path, source }),
    };
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(SiemFileError::Permissions(path));
    }
    if metadata.len() > MAX_BYTES {
        return Err(SiemFileError::TooLarge(path));
    }
    let text = std::fs::read_to_string(&path).map_err(|source| SiemFileError::Read {
        path: path.clone(),
        source,
    })?;
    let file: File = toml::from_str(&text).map_err(|error| SiemFileError::Invalid {
        path: path.clone(),
        // `message()` leaves out the quoted line, which could hold a secret.
        message: error.message().to_owned(),
    })?;
    let config = file.siem;
    config.validate().map_err(|error| SiemFileError::Invalid {
        path: path.clone(),
        message: error.to_string(),
    })?;
    Ok(Some(config))
}

/// Records each sink's progress in the store.
struct StoreProgress {
    store: Arc<dyn Store>,
}

impl Progress for StoreProgress {
    fn finished(&self, sink: &str, id: u64) {
        if let Err(error) = self.store.set_export_cursor(sink, id) {
            // The alert is delivered; only a restart before the next one would repeat it.
            tracing::warn!(sink, alert = id, %error, "could not record alert export progress");
        }
    }
}

/// Starts export for a data directory, if it has a `siem.toml`, and hands each sink the stored
/// alerts it is still owed. Call it before the hub serves, so that no alert is raised between
/// the reading of what is owed and the start of live export.
pub fn start(
    data_dir: &Path,
    store: &Arc<dyn Store>,
) -> Result<Option<DispatcherHandle>, SiemFileError> {
    let Some(config) = read_config(data_dir)? else {
        return Ok(None);
    };
    let path = data_dir.join(SIEM_FILE);
    let sinks = config.sinks().map_err(|error| SiemFileError::Sink {
        path: path.clone(),
        message: error.to_string(),
    })?;
    let count = sinks.len();
    let owed: Vec<(String, usize)> = sinks
        .iter()
        .map(|sink| (sink.name().to_owned(), sink.queue()))
        .collect();
    let progress = Arc::new(StoreProgress {
        store: Arc::clone(store),
    });
    let handle =
        Dispatcher::start_with_progress(sinks, progress).map_err(|error| SiemFileError::Sink {
            path,
            message: error.to_string(),
        })?;
    for (sink, capacity) in owed {
        resume(store.as_ref(), &handle, &sink, capacity)?;
    }
    tracing::info!(sinks = count, "alert export started");
    Ok(Some(handle))
}

/// Hands `sink` the stored alerts after its cursor; a new sink's cursor is the latest alert.
fn resume(
    store: &dyn Store,
    handle: &DispatcherHandle,
    sink: &str,
    capacity: usize,
) -> Result<(), SiemFileError> {
    let Some(cursor) = store.export_cursor(sink)? else {
        store.set_export_cursor(sink, store.last_alert_id()?)?;
        return Ok(());
    };
    let owed = store.alerts_after(cursor, capacity)?;
    let skipped = store
        .last_alert_id()?
        .saturating_sub(cursor)
        .saturating_sub(owed.len() as u64);
    if skipped > 0 {
        // Ids are dense, so this counts the alerts older than a full queue.
        tracing::warn!(
            sink,
            skipped,
            "alerts owed from before the restart exceed the sink's queue; the oldest are not exported"
        );
    }
    if !owed.is_empty() {
        tracing::info!(
            sink,
            alerts = owed.len(),
            "exporting alerts owed from before the restart"
        );
    }
    for stored in owed {
        handle.send_to(sink, stored.id, &stored.alert);
    }
    Ok(())
}
