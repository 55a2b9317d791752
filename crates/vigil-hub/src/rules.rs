//! The security officer's rules file (`rules.toml` in the data directory): loaded at start,
//! watched, and swapped into the running detection engine when it changes and parses. A file
//! that does not parse is refused with every problem logged, and the rules in force stay.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use vigil_detect::rules::{MAX_FILE_BYTES, RuleSet, RulesError, RulesHandle};
use vigil_model::{Action, Actor, Outcome, ResourceKind};

use crate::audit::{Auditor, entry};

/// The rules file's name in the data directory.
pub const RULES_FILE: &str = "rules.toml";

/// How often the hub looks for a changed rules file.
pub const RULES_POLL: Duration = Duration::from_secs(1);

/// Why a rules file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesFileError {
    /// It cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It does not parse or validate.
    #[error("{path}: {error}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem.
        error: RulesError,
    },
}

/// Reads and validates a rules file (bounded: a larger file is refused without being read
/// whole).
pub fn read_rules(path: &Path) -> Result<RuleSet, RulesFileError> {
    let read_error = |source| RulesFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    RuleSet::parse_bytes(&bytes).map_err(|error| RulesFileError::Invalid {
        path: path.to_owned(),
        error,
    })
}

/// What the watcher compares to notice a change: the file's modification time and length.
pub type Stamp = Option<(SystemTime, u64)>;

/// The rules in force at start: the data directory's file if it exists and is valid, else
/// none (a problem is logged: the hub still runs its built-in detectors); with the file's
/// stamp as read, from which [`watch_rules`] starts (so a change made between the two is seen).
pub fn initial_rules(data_dir: &Path) -> (RuleSet, Stamp) {
    let path = data_dir.join(RULES_FILE);
    let seen = stamp(&path);
    if seen.is_none() {
        return (RuleSet::empty(), seen);
    }
    let rules = match read_rules(&path) {
        Ok(rules) => {
            tracing::info!(rules = rules.len(), path = %path.display(), "detection rules loaded");
            rules
        }
        Err(error) => {
            tracing::error!(%error, "detection rules refused; running without them until the file is fixed");
            RuleSet::empty()
        }
    };
    (rules, seen)
}

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// Watches the rules file and swaps valid new versions into `handle` (each change audited).
pub async fn watch_rules(
    data_dir: PathBuf,
    handle: RulesHandle,
    mut seen: Stamp,
    auditor: Auditor,
) {
    let path = data_dir.join(RULES_FILE);
    let mut ticker = tokio::time::interval(RULES_POLL);
    loop {
        ticker.tick().await;
        let now = stamp(&path);
        if now == seen {
            continue;
        }
        seen = now;
        let (outcome, reason) = if now.is_none() {
            handle.replace(RuleSet::empty());
            tracing::info!("rules file removed: no detection rules in force");
            (Outcome::Success, "rules file removed".to_owned())
        } else {
            let read_path = path.clone();
            match tokio::task::spawn_blocking(move || read_rules(&read_path)).await {
                Ok(Ok(rules)) => {
                    let count = rules.len();
                    let generation = handle.replace(rules);
                    tracing::info!(rules = count, generation, "detection rules reloaded");
                    (Outcome::Success, format!("{count} rules loaded"))
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "new detection rules refused; the previous rules stay in force");
                    (
                        Outcome::Failed,
                        "rules file refused; previous rules kept".to_owned(),
                    )
                }
                Err(error) => {
                    tracing::error!(%error, "rules reload failed");
                    continue;
                }
            }
        };
        auditor.record_later(entry(
            Actor::System,
            Action::Configure,
            ResourceKind::Configuration,
            RULES_FILE,
            outcome,
            Some(&reason),
        ));
    }
}
