-- Vigil store, schema version 1: the device registry and the audit entries.
-- Times are milliseconds since the Unix epoch (UTC). Nothing here is PHI.

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

-- Audit entries in order; seq is gapless from 0.
CREATE TABLE audit_log (
    seq   INTEGER PRIMARY KEY,
    time  INTEGER NOT NULL,
    entry TEXT NOT NULL
) STRICT;

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO counters (name, value) VALUES ('crl_number', 1);
