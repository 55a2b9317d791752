//! Every inclusion and consistency case of the RFC 9162 test vectors of transparency-dev/merkle
//! (testdata/rfc9162-merkle, Apache-2.0), through the verifiers: a case passes when the verifier
//! accepts exactly where `wantErr` is false.
//!
//! The vectors are written for Go's `[]byte` hashes, so some carry hashes of the wrong length.
//! Here a hash is a `[u8; 32]`, so:
//!
//! - a leaf hash or proof hash that is not 32 bytes cannot be passed at all: the case is refused
//!   at the type boundary, exactly as Go's verifier refuses it by a length check (and every such
//!   case is asserted to be a `wantErr` case);
//! - a root that is not 32 bytes ("don't care 1", an empty string) is a placeholder that only
//!   ever gets compared, so it is replaced by a stand-in 32-byte value derived from it: equal
//!   placeholders stay equal, different ones stay different, and none equals a real root.

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use vigil_audit::{Hash, leaf_hash, verify_consistency, verify_inclusion};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsistencyCase {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rfc9162-merkle")
}

/// Every `.json` file under `dir`, sorted, recursively.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn decode(text: &str) -> Vec<u8> {
    STANDARD.decode(text).unwrap()
}

/// A leaf or proof hash; `None` when it is not 32 bytes and so cannot be a `Hash`.
fn strict(text: &str) -> Option<Hash> {
    Hash::try_from(decode(text).as_slice()).ok()
}

/// A root; a placeholder of the wrong length becomes a stand-in (see the module comment).
fn root(text: &str) -> Hash {
    let bytes = decode(text);
    Hash::try_from(bytes.as_slice()).unwrap_or_else(|_| {
        leaf_hash(&[b"rfc9162 vector placeholder: ".as_slice(), &bytes].concat())
    })
}

fn strict_proof(proof: &Option<Vec<String>>) -> Option<Vec<Hash>> {
    proof.iter().flatten().map(|h| strict(h)).collect()
}

#[derive(Default, Debug)]
struct Tally {
    accepted: usize,
    refused_by_verifier: usize,
    refused_at_type_boundary: usize,
}

impl Tally {
    fn total(&self) -> usize {
        self.accepted + self.refused_by_verifier + self.refused_at_type_boundary
    }
}

fn run_inclusion(path: &Path, tally: &mut Tally) {
    let case: InclusionCase = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let name = format!("{} ({})", path.display(), case.desc);
    let (Some(leaf), Some(proof)) = (strict(&case.leaf_hash), strict_proof(&case.proof)) else {
        assert!(
            case.want_err,
            "{name}: a malformed hash in a case that should verify"
        );
        tally.refused_at_type_boundary += 1;
        return;
    };
    let result = verify_inclusion(
        case.leaf_idx,
        case.tree_size,
        &leaf,
        &proof,
        &root(&case.root),
    );
    assert_eq!(result.is_err(), case.want_err, "{name}: {result:?}");
    match result {
        Ok(()) => tally.accepted += 1,
        Err(_) => tally.refused_by_verifier += 1,
    }
}

fn run_consistency(path: &Path, tally: &mut Tally) {
    let case: ConsistencyCase = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let name = format!("{} ({})", path.display(), case.desc);
    let Some(proof) = strict_proof(&case.proof) else {
        assert!(
            case.want_err,
            "{name}: a malformed hash in a case that should verify"
        );
        tally.refused_at_type_boundary += 1;
        return;
    };
    let result = verify_consistency(
        case.size1,
        case.size2,
        &root(&case.root1),
        &root(&case.root2),
        &proof,
    );
    assert_eq!(result.is_err(), case.want_err, "{name}: {result:?}");
    match result {
        Ok(()) => tally.accepted += 1,
        Err(_) => tally.refused_by_verifier += 1,
    }
}

#[test]
fn every_vector_gets_its_expected_result() {
    let mut inclusion = Tally::default();
    for path in json_files(&vectors().join("inclusion")) {
        run_inclusion(&path, &mut inclusion);
    }
    let mut consistency = Tally::default();
    for path in json_files(&vectors().join("consistency")) {
        run_consistency(&path, &mut consistency);
    }
    println!("inclusion: {inclusion:?}\nconsistency: {consistency:?}");
    // So that this test cannot pass by reading nothing.
    assert!(inclusion.total() + consistency.total() > 190);
    assert!(inclusion.accepted > 0 && consistency.accepted > 0);
    assert!(inclusion.refused_by_verifier > 50 && consistency.refused_by_verifier > 50);
}
