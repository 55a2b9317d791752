//! Vigil's configuration.
//!
//! One TOML file, `vigil.toml` in the data directory, holds the settings; an environment
//! variable `VIGIL_<SECTION>_<KEY>` overrides any key (`VIGIL_LOG_LEVEL=debug` overrides
//! `log.level`). Loading validates everything at once and stops at the first problem with an
//! error that names the key, the value, where the value came from and what is wrong.
//!
//! Keys are declared once in [`KEYS`]; the file written by `vigil init` is [`DEFAULT_CONFIG`],
//! and the tests hold that both say the same thing.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

mod keys;

pub use keys::{KEYS, KeySpec};

/// The configuration file's name inside the data directory.
pub const CONFIG_FILE: &str = "vigil.toml";

/// Environment variables that start with `VIGIL_` but are not configuration keys.
pub const NON_KEY_VARIABLES: &[&str] = &["VIGIL_DATA_DIR", "VIGIL_KEYRING"];

/// Largest configuration file read, in bytes. A configuration is a few kilobytes; anything
/// larger is a mistake (a wrong path, a log file) and is refused rather than read into memory.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The commented configuration that `vigil init` writes.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Logging.
    pub log: LogConfig,
    /// The hub's identity and listeners.
    pub hub: HubConfig,
    /// Telemetry ingest.
    pub ingest: IngestConfig,
    /// Device certificates and enrolment.
    pub pki: PkiConfig,
    /// People's sign-in and sessions.
    pub access: AccessConfig,
    /// The FHIR API.
    pub fhir: FhirConfig,
    /// Sign-in through the hospital's OpenID Connect provider.
    pub oidc: OidcConfig,
}

/// The `[oidc]` section: sign-in through the hospital's OpenID Connect provider, off while
/// `issuer` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcConfig {
    /// The provider's issuer identifier (`https://…`; `http://` only on a loopback address);
    /// empty when OIDC is off.
    pub issuer: String,
    /// The hub's `client_id` at the provider.
    pub client_id: String,
    /// The hub's client secret at the provider.
    pub client_secret: Secret,
    /// Where the provider sends the browser back: the hub's `/api/v1/oidc/callback`.
    pub redirect_uri: String,
    /// Which ID-token claim names the Vigil user.
    pub username_claim: UsernameClaim,
    /// When set, a claim `name@<domain>` names user `name`; other domains are refused.
    pub username_domain: String,
    /// An `acr` value that means multi-factor authentication at this provider; empty when only
    /// `amr` counts.
    pub mfa_acr: String,
    /// The PEM file of the CA that signs the provider's certificate; `None` for the system roots.
    pub ca_file: Option<PathBuf>,
}

impl OidcConfig {
    /// Whether sign-in through a provider is configured.
    pub fn enabled(&self) -> bool {
        !self.issuer.is_empty()
    }
}

/// Which ID-token claim names the Vigil user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UsernameClaim {
    /// `preferred_username`.
    #[default]
    PreferredUsername,
    /// `email`.
    Email,
    /// `sub`, the provider's stable identifier.
    Sub,
}

/// What a secret's value is shown as in errors and in the values in force.
pub const REDACTED: &str = "\"[redacted]\"";

/// Keys whose values are secrets: never printed (`vigil config check`) nor repeated in errors.
pub const SECRET_KEYS: &[&str] = &["oidc.client_secret"];

/// A configured secret; its `Debug` does not print it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The `[access]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// A session ends this many hours after sign-in, used or not.
    pub session_hours: u32,
    /// A session unused for this many minutes ends (automatic logoff).
    pub idle_minutes: u32,
    /// How long a break-glass grant lasts, minutes.
    pub break_glass_minutes: u32,
    /// Failed sign-ins within `lockout_minutes` that lock an account.
    pub lockout_failures: u32,
    /// The window for counting failures, and how long a lock lasts, minutes.
    pub lockout_minutes: u32,
    /// Failed sign-ins from one network address (an IPv6 /64) within `address_minutes`, on any
    /// accounts, after which that address is refused (password spraying); 0 refuses none.
    pub address_failures: u32,
    /// The window for counting an address's failures, and how long it is refused, minutes.
    pub address_minutes: u32,
}

/// The `[fhir]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirConfig {
    /// The `Identifier.system` of the hospital's medical record numbers.
    pub mrn_system: String,
}

/// The `[ingest]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// Largest difference between a reading's time and the hub's clock, in seconds.
    pub max_clock_skew_seconds: u32,
    /// Messages per second a device may send, sustained.
    pub messages_per_second: u32,
    /// Messages a device may send at once.
    pub burst: u32,
}

/// The `[hub]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// The hospital's name, in the CA certificate.
    pub organization: String,
    /// Host names and IP addresses the hub is reached at, besides `localhost` and `127.0.0.1`.
    pub hostnames: Vec<String>,
    /// Where the HTTPS listener (enrolment, renewal, CRL, observations) binds.
    pub https_listen: std::net::SocketAddr,
    /// Where the MQTT-over-TLS listener binds.
    pub mqtt_listen: std::net::SocketAddr,
    /// Connections each listener serves at once; more are closed on arrival.
    pub max_connections: u32,
    /// How long an HTTPS connection may wait for its next request before it is closed.
    pub http_idle_seconds: u32,
}

impl HubConfig {
    /// Every name the hub's server certificate carries: `localhost`, `127.0.0.1`, `::1`, then
    /// the configured names, without duplicates.
    pub fn certificate_names(&self) -> Vec<String> {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        for name in &self.hostnames {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

/// The `[pki]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiConfig {
    /// Lifetime of a device certificate, in days.
    pub device_certificate_days: u32,
    /// Lifetime of an enrolment token, in hours.
    pub enrolment_token_hours: u32,
}

/// The `[log]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Least severe level written.
    pub level: LogLevel,
    /// Output format.
    pub format: LogFormat,
}

/// Log levels, from the most to the least verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything, including per-message traces.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something worth a look.
    Warn,
    /// Something failed.
    Error,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogLevel {
    /// The level's name as the configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("the default"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("{} is larger than {MAX_CONFIG_BYTES} bytes; is it really a configuration file?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not valid TOML.
    #[error("{} is not valid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file has a key Vigil does not know (often a typo).
    #[error("unknown key `{key}` in {origin}{hint}")]
    UnknownKey {
        /// The dotted key.
        key: String,
        /// Where it was found.
        origin: Source,
        /// A suggestion, if a known key is close.
        hint: String,
    },
    /// A key has a value that is not allowed.
    #[error("`{key}` = {value} (from {origin}): {problem}")]
    Invalid {
        /// The dotted key.
        key: &'static str,
        /// The value as written, or [`REDACTED`] for a secret.
        value: String,
        /// Where it came from.
        origin: Source,
        /// What is wrong and what would be right.
        problem: String,
    },
}

/// A loaded configuration, with anything worth a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Every key's value in force and where it came from, in [`KEYS`] order.
    pub effective: Vec<Effective>,
    /// Things that did not stop loading but deserve a look (an unknown `VIGIL_*` variable).
    pub warnings: Vec<String>,
}

/// One key's value in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The dotted key.
    pub key: &'static str,
    /// The value, written as TOML.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

/// A value and where it came from, before it is typed.
#[derive(Debug, Clone)]
struct Raw {
    value: toml::Value,
    source: Source,
}

/// Loads `vigil.toml` from `data_dir` and applies `VIGIL_*` overrides from `env`.
///
/// A missing file is an error: `vigil init` creates it, and running with silent defaults in a
/// directory that was never initialised hides mistakes.
pub fn load(
    data_dir: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let path = data_dir.join(CONFIG_FILE);
    let text = read_limited(&path)?;
    load_from_str(&text, Source::File(path), env)
}

fn read_limited(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let read_error = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

/// Parses configuration text and applies `VIGIL_*` overrides from `env`.
pub fn load_from_str(
    text: &str,
    file: Source,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let path = match &file {
        Source::File(path) => path.clone(),
        Source::Default | Source::Env(_) => PathBuf::from(CONFIG_FILE),
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path,
            message: e.to_string().trim_end().to_owned(),
        })?;

    let mut raw: BTreeMap<&'static str, Raw> = BTreeMap::new();
    collect_file_keys(&table, "", &file, &mut raw)?;

    let mut warnings = Vec::new();
    for (var, text) in env {
        if !var.starts_with("VIGIL_") || NON_KEY_VARIABLES.contains(&var.as_str()) {
            continue;
        }
        match KEYS.iter().find(|k| k.env == var) {
            Some(key) => {
                raw.insert(
                    key.path,
                    Raw {
                        value: env_value(&text),
                        source: Source::Env(key.env),
                    },
                );
            }
            None => warnings.push(format!(
                "environment variable {var} is not a Vigil setting and is ignored{}",
                suggest(&var, KEYS.iter().map(|k| k.env))
            )),
        }
    }

    let config = keys::build(&raw)?;
    let effective = KEYS
        .iter()
        .map(|key| {
            let raw = keys::value_of(&raw, key.path);
            let set = raw.value.as_str().is_none_or(|text| !text.is_empty());
            Effective {
                key: key.path,
                value: if SECRET_KEYS.contains(&key.path) && set {
                    REDACTED.to_owned()
                } else {
                    raw.value.to_string()
                },
                source: raw.source,
            }
        })
        .collect();
    Ok(Loaded {
        config,
        effective,
        warnings,
    })
}

/// Walks the parsed file, refusing keys that are not in [`KEYS`].
fn collect_file_keys(
    table: &toml::Table,
    prefix: &str,
    file: &Source,
    raw: &mut BTreeMap<&'static str, Raw>,
) -> Result<(), ConfigError> {
    for (name, value) in table {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if let Some(key) = KEYS.iter().find(|k| k.path == path) {
            raw.insert(
                key.path,
                Raw {
                    value: value.clone(),
                    source: file.clone(),
                },
            );
        } else if let (toml::Value::Table(section), true) = (
            value,
            KEYS.iter().any(|k| k.path.starts_with(&format!("{path}."))),
        ) {
            collect_file_keys(section, &path, file, raw)?;
        } else {
            return Err(ConfigError::UnknownKey {
                hint: suggest(&path, KEYS.iter().map(|k| k.path)),
                key: path,
                origin: file.clone(),
            });
        }
    }
    Ok(())
}

/// An environment value is read as a TOML value when it is one (`30`, `true`, `["a", "b"]`),
/// and as a plain string otherwise (`debug`), so that strings need no quotes.
fn env_value(text: &str) -> toml::Value {
    format!("v = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

/// ", did you mean `x`?" when a known name is within two edits of `wrong`.
fn suggest<'a>(wrong: &str, known: impl Iterator<Item = &'a str>) -> String {
    known
        .map(|k| (edit_distance(wrong, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;
