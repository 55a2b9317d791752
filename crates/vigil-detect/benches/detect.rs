//! Time per event of the rate and anomaly detectors, warmed up, on a ward of 100 bedside
//! monitors (heart rate, pulse rate, SpO2, respiration each second) and 100 pulse oximeters
//! (SpO2, pulse rate each second), one patient per pair: three readings per event on average.
//!
//! `cargo bench -p vigil-detect --bench detect`. The detection thread must keep up with about
//! 200,000 readings a second at peak, about 67,000 such events: 15 µs per event for everything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // benchmark code

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_detect::detectors::{Anomaly, Rate};
use vigil_detect::{Detector, Event, Reading};
use vigil_model::{DeviceClass, DeviceId, PatientId, Phi, Quantity, Timestamp};

const T0: i64 = 1_800_000_000_000;
const PATIENTS: usize = 100;
/// Seconds of events: ten to warm the models up (past the first window), five measured.
const WARM_S: i64 = 600;
const MEASURED_S: i64 = 300;

struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

fn ward() -> Vec<Event> {
    let mut noise = Noise(1);
    let ids: Vec<(DeviceId, DeviceId, PatientId)> = (0..PATIENTS)
        .map(|p| {
            (
                DeviceId::new(format!("monitor-{p:04}")).unwrap(),
                DeviceId::new(format!("oximeter-{p:04}")).unwrap(),
                PatientId::new(format!("patient-{p:04}")).unwrap(),
            )
        })
        .collect();
    let mut events = Vec::new();
    for s in 0..(WARM_S + MEASURED_S) {
        for (p, (monitor, oximeter, patient)) in ids.iter().enumerate() {
            let ms = T0 + s * 1000 + (p as i64 * 7) % 1000;
            let time = Timestamp::from_unix_millis(ms).unwrap();
            let reading = |quantity, value: f64| Reading {
                quantity,
                value: Phi::new(value.round()),
                time,
            };
            let hr = 75.0 + 2.0 * noise.next();
            let spo2 = 97.0 + noise.next();
            events.push(Event::Stored {
                at: time,
                device: monitor.clone(),
                class: DeviceClass::BedsideMonitor,
                patient: patient.clone(),
                sequence: s as u64,
                bytes: 420,
                readings: vec![
                    reading(Quantity::HeartRate, hr),
                    reading(Quantity::PulseRate, hr + noise.next()),
                    reading(Quantity::Spo2, spo2),
                    reading(Quantity::RespirationRate, 16.0 + noise.next()),
                ],
                stored: 4,
                duplicates: 0,
            });
            events.push(Event::Stored {
                at: time,
                device: oximeter.clone(),
                class: DeviceClass::PulseOximeter,
                patient: patient.clone(),
                sequence: s as u64,
                bytes: 230,
                readings: vec![
                    reading(Quantity::Spo2, spo2 + noise.next()),
                    reading(Quantity::PulseRate, hr + 2.0 * noise.next()),
                ],
                stored: 2,
                duplicates: 0,
            });
        }
    }
    events
}

/// Runs `warmed` (cloned afresh whenever the measured events run out) over the measured
/// events; only the observing is timed.
fn measure<D: Detector + Clone>(c: &mut Criterion, name: &str, detector: D, events: &[Event]) {
    let split = 2 * PATIENTS * WARM_S as usize;
    let (warm, measured) = events.split_at(split);
    let mut warmed = detector;
    let mut alerts = Vec::new();
    for event in warm {
        warmed.observe(event, &mut alerts);
    }
    c.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iterations {
                let mut detector = warmed.clone();
                let n = usize::try_from(iterations - done)
                    .unwrap_or(usize::MAX)
                    .min(measured.len());
                let start = Instant::now();
                for event in &measured[..n] {
                    detector.observe(black_box(event), &mut alerts);
                    alerts.clear();
                }
                total += start.elapsed();
                done += n as u64;
            }
            total
        });
    });
}

fn detectors(c: &mut Criterion) {
    let events = ward();
    measure(c, "rate_per_event", Rate::default(), &events);
    measure(c, "anomaly_per_event", Anomaly::default(), &events);
}

criterion_group!(benches, detectors);
criterion_main!(benches);
