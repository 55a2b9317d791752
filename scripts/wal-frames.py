#!/usr/bin/env python3
"""How many write-ahead-log frames (4 KiB pages) SQLite writes per ingested message.

Replays the ingest bench's shape (500 devices, each with its own patient, 10 readings per
message, 5,000 messages a second of measurement time) into the observations table as the store
defines it (schema version 5), committing every N messages with one audit leaf per commit, and
counts the frames the log grew by. Variants drop one index, to show what each costs.
See docs/performance.md (session 7). Usage: scripts/wal-frames.py [MESSAGES]
"""

import os
import sqlite3
import sys
import tempfile

TABLE = """CREATE TABLE observations (
    id INTEGER PRIMARY KEY, patient_id TEXT NOT NULL, device_id TEXT NOT NULL,
    quantity INTEGER NOT NULL, time INTEGER NOT NULL, sequence INTEGER NOT NULL,
    flags INTEGER NOT NULL, value BLOB NOT NULL, batch INTEGER NOT NULL{unique}) STRICT"""
UNIQUE = ", UNIQUE (time, device_id, sequence, quantity)"
PATIENT_INDEX = "CREATE INDEX observations_by_patient ON observations (patient_id, time)"
AUDIT = """CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL,
    kind TEXT NOT NULL, data BLOB NOT NULL, leaf_hash BLOB NOT NULL) STRICT"""
DEVICES, READINGS, SEALED_VALUE_BYTES = 500, 10, 44


def frames_per_message(directory, unique, patient_index, per_commit, messages):
    path = os.path.join(directory, f"{unique}-{patient_index}-{per_commit}.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("PRAGMA synchronous=OFF")  # frames are counted, not timed
    db.execute("PRAGMA cache_size=-65536")  # as the store's committer
    db.execute(TABLE.format(unique=UNIQUE if unique else ""))
    if patient_index:
        db.execute(PATIENT_INDEX)
    db.execute(AUDIT)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sequence = [0] * DEVICES
    start_ms = 1_795_989_000_000
    sent = commits = 0
    while sent < messages:
        db.execute("BEGIN IMMEDIATE")
        for _ in range(per_commit):
            device = sent % DEVICES
            sequence[device] += 1
            time_ms = start_ms + sent // 5
            for reading in range(READINGS):
                db.execute(
                    "INSERT OR IGNORE INTO observations (patient_id, device_id, quantity, time,"
                    " sequence, flags, value, batch) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                    (f"pt-{device:05}", f"bench-{device:05}", 147842 + reading,
                     time_ms * 1000, sequence[device], os.urandom(SEALED_VALUE_BYTES), commits),
                )
            sent += 1
        db.execute(
            "INSERT INTO audit_log (time, kind, data, leaf_hash) VALUES (?, 'batch', ?, ?)",
            (start_ms, os.urandom(40), os.urandom(32)),
        )
        db.execute("COMMIT")
        commits += 1
    frames = (os.path.getsize(path + "-wal") - 32) // (4096 + 24)
    db.close()
    return frames / messages


def main():
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(f"{messages} messages of {READINGS} readings from {DEVICES} devices")
    print("indexes                      messages/commit  frames/message")
    with tempfile.TemporaryDirectory() as directory:
        for unique, patient_index, name in [
            (True, True, "unique + patient (the store)"),
            (True, False, "unique only"),
            (False, True, "patient only"),
        ]:
            for per_commit in (2, 10):
                ratio = frames_per_message(directory, unique, patient_index, per_commit, messages)
                print(f"{name:<29}{per_commit:>15}  {ratio:>14.2f}")


if __name__ == "__main__":
    main()
