//! Verifiers of inclusion and consistency proofs (RFC 9162, sections 2.1.3.2 and 2.1.4.2).
//!
//! They need no tree: only the sizes, the roots the verifier already trusts (from signed
//! checkpoints) and the proof. Both first check the proof's length against the one the sizes
//! determine, then run the RFC's algorithm step for step, so a refusal names its reason.
//!
//! Roots and proof hashes are public values, so they are compared with `==`: there is no secret
//! for a timing side channel to leak.

use crate::hash::{Hash, node_hash};

/// Why a proof is refused. Each variant is one refusal; none is ever "probably fine".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Inclusion: the leaf index is not below the tree size (this includes every index in the
    /// empty tree, which has no leaves).
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// Consistency: the first size is larger than the second; a log never shrinks.
    #[error("tree size {size1} is larger than the later tree size {size2}")]
    SizesReversed {
        /// The earlier size.
        size1: u64,
        /// The later size.
        size2: u64,
    },
    /// Consistency: the first tree is empty. RFC 9162 defines consistency proofs only for
    /// `0 < size1`: every tree extends the empty one, so such a "proof" proves nothing, and a
    /// verifier accepting it would vouch for a second root it never checked.
    #[error("a consistency proof from the empty tree is meaningless")]
    EmptyFirstTree,
    /// Consistency: the sizes are equal, so the proof must be empty, and it is not.
    #[error("the sizes are equal but the proof has {len} hashes instead of none")]
    ProofForEqualSizes {
        /// The number of hashes in the proof.
        len: usize,
    },
    /// Consistency: the sizes are equal but the roots differ: two different trees of the same
    /// size, i.e. a forked log.
    #[error("the sizes are equal but the roots differ")]
    RootsDiffer,
    /// The proof does not have the number of hashes that the index and size, or the two sizes,
    /// determine (this includes an empty proof between different sizes).
    #[error("the proof has {actual} hashes where {expected} are needed")]
    WrongProofLength {
        /// The number the sizes determine.
        expected: usize,
        /// The number in the proof.
        actual: usize,
    },
    /// Inclusion: the root computed from the leaf and the proof is not the expected root.
    #[error("the root computed from the inclusion proof does not match")]
    RootMismatch,
    /// Consistency: the root computed for the first tree is not its expected root.
    #[error("the first root computed from the consistency proof does not match")]
    FirstRootMismatch,
    /// Consistency: the root computed for the second tree is not its expected root.
    #[error("the second root computed from the consistency proof does not match")]
    SecondRootMismatch,
}

/// Verifies that `leaf_hash` is the leaf at `leaf_index` of the tree of `tree_size` leaves with
/// root `root`, given its inclusion proof (RFC 9162, section 2.1.3.2).
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    // Step 1.
    if leaf_index >= tree_size {
        return Err(ProofError::IndexOutOfRange {
            index: leaf_index,
            size: tree_size,
        });
    }
    let expected = inclusion_proof_len(leaf_index, tree_size);
    let wrong_length = ProofError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }

    // Steps 2 and 3: `fn` walks the leaf's position up the tree, `sn` the last leaf's.
    let mut f = leaf_index;
    let mut s = tree_size - 1;
    let mut r = *leaf_hash;
    // Step 4.
    for p in proof {
        // The length check above makes this unreachable; the RFC's own check stays as a second
        // line of defence.
        if s == 0 {
            return Err(wrong_length);
        }
        if is_odd(f) || f == s {
            r = node_hash(p, &r);
            // On the right border the tree has no right sibling at some levels: skip them.
            while !is_odd(f) && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    // Step 5.
    if s != 0 {
        return Err(wrong_length);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1` leaves
/// with root `root1`, given the consistency proof (RFC 9162, section 2.1.4.2).
///
/// Beyond the RFC's `0 < size1 < size2`: equal sizes need an empty proof and equal roots;
/// `size1 == 0` is refused whatever the proof ([`ProofError::EmptyFirstTree`]); `size1 > size2`
/// is refused.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesReversed { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::ProofForEqualSizes { len: proof.len() });
        }
        if root1 != root2 {
            return Err(ProofError::RootsDiffer);
        }
        return Ok(());
    }

    // From here 0 < size1 < size2. The expected length is never 0, so this is also step 1
    // (refuse an empty proof).
    let expected = consistency_proof_len(size1, size2);
    let wrong_length = ProofError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }

    // Step 2: when the first tree is a perfect subtree its root is the path's first node, and
    // the log leaves it out of the proof because the verifier has it.
    let (first, rest) = if size1.is_power_of_two() {
        (root1, proof)
    } else {
        proof.split_first().ok_or(wrong_length)?
    };
    // Steps 3 and 4.
    let mut f = size1 - 1;
    let mut s = size2 - 1;
    while is_odd(f) {
        f >>= 1;
        s >>= 1;
    }
    // Step 5: `fr` rebuilds the first root, `sr` the second.
    let mut fr = *first;
    let mut sr = *first;
    // Step 6.
    for c in rest {
        // Unreachable after the length check; the RFC's own check, kept as a second line.
        if s == 0 {
            return Err(wrong_length);
        }
        if is_odd(f) || f == s {
            // A left sibling: part of both trees.
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while !is_odd(f) && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            // A right sibling: leaves appended after the first tree.
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    // Step 7.
    if s != 0 {
        return Err(wrong_length);
    }
    if fr != *root1 {
        return Err(ProofError::FirstRootMismatch);
    }
    if sr != *root2 {
        return Err(ProofError::SecondRootMismatch);
    }
    Ok(())
}

/// The number of hashes in the inclusion proof of `index` in a tree of `size` leaves
/// (`0 <= index < size`): the levels below the point where the paths to `index` and to the
/// last leaf part, plus the left siblings on the shared right border above it.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = bit_len(index ^ (size - 1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    to_usize(inner) + to_usize(border)
}

/// The number of hashes in the consistency proof from `size1` to `size2`
/// (`0 < size1 < size2`): the inclusion proof of leaf `size1 - 1` in the second tree, less the
/// levels inside the first tree's rightmost perfect subtree, plus that subtree's root unless it
/// is the whole first tree.
fn consistency_proof_len(size1: u64, size2: u64) -> usize {
    let last = size1 - 1;
    let inner = bit_len(last ^ (size2 - 1));
    let border = last.checked_shr(inner).unwrap_or(0).count_ones();
    let shift = size1.trailing_zeros();
    let seed = usize::from(!size1.is_power_of_two());
    seed + to_usize(inner.saturating_sub(shift)) + to_usize(border)
}

/// The number of bits needed to write `n` (0 for 0).
fn bit_len(n: u64) -> u32 {
    u64::BITS - n.leading_zeros()
}

fn is_odd(n: u64) -> bool {
    n & 1 == 1
}

/// A bit count as `usize` (at most 64, so always lossless).
fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::tree::MerkleTree;

    fn tree(n: u64) -> (MerkleTree, Vec<Hash>) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        (MerkleTree::from_leaves(leaves.iter().copied()), leaves)
    }

    #[test]
    fn proof_lengths_match_the_tree() {
        let (tree, _) = tree(40);
        for n in 1..=40 {
            for m in 0..n {
                assert_eq!(
                    inclusion_proof_len(m, n),
                    tree.inclusion_proof(m, n).unwrap().len(),
                    "inclusion m={m} n={n}"
                );
            }
            for m in 1..n {
                assert_eq!(
                    consistency_proof_len(m, n),
                    tree.consistency_proof(m, n).unwrap().len(),
                    "consistency m={m} n={n}"
                );
            }
        }
    }

    #[test]
    fn inclusion_refusals_are_precise() {
        let (tree, leaves) = tree(7);
        let root = tree.root();
        let proof = tree.inclusion_proof(3, 7).unwrap();
        assert_eq!(verify_inclusion(3, 7, &leaves[3], &proof, &root), Ok(()));
        assert_eq!(
            verify_inclusion(7, 7, &leaves[3], &proof, &root),
            Err(ProofError::IndexOutOfRange { index: 7, size: 7 })
        );
        assert_eq!(
            verify_inclusion(0, 0, &leaves[0], &[], &root),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            verify_inclusion(3, 7, &leaves[3], &proof[1..], &root),
            Err(ProofError::WrongProofLength {
                expected: 3,
                actual: 2
            })
        );
        assert_eq!(
            verify_inclusion(3, 7, &leaves[4], &proof, &root),
            Err(ProofError::RootMismatch)
        );
    }

    #[test]
    fn consistency_refusals_are_precise() {
        let (tree, _) = tree(7);
        let (root3, root7) = (tree.root_at(3).unwrap(), tree.root());
        let proof = tree.consistency_proof(3, 7).unwrap();
        assert_eq!(verify_consistency(3, 7, &root3, &root7, &proof), Ok(()));
        assert_eq!(
            verify_consistency(7, 3, &root7, &root3, &proof),
            Err(ProofError::SizesReversed { size1: 7, size2: 3 })
        );
        assert_eq!(
            verify_consistency(0, 7, &tree.root_at(0).unwrap(), &root7, &[]),
            Err(ProofError::EmptyFirstTree)
        );
        assert_eq!(
            verify_consistency(0, 0, &root3, &root3, &[]),
            Err(ProofError::EmptyFirstTree)
        );
        assert_eq!(verify_consistency(3, 3, &root3, &root3, &[]), Ok(()));
        assert_eq!(
            verify_consistency(3, 3, &root3, &root3, &proof[..1]),
            Err(ProofError::ProofForEqualSizes { len: 1 })
        );
        assert_eq!(
            verify_consistency(3, 3, &root3, &root7, &[]),
            Err(ProofError::RootsDiffer)
        );
        assert_eq!(
            verify_consistency(3, 7, &root3, &root7, &[]),
            Err(ProofError::WrongProofLength {
                expected: proof.len(),
                actual: 0
            })
        );
        assert_eq!(
            verify_consistency(3, 7, &root7, &root7, &proof),
            Err(ProofError::FirstRootMismatch)
        );
        assert_eq!(
            verify_consistency(3, 7, &root3, &root3, &proof),
            Err(ProofError::SecondRootMismatch)
        );
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let h = leaf_hash(b"x");
        // Lengths near 2^64 need 64-level proofs; the verifiers must refuse without panicking.
        assert!(verify_inclusion(0, u64::MAX, &h, &[], &h).is_err());
        assert!(verify_inclusion(u64::MAX - 1, u64::MAX, &h, &[h; 3], &h).is_err());
        assert!(verify_inclusion(1 << 63, u64::MAX, &h, &[h; 64], &h).is_err());
        assert!(verify_consistency(1, u64::MAX, &h, &h, &[h; 64]).is_err());
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &h, &h, &[h; 2]).is_err());
        assert!(verify_consistency(1 << 63, u64::MAX, &h, &h, &[h; 63]).is_err());
    }
}
