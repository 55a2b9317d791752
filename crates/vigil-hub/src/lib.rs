//! The Vigil hub.
//!
//! [`Hub::initialise`] lays out a data directory's PKI and database; [`Hub::open`] loads them;
//! [`Hub::start`] binds the listeners and serves until stopped. The [`Registry`] is the device
//! registry service that the command line and the HTTPS API share.
//!
//! Today the hub serves the device API over HTTPS (enrolment, renewal, CA certificate,
//! revocation list); telemetry ingest joins it on the same foundations.

#![forbid(unsafe_code)]

pub mod access;
pub mod audit;
pub mod checkpoints;
pub mod detection;
pub mod https;
pub mod ingest;
pub mod listener;
pub mod mqtt;
pub mod outbox;
pub mod registry;
pub mod rules;
pub mod siem;
pub mod throttle;
pub mod tls;
pub mod write_stall;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vigil_config::Config;
use vigil_model::{Action, Actor, Outcome, ResourceKind};
use vigil_pki::{PkiDir, PkiError};
use vigil_store::seal::{KEYRING_ENV, Keyring, KeyringError, SharedKeyring};
use vigil_store::{AuditStore, SqliteStore, Store, StoreError};

pub use audit::Auditor;
pub use registry::{Lifetimes, Registration, Registry, RegistryError};

/// How often the hub looks for a new revocation list written by another process.
pub const CRL_POLL: Duration = Duration::from_secs(1);
/// How often the hub signs a fresh revocation list (it is valid for a week).
pub const CRL_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// Why the hub could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The data directory was never initialised.
    #[error("{} has no CA; run `vigil init --data-dir {}` first", .0.display(), .0.display())]
    NotInitialised(PathBuf),
    /// PKI failure.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Keyring failure.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// Audit checkpoint failure.
    #[error(transparent)]
    Checkpoint(#[from] checkpoints::CheckpointFailure),
    /// Registry failure.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// TLS setup failure.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Alert export could not start.
    #[error(transparent)]
    Siem(#[from] siem::SiemFileError),
    /// The session signing key could not be loaded or made.
    #[error(transparent)]
    SessionKey(#[from] access::SessionKeyError),
    /// The hospital's OpenID provider could not be reached or its documents are not usable.
    #[error(transparent)]
    Oidc(#[from] access::oidc::OidcSetupError),
    /// A listener could not bind.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A hub over one data directory.
pub struct Hub {
    data_dir: PathBuf,
    rules: vigil_detect::rules::RulesHandle,
    rules_seen: rules::Stamp,
    config: Config,
    registry: Registry,
    checkpointer: checkpoints::Checkpointer,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// Creates the CA, the hub's server certificate, the first CRL and the database in a data
    /// directory whose configuration already exists. Audited.
    pub fn initialise(data_dir: &Path, config: &Config) -> Result<(), HubError> {
        let pki = PkiDir::new(data_dir);
        let ca = pki.create(
            &config.hub.organization,
            &config.hub.certificate_names(),
            OffsetDateTime::now_utc(),
        )?;
        let keyring = Keyring::create(data_dir)?;
        let store = SqliteStore::open(data_dir, Arc::new(keyring))?;
        let facts = vigil_pki::CertificateFacts::from_der(ca.cert_der())?;
        let name = format!("vigil-audit-{}", facts.fingerprint.get(..8).unwrap_or("0"));
        checkpoints::create_keys(data_dir, &name)?;
        store.append_audit(&audit::entry(
            Actor::System,
            Action::Create,
            ResourceKind::Certificate,
            &facts.serial,
            Outcome::Success,
            Some("hospital CA created"),
        ))?;
        let store: Arc<dyn Store> = Arc::new(store);
        checkpoints::Checkpointer::open(data_dir, store)?.checkpoint()?;
        Ok(())
    }

    /// Opens an initialised data directory.
    pub fn open(data_dir: &Path, config: Config) -> Result<Hub, HubError> {
        let pki = PkiDir::new(data_dir);
        if !pki.ca_cert_path().exists() {
            return Err(HubError::NotInitialised(data_dir.to_owned()));
        }
        let ca = Arc::new(pki.load_ca()?);
        let keyring = load_keyring(data_dir)?;
        let keyring = Arc::new(SharedKeyring::new(keyring));
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(data_dir, keyring)?);
        let auditor = Auditor::new(Arc::clone(&store));
        let checkpointer = checkpoints::Checkpointer::open(data_dir, Arc::clone(&store))?;
        let (initial, rules_seen) = rules::initial_rules(data_dir);
        let rules = vigil_detect::rules::RulesHandle::new(initial);
        let detection = detection::Detection::start(Arc::clone(&store), rules.clone());
        let registry = Registry::new(store, ca, pki, Lifetimes::from_config(&config.pki), auditor)
            .with_detection(detection);
        Ok(Hub {
            data_dir: data_dir.to_owned(),
            rules,
            rules_seen,
            config,
            registry,
            checkpointer,
        })
    }

    /// The device registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.registry.store()
    }

    /// Signs a checkpoint of the audit log now, if it grew (blocking).
    pub fn checkpoint(&self) -> Result<Option<u64>, HubError> {
        Ok(self.checkpointer.checkpoint()?)
    }

    /// Binds the listeners and serves in the background. First re-issues the hub's server
    /// certificate if it expires within 30 days or its names differ from the configuration, and
    /// signs a fresh revocation list.
    pub async fn start(self) -> Result<RunningHub, HubError> {
        let registry = self.registry;
        let pki = registry.pki().clone();
        renew_hub_certificate_if_needed(&pki, registry.ca(), &self.config, registry.auditor())?;
        registry.publish_crl()?;
        let crl = tls::read_crl(&pki.crl_path())?;
        let https_verifier = Arc::new(
            tls::DeviceVerifier::new(
                registry.ca().cert_der(),
                crl,
                false,
                registry.auditor().clone(),
                "https",
            )?
            .with_detection(registry.detection().cloned()),
        );
        let https_tls = tls::server_config(&pki, Arc::clone(&https_verifier), &[b"http/1.1"])?;
        let address = self.config.hub.https_listen;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| HubError::Bind { address, source })?;
        let https = listener
            .local_addr()
            .map_err(|source| HubError::Bind { address, source })?;
        tracing::info!(%https, "HTTPS listener ready (enrolment, renewal, revocation list)");

        let mqtt_verifier = Arc::new(
            tls::DeviceVerifier::new(
                registry.ca().cert_der(),
                tls::read_crl(&pki.crl_path())?,
                true,
                registry.auditor().clone(),
                "mqtt",
            )?
            .with_detection(registry.detection().cloned()),
        );
        let mqtt_tls = tls::server_config(&pki, Arc::clone(&mqtt_verifier), &[])?;
        let mqtt_address = self.config.hub.mqtt_listen;
        let mqtt_listener =
            TcpListener::bind(mqtt_address)
                .await
                .map_err(|source| HubError::Bind {
                    address: mqtt_address,
                    source,
                })?;
        let mqtt = mqtt_listener
            .local_addr()
            .map_err(|source| HubError::Bind {
                address: mqtt_address,
                source,
            })?;
        tracing::info!(%mqtt, "MQTT listener ready (3.1.1 and 5.0, client certificates required)");

        let (stop, stopped) = oneshot::channel::<()>();
        let max_connections = usize::try_from(self.config.hub.max_connections).unwrap_or(16_384);
        let ingest = ingest::Ingest::new(
            Arc::clone(registry.store()),
            self.config.ingest.max_clock_skew_seconds,
        )
        .with_throttle(
            self.config.ingest.messages_per_second,
            self.config.ingest.burst,
        );
        let ingest = match registry.detection() {
            Some(detection) => ingest.with_detection(detection.clone()),
            None => ingest,
        };
        let export = siem::start(&self.data_dir, registry.store())?;
        if let (Some(detection), Some(handle)) = (registry.detection(), export.clone()) {
            // A hub is started once; a second handle would mean a bug, not a lost alert.
            let _ = detection.export_to(handle);
        }
        let signer = access::load_session_key(&self.data_dir)?;
        let oidc = if self.config.oidc.enabled() {
            let client = access::oidc::OidcClient::discover(&self.config.oidc).await?;
            tracing::info!(issuer = %self.config.oidc.issuer, "sign-in through the OpenID provider ready");
            Some(client)
        } else {
            None
        };
        let access = access::Access::new(
            Arc::clone(registry.store()),
            signer,
            access::AccessSettings::from_config(&self.config.access),
            registry.auditor().clone(),
            registry.detection().cloned(),
            oidc,
        );
        let app = https::routes::router(https::routes::Api {
            registry: registry.clone(),
            ingest: ingest.clone(),
            access,
            checkpointer: self.checkpointer.clone(),
            mrn_system: https::fhir::MrnSystem(self.config.fhir.mrn_system.clone()),
            observation_read_ahead: https::fhir::ObservationReadAhead::default(),
        });
        let outbox = outbox::Outbox::new(Arc::clone(registry.store()), registry.auditor().clone());
        let (mqtt_stop, mqtt_stopped) = oneshot::channel::<()>();
        let mqtt_server = tokio::spawn(mqtt::serve(
            mqtt_listener,
            mqtt_tls,
            ingest,
            outbox.clone(),
            registry.auditor().clone(),
            max_connections,
            async {
                let _ = mqtt_stopped.await;
            },
        ));
        let auditor = registry.auditor().clone();
        let detection = registry.detection().cloned();
        let crl_watch = tokio::spawn(tls::watch_crl(
            pki.crl_path(),
            vec![https_verifier],
            CRL_POLL,
        ));
        let crl_refresh = tokio::spawn(refresh_crl(registry.clone()));
        let rules_watch = tokio::spawn(rules::watch_rules(
            self.data_dir.clone(),
            self.rules.clone(),
            self.rules_seen,
            registry.auditor().clone(),
        ));
        let checkpointer = self.checkpointer;
        let checkpoints = tokio::spawn(sign_checkpoints(checkpointer.clone()));
        let server = tokio::spawn(async move {
            https::serve(
                listener,
                https_tls,
                app,
                auditor,
                detection,
                https::Limits {
                    max_connections,
                    timeouts: https::slow_clients::Timeouts {
                        idle: Duration::from_secs(u64::from(self.config.hub.http_idle_seconds)),
                        ..https::slow_clients::Timeouts::default()
                    },
                },
                async {
                    let _ = stopped.await;
                },
            )
            .await;
            let _ = mqtt_stop.send(());
            let _ = mqtt_server.await;
            crl_watch.abort();
            crl_refresh.abort();
            rules_watch.abort();
            checkpoints.abort();
            // A last checkpoint covers everything written until the stop.
            let _ = tokio::task::spawn_blocking(move || checkpointer.checkpoint()).await;
            if let Some(export) = export {
                for sink in export.shutdown(Duration::from_secs(5)).await {
                    if sink.dropped() > 0 {
                        tracing::warn!(sink = %sink.name, dropped = sink.dropped(), "alerts not exported");
                    }
                }
            }
        });
        Ok(RunningHub {
            https,
            mqtt,
            outbox,
            stop,
            server,
        })
    }
}

/// A hub serving in the background.
#[derive(Debug)]
pub struct RunningHub {
    /// Where the HTTPS listener is bound.
    pub https: SocketAddr,
    /// Where the MQTT listener is bound.
    pub mqtt: SocketAddr,
    /// Messages for devices (commands, update notices), delivered over MQTT.
    pub outbox: outbox::Outbox,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl RunningHub {
    /// Stops accepting connections and waits for the listener to close.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// How often the running hub signs a checkpoint of the audit log (when it grew).
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

async fn sign_checkpoints(checkpointer: checkpoints::Checkpointer) {
    let mut ticker = tokio::time::interval(CHECKPOINT_INTERVAL);
    loop {
        ticker.tick().await;
        let checkpointer = checkpointer.clone();
        match tokio::task::spawn_blocking(move || checkpointer.checkpoint()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "audit checkpoint failed"),
            Err(error) => tracing::error!(%error, "audit checkpoint failed"),
        }
    }
}

async fn refresh_crl(registry: Registry) {
    let mut ticker = tokio::time::interval(CRL_REFRESH);
    ticker.tick().await; // the first tick is immediate; start() just published one
    loop {
        ticker.tick().await;
        let registry = registry.clone();
        match tokio::task::spawn_blocking(move || registry.publish_crl()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "revocation list refresh failed"),
            Err(error) => tracing::error!(%error, "revocation list refresh failed"),
        }
    }
}

fn renew_hub_certificate_if_needed(
    pki: &PkiDir,
    ca: &vigil_pki::HospitalCa,
    config: &Config,
    auditor: &Auditor,
) -> Result<(), HubError> {
    let wanted = config.hub.certificate_names();
    let now = OffsetDateTime::now_utc();
    let (facts, mut names) = pki.hub_certificate()?;
    let renew_before = vigil_model::Timestamp::from_unix_millis(
        i64::try_from(
            (now + vigil_pki::pki_dir::HUB_CERT_RENEW_BEFORE).unix_timestamp_nanos() / 1_000_000,
        )
        .unwrap_or(i64::MAX),
    )
    .unwrap_or(vigil_model::Timestamp::EPOCH);
    let mut wanted_sorted = wanted.clone();
    wanted_sorted.sort();
    names.sort();
    let reason = if facts.not_after < renew_before {
        "hub certificate expires soon"
    } else if names != wanted_sorted {
        "hub host names changed"
    } else {
        return Ok(());
    };
    let issued = pki.issue_hub_certificate(ca, &wanted, now)?;
    tracing::info!(reason, serial = %issued.facts.serial, "hub certificate re-issued");
    auditor.record(&audit::entry(
        Actor::System,
        Action::Renew,
        ResourceKind::Certificate,
        &issued.facts.serial,
        Outcome::Success,
        Some(reason),
    ))?;
    Ok(())
}

/// The keyring: from `VIGIL_KEYRING` when set, else `keyring.json` in the data directory.
pub fn load_keyring(data_dir: &Path) -> Result<Keyring, KeyringError> {
    let from_env = std::env::var(KEYRING_ENV).ok();
    Keyring::load(data_dir, from_env.as_deref())
}
