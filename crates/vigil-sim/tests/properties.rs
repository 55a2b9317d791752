//! Properties of whole runs: reproducibility, plausible physiology over long periods, the
//! correlations a clinician expects, glucose following meals and insulin, and clinical events
//! moving the right signals and only for their time.
//!
//! Case counts are small because every case simulates days; the whole file runs in a few seconds
//! in a debug build.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;

use proptest::prelude::*;
use vigil_model::{DeviceClass as D, Quantity as Q};
use vigil_sim::{
    ClinicalEvent, ClinicalEventKind as K, DeviceMix, DeviceReading, GroundTruth, PatientProfile,
    Physiology, Population, Rhythm, ScriptedEvent, SimRng, Vitals, Ward, WardConfig,
};

const DAY: u32 = 86_400;

/// Patients whose heart rate is their own: a paced heart beats at the pacemaker's lower rate
/// whatever the pressure, and two devices reading a constant rate correlate only in their noise.
const UNPACED: Population = Population {
    type1_diabetes: 0.15,
    pacemaker: 0.0,
};

/// Every class on some patient: patient 0 has them all (so diabetes and a pacemaker), patient 1
/// the usual pair, patient 2 the spot-check devices.
fn every_class() -> DeviceMix {
    DeviceMix::PerPatient(vec![
        D::ALL.to_vec(),
        vec![D::BedsideMonitor, D::PulseOximeter],
        vec![
            D::BloodPressureCuff,
            D::Thermometer,
            D::EcgPatch,
            D::InfusionPump,
            D::ContinuousGlucoseMonitor,
        ],
    ])
}

/// Where a value may be during a run with clinical events, in the canonical unit: well inside
/// the vocabulary's limits of the possible, and checked in addition to them.
fn plausible(q: Q) -> (f64, f64) {
    match q {
        Q::HeartRate | Q::PulseRate => (30.0, 220.0),
        Q::Spo2 => (60.0, 100.0),
        Q::NibpSystolic => (50.0, 230.0),
        Q::NibpDiastolic => (25.0, 140.0),
        Q::NibpMean => (35.0, 170.0),
        Q::RespirationRate => (4.0, 50.0),
        Q::BodyTemperature => (34.0, 42.0),
        Q::GlucoseCapillary | Q::GlucoseInterstitial => (20.0, 450.0),
        Q::InsulinBasalRate => (0.0, 5.0),
        Q::InsulinBolus => (0.0, 25.0),
        Q::InfusionRate => (0.0, 250.0),
        Q::PacingLowerRateLimit => (30.0, 120.0),
        Q::BatteryLevel => (0.0, 100.0),
        other => panic!("no plausible range for {other}"),
    }
}

/// How far a device's reading may stray outside [`plausible`] from a true value inside it: a
/// cuff's bias (within ±5 mm[Hg], ISO 81060-2) and six standard deviations of its
/// reading-to-reading error (4 mm[Hg] systolic and mean, 3 diastolic; `devices.rs`). A random
/// seed found a systolic reading of 48 during a hypotension: the cuff, not the patient.
fn reading_margin(q: Q) -> f64 {
    match q {
        Q::NibpSystolic | Q::NibpMean => 5.0 + 6.0 * 4.0,
        Q::NibpDiastolic => 5.0 + 6.0 * 3.0,
        _ => 0.0,
    }
}

fn true_values(v: &Vitals) -> [(Q, f64); 8] {
    [
        (Q::HeartRate, v.heart_rate),
        (Q::PulseRate, v.pulse_rate),
        (Q::Spo2, v.spo2),
        (Q::NibpSystolic, v.systolic),
        (Q::NibpDiastolic, v.diastolic),
        (Q::RespirationRate, v.respiration_rate),
        (Q::BodyTemperature, v.temperature_c),
        (Q::GlucoseCapillary, v.glucose_mg_dl),
    ]
}

/// Where a stable ward patient's true values stay between events. A patient with a low-normal
/// pressure who dips at night sleeps near 85 mm[Hg] systolic, and one with a fast resting rate
/// passes 100 /min in the afternoon: stable patients touch alarm thresholds, as real ones do, but
/// stay far from the values of the events.
fn quiet(q: Q) -> (f64, f64) {
    match q {
        Q::HeartRate | Q::PulseRate => (35.0, 130.0),
        Q::Spo2 => (88.0, 100.0),
        Q::NibpSystolic => (75.0, 200.0),
        Q::NibpDiastolic => (35.0, 120.0),
        Q::RespirationRate => (8.0, 28.0),
        Q::BodyTemperature => (35.3, 38.0),
        // A type 1 diabetic's glucose passes 350 mg/dL after some meals (seed
        // 1101533332767577208 reaches 350.1 an hour after its last event): hyperglycaemia, not an
        // event's value.
        Q::GlucoseCapillary => (45.0, 400.0),
        other => panic!("no quiet range for {other}"),
    }
}

fn pearson(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    sxy / (sxx * syy).sqrt()
}

fn windows(ward: &Ward, patient: usize, kind: Option<K>) -> Vec<(f64, f64)> {
    ward.ground_truth()
        .iter()
        .filter_map(GroundTruth::clinical_event)
        .filter(|r| r.patient == patient && kind.is_none_or(|k| r.event == k))
        .map(|r| (r.start, r.end))
        .collect()
}

fn run(seed: u64, config: WardConfig, seconds: u32, dt: u32) -> (Vec<DeviceReading>, Ward) {
    let mut ward = Ward::new(seed, config).unwrap();
    let mut out = Vec::new();
    for _ in 0..seconds / dt {
        ward.advance(f64::from(dt));
        ward.collect_due(&mut out);
    }
    (out, ward)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// (a) The seed fixes the run: readings, ground truth and every true value.
    #[test]
    fn a_seed_reproduces_a_run_exactly(seed in any::<u64>()) {
        let config = || WardConfig {
            patients: 3,
            devices: every_class(),
            events_per_patient_day: 24.0,
            max_report_period: Some(60.0),
            scripted_events: vec![ScriptedEvent {
                patient: 1,
                event: ClinicalEvent::typical(K::Desaturation, 300.0, 120.0).unwrap(),
            }],
            ..WardConfig::default()
        };
        let (readings, ward) = run(seed, config(), 1800, 1);
        let (again, ward_again) = run(seed, config(), 1800, 1);
        prop_assert!(readings.len() > 10_000);
        prop_assert_eq!(&readings, &again);
        prop_assert!(!ward.ground_truth().is_empty());
        prop_assert_eq!(
            serde_json::to_string(ward.ground_truth()).unwrap(),
            serde_json::to_string(ward_again.ground_truth()).unwrap()
        );
        for (a, b) in ward.patients().iter().zip(ward_again.patients()) {
            prop_assert_eq!(a.vitals(), b.vitals());
        }
        let (other, _) = run(seed.wrapping_add(1), config(), 1800, 1);
        prop_assert_ne!(&readings, &other);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// (b) A week with clinical events: every true value and every reading stays plausible, inside
    /// the vocabulary's limits, and changes no faster than the vocabulary allows; between events
    /// the true values stay in a stable patient's band.
    #[test]
    fn a_week_stays_physiological(seed in any::<u64>()) {
        week_stays_physiological(seed)?;
    }
}

/// A seed that once failed (b): a type 1 patient's hypoglycaemia ended while a meal had taken the
/// glucose the event was holding down to over 200 mg/dL, and the event's end snapped blood
/// glucose back at 16 mg/dL a minute, a CGM reading rising 76 → 155 mg/dL in 5 minutes.
#[test]
fn a_hypoglycaemia_ending_over_a_meal_recovers_at_a_body_s_pace() {
    week_stays_physiological(4_202_235_435_987_295_959).unwrap();
}

fn week_stays_physiological(seed: u64) -> Result<(), TestCaseError> {
    let config = WardConfig {
        patients: 3,
        devices: every_class(),
        events_per_patient_day: 3.0,
        ..WardConfig::default()
    };
    let mut ward = Ward::new(seed, config).unwrap();
    let mut out = Vec::new();
    let mut last: HashMap<(usize, Q), (f64, f64)> = HashMap::new();
    // Until when each patient is still within an hour of an event's end.
    let mut unsettled = [0.0f64; 3];
    let dt = 60.0;
    for _ in 0..(7 * DAY / 60) {
        ward.advance(dt);
        let now = ward.now();
        for (index, patient) in ward.patients().iter().enumerate() {
            for event in patient.active_events() {
                unsettled[index] = unsettled[index].max(event.end() + 3600.0);
            }
            let quiet_now = now > unsettled[index];
            for (q, value) in true_values(patient.vitals()) {
                let (lo, hi) = plausible(q);
                prop_assert!((lo..=hi).contains(&value), "true {q} {value} at {now}");
                prop_assert!(q.check_range(value).is_ok());
                if quiet_now {
                    let (lo, hi) = quiet(q);
                    prop_assert!(
                        (lo..=hi).contains(&value),
                        "quiet patient {index}: {q} {value} at {now}"
                    );
                }
            }
        }
        out.clear();
        ward.collect_due(&mut out);
        for DeviceReading { device, reading } in &out {
            let class = ward.devices()[*device].class();
            prop_assert!(class.reports(reading.quantity));
            let value = reading
                .quantity
                .to_canonical(reading.value, reading.unit)
                .unwrap();
            prop_assert!(reading.quantity.check_range(value).is_ok());
            let (lo, hi) = plausible(reading.quantity);
            let margin = reading_margin(reading.quantity);
            prop_assert!(
                (lo - margin..=hi + margin).contains(&value),
                "{class} {} {value} at {now}",
                reading.quantity
            );
            if let Some((previous, at)) =
                last.insert((*device, reading.quantity), (value, reading.time_offset))
            {
                let elapsed_ms = ((reading.time_offset - at) * 1000.0) as u64;
                prop_assert!(
                    reading
                        .quantity
                        .check_change(previous, value, elapsed_ms)
                        .is_ok(),
                    "{class} {}: {previous} → {value} in {elapsed_ms} ms",
                    reading.quantity
                );
            }
        }
    }
    prop_assert!(ward.ground_truth().len() >= 20);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// (c) The oximeter's pulse rate and the monitor's ECG heart rate are the same heart, measured
    /// twice, except for the pulse deficit of atrial fibrillation.
    #[test]
    fn oximeter_pulse_rate_follows_monitor_heart_rate(
        seed in any::<u64>(),
        af_target in 110.0..150.0f64,
    ) {
        let af = ClinicalEvent::new(K::AtrialFibrillation, 6.0 * 3600.0, 7200.0, af_target)
            .unwrap();
        let config = WardConfig {
            patients: 1,
            devices: DeviceMix::Uniform(vec![D::BedsideMonitor, D::PulseOximeter]),
            population: UNPACED,
            events_per_patient_day: 3.0,
            scripted_events: vec![ScriptedEvent { patient: 0, event: af }],
            ..WardConfig::default()
        };
        let mut ward = Ward::new(seed, config).unwrap();
        let (mut sinus, mut fibrillating) = (Vec::new(), Vec::new());
        let mut out = Vec::new();
        for _ in 0..(DAY / 5) {
            ward.advance(5.0);
            out.clear();
            ward.collect_due(&mut out);
            let pick = |device: usize, q: Q| {
                out.iter()
                    .find(|r| r.device == device && r.reading.quantity == q)
                    .map(|r| r.reading.value)
            };
            let (Some(hr), Some(pr)) = (pick(0, Q::HeartRate), pick(1, Q::PulseRate)) else {
                continue;
            };
            let now = ward.now();
            let af_windows = windows(&ward, 0, Some(K::AtrialFibrillation));
            if af_windows.iter().any(|(s, e)| now >= s + 60.0 && now <= e - 60.0) {
                fibrillating.push((hr, pr));
            } else if af_windows.iter().all(|(s, e)| now < s - 5.0 || now > e + 5.0) {
                sinus.push((hr, pr));
            }
        }
        let r = pearson(&sinus);
        let mad = sinus.iter().map(|(h, p)| (h - p).abs()).sum::<f64>() / sinus.len() as f64;
        prop_assert!(r > 0.9, "r = {r}");
        prop_assert!(mad < 2.0, "mean |HR − PR| = {mad}");
        let deficit =
            fibrillating.iter().map(|(h, p)| h - p).sum::<f64>() / fibrillating.len() as f64;
        prop_assert!((3.0..=25.0).contains(&deficit), "pulse deficit {deficit}");
    }

    /// (d) Over a day, systolic pressure and heart rate rise and fall together (the model's median
    /// correlation is about 0.7; its lowest over 400 patient-days was 0.36).
    #[test]
    fn blood_pressure_moves_with_heart_rate(seed in any::<u64>()) {
        let config = WardConfig {
            patients: 2,
            devices: DeviceMix::Uniform(vec![]),
            population: UNPACED,
            events_per_patient_day: 0.0,
            ..WardConfig::default()
        };
        let mut ward = Ward::new(seed, config).unwrap();
        let mut pairs = [Vec::new(), Vec::new()];
        for _ in 0..(DAY / 300) {
            ward.advance(300.0);
            for (patient, p) in pairs.iter_mut().zip(ward.patients()) {
                patient.push((p.vitals().heart_rate, p.vitals().systolic));
            }
        }
        for patient in &pairs {
            let r = pearson(patient);
            prop_assert!(r > 0.2, "r(HR, SBP) = {r}");
        }
    }

    /// (e) Glucose rises after a meal and insulin lowers it.
    #[test]
    fn glucose_follows_meals_and_insulin(seed in any::<u64>(), carbs in 40.0..80.0f64) {
        let patient = |diabetic: bool| {
            let population = Population {
                type1_diabetes: f64::from(u8::from(diabetic)),
                pacemaker: 0.0,
            };
            let mut rng = SimRng::derive(seed, "test.profile", &[]);
            let profile = PatientProfile::sample(&mut rng, &population);
            let mut p = Physiology::new(profile, seed, 0, 9.0 * 3600.0, false);
            for _ in 0..60 { p.step(60.0); }
            p
        };
        let minutes = |p: &mut Physiology, n: u32| {
            for _ in 0..n { p.step(60.0); }
            p.vitals().glucose_mg_dl
        };

        // Without diabetes: up within the hour, back to where it would have been within four.
        let mut p = patient(false);
        let mut fasting = patient(false);
        let before = p.vitals().glucose_mg_dl;
        p.eat(carbs);
        let peak = (0..90)
            .map(|_| minutes(&mut p, 1) - minutes(&mut fasting, 1))
            .fold(0.0, f64::max);
        prop_assert!(peak > 15.0, "{before} + {peak}");
        let later = minutes(&mut p, 150) - minutes(&mut fasting, 150);
        prop_assert!(later.abs() < 10.0, "{later} above fasting after 4 h");

        // With type 1 diabetes: a meal without insulin keeps glucose high; the same meal with its
        // bolus ends far lower; a correction bolus brings glucose down. Each compared with the
        // same patient, same noise, without the insulin.
        let mut unbolused = patient(true);
        let therapy = unbolused.profile().diabetes.unwrap();
        let before = unbolused.vitals().glucose_mg_dl;
        unbolused.eat(carbs);
        let mut bolused = unbolused.clone();
        bolused.deliver_bolus(carbs / therapy.carb_ratio).unwrap();
        let high = minutes(&mut unbolused, 150);
        let covered = minutes(&mut bolused, 150);
        prop_assert!(high - before > 30.0, "{before} → {high}");
        prop_assert!(high - covered > 25.0, "with bolus {covered}, without {high}");
        let mut uncorrected = unbolused.clone();
        unbolused.deliver_bolus(2.0).unwrap();
        let corrected = minutes(&mut unbolused, 240);
        let left = minutes(&mut uncorrected, 240);
        // The model keeps at least a third of the correction factor's promise after 4 h (glucose
        // effectiveness claws some back); dosing rules assume all of it.
        prop_assert!(
            left - corrected > 2.0 * therapy.correction_factor / 3.0,
            "2 U at CF {}: {left} → {corrected}", therapy.correction_factor
        );
    }
}

/// A moment of a trace: time, true values, readings.
type Sample = (f64, Vitals, Vec<DeviceReading>);

/// The ward of one patient with `event`, or without it, sampled every 10 s; and the event's
/// ground truth.
fn trace(seed: u64, event: Option<ClinicalEvent>) -> (Vec<Sample>, Vec<GroundTruth>) {
    let config = WardConfig {
        patients: 1,
        devices: DeviceMix::Uniform(vec![
            D::BedsideMonitor,
            D::PulseOximeter,
            D::ContinuousGlucoseMonitor,
            D::Thermometer,
        ]),
        events_per_patient_day: 0.0,
        max_report_period: Some(60.0),
        scripted_events: event
            .map(|event| ScriptedEvent { patient: 0, event })
            .into_iter()
            .collect(),
        ..WardConfig::default()
    };
    let mut ward = Ward::new(seed, config).unwrap();
    let mut samples = Vec::new();
    for _ in 0..(6 * 360) {
        ward.advance(10.0);
        let mut out = Vec::new();
        ward.collect_due(&mut out);
        samples.push((ward.now(), *ward.patient(0).unwrap().vitals(), out));
    }
    (samples, ward.ground_truth().to_vec())
}

fn reading(out: &[DeviceReading], device: usize, q: Q) -> Option<f64> {
    out.iter()
        .find(|r| r.device == device && r.reading.quantity == q)
        .map(|r| r.reading.canonical_value())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// (f) Each kind of clinical event moves its signal past its clinical threshold during its
    /// window, seen by the devices too, and leaves the patient exactly as they would have been
    /// once it is over.
    #[test]
    fn clinical_events_move_their_signals_and_pass(
        seed in any::<u64>(),
        severity in 0.0..1.0f64,
        duration in 1200.0..5400.0f64,
    ) {
        let (without, _) = trace(seed, None);
        for &kind in K::ALL {
            let (lo, hi) = kind.target_range();
            // AF is asked for at the rates where a pulse deficit is expected.
            let (lo, hi) = if kind == K::AtrialFibrillation { (110.0, 160.0) } else { (lo, hi) };
            let target = lo + (hi - lo) * severity;
            let start = 2.0 * 3600.0;
            let event = ClinicalEvent::new(kind, start, duration, target).unwrap();
            let (with, truth) = trace(seed, Some(event));
            prop_assert_eq!(truth.len(), 1);
            let record = truth[0].clinical_event().unwrap();
            prop_assert_eq!(
                (record.event, record.start, record.end),
                (kind, start, start + duration)
            );
            let end = start + duration;
            let onset = record.onset;
            prop_assert!(onset <= duration / 3.0);
            let (mut plateau, mut deficit) = (0, 0.0);
            for ((t, v, out), (_, v0, _)) in with.iter().zip(&without) {
                let t = *t;
                if t <= start {
                    prop_assert_eq!(v, v0, "changed before the event at {}", t);
                } else if t >= start + onset && t <= end - onset {
                    plateau += 1;
                    match kind {
                        K::Tachycardia => {
                            prop_assert!(v.heart_rate > 100.0);
                            if let Some(hr) = reading(out, 0, Q::HeartRate) {
                                prop_assert!(hr > 98.0, "monitor HR {hr}");
                            }
                        }
                        K::Desaturation => {
                            prop_assert!(v.spo2 < 90.0);
                            prop_assert!(v.respiration_rate > v0.respiration_rate);
                            if let Some(spo2) = reading(out, 1, Q::Spo2) {
                                prop_assert!(spo2 < 93.0, "oximeter SpO2 {spo2}");
                            }
                        }
                        K::Hypotension => {
                            prop_assert!(v.systolic < 90.0);
                            prop_assert!(v.mean_arterial < v0.mean_arterial);
                            prop_assert!(v.heart_rate >= v0.heart_rate, "no reflex tachycardia");
                        }
                        K::Hypoglycaemia => {
                            prop_assert!(v.glucose_mg_dl < 70.0);
                            if t > start + onset + 1800.0
                                && let Some(g) = reading(out, 2, Q::GlucoseInterstitial)
                            {
                                prop_assert!(g < 90.0, "CGM {g}");
                            }
                        }
                        K::AtrialFibrillation => {
                            prop_assert_eq!(v.rhythm, Rhythm::AtrialFibrillation);
                            deficit += v.heart_rate - v.pulse_rate;
                        }
                        K::Fever => {
                            prop_assert!(v.temperature_c >= 38.0);
                            prop_assert!(v.heart_rate > v0.heart_rate);
                            if let Some(temp) = reading(out, 3, Q::BodyTemperature) {
                                prop_assert!(temp > 37.5, "thermometer {temp}");
                            }
                        }
                        _ => unreachable!(),
                    }
                } else if t >= end {
                    // Over: the body is where it would have been, but for glucose: the blood's
                    // climbs back from a hypoglycaemia at most 5 mg/dL a minute (never past
                    // where it would have been, and there within the hour), and the interstitial
                    // lags the blood by minutes.
                    let lagging = Vitals {
                        glucose_mg_dl: v0.glucose_mg_dl,
                        interstitial_glucose_mg_dl: v0.interstitial_glucose_mg_dl,
                        ..*v
                    };
                    prop_assert_eq!(&lagging, v0, "not back after the event at {}", t);
                    prop_assert!(v.glucose_mg_dl <= v0.glucose_mg_dl);
                    if t >= end + 3600.0 {
                        prop_assert_eq!(v.glucose_mg_dl, v0.glucose_mg_dl, "at {}", t);
                    }
                    if t >= end + 7200.0 {
                        prop_assert!(
                            (v.interstitial_glucose_mg_dl - v0.interstitial_glucose_mg_dl).abs()
                                < 1.0
                        );
                    }
                }
            }
            prop_assert!(plateau > 0);
            if kind == K::AtrialFibrillation {
                let mean = deficit / f64::from(plateau);
                prop_assert!(mean > 3.0, "pulse deficit {mean}");
            }
        }
    }
}

#[test]
fn ground_truth_calls_clinical_events_clinical() {
    let events = K::ALL
        .iter()
        .enumerate()
        .map(|(i, kind)| ScriptedEvent {
            patient: i % 2,
            event: ClinicalEvent::typical(*kind, 60.0 * i as f64, 600.0).unwrap(),
        })
        .collect();
    let config = WardConfig {
        patients: 2,
        events_per_patient_day: 48.0,
        scripted_events: events,
        ..WardConfig::default()
    };
    let (_, ward) = run(11, config, 6 * 3600, 10);
    let json = serde_json::to_value(ward.ground_truth()).unwrap();
    let records = json.as_array().unwrap();
    assert!(records.len() >= K::ALL.len());
    for record in records {
        assert_eq!(record["kind"], "clinical_event");
        assert!(!record.to_string().contains("attack"));
    }
    for kind in K::ALL {
        assert!(records.iter().any(|r| r["event"] == kind.key()), "{kind}");
    }
}
