//! Relayed readings: one measurement that reaches the hub by two paths must arrive the same.
//!
//! A closed-loop insulin pump (Tandem t:slim X2 with Control-IQ, Medtronic MiniMed 780G,
//! Omnipod 5) receives each of its patient's CGM readings directly from the sensor over its own
//! radio, doses insulin on it, and reports it with its own history; the same reading also
//! reaches the hub on the CGM's own path (its transmitter's gateway or phone app). The two are
//! copies of one number. A forgery on either path (a hypoglycaemia the patient does not have, to
//! provoke treatment and a suspended pump; a hyperglycaemia, to provoke a bolus) differs from its
//! copy on the other path at once, however credible its value. That is what the rate-of-change
//! rule ([`super::change`]) cannot see at a real CGM period: a forged 50 mg/dL five minutes
//! after a true 95 is a credible fall.
//!
//! A new reading of a relayed quantity from one of the pair's classes is compared with the
//! patient's reading from a device of the other class whose measurement time is nearest,
//! within [`MATCH_MS`]; a copy carries the sensor's own measurement time, and CGMs measure at
//! least a minute apart (FreeStyle Libre 3 every minute, Dexcom G6/G7 and Guardian 4 every 5),
//! so the nearest reading within 20 s is the same measurement. The two may differ by at most
//! the relay's tolerance: for glucose [`GLUCOSE_DIFFERENCE`], more than two devices showing one
//! sensor value in different units can differ by rounding (0.1 mmol/L is 1.8 mg/dL: half of it
//! plus half of 1 mg/dL is 1.4). Beyond it, the alert is critical: insulin is dosed on this
//! value. It comes when the second copy arrives, so its latency is the slower path's.
//!
//! Which path lies cannot be told from two copies: the alert names the patient, with
//! `device: None` (as [`super::cross_signal`] does), and both devices as facts.
//!
//! Not alerted here: a reading with no copy within [`MATCH_MS`] (a path that is slow, down, or
//! catching up later; the sequence and rate detectors watch paths that go quiet). So an
//! attacker who also moves the forged reading's time away from the true one's escapes this
//! rule and meets only the rate-of-change rule; the pump's copy of the true reading is still
//! stored and shown beside the forgery.

use std::collections::HashMap;

use vigil_model::device::{RELAYS, Relay};
use vigil_model::{
    Alert, AlertKind, DeviceClass, DeviceId, Evidence, PatientId, Phi, Quantity, Severity,
};

use super::Observed;

/// A copy is the same measurement when its measurement time is at most this far from the
/// original's, ms: copies carry the sensor's time, and sensors measure a minute or more apart.
pub const MATCH_MS: i64 = 20_000;
/// Two copies of one sensor glucose may differ by at most this much, mg/dL: one display step of
/// mmol/L (0.1 mmol/L = 1.8 mg/dL), more than two roundings of one value can part them.
pub const GLUCOSE_DIFFERENCE: f64 = 2.0;
/// Readings kept per device and relayed quantity: a copy more than this many readings late is
/// not compared (8 readings: 40 minutes of a 5-minute CGM, 8 of a 1-minute one).
pub const KEEP_PER_DEVICE: usize = 8;

/// How far apart two copies of `quantity` may be, in its canonical unit: for glucose
/// [`GLUCOSE_DIFFERENCE`]; for a quantity relayed later, one step of its display resolution.
fn tolerance(quantity: Quantity) -> f64 {
    match quantity {
        Quantity::GlucoseInterstitial => GLUCOSE_DIFFERENCE,
        other => super::change::display_step(other),
    }
}

/// The relay (`vigil_model::device::RELAYS`) `reading` takes part in, and the class of its
/// counterpart.
fn relay_of(reading: &Observed<'_>) -> Option<(&'static Relay, DeviceClass)> {
    RELAYS.iter().find_map(|relay| {
        if relay.quantity != reading.quantity {
            None
        } else if reading.class == relay.source {
            Some((relay, relay.relaying))
        } else if reading.class == relay.relaying {
            Some((relay, relay.source))
        } else {
            None
        }
    })
}

/// One reading of a relayed quantity.
struct Copy {
    quantity: Quantity,
    device: DeviceId,
    class: DeviceClass,
    value: f64,
    time_ms: i64,
    /// Event time it arrived, for forgetting.
    seen_ms: i64,
}

/// Relayed readings compared with their originals.
#[derive(Default)]
pub(super) struct Relayed {
    patients: HashMap<PatientId, Vec<Copy>>,
}

impl Relayed {
    /// Compares `reading` with its copy from the other path, if it is one of a relay's and the
    /// copy has arrived.
    pub(super) fn observe(&mut self, reading: &Observed<'_>, alerts: &mut Vec<Alert>) {
        let Some((relay, counterpart)) = relay_of(reading) else {
            return;
        };
        let copies = self.patients.entry(reading.patient.clone()).or_default();
        let same_device = |c: &&Copy| c.device == *reading.device && c.quantity == relay.quantity;
        if copies
            .iter()
            .filter(same_device)
            .any(|c| c.time_ms == reading.time_ms)
        {
            // A resend or a replay of a reading already compared (the sequence detector's).
            return;
        }
        let nearest = copies
            .iter()
            .filter(|c| c.class == counterpart && c.quantity == relay.quantity)
            .filter(|c| c.time_ms.abs_diff(reading.time_ms) <= MATCH_MS.unsigned_abs())
            .min_by_key(|c| c.time_ms.abs_diff(reading.time_ms));
        if let Some(other) = nearest
            && (other.value - reading.value).abs() > tolerance(relay.quantity)
        {
            alerts.push(alert(relay, reading, other));
        }
        if copies.iter().filter(same_device).count() >= KEEP_PER_DEVICE
            && let Some(oldest) = copies
                .iter()
                .enumerate()
                .filter(|(_, c)| same_device(c))
                .min_by_key(|(_, c)| c.time_ms)
                .map(|(i, _)| i)
        {
            copies.swap_remove(oldest);
        }
        copies.push(Copy {
            quantity: relay.quantity,
            device: reading.device.clone(),
            class: reading.class,
            value: reading.value,
            time_ms: reading.time_ms,
            seen_ms: reading.at.unix_millis(),
        });
    }

    /// Forgets readings that arrived before `cutoff_ms`, and patients with none.
    pub(super) fn forget_before(&mut self, cutoff_ms: i64) {
        self.patients.retain(|_, copies| {
            copies.retain(|c| c.seen_ms >= cutoff_ms);
            !copies.is_empty()
        });
    }

    /// Patients with state.
    pub(super) fn patients(&self) -> usize {
        self.patients.len()
    }
}

/// The alert for `reading` and its differing copy `other`: source first, relaying second.
fn alert(relay: &Relay, reading: &Observed<'_>, other: &Copy) -> Alert {
    let new = (reading.device, reading.value);
    let old = (&other.device, other.value);
    let (source, relaying) = if reading.class == relay.source {
        (new, old)
    } else {
        (old, new)
    };
    let fact = |name: &str, value: String| Evidence::Fact {
        name: name.into(),
        value,
    };
    Alert {
        time: reading.at,
        severity: Severity::Critical,
        kind: AlertKind::CrossSignalMismatch,
        // Either path may be the forged one: suppression and attention go to the patient.
        device: None,
        patient: Some(reading.patient.clone()),
        evidence: vec![
            fact("comparison", format!("{}_relay", relay.quantity.spec().key)),
            fact("first_device", source.0.as_str().into()),
            Evidence::Clinical {
                quantity: relay.quantity,
                value: Phi::new(source.1),
            },
            fact("second_device", relaying.0.as_str().into()),
            Evidence::Clinical {
                quantity: relay.quantity,
                value: Phi::new(relaying.1),
            },
            fact(
                "measured_apart_ms",
                reading.time_ms.abs_diff(other.time_ms).to_string(),
            ),
        ],
        attack_technique: Some("T0856".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use vigil_model::{AlertKind, DeviceClass, Quantity, Severity};

    use super::super::testing::{fact, of_kind, pack, run};
    use crate::Event;

    const CGM: DeviceClass = DeviceClass::ContinuousGlucoseMonitor;
    const PUMP: DeviceClass = DeviceClass::InsulinPump;
    const GLUCOSE: Quantity = Quantity::GlucoseInterstitial;

    /// A reading measured at `measured` ms, received at `received` ms.
    fn glucose(received: i64, measured: i64, device: &str, class: DeviceClass, v: f64) -> Event {
        let mut event = pack(received, device, class, "p-1", &[(GLUCOSE, v)]);
        if let Event::Stored { readings, .. } = &mut event {
            readings[0].time = super::super::testing::at(measured);
        }
        event
    }

    fn cgm(ms: i64, v: f64) -> Event {
        glucose(ms, ms, "cgm-1", CGM, v)
    }

    /// The pump's copy of the reading measured at `ms`, received half a second after it.
    fn pump(ms: i64, v: f64) -> Event {
        glucose(ms + 500, ms, "pump-1", PUMP, v)
    }

    const FIVE_MIN: i64 = 300_000;

    #[test]
    fn a_forged_low_on_the_cgm_path_alerts_when_the_pump_relays_the_truth() {
        // 95 mg/dL, then a forged 50 five minutes later: a credible fall for the change rule.
        let alerts = run(&[
            cgm(0, 95.0),
            pump(0, 95.0),
            cgm(FIVE_MIN, 50.0),
            pump(FIVE_MIN, 92.0),
        ]);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let alert = &alerts[0];
        assert_eq!(alert.kind, AlertKind::CrossSignalMismatch);
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(alert.device, None);
        assert_eq!(alert.patient.as_ref().unwrap().as_str(), "p-1");
        assert_eq!(alert.time, super::super::testing::at(FIVE_MIN + 500));
        assert_eq!(
            fact(alert, "comparison"),
            Some("glucose_interstitial_relay")
        );
        assert_eq!(fact(alert, "first_device"), Some("cgm-1"));
        assert_eq!(fact(alert, "second_device"), Some("pump-1"));
        assert_eq!(fact(alert, "measured_apart_ms"), Some("0"));
    }

    #[test]
    fn it_alerts_whichever_copy_arrives_second_and_whichever_path_is_forged() {
        // The pump's copy first, the forged CGM reading after it.
        let forged = glucose(2_000, 0, "cgm-1", CGM, 48.0);
        let alerts = run(&[pump(0, 110.0), forged]);
        assert_eq!(of_kind(&alerts, AlertKind::CrossSignalMismatch).len(), 1);
        // A forged high on the pump's path (to provoke a bolus).
        let alerts = run(&[cgm(0, 110.0), pump(0, 300.0)]);
        assert_eq!(of_kind(&alerts, AlertKind::CrossSignalMismatch).len(), 1);
        assert_eq!(fact(&alerts[0], "first_device"), Some("cgm-1"));
    }

    #[test]
    fn copies_equal_within_rounding_do_not_alert() {
        // A day of readings every 5 minutes, the pump's copy a little later, once the same
        // value and once within the tolerance (a CGM in mmol/L, a pump in mg/dL).
        let mut events = Vec::new();
        for i in 0..288 {
            let v = 120.0 + 60.0 * (f64::from(i) / 20.0).sin();
            events.push(cgm(i64::from(i) * FIVE_MIN, v));
            let rounded = if i % 2 == 0 { v } else { v + 1.9 };
            events.push(pump(i64::from(i) * FIVE_MIN, rounded));
        }
        assert!(run(&events).is_empty());
    }

    #[test]
    fn readings_of_different_measurements_are_not_compared() {
        // The pump's copy of the previous reading arrives after the CGM's next one: its time
        // matches the previous reading, not the new one.
        let alerts = run(&[
            cgm(0, 140.0),
            cgm(FIVE_MIN, 100.0),
            glucose(FIVE_MIN + 1_000, 0, "pump-1", PUMP, 140.0),
        ]);
        assert!(alerts.is_empty(), "{alerts:?}");
        // Measured 25 s apart is not the same measurement.
        assert!(run(&[cgm(0, 140.0), pump(25_000, 100.0)]).is_empty());
        // 15 s apart is (a pump that stamps the copy when it receives it).
        assert_eq!(run(&[cgm(0, 140.0), pump(15_000, 100.0)]).len(), 1);
    }

    #[test]
    fn other_pairs_of_devices_are_not_relays() {
        // Two CGMs of one patient measure independently (different sites, different sensors).
        let second_cgm = glucose(500, 0, "cgm-2", CGM, 80.0);
        assert!(run(&[cgm(0, 120.0), second_cgm]).is_empty());
        // Another patient's pump.
        let mut other = pack(500, "pump-2", PUMP, "p-2", &[(GLUCOSE, 60.0)]);
        if let Event::Stored { readings, .. } = &mut other {
            readings[0].time = super::super::testing::at(0);
        }
        assert!(run(&[cgm(0, 120.0), other]).is_empty());
    }

    #[test]
    fn a_resent_reading_is_compared_once() {
        let resent = glucose(1_000, 0, "cgm-1", CGM, 50.0);
        let alerts = run(&[cgm(0, 50.0), pump(0, 95.0), resent]);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
    }

    /// The change rule's offline measurement (`change::tests::forged_lows_…`: recall 0.69 at
    /// the real 5-minute period) again, on type 1 diabetics whose pumps relay their CGM's
    /// readings, as the simulator's do: every forged low that differs from the truth is caught,
    /// when the pump's copy of the true reading arrives, and two days of true readings raise
    /// nothing.
    #[test]
    fn every_forged_low_is_caught_when_a_pump_relays_the_true_reading() {
        use std::collections::BTreeMap;
        use vigil_sim::{DeviceMix, Population, Ward, WardConfig};
        let mut ward = Ward::new(
            2,
            WardConfig {
                patients: 24,
                devices: DeviceMix::Uniform(vec![CGM, PUMP]),
                population: Population {
                    type1_diabetes: 1.0,
                    pacemaker: 0.0,
                },
                events_per_patient_day: 6.0,
                ..WardConfig::default()
            },
        )
        .unwrap();
        // Per measurement time: the CGM's reading and the pump's copy.
        type Copies = BTreeMap<i64, (Option<f64>, Option<f64>)>;
        let mut series: BTreeMap<usize, Copies> = BTreeMap::new();
        let mut due = Vec::new();
        for _ in 0..(2 * 86_400 / 60) {
            ward.advance(60.0);
            due.clear();
            ward.collect_due(&mut due);
            for d in due.iter().filter(|d| d.reading.quantity == GLUCOSE) {
                let class = ward.devices()[d.device].class();
                let patient = ward.devices()[d.device].patient();
                #[allow(clippy::cast_possible_truncation)]
                let ms = (d.reading.time_offset * 1000.0).round() as i64;
                let entry = series.entry(patient).or_default().entry(ms).or_default();
                let value = Some(d.reading.canonical_value());
                if class == CGM {
                    entry.0 = value
                } else {
                    entry.1 = value
                }
            }
        }
        let (mut forged, mut caught, mut truthful) = (0, 0, 0);
        for readings in series.values() {
            let pairs: Vec<(i64, f64, f64)> = readings
                .iter()
                .map(|(&ms, &(cgm, pump))| (ms, cgm.unwrap(), pump.unwrap()))
                .collect();
            let events = |forge: Option<usize>| -> Vec<Event> {
                let mut events = Vec::new();
                for (n, &(ms, truth, copy)) in pairs.iter().enumerate() {
                    let sent = if forge == Some(n) {
                        48.0 + 2.0 * (n % 3) as f64
                    } else {
                        truth
                    };
                    events.push(cgm(ms, sent));
                    events.push(pump(ms, copy));
                }
                events
            };
            assert!(run(&events(None)).is_empty(), "a true series alerted");
            for n in (1..pairs.len()).step_by(24) {
                let window = events(Some(n));
                let alerts = run(&window[2 * (n - 1)..2 * (n + 1)]);
                forged += 1;
                let relay = alerts
                    .iter()
                    .any(|a| fact(a, "comparison") == Some("glucose_interstitial_relay"));
                caught += usize::from(relay);
                // A "forgery" within rounding of the truth tells the truth (the patient is
                // hypoglycaemic): nothing to catch, and nothing may be raised.
                let low = 48.0 + 2.0 * (n % 3) as f64;
                if (pairs[n].1 - low).abs() <= super::GLUCOSE_DIFFERENCE {
                    assert!(!relay, "{:?}", pairs[n]);
                    forged -= 1;
                    truthful += 1;
                }
            }
        }
        eprintln!(
            "forged lows with a relaying pump: {forged}, caught {caught} \
             ({truthful} more replaced a true glucose within 2 mg/dL of the forged value)"
        );
        assert!(forged > 400, "{forged}");
        assert_eq!(caught, forged);
    }

    #[test]
    fn state_is_bounded_per_device() {
        let mut relayed = super::Relayed::default();
        let events: Vec<Event> = (0..100).map(|i| cgm(i * 60_000, 100.0)).collect();
        let mut alerts = Vec::new();
        for event in &events {
            let Event::Stored {
                at,
                device,
                class,
                patient,
                readings,
                ..
            } = event
            else {
                unreachable!()
            };
            relayed.observe(
                &super::Observed {
                    at: *at,
                    device,
                    class: *class,
                    patient,
                    quantity: GLUCOSE,
                    value: *readings[0].value.expose(),
                    time_ms: readings[0].time.unix_millis(),
                },
                &mut alerts,
            );
        }
        assert_eq!(relayed.patients.values().map(Vec::len).sum::<usize>(), 8);
        relayed.forget_before(i64::MAX);
        assert_eq!(relayed.patients(), 0);
    }
}
