//! `Patient`: the hospital's medical record number, name and birth date.
//!
//! The resource id is Vigil's pseudonymous [`PatientId`]; the MRN is an `identifier` of type
//! `MR` (<http://terminology.hl7.org/CodeSystem/v2-0203>, FHIR R4 `identifier-type`) in the
//! hospital's own system, which the hub's configuration names. A field that was erased
//! (crypto-shredded) or never recorded is absent, not empty: FHIR forbids empty values.

use serde_json::{Map, Value, json};
use vigil_model::PatientId;
use vigil_model::phi::{BirthDate, MedicalRecordNumber, PatientName};

use crate::{FhirError, codes, fhir_id};

/// What Vigil knows of a patient. `None` fields are left out of the resource.
#[derive(Debug, Clone, Copy)]
pub struct PatientFacts<'a> {
    /// Vigil's id of the patient: the resource id.
    pub id: &'a PatientId,
    /// The URI of the hospital's MRN namespace (e.g. `urn:oid:1.2.36.146.595.217.0.1`).
    pub mrn_system: &'a str,
    /// The medical record number.
    pub mrn: Option<&'a MedicalRecordNumber>,
    /// The name as recorded, one string (Vigil does not split given and family names).
    pub name: Option<&'a PatientName>,
    /// The date of birth.
    pub birth_date: Option<&'a BirthDate>,
}

/// The `Patient` resource.
pub fn patient(facts: &PatientFacts<'_>) -> Result<Value, FhirError> {
    let mut resource = Map::new();
    resource.insert("resourceType".into(), "Patient".into());
    resource.insert(
        "id".into(),
        fhir_id(facts.id.as_str(), "patient id")?.into(),
    );
    if let Some(mrn) = facts.mrn.map(|m| m.expose()).filter(|m| !m.is_empty()) {
        resource.insert(
            "identifier".into(),
            json!([{
                "use": "usual",
                "type": {"coding": [{
                    "system": codes::IDENTIFIER_TYPE,
                    "code": "MR",
                    "display": "Medical record number"
                }]},
                "system": facts.mrn_system,
                "value": mrn,
            }]),
        );
    }
    if let Some(name) = facts
        .name
        .map(|n| n.expose())
        .filter(|n| !n.trim().is_empty())
    {
        resource.insert("name".into(), json!([{"text": name}]));
    }
    if let Some(birth) = facts.birth_date {
        let date = birth.expose();
        resource.insert(
            "birthDate".into(),
            format!(
                "{:04}-{:02}-{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            )
            .into(),
        );
    }
    Ok(Value::Object(resource))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use vigil_model::Phi;

    #[test]
    fn writes_mrn_name_and_birth_date() {
        let id = PatientId::new("p-17").unwrap();
        let mrn = Phi::new("MRN-0042".to_owned());
        let name = Phi::new("Jane Doe".to_owned());
        let birth = Phi::new(time::macros::date!(1970 - 03 - 09));
        let facts = PatientFacts {
            id: &id,
            mrn_system: "urn:oid:1.2.3.4",
            mrn: Some(&mrn),
            name: Some(&name),
            birth_date: Some(&birth),
        };
        let got = patient(&facts).unwrap();
        assert_eq!(got["id"], "p-17");
        assert_eq!(got["identifier"][0]["system"], "urn:oid:1.2.3.4");
        assert_eq!(got["identifier"][0]["value"], "MRN-0042");
        assert_eq!(got["identifier"][0]["type"]["coding"][0]["code"], "MR");
        assert_eq!(got["name"][0]["text"], "Jane Doe");
        assert_eq!(got["birthDate"], "1970-03-09");
        // The facts never print PHI.
        let printed = format!("{facts:?}");
        assert!(
            !printed.contains("Jane") && !printed.contains("MRN-0042"),
            "{printed}"
        );
    }

    #[test]
    fn erased_fields_are_absent() {
        let id = PatientId::new("p-17").unwrap();
        let empty = Phi::new(String::new());
        let got = patient(&PatientFacts {
            id: &id,
            mrn_system: "urn:oid:1.2.3.4",
            mrn: Some(&empty),
            name: None,
            birth_date: None,
        })
        .unwrap();
        assert_eq!(got, json!({"resourceType": "Patient", "id": "p-17"}));
    }
}
