//! One measured or reported value, as the hub stores and serves it.

use crate::id::{DeviceId, PatientId};
use crate::phi::Phi;
use crate::quantity::{Quantity, ValueError};
use crate::timestamp::Timestamp;

/// One value of one quantity from one device, in the quantity's canonical unit.
///
/// The value is PHI (it describes a patient's health) and prints as `[redacted]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The device that reported it.
    pub device: DeviceId,
    /// The patient the device served at `time`, once the hub has resolved it.
    pub patient: Option<PatientId>,
    /// What was measured or set.
    pub quantity: Quantity,
    /// The value in the canonical unit of `quantity`.
    pub value: Phi<f64>,
    /// When it was measured, by the device's clock.
    pub time: Timestamp,
    /// The device's sequence number of the message that carried it.
    pub sequence: u64,
    /// Whether the value lies outside what is physically possible. Such values are kept and
    /// flagged, never silently dropped: a clinician or an investigator may need to see them.
    pub implausible: bool,
}

impl Observation {
    /// Builds an observation from a value in any accepted unit, converting it to the canonical
    /// unit and flagging it if it is outside the quantity's possible range.
    pub fn from_reported(
        device: DeviceId,
        quantity: Quantity,
        value: f64,
        ucum: &str,
        time: Timestamp,
        sequence: u64,
    ) -> Result<Self, ValueError> {
        let canonical = quantity.to_canonical(value, ucum)?;
        Ok(Self {
            device,
            patient: None,
            quantity,
            value: Phi::new(canonical),
            time,
            sequence,
            implausible: quantity.check_range(canonical).is_err(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_flags_and_redacts() {
        let device = DeviceId::new("thermo-1").unwrap();
        let obs = Observation::from_reported(
            device.clone(),
            Quantity::BodyTemperature,
            98.6,
            "[degF]",
            Timestamp::EPOCH,
            7,
        )
        .unwrap();
        assert!((obs.value.expose() - 37.0).abs() < 1e-9);
        assert!(!obs.implausible);
        assert!(!format!("{obs:?}").contains("37"));

        let hot = Observation::from_reported(
            device,
            Quantity::BodyTemperature,
            60.0,
            "Cel",
            Timestamp::EPOCH,
            8,
        )
        .unwrap();
        assert!(hot.implausible);
    }
}
