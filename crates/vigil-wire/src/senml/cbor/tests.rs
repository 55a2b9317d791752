//! CBOR packs written byte by byte. The refusals the profile shares with JSON are checked on
//! transcoded JSON packs in `senml/tests.rs` (`every_refusal_is_the_same_in_cbor`); here are the
//! vectors from an independent encoder and the attacks only a binary encoding allows.

use proptest::prelude::*;
use vigil_model::{DeviceId, Timestamp};

use crate::senml::{
    CborError, Location, MAX_NESTING, MAX_RECORDS, Pack, SenmlError, decode_cbor, decode_json,
};

fn device() -> DeviceId {
    DeviceId::new("oxi-7").unwrap()
}

fn now() -> Timestamp {
    Timestamp::from_unix_millis(1_764_403_300_000).unwrap()
}

fn decode(bytes: &[u8]) -> Result<Pack, SenmlError> {
    decode_cbor(bytes, &device(), now())
}

/// Bytes from hex, spaces allowed.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Four entries every test record starts with:
/// `-2: "urn:vigil:device:oxi-7:", "seq_": 1, 0: "150456", 1: "%"`.
const BASE: &str = "21 77 75726e3a766967696c3a6465766963653a6f78692d373a \
                    64 7365715f 01 \
                    00 66 313530343536 \
                    01 61 25";

/// A one-record pack: [`BASE`] and `extra` (hex) with its `entries` more entries.
fn pack(entries: usize, extra: &str) -> Vec<u8> {
    hex(&format!("81 {:02x} {BASE} {extra}", 0xa0 + 4 + entries))
}

/// Where the bytes after [`BASE`] start.
fn after_base() -> usize {
    pack(0, "").len()
}

fn cbor(error: CborError) -> SenmlError {
    SenmlError::Cbor(error)
}

const RECORD: Location = Location::Record(0);

#[test]
fn a_record_written_by_hand_decodes() {
    // [{-2: "urn:vigil:device:oxi-7:", "seq_": 1, 0: "150456", 1: "%", 2: 97}]
    let pack = decode(&pack(1, "02 18 61")).unwrap();
    assert_eq!(pack.sequence, 1);
    assert_eq!(pack.readings[0].code, 150_456);
    assert_eq!(pack.readings[0].unit, "%");
    assert_eq!(*pack.readings[0].value.expose(), 97.0);
    assert_eq!(pack.readings[0].time, now());
}

/// The pack of `docs/protocol.md`, in JSON.
const DOCUMENTED_JSON: &str = r#"[
  {"bn": "urn:vigil:device:mon-1:", "bt": 1764403200.25, "bver": 10, "seq_": 42,
   "n": "147842", "u": "/min", "v": 72},
  {"n": "150364", "u": "Cel", "v": 36.9, "t": 0.5},
  {"n": "150456", "u": "%", "v": 97}
]"#;

/// The same pack in CBOR from an independent encoder: Python's cbor2 6.3.0,
/// `cbor2.dumps(pack)` with `pack` the JSON example's records, labels replaced by their integers
/// in the same order (cbor2 writes every float as a double unless asked for canonical output).
/// `cbor_diag.cbor2diag` (PyPI cbor-diag 1.2.0) reads it back as:
///
/// ```text
/// [{-2: "urn:vigil:device:mon-1:", -3: 1764403200.25_3, -1: 10, "seq_": 42,
///   0: "147842", 1: "/min", 2: 72},
///  {0: "150364", 1: "Cel", 2: 36.9_3, 6: 0.5_3},
///  {0: "150456", 1: "%", 2: 97}]
/// ```
const DOCUMENTED_CBOR2: &str = "
    83                                      # array(3)
      a7                                    # map(7)
        21                                  # -2 (bn)
        77 75726e3a766967696c3a6465766963653a6d6f6e2d313a   # \"urn:vigil:device:mon-1:\"
        22                                  # -3 (bt)
        fb 41da4aaa00100000                 # 1764403200.25 (double)
        20                                  # -1 (bver)
        0a                                  # 10
        64 7365715f                         # \"seq_\"
        18 2a                               # 42
        00 66 313437383432                  # 0 (n): \"147842\"
        01 64 2f6d696e                      # 1 (u): \"/min\"
        02 18 48                            # 2 (v): 72
      a4                                    # map(4)
        00 66 313530333634                  # 0 (n): \"150364\"
        01 63 43656c                        # 1 (u): \"Cel\"
        02 fb 4042733333333333              # 2 (v): 36.9 (double)
        06 fb 3fe0000000000000              # 6 (t): 0.5 (double)
      a3                                    # map(3)
        00 66 313530343536                  # 0 (n): \"150456\"
        01 61 25                            # 1 (u): \"%\"
        02 18 61                            # 2 (v): 97
";

/// The same again as `cbor2.dumps(pack, canonical=True)`: shortest floats (0.5 as a half,
/// `f9 3800`) and keys in RFC 7049 canonical order, so the base fields come after `n`, `u`, `v`.
const DOCUMENTED_CBOR2_CANONICAL: &str = "83a7006631343738343201642f6d696e021848200a217775726e3a76\
    6967696c3a6465766963653a6d6f6e2d313a22fb41da4aaa00100000647365715f182aa40066313530333634016343\
    656c02fb404273333333333306f93800a30066313530343536016125021861";

/// The vector of `docs/protocol.md`: the first one with `t` as a half (`f9 3800`), which is what
/// a shortest-float encoder writes in the documented key order (checked with `cbor2.loads` and
/// `cbor_diag.cbor2diag`, which reads `0.5_1`).
const DOCUMENTED_CBOR: &str = "83a7217775726e3a766967696c3a6465766963653a6d6f6e2d313a22fb\
    41da4aaa00100000200a647365715f182a006631343738343201642f6d696e021848a400663135303336340163\
    43656c02fb404273333333333306f93800a30066313530343536016125021861";

/// Hex with `#` comments, as in [`DOCUMENTED_CBOR2`].
fn annotated_hex(text: &str) -> Vec<u8> {
    hex(&text
        .lines()
        .map(|line| line.split('#').next().unwrap())
        .collect::<String>())
}

#[test]
fn the_documented_pack_from_an_independent_encoder_decodes_as_its_json() {
    let mon = DeviceId::new("mon-1").unwrap();
    let json = decode_json(DOCUMENTED_JSON.as_bytes(), &mon, now()).unwrap();
    assert_eq!(json.sequence, 42);
    assert_eq!(json.readings.len(), 3);
    assert_eq!(json.readings[1].time.unix_millis(), 1_764_403_200_750);
    let vectors = [
        annotated_hex(DOCUMENTED_CBOR2),
        hex(DOCUMENTED_CBOR2_CANONICAL),
        hex(DOCUMENTED_CBOR),
    ];
    assert_eq!(vectors[0].len(), 112);
    assert_eq!(vectors[1].len(), 106);
    assert_eq!(vectors[2].len(), 106);
    for vector in &vectors {
        assert_eq!(decode_cbor(vector, &mon, now()).unwrap(), json);
    }
}

#[test]
fn the_input_size_is_bounded_before_anything_is_read() {
    let mut large = pack(1, "02 18 61");
    large.resize(crate::senml::MAX_PACK_BYTES + 1, 0);
    assert_eq!(decode(&large).unwrap_err(), SenmlError::TooLarge);
}

#[test]
fn huge_declared_lengths_are_refused_before_anything_is_allocated() {
    let note = after_base() + 5; // `64 6e6f7465` ("note") is the label; its value starts here
    let cases: Vec<(Vec<u8>, SenmlError)> = vec![
        // array(2^64 - 1): more records than the profile allows, refused on the count.
        (hex("9b ffffffffffffffff"), SenmlError::TooManyRecords),
        // array(512) with no records after it.
        (
            hex("9b 0000000000000200"),
            cbor(CborError::Truncated { offset: 9 }),
        ),
        // A record declared as map(2^64 - 1).
        (
            hex("81 bb ffffffffffffffff"),
            cbor(CborError::Truncated { offset: 1 }),
        ),
        // `n` declared as a text string of 2^64 - 1 bytes, then of 2^32 - 1.
        (
            hex("81 a1 00 7b ffffffffffffffff"),
            cbor(CborError::Truncated { offset: 3 }),
        ),
        (
            hex("81 a1 00 7a ffffffff 41"),
            cbor(CborError::Truncated { offset: 3 }),
        ),
        // An ignored field declared as bytes(2^64 - 1), array(2^64 - 1), map(2^64 - 1) (whose
        // 2^65 - 2 items overflow a usize), array(2^31 - 1).
        (
            pack(1, "64 6e6f7465 5b ffffffffffffffff"),
            cbor(CborError::Truncated { offset: note }),
        ),
        (
            pack(1, "64 6e6f7465 9b ffffffffffffffff"),
            cbor(CborError::Truncated { offset: note }),
        ),
        (
            pack(1, "64 6e6f7465 bb ffffffffffffffff"),
            cbor(CborError::Truncated { offset: note }),
        ),
        (
            pack(1, "64 6e6f7465 9a 7fffffff 00 00"),
            cbor(CborError::Truncated { offset: note }),
        ),
        // The same lengths as values of a known label and as a label.
        (
            pack(1, "02 9b ffffffffffffffff"),
            cbor(CborError::Truncated {
                offset: after_base() + 1,
            }),
        ),
        (
            pack(1, "9b ffffffffffffffff 00"),
            cbor(CborError::Truncated {
                offset: after_base(),
            }),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(decode(&bytes).unwrap_err(), expected, "{bytes:02x?}");
    }
}

#[test]
fn nesting_is_bounded_without_recursion() {
    let nested = |depth: usize| {
        // "note": [[…[0]…]] after a valid record's fields.
        pack(
            2,
            &format!("02 18 61 64 6e6f7465 {} 00", "81".repeat(depth)),
        )
    };
    // The pack's array and the record's map are two of the MAX_NESTING levels.
    assert!(decode(&nested(MAX_NESTING - 2)).is_ok());
    assert_eq!(
        decode(&nested(MAX_NESTING - 1)).unwrap_err(),
        SenmlError::TooDeep { at: RECORD }
    );
    // As deep as the size bound allows: refused at level 17, long before the end.
    assert_eq!(
        decode(&nested(60_000)).unwrap_err(),
        SenmlError::TooDeep { at: RECORD }
    );
    // Maps count as arrays do, and so do containers used as labels.
    let maps = pack(
        2,
        &format!("02 18 61 64 6e6f7465 {} 00", "a1 00".repeat(15)),
    );
    assert_eq!(
        decode(&maps).unwrap_err(),
        SenmlError::TooDeep { at: RECORD }
    );
    let label = pack(2, &format!("02 18 61 {} 00 00", "81".repeat(15)));
    assert_eq!(
        decode(&label).unwrap_err(),
        SenmlError::TooDeep { at: RECORD }
    );
    // Records inside records are not records.
    assert_eq!(decode(&hex("81 81 a0")).unwrap_err(), SenmlError::NotAPack);
}

#[test]
fn truncated_input_is_refused_at_every_length() {
    let whole = hex(DOCUMENTED_CBOR);
    for len in 0..whole.len() {
        let error = decode(&whole[..len]).unwrap_err();
        assert!(
            matches!(error, SenmlError::Cbor(CborError::Truncated { .. })),
            "{len}: {error:?}"
        );
    }
}

#[test]
fn bytes_after_the_pack_are_refused() {
    let whole = pack(1, "02 18 61");
    for extra in [&[0x00][..], &[0xff], &whole] {
        let mut bytes = whole.clone();
        bytes.extend_from_slice(extra);
        assert_eq!(
            decode(&bytes).unwrap_err(),
            cbor(CborError::TrailingBytes {
                offset: whole.len()
            })
        );
    }
}

#[test]
fn labels_must_be_integers_or_text() {
    // half 1.0, bytes h'00', [0], {}, true, null, simple(32) as labels, each with a value 0.
    for label in ["f9 3c00", "41 00", "81 00", "a0", "f5", "f6", "f8 20"] {
        assert_eq!(
            decode(&pack(2, &format!("02 18 61 {label} 00"))).unwrap_err(),
            SenmlError::LabelType { at: RECORD },
            "{label}"
        );
    }
}

#[test]
fn standard_fields_must_use_their_integer_labels() {
    // "v": 97 instead of 2: 97. Ignoring it as an unknown field would read another value.
    assert_eq!(
        decode(&pack(1, "61 76 18 61")).unwrap_err(),
        SenmlError::TextLabel {
            at: RECORD,
            field: "v",
            label: 2
        }
    );
    assert_eq!(
        decode(&pack(2, "02 18 61 62 6275 64 2f6d696e")).unwrap_err(),
        SenmlError::TextLabel {
            at: RECORD,
            field: "bu",
            label: -4
        }
    );
}

#[test]
fn integer_labels_outside_rfc_8428_table_4_are_refused() {
    for (label, value) in [
        ("09", 9),
        ("26", -7),
        ("1b ffffffffffffffff", i128::from(u64::MAX)),
        ("3b ffffffffffffffff", -1 - i128::from(u64::MAX)),
    ] {
        assert_eq!(
            decode(&pack(2, &format!("02 18 61 {label} 00"))).unwrap_err(),
            SenmlError::UnknownLabel {
                at: RECORD,
                label: value
            },
            "{label}"
        );
    }
}

#[test]
fn a_label_twice_in_a_record_is_refused() {
    assert_eq!(
        decode(&pack(2, "02 18 61 02 18 62")).unwrap_err(),
        SenmlError::Duplicate {
            at: RECORD,
            field: "v"
        }
    );
    assert_eq!(
        decode(&pack(2, "02 18 61 64 7365715f 02")).unwrap_err(),
        SenmlError::Duplicate {
            at: RECORD,
            field: "seq_"
        }
    );
    // Ignored fields may repeat: nothing reads them.
    assert!(decode(&pack(3, "02 18 61 64 6e6f7465 00 64 6e6f7465 01")).is_ok());
}

#[test]
fn numbers_may_be_integers_or_floats_of_any_width() {
    for (encoded, expected) in [
        ("f9 3800", 0.5),                      // half
        ("f9 0001", 5.960_464_477_539_063e-8), // smallest half subnormal
        ("fa 42100000", 36.0),                 // single
        ("fb 4042733333333333", 36.9),         // double
        ("38 63", -100.0),                     // negative integer
        ("1b 0000000100000000", 4_294_967_296.0),
    ] {
        let pack = decode(&pack(1, &format!("02 {encoded}"))).unwrap();
        assert_eq!(*pack.readings[0].value.expose(), expected, "{encoded}");
    }
    // bt as a single, t as a half: 1764403200 + 0.5.
    let pack = decode(&pack(3, "02 18 61 22 fa 4ed25550 06 f9 3800")).unwrap();
    assert_eq!(pack.readings[0].time.unix_millis(), 1_764_403_200_500);
}

#[test]
fn nan_and_infinities_are_refused_as_json_cannot_carry_them() {
    let finite = |field| SenmlError::Field {
        at: RECORD,
        field,
        problem: "must be a finite number",
    };
    for nan_or_inf in [
        "f9 7e00",
        "f9 7c00",
        "f9 fc00",
        "fa 7fc00000",
        "fa ff800000",
        "fb 7ff8000000000000",
        "fb 7ff0000000000000",
    ] {
        assert_eq!(
            decode(&pack(1, &format!("02 {nan_or_inf}"))).unwrap_err(),
            finite("v"),
            "{nan_or_inf}"
        );
        assert_eq!(
            decode(&pack(2, &format!("02 18 61 22 {nan_or_inf}"))).unwrap_err(),
            finite("bt")
        );
        assert_eq!(
            decode(&pack(2, &format!("02 18 61 06 {nan_or_inf}"))).unwrap_err(),
            finite("t")
        );
        assert_eq!(
            decode(&pack(2, &format!("02 18 61 24 {nan_or_inf}"))).unwrap_err(),
            finite("bv")
        );
    }
}

#[test]
fn tags_are_refused_wherever_they_are() {
    let at = after_base();
    let cases = [
        // Self-described CBOR (55799) around the pack.
        (hex("d9d9f7 81 a0"), 0),
        // A decimal fraction (tag 4, which RFC 8428 allows) as `v`: 4([-1, 369]) = 36.9.
        (pack(1, "02 c4 82 20 19 0171"), at + 1),
        // An epoch time (tag 1) as `bt`.
        (pack(2, "02 18 61 22 c1 1a 692a5e00"), at + 4),
        // A tag inside an ignored field.
        (pack(2, "02 18 61 64 6e6f7465 81 c0 60"), at + 9),
        // A tagged label.
        (pack(1, "c0 02 18 61"), at),
    ];
    for (bytes, offset) in cases {
        assert_eq!(
            decode(&bytes).unwrap_err(),
            cbor(CborError::Tag { offset }),
            "{bytes:02x?}"
        );
    }
}

#[test]
fn indefinite_lengths_are_refused_wherever_they_are() {
    let at = after_base();
    let cases = [
        (hex("9f a0 ff"), 0),
        (hex("81 bf ff"), 1),
        // `n` as an indefinite text string of one chunk.
        (hex("81 a1 00 7f 66 313530343536 ff"), 3),
        // Indefinite bytes, array and map inside an ignored field.
        (pack(2, "02 18 61 64 6e6f7465 5f ff"), at + 8),
        (pack(2, "02 18 61 64 6e6f7465 9f ff"), at + 8),
        (pack(2, "02 18 61 64 6e6f7465 81 bf ff"), at + 9),
    ];
    for (bytes, offset) in cases {
        assert_eq!(
            decode(&bytes).unwrap_err(),
            cbor(CborError::IndefiniteLength { offset }),
            "{bytes:02x?}"
        );
    }
}

#[test]
fn malformed_items_are_refused() {
    let at = after_base();
    let cases = [
        // Reserved additional information 28, 29, 30.
        (hex("9c"), 0),
        (pack(1, "02 1d"), at + 1),
        (pack(1, "02 fe"), at + 1),
        // An indefinite-length integer.
        (pack(1, "02 1f"), at + 1),
        // A break with nothing to close.
        (hex("ff"), 0),
        (hex("81 ff"), 1),
        (pack(1, "02 ff"), at + 1),
        // simple(20) (false) in two bytes, which RFC 8949 §3.3 forbids.
        (pack(1, "02 f8 14"), at + 1),
    ];
    for (bytes, offset) in cases {
        assert_eq!(
            decode(&bytes).unwrap_err(),
            cbor(CborError::Malformed { offset }),
            "{bytes:02x?}"
        );
    }
    // simple(32) in two bytes is well-formed, and a value of the wrong type.
    assert_eq!(
        decode(&pack(1, "02 f8 20")).unwrap_err(),
        SenmlError::Field {
            at: RECORD,
            field: "v",
            problem: "must be a finite number"
        }
    );
}

#[test]
fn text_must_be_utf8() {
    let at = after_base();
    for (bytes, offset) in [
        (hex("81 a1 00 62 c328"), 3),
        (pack(2, "02 18 61 62 fffe 00"), at + 3),
        (pack(2, "02 18 61 64 6e6f7465 81 61 80"), at + 9),
    ] {
        assert_eq!(
            decode(&bytes).unwrap_err(),
            cbor(CborError::InvalidUtf8 { offset }),
            "{bytes:02x?}"
        );
    }
}

#[test]
fn the_pack_must_be_an_array_of_maps() {
    for (bytes, expected) in [
        (hex(""), cbor(CborError::Truncated { offset: 0 })),
        (hex("a0"), SenmlError::NotAPack),
        (hex("00"), SenmlError::NotAPack),
        (hex("60"), SenmlError::NotAPack),
        (hex("81 00"), SenmlError::NotAPack),
        (hex("82 a0 80"), SenmlError::NotAPack),
        (hex("80"), SenmlError::Empty),
    ] {
        assert_eq!(decode(&bytes).unwrap_err(), expected, "{bytes:02x?}");
    }
}

#[test]
fn the_record_count_is_bounded() {
    // Each record: {0: "urn:vigil:device:oxi-7:150456", 1: "%", 2: 1}; the first one also
    // carries "seq_": 1.
    let record =
        "a3 00 78 1d 75726e3a766967696c3a6465766963653a6f78692d373a313530343536 01 61 25 02 01";
    let many = |count: usize| {
        let mut bytes = hex(&format!("99 {count:04x} a4 64 7365715f 01"));
        bytes.extend(hex(&record[3..]));
        for _ in 1..count {
            bytes.extend(hex(record));
        }
        bytes
    };
    assert_eq!(
        decode(&many(MAX_RECORDS)).unwrap().readings.len(),
        MAX_RECORDS
    );
    assert_eq!(
        decode(&many(MAX_RECORDS + 1)).unwrap_err(),
        SenmlError::TooManyRecords
    );
}

#[test]
fn versions_and_sequence_numbers_are_integers() {
    assert!(decode(&pack(2, "02 18 61 20 0a")).is_ok());
    assert_eq!(
        decode(&pack(2, "02 18 61 20 05")).unwrap_err(),
        SenmlError::Version {
            at: RECORD,
            version: 5
        }
    );
    assert_eq!(
        decode(&pack(2, "02 18 61 20 fb 4024000000000000")).unwrap_err(),
        SenmlError::Field {
            at: RECORD,
            field: "bver",
            problem: "must be an integer"
        }
    );
    let largest = hex(&BASE.replace("64 7365715f 01", "64 7365715f 1b ffffffffffffffff"));
    let mut bytes = hex("81 a5");
    bytes.extend(largest);
    bytes.extend(hex("02 18 61"));
    assert_eq!(decode(&bytes).unwrap().sequence, u64::MAX);
    for seq in ["20", "f9 3c00", "62 3432"] {
        let mut bytes = hex("81 a5");
        bytes.extend(hex(
            &BASE.replace("64 7365715f 01", &format!("64 7365715f {seq}"))
        ));
        bytes.extend(hex("02 18 61"));
        assert_eq!(
            decode(&bytes).unwrap_err(),
            SenmlError::Field {
                at: RECORD,
                field: "seq_",
                problem: "must be an integer from 0 to 2^64-1"
            },
            "{seq}"
        );
    }
}

#[test]
fn errors_never_echo_values() {
    // v: "secret-97.5"
    let error = decode(&pack(1, "02 6b 7365637265742d39372e35")).unwrap_err();
    assert_eq!(
        error,
        SenmlError::Field {
            at: RECORD,
            field: "v",
            problem: "must be a finite number"
        }
    );
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("97.5") && !text.contains("secret"), "{text}");
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn damaged_packs_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
    ) {
        let mut bytes = hex(DOCUMENTED_CBOR);
        for (index, byte) in edits {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        let _ = decode(&bytes);
    }
}
