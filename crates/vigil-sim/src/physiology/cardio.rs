//! Heart rate, blood pressure, oxygen saturation, respiration and temperature between events:
//! circadian rhythm plus mean-reverting variability, with heart rate and blood pressure sharing a
//! sympathetic-tone factor so that they move together.

use super::circadian::{CARDIO_ACROPHASE_H, TEMPERATURE_ACROPHASE_H, cosinor};
use super::ou::Ou;
use super::profile::PatientProfile;
use crate::rng::SimRng;

/// Heart rate per unit of sympathetic tone, /min. With the blood-pressure gains below and the
/// shared circadian rhythm this makes systolic pressure and heart rate correlate positively over
/// a day (r ≈ 0.5–0.8 in the model), as sympathetic activation raises both; the baroreflex, which
/// moves them in opposite directions, acts on faster perturbations and on the hypotension event.
const HR_PER_TONE: f64 = 4.0;
/// Systolic pressure per unit of sympathetic tone, `mm[Hg]`.
const SBP_PER_TONE: f64 = 5.0;
/// Diastolic pressure per unit of sympathetic tone, `mm[Hg]`.
const DBP_PER_TONE: f64 = 3.0;

/// Night-time fall of SpO2 at the circadian trough, %: saturation in sleep runs about 1 % below
/// waking values in healthy adults (Gries and Brooks, Chest 1996;110:1489).
const SPO2_NIGHT_FALL: f64 = 0.5;
/// Day–night swing of respiration rate, half peak to trough, /min. Ventilation falls in sleep
/// mostly through smaller breaths, the rate changing little (Douglas et al., Thorax
/// 1982;37:840).
const RR_AMPLITUDE: f64 = 0.7;

/// Homeostatic buffering: the baroreflex and the other control loops hold a stable patient near
/// their set points, so the sum of the random variations of a signal is compressed smoothly
/// (`L·tanh(x/L)`) towards at most these bounds. Within two standard deviations the compression
/// is slight; beyond, a stable patient's values do not wander into the range of clinical events.
const HR_BUFFER: f64 = 12.0;
const SBP_BUFFER: f64 = 12.0;
const DBP_BUFFER: f64 = 8.0;
const SPO2_BUFFER: f64 = 2.0;
const RR_BUFFER: f64 = 3.5;
const TEMPERATURE_BUFFER: f64 = 0.25;

fn buffered(x: f64, bound: f64) -> f64 {
    bound * (x / bound).tanh()
}

/// The variability of one patient's cardiorespiratory signals.
///
/// Spreads are chosen so that, with the circadian swing, the within-day standard deviation is
/// about 5–7 /min for heart rate and 8–12 `mm[Hg]` for systolic pressure: the lower end of 24-hour
/// ambulatory recordings (Parati et al., Nat Rev Cardiol 2013;10:143), as fits patients resting
/// in bed.
#[derive(Debug, Clone)]
pub(crate) struct CardioState {
    /// Shared sympathetic tone, dimensionless, τ 10 min.
    tone: Ou,
    /// Slow heart-rate drift independent of tone (posture, pain, visitors), τ 30 min.
    hr_slow: Ou,
    /// Beat-to-beat variation as a 1 s monitor average shows it (respiratory sinus arrhythmia),
    /// τ 15 s.
    hr_fast: Ou,
    /// Systolic variation independent of tone, τ 20 min.
    sbp: Ou,
    /// Diastolic variation independent of tone, τ 20 min.
    dbp: Ou,
    /// SpO2 variation, τ 5 min.
    spo2: Ou,
    /// Respiration-rate variation, τ 5 min.
    rr: Ou,
    /// Temperature variation, τ 1 h.
    temperature: Ou,
    /// Irregularity of the ventricular rate in atrial fibrillation, unit spread, τ 3 s; always
    /// stepped so that the number of draws does not depend on events.
    pub(crate) af_irregularity: Ou,
    /// Variation of the pulse deficit in atrial fibrillation, unit spread, τ 8 s.
    pub(crate) deficit_variation: Ou,
}

/// The patient's signals before clinical events are applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Baseline {
    pub(crate) heart_rate: f64,
    pub(crate) systolic: f64,
    pub(crate) diastolic: f64,
    pub(crate) spo2: f64,
    pub(crate) respiration_rate: f64,
    pub(crate) temperature_c: f64,
}

impl CardioState {
    pub(crate) fn new(rng: &mut SimRng) -> Self {
        Self {
            tone: Ou::new(600.0, 1.0, rng),
            hr_slow: Ou::new(1800.0, 2.5, rng),
            hr_fast: Ou::new(15.0, 1.2, rng),
            sbp: Ou::new(1200.0, 4.0, rng),
            dbp: Ou::new(1200.0, 2.5, rng),
            spo2: Ou::new(300.0, 0.6, rng),
            rr: Ou::new(300.0, 1.0, rng),
            temperature: Ou::new(3600.0, 0.1, rng),
            af_irregularity: Ou::new(3.0, 1.0, rng),
            deficit_variation: Ou::new(8.0, 1.0, rng),
        }
    }

    /// Advances every process by `dt` seconds: ten normal draws, always.
    pub(crate) fn step(&mut self, dt: f64, rng: &mut SimRng) {
        for ou in [
            &mut self.tone,
            &mut self.hr_slow,
            &mut self.hr_fast,
            &mut self.sbp,
            &mut self.dbp,
            &mut self.spo2,
            &mut self.rr,
            &mut self.temperature,
            &mut self.af_irregularity,
            &mut self.deficit_variation,
        ] {
            ou.advance(dt, rng);
        }
    }

    /// The signals at clock time `hours`.
    pub(crate) fn baseline(&self, profile: &PatientProfile, hours: f64) -> Baseline {
        let shifted = hours - profile.phase_shift_h;
        let cardio = cosinor(shifted, CARDIO_ACROPHASE_H);
        let thermal = cosinor(shifted, TEMPERATURE_ACROPHASE_H);
        let tone = self.tone.value();
        // The day-half and night-half means of a cosine of amplitude A differ by 4A/π, so a
        // nocturnal dip d (night mean relative to day mean) needs A = πd/4.
        let bp_factor = 1.0 + std::f64::consts::FRAC_PI_4 * profile.bp_dip * cardio;
        Baseline {
            heart_rate: profile.heart_rate
                + profile.heart_rate_amplitude * cardio
                + buffered(
                    HR_PER_TONE * tone + self.hr_slow.value() + self.hr_fast.value(),
                    HR_BUFFER,
                ),
            systolic: profile.systolic * bp_factor
                + buffered(SBP_PER_TONE * tone + self.sbp.value(), SBP_BUFFER),
            diastolic: profile.diastolic * bp_factor
                + buffered(DBP_PER_TONE * tone + self.dbp.value(), DBP_BUFFER),
            spo2: profile.spo2
                + SPO2_NIGHT_FALL * cardio
                + buffered(self.spo2.value(), SPO2_BUFFER),
            respiration_rate: profile.respiration_rate
                + RR_AMPLITUDE * cardio
                + buffered(self.rr.value(), RR_BUFFER),
            temperature_c: profile.temperature_c
                + profile.temperature_amplitude * thermal
                + buffered(self.temperature.value(), TEMPERATURE_BUFFER),
        }
    }
}
