//! The append-only Merkle tree (RFC 9162, section 2.1).
//!
//! # Storage
//!
//! The tree keeps every *perfect* subtree it has completed: level 0 holds the leaf hashes,
//! and level `k` holds, at position `i`, the hash of the aligned subtree over leaves
//! `[i·2^k, (i+1)·2^k)`. Appending a leaf completes at most one subtree per level, so a push
//! costs amortised O(1) hashes and the whole structure holds fewer than two hashes per leaf.
//!
//! Every subtree that RFC 9162's recursive definitions (`MTH`, `PATH`, `SUBPROOF`) ask for
//! starts at a multiple of its largest power-of-two part, so it is a right fold over at most
//! `log2(n)` stored perfect subtrees. A root at any size therefore costs O(log n) hashes and a
//! proof O(log² n), independent of how many leaves the tree holds.

use crate::hash::{Hash, empty_root, node_hash};

/// Why the tree cannot produce a root or a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The requested tree size is larger than the tree.
    #[error("tree size {size} is beyond the tree's {tree_size} leaves")]
    SizeBeyondTree {
        /// The requested size.
        size: u64,
        /// The number of leaves in the tree.
        tree_size: u64,
    },
    /// The leaf index is not below the tree size the proof is for.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size the proof was asked for.
        size: u64,
    },
    /// A consistency proof was asked from a larger size to a smaller one.
    #[error("consistency proof asked from size {size1} back to the smaller size {size2}")]
    SizesReversed {
        /// The earlier size.
        size1: u64,
        /// The later size.
        size2: u64,
    },
    /// A consistency proof was asked from the empty tree. RFC 9162 defines consistency proofs
    /// only for `0 < size1`, and verifiers refuse them (see
    /// [`ProofError::EmptyFirstTree`](crate::ProofError::EmptyFirstTree)).
    #[error("a consistency proof from the empty tree is meaningless")]
    EmptyFirstTree,
}

/// An append-only Merkle tree over leaf hashes.
///
/// Leaves are hashed by the caller with [`leaf_hash`](crate::leaf_hash); the tree only ever sees
/// their hashes, so the audit entries themselves can live elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[k][i]`: the hash of the perfect subtree over leaves `[i·2^k, (i+1)·2^k)`.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree holding `leaves` in order.
    pub fn from_leaves<I: IntoIterator<Item = Hash>>(leaves: I) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Appends a leaf hash and returns its index.
    pub fn push(&mut self, leaf_hash: Hash) -> u64 {
        let index = self.size();
        // `carry` is the node to append at the current level: the leaf, then the parent of each
        // pair the append completes.
        let mut carry = Some(leaf_hash);
        for level in &mut self.levels {
            let Some(node) = carry.take() else { break };
            level.push(node);
            if level.len().is_multiple_of(2)
                && let [.., left, right] = level.as_slice()
            {
                carry = Some(node_hash(left, right));
            }
        }
        if let Some(node) = carry {
            self.levels.push(vec![node]);
        }
        index
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels
            .first()
            .map_or(0, |leaves| len_u64(leaves.len()))
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// The hash of the leaf at `index`, if there is one.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.perfect(0, index)
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        // The perfect subtrees of the current size are the last node of each level with an odd
        // number of nodes; bottom-up they run from the rightmost (smallest) to the leftmost, and
        // the root is their right fold.
        self.levels
            .iter()
            .filter(|level| !level.len().is_multiple_of(2))
            .filter_map(|level| level.last())
            .fold(None, |right: Option<Hash>, left| {
                Some(match right {
                    None => *left,
                    Some(right) => node_hash(left, &right),
                })
            })
            .unwrap_or_else(empty_root)
    }

    /// The root the tree had when it held `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, TreeError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        self.subtree(0, size, size)
    }

    /// The inclusion proof of the leaf at `index` in the tree of `size` leaves: RFC 9162,
    /// section 2.1.3.1, `PATH(index, D[0:size])`, ordered from the leaf's sibling up.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TreeError::IndexOutOfRange { index, size });
        }
        // Walk down from the root of D[0:size], keeping the subtree that holds the leaf and
        // recording the root of the other one; the proof lists them bottom-up.
        let mut proof = Vec::new();
        let (mut start, mut end) = (0, size);
        while end - start > 1 {
            let split = start + largest_power_of_two_below(end - start);
            if index < split {
                proof.push(self.subtree(split, end, size)?);
                end = split;
            } else {
                proof.push(self.subtree(start, split, size)?);
                start = split;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// The consistency proof from the tree of `size1` leaves to the tree of `size2`: RFC 9162,
    /// section 2.1.4.1, `PROOF(size1, D[0:size2])`. Equal sizes give the empty proof.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size2)?;
        if size1 > size2 {
            return Err(TreeError::SizesReversed { size1, size2 });
        }
        if size1 == 0 {
            return Err(TreeError::EmptyFirstTree);
        }
        // SUBPROOF(m, D[start:end], b), unrolled: `whole_old_tree` is `b`, true while the
        // current subtree's left edge is the old tree's, whose root the verifier already has.
        let mut proof = Vec::new();
        let (mut start, mut end) = (0, size2);
        let mut whole_old_tree = true;
        loop {
            let old = size1 - start;
            if old == end - start {
                if !whole_old_tree {
                    proof.push(self.subtree(start, end, size2)?);
                }
                break;
            }
            let split = start + largest_power_of_two_below(end - start);
            if size1 <= split {
                proof.push(self.subtree(split, end, size2)?);
                end = split;
            } else {
                proof.push(self.subtree(start, split, size2)?);
                start = split;
                whole_old_tree = false;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// Refuses sizes beyond the tree.
    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        let tree_size = self.size();
        if size > tree_size {
            return Err(TreeError::SizeBeyondTree { size, tree_size });
        }
        Ok(())
    }

    /// `MTH(D[start:end])` for a non-empty range that RFC 9162's recursion produces. `size` is
    /// the tree size the caller asked about, for the error should a node be missing (which only
    /// happens when the range reaches beyond the tree).
    fn subtree(&self, start: u64, end: u64, size: u64) -> Result<Hash, TreeError> {
        let missing = TreeError::SizeBeyondTree {
            size,
            tree_size: self.size(),
        };
        // Split [start, end) into perfect subtrees, largest first, then fold from the right:
        // MTH(D[start:end]) = node(P1, node(P2, ... Pn)).
        let mut parts = Vec::new();
        let mut position = start;
        while position < end {
            let level = (end - position).checked_ilog2().ok_or(missing)?;
            parts.push(self.perfect_at(position, level).ok_or(missing)?);
            position += 1 << level;
        }
        parts
            .into_iter()
            .rev()
            .reduce(|right, left| node_hash(&left, &right))
            .ok_or(missing)
    }

    /// The perfect subtree of `2^level` leaves starting at leaf `start`, which must be aligned.
    fn perfect_at(&self, start: u64, level: u32) -> Option<Hash> {
        // An unaligned start would silently pick the wrong stored subtree.
        if start.trailing_zeros() < level {
            return None;
        }
        self.perfect(level, start >> level)
    }

    /// `levels[level][index]`, if present.
    fn perfect(&self, level: u32, index: u64) -> Option<Hash> {
        let level = self.levels.get(usize::try_from(level).ok()?)?;
        level.get(usize::try_from(index).ok()?).copied()
    }
}

/// The largest power of two strictly below `n`, for `n >= 2` (RFC 9162's split point `k`).
fn largest_power_of_two_below(n: u64) -> u64 {
    // For n >= 2, n - 1 >= 1, and the highest set bit of n - 1 is the answer.
    1 << (n.saturating_sub(1).max(1)).ilog2()
}

/// A length as `u64`; lossless on every platform Rust supports (usize is at most 64 bits).
fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    /// The RFC 9162 definitions, recursively and slowly, as the reference for the fast tree.
    mod reference {
        use super::*;

        pub(super) fn mth(leaves: &[Hash]) -> Hash {
            match leaves.len() {
                0 => empty_root(),
                1 => leaves[0],
                n => {
                    let k = largest_power_of_two_below(n as u64) as usize;
                    node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
                }
            }
        }

        pub(super) fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
            let n = leaves.len();
            if n <= 1 {
                return Vec::new();
            }
            let k = largest_power_of_two_below(n as u64) as usize;
            if m < k {
                let mut p = path(m, &leaves[..k]);
                p.push(mth(&leaves[k..]));
                p
            } else {
                let mut p = path(m - k, &leaves[k..]);
                p.push(mth(&leaves[..k]));
                p
            }
        }

        pub(super) fn subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
            let n = leaves.len();
            if m == n {
                return if b { Vec::new() } else { vec![mth(leaves)] };
            }
            let k = largest_power_of_two_below(n as u64) as usize;
            if m <= k {
                let mut p = subproof(m, &leaves[..k], b);
                p.push(mth(&leaves[k..]));
                p
            } else {
                let mut p = subproof(m - k, &leaves[k..], false);
                p.push(mth(&leaves[..k]));
                p
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    #[test]
    fn split_point() {
        assert_eq!(largest_power_of_two_below(2), 1);
        assert_eq!(largest_power_of_two_below(3), 2);
        assert_eq!(largest_power_of_two_below(4), 2);
        assert_eq!(largest_power_of_two_below(5), 4);
        assert_eq!(largest_power_of_two_below(8), 4);
        assert_eq!(largest_power_of_two_below(9), 8);
        assert_eq!(largest_power_of_two_below(u64::MAX), 1 << 63);
    }

    #[test]
    fn empty_tree() {
        let tree = MerkleTree::new();
        assert_eq!(tree.size(), 0);
        assert!(tree.is_empty());
        assert_eq!(tree.root(), empty_root());
        assert_eq!(tree.root_at(0).unwrap(), empty_root());
        assert_eq!(
            tree.root_at(1),
            Err(TreeError::SizeBeyondTree {
                size: 1,
                tree_size: 0
            })
        );
        assert_eq!(tree.leaf(0), None);
    }

    #[test]
    fn push_returns_consecutive_indices() {
        let mut tree = MerkleTree::new();
        for (i, leaf) in leaves(10).into_iter().enumerate() {
            assert_eq!(tree.push(leaf), i as u64);
            assert_eq!(tree.leaf(i as u64), Some(leaf));
        }
        assert_eq!(tree.size(), 10);
    }

    #[test]
    fn roots_and_proofs_match_the_rfc_definitions() {
        let all = leaves(70);
        let tree = MerkleTree::from_leaves(all.iter().copied());
        for n in 0..=all.len() {
            let prefix = &all[..n];
            assert_eq!(
                tree.root_at(n as u64).unwrap(),
                reference::mth(prefix),
                "n={n}"
            );
            assert_eq!(
                MerkleTree::from_leaves(prefix.iter().copied()).root(),
                reference::mth(prefix)
            );
            for m in 0..n {
                assert_eq!(
                    tree.inclusion_proof(m as u64, n as u64).unwrap(),
                    reference::path(m, prefix),
                    "m={m} n={n}"
                );
            }
            for m in 1..=n {
                assert_eq!(
                    tree.consistency_proof(m as u64, n as u64).unwrap(),
                    reference::subproof(m, prefix, true),
                    "m={m} n={n}"
                );
            }
        }
    }

    #[test]
    fn refuses_impossible_requests() {
        let tree = MerkleTree::from_leaves(leaves(5));
        assert_eq!(
            tree.inclusion_proof(5, 5),
            Err(TreeError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            tree.inclusion_proof(0, 0),
            Err(TreeError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            tree.inclusion_proof(0, 6),
            Err(TreeError::SizeBeyondTree {
                size: 6,
                tree_size: 5
            })
        );
        assert_eq!(
            tree.consistency_proof(3, 2),
            Err(TreeError::SizesReversed { size1: 3, size2: 2 })
        );
        assert_eq!(tree.consistency_proof(0, 3), Err(TreeError::EmptyFirstTree));
        assert_eq!(tree.consistency_proof(0, 0), Err(TreeError::EmptyFirstTree));
        assert_eq!(
            tree.consistency_proof(1, 6),
            Err(TreeError::SizeBeyondTree {
                size: 6,
                tree_size: 5
            })
        );
        assert_eq!(tree.consistency_proof(5, 5), Ok(Vec::new()));
    }

    #[test]
    fn stores_fewer_than_two_hashes_per_leaf() {
        let tree = MerkleTree::from_leaves(leaves(1000));
        let stored: usize = tree.levels.iter().map(Vec::len).sum();
        assert!(stored < 2 * 1000, "{stored}");
    }

    /// A sanity check of speed; run with
    /// `cargo test -p vigil-audit --release -- --ignored --nocapture million`.
    #[test]
    #[ignore = "timing check, run in release mode by hand"]
    fn million_leaves() {
        use std::time::Instant;
        let n: u64 = 1_000_000;
        let data: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let started = Instant::now();
        let tree = MerkleTree::from_leaves(data.iter().copied());
        let built = started.elapsed();
        let root = tree.root();

        let started = Instant::now();
        let index = 765_432;
        let inclusion = tree.inclusion_proof(index, n).unwrap();
        let inclusion_time = started.elapsed();
        let started = Instant::now();
        let consistency = tree.consistency_proof(654_321, n).unwrap();
        let consistency_time = started.elapsed();
        let started = Instant::now();
        let old_root = tree.root_at(654_321).unwrap();
        let root_at_time = started.elapsed();

        crate::verify_inclusion(index, n, &data[index as usize], &inclusion, &root).unwrap();
        crate::verify_consistency(654_321, n, &old_root, &root, &consistency).unwrap();
        println!(
            "build {n} leaves: {built:?}; inclusion proof ({} hashes): {inclusion_time:?}; \
             consistency proof ({} hashes): {consistency_time:?}; root_at: {root_at_time:?}",
            inclusion.len(),
            consistency.len()
        );
    }
}
