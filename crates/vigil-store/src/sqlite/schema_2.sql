-- Version 2: messages queued for devices, and MQTT sessions that outlive a disconnection.

-- payload: sealed under patient_id's data key when the device served a patient at queue time.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices (id),
    channel      TEXT NOT NULL CHECK (channel IN ('cmd', 'fw')),
    patient_id   TEXT REFERENCES patients (id),
    payload      BLOB NOT NULL,
    queued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    delivered_at INTEGER
) STRICT;
CREATE INDEX outbox_pending ON outbox (device_id, id) WHERE delivered_at IS NULL;

CREATE TABLE mqtt_sessions (
    device_id      TEXT PRIMARY KEY REFERENCES devices (id),
    commands       INTEGER NOT NULL,
    firmware       INTEGER NOT NULL,
    expiry_seconds INTEGER NOT NULL,
    ended_at       INTEGER
) STRICT;

-- A patient's observations by time alone: the readings of one message share a leaf page, so
-- a batch dirties (and writes to the WAL) about one page per message instead of one per
-- quantity; a read of one quantity filters the others out of the patient's time range.
DROP INDEX observations_by_patient;
CREATE INDEX observations_by_patient ON observations (patient_id, time);
