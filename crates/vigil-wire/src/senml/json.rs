//! JSON syntax (`application/senml+json`) to raw records.
//!
//! serde_json drives visitors here instead of building a `serde_json::Value`: a `Value` map
//! keeps the last of two equal keys without a word, and the record visitor must see both to
//! refuse the record. Visitors cannot return a `SenmlError` through serde, so a refusal other
//! than "not JSON" is left in a slot the caller reads after serde_json gives up.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::records::{self, Label, RawRecord, Scalar};
use super::{Location, MAX_NESTING, SenmlError};

/// The records of a JSON pack.
pub(super) fn parse(input: &[u8]) -> Result<Vec<RawRecord<'_>>, SenmlError> {
    let mut refusal = None;
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    let parsed = PackSeed {
        refusal: &mut refusal,
    }
    .deserialize(&mut deserializer)
    .and_then(|records| deserializer.end().map(|()| records));
    match (parsed, refusal) {
        (_, Some(refusal)) => Err(refusal),
        (Ok(records), None) => Ok(records),
        (Err(_), None) => Err(SenmlError::NotAPack),
    }
}

/// Stops serde_json with `refusal` as the reason the caller will report.
fn refuse<E: de::Error>(slot: &mut Option<SenmlError>, refusal: SenmlError) -> E {
    *slot = Some(refusal);
    E::custom("refused")
}

/// The pack: an array of records.
struct PackSeed<'s> {
    refusal: &'s mut Option<SenmlError>,
}

impl<'de> DeserializeSeed<'de> for PackSeed<'_> {
    type Value = Vec<RawRecord<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PackSeed<'_> {
    type Value = Vec<RawRecord<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of SenML records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut records = Vec::new();
        loop {
            let seed = RecordSeed {
                at: Location::Record(records.len()),
                refusal: &mut *self.refusal,
            };
            let Some(record) = seq.next_element_seed(seed)? else {
                return Ok(records);
            };
            if let Err(refusal) = records::push(&mut records, record) {
                return Err(refuse(self.refusal, refusal));
            }
        }
    }
}

/// One record: an object whose known keys are kept and unknown keys checked, then skipped.
struct RecordSeed<'s> {
    at: Location,
    refusal: &'s mut Option<SenmlError>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = RawRecord<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = RawRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SenML record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut record = RawRecord::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            // The pack's array is level 1, this record level 2: a value's containers start at 3.
            let value = map.next_value_seed(ValueSeed {
                depth: 3,
                at: self.at,
                refusal: &mut *self.refusal,
            })?;
            match key {
                Key::Label(label) => record.set(label, value),
                Key::Other(name) => record.extension(&name),
            }
        }
        Ok(record)
    }
}

enum Key<'de> {
    Label(Label),
    Other(Cow<'de, str>),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Label::from_name(name).map_or(Key::Other(Cow::Borrowed(name)), Key::Label))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Label::from_name(name)
            .map_or_else(|| Key::Other(Cow::Owned(name.to_owned())), Key::Label))
    }
}

/// Any JSON value, as a scalar; arrays and objects are walked (bounded) and become `Other`.
struct ValueSeed<'s> {
    /// The nesting level an array or object here would have.
    depth: usize,
    at: Location,
    refusal: &'s mut Option<SenmlError>,
}

impl ValueSeed<'_> {
    fn inner(&mut self) -> ValueSeed<'_> {
        ValueSeed {
            depth: self.depth + 1,
            at: self.at,
            refusal: &mut *self.refusal,
        }
    }

    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        if self.depth > MAX_NESTING {
            return Err(refuse(self.refusal, SenmlError::TooDeep { at: self.at }));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Integer(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Integer(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(n))
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(text.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.enter()?;
        while seq.next_element_seed(self.inner())?.is_some() {}
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        self.enter()?;
        while map.next_key::<de::IgnoredAny>()?.is_some() {
            map.next_value_seed(self.inner())?;
        }
        Ok(Scalar::Other)
    }
}
