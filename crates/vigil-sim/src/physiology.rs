//! A virtual patient's physiology: true vital signs that evolve in simulated time.
//!
//! [`Physiology::step`] advances the state; [`Physiology::vitals`] gives the true values devices
//! measure. Between clinical events the signals follow a 24-hour rhythm (lower heart rate,
//! pressure and temperature at night) plus mean-reverting variability, heart rate and blood
//! pressure sharing a sympathetic-tone factor; glucose follows meals and insulin. Clinical events
//! ([`crate::events`]) move the signals a clinician expects to move together. `docs/simulator.md`
//! gives the equations and the source of every number.

mod cardio;
mod circadian;
mod glucose;
pub(crate) mod ou;
mod profile;

use serde::Serialize;

use crate::events::{ClinicalEvent, ClinicalEventKind, ClinicalEventSchedule};
use crate::rng::SimRng;
use cardio::CardioState;
use glucose::GlucoseModel;
pub use glucose::{Bolus, InsulinPump};
pub use profile::{InsulinTherapy, PatientProfile, Population};

/// Heart-rate rise per °C of fever, /min (Jensen et al., Acute Med 2019;18:141: 7.2 in acutely
/// admitted medical patients).
const FEVER_HR_PER_C: f64 = 7.5;
/// Respiration-rate rise per °C of fever, /min (same study: 1.4).
const FEVER_RR_PER_C: f64 = 1.5;
/// Adrenergic heart-rate rise at the nadir of a hypoglycaemia, /min, and systolic rise, `mm[Hg]`
/// (adrenaline release below about 65 mg/dL; the rise of heart rate and systolic pressure is
/// modest in hospital patients, often blunted in long-standing diabetes).
const HYPO_HR_RISE: f64 = 10.0;
const HYPO_SBP_RISE: f64 = 5.0;
/// Baroreflex heart-rate rise per `mm[Hg]` of systolic fall in hypotension, /min, and its
/// ceiling: takes a patient at 75 /min and 120 `mm[Hg]` to about 95 /min at 75 `mm[Hg]`, a shock
/// index above 1.
const BAROREFLEX_HR_PER_MMHG: f64 = 0.45;
const BAROREFLEX_MAX_RISE: f64 = 30.0;
/// Respiration rise in hypotension (metabolic acidosis of hypoperfusion), /min.
const HYPOTENSION_RR_RISE: f64 = 3.0;
/// Respiration rise at the nadir of a desaturation (hypoxic ventilatory drive), /min.
const DESAT_RR_RISE: f64 = 6.0;
/// Heart-rate rise per % of desaturation, /min.
const DESAT_HR_PER_PERCENT: f64 = 0.8;
/// Pressure rise per /min of sinus tachycardia, systolic and diastolic, `mm[Hg]`: sympathetic
/// activation raises pressure a little with the rate.
const TACHY_SBP_PER_BPM: f64 = 0.2;
const TACHY_DBP_PER_BPM: f64 = 0.1;
/// Respiration rise in sinus tachycardia, /min.
const TACHY_RR_RISE: f64 = 2.0;
/// Spread of the monitor-averaged ventricular rate in atrial fibrillation, as a fraction of the
/// mean rate: RR intervals in AF vary by 15–25 % beat to beat, and a monitor averaging some ten
/// beats shows a fraction of that.
const AF_RATE_SPREAD: f64 = 0.08;
/// Pulse deficit in atrial fibrillation per /min of ventricular rate above 60, and the spread of
/// its moment-to-moment variation, /min (see [`ClinicalEventKind::AtrialFibrillation`]).
const AF_DEFICIT_PER_BPM: f64 = 0.18;
const AF_DEFICIT_SPREAD: f64 = 2.0;
/// Systolic fall with the loss of the atrial contribution to ventricular filling, `mm[Hg]`: the
/// "atrial kick" supplies 15–30 % of stroke volume, and reflexes hold most of the pressure.
const AF_SBP_FALL: f64 = 6.0;

/// Hard bounds of the simulated body: no combination of rhythm, variability and overlapping
/// events takes a value past these. All lie well inside the model's plausibility limits
/// (`Quantity::check_range`).
const HR_BOUNDS: (f64, f64) = (30.0, 220.0);
const SPO2_BOUNDS: (f64, f64) = (50.0, 100.0);
const SBP_BOUNDS: (f64, f64) = (50.0, 240.0);
const DBP_BOUNDS: (f64, f64) = (25.0, 140.0);
const RR_BOUNDS: (f64, f64) = (4.0, 50.0);
const TEMP_BOUNDS: (f64, f64) = (33.0, 42.0);
/// Smallest pulse pressure, `mm[Hg]`.
const MIN_PULSE_PRESSURE: f64 = 10.0;

/// Interstitial glucose follows blood glucose with a first-order lag of 5–10 min (Boyne et al.,
/// Diabetes 2003;52:2790: 4–10 min; Basu et al., Diabetes 2013;62:4083: 5–6 min).
const ISF_LAG_BOUNDS_S: (f64, f64) = (300.0, 600.0);

/// Fastest fall (and rise) of blood glucose a hypoglycaemia event makes, mg/dL per second: 5
/// mg/dL/min, above the 3 mg/dL/min that CGMs call a rapid fall, as with an insulin overdose; the
/// raised cosine's steepest slope is π/2 times its mean. Recovery rises no faster: the usual
/// treatment is 15–20 g of glucose with a recheck after 15 minutes (American Diabetes
/// Association, Standards of Care in Diabetes, section 6), and by the clinical rule of thumb of
/// 3–4 mg/dL per gram in an adult, 15 g raises glucose 3–4 mg/dL a minute.
const HYPO_MAX_RATE: f64 = 5.0 / 60.0;

/// Fits an event that is beginning to the body: a hypoglycaemia from a high glucose takes as long
/// to develop as glucose takes to fall that far.
fn shape_event(event: &mut ClinicalEvent, glucose: f64) {
    if event.kind() == ClinicalEventKind::Hypoglycaemia {
        let gap = (glucose - event.target()).max(0.0);
        event.shape(gap * std::f64::consts::FRAC_PI_2 / HYPO_MAX_RATE);
    }
}

/// The cardiac rhythm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rhythm {
    /// Sinus rhythm.
    Sinus,
    /// Atrial fibrillation.
    AtrialFibrillation,
    /// Paced at the pacemaker's lower rate.
    Paced,
}

/// The true state of a patient's vital signs at one moment: what a perfect device would read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Vitals {
    /// Ventricular (ECG) heart rate, /min.
    pub heart_rate: f64,
    /// Perfusing pulse rate, /min: the heart rate less the pulse deficit of atrial fibrillation.
    pub pulse_rate: f64,
    /// Arterial oxygen saturation as pulse oximetry measures it, %.
    pub spo2: f64,
    /// Systolic arterial pressure, `mm[Hg]`.
    pub systolic: f64,
    /// Diastolic arterial pressure, `mm[Hg]`.
    pub diastolic: f64,
    /// Mean arterial pressure, `mm[Hg]`: diastolic plus a third of the pulse pressure.
    pub mean_arterial: f64,
    /// Respiration rate, /min.
    pub respiration_rate: f64,
    /// Body temperature, °C.
    pub temperature_c: f64,
    /// Blood glucose, mg/dL.
    pub glucose_mg_dl: f64,
    /// Interstitial glucose (what a CGM senses), mg/dL.
    pub interstitial_glucose_mg_dl: f64,
    /// Plasma insulin, mU/L.
    pub insulin_mu_l: f64,
    /// The cardiac rhythm.
    pub rhythm: Rhythm,
}

/// Why a therapy change is refused by the body's side of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TherapyError {
    /// The patient has no insulin pump.
    #[error("the patient has no insulin pump")]
    NoInsulinPump,
    /// The patient has no pacemaker.
    #[error("the patient has no pacemaker")]
    NoPacemaker,
    /// Not a finite value within what the device can do.
    #[error("value outside what the device can deliver")]
    OutOfRange,
}

/// One patient's physiology.
#[derive(Debug, Clone)]
pub struct Physiology {
    profile: PatientProfile,
    /// Seconds after midnight at simulated time 0.
    start_clock_s: f64,
    time: f64,
    rng: SimRng,
    cardio: CardioState,
    glucose: GlucoseModel,
    /// Interstitial glucose, mg/dL, and its lag, s.
    interstitial: f64,
    interstitial_lag_s: f64,
    /// Whether blood glucose is still on its way back from a hypoglycaemia (see
    /// [`Physiology::paced_glucose`]).
    recovering: bool,
    events: ClinicalEventSchedule,
    started: Vec<ClinicalEvent>,
    pacing_lower_rate: Option<f64>,
    vitals: Vitals,
}

impl Physiology {
    /// A patient at simulated time 0, `start_clock_s` seconds after midnight, with their own
    /// random streams derived from `run_seed` and `patient`. With `meals` the patient eats the
    /// hospital's meals (and, with diabetes, boluses for them); without, only what [`Self::eat`]
    /// gives. No clinical events until [`Self::with_events`].
    pub fn new(
        profile: PatientProfile,
        run_seed: u64,
        patient: u64,
        start_clock_s: f64,
        meals: bool,
    ) -> Self {
        let mut rng = SimRng::derive(run_seed, "patient.vitals", &[patient]);
        let meal_rng = meals.then(|| SimRng::derive(run_seed, "patient.meals", &[patient]));
        let cardio = CardioState::new(&mut rng);
        let glucose = GlucoseModel::new(&profile, &mut rng, meal_rng, start_clock_s);
        let interstitial_lag_s = rng.range(ISF_LAG_BOUNDS_S.0, ISF_LAG_BOUNDS_S.1);
        let start_clock_s = start_clock_s.rem_euclid(circadian::DAY_S);
        let pacing_lower_rate = profile.pacemaker_lower_rate;
        let interstitial = glucose.glucose();
        let mut physiology = Self {
            profile,
            start_clock_s,
            time: 0.0,
            rng,
            cardio,
            glucose,
            interstitial,
            interstitial_lag_s,
            recovering: false,
            events: ClinicalEventSchedule::none(),
            started: Vec::new(),
            pacing_lower_rate,
            vitals: Vitals {
                heart_rate: 0.0,
                pulse_rate: 0.0,
                spo2: 0.0,
                systolic: 0.0,
                diastolic: 0.0,
                mean_arterial: 0.0,
                respiration_rate: 0.0,
                temperature_c: 0.0,
                glucose_mg_dl: 0.0,
                interstitial_glucose_mg_dl: 0.0,
                insulin_mu_l: 0.0,
                rhythm: Rhythm::Sinus,
            },
        };
        physiology.vitals = physiology.compose();
        physiology.interstitial = physiology.vitals.glucose_mg_dl;
        physiology.vitals.interstitial_glucose_mg_dl = physiology.interstitial;
        physiology
    }

    /// Replaces the clinical events.
    pub fn with_events(mut self, events: ClinicalEventSchedule) -> Self {
        self.events = events;
        self
    }

    /// Advances by `dt` simulated seconds. A `dt` that is not positive and finite does nothing.
    /// The same sequence of steps from the same seed gives the same values; a different
    /// sequence (one step of 2 s instead of two of 1 s) gives a statistically equal but not an
    /// identical run.
    pub fn step(&mut self, dt: f64) {
        if !(dt.is_finite() && dt > 0.0) {
            return;
        }
        let t0 = self.time;
        self.cardio.step(dt, &mut self.rng);
        self.glucose.step(t0, dt, &mut self.rng);
        self.time = t0 + dt;
        let glucose = self.glucose.glucose();
        self.events
            .advance(self.time, &mut self.started, &mut |event| {
                shape_event(event, glucose);
            });
        let mut vitals = self.compose();
        vitals.glucose_mg_dl = self.paced_glucose(vitals.glucose_mg_dl, dt);
        // Exact first-order response to the blood glucose over the step.
        let k = 1.0 - (-dt / self.interstitial_lag_s).exp();
        self.interstitial += k * (vitals.glucose_mg_dl - self.interstitial);
        self.vitals = Vitals {
            interstitial_glucose_mg_dl: self.interstitial,
            ..vitals
        };
    }

    /// Blood glucose `composed` for now, held to a body's pace on the way back from a
    /// hypoglycaemia: it rises at most [`HYPO_MAX_RATE`] until it meets the glucose it would have
    /// had without the event. The event's resolution is timed from the glucose when it began, and
    /// meanwhile a meal can have taken that glucose far higher (a type 1 patient past 200 mg/dL):
    /// blending back to it in the same time would rise at 16 mg/dL a minute, faster than
    /// carbohydrate and counter-regulation raise glucose. So recovery can outlast the event, as
    /// interstitial glucose lags it.
    fn paced_glucose(&mut self, composed: f64, dt: f64) -> f64 {
        let in_hypo = self.events.active().iter().any(|event| {
            event.kind() == ClinicalEventKind::Hypoglycaemia && event.envelope(self.time) > 0.0
        });
        self.recovering |= in_hypo;
        if !self.recovering {
            return composed;
        }
        let paced = composed.min(self.vitals.glucose_mg_dl + HYPO_MAX_RATE * dt);
        if !in_hypo && paced >= composed {
            self.recovering = false;
        }
        paced
    }

    /// The true vital signs now.
    pub fn vitals(&self) -> &Vitals {
        &self.vitals
    }

    /// Simulated seconds since the run began.
    pub fn time(&self) -> f64 {
        self.time
    }

    /// Clock time now, hours after midnight.
    pub fn clock_hours(&self) -> f64 {
        circadian::clock_hours(self.start_clock_s, self.time)
    }

    /// Who the patient is.
    pub fn profile(&self) -> &PatientProfile {
        &self.profile
    }

    /// The clinical events under way.
    pub fn active_events(&self) -> &[ClinicalEvent] {
        self.events.active()
    }

    /// Hands over the events that started since the last call (for ground truth).
    pub fn take_started_events(&mut self) -> Vec<ClinicalEvent> {
        std::mem::take(&mut self.started)
    }

    /// The insulin pump, for a patient with type 1 diabetes.
    pub fn insulin_pump(&self) -> Option<&InsulinPump> {
        self.glucose.pump()
    }

    /// The pacemaker's programmed lower rate, /min, for a patient with one.
    pub fn pacing_lower_rate(&self) -> Option<f64> {
        self.pacing_lower_rate
    }

    /// The patient eats `carbs_g` grams of carbohydrate now (no bolus is given for it).
    pub fn eat(&mut self, carbs_g: f64) {
        self.glucose.eat(carbs_g);
    }

    /// The pump delivers a bolus of `units` now.
    pub fn deliver_bolus(&mut self, units: f64) -> Result<(), TherapyError> {
        if self.glucose.pump().is_none() {
            return Err(TherapyError::NoInsulinPump);
        }
        if !(units.is_finite() && units > 0.0) {
            return Err(TherapyError::OutOfRange);
        }
        self.glucose.bolus(units, self.time);
        Ok(())
    }

    /// Programs the pump's basal rate, U/h.
    pub fn set_basal_rate(&mut self, rate: f64) -> Result<(), TherapyError> {
        let pump = self.glucose.pump_mut().ok_or(TherapyError::NoInsulinPump)?;
        if !(rate.is_finite() && rate >= 0.0) {
            return Err(TherapyError::OutOfRange);
        }
        pump.basal_rate = rate;
        pump.changes += 1;
        Ok(())
    }

    /// Suspends (`true`) or resumes (`false`) insulin delivery.
    pub fn set_insulin_suspended(&mut self, suspended: bool) -> Result<(), TherapyError> {
        let pump = self.glucose.pump_mut().ok_or(TherapyError::NoInsulinPump)?;
        if pump.suspended != suspended {
            pump.suspended = suspended;
            pump.changes += 1;
        }
        Ok(())
    }

    /// Programs the pacemaker's lower rate, /min.
    pub fn set_pacing_lower_rate(&mut self, rate: f64) -> Result<(), TherapyError> {
        if self.pacing_lower_rate.is_none() {
            return Err(TherapyError::NoPacemaker);
        }
        if !(rate.is_finite() && rate > 0.0) {
            return Err(TherapyError::OutOfRange);
        }
        self.pacing_lower_rate = Some(rate);
        Ok(())
    }

    /// The vital signs at the current time, from the state: baseline, then events in the order
    /// of [`ClinicalEventKind::ALL`], then pacing and the body's bounds.
    fn compose(&self) -> Vitals {
        let t = self.time;
        let b = self
            .cardio
            .baseline(&self.profile, circadian::clock_hours(self.start_clock_s, t));
        let mut hr = b.heart_rate;
        let mut sbp = b.systolic;
        let mut dbp = b.diastolic;
        let mut spo2 = b.spo2.min(100.0);
        let mut rr = b.respiration_rate;
        let mut temp = b.temperature_c;
        let mut glucose = self.glucose.glucose();
        let mut deficit = 0.0;
        let mut rhythm = Rhythm::Sinus;

        for kind in ClinicalEventKind::ALL {
            for event in self.events.active().iter().filter(|e| e.kind() == *kind) {
                let e = event.envelope(t);
                if e <= 0.0 {
                    continue;
                }
                let target = event.target();
                match kind {
                    ClinicalEventKind::Fever => {
                        let rise = e * (target - temp).max(0.0);
                        temp += rise;
                        hr += FEVER_HR_PER_C * rise;
                        rr += FEVER_RR_PER_C * rise;
                    }
                    ClinicalEventKind::Hypoglycaemia => {
                        glucose += e * (target - glucose).min(0.0);
                        hr += e * HYPO_HR_RISE;
                        sbp += e * HYPO_SBP_RISE;
                    }
                    ClinicalEventKind::Hypotension => {
                        // Both pressures fall by the same factor, so the mean falls with them.
                        let factor = 1.0 + e * ((target / sbp).min(1.0) - 1.0);
                        let fall = sbp * (1.0 - factor);
                        sbp *= factor;
                        dbp *= factor;
                        hr += (BAROREFLEX_HR_PER_MMHG * fall).min(BAROREFLEX_MAX_RISE);
                        rr += e * HYPOTENSION_RR_RISE;
                    }
                    ClinicalEventKind::Desaturation => {
                        let fall = e * (spo2 - target).max(0.0);
                        spo2 -= fall;
                        rr += e * DESAT_RR_RISE;
                        hr += DESAT_HR_PER_PERCENT * fall;
                    }
                    ClinicalEventKind::Tachycardia => {
                        let rise = e * (target - hr).max(0.0);
                        hr += rise;
                        sbp += TACHY_SBP_PER_BPM * rise;
                        dbp += TACHY_DBP_PER_BPM * rise;
                        rr += e * TACHY_RR_RISE;
                    }
                    ClinicalEventKind::AtrialFibrillation => {
                        let irregular =
                            AF_RATE_SPREAD * target * self.cardio.af_irregularity.value();
                        hr += e * (target + irregular - hr);
                        let typical = AF_DEFICIT_PER_BPM * (target - 60.0).max(0.0);
                        let varying =
                            typical + AF_DEFICIT_SPREAD * self.cardio.deficit_variation.value();
                        deficit = e * varying.clamp(0.0, 0.35 * target);
                        sbp -= e * AF_SBP_FALL;
                        if e >= 0.5 {
                            rhythm = Rhythm::AtrialFibrillation;
                        }
                    }
                }
            }
        }

        hr = hr.clamp(HR_BOUNDS.0, HR_BOUNDS.1);
        if let Some(lower) = self.pacing_lower_rate {
            // The pacemaker paces when the intrinsic rate falls below its lower rate; in atrial
            // fibrillation it paces the ventricle as a backup.
            if hr < lower {
                hr = lower;
                if rhythm == Rhythm::Sinus {
                    rhythm = Rhythm::Paced;
                }
            }
        }
        let sbp = sbp.clamp(SBP_BOUNDS.0, SBP_BOUNDS.1);
        let dbp = dbp
            .clamp(DBP_BOUNDS.0, DBP_BOUNDS.1)
            .min(sbp - MIN_PULSE_PRESSURE);
        Vitals {
            heart_rate: hr,
            pulse_rate: (hr - deficit).max(0.0),
            spo2: spo2.clamp(SPO2_BOUNDS.0, SPO2_BOUNDS.1),
            systolic: sbp,
            diastolic: dbp,
            mean_arterial: dbp + (sbp - dbp) / 3.0,
            respiration_rate: rr.clamp(RR_BOUNDS.0, RR_BOUNDS.1),
            temperature_c: temp.clamp(TEMP_BOUNDS.0, TEMP_BOUNDS.1),
            glucose_mg_dl: glucose,
            interstitial_glucose_mg_dl: self.interstitial,
            insulin_mu_l: self.glucose.insulin(),
            rhythm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient(seed: u64, population: Population, meals: bool) -> Physiology {
        let mut rng = SimRng::derive(seed, "test.profile", &[]);
        let profile = PatientProfile::sample(&mut rng, &population);
        Physiology::new(profile, seed, 0, 0.0, meals)
    }

    const NONE: Population = Population {
        type1_diabetes: 0.0,
        pacemaker: 0.0,
    };
    const TYPE1: Population = Population {
        type1_diabetes: 1.0,
        pacemaker: 0.0,
    };

    #[test]
    fn profiles_stay_in_their_documented_ranges() {
        for seed in 0..500 {
            let mut rng = SimRng::derive(seed, "test.profile", &[]);
            let p = PatientProfile::sample(&mut rng, &Population::default());
            assert!((55.0..95.0).contains(&p.heart_rate));
            assert!((100.0..150.0).contains(&p.systolic));
            assert!((60.0..95.0).contains(&p.diastolic));
            assert!((30.0..=75.0).contains(&(p.systolic - p.diastolic)));
            assert!((94.0..99.0).contains(&p.spo2));
            assert!((12.0..20.0).contains(&p.respiration_rate));
            assert!((36.3..37.3).contains(&p.temperature_c));
            match p.diabetes {
                Some(t) => {
                    assert!((100.0..140.0).contains(&p.fasting_glucose));
                    assert!((0.1..=2.5).contains(&t.basal_rate), "{t:?}");
                }
                None => assert!((75.0..100.0).contains(&p.fasting_glucose)),
            }
        }
    }

    #[test]
    fn vitals_are_consistent_with_each_other() {
        let mut p = patient(1, NONE, true);
        for _ in 0..5000 {
            p.step(17.0);
            let v = p.vitals();
            assert!(
                (v.mean_arterial - (v.diastolic + (v.systolic - v.diastolic) / 3.0)).abs() < 1e-9
            );
            assert!(v.diastolic <= v.systolic - MIN_PULSE_PRESSURE);
            assert_eq!(
                v.pulse_rate, v.heart_rate,
                "no pulse deficit in sinus rhythm"
            );
            assert!(v.spo2 <= 100.0);
            assert_eq!(v.rhythm, Rhythm::Sinus);
        }
    }

    #[test]
    fn heart_rate_pressure_and_temperature_are_lower_at_night() {
        let (mut night, mut day) = ([0.0; 3], [0.0; 3]);
        for seed in 0..30 {
            let mut p = patient(seed, NONE, false);
            for _ in 0..(3 * 24 * 12) {
                p.step(300.0);
                let v = p.vitals();
                let sample = [v.heart_rate, v.systolic, v.temperature_c];
                let h = p.clock_hours();
                let bucket = if (2.0..6.0).contains(&h) {
                    &mut night
                } else if (14.0..18.0).contains(&h) {
                    &mut day
                } else {
                    continue;
                };
                for (acc, x) in bucket.iter_mut().zip(sample) {
                    *acc += x;
                }
            }
        }
        let n = 30.0 * 3.0 * 4.0 * 12.0;
        let (night, day) = (night.map(|x| x / n), day.map(|x| x / n));
        assert!(day[0] - night[0] > 3.0, "heart rate {day:?} vs {night:?}");
        assert!(day[1] - night[1] > 3.0, "systolic {day:?} vs {night:?}");
        assert!(day[2] - night[2] > 0.3, "temperature {day:?} vs {night:?}");
    }

    #[test]
    fn a_pacemaker_holds_the_lower_rate() {
        for seed in 0..20 {
            let mut rng = SimRng::derive(seed, "test.profile", &[]);
            let mut profile = PatientProfile::sample(&mut rng, &NONE).with_pacemaker();
            profile.heart_rate = 55.0;
            let mut p = Physiology::new(profile, seed, 0, 0.0, false);
            p.set_pacing_lower_rate(70.0).unwrap();
            let mut paced = 0;
            for _ in 0..2000 {
                p.step(30.0);
                assert!(p.vitals().heart_rate >= 70.0);
                paced += usize::from(p.vitals().rhythm == Rhythm::Paced);
            }
            assert!(paced > 500, "{paced}");
        }
        let mut p = patient(0, NONE, false);
        assert_eq!(
            p.set_pacing_lower_rate(60.0),
            Err(TherapyError::NoPacemaker)
        );
    }

    #[test]
    fn therapy_needs_a_pump() {
        let mut p = patient(0, NONE, false);
        assert_eq!(p.deliver_bolus(2.0), Err(TherapyError::NoInsulinPump));
        assert_eq!(p.set_basal_rate(1.0), Err(TherapyError::NoInsulinPump));
        assert!(p.insulin_pump().is_none());
        let mut d = patient(0, TYPE1, false);
        assert_eq!(d.deliver_bolus(f64::NAN), Err(TherapyError::OutOfRange));
        assert_eq!(d.set_basal_rate(-1.0), Err(TherapyError::OutOfRange));
        d.deliver_bolus(2.0).unwrap();
        let pump = d.insulin_pump().unwrap();
        assert_eq!((pump.boluses, pump.last_bolus.unwrap().units), (1, 2.0));
    }

    #[test]
    fn the_basal_rate_holds_fasting_glucose_and_a_stopped_pump_lets_it_climb() {
        for seed in 0..10 {
            let mut p = patient(seed, TYPE1, false);
            let fasting = p.profile().fasting_glucose;
            for _ in 0..(24 * 60) {
                p.step(60.0);
                let g = p.vitals().glucose_mg_dl;
                assert!((g - fasting).abs() < 40.0, "seed {seed}: {g} vs {fasting}");
            }
            let before = p.vitals().glucose_mg_dl;
            p.set_insulin_suspended(true).unwrap();
            for _ in 0..(6 * 60) {
                p.step(60.0);
            }
            let after = p.vitals().glucose_mg_dl;
            // After a pump stops, glucose climbs by tens of mg/dL per hour once the insulin on
            // board is spent.
            assert!(after - before > 50.0, "seed {seed}: {before} → {after}");
            assert!(after < 350.0, "seed {seed}: {after}");
        }
    }

    #[test]
    fn hospital_meals_come_at_meal_times_with_boluses() {
        let mut p = patient(4, TYPE1, true);
        let mut bolus_hours = Vec::new();
        let mut seen = 0;
        for _ in 0..(2 * 24 * 60) {
            p.step(60.0);
            let pump = p.insulin_pump().unwrap();
            if pump.boluses != seen {
                seen = pump.boluses;
                bolus_hours.push(p.clock_hours());
            }
        }
        assert!(bolus_hours.len() >= 5, "{bolus_hours:?}");
        for h in &bolus_hours {
            let near_meal = [7.5, 12.0, 17.5, 20.5].iter().any(|m| (h - m).abs() < 0.5);
            assert!(near_meal, "bolus at {h} h");
        }
    }

    #[test]
    fn glucose_climbs_back_from_a_hypoglycaemia_at_a_body_s_pace_even_over_a_meal() {
        for seed in 0..5 {
            let hypo =
                ClinicalEvent::new(ClinicalEventKind::Hypoglycaemia, 600.0, 2400.0, 45.0).unwrap();
            let mut p =
                patient(seed, TYPE1, false).with_events(ClinicalEventSchedule::scripted([hypo]));
            let dt = 10.0;
            let mut previous = p.vitals().glucose_mg_dl;
            let mut fastest_rise = 0.0f64;
            while p.time() < hypo.end() + 3.0 * 3600.0 {
                if p.time() == 1200.0 {
                    // A large meal with no bolus: without the event glucose would pass 250.
                    p.eat(120.0);
                }
                p.step(dt);
                let g = p.vitals().glucose_mg_dl;
                fastest_rise = fastest_rise.max((g - previous) / dt * 60.0);
                previous = g;
            }
            assert!(
                fastest_rise <= 5.0 + 1e-9,
                "seed {seed}: {fastest_rise} mg/dL/min"
            );
            // Recovered: back to the glucose the patient would have had without the event.
            assert!(!p.recovering, "seed {seed}");
            assert_eq!(p.vitals().glucose_mg_dl, p.glucose.glucose(), "seed {seed}");
        }
    }

    #[test]
    fn a_step_that_is_not_a_duration_does_nothing() {
        let mut p = patient(2, NONE, true);
        let before = *p.vitals();
        for dt in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            p.step(dt);
        }
        assert_eq!(p.time(), 0.0);
        assert_eq!(*p.vitals(), before);
    }
}
