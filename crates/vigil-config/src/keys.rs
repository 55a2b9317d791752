//! The configuration keys: their names, environment variables, and how each is typed and
//! checked.

use std::collections::BTreeMap;

use crate::{Config, ConfigError, LogConfig, LogFormat, LogLevel, Raw, Source};

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// Dotted path in the TOML file, e.g. `log.level`.
    pub path: &'static str,
    /// The environment variable that overrides it.
    pub env: &'static str,
    /// The default, as a TOML value.
    pub default: &'static str,
}

/// Every key Vigil reads.
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        path: "log.level",
        env: "VIGIL_LOG_LEVEL",
        default: "\"info\"",
    },
    KeySpec {
        path: "log.format",
        env: "VIGIL_LOG_FORMAT",
        default: "\"human\"",
    },
];

/// Types every key, filling in defaults, and checks each value.
pub(crate) fn build(raw: &BTreeMap<&'static str, Raw>) -> Result<Config, ConfigError> {
    let level = one_of(
        raw,
        "log.level",
        &[
            ("trace", LogLevel::Trace),
            ("debug", LogLevel::Debug),
            ("info", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("error", LogLevel::Error),
        ],
    )?;
    let format = one_of(
        raw,
        "log.format",
        &[("human", LogFormat::Human), ("json", LogFormat::Json)],
    )?;
    Ok(Config {
        log: LogConfig { level, format },
    })
}

/// The value of `key`, from the file or environment if set there, else the default.
pub(crate) fn value_of(raw: &BTreeMap<&'static str, Raw>, key: &'static str) -> Raw {
    raw.get(key).cloned().unwrap_or_else(|| Raw {
        value: KEYS
            .iter()
            .find(|k| k.path == key)
            .map_or(toml::Value::String(String::new()), |k| {
                crate::env_value(k.default)
            }),
        source: Source::Default,
    })
}

fn invalid(key: &'static str, raw: &Raw, problem: String) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: raw.value.to_string(),
        origin: raw.source.clone(),
        problem,
    }
}

/// A string key that must be one of a fixed set of words.
fn one_of<T: Copy>(
    raw: &BTreeMap<&'static str, Raw>,
    key: &'static str,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let value = value_of(raw, key);
    let names = choices
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    let Some(text) = value.value.as_str() else {
        return Err(invalid(
            key,
            &value,
            format!("expected a string, one of: {names}"),
        ));
    };
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| invalid(key, &value, format!("expected one of: {names}")))
}
