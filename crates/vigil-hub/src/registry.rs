//! The device registry service: registration, enrolment, renewal, offline issuance and
//! revocation, each audited. The command line and the HTTPS API both go through it.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use vigil_model::{Action, Actor, DeviceClass, DeviceId, Outcome, ResourceKind, Timestamp};
use vigil_pki::{
    CsrError, HospitalCa, IssuedCertificate, NewToken, PkiDir, PkiError, PresentedToken,
    Revocation, RevocationReason, ValidatedCsr,
};
use vigil_store::{
    CertificateRecord, DeviceRecord, DeviceStatus, Store, StoreError, TokenRecord, TokenRefusal,
};

use crate::audit::{Auditor, entry};
use crate::detection::Detection;

/// How long a CRL is valid; `vigil serve` signs a fresh one well before.
pub const CRL_VALIDITY: Duration = Duration::days(7);

/// Lifetimes the registry applies.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Device certificates.
    pub certificate: Duration,
    /// Enrolment tokens.
    pub token: Duration,
}

impl Lifetimes {
    /// From the `[pki]` configuration.
    pub fn from_config(pki: &vigil_config::PkiConfig) -> Lifetimes {
        Lifetimes {
            certificate: Duration::days(i64::from(pki.device_certificate_days)),
            token: Duration::hours(i64::from(pki.enrolment_token_hours)),
        }
    }
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request's CSR is unusable (client error).
    #[error(transparent)]
    Csr(#[from] CsrError),
    /// The enrolment token is malformed (client error).
    #[error("enrolment token is malformed")]
    MalformedToken,
    /// The token was refused (client error).
    #[error("{}", refusal_text(*.0))]
    Token(TokenRefusal),
    /// The device is not registered (client error).
    #[error("device {0} is not registered")]
    UnknownDevice(DeviceId),
    /// The device is revoked (client error).
    #[error("device {0} is revoked")]
    Revoked(DeviceId),
    /// The device already exists (client error).
    #[error("device {0} already exists")]
    DeviceExists(DeviceId),
    /// Storage failed (server error).
    #[error(transparent)]
    Store(StoreError),
    /// Certificate generation failed (server error).
    #[error(transparent)]
    Pki(#[from] PkiError),
}

impl From<StoreError> for RegistryError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::DeviceExists(id) => RegistryError::DeviceExists(id),
            StoreError::NoSuchDevice(id) => RegistryError::UnknownDevice(id),
            other => RegistryError::Store(other),
        }
    }
}

fn refusal_text(refusal: TokenRefusal) -> &'static str {
    match refusal {
        TokenRefusal::Invalid => "enrolment token is not valid",
        TokenRefusal::Expired => {
            "enrolment token has expired; ask for a new one (vigil device token)"
        }
        TokenRefusal::AlreadyUsed => "enrolment token was already used or replaced",
        TokenRefusal::DeviceRevoked => "the device of this enrolment token is revoked",
    }
}

/// A registered device and its one-time token (shown once).
#[derive(Debug)]
pub struct Registration {
    /// The device.
    pub device: DeviceId,
    /// The whole token, to hand to whoever sets the device up.
    pub token: String,
    /// When the token stops working.
    pub expires_at: Timestamp,
}

/// The device registry.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    ca: Arc<HospitalCa>,
    pki: PkiDir,
    lifetimes: Lifetimes,
    auditor: Auditor,
    detection: Option<Detection>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

fn to_offset(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.unix_millis()) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn from_offset(t: OffsetDateTime) -> Timestamp {
    let millis = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    Timestamp::from_unix_millis(millis).unwrap_or(Timestamp::EPOCH)
}

impl Registry {
    /// A registry over `store`, issuing with `ca`, writing the CRL into `pki`.
    pub fn new(
        store: Arc<dyn Store>,
        ca: Arc<HospitalCa>,
        pki: PkiDir,
        lifetimes: Lifetimes,
        auditor: Auditor,
    ) -> Registry {
        Registry {
            store,
            ca,
            pki,
            lifetimes,
            auditor,
            detection: None,
        }
    }

    /// Reports refused enrolments to `detection`.
    pub fn with_detection(mut self, detection: Detection) -> Registry {
        self.detection = Some(detection);
        self
    }

    /// Where this registry reports to detection, if anywhere.
    pub fn detection(&self) -> Option<&Detection> {
        self.detection.as_ref()
    }

    /// The store this registry writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The CA.
    pub fn ca(&self) -> &Arc<HospitalCa> {
        &self.ca
    }

    /// The PKI folder (CRL, hub certificate).
    pub fn pki(&self) -> &PkiDir {
        &self.pki
    }

    /// The auditor.
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    fn audit(
        &self,
        actor: Actor,
        action: Action,
        id: &str,
        outcome: Outcome,
        reason: Option<&str>,
    ) {
        if let Err(error) = self.auditor.record(&entry(
            actor,
            action,
            ResourceKind::Device,
            id,
            outcome,
            reason,
        )) {
            tracing::error!(%error, "audit entry could not be written");
        }
    }

    fn new_token(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> Result<(NewToken, TokenRecord), RegistryError> {
        let token = NewToken::generate()?;
        let expires_at = from_offset(to_offset(now) + self.lifetimes.token);
        let record = TokenRecord {
            id: token.id.clone(),
            device: device.clone(),
            secret_hash: token.secret_hash.to_vec(),
            created_at: now,
            expires_at,
        };
        Ok((token, record))
    }

    /// Registers a device and returns its one-time enrolment token.
    pub fn register(
        &self,
        actor: Actor,
        device: DeviceId,
        class: DeviceClass,
    ) -> Result<Registration, RegistryError> {
        let now = Timestamp::now();
        let (token, record) = self.new_token(&device, now)?;
        let result = self.store.add_device(
            &DeviceRecord {
                id: device.clone(),
                class,
                status: DeviceStatus::Registered,
                created_at: now,
                revoked_at: None,
            },
            &record,
        );
        self.audit_result(actor, Action::Create, &device, &result);
        result?;
        Ok(Registration {
            device,
            token: token.token,
            expires_at: record.expires_at,
        })
    }

    /// A new enrolment token for a registered device (the old one stops working).
    pub fn reissue_token(
        &self,
        actor: Actor,
        device: DeviceId,
    ) -> Result<Registration, RegistryError> {
        let now = Timestamp::now();
        let (token, record) = self.new_token(&device, now)?;
        let result = self.store.add_token(&record);
        self.audit_result(actor, Action::Update, &device, &result);
        result?;
        Ok(Registration {
            device,
            token: token.token,
            expires_at: record.expires_at,
        })
    }

    fn audit_result<T, E: std::fmt::Display>(
        &self,
        actor: Actor,
        action: Action,
        device: &DeviceId,
        result: &Result<T, E>,
    ) {
        match result {
            Ok(_) => self.audit(actor, action, device.as_str(), Outcome::Success, None),
            Err(error) => self.audit(
                actor,
                action,
                device.as_str(),
                Outcome::Failed,
                Some(&error.to_string()),
            ),
        }
    }

    /// Enrols a device: spends its token and issues a certificate for the key in `csr`.
    /// Returns the device and the PEM chain (device certificate, then CA).
    pub fn enroll(&self, token: &str, csr: &[u8]) -> Result<(DeviceId, String), RegistryError> {
        let actor = Actor::Unauthenticated("enrolment".into());
        let presented = match PresentedToken::parse(token) {
            Ok(presented) => presented,
            Err(_) => {
                self.audit(
                    actor,
                    Action::Enroll,
                    "unknown",
                    Outcome::Denied,
                    Some("malformed token"),
                );
                if let Some(detection) = &self.detection {
                    // A real token's id with a mangled secret still names a device.
                    let device = token
                        .split('.')
                        .nth(1)
                        .filter(|id| id.len() <= 64)
                        .and_then(|id| self.store.token_device(id).ok().flatten());
                    detection.report(vigil_detect::Event::Refused {
                        at: Timestamp::now(),
                        device,
                        address: None,
                        refusal: vigil_detect::Refusal::EnrolmentToken,
                    });
                }
                return Err(RegistryError::MalformedToken);
            }
        };
        // Check the request before spending the token: a bad CSR must not burn it.
        let csr = match ValidatedCsr::parse(csr) {
            Ok(csr) => csr,
            Err(error) => {
                self.audit(
                    actor,
                    Action::Enroll,
                    "unknown",
                    Outcome::Denied,
                    Some(&error.to_string()),
                );
                return Err(error.into());
            }
        };
        let now = Timestamp::now();
        let device = match self
            .store
            .spend_token(&presented.id, now, &|hash| presented.matches(hash))?
        {
            Ok(device) => device,
            Err(refusal) => {
                self.audit(
                    actor,
                    Action::Enroll,
                    "unknown",
                    Outcome::Denied,
                    Some(refusal_text(refusal)),
                );
                if let Some(detection) = &self.detection {
                    // Whose token it was, for the alert only: the caller learns nothing more.
                    let device = self.store.token_device(&presented.id).ok().flatten();
                    detection.report(vigil_detect::Event::Refused {
                        at: now,
                        device,
                        address: None,
                        refusal: vigil_detect::Refusal::EnrolmentToken,
                    });
                }
                return Err(RegistryError::Token(refusal));
            }
        };
        let chain = self.issue(&device.id, &csr, now, "enroll")?;
        self.audit(
            Actor::Device(device.id.clone()),
            Action::Enroll,
            device.id.as_str(),
            Outcome::Success,
            None,
        );
        Ok((device.id, chain))
    }

    /// Renews the certificate of an authenticated device, for the key in `csr` (the same key or
    /// a new one).
    pub fn renew(&self, device: &DeviceId, csr: &[u8]) -> Result<String, RegistryError> {
        let actor = Actor::Device(device.clone());
        let result = ValidatedCsr::parse(csr)
            .map_err(RegistryError::from)
            .and_then(|csr| {
                self.require_unrevoked(device)?;
                self.issue(device, &csr, Timestamp::now(), "renew")
            });
        self.audit_result(actor, Action::Renew, device, &result);
        result
    }

    /// Issues a certificate for an air-gapped device from a CSR file (no token: the operator
    /// at the command line vouches for the device).
    pub fn issue_offline(
        &self,
        actor: Actor,
        device: &DeviceId,
        csr: &[u8],
    ) -> Result<String, RegistryError> {
        let result = ValidatedCsr::parse(csr)
            .map_err(RegistryError::from)
            .and_then(|csr| {
                self.require_unrevoked(device)?;
                self.issue(device, &csr, Timestamp::now(), "offline")
            });
        self.audit_result(actor, Action::Enroll, device, &result);
        result
    }

    fn require_unrevoked(&self, device: &DeviceId) -> Result<(), RegistryError> {
        match self.store.device(device)? {
            None => Err(RegistryError::UnknownDevice(device.clone())),
            Some(record) if record.status == DeviceStatus::Revoked => {
                Err(RegistryError::Revoked(device.clone()))
            }
            Some(_) => Ok(()),
        }
    }

    fn issue(
        &self,
        device: &DeviceId,
        csr: &ValidatedCsr,
        now: Timestamp,
        via: &str,
    ) -> Result<String, RegistryError> {
        let issued: IssuedCertificate =
            self.ca
                .issue_device(device, csr, self.lifetimes.certificate, to_offset(now))?;
        let facts = &issued.facts;
        self.store.record_certificate(&CertificateRecord {
            serial: facts.serial.clone(),
            device: device.clone(),
            fingerprint: facts.fingerprint.clone(),
            not_before: facts.not_before,
            not_after: facts.not_after,
            key_kind: csr.key.kind.as_str().to_owned(),
            key_bits: csr.key.bits,
            issued_at: now,
            issued_via: via.to_owned(),
            revoked_at: None,
            revocation_reason: None,
        })?;
        tracing::info!(device = %device, serial = %facts.serial, via, "certificate issued");
        Ok(self.ca.chain_pem(&issued))
    }

    /// Revokes a device and all its certificates, and publishes a new CRL.
    pub fn revoke(
        &self,
        actor: Actor,
        device: &DeviceId,
        reason: RevocationReason,
    ) -> Result<Vec<String>, RegistryError> {
        let result = self
            .store
            .revoke_device(device, reason.as_str(), Timestamp::now())
            .map_err(RegistryError::from)
            .and_then(|serials| {
                self.publish_crl()?;
                Ok(serials)
            });
        match &result {
            Ok(_) => self.audit(
                actor,
                Action::Revoke,
                device.as_str(),
                Outcome::Success,
                Some(reason.as_str()),
            ),
            Err(error) => self.audit(
                actor,
                Action::Revoke,
                device.as_str(),
                Outcome::Failed,
                Some(&error.to_string()),
            ),
        }
        result
    }

    /// Signs a CRL of every revoked, unexpired certificate and writes it to the data directory.
    pub fn publish_crl(&self) -> Result<(), RegistryError> {
        let now = Timestamp::now();
        let revoked = self
            .store
            .revoked_certificates(now)?
            .into_iter()
            .map(|r| Revocation {
                serial: r.serial,
                revoked_at: to_offset(r.revoked_at),
                reason: r.reason.parse().unwrap_or(RevocationReason::Unspecified),
            })
            .collect::<Vec<_>>();
        let number = self.store.next_crl_number()?;
        let now = to_offset(now);
        let der = self
            .ca
            .sign_crl(&revoked, number, now, now + CRL_VALIDITY)?;
        self.pki.write_crl(&der)?;
        tracing::info!(number, revoked = revoked.len(), "revocation list published");
        Ok(())
    }
}
