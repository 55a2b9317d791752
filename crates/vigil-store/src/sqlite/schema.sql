-- Vigil store, schema version 1.
-- Times are milliseconds since the Unix epoch (UTC). Every piece of PHI is sealed (AES-256-GCM
-- under the patient's data key); what stays in clear is listed in docs/storage.md with why.

CREATE TABLE devices (
    id                TEXT PRIMARY KEY,
    class             TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('registered', 'active', 'revoked')),
    created_at        INTEGER NOT NULL,
    revoked_at        INTEGER,
    revocation_reason TEXT
) STRICT;

-- Only the SHA-256 of a token's secret is kept.
CREATE TABLE enrolment_tokens (
    id          TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices (id),
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;
CREATE INDEX enrolment_tokens_device ON enrolment_tokens (device_id);

-- Every certificate ever issued, for posture checks and the CRL.
CREATE TABLE certificates (
    serial            TEXT PRIMARY KEY,
    device_id         TEXT NOT NULL REFERENCES devices (id),
    fingerprint       TEXT NOT NULL UNIQUE,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    key_kind          TEXT NOT NULL,
    key_bits          INTEGER NOT NULL,
    issued_at         INTEGER NOT NULL,
    issued_via        TEXT NOT NULL,
    revoked_at        INTEGER,
    revocation_reason TEXT
) STRICT;
CREATE INDEX certificates_device ON certificates (device_id);

-- The audit log's leaves in order (seq is the leaf index, gapless from 0): audit entries
-- (canonical JSON) and observation batches (the hashes of the rows they stored).
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    time      INTEGER NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('entry', 'batch')),
    data      BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
) STRICT;

-- Signed checkpoints (C2SP signed notes) of the audit tree.
CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    note TEXT NOT NULL
) STRICT;

-- Patients: Vigil's pseudonymous id in clear; identifying data sealed.
CREATE TABLE patients (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    name       BLOB NOT NULL,
    mrn        BLOB NOT NULL,
    birth_date BLOB NOT NULL,
    erased_at  INTEGER
) STRICT;

-- Each patient's data key, wrapped by a key-encryption key from the keyring (outside this
-- file). NULL once erased: the patient's sealed data can no longer be opened.
CREATE TABLE patient_keys (
    patient_id TEXT PRIMARY KEY REFERENCES patients (id),
    kek_id     INTEGER,
    wrapped    BLOB
) STRICT;

-- Which device served which patient when (to_time NULL: still serving).
CREATE TABLE device_assignments (
    device_id  TEXT NOT NULL REFERENCES devices (id),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    from_time  INTEGER NOT NULL,
    to_time    INTEGER,
    PRIMARY KEY (device_id, from_time)
) STRICT;

-- Observations: the value sealed; patient, device, quantity (MDC code), time and sequence in
-- clear for indexing and deduplication; batch = the audit leaf that holds the row's hash.
CREATE TABLE observations (
    id        INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    quantity  INTEGER NOT NULL,
    time      INTEGER NOT NULL,
    sequence  INTEGER NOT NULL,
    flags     INTEGER NOT NULL,
    value     BLOB NOT NULL,
    batch     INTEGER NOT NULL,
    UNIQUE (device_id, sequence, quantity, time)
) STRICT;
CREATE INDEX observations_by_patient ON observations (patient_id, quantity, time);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO counters (name, value) VALUES ('crl_number', 1);

-- People who use Vigil. Credentials arrive with sign-in; accounts are disabled, never deleted.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    disabled_at INTEGER
) STRICT;

-- Security alerts. facts: JSON of non-PHI evidence; clinical: clinical evidence sealed under the
-- patient's data key (NULL when there is none).
CREATE TABLE alerts (
    id         INTEGER PRIMARY KEY,
    time       INTEGER NOT NULL,
    severity   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    device_id  TEXT,
    patient_id TEXT,
    technique  TEXT,
    facts      TEXT NOT NULL,
    clinical   BLOB,
    status     TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'closed')),
    handled_by TEXT,
    handled_at INTEGER
) STRICT;
CREATE INDEX alerts_by_status ON alerts (status, time);
