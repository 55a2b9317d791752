//! One simulated second of a 1,000-patient ward with the clinical device mix: every patient
//! stepped and every device polled, as a live driver ticking at 1 Hz does.
//!
//! `cargo bench -p vigil-sim --bench ward`. The budget is well under 1 % of a core: 10 ms of
//! work per simulated second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // benchmark code

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use vigil_sim::{DeviceReading, Ward, WardConfig};

fn ward(c: &mut Criterion) {
    let mut ward = Ward::new(
        1,
        WardConfig {
            patients: 1000,
            ..WardConfig::default()
        },
    )
    .unwrap();
    // Past the start-up, so devices are mid-schedule.
    for _ in 0..600 {
        ward.advance(1.0);
    }
    let mut out: Vec<DeviceReading> = Vec::new();
    c.bench_function("ward_1000_patients_one_second", |b| {
        b.iter(|| {
            ward.advance(1.0);
            out.clear();
            ward.collect_due(&mut out);
            black_box(out.len())
        });
    });
}

criterion_group!(benches, ward);
criterion_main!(benches);
