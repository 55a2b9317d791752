//! Configuration of the alert sinks, as the hub embeds it (`[siem]` with `[[siem.sinks]]`).
//!
//! ```toml
//! [siem]
//! hostname = "vigil-hub.example.org"   # HOSTNAME, CEF dvchost, JSON host; omitted: "-"
//! enterprise_number = 32473            # the SD-ID is vigil@<this>
//!
//! [[siem.sinks]]
//! name = "soc"
//! kind = "tls"                         # udp | tcp | tls | webhook
//! address = "siem.example.org:6514"
//! format = "cef"                       # cef | json (webhooks: json)
//! facility = "local4"
//! ca_file = "/etc/vigil/siem-ca.pem"
//!
//! [[siem.sinks]]
//! name = "pager"
//! kind = "webhook"
//! url = "https://hooks.example.org/vigil"
//! secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
//! ```
//!
//! Deserialising checks types and refuses unknown keys; [`SiemConfig::validate`] checks every
//! value and what each kind of sink needs, and names the key in its error. Values are not
//! repeated in errors (a secret could be among them).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::syslog::{self, DOCUMENTATION_PEN, Facility, Format, MIN_MESSAGE_BYTES};
use crate::webhook::Secret;

/// Largest UDP payload over IPv4 (65,535 less the IP and UDP headers).
pub const MAX_UDP_MESSAGE_BYTES: usize = 65_507;
/// Largest message over TCP or TLS.
pub const MAX_STREAM_MESSAGE_BYTES: usize = 1024 * 1024;
/// Default UDP message limit: fits one packet at IPv6's minimum MTU (1280), so it is never
/// fragmented on any path (RFC 5426 §3.2 asks receivers for 480, and 2048 if they can).
pub const DEFAULT_UDP_MESSAGE_BYTES: usize = 1180;
/// Default TCP/TLS message limit: what RFC 5425 §4.3.1 says a TLS receiver should accept.
pub const DEFAULT_STREAM_MESSAGE_BYTES: usize = 8192;

/// The `[siem]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiemConfig {
    /// The hub's name in every message (HOSTNAME, CEF `dvchost`, JSON `host`): its FQDN or
    /// address, 1 to 255 printable US-ASCII characters. Omitted: RFC 5424's NILVALUE `-`.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The private enterprise number of the SD-ID `vigil@<n>`; by default RFC 5612's 32473
    /// (see [`crate::syslog`]).
    #[serde(default = "default_enterprise_number")]
    pub enterprise_number: u32,
    /// Where alerts go.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
}

impl Default for SiemConfig {
    fn default() -> Self {
        SiemConfig {
            hostname: None,
            enterprise_number: DOCUMENTATION_PEN,
            sinks: Vec::new(),
        }
    }
}

/// How a sink is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Syslog over UDP (RFC 5426), one message per datagram.
    Udp,
    /// Syslog over TCP, octet counting (RFC 6587 §3.4.1).
    Tcp,
    /// Syslog over TLS (RFC 5425).
    Tls,
    /// HTTPS POST signed as Standard Webhooks.
    Webhook,
}

impl fmt::Display for SinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SinkKind::Udp => "udp",
            SinkKind::Tcp => "tcp",
            SinkKind::Tls => "tls",
            SinkKind::Webhook => "webhook",
        })
    }
}

/// One sink (`[[siem.sinks]]`). Keys that do not apply to its kind must be left out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// A name for logs and counters: 1 to 64 of `A-Z a-z 0-9 - _ .`, unique.
    pub name: String,
    /// How the sink is reached.
    pub kind: SinkKind,
    /// Syslog sinks: `host:port` (`[v6]:port` for an IPv6 literal), resolved at each connection.
    #[serde(default)]
    pub address: Option<String>,
    /// Webhooks: the `https://` URL to POST to.
    #[serde(default)]
    pub url: Option<String>,
    /// The MSG of a syslog sink: `cef` (default) or `json`; webhooks always send JSON.
    #[serde(default)]
    pub format: Option<Format>,
    /// Syslog sinks: the facility, `local4` by default.
    #[serde(default)]
    pub facility: Option<Facility>,
    /// TLS: the CA certificates (PEM) the server's certificate must chain to; required.
    /// Webhooks: if given, the only CAs trusted; otherwise the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// TLS: the name the server's certificate must carry, if not the host of `address`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// TLS: a client certificate chain (PEM) to present, with `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// TLS: the client certificate's private key (PEM), with `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// Webhooks: the signing secret, `whsec_<base64>`; required.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Syslog sinks: the longest message, in bytes (UDP 480 to 65,507, default 1,180; TCP/TLS
    /// 480 to 1 MiB, default 8,192).
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
    /// Alerts waiting for this sink, at most (1 to 1,000,000); when full the oldest is dropped.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Attempts at one alert before it is given up (1 to 1,000).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Age after which an alert is given up, in seconds (1 to 604,800).
    #[serde(default = "default_max_age_seconds")]
    pub max_age_seconds: u64,
    /// Limit on a connection, a handshake, a write or a request, in seconds (1 to 300).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Wait before the first retry, in milliseconds; doubled at each retry (1 to 600,000).
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    /// Longest wait between retries, in milliseconds (`backoff_initial_ms` to 3,600,000).
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
}

fn default_enterprise_number() -> u32 {
    DOCUMENTATION_PEN
}
fn default_queue() -> usize {
    4096
}
fn default_max_attempts() -> u32 {
    12
}
fn default_max_age_seconds() -> u64 {
    3600
}
fn default_timeout_seconds() -> u64 {
    10
}
fn default_backoff_initial_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    60_000
}

impl SinkConfig {
    /// A sink of `kind` named `name` with every other key at its default (or unset).
    pub fn new(name: &str, kind: SinkKind) -> SinkConfig {
        SinkConfig {
            name: name.to_owned(),
            kind,
            address: None,
            url: None,
            format: None,
            facility: None,
            ca_file: None,
            server_name: None,
            client_cert_file: None,
            client_key_file: None,
            secret: None,
            max_message_bytes: None,
            queue: default_queue(),
            max_attempts: default_max_attempts(),
            max_age_seconds: default_max_age_seconds(),
            timeout_seconds: default_timeout_seconds(),
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
        }
    }

    /// A syslog sink (`udp`, `tcp` or `tls`) at `address`.
    pub fn syslog(name: &str, kind: SinkKind, address: &str) -> SinkConfig {
        SinkConfig {
            address: Some(address.to_owned()),
            ..SinkConfig::new(name, kind)
        }
    }

    /// A webhook at `url` signed with `secret`.
    pub fn webhook(name: &str, url: &str, secret: Secret) -> SinkConfig {
        SinkConfig {
            url: Some(url.to_owned()),
            secret: Some(secret),
            ..SinkConfig::new(name, SinkKind::Webhook)
        }
    }

    /// The syslog MSG format (`cef` unless set).
    pub fn format(&self) -> Format {
        self.format.unwrap_or(Format::Cef)
    }

    /// The longest syslog message, the configured one or the kind's default.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes.unwrap_or(match self.kind {
            SinkKind::Udp => DEFAULT_UDP_MESSAGE_BYTES,
            _ => DEFAULT_STREAM_MESSAGE_BYTES,
        })
    }

    /// The connection, write and request limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let error = |key: &'static str, problem: Problem| ConfigError {
            sink: Some(index),
            key,
            problem,
        };
        if !valid_name(&self.name) {
            return Err(error("name", Problem::Invalid(NAME_RULE)));
        }
        let kind = self.kind;
        let syslog = kind != SinkKind::Webhook;
        let tls = kind == SinkKind::Tls;
        let require = |key, present: bool, wanted: bool| match (present, wanted) {
            (false, true) => Err(error(key, Problem::Required(kind))),
            (true, false) => Err(error(key, Problem::NotApplicable(kind))),
            _ => Ok(()),
        };
        require("address", self.address.is_some(), syslog)?;
        require("url", self.url.is_some(), !syslog)?;
        require("secret", self.secret.is_some(), !syslog)?;
        require(
            "facility",
            self.facility.is_some(),
            self.facility.is_some() && syslog,
        )?;
        require(
            "max_message_bytes",
            self.max_message_bytes.is_some(),
            self.max_message_bytes.is_some() && syslog,
        )?;
        require(
            "ca_file",
            self.ca_file.is_some(),
            tls || (!syslog && self.ca_file.is_some()),
        )?;
        require(
            "server_name",
            self.server_name.is_some(),
            self.server_name.is_some() && tls,
        )?;
        // A client certificate needs its key and the reverse: each is required by the other.
        let (cert, key) = (
            self.client_cert_file.is_some(),
            self.client_key_file.is_some(),
        );
        require("client_cert_file", cert, tls && (cert || key))?;
        require("client_key_file", key, tls && (cert || key))?;
        if let Some(address) = &self.address
            && split_host_port(address).is_none()
        {
            return Err(error("address", Problem::Invalid(ADDRESS_RULE)));
        }
        if let Some(server_name) = &self.server_name
            && rustls_pki_types::ServerName::try_from(server_name.as_str()).is_err()
        {
            return Err(error(
                "server_name",
                Problem::Invalid("is not a DNS name or an IP address"),
            ));
        }
        // Without server_name the certificate must name the address's host, so that host
        // must be something a certificate can name.
        if tls
            && self.server_name.is_none()
            && let Some((host, _)) = self.address.as_deref().and_then(split_host_port)
            && rustls_pki_types::ServerName::try_from(host).is_err()
        {
            return Err(error(
                "server_name",
                Problem::Invalid(
                    "is needed: the address's host is not a DNS name or an IP address",
                ),
            ));
        }
        if let Some(url) = &self.url {
            check_url(url).map_err(|rule| error("url", Problem::Invalid(rule)))?;
        }
        if !syslog && self.format.is_some_and(|f| f != Format::Json) {
            return Err(error(
                "format",
                Problem::Invalid("must be json for a webhook"),
            ));
        }
        let (min_bytes, max_bytes) = if kind == SinkKind::Udp {
            (MIN_MESSAGE_BYTES, MAX_UDP_MESSAGE_BYTES)
        } else {
            (MIN_MESSAGE_BYTES, MAX_STREAM_MESSAGE_BYTES)
        };
        let range = |key, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(error(key, Problem::OutOfRange { min, max }))
            }
        };
        range(
            "max_message_bytes",
            self.max_message_bytes() as u64,
            min_bytes as u64,
            max_bytes as u64,
        )?;
        range("queue", self.queue as u64, 1, 1_000_000)?;
        range("max_attempts", u64::from(self.max_attempts), 1, 1000)?;
        range("max_age_seconds", self.max_age_seconds, 1, 604_800)?;
        range("timeout_seconds", self.timeout_seconds, 1, 300)?;
        range("backoff_initial_ms", self.backoff_initial_ms, 1, 600_000)?;
        range(
            "backoff_max_ms",
            self.backoff_max_ms,
            self.backoff_initial_ms,
            3_600_000,
        )?;
        Ok(())
    }
}

impl SiemConfig {
    /// Checks every value; the first problem found is returned, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let global = |key, problem| ConfigError {
            sink: None,
            key,
            problem,
        };
        if let Some(hostname) = &self.hostname
            && !syslog::is_printable(hostname, syslog::MAX_HOSTNAME)
        {
            return Err(global(
                "hostname",
                Problem::Invalid("must be 1 to 255 printable US-ASCII characters"),
            ));
        }
        if self.enterprise_number == 0 {
            return Err(global(
                "enterprise_number",
                Problem::Invalid("must be a private enterprise number (0 is reserved)"),
            ));
        }
        for (index, sink) in self.sinks.iter().enumerate() {
            sink.validate(index)?;
            if self.sinks[..index].iter().any(|s| s.name == sink.name) {
                return Err(ConfigError {
                    sink: Some(index),
                    key: "name",
                    problem: Problem::Duplicate,
                });
            }
        }
        Ok(())
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{key} {problem}", sink.map(|i| format!("sinks[{i}].")).unwrap_or_default())]
pub struct ConfigError {
    /// Which sink (its position in `sinks`), or `None` for a key of the section itself.
    pub sink: Option<usize>,
    /// The key.
    pub key: &'static str,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The kind of sink needs this key.
    #[error("is required for a {0} sink")]
    Required(SinkKind),
    /// The key means nothing for this kind of sink.
    #[error("does not apply to a {0} sink")]
    NotApplicable(SinkKind),
    /// A number outside its bounds.
    #[error("must be between {min} and {max}")]
    OutOfRange {
        /// Smallest value allowed.
        min: u64,
        /// Largest value allowed.
        max: u64,
    },
    /// A value of the wrong form; the text says which form is wanted.
    #[error("{0}")]
    Invalid(&'static str),
    /// Another sink has the same name.
    #[error("is the name of another sink")]
    Duplicate,
}

const NAME_RULE: &str = "must be 1 to 64 characters from A-Z a-z 0-9 - _ .";
const ADDRESS_RULE: &str = "must be host:port, or [IPv6]:port, with a port from 1 to 65535";

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `host:port` or `[v6]:port` → (host, port). A bare IPv6 address is refused: its last
/// colon-separated group would be taken for a port.
pub(crate) fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        (host, port)
    } else {
        let (host, port) = address.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    let port: u16 = port.parse().ok()?;
    (valid_host && port != 0).then_some((host, port))
}

fn check_url(url: &str) -> Result<(), &'static str> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "is not a URL")?;
    if parsed.scheme() != "https" {
        return Err("must be an https:// URL");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    // Credentials in a URL end up in logs and error messages; the secret signs instead.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not hold a user name or password");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn parse(text: &str) -> SiemConfig {
        #[derive(Deserialize)]
        struct File {
            siem: SiemConfig,
        }
        toml::from_str::<File>(text).unwrap().siem
    }

    fn one(sink: SinkConfig) -> Result<(), ConfigError> {
        SiemConfig {
            sinks: vec![sink],
            ..SiemConfig::default()
        }
        .validate()
    }

    fn tls() -> SinkConfig {
        SinkConfig {
            ca_file: Some("ca.pem".into()),
            ..SinkConfig::syslog("soc", SinkKind::Tls, "siem.example.org:6514")
        }
    }

    fn webhook() -> SinkConfig {
        SinkConfig::webhook(
            "pager",
            "https://hooks.example.org/v",
            SECRET.parse().unwrap(),
        )
    }

    #[test]
    fn the_documented_example_parses_and_validates() {
        let config = parse(
            r#"
            [siem]
            hostname = "vigil-hub.example.org"
            [[siem.sinks]]
            name = "soc"
            kind = "tls"
            address = "siem.example.org:6514"
            format = "cef"
            facility = "local4"
            ca_file = "/etc/vigil/siem-ca.pem"
            [[siem.sinks]]
            name = "pager"
            kind = "webhook"
            url = "https://hooks.example.org/vigil"
            secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            "#,
        );
        config.validate().unwrap();
        assert_eq!(config.enterprise_number, 32473);
        assert_eq!(config.sinks[0].facility, Some(Facility::Local4));
        assert_eq!(config.sinks[0].max_message_bytes(), 8192);
        assert_eq!(config.sinks[1].kind, SinkKind::Webhook);
        assert_eq!(config.sinks[1].queue, 4096);
        assert!(!format!("{config:?}").contains("MfKQ"));
    }

    #[test]
    fn unknown_keys_and_bad_secrets_fail_to_parse() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)] // parsed to be refused
        struct File {
            siem: SiemConfig,
        }
        let unknown = toml::from_str::<File>(
            "[siem]\n[[siem.sinks]]\nname='a'\nkind='udp'\naddress='h:1'\nport=5\n",
        );
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
        let secret = toml::from_str::<File>(
            "[siem]\n[[siem.sinks]]\nname='a'\nkind='webhook'\nurl='https://h/'\nsecret='whsec_c2hvcnQ='\n",
        );
        // toml's Display quotes the offending line; what Vigil writes is the message alone.
        let message = secret.unwrap_err().message().to_owned();
        assert!(message.contains("24 to 64 bytes"), "{message}");
        assert!(!message.contains("c2hvcnQ"), "{message}");
        let kind = toml::from_str::<File>("[siem]\n[[siem.sinks]]\nname='a'\nkind='relp'\n");
        assert!(kind.is_err());
    }

    #[test]
    fn each_kind_requires_its_keys() {
        assert_eq!(
            one(SinkConfig::new("a", SinkKind::Udp)),
            Err(ConfigError {
                sink: Some(0),
                key: "address",
                problem: Problem::Required(SinkKind::Udp)
            })
        );
        let no_ca = SinkConfig {
            ca_file: None,
            ..tls()
        };
        assert_eq!(one(no_ca).unwrap_err().key, "ca_file");
        let no_secret = SinkConfig {
            secret: None,
            ..webhook()
        };
        assert_eq!(
            one(no_secret).unwrap_err().to_string(),
            "sinks[0].secret is required for a webhook sink"
        );
        let half_client = SinkConfig {
            client_cert_file: Some("c.pem".into()),
            ..tls()
        };
        assert_eq!(one(half_client).unwrap_err().key, "client_key_file");
        let both = SinkConfig {
            client_cert_file: Some("c.pem".into()),
            client_key_file: Some("k.pem".into()),
            ..tls()
        };
        one(both).unwrap();
    }

    #[test]
    fn keys_of_other_kinds_are_refused() {
        let cases = [
            (
                SinkConfig {
                    url: Some("https://h/".into()),
                    ..SinkConfig::syslog("a", SinkKind::Tcp, "h:1")
                },
                "url",
            ),
            (
                SinkConfig {
                    ca_file: Some("ca.pem".into()),
                    ..SinkConfig::syslog("a", SinkKind::Udp, "h:1")
                },
                "ca_file",
            ),
            (
                SinkConfig {
                    server_name: Some("h".into()),
                    ..SinkConfig::syslog("a", SinkKind::Tcp, "h:1")
                },
                "server_name",
            ),
            (
                SinkConfig {
                    facility: Some(Facility::Auth),
                    ..webhook()
                },
                "facility",
            ),
            (
                SinkConfig {
                    max_message_bytes: Some(2048),
                    ..webhook()
                },
                "max_message_bytes",
            ),
            (
                SinkConfig {
                    address: Some("h:1".into()),
                    ..webhook()
                },
                "address",
            ),
            (
                SinkConfig {
                    client_cert_file: Some("c".into()),
                    client_key_file: Some("k".into()),
                    ..webhook()
                },
                "client_cert_file",
            ),
        ];
        for (sink, key) in cases {
            let error = one(sink).unwrap_err();
            assert_eq!(error.key, key);
            assert!(
                matches!(error.problem, Problem::NotApplicable(_)),
                "{error}"
            );
        }
    }

    #[test]
    fn addresses_urls_and_names_have_their_forms() {
        for bad in [
            "host",
            "host:0",
            "host:70000",
            ":514",
            "::1:514",
            "[::1]",
            "[nope]:514",
            "ho st:514",
        ] {
            let sink = SinkConfig::syslog("a", SinkKind::Udp, bad);
            assert_eq!(one(sink).unwrap_err().key, "address", "{bad}");
        }
        for good in [
            "siem:514",
            "10.0.0.1:514",
            "[::1]:6514",
            "siem.example.org:6514",
        ] {
            one(SinkConfig::syslog("a", SinkKind::Udp, good)).unwrap();
        }
        for (bad, problem) in [
            ("http://h/", "must be an https:// URL"),
            ("not a url", "is not a URL"),
            (
                "https://user:pw@h/",
                "must not hold a user name or password",
            ),
        ] {
            let sink = SinkConfig {
                url: Some(bad.into()),
                ..webhook()
            };
            assert_eq!(one(sink).unwrap_err().problem, Problem::Invalid(problem));
        }
        for bad in ["", "a b", "a/b", &"n".repeat(65)] {
            let sink = SinkConfig::syslog(bad, SinkKind::Udp, "h:1");
            assert_eq!(one(sink).unwrap_err().key, "name");
        }
        let json_only = SinkConfig {
            format: Some(Format::Cef),
            ..webhook()
        };
        assert_eq!(one(json_only).unwrap_err().key, "format");
        let bad_server_name = SinkConfig {
            server_name: Some("not a name".into()),
            ..tls()
        };
        assert_eq!(one(bad_server_name).unwrap_err().key, "server_name");
        let unnameable_host = SinkConfig {
            address: Some("siem..example:6514".into()),
            ..tls()
        };
        assert_eq!(one(unnameable_host.clone()).unwrap_err().key, "server_name");
        one(SinkConfig {
            server_name: Some("siem.example.org".into()),
            ..unnameable_host
        })
        .unwrap();
    }

    #[test]
    fn numbers_are_bounded() {
        let udp = || SinkConfig::syslog("a", SinkKind::Udp, "h:514");
        let cases: [(SinkConfig, &str, u64, u64); 7] = [
            (
                SinkConfig {
                    max_message_bytes: Some(479),
                    ..udp()
                },
                "max_message_bytes",
                480,
                65_507,
            ),
            (
                SinkConfig {
                    max_message_bytes: Some(65_508),
                    ..udp()
                },
                "max_message_bytes",
                480,
                65_507,
            ),
            (SinkConfig { queue: 0, ..udp() }, "queue", 1, 1_000_000),
            (
                SinkConfig {
                    max_attempts: 0,
                    ..udp()
                },
                "max_attempts",
                1,
                1000,
            ),
            (
                SinkConfig {
                    timeout_seconds: 301,
                    ..udp()
                },
                "timeout_seconds",
                1,
                300,
            ),
            (
                SinkConfig {
                    max_age_seconds: 0,
                    ..udp()
                },
                "max_age_seconds",
                1,
                604_800,
            ),
            (
                SinkConfig {
                    backoff_initial_ms: 1000,
                    backoff_max_ms: 999,
                    ..udp()
                },
                "backoff_max_ms",
                1000,
                3_600_000,
            ),
        ];
        for (sink, key, min, max) in cases {
            assert_eq!(
                one(sink),
                Err(ConfigError {
                    sink: Some(0),
                    key,
                    problem: Problem::OutOfRange { min, max }
                })
            );
        }
        let stream = SinkConfig {
            max_message_bytes: Some(100_000),
            ..SinkConfig::syslog("a", SinkKind::Tcp, "h:514")
        };
        one(stream).unwrap();
    }

    #[test]
    fn section_keys_and_duplicate_names() {
        let config = SiemConfig {
            hostname: Some("hub one".into()),
            ..SiemConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "hostname must be 1 to 255 printable US-ASCII characters"
        );
        let config = SiemConfig {
            enterprise_number: 0,
            ..SiemConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().key, "enterprise_number");
        let config = SiemConfig {
            sinks: vec![webhook(), webhook()],
            ..SiemConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(ConfigError {
                sink: Some(1),
                key: "name",
                problem: Problem::Duplicate
            })
        );
    }
}
