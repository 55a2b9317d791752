//! Writing packs in Vigil's profile of SenML, for devices, simulators and benchmarks.
//!
//! ```
//! use vigil_model::{DeviceId, Timestamp};
//! use vigil_wire::encode::{PackBuilder, ReadingTime};
//!
//! let device = DeviceId::new("oxi-7").unwrap();
//! let base = Timestamp::from_unix_millis(1_764_403_200_250).unwrap();
//! let mut pack = PackBuilder::new(&device, 42, base).unwrap();
//! pack.reading(150_456, "%", 97.0, ReadingTime::Offset(0.0)).unwrap();
//! pack.reading(149_530, "/min", 72.0, ReadingTime::Offset(0.5)).unwrap();
//! assert_eq!(
//!     String::from_utf8(pack.to_json()).unwrap(),
//!     r#"[{"bn":"urn:vigil:device:oxi-7:","bt":1764403200.25,"seq_":42,"n":"150456","u":"%","v":97},{"n":"149530","u":"/min","v":72,"t":0.5}]"#
//! );
//! ```
//!
//! The first record carries `bn`, `bt` and `seq_` (as in `docs/protocol.md`); each record
//! carries `n`, `u`, `v` and, unless zero, `t`. Every check the decoder makes that the builder
//! can know is made when a reading is added, so what the builder writes decodes to the same
//! codes, units, values and times (to the millisecond) in both encodings.

use std::convert::Infallible;

use ciborium_ll::{Encoder, Header};
use vigil_model::id::DEVICE_URN_PREFIX;
use vigil_model::{DeviceId, Timestamp};

use crate::senml::{Encoding, MAX_PACK_BYTES, MAX_RECORDS, RELATIVE_TIME_LIMIT, is_unit_code};

/// Largest magnitude below which every integer is an exact `f64`.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

/// When a reading was measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadingTime {
    /// At this instant (written as an offset from the pack's base time).
    At(Timestamp),
    /// This many seconds after the pack's base time (before it, if negative).
    Offset(f64),
}

/// Why a pack cannot be written. Names the reading (0-based), never its value (PHI).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The base time is before 1978-07-04T21:24:16Z (2^28 s), which SenML reads as relative.
    #[error("base time is before 2^28 seconds since 1970, which SenML reads as relative")]
    BaseTime,
    /// More than [`MAX_RECORDS`] readings.
    #[error("a pack holds at most {MAX_RECORDS} readings")]
    TooManyReadings,
    /// The reading would make the pack larger than [`MAX_PACK_BYTES`] (in JSON, the larger
    /// encoding): send it in the next pack.
    #[error("reading {reading} would make the pack larger than {MAX_PACK_BYTES} bytes")]
    TooLarge {
        /// Which reading.
        reading: usize,
    },
    /// The unit is not 1 to 32 printable ASCII characters.
    #[error(
        "reading {reading}: the unit must be a UCUM code of 1 to 32 printable ASCII characters"
    )]
    Unit {
        /// Which reading.
        reading: usize,
    },
    /// The value is NaN or infinite.
    #[error("reading {reading}: the value must be a finite number")]
    Value {
        /// Which reading.
        reading: usize,
    },
    /// The time is not finite, falls before 2^28 seconds since 1970 or after 9999.
    #[error("reading {reading}: the time must fall between 1978-07-04 and 9999-12-31")]
    Time {
        /// Which reading.
        reading: usize,
    },
}

/// A pack being written: one device, one sequence number, a base time, and readings.
///
/// A pack needs one reading at least: without one, both encodings write an empty array, which
/// the hub refuses.
#[derive(Debug, Clone)]
pub struct PackBuilder {
    base_name: String,
    sequence: u64,
    base_time: f64,
    readings: Vec<Entry>,
    /// The length of the JSON encoding, which is never shorter than the CBOR one: a record's
    /// quoted labels and punctuation take 15 bytes more in JSON (19 with `t`), more than its
    /// one or two floats can take more in CBOR (6 each: a double is 9 bytes, `0.1` is 3).
    json_len: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    code: u32,
    unit: String,
    value: f64,
    /// Seconds after the base time.
    offset: f64,
}

impl Entry {
    /// The record's fields in JSON, without braces.
    fn json(&self, out: &mut String) {
        out.push_str(&format!("\"n\":\"{}\",\"u\":", self.code));
        json_string(out, &self.unit);
        out.push_str(",\"v\":");
        json_number(out, self.value);
        if self.offset != 0.0 {
            out.push_str(",\"t\":");
            json_number(out, self.offset);
        }
    }
}

impl PackBuilder {
    /// A pack from `device` with its per-device `sequence` number and base time.
    pub fn new(
        device: &DeviceId,
        sequence: u64,
        base_time: Timestamp,
    ) -> Result<Self, EncodeError> {
        let base_time = seconds(base_time);
        if base_time < RELATIVE_TIME_LIMIT {
            return Err(EncodeError::BaseTime);
        }
        let mut pack = Self {
            base_name: format!("{DEVICE_URN_PREFIX}{device}:"),
            sequence,
            base_time,
            readings: Vec::new(),
            json_len: 0,
        };
        let mut base = String::new();
        pack.json_base(&mut base);
        // `[` and `]` around the records; the first record's base fields.
        pack.json_len = 2 + base.len();
        Ok(pack)
    }

    /// Adds a reading of the quantity with MDC `code`, in UCUM `unit`.
    pub fn reading(
        &mut self,
        code: u32,
        unit: &str,
        value: f64,
        time: ReadingTime,
    ) -> Result<&mut Self, EncodeError> {
        let reading = self.readings.len();
        if reading >= MAX_RECORDS {
            return Err(EncodeError::TooManyReadings);
        }
        if !is_unit_code(unit) {
            return Err(EncodeError::Unit { reading });
        }
        if !value.is_finite() {
            return Err(EncodeError::Value { reading });
        }
        let offset = match time {
            ReadingTime::At(at) => seconds(at) - self.base_time,
            ReadingTime::Offset(offset) => offset,
        };
        // What the decoder will compute, with the same operations, must be an absolute time.
        let absolute = self.base_time + offset;
        if !offset.is_finite()
            || absolute < RELATIVE_TIME_LIMIT
            || Timestamp::from_unix_seconds_f64(absolute).is_err()
        {
            return Err(EncodeError::Time { reading });
        }
        let entry = Entry {
            code,
            unit: unit.to_owned(),
            value,
            offset,
        };
        let mut fields = String::new();
        entry.json(&mut fields);
        // `{}` around the fields, and a comma before every record but the first.
        let json_len = self.json_len + fields.len() + 2 + usize::from(reading > 0);
        if json_len > MAX_PACK_BYTES {
            return Err(EncodeError::TooLarge { reading });
        }
        self.json_len = json_len;
        self.readings.push(entry);
        Ok(self)
    }

    /// How many readings the pack holds.
    pub fn len(&self) -> usize {
        self.readings.len()
    }

    /// Whether the pack holds no reading yet.
    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }

    /// The pack in `encoding`.
    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Json => self.to_json(),
            Encoding::Cbor => self.to_cbor(),
        }
    }

    /// The pack as `application/senml+json`, without whitespace.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.json_len);
        out.push('[');
        for (index, entry) in self.readings.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push('{');
            if index == 0 {
                self.json_base(&mut out);
            }
            entry.json(&mut out);
            out.push('}');
        }
        out.push(']');
        out.into_bytes()
    }

    /// The first record's base fields in JSON, with the comma before the reading's own.
    fn json_base(&self, out: &mut String) {
        out.push_str("\"bn\":");
        json_string(out, &self.base_name);
        out.push_str(",\"bt\":");
        json_number(out, self.base_time);
        out.push_str(&format!(",\"seq_\":{},", self.sequence));
    }

    /// The pack as `application/senml+cbor`: integer labels, definite lengths, no tags, each
    /// number as an integer when it is one, else the shortest float that holds it exactly.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut out = Cbor(Encoder::from(Sink(&mut bytes)));
        out.header(Header::Array(Some(self.readings.len())));
        for (index, entry) in self.readings.iter().enumerate() {
            let first = index == 0;
            let fields = 3 + usize::from(first) * 3 + usize::from(entry.offset != 0.0);
            out.header(Header::Map(Some(fields)));
            if first {
                out.label(-2);
                out.text(&self.base_name);
                out.label(-3);
                out.number(self.base_time);
                out.text("seq_");
                out.header(Header::Positive(self.sequence));
            }
            out.label(0);
            out.text(&entry.code.to_string());
            out.label(1);
            out.text(&entry.unit);
            out.label(2);
            out.number(entry.value);
            if entry.offset != 0.0 {
                out.label(6);
                out.number(entry.offset);
            }
        }
        bytes
    }
}

#[allow(clippy::cast_precision_loss)] // milliseconds since 1970 fit f64 exactly until 2255
fn seconds(time: Timestamp) -> f64 {
    time.unix_millis() as f64 / 1000.0
}

/// `number` as an `i64` if it is an integer that both encodings can write as one without
/// changing its value (negative zero stays a float: as an integer it would lose its sign).
fn as_integer(number: f64) -> Option<i64> {
    let integral = number.fract() == 0.0 && number.abs() <= EXACT_INTEGER_LIMIT;
    #[allow(clippy::cast_possible_truncation)] // integral and within ±2^53: exact
    (integral && !(number == 0.0 && number.is_sign_negative())).then_some(number as i64)
}

/// Appends `number` (finite) as JSON: an integer when it is one, else the shortest decimal
/// that reads back as the same `f64` (Rust's `Debug` for floats).
fn json_number(out: &mut String, number: f64) {
    match as_integer(number) {
        Some(integer) => out.push_str(&integer.to_string()),
        None => out.push_str(&format!("{number:?}")),
    }
}

/// Appends `text` as a JSON string. Names and units are printable ASCII (device ids and UCUM
/// codes are checked), so only `"` and `\` need escaping.
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A `Vec` as ciborium's writer, with the error it really has: none.
struct Sink<'v>(&'v mut Vec<u8>);

impl ciborium_io::Write for Sink<'_> {
    type Error = Infallible;

    fn write_all(&mut self, data: &[u8]) -> Result<(), Infallible> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

struct Cbor<'v>(Encoder<Sink<'v>>);

impl Cbor<'_> {
    fn header(&mut self, header: Header) {
        let Ok(()) = self.0.push(header);
    }

    /// An RFC 8428 Table 4 label: a small integer, which `number` writes as a CBOR integer.
    fn label(&mut self, label: i8) {
        self.number(f64::from(label));
    }

    fn text(&mut self, text: &str) {
        let Ok(()) = self.0.text(text, None);
    }

    fn number(&mut self, number: f64) {
        self.header(match as_integer(number) {
            Some(integer) => match u64::try_from(integer) {
                Ok(positive) => Header::Positive(positive),
                // -1 - integer: CBOR's negative integers count down from -1.
                Err(_) => Header::Negative(integer.unsigned_abs() - 1),
            },
            // ciborium-ll picks the shortest of half, single and double that is exact.
            None => Header::Float(number),
        });
    }
}

#[cfg(test)]
mod tests;
