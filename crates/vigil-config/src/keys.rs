//! The configuration keys: their names, environment variables, and how each is typed and
//! checked.

use std::collections::BTreeMap;

use std::net::SocketAddr;

use crate::{
    AccessConfig, Config, ConfigError, FhirConfig, HubConfig, IngestConfig, LogConfig, LogFormat,
    LogLevel, OidcConfig, PkiConfig, Raw, Secret, Source, UsernameClaim,
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
        path: "hub.http_idle_seconds",
        env: "VIGIL_HUB_HTTP_IDLE_SECONDS",
        default: "90",
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
        path: "access.address_failures",
        env: "VIGIL_ACCESS_ADDRESS_FAILURES",
        default: "30",
    },
    KeySpec {
        path: "access.address_minutes",
        env: "VIGIL_ACCESS_ADDRESS_MINUTES",
        default: "15",
    },
    KeySpec {
        path: "fhir.mrn_system",
        env: "VIGIL_FHIR_MRN_SYSTEM",
        default: "\"urn:vigil:mrn\"",
    },
    KeySpec {
        path: "oidc.issuer",
        env: "VIGIL_OIDC_ISSUER",
        default: "\"\"",
    },
    KeySpec {
        path: "oidc.client_id",
        env: "VIGIL_OIDC_CLIENT_ID",
        default: "\"\"",
    },
    KeySpec {
        path: "oidc.client_secret",
        env: "VIGIL_OIDC_CLIENT_SECRET",
        default: "\"\"",
    },
    KeySpec {
        path: "oidc.redirect_uri",
        env: "VIGIL_OIDC_REDIRECT_URI",
        default: "\"\"",
    },
    KeySpec {
        path: "oidc.username_claim",
        env: "VIGIL_OIDC_USERNAME_CLAIM",
        default: "\"preferred_username\"",
    },
    KeySpec {
        path: "oidc.username_domain",
        env: "VIGIL_OIDC_USERNAME_DOMAIN",
        default: "\"\"",
    },
    KeySpec {
        path: "oidc.mfa_acr",
        env: "VIGIL_OIDC_MFA_ACR",
        default: "\"\"",
    },
    KeySpec {
        path: "oidc.ca_file",
        env: "VIGIL_OIDC_CA_FILE",
        default: "\"\"",
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
    let http_idle_seconds = integer(raw, "hub.http_idle_seconds", 10..=3600)?;
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
    let address_failures = integer(raw, "access.address_failures", 0..=10_000)?;
    let address_minutes = integer(raw, "access.address_minutes", 1..=24 * 60)?;
    let mrn_system = uri(raw, "fhir.mrn_system")?;
    let oidc = oidc(raw)?;
    Ok(Config {
        log: LogConfig { level, format },
        hub: HubConfig {
            organization,
            hostnames,
            https_listen,
            mqtt_listen,
            max_connections: u32::try_from(max_connections).unwrap_or(16_384),
            http_idle_seconds: u32::try_from(http_idle_seconds).unwrap_or(90),
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
            address_failures: u32::try_from(address_failures).unwrap_or(30),
            address_minutes: u32::try_from(address_minutes).unwrap_or(15),
        },
        fhir: FhirConfig { mrn_system },
        oidc,
    })
}

/// The `[oidc]` section: off while `oidc.issuer` is empty; when set, the client's keys are
/// required.
fn oidc(raw: &BTreeMap<&'static str, Raw>) -> Result<OidcConfig, ConfigError> {
    let username_claim = one_of(
        raw,
        "oidc.username_claim",
        &[
            ("preferred_username", UsernameClaim::PreferredUsername),
            ("email", UsernameClaim::Email),
            ("sub", UsernameClaim::Sub),
        ],
    )?;
    let issuer = text(raw, "oidc.issuer", 0..=MAX_URL_LEN)?;
    if issuer.is_empty() {
        return Ok(OidcConfig {
            username_claim,
            ..OidcConfig::default()
        });
    }
    web_url(raw, "oidc.issuer", true)?;
    let redirect_uri = text(raw, "oidc.redirect_uri", 0..=MAX_URL_LEN)?;
    web_url(raw, "oidc.redirect_uri", false)?;
    let username_domain = text(raw, "oidc.username_domain", 0..=253)?;
    if !username_domain.is_empty() && !is_host_name(&username_domain) {
        return Err(invalid(
            "oidc.username_domain",
            &value_of(raw, "oidc.username_domain"),
            "expected a DNS domain such as \"hospital.example\", or \"\"".into(),
        ));
    }
    let ca_file = text(raw, "oidc.ca_file", 0..=4096)?;
    Ok(OidcConfig {
        issuer,
        client_id: text(raw, "oidc.client_id", 1..=255)?,
        client_secret: secret(raw, "oidc.client_secret", 1..=512)?,
        redirect_uri,
        username_claim,
        username_domain: username_domain.to_ascii_lowercase(),
        mfa_acr: text(raw, "oidc.mfa_acr", 0..=255)?,
        ca_file: (!ca_file.is_empty()).then(|| ca_file.into()),
    })
}

/// The longest URL accepted in the configuration.
const MAX_URL_LEN: usize = 2048;

/// An `https://` URL without user information, query or fragment; `http://` too when
/// `loopback_http` and the host is a loopback address or `localhost` (a development provider).
fn web_url(
    raw: &BTreeMap<&'static str, Raw>,
    key: &'static str,
    loopback_http: bool,
) -> Result<(), ConfigError> {
    let value = value_of(raw, key);
    let text = value.value.as_str().unwrap_or("");
    let problem = if loopback_http {
        "expected an https:// URL without query or fragment (http:// only on 127.0.0.1, ::1 or localhost)"
    } else {
        "expected an https:// URL without query or fragment"
    };
    let (https, rest) = match (text.strip_prefix("https://"), text.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return Err(invalid(key, &value, problem.into())),
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').and_then(|(host, port)| {
            host.parse::<std::net::Ipv6Addr>()
                .ok()
                .map(|_| (host, port.strip_prefix(':')))
                .filter(|_| port.is_empty() || port.starts_with(':'))
        }),
        None => Some(match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }),
    };
    let well_formed = host.is_some_and(|(host, port)| {
        (host.contains(':') || is_host_name(host))
            && port.is_none_or(|port| port.parse::<u16>().is_ok_and(|p| p > 0))
    }) && !text.contains(['?', '#', '@', '\\'])
        && !text.chars().any(|c| c.is_control() || c.is_whitespace());
    let loopback = host.is_some_and(|(host, _)| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if well_formed && (https || (loopback_http && loopback)) {
        Ok(())
    } else {
        Err(invalid(key, &value, problem.into()))
    }
}

/// A secret string of `length` characters without control characters. Its value is never
/// repeated in an error.
fn secret(
    raw: &BTreeMap<&'static str, Raw>,
    key: &'static str,
    length: std::ops::RangeInclusive<usize>,
) -> Result<Secret, ConfigError> {
    let value = value_of(raw, key);
    let fits = value.value.as_str().filter(|text| {
        length.contains(&text.chars().count()) && !text.chars().any(char::is_control)
    });
    match fits {
        Some(text) => Ok(Secret::new(text.to_owned())),
        None => Err(ConfigError::Invalid {
            key,
            value: crate::REDACTED.to_owned(),
            origin: value.source,
            problem: format!(
                "expected a string of {} to {} characters without control characters",
                length.start(),
                length.end()
            ),
        }),
    }
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
