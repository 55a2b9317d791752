//! Merkle tree hashing (RFC 9162, section 2.1.1).
//!
//! Leaves and interior nodes are hashed with different one-byte prefixes, `0x00` and `0x01`.
//! Without that separation an interior node's 64-byte input could be presented as a leaf, and
//! a proof for a forged "leaf" would verify (the second-preimage attack on plain Merkle trees).

use aws_lc_rs::digest::{Context, Digest, SHA256};

/// The length in bytes of every hash in the tree: SHA-256.
pub const HASH_LEN: usize = 32;

/// A SHA-256 hash: a leaf hash, an interior node or a root.
pub type Hash = [u8; HASH_LEN];

/// Prefix of a leaf's hash input.
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node's hash input.
const NODE_PREFIX: u8 = 0x01;

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut context = Context::new(&SHA256);
    context.update(&[LEAF_PREFIX]);
    context.update(data);
    to_hash(&context.finish())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut context = Context::new(&SHA256);
    context.update(&[NODE_PREFIX]);
    context.update(left);
    context.update(right);
    to_hash(&context.finish())
}

/// The root of the empty tree: `SHA-256("")` (no prefix, as RFC 9162 defines it).
pub fn empty_root() -> Hash {
    to_hash(&aws_lc_rs::digest::digest(&SHA256, &[]))
}

/// Copies a SHA-256 digest into a [`Hash`].
fn to_hash(digest: &Digest) -> Hash {
    // A SHA-256 digest is always 32 bytes; copying through `zip` keeps this function free of a
    // panicking length check all the same.
    debug_assert_eq!(digest.as_ref().len(), HASH_LEN);
    let mut hash = [0u8; HASH_LEN];
    for (out, byte) in hash.iter_mut().zip(digest.as_ref()) {
        *out = *byte;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(hash: &Hash) -> String {
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn leaf_hash_of_empty_leaf_matches_rfc6962_reference() {
        // The first leaf of the RFC 6962 reference test tree is the empty string.
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn leaf_and_node_are_domain_separated() {
        let left = leaf_hash(b"a");
        let right = leaf_hash(b"b");
        let mut concatenated = Vec::new();
        concatenated.extend_from_slice(&left);
        concatenated.extend_from_slice(&right);
        // The same bytes hashed as a leaf and as a node must differ.
        assert_ne!(leaf_hash(&concatenated), node_hash(&left, &right));
        assert_ne!(node_hash(&left, &right), node_hash(&right, &left));
    }
}
