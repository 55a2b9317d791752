//! CBOR syntax (`application/senml+cbor`, RFC 8428 §6) to raw records.
//!
//! ciborium-ll decodes one item header at a time and does nothing else: it never allocates,
//! never recurses and never reads ahead, so every bound here is this module's. Lengths are
//! checked against the bytes left before anything is read; strings are borrowed from the input;
//! values of ignored fields are skipped with a fixed-size stack, never by recursion.

use std::borrow::Cow;

use ciborium_ll::{Decoder, Header};

use super::records::{self, Label, Problem, RawRecord, Scalar};
use super::{Location, MAX_NESTING, MAX_RECORDS, SenmlError};

/// Why CBOR is refused before its records mean anything. Offsets count bytes from the start of
/// the pack (an offset is not PHI; the bytes there may be).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    /// Not well-formed at this offset: reserved additional information (28 to 30), an
    /// indefinite-length integer or tag, a break outside an indefinite-length item, or a simple
    /// value below 32 in two bytes.
    #[error("malformed item at byte {offset}")]
    Malformed {
        /// Where the item starts.
        offset: usize,
    },
    /// The input ends inside the item starting at this offset, or the item declares more
    /// content than the input has left.
    #[error("item at byte {offset} runs past the end of the pack")]
    Truncated {
        /// Where the item starts.
        offset: usize,
    },
    /// A text string that is not UTF-8.
    #[error("text string at byte {offset} is not UTF-8")]
    InvalidUtf8 {
        /// Where the string starts.
        offset: usize,
    },
    /// Bytes follow the pack's top-level array.
    #[error("bytes follow the pack at byte {offset}")]
    TrailingBytes {
        /// Where the first extra byte is.
        offset: usize,
    },
    /// An indefinite-length array, map or string: Vigil's profile refuses them.
    #[error("indefinite-length item at byte {offset} (not supported)")]
    IndefiniteLength {
        /// Where the item starts.
        offset: usize,
    },
    /// A tag: Vigil's profile refuses them (decimal fractions, tag 4, included).
    #[error("tag at byte {offset} (not supported)")]
    Tag {
        /// Where the tag starts.
        offset: usize,
    },
}

impl From<CborError> for SenmlError {
    fn from(error: CborError) -> Self {
        SenmlError::Cbor(error)
    }
}

/// The records of a CBOR pack.
pub(super) fn parse(input: &[u8]) -> Result<Vec<RawRecord<'_>>, SenmlError> {
    let mut reader = Reader { input, pos: 0 };
    let Header::Array(Some(count)) = reader.header()?.1 else {
        return Err(SenmlError::NotAPack);
    };
    // Refused before a single record is read: a declared count costs nothing until believed.
    if count > MAX_RECORDS {
        return Err(SenmlError::TooManyRecords);
    }
    let mut records = Vec::new();
    for index in 0..count {
        let record = record(&mut reader, Location::Record(index))?;
        records::push(&mut records, record)?;
    }
    if reader.pos < input.len() {
        return Err(CborError::TrailingBytes { offset: reader.pos }.into());
    }
    Ok(records)
}

/// One record: a map from labels to scalars.
fn record<'a>(reader: &mut Reader<'a>, at: Location) -> Result<RawRecord<'a>, SenmlError> {
    let (start, header) = reader.header()?;
    let Header::Map(Some(entries)) = header else {
        return Err(SenmlError::NotAPack);
    };
    // An entry takes two bytes at least.
    if entries > reader.left() / 2 {
        return Err(CborError::Truncated { offset: start }.into());
    }
    let mut record = RawRecord::default();
    for _ in 0..entries {
        let (label_at, label) = reader.header()?;
        match label {
            Header::Positive(n) => integer_label(reader, &mut record, n.into(), at)?,
            Header::Negative(n) => integer_label(reader, &mut record, -1 - i128::from(n), at)?,
            Header::Text(Some(len)) => {
                let name = reader.text(len, label_at)?;
                match Label::from_name(name) {
                    Some(label) if label.cbor().is_some() => {
                        record.refuse(Problem::TextLabel(label));
                        reader.skip_next(at)?;
                    }
                    Some(label) => record.set(label, reader.scalar(at)?),
                    None => {
                        record.extension(name);
                        reader.skip_next(at)?;
                    }
                }
            }
            other => {
                reader.skip(other, label_at, 3, at)?;
                record.refuse(Problem::LabelType);
                reader.skip_next(at)?;
            }
        }
    }
    Ok(record)
}

fn integer_label<'a>(
    reader: &mut Reader<'a>,
    record: &mut RawRecord<'a>,
    label: i128,
    at: Location,
) -> Result<(), SenmlError> {
    match Label::from_cbor(label) {
        Some(known) => record.set(known, reader.scalar(at)?),
        None => {
            record.refuse(Problem::UnknownLabel(label));
            reader.skip_next(at)?;
        }
    }
    Ok(())
}

/// A position in the pack; each header is decoded by a fresh ciborium-ll decoder over the rest
/// of the input, so strings can be borrowed from the input instead of copied out of a reader.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    /// The next item's header and where it starts, refusing what the profile refuses.
    fn header(&mut self) -> Result<(usize, Header), CborError> {
        let offset = self.pos;
        let rest = self.input.get(offset..).unwrap_or_default();
        let mut decoder = Decoder::from(rest);
        let header = decoder.pull().map_err(|error| match error {
            ciborium_ll::Error::Io(_) => CborError::Truncated { offset },
            ciborium_ll::Error::Syntax(_) => CborError::Malformed { offset },
        })?;
        self.pos = offset + decoder.offset();
        match header {
            Header::Tag(_) => Err(CborError::Tag { offset }),
            Header::Array(None) | Header::Map(None) | Header::Bytes(None) | Header::Text(None) => {
                Err(CborError::IndefiniteLength { offset })
            }
            // No indefinite-length item is accepted, so no break can close one.
            Header::Break => Err(CborError::Malformed { offset }),
            // RFC 8949 §3.3: simple values below 32 have one-byte encodings only; ciborium-ll
            // decodes the two-byte form (0xf8 nn) without complaint.
            Header::Simple(value) if value < 32 && rest.first() == Some(&0xf8) => {
                Err(CborError::Malformed { offset })
            }
            header => Ok((offset, header)),
        }
    }

    /// The content of a string item of `len` bytes starting at `offset`.
    fn take(&mut self, len: usize, offset: usize) -> Result<&'a [u8], CborError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.input.len())
            .ok_or(CborError::Truncated { offset })?;
        let content = self.input.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(content)
    }

    fn text(&mut self, len: usize, offset: usize) -> Result<&'a str, CborError> {
        std::str::from_utf8(self.take(len, offset)?).map_err(|_| CborError::InvalidUtf8 { offset })
    }

    /// The next item as a field's value: a scalar, or `Other` after skipping it whole.
    fn scalar(&mut self, at: Location) -> Result<Scalar<'a>, SenmlError> {
        let (offset, header) = self.header()?;
        Ok(match header {
            Header::Positive(n) => Scalar::Integer(n.into()),
            Header::Negative(n) => Scalar::Integer(-1 - i128::from(n)),
            Header::Float(n) => Scalar::Float(n),
            Header::Text(Some(len)) => Scalar::Text(Cow::Borrowed(self.text(len, offset)?)),
            other => {
                self.skip(other, offset, 3, at)?;
                Scalar::Other
            }
        })
    }

    /// Skips the next item (a value Vigil ignores).
    fn skip_next(&mut self, at: Location) -> Result<(), SenmlError> {
        let (offset, header) = self.header()?;
        // The pack's array is level 1, the record's map level 2: a value's containers start at 3.
        self.skip(header, offset, 3, at)
    }

    /// Skips the rest of the item whose header is `header` (at `offset`), a container of which
    /// would be at nesting level `depth`.
    fn skip(
        &mut self,
        header: Header,
        offset: usize,
        depth: usize,
        at: Location,
    ) -> Result<(), SenmlError> {
        // Items still to read in each open container, innermost last.
        let mut pending = [0_usize; MAX_NESTING];
        let mut open = 0;
        let (mut offset, mut header) = (offset, header);
        loop {
            match header {
                Header::Bytes(Some(len)) => {
                    self.take(len, offset)?;
                }
                Header::Text(Some(len)) => {
                    self.text(len, offset)?;
                }
                Header::Array(Some(len)) | Header::Map(Some(len)) => {
                    let items = match header {
                        Header::Map(_) => len.checked_mul(2),
                        _ => Some(len),
                    };
                    // An item takes a byte at least.
                    let items = items
                        .filter(|&items| items <= self.left())
                        .ok_or(CborError::Truncated { offset })?;
                    let slot = pending
                        .get_mut(open)
                        .filter(|_| depth + open <= MAX_NESTING)
                        .ok_or(SenmlError::TooDeep { at })?;
                    *slot = items;
                    open += 1;
                }
                // Integers, floats and simple values have nothing after their header.
                _ => {}
            }
            // Move to the next item of the innermost container that still has one.
            loop {
                let Some(innermost) = open.checked_sub(1) else {
                    return Ok(());
                };
                match pending.get_mut(innermost) {
                    Some(left) if *left > 0 => {
                        *left -= 1;
                        break;
                    }
                    _ => open = innermost,
                }
            }
            (offset, header) = self.header()?;
        }
    }
}

#[cfg(test)]
mod tests;
