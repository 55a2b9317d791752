//! A sink: where one stream of alerts goes, made from its configuration (certificate files
//! read, TLS and HTTPS clients set up), and its retry policy. The attempts themselves are in
//! [`crate::transport`].

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::config::{ConfigError, SiemConfig, SinkConfig, SinkKind, split_host_port};
use crate::record::Record;
use crate::syslog::Origin;
use crate::transport::{DeliveryError, Protocol, Syslog, Webhook};

/// Largest PEM file read (a CA bundle of a few hundred certificates fits).
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Why the sinks could not be made from their configuration.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A value is invalid.
    #[error("siem configuration: {0}")]
    Config(#[from] ConfigError),
    /// A file could not be read.
    #[error("sink {sink}: cannot read {}: {source}", path.display())]
    Read {
        /// The sink's name.
        sink: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file is larger than [`MAX_PEM_BYTES`].
    #[error("sink {sink}: {} is larger than {MAX_PEM_BYTES} bytes", path.display())]
    TooLarge {
        /// The sink's name.
        sink: String,
        /// The file.
        path: PathBuf,
    },
    /// A file holds no PEM certificate, or no PEM private key, or one that does not parse.
    #[error("sink {sink}: {} holds no usable PEM {what}", path.display())]
    Pem {
        /// The sink's name.
        sink: String,
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// rustls refused the certificates or key (a CA that is not a CA, a key that does not
    /// match its certificate).
    #[error("sink {sink}: TLS setup refused: {source}")]
    Tls {
        /// The sink's name.
        sink: String,
        /// Why.
        source: rustls::Error,
    },
    /// The HTTPS client could not be built.
    #[error("sink {sink}: cannot build the HTTPS client: {source}")]
    Client {
        /// The sink's name.
        sink: String,
        /// Why.
        source: reqwest::Error,
    },
}

/// When to retry an alert and when to give it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts at one alert, the first included.
    pub max_attempts: u32,
    /// Age (since [`crate::DispatcherHandle::send`]) after which an alert is given up.
    pub max_age: Duration,
    /// Wait before the first retry; doubled at each further one.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

/// One configured destination of alerts, ready to be handed to [`crate::Dispatcher::start`].
pub struct Sink {
    name: String,
    queue: usize,
    retry: RetryPolicy,
    transport: Transport,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("queue", &self.queue)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// An alert on its way: the record, and since when.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) record: Record,
    pub(crate) since: std::time::Instant,
}

enum Transport {
    Syslog(Box<Syslog>),
    Webhook(Box<Webhook>),
}

impl SiemConfig {
    /// Validates the configuration, reads the certificate files and makes every sink.
    pub fn sinks(&self) -> Result<Vec<Sink>, SinkError> {
        self.validate()?;
        let origin =
            Origin::new(self.hostname.as_deref(), self.enterprise_number).map_err(|_| {
                ConfigError {
                    sink: None,
                    key: "hostname",
                    problem: crate::config::Problem::Invalid(
                        "must be 1 to 255 printable US-ASCII characters",
                    ),
                }
            })?;
        self.sinks
            .iter()
            .enumerate()
            .map(|(index, config)| Sink::from_config(index, config, &origin))
            .collect()
    }
}

impl Sink {
    /// The sink's name, as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many alerts may wait for this sink.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// When alerts are retried and given up.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// A sink from its validated configuration.
    fn from_config(index: usize, config: &SinkConfig, origin: &Origin) -> Result<Sink, SinkError> {
        let name = config.name.clone();
        let transport = match config.kind {
            SinkKind::Webhook => Transport::Webhook(Box::new(webhook_sink(index, config, origin)?)),
            kind => {
                let address = config.address.clone().unwrap_or_default();
                let protocol = match kind {
                    SinkKind::Udp => Protocol::Udp,
                    SinkKind::Tcp => Protocol::Tcp,
                    _ => tls_protocol(index, config, &address)?,
                };
                Transport::Syslog(Box::new(Syslog::new(
                    address,
                    protocol,
                    origin.clone(),
                    config.facility.unwrap_or_default(),
                    config.format(),
                    config.max_message_bytes(),
                    config.timeout(),
                )))
            }
        };
        Ok(Sink {
            name,
            queue: config.queue,
            retry: RetryPolicy {
                max_attempts: config.max_attempts,
                max_age: Duration::from_secs(config.max_age_seconds),
                initial_backoff: Duration::from_millis(config.backoff_initial_ms),
                max_backoff: Duration::from_millis(config.backoff_max_ms),
            },
            transport,
        })
    }

    /// Ends the sink's connection politely: FIN over TCP, `close_notify` then FIN over TLS
    /// (RFC 5425 §5.4).
    pub(crate) async fn close(&mut self) {
        if let Transport::Syslog(syslog) = &mut self.transport {
            syslog.close().await;
        }
    }

    /// One attempt at delivering `outgoing`.
    pub(crate) async fn deliver(&mut self, outgoing: &Outgoing) -> Result<(), DeliveryError> {
        match &mut self.transport {
            Transport::Syslog(syslog) => syslog.deliver(&outgoing.record).await,
            Transport::Webhook(hook) => hook.deliver(outgoing).await,
        }
    }
}

fn tls_protocol(index: usize, config: &SinkConfig, address: &str) -> Result<Protocol, SinkError> {
    let sink = || config.name.clone();
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = &config.ca_file {
        for certificate in certificates(&config.name, path)? {
            roots.add(certificate).map_err(|source| SinkError::Tls {
                sink: sink(),
                source,
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| SinkError::Tls {
            sink: sink(),
            source,
        })?
        .with_root_certificates(roots);
    let tls = match (&config.client_cert_file, &config.client_key_file) {
        (Some(chain), Some(key)) => {
            let chain = certificates(&config.name, chain)?;
            let key = private_key(&config.name, key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|source| SinkError::Tls {
                    sink: sink(),
                    source,
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    let host = match &config.server_name {
        Some(name) => name.clone(),
        None => split_host_port(address)
            .map(|(host, _)| host.to_owned())
            .unwrap_or_default(),
    };
    let server_name = ServerName::try_from(host).map_err(|_| ConfigError {
        sink: Some(index),
        key: "server_name",
        problem: crate::config::Problem::Invalid("is not a DNS name or an IP address"),
    })?;
    Ok(Protocol::Tls {
        connector: TlsConnector::from(Arc::new(tls)),
        server_name,
    })
}

fn webhook_sink(index: usize, config: &SinkConfig, origin: &Origin) -> Result<Webhook, SinkError> {
    let client_error = |source| SinkError::Client {
        sink: config.name.clone(),
        source,
    };
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        // A redirect would carry a signed alert to a host nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.timeout())
        .timeout(config.timeout())
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.ca_file {
        let pem = read_bounded(&config.name, path)?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| SinkError::Pem {
                sink: config.name.clone(),
                path: path.clone(),
                what: "certificate",
            })?;
        if certificates.is_empty() {
            return Err(SinkError::Pem {
                sink: config.name.clone(),
                path: path.clone(),
                what: "certificate",
            });
        }
        builder = builder.tls_certs_only(certificates);
    }
    let url = config.url.as_deref().unwrap_or_default();
    let url = reqwest::Url::parse(url).map_err(|_| ConfigError {
        sink: Some(index),
        key: "url",
        problem: crate::config::Problem::Invalid("is not a URL"),
    })?;
    let secret = config.secret.clone().ok_or(ConfigError {
        sink: Some(index),
        key: "secret",
        problem: crate::config::Problem::Required(SinkKind::Webhook),
    })?;
    Ok(Webhook::new(
        builder.build().map_err(client_error)?,
        url,
        secret,
        origin.hostname().map(str::to_owned),
    ))
}

fn read_bounded(sink: &str, path: &Path) -> Result<Vec<u8>, SinkError> {
    let read_error = |source| SinkError::Read {
        sink: sink.to_owned(),
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(SinkError::TooLarge {
            sink: sink.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

fn certificates(sink: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, SinkError> {
    let pem = read_bounded(sink, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|c| !c.is_empty());
    certificates.ok_or_else(|| SinkError::Pem {
        sink: sink.to_owned(),
        path: path.to_owned(),
        what: "certificate",
    })
}

fn private_key(sink: &str, path: &Path) -> Result<PrivateKeyDer<'static>, SinkError> {
    let pem = read_bounded(sink, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| SinkError::Pem {
        sink: sink.to_owned(),
        path: path.to_owned(),
        what: "private key",
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn certificate_files_are_refused_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here").unwrap();
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; MAX_PEM_BYTES as usize + 1]).unwrap();
        let missing = dir.path().join("missing.pem");
        let tls = |ca: &Path| SinkConfig {
            ca_file: Some(ca.to_owned()),
            ..SinkConfig::syslog("soc", SinkKind::Tls, "localhost:6514")
        };
        let build = |sink: SinkConfig| {
            SiemConfig {
                sinks: vec![sink],
                ..SiemConfig::default()
            }
            .sinks()
            .unwrap_err()
        };
        assert!(matches!(
            build(tls(&empty)),
            SinkError::Pem {
                what: "certificate",
                ..
            }
        ));
        assert!(matches!(build(tls(&big)), SinkError::TooLarge { .. }));
        assert!(matches!(build(tls(&missing)), SinkError::Read { .. }));
        let hook = SinkConfig {
            ca_file: Some(empty.clone()),
            ..SinkConfig::webhook(
                "hook",
                "https://localhost/",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap(),
            )
        };
        assert!(matches!(build(hook), SinkError::Pem { .. }));

        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.cert.pem()).unwrap();
        let no_key = SinkConfig {
            client_cert_file: Some(ca_file.clone()),
            client_key_file: Some(empty.clone()),
            ..tls(&ca_file)
        };
        let error = build(no_key);
        assert!(
            matches!(
                error,
                SinkError::Pem {
                    what: "private key",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("empty.pem"));

        // A key that is not the certificate's: rustls refuses the pair.
        let other_key = rcgen::KeyPair::generate().unwrap();
        let other_key_file = dir.path().join("other.key");
        std::fs::write(&other_key_file, other_key.serialize_pem()).unwrap();
        let mismatched = SinkConfig {
            client_cert_file: Some(ca_file.clone()),
            client_key_file: Some(other_key_file),
            ..tls(&ca_file)
        };
        assert!(matches!(build(mismatched), SinkError::Tls { .. }));

        // A PEM block that is not a certificate cannot be a trust anchor.
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(matches!(build(tls(&garbage)), SinkError::Tls { .. }));

        // And a good CA file makes a sink.
        let sinks = SiemConfig {
            sinks: vec![tls(&ca_file)],
            ..SiemConfig::default()
        }
        .sinks()
        .unwrap();
        assert_eq!(sinks[0].name(), "soc");
    }
}
