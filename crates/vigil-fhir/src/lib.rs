//! HL7 FHIR R4 (4.0.1) out of Vigil's domain types, for the hub's `/fhir/r4` API.
//!
//! This crate is pure: it turns values into FHIR JSON and query strings into search
//! parameters, and does no I/O. The hub's handlers fetch, authorise and audit; this crate
//! writes:
//!
//! - resources: [`patient()`](patient::patient), [`device()`](device::device),
//!   [`observation()`](observation::observation), [`audit_event()`](audit::audit_event),
//!   [`detected_issue()`](issue::detected_issue), [`capability_statement()`](capability::capability_statement),
//!   [`operation_outcome()`](outcome::operation_outcome) and [`FhirError`] with its HTTP
//!   status;
//! - [`SearchsetWriter`], which streams a `searchset` Bundle into a `Vec<u8>`, with a fast
//!   hand-written path for Observations;
//! - [`search::parse`], the search parameters of every served resource, bounded and
//!   never panicking.
//!
//! Codes come from [`codes`], each with its source. Resources are compact JSON without
//! narrative. Every value that is PHI leaves its [`vigil_model::Phi`] wrapper only here, on its
//! way to an authorised reader.

#![forbid(unsafe_code)]

pub mod audit;
pub mod bundle;
pub mod capability;
pub mod codes;
pub mod device;
pub mod issue;
mod json;
pub mod observation;
pub mod outcome;
pub mod patient;
pub mod search;

pub use bundle::{Links, SearchsetWriter};
pub use outcome::{FhirError, IssueSeverity, IssueType};
pub use search::{Cursor, Search, SearchError};

/// The FHIR version served, as `CapabilityStatement.fhirVersion` states it.
pub const FHIR_VERSION: &str = "4.0.1";

/// The media type of FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json";

/// The resource types served at `/fhir/r4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// `Patient`.
    Patient,
    /// `Device`.
    Device,
    /// `Observation`.
    Observation,
    /// `AuditEvent`.
    AuditEvent,
    /// `DetectedIssue` (security alerts).
    DetectedIssue,
}

impl ResourceType {
    /// Every served type, in the order the CapabilityStatement lists them.
    pub const ALL: &'static [ResourceType] = &[
        ResourceType::Patient,
        ResourceType::Device,
        ResourceType::Observation,
        ResourceType::AuditEvent,
        ResourceType::DetectedIssue,
    ];

    /// The FHIR type name, as in URLs and `resourceType`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Patient => "Patient",
            ResourceType::Device => "Device",
            ResourceType::Observation => "Observation",
            ResourceType::AuditEvent => "AuditEvent",
            ResourceType::DetectedIssue => "DetectedIssue",
        }
    }

    /// The type with this name, if it is served (`/fhir/r4/<name>`).
    pub fn from_name(name: &str) -> Option<ResourceType> {
        Self::ALL.iter().copied().find(|t| t.name() == name)
    }
}

/// Whether `text` is a FHIR `id`: 1 to 64 characters from `A-Z a-z 0-9 - .` (FHIR R4 datatypes,
/// `id`: regex `[A-Za-z0-9\-\.]{1,64}`).
///
/// Vigil's device and patient ids are FHIR ids by construction (`vigil_model::id`); the
/// builders still check every id they write and refuse one that is not with
/// [`FhirError::Unrepresentable`] rather than rewrite it (a rewritten id could name another
/// patient's record), so that a looser id syntax could never reach the wire.
pub fn is_fhir_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Checks an id that is about to be written, naming the element if it cannot be.
pub(crate) fn fhir_id<'a>(text: &'a str, what: &'static str) -> Result<&'a str, FhirError> {
    if is_fhir_id(text) {
        Ok(text)
    } else {
        Err(FhirError::Unrepresentable(what))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn fhir_ids_follow_the_r4_regex() {
        for ok in ["a", "p-17", "ICU.bed7", "0", &"x".repeat(64)] {
            assert!(is_fhir_id(ok), "{ok}");
        }
        for bad in ["", "cgm_9f3e", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(!is_fhir_id(bad), "{bad}");
        }
        assert_eq!(
            fhir_id("cgm_1", "device id"),
            Err(FhirError::Unrepresentable("device id"))
        );
    }

    proptest::proptest! {
        #[test]
        fn every_device_and_patient_id_is_a_fhir_id(text in "[ -~]{1,70}") {
            let device = vigil_model::DeviceId::new(text.as_str());
            let patient = vigil_model::PatientId::new(text.as_str());
            proptest::prop_assert_eq!(device.is_ok(), patient.is_ok());
            if device.is_ok() {
                proptest::prop_assert!(is_fhir_id(&text));
            }
        }
    }

    #[test]
    fn resource_names_round_trip() {
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::from_name(t.name()), Some(*t));
        }
        assert_eq!(ResourceType::from_name("Practitioner"), None);
    }
}
