//! Property tests: proofs the tree makes verify, and any change to a proof, a root or a leaf
//! makes verification fail.

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use vigil_audit::{Hash, MerkleTree, leaf_hash, verify_consistency, verify_inclusion};

fn tree_of(entries: &[Vec<u8>]) -> (MerkleTree, Vec<Hash>) {
    let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    (MerkleTree::from_leaves(leaves.iter().copied()), leaves)
}

fn entries(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 1..=max)
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut flipped = *hash;
    flipped[bit / 8 % 32] ^= 1 << (bit % 8);
    flipped
}

proptest! {
    // Each case checks every proof of a tree of up to 300 leaves (~45,000 of each kind), so fewer cases.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn every_proof_the_tree_makes_verifies(entries in entries(300)) {
        let (tree, leaves) = tree_of(&entries);
        let n = tree.size();
        let roots: Vec<Hash> = (0..=n).map(|size| tree.root_at(size).unwrap()).collect();
        for size in 1..=n {
            let root = &roots[size as usize];
            for index in 0..size {
                let proof = tree.inclusion_proof(index, size).unwrap();
                prop_assert_eq!(
                    verify_inclusion(index, size, &leaves[index as usize], &proof, root),
                    Ok(()),
                    "index {} size {}", index, size
                );
            }
            for size1 in 1..=size {
                let proof = tree.consistency_proof(size1, size).unwrap();
                prop_assert_eq!(
                    verify_consistency(size1, size, &roots[size1 as usize], root, &proof),
                    Ok(()),
                    "size1 {} size2 {}", size1, size
                );
            }
        }
    }
}

proptest! {
    #[test]
    fn root_at_is_the_root_of_the_prefix(entries in entries(300), cut in any::<prop::sample::Index>()) {
        let (tree, leaves) = tree_of(&entries);
        let k = cut.index(leaves.len() + 1);
        let prefix = MerkleTree::from_leaves(leaves[..k].iter().copied());
        prop_assert_eq!(tree.root_at(k as u64).unwrap(), prefix.root());
        prop_assert_eq!(prefix.size(), k as u64);
    }

    #[test]
    fn a_flipped_bit_breaks_an_inclusion_proof(
        entries in entries(300),
        size_pick in any::<prop::sample::Index>(),
        index_pick in any::<prop::sample::Index>(),
        target in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let (tree, leaves) = tree_of(&entries);
        let size = size_pick.index(leaves.len()) as u64 + 1;
        let index = index_pick.index(size as usize) as u64;
        let mut proof = tree.inclusion_proof(index, size).unwrap();
        let mut root = tree.root_at(size).unwrap();
        let mut leaf = leaves[index as usize];
        prop_assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root), Ok(()));

        // Pick one of: each proof hash, the root, the leaf.
        match target.index(proof.len() + 2) {
            i if i < proof.len() => proof[i] = flip(&proof[i], bit),
            i if i == proof.len() => root = flip(&root, bit),
            _ => leaf = flip(&leaf, bit),
        }
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &root).is_err());
    }

    #[test]
    fn a_flipped_bit_breaks_a_consistency_proof(
        entries in entries(300),
        size2_pick in any::<prop::sample::Index>(),
        size1_pick in any::<prop::sample::Index>(),
        target in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let (tree, _) = tree_of(&entries);
        let size2 = size2_pick.index(entries.len()) as u64 + 1;
        let size1 = size1_pick.index(size2 as usize) as u64 + 1;
        let mut proof = tree.consistency_proof(size1, size2).unwrap();
        let mut root1 = tree.root_at(size1).unwrap();
        let mut root2 = tree.root_at(size2).unwrap();
        prop_assert_eq!(verify_consistency(size1, size2, &root1, &root2, &proof), Ok(()));

        match target.index(proof.len() + 2) {
            i if i < proof.len() => proof[i] = flip(&proof[i], bit),
            i if i == proof.len() => root1 = flip(&root1, bit),
            _ => root2 = flip(&root2, bit),
        }
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &proof).is_err());
    }

    #[test]
    fn a_proof_for_other_sizes_is_refused(
        entries in entries(100),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        c in any::<prop::sample::Index>(),
    ) {
        // A valid proof presented with a different (index, size) or (size1, size2) is refused
        // unless the two happen to define the very same proof and roots.
        let (tree, leaves) = tree_of(&entries);
        let n = leaves.len();
        let size = a.index(n) as u64 + 1;
        let index = b.index(size as usize) as u64;
        let other = c.index(size as usize) as u64;
        let proof = tree.inclusion_proof(index, size).unwrap();
        let root = tree.root_at(size).unwrap();
        if other != index && leaves[other as usize] != leaves[index as usize] {
            prop_assert!(verify_inclusion(other, size, &leaves[index as usize], &proof, &root).is_err());
        }
        if size > 1 {
            let size1 = other.max(1);
            let proof = tree.consistency_proof(size1, size).unwrap();
            let root1 = tree.root_at(size1).unwrap();
            if size1 + 1 < size {
                prop_assert!(verify_consistency(size1 + 1, size, &root1, &root, &proof).is_err());
            }
        }
    }
}

/// Every single-bit change of every hash of one proof of each kind, exhaustively.
#[test]
fn every_bit_of_one_proof_matters() {
    let entries: Vec<Vec<u8>> = (0u32..77).map(|i| i.to_be_bytes().to_vec()).collect();
    let (tree, leaves) = tree_of(&entries);
    let (index, size, size1) = (45, 77, 45);
    let proof = tree.inclusion_proof(index, size).unwrap();
    let root = tree.root();
    let leaf = leaves[index as usize];
    for bit in 0..256 {
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i] = flip(&bad[i], bit);
            assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
        }
        assert!(verify_inclusion(index, size, &flip(&leaf, bit), &proof, &root).is_err());
        assert!(verify_inclusion(index, size, &leaf, &proof, &flip(&root, bit)).is_err());
    }
    let proof = tree.consistency_proof(size1, size).unwrap();
    let root1 = tree.root_at(size1).unwrap();
    for bit in 0..256 {
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i] = flip(&bad[i], bit);
            assert!(verify_consistency(size1, size, &root1, &root, &bad).is_err());
        }
        assert!(verify_consistency(size1, size, &flip(&root1, bit), &root, &proof).is_err());
        assert!(verify_consistency(size1, size, &root1, &flip(&root, bit), &proof).is_err());
    }
}
