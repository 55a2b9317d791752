//! Physiological plausibility: impossible changes, signals of one patient that contradict each
//! other, and exactly repeated sequences. (A value outside the limits of the possible is stored
//! flagged by ingest and alerted by the [`limits`](super::limits) detector.)
//!
//! Four detections, each in its own module, see every plausible reading of every stored pack:
//!
//! - [`change`]: a device's reading that moved from its previous one faster than the
//!   quantity can change ([`vigil_model::quantity::Limits::max_change_per_minute`]):
//!   [`AlertKind::ImpossibleChange`](vigil_model::AlertKind::ImpossibleChange).
//! - [`cross_signal`]: two devices of one patient measuring the same physiology that disagree,
//!   beyond what measurement error and physiology allow, for a sustained time:
//!   [`AlertKind::CrossSignalMismatch`](vigil_model::AlertKind::CrossSignalMismatch).
//! - [`relay`]: one measurement that reaches the hub by two paths (a CGM's reading, and the
//!   copy its patient's insulin pump relays) arriving different:
//!   [`AlertKind::CrossSignalMismatch`](vigil_model::AlertKind::CrossSignalMismatch).
//! - [`repeats`]: a device's recent readings repeating, value for value, a varying run it
//!   sent minutes before (a replayed recording or an injected loop):
//!   [`AlertKind::RepeatedValues`](vigil_model::AlertKind::RepeatedValues).
//!
//! Readings outside the absolute limits (`Quantity::check_range`) raise `ImplausibleValue`
//! through the limits detector; they take part in none of the four, so that one forged
//! impossible value does not also poison the comparisons of the plausible ones around it.
//!
//! State is per device and per patient, small and bounded (see each module), and a device's or
//! a patient's state is forgotten [`FORGET_AFTER_MS`] after it was last seen, by event time.
//! Clinical values are kept only as numbers to compute with; they leave the detector only as
//! [`Evidence::Clinical`](vigil_model::Evidence::Clinical), never in a fact or in `Debug`.

pub mod change;
pub mod cross_signal;
pub mod relay;
pub mod repeats;

use vigil_model::{Alert, DeviceClass, DeviceId, PatientId, Quantity, Timestamp};

use crate::{Detector, Event};

use change::ImpossibleChange;
use cross_signal::CrossSignal;
use relay::Relayed;
use repeats::RepeatedSequence;

/// State of a device (or a patient) not seen for this long, by event time, is forgotten: 10
/// minutes. Every continuous device reports at least every 5 minutes (its battery, if nothing
/// else), so only a device that is switched off, unplugged or reassigned is forgotten.
pub const FORGET_AFTER_MS: i64 = 10 * 60_000;

/// How often, by event time, idle state is looked for: once a minute, so that forgetting costs
/// nothing per event.
const SWEEP_EVERY_MS: i64 = 60_000;

/// One plausible reading as the detections see it: the stored pack's context and the value in
/// its canonical unit, exposed for computation only.
#[derive(Clone, Copy)]
struct Observed<'a> {
    /// When the hub received the pack: the time of any alert, and of forgetting.
    at: Timestamp,
    device: &'a DeviceId,
    /// The device's registered class.
    class: DeviceClass,
    patient: &'a PatientId,
    quantity: Quantity,
    /// The value, canonical unit (PHI: never formatted, only compared).
    value: f64,
    /// When the device measured it, Unix milliseconds: the time for rates and pairing.
    time_ms: i64,
}

/// The plausibility detector: impossible changes, cross-signal mismatches, relayed readings
/// that differ, repeated sequences.
#[derive(Default)]
pub struct Plausibility {
    change: ImpossibleChange,
    cross_signal: CrossSignal,
    relayed: Relayed,
    repeats: RepeatedSequence,
    /// The latest event time seen, Unix milliseconds.
    latest_ms: i64,
    /// When (event time) to look for idle state next.
    next_sweep_ms: i64,
}

impl std::fmt::Debug for Plausibility {
    /// Sizes only: the state holds clinical values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plausibility")
            .field("change_devices", &self.change.devices())
            .field("cross_signal_patients", &self.cross_signal.patients())
            .field("relay_patients", &self.relayed.patients())
            .field("repeat_devices", &self.repeats.devices())
            .finish_non_exhaustive()
    }
}

impl Plausibility {
    /// Forgets what was last seen [`FORGET_AFTER_MS`] before the latest event, at most once per
    /// [`SWEEP_EVERY_MS`] of event time.
    fn forget_idle(&mut self, now_ms: i64) {
        self.latest_ms = self.latest_ms.max(now_ms);
        if self.latest_ms < self.next_sweep_ms {
            return;
        }
        self.next_sweep_ms = self.latest_ms + SWEEP_EVERY_MS;
        let cutoff_ms = self.latest_ms - FORGET_AFTER_MS;
        self.change.forget_before(cutoff_ms);
        self.cross_signal.forget_before(cutoff_ms);
        self.relayed.forget_before(cutoff_ms);
        self.repeats.forget_before(cutoff_ms);
    }
}

impl Detector for Plausibility {
    fn name(&self) -> &'static str {
        "plausibility"
    }

    fn observe(&mut self, event: &Event, alerts: &mut Vec<Alert>) {
        let Event::Stored {
            at,
            device,
            class,
            patient,
            readings,
            ..
        } = event
        else {
            return;
        };
        for reading in readings {
            let value = *reading.value.expose();
            // Alerted as ImplausibleValue by the limits detector: neither a basis nor a subject of
            // comparison (NaN passes `check_range`, hence the explicit test).
            if !value.is_finite() || reading.quantity.check_range(value).is_err() {
                continue;
            }
            let observed = Observed {
                at: *at,
                device,
                class: *class,
                patient,
                quantity: reading.quantity,
                value,
                time_ms: reading.time.unix_millis(),
            };
            self.change.observe(&observed, alerts);
            self.cross_signal.observe(&observed, alerts);
            self.relayed.observe(&observed, alerts);
            self.repeats.observe(&observed, alerts);
        }
        self.forget_idle(at.unix_millis());
    }
}

/// Events and runs for the tests of this module and its children.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod testing {
    use vigil_model::{Alert, AlertKind, DeviceClass, DeviceId, PatientId, Phi, Quantity};
    use vigil_model::{Evidence, Timestamp};

    use super::Plausibility;
    use crate::{Detector, Event, Reading};

    /// The instant tests count from, Unix milliseconds.
    pub(crate) const T0: i64 = 1_800_000_000_000;

    /// A time `ms` after [`T0`].
    pub(crate) fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(T0 + ms).unwrap()
    }

    /// A pack from `device` of `patient`, received and measured `ms` after [`T0`].
    pub(crate) fn pack(
        ms: i64,
        device: &str,
        class: DeviceClass,
        patient: &str,
        values: &[(Quantity, f64)],
    ) -> Event {
        Event::Stored {
            at: at(ms),
            device: DeviceId::new(device).unwrap(),
            class,
            patient: PatientId::new(patient).unwrap(),
            sequence: u64::try_from(ms).unwrap_or(0),
            bytes: 200,
            readings: values
                .iter()
                .map(|&(quantity, value)| Reading {
                    quantity,
                    value: Phi::new(value),
                    time: at(ms),
                })
                .collect(),
            stored: values.len(),
            duplicates: 0,
        }
    }

    /// Every alert the detector pushes over `events`, in order.
    pub(crate) fn run(events: &[Event]) -> Vec<Alert> {
        let mut detector = Plausibility::default();
        let mut alerts = Vec::new();
        for event in events {
            detector.observe(event, &mut alerts);
        }
        alerts
    }

    /// The alerts of `kind`.
    pub(crate) fn of_kind(alerts: &[Alert], kind: AlertKind) -> Vec<&Alert> {
        alerts.iter().filter(|a| a.kind == kind).collect()
    }

    /// A fact's value, if the alert has it.
    pub(crate) fn fact<'a>(alert: &'a Alert, name: &str) -> Option<&'a str> {
        alert.evidence.iter().find_map(|e| match e {
            Evidence::Fact { name: n, value } if n == name => Some(value.as_str()),
            _ => None,
        })
    }

    /// A small deterministic generator for noise in tests (SplitMix64), so that tests need no
    /// dependency and fail the same way every time.
    pub(crate) struct Noise(u64);

    impl Noise {
        pub(crate) fn new(seed: u64) -> Noise {
            Noise(seed)
        }

        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// An integer uniform in `-spread..=spread`.
        pub(crate) fn within(&mut self, spread: i64) -> f64 {
            let width = u64::try_from(2 * spread + 1).unwrap();
            let offset = i64::try_from(self.next() % width).unwrap() - spread;
            offset as f64
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;
    use vigil_model::{AlertKind, DeviceClass, Evidence, Quantity};

    use super::testing::{at, pack, run};
    use super::*;
    use crate::Engine;

    const MONITOR: DeviceClass = DeviceClass::BedsideMonitor;
    const OXIMETER: DeviceClass = DeviceClass::PulseOximeter;
    const CGM: DeviceClass = DeviceClass::ContinuousGlucoseMonitor;

    #[test]
    fn alerts_take_the_event_time_and_keep_values_out_of_facts_and_debug() {
        let alerts = run(&[
            pack(
                0,
                "cgm-1",
                CGM,
                "p-1",
                &[(Quantity::GlucoseInterstitial, 110.0)],
            ),
            pack(
                15_000,
                "cgm-1",
                CGM,
                "p-1",
                &[(Quantity::GlucoseInterstitial, 50.0)],
            ),
        ]);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let alert = &alerts[0];
        assert_eq!(alert.time, at(15_000));
        assert!(alert.attack_technique.is_some());
        for evidence in &alert.evidence {
            if let Evidence::Fact { value, .. } = evidence {
                assert!(!value.contains("117") && !value.contains("43"), "{value}");
            }
        }
        let printed = format!("{alert:?}");
        assert!(
            !printed.contains("117") && !printed.contains("43"),
            "{printed}"
        );
    }

    #[test]
    fn implausible_values_take_no_part() {
        // An injected SpO2 of 120 % and heart rate of 650 /min (flagged and alerted as implausible) neither
        // mismatch the oximeter nor make the next genuine reading an impossible change.
        let mut events = Vec::new();
        for s in 0..30 {
            let ms = s * 1000;
            events.push(pack(
                ms,
                "mon-1",
                MONITOR,
                "p-1",
                &[(Quantity::Spo2, 120.0), (Quantity::HeartRate, 650.0)],
            ));
            events.push(pack(
                ms,
                "oxi-1",
                OXIMETER,
                "p-1",
                &[(Quantity::Spo2, 97.0), (Quantity::PulseRate, 80.0)],
            ));
            events.push(pack(
                ms,
                "thermo-1",
                DeviceClass::Thermometer,
                "p-1",
                &[(Quantity::BodyTemperature, if s == 10 { 80.0 } else { 37.0 })],
            ));
        }
        let alerts = run(&events);
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn state_of_idle_devices_is_forgotten() {
        let mut detector = Plausibility::default();
        let mut alerts = Vec::new();
        detector.observe(
            &pack(
                0,
                "cgm-1",
                CGM,
                "p-1",
                &[(Quantity::GlucoseInterstitial, 110.0)],
            ),
            &mut alerts,
        );
        detector.observe(
            &pack(0, "mon-1", MONITOR, "p-2", &[(Quantity::HeartRate, 80.0)]),
            &mut alerts,
        );
        // Only the monitor keeps reporting.
        for minute in 1..=11 {
            detector.observe(
                &pack(
                    minute * 60_000,
                    "mon-1",
                    MONITOR,
                    "p-2",
                    &[(Quantity::HeartRate, 80.0)],
                ),
                &mut alerts,
            );
        }
        assert_eq!(
            detector.change.devices(),
            0,
            "the CGM had no rate-bound state left"
        );
        assert_eq!(detector.repeats.devices(), 1, "the monitor is still seen");
        assert_eq!(detector.cross_signal.patients(), 1);
        // Once forgotten, the CGM's next reading has nothing to be compared with.
        detector.observe(
            &pack(
                12 * 60_000,
                "cgm-1",
                CGM,
                "p-1",
                &[(Quantity::GlucoseInterstitial, 50.0)],
            ),
            &mut alerts,
        );
        assert!(alerts.is_empty(), "{alerts:?}");
        assert!(format!("{detector:?}").starts_with("Plausibility"));
    }

    #[test]
    fn the_engine_raises_a_sustained_mismatch_once_a_minute_per_patient() {
        let mut engine = Engine::new(vec![Box::new(Plausibility::default())]);
        let mut raised = Vec::new();
        for s in 0..120 {
            let ms = s * 1000;
            raised.extend(engine.observe(&pack(
                ms,
                "mon-1",
                MONITOR,
                "p-1",
                &[(Quantity::Spo2, 85.0)],
            )));
            raised.extend(engine.observe(&pack(
                ms,
                "oxi-1",
                OXIMETER,
                "p-1",
                &[(Quantity::Spo2, 97.0)],
            )));
        }
        let mismatches: Vec<_> = raised
            .iter()
            .filter(|a| a.kind == AlertKind::CrossSignalMismatch)
            .collect();
        assert_eq!(mismatches.len(), 2, "{mismatches:?}");
        assert!(
            mismatches
                .iter()
                .all(|a| a.device.is_none() && a.patient.is_some())
        );
    }

    /// One second of a patient's monitor and oximeter, physiologically consistent: the pulse
    /// rate within ±5 /min of the ECG rate (less the atrial fibrillation deficit when `af`),
    /// the two SpO2 within ±3 of each other.
    #[derive(Debug, Clone)]
    struct Second {
        heart_rate_step: i8,
        pulse_noise: i8,
        monitor_spo2_noise: i8,
        oximeter_spo2_noise: i8,
        spo2_step: i8,
    }

    fn second() -> impl Strategy<Value = Second> {
        (-1i8..=1, -5i8..=5, -1i8..=1, -2i8..=2, -1i8..=1).prop_map(
            |(heart_rate_step, pulse_noise, monitor_spo2_noise, oximeter_spo2_noise, spo2_step)| {
                Second {
                    heart_rate_step,
                    pulse_noise,
                    monitor_spo2_noise,
                    oximeter_spo2_noise,
                    spo2_step,
                }
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Physiologically consistent pairs never alert, over ten minutes at 1 Hz.
        #[test]
        fn consistent_signals_never_alert(
            start_rate in 45i32..=180,
            start_spo2 in 86i32..=100,
            af in any::<bool>(),
            seconds in prop::collection::vec(second(), 600),
        ) {
            let mut heart_rate = f64::from(start_rate);
            let mut spo2 = f64::from(start_spo2);
            let mut events = Vec::new();
            for (s, second) in seconds.iter().enumerate() {
                let ms = i64::try_from(s).unwrap() * 1000;
                heart_rate = (heart_rate + f64::from(second.heart_rate_step)).clamp(40.0, 200.0);
                spo2 = (spo2 + f64::from(second.spo2_step)).clamp(85.0, 98.0);
                // The simulator's typical deficit, 0.18 /min per /min above 60.
                let deficit = if af { (0.18 * (heart_rate - 60.0)).max(0.0).round() } else { 0.0 };
                let pulse = heart_rate - deficit + f64::from(second.pulse_noise);
                events.push(pack(ms, "mon-1", MONITOR, "p-1", &[
                    (Quantity::HeartRate, heart_rate),
                    (Quantity::Spo2, spo2 + f64::from(second.monitor_spo2_noise)),
                ]));
                events.push(pack(ms, "oxi-1", OXIMETER, "p-1", &[
                    (Quantity::PulseRate, pulse),
                    (Quantity::Spo2, (spo2 + f64::from(second.oximeter_spo2_noise)).min(100.0)),
                ]));
            }
            let alerts = run(&events);
            prop_assert!(alerts.is_empty(), "{:?}", alerts.iter().map(|a| a.kind).collect::<Vec<_>>());
        }
    }
}
