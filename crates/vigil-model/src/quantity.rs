//! The quantities Vigil understands, and everything a device integrator needs about each:
//! IEEE 11073 MDC code, LOINC code, canonical and accepted UCUM units, plausibility limits.
//!
//! The table itself, with the source of every entry, is in [`table`]. It is checked against a
//! second source in this crate's tests and against the UCUM reference implementation in the
//! workspace's end-to-end tests.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::mdc::MdcCode;
use crate::unit::{AcceptedUnit, Unit};

mod table;

/// A measured or set quantity that Vigil accepts from devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Quantity {
    /// Heart rate from the ECG of a bedside monitor or ECG patch.
    HeartRate,
    /// Pulse rate measured by a pulse oximeter.
    PulseRate,
    /// Peripheral oxygen saturation measured by a pulse oximeter.
    Spo2,
    /// Non-invasive blood pressure, systolic.
    NibpSystolic,
    /// Non-invasive blood pressure, diastolic.
    NibpDiastolic,
    /// Non-invasive blood pressure, mean arterial.
    NibpMean,
    /// Respiration rate.
    RespirationRate,
    /// Body temperature.
    BodyTemperature,
    /// Blood glucose in capillary whole blood (finger-stick meter).
    GlucoseCapillary,
    /// Glucose in interstitial fluid (continuous glucose monitor).
    GlucoseInterstitial,
    /// Insulin basal rate of an insulin pump.
    InsulinBasalRate,
    /// Insulin bolus amount of an insulin pump.
    InsulinBolus,
    /// Infusion rate of an infusion pump.
    InfusionRate,
    /// Lower rate limit of a pacemaker or ICD's bradycardia pacing.
    PacingLowerRateLimit,
    /// Remaining battery charge of a device.
    BatteryLevel,
}

/// What kind of thing a quantity describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantityKind {
    /// A measurement of the patient's body.
    Vital,
    /// A therapy setting or delivered dose of an actuating device.
    Therapy,
    /// The state of the device itself.
    DeviceStatus,
}

/// A LOINC code and its long common name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loinc {
    /// The LOINC number, e.g. `8867-4`.
    pub code: &'static str,
    /// The LOINC long common name.
    pub display: &'static str,
}

/// The FHIR code system URI of LOINC.
pub const LOINC_SYSTEM: &str = "http://loinc.org";

/// Physiological (or, for settings, device) plausibility limits, in the canonical unit.
///
/// These are not alarm limits. They bound what is *possible*: a value outside `min..=max` or a
/// change faster than `max_change_per_minute` is not a sick patient but a broken or lying
/// sender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Lowest possible value.
    pub min: f64,
    /// Highest possible value.
    pub max: f64,
    /// Fastest credible change between two readings, per minute of time between them, or `None`
    /// where the quantity can legitimately step at once (a setting, the onset of an arrhythmia).
    pub max_change_per_minute: Option<f64>,
    /// Fastest credible fall, where a quantity falls slower than it can rise (glucose can be
    /// infused faster than tissues take it up); `None`: [`Limits::max_change_per_minute`] either
    /// way. Never looser than that bound.
    pub max_fall_per_minute: Option<f64>,
}

impl Limits {
    /// The fastest credible change per minute from `previous` to `current` (the fall bound
    /// when it falls), or `None` where the quantity may step at once.
    pub fn change_bound(&self, previous: f64, current: f64) -> Option<f64> {
        let bound = self.max_change_per_minute?;
        Some(match self.max_fall_per_minute {
            Some(fall) if current < previous => fall.min(bound),
            _ => bound,
        })
    }
}

/// Everything Vigil knows about one quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantitySpec {
    /// The quantity.
    pub quantity: Quantity,
    /// Stable snake_case name, used in configuration, rules and JSON.
    pub key: &'static str,
    /// Name for people.
    pub name: &'static str,
    /// Vital sign, therapy or device status.
    pub kind: QuantityKind,
    /// Its IEEE 11073-10101 (or -10103) term: what Vigil sends.
    pub mdc: MdcCode,
    /// Other terms devices use for the same quantity, accepted on input (e.g. respiration rate
    /// derived from transthoracic impedance).
    pub mdc_aliases: &'static [MdcCode],
    /// Its LOINC codes for FHIR, for values in the canonical unit: first the code FHIR's profile
    /// requires, then more specific ones (method) to send alongside. Empty where LOINC has none
    /// (device settings), and then FHIR carries the MDC code alone.
    pub loinc: &'static [Loinc],
    /// Accepted units; the first one is canonical and has the identity conversion.
    pub units: &'static [AcceptedUnit],
    /// What values are possible.
    pub limits: Limits,
    /// Where each code, unit and limit comes from.
    pub sources: &'static str,
}

impl QuantitySpec {
    /// The unit Vigil stores and serves this quantity in.
    pub fn canonical_unit(&self) -> Unit {
        // The table test guarantees at least one unit per quantity.
        self.units.first().map_or(
            Unit {
                ucum: "1",
                mdc: None,
                display: "",
            },
            |u| u.unit,
        )
    }
}

/// A reported value that cannot be accepted as this quantity.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// The unit is not one Vigil accepts for this quantity.
    #[error("unit {unit:?} is not accepted for {quantity}; accepted: {accepted}")]
    UnitNotAccepted {
        /// The quantity.
        quantity: Quantity,
        /// The unit that was sent (a unit is not PHI).
        unit: String,
        /// The accepted UCUM codes, comma separated.
        accepted: String,
    },
    /// NaN or infinite.
    #[error("value for {quantity} is not a finite number")]
    NotFinite {
        /// The quantity.
        quantity: Quantity,
    },
}

/// A value outside what is physically possible for a quantity. The value itself is PHI and is
/// not part of this error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Implausible {
    /// Below [`Limits::min`].
    #[error("{0} is below the lowest possible value")]
    BelowMinimum(Quantity),
    /// Above [`Limits::max`].
    #[error("{0} is above the highest possible value")]
    AboveMaximum(Quantity),
    /// Changed faster than [`Limits::max_change_per_minute`].
    #[error("{0} changed faster than is physically possible")]
    ChangedTooFast(Quantity),
}

impl Quantity {
    /// Every quantity, in table order.
    pub const ALL: &'static [Quantity] = &[
        Quantity::HeartRate,
        Quantity::PulseRate,
        Quantity::Spo2,
        Quantity::NibpSystolic,
        Quantity::NibpDiastolic,
        Quantity::NibpMean,
        Quantity::RespirationRate,
        Quantity::BodyTemperature,
        Quantity::GlucoseCapillary,
        Quantity::GlucoseInterstitial,
        Quantity::InsulinBasalRate,
        Quantity::InsulinBolus,
        Quantity::InfusionRate,
        Quantity::PacingLowerRateLimit,
        Quantity::BatteryLevel,
    ];

    /// Everything Vigil knows about this quantity.
    pub fn spec(self) -> &'static QuantitySpec {
        table::spec(self)
    }

    /// The quantity with this context-free MDC code, if Vigil knows it.
    pub fn from_mdc_code(code: u32) -> Option<Quantity> {
        Self::ALL.iter().copied().find(|q| {
            let spec = q.spec();
            spec.mdc.code() == code || spec.mdc_aliases.iter().any(|a| a.code() == code)
        })
    }

    /// The quantity with this MDC reference id (e.g. `MDC_PULS_OXIM_SAT_O2`), if Vigil knows it.
    pub fn from_mdc_refid(refid: &str) -> Option<Quantity> {
        Self::ALL.iter().copied().find(|q| {
            let spec = q.spec();
            spec.mdc.refid == refid || spec.mdc_aliases.iter().any(|a| a.refid == refid)
        })
    }

    /// The quantity with this snake_case key (e.g. `spo2`), if Vigil knows it.
    pub fn from_key(key: &str) -> Option<Quantity> {
        Self::ALL.iter().copied().find(|q| q.spec().key == key)
    }

    /// Converts a value reported in `ucum` into this quantity's canonical unit.
    pub fn to_canonical(self, value: f64, ucum: &str) -> Result<f64, ValueError> {
        if !value.is_finite() {
            return Err(ValueError::NotFinite { quantity: self });
        }
        let spec = self.spec();
        let accepted = spec
            .units
            .iter()
            .find(|u| u.unit.ucum == ucum)
            .ok_or_else(|| ValueError::UnitNotAccepted {
                quantity: self,
                unit: ucum.chars().take(32).collect(),
                accepted: spec
                    .units
                    .iter()
                    .map(|u| u.unit.ucum)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        Ok(accepted.conversion.to_canonical(value))
    }

    /// Checks a canonical value against the absolute limits.
    pub fn check_range(self, canonical: f64) -> Result<(), Implausible> {
        let limits = self.spec().limits;
        if canonical < limits.min {
            Err(Implausible::BelowMinimum(self))
        } else if canonical > limits.max {
            Err(Implausible::AboveMaximum(self))
        } else {
            Ok(())
        }
    }

    /// Checks the change between two canonical readings `elapsed_ms` apart against the fastest
    /// credible rate of change ([`Limits::change_bound`]: a fall may have a bound of its own). Readings at the same instant are compared as if 1 s apart, so
    /// that a sensor reporting twice in one tick is not flagged for its own jitter.
    pub fn check_change(
        self,
        previous: f64,
        current: f64,
        elapsed_ms: u64,
    ) -> Result<(), Implausible> {
        let Some(per_minute) = self.spec().limits.change_bound(previous, current) else {
            return Ok(());
        };
        #[allow(clippy::cast_precision_loss)] // elapsed times are far below 2^52 ms
        let minutes = elapsed_ms.max(1000) as f64 / 60_000.0;
        if (current - previous).abs() > per_minute * minutes {
            Err(Implausible::ChangedTooFast(self))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec().key)
    }
}
