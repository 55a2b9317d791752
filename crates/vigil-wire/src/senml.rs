//! Observation packs: Vigil's profile of SenML (RFC 8428), JSON encoding
//! (`application/senml+json`). The exact format, with examples, is in `docs/protocol.md`.
//!
//! ```json
//! [
//!   {"bn": "urn:vigil:device:oxi-7:", "bt": 1764403200.25, "seq_": 42,
//!    "n": "150456", "u": "%", "v": 97},
//!   {"n": "149530", "u": "/min", "v": 72, "t": 0.5}
//! ]
//! ```
//!
//! - Each record's full name (`bn` + `n`) is `urn:vigil:device:<id>:<MDC code>`: the device
//!   must be the authenticated one, the code an IEEE 11073-10101 context-free code in decimal.
//! - `seq_` (must-understand extension, RFC 8428 §4.4) in the first record: the message's
//!   per-device sequence number, required.
//! - Units are UCUM codes (`u`, or `bu` as default); values are numbers (`v`, plus `bv`).
//! - Time: `bt + t` in seconds since the Unix epoch; values below 2^28 are relative to now
//!   (RFC 8428 §4.5.3).
//! - Unknown fields ending in `_` are refused (must-understand); other unknown fields are
//!   ignored, as the RFC requires. `vs`, `vb`, `vd`, `s` and `ut` are refused: Vigil's
//!   quantities are numeric.
//!
//! Decoding checks syntax and SenML semantics only; whether a code is a quantity the device's
//! class may report, and whether its unit is accepted, is the ingest pipeline's business.

use std::fmt;

use serde_json::{Map, Value};
use vigil_model::id::DEVICE_URN_PREFIX;
use vigil_model::{DeviceId, Timestamp};

/// Largest pack accepted, in bytes.
pub const MAX_PACK_BYTES: usize = 64 * 1024;
/// Most records in one pack.
pub const MAX_RECORDS: usize = 512;
/// SenML version Vigil speaks (RFC 8428 is version 10).
pub const SENML_VERSION: i64 = 10;

/// Times below this many seconds are relative to now (RFC 8428 §4.5.3).
const RELATIVE_TIME_LIMIT: f64 = 268_435_456.0; // 2^28

/// One reading from a pack, resolved: full name parsed, base values applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// IEEE 11073-10101 context-free code.
    pub code: u32,
    /// UCUM unit as sent.
    pub unit: String,
    /// The value as sent (not yet converted; PHI).
    pub value: vigil_model::Phi<f64>,
    /// When it was measured.
    pub time: Timestamp,
}

/// A decoded pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    /// The message's per-device sequence number.
    pub sequence: u64,
    /// Its readings, in order.
    pub readings: Vec<Reading>,
}

/// Where in the pack a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The pack as a whole.
    Pack,
    /// Record `n` (0-based).
    Record(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Pack => f.write_str("pack"),
            Location::Record(n) => write!(f, "record {n}"),
        }
    }
}

/// Why a pack is refused. Never carries a value from the pack (values may be PHI); field names
/// and positions only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenmlError {
    /// Larger than [`MAX_PACK_BYTES`].
    #[error("pack is larger than {MAX_PACK_BYTES} bytes")]
    TooLarge,
    /// Not JSON, or not an array of objects.
    #[error("pack is not a JSON array of SenML records")]
    NotAPack,
    /// No records.
    #[error("pack has no records")]
    Empty,
    /// More than [`MAX_RECORDS`].
    #[error("pack has more than {MAX_RECORDS} records")]
    TooManyRecords,
    /// A field has the wrong type or an impossible value.
    #[error("{at}: field {field:?} is invalid: {problem}")]
    Field {
        /// Where.
        at: Location,
        /// Which field.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// A required field is missing.
    #[error("{at}: field {field:?} is required")]
    Missing {
        /// Where.
        at: Location,
        /// Which field.
        field: &'static str,
    },
    /// A must-understand field (ending in `_`) that Vigil does not know, or a field Vigil's
    /// profile refuses.
    #[error("{at}: field {field:?} is not supported")]
    Unsupported {
        /// Where.
        at: Location,
        /// The field's name (names are not PHI; cut to 32 characters).
        field: String,
    },
    /// The record names another device, or is not `urn:vigil:device:<id>:<code>`.
    #[error("{at}: name must be urn:vigil:device:<this device>:<MDC code>")]
    Name {
        /// Where.
        at: Location,
    },
    /// `bver` is not 10.
    #[error("{at}: SenML version {version} is not supported (use 10)")]
    Version {
        /// Where.
        at: Location,
        /// The version sent.
        version: i64,
    },
}

/// The fields a record may carry, with their JSON types.
const KNOWN_FIELDS: &[&str] = &["bn", "bt", "bu", "bv", "bver", "n", "u", "v", "t", "seq_"];
/// Standard SenML fields Vigil's numeric profile refuses.
const REFUSED_FIELDS: &[&str] = &["vs", "vb", "vd", "s", "ut", "bs"];

/// Decodes a JSON pack from `device`, received at `now`.
pub fn decode_json(input: &[u8], device: &DeviceId, now: Timestamp) -> Result<Pack, SenmlError> {
    if input.len() > MAX_PACK_BYTES {
        return Err(SenmlError::TooLarge);
    }
    let value: Value = serde_json::from_slice(input).map_err(|_| SenmlError::NotAPack)?;
    let Value::Array(records) = value else {
        return Err(SenmlError::NotAPack);
    };
    if records.is_empty() {
        return Err(SenmlError::Empty);
    }
    if records.len() > MAX_RECORDS {
        return Err(SenmlError::TooManyRecords);
    }
    let prefix = format!("{DEVICE_URN_PREFIX}{device}:");
    let mut base = Base::default();
    let mut sequence = None;
    let mut readings = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let at = Location::Record(index);
        let Value::Object(record) = record else {
            return Err(SenmlError::NotAPack);
        };
        check_fields(record, at)?;
        base.update(record, at)?;
        if let Some(seq) = record.get("seq_") {
            if index != 0 {
                return Err(SenmlError::Field {
                    at,
                    field: "seq_",
                    problem: "belongs in the first record only",
                });
            }
            sequence = Some(seq.as_u64().ok_or(SenmlError::Field {
                at,
                field: "seq_",
                problem: "must be an integer from 0 to 2^64-1",
            })?);
        }
        readings.push(reading(record, at, &base, &prefix, now)?);
    }
    let sequence = sequence.ok_or(SenmlError::Missing {
        at: Location::Record(0),
        field: "seq_",
    })?;
    Ok(Pack { sequence, readings })
}

fn check_fields(record: &Map<String, Value>, at: Location) -> Result<(), SenmlError> {
    for field in record.keys() {
        let known = KNOWN_FIELDS.contains(&field.as_str());
        if REFUSED_FIELDS.contains(&field.as_str()) || (!known && field.ends_with('_')) {
            return Err(SenmlError::Unsupported {
                at,
                field: field.chars().take(32).collect(),
            });
        }
    }
    Ok(())
}

/// Base values in force (RFC 8428 §4.1: a base field applies until the next one replaces it).
#[derive(Default)]
struct Base {
    name: String,
    time: f64,
    unit: Option<String>,
    value: f64,
}

impl Base {
    fn update(&mut self, record: &Map<String, Value>, at: Location) -> Result<(), SenmlError> {
        if let Some(version) = record.get("bver") {
            let version = version.as_i64().ok_or(SenmlError::Field {
                at,
                field: "bver",
                problem: "must be an integer",
            })?;
            if version != SENML_VERSION {
                return Err(SenmlError::Version { at, version });
            }
        }
        if let Some(name) = record.get("bn") {
            self.name = text(name, at, "bn")?.to_owned();
        }
        if let Some(time) = record.get("bt") {
            self.time = number(time, at, "bt")?;
        }
        if let Some(unit) = record.get("bu") {
            self.unit = Some(unit_text(unit, at, "bu")?.to_owned());
        }
        if let Some(value) = record.get("bv") {
            self.value = number(value, at, "bv")?;
        }
        Ok(())
    }
}

fn text<'a>(value: &'a Value, at: Location, field: &'static str) -> Result<&'a str, SenmlError> {
    value.as_str().ok_or(SenmlError::Field {
        at,
        field,
        problem: "must be a string",
    })
}

fn unit_text<'a>(
    value: &'a Value,
    at: Location,
    field: &'static str,
) -> Result<&'a str, SenmlError> {
    let unit = text(value, at, field)?;
    if unit.is_empty() || unit.len() > 32 || !unit.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SenmlError::Field {
            at,
            field,
            problem: "must be a UCUM code of 1 to 32 printable ASCII characters",
        });
    }
    Ok(unit)
}

fn number(value: &Value, at: Location, field: &'static str) -> Result<f64, SenmlError> {
    value
        .as_f64()
        .filter(|n| n.is_finite())
        .ok_or(SenmlError::Field {
            at,
            field,
            problem: "must be a finite number",
        })
}

fn reading(
    record: &Map<String, Value>,
    at: Location,
    base: &Base,
    prefix: &str,
    now: Timestamp,
) -> Result<Reading, SenmlError> {
    let name = match record.get("n") {
        Some(n) => format!("{}{}", base.name, text(n, at, "n")?),
        None => base.name.clone(),
    };
    let code = name
        .strip_prefix(prefix)
        .filter(|code| {
            !code.is_empty() && code.len() <= 10 && code.bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|code| code.parse::<u32>().ok())
        .ok_or(SenmlError::Name { at })?;
    let unit = match record.get("u") {
        Some(u) => unit_text(u, at, "u")?.to_owned(),
        None => base
            .unit
            .clone()
            .ok_or(SenmlError::Missing { at, field: "u" })?,
    };
    let value = match record.get("v") {
        Some(v) => number(v, at, "v")?,
        None => return Err(SenmlError::Missing { at, field: "v" }),
    } + base.value;
    let offset = match record.get("t") {
        Some(t) => number(t, at, "t")?,
        None => 0.0,
    };
    let seconds = base.time + offset;
    let absolute = if seconds.abs() < RELATIVE_TIME_LIMIT {
        #[allow(clippy::cast_precision_loss)] // milliseconds since 1970 fit f64 exactly until 2255
        let now_seconds = now.unix_millis() as f64 / 1000.0;
        now_seconds + seconds
    } else {
        seconds
    };
    let time = Timestamp::from_unix_seconds_f64(absolute).map_err(|_| SenmlError::Field {
        at,
        field: "t",
        problem: "time is out of range",
    })?;
    if !value.is_finite() {
        return Err(SenmlError::Field {
            at,
            field: "v",
            problem: "must be a finite number",
        });
    }
    Ok(Reading {
        code,
        unit,
        value: vigil_model::Phi::new(value),
        time,
    })
}

#[cfg(test)]
mod tests;
