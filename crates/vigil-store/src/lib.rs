//! Vigil's storage.
//!
//! One [`Store`] trait holds what the hub keeps: the device registry (devices, one-time
//! enrolment tokens, every certificate issued and its revocation) and the audit entries. The
//! embedded implementation is [`SqliteStore`] (one WAL-mode SQLite file, `synchronous=FULL`, so
//! that a committed write survives a crash); other back ends implement the same trait, so SQLite
//! specifics stay in `sqlite/`.
//!
//! This crate stores hashes, identifiers and facts; it knows nothing of X.509 or tokens' format
//! (that is `vigil-pki`, above it).

#![forbid(unsafe_code)]

mod records;
pub mod sqlite;

pub use records::{
    CertificateRecord, DeviceRecord, DeviceStatus, RevokedCertificate, TokenRecord, TokenRefusal,
};
pub use sqlite::SqliteStore;

use vigil_model::{AuditEntry, DeviceId, Timestamp};

/// A storage failure. Never carries PHI.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The database file cannot be created or opened.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A stored value does not parse (the database was edited or is from a newer Vigil).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer Vigil.
    #[error("database schema version {found} is newer than this Vigil understands ({supported})")]
    SchemaTooNew {
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// A device with this id already exists.
    #[error("device {0} already exists")]
    DeviceExists(DeviceId),
    /// No device with this id.
    #[error("device {0} is not registered")]
    NoSuchDevice(DeviceId),
    /// A certificate with this serial or fingerprint is already recorded.
    #[error("certificate already recorded")]
    CertificateExists,
}

/// What the hub keeps.
pub trait Store: Send + Sync {
    /// Registers a device together with its first enrolment token, atomically.
    fn add_device(&self, device: &DeviceRecord, token: &TokenRecord) -> Result<(), StoreError>;

    /// Adds another enrolment token for an existing, not revoked device (replacing a device's
    /// hardware, or a token that expired unused). Earlier unused tokens stop working.
    fn add_token(&self, token: &TokenRecord) -> Result<(), StoreError>;

    /// One device.
    fn device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError>;

    /// Every device, by id.
    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError>;

    /// Checks and spends an enrolment token in one transaction. `secret_matches` compares the
    /// presented secret against the stored hash (in constant time, by the caller). A token is
    /// spent only if its secret matches, it is unused and unexpired, and its device is not
    /// revoked; the refusal says which, but reveals nothing to a caller without the secret.
    fn spend_token(
        &self,
        token_id: &str,
        now: Timestamp,
        secret_matches: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Result<DeviceRecord, TokenRefusal>, StoreError>;

    /// Records a certificate issued to a device and marks the device active.
    fn record_certificate(&self, certificate: &CertificateRecord) -> Result<(), StoreError>;

    /// Every certificate issued to a device, oldest first.
    fn certificates_of(&self, device: &DeviceId) -> Result<Vec<CertificateRecord>, StoreError>;

    /// The certificate with this SHA-256 fingerprint, if Vigil issued it.
    fn certificate_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<CertificateRecord>, StoreError>;

    /// Revokes a device and every certificate it holds; returns the serials newly revoked.
    fn revoke_device(
        &self,
        device: &DeviceId,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<String>, StoreError>;

    /// Every revoked certificate that has not yet expired at `now`: the CRL's content.
    fn revoked_certificates(&self, now: Timestamp) -> Result<Vec<RevokedCertificate>, StoreError>;

    /// The next CRL number (monotonic, starting at 2: `vigil init` signs number 1).
    fn next_crl_number(&self) -> Result<u64, StoreError>;

    /// Appends an audit entry; returns its sequence number (0-based, gapless).
    fn append_audit(&self, entry: &AuditEntry) -> Result<u64, StoreError>;

    /// Audit entries from `from` (inclusive), at most `limit`.
    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}
