//! Glucose and insulin: meals, an insulin pump for type 1 diabetes, and the body's own insulin
//! for everyone else.
//!
//! The model joins the shapes of two published ones (equations in `docs/simulator.md`):
//!
//! - glucose and insulin action as in Bergman's minimal model (Bergman et al., Am J Physiol
//!   1979;236:E667): `dG/dt = EGP − S_G·G − U(X, G) + Ra/V_G`, `dX/dt = p₂·(S_I·I − X)`, with
//!   insulin-stimulated uptake `U = X·G` (saturating in type 1 diabetes, see `UPTAKE_K`) and the
//!   endogenous production `EGP` set so that the patient's basal insulin holds their fasting
//!   glucose;
//! - meal absorption and subcutaneous insulin as two-compartment chains from Hovorka et al.
//!   (Physiol Meas 2004;25:905): `t_max,G` 40 min, `t_max,I` 55 min, insulin elimination
//!   `k_e` 0.138 /min, volumes `V_G` 0.16 L/kg and `V_I` 0.12 L/kg.
//!
//! A patient without diabetes secretes insulin in proportion to glucose above fasting, which
//! returns a meal's rise within two to three hours; a patient with type 1 diabetes makes none and
//! depends on the pump's basal rate and meal boluses; their lows below 70 mg/dL are treated with
//! 15 g of carbohydrate, as on a ward.

use serde::Serialize;

use super::circadian::DAY_S;
use super::ou::Ou;
use super::profile::{InsulinTherapy, PatientProfile};
use crate::rng::SimRng;
use crate::round_to;

/// Glucose distribution volume, dL/kg (Hovorka 2004: 0.16 L/kg).
const VG_DL_PER_KG: f64 = 1.6;
/// Insulin distribution volume, L/kg (Hovorka 2004).
const VI_L_PER_KG: f64 = 0.12;
/// Time to peak of carbohydrate absorption, min (Hovorka 2004).
const TMAX_G: f64 = 40.0;
/// Time to peak of subcutaneous rapid-acting insulin absorption, min (Hovorka 2004).
const TMAX_I: f64 = 55.0;
/// Plasma insulin elimination, /min (Hovorka 2004).
const KE: f64 = 0.138;
/// Rate constant of insulin action, /min: action peaks 1.5–2 h after a subcutaneous bolus and
/// lasts 4–5 h, as for rapid-acting analogues (Bergman's p₂ is 0.02–0.03 /min).
const P2: f64 = 0.025;
/// Fraction of ingested carbohydrate that reaches the circulation. Set so that one gram raises
/// glucose by about 3.6 mg/dL in a 70 kg adult, the ratio of the correction factor to the
/// carbohydrate ratio (1800/TDD ÷ 500/TDD) on which pump doses are calculated, rather than
/// Hovorka's 0.8, which with this simpler model would overstate meal rises: first-pass hepatic
/// uptake and the suppression of hepatic output after a meal are folded into it.
const CARB_APPEARANCE: f64 = 0.40;

/// Glucose effectiveness: the insulin-independent pull of glucose towards its equilibrium,
/// /min. Healthy adults 0.01–0.03 (Bergman 1979). In type 1 diabetes the model's pull is weak
/// (a time constant of about 8 h): a correction bolus then lowers glucose durably, by about its
/// correction factor, as pump users rely on; and without insulin glucose climbs for many hours
/// towards about 400 mg/dL.
const SG_HEALTHY: f64 = 0.015;
const SG_TYPE1: f64 = 0.002;
/// Insulin-stimulated uptake in type 1 diabetes saturates with glucose: it is `X·G_ref·s(G)` with
/// `s(G) = G/(G+K) · (G_ref+K)/G_ref`, nearly independent of glucose above 100 mg/dL and falling
/// to nothing as glucose does (Michaelis–Menten kinetics of insulin-stimulated transport; K is
/// set low so that the correction factor holds across the usual range). With the pump stopped
/// glucose then climbs by `X_b·G_ref`, 30–40 mg/dL per hour for the usual basal-to-total ratio,
/// as in pump-interruption studies (mean 37 mg/dL/h after the first hour across eight studies,
/// Klonoff et al., J Diabetes Sci Technol 2024; 313 mg/dL six hours after a night-time stop in
/// eight C-peptide-negative patients, Scheen and Lefebvre, "A 6-hour nocturnal interruption of a
/// continuous subcutaneous insulin infusion").
const UPTAKE_K: f64 = 30.0;
/// Counter-regulation: endogenous glucose production rises as glucose falls below 70 mg/dL, to
/// this fraction above basal at 40 mg/dL (glucagon and adrenaline; Cryer, Diabetes 2008). In type
/// 1 diabetes the glucagon response is lost within a few years and the rest is blunted, so half.
const COUNTER_REGULATION_HEALTHY: f64 = 1.0;
const COUNTER_REGULATION_TYPE1: f64 = 0.5;
/// Insulin sensitivity of an adult without diabetes, /min per mU/L (Bergman 1979: 5–8·10⁻⁴).
const SI_HEALTHY: f64 = 6.0e-4;
/// Fasting plasma insulin without diabetes, mU/L.
const BASAL_INSULIN_HEALTHY: f64 = 8.0;
/// Insulin secretion above basal per mg/dL above fasting glucose, mU/L; with `SECRETION_RATE` it
/// gives post-meal insulin of 30–50 mU/L and a glucose peak 30–50 mg/dL above fasting.
const SECRETION_GAIN: f64 = 0.6;
/// How fast secreted insulin follows glucose, /min (first phase within minutes).
const SECRETION_RATE: f64 = 0.1;
/// Glucose at which the correction factor holds, mg/dL (the model's insulin effect is
/// proportional to glucose).
const CORRECTION_REFERENCE: f64 = 150.0;
/// Longest integration step, minutes: the fastest rate (elimination, 0.138 /min) is then well
/// inside forward Euler's stability.
const MAX_STEP_MIN: f64 = 0.5;
/// A low is treated with 15 g of fast carbohydrate and rechecked after 15 minutes, the "rule of
/// 15" (ADA Standards of Care, "Glycemic Goals and Hypoglycemia"), from below 70 mg/dL (level 1).
const HYPO_TREATMENT_BELOW: f64 = 70.0;
const HYPO_TREATMENT_G: f64 = 15.0;
const HYPO_RECHECK_S: f64 = 900.0;
/// Largest bolus the pump delivers by itself (patient-initiated meal and correction).
const MAX_AUTO_BOLUS: f64 = 25.0;

/// One meal time of a hospital day: clock hour, carbohydrate range (g), chance it is eaten.
/// Hospital meals are served early and consistent-carbohydrate diets give about 45–75 g per meal
/// (ADA Standards of Care, "Diabetes Care in the Hospital"); some meals are missed (nil by mouth,
/// nausea, tests).
const MEALS: [(f64, (f64, f64), f64); 4] = [
    (7.5, (30.0, 60.0), 0.92),
    (12.0, (45.0, 75.0), 0.92),
    (17.5, (45.0, 75.0), 0.92),
    (20.5, (10.0, 25.0), 0.4),
];

/// A bolus the pump delivered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bolus {
    /// When, simulated seconds since the run began.
    pub time: f64,
    /// How much, units of insulin.
    pub units: f64,
}

/// The state of a patient's insulin pump.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InsulinPump {
    /// Programmed basal rate, U/h (delivered unless suspended).
    pub basal_rate: f64,
    /// Whether delivery is suspended.
    pub suspended: bool,
    /// The latest bolus.
    pub last_bolus: Option<Bolus>,
    /// Boluses delivered so far (a device reports each new one once).
    pub boluses: u64,
    /// Changes to the basal rate or suspension so far (a device reports a change at once).
    pub changes: u64,
}

/// A meal drawn from the plan.
#[derive(Debug, Clone, Copy)]
struct Meal {
    time: f64,
    carbs: f64,
    eaten: bool,
    /// Standard normal draw for the carbohydrate-counting error of the bolus.
    count_error: f64,
}

/// The hospital meal routine, drawn lazily one meal at a time.
#[derive(Debug, Clone)]
struct MealPlan {
    rng: SimRng,
    /// Clock time of the run's start, seconds after midnight.
    start_clock_s: f64,
    day: i64,
    slot: usize,
    next: Option<Meal>,
}

impl MealPlan {
    fn new(rng: SimRng, start_clock_s: f64) -> Self {
        let mut plan = Self {
            rng,
            start_clock_s,
            day: 0,
            slot: 0,
            next: None,
        };
        plan.next = plan.draw();
        plan
    }

    fn draw(&mut self) -> Option<Meal> {
        loop {
            let (hour, (lo, hi), p) = MEALS.get(self.slot).copied()?;
            // Four draws per slot, whatever is decided.
            let jitter = self.rng.range(-20.0, 20.0) * 60.0;
            let carbs = self.rng.range(lo, hi);
            let eaten = self.rng.chance(p);
            let count_error = self.rng.normal();
            #[allow(clippy::cast_precision_loss)] // day counts stay far below 2^52
            let time = self.day as f64 * DAY_S + hour * 3600.0 + jitter - self.start_clock_s;
            self.slot += 1;
            if self.slot == MEALS.len() {
                self.slot = 0;
                self.day += 1;
            }
            // Meals before the run began were eaten by someone else's simulation.
            if time >= 0.0 {
                return Some(Meal {
                    time,
                    carbs,
                    eaten,
                    count_error,
                });
            }
        }
    }
}

/// The glucose–insulin state of one patient.
#[derive(Debug, Clone)]
pub(crate) struct GlucoseModel {
    /// Glucose distribution volume, dL.
    vg: f64,
    /// Insulin distribution volume, L.
    vi: f64,
    /// Glucose effectiveness, /min.
    sg: f64,
    /// Insulin sensitivity, /min per mU/L.
    si: f64,
    /// Basal endogenous glucose production, mg/dL/min.
    egp: f64,
    /// Whether insulin-stimulated uptake saturates (type 1 diabetes) or follows glucose.
    saturating: bool,
    /// Counter-regulatory rise of endogenous production at 40 mg/dL, relative.
    counter_regulation: f64,
    /// Fasting (or pump-held) glucose, mg/dL.
    fasting: f64,
    /// Slow variation of endogenous production (counter-regulatory hormones, stress), relative.
    egp_variation: Ou,

    /// Plasma glucose, mg/dL.
    glucose: f64,
    /// Insulin action, /min.
    action: f64,
    /// Plasma insulin, mU/L.
    insulin: f64,
    /// Subcutaneous insulin depots, mU.
    depot: [f64; 2],
    /// Carbohydrate in the gut, mg.
    gut: [f64; 2],

    therapy: Option<InsulinTherapy>,
    pump: Option<InsulinPump>,
    meals: Option<MealPlan>,
    /// When a low was last treated, s.
    last_rescue: f64,
}

impl GlucoseModel {
    /// The model at its fasting steady state. `meal_rng` feeds the hospital meal plan; `None`
    /// means the patient eats only what the caller gives (see `eat`).
    pub(crate) fn new(
        profile: &PatientProfile,
        rng: &mut SimRng,
        meal_rng: Option<SimRng>,
        start_clock_s: f64,
    ) -> Self {
        let vg = VG_DL_PER_KG * profile.weight_kg;
        let vi = VI_L_PER_KG * profile.weight_kg;
        let fasting = profile.fasting_glucose;
        let egp_variation = Ou::new(7200.0, 0.10, rng);
        let meals = meal_rng.map(|r| MealPlan::new(r, start_clock_s));
        let mut model = match profile.diabetes {
            Some(therapy) => {
                // The correction factor fixes sensitivity: one unit's insulin exposure,
                // 1000 mU / (V_I·k_e), times S_I times glucose is the fall it causes.
                let exposure_per_unit = 1000.0 / (vi * KE);
                let si = therapy.correction_factor / (CORRECTION_REFERENCE * exposure_per_unit);
                let basal = Self::plasma_insulin_at(therapy.basal_rate, vi);
                Self {
                    vg,
                    vi,
                    sg: SG_TYPE1,
                    si,
                    egp: SG_TYPE1 * fasting + si * basal * saturated_uptake(fasting),
                    saturating: true,
                    counter_regulation: COUNTER_REGULATION_TYPE1,
                    fasting,
                    egp_variation,
                    glucose: fasting,
                    action: si * basal,
                    insulin: basal,
                    depot: [0.0; 2],
                    gut: [0.0; 2],
                    therapy: Some(therapy),
                    pump: Some(InsulinPump {
                        basal_rate: therapy.basal_rate,
                        suspended: false,
                        last_bolus: None,
                        boluses: 0,
                        changes: 0,
                    }),
                    meals,
                    last_rescue: f64::NEG_INFINITY,
                }
            }
            None => Self {
                vg,
                vi,
                sg: SG_HEALTHY,
                si: SI_HEALTHY,
                egp: fasting * (SG_HEALTHY + SI_HEALTHY * BASAL_INSULIN_HEALTHY),
                saturating: false,
                counter_regulation: COUNTER_REGULATION_HEALTHY,
                fasting,
                egp_variation,
                glucose: fasting,
                action: SI_HEALTHY * BASAL_INSULIN_HEALTHY,
                insulin: BASAL_INSULIN_HEALTHY,
                depot: [0.0; 2],
                gut: [0.0; 2],
                therapy: None,
                pump: None,
                meals,
                last_rescue: f64::NEG_INFINITY,
            },
        };
        if let Some(pump) = model.pump {
            // Depots at the steady state of the basal infusion.
            let rate = pump.basal_rate * 1000.0 / 60.0;
            model.depot = [rate * TMAX_I, rate * TMAX_I];
        }
        model
    }

    /// Steady-state plasma insulin under a basal rate (U/h), mU/L.
    fn plasma_insulin_at(basal_rate: f64, vi: f64) -> f64 {
        basal_rate * 1000.0 / 60.0 / (vi * KE)
    }

    /// Plasma glucose, mg/dL.
    pub(crate) fn glucose(&self) -> f64 {
        self.glucose
    }

    /// Plasma insulin, mU/L.
    pub(crate) fn insulin(&self) -> f64 {
        self.insulin
    }

    /// The pump, for a patient with one.
    pub(crate) fn pump(&self) -> Option<&InsulinPump> {
        self.pump.as_ref()
    }

    pub(crate) fn pump_mut(&mut self) -> Option<&mut InsulinPump> {
        self.pump.as_mut()
    }

    /// The patient eats `carbs` grams now.
    pub(crate) fn eat(&mut self, carbs: f64) {
        if carbs.is_finite() && carbs > 0.0 {
            self.gut[0] += carbs * 1000.0 * CARB_APPEARANCE;
        }
    }

    /// The pump delivers `units` now.
    pub(crate) fn bolus(&mut self, units: f64, now: f64) -> bool {
        let Some(pump) = self.pump.as_mut() else {
            return false;
        };
        if !(units.is_finite() && units > 0.0) {
            return false;
        }
        self.depot[0] += units * 1000.0;
        pump.last_bolus = Some(Bolus { time: now, units });
        pump.boluses += 1;
        true
    }

    /// Advances from `t0` by `dt` seconds.
    ///
    /// Decisions (meal boluses, treating a low) use this model's glucose, not the value a
    /// clinical event overlays on it: an event is the whole episode, its treatment included, and
    /// leaves the model where it would have been without it.
    pub(crate) fn step(&mut self, t0: f64, dt: f64, rng: &mut SimRng) {
        self.egp_variation.advance(dt, rng);
        let t_end = t0 + dt;
        let mut t = t0;
        while t < t_end {
            // Meals due by the end of this sub-step are served at its start.
            let h = (t_end - t).min(MAX_STEP_MIN * 60.0);
            self.serve_meals(t + h);
            // Patients on insulin have their glucose watched and lows treated; everyone else's
            // counter-regulation is enough.
            if self.therapy.is_some()
                && self.glucose < HYPO_TREATMENT_BELOW
                && t - self.last_rescue >= HYPO_RECHECK_S
            {
                self.eat(HYPO_TREATMENT_G);
                self.last_rescue = t;
            }
            self.integrate(h / 60.0);
            t += h;
        }
    }

    fn serve_meals(&mut self, until: f64) {
        let glucose = self.glucose;
        let Some(plan) = self.meals.as_mut() else {
            return;
        };
        let mut served = Vec::new();
        // A long step could pass several meals; each is served in turn.
        while let Some(meal) = plan.next {
            if meal.time > until {
                break;
            }
            served.push(meal);
            plan.next = plan.draw();
        }
        for meal in served {
            if !meal.eaten {
                continue;
            }
            self.eat(meal.carbs);
            if let Some(therapy) = self.therapy {
                // Carbohydrate counted with the patient's error, plus a correction above 150.
                let counted = meal.carbs * (1.0 + therapy.carb_count_error * meal.count_error);
                let correction =
                    ((glucose - CORRECTION_REFERENCE) / therapy.correction_factor).max(0.0);
                let suspended = self.pump.is_some_and(|p| p.suspended);
                // No bolus into a hypo or through a suspended pump.
                if !suspended && glucose >= HYPO_TREATMENT_BELOW {
                    let units = round_to(counted / therapy.carb_ratio + correction, 0.05)
                        .min(MAX_AUTO_BOLUS);
                    self.bolus(units, meal.time);
                }
            }
        }
    }

    fn integrate(&mut self, h: f64) {
        let ra = self.gut[1] / TMAX_G;
        let gut0 = self.gut[0] - h * self.gut[0] / TMAX_G;
        let gut1 = self.gut[1] + h * (self.gut[0] - self.gut[1]) / TMAX_G;
        self.gut = [gut0.max(0.0), gut1.max(0.0)];

        let insulin = match self.pump {
            Some(pump) => {
                let delivery = if pump.suspended {
                    0.0
                } else {
                    pump.basal_rate * 1000.0 / 60.0
                };
                let appearance = self.depot[1] / TMAX_I;
                let d0 = self.depot[0] + h * (delivery - self.depot[0] / TMAX_I);
                let d1 = self.depot[1] + h * (self.depot[0] - self.depot[1]) / TMAX_I;
                self.depot = [d0.max(0.0), d1.max(0.0)];
                self.insulin + h * (appearance / self.vi - KE * self.insulin)
            }
            None => {
                let target =
                    BASAL_INSULIN_HEALTHY + SECRETION_GAIN * (self.glucose - self.fasting).max(0.0);
                self.insulin + h * SECRETION_RATE * (target - self.insulin)
            }
        };
        let action = self.action + h * P2 * (self.si * self.insulin - self.action);
        let low = ((70.0 - self.glucose) / 30.0).clamp(0.0, 1.0);
        let egp = self.egp
            * (1.0 + self.egp_variation.value()).max(0.5)
            * (1.0 + self.counter_regulation * low);
        let uptake = if self.saturating {
            self.action * saturated_uptake(self.glucose)
        } else {
            self.action * self.glucose
        };
        let glucose = self.glucose + h * (egp - self.sg * self.glucose - uptake + ra / self.vg);
        self.insulin = insulin.max(0.0);
        self.action = action.max(0.0);
        self.glucose = glucose.clamp(20.0, 600.0);
    }
}

/// `G_ref·s(G)`, the glucose factor of saturating insulin-stimulated uptake (see `UPTAKE_K`).
fn saturated_uptake(glucose: f64) -> f64 {
    let g = glucose.max(0.0);
    g / (g + UPTAKE_K) * (CORRECTION_REFERENCE + UPTAKE_K)
}
