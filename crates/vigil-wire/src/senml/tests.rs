use std::fmt;

use super::*;
use proptest::prelude::*;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

fn device() -> DeviceId {
    DeviceId::new("oxi-7").unwrap()
}

fn now() -> Timestamp {
    Timestamp::from_unix_millis(1_764_403_300_000).unwrap()
}

fn decode(text: &str) -> Result<Pack, SenmlError> {
    decode_json(text.as_bytes(), &device(), now())
}

#[test]
fn decodes_the_documented_example() {
    let pack = decode(
        r#"[
          {"bn": "urn:vigil:device:oxi-7:", "bt": 1764403200.25, "bver": 10, "seq_": 42,
           "n": "150456", "u": "%", "v": 97},
          {"n": "149530", "u": "/min", "v": 72, "t": 0.5}
        ]"#,
    )
    .unwrap();
    assert_eq!(pack.sequence, 42);
    assert_eq!(pack.readings.len(), 2);
    assert_eq!(pack.readings[0].code, 150_456);
    assert_eq!(pack.readings[0].unit, "%");
    assert_eq!(*pack.readings[0].value.expose(), 97.0);
    assert_eq!(pack.readings[0].time.unix_millis(), 1_764_403_200_250);
    assert_eq!(pack.readings[1].time.unix_millis(), 1_764_403_200_750);
}

#[test]
fn base_unit_base_value_and_relative_time_apply() {
    let pack = decode(
        r#"[{"bn": "urn:vigil:device:oxi-7:", "bu": "/min", "bv": 70, "seq_": 1, "n": "149530", "v": 2, "t": -10}]"#,
    )
    .unwrap();
    let reading = &pack.readings[0];
    assert_eq!(reading.unit, "/min");
    assert_eq!(*reading.value.expose(), 72.0);
    assert_eq!(reading.time.unix_millis(), now().unix_millis() - 10_000);
}

#[test]
fn a_full_name_without_base_name_works() {
    let pack = decode(r#"[{"n": "urn:vigil:device:oxi-7:150456", "u": "%", "v": 96, "bt": 1764403200, "seq_": 3}]"#).unwrap();
    assert_eq!(pack.readings[0].code, 150_456);
}

/// Every refusal the profile makes, as JSON packs; the CBOR tests hand the same packs, transcoded,
/// to the CBOR decoder.
pub(super) fn refusals() -> Vec<(&'static str, SenmlError)> {
    vec![
        ("{}", SenmlError::NotAPack),
        ("[1]", SenmlError::NotAPack),
        ("[]", SenmlError::Empty),
        ("not json", SenmlError::NotAPack),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Missing {
                at: Location::Record(0),
                field: "seq_",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:pump-1:", "seq_": 1, "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Name {
                at: Location::Record(0),
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "SpO2", "u": "%", "v": 97}]"#,
            SenmlError::Name {
                at: Location::Record(0),
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "v": 97}]"#,
            SenmlError::Missing {
                at: Location::Record(0),
                field: "u",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "vs": "97"}]"#,
            SenmlError::Unsupported {
                at: Location::Record(0),
                field: "vs".into(),
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 97, "foo_": 1}]"#,
            SenmlError::Unsupported {
                at: Location::Record(0),
                field: "foo_".into(),
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": -1, "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "seq_",
                problem: "must be an integer from 0 to 2^64-1",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": "97"}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "v",
                problem: "must be a finite number",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "bver": 5, "seq_": 1, "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Version {
                at: Location::Record(0),
                version: 5,
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 97},
                {"n": "150456", "u": "%", "v": 96, "seq_": 2}]"#,
            SenmlError::Field {
                at: Location::Record(1),
                field: "seq_",
                problem: "belongs in the first record only",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 1e999}]"#,
            SenmlError::NotAPack,
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 97, "v": 98}]"#,
            SenmlError::Duplicate {
                at: Location::Record(0),
                field: "v",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 97},
                {"bn": "urn:vigil:device:oxi-7:", "n": "150456", "bn": "urn:vigil:device:pump-1:", "u": "%", "v": 96}]"#,
            SenmlError::Duplicate {
                at: Location::Record(1),
                field: "bn",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 97, "vd": "AQ"}]"#,
            SenmlError::Unsupported {
                at: Location::Record(0),
                field: "vd".into(),
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "vb": true}]"#,
            SenmlError::Unsupported {
                at: Location::Record(0),
                field: "vb".into(),
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "s": 97}]"#,
            SenmlError::Unsupported {
                at: Location::Record(0),
                field: "s".into(),
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 97, "ut": 60}]"#,
            SenmlError::Unsupported {
                at: Location::Record(0),
                field: "ut".into(),
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "bs": 0, "seq_": 1, "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Unsupported {
                at: Location::Record(0),
                field: "bs".into(),
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "bver": 10.0, "seq_": 1, "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "bver",
                problem: "must be an integer",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1.0, "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "seq_",
                problem: "must be an integer from 0 to 2^64-1",
            },
        ),
        (
            r#"[{"bn": 7, "seq_": 1, "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "bn",
                problem: "must be a string",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": 150456, "u": "%", "v": 97}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "n",
                problem: "must be a string",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "bt": "now", "seq_": 1, "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "bt",
                problem: "must be a finite number",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "per cent", "v": 97}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "u",
                problem: "must be a UCUM code of 1 to 32 printable ASCII characters",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "bu": "", "seq_": 1, "n": "150456", "v": 97}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "bu",
                problem: "must be a UCUM code of 1 to 32 printable ASCII characters",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "bv": null, "seq_": 1, "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "bv",
                problem: "must be a finite number",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%"}]"#,
            SenmlError::Missing {
                at: Location::Record(0),
                field: "v",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "bt": 1e300, "seq_": 1, "n": "150456", "u": "%", "v": 97}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "t",
                problem: "time is out of range",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 1e308, "bv": 1e308}]"#,
            SenmlError::Field {
                at: Location::Record(0),
                field: "v",
                problem: "must be a finite number",
            },
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 97}, 5]"#,
            SenmlError::NotAPack,
        ),
        (
            r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 97,
                "note": [[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]}]"#,
            SenmlError::TooDeep {
                at: Location::Record(0),
            },
        ),
    ]
}

#[test]
fn refusals_name_the_record_and_field_never_the_value() {
    let cases = refusals();
    for (text, expected) in &cases {
        assert_eq!(decode(text).as_ref().err(), Some(expected), "{text}");
    }
    let err = decode(r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": "secret-97.5"}]"#)
        .unwrap_err()
        .to_string();
    assert!(!err.contains("97.5"), "{err}");
}

#[test]
fn size_and_record_bounds_hold() {
    assert_eq!(
        decode_json(&vec![b' '; MAX_PACK_BYTES + 1], &device(), now()).unwrap_err(),
        SenmlError::TooLarge
    );
    let record = r#"{"n": "urn:vigil:device:oxi-7:150456", "u": "%", "v": 1}"#;
    let many = format!("[{}]", vec![record; MAX_RECORDS + 1].join(","));
    assert_eq!(decode(&many).unwrap_err(), SenmlError::TooManyRecords);
}

#[test]
fn unknown_fields_without_underscore_are_ignored_as_the_rfc_says() {
    let pack = decode(r#"[{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 97, "note": "x"}]"#).unwrap();
    assert_eq!(pack.readings.len(), 1);
}

#[test]
fn nesting_up_to_the_limit_is_skipped_and_one_more_is_refused() {
    let pack = |depth: usize| {
        format!(
            r#"[{{"bn": "urn:vigil:device:oxi-7:", "seq_": 1, "n": "150456", "u": "%", "v": 97, "note": {}0{}}}]"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // The pack's array and the record's object are two levels of MAX_NESTING.
    assert!(decode(&pack(MAX_NESTING - 2)).is_ok());
    assert_eq!(
        decode(&pack(MAX_NESTING - 1)).unwrap_err(),
        SenmlError::TooDeep {
            at: Location::Record(0)
        }
    );
    // serde_json's own limit (128) is never what refuses.
    assert_eq!(
        decode(&pack(5000)).unwrap_err(),
        SenmlError::TooDeep {
            at: Location::Record(0)
        }
    );
}

#[test]
fn the_encoding_is_told_by_the_first_byte_that_is_not_json_whitespace() {
    assert_eq!(Encoding::detect(b"[{}]"), Some(Encoding::Json));
    assert_eq!(Encoding::detect(b" \t\r\n[{}]"), Some(Encoding::Json));
    assert_eq!(Encoding::detect(&[0x81, 0xa0]), Some(Encoding::Cbor));
    assert_eq!(Encoding::detect(&[0x9f, 0xff]), Some(Encoding::Cbor));
    assert_eq!(
        Encoding::detect(&[0x9b, 0, 0, 0, 0, 0, 0, 0, 1]),
        Some(Encoding::Cbor)
    );
    for other in [
        &b""[..],
        b"   ",
        b"{}",
        &[0xa1],
        &[0x7f],
        &[0xd9, 0xd9, 0xf7, 0x81],
    ] {
        assert_eq!(Encoding::detect(other), None, "{other:02x?}");
    }
    let json = br#"[{"bn": "urn:vigil:device:oxi-7:", "bt": 1764403200, "seq_": 7, "n": "150456", "u": "%", "v": 97}]"#;
    let cbor = transcode(std::str::from_utf8(json).unwrap()).unwrap();
    let from_json = senml_decode(json).unwrap();
    assert_eq!(from_json.sequence, 7);
    assert_eq!(senml_decode(&cbor).unwrap(), from_json);
    assert_eq!(
        decode_as(Encoding::Cbor, &cbor, &device(), now()).unwrap(),
        from_json
    );
    assert_eq!(
        decode_as(Encoding::Json, &cbor, &device(), now()).unwrap_err(),
        SenmlError::NotAPack
    );
    assert_eq!(senml_decode(b"{}").unwrap_err(), SenmlError::NotAPack);
    assert_eq!(senml_decode(b"").unwrap_err(), SenmlError::NotAPack);
    assert_eq!(
        senml_decode(&vec![0x80; MAX_PACK_BYTES + 1]).unwrap_err(),
        SenmlError::TooLarge
    );
}

#[test]
fn content_types_name_encodings() {
    for (content_type, expected) in [
        ("application/senml+json", Some(Encoding::Json)),
        ("application/senml+cbor", Some(Encoding::Cbor)),
        ("Application/SenML+CBOR", Some(Encoding::Cbor)),
        (
            "application/senml+json; charset=utf-8",
            Some(Encoding::Json),
        ),
        (" application/senml+cbor ;x=1", Some(Encoding::Cbor)),
        ("application/json", None),
        ("application/cbor", None),
        ("application/senml+json-seq", None),
        ("", None),
    ] {
        assert_eq!(
            Encoding::from_content_type(content_type),
            expected,
            "{content_type}"
        );
    }
    for encoding in [Encoding::Json, Encoding::Cbor] {
        assert_eq!(
            Encoding::from_content_type(encoding.content_type()),
            Some(encoding)
        );
    }
}

#[test]
fn every_refusal_is_the_same_in_cbor() {
    for (text, expected) in refusals() {
        // Text that is not JSON has no CBOR twin.
        let Some(cbor) = transcode(text) else {
            continue;
        };
        assert_eq!(
            decode_cbor(&cbor, &device(), now()).as_ref().err(),
            Some(&expected),
            "{text}"
        );
    }
}

fn senml_decode(input: &[u8]) -> Result<Pack, SenmlError> {
    super::decode(input, &device(), now())
}

/// A JSON value, keys in the order and number written, numbers of the kind written.
enum Tree {
    Unsigned(u64),
    Negative(i64),
    Float(f64),
    Text(String),
    Simple(u8),
    Array(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Tree, E> {
        Ok(Tree::Simple(if b { 21 } else { 20 }))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Simple(22))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Tree, E> {
        Ok(Tree::Unsigned(n))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Tree, E> {
        Ok(if n < 0 {
            Tree::Negative(n)
        } else {
            Tree::Unsigned(n as u64)
        })
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Tree, E> {
        Ok(Tree::Float(n))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Tree, E> {
        Ok(Tree::Text(s.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry()? {
            entries.push((key, value));
        }
        Ok(Tree::Map(entries))
    }
}

/// A CBOR item header, written here rather than by ciborium so the tests do not trust the code
/// they test.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    if n < 24 {
        out.push(major | n as u8);
    } else if n <= 0xff {
        out.extend([major | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(major | 25);
        out.extend((n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(major | 26);
        out.extend((n as u32).to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend(n.to_be_bytes());
    }
}

fn write_tree(out: &mut Vec<u8>, tree: &Tree) {
    match tree {
        Tree::Unsigned(n) => head(out, 0, *n),
        Tree::Negative(n) => head(out, 1, n.unsigned_abs() - 1),
        Tree::Float(n) => {
            out.push(0xfb);
            out.extend(n.to_be_bytes());
        }
        Tree::Text(s) => {
            head(out, 3, s.len() as u64);
            out.extend(s.as_bytes());
        }
        Tree::Simple(n) => out.push(0xe0 | n),
        Tree::Array(items) => {
            head(out, 4, items.len() as u64);
            for item in items {
                write_tree(out, item);
            }
        }
        Tree::Map(entries) => {
            head(out, 5, entries.len() as u64);
            for (key, value) in entries {
                match records::Label::from_name(key).and_then(records::Label::cbor) {
                    Some(label) if label >= 0 => head(out, 0, label as u64),
                    Some(label) => head(out, 1, (-1 - i64::from(label)) as u64),
                    None => write_tree(out, &Tree::Text(key.clone())),
                }
                write_tree(out, value);
            }
        }
    }
}

/// The CBOR twin of a JSON pack as RFC 8428 §6 maps one to the other: standard labels become
/// integers, extension labels stay text; key order, repeated keys and each number's kind
/// (integer or float) are kept. `None` if `json` is not JSON.
pub(super) fn transcode(json: &str) -> Option<Vec<u8>> {
    let tree: Tree = serde_json::from_str(json).ok()?;
    let mut out = Vec::new();
    write_tree(&mut out, &tree);
    Some(out)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_json(&bytes, &device(), now());
    }

    #[test]
    fn arbitrary_json_shaped_text_never_panics(text in r#"\[\{("[a-z_]{1,4}": ?(-?[0-9]{1,12}(\.[0-9]{1,4})?|"[a-z0-9:/%\-]{0,30}"),? ?){0,8}\}\]"#) {
        let _ = decode(&text);
    }

    #[test]
    fn json_and_its_cbor_twin_decode_alike(
        first in record(true),
        rest in proptest::collection::vec(record(false), 0..3),
    ) {
        let records: Vec<_> = std::iter::once(first).chain(rest).collect();
        let text = format!(
            "[{}]",
            records
                .iter()
                .map(|fields| format!(
                    "{{{}}}",
                    fields
                        .iter()
                        .map(|(key, value)| format!("\"{key}\": {value}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let cbor = transcode(&text).unwrap();
        prop_assert_eq!(decode(&text), decode_cbor(&cbor, &device(), now()), "{}", text);
    }
}

/// A record that is valid but for a few fields dropped or added, in any order: most packs
/// decode, and the ones that do not are refused for every reason the profile has.
fn record(first: bool) -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let mut valid = vec![
        ("n", "\"150456\"".to_owned()),
        ("u", "\"%\"".to_owned()),
        ("v", "97.5".to_owned()),
    ];
    if first {
        valid.push(("bn", "\"urn:vigil:device:oxi-7:\"".to_owned()));
        valid.push(("seq_", "42".to_owned()));
    }
    let count = valid.len();
    (
        proptest::collection::vec(prop::bool::weighted(0.9), count),
        proptest::collection::vec((field(), scalar()), 0..2),
    )
        .prop_map(move |(keep, extra)| {
            valid
                .iter()
                .zip(keep)
                .filter(|(_, keep)| *keep)
                .map(|(field, _)| field.clone())
                .chain(extra)
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

fn field() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "bn", "n", "u", "v", "seq_", "bt", "bt", "t", "t", "bu", "bu", "bv", "bver", "vs", "vd",
        "note", "note", "x_",
    ])
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"urn:vigil:device:oxi-7:\"",
            "\"urn:vigil:device:oxi-7:150456\"",
            "\"urn:vigil:device:pump-1:\"",
            "\"150456\"",
            "\"149530\"",
            "\"%\"",
            "\"/min\"",
            "\"\"",
            "true",
            "null",
            "[1, {\"a\": 2}]",
            "{}",
            "10",
            "1.5",
            "-3",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (-1e10..1e10f64).prop_map(|n| format!("{n:?}")),
        (1_700_000_000.0..1_800_000_000.0f64).prop_map(|n| format!("{n:?}")),
    ]
}
