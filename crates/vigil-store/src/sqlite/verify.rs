//! Offline verification of a data directory's audit log and observation rows
//! (`vigil audit verify`).
//!
//! It needs the checkpoint verifier key and read access to the database, and nothing else: no
//! keyring, no PHI. It recomputes every leaf hash from the leaf's data, rebuilds the Merkle
//! tree, checks every checkpoint's signature, its root against the rebuilt tree and its
//! consistency with the previous checkpoint, and re-hashes every observation row against the
//! batch leaf that recorded it. Each discrepancy becomes a [`Finding`] naming the leaf, the
//! checkpoint or the row.

use std::fmt;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use vigil_audit::{MerkleTree, VerifierKey, leaf_hash, open_note, verify_consistency};

use super::DATABASE_FILE;
use super::audit_log::{BATCH_ROW_LEN, BATCH_TAG, ENTRY_TAG};
use super::clinical::{content_hash, row_hash};
use crate::StoreError;

/// One discrepancy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A leaf's data no longer hashes to its recorded hash: the entry or batch was edited.
    LeafAltered {
        /// Leaf index.
        index: u64,
    },
    /// A leaf index is missing: a leaf was deleted.
    LeafMissing {
        /// Leaf index.
        index: u64,
    },
    /// A leaf's data does not have the form of its kind.
    LeafMalformed {
        /// Leaf index.
        index: u64,
    },
    /// A checkpoint's signature does not verify with the log's key, or the note is malformed.
    CheckpointSignature {
        /// The tree size the checkpoint row claims.
        size: u64,
        /// Why.
        reason: String,
    },
    /// A checkpoint covers more leaves than the log holds: leaves were removed from the end.
    CheckpointBeyondLog {
        /// Checkpoint size.
        size: u64,
        /// Leaves in the log.
        leaves: u64,
    },
    /// The log's tree at a checkpoint's size does not have the signed root: the log was
    /// rewritten.
    CheckpointRoot {
        /// Checkpoint size.
        size: u64,
    },
    /// Two signed checkpoints are not consistent with each other.
    CheckpointsInconsistent {
        /// The earlier size.
        from: u64,
        /// The later size.
        to: u64,
    },
    /// An observation row no longer hashes to what its batch recorded: the row was edited.
    RowAltered {
        /// Row id.
        row: i64,
        /// The batch leaf that recorded it.
        batch: u64,
    },
    /// An observation row recorded by a batch is gone: the row was deleted.
    RowMissing {
        /// Row id.
        row: i64,
        /// The batch leaf that recorded it.
        batch: u64,
    },
    /// An observation row that no batch recorded: the row was inserted behind the hub's back.
    RowUnrecorded {
        /// Row id.
        row: i64,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::LeafAltered { index } => write!(
                f,
                "audit leaf {index} was altered (its content no longer matches its hash)"
            ),
            Finding::LeafMissing { index } => write!(f, "audit leaf {index} is missing (deleted)"),
            Finding::LeafMalformed { index } => write!(f, "audit leaf {index} is malformed"),
            Finding::CheckpointSignature { size, reason } => {
                write!(f, "checkpoint at size {size} does not verify: {reason}")
            }
            Finding::CheckpointBeyondLog { size, leaves } => write!(
                f,
                "checkpoint at size {size} covers more than the {leaves} leaves in the log (leaves removed)"
            ),
            Finding::CheckpointRoot { size } => {
                write!(
                    f,
                    "the log's root at size {size} differs from the signed checkpoint (log rewritten)"
                )
            }
            Finding::CheckpointsInconsistent { from, to } => {
                write!(f, "checkpoints at sizes {from} and {to} are not consistent")
            }
            Finding::RowAltered { row, batch } => {
                write!(
                    f,
                    "observation row {row} was altered (recorded in audit leaf {batch})"
                )
            }
            Finding::RowMissing { row, batch } => {
                write!(
                    f,
                    "observation row {row} is missing (recorded in audit leaf {batch})"
                )
            }
            Finding::RowUnrecorded { row } => {
                write!(
                    f,
                    "observation row {row} was not recorded by any batch (inserted outside the hub)"
                )
            }
        }
    }
}

/// What verification looked at and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Leaves in the log.
    pub leaves: u64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The largest tree size a valid checkpoint signs.
    pub latest_checkpoint: Option<u64>,
    /// Observation rows checked.
    pub rows: u64,
    /// Everything that is wrong; empty when the data directory verifies.
    pub findings: Vec<Finding>,
}

/// Verifies the database of `data_dir` against checkpoints signed by `key`.
pub fn verify(data_dir: &Path, key: &VerifierKey) -> Result<Report, StoreError> {
    let path = data_dir.join(DATABASE_FILE);
    if !path.exists() {
        return Err(StoreError::File {
            path,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let connection = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    // One read transaction: a consistent snapshot even while a hub writes.
    connection.execute_batch("BEGIN")?;
    let mut findings = Vec::new();
    let (tree, mut recorded) = leaves(&connection, &mut findings)?;
    let (checkpoints, latest_checkpoint) = checkpoints(&connection, &tree, key, &mut findings)?;
    let rows = observation_rows(&connection, &mut recorded, &mut findings)?;
    connection.execute_batch("COMMIT")?;
    Ok(Report {
        leaves: tree.size(),
        checkpoints,
        latest_checkpoint,
        rows,
        findings,
    })
}

/// Rows recorded by batch leaves: (row id, batch leaf, row hash), sorted by row id.
type Recorded = Vec<(i64, u64, [u8; 32])>;

fn leaves(
    connection: &Connection,
    findings: &mut Vec<Finding>,
) -> Result<(MerkleTree, Recorded), StoreError> {
    let mut tree = MerkleTree::new();
    let mut recorded = Vec::new();
    let mut statement =
        connection.prepare("SELECT seq, kind, data, leaf_hash FROM audit_log ORDER BY seq")?;
    let mut rows = statement.query([])?;
    let mut expected: u64 = 0;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let kind: String = row.get(1)?;
        let data: Vec<u8> = row.get(2)?;
        let stored: Vec<u8> = row.get(3)?;
        let index = u64::try_from(seq).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        while expected < index {
            findings.push(Finding::LeafMissing { index: expected });
            expected += 1;
        }
        expected = index + 1;
        let hash = leaf_hash(&data);
        if hash.as_slice() != stored.as_slice() {
            findings.push(Finding::LeafAltered { index });
        }
        tree.push(hash);
        match (
            kind.as_str(),
            data.strip_prefix(BATCH_TAG),
            data.starts_with(ENTRY_TAG),
        ) {
            ("batch", Some(body), _) => match batch_rows(body) {
                Some(batch) => recorded.extend(batch.into_iter().map(|(row, h)| (row, index, h))),
                None => findings.push(Finding::LeafMalformed { index }),
            },
            ("entry", None, true) => {}
            _ => findings.push(Finding::LeafMalformed { index }),
        }
    }
    recorded.sort_unstable_by_key(|(row, _, _)| *row);
    Ok((tree, recorded))
}

/// The (row id, row hash) pairs of a batch leaf body; `None` if malformed.
fn batch_rows(body: &[u8]) -> Option<Vec<(i64, [u8; 32])>> {
    let (count, rest) = body.split_first_chunk::<4>()?;
    let count = usize::try_from(u32::from_be_bytes(*count)).ok()?;
    if rest.len() != count.checked_mul(BATCH_ROW_LEN)? {
        return None;
    }
    rest.chunks_exact(BATCH_ROW_LEN)
        .map(|chunk| {
            let (id, hash) = chunk.split_first_chunk::<8>()?;
            Some((i64::from_be_bytes(*id), <[u8; 32]>::try_from(hash).ok()?))
        })
        .collect()
}

fn checkpoints(
    connection: &Connection,
    tree: &MerkleTree,
    key: &VerifierKey,
    findings: &mut Vec<Finding>,
) -> Result<(usize, Option<u64>), StoreError> {
    let mut statement = connection.prepare("SELECT size, note FROM checkpoints ORDER BY size")?;
    let rows: Vec<(i64, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut previous: Option<(u64, [u8; 32])> = None;
    for (claimed, note) in &rows {
        let claimed = u64::try_from(*claimed).unwrap_or(0);
        let checkpoint = match open_note(note, key) {
            Ok(checkpoint) if checkpoint.size() == claimed => checkpoint,
            Ok(_) => {
                findings.push(Finding::CheckpointSignature {
                    size: claimed,
                    reason: "the signed size differs from the stored size".into(),
                });
                continue;
            }
            Err(error) => {
                findings.push(Finding::CheckpointSignature {
                    size: claimed,
                    reason: error.to_string(),
                });
                continue;
            }
        };
        let size = checkpoint.size();
        if size > tree.size() {
            findings.push(Finding::CheckpointBeyondLog {
                size,
                leaves: tree.size(),
            });
            continue;
        }
        let root = *checkpoint.root();
        if tree.root_at(size).ok() != Some(root) {
            findings.push(Finding::CheckpointRoot { size });
            continue;
        }
        if let Some((from, from_root)) = previous {
            let consistent = tree
                .consistency_proof(from, size)
                .ok()
                .is_some_and(|proof| {
                    verify_consistency(from, size, &from_root, &root, &proof).is_ok()
                });
            if !consistent && from != size {
                findings.push(Finding::CheckpointsInconsistent { from, to: size });
            }
        }
        previous = Some((size, root));
    }
    Ok((rows.len(), previous.map(|(size, _)| size)))
}

fn observation_rows(
    connection: &Connection,
    recorded: &mut Recorded,
    findings: &mut Vec<Finding>,
) -> Result<u64, StoreError> {
    let mut statement = connection.prepare(
        "SELECT id, patient_id, device_id, quantity, time, sequence, flags, value FROM observations ORDER BY id",
    )?;
    let mut rows = statement.query([])?;
    let mut expected = recorded.iter().peekable();
    let mut count = 0;
    while let Some(row) = rows.next()? {
        count += 1;
        let id: i64 = row.get(0)?;
        let content = content_hash(
            &row.get::<_, String>(1)?,
            &row.get::<_, String>(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            &row.get::<_, Vec<u8>>(7)?,
        );
        let hash = row_hash(id, &content);
        while let Some((missing, batch, _)) = expected.next_if(|(r, _, _)| *r < id) {
            findings.push(Finding::RowMissing {
                row: *missing,
                batch: *batch,
            });
        }
        match expected.next_if(|(r, _, _)| *r == id) {
            Some((_, batch, recorded_hash)) => {
                if *recorded_hash != hash {
                    findings.push(Finding::RowAltered {
                        row: id,
                        batch: *batch,
                    });
                }
            }
            None => findings.push(Finding::RowUnrecorded { row: id }),
        }
    }
    for (missing, batch, _) in expected {
        findings.push(Finding::RowMissing {
            row: *missing,
            batch: *batch,
        });
    }
    Ok(count)
}
