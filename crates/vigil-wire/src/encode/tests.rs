use proptest::prelude::*;
use vigil_model::{DeviceId, Timestamp};

use super::*;
use crate::senml::{MAX_PACK_BYTES, Pack, decode, decode_cbor, decode_json};

fn device() -> DeviceId {
    DeviceId::new("oxi-7").unwrap()
}

fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis).unwrap()
}

/// The hub's clock; far from every time below, so a time read as relative would show.
fn now() -> Timestamp {
    at(1_000_000_000_000)
}

fn example() -> PackBuilder {
    let mut pack = PackBuilder::new(&device(), 42, at(1_764_403_200_250)).unwrap();
    pack.reading(150_456, "%", 97.0, ReadingTime::Offset(0.0))
        .unwrap()
        .reading(
            149_530,
            "/min",
            72.0,
            ReadingTime::At(at(1_764_403_200_750)),
        )
        .unwrap();
    pack
}

#[test]
fn writes_cbor_an_independent_decoder_reads_back() {
    // Python's cbor2 6.3.0, `cbor2.loads(bytes.fromhex(…))`, reads these bytes as
    // [{-2: 'urn:vigil:device:oxi-7:', -3: 1764403200.25, 'seq_': 42, 0: '150456', 1: '%', 2: 97},
    //  {0: '149530', 1: '/min', 2: 72, 6: 0.5}]
    // and cbor_diag.cbor2diag shows `-3: 1764403200.25_3` and `6: 0.5_1` (double, half).
    let expected = "82 \
        a6 21 77 75726e3a766967696c3a6465766963653a6f78692d373a \
           22 fb 41da4aaa00100000 \
           64 7365715f 18 2a \
           00 66 313530343536 01 61 25 02 18 61 \
        a4 00 66 313439353330 01 64 2f6d696e 02 18 48 06 f9 3800";
    let expected: Vec<u8> = expected
        .split_whitespace()
        .collect::<String>()
        .as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect();
    assert_eq!(example().to_cbor(), expected);
}

#[test]
fn both_encodings_decode_to_the_pack_that_was_built() {
    let pack = example();
    let json = decode_json(&pack.to_json(), &device(), now()).unwrap();
    assert_eq!(json.sequence, 42);
    assert_eq!(json.readings[0].time.unix_millis(), 1_764_403_200_250);
    assert_eq!(json.readings[1].time.unix_millis(), 1_764_403_200_750);
    assert_eq!(
        decode_cbor(&pack.to_cbor(), &device(), now()).unwrap(),
        json
    );
    for encoding in [Encoding::Json, Encoding::Cbor] {
        assert_eq!(Encoding::detect(&pack.encode(encoding)), Some(encoding));
        assert_eq!(
            decode(&pack.encode(encoding), &device(), now()).unwrap(),
            json
        );
    }
}

#[test]
fn what_the_decoder_would_refuse_is_refused_when_added() {
    assert_eq!(
        PackBuilder::new(&device(), 1, at(268_435_455_999)).unwrap_err(),
        EncodeError::BaseTime
    );
    assert!(PackBuilder::new(&device(), 1, at(268_435_456_000)).is_ok());
    let mut pack = example();
    let now = ReadingTime::Offset(0.0);
    assert_eq!(
        pack.reading(1, "", 1.0, now).unwrap_err(),
        EncodeError::Unit { reading: 2 }
    );
    assert_eq!(
        pack.reading(1, "mm Hg", 1.0, now).unwrap_err(),
        EncodeError::Unit { reading: 2 }
    );
    assert_eq!(
        pack.reading(1, &"m".repeat(33), 1.0, now).unwrap_err(),
        EncodeError::Unit { reading: 2 }
    );
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(
            pack.reading(1, "%", value, now).unwrap_err(),
            EncodeError::Value { reading: 2 }
        );
    }
    for time in [
        ReadingTime::At(at(1_000)),
        ReadingTime::Offset(f64::NAN),
        ReadingTime::Offset(f64::INFINITY),
        ReadingTime::Offset(-1_764_403_200.0),
        ReadingTime::Offset(1e300),
    ] {
        assert_eq!(
            pack.reading(1, "%", 1.0, time).unwrap_err(),
            EncodeError::Time { reading: 2 },
            "{time:?}"
        );
    }
    assert_eq!(pack.len(), 2);
    let error = pack.reading(1, "%", f64::NAN, now).unwrap_err().to_string();
    assert!(!error.contains("NaN"), "{error}");
    for _ in 2..MAX_RECORDS {
        pack.reading(1, "%", 1.0, now).unwrap();
    }
    assert_eq!(
        pack.reading(1, "%", 1.0, now).unwrap_err(),
        EncodeError::TooManyReadings
    );
}

#[test]
fn a_reading_that_would_make_the_pack_too_large_is_refused() {
    let mut pack = PackBuilder::new(
        &DeviceId::new("d".repeat(vigil_model::id::MAX_ID_LEN)).unwrap(),
        u64::MAX,
        at(1_764_403_200_001),
    )
    .unwrap();
    let unit = "\"".repeat(32); // escaped in JSON: 64 bytes
    let mut refused = None;
    for reading in 0..MAX_RECORDS {
        if let Err(error) = pack.reading(
            u32::MAX,
            &unit,
            -1.234_567_890_123_456_7e-300,
            ReadingTime::Offset(-0.123_456_789_012_345_67),
        ) {
            refused = Some((reading, error));
            break;
        }
    }
    let (reading, error) = refused.unwrap();
    assert_eq!(error, EncodeError::TooLarge { reading });
    assert_eq!(pack.len(), reading);
    assert!(pack.len() < MAX_RECORDS);
    assert_eq!(pack.json_len, pack.to_json().len());
    let device = DeviceId::new("d".repeat(vigil_model::id::MAX_ID_LEN)).unwrap();
    let json = pack.to_json();
    let cbor = pack.to_cbor();
    assert!(MAX_PACK_BYTES - json.len() < 160, "{}", json.len());
    assert!(cbor.len() < json.len());
    assert_eq!(
        decode(&json, &device, now()).unwrap().readings.len(),
        pack.len()
    );
    assert_eq!(
        decode(&cbor, &device, now()).unwrap().readings.len(),
        pack.len()
    );
}

#[test]
fn an_empty_pack_is_written_and_refused() {
    let pack = PackBuilder::new(&device(), 1, at(1_764_403_200_000)).unwrap();
    assert!(pack.is_empty());
    assert_eq!(pack.to_json(), b"[]");
    assert_eq!(pack.to_cbor(), [0x80]);
}

#[test]
fn numbers_are_written_as_integers_only_when_exact() {
    let mut json = String::new();
    for (number, text) in [
        (97.0, "97"),
        (-3.0, "-3"),
        (0.0, "0"),
        (-0.0, "-0.0"),
        (36.9, "36.9"),
        (9_007_199_254_740_992.0, "9007199254740992"),
        (18_014_398_509_481_984.0, "1.8014398509481984e16"),
        (1e-7, "1e-7"),
    ] {
        json.clear();
        json_number(&mut json, number);
        assert_eq!(json, text);
        assert_eq!(json.parse::<f64>().unwrap().to_bits(), number.to_bits());
    }
}

fn unit() -> impl Strategy<Value = String> {
    "[!-~]{1,32}"
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        (-1000i32..1000).prop_map(f64::from),
        (0.0..300.0f64),
        prop::sample::select(vec![-0.0, 0.1, 1e-5, -1e-7, 0.5, 1e300]),
    ]
}

/// Between 1978-07-04 (2^28 s) and 9999, in milliseconds.
const EARLIEST: i64 = 268_435_456_000;
const LATEST: i64 = 253_402_300_799_999;

fn time() -> impl Strategy<Value = ReadingTime> {
    prop_oneof![
        (EARLIEST + 1000..=LATEST - 1000).prop_map(|millis| ReadingTime::At(at(millis))),
        (-86_400_000i64..86_400_000).prop_map(|millis| ReadingTime::Offset(millis as f64 / 1000.0)),
        (-1e6..1e6f64).prop_map(ReadingTime::Offset),
    ]
}

proptest! {
    #[test]
    fn what_is_encoded_decodes_to_the_same_readings_in_both_encodings(
        id in "[a-z0-9][a-z0-9.-]{0,20}",
        sequence in any::<u64>(),
        base in EARLIEST..LATEST - 100_000_000,
        readings in proptest::collection::vec((any::<u32>(), unit(), value(), time()), 1..20),
    ) {
        let device = DeviceId::new(id).unwrap();
        let mut pack = PackBuilder::new(&device, sequence, at(base)).unwrap();
        let mut expected = Vec::new();
        for (code, unit, value, time) in readings {
            if pack.reading(code, &unit, value, time).is_err() {
                // Only an offset that leads outside 1978..9999 may be refused: the strategies
                // make everything else valid.
                let ReadingTime::Offset(offset) = time else {
                    return Err(TestCaseError::fail(format!("{time:?} refused")));
                };
                let seconds = base as f64 / 1000.0 + offset;
                prop_assert!(!(268_435_456.0..=253_402_300_799.999).contains(&seconds));
                continue;
            }
            let millis = match time {
                ReadingTime::At(at) => at.unix_millis(),
                ReadingTime::Offset(offset) => {
                    Timestamp::from_unix_seconds_f64(base as f64 / 1000.0 + offset)
                        .unwrap()
                        .unix_millis()
                }
            };
            expected.push((code, unit, value, millis));
        }
        prop_assume!(!pack.is_empty());
        let (json, cbor) = (pack.to_json(), pack.to_cbor());
        prop_assert_eq!(json.len(), pack.json_len);
        prop_assert!(cbor.len() <= json.len());
        let from_json = decode_json(&json, &device, now()).unwrap();
        let from_cbor = decode_cbor(&cbor, &device, now()).unwrap();
        prop_assert_eq!(&from_json, &from_cbor);
        prop_assert_eq!(from_json.sequence, sequence);
        let decoded: Vec<_> = from_json
            .readings
            .iter()
            .map(|r| (r.code, r.unit.clone(), *r.value.expose(), r.time.unix_millis()))
            .collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn json_and_cbor_of_one_pack_decode_alike(
        readings in proptest::collection::vec((any::<u32>(), unit(), value()), 1..10),
        offsets in proptest::collection::vec(-1e5..1e5f64, 10),
    ) {
        let mut pack = PackBuilder::new(&device(), 7, at(1_764_403_200_123)).unwrap();
        for ((code, unit, value), offset) in readings.into_iter().zip(offsets) {
            pack.reading(code, &unit, value, ReadingTime::Offset(offset)).unwrap();
        }
        let json: Pack = decode(&pack.to_json(), &device(), now()).unwrap();
        prop_assert_eq!(json, decode(&pack.to_cbor(), &device(), now()).unwrap());
    }
}
