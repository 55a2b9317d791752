//! Signed checkpoints: what `CheckpointSigner` signs, `open_note` opens; anything else it
//! refuses.

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use vigil_audit::checkpoint::MAX_NOTE_LEN;
use vigil_audit::{
    Checkpoint, CheckpointError, CheckpointSigner, MerkleTree, VerifierKey, leaf_hash, open_note,
};

const ORIGIN: &str = "vigil.example/audit";

fn new_signer(name: &str) -> CheckpointSigner {
    let pkcs8 = CheckpointSigner::generate().unwrap();
    CheckpointSigner::from_pkcs8(name, pkcs8.as_ref()).unwrap()
}

fn checkpoint(size: u64) -> Checkpoint {
    let tree = MerkleTree::from_leaves((0..size).map(|i| leaf_hash(&i.to_be_bytes())));
    Checkpoint::new(ORIGIN, tree.size(), tree.root()).unwrap()
}

fn key(signer: &CheckpointSigner) -> VerifierKey {
    signer.verifier_key().parse().unwrap()
}

/// The note's (text, signature block), split at the blank line.
fn parts(note: &str) -> (&str, &str) {
    let at = note.rfind("\n\n").unwrap();
    (&note[..at + 1], &note[at + 2..])
}

#[test]
fn round_trip() {
    let signer = new_signer(ORIGIN);
    let checkpoint = checkpoint(1234);
    let note = signer.sign(&checkpoint).unwrap();
    assert!(note.starts_with(&format!("{ORIGIN}\n1234\n")));
    assert!(note.contains(&format!("\n\n\u{2014} {ORIGIN} ")));
    assert_eq!(open_note(&note, &key(&signer)).unwrap(), checkpoint);
}

#[test]
fn round_trip_of_the_empty_tree_and_extensions() {
    let signer = new_signer(ORIGIN);
    let empty = checkpoint(0);
    assert_eq!(empty.to_text().lines().nth(1), Some("0"));
    assert_eq!(
        open_note(&signer.sign(&empty).unwrap(), &key(&signer)).unwrap(),
        empty
    );

    let extended = checkpoint(5).with_extension("tile 3").unwrap();
    let opened = open_note(&signer.sign(&extended).unwrap(), &key(&signer)).unwrap();
    assert_eq!(opened.extensions(), ["tile 3"]);
    assert_eq!(opened, extended);
}

#[test]
fn signatures_are_deterministic_and_have_the_spec_layout() {
    let signer = new_signer(ORIGIN);
    let note = signer.sign(&checkpoint(3)).unwrap();
    // Ed25519 is deterministic: the same key signs the same text identically.
    assert_eq!(note, signer.sign(&checkpoint(3)).unwrap());
    let (_, block) = parts(&note);
    let line = block.strip_suffix('\n').unwrap();
    let (name, signature) = line
        .strip_prefix("\u{2014} ")
        .unwrap()
        .split_once(' ')
        .unwrap();
    assert_eq!(name, ORIGIN);
    // base64 of 4 + 64 bytes.
    assert_eq!(signature.len(), 92);
}

#[test]
fn tampered_text_is_refused() {
    let signer = new_signer(ORIGIN);
    let key = key(&signer);
    let note = signer.sign(&checkpoint(1234)).unwrap();
    let tampered = [
        note.replacen("1234", "1235", 1),
        note.replacen(ORIGIN, "vigil.example/audiT", 1),
        note.replacen(&format!("{ORIGIN}\n"), &format!("{ORIGIN}\nextra\n"), 1),
        {
            // One character of the root hash.
            let (text, block) = parts(&note);
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let root = &mut lines[2];
            let first = if root.starts_with('A') { "B" } else { "A" };
            root.replace_range(0..1, first);
            format!("{}\n\n{block}", lines.join("\n"))
        },
    ];
    for note in tampered {
        assert_eq!(
            open_note(&note, &key),
            Err(CheckpointError::BadSignature { line: 1 }),
            "{note}"
        );
    }
}

#[test]
fn a_note_is_only_opened_with_its_key() {
    let signer = new_signer(ORIGIN);
    let note = signer.sign(&checkpoint(9)).unwrap();
    // Another key under the same name has another key ID: its signature is not "by" this key.
    let other = new_signer(ORIGIN);
    assert_ne!(other.key_id(), signer.key_id());
    assert_eq!(
        open_note(&note, &key(&other)),
        Err(CheckpointError::NoTrustedSignature)
    );
    // The same key pair under another name is another key (the name is hashed into the ID).
    let renamed = format!(
        "other.example/log{}",
        &signer.verifier_key()[ORIGIN.len()..]
    );
    assert!(renamed.parse::<VerifierKey>().is_err());
}

#[test]
fn unknown_signers_are_ignored_but_a_bad_trusted_signature_is_not() {
    let log = new_signer(ORIGIN);
    let witness = new_signer("witness.example/w1");
    let checkpoint = checkpoint(42);
    let note = log.sign(&checkpoint).unwrap();
    let (text, log_line) = parts(&note);
    let witness_line = parts(&witness.sign(&checkpoint).unwrap()).1.to_owned();

    // Cosigned in either order: each key opens the note, the other line ignored.
    for note in [
        format!("{text}\n{log_line}{witness_line}"),
        format!("{text}\n{witness_line}{log_line}"),
    ] {
        assert_eq!(open_note(&note, &key(&log)).unwrap(), checkpoint);
        assert_eq!(open_note(&note, &key(&witness)).unwrap(), checkpoint);
    }
    // Signed only by someone else.
    let only_witness = format!("{text}\n{witness_line}");
    assert_eq!(
        open_note(&only_witness, &key(&log)),
        Err(CheckpointError::NoTrustedSignature)
    );

    // An unverifiable line by the trusted key refuses the note, even next to a good one.
    let bad_line = witness_line.replace("witness.example/w1", ORIGIN);
    let forged_id = {
        // The witness's signature relabelled with the log's name and key ID: "by" the trusted
        // key, but not its signature.
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        let encoded = witness_line.trim_end().rsplit(' ').next().unwrap();
        let mut bytes = STANDARD.decode(encoded).unwrap();
        bytes[..4].copy_from_slice(&log.key_id().to_be_bytes());
        format!("\u{2014} {ORIGIN} {}\n", STANDARD.encode(bytes))
    };
    // Same name, other key ID: ignored.
    assert_eq!(
        open_note(&format!("{text}\n{log_line}{bad_line}"), &key(&log)).unwrap(),
        checkpoint
    );
    assert_eq!(
        open_note(&format!("{text}\n{log_line}{forged_id}"), &key(&log)),
        Err(CheckpointError::BadSignature { line: 2 })
    );
    assert_eq!(
        open_note(&format!("{text}\n{forged_id}{log_line}"), &key(&log)),
        Err(CheckpointError::BadSignature { line: 1 })
    );
}

#[test]
fn truncated_signatures_are_refused() {
    let signer = new_signer(ORIGIN);
    let key = key(&signer);
    let note = signer.sign(&checkpoint(7)).unwrap();
    let body = note
        .strip_suffix("=\n")
        .unwrap_or(note.strip_suffix('\n').unwrap());
    // Dropping base64 characters breaks the encoding or shortens the signature; dropping four
    // at a time keeps valid base64 of a shorter signature.
    for cut in 1..=12 {
        let truncated = format!("{}\n", &body[..body.len() - cut]);
        let result = open_note(&truncated, &key);
        assert!(
            matches!(
                result,
                Err(CheckpointError::SignatureEncoding { line: 1 }
                    | CheckpointError::BadSignature { line: 1 })
            ),
            "cut {cut}: {result:?}"
        );
    }
    // The whole signature gone.
    let (text, _) = parts(&note);
    assert_eq!(
        open_note(&format!("{text}\n\u{2014} {ORIGIN} \n"), &key),
        Err(CheckpointError::SignatureTooShort { line: 1 })
    );
    assert_eq!(
        open_note(text, &key),
        Err(CheckpointError::MissingBlankLine)
    );
    assert_eq!(
        open_note(&format!("{text}\n"), &key),
        Err(CheckpointError::NoSignatures)
    );
}

#[test]
fn extra_whitespace_is_refused() {
    let signer = new_signer(ORIGIN);
    let key = key(&signer);
    let note = signer.sign(&checkpoint(7)).unwrap();
    let (text, block) = parts(&note);
    let line = block.strip_suffix('\n').unwrap();
    let signature_line_variants = [
        line.replacen(' ', "  ", 1),
        line.replacen(&format!("{ORIGIN} "), &format!("{ORIGIN}  "), 1),
        format!("{line} "),
        format!(" {line}"),
        line.replacen('\u{2014}', "-", 1),
    ];
    for variant in signature_line_variants {
        let result = open_note(&format!("{text}\n{variant}\n"), &key);
        assert!(
            matches!(
                result,
                Err(CheckpointError::SignatureLinePrefix { .. }
                    | CheckpointError::SignatureKeyName { .. }
                    | CheckpointError::SignatureEncoding { .. })
            ),
            "{variant:?}: {result:?}"
        );
    }
    let whole_note_variants = [
        (format!("{note}\n"), CheckpointError::NoSignatures),
        (format!("{note} "), CheckpointError::UnterminatedLine),
        (
            format!("{text}\n\n{block}"),
            CheckpointError::BadSignature { line: 1 },
        ),
        (
            format!(" {note}"),
            CheckpointError::BadSignature { line: 1 },
        ),
        (
            note.replacen('\n', " \n", 1),
            CheckpointError::BadSignature { line: 1 },
        ),
        (
            note.replacen('\n', "\r\n", 1),
            CheckpointError::ControlCharacter {
                offset: ORIGIN.len(),
            },
        ),
        (
            note.replacen('\n', "\t\n", 1),
            CheckpointError::ControlCharacter {
                offset: ORIGIN.len(),
            },
        ),
    ];
    for (variant, want) in whole_note_variants {
        assert_eq!(open_note(&variant, &key), Err(want), "{variant:?}");
    }
}

#[test]
fn extension_lines_are_opaque() {
    // An extension line that looks like a signature line is still text: only the lines after
    // the last blank line are signatures.
    let signer = new_signer(ORIGIN);
    let key = key(&signer);
    let note = signer
        .sign(
            &checkpoint(7)
                .with_extension("\u{2014} not a signature")
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        open_note(&note, &key).unwrap().extensions(),
        ["\u{2014} not a signature"]
    );
}

#[test]
fn oversized_notes_are_refused_before_anything_else() {
    let signer = new_signer(ORIGIN);
    let key = key(&signer);
    let big = checkpoint(7)
        .with_extension("x".repeat(MAX_NOTE_LEN))
        .unwrap();
    let note = signer.sign(&big).unwrap();
    assert!(matches!(
        open_note(&note, &key),
        Err(CheckpointError::NoteTooLarge {
            max: MAX_NOTE_LEN,
            ..
        })
    ));
    // Just under the limit is fine.
    let room = MAX_NOTE_LEN
        - signer
            .sign(&checkpoint(7).with_extension("x").unwrap())
            .unwrap()
            .len();
    let fits = checkpoint(7).with_extension("x".repeat(room + 1)).unwrap();
    let note = signer.sign(&fits).unwrap();
    assert_eq!(note.len(), MAX_NOTE_LEN);
    assert_eq!(open_note(&note, &key).unwrap(), fits);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_checkpoint_round_trips(
        origin in "[a-z0-9./-]{1,40}",
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
    ) {
        let signer = new_signer(ORIGIN);
        let checkpoint = Checkpoint::new(origin, size, root).unwrap();
        let note = signer.sign(&checkpoint).unwrap();
        prop_assert_eq!(open_note(&note, &key(&signer)).unwrap(), checkpoint);
    }

    #[test]
    fn any_one_character_change_is_refused(
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
        position in any::<prop::sample::Index>(),
        replacement in prop::char::any(),
    ) {
        let signer = new_signer(ORIGIN);
        let note = signer.sign(&Checkpoint::new(ORIGIN, size, root).unwrap()).unwrap();
        let chars: Vec<char> = note.chars().collect();
        let at = position.index(chars.len());
        prop_assume!(chars[at] != replacement);
        let mut changed = chars.clone();
        changed[at] = replacement;
        let changed: String = changed.into_iter().collect();
        prop_assert!(open_note(&changed, &key(&signer)).is_err(), "{:?}", changed);
    }
}
