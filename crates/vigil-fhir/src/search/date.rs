//! FHIR `date` search values: a prefix and a date of some precision, as a half-open range of
//! Unix milliseconds (FHIR R4 search, § 3.1.1.4.2 "date" and § 3.1.1.4 prefixes).
//!
//! A value of a given precision means the whole interval it names: `2026-03` is
//! `[2026-03-01T00:00Z, 2026-04-01T00:00Z)`. Observations are instants (millisecond
//! precision), so each prefix selects times `t` as follows, `[lo, hi)` being the value's
//! interval:
//!
//! | prefix | times |
//! | --- | --- |
//! | `eq` (default) | `lo <= t < hi` |
//! | `ne` | `t < lo` or `t >= hi` |
//! | `gt`, `sa` | `t >= hi` |
//! | `lt`, `eb` | `t < lo` |
//! | `ge` | `t >= lo` |
//! | `le` | `t < hi` |
//!
//! Dates without a time are taken in UTC (FHIR leaves the zone of a date to the server); a
//! time needs a zone (`Z` or `±hh:mm`), as FHIR requires. Fractions of a second beyond
//! milliseconds are refused: the store cannot tell them apart.

use time::{Date, Month};

/// Milliseconds in one day.
const DAY: i64 = 86_400_000;

/// A half-open range of times in Unix milliseconds, `start <= t < end`. `i64::MIN` and
/// `i64::MAX` stand for unbounded ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First millisecond included.
    pub start: i64,
    /// First millisecond excluded.
    pub end: i64,
}

impl TimeRange {
    /// Every time.
    pub const ALL: TimeRange = TimeRange {
        start: i64::MIN,
        end: i64::MAX,
    };

    /// Whether the range holds no time at all.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// Whether `millis` lies in the range.
    pub fn contains(&self, millis: i64) -> bool {
        self.start <= millis && millis < self.end
    }

    /// The times in both ranges.
    pub fn intersect(self, other: TimeRange) -> TimeRange {
        TimeRange {
            start: self.start.max(other.start),
            end: self.end.min(other.end),
        }
    }
}

/// What a `date` value selects: one range, or (`ne`) everything but one range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateCondition {
    /// Times in the range.
    Within(TimeRange),
    /// Times outside the range.
    Outside(TimeRange),
}

/// Why a date value was refused. Never carries the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateProblem {
    /// Not `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or `YYYY-MM-DDThh:mm[:ss[.fff]](Z|±hh:mm)`.
    Format,
    /// A month, day, hour, minute, second or zone out of range.
    OutOfRange,
    /// A time without a zone.
    NoZone,
    /// More than three digits of fractional seconds.
    TooPrecise,
}

impl DateProblem {
    pub(crate) fn text(self) -> &'static str {
        match self {
            DateProblem::Format => {
                "expected [prefix]YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with Z or \
                 ±hh:mm; prefixes eq ne gt lt ge le sa eb"
            }
            DateProblem::OutOfRange => "a date or time field is out of range",
            DateProblem::NoZone => "a time needs a zone (Z or ±hh:mm)",
            DateProblem::TooPrecise => "at most millisecond precision",
        }
    }
}

/// Parses one `date` parameter value, prefix included.
pub(crate) fn parse(value: &str) -> Result<DateCondition, DateProblem> {
    let (prefix, rest) = match value.get(..2) {
        Some(p @ ("eq" | "ne" | "gt" | "lt" | "ge" | "le" | "sa" | "eb")) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let (lo, hi) = interval(rest)?;
    let range = |start, end| DateCondition::Within(TimeRange { start, end });
    Ok(match prefix {
        "ne" => DateCondition::Outside(TimeRange { start: lo, end: hi }),
        "gt" | "sa" => range(hi, i64::MAX),
        "lt" | "eb" => range(i64::MIN, lo),
        "ge" => range(lo, i64::MAX),
        "le" => range(i64::MIN, hi),
        _ => range(lo, hi),
    })
}

/// The interval `[lo, hi)` a date value of some precision names, in Unix milliseconds.
fn interval(text: &str) -> Result<(i64, i64), DateProblem> {
    let b = text.as_bytes();
    if !text.is_ascii() {
        return Err(DateProblem::Format);
    }
    let year = digits(b, 0, 4)?;
    if b.len() == 4 {
        let lo = day_millis(year, 1, 1)?;
        return Ok((lo, day_millis(year + 1, 1, 1)?));
    }
    expect(b, 4, b'-')?;
    let month = digits(b, 5, 2)?;
    if b.len() == 7 {
        let lo = day_millis(year, month, 1)?;
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        return Ok((lo, day_millis(ny, nm, 1)?));
    }
    expect(b, 7, b'-')?;
    let day = digits(b, 8, 2)?;
    let midnight = day_millis(year, month, day)?;
    if b.len() == 10 {
        return Ok((midnight, midnight + DAY));
    }
    expect(b, 10, b'T')?;
    let hour = digits(b, 11, 2)?;
    expect(b, 13, b':')?;
    let minute = digits(b, 14, 2)?;
    let mut at = 16;
    let mut width = 60_000;
    let mut millis = 0;
    if b.get(at) == Some(&b':') {
        let second = digits(b, at + 1, 2)?;
        at += 3;
        width = 1000;
        millis = second * 1000;
        if second > 59 {
            return Err(DateProblem::OutOfRange);
        }
        if b.get(at) == Some(&b'.') {
            let start = at + 1;
            let mut end = start;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            let count = end - start;
            if count == 0 {
                return Err(DateProblem::Format);
            }
            if count > 3 {
                return Err(DateProblem::TooPrecise);
            }
            let fraction = digits(b, start, count)?;
            let scale = 10i64.pow(3 - count as u32);
            millis += fraction * scale;
            width = scale;
            at = end;
        }
    }
    if hour > 23 || minute > 59 {
        return Err(DateProblem::OutOfRange);
    }
    let offset = zone(&b[at..])?;
    let lo = midnight + hour * 3_600_000 + minute * 60_000 + millis - offset;
    Ok((lo, lo + width))
}

/// The zone's offset from UTC in milliseconds. `+` arrives as a space when a client forgets to
/// percent-encode it in a query (form encoding reads `+` as space), so a space is read as `+`.
fn zone(b: &[u8]) -> Result<i64, DateProblem> {
    match b {
        [] => Err(DateProblem::NoZone),
        [b'Z'] => Ok(0),
        [sign @ (b'+' | b'-' | b' '), _, _, b':', _, _] => {
            let hours = digits(b, 1, 2)?;
            let minutes = digits(b, 4, 2)?;
            if hours > 14 || minutes > 59 {
                return Err(DateProblem::OutOfRange);
            }
            let offset = hours * 3_600_000 + minutes * 60_000;
            Ok(if *sign == b'-' { -offset } else { offset })
        }
        _ => Err(DateProblem::Format),
    }
}

fn expect(b: &[u8], at: usize, byte: u8) -> Result<(), DateProblem> {
    if b.get(at) == Some(&byte) {
        Ok(())
    } else {
        Err(DateProblem::Format)
    }
}

fn digits(b: &[u8], at: usize, count: usize) -> Result<i64, DateProblem> {
    let slice = b.get(at..at + count).ok_or(DateProblem::Format)?;
    slice.iter().try_fold(0i64, |n, d| {
        if d.is_ascii_digit() {
            Ok(n * 10 + i64::from(d - b'0'))
        } else {
            Err(DateProblem::Format)
        }
    })
}

/// Unix milliseconds of midnight UTC starting the given day.
fn day_millis(year: i64, month: i64, day: i64) -> Result<i64, DateProblem> {
    let year = i32::try_from(year).map_err(|_| DateProblem::OutOfRange)?;
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or(DateProblem::OutOfRange)?;
    let day = u8::try_from(day).map_err(|_| DateProblem::OutOfRange)?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| DateProblem::OutOfRange)?;
    let days = i64::from(date.to_julian_day()) - i64::from(UNIX_EPOCH_JULIAN_DAY);
    Ok(days * DAY)
}

/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use vigil_model::Timestamp;

    fn ms(rfc3339: &str) -> i64 {
        Timestamp::parse_rfc3339(rfc3339).unwrap().unix_millis()
    }

    fn within(start: i64, end: i64) -> DateCondition {
        DateCondition::Within(TimeRange { start, end })
    }

    #[test]
    fn each_precision_names_its_whole_interval() {
        assert_eq!(
            parse("2026").unwrap(),
            within(ms("2026-01-01T00:00:00Z"), ms("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse("2026-12").unwrap(),
            within(ms("2026-12-01T00:00:00Z"), ms("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse("2024-02-29").unwrap(),
            within(ms("2024-02-29T00:00:00Z"), ms("2024-03-01T00:00:00Z"))
        );
        assert_eq!(
            parse("2026-11-29T08:15+01:00").unwrap(),
            within(ms("2026-11-29T07:15:00Z"), ms("2026-11-29T07:16:00Z"))
        );
        assert_eq!(
            parse("2026-11-29T08:15:30Z").unwrap(),
            within(ms("2026-11-29T08:15:30Z"), ms("2026-11-29T08:15:31Z"))
        );
        assert_eq!(
            parse("2026-11-29T08:15:30.25-02:30").unwrap(),
            within(
                ms("2026-11-29T10:45:30.250Z"),
                ms("2026-11-29T10:45:30.260Z")
            )
        );
        // A `+` that arrived as a space.
        assert_eq!(
            parse("2026-11-29T08:15:30 01:00").unwrap(),
            parse("2026-11-29T08:15:30+01:00").unwrap()
        );
    }

    #[test]
    fn prefixes_select_around_the_interval() {
        let (lo, hi) = (ms("2026-11-29T00:00:00Z"), ms("2026-11-30T00:00:00Z"));
        assert_eq!(parse("eq2026-11-29").unwrap(), within(lo, hi));
        assert_eq!(
            parse("ne2026-11-29").unwrap(),
            DateCondition::Outside(TimeRange { start: lo, end: hi })
        );
        for p in ["gt", "sa"] {
            assert_eq!(
                parse(&format!("{p}2026-11-29")).unwrap(),
                within(hi, i64::MAX)
            );
        }
        for p in ["lt", "eb"] {
            assert_eq!(
                parse(&format!("{p}2026-11-29")).unwrap(),
                within(i64::MIN, lo)
            );
        }
        assert_eq!(parse("ge2026-11-29").unwrap(), within(lo, i64::MAX));
        assert_eq!(parse("le2026-11-29").unwrap(), within(i64::MIN, hi));
    }

    #[test]
    fn each_bad_value_has_its_reason() {
        for (bad, problem) in [
            ("", DateProblem::Format),
            ("yesterday", DateProblem::Format),
            ("xx2026", DateProblem::Format),
            ("2026-1", DateProblem::Format),
            ("2026-11-29T08", DateProblem::Format),
            ("2026-11-29 08:00Z", DateProblem::Format),
            ("2026-11-29T08:00:00.Z", DateProblem::Format),
            ("2026-11-29T08:00+1:00", DateProblem::Format),
            ("2026-13", DateProblem::OutOfRange),
            ("2026-02-29", DateProblem::OutOfRange),
            ("2026-11-29T24:00Z", DateProblem::OutOfRange),
            ("2026-11-29T08:60Z", DateProblem::OutOfRange),
            ("2026-11-29T08:00:61Z", DateProblem::OutOfRange),
            ("2026-11-29T08:00+15:00", DateProblem::OutOfRange),
            ("2026-11-29T08:00:00", DateProblem::NoZone),
            ("2026-11-29T08:00:00.1234Z", DateProblem::TooPrecise),
            ("２０２６", DateProblem::Format),
        ] {
            assert_eq!(parse(bad), Err(problem), "{bad:?}");
        }
    }

    #[test]
    fn dates_before_1970_are_ranges_too() {
        let DateCondition::Within(range) = parse("lt1960").unwrap() else {
            panic!()
        };
        assert!(range.end < 0 && !range.is_empty());
        assert!(!range.contains(0));
        assert!(TimeRange { start: 5, end: 5 }.is_empty());
    }
}
