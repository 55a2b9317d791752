//! Values no patient can have: outside the vocabulary's limits of the possible (a heart rate of
//! 650 /min, an SpO2 of 120 %). Ingest stores such values flagged, never drops them; this turns
//! them into an alert, one per pack (the engine suppresses repeats for a minute).

use vigil_model::{Alert, AlertKind, Evidence, Severity};

use crate::{Detector, Event};

/// The limits detector.
#[derive(Debug, Default)]
pub struct Limits;

impl Detector for Limits {
    fn name(&self) -> &'static str {
        "limits"
    }

    fn observe(&mut self, event: &Event, alerts: &mut Vec<Alert>) {
        let Event::Stored {
            at,
            device,
            patient,
            sequence,
            readings,
            ..
        } = event
        else {
            return;
        };
        let mut impossible = readings
            .iter()
            .filter(|r| r.quantity.check_range(*r.value.expose()).is_err());
        let Some(first) = impossible.next() else {
            return;
        };
        let count = 1 + impossible.count();
        alerts.push(Alert {
            time: *at,
            severity: Severity::Medium,
            kind: AlertKind::ImplausibleValue,
            device: Some(device.clone()),
            patient: Some(patient.clone()),
            evidence: vec![
                Evidence::Fact {
                    name: "sequence".into(),
                    value: sequence.to_string(),
                },
                Evidence::Fact {
                    name: "impossible_readings".into(),
                    value: count.to_string(),
                },
                Evidence::Clinical {
                    quantity: first.quantity,
                    value: first.value,
                },
            ],
            // T0856 Spoof Reporting Message: a value no sensor measured.
            attack_technique: Some("T0856".into()),
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::{DeviceClass, DeviceId, PatientId, Phi, Quantity, Timestamp};

    use super::*;
    use crate::Reading;

    fn pack(values: &[(Quantity, f64)]) -> Event {
        let at = Timestamp::from_unix_millis(1_800_000_000_000).unwrap();
        Event::Stored {
            at,
            device: DeviceId::new("mon-1").unwrap(),
            class: DeviceClass::BedsideMonitor,
            patient: PatientId::new("p-1").unwrap(),
            sequence: 7,
            bytes: 200,
            readings: values
                .iter()
                .map(|(quantity, value)| Reading {
                    quantity: *quantity,
                    value: Phi::new(*value),
                    time: at,
                })
                .collect(),
            stored: values.len(),
            duplicates: 0,
        }
    }

    #[test]
    fn one_alert_per_pack_with_impossible_values_none_for_extreme_but_possible_ones() {
        let mut alerts = Vec::new();
        Limits.observe(
            &pack(&[(Quantity::HeartRate, 220.0), (Quantity::Spo2, 71.0)]),
            &mut alerts,
        );
        assert!(alerts.is_empty(), "sick, not impossible");
        Limits.observe(
            &pack(&[(Quantity::HeartRate, 650.0), (Quantity::Spo2, 120.0)]),
            &mut alerts,
        );
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::ImplausibleValue);
        assert!(
            !format!("{:?}", alerts[0]).contains("650"),
            "the value stays PHI"
        );
    }
}
