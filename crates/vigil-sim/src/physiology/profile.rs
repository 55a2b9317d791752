//! Who a patient is: baselines and traits, sampled once from the patient's own stream.

use serde::Serialize;

use crate::rng::SimRng;
use crate::round_to;

/// The mix of patients a ward admits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Population {
    /// Fraction of patients with type 1 diabetes on an insulin pump. Type 1 diabetes is about 5–10
    /// % of diabetes and diabetes about a quarter of inpatients (ADA Standards of Care, "Diabetes
    /// Care in the Hospital"); the default 0.15 over-represents pump users so that a small demo
    /// ward has some.
    pub type1_diabetes: f64,
    /// Fraction of patients with an implanted pacemaker followed by a home/bedside monitor.
    pub pacemaker: f64,
}

impl Default for Population {
    fn default() -> Self {
        Self {
            type1_diabetes: 0.15,
            pacemaker: 0.08,
        }
    }
}

/// A patient's baselines and traits. Every number is the patient's own 24-hour mean (mesor), the
/// value the circadian rhythm and short-term variability move around.
///
/// Ranges are those of an adult ward patient who is stable between events: heart rate 55–95 /min,
/// systolic 100–150 and diastolic 60–95 `mm[Hg]`, SpO2 94–99 %, respiration 12–20 /min, temperature
/// 36.3–37.3 °C. They sit inside the usual early-warning "normal" bands (Royal College of
/// Physicians, NEWS2, 2017), widened to include the mild hypertension common on a ward.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatientProfile {
    /// Body weight, kg; scales glucose and insulin distribution volumes.
    pub weight_kg: f64,
    /// Mean heart rate, /min.
    pub heart_rate: f64,
    /// Half the peak-to-trough day–night swing of heart rate, /min (see `circadian`).
    pub heart_rate_amplitude: f64,
    /// Mean systolic pressure, `mm[Hg]`.
    pub systolic: f64,
    /// Mean diastolic pressure, `mm[Hg]`.
    pub diastolic: f64,
    /// Nocturnal blood pressure dip as a fraction of the daytime mean, 0–0.12: 0.10–0.20 is the
    /// normal "dipper", below 0.10 a "non-dipper" (O'Brien, Sheridan, O'Malley, Lancet
    /// 1988;2:397); dipping is blunted in hospital (noise, light, illness), so the model stops at
    /// the low end of normal.
    pub bp_dip: f64,
    /// Mean SpO2, %.
    pub spo2: f64,
    /// Mean respiration rate, /min.
    pub respiration_rate: f64,
    /// Mean body temperature, °C.
    pub temperature_c: f64,
    /// Half the day–night swing of body temperature, °C.
    pub temperature_amplitude: f64,
    /// Shift of this patient's circadian phase from the population's, hours (chronotype).
    pub phase_shift_h: f64,
    /// Fasting plasma glucose of a patient without diabetes, or the glucose the pump's basal rate
    /// holds a patient with type 1 diabetes at, mg/dL.
    pub fasting_glucose: f64,
    /// Pump therapy, for a patient with type 1 diabetes.
    pub diabetes: Option<InsulinTherapy>,
    /// The programmed lower rate of an implanted pacemaker, /min, if the patient has one.
    pub pacemaker_lower_rate: Option<f64>,
    /// The therapy this patient would have were they on a pump: sampled for everyone so that a
    /// caller who gives a patient a pump (and so diabetes) does not shift anyone's stream.
    pub(crate) latent_therapy: InsulinTherapy,
    /// Likewise the pacemaker setting.
    pub(crate) latent_lower_rate: f64,
}

/// How a patient with type 1 diabetes is treated on an insulin pump.
///
/// Doses follow the pump-therapy rules of thumb (Walsh and Roberts, *Pumping Insulin*, 4th ed.,
/// 2006): total daily dose (TDD) 0.4–0.8 U/kg; basal about half of it; carbohydrate ratio
/// 500/TDD g per unit; correction factor 1800/TDD mg/dL per unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InsulinTherapy {
    /// Total daily insulin dose, units.
    pub total_daily_dose: f64,
    /// Programmed basal rate, U/h, in the pump's 0.05 U/h steps.
    pub basal_rate: f64,
    /// Grams of carbohydrate one unit covers.
    pub carb_ratio: f64,
    /// mg/dL one unit lowers glucose by (at 150 mg/dL, where the model is calibrated).
    pub correction_factor: f64,
    /// Relative error of this patient's carbohydrate counting, as a standard deviation. Adults
    /// with type 1 diabetes misjudge meals by about 20 % on average (Brazeau et al., Diabetes Res
    /// Clin Pract 2013;99:19).
    pub carb_count_error: f64,
}

impl InsulinTherapy {
    fn sample(rng: &mut SimRng, weight_kg: f64) -> Self {
        let total_daily_dose = weight_kg * rng.range(0.4, 0.8);
        let basal_fraction = rng.range(0.40, 0.55);
        Self {
            total_daily_dose,
            basal_rate: round_to(total_daily_dose * basal_fraction / 24.0, 0.05).max(0.1),
            carb_ratio: 500.0 / total_daily_dose,
            correction_factor: 1800.0 / total_daily_dose,
            carb_count_error: rng.range(0.10, 0.25),
        }
    }
}

impl PatientProfile {
    /// Samples a patient. Every draw is made whatever the outcome of earlier ones, so the number
    /// of draws, and with it everything sampled after, never depends on the population mix.
    pub fn sample(rng: &mut SimRng, population: &Population) -> Self {
        let weight_kg = rng.range(50.0, 110.0);
        let heart_rate = rng.range(55.0, 95.0);
        let heart_rate_amplitude = rng.range(2.5, 6.0);
        let systolic = rng.range(100.0, 150.0);
        // Pulse pressure 30–75 mm[Hg]: wider in the older, stiffer arteries of many inpatients.
        let diastolic_low = (systolic - 75.0).max(60.0);
        let diastolic_high = (systolic - 30.0).min(95.0);
        let diastolic = rng.range(diastolic_low, diastolic_high);
        let bp_dip = rng.range(0.0, 0.12);
        let spo2 = rng.range(94.0, 99.0);
        let respiration_rate = rng.range(12.0, 20.0);
        let temperature_c = rng.range(36.3, 37.3);
        let temperature_amplitude = rng.range(0.25, 0.35);
        let phase_shift_h = rng.range(-1.0, 1.0);
        let is_diabetic = rng.chance(population.type1_diabetes);
        let has_pacemaker = rng.chance(population.pacemaker);
        let fasting_nondiabetic = rng.range(75.0, 100.0);
        // Inpatient glucose targets 100–180 mg/dL (ADA Standards of Care, "Diabetes Care in the
        // Hospital"); a pump's basal rate is tuned to hold fasting glucose near the low end.
        let fasting_diabetic = rng.range(100.0, 140.0);
        let latent_therapy = InsulinTherapy::sample(rng, weight_kg);
        // Common programmed lower rates.
        let latent_lower_rate = [50.0, 60.0, 60.0, 70.0][rng.index(4)];
        Self {
            weight_kg,
            heart_rate,
            heart_rate_amplitude,
            systolic,
            diastolic,
            bp_dip,
            spo2,
            respiration_rate,
            temperature_c,
            temperature_amplitude,
            phase_shift_h,
            fasting_glucose: if is_diabetic {
                fasting_diabetic
            } else {
                fasting_nondiabetic
            },
            diabetes: is_diabetic.then_some(latent_therapy),
            pacemaker_lower_rate: has_pacemaker.then_some(latent_lower_rate),
            latent_therapy,
            latent_lower_rate,
        }
    }

    /// Makes this patient one with type 1 diabetes on a pump (a caller assigned an insulin pump),
    /// keeping every other trait. The fasting glucose moves into the inpatient target band.
    pub fn with_type1_diabetes(mut self) -> Self {
        if self.diabetes.is_none() {
            self.diabetes = Some(self.latent_therapy);
            // Map the non-diabetic 75–100 band onto the pump-held 100–140 band.
            self.fasting_glucose = 100.0 + (self.fasting_glucose - 75.0) * 40.0 / 25.0;
        }
        self
    }

    /// Gives this patient an implanted pacemaker (a caller assigned a pacemaker monitor).
    pub fn with_pacemaker(mut self) -> Self {
        if self.pacemaker_lower_rate.is_none() {
            self.pacemaker_lower_rate = Some(self.latent_lower_rate);
        }
        self
    }
}
