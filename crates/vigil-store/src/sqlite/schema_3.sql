-- Version 3: people's access. Sign-in (password hash, second factor, failures, sessions), the
-- care team, patients' consents, break-glass grants, and an index from patients to the audit
-- entries about them (what a patient sees of who accessed their record).

-- password: an Argon2id PHC string (never the password). totp: the second factor's secret,
-- wrapped by the keyring like a patient's data key (it must be recoverable to check a code);
-- totp_step: the last time step accepted, so that a code is never accepted twice.
-- patient_id: for a user whose role is patient, the patient they are.
ALTER TABLE users ADD COLUMN password TEXT;
ALTER TABLE users ADD COLUMN totp_kek_id INTEGER;
ALTER TABLE users ADD COLUMN totp BLOB;
ALTER TABLE users ADD COLUMN totp_step INTEGER;
ALTER TABLE users ADD COLUMN patient_id TEXT REFERENCES patients (id);

-- Recent failed sign-ins, for lockout (pruned to a window).
CREATE TABLE sign_in_failures (
    user_id TEXT NOT NULL REFERENCES users (id),
    time    INTEGER NOT NULL
) STRICT;
CREATE INDEX sign_in_failures_by_user ON sign_in_failures (user_id, time);

-- Sessions: the token carries the id; a session ends at expires_at, after idle_timeout of no
-- use, or when revoked (logout, a disabled user).
CREATE TABLE user_sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    last_used  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);

-- Who cares for whom. removed_at: kept for the record, not deleted.
CREATE TABLE care_team (
    user_id    TEXT NOT NULL REFERENCES users (id),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    added_at   INTEGER NOT NULL,
    removed_at INTEGER,
    PRIMARY KEY (user_id, patient_id, added_at)
) STRICT;
CREATE INDEX care_team_by_patient ON care_team (patient_id);

-- A patient's consent to share their record with one user, until withdrawn.
CREATE TABLE consents (
    patient_id   TEXT NOT NULL REFERENCES patients (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    granted_at   INTEGER NOT NULL,
    withdrawn_at INTEGER,
    PRIMARY KEY (patient_id, user_id, granted_at)
) STRICT;

-- Emergency access outside the care team, with the clinician's stated reason, time-limited.
CREATE TABLE break_glass (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    reason     TEXT NOT NULL,
    opened_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX break_glass_by_user ON break_glass (user_id, patient_id, expires_at);

-- The audit entries about each patient (derived from the entries: `vigil audit verify` can
-- rebuild it). Not PHI: patient ids are pseudonyms.
CREATE TABLE audit_patients (
    seq        INTEGER PRIMARY KEY REFERENCES audit_log (seq),
    patient_id TEXT NOT NULL
) STRICT;
CREATE INDEX audit_patients_by_patient ON audit_patients (patient_id, seq);
