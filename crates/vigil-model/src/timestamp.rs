//! Points in time, in UTC with millisecond precision.
//!
//! Devices report time as milliseconds or fractional seconds since the Unix epoch (SenML); the
//! store indexes on integers; people read RFC 3339. One integer type serves all three.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time: milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

/// A time outside the years 1970 to 9999, or text that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// Before the Unix epoch or after the year 9999.
    #[error("time is outside 1970-01-01 to 9999-12-31")]
    OutOfRange,
    /// Not an RFC 3339 date-time.
    #[error("time is not an RFC 3339 date-time (for example 2026-11-29T08:15:00Z)")]
    NotRfc3339,
}

/// Milliseconds of 9999-12-31T23:59:59.999Z, the last instant RFC 3339 can write.
const MAX_MILLIS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// The last instant a timestamp holds, 9999-12-31T23:59:59.999Z (RFC 3339's last year).
    pub const MAX: Timestamp = Timestamp(MAX_MILLIS);

    /// A timestamp from milliseconds since the epoch.
    pub fn from_unix_millis(millis: i64) -> Result<Self, TimestampError> {
        if (0..=MAX_MILLIS).contains(&millis) {
            Ok(Self(millis))
        } else {
            Err(TimestampError::OutOfRange)
        }
    }

    /// A timestamp from (possibly fractional) seconds since the epoch, as SenML writes time.
    /// Sub-millisecond precision is rounded to the nearest millisecond.
    pub fn from_unix_seconds_f64(seconds: f64) -> Result<Self, TimestampError> {
        let millis = (seconds * 1000.0).round();
        if millis.is_finite() && (0.0..=MAX_MILLIS as f64).contains(&millis) {
            #[allow(clippy::cast_possible_truncation)] // range checked just above
            Ok(Self(millis as i64))
        } else {
            Err(TimestampError::OutOfRange)
        }
    }

    /// The current time from the system clock.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        let millis = now.unix_timestamp_nanos() / 1_000_000;
        Self(i64::try_from(millis).unwrap_or(0).clamp(0, MAX_MILLIS))
    }

    /// Milliseconds since the epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 date-time such as `2026-11-29T08:15:00.250Z` or with an offset.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        let parsed =
            OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampError::NotRfc3339)?;
        let millis = i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| TimestampError::OutOfRange)?;
        Self::from_unix_millis(millis)
    }

    /// Signed difference `self - earlier` in milliseconds.
    pub const fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0 - earlier.0
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-29T08:15:00.250Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            ),
            // Unreachable for values built through the constructors; print the raw number.
            Err(_) => write!(f, "{}ms", self.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-29T08:15:00.250+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-29T07:15:00.250Z");
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::parse_rfc3339("yesterday"),
            Err(TimestampError::NotRfc3339)
        );
        assert_eq!(
            Timestamp::parse_rfc3339("1969-12-31T23:59:59Z"),
            Err(TimestampError::OutOfRange)
        );
    }

    #[test]
    fn refuses_out_of_range_and_non_finite_seconds() {
        for bad in [f64::NAN, f64::INFINITY, -1.0, 1e300] {
            assert_eq!(
                Timestamp::from_unix_seconds_f64(bad),
                Err(TimestampError::OutOfRange)
            );
        }
        assert_eq!(
            Timestamp::from_unix_seconds_f64(1_764_403_200.123_4)
                .unwrap()
                .unix_millis(),
            1_764_403_200_123
        );
    }

    proptest! {
        #[test]
        fn display_round_trips(millis in 0..=MAX_MILLIS) {
            let t = Timestamp::from_unix_millis(millis).unwrap();
            prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_string()).unwrap(), t);
        }
    }
}
