//! Serialising 24 h of one patient at 1 Hz for five quantities (432,000 Observations) into one
//! searchset Bundle, two ways:
//!
//! - `hand_written`: [`SearchsetWriter::push_observation`], the crate's path, into one buffer;
//! - `hand_written_streamed_1mib`: the same, handing out 1 MiB chunks as a streaming handler
//!   would;
//! - `serde_derive`: the same JSON from `#[derive(Serialize)]` on borrowed structs through
//!   `serde_json::to_writer`, the alternative the crate did not take.
//!
//! `cargo bench -p vigil-fhir --bench searchset`. Both outputs are checked equal first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // benchmark code

use std::fmt;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::{Serialize, Serializer};
use vigil_fhir::{Links, SearchsetWriter, codes};
use vigil_model::{DeviceId, Observation, PatientId, Phi, Quantity, Timestamp};

const BASE: &str = "https://hub.example/fhir/r4";
const QUANTITIES: [Quantity; 5] = [
    Quantity::HeartRate,
    Quantity::Spo2,
    Quantity::RespirationRate,
    Quantity::NibpSystolic,
    Quantity::BodyTemperature,
];

fn day() -> Vec<(String, Observation)> {
    let device = DeviceId::new("mon-0001").unwrap();
    let patient = PatientId::new("patient-001").unwrap();
    let start = 1_764_403_200_000;
    let mut rows = Vec::with_capacity(432_000);
    for second in 0..86_400i64 {
        for (i, q) in QUANTITIES.iter().enumerate() {
            let value = [72.0, 97.0, 16.0, 121.0, 36.8][i] + (second % 7) as f64 * 0.5;
            rows.push((
                format!("{}", second * 5 + i as i64),
                Observation {
                    device: device.clone(),
                    patient: Some(patient.clone()),
                    quantity: *q,
                    value: Phi::new(value),
                    time: Timestamp::from_unix_millis(start + second * 1000).unwrap(),
                    sequence: second as u64,
                    implausible: false,
                },
            ));
        }
    }
    rows
}

/// The body as a handler streams it: 1 MiB chunks handed out (and here dropped) as they fill,
/// so memory stays small and hot. Returns the total length.
fn hand_written_streamed(rows: &[(String, Observation)]) -> usize {
    const CHUNK: usize = 1 << 20;
    let mut writer = SearchsetWriter::with_capacity(BASE, CHUNK + 4096);
    let mut total = 0;
    for (id, obs) in rows {
        writer.push_observation(id, obs).unwrap();
        if writer.buffered() >= CHUNK {
            total += black_box(writer.take_bytes()).len();
        }
    }
    total + writer.finish(None, &Links::default()).len()
}

fn hand_written(rows: &[(String, Observation)]) -> Vec<u8> {
    let mut writer = SearchsetWriter::with_capacity(BASE, rows.len() * 900);
    for (id, obs) in rows {
        writer.push_observation(id, obs).unwrap();
    }
    writer.finish(
        None,
        &Links {
            self_url: "https://hub.example/fhir/r4/Observation?patient=patient-001",
            ..Links::default()
        },
    )
}

// The serde path: the same document from borrowed structs.

struct Display<T>(T);
impl<T: fmt::Display> Serialize for Display<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// `prefix` then `id`, written without an intermediate String.
struct Prefixed<'a>(&'static str, &'a str);
impl fmt::Display for Prefixed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        f.write_str(self.1)
    }
}

#[derive(Serialize)]
struct Bundle<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    entry: Entries<'a>,
    link: [Link<'a>; 1],
}

#[derive(Serialize)]
struct Link<'a> {
    relation: &'static str,
    url: &'a str,
}

struct Entries<'a>(&'a [(String, Observation)]);
impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(id, obs)| Entry {
            full_url: Display(Prefixed("https://hub.example/fhir/r4/Observation/", id)),
            resource: Resource::new(id, obs),
            search: Mode { mode: "match" },
        }))
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    #[serde(rename = "fullUrl")]
    full_url: Display<Prefixed<'a>>,
    resource: Resource<'a>,
    search: Mode,
}

#[derive(Serialize)]
struct Mode {
    mode: &'static str,
}

#[derive(Serialize)]
struct Resource<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Meta>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<[Concept; 1]>,
    code: Code,
    subject: Reference<'a>,
    #[serde(rename = "effectiveDateTime")]
    effective: Display<Timestamp>,
    #[serde(rename = "valueQuantity")]
    value: Value,
    device: Reference<'a>,
}

#[derive(Serialize)]
struct Meta {
    profile: [&'static str; 1],
}

#[derive(Serialize)]
struct Concept {
    coding: [Coding; 1],
}

#[derive(Serialize)]
struct Code {
    coding: Vec<Coding>,
}

#[derive(Serialize)]
struct Coding {
    system: &'static str,
    code: Display<CodeText>,
}

enum CodeText {
    Str(&'static str),
    Num(u32),
}
impl fmt::Display for CodeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeText::Str(s) => f.write_str(s),
            CodeText::Num(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Serialize)]
struct Reference<'a> {
    reference: Display<Prefixed<'a>>,
}

#[derive(Serialize)]
struct Value {
    value: f64,
    unit: &'static str,
    system: &'static str,
    code: &'static str,
}

impl<'a> Resource<'a> {
    fn new(id: &'a str, obs: &'a Observation) -> Self {
        let spec = obs.quantity.spec();
        let unit = spec.canonical_unit().ucum;
        let mut coding: Vec<Coding> = spec
            .loinc
            .iter()
            .map(|l| Coding {
                system: codes::LOINC,
                code: Display(CodeText::Str(l.code)),
            })
            .collect();
        coding.push(Coding {
            system: codes::MDC,
            code: Display(CodeText::Num(spec.mdc.code())),
        });
        Resource {
            resource_type: "Observation",
            id,
            meta: codes::vital_signs_profile(obs.quantity).map(|p| Meta { profile: [p] }),
            status: "final",
            category: codes::observation_category(obs.quantity).map(|c| {
                [Concept {
                    coding: [Coding {
                        system: c.system,
                        code: Display(CodeText::Str(c.code)),
                    }],
                }]
            }),
            code: Code { coding },
            subject: Reference {
                reference: Display(Prefixed("Patient/", obs.patient.as_ref().unwrap().as_str())),
            },
            effective: Display(obs.time),
            value: Value {
                value: *obs.value.expose(),
                unit,
                system: codes::UCUM,
                code: unit,
            },
            device: Reference {
                reference: Display(Prefixed("Device/", obs.device.as_str())),
            },
        }
    }
}

fn serde_derive(rows: &[(String, Observation)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 900);
    serde_json::to_writer(
        &mut out,
        &Bundle {
            resource_type: "Bundle",
            kind: "searchset",
            entry: Entries(rows),
            link: [Link {
                relation: "self",
                url: "https://hub.example/fhir/r4/Observation?patient=patient-001",
            }],
        },
    )
    .unwrap();
    out
}

fn searchset(c: &mut Criterion) {
    let rows = day();
    let ours = hand_written(&rows);
    let theirs = serde_derive(&rows);
    let a: serde_json::Value = serde_json::from_slice(&ours).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&theirs).unwrap();
    assert_eq!(a, b, "the two writers must produce the same document");
    println!(
        "432,000 Observations: {} bytes ({} per entry)",
        ours.len(),
        ours.len() / rows.len()
    );

    let mut group = c.benchmark_group("searchset_432k_observations");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("hand_written", |b| {
        b.iter(|| hand_written(black_box(&rows)))
    });
    group.bench_function("hand_written_streamed_1mib", |b| {
        b.iter(|| hand_written_streamed(black_box(&rows)))
    });
    group.bench_function("serde_derive", |b| {
        b.iter(|| serde_derive(black_box(&rows)))
    });
    group.finish();
}

criterion_group!(benches, searchset);
criterion_main!(benches);
