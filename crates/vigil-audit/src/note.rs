//! The C2SP signed-note envelope (<https://c2sp.org/signed-note>): splitting a note into its
//! text and signature lines, and writing a signature line.
//!
//! This module only handles structure; which signatures count, and what the text means, is
//! [`checkpoint`](crate::checkpoint)'s business.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint::CheckpointError;

/// The largest note accepted, in bytes: far beyond any checkpoint with a few dozen signatures,
/// and small enough that parsing a hostile note costs nothing.
pub const MAX_NOTE_LEN: usize = 1 << 20;

/// The most signature lines accepted in one note. The signed-note spec asks verifiers to accept
/// at least 16; this is the limit of Go's reference implementation.
pub const MAX_SIGNATURES: usize = 100;

/// What starts every signature line: U+2014 EM DASH, then a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// One signature line, structurally valid but not yet verified.
#[derive(Debug)]
pub(crate) struct SignatureLine<'a> {
    /// The signer's key name.
    pub(crate) name: &'a str,
    /// The key ID: the first four bytes of the decoded signature, big-endian.
    pub(crate) key_id: u32,
    /// The signature proper, after the key ID.
    pub(crate) signature: Vec<u8>,
}

/// A note split into its text (the signed bytes, final newline included) and signature lines.
#[derive(Debug)]
pub(crate) struct SplitNote<'a> {
    pub(crate) text: &'a str,
    pub(crate) signatures: Vec<SignatureLine<'a>>,
}

/// Splits `note` into text and signature lines, refusing anything the spec does not allow.
pub(crate) fn split(note: &str) -> Result<SplitNote<'_>, CheckpointError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(CheckpointError::NoteTooLarge {
            len: note.len(),
            max: MAX_NOTE_LEN,
        });
    }
    // Valid UTF-8 is given by `&str`. The spec forbids control characters below U+0020 other
    // than newline; Vigil also refuses DEL and the C1 controls (all of Unicode's `Cc`), which
    // no checkpoint needs and which could hide text from a human reading the note.
    if let Some((offset, _)) = note
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != '\n')
    {
        return Err(CheckpointError::ControlCharacter { offset });
    }
    // The text ends at the *last* blank line: the text itself may contain blank lines
    // (checkpoints may not, which `checkpoint` checks).
    let blank = note
        .rfind("\n\n")
        .ok_or(CheckpointError::MissingBlankLine)?;
    let (text, rest) = note.split_at(blank + 1);
    let block = rest
        .strip_prefix('\n')
        .ok_or(CheckpointError::MissingBlankLine)?;
    if block.is_empty() {
        return Err(CheckpointError::NoSignatures);
    }
    let block = block
        .strip_suffix('\n')
        .ok_or(CheckpointError::UnterminatedLine)?;
    let lines: Vec<&str> = block.split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(CheckpointError::TooManySignatures {
            max: MAX_SIGNATURES,
        });
    }
    let signatures = lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| signature_line(i + 1, line))
        .collect::<Result<_, _>>()?;
    Ok(SplitNote { text, signatures })
}

/// Parses the signature line numbered `number` (from 1), without its newline.
fn signature_line(number: usize, line: &str) -> Result<SignatureLine<'_>, CheckpointError> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(CheckpointError::SignatureLinePrefix { line: number })?;
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or(CheckpointError::SignatureEncoding { line: number })?;
    if !is_valid_key_name(name) {
        return Err(CheckpointError::SignatureKeyName { line: number });
    }
    // The standard engine refuses missing padding, non-canonical trailing bits and any byte
    // outside the alphabet, spaces included: there is exactly one spelling of a signature.
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| CheckpointError::SignatureEncoding { line: number })?;
    let Some((id, signature)) = bytes.split_first_chunk::<4>() else {
        return Err(CheckpointError::SignatureTooShort { line: number });
    };
    if signature.is_empty() {
        return Err(CheckpointError::SignatureTooShort { line: number });
    }
    Ok(SignatureLine {
        name,
        key_id: u32::from_be_bytes(*id),
        signature: signature.to_vec(),
    })
}

/// A signature line for `signature` by key `name` with `key_id`, newline included.
pub(crate) fn format_signature_line(name: &str, key_id: u32, signature: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(4 + signature.len());
    bytes.extend_from_slice(&key_id.to_be_bytes());
    bytes.extend_from_slice(signature);
    format!("{SIGNATURE_PREFIX}{name} {}\n", STANDARD.encode(bytes))
}

/// Whether `name` may name a key: non-empty, without Unicode spaces or `+` (the separator of
/// the verifier key format).
pub(crate) fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "— example.com/log AAAAAQI=\n";

    #[test]
    fn splits_text_and_signatures() {
        let note = format!("a\nb\n\n{SIG}— other AAAAAgME\n");
        let split = split(&note).unwrap();
        assert_eq!(split.text, "a\nb\n");
        assert_eq!(split.signatures.len(), 2);
        assert_eq!(split.signatures[0].name, "example.com/log");
        assert_eq!(split.signatures[0].key_id, 1);
        assert_eq!(split.signatures[0].signature, vec![2]);
        assert_eq!(split.signatures[1].key_id, 2);
        assert_eq!(split.signatures[1].signature, vec![3, 4]);
    }

    #[test]
    fn the_last_blank_line_separates() {
        let note = format!("a\n\nb\n\n{SIG}");
        assert_eq!(split(&note).unwrap().text, "a\n\nb\n");
    }

    #[test]
    fn refuses_malformed_envelopes() {
        let cases: &[(&str, CheckpointError)] = &[
            ("a\n", CheckpointError::MissingBlankLine),
            (
                "a\n— example.com/log AAAAAQI=\n",
                CheckpointError::MissingBlankLine,
            ),
            ("a\n\n", CheckpointError::NoSignatures),
            (
                "a\n\n— example.com/log AAAAAQI=",
                CheckpointError::UnterminatedLine,
            ),
            (
                "a\n\n— example.com/log AAAAAQI=\n\n",
                CheckpointError::NoSignatures,
            ),
            (
                "a\r\n\n— x AAAAAQI=\n",
                CheckpointError::ControlCharacter { offset: 1 },
            ),
            (
                "a\t\n\n— x AAAAAQI=\n",
                CheckpointError::ControlCharacter { offset: 1 },
            ),
            (
                "a\n\n- x AAAAAQI=\n",
                CheckpointError::SignatureLinePrefix { line: 1 },
            ),
            (
                "a\n\n—x AAAAAQI=\n",
                CheckpointError::SignatureLinePrefix { line: 1 },
            ),
            (
                "a\u{7f}\n\n— x AAAAAQI=\n",
                CheckpointError::ControlCharacter { offset: 1 },
            ),
            (
                "é\u{85}\n\n— x AAAAAQI=\n",
                CheckpointError::ControlCharacter { offset: 2 },
            ),
            (
                "a\n\n— x AAAAAQI=\n— x\n",
                CheckpointError::SignatureEncoding { line: 2 },
            ),
            (
                "a\n\n— x  AAAAAQI=\n",
                CheckpointError::SignatureEncoding { line: 1 },
            ),
            (
                "a\n\n— x AAAAAQI= \n",
                CheckpointError::SignatureEncoding { line: 1 },
            ),
            (
                "a\n\n— x AAAAAQI\n",
                CheckpointError::SignatureEncoding { line: 1 },
            ),
            (
                "a\n\n— x AAAAAQJ=\n",
                CheckpointError::SignatureEncoding { line: 1 },
            ),
            (
                "a\n\n— a+b AAAAAQI=\n",
                CheckpointError::SignatureKeyName { line: 1 },
            ),
            (
                "a\n\n—  AAAAAQI=\n",
                CheckpointError::SignatureKeyName { line: 1 },
            ),
            (
                "a\n\n— x AAAAAQ==\n",
                CheckpointError::SignatureTooShort { line: 1 },
            ),
            (
                "a\n\n— x AAAA\n",
                CheckpointError::SignatureTooShort { line: 1 },
            ),
        ];
        for (note, want) in cases {
            assert_eq!(split(note).unwrap_err(), *want, "{note:?}");
        }
    }

    #[test]
    fn bounds_size_and_signature_count() {
        let mut big = "a".repeat(MAX_NOTE_LEN);
        big.push_str(&format!("\n\n{SIG}"));
        assert_eq!(
            split(&big).unwrap_err(),
            CheckpointError::NoteTooLarge {
                len: big.len(),
                max: MAX_NOTE_LEN
            }
        );
        let many = format!("a\n\n{}", SIG.repeat(MAX_SIGNATURES + 1));
        assert_eq!(
            split(&many).unwrap_err(),
            CheckpointError::TooManySignatures {
                max: MAX_SIGNATURES
            }
        );
        let enough = format!("a\n\n{}", SIG.repeat(MAX_SIGNATURES));
        assert_eq!(split(&enough).unwrap().signatures.len(), MAX_SIGNATURES);
    }

    #[test]
    fn formats_what_it_parses() {
        let line = format_signature_line("example.com/log", 0x0102_0304, &[9; 64]);
        let note = format!("a\n\n{line}");
        let split = split(&note).unwrap();
        assert_eq!(split.signatures[0].name, "example.com/log");
        assert_eq!(split.signatures[0].key_id, 0x0102_0304);
        assert_eq!(split.signatures[0].signature, vec![9; 64]);
    }

    #[test]
    fn key_names() {
        assert!(is_valid_key_name("example.com/log42"));
        assert!(!is_valid_key_name(""));
        assert!(!is_valid_key_name("a b"));
        assert!(!is_valid_key_name("a\u{a0}b"));
        assert!(!is_valid_key_name("a+b"));
    }
}
