use super::*;
use proptest::prelude::*;

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

#[test]
fn refusals_name_the_record_and_field_never_the_value() {
    let cases: &[(&str, SenmlError)] = &[
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
    ];
    for (text, expected) in cases {
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

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_json(&bytes, &device(), now());
    }

    #[test]
    fn arbitrary_json_shaped_text_never_panics(text in r#"\[\{("[a-z_]{1,4}": ?(-?[0-9]{1,12}(\.[0-9]{1,4})?|"[a-z0-9:/%\-]{0,30}"),? ?){0,8}\}\]"#) {
        let _ = decode(&text);
    }
}
