//! What the learned models see: a point in `[0, 1]^n` per message of a device, and per update of
//! how a patient's devices agree.
//!
//! Values are placed on a *scale* per quantity (`scale`), not on the vocabulary's limits of
//! the possible: a heart rate of 60 and one of 120 are 0.10 and 0.20 of the possible 0–600 /min,
//! too close for a tree that halves a dimension only a few times, but a third of the scale apart.
//! The scales span what an adult ward sees (they contain every band of the NEWS2 chart, Royal
//! College of Physicians 2017, with room either side) and clamp beyond it; they are a
//! normalisation, not a clinical judgement, and no alert depends on a value crossing one.
//! Changes since the device's previous reading are squashed with `tanh` over a per-quantity
//! step, a change a device commonly shows between readings, so that jitter spreads around the
//! middle and a forged step lands at an edge.

use vigil_model::{DeviceClass, Quantity};

/// How a quantity's value and change are placed in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Scale {
    /// Canonical value at 0 (below clamps).
    low: f32,
    /// Canonical value at 1 (above clamps).
    high: f32,
    /// A common change between two readings, canonical unit.
    step: f32,
}

/// The scale of `quantity` (canonical units); `None` for a quantity no model looks at (the
/// battery level, device status that drifts over hours).
///
/// NEWS2 bands: respiration ≤ 8 to ≥ 25 /min, SpO2 ≤ 91 to ≥ 96 %, systolic ≤ 90 to ≥ 220
/// mm[Hg], pulse ≤ 40 to ≥ 131 /min, temperature ≤ 35.0 to ≥ 39.1 °C. Glucose: the 40–400 mg/dL
/// that CGMs report (Dexcom G6, FreeStyle Libre 2). Pump settings: the ranges the simulator's
/// programs and common basal/bolus/maintenance rates span.
pub(super) fn scale(quantity: Quantity) -> Option<Scale> {
    let (low, high, step) = match quantity {
        Quantity::HeartRate | Quantity::PulseRate => (30.0, 180.0, 5.0),
        Quantity::Spo2 => (80.0, 100.0, 2.0),
        Quantity::NibpSystolic => (70.0, 230.0, 10.0),
        Quantity::NibpDiastolic => (30.0, 130.0, 8.0),
        Quantity::NibpMean => (40.0, 160.0, 8.0),
        Quantity::RespirationRate => (4.0, 40.0, 3.0),
        Quantity::BodyTemperature => (34.0, 41.0, 0.3),
        Quantity::GlucoseCapillary | Quantity::GlucoseInterstitial => (40.0, 400.0, 15.0),
        Quantity::InsulinBasalRate => (0.0, 4.0, 0.2),
        Quantity::InsulinBolus => (0.0, 20.0, 2.0),
        Quantity::InfusionRate => (0.0, 250.0, 10.0),
        Quantity::PacingLowerRateLimit => (30.0, 100.0, 5.0),
        _ => return None,
    };
    Some(Scale { low, high, step })
}

impl Scale {
    /// A present value: in `[0.05, 1]`, leaving 0 for "not in this message".
    pub(super) fn value(&self, value: f64) -> f32 {
        // Precision: features are compared with splits, never summed.
        #[allow(clippy::cast_possible_truncation)]
        let value = value as f32;
        0.05 + 0.95 * ((value - self.low) / (self.high - self.low)).clamp(0.0, 1.0)
    }

    /// A change: 0.5 for none, towards 0 or 1 for falls and rises of several steps.
    pub(super) fn change(&self, change: f64) -> f32 {
        #[allow(clippy::cast_possible_truncation)]
        let change = change as f32;
        0.5 + 0.5 * (change / self.step).tanh()
    }
}

/// The features of a device class: three of traffic, then a value and a change per quantity the
/// class reports and a model looks at.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) quantities: Vec<Quantity>,
}

/// Traffic features before the quantities'.
pub(super) const TRAFFIC: usize = 3;

impl Layout {
    pub(super) fn of(class: DeviceClass) -> Layout {
        Layout {
            quantities: class
                .spec()
                .reports
                .iter()
                .copied()
                .filter(|q| scale(*q).is_some())
                .collect(),
        }
    }

    pub(super) fn dimensions(&self) -> usize {
        TRAFFIC + 2 * self.quantities.len()
    }

    /// Where `quantity`'s features are, if the layout has them.
    pub(super) fn position(&self, quantity: Quantity) -> Option<usize> {
        self.quantities.iter().position(|q| *q == quantity)
    }

    /// The name of feature `dimension`, for evidence.
    pub(super) fn name(&self, dimension: usize) -> String {
        match dimension {
            0 => "inter_arrival".into(),
            1 => "message_bytes".into(),
            2 => "readings_per_message".into(),
            d => {
                let index = (d - TRAFFIC) / 2;
                let what = if (d - TRAFFIC).is_multiple_of(2) {
                    "value"
                } else {
                    "change"
                };
                match self.quantities.get(index) {
                    Some(q) => format!("{}_{what}", q.spec().key),
                    None => "unknown".into(),
                }
            }
        }
    }
}

/// The interval since the device's previous message, by its own clock: 0 at 10 ms or less (or
/// backwards), 1 at 10,000 s, logarithmic between (1 s is 1/3, 5 min 0.74). The device's clock,
/// not the hub's receive time, so that a backlog sent in a burst keeps its intervals.
pub(super) fn interval(ms: i64) -> f32 {
    if ms <= 10 {
        return 0.0;
    }
    // Precision: a log of milliseconds.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let log = ((ms as f64 / 1000.0).log10() as f32 + 2.0) / 6.0;
    log.clamp(0.0, 1.0)
}

/// The message's size: 0 at 64 bytes or fewer, 1 at 16 KiB, logarithmic between.
pub(super) fn size(bytes: usize) -> f32 {
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let log = ((bytes.max(1) as f64).log2() as f32 - 6.0) / 8.0;
    log.clamp(0.0, 1.0)
}

/// Readings in the message: 1/16 each, at most 1.
pub(super) fn readings(count: usize) -> f32 {
    #[allow(clippy::cast_precision_loss)]
    let share = count.min(16) as f32 / 16.0;
    share
}

/// The features of a patient: the two comparisons between devices that physiology ties
/// together, from the latest reading of each slot.
pub(super) const PATIENT_FEATURES: [&str; 2] =
    ["heart_rate_minus_pulse_rate", "spo2_oximeter_minus_other"];

/// Slots of the joint picture.
pub(super) const SLOTS: usize = 5;

/// The slot a reading fills, if any: ECG heart rate (monitor, patch), pulse rate (any), SpO2
/// from an oximeter, SpO2 from another device (a monitor's probe), respiration rate.
pub(super) fn slot(class: DeviceClass, quantity: Quantity) -> Option<usize> {
    match (class, quantity) {
        (DeviceClass::BedsideMonitor | DeviceClass::EcgPatch, Quantity::HeartRate) => Some(0),
        (_, Quantity::PulseRate) => Some(1),
        (DeviceClass::PulseOximeter, Quantity::Spo2) => Some(2),
        (_, Quantity::Spo2) => Some(3),
        (_, Quantity::RespirationRate) => Some(4),
        _ => None,
    }
}

/// A difference between two devices: 0.5 for agreement (or either missing), towards 0 or 1
/// over a few `step`s.
pub(super) fn difference(a: Option<f64>, b: Option<f64>, step: f64) -> f32 {
    match (a, b) {
        (Some(a), Some(b)) => {
            #[allow(clippy::cast_possible_truncation)]
            let squashed = (0.5 + 0.5 * ((a - b) / step).tanh()) as f32;
            squashed
        }
        _ => 0.5,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_quantity_a_class_reports_has_a_scale_except_the_battery() {
        for class in DeviceClass::ALL {
            for q in class.spec().reports {
                assert_eq!(scale(*q).is_none(), *q == Quantity::BatteryLevel, "{q}");
            }
        }
        let layout = Layout::of(DeviceClass::BedsideMonitor);
        assert_eq!(layout.dimensions(), 3 + 2 * 8);
        assert_eq!(layout.name(3), "heart_rate_value");
        assert_eq!(layout.name(4), "heart_rate_change");
        assert_eq!(layout.name(1), "message_bytes");
        assert_eq!(layout.name(99), "unknown");
    }

    #[test]
    fn features_stay_in_the_unit_interval() {
        let hr = scale(Quantity::HeartRate).unwrap();
        assert_eq!(hr.value(0.0), 0.05);
        assert_eq!(hr.value(600.0), 1.0);
        assert!((hr.change(0.0) - 0.5).abs() < 1e-6);
        assert!(hr.change(100.0) <= 1.0 && hr.change(-100.0) >= 0.0);
        assert!(hr.value(f64::NAN).is_nan() || hr.value(f64::NAN) <= 1.0);
        assert_eq!(interval(-5), 0.0);
        assert!((interval(1000) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(interval(i64::MAX), 1.0);
        assert_eq!(size(0), 0.0);
        assert_eq!(size(usize::MAX), 1.0);
        assert_eq!(readings(1000), 1.0);
        assert_eq!(difference(Some(80.0), None, 10.0), 0.5);
        assert!(difference(Some(80.0), Some(50.0), 10.0) > 0.99);
    }
}
