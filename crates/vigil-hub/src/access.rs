//! People's access to the hub: sign-in, sessions, and the decision on every request.
//!
//! [`Access`] signs people in (password, then a second factor where one is enrolled and always
//! for privileged roles; lockout after repeated failures; or through the hospital's OpenID
//! provider, [`oidc`]), issues session tokens (PASETO
//! v4.public, `vigil-auth`), and turns a bearer token back into a [`Principal`] on every
//! request — checking the signature, that the session was not ended, its idle timeout, and
//! that the account is still enabled with the same role. [`Access::authorize`] asks
//! `vigil_auth::policy` whether the principal may do an operation on a patient, from the facts
//! in the store (care team, consent, break-glass), and audits refusals. Handlers audit what they
//! served, with the basis of the decision.

pub mod oidc;
mod principal;
mod signin;
pub mod users;

use std::path::Path;
use std::sync::{Arc, Mutex};

use vigil_auth::lockout::LockoutPolicy;
use vigil_auth::policy::{self, Basis, Decision, Operation, Relation};
use vigil_auth::source::SourceFailures;
use vigil_auth::token::{TokenSigner, TokenVerifier};
use vigil_config::AccessConfig;
use vigil_model::{
    Action, Actor, Alert, AlertKind, Evidence, Outcome, PatientId, ResourceKind, Severity,
    Timestamp,
};
use vigil_store::Store;

use crate::audit::{Auditor, entry};
use crate::detection::Detection;

pub use principal::Principal;
pub use signin::{SignInError, SignedIn};

/// The file, in the data directory, holding the key that signs session tokens (PKCS#8, 0600).
pub const SESSION_KEY_FILE: &str = "session-signing.key";

/// The issuer named in (and required of) every session token.
pub const ISSUER: &str = "urn:vigil:hub";

/// How sessions and sign-in behave (from `[access]`).
#[derive(Debug, Clone)]
pub struct AccessSettings {
    /// A session's lifetime from sign-in, milliseconds.
    pub session_ms: i64,
    /// A session unused this long ends, milliseconds.
    pub idle_ms: i64,
    /// How long a break-glass grant lasts, milliseconds.
    pub break_glass_ms: i64,
    /// When failed sign-ins lock an account.
    pub lockout: LockoutPolicy,
    /// When failed sign-ins from one network address (on any accounts) refuse it.
    pub addresses: LockoutPolicy,
}

impl AccessSettings {
    /// The settings of a configuration's `[access]` section.
    pub fn from_config(config: &AccessConfig) -> AccessSettings {
        let minutes = |m: u32| i64::from(m) * 60_000;
        AccessSettings {
            session_ms: i64::from(config.session_hours) * 3_600_000,
            idle_ms: minutes(config.idle_minutes),
            break_glass_ms: minutes(config.break_glass_minutes),
            lockout: LockoutPolicy {
                max_failures: config.lockout_failures,
                window_secs: i64::from(config.lockout_minutes) * 60,
                lock_secs: i64::from(config.lockout_minutes) * 60,
            },
            addresses: LockoutPolicy {
                max_failures: config.address_failures,
                window_secs: i64::from(config.address_minutes) * 60,
                lock_secs: i64::from(config.address_minutes) * 60,
            },
        }
    }
}

/// Why the session key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum SessionKeyError {
    /// The key file cannot be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is readable by others than its owner.
    #[error("{0} must not be readable by group or others (chmod 600)")]
    Permissions(std::path::PathBuf),
    /// The key does not parse.
    #[error("{0}: not a session signing key")]
    Invalid(std::path::PathBuf),
}

/// Loads the session signing key of a data directory, making it on first use.
pub fn load_session_key(data_dir: &Path) -> Result<TokenSigner, SessionKeyError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = data_dir.join(SESSION_KEY_FILE);
    let file_error = |source| SessionKeyError::File {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(&path)
                .map_err(file_error)?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(SessionKeyError::Permissions(path));
            }
            TokenSigner::from_pkcs8(&bytes, ISSUER).map_err(|_| SessionKeyError::Invalid(path))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let (signer, pkcs8) = TokenSigner::generate(ISSUER)
                .map_err(|_| SessionKeyError::Invalid(path.clone()))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(file_error)?;
            std::io::Write::write_all(&mut file, pkcs8.as_ref()).map_err(file_error)?;
            file.sync_all().map_err(file_error)?;
            Ok(signer)
        }
        Err(error) => Err(file_error(error)),
    }
}

/// Sign-in, sessions and access decisions. Cheap to clone.
#[derive(Clone)]
pub struct Access {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    signer: TokenSigner,
    verifier: TokenVerifier,
    settings: AccessSettings,
    auditor: Auditor,
    detection: Option<Detection>,
    oidc: Option<oidc::OidcClient>,
    /// Password checks running at once. Argon2id is ~50 ms of one core by design: unbounded,
    /// a stream of sign-in attempts (valid or not) would take every core from ingest.
    password_checks: tokio::sync::Semaphore,
    /// Failed sign-ins per network address (password spraying: `vigil_auth::source`).
    addresses: Mutex<SourceFailures>,
}

/// Network addresses whose failed sign-ins are remembered at most (about 100 bytes each).
pub const ADDRESSES_REMEMBERED: usize = 100_000;

/// Password checks (Argon2id) the hub runs at once; the others wait their turn.
pub const CONCURRENT_PASSWORD_CHECKS: usize = 1;

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").finish_non_exhaustive()
    }
}

/// A refusal by the access policy: audited, answered 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forbidden;

impl Access {
    /// Access over `store`, signing sessions with `signer`; people may also sign in through
    /// `oidc`, the hospital's OpenID provider, when it is configured.
    pub fn new(
        store: Arc<dyn Store>,
        signer: TokenSigner,
        settings: AccessSettings,
        auditor: Auditor,
        detection: Option<Detection>,
        oidc: Option<oidc::OidcClient>,
    ) -> Access {
        let verifier = signer.verifier();
        Access {
            inner: Arc::new(Inner {
                store,
                signer,
                verifier,
                auditor,
                detection,
                oidc,
                password_checks: tokio::sync::Semaphore::new(CONCURRENT_PASSWORD_CHECKS),
                addresses: Mutex::new(SourceFailures::new(
                    settings.addresses,
                    ADDRESSES_REMEMBERED,
                )),
                settings,
            }),
        }
    }

    /// The hospital's OpenID provider, when sign-in through it is configured.
    pub fn oidc(&self) -> Option<&oidc::OidcClient> {
        self.inner.oidc.as_ref()
    }

    /// Waits for a turn to check a password (see [`CONCURRENT_PASSWORD_CHECKS`]); the turn
    /// lasts as long as the permit is held.
    pub async fn password_check_turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // The semaphore is never closed; `None` would only mean it was.
        self.inner.password_checks.acquire().await.ok()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The auditor.
    pub fn auditor(&self) -> &Auditor {
        &self.inner.auditor
    }

    /// The settings.
    pub fn settings(&self) -> &AccessSettings {
        &self.inner.settings
    }

    /// Whether `principal` may do `operation` (on `patient`, for patient-scoped operations),
    /// and on what basis. A refusal is audited with the operation and the patient.
    pub fn authorize(
        &self,
        principal: &Principal,
        operation: Operation,
        patient: Option<&PatientId>,
    ) -> Result<Basis, AuthorizeError> {
        let relation = match patient {
            None => Relation::default(),
            Some(patient) => self.relation(principal, patient)?,
        };
        match policy::decide(principal.role, operation, &relation) {
            Decision::Allow(basis) => Ok(basis),
            Decision::Deny(reason) => {
                self.inner.auditor.record_later(entry(
                    Actor::User(principal.user.clone()),
                    action_of(operation),
                    patient.map_or(resource_of(operation), |_| ResourceKind::Patient),
                    patient.map_or("*", |p| p.as_str()),
                    Outcome::Denied,
                    Some(&format!("{operation:?}: {reason:?}")),
                ));
                Err(AuthorizeError::Forbidden(Forbidden))
            }
        }
    }

    fn relation(
        &self,
        principal: &Principal,
        patient: &PatientId,
    ) -> Result<Relation, AuthorizeError> {
        let store = &self.inner.store;
        let now = Timestamp::now();
        Ok(Relation {
            own_record: principal.patient.as_ref() == Some(patient),
            care_team: store.is_on_care_team(&principal.user, patient)?,
            consented: store.has_consent(patient, &principal.user)?,
            break_glass_active: store
                .active_break_glass(&principal.user, patient, now)?
                .is_some(),
        })
    }

    /// Raises an alert the hub itself decided on (a break-glass access, an account locked),
    /// through the same path as detection's alerts.
    pub fn raise(&self, alert: Alert) {
        match &self.inner.detection {
            Some(detection) => detection.raise(alert),
            None => {
                if let Err(error) = self.inner.store.add_alert(&alert) {
                    tracing::error!(%error, "alert could not be stored");
                }
            }
        }
    }

    /// An alert about a person (not a device): break-glass, lockout.
    pub(crate) fn person_alert(
        kind: AlertKind,
        severity: Severity,
        patient: Option<PatientId>,
        facts: &[(&str, String)],
    ) -> Alert {
        Alert {
            time: Timestamp::now(),
            severity,
            kind,
            device: None,
            patient,
            evidence: facts
                .iter()
                .map(|(name, value)| Evidence::Fact {
                    name: (*name).to_owned(),
                    value: value.clone(),
                })
                .collect(),
            attack_technique: None,
        }
    }
}

/// Why an authorisation could not be granted.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The policy refused.
    #[error("forbidden")]
    Forbidden(Forbidden),
    /// The store failed while gathering the facts.
    #[error(transparent)]
    Store(#[from] vigil_store::StoreError),
}

/// What an operation not about one patient applies to, for the audit entry of a refusal.
fn resource_of(operation: Operation) -> ResourceKind {
    match operation {
        Operation::ManageUsers => ResourceKind::User,
        Operation::ListDevices | Operation::ReadDevice | Operation::ManageDevices => {
            ResourceKind::Device
        }
        Operation::ReadAlerts | Operation::HandleAlerts => ResourceKind::Alert,
        Operation::ReadAuditLog | Operation::ReadCheckpoints => ResourceKind::AuditLog,
        _ => ResourceKind::Patient,
    }
}

/// The audit action of an operation.
fn action_of(operation: Operation) -> Action {
    match operation {
        Operation::ManageUsers
        | Operation::ManageCareTeams
        | Operation::ManageDevices
        | Operation::HandleAlerts => Action::Update,
        Operation::ManageConsent => Action::Consent,
        Operation::BreakGlass => Action::BreakGlass,
        _ => Action::Read,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn password_checks_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = vigil_store::seal::Keyring::create(dir.path()).unwrap();
        let store: Arc<dyn Store> =
            Arc::new(vigil_store::SqliteStore::open(dir.path(), Arc::new(keyring)).unwrap());
        let (signer, _) = TokenSigner::generate(ISSUER).unwrap();
        let access = Access::new(
            Arc::clone(&store),
            signer,
            AccessSettings::from_config(&vigil_config::AccessConfig {
                session_hours: 8,
                idle_minutes: 15,
                break_glass_minutes: 60,
                lockout_failures: 5,
                lockout_minutes: 15,
                address_failures: 30,
                address_minutes: 15,
            }),
            Auditor::new(store),
            None,
            None,
        );
        let first = access.password_check_turn().await.unwrap();
        // While one check runs, the next waits.
        let waiting =
            tokio::time::timeout(Duration::from_millis(100), access.password_check_turn());
        assert!(
            waiting.await.is_err(),
            "a second password check ran at once"
        );
        drop(first);
        let next = tokio::time::timeout(Duration::from_secs(5), access.password_check_turn());
        assert!(next.await.unwrap().is_some());
    }
}
