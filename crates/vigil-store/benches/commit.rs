//! Observations committed per second with sealing (AES-256-GCM per value), one audit leaf per
//! batch, and a durable commit (fsync), on the machine at hand.
//!
//! `cargo bench -p vigil-store --bench commit`; results in docs/performance.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // benchmark code

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vigil_model::phi::Phi;
use vigil_model::{DeviceClass, DeviceId, Observation, PatientId, Quantity, Timestamp};
use vigil_store::seal::Keyring;
use vigil_store::{
    ClinicalStore, Demographics, DeviceRecord, DeviceStatus, RegistryStore, SqliteStore,
    TokenRecord,
};

fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let keyring = Keyring::create(dir.path()).unwrap();
    let store = SqliteStore::open(dir.path(), Arc::new(keyring)).unwrap();
    for p in 0..16 {
        store
            .add_patient(
                &PatientId::new(format!("p-{p}")).unwrap(),
                &Demographics {
                    name: Phi::new(format!("Patient {p}")),
                    mrn: Phi::new(format!("MRN-{p}")),
                    birth_date: Phi::new(time::macros::date!(1970 - 01 - 01)),
                },
                Timestamp::EPOCH,
            )
            .unwrap();
        store
            .add_device(
                &DeviceRecord {
                    id: DeviceId::new(format!("mon-{p}")).unwrap(),
                    class: DeviceClass::BedsideMonitor,
                    status: DeviceStatus::Active,
                    created_at: Timestamp::EPOCH,
                    revoked_at: None,
                },
                &TokenRecord {
                    id: format!("t{p}"),
                    device: DeviceId::new(format!("mon-{p}")).unwrap(),
                    secret_hash: vec![0; 32],
                    created_at: Timestamp::EPOCH,
                    expires_at: Timestamp::EPOCH,
                },
            )
            .unwrap();
    }
    (dir, Arc::new(store))
}

/// `count` observations spread over 16 patients, with fresh sequence numbers.
fn observations(next: &AtomicU64, count: u64) -> Vec<Observation> {
    let start = next.fetch_add(count, Ordering::Relaxed);
    (start..start + count)
        .map(|s| {
            let p = s % 16;
            Observation {
                device: DeviceId::new(format!("mon-{p}")).unwrap(),
                patient: Some(PatientId::new(format!("p-{p}")).unwrap()),
                quantity: Quantity::HeartRate,
                value: Phi::new(72.0),
                time: Timestamp::from_unix_millis(1_700_000_000_000 + i64::try_from(s).unwrap())
                    .unwrap(),
                sequence: s,
                implausible: false,
            }
        })
        .collect()
}

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    // One caller with large submissions: the committer's own ceiling.
    for size in [1_000u64, 10_000] {
        let (_dir, store) = store();
        let next = AtomicU64::new(0);
        group.throughput(Throughput::Elements(size));
        group.bench_with_input(BenchmarkId::new("one_caller", size), &size, |b, &size| {
            b.iter(|| {
                store
                    .commit_observations(observations(&next, size))
                    .unwrap()
            });
        });
    }
    // Concurrent callers: sealing and hashing spread over the cores, inserts on the committer.
    // 4 × 5,000: ingest handing over large batches; 64 × 50: many devices, group commit.
    for (callers, per_caller) in [(4u64, 5_000u64), (64, 50)] {
        concurrent(&mut group, callers, per_caller);
    }
    group.finish();
}

fn concurrent(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    callers: u64,
    per_caller: u64,
) {
    let (_dir, store) = store();
    let next = Arc::new(AtomicU64::new(0));
    group.throughput(Throughput::Elements(callers * per_caller));
    group.bench_function(format!("{callers}_callers_x_{per_caller}"), |b| {
        b.iter(|| {
            let threads: Vec<_> = (0..callers)
                .map(|_| {
                    let store = Arc::clone(&store);
                    let next = Arc::clone(&next);
                    std::thread::spawn(move || {
                        store
                            .commit_observations(observations(&next, per_caller))
                            .unwrap()
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
        });
    });
}

/// Reading one patient's series: one hour of heart rate out of 160,000 stored observations
/// (16 patients × 10,000), unsealed.
fn read(c: &mut Criterion) {
    let (_dir, store) = store();
    let next = AtomicU64::new(0);
    for _ in 0..16 {
        store
            .commit_observations(observations(&next, 10_000))
            .unwrap();
    }
    let patient = PatientId::new("p-3").unwrap();
    // Observations are 1 ms apart across 16 patients: one patient's hour is 225 of them.
    let from = Timestamp::from_unix_millis(1_700_000_000_000 + 40_000).unwrap();
    let to = Timestamp::from_unix_millis(1_700_000_000_000 + 43_600).unwrap();
    let mut group = c.benchmark_group("read");
    group.sample_size(20);
    group.bench_function("one_patient_one_quantity_range", |b| {
        b.iter(|| {
            let series = store
                .observations(&patient, Quantity::HeartRate, from, to)
                .unwrap();
            assert!(!series.is_empty());
            series
        });
    });
    group.finish();
}

criterion_group!(benches, commit, read);
criterion_main!(benches);
