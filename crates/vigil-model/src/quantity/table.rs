//! The vocabulary table. Every entry names its sources by the short names below;
//! `docs/vocabulary.md` gives each source's exact location and the reasoning behind every
//! plausibility limit. The tests in `table/tests.rs` check this table against a second,
//! independent transcription of the codes.
//!
//! - [10101]: IEEE 11073-10101 nomenclature as transcribed in the Antidote IEEE 11073 stack
//!   (signove/antidote `src/dim/nomenclature.h`, `src/specializations/*.h`) and in OpenICE's
//!   NIST-RTMMS-derived `physio.idl` (mdpnp/mdpnp).
//! - [PHD-IG]: HL7 FHIR Personal Health Device IG examples (HL7/phd `input/examples/`).
//! - [FHIR-VS]: HL7 FHIR R4 vital-signs profiles and value set `observation-vitalsignresult`.
//! - [CGM-IG]: HL7 FHIR CGM IG (HL7/cgm `input/fsh/profiles.fsh`).
//! - [GLU-UPTAKE]: Rizza, Mandarino, Gerich, "Dose-response characteristics for effects of
//!   insulin on production and utilization of glucose in man", Am J Physiol 1981;240:E630
//!   (whole-body glucose utilisation at maximal insulin); DeFronzo, Tobin, Andres, "Glucose
//!   clamp technique", Am J Physiol 1979;237:E214.
//! - [HOVORKA]: Hovorka et al., "Nonlinear model predictive control of glucose concentration in
//!   subjects with type 1 diabetes", Physiol Meas 2004;25:905 (glucose distribution volume 0.16
//!   L/kg; the simulator's model).
//! - [GLU-RATES]: Dunn, Eastman, Tamada, "Rates of glucose change measured by blood glucose
//!   meter and the GlucoWatch Biographer during day, night, and around mealtimes", Diabetes
//!   Care 2004;27:2161.
//! - [UCUM]: The Unified Code for Units of Measure, `ucum-essence.xml`.
//! - [IDC]: IEEE 11073-10103 implantable device cardiac nomenclature, as carried in IDCO HL7
//!   messages (iCARDEA `IEEENomenclature_en.properties`) and HL7 CardX-CIED examples.
//! - [10419]: IEEE 11073-10419 insulin pump terms in partition 128 (PHD_DM). Single public
//!   transcription found; see docs/vocabulary.md, "Codes still to confirm".

use crate::mdc::MdcCode;
use crate::quantity::{Limits, Loinc, Quantity, QuantityKind, QuantitySpec};
use crate::unit::{AcceptedUnit, Conversion, Unit};

const fn unit(ucum: &'static str, display: &'static str, mdc: Option<MdcCode>) -> Unit {
    Unit { ucum, mdc, display }
}

const fn canonical(unit: Unit) -> AcceptedUnit {
    AcceptedUnit {
        unit,
        conversion: Conversion::IDENTITY,
    }
}

const fn also(unit: Unit, conversion: Conversion) -> AcceptedUnit {
    AcceptedUnit { unit, conversion }
}

const fn loinc(code: &'static str, display: &'static str) -> Loinc {
    Loinc { code, display }
}

// Dimension (unit) codes, IEEE 11073-10101 partition 4 [10101]; Philips IntelliVue's NOM_DIM
// table agrees term for term.
const DIM_BEAT_PER_MIN: MdcCode = MdcCode::new("MDC_DIM_BEAT_PER_MIN", 4, 2720);
const DIM_RESP_PER_MIN: MdcCode = MdcCode::new("MDC_DIM_RESP_PER_MIN", 4, 2784);
const DIM_PERCENT: MdcCode = MdcCode::new("MDC_DIM_PERCENT", 4, 544);
const DIM_MMHG: MdcCode = MdcCode::new("MDC_DIM_MMHG", 4, 3872);
const DIM_KILO_PASCAL: MdcCode = MdcCode::new("MDC_DIM_KILO_PASCAL", 4, 3843);
const DIM_DEGC: MdcCode = MdcCode::new("MDC_DIM_DEGC", 4, 6048);
const DIM_FAHR: MdcCode = MdcCode::new("MDC_DIM_FAHR", 4, 4416);
const DIM_MILLI_G_PER_DL: MdcCode = MdcCode::new("MDC_DIM_MILLI_G_PER_DL", 4, 2130);
const DIM_MILLI_MOLE_PER_L: MdcCode = MdcCode::new("MDC_DIM_MILLI_MOLE_PER_L", 4, 4722);
const DIM_MILLI_L_PER_HR: MdcCode = MdcCode::new("MDC_DIM_MILLI_L_PER_HR", 4, 3122);
const DIM_MILLI_L_PER_MIN: MdcCode = MdcCode::new("MDC_DIM_MILLI_L_PER_MIN", 4, 3090);
const DIM_X_INTL_UNIT: MdcCode = MdcCode::new("MDC_DIM_X_INTL_UNIT", 4, 5472);
const DIM_X_INTL_UNIT_PER_HR: MdcCode = MdcCode::new("MDC_DIM_X_INTL_UNIT_PER_HR", 4, 5696);

/// [UCUM] defines `m[Hg]` as 133.3220 kPa, so 1 mm[Hg] = 0.1333220 kPa and
/// 1 kPa = 1 / 0.1333220 mm[Hg] (≈ 7.500638). The UCUM factor is used rather than the
/// conventional 133.322387415 Pa so that a FHIR client converting with UCUM gets the same number.
const KPA_TO_MMHG: f64 = 1.0 / 0.133_322;

/// Glucose C6H12O6, molar mass 180.156 g/mol from IUPAC standard atomic weights
/// (6 × 12.011 + 12 × 1.008 + 6 × 15.999), so 1 mmol/L = 180.156 mg/L = 18.0156 mg/dL.
const MMOL_L_TO_MG_DL: f64 = 18.0156;

const BEATS_PER_MIN: &[AcceptedUnit] = &[
    canonical(unit("/min", "per minute", Some(DIM_BEAT_PER_MIN))),
    also(
        unit("{beats}/min", "beats per minute", None),
        Conversion::IDENTITY,
    ),
    also(
        unit("{beat}/min", "beats per minute", None),
        Conversion::IDENTITY,
    ),
];

const PRESSURE: &[AcceptedUnit] = &[
    canonical(unit("mm[Hg]", "millimetres of mercury", Some(DIM_MMHG))),
    also(
        unit("kPa", "kilopascal", Some(DIM_KILO_PASCAL)),
        Conversion::scale(KPA_TO_MMHG),
    ),
];

const GLUCOSE: &[AcceptedUnit] = &[
    canonical(unit(
        "mg/dL",
        "milligrams per decilitre",
        Some(DIM_MILLI_G_PER_DL),
    )),
    also(
        unit("mmol/L", "millimoles per litre", Some(DIM_MILLI_MOLE_PER_L)),
        Conversion::scale(MMOL_L_TO_MG_DL),
    ),
];

const SPECS: &[QuantitySpec] = &[
    QuantitySpec {
        quantity: Quantity::HeartRate,
        key: "heart_rate",
        name: "Heart rate",
        kind: QuantityKind::Vital,
        mdc: MdcCode::new("MDC_ECG_HEART_RATE", 2, 16770),
        mdc_aliases: &[],
        loinc: &[loinc("8867-4", "Heart rate")],
        units: BEATS_PER_MIN,
        // 600/min was recorded in pre-excited atrial fibrillation (Chhabra et al., Indian
        // Pacing Electrophysiol J 2012); 0 is asystole. Arrhythmias start and stop from one beat
        // to the next, so no rate of change is impossible.
        limits: Limits {
            min: 0.0,
            max: 600.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 2/16770; LOINC 8867-4 [FHIR-VS] heart rate profile; \
                  unit /min [FHIR-VS]; limits: see docs/vocabulary.md",
    },
    QuantitySpec {
        quantity: Quantity::PulseRate,
        key: "pulse_rate",
        name: "Pulse rate (pulse oximetry)",
        kind: QuantityKind::Vital,
        mdc: MdcCode::new("MDC_PULS_OXIM_PULS_RATE", 2, 18458),
        mdc_aliases: &[],
        loinc: &[loinc("8867-4", "Heart rate")],
        units: BEATS_PER_MIN,
        limits: Limits {
            min: 0.0,
            max: 600.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 2/18458; LOINC 8867-4 paired with 149530 in [PHD-IG] \
                  numeric-spotnumeric example; limits as heart rate",
    },
    QuantitySpec {
        quantity: Quantity::Spo2,
        key: "spo2",
        name: "Oxygen saturation (SpO2)",
        kind: QuantityKind::Vital,
        mdc: MdcCode::new("MDC_PULS_OXIM_SAT_O2", 2, 19384),
        mdc_aliases: &[],
        loinc: &[
            loinc("2708-6", "Oxygen saturation in Arterial blood"),
            loinc(
                "59408-5",
                "Oxygen saturation in Arterial blood by Pulse oximetry",
            ),
        ],
        units: &[
            canonical(unit("%", "percent", Some(DIM_PERCENT))),
            also(unit("1", "fraction", None), Conversion::scale(100.0)),
        ],
        // 0..100 % by definition. Saturation can fall fast in apnoea and a probe that is
        // re-seated steps at once, so no rate of change is impossible.
        limits: Limits {
            min: 0.0,
            max: 100.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 2/19384 (not 150324, which is MDC_SAT_O2_ART); LOINC 2708-6 \
                  [FHIR-VS] oxygensat profile, 59408-5 US Core pulse oximetry",
    },
    QuantitySpec {
        quantity: Quantity::NibpSystolic,
        key: "nibp_systolic",
        name: "Blood pressure, systolic (non-invasive)",
        kind: QuantityKind::Vital,
        mdc: MdcCode::new("MDC_PRESS_BLD_NONINV_SYS", 2, 18949),
        mdc_aliases: &[],
        loinc: &[
            loinc("8480-6", "Systolic blood pressure"),
            loinc("76534-7", "Systolic blood pressure by Noninvasive"),
        ],
        units: PRESSURE,
        // Highest arterial pressure measured in a person: 480/350 mm[Hg] intra-arterially
        // during a leg press (MacDougall et al., J Appl Physiol 1985;58:785). A cuff reading
        // cannot exceed that. Cuff readings are spot values minutes apart: no rate bound.
        limits: Limits {
            min: 0.0,
            max: 480.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 2/18949; LOINC 8480-6 [FHIR-VS] bp profile, 76534-7 \
                  [FHIR-VS] systolic value set",
    },
    QuantitySpec {
        quantity: Quantity::NibpDiastolic,
        key: "nibp_diastolic",
        name: "Blood pressure, diastolic (non-invasive)",
        kind: QuantityKind::Vital,
        mdc: MdcCode::new("MDC_PRESS_BLD_NONINV_DIA", 2, 18950),
        mdc_aliases: &[],
        loinc: &[
            loinc("8462-4", "Diastolic blood pressure"),
            loinc("76535-4", "Diastolic blood pressure by Noninvasive"),
        ],
        units: PRESSURE,
        limits: Limits {
            min: 0.0,
            max: 350.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 2/18950; LOINC 8462-4 [FHIR-VS] bp profile, 76535-4 \
                  [FHIR-VS] diastolic value set",
    },
    QuantitySpec {
        quantity: Quantity::NibpMean,
        key: "nibp_mean",
        name: "Blood pressure, mean (non-invasive)",
        kind: QuantityKind::Vital,
        mdc: MdcCode::new("MDC_PRESS_BLD_NONINV_MEAN", 2, 18951),
        mdc_aliases: &[],
        loinc: &[loinc("8478-0", "Mean blood pressure")],
        units: PRESSURE,
        // The mean lies between diastolic and systolic, so it shares their bound.
        limits: Limits {
            min: 0.0,
            max: 480.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 2/18951 ([PHD-IG] sends it with MDC only); LOINC 8478-0",
    },
    QuantitySpec {
        quantity: Quantity::RespirationRate,
        key: "respiration_rate",
        name: "Respiration rate",
        kind: QuantityKind::Vital,
        mdc: MdcCode::new("MDC_RESP_RATE", 2, 20490),
        // Bedside monitors usually derive the rate from transthoracic impedance on the ECG
        // leads and code it so; it is the same quantity.
        mdc_aliases: &[MdcCode::new("MDC_TTHOR_RESP_RATE", 2, 20506)],
        loinc: &[loinc("9279-1", "Respiratory rate")],
        units: &[
            canonical(unit("/min", "per minute", Some(DIM_RESP_PER_MIN))),
            also(
                unit("{breaths}/min", "breaths per minute", None),
                Conversion::IDENTITY,
            ),
        ],
        // 0 is apnoea. Neonates reach 60-100/min; nobody breathes 150 times a minute.
        limits: Limits {
            min: 0.0,
            max: 150.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 2/20490 and alias 2/20506 (OpenICE physio.idl); LOINC 9279-1 \
                  [FHIR-VS] respiratory rate profile",
    },
    QuantitySpec {
        quantity: Quantity::BodyTemperature,
        key: "body_temperature",
        name: "Body temperature",
        kind: QuantityKind::Vital,
        mdc: MdcCode::new("MDC_TEMP_BODY", 2, 19292),
        mdc_aliases: &[],
        loinc: &[loinc("8310-5", "Body temperature")],
        units: &[
            canonical(unit("Cel", "degrees Celsius", Some(DIM_DEGC))),
            also(
                unit("[degF]", "degrees Fahrenheit", Some(DIM_FAHR)),
                Conversion {
                    scale: 5.0 / 9.0,
                    offset: -160.0 / 9.0,
                },
            ),
            also(
                unit("K", "kelvin", None),
                Conversion {
                    scale: 1.0,
                    offset: -273.15,
                },
            ),
        ],
        // Survived extremes: 13.0 °C (accidental hypothermia, Sweden 2010) and 46.5 °C (heat
        // stroke, 1980). Body temperature moves by a few °C per hour even under active cooling
        // or rewarming; 1 °C per minute leaves room for a probe settling and for readings from
        // different sites.
        limits: Limits {
            min: 10.0,
            max: 47.0,
            max_change_per_minute: Some(1.0),
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 2/19292; LOINC 8310-5 [FHIR-VS] body temperature profile; \
                  [degF] = 5/9 K and Cel = K - 273.15 [UCUM]",
    },
    QuantitySpec {
        quantity: Quantity::GlucoseCapillary,
        key: "glucose_capillary",
        name: "Glucose, capillary whole blood",
        kind: QuantityKind::Vital,
        mdc: MdcCode::new("MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD", 2, 29112),
        mdc_aliases: &[],
        // LOINC distinguishes mass (mg/dL) from molar (mmol/L) concentration; the code follows
        // the canonical unit, mg/dL.
        loinc: &[loinc(
            "41653-7",
            "Glucose [Mass/volume] in Capillary blood by Glucometer",
        )],
        units: GLUCOSE,
        // Highest survived: 2656 mg/dL (2008). Finger-stick values are spot readings whose
        // sampling error alone can exceed any slope bound: no rate bound.
        limits: Limits {
            min: 0.0,
            max: 3000.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 2/29112; LOINC 41653-7 (mg/dL; 14743-9 is its mmol/L twin)",
    },
    QuantitySpec {
        quantity: Quantity::GlucoseInterstitial,
        key: "glucose_interstitial",
        name: "Glucose, interstitial fluid (CGM)",
        kind: QuantityKind::Vital,
        mdc: MdcCode::new("MDC_CONC_GLU_ISF", 2, 29140),
        mdc_aliases: &[],
        loinc: &[loinc(
            "99504-3",
            "Glucose [Mass/volume] in Interstitial fluid",
        )],
        units: GLUCOSE,
        // CGM practice calls ≥ 3 mg/dL per minute a rapid change; interstitial glucose lags
        // and smooths blood glucose, so even an intravenous dextrose bolus does not move it 15
        // mg/dL per minute. A fall is slower still: glucose leaves the blood only as fast as
        // tissues take it up. Whole-body uptake at maximal insulin in clamp studies is of the
        // order of 10-15 mg/kg/min [GLU-UPTAKE]; over the glucose distribution volume of 1.6
        // dL/kg [HOVORKA] that is at most 6-9 mg/dL per minute in blood, with endogenous
        // production stopped entirely, and interstitial glucose follows it later and more
        // smoothly. Measured falls are far slower (rates beyond 2 mg/dL/min about 10 % of the
        // time around meals [GLU-RATES]). 10 mg/dL per minute is beyond any of these.
        limits: Limits {
            min: 0.0,
            max: 3000.0,
            max_change_per_minute: Some(15.0),
            max_fall_per_minute: Some(10.0),
        },
        sources: "MDC [10101] 2/29140; LOINC 99504-3 (mg/dL; 105272-9 is its mmol/L twin) \
                  [CGM-IG]; fall bound [GLU-UPTAKE] [HOVORKA] [GLU-RATES]",
    },
    QuantitySpec {
        quantity: Quantity::InsulinBasalRate,
        key: "insulin_basal_rate",
        name: "Insulin basal rate",
        kind: QuantityKind::Therapy,
        mdc: MdcCode::new("MDC_INS_BASAL_RATE_SETTING", 128, 29692),
        mdc_aliases: &[],
        loinc: &[],
        // UCUM's `U` is the enzyme unit (µmol/min); insulin is dosed in international units,
        // `[iU]`. UCUM's arbitrary units convert to nothing, not even to their upper-case
        // spelling `[IU]`, so exactly one spelling is accepted.
        units: &[canonical(unit(
            "[iU]/h",
            "international units per hour",
            Some(DIM_X_INTL_UNIT_PER_HR),
        ))],
        // A setting, not physiology: the widest programmable pump range (35 [iU]/h, Medtronic
        // MiniMed) is the bound. A setting may be changed at once.
        limits: Limits {
            min: 0.0,
            max: 35.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10419] 128/29692 (to confirm); unit [iU]/h [UCUM]; no LOINC",
    },
    QuantitySpec {
        quantity: Quantity::InsulinBolus,
        key: "insulin_bolus",
        name: "Insulin bolus",
        kind: QuantityKind::Therapy,
        mdc: MdcCode::new("MDC_INS_BOLUS", 128, 29736),
        mdc_aliases: &[],
        loinc: &[],
        units: &[canonical(unit(
            "[iU]",
            "international units",
            Some(DIM_X_INTL_UNIT),
        ))],
        // Largest single bolus any common pump delivers: 75 [iU] (Medtronic MiniMed).
        limits: Limits {
            min: 0.0,
            max: 75.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10419] 128/29736 delivered bolus (to confirm); unit [iU] [UCUM]; no LOINC",
    },
    QuantitySpec {
        quantity: Quantity::InfusionRate,
        key: "infusion_rate",
        name: "Infusion rate",
        kind: QuantityKind::Therapy,
        mdc: MdcCode::new("MDC_FLOW_FLUID_PUMP", 2, 26712),
        mdc_aliases: &[],
        loinc: &[],
        units: &[
            canonical(unit(
                "mL/h",
                "millilitres per hour",
                Some(DIM_MILLI_L_PER_HR),
            )),
            also(
                unit(
                    "mL/min",
                    "millilitres per minute",
                    Some(DIM_MILLI_L_PER_MIN),
                ),
                Conversion::scale(60.0),
            ),
        ],
        // Large-volume pumps run up to 999-1200 mL/h; 2000 mL/h leaves room for rapid
        // infusers' lower settings. A setting may be changed at once.
        limits: Limits {
            min: 0.0,
            max: 2000.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 2/26712 (OpenICE physio.idl); no LOINC exists for a pump rate",
    },
    QuantitySpec {
        quantity: Quantity::PacingLowerRateLimit,
        key: "pacing_lower_rate_limit",
        name: "Pacing lower rate limit",
        kind: QuantityKind::Therapy,
        mdc: MdcCode::new("MDC_IDC_SET_BRADY_LOWRATE", 11, 9984),
        mdc_aliases: &[],
        loinc: &[],
        units: &[
            canonical(unit("/min", "per minute", Some(DIM_BEAT_PER_MIN))),
            also(
                unit("{beats}/min", "beats per minute", None),
                Conversion::IDENTITY,
            ),
        ],
        // Programmable lower rates of current pacemakers lie within 30-185/min.
        limits: Limits {
            min: 20.0,
            max: 200.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [IDC] 11/9984 = 730880; unit {beats}/min as in IDCO messages; no LOINC",
    },
    QuantitySpec {
        quantity: Quantity::BatteryLevel,
        key: "battery_level",
        name: "Battery level",
        kind: QuantityKind::DeviceStatus,
        mdc: MdcCode::new("MDC_ATTR_VAL_BATT_CHARGE", 1, 2460),
        mdc_aliases: &[],
        loinc: &[],
        units: &[canonical(unit("%", "percent", Some(DIM_PERCENT)))],
        // Fuel gauges re-calibrate in jumps, so no rate of change is impossible.
        limits: Limits {
            min: 0.0,
            max: 100.0,
            max_change_per_minute: None,
            max_fall_per_minute: None,
        },
        sources: "MDC [10101] 1/2460 = 67996 (as HL7 DK-core and the PHD IG use it); no LOINC",
    },
];

/// The entry for one quantity: `SPECS` lists the quantities in declaration order, so the
/// discriminant is the index (the tests hold both). Ingest looks this up for every reading.
pub(super) fn spec(quantity: Quantity) -> &'static QuantitySpec {
    SPECS.get(quantity as usize).unwrap_or(&SPECS[0])
}

#[cfg(test)]
mod tests;
