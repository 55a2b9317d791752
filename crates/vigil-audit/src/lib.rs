//! The cryptographic core of Vigil's tamper-evident audit log.
//!
//! Audit entries are the leaves of an append-only Merkle tree (RFC 9162, "Certificate
//! Transparency Version 2.0", section 2.1). The log periodically signs its tree head as a
//! checkpoint; anyone holding the log's public key can then check that an entry is in the log
//! (an inclusion proof) and that a later log still contains everything an earlier one did (a
//! consistency proof), without trusting the machine that stores it.
//!
//! - [`hash`]: the domain-separated SHA-256 hashes of leaves and interior nodes.
//! - [`MerkleTree`]: the append-only tree; current and historical roots, and proofs.
//! - [`verify_inclusion`] / [`verify_consistency`]: proof verifiers that need nothing but the
//!   proof, the sizes and the roots (RFC 9162, sections 2.1.3.2 and 2.1.4.2).
//! - [`Checkpoint`], [`CheckpointSigner`], [`VerifierKey`], [`open_note`]: signed tree heads in
//!   the C2SP `tlog-checkpoint` format, carried as C2SP signed notes with Ed25519 signatures.
//!
//! Nothing here does I/O: storing leaves and notes is the caller's job.

#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod hash;
pub mod key;
mod note;
pub mod proof;
pub mod tree;

pub use checkpoint::{Checkpoint, CheckpointError, open_note};
pub use hash::{HASH_LEN, Hash, empty_root, leaf_hash, node_hash};
pub use key::{CheckpointSigner, KeyError, VerifierKey};
pub use proof::{ProofError, verify_consistency, verify_inclusion};
pub use tree::{MerkleTree, TreeError};
