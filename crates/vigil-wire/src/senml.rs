//! Observation packs: Vigil's profile of SenML (RFC 8428), in both of its encodings, JSON
//! (`application/senml+json`) and CBOR (`application/senml+cbor`, RFC 8428 §6). The exact
//! format, with the same example in both encodings, is in `docs/protocol.md`.
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
//!   ignored, as the RFC requires. `vs`, `vb`, `vd`, `s`, `ut` and `bs` are refused: Vigil's
//!   quantities are numeric. A field twice in one record is refused: a proxy that reads the
//!   first and a hub that reads the last would disagree about what was measured.
//!
//! # Two encodings, one meaning
//!
//! Each encoding's parser ([`decode_json`], [`decode_cbor`]) only turns syntax into raw records
//! (label → number, text or "something else"); one semantic layer then applies base values,
//! binds names to the device and checks the profile. Both encodings therefore accept and refuse
//! the same packs with the same errors; only refusals of the encoding itself differ (malformed
//! JSON is [`SenmlError::NotAPack`], malformed CBOR a [`SenmlError::Cbor`]). Refusals of the
//! encoding, of nesting and of the record count come before the refusals of any record.
//!
//! [`decode`] tells the encodings apart by the first byte that is not JSON whitespace: `[` is a
//! JSON pack, `0x80`–`0x9f` (a CBOR array) a CBOR pack. The two cannot be confused: `[` (0x5b)
//! opens a CBOR byte string, never an array, and JSON's whitespace bytes are CBOR integers.
//! [`Encoding::from_content_type`] reads an HTTP `Content-Type` or an MQTT v5 Content Type.
//!
//! # CBOR specifics
//!
//! - Labels are the integers of RFC 8428 Table 4 (`bn` is -2, `v` is 2, …); extension labels
//!   (`seq_`) are text. The RFC declares the table closed, so any other integer label is refused
//!   ([`SenmlError::UnknownLabel`]), and so is a standard field written as text
//!   ([`SenmlError::TextLabel`]): ignoring `"u"` would silently apply the base unit instead.
//! - Numbers may be integers or half, single or double precision floats; NaN and infinities are
//!   refused, as JSON cannot carry them.
//! - Tags (including RFC 8428's decimal fractions, tag 4) and indefinite-length items are
//!   refused: a pack is at most [`MAX_PACK_BYTES`] built in memory, so a device has no reason to
//!   stream it, and each feature left out is parser surface an attacker cannot use.
//! - No allocation follows a declared length: lengths are checked against the bytes left before
//!   anything is read, strings are borrowed from the input, and ignored values are skipped
//!   without recursion, [`MAX_NESTING`] deep at most.
//!
//! Decoding checks syntax and SenML semantics only; whether a code is a quantity the device's
//! class may report, and whether its unit is accepted, is the ingest pipeline's business.
//! [`crate::encode`] writes packs in this profile.

use std::fmt;

use vigil_model::{DeviceId, Timestamp};

mod cbor;
mod json;
mod records;

pub use cbor::CborError;
pub(crate) use records::{RELATIVE_TIME_LIMIT, is_unit_code};

/// Largest pack accepted, in bytes.
pub const MAX_PACK_BYTES: usize = 64 * 1024;
/// Most records in one pack.
pub const MAX_RECORDS: usize = 512;
/// Deepest nesting of arrays and maps (JSON objects), the pack's array and its records
/// included: a field's value may hold containers `MAX_NESTING - 2` deep. Unknown fields are
/// ignored, but a hostile one must not cost a deep recursion or stack to skip.
pub const MAX_NESTING: usize = 16;
/// SenML version Vigil speaks (RFC 8428 is version 10).
pub const SENML_VERSION: i64 = 10;

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

/// Why a pack is refused. Never carries a value from the pack (values may be PHI); field names,
/// labels and positions only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenmlError {
    /// Larger than [`MAX_PACK_BYTES`].
    #[error("pack is larger than {MAX_PACK_BYTES} bytes")]
    TooLarge,
    /// Not JSON, not CBOR, or not an array of records (JSON objects, CBOR maps).
    #[error("pack is not an array of SenML records")]
    NotAPack,
    /// No records.
    #[error("pack has no records")]
    Empty,
    /// More than [`MAX_RECORDS`].
    #[error("pack has more than {MAX_RECORDS} records")]
    TooManyRecords,
    /// Arrays and maps nested deeper than [`MAX_NESTING`].
    #[error("{at}: arrays and maps nest deeper than {MAX_NESTING}")]
    TooDeep {
        /// Where.
        at: Location,
    },
    /// Not well-formed CBOR, or a CBOR feature Vigil's profile refuses.
    #[error("pack is not acceptable CBOR: {0}")]
    Cbor(CborError),
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
    /// The same field twice in one record.
    #[error("{at}: field {field:?} appears more than once")]
    Duplicate {
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
    /// CBOR: a map key that is neither an integer nor a text string.
    #[error("{at}: a CBOR label must be an integer or a text string")]
    LabelType {
        /// Where.
        at: Location,
    },
    /// CBOR: a standard SenML field written with its name instead of its integer label.
    #[error("{at}: field {field:?} must use its CBOR label {label}, not its name")]
    TextLabel {
        /// Where.
        at: Location,
        /// The field's name.
        field: &'static str,
        /// Its label in RFC 8428 Table 4.
        label: i8,
    },
    /// CBOR: an integer label outside RFC 8428 Table 4, which is closed (extensions use text).
    #[error("{at}: CBOR label {label} is not a SenML label")]
    UnknownLabel {
        /// Where.
        at: Location,
        /// The label sent.
        label: i128,
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

/// The two encodings of a SenML pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `application/senml+json` (RFC 8428 §5).
    Json,
    /// `application/senml+cbor` (RFC 8428 §6).
    Cbor,
}

impl Encoding {
    /// The media type, as sent in `Content-Type`.
    pub const fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/senml+json",
            Encoding::Cbor => "application/senml+cbor",
        }
    }

    /// The encoding a `Content-Type` (HTTP) or Content Type property (MQTT v5) names, if it
    /// names one. Media types are case-insensitive and parameters (after `;`) are ignored.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split_once(';')
            .map_or(content_type, |(essence, _)| essence)
            .trim();
        [Encoding::Json, Encoding::Cbor]
            .into_iter()
            .find(|encoding| essence.eq_ignore_ascii_case(encoding.content_type()))
    }

    /// The encoding `input` is in, judged by its first byte that is not JSON whitespace:
    /// `[` for JSON, a CBOR array header (`0x80`–`0x9f`) for CBOR; `None` for anything else.
    pub fn detect(input: &[u8]) -> Option<Self> {
        let first = input
            .iter()
            .find(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))?;
        match first {
            b'[' => Some(Encoding::Json),
            0x80..=0x9f => Some(Encoding::Cbor),
            _ => None,
        }
    }
}

/// Decodes a pack from `device`, received at `now`, in whichever encoding [`Encoding::detect`]
/// finds (MQTT publications carry no content type before version 5).
pub fn decode(input: &[u8], device: &DeviceId, now: Timestamp) -> Result<Pack, SenmlError> {
    if input.len() > MAX_PACK_BYTES {
        return Err(SenmlError::TooLarge);
    }
    let encoding = Encoding::detect(input).ok_or(SenmlError::NotAPack)?;
    decode_as(encoding, input, device, now)
}

/// Decodes a pack from `device`, received at `now`, in `encoding` (named by a content type).
pub fn decode_as(
    encoding: Encoding,
    input: &[u8],
    device: &DeviceId,
    now: Timestamp,
) -> Result<Pack, SenmlError> {
    match encoding {
        Encoding::Json => decode_json(input, device, now),
        Encoding::Cbor => decode_cbor(input, device, now),
    }
}

/// Decodes a JSON pack (`application/senml+json`) from `device`, received at `now`.
pub fn decode_json(input: &[u8], device: &DeviceId, now: Timestamp) -> Result<Pack, SenmlError> {
    if input.len() > MAX_PACK_BYTES {
        return Err(SenmlError::TooLarge);
    }
    records::resolve(&json::parse(input)?, device, now)
}

/// Decodes a CBOR pack (`application/senml+cbor`) from `device`, received at `now`.
pub fn decode_cbor(input: &[u8], device: &DeviceId, now: Timestamp) -> Result<Pack, SenmlError> {
    if input.len() > MAX_PACK_BYTES {
        return Err(SenmlError::TooLarge);
    }
    records::resolve(&cbor::parse(input)?, device, now)
}

#[cfg(test)]
mod tests;
