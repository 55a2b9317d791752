//! The layer both encodings share: raw records in, a [`Pack`] or a refusal out.
//!
//! A parser (`json`, `cbor`) only fills [`RawRecord`]s: which label carried which scalar, and
//! the first problem a label itself had (refused, repeated, of the wrong type). Everything that
//! gives a pack its meaning, and every profile check, is here once.

use std::borrow::Cow;

use vigil_model::id::DEVICE_URN_PREFIX;
use vigil_model::{DeviceId, Phi, Timestamp};

use super::{Location, MAX_RECORDS, Pack, Reading, SENML_VERSION, SenmlError};

/// Times below this many seconds are relative to now (RFC 8428 §4.5.3).
pub(crate) const RELATIVE_TIME_LIMIT: f64 = 268_435_456.0; // 2^28

/// A field's value as the encoding wrote it, before any SenML meaning is given to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// An integer (JSON: a number without fraction or exponent that fits 64 bits).
    Integer(i128),
    /// A floating-point number.
    Float(f64),
    /// A string, borrowed from the input where the encoding allows it.
    Text(Cow<'a, str>),
    /// Anything else (boolean, null, byte string, array, map): the wrong type for every label
    /// Vigil reads.
    Other,
}

/// The labels Vigil's profile knows: RFC 8428 Table 4, and the `seq_` extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    BaseVersion,
    BaseName,
    BaseTime,
    BaseUnit,
    BaseValue,
    BaseSum,
    Name,
    Unit,
    Value,
    StringValue,
    BoolValue,
    Sum,
    Time,
    UpdateTime,
    DataValue,
    Sequence,
}

/// Labels whose values a record keeps; the others are refused on sight.
const KEPT: usize = 10;

impl Label {
    const ALL: [Label; 16] = [
        Label::BaseVersion,
        Label::BaseName,
        Label::BaseTime,
        Label::BaseUnit,
        Label::BaseValue,
        Label::BaseSum,
        Label::Name,
        Label::Unit,
        Label::Value,
        Label::StringValue,
        Label::BoolValue,
        Label::Sum,
        Label::Time,
        Label::UpdateTime,
        Label::DataValue,
        Label::Sequence,
    ];

    /// Its name: the JSON key, and the text label of extensions in CBOR.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Label::BaseVersion => "bver",
            Label::BaseName => "bn",
            Label::BaseTime => "bt",
            Label::BaseUnit => "bu",
            Label::BaseValue => "bv",
            Label::BaseSum => "bs",
            Label::Name => "n",
            Label::Unit => "u",
            Label::Value => "v",
            Label::StringValue => "vs",
            Label::BoolValue => "vb",
            Label::Sum => "s",
            Label::Time => "t",
            Label::UpdateTime => "ut",
            Label::DataValue => "vd",
            Label::Sequence => "seq_",
        }
    }

    /// Its CBOR label (RFC 8428 Table 4); `None` for extensions, which keep their names.
    pub(crate) const fn cbor(self) -> Option<i8> {
        Some(match self {
            Label::BaseVersion => -1,
            Label::BaseName => -2,
            Label::BaseTime => -3,
            Label::BaseUnit => -4,
            Label::BaseValue => -5,
            Label::BaseSum => -6,
            Label::Name => 0,
            Label::Unit => 1,
            Label::Value => 2,
            Label::StringValue => 3,
            Label::BoolValue => 4,
            Label::Sum => 5,
            Label::Time => 6,
            Label::UpdateTime => 7,
            Label::DataValue => 8,
            Label::Sequence => return None,
        })
    }

    /// Where a record keeps the value; `None` for the fields Vigil's numeric profile refuses.
    const fn slot(self) -> Option<usize> {
        Some(match self {
            Label::BaseVersion => 0,
            Label::BaseName => 1,
            Label::BaseTime => 2,
            Label::BaseUnit => 3,
            Label::BaseValue => 4,
            Label::Name => 5,
            Label::Unit => 6,
            Label::Value => 7,
            Label::Time => 8,
            Label::Sequence => 9,
            Label::BaseSum
            | Label::StringValue
            | Label::BoolValue
            | Label::Sum
            | Label::UpdateTime
            | Label::DataValue => return None,
        })
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|label| label.name() == name)
    }

    pub(crate) fn from_cbor(label: i128) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|known| known.cbor().map(i128::from) == Some(label))
    }
}

/// What was wrong with a label itself; reported for the record before anything else in it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Problem {
    Unsupported(String),
    Duplicate(&'static str),
    LabelType,
    TextLabel(Label),
    UnknownLabel(i128),
}

impl Problem {
    fn at(&self, at: Location) -> SenmlError {
        match self {
            Problem::Unsupported(field) => SenmlError::Unsupported {
                at,
                field: field.clone(),
            },
            Problem::Duplicate(field) => SenmlError::Duplicate { at, field },
            Problem::LabelType => SenmlError::LabelType { at },
            Problem::TextLabel(label) => SenmlError::TextLabel {
                at,
                field: label.name(),
                // Only standard fields, which all have CBOR labels, are refused as text.
                label: label.cbor().unwrap_or_default(),
            },
            Problem::UnknownLabel(label) => SenmlError::UnknownLabel { at, label: *label },
        }
    }
}

/// One record as parsed: the scalars of the labels Vigil reads, and the first label problem.
#[derive(Debug, Default)]
pub(crate) struct RawRecord<'a> {
    fields: [Option<Scalar<'a>>; KEPT],
    problem: Option<Problem>,
}

impl<'a> RawRecord<'a> {
    /// Records a known label's value.
    pub(crate) fn set(&mut self, label: Label, value: Scalar<'a>) {
        match label.slot().and_then(|slot| self.fields.get_mut(slot)) {
            None => self.refuse(Problem::Unsupported(label.name().to_owned())),
            Some(Some(_)) => self.refuse(Problem::Duplicate(label.name())),
            Some(slot) => *slot = Some(value),
        }
    }

    /// Records an unknown named field: ignored as RFC 8428 §4.4 requires, unless its name ends
    /// in `_` (must-understand).
    pub(crate) fn extension(&mut self, name: &str) {
        if name.ends_with('_') {
            self.refuse(Problem::Unsupported(name.chars().take(32).collect()));
        }
    }

    /// Records a problem with a label; the first one in the record is the one reported.
    pub(crate) fn refuse(&mut self, problem: Problem) {
        self.problem.get_or_insert(problem);
    }

    fn get(&self, label: Label) -> Option<&Scalar<'a>> {
        self.fields.get(label.slot()?)?.as_ref()
    }
}

/// Adds a parsed record to the pack, refusing the one past [`MAX_RECORDS`].
pub(crate) fn push<'a>(
    records: &mut Vec<RawRecord<'a>>,
    record: RawRecord<'a>,
) -> Result<(), SenmlError> {
    if records.len() >= MAX_RECORDS {
        return Err(SenmlError::TooManyRecords);
    }
    records.push(record);
    Ok(())
}

/// Whether `unit` can be a UCUM code in Vigil's profile: 1 to 32 printable ASCII characters.
pub(crate) fn is_unit_code(unit: &str) -> bool {
    !unit.is_empty() && unit.len() <= 32 && unit.bytes().all(|b| b.is_ascii_graphic())
}

/// Gives the records of a pack from `device`, received at `now`, their meaning.
pub(crate) fn resolve(
    records: &[RawRecord<'_>],
    device: &DeviceId,
    now: Timestamp,
) -> Result<Pack, SenmlError> {
    if records.is_empty() {
        return Err(SenmlError::Empty);
    }
    let prefix = format!("{DEVICE_URN_PREFIX}{device}:");
    let mut base = Base::default();
    let mut sequence = None;
    let mut readings = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let at = Location::Record(index);
        if let Some(problem) = &record.problem {
            return Err(problem.at(at));
        }
        base.update(record, at)?;
        if let Some(seq) = record.get(Label::Sequence) {
            if index != 0 {
                return Err(SenmlError::Field {
                    at,
                    field: "seq_",
                    problem: "belongs in the first record only",
                });
            }
            sequence = Some(seq.unsigned().ok_or(SenmlError::Field {
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

/// Base values in force (RFC 8428 §4.1: a base field applies until the next one replaces it).
#[derive(Default)]
struct Base<'r> {
    name: &'r str,
    time: f64,
    unit: Option<&'r str>,
    value: f64,
}

impl<'r> Base<'r> {
    fn update(&mut self, record: &'r RawRecord<'_>, at: Location) -> Result<(), SenmlError> {
        if let Some(version) = record.get(Label::BaseVersion) {
            let version = version.signed().ok_or(SenmlError::Field {
                at,
                field: "bver",
                problem: "must be an integer",
            })?;
            if version != SENML_VERSION {
                return Err(SenmlError::Version { at, version });
            }
        }
        if let Some(name) = record.get(Label::BaseName) {
            self.name = name.text(at, "bn")?;
        }
        if let Some(time) = record.get(Label::BaseTime) {
            self.time = time.number(at, "bt")?;
        }
        if let Some(unit) = record.get(Label::BaseUnit) {
            self.unit = Some(unit.unit(at, "bu")?);
        }
        if let Some(value) = record.get(Label::BaseValue) {
            self.value = value.number(at, "bv")?;
        }
        Ok(())
    }
}

impl Scalar<'_> {
    fn text(&self, at: Location, field: &'static str) -> Result<&str, SenmlError> {
        match self {
            Scalar::Text(text) => Ok(text),
            _ => Err(SenmlError::Field {
                at,
                field,
                problem: "must be a string",
            }),
        }
    }

    fn unit(&self, at: Location, field: &'static str) -> Result<&str, SenmlError> {
        let unit = self.text(at, field)?;
        if !is_unit_code(unit) {
            return Err(SenmlError::Field {
                at,
                field,
                problem: "must be a UCUM code of 1 to 32 printable ASCII characters",
            });
        }
        Ok(unit)
    }

    fn number(&self, at: Location, field: &'static str) -> Result<f64, SenmlError> {
        #[allow(clippy::cast_precision_loss)] // as JSON's numbers: integers past 2^53 round
        let number = match self {
            Scalar::Integer(n) => Some(*n as f64),
            Scalar::Float(n) => Some(*n),
            Scalar::Text(_) | Scalar::Other => None,
        };
        number.filter(|n| n.is_finite()).ok_or(SenmlError::Field {
            at,
            field,
            problem: "must be a finite number",
        })
    }

    fn unsigned(&self) -> Option<u64> {
        match self {
            Scalar::Integer(n) => u64::try_from(*n).ok(),
            _ => None,
        }
    }

    fn signed(&self) -> Option<i64> {
        match self {
            Scalar::Integer(n) => i64::try_from(*n).ok(),
            _ => None,
        }
    }
}

fn reading(
    record: &RawRecord<'_>,
    at: Location,
    base: &Base<'_>,
    prefix: &str,
    now: Timestamp,
) -> Result<Reading, SenmlError> {
    let name = match record.get(Label::Name) {
        Some(n) => format!("{}{}", base.name, n.text(at, "n")?),
        None => base.name.to_owned(),
    };
    let code = name
        .strip_prefix(prefix)
        .filter(|code| {
            !code.is_empty() && code.len() <= 10 && code.bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|code| code.parse::<u32>().ok())
        .ok_or(SenmlError::Name { at })?;
    let unit = match record.get(Label::Unit) {
        Some(u) => u.unit(at, "u")?,
        None => base.unit.ok_or(SenmlError::Missing { at, field: "u" })?,
    };
    let value = match record.get(Label::Value) {
        Some(v) => v.number(at, "v")?,
        None => return Err(SenmlError::Missing { at, field: "v" }),
    } + base.value;
    let offset = match record.get(Label::Time) {
        Some(t) => t.number(at, "t")?,
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
        unit: unit.to_owned(),
        value: Phi::new(value),
        time,
    })
}
