//! `Observation` from a stored [`vigil_model::Observation`], written straight into bytes.
//!
//! One resource per value, FHIR R4 vital signs profile where the quantity has one
//! ([`codes::vital_signs_profile`]):
//!
//! - `status` `final`: the value is as the device reported it, converted to the canonical unit;
//! - `category` from [`codes::observation_category`];
//! - `code`: every LOINC code of the quantity (the profile's first), then its MDC code with the
//!   reference id as display (HL7 PHD IG, "Obtaining the Observation code");
//! - `subject` the patient the device served, `device` the device, `effectiveDateTime` the
//!   device's time, `valueQuantity` in the canonical UCUM unit;
//! - a value Vigil flagged as physically impossible is still served, with `interpretation`
//!   `HX`/`LX` ([`codes::implausible_interpretation`]) and a `note` saying why, so a clinician
//!   sees it is a device or transmission fault and an investigator sees what was sent.
//!
//! The profile is claimed in `meta.profile` only when the Observation satisfies it (the vital
//! signs profiles need a subject). No narrative: FHIR R4 makes `text` optional for resources
//! served in a Bundle (dom-6 is a best-practice warning).
//!
//! The per-quantity part of the JSON never changes, so it is rendered once and copied; see
//! `benches/searchset.rs` for what that buys over serde derive.

use std::sync::OnceLock;

use serde_json::Value;
use vigil_model::{Observation, Quantity};

use crate::json::{write_f64, write_instant, write_str};
use crate::{FhirError, codes, fhir_id};

/// The Observation as a JSON value, for a single read (`GET /Observation/<id>`), with the
/// codes' displays and `code.text` for people.
///
/// `id` is the resource id the caller gives the row (an opaque FHIR id).
pub fn observation(id: &str, observation: &Observation) -> Result<Value, FhirError> {
    let mut out = Vec::with_capacity(1024);
    write(&mut out, id, observation, Form::Full)?;
    serde_json::from_slice(&out).map_err(|_| FhirError::Internal)
}

/// Appends the Observation as compact JSON, as searchset entries carry it: the same data as
/// [`observation`] without the displays and `code.text` (optional elements; about a third of
/// the bytes). On error nothing is appended.
pub fn write_observation(
    out: &mut Vec<u8>,
    id: &str,
    observation: &Observation,
) -> Result<(), FhirError> {
    let start = out.len();
    let result = write(out, id, observation, Form::Compact);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Full,
    Compact,
}

fn write(out: &mut Vec<u8>, id: &str, obs: &Observation, form: Form) -> Result<(), FhirError> {
    let id = fhir_id(id, "observation id")?;
    let device = fhir_id(obs.device.as_str(), "device id")?;
    let patient = match &obs.patient {
        Some(p) => Some(fhir_id(p.as_str(), "patient id")?),
        None => None,
    };
    let fragments = fragments(obs.quantity).ok_or(FhirError::Internal)?;
    let value = *obs.value.expose();

    out.extend_from_slice(b"{\"resourceType\":\"Observation\",\"id\":");
    write_str(out, id);
    if let (Some(profile), Some(_)) = (&fragments.profile, patient) {
        out.extend_from_slice(profile.as_bytes());
    }
    out.extend_from_slice(match form {
        Form::Full => fragments.head.as_bytes(),
        Form::Compact => fragments.compact_head.as_bytes(),
    });
    if let Some(patient) = patient {
        out.extend_from_slice(b",\"subject\":{\"reference\":\"Patient/");
        // A FHIR id needs no escaping.
        out.extend_from_slice(patient.as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b",\"effectiveDateTime\":");
    write_instant(out, obs.time);
    out.extend_from_slice(b",\"valueQuantity\":{\"value\":");
    if !write_f64(out, value) {
        return Err(FhirError::Unrepresentable("observation value"));
    }
    out.extend_from_slice(fragments.unit.as_bytes());
    if obs.implausible {
        let flag = codes::implausible_interpretation(obs.quantity, value);
        out.extend_from_slice(b",\"interpretation\":[{\"coding\":[{\"system\":\"");
        out.extend_from_slice(flag.system.as_bytes());
        out.extend_from_slice(b"\",\"code\":\"");
        out.extend_from_slice(flag.code.as_bytes());
        out.extend_from_slice(b"\",\"display\":\"");
        out.extend_from_slice(flag.display.as_bytes());
        out.extend_from_slice(
            b"\"}],\"text\":\"physically impossible value\"}],\"note\":[{\"text\":",
        );
        write_str(out, &fragments.implausible_note);
        out.extend_from_slice(b"}]");
    }
    out.extend_from_slice(b",\"device\":{\"reference\":\"Device/");
    out.extend_from_slice(device.as_bytes());
    out.extend_from_slice(b"\"}}");
    Ok(())
}

/// The JSON of one quantity that does not depend on the value.
struct Fragments {
    /// `,"meta":{"profile":[…]}`, where the quantity has a vital signs profile.
    profile: Option<String>,
    /// `,"status":…,"category":…,"code":…`.
    head: String,
    /// The same without displays and `code.text`.
    compact_head: String,
    /// `,"unit":…,"system":…,"code":…}` closing `valueQuantity`.
    unit: String,
    /// Why an implausible value is flagged, with the limits it crossed.
    implausible_note: String,
}

/// `None` only for a quantity missing from `Quantity::ALL`, which vigil-model's tests rule out.
fn fragments(quantity: Quantity) -> Option<&'static Fragments> {
    static TABLE: OnceLock<Vec<Fragments>> = OnceLock::new();
    let table = TABLE.get_or_init(|| Quantity::ALL.iter().map(|q| render(*q)).collect());
    table.get(Quantity::ALL.iter().position(|q| *q == quantity)?)
}

fn render(quantity: Quantity) -> Fragments {
    let spec = quantity.spec();
    let unit = spec.canonical_unit();
    let string = |s: &str| serde_json::to_string(s).unwrap_or_default();

    let profile = codes::vital_signs_profile(quantity)
        .map(|p| format!(",\"meta\":{{\"profile\":[{}]}}", string(p)));

    let head = |displays: bool| {
        let display = |text: &str| {
            if displays {
                format!(",\"display\":{}", string(text))
            } else {
                String::new()
            }
        };
        let mut head = String::from(",\"status\":\"final\"");
        if let Some(category) = codes::observation_category(quantity) {
            head.push_str(&format!(
                ",\"category\":[{{\"coding\":[{{\"system\":{},\"code\":{}{}}}]}}]",
                string(category.system),
                string(category.code),
                display(category.display)
            ));
        }
        let mut codings: Vec<String> = spec
            .loinc
            .iter()
            .map(|l| {
                format!(
                    "{{\"system\":{},\"code\":{}{}}}",
                    string(codes::LOINC),
                    string(l.code),
                    display(l.display)
                )
            })
            .collect();
        codings.push(format!(
            "{{\"system\":{},\"code\":\"{}\"{}}}",
            string(codes::MDC),
            spec.mdc.code(),
            display(spec.mdc.refid)
        ));
        head.push_str(&format!(",\"code\":{{\"coding\":[{}]", codings.join(",")));
        if displays {
            head.push_str(&format!(",\"text\":{}", string(spec.name)));
        }
        head.push('}');
        head
    };

    let unit_json = format!(
        ",\"unit\":{},\"system\":{},\"code\":{}}}",
        string(unit.ucum),
        string(codes::UCUM),
        string(unit.ucum)
    );
    let implausible_note = format!(
        "Vigil flagged this value as physically impossible: outside {} to {} {} for {}. \
         It is served as received; treat it as a device fault or a forged reading, not as \
         a clinical finding.",
        spec.limits.min, spec.limits.max, unit.ucum, spec.name
    );
    Fragments {
        profile,
        head: head(true),
        compact_head: head(false),
        unit: unit_json,
        implausible_note,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;
    use vigil_model::{DeviceId, PatientId, Phi, Timestamp};

    pub(crate) fn sample(quantity: Quantity, value: f64) -> Observation {
        Observation {
            device: DeviceId::new("mon-7").unwrap(),
            patient: Some(PatientId::new("p-17").unwrap()),
            quantity,
            value: Phi::new(value),
            time: Timestamp::from_unix_millis(1_764_403_200_250).unwrap(),
            sequence: 9,
            implausible: quantity.check_range(value).is_err(),
        }
    }

    #[test]
    fn heart_rate_follows_the_vital_signs_profile() {
        let got = observation("obs-1", &sample(Quantity::HeartRate, 72.0)).unwrap();
        let expected = json!({
            "resourceType": "Observation",
            "id": "obs-1",
            "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/heartrate"]},
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
                "display": "Vital Signs"
            }]}],
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"},
                    {"system": "urn:iso:std:iso:11073:10101", "code": "147842",
                     "display": "MDC_ECG_HEART_RATE"}
                ],
                "text": "Heart rate"
            },
            "subject": {"reference": "Patient/p-17"},
            "effectiveDateTime": "2025-11-29T08:00:00.250Z",
            "valueQuantity": {
                "value": 72.0,
                "unit": "/min",
                "system": "http://unitsofmeasure.org",
                "code": "/min"
            },
            "device": {"reference": "Device/mon-7"}
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn searchset_entries_are_the_same_data_without_displays() {
        let obs = sample(Quantity::Spo2, 140.0);
        let mut full = observation("o", &obs).unwrap();
        let mut out = Vec::new();
        write_observation(&mut out, "o", &obs).unwrap();
        let compact: Value = serde_json::from_slice(&out).unwrap();
        full["code"].as_object_mut().unwrap().remove("text");
        for coding in full["code"]["coding"].as_array_mut().unwrap() {
            coding.as_object_mut().unwrap().remove("display");
        }
        full["category"][0]["coding"][0]
            .as_object_mut()
            .unwrap()
            .remove("display");
        assert_eq!(compact, full);
    }

    #[test]
    fn spo2_carries_both_loinc_codes_and_the_mdc_code() {
        let got = observation("o", &sample(Quantity::Spo2, 97.0)).unwrap();
        let codes: Vec<_> = got["code"]["coding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["code"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(codes, ["2708-6", "59408-5", "150456"]);
        assert_eq!(got["valueQuantity"]["code"], "%");
    }

    #[test]
    fn an_implausible_value_is_served_and_says_so() {
        let got = observation("o", &sample(Quantity::Spo2, 140.0)).unwrap();
        assert_eq!(got["valueQuantity"]["value"], 140.0);
        assert_eq!(got["interpretation"][0]["coding"][0]["code"], "HX");
        let note = got["note"][0]["text"].as_str().unwrap();
        assert!(note.contains("0 to 100 %"), "{note}");
        let fine = observation("o", &sample(Quantity::Spo2, 97.0)).unwrap();
        assert!(fine.get("interpretation").is_none() && fine.get("note").is_none());
    }

    #[test]
    fn settings_and_battery_have_no_vital_signs_profile() {
        let pump = observation("o", &sample(Quantity::InfusionRate, 120.0)).unwrap();
        assert!(pump.get("meta").is_none());
        assert_eq!(pump["category"][0]["coding"][0]["code"], "therapy");
        assert_eq!(pump["code"]["coding"].as_array().unwrap().len(), 1);
        let battery = observation("o", &sample(Quantity::BatteryLevel, 80.0)).unwrap();
        assert!(battery.get("category").is_none());
    }

    #[test]
    fn without_a_patient_no_subject_and_no_profile_claim() {
        let mut obs = sample(Quantity::HeartRate, 72.0);
        obs.patient = None;
        let got = observation("o", &obs).unwrap();
        assert!(got.get("subject").is_none() && got.get("meta").is_none());
    }

    #[test]
    fn refuses_what_fhir_cannot_carry_and_appends_nothing() {
        let mut out = b"prefix".to_vec();
        let obs = sample(Quantity::HeartRate, 72.0);
        assert_eq!(
            write_observation(&mut out, "bad_id", &obs),
            Err(FhirError::Unrepresentable("observation id"))
        );
        let mut nan = obs;
        nan.value = Phi::new(f64::NAN);
        assert_eq!(
            write_observation(&mut out, "o", &nan),
            Err(FhirError::Unrepresentable("observation value"))
        );
        assert_eq!(out, b"prefix");
    }

    #[test]
    fn every_quantity_writes_valid_json_with_its_canonical_unit() {
        for q in Quantity::ALL {
            let got = observation("o", &sample(*q, q.spec().limits.min)).unwrap();
            assert_eq!(
                got["valueQuantity"]["code"],
                q.spec().canonical_unit().ucum,
                "{q}"
            );
            assert_eq!(
                got["code"]["coding"].as_array().unwrap().last().unwrap()["code"],
                q.spec().mdc.code().to_string()
            );
        }
    }
}
