//! Alert export (`siem.toml` in the data directory): syslog (RFC 5424, CEF or JSON) over
//! UDP, TCP or TLS, and signed webhooks, through `vigil-siem`'s dispatcher. A separate file
//! from `vigil.toml` because it holds an array of sinks and webhook secrets: it must be 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use vigil_siem::{Dispatcher, DispatcherHandle, SiemConfig};

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

/// Starts export for a data directory, if it has a `siem.toml`.
pub fn start(data_dir: &Path) -> Result<Option<DispatcherHandle>, SiemFileError> {
    let Some(config) = read_config(data_dir)? else {
        return Ok(None);
    };
    let path = data_dir.join(SIEM_FILE);
    let sinks = config.sinks().map_err(|error| SiemFileError::Sink {
        path: path.clone(),
        message: error.to_string(),
    })?;
    let count = sinks.len();
    let handle = Dispatcher::start(sinks).map_err(|error| SiemFileError::Sink {
        path,
        message: error.to_string(),
    })?;
    tracing::info!(sinks = count, "alert export started");
    Ok(Some(handle))
}
