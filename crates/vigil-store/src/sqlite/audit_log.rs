//! The audit log's leaves and checkpoints.
//!
//! A leaf's data starts with a tag naming its kind, so no leaf of one kind can be read as
//! another: `vigil/audit-entry/v1\n` + the entry's JSON, or `vigil/batch/v1\n` + the rows of an
//! observation batch (see [`batch_leaf`]). The stored `leaf_hash` is RFC 9162's hash of that data;
//! `vigil audit verify` recomputes it.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use vigil_audit::hash::{Hash, leaf_hash};
use vigil_model::{AuditEntry, PatientId, ResourceKind, Timestamp};

use super::{SqliteStore, millis};
use crate::{AuditStore, StoreError};

/// Tag of an audit entry leaf.
pub(crate) const ENTRY_TAG: &[u8] = b"vigil/audit-entry/v1\n";
/// Tag of an observation batch leaf.
pub(crate) const BATCH_TAG: &[u8] = b"vigil/batch/v1\n";
/// Bytes per row in a batch leaf: row id (8, big-endian) and row hash (32).
pub(crate) const BATCH_ROW_LEN: usize = 8 + 32;

/// The leaf data of an audit entry.
pub(crate) fn entry_leaf(entry: &AuditEntry) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut data = ENTRY_TAG.to_vec();
    data.extend_from_slice(&json);
    Ok(data)
}

/// The leaf data of an observation batch: the tag, the row count (4 bytes, big-endian), then
/// for each stored row its id and hash.
pub(crate) fn batch_leaf(rows: &[(i64, Hash)]) -> Vec<u8> {
    let mut data = Vec::with_capacity(BATCH_TAG.len() + 4 + rows.len() * BATCH_ROW_LEN);
    data.extend_from_slice(BATCH_TAG);
    data.extend_from_slice(&u32::try_from(rows.len()).unwrap_or(u32::MAX).to_be_bytes());
    for (id, hash) in rows {
        data.extend_from_slice(&id.to_be_bytes());
        data.extend_from_slice(hash);
    }
    data
}

/// Appends a leaf inside the caller's transaction; returns its index.
pub(crate) fn append_leaf(
    connection: &Connection,
    time: Timestamp,
    kind: &str,
    data: &[u8],
) -> Result<u64, StoreError> {
    let hash = leaf_hash(data);
    let seq: i64 = connection.query_row(
        "INSERT INTO audit_log (seq, time, kind, data, leaf_hash) \
         VALUES ((SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_log), ?1, ?2, ?3, ?4) RETURNING seq",
        params![millis(time), kind, data, hash.as_slice()],
        |row| row.get(0),
    )?;
    u64::try_from(seq).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse_entry(seq: i64, data: &[u8]) -> Result<(u64, AuditEntry), StoreError> {
    let json = data
        .strip_prefix(ENTRY_TAG)
        .ok_or_else(|| StoreError::Corrupt(format!("audit leaf {seq} has the wrong tag")))?;
    let entry = serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok((
        u64::try_from(seq).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        entry,
    ))
}

/// The patient an audit entry is about: the resource of an entry about a patient's record or
/// observations is the patient's id. Derived from the entry alone, so the index can be rebuilt
/// (and checked) from the log.
pub(crate) fn patient_of_entry(entry: &AuditEntry) -> Option<&str> {
    match entry.resource.kind {
        ResourceKind::Patient | ResourceKind::Observation => PatientId::new(&entry.resource.id)
            .ok()
            .map(|_| entry.resource.id.as_str()),
        _ => None,
    }
}

fn index(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl AuditStore for SqliteStore {
    fn append_audit(&self, entry: &AuditEntry) -> Result<u64, StoreError> {
        let data = entry_leaf(entry)?;
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq = append_leaf(&tx, entry.time, "entry", &data)?;
        if let Some(patient) = patient_of_entry(entry) {
            tx.execute(
                "INSERT INTO audit_patients (seq, patient_id) VALUES (?1, ?2)",
                params![index(seq), patient],
            )?;
        }
        tx.commit()?;
        Ok(seq)
    }

    fn patient_audit_entries(
        &self,
        patient: &PatientId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, AuditEntry)>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(
            "SELECT a.seq, a.data FROM audit_patients p JOIN audit_log a ON a.seq = p.seq \
             WHERE p.patient_id = ?1 AND p.seq < ?2 ORDER BY p.seq DESC LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let before = before.map_or(i64::MAX, index);
        let rows = statement.query_map(params![patient.as_str(), before, limit], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?;
        rows.map(|row| {
            let (seq, data) = row?;
            parse_entry(seq, &data)
        })
        .collect()
    }

    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<(u64, AuditEntry)>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare(
            "SELECT seq, data FROM audit_log WHERE kind = 'entry' AND seq >= ?1 ORDER BY seq LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![index(from), limit], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?;
        rows.map(|row| {
            let (seq, data) = row?;
            parse_entry(seq, &data)
        })
        .collect()
    }

    fn leaf_hashes(&self, from: u64, limit: usize) -> Result<Vec<[u8; 32]>, StoreError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare("SELECT leaf_hash FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows =
            statement.query_map(params![index(from), limit], |row| row.get::<_, Vec<u8>>(0))?;
        rows.map(|row| {
            <[u8; 32]>::try_from(row?.as_slice())
                .map_err(|_| StoreError::Corrupt("leaf hash is not 32 bytes".into()))
        })
        .collect()
    }

    fn add_checkpoint(&self, size: u64, time: Timestamp, note: &str) -> Result<(), StoreError> {
        let connection = self.connection();
        connection.execute(
            "INSERT INTO checkpoints (size, time, note) VALUES (?1, ?2, ?3) \
             ON CONFLICT (size) DO NOTHING",
            params![index(size), millis(time), note],
        )?;
        Ok(())
    }

    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        let connection = self.connection();
        let row: Option<(i64, String)> = connection
            .query_row(
                "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        row.map(|(size, note)| {
            Ok((
                u64::try_from(size).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                note,
            ))
        })
        .transpose()
    }
}
