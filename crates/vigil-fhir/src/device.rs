//! `Device`: a managed medical device, its kind, status and patient.
//!
//! The identifier is the device's URI from its certificate, `urn:vigil:device:<id>`, in the
//! system `urn:ietf:rfc:3986`; the type comes from [`codes::device_type`].

use serde_json::{Map, Value, json};
use vigil_model::id::DEVICE_URN_PREFIX;
use vigil_model::{DeviceClass, DeviceId, PatientId};

use crate::{FhirError, codes, fhir_id};

/// `Device.status` (FHIR R4 `device-status`, required binding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// `active`: enrolled and in use.
    Active,
    /// `inactive`: revoked, retired or not enrolled yet.
    Inactive,
    /// `entered-in-error`: registered by mistake.
    EnteredInError,
    /// `unknown`.
    Unknown,
}

impl DeviceStatus {
    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Inactive => "inactive",
            DeviceStatus::EnteredInError => "entered-in-error",
            DeviceStatus::Unknown => "unknown",
        }
    }
}

/// What Vigil knows of a device.
#[derive(Debug, Clone, Copy)]
pub struct DeviceFacts<'a> {
    /// The device id: the resource id.
    pub id: &'a DeviceId,
    /// Its class.
    pub class: DeviceClass,
    /// Its status.
    pub status: DeviceStatus,
    /// The patient it serves now, if any.
    pub patient: Option<&'a PatientId>,
}

/// The `Device` resource.
pub fn device(facts: &DeviceFacts<'_>) -> Result<Value, FhirError> {
    let id = fhir_id(facts.id.as_str(), "device id")?;
    let kind = codes::device_type(facts.class);
    let mut resource = Map::new();
    resource.insert("resourceType".into(), "Device".into());
    resource.insert("id".into(), id.into());
    resource.insert(
        "identifier".into(),
        json!([{
            "system": codes::URI_SYSTEM,
            "value": format!("{DEVICE_URN_PREFIX}{}", facts.id),
        }]),
    );
    resource.insert("status".into(), facts.status.code().into());
    let mut type_ = Map::new();
    if let Some((code, refid)) = kind.mdc {
        type_.insert(
            "coding".into(),
            json!([{"system": codes::MDC, "code": code.to_string(), "display": refid}]),
        );
    }
    type_.insert("text".into(), kind.text.into());
    resource.insert("type".into(), Value::Object(type_));
    if let Some(patient) = facts.patient {
        let patient = fhir_id(patient.as_str(), "patient id")?;
        resource.insert(
            "patient".into(),
            json!({"reference": format!("Patient/{patient}")}),
        );
    }
    Ok(Value::Object(resource))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_pulse_oximeter_is_coded_with_its_specialization() {
        let id = DeviceId::new("oxi-3").unwrap();
        let patient = PatientId::new("p-1").unwrap();
        let got = device(&DeviceFacts {
            id: &id,
            class: DeviceClass::PulseOximeter,
            status: DeviceStatus::Active,
            patient: Some(&patient),
        })
        .unwrap();
        assert_eq!(
            got,
            json!({
                "resourceType": "Device",
                "id": "oxi-3",
                "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:vigil:device:oxi-3"}],
                "status": "active",
                "type": {
                    "coding": [{"system": "urn:iso:std:iso:11073:10101", "code": "528388",
                                "display": "MDC_DEV_SPEC_PROFILE_PULS_OXIM"}],
                    "text": "Pulse oximeter"
                },
                "patient": {"reference": "Patient/p-1"}
            })
        );
    }

    #[test]
    fn classes_without_a_code_have_text_and_no_patient_is_absent() {
        let id = DeviceId::new("pump-1").unwrap();
        let got = device(&DeviceFacts {
            id: &id,
            class: DeviceClass::InfusionPump,
            status: DeviceStatus::Inactive,
            patient: None,
        })
        .unwrap();
        assert_eq!(got["type"], json!({"text": "Infusion pump"}));
        assert_eq!(got["status"], "inactive");
        assert!(got.get("patient").is_none());
    }
}
