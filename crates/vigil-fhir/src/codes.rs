//! The code systems and codes this crate writes, each with its source.
//!
//! Sources, by short name:
//!
//! - [R4]: HL7 FHIR R4 4.0.1 value sets, as packaged in the `fhir` npm package 4.12.0
//!   (`profiles/valuesets.json`, the FHIR R4 definitions `tools/fhir-check` validates against):
//!   `observation-category`, `observation-vitalsignresult`, `device-status`,
//!   `audit-event-type`, `audit-event-sub-type`, `audit-event-action`, `audit-event-outcome`,
//!   `audit-entity-type`, `object-role`, `network-type`, `audit-source-type`,
//!   `detectedissue-severity`, `restful-security-service`, `issue-type`, `identifier-type`.
//! - [R4-VS]: FHIR R4 vital signs profiles (§ 8.3.x of the Observation page): `vitalsigns`
//!   binds `Observation.code` to `observation-vitalsignresult`; `heartrate` (8867-4),
//!   `oxygensat` (2708-6), `resprate` (9279-1), `bodytemp` (8310-5) fix one LOINC code each.
//! - [V3-OI]: `http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation` as in
//!   hl7.fhir.r4.core 4.0.1 (`EX` outside threshold, `HX` above high threshold, `LX` below low
//!   threshold).
//! - [20601]: IEEE 11073-20601 device specialization codes, partition 8 (`MDC_PART_INFRA`,
//!   context-free code = 8 × 65536 + term), as signove/antidote `src/dim/nomenclature.h`
//!   lists them; 528388 (pulse oximeter) and 528391 (blood pressure) confirmed by the HL7 PHD
//!   IG Device examples and the BIH T-CABS `t-cabs-valueset-phdtyp` value set.
//! - [CGM-IG]: HL7 FHIR CGM IG (HL7/cgm `input/fsh/profiles.fsh`): sensor glucose
//!   Observations carry category `laboratory`.

use vigil_model::quantity::QuantityKind;
use vigil_model::{DeviceClass, Quantity};

/// LOINC ([R4]).
pub const LOINC: &str = vigil_model::quantity::LOINC_SYSTEM;
/// IEEE 11073-10101 ([R4] naming; see `vigil_model::mdc`).
pub const MDC: &str = vigil_model::mdc::MDC_SYSTEM;
/// UCUM ([R4]: `Quantity.system` for UCUM units).
pub const UCUM: &str = "http://unitsofmeasure.org";
/// `Observation.category` codes ([R4] `observation-category`).
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// [V3-OI].
pub const OBSERVATION_INTERPRETATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
/// Identifier type codes, e.g. `MR` medical record number ([R4] `identifier-type`).
pub const IDENTIFIER_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
/// The system of identifiers that are URIs (FHIR R4 `Identifier.system`, RFC 3986).
pub const URI_SYSTEM: &str = "urn:ietf:rfc:3986";
/// DICOM controlled terminology, the `DCM` audit event types and subtypes ([R4]).
pub const DICOM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// The FHIR audit event type `rest` ([R4] `audit-event-type`).
pub const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
/// RESTful interactions, the subtypes of `rest` ([R4] `audit-event-sub-type`).
pub const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
/// `AuditEvent.entity.type` ([R4] `audit-entity-type`).
pub const AUDIT_ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
/// Resource type names as codes ([R4] `audit-entity-type` includes them).
pub const RESOURCE_TYPES: &str = "http://hl7.org/fhir/resource-types";
/// `AuditEvent.entity.role` ([R4] `object-role`).
pub const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
/// `AuditEvent.source.type` ([R4] `audit-source-type`).
pub const SECURITY_SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
/// `CapabilityStatement.rest.security.service` ([R4] `restful-security-service`).
pub const RESTFUL_SECURITY_SERVICE: &str =
    "http://terminology.hl7.org/CodeSystem/restful-security-service";
/// MITRE ATT&CK technique pages (<https://attack.mitre.org>), ICS techniques included.
pub const ATTACK_TECHNIQUE_URL: &str = "https://attack.mitre.org/techniques/";
/// Vigil's own alert kinds (the snake_case names of `vigil_model::AlertKind`). No external
/// code system describes detections of this kind; this URN makes the kind machine-readable.
pub const VIGIL_ALERT_KIND: &str = "urn:vigil:alert-kind";
/// Vigil user names as identifiers (`AuditEvent.agent.who`).
pub const VIGIL_USER: &str = "urn:vigil:user";

/// A code with its system and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The code system URI.
    pub system: &'static str,
    /// The code.
    pub code: &'static str,
    /// Its display text from the code system.
    pub display: &'static str,
}

const fn code(system: &'static str, code: &'static str, display: &'static str) -> Code {
    Code {
        system,
        code,
        display,
    }
}

/// The LOINC codes of `observation-vitalsignresult` ([R4]) that Vigil's quantities use; a
/// quantity whose first LOINC code is here is a vital sign in FHIR's sense.
const VITAL_SIGN_LOINC: &[&str] = &[
    "9279-1", "8867-4", "2708-6", "8310-5", "8480-6", "8462-4", "8478-0",
];

/// `Observation.category` for a quantity:
///
/// - `vital-signs` where its LOINC code is in `observation-vitalsignresult` ([R4]);
/// - `laboratory` for the other measurements of the body (glucose: the CGM IG ([CGM-IG])
///   categorises sensor glucose so, and capillary glucose from a meter is point-of-care
///   laboratory testing);
/// - `therapy` for pump and pacing settings ([R4] `therapy`: "Observations generated by
///   non-interventional treatment protocols (e.g. occupational, physical, radiation,
///   nutritional and medication therapy)");
/// - none for the device's own state (battery): no category in [R4] describes it.
pub fn observation_category(quantity: Quantity) -> Option<Code> {
    let spec = quantity.spec();
    match spec.kind {
        QuantityKind::Vital if vital_signs_loinc(quantity).is_some() => {
            Some(code(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs"))
        }
        QuantityKind::Vital => Some(code(OBSERVATION_CATEGORY, "laboratory", "Laboratory")),
        QuantityKind::Therapy => Some(code(OBSERVATION_CATEGORY, "therapy", "Therapy")),
        QuantityKind::DeviceStatus => None,
    }
}

fn vital_signs_loinc(quantity: Quantity) -> Option<&'static str> {
    let first = quantity.spec().loinc.first()?;
    VITAL_SIGN_LOINC.contains(&first.code).then_some(first.code)
}

/// The FHIR R4 vital signs profile an Observation of this quantity conforms to ([R4-VS]): the
/// specific profile where one fixes the quantity's LOINC code, else the base `vitalsigns`
/// profile for the other codes of `observation-vitalsignresult` (systolic, diastolic and mean
/// pressure are served one value per Observation, not as the `bp` panel).
pub fn vital_signs_profile(quantity: Quantity) -> Option<&'static str> {
    Some(match vital_signs_loinc(quantity)? {
        "8867-4" => "http://hl7.org/fhir/StructureDefinition/heartrate",
        "2708-6" => "http://hl7.org/fhir/StructureDefinition/oxygensat",
        "9279-1" => "http://hl7.org/fhir/StructureDefinition/resprate",
        "8310-5" => "http://hl7.org/fhir/StructureDefinition/bodytemp",
        _ => "http://hl7.org/fhir/StructureDefinition/vitalsigns",
    })
}

/// How a device class is coded in `Device.type`: its IEEE 11073-20601 specialization code
/// where the nomenclature has one ([20601]), always with a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceType {
    /// Context-free MDC code and reference id.
    pub mdc: Option<(u32, &'static str)>,
    /// The class's name for people.
    pub text: &'static str,
}

const INFRA: u32 = 8 << 16;

/// `Device.type` of a class. Bedside monitors, infusion pumps, CGMs and pacemaker home
/// monitors have no specialization code in [20601]'s list (CGM's -10425 code is not in the
/// transcriptions consulted), so they are described by text alone.
pub fn device_type(class: DeviceClass) -> DeviceType {
    let mdc = match class {
        DeviceClass::PulseOximeter => Some((INFRA + 4100, "MDC_DEV_SPEC_PROFILE_PULS_OXIM")),
        DeviceClass::EcgPatch => Some((INFRA + 4102, "MDC_DEV_SPEC_PROFILE_MIN_ECG")),
        DeviceClass::BloodPressureCuff => Some((INFRA + 4103, "MDC_DEV_SPEC_PROFILE_BP")),
        DeviceClass::Thermometer => Some((INFRA + 4104, "MDC_DEV_SPEC_PROFILE_TEMP")),
        DeviceClass::InsulinPump => Some((INFRA + 4115, "MDC_DEV_SPEC_PROFILE_INSULIN_PUMP")),
        _ => None,
    };
    DeviceType {
        mdc,
        text: class.spec().name,
    }
}

/// `Observation.interpretation` of a value outside what is physically possible ([V3-OI]):
/// `HX` above the high threshold or `LX` below the low one, the thresholds being Vigil's
/// plausibility limits, which the Observation states in `referenceRange`; `EX` (outside
/// threshold) when the side is unknown. Such a value is served, never dropped: it is evidence
/// of a broken or lying device.
pub fn implausible_interpretation(quantity: Quantity, value: f64) -> Code {
    let limits = quantity.spec().limits;
    if value > limits.max {
        code(OBSERVATION_INTERPRETATION, "HX", "above high threshold")
    } else if value < limits.min {
        code(OBSERVATION_INTERPRETATION, "LX", "below low threshold")
    } else {
        code(OBSERVATION_INTERPRETATION, "EX", "outside threshold")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn vital_signs_follow_the_r4_value_set() {
        let vital: Vec<_> = Quantity::ALL
            .iter()
            .filter(|q| observation_category(**q).map(|c| c.code) == Some("vital-signs"))
            .map(|q| q.spec().key)
            .collect();
        assert_eq!(
            vital,
            [
                "heart_rate",
                "pulse_rate",
                "spo2",
                "nibp_systolic",
                "nibp_diastolic",
                "nibp_mean",
                "respiration_rate",
                "body_temperature"
            ]
        );
        for q in [Quantity::GlucoseCapillary, Quantity::GlucoseInterstitial] {
            assert_eq!(observation_category(q).unwrap().code, "laboratory");
            assert_eq!(vital_signs_profile(q), None);
        }
        assert_eq!(
            observation_category(Quantity::InsulinBolus).unwrap().code,
            "therapy"
        );
        assert_eq!(observation_category(Quantity::BatteryLevel), None);
        assert!(
            vital_signs_profile(Quantity::Spo2)
                .unwrap()
                .ends_with("/oxygensat")
        );
        assert!(
            vital_signs_profile(Quantity::PulseRate)
                .unwrap()
                .ends_with("/heartrate")
        );
        assert!(
            vital_signs_profile(Quantity::NibpMean)
                .unwrap()
                .ends_with("/vitalsigns")
        );
    }

    #[test]
    fn the_specific_profiles_fix_the_canonical_unit_vigil_serves() {
        // heartrate and resprate fix `/min`, oxygensat `%`, bodytemp `Cel` or `[degF]` [R4-VS].
        for (q, unit) in [
            (Quantity::HeartRate, "/min"),
            (Quantity::PulseRate, "/min"),
            (Quantity::RespirationRate, "/min"),
            (Quantity::Spo2, "%"),
            (Quantity::BodyTemperature, "Cel"),
        ] {
            assert_eq!(q.spec().canonical_unit().ucum, unit, "{q}");
        }
    }

    #[test]
    fn device_specialization_codes_are_partition_8() {
        assert_eq!(
            device_type(DeviceClass::PulseOximeter).mdc,
            Some((528_388, "MDC_DEV_SPEC_PROFILE_PULS_OXIM"))
        );
        assert_eq!(
            device_type(DeviceClass::BloodPressureCuff).mdc.unwrap().0,
            528_391
        );
        assert_eq!(device_type(DeviceClass::InfusionPump).mdc, None);
        assert_eq!(device_type(DeviceClass::InfusionPump).text, "Infusion pump");
    }

    #[test]
    fn implausible_values_say_which_threshold_they_cross() {
        assert_eq!(implausible_interpretation(Quantity::Spo2, 140.0).code, "HX");
        assert_eq!(
            implausible_interpretation(Quantity::BodyTemperature, 3.0).code,
            "LX"
        );
        assert_eq!(implausible_interpretation(Quantity::Spo2, 50.0).code, "EX");
    }
}
