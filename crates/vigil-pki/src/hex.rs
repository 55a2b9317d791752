//! Lowercase hex, for serial numbers and fingerprints.

use crate::PkiError;

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Bytes of an even-length hex string.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, PkiError> {
    if !text.len().is_multiple_of(2) {
        return Err(PkiError::Encoding);
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or(PkiError::Encoding)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let bytes = [0x00, 0x7f, 0xab, 0xff];
        assert_eq!(super::encode(&bytes), "007fabff");
        assert_eq!(super::decode("007fabff").unwrap(), bytes);
        assert!(super::decode("abc").is_err());
        assert!(super::decode("zz").is_err());
        assert!(super::decode("éé").is_err());
    }
}
