//! Signed checkpoints: the C2SP `tlog-checkpoint` format (<https://c2sp.org/tlog-checkpoint>)
//! carried as a C2SP signed note (<https://c2sp.org/signed-note>) with Ed25519 signatures.
//!
//! # Format
//!
//! A checkpoint note is the checkpoint *text*, a blank line, then one or more signature lines:
//!
//! ```text
//! vigil.example/audit
//! 20852163
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//!
//! — vigil.example/audit Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
//! ```
//!
//! - Text, line 1: the **origin**, naming the log. Non-empty.
//! - Text, line 2: the **tree size** in ASCII decimal, without leading zeroes (`0` for the empty
//!   tree).
//! - Text, line 3: the **root hash**, standard base64 (RFC 4648, section 4, with padding) of the
//!   32-byte RFC 9162 root at that size.
//! - Text, further lines: optional, opaque, non-empty **extension lines** (not recommended: log
//!   monitors cannot audit them). Every text line ends with a newline (U+000A).
//! - A blank line. The text is everything before the *last* blank line, final newline included;
//!   that is exactly what is signed.
//! - Signature lines: `— <key name> <base64(key ID || signature)>` and a newline, where the dash
//!   is U+2014 EM DASH followed by a space. The key ID is four bytes, big-endian, the first four
//!   bytes of `SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)` (`0x01`: the
//!   Ed25519 signature type). The signature is Ed25519 (RFC 8032) over the text.
//!
//! A verifier is configured with a key in the verifier key format
//! `<key name>+<key ID, 8 hex digits>+<base64(0x01 || public key)>` (see [`VerifierKey`]).
//!
//! # Opening a note
//!
//! [`open_note`] parses strictly and within bounds: at most [`MAX_NOTE_LEN`] bytes and
//! [`MAX_SIGNATURES`] signature lines; no control characters other than newline; exactly the
//! layout above, with no blank line inside a checkpoint's text; one spelling of every number and
//! hash. Signature lines by other keys are ignored (the spec requires this, for key rotation and
//! witness cosignatures), but a line by the given key (same name *and* key ID) that does not
//! verify refuses the whole note, and at least one must verify.
//!
//! The signature authenticates the key, not the log: a key that signs for several logs signs
//! several origins. Compare [`Checkpoint::origin`] with the log you expect.
//!
//! # Example
//!
//! ```
//! use vigil_audit::{Checkpoint, CheckpointSigner, MerkleTree, VerifierKey, leaf_hash, open_note};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut tree = MerkleTree::new();
//! tree.push(leaf_hash(b"device 17 enrolled"));
//!
//! let pkcs8 = CheckpointSigner::generate()?; // keep this secret, e.g. in a 0600 file
//! let signer = CheckpointSigner::from_pkcs8("vigil.example/audit", pkcs8.as_ref())?;
//! let note = signer.sign(&Checkpoint::new("vigil.example/audit", tree.size(), tree.root())?)?;
//!
//! // The verifier knows only the public verifier key string.
//! let key: VerifierKey = signer.verifier_key().parse()?;
//! let checkpoint = open_note(&note, &key)?;
//! assert_eq!(checkpoint.origin(), "vigil.example/audit");
//! assert_eq!(checkpoint.size(), 1);
//! assert_eq!(checkpoint.root(), &tree.root());
//! # Ok(())
//! # }
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::hash::{HASH_LEN, Hash};
use crate::key::VerifierKey;
pub use crate::note::{MAX_NOTE_LEN, MAX_SIGNATURES};

/// Why a checkpoint or its note is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note is larger than [`MAX_NOTE_LEN`].
    #[error("the note is {len} bytes, more than the {max} accepted")]
    NoteTooLarge {
        /// The note's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The note contains a control character other than newline.
    #[error("the note contains a control character at byte {offset}")]
    ControlCharacter {
        /// Its byte offset in the note.
        offset: usize,
    },
    /// There is no blank line between the text and the signatures.
    #[error("the note has no blank line before its signatures")]
    MissingBlankLine,
    /// Nothing follows the last blank line.
    #[error("the note has no signature lines")]
    NoSignatures,
    /// The note does not end with a newline.
    #[error("the note's last line does not end with a newline")]
    UnterminatedLine,
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("the note has more than {max} signature lines")]
    TooManySignatures {
        /// The limit.
        max: usize,
    },
    /// A signature line does not start with an em dash (U+2014) and a space.
    #[error("signature line {line} does not start with \"— \"")]
    SignatureLinePrefix {
        /// The signature line's number, from 1.
        line: usize,
    },
    /// A signature line's key name is empty or contains a space or `+`.
    #[error("signature line {line} has an invalid key name")]
    SignatureKeyName {
        /// The signature line's number, from 1.
        line: usize,
    },
    /// A signature line lacks its signature, or the signature is not canonical standard base64.
    #[error("signature line {line} does not hold one base64 signature")]
    SignatureEncoding {
        /// The signature line's number, from 1.
        line: usize,
    },
    /// A signature line's signature is too short to hold a key ID and a signature.
    #[error("signature line {line} is too short to hold a key ID and a signature")]
    SignatureTooShort {
        /// The signature line's number, from 1.
        line: usize,
    },
    /// A signature by the given key does not verify: the note was altered or the signature is
    /// corrupt.
    #[error("signature line {line}, by the trusted key, does not verify")]
    BadSignature {
        /// The signature line's number, from 1.
        line: usize,
    },
    /// No signature line is by the given key.
    #[error("the note has no signature by the trusted key")]
    NoTrustedSignature,
    /// The checkpoint text has fewer than three lines.
    #[error("the checkpoint has {lines} lines, fewer than the three required")]
    TooFewLines {
        /// The number of lines.
        lines: usize,
    },
    /// A line of the checkpoint text is empty.
    #[error("line {line} of the checkpoint is empty")]
    EmptyLine {
        /// The line's number, from 1.
        line: usize,
    },
    /// The tree size is not a decimal number without leading zeroes that fits 64 bits.
    #[error("the tree size is not a canonical decimal number")]
    InvalidSize,
    /// The root hash is not the canonical standard base64 encoding of 32 bytes.
    #[error("the root hash is not the base64 encoding of 32 bytes")]
    InvalidRoot,
    /// A checkpoint was built with an empty origin, or one containing a control character.
    #[error("the origin is empty or contains a control character")]
    InvalidOrigin,
    /// A checkpoint was given an empty extension line, or one containing a control character.
    #[error("an extension line is empty or contains a control character")]
    InvalidExtension,
}

/// A log's tree head: its origin, its size and its root at that size.
///
/// The fields are private so that every `Checkpoint` formats to a text that parses back to it:
/// an origin with a newline in it would otherwise let one sign a checkpoint that reads as
/// another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint of the log `origin` at `size` leaves with root `root`.
    ///
    /// The origin must be non-empty and free of control characters. C2SP recommends a
    /// schema-less URL such as `example.com/log42`, equal to the signing key's name.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        let origin = origin.into();
        if !is_valid_line(&origin) {
            return Err(CheckpointError::InvalidOrigin);
        }
        Ok(Self {
            origin,
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// The checkpoint with one more extension line (non-empty, free of control characters).
    pub fn with_extension(mut self, line: impl Into<String>) -> Result<Self, CheckpointError> {
        let line = line.into();
        if !is_valid_line(&line) {
            return Err(CheckpointError::InvalidExtension);
        }
        self.extensions.push(line);
        Ok(self)
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash at that size.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// The extension lines, without their newlines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The checkpoint text: the bytes a signature covers.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint text (newline-terminated, as [`note`](crate::note) splits it). Only
    /// for text whose signature has been verified: the text of an unsigned note means nothing.
    fn from_text(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::UnterminatedLine)?;
        let lines: Vec<&str> = body.split('\n').collect();
        if let Some(empty) = lines.iter().position(|line| line.is_empty()) {
            return Err(CheckpointError::EmptyLine { line: empty + 1 });
        }
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { lines: lines.len() });
        };
        Ok(Self {
            origin: (*origin).to_owned(),
            size: parse_size(size)?,
            root: parse_root(root)?,
            extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        })
    }
}

/// Verifies `note` with `key` and returns the checkpoint it signs.
///
/// See the [module documentation](self) for what is refused. The caller must still check that
/// [`Checkpoint::origin`] is the log it expects.
pub fn open_note(note: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
    let split = crate::note::split(note)?;
    let mut verified = false;
    for (i, line) in split.signatures.iter().enumerate() {
        // Other keys' signatures are ignored, even when they share the name or the key ID
        // (but not both) with the trusted key: signed-note requires it.
        if line.name != key.name() || line.key_id != key.key_id() {
            continue;
        }
        if !key.verifies(split.text.as_bytes(), &line.signature) {
            return Err(CheckpointError::BadSignature { line: i + 1 });
        }
        verified = true;
    }
    if !verified {
        return Err(CheckpointError::NoTrustedSignature);
    }
    // Only now is the text worth reading.
    Checkpoint::from_text(split.text)
}

/// Whether `line` can be one line of a checkpoint: non-empty, no newline or other control.
fn is_valid_line(line: &str) -> bool {
    !line.is_empty() && !line.chars().any(char::is_control)
}

/// A tree size: ASCII digits, no sign, no leading zero unless it is `0`, at most `u64::MAX`.
fn parse_size(text: &str) -> Result<u64, CheckpointError> {
    // `u64::from_str` alone would accept a leading `+` and leading zeroes.
    if !text.bytes().all(|b| b.is_ascii_digit()) || (text.len() > 1 && text.starts_with('0')) {
        return Err(CheckpointError::InvalidSize);
    }
    text.parse().map_err(|_| CheckpointError::InvalidSize)
}

/// A root hash: canonical standard base64 of exactly 32 bytes.
fn parse_root(text: &str) -> Result<Hash, CheckpointError> {
    // The standard engine requires canonical padding and zero trailing bits, so each hash has
    // exactly one accepted spelling.
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| CheckpointError::InvalidRoot)?;
    <[u8; HASH_LEN]>::try_from(bytes.as_slice()).map_err(|_| CheckpointError::InvalidRoot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    const ROOT_B64: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    #[test]
    fn text_round_trips() {
        let checkpoint = Checkpoint::new("example.com/log", 20852163, leaf_hash(b"x"))
            .unwrap()
            .with_extension("ext one")
            .unwrap();
        let text = checkpoint.to_text();
        assert!(text.starts_with("example.com/log\n20852163\n"));
        assert!(text.ends_with("\next one\n"));
        assert_eq!(Checkpoint::from_text(&text).unwrap(), checkpoint);
    }

    #[test]
    fn parses_the_spec_example() {
        let text = format!("example.com/behind-the-sofa\n20852163\n{ROOT_B64}\n");
        let checkpoint = Checkpoint::from_text(&text).unwrap();
        assert_eq!(checkpoint.origin(), "example.com/behind-the-sofa");
        assert_eq!(checkpoint.size(), 20852163);
        assert_eq!(STANDARD.encode(checkpoint.root()), ROOT_B64);
        assert!(checkpoint.extensions().is_empty());
    }

    #[test]
    fn refuses_malformed_texts() {
        let cases: Vec<(String, CheckpointError)> = vec![
            (
                format!("o\n1\n{ROOT_B64}"),
                CheckpointError::UnterminatedLine,
            ),
            ("o\n1\n".into(), CheckpointError::TooFewLines { lines: 2 }),
            (
                format!("\n1\n{ROOT_B64}\n"),
                CheckpointError::EmptyLine { line: 1 },
            ),
            (
                format!("o\n1\n{ROOT_B64}\n\n"),
                CheckpointError::EmptyLine { line: 4 },
            ),
            (
                format!("o\n1\n{ROOT_B64}\n\nx\n"),
                CheckpointError::EmptyLine { line: 4 },
            ),
            (format!("o\n01\n{ROOT_B64}\n"), CheckpointError::InvalidSize),
            (format!("o\n00\n{ROOT_B64}\n"), CheckpointError::InvalidSize),
            (format!("o\n+1\n{ROOT_B64}\n"), CheckpointError::InvalidSize),
            (format!("o\n-1\n{ROOT_B64}\n"), CheckpointError::InvalidSize),
            (format!("o\n 1\n{ROOT_B64}\n"), CheckpointError::InvalidSize),
            (format!("o\n1 \n{ROOT_B64}\n"), CheckpointError::InvalidSize),
            (
                format!("o\n0x1\n{ROOT_B64}\n"),
                CheckpointError::InvalidSize,
            ),
            (
                format!("o\n18446744073709551616\n{ROOT_B64}\n"),
                CheckpointError::InvalidSize,
            ),
            (format!("o\n1\n{ROOT_B64} \n"), CheckpointError::InvalidRoot),
            (format!("o\n1\n {ROOT_B64}\n"), CheckpointError::InvalidRoot),
            (
                format!("o\n1\n{}\n", ROOT_B64.trim_end_matches('=')),
                CheckpointError::InvalidRoot,
            ),
            (
                "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".into(),
                CheckpointError::InvalidRoot,
            ),
            ("o\n1\nAAAA\n".into(), CheckpointError::InvalidRoot),
            (
                format!("o\n1\n{ROOT_B64}AAAA\n"),
                CheckpointError::InvalidRoot,
            ),
            (
                format!("o\n1\n{}\n", ROOT_B64.replace('/', "_")),
                CheckpointError::InvalidRoot,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Checkpoint::from_text(&text).unwrap_err(), want, "{text:?}");
        }
        // The extreme sizes are fine.
        for size in ["0", "18446744073709551615"] {
            let text = format!("o\n{size}\n{ROOT_B64}\n");
            assert_eq!(
                Checkpoint::from_text(&text).unwrap().size().to_string(),
                size
            );
        }
    }

    #[test]
    fn refuses_unformattable_checkpoints() {
        let root = leaf_hash(b"x");
        assert_eq!(
            Checkpoint::new("", 1, root),
            Err(CheckpointError::InvalidOrigin)
        );
        assert_eq!(
            Checkpoint::new("evil\n999", 1, root),
            Err(CheckpointError::InvalidOrigin)
        );
        assert_eq!(
            Checkpoint::new("a\rb", 1, root),
            Err(CheckpointError::InvalidOrigin)
        );
        let checkpoint = Checkpoint::new("o", 1, root).unwrap();
        assert_eq!(
            checkpoint.clone().with_extension(""),
            Err(CheckpointError::InvalidExtension)
        );
        assert_eq!(
            checkpoint.with_extension("a\nb"),
            Err(CheckpointError::InvalidExtension)
        );
    }
}
