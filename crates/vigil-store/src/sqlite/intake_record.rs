//! One intake record's payload: a submission's prepared rows (ADR 0014).
//!
//! ```text
//! version: u8 = 1
//! rows:    u32 LE
//! per row: patient (u8 length, UTF-8), device (u8 length, UTF-8),
//!          quantity, time, sequence, flags (i64 LE each),
//!          sealed value (u32 length LE, bytes)
//! ```
//!
//! The content hash is not stored: decoding recomputes it from the fields, so a record can
//! never carry a hash that disagrees with its row. A record passed its check when read, so a
//! payload that does not decode is a bug or tampering, and is refused rather than skipped.

use vigil_model::{DeviceId, PatientId};

use super::clinical::content_hash;
use super::committer::PreparedRow;
use crate::StoreError;
use crate::intake::MAX_RECORD;

const VERSION: u8 = 1;
/// The fewest bytes a row takes (empty ids cannot decode, so this bounds the row count).
const MIN_ROW: usize = 1 + 1 + 4 * 8 + 4;
/// The largest sealed value a row may carry (an 8-byte value sealed is 36 bytes).
const MAX_SEALED: usize = 4096;

/// Encodes `rows` as one record payload.
pub(crate) fn encode(rows: &[PreparedRow]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(5 + rows.iter().map(encoded_len).sum::<usize>());
    out.push(VERSION);
    out.extend_from_slice(&length_u32(rows.len())?.to_le_bytes());
    for row in rows {
        for id in [row.patient.as_str(), row.device.as_str()] {
            // Ids are at most 64 bytes (vigil-model): a u8 length always fits.
            out.push(u8::try_from(id.len()).map_err(|_| too_large("an id"))?);
            out.extend_from_slice(id.as_bytes());
        }
        for field in [row.quantity, row.time, row.sequence, row.flags] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        if row.sealed.len() > MAX_SEALED {
            return Err(too_large("a sealed value"));
        }
        out.extend_from_slice(&length_u32(row.sealed.len())?.to_le_bytes());
        out.extend_from_slice(&row.sealed);
    }
    if out.len() > MAX_RECORD {
        return Err(too_large("a submission"));
    }
    Ok(out)
}

fn encoded_len(row: &PreparedRow) -> usize {
    2 + row.patient.as_str().len() + row.device.as_str().len() + 32 + 4 + row.sealed.len()
}

fn length_u32(n: usize) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| too_large("a submission"))
}

fn too_large(what: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} is too large for an intake record"))
}

/// Decodes a record payload back into rows, refusing anything [`encode`] would not write.
pub(crate) fn decode(payload: &[u8]) -> Result<Vec<PreparedRow>, StoreError> {
    let mut reader = Reader { bytes: payload };
    let version = reader.take(1)?[0];
    if version != VERSION {
        return Err(bad(&format!("version {version} is not known")));
    }
    let count = reader.u32()? as usize;
    if count > payload.len() / MIN_ROW {
        return Err(bad("it declares more rows than it holds"));
    }
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        let patient = PatientId::new(reader.id()?).map_err(|e| bad(&e.to_string()))?;
        let device = DeviceId::new(reader.id()?).map_err(|e| bad(&e.to_string()))?;
        let quantity = reader.i64()?;
        let time = reader.i64()?;
        let sequence = reader.i64()?;
        let flags = reader.i64()?;
        let sealed_len = reader.u32()? as usize;
        if sealed_len > MAX_SEALED {
            return Err(bad("a sealed value is over the limit"));
        }
        let sealed = reader.take(sealed_len)?.to_vec();
        let content = content_hash(
            patient.as_str(),
            device.as_str(),
            quantity,
            time,
            sequence,
            flags,
            &sealed,
        );
        rows.push(PreparedRow {
            patient,
            device,
            quantity,
            time,
            sequence,
            flags,
            sealed,
            content,
        });
    }
    if !reader.bytes.is_empty() {
        return Err(bad("bytes follow its last row"));
    }
    Ok(rows)
}

fn bad(why: &str) -> StoreError {
    StoreError::Corrupt(format!("an intake record does not decode: {why}"))
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if n > self.bytes.len() {
            return Err(bad("it ends inside a row"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn id(&mut self) -> Result<String, StoreError> {
        let len = usize::from(self.take(1)?[0]);
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| bad("an id is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn row(n: i64) -> PreparedRow {
        let sealed = vec![n as u8; 36];
        PreparedRow {
            patient: PatientId::new(format!("patient-{n}")).unwrap(),
            device: DeviceId::new("pump-7").unwrap(),
            quantity: 150_456,
            time: 1_700_000_000_000 + n,
            sequence: n,
            flags: n % 2,
            content: content_hash(
                &format!("patient-{n}"),
                "pump-7",
                150_456,
                1_700_000_000_000 + n,
                n,
                n % 2,
                &sealed,
            ),
            sealed,
        }
    }

    fn same(a: &PreparedRow, b: &PreparedRow) -> bool {
        a.patient == b.patient
            && a.device == b.device
            && (a.quantity, a.time, a.sequence, a.flags)
                == (b.quantity, b.time, b.sequence, b.flags)
            && a.sealed == b.sealed
            && a.content == b.content
    }

    #[test]
    fn rows_come_back_as_they_went_in_with_their_content_hash() {
        let rows: Vec<PreparedRow> = (0..5).map(row).collect();
        let decoded = decode(&encode(&rows).unwrap()).unwrap();
        assert_eq!(decoded.len(), 5);
        assert!(rows.iter().zip(&decoded).all(|(a, b)| same(a, b)));
        assert!(decode(&encode(&[]).unwrap()).unwrap().is_empty());
    }

    #[test]
    fn every_truncation_and_a_trailing_byte_are_refused() {
        let bytes = encode(&[row(1), row(2)]).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn unknown_versions_huge_counts_and_bad_ids_are_refused() {
        let mut bytes = encode(&[row(1)]).unwrap();
        bytes[0] = 2;
        assert!(decode(&bytes).is_err());

        let mut bytes = encode(&[row(1)]).unwrap();
        bytes[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&bytes).is_err());

        // The patient id's first byte made a space: not a valid id.
        let mut bytes = encode(&[row(1)]).unwrap();
        bytes[6] = b' ';
        assert!(decode(&bytes).is_err());
    }

    #[test]
    fn an_oversized_sealed_value_is_refused_both_ways() {
        let mut big = row(1);
        big.sealed = vec![0; MAX_SEALED + 1];
        assert!(encode(&[big]).is_err());

        let mut fits = row(1);
        fits.sealed = vec![0; MAX_SEALED];
        let mut bytes = encode(&[fits]).unwrap();
        assert_eq!(decode(&bytes).unwrap().len(), 1);
        // Declare one byte more, and give it.
        let at = bytes.len() - MAX_SEALED - 4;
        bytes[at..at + 4].copy_from_slice(&u32::try_from(MAX_SEALED + 1).unwrap().to_le_bytes());
        bytes.push(0);
        assert!(decode(&bytes).is_err());
    }
}
