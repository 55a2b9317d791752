//! Making and checking proofs in a log of 1,000,000 leaves.
//!
//! `cargo bench -p vigil-audit --bench proofs`; results in docs/performance.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // benchmark code

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use vigil_audit::{MerkleTree, leaf_hash, verify_consistency, verify_inclusion};

const LEAVES: u64 = 1_000_000;

fn proofs(c: &mut Criterion) {
    let tree = MerkleTree::from_leaves((0..LEAVES).map(|i| leaf_hash(&i.to_be_bytes())));
    let root = tree.root();
    let index: u64 = 123_457;
    let leaf = leaf_hash(&index.to_be_bytes());
    let old_size = 700_001;
    let old_root = tree.root_at(old_size).unwrap();

    let mut group = c.benchmark_group("proofs_1m_leaves");
    group.bench_function("build_tree", |b| {
        b.iter(|| MerkleTree::from_leaves((0..LEAVES).map(|i| leaf_hash(&i.to_be_bytes()))));
    });
    group.bench_function("inclusion_make", |b| {
        b.iter(|| tree.inclusion_proof(black_box(index), LEAVES).unwrap());
    });
    let inclusion = tree.inclusion_proof(index, LEAVES).unwrap();
    group.bench_function("inclusion_check", |b| {
        b.iter(|| verify_inclusion(black_box(index), LEAVES, &leaf, &inclusion, &root).unwrap());
    });
    group.bench_function("consistency_make", |b| {
        b.iter(|| tree.consistency_proof(black_box(old_size), LEAVES).unwrap());
    });
    let consistency = tree.consistency_proof(old_size, LEAVES).unwrap();
    group.bench_function("consistency_check", |b| {
        b.iter(|| {
            verify_consistency(black_box(old_size), LEAVES, &old_root, &root, &consistency).unwrap()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = proofs
}
criterion_main!(benches);
