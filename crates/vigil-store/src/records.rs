//! The rows of the device registry.

use std::fmt;
use std::str::FromStr;

use vigil_model::phi::{BirthDate, MedicalRecordNumber, PatientName};
use vigil_model::{
    Alert, AlertStatus, DeviceClass, DeviceId, Observation, PatientId, Quantity, Role, Timestamp,
    UserId,
};

/// Where a device is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Registered, waiting to enrol.
    Registered,
    /// Holds a certificate.
    Active,
    /// Revoked: may not connect, enrol or renew.
    Revoked,
}

impl DeviceStatus {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Registered => "registered",
            DeviceStatus::Active => "active",
            DeviceStatus::Revoked => "revoked",
        }
    }
}

impl FromStr for DeviceStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "registered" => Ok(DeviceStatus::Registered),
            "active" => Ok(DeviceStatus::Active),
            "revoked" => Ok(DeviceStatus::Revoked),
            other => Err(format!("unknown device status {other:?}")),
        }
    }
}

impl fmt::Display for DeviceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Its id.
    pub id: DeviceId,
    /// Its class.
    pub class: DeviceClass,
    /// Where it is in its life.
    pub status: DeviceStatus,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// A stored enrolment token: only the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's public id.
    pub id: String,
    /// The device it enrols.
    pub device: DeviceId,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// Why a token was not spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Unknown id or wrong secret (indistinguishable on purpose).
    Invalid,
    /// The secret matched but the token is past its expiry.
    Expired,
    /// The secret matched but the token was already used (or replaced by a newer one).
    AlreadyUsed,
    /// The secret matched but the device is revoked.
    DeviceRevoked,
}

/// A certificate issued to a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Serial, lowercase hex.
    pub serial: String,
    /// The device it names.
    pub device: DeviceId,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// Key kind (`ecdsa-p256`, `ecdsa-p384`, `ed25519`, `rsa`).
    pub key_kind: String,
    /// Key size in bits.
    pub key_bits: u32,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// How: `enroll`, `renew` or `offline`.
    pub issued_via: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Why, if it was.
    pub revocation_reason: Option<String>,
}

/// A revoked certificate, as the CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// Serial, lowercase hex.
    pub serial: String,
    /// When it was revoked.
    pub revoked_at: Timestamp,
    /// Why.
    pub reason: String,
}

/// A patient's identifying data. Every field is PHI and sealed at rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Demographics {
    /// Name as recorded by the hospital.
    pub name: PatientName,
    /// Medical record number.
    pub mrn: MedicalRecordNumber,
    /// Date of birth.
    pub birth_date: BirthDate,
}

/// A patient as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientRecord {
    /// Vigil's pseudonymous id.
    pub id: PatientId,
    /// When the patient was added.
    pub created_at: Timestamp,
    /// Identifying data; `None` once the patient was erased.
    pub demographics: Option<Demographics>,
    /// When the patient's data key was destroyed, if it was.
    pub erased_at: Option<Timestamp>,
}

/// What a durable commit of observations did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The batch (one audit leaf) that holds them.
    pub batch: u64,
    /// Observations newly stored.
    pub stored: usize,
    /// Observations already stored before (same device, sequence, quantity and time).
    pub duplicates: usize,
}

/// A person who uses Vigil.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Their user name.
    pub id: UserId,
    /// What they may do.
    pub role: Role,
    /// When the account was made.
    pub created_at: Timestamp,
    /// When it was disabled, if it was.
    pub disabled_at: Option<Timestamp>,
}

/// An alert as stored, with its handling.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    /// Its id.
    pub id: u64,
    /// The alert (clinical evidence unsealed).
    pub alert: Alert,
    /// Where it is in its handling.
    pub status: AlertStatus,
    /// Who last changed its status, and when.
    pub handled: Option<(UserId, Timestamp)>,
}

/// Where a queued message goes: the device's command topic or its firmware-notice topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `vigil/v1/d/{id}/cmd`.
    Commands,
    /// `vigil/v1/d/{id}/fw`.
    Firmware,
}

impl Channel {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Commands => "cmd",
            Channel::Firmware => "fw",
        }
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Channel, String> {
        match s {
            "cmd" => Ok(Channel::Commands),
            "fw" => Ok(Channel::Firmware),
            other => Err(format!("unknown channel {other:?}")),
        }
    }
}

/// A message waiting for its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Its id (increasing in queue order).
    pub id: u64,
    /// The device it is for.
    pub device: DeviceId,
    /// Where it goes.
    pub channel: Channel,
    /// The payload, unsealed.
    pub payload: Vec<u8>,
    /// When it was queued.
    pub queued_at: Timestamp,
    /// After this it is never delivered.
    pub expires_at: Timestamp,
    /// Deliveries tried so far (sent, not yet acknowledged).
    pub attempts: u32,
}

/// What the hub remembers of a device's MQTT session between connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Subscribed to its command topic.
    pub commands: bool,
    /// Subscribed to its firmware-notice topic.
    pub firmware: bool,
    /// How long the session outlives a disconnection.
    pub expiry_seconds: u32,
    /// When its last connection ended (`None` while connected).
    pub ended_at: Option<Timestamp>,
}

impl SessionRecord {
    /// Whether the session has expired by `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.ended_at.is_some_and(|ended| {
            now.unix_millis() - ended.unix_millis() >= i64::from(self.expiry_seconds) * 1000
        })
    }
}

/// What a user signs in with. The password hash and second-factor secret are secrets: never
/// logged (`Debug` redacts them).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The Argon2id PHC string; `None` until a password is set.
    pub password: Option<String>,
    /// The second-factor (TOTP) secret, unwrapped; `None` until enrolled.
    pub totp_secret: Option<Vec<u8>>,
    /// The last second-factor time step accepted.
    pub totp_step: Option<u64>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field(
                "totp_secret",
                &self.totp_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("totp_step", &self.totp_step)
            .finish()
    }
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSessionRecord {
    /// Its id (random, in the session token).
    pub id: String,
    /// Whose.
    pub user: UserId,
    /// When it began.
    pub created_at: Timestamp,
    /// When it was last used (for the idle timeout).
    pub last_used: Timestamp,
    /// When it ends regardless of use.
    pub expires_at: Timestamp,
    /// When it was ended early (sign-out, a disabled account).
    pub revoked_at: Option<Timestamp>,
}

/// A patient's consent to share their record with one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    /// The patient who shares.
    pub patient: PatientId,
    /// With whom.
    pub user: UserId,
    /// Since when.
    pub granted_at: Timestamp,
    /// Until when, if withdrawn.
    pub withdrawn_at: Option<Timestamp>,
}

/// Emergency access to one patient's record outside the care team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassRecord {
    /// The clinician.
    pub user: UserId,
    /// The patient.
    pub patient: PatientId,
    /// The reason they gave (no PHI: chosen from a list, or short).
    pub reason: String,
    /// When it was opened.
    pub opened_at: Timestamp,
    /// When it lapses.
    pub expires_at: Timestamp,
}

/// Which of a patient's observations to read, and where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationQuery {
    /// The patient.
    pub patient: PatientId,
    /// The quantities wanted; empty: all.
    pub quantities: Vec<Quantity>,
    /// From this time, inclusive.
    pub from: Timestamp,
    /// To this time, exclusive.
    pub to: Timestamp,
    /// Start after this (time, row id): the last row of the previous page.
    pub after: Option<(Timestamp, i64)>,
    /// At most this many rows.
    pub limit: usize,
}

/// An observation with its row id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObservation {
    /// Its row id (stable; the FHIR resource id is made from it).
    pub id: i64,
    /// The observation, unsealed.
    pub observation: Observation,
}

/// A device serving a patient over a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The device.
    pub device: DeviceId,
    /// The patient.
    pub patient: PatientId,
    /// From when.
    pub from: Timestamp,
    /// Until when (`None`: still serving).
    pub to: Option<Timestamp>,
}
