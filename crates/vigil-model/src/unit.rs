//! Units of measure: UCUM codes, IEEE 11073 MDC dimension codes, and exact linear conversions.
//!
//! Every quantity has one canonical unit (what Vigil stores and serves) and a short list of
//! accepted alternatives with their conversion. A conversion is affine,
//! `canonical = value × scale + offset`, which covers every case Vigil needs: scale factors
//! (kPa → mm[Hg], mg/dL → mmol/L) and temperature scales ([degF] → Cel, K → Cel).

use std::fmt;

use crate::mdc::MdcCode;

/// A unit of measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// The case-sensitive UCUM code (<https://ucum.org/ucum>), as FHIR `Quantity.code` carries it.
    pub ucum: &'static str,
    /// The IEEE 11073-10101 dimension code (`MDC_DIM_*`), where the nomenclature has one.
    pub mdc: Option<MdcCode>,
    /// How people write it.
    pub display: &'static str,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ucum)
    }
}

/// Significant digits a converted value keeps: far more than any medical device resolves (a
/// few digits), far fewer than the 15–17 where binary rounding noise lives.
pub const SIGNIFICANT_DIGITS: i32 = 12;

/// `value` rounded to `digits` significant decimal digits (0, infinities and NaN unchanged).
fn round_significant(value: f64, digits: i32) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    #[allow(clippy::cast_possible_truncation)] // |log10| of a finite f64 is below 400
    let magnitude = value.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits - 1 - magnitude);
    if !scale.is_finite() || scale == 0.0 {
        return value;
    }
    let rounded = (value * scale).round() / scale;
    if rounded.is_finite() { rounded } else { value }
}

/// An affine conversion into the canonical unit: `canonical = value × scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    /// Multiplier applied first.
    pub scale: f64,
    /// Added after scaling.
    pub offset: f64,
}

impl Conversion {
    /// The canonical unit itself.
    pub const IDENTITY: Conversion = Conversion::scale(1.0);

    /// A pure scale factor.
    pub const fn scale(scale: f64) -> Self {
        Self { scale, offset: 0.0 }
    }

    /// Value in this unit → value in the canonical unit, rounded to
    /// [`SIGNIFICANT_DIGITS`] significant digits when it was converted: binary arithmetic
    /// leaves noise no device measures (98.6 °F is 36.99999999999999 °C unrounded), and a
    /// clinician reading the served value should see 37.
    pub fn to_canonical(self, value: f64) -> f64 {
        if self == Conversion::IDENTITY {
            return value;
        }
        round_significant(value.mul_add(self.scale, self.offset), SIGNIFICANT_DIGITS)
    }

    /// Value in the canonical unit → value in this unit.
    pub fn from_canonical(self, canonical: f64) -> f64 {
        (canonical - self.offset) / self.scale
    }
}

/// A unit a quantity may be reported in, and how to convert it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AcceptedUnit {
    /// The unit.
    pub unit: Unit,
    /// Its conversion to the quantity's canonical unit.
    pub conversion: Conversion,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn converted_values_lose_binary_noise_but_no_measured_digit() {
        let fahrenheit = Conversion {
            scale: 5.0 / 9.0,
            offset: -32.0 * 5.0 / 9.0,
        };
        assert_eq!(fahrenheit.to_canonical(98.6), 37.0);
        assert_eq!(fahrenheit.to_canonical(32.0), 0.0);
        assert_eq!(fahrenheit.to_canonical(100.4), 38.0);
        let kelvin = Conversion {
            scale: 1.0,
            offset: -273.15,
        };
        assert_eq!(kelvin.to_canonical(310.15), 37.0);
        // A value's own digits stay.
        let mmol = Conversion::scale(18.015_588);
        assert_eq!(mmol.to_canonical(5.5), 99.085_734);
        assert_eq!(
            Conversion::IDENTITY.to_canonical(36.999_999_999_999_99),
            36.999_999_999_999_99
        );
        assert_eq!(
            round_significant(123_456_789.123_456_7, 12),
            123_456_789.123
        );
        assert_eq!(
            round_significant(-0.000_123_456_789_012_34, 12),
            -0.000_123_456_789_012
        );
        let huge = round_significant(f64::MAX, 12);
        assert!(
            huge.is_finite() && (f64::MAX - huge) / f64::MAX < 1e-11,
            "{huge}"
        );
        assert_eq!(round_significant(f64::MIN_POSITIVE, 12), f64::MIN_POSITIVE);
        assert!(round_significant(f64::NAN, 12).is_nan());
    }
}
