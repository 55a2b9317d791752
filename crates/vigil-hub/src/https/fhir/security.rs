//! The security resources: AuditEvent (auditors and security officers; a patient about
//! themselves) and DetectedIssue (security alerts: the security team without clinical
//! evidence; the care team of the patient concerned with it).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::Uri;
use axum::response::Response;
use vigil_auth::policy::{Basis, Operation};
use vigil_auth::scope::Interaction;
use vigil_fhir::audit::AuditSource;
use vigil_fhir::issue::AlertFacts;
use vigil_fhir::search::{self, Cursor};
use vigil_fhir::{FhirError, ResourceType, SearchsetWriter};
use vigil_model::{Action, Actor, Outcome, ResourceKind};
use vigil_store::StoredAlert;

use super::{
    Fail, FhirUser, audit_patient_read, authorize, base_url, blocking_with, raw_query, strict,
};
use crate::access::{Access, Principal};
use crate::audit::entry;

const SOURCE: AuditSource<'static> = AuditSource {
    site: "vigil",
    observer: "vigil-hub",
};

fn audit_read(access: &Access, principal: &Principal, kind: ResourceKind, id: &str, what: &str) {
    access.auditor().record_later(entry(
        Actor::User(principal.user.clone()),
        Action::Read,
        kind,
        id,
        Outcome::Success,
        Some(what),
    ));
}

/// `GET /fhir/r4/AuditEvent?patient=&_count=&_cursor=`: with `patient`, the entries about
/// that patient, newest first (the patient themselves, auditors, security officers);
/// without, the whole log in order (auditors, security officers).
pub(super) async fn search_audit_events(
    State(access): State<Access>,
    user: FhirUser,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Fail> {
    user.require_scope(ResourceType::AuditEvent, Interaction::Search)?;
    let search = search::parse(ResourceType::AuditEvent, raw_query(&uri), strict(&headers))
        .map_err(|e| Fail(FhirError::Search(e)))?;
    let base = base_url(&headers);
    blocking_with(move || {
        let principal = &user.0;
        let patient = super::clinical::patient_of_search(principal, &search);
        let count = usize::try_from(search.count).unwrap_or(100);
        let entries = match &patient {
            Some(patient) => {
                let basis =
                    authorize(&access, principal, Operation::ReadPatientAccessLog, patient)?;
                let before = search.cursor.map(|c| c.row);
                let entries = access
                    .store()
                    .patient_audit_entries(patient, before, count)?;
                audit_patient_read(
                    &access,
                    principal,
                    ResourceKind::Patient,
                    patient,
                    "AuditEvent search",
                    basis,
                );
                entries
            }
            None => {
                access.authorize(principal, Operation::ReadAuditLog, None)?;
                let from = search.cursor.map_or(0, |c| c.row.saturating_add(1));
                let entries = access.store().audit_entries(from, count)?;
                audit_read(
                    &access,
                    principal,
                    ResourceKind::AuditLog,
                    &from.to_string(),
                    "FHIR AuditEvent search",
                );
                entries
            }
        };
        let full = entries.len() == count;
        let last = entries.last().map(|(index, entry)| Cursor {
            time: entry.time,
            row: *index,
        });
        let mut writer = SearchsetWriter::new(&base);
        for (index, entry) in entries.iter().filter(|(_, e)| search.time_matches(e.time)) {
            writer.push_resource(&vigil_fhir::audit::audit_event(entry, *index, &SOURCE))?;
        }
        let self_url = format!(
            "{base}/AuditEvent?{}",
            search.link_query(search.cursor.as_ref())
        );
        let next_url = last
            .filter(|_| full)
            .map(|c| format!("{base}/AuditEvent?{}", search.link_query(Some(&c))));
        Ok(super::searchset(
            writer,
            None,
            &self_url,
            next_url.as_deref(),
        ))
    })
    .await
}

/// `GET /fhir/r4/AuditEvent/{leaf}`.
pub(super) async fn read_audit_event(
    State(access): State<Access>,
    user: FhirUser,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    user.require_scope(ResourceType::AuditEvent, Interaction::Read)?;
    let not_found = || Fail(FhirError::NotFound(ResourceType::AuditEvent));
    let leaf: u64 = id.parse().map_err(|_| not_found())?;
    blocking_with(move || {
        let principal = &user.0;
        let (index, entry) = access
            .store()
            .audit_entries(leaf, 1)?
            .into_iter()
            .next()
            .filter(|(index, _)| *index == leaf)
            .ok_or_else(not_found)?;
        // Auditors and security officers read any entry; a patient, entries about them.
        if access
            .authorize(principal, Operation::ReadAuditLog, None)
            .is_err()
        {
            let about = match (
                entry.resource.kind,
                vigil_model::PatientId::new(&entry.resource.id),
            ) {
                (ResourceKind::Patient | ResourceKind::Observation, Ok(p)) => p,
                _ => return Err(not_found()),
            };
            authorize(&access, principal, Operation::ReadPatientAccessLog, &about)
                .map_err(|_| not_found())?;
        }
        audit_read(
            &access,
            principal,
            ResourceKind::AuditLog,
            &index.to_string(),
            "FHIR AuditEvent read",
        );
        let resource = vigil_fhir::audit::audit_event(&entry, index, &SOURCE);
        super::resource_json(&resource)
    })
    .await
}

fn issue(alert: &StoredAlert, include_clinical: bool) -> Result<serde_json::Value, Fail> {
    let id = alert.id.to_string();
    Ok(vigil_fhir::issue::detected_issue(
        &AlertFacts {
            id: &id,
            status: alert.status,
            alert: &alert.alert,
        },
        include_clinical,
    )?)
}

/// How many recent alerts a patient's DetectedIssue search looks through.
const PATIENT_ALERT_WINDOW: usize = 10_000;

/// `GET /fhir/r4/DetectedIssue?patient=`: with `patient`, that patient's alerts with their
/// clinical evidence (the care team, the patient); without, every alert without it (the
/// security team).
pub(super) async fn search_issues(
    State(access): State<Access>,
    user: FhirUser,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Fail> {
    user.require_scope(ResourceType::DetectedIssue, Interaction::Search)?;
    let search = search::parse(
        ResourceType::DetectedIssue,
        raw_query(&uri),
        strict(&headers),
    )
    .map_err(|e| Fail(FhirError::Search(e)))?;
    let base = base_url(&headers);
    blocking_with(move || {
        let principal = &user.0;
        let patient = super::clinical::patient_of_search(principal, &search);
        let count = usize::try_from(search.count).unwrap_or(100);
        let mut writer = SearchsetWriter::new(&base);
        match &patient {
            Some(patient) => {
                let basis = authorize(&access, principal, Operation::ReadPatientAlerts, patient)?;
                let clinical = basis != Basis::Role;
                for alert in access
                    .store()
                    .alerts(None, PATIENT_ALERT_WINDOW)?
                    .iter()
                    .filter(|a| a.alert.patient.as_ref() == Some(patient))
                    .filter(|a| search.time_matches(a.alert.time))
                    .take(count)
                {
                    writer.push_resource(&issue(alert, clinical)?)?;
                }
                audit_patient_read(
                    &access,
                    principal,
                    ResourceKind::Patient,
                    patient,
                    "DetectedIssue search",
                    basis,
                );
            }
            None => {
                access.authorize(principal, Operation::ReadAlerts, None)?;
                for alert in access
                    .store()
                    .alerts(None, count)?
                    .iter()
                    .filter(|a| search.time_matches(a.alert.time))
                {
                    writer.push_resource(&issue(alert, false)?)?;
                }
                audit_read(
                    &access,
                    principal,
                    ResourceKind::Alert,
                    "*",
                    "FHIR DetectedIssue search",
                );
            }
        }
        let self_url = format!("{base}/DetectedIssue?{}", search.link_query(None));
        Ok(super::searchset(writer, None, &self_url, None))
    })
    .await
}

/// `GET /fhir/r4/DetectedIssue/{id}`.
pub(super) async fn read_issue(
    State(access): State<Access>,
    user: FhirUser,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    user.require_scope(ResourceType::DetectedIssue, Interaction::Read)?;
    let not_found = || Fail(FhirError::NotFound(ResourceType::DetectedIssue));
    let alert_id: u64 = id.parse().map_err(|_| not_found())?;
    blocking_with(move || {
        let principal = &user.0;
        let alert = access.store().alert(alert_id)?.ok_or_else(not_found)?;
        let clinical = match &alert.alert.patient {
            Some(patient)
                if authorize(&access, principal, Operation::ReadPatientAlerts, patient).is_ok() =>
            {
                true
            }
            _ => {
                access
                    .authorize(principal, Operation::ReadAlerts, None)
                    .map_err(|_| not_found())?;
                false
            }
        };
        audit_read(
            &access,
            principal,
            ResourceKind::Alert,
            &id,
            "FHIR DetectedIssue read",
        );
        super::resource_json(&issue(&alert, clinical)?)
    })
    .await
}
