//! The few JSON primitives the hand-written Observation writer needs: strings with RFC 8259
//! escaping, finite numbers, and instants.
//!
//! The searchset writer emits hundreds of thousands of Observations per request, so it writes
//! bytes directly instead of going through `serde_json::Value` (see `benches/searchset.rs` for
//! the comparison with serde derive). Everything here is checked against `serde_json` and
//! [`Timestamp`]'s own formatting in the tests below.

use vigil_model::Timestamp;

/// Appends `text` as a JSON string, quotes included.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends a finite number as a JSON number (shortest round-trip form, as serde_json writes
/// it). Returns `false`, writing nothing, for NaN and infinities, which JSON cannot carry.
#[must_use]
pub(crate) fn write_f64(out: &mut Vec<u8>, value: f64) -> bool {
    if !value.is_finite() {
        return false;
    }
    // serde_json formats floats with ryu; writing one number through it costs no allocation.
    serde_json::to_writer(&mut *out, &value).is_ok()
}

/// Appends an unsigned integer in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends a timestamp as a quoted FHIR `instant`/`dateTime`, `YYYY-MM-DDThh:mm:ss.sssZ`,
/// exactly as [`Timestamp`]'s `Display` writes it, without going through `fmt`.
pub(crate) fn write_instant(out: &mut Vec<u8>, time: Timestamp) {
    let millis = time.unix_millis();
    let days = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    let mut text = *b"\"0000-00-00T00:00:00.000Z\"";
    put_digits(&mut text[1..5], year);
    put_digits(&mut text[6..8], month);
    put_digits(&mut text[9..11], day);
    put_digits(&mut text[12..14], h);
    put_digits(&mut text[15..17], m);
    put_digits(&mut text[18..20], s);
    put_digits(&mut text[21..24], ms);
    out.extend_from_slice(&text);
}

/// Writes `value` right-aligned into `slot` in decimal; `slot` is wide enough for every value
/// a [`Timestamp`] can produce (years 1970 to 9999).
fn put_digits(slot: &mut [u8], mut value: i64) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar: Howard
/// Hinnant's `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn string(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_what_json_requires() {
        assert_eq!(string("plain"), "\"plain\"");
        assert_eq!(string("a\"b\\c\n\r\t\u{8}\u{c}"), r#""a\"b\\c\n\r\t\b\f""#);
        assert_eq!(string("\u{0}\u{1f}é/"), "\"\\u0000\\u001fé/\"");
    }

    #[test]
    fn refuses_non_finite_numbers() {
        let mut out = Vec::new();
        assert!(!write_f64(&mut out, f64::NAN));
        assert!(!write_f64(&mut out, f64::INFINITY));
        assert!(out.is_empty());
        assert!(write_f64(&mut out, 36.6));
        assert_eq!(out, b"36.6");
    }

    proptest! {
        #[test]
        fn strings_agree_with_serde_json(text in any::<String>()) {
            let ours = string(&text);
            prop_assert_eq!(&ours, &serde_json::to_string(&text).unwrap());
            prop_assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), text);
        }

        #[test]
        fn numbers_round_trip(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let mut out = Vec::new();
            prop_assert!(write_f64(&mut out, value));
            // std's parser is exact; serde_json's default one may be off by one ulp.
            let back: f64 = String::from_utf8(out).unwrap().parse().unwrap();
            prop_assert_eq!(back.to_bits(), value.to_bits());
        }

        #[test]
        fn integers_agree_with_display(value in any::<u64>()) {
            let mut out = Vec::new();
            write_u64(&mut out, value);
            prop_assert_eq!(String::from_utf8(out).unwrap(), value.to_string());
        }

        #[test]
        fn instants_agree_with_timestamp_display(millis in 0i64..=253_402_300_799_999) {
            let time = Timestamp::from_unix_millis(millis).unwrap();
            let mut out = Vec::new();
            write_instant(&mut out, time);
            prop_assert_eq!(String::from_utf8(out).unwrap(), format!("\"{time}\""));
        }
    }
}
