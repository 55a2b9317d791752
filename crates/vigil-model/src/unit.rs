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

    /// Value in this unit → value in the canonical unit.
    pub fn to_canonical(self, value: f64) -> f64 {
        value.mul_add(self.scale, self.offset)
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
