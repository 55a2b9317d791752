//! Vigil's storage.
//!
//! One [`Store`] trait holds what the hub keeps: the device registry (devices, one-time
//! enrolment tokens, every certificate issued and its revocation), the audit log's leaves and
//! checkpoints, and the clinical record (patients, device assignments, observations) with every
//! piece of PHI sealed ([`seal`]). The
//! embedded implementation is [`SqliteStore`] (one WAL-mode SQLite file, `synchronous=FULL`, so
//! that a committed write survives a crash); other back ends implement the same trait, so SQLite
//! specifics stay in `sqlite/`.
//!
//! This crate knows nothing of X.509 or tokens' format (that is `vigil-pki`, above it).

#![forbid(unsafe_code)]

pub mod intake;
mod records;
pub mod sqlite;

pub mod seal;

pub use records::{
    Assignment, BreakGlassRecord, CertificateRecord, Channel, ConsentRecord, Credentials,
    Demographics, DeviceRecord, DeviceStatus, ObservationQuery, PatientRecord, QueuedMessage,
    Receipt, RevokedCertificate, SessionRecord, StoredAlert, StoredObservation, TokenRecord,
    TokenRefusal, UserRecord, UserSessionRecord,
};
pub use sqlite::SqliteStore;

use vigil_model::{
    Alert, AlertStatus, AuditEntry, DeviceId, Observation, PatientId, Quantity, Timestamp, UserId,
};

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
    /// A user with this id already exists.
    #[error("user {0} already exists")]
    UserExists(UserId),
    /// No user with this id.
    #[error("user {0} is not known")]
    NoSuchUser(UserId),
    /// No alert with this id.
    #[error("alert {0} is not known")]
    NoSuchAlert(u64),
    /// A patient with this id already exists.
    #[error("patient {0} already exists")]
    PatientExists(PatientId),
    /// No patient with this id.
    #[error("patient {0} is not known")]
    NoSuchPatient(PatientId),
    /// An observation names no patient.
    #[error("observation from device {0} names no patient")]
    NoPatient(DeviceId),
    /// Sealing or opening failed.
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    /// The committer thread has stopped.
    #[error("the observation committer has stopped")]
    CommitterStopped,
    /// An erasure is recorded, but old copies of the erased key may remain in the write-ahead
    /// log until the next checkpoint (long-running readers prevented it); retry the erasure.
    #[error("erasure recorded, but the write-ahead log could not be purged yet; run it again")]
    PurgeIncomplete,
    /// The batch holding the observations failed and was rolled back.
    #[error("the batch could not be committed: {0}")]
    BatchFailed(String),
    /// The committer's queue is full: the sender should slow down and retry.
    #[error("the store is busy; retry later")]
    Overloaded,
    /// Observations of a patient who cannot take them (unknown or erased).
    #[error("observations for patient {patient} refused: {reason}")]
    Refused {
        /// The patient.
        patient: PatientId,
        /// Why.
        reason: String,
    },
}

/// What the hub keeps: the device registry, the audit log and the clinical record.
pub trait Store:
    RegistryStore + AuditStore + ClinicalStore + UserStore + AccessStore + AlertStore + OutboxStore
{
}

impl<T> Store for T where
    T: RegistryStore
        + AuditStore
        + ClinicalStore
        + UserStore
        + AccessStore
        + AlertStore
        + OutboxStore
{
}

/// How people get in and what they may see: credentials, sign-in failures, sessions, the care
/// team, patients' consents and break-glass grants. Decisions are the caller's (`vigil-auth`);
/// this keeps the facts.
pub trait AccessStore: Send + Sync {
    /// Sets a user's password hash (an Argon2id PHC string).
    fn set_password(&self, user: &UserId, phc: &str) -> Result<(), StoreError>;
    /// Sets (or, with `None`, removes) a user's second-factor secret (20 bytes), wrapped by
    /// the keyring; the last accepted time step is forgotten.
    fn set_totp_secret(&self, user: &UserId, secret: Option<&[u8]>) -> Result<(), StoreError>;
    /// A user's credentials, the second-factor secret unwrapped; `None` for an unknown user.
    fn credentials(&self, user: &UserId) -> Result<Option<Credentials>, StoreError>;
    /// Records that a second-factor code of time step `step` was accepted, if it is newer than
    /// the last one accepted; `false` if it is not (a replayed code).
    fn accept_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError>;
    /// Links a user whose role is patient to the patient they are.
    fn set_user_patient(&self, user: &UserId, patient: &PatientId) -> Result<(), StoreError>;
    /// The patient a user is, if any.
    fn user_patient(&self, user: &UserId) -> Result<Option<PatientId>, StoreError>;
    /// Records a failed sign-in at `at`, forgets failures before `keep_after`; the failures
    /// kept, oldest first.
    fn record_sign_in_failure(
        &self,
        user: &UserId,
        at: Timestamp,
        keep_after: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError>;
    /// The failed sign-ins kept for a user, oldest first.
    fn sign_in_failures(&self, user: &UserId) -> Result<Vec<Timestamp>, StoreError>;
    /// Forgets a user's failed sign-ins (after a success, or an administrator's unlock).
    fn clear_sign_in_failures(&self, user: &UserId) -> Result<(), StoreError>;
    /// Stores a new session.
    fn add_user_session(&self, session: &UserSessionRecord) -> Result<(), StoreError>;
    /// One session.
    fn user_session(&self, id: &str) -> Result<Option<UserSessionRecord>, StoreError>;
    /// Notes that a session was used at `at` (for the idle timeout).
    fn touch_user_session(&self, id: &str, at: Timestamp) -> Result<(), StoreError>;
    /// Ends a session (sign-out); `false` if it had already ended.
    fn revoke_user_session(&self, id: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// Ends every session of a user; how many.
    fn revoke_sessions_of(&self, user: &UserId, at: Timestamp) -> Result<usize, StoreError>;
    /// Puts a user on a patient's care team; `false` if they already were.
    fn add_to_care_team(
        &self,
        user: &UserId,
        patient: &PatientId,
        at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Takes a user off a patient's care team (kept for the record); `false` if not on it.
    fn remove_from_care_team(
        &self,
        user: &UserId,
        patient: &PatientId,
        at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Whether a user is on a patient's care team now.
    fn is_on_care_team(&self, user: &UserId, patient: &PatientId) -> Result<bool, StoreError>;
    /// The patients whose care team a user is on now.
    fn care_team_patients(&self, user: &UserId) -> Result<Vec<PatientId>, StoreError>;
    /// A patient shares their record with a user; `false` if they already did.
    fn grant_consent(
        &self,
        patient: &PatientId,
        user: &UserId,
        at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// A patient stops sharing with a user; `false` if they did not.
    fn withdraw_consent(
        &self,
        patient: &PatientId,
        user: &UserId,
        at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Whether a patient shares their record with a user now.
    fn has_consent(&self, patient: &PatientId, user: &UserId) -> Result<bool, StoreError>;
    /// Every consent a patient gave, withdrawn ones included.
    fn consents(&self, patient: &PatientId) -> Result<Vec<ConsentRecord>, StoreError>;
    /// The patients who share their record with a user now.
    fn consented_patients(&self, user: &UserId) -> Result<Vec<PatientId>, StoreError>;
    /// Records an emergency access grant; its id.
    fn open_break_glass(&self, grant: &BreakGlassRecord) -> Result<u64, StoreError>;
    /// When a user's break-glass access to a patient ends, if one is open at `now`.
    fn active_break_glass(
        &self,
        user: &UserId,
        patient: &PatientId,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError>;
}

/// Messages queued for devices until they are delivered or expire, and the MQTT sessions that
/// outlive a disconnection (so that a device reconnecting finds its subscriptions).
pub trait OutboxStore: Send + Sync {
    /// Queues `payload` for `device` on `channel` until `expires_at`; its id. The payload is
    /// sealed under the data key of the patient the device serves, if any.
    fn queue_message(
        &self,
        device: &DeviceId,
        channel: Channel,
        payload: &[u8],
        queued_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Up to `limit` undelivered, unexpired messages for `device`, oldest first.
    fn pending_messages(
        &self,
        device: &DeviceId,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, StoreError>;

    /// Counts one more attempt to deliver message `id` (a resend is marked duplicate).
    fn note_attempt(&self, id: u64) -> Result<(), StoreError>;

    /// Marks message `id` delivered; `false` if it already was (or is unknown).
    fn mark_delivered(&self, id: u64, at: Timestamp) -> Result<bool, StoreError>;

    /// Deletes delivered and expired messages; how many.
    fn purge_outbox(&self, now: Timestamp) -> Result<usize, StoreError>;

    /// Stores `device`'s session (replacing the previous one).
    fn save_session(&self, device: &DeviceId, session: &SessionRecord) -> Result<(), StoreError>;

    /// `device`'s session, unless it has expired by `now`.
    fn session(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Forgets `device`'s session (a clean start).
    fn end_session(&self, device: &DeviceId) -> Result<(), StoreError>;
}

/// People who use Vigil.
pub trait UserStore: Send + Sync {
    /// Adds a user.
    fn add_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// One user.
    fn user(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError>;
    /// Every user, by id.
    fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Disables a user (kept for the audit trail, never deleted).
    fn disable_user(&self, id: &UserId, now: Timestamp) -> Result<(), StoreError>;
}

/// Security alerts and their handling.
pub trait AlertStore: Send + Sync {
    /// Stores an alert; clinical evidence is sealed under the patient's data key. Returns its id.
    fn add_alert(&self, alert: &Alert) -> Result<u64, StoreError>;
    /// One alert, with clinical evidence unsealed.
    fn alert(&self, id: u64) -> Result<Option<StoredAlert>, StoreError>;
    /// The newest alerts first, optionally only those in `status`, at most `limit`.
    fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError>;
    /// The newest `limit` alerts with an id above `after`, oldest first (clinical evidence
    /// unsealed): what export still owes a sink.
    fn alerts_after(&self, after: u64, limit: usize) -> Result<Vec<StoredAlert>, StoreError>;
    /// The highest alert id; 0 when there is none.
    fn last_alert_id(&self) -> Result<u64, StoreError>;
    /// How far export to `sink` has got: the highest alert id it has finished with; `None`
    /// for a sink never started.
    fn export_cursor(&self, sink: &str) -> Result<Option<u64>, StoreError>;
    /// Records that `sink` has finished with every alert up to `id`. Never moves back.
    fn set_export_cursor(&self, sink: &str, id: u64) -> Result<(), StoreError>;
    /// Moves an alert to `status` (acknowledge, close) on behalf of `by`.
    fn set_alert_status(
        &self,
        id: u64,
        status: AlertStatus,
        by: &UserId,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}

/// Devices, enrolment tokens, certificates and revocations.
pub trait RegistryStore: Send + Sync {
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

    /// The device an enrolment token (by its public id) was made for, whatever its state: for
    /// alerting on a refused token, never for deciding anything.
    fn token_device(&self, token_id: &str) -> Result<Option<DeviceId>, StoreError>;

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
}

/// The audit log's leaves and checkpoints.
pub trait AuditStore: Send + Sync {
    /// Appends an audit entry as a leaf; returns its leaf index (0-based, gapless).
    fn append_audit(&self, entry: &AuditEntry) -> Result<u64, StoreError>;

    /// Audit entries (not batch leaves) from leaf index `from` (inclusive), at most `limit`,
    /// with their leaf indexes.
    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<(u64, AuditEntry)>, StoreError>;

    /// The audit entries about one patient (their record or observations read, changed,
    /// shared, opened in an emergency), newest first, before leaf index `before` if given.
    fn patient_audit_entries(
        &self,
        patient: &PatientId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, AuditEntry)>, StoreError>;

    /// Stored leaf hashes from leaf index `from`, at most `limit`, in order.
    fn leaf_hashes(&self, from: u64, limit: usize) -> Result<Vec<[u8; 32]>, StoreError>;

    /// Stores a signed checkpoint note for a tree size.
    fn add_checkpoint(&self, size: u64, time: Timestamp, note: &str) -> Result<(), StoreError>;

    /// The newest checkpoint (size and note), if any.
    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError>;
}

/// Patients, which device served which patient when, and observations (all PHI sealed).
pub trait ClinicalStore: Send + Sync {
    /// Adds a patient with their identifying data, sealed under a new data key.
    fn add_patient(
        &self,
        id: &PatientId,
        demographics: &Demographics,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// A patient, with their identifying data unsealed (none once erased).
    fn patient(&self, id: &PatientId) -> Result<Option<PatientRecord>, StoreError>;

    /// Records that `device` serves `patient` from `from` on (ending its previous assignment).
    fn assign_device(
        &self,
        device: &DeviceId,
        patient: &PatientId,
        from: Timestamp,
    ) -> Result<(), StoreError>;

    /// The patient `device` served at `at`, if any.
    fn patient_of(&self, device: &DeviceId, at: Timestamp)
    -> Result<Option<PatientId>, StoreError>;

    /// Stores observations durably (group commit) and returns when they are on disk. Each must
    /// name its patient. A duplicate (same device, sequence, quantity and time) is stored once.
    fn commit_observations(&self, observations: Vec<Observation>) -> Result<Receipt, StoreError>;

    /// Like [`ClinicalStore::commit_observations`] without blocking: `done` runs on the
    /// committer thread once the batch holding them is durable (or failed).
    fn submit_observations(&self, observations: Vec<Observation>, done: Completion);

    /// Like [`ClinicalStore::submit_observations`], and `logged` runs as soon as the
    /// observations are durable in the intake log (ADR 0014): safe to acknowledge, and seen by
    /// every read that begins after. `applied` runs once they are in the database, with what
    /// it did. Without the intake log (another process holds it), both wait for the database.
    fn submit_observations_logged(
        &self,
        observations: Vec<Observation>,
        logged: Logged,
        applied: Completion,
    );

    /// A patient's observations of one quantity with `from <= time < to`, oldest first,
    /// unsealed.
    fn observations(
        &self,
        patient: &PatientId,
        quantity: Quantity,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Observation>, StoreError>;

    /// One page of a patient's observations (any quantity of `query.quantities`, or all), oldest
    /// first, unsealed, each with its row id.
    fn observation_page(
        &self,
        query: &ObservationQuery,
    ) -> Result<Vec<StoredObservation>, StoreError>;

    /// How many observations match `query` (its page position and limit ignored).
    fn count_observations(&self, query: &ObservationQuery) -> Result<u64, StoreError>;

    /// One observation by its row id, unsealed.
    fn observation(&self, id: i64) -> Result<Option<StoredObservation>, StoreError>;

    /// Every device that served `patient`, with when (oldest first).
    fn assignments_of(&self, patient: &PatientId) -> Result<Vec<Assignment>, StoreError>;

    /// Destroys a patient's data key: their identifying data and observation values become
    /// unreadable for good (crypto-shredding).
    fn erase_patient(&self, id: &PatientId, now: Timestamp) -> Result<(), StoreError>;

    /// Re-wraps every patient's data key under the keyring's active key-encryption key (after
    /// a rotation); returns how many were re-wrapped.
    fn rewrap_data_keys(&self) -> Result<usize, StoreError>;
}

/// Called once a submitted batch is durable, or failed.
pub type Completion = Box<dyn FnOnce(Result<Receipt, StoreError>) + Send>;

/// Called once submitted observations are durable in the intake log, or failed.
pub type Logged = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
