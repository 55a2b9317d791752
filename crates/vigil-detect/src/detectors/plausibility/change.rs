//! Impossible change: a device's reading that moved from its previous one faster than the
//! quantity can change.
//!
//! The bound is the vocabulary's
//! [`Limits::max_change_per_minute`](vigil_model::quantity::Limits::max_change_per_minute),
//! applied by [`Quantity::check_change`]; `docs/vocabulary.md` gives its reasoning and sources.
//! Today two quantities have one:
//!
//! - interstitial glucose, 15 mg/dL per minute rising and 10 falling: CGM practice calls 3
//!   mg/dL/min a rapid change, and interstitial glucose lags and smooths blood glucose (5–10
//!   min; Boyne et al., Diabetes 2003;52:2790), so not even an intravenous dextrose bolus moves
//!   it 15 mg/dL a minute; and glucose leaves the blood only as fast as tissues take it up,
//!   which even at maximal insulin is 6–9 mg/dL a minute ([`Limits::max_fall_per_minute`]
//!   gives the sources). The simulator's fake hypoglycaemia (a CGM going from its patient's
//!   glucose to 48–52 mg/dL between two readings) at a real CGM's 5-minute period is a fall of
//!   more than 10 mg/dL a minute whenever the true glucose was above about 102 mg/dL (110 →
//!   48 is 12.4 a minute); from nearer the forged value, it is a credible fall and this check
//!   cannot tell it from a real one.
//!
//! [`Limits::max_fall_per_minute`]: vigil_model::quantity::Limits::max_fall_per_minute
//! - body temperature, 1 °C per minute: body temperature moves a few °C per hour even under
//!   active cooling or rewarming.
//!
//! Heart rate, pulse rate, SpO2, pressures, respiration and every setting have no bound (an
//! arrhythmia starts from one beat to the next; a probe re-seated steps at once; a setting is
//! changed at once): nothing is kept for them.
//!
//! Displayed values are rounded: two readings a few seconds apart may differ by one display
//! step although the quantity barely moved (0.1 °C, or 0.1 mmol/L = 1.8 mg/dL for a CGM set
//! to mmol/L, against 0.05 °C and 0.75 mg/dL credible in 3 s). So the change is reduced by
//! [`display_step`] before `check_change` judges it: one step is never evidence. (The simulator's
//! demo caps report periods at 15 s and starts each device's shortened period at once, so its
//! first two temperature readings can be 3 s apart and differ by 0.1 °C.)
//!
//! Per (device, quantity) the last *plausible* reading is kept: readings outside the absolute
//! limits never get here (see the parent module). Each reading is compared with it over the real
//! interval between their measurement times, whichever came first, so a reading that arrives out
//! of order is compared correctly; readings measured at the same instant (several readings in
//! one pack) are compared as if 1 s apart, as `check_change` does, so a sensor's own jitter is
//! not a change. The kept reading is then replaced by the newer of the two: after an impossible
//! step the new level is the reference, so a forged value held for an hour raises one alert as
//! it starts and one as it ends, not one a minute throughout (and a genuine artefact, such as a
//! probe re-seated, does not alert for ever).

use std::collections::HashMap;

use vigil_model::{Alert, AlertKind, DeviceId, Evidence, Phi, Quantity, Severity};

use super::Observed;

/// The last plausible reading of one quantity from one device.
struct LastPlausible {
    quantity: Quantity,
    value: f64,
    time_ms: i64,
}

/// One device's last plausible readings of its rate-bound quantities (at most two today).
#[derive(Default)]
struct DeviceReadings {
    /// When the device was last seen (event time, Unix ms).
    seen_ms: i64,
    last: Vec<LastPlausible>,
}

/// The impossible-change detection.
#[derive(Default)]
pub(super) struct ImpossibleChange {
    devices: HashMap<DeviceId, DeviceReadings>,
}

impl ImpossibleChange {
    /// Compares `reading` with the device's last plausible reading of its quantity; keeps the
    /// newer of the two.
    pub(super) fn observe(&mut self, reading: &Observed<'_>, alerts: &mut Vec<Alert>) {
        let limits = reading.quantity.spec().limits;
        if limits.max_change_per_minute.is_none() {
            return;
        }
        // Looked up before inserting, so that the hot path clones no identifier.
        if !self.devices.contains_key(reading.device) {
            self.devices
                .insert(reading.device.clone(), DeviceReadings::default());
        }
        let Some(device) = self.devices.get_mut(reading.device) else {
            return;
        };
        device.seen_ms = device.seen_ms.max(reading.at.unix_millis());
        let Some(last) = device
            .last
            .iter_mut()
            .find(|last| last.quantity == reading.quantity)
        else {
            // The first reading: nothing to compare with yet.
            device.last.push(LastPlausible {
                quantity: reading.quantity,
                value: reading.value,
                time_ms: reading.time_ms,
            });
            return;
        };
        let elapsed_ms = reading.time_ms.abs_diff(last.time_ms);
        let change = reading.value - last.value;
        let beyond_rounding =
            change.signum() * (change.abs() - display_step(reading.quantity)).max(0.0);
        let judged = last.value + beyond_rounding;
        if reading
            .quantity
            .check_change(last.value, judged, elapsed_ms)
            .is_err()
        {
            // The bound `check_change` applied, named for the evidence.
            let name = if judged < last.value && limits.max_fall_per_minute.is_some() {
                "max_fall_per_minute"
            } else {
                "max_change_per_minute"
            };
            let bound = limits.change_bound(last.value, judged).unwrap_or_default();
            alerts.push(alert(reading, last.value, elapsed_ms, (name, bound)));
        }
        if reading.time_ms >= last.time_ms {
            last.value = reading.value;
            last.time_ms = reading.time_ms;
        }
    }

    /// Forgets devices last seen before `cutoff_ms`.
    pub(super) fn forget_before(&mut self, cutoff_ms: i64) {
        self.devices.retain(|_, device| device.seen_ms >= cutoff_ms);
    }

    /// Devices with state.
    pub(super) fn devices(&self) -> usize {
        self.devices.len()
    }
}

/// The coarsest display step of a rate-bound quantity among the units devices report it in,
/// canonical unit: the change two rounded readings may show without any change of the body.
///
/// Interstitial glucose: CGMs display whole mg/dL or mmol/L to one decimal (Dexcom, FreeStyle
/// Libre), so 0.1 mmol/L. Body temperature: thermometers display 0.1 °C or 0.1 °F, so 0.1 °C.
/// Converted with the vocabulary's own conversions; 0 for any other quantity.
pub fn display_step(quantity: Quantity) -> f64 {
    let step = match quantity {
        Quantity::GlucoseInterstitial => quantity.to_canonical(0.1, "mmol/L"),
        Quantity::BodyTemperature => quantity.to_canonical(0.1, "Cel"),
        _ => return 0.0,
    };
    step.unwrap_or(0.0)
}

/// `bound`: the vocabulary's bound that was crossed, by name, and its value per minute.
fn alert(
    reading: &Observed<'_>,
    previous: f64,
    elapsed_ms: u64,
    bound: (&'static str, f64),
) -> Alert {
    Alert {
        time: reading.at,
        // A value the body cannot have produced is a broken or lying sender, and a reading like
        // a fake hypoglycaemia invites treatment: look now.
        severity: Severity::High,
        kind: AlertKind::ImpossibleChange,
        device: Some(reading.device.clone()),
        patient: Some(reading.patient.clone()),
        evidence: vec![
            Evidence::Fact {
                name: "quantity".into(),
                value: reading.quantity.spec().key.into(),
            },
            Evidence::Clinical {
                quantity: reading.quantity,
                value: Phi::new(previous),
            },
            Evidence::Clinical {
                quantity: reading.quantity,
                value: Phi::new(reading.value),
            },
            Evidence::Fact {
                name: "elapsed_ms".into(),
                value: elapsed_ms.to_string(),
            },
            // A constant of the vocabulary, not a patient's value.
            Evidence::Fact {
                name: bound.0.into(),
                value: bound.1.to_string(),
            },
        ],
        // The device's reports are not measurements: its reporting messages are spoofed (or it
        // is broken). What is detected is the message, not yet its effect on anyone's view.
        attack_technique: Some("T0856".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::{DeviceClass, Quantity};

    use super::super::testing::{fact, of_kind, pack, run};
    use super::*;
    use crate::{Event, Reading};
    use std::collections::HashMap;

    const CGM: DeviceClass = DeviceClass::ContinuousGlucoseMonitor;
    const GLUCOSE: Quantity = Quantity::GlucoseInterstitial;
    const TEMPERATURE: Quantity = Quantity::BodyTemperature;

    fn cgm(ms: i64, value: f64) -> Event {
        pack(ms, "cgm-1", CGM, "p-1", &[(GLUCOSE, value)])
    }

    #[test]
    fn a_cgm_step_from_110_to_50_in_15_s_is_an_impossible_change() {
        let alerts = run(&[cgm(0, 110.0), cgm(15_000, 50.0)]);
        let changes = of_kind(&alerts, AlertKind::ImpossibleChange);
        assert_eq!(changes.len(), 1, "{alerts:?}");
        let alert = changes[0];
        assert_eq!(alert.device.as_ref().unwrap().as_str(), "cgm-1");
        assert_eq!(alert.patient.as_ref().unwrap().as_str(), "p-1");
        assert_eq!(alert.attack_technique.as_deref(), Some("T0856"));
        assert_eq!(fact(alert, "elapsed_ms"), Some("15000"));
        assert_eq!(fact(alert, "quantity"), Some("glucose_interstitial"));
        let values: Vec<f64> = alert
            .evidence
            .iter()
            .filter_map(|e| match e {
                Evidence::Clinical { value, .. } => Some(*value.expose()),
                Evidence::Fact { .. } => None,
            })
            .collect();
        assert_eq!(values, [110.0, 50.0]);
    }

    #[test]
    fn the_fake_hypoglycaemia_alerts_as_it_starts_and_as_it_ends() {
        // Normal readings every 15 s, then the simulator's forged 48, 50, 52, 48, … for a
        // minute and a quarter, then normal again.
        let values = [110.0, 111.0, 48.0, 50.0, 52.0, 48.0, 50.0, 112.0, 111.0];
        let events: Vec<Event> = values
            .iter()
            .zip(0i64..)
            .map(|(&v, i)| cgm(i * 15_000, v))
            .collect();
        let alerts = run(&events);
        let times: Vec<i64> = alerts.iter().map(|a| a.time.unix_millis()).collect();
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert_eq!(times[1] - times[0], 5 * 15_000);
    }

    #[test]
    fn at_a_real_cgm_period_a_fall_faster_than_tissues_take_glucose_up_alerts() {
        // Five minutes apart: 110 to 48 is 12.4 mg/dL a minute (11.9 beyond one display step),
        // more than the 10 a fall may be; 110 to 65 (9 a minute) is a credible fall, and
        // 50 to 110 (12 a minute) a credible rise (dextrose).
        let alerts = run(&[cgm(0, 110.0), cgm(300_000, 48.0)]);
        let changes = of_kind(&alerts, AlertKind::ImpossibleChange);
        assert_eq!(changes.len(), 1, "{alerts:?}");
        assert_eq!(fact(changes[0], "max_fall_per_minute"), Some("10"));
        assert_eq!(fact(changes[0], "max_change_per_minute"), None);
        assert!(run(&[cgm(0, 110.0), cgm(300_000, 65.0)]).is_empty());
        assert!(run(&[cgm(0, 50.0), cgm(300_000, 110.0)]).is_empty());
        // A rise beyond 15 a minute names the rise bound.
        let alerts = run(&[cgm(0, 50.0), cgm(300_000, 140.0)]);
        assert_eq!(fact(&alerts[0], "max_change_per_minute"), Some("15"));
    }

    /// Two simulated days of 24 type 1 diabetic inpatients on CGMs at the real 5-minute period,
    /// with clinical events (hypoglycaemias among them), meals and insulin: every true reading
    /// passes, and a forged low (48–52 mg/dL, the simulator's fake hypoglycaemia) put in place
    /// of a reading every two hours is caught exactly when the fall from the reading before is
    /// faster than the bound: how often that is, is the recall of this check at real periods.
    #[test]
    fn forged_lows_among_simulated_diabetics_are_caught_when_the_fall_is_not_credible() {
        use vigil_sim::{DeviceMix, Population, Ward, WardConfig};
        let mut ward = Ward::new(
            2,
            WardConfig {
                patients: 24,
                devices: DeviceMix::Uniform(vec![CGM]),
                population: Population {
                    type1_diabetes: 1.0,
                    pacemaker: 0.0,
                },
                events_per_patient_day: 6.0,
                ..WardConfig::default()
            },
        )
        .unwrap();
        let mut series: HashMap<usize, Vec<(i64, f64)>> = HashMap::new();
        let mut due = Vec::new();
        for _ in 0..(2 * 86_400 / 60) {
            ward.advance(60.0);
            due.clear();
            ward.collect_due(&mut due);
            for d in &due {
                if d.reading.quantity == GLUCOSE {
                    #[allow(clippy::cast_possible_truncation)]
                    let ms = (d.reading.time_offset * 1000.0).round() as i64;
                    series
                        .entry(d.device)
                        .or_default()
                        .push((ms, d.reading.canonical_value()));
                }
            }
        }
        let (mut forged, mut caught, mut below_102) = (0, 0, 0);
        for (device, readings) in &series {
            let name = format!("cgm-{device}");
            let event =
                |&(ms, value): &(i64, f64)| pack(ms, &name, CGM, "p-1", &[(GLUCOSE, value)]);
            let truth: Vec<Event> = readings.iter().map(event).collect();
            assert!(run(&truth).is_empty(), "a true series alerted: {name}");
            for (n, pair) in readings.windows(2).enumerate().step_by(24) {
                let low = 48.0 + 2.0 * (n % 3) as f64;
                let alerts = run(&[event(&pair[0]), event(&(pair[1].0, low))]);
                forged += 1;
                caught += usize::from(!alerts.is_empty());
                below_102 += usize::from(pair[0].1 < 102.0);
                let minutes = (pair[1].0 - pair[0].0) as f64 / 60_000.0;
                let beyond = pair[0].1 - low - display_step(GLUCOSE);
                assert_eq!(
                    !alerts.is_empty(),
                    beyond > 10.0 * minutes,
                    "{pair:?} -> {low}"
                );
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let recall = caught as f64 / forged as f64;
        eprintln!(
            "forged lows: {forged}, caught {caught} (recall {recall:.3}); \
             {below_102} from a true glucose under 102 mg/dL"
        );
        assert!(forged > 400, "{forged}");
        assert!(recall > 0.5, "{recall}");
    }

    #[test]
    fn a_cgm_decline_of_2_per_minute_does_not_alert() {
        // Every 15 s for an hour, and at the usual 5-minute period, whole mg/dL as a CGM shows.
        let fast: Vec<Event> = (0..240)
            .map(|i| cgm(i * 15_000, (180.0 - 0.5 * i as f64).round()))
            .collect();
        assert!(run(&fast).is_empty());
        let usual: Vec<Event> = (0..12)
            .map(|i| cgm(i * 300_000, 180.0 - 10.0 * i as f64))
            .collect();
        assert!(run(&usual).is_empty());
    }

    #[test]
    fn one_display_step_between_close_readings_does_not_alert() {
        // 0.1 °C in 3 s, and 0.1 mmol/L (1.8 mg/dL) in 3 s: rounding, not a change.
        let thermo = |ms, v| {
            pack(
                ms,
                "thermo-1",
                DeviceClass::Thermometer,
                "p-1",
                &[(TEMPERATURE, v)],
            )
        };
        assert!(run(&[thermo(0, 36.1), thermo(3000, 36.2)]).is_empty());
        let step = GLUCOSE.to_canonical(0.1, "mmol/L").unwrap();
        assert!(run(&[cgm(0, 108.1), cgm(3000, 108.1 + step)]).is_empty());
        // Two steps in 3 s is more than rounding and more than the body: 0.2 °C.
        assert_eq!(run(&[thermo(0, 36.1), thermo(3000, 36.3)]).len(), 1);
        assert_eq!(display_step(Quantity::HeartRate), 0.0);
    }

    #[test]
    fn the_first_reading_has_nothing_to_compare_with() {
        assert!(run(&[cgm(0, 50.0)]).is_empty());
    }

    #[test]
    fn readings_of_one_instant_are_compared_as_one_second_apart() {
        // Two glucose values of one instant in one pack: 0.2 mg/dL apart is within a second's
        // credible change (0.25), 40 mg/dL is not; neither is divided by a zero interval.
        let jitter = pack(
            0,
            "cgm-1",
            CGM,
            "p-1",
            &[(GLUCOSE, 110.0), (GLUCOSE, 110.2)],
        );
        assert!(run(&[jitter]).is_empty());
        let step = pack(0, "cgm-1", CGM, "p-1", &[(GLUCOSE, 110.0), (GLUCOSE, 70.0)]);
        assert_eq!(run(&[step]).len(), 1);
    }

    #[test]
    fn out_of_order_readings_are_compared_over_the_real_interval() {
        // The reading of 10 minutes ago arrives after the current one: 30 mg/dL in 10 minutes
        // is credible, and the newer reading stays the reference.
        let mut late = cgm(600_000, 120.0);
        if let Event::Stored { readings, .. } = &mut late {
            readings[0] = Reading {
                time: super::super::testing::at(0),
                ..readings[0].clone()
            };
        }
        let alerts = run(&[cgm(590_000, 150.0), late, cgm(605_000, 149.0)]);
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn implausible_values_are_neither_compared_nor_kept() {
        // A thermometer reporting 80 °C (flagged as implausible) between two normal readings a minute
        // apart: the normal ones are compared with each other, not with it.
        let thermo = |ms, v| {
            pack(
                ms,
                "thermo-1",
                DeviceClass::Thermometer,
                "p-1",
                &[(TEMPERATURE, v)],
            )
        };
        let alerts = run(&[thermo(0, 37.0), thermo(30_000, 80.0), thermo(60_000, 37.1)]);
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn quantities_that_may_step_at_once_never_alert() {
        let monitor = |ms, v| {
            pack(
                ms,
                "mon-1",
                DeviceClass::BedsideMonitor,
                "p-1",
                &[(Quantity::HeartRate, v)],
            )
        };
        assert!(run(&[monitor(0, 60.0), monitor(1000, 180.0)]).is_empty());
    }

    #[test]
    fn each_device_is_compared_with_itself_only() {
        let alerts = run(&[
            cgm(0, 110.0),
            pack(15_000, "cgm-2", CGM, "p-2", &[(GLUCOSE, 50.0)]),
        ]);
        assert!(alerts.is_empty(), "{alerts:?}");
    }
}
