//! The audit log's signing key and signed checkpoints.
//!
//! `vigil init` makes an Ed25519 key (`audit.key`, PKCS#8, 0600) and writes its verifier key
//! (`audit.pub`, the C2SP vkey line) for whoever checks the log. The hub signs a checkpoint of
//! the tree every few seconds while it runs and when it stops; the command line signs one after
//! each change it makes. The key name, which is also the checkpoints' origin, is
//! `vigil-audit-<8 hex of the CA certificate's fingerprint>`: one name per hospital.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vigil_audit::{Checkpoint, CheckpointSigner, MerkleTree, VerifierKey};
use vigil_model::Timestamp;
use vigil_store::{Store, StoreError};

/// The signing key's file in the data directory.
pub const AUDIT_KEY_FILE: &str = "audit.key";
/// The verifier key's file in the data directory.
pub const AUDIT_PUB_FILE: &str = "audit.pub";
/// Leaves read from the store per query while catching up.
const CHUNK: usize = 100_000;

/// Why checkpoint keys or checkpoints failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFailure {
    /// A key file cannot be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key is invalid.
    #[error("audit key: {0}")]
    Key(#[from] vigil_audit::KeyError),
    /// The checkpoint is invalid.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] vigil_audit::CheckpointError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates the audit signing key and verifier key files; returns the verifier key line.
pub fn create_keys(data_dir: &Path, name: &str) -> Result<String, CheckpointFailure> {
    let pkcs8 = CheckpointSigner::generate()?;
    let signer = CheckpointSigner::from_pkcs8(name, pkcs8.as_ref())?;
    write_new(&data_dir.join(AUDIT_KEY_FILE), pkcs8.as_ref(), 0o600)?;
    let verifier = signer.verifier_key();
    write_new(
        &data_dir.join(AUDIT_PUB_FILE),
        format!("{verifier}\n").as_bytes(),
        0o644,
    )?;
    Ok(verifier)
}

/// Reads the verifier key from a file (`audit.pub` or one given by an auditor).
pub fn read_verifier(path: &Path) -> Result<VerifierKey, CheckpointFailure> {
    let text = std::fs::read_to_string(path).map_err(|source| CheckpointFailure::File {
        path: path.to_owned(),
        source,
    })?;
    Ok(text.trim().parse()?)
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CheckpointFailure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let error = |source| CheckpointFailure::File {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(error)?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(error)
}

/// Signs checkpoints of the store's audit tree.
#[derive(Clone)]
pub struct Checkpointer {
    store: Arc<dyn Store>,
    signer: Arc<CheckpointSigner>,
    tree: Arc<Mutex<MerkleTree>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Loads the signing key of `data_dir`; its name comes from the verifier key file.
    pub fn open(data_dir: &Path, store: Arc<dyn Store>) -> Result<Checkpointer, CheckpointFailure> {
        let verifier = read_verifier(&data_dir.join(AUDIT_PUB_FILE))?;
        let key_path = data_dir.join(AUDIT_KEY_FILE);
        let pkcs8 = std::fs::read(&key_path).map_err(|source| CheckpointFailure::File {
            path: key_path,
            source,
        })?;
        let signer = CheckpointSigner::from_pkcs8(verifier.name(), &pkcs8)?;
        if signer.verifier_key() != verifier.to_string() {
            return Err(CheckpointFailure::Key(vigil_audit::KeyError::KeyIdMismatch));
        }
        Ok(Checkpointer {
            store,
            signer: Arc::new(signer),
            tree: Arc::new(Mutex::new(MerkleTree::new())),
        })
    }

    /// Brings the tree up to date with the store and signs a checkpoint if the log grew since
    /// the last one. Returns the size signed, if any. Blocking (reads and writes SQLite).
    pub fn checkpoint(&self) -> Result<Option<u64>, CheckpointFailure> {
        let mut tree = self
            .tree
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            let leaves = self.store.leaf_hashes(tree.size(), CHUNK)?;
            let done = leaves.len() < CHUNK;
            for leaf in leaves {
                tree.push(leaf);
            }
            if done {
                break;
            }
        }
        let size = tree.size();
        let latest = self.store.latest_checkpoint()?.map(|(size, _)| size);
        if size == 0 || latest == Some(size) {
            return Ok(None);
        }
        let checkpoint = Checkpoint::new(self.signer.name(), size, tree.root())?;
        let note = self.signer.sign(&checkpoint)?;
        self.store.add_checkpoint(size, Timestamp::now(), &note)?;
        Ok(Some(size))
    }

    /// The newest signed checkpoint (its tree size and note) and, for each leaf index, its
    /// inclusion proof in that tree (`None` for a leaf newer than the checkpoint: provable
    /// after the next one). Blocking.
    pub fn inclusion_proofs(
        &self,
        indexes: &[u64],
    ) -> Result<Option<SignedProofs>, CheckpointFailure> {
        let Some((size, note)) = self.store.latest_checkpoint()? else {
            return Ok(None);
        };
        let mut tree = self
            .tree
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while tree.size() < size {
            let leaves = self.store.leaf_hashes(tree.size(), CHUNK)?;
            if leaves.is_empty() {
                break;
            }
            for leaf in leaves {
                tree.push(leaf);
            }
        }
        let proofs = indexes
            .iter()
            .map(|&index| {
                (index < size)
                    .then(|| tree.inclusion_proof(index, size).ok())
                    .flatten()
            })
            .collect();
        Ok(Some(SignedProofs { size, note, proofs }))
    }
}

/// Inclusion proofs against one signed checkpoint.
#[derive(Debug, Clone)]
pub struct SignedProofs {
    /// The checkpoint's tree size.
    pub size: u64,
    /// The checkpoint, a signed note.
    pub note: String,
    /// One proof per leaf asked for, in order (`None`: not yet covered by the checkpoint).
    pub proofs: Vec<Option<Vec<vigil_audit::hash::Hash>>>,
}
