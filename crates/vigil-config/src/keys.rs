//! The configuration keys: their names, environment variables, and how each is typed and
//! checked.

use std::collections::BTreeMap;

use std::net::SocketAddr;

use crate::{
    AccessConfig, Config, ConfigError, FhirConfig, HubConfig, IngestConfig, LogConfig, LogFormat,
    LogLevel, PkiConfig, Raw, Source,
};

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
    KeySpec {
        path: "hub.organization",
        env: "VIGIL_HUB_ORGANIZATION",
        default: "\"Vigil Hospital\"",
    },
    KeySpec {
        path: "hub.hostnames",
        env: "VIGIL_HUB_HOSTNAMES",
        default: "[]",
    },
    KeySpec {
        path: "hub.https_listen",
        env: "VIGIL_HUB_HTTPS_LISTEN",
        default: "\"0.0.0.0:8443\"",
    },
    KeySpec {
        path: "hub.mqtt_listen",
        env: "VIGIL_HUB_MQTT_LISTEN",
        default: "\"0.0.0.0:8883\"",
    },
    KeySpec {
        path: "hub.max_connections",
        env: "VIGIL_HUB_MAX_CONNECTIONS",
        default: "16384",
    },
    KeySpec {
        path: "ingest.max_clock_skew_seconds",
        env: "VIGIL_INGEST_MAX_CLOCK_SKEW_SECONDS",
        default: "300",
    },
    KeySpec {
        path: "ingest.messages_per_second",
        env: "VIGIL_INGEST_MESSAGES_PER_SECOND",
        default: "20",
    },
    KeySpec {
        path: "ingest.burst",
        env: "VIGIL_INGEST_BURST",
        default: "40",
    },
    KeySpec {
        path: "pki.device_certificate_days",
        env: "VIGIL_PKI_DEVICE_CERTIFICATE_DAYS",
        default: "30",
    },
    KeySpec {
        path: "pki.enrolment_token_hours",
        env: "VIGIL_PKI_ENROLMENT_TOKEN_HOURS",
        default: "72",
    },
    KeySpec {
        path: "access.session_hours",
        env: "VIGIL_ACCESS_SESSION_HOURS",
        default: "8",
    },
    KeySpec {
        path: "access.idle_minutes",
        env: "VIGIL_ACCESS_IDLE_MINUTES",
        default: "15",
    },
    KeySpec {
        path: "access.break_glass_minutes",
        env: "VIGIL_ACCESS_BREAK_GLASS_MINUTES",
        default: "60",
    },
    KeySpec {
        path: "access.lockout_failures",
        env: "VIGIL_ACCESS_LOCKOUT_FAILURES",
        default: "5",
    },
    KeySpec {
        path: "access.lockout_minutes",
        env: "VIGIL_ACCESS_LOCKOUT_MINUTES",
        default: "15",
    },
    KeySpec {
        path: "fhir.mrn_system",
        env: "VIGIL_FHIR_MRN_SYSTEM",
        default: "\"urn:vigil:mrn\"",
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
    let organization = text(raw, "hub.organization", 1..=64)?;
    let hostnames = hostnames(raw, "hub.hostnames")?;
    let https_listen = socket_addr(raw, "hub.https_listen")?;
    let mqtt_listen = socket_addr(raw, "hub.mqtt_listen")?;
    let max_connections = integer(raw, "hub.max_connections", 1..=1_000_000)?;
    let max_clock_skew_seconds = integer(raw, "ingest.max_clock_skew_seconds", 1..=86_400)?;
    let messages_per_second = integer(raw, "ingest.messages_per_second", 1..=10_000)?;
    let burst = integer(raw, "ingest.burst", 1..=100_000)?;
    let device_certificate_days = integer(raw, "pki.device_certificate_days", 1..=397)?;
    let enrolment_token_hours = integer(raw, "pki.enrolment_token_hours", 1..=24 * 30)?;
    let session_hours = integer(raw, "access.session_hours", 1..=24)?;
    let idle_minutes = integer(raw, "access.idle_minutes", 1..=120)?;
    let break_glass_minutes = integer(raw, "access.break_glass_minutes", 5..=24 * 60)?;
    let lockout_failures = integer(raw, "access.lockout_failures", 3..=20)?;
    let lockout_minutes = integer(raw, "access.lockout_minutes", 1..=24 * 60)?;
    let mrn_system = uri(raw, "fhir.mrn_system")?;
    Ok(Config {
        log: LogConfig { level, format },
        hub: HubConfig {
            organization,
            hostnames,
            https_listen,
            mqtt_listen,
            max_connections: u32::try_from(max_connections).unwrap_or(16_384),
        },
        ingest: IngestConfig {
            max_clock_skew_seconds: u32::try_from(max_clock_skew_seconds).unwrap_or(300),
            messages_per_second: u32::try_from(messages_per_second).unwrap_or(20),
            burst: u32::try_from(burst).unwrap_or(40),
        },
        pki: PkiConfig {
            device_certificate_days: u32::try_from(device_certificate_days).unwrap_or(30),
            enrolment_token_hours: u32::try_from(enrolment_token_hours).unwrap_or(72),
        },
        access: AccessConfig {
            session_hours: u32::try_from(session_hours).unwrap_or(8),
            idle_minutes: u32::try_from(idle_minutes).unwrap_or(15),
            break_glass_minutes: u32::try_from(break_glass_minutes).unwrap_or(60),
            lockout_failures: u32::try_from(lockout_failures).unwrap_or(5),
            lockout_minutes: u32::try_from(lockout_minutes).unwrap_or(15),
        },
        fhir: FhirConfig { mrn_system },
    })
}

/// A string of `length` characters without control characters.
fn text(
    raw: &BTreeMap<&'static str, Raw>,
    key: &'static str,
    length: std::ops::RangeInclusive<usize>,
) -> Result<String, ConfigError> {
    let value = value_of(raw, key);
    let Some(text) = value.value.as_str() else {
        return Err(invalid(key, &value, "expected a string".into()));
    };
    if !length.contains(&text.chars().count()) || text.chars().any(char::is_control) {
        return Err(invalid(
            key,
            &value,
            format!(
                "expected {} to {} characters without control characters",
                length.start(),
                length.end()
            ),
        ));
    }
    Ok(text.to_owned())
}

/// An absolute URI (`scheme:rest`, RFC 3986), as FHIR's `Identifier.system` needs.
fn uri(raw: &BTreeMap<&'static str, Raw>, key: &'static str) -> Result<String, ConfigError> {
    let value = value_of(raw, key);
    let text = value.value.as_str().unwrap_or("");
    let scheme_ok = text.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if !scheme_ok || text.len() > 255 || text.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid(
            key,
            &value,
            "expected an absolute URI such as \"urn:oid:2.16.840.1.113883.19.5\" or \"https://hospital.example/mrn\"".into(),
        ));
    }
    Ok(text.to_owned())
}

/// An integer within `range`.
fn integer(
    raw: &BTreeMap<&'static str, Raw>,
    key: &'static str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ConfigError> {
    let value = value_of(raw, key);
    match value.value.as_integer() {
        Some(n) if range.contains(&n) => Ok(n),
        _ => Err(invalid(
            key,
            &value,
            format!(
                "expected a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// `host:port`, e.g. `0.0.0.0:8443` or `[::]:8443`.
fn socket_addr(
    raw: &BTreeMap<&'static str, Raw>,
    key: &'static str,
) -> Result<SocketAddr, ConfigError> {
    let value = value_of(raw, key);
    value
        .value
        .as_str()
        .and_then(|text| text.parse::<SocketAddr>().ok())
        .ok_or_else(|| {
            invalid(
                key,
                &value,
                "expected an IP address and port, e.g. \"0.0.0.0:8443\" or \"[::]:8443\"".into(),
            )
        })
}

/// A list of DNS names or IP addresses for the hub's certificate.
fn hostnames(
    raw: &BTreeMap<&'static str, Raw>,
    key: &'static str,
) -> Result<Vec<String>, ConfigError> {
    let value = value_of(raw, key);
    let problem =
        "expected a list of DNS names or IP addresses, e.g. [\"hub.ward7.example\", \"10.0.0.5\"]";
    let Some(items) = value.value.as_array() else {
        return Err(invalid(key, &value, problem.into()));
    };
    let mut names = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str() {
            Some(name) if is_host_name(name) => names.push(name.to_ascii_lowercase()),
            _ => {
                return Err(invalid(
                    key,
                    &value,
                    format!("{item} is not a DNS name or IP address; {problem}"),
                ));
            }
        }
    }
    Ok(names)
}

/// RFC 1123 host name (labels of letters, digits and hyphens, 1-63 characters, not starting or
/// ending with a hyphen, 253 characters in all) or an IP address.
fn is_host_name(name: &str) -> bool {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
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
