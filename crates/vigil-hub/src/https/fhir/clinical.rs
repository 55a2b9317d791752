//! The clinical resources: the CapabilityStatement, Patient, Observation and Device.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::Uri;
use axum::response::Response;
use vigil_auth::policy::Operation;
use vigil_auth::scope::Interaction;
use vigil_fhir::search::{self, CodeFilter, Cursor, Search};
use vigil_fhir::{FhirError, ResourceType, SearchsetWriter};
use vigil_model::{DeviceId, PatientId, Quantity, ResourceKind, Role, Timestamp};
use vigil_store::{ObservationQuery, Store};

use super::read_ahead;
use super::{
    Fail, FhirUser, audit_patient_read, authorize, base_url, blocking_with, raw_query, strict,
};
use crate::access::{Access, Principal};

/// `GET /fhir/r4/metadata`: what this server offers (no sign-in needed, as FHIR expects).
pub(super) async fn metadata(headers: HeaderMap) -> Result<Response, Fail> {
    let base = base_url(&headers);
    let statement =
        vigil_fhir::capability::capability_statement(&vigil_fhir::capability::CapabilityFacts {
            base_url: &base,
            version: env!("CARGO_PKG_VERSION"),
            date: Timestamp::now(),
            smart: None,
        });
    super::resource_json(&statement)
}

/// Parses a search, as a FHIR failure.
fn parse(resource: ResourceType, uri: &Uri, headers: &HeaderMap) -> Result<Search, Fail> {
    search::parse(resource, raw_query(uri), strict(headers)).map_err(|e| Fail(FhirError::Search(e)))
}

/// The patient a patient-scoped search is about: the `patient` parameter, or, for a patient
/// signed in, themselves.
fn searched_patient(principal: &Principal, search: &Search) -> Result<PatientId, Fail> {
    patient_of_search(principal, search)
        .ok_or_else(|| Fail(FhirError::Search(search::SearchError::required("patient"))))
}

/// The `patient` of a search, or, for a patient signed in, themselves; `None` otherwise.
pub(super) fn patient_of_search(principal: &Principal, search: &Search) -> Option<PatientId> {
    match (&search.patient, &principal.patient) {
        (Some(patient), _) => Some(patient.clone()),
        (None, Some(own)) if principal.role == Role::Patient => Some(own.clone()),
        (None, _) => None,
    }
}

/// `GET /fhir/r4/Patient/{id}`.
pub(super) async fn read_patient(
    State(access): State<Access>,
    State(mrn_system): State<MrnSystem>,
    user: FhirUser,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    user.require_scope(ResourceType::Patient, Interaction::Read)?;
    let patient =
        PatientId::new(&id).map_err(|_| Fail(FhirError::NotFound(ResourceType::Patient)))?;
    blocking_with(move || {
        let resource = patient_resource(&access, &user.0, &patient, &mrn_system.0, "Patient read")?;
        super::resource_json(&resource)
    })
    .await
}

fn patient_resource(
    access: &Access,
    principal: &Principal,
    patient: &PatientId,
    mrn_system: &str,
    what: &str,
) -> Result<serde_json::Value, Fail> {
    let basis = authorize(access, principal, Operation::ReadPatientRecord, patient)?;
    let record = access
        .store()
        .patient(patient)?
        .ok_or(Fail(FhirError::NotFound(ResourceType::Patient)))?;
    let Some(demographics) = record.demographics else {
        return Err(Fail(FhirError::Erased(ResourceType::Patient)));
    };
    let resource = vigil_fhir::patient::patient(&vigil_fhir::patient::PatientFacts {
        id: patient,
        mrn_system,
        mrn: Some(&demographics.mrn),
        name: Some(&demographics.name),
        birth_date: Some(&demographics.birth_date),
    })?;
    audit_patient_read(
        access,
        principal,
        ResourceKind::Patient,
        patient,
        what,
        basis,
    );
    Ok(resource)
}

/// `GET /fhir/r4/Patient?_id=`: the patients the user may see (one, or their list).
pub(super) async fn search_patients(
    State(access): State<Access>,
    State(mrn_system): State<MrnSystem>,
    user: FhirUser,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Fail> {
    user.require_scope(ResourceType::Patient, Interaction::Search)?;
    let search = parse(ResourceType::Patient, &uri, &headers)?;
    let base = base_url(&headers);
    blocking_with(move || {
        let principal = &user.0;
        let candidates: Vec<PatientId> = match (&search.id, &principal.patient) {
            (Some(id), _) => PatientId::new(id).ok().into_iter().collect(),
            (None, Some(own)) => vec![own.clone()],
            (None, None) => {
                let store = access.store();
                let mut ids = store.care_team_patients(&principal.user)?;
                for p in store.consented_patients(&principal.user)? {
                    if !ids.contains(&p) {
                        ids.push(p);
                    }
                }
                ids
            }
        };
        let mut writer = SearchsetWriter::new(&base);
        for patient in candidates.iter().take(search.count as usize) {
            match patient_resource(&access, principal, patient, &mrn_system.0, "Patient search") {
                Ok(resource) => writer.push_resource(&resource)?,
                // A search lists what the user may see; refusals and erasures are left out.
                Err(Fail(FhirError::Forbidden | FhirError::NotFound(_) | FhirError::Erased(_))) => {
                }
                Err(other) => return Err(other),
            }
        }
        let self_url = format!("{base}/Patient?{}", search.link_query(None));
        Ok(super::searchset(writer, None, &self_url, None))
    })
    .await
}

/// `GET /fhir/r4/Observation?patient=&code=&date=&_count=&_cursor=`: a patient's
/// observations in time order, a page at a time.
pub(super) async fn search_observations(
    State(access): State<Access>,
    State(read_ahead): State<ObservationReadAhead>,
    user: FhirUser,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Fail> {
    user.require_scope(ResourceType::Observation, Interaction::Search)?;
    let search = parse(ResourceType::Observation, &uri, &headers)?;
    let base = base_url(&headers);
    blocking_with(move || {
        let principal = &user.0;
        let patient = searched_patient(principal, &search)?;
        let basis = authorize(&access, principal, Operation::ReadPatientRecord, &patient)?;
        let quantities = match &search.codes {
            CodeFilter::Any => Vec::new(),
            CodeFilter::Only(quantities) if quantities.is_empty() => {
                // Codes Vigil does not record match nothing.
                return Ok(empty_bundle(&base, &search));
            }
            CodeFilter::Only(quantities) => quantities.clone(),
        };
        let key = |search: &Search| {
            read_ahead::Key::new(
                &principal.session,
                &patient,
                search.link_query(search.cursor.as_ref()),
            )
        };
        let page = match read_ahead.take(&key(&search)) {
            Some(read) => read?,
            None => observation_page(
                access.store().as_ref(),
                &patient,
                quantities.clone(),
                &search,
            )?,
        };
        if let Some(cursor) = page.next {
            let mut next = search.clone();
            next.cursor = Some(cursor);
            let (store, patient) = (Arc::clone(access.store()), patient.clone());
            read_ahead.start(key(&next), move || {
                observation_page(store.as_ref(), &patient, quantities, &next)
            });
        }
        let mut writer = SearchsetWriter::with_capacity(&base, page.rows.len() * 760 + 1024);
        for row in &page.rows {
            writer.push_observation(&row.id.to_string(), &row.observation)?;
        }
        let self_url = format!(
            "{base}/Observation?{}",
            search.link_query(search.cursor.as_ref())
        );
        let next_url = page
            .next
            .map(|cursor| format!("{base}/Observation?{}", search.link_query(Some(&cursor))));
        audit_patient_read(
            &access,
            principal,
            ResourceKind::Observation,
            &patient,
            "Observation search",
            basis,
        );
        Ok(super::searchset(
            writer,
            None,
            &self_url,
            next_url.as_deref(),
        ))
    })
    .await
}

/// One page of a patient's observations, and where the next starts.
pub struct Page {
    rows: Vec<vigil_store::StoredObservation>,
    next: Option<Cursor>,
}

/// Observation pages read ahead of the request for them ([`read_ahead`]).
pub type ObservationReadAhead = read_ahead::ReadAhead<Result<Page, Fail>>;

/// One page of observations; `ne` exclusions are applied after the range query, so a page may
/// hold fewer rows than asked while more follow (the next link says so).
fn observation_page(
    store: &dyn Store,
    patient: &PatientId,
    quantities: Vec<Quantity>,
    search: &Search,
) -> Result<Page, Fail> {
    let from = Timestamp::from_unix_millis(search.range.start.max(0)).unwrap_or(Timestamp::EPOCH);
    // A search without an upper date bound ends at i64::MAX, past what a Timestamp holds: it
    // ends at the last instant one does (falling back to the epoch found nothing).
    let to = Timestamp::from_unix_millis(search.range.end.clamp(0, Timestamp::MAX.unix_millis()))
        .unwrap_or(Timestamp::EPOCH);
    let limit = usize::try_from(search.count).unwrap_or(100);
    let rows = store.observation_page(&ObservationQuery {
        patient: patient.clone(),
        quantities,
        from,
        to,
        after: search
            .cursor
            .map(|c| (c.time, i64::try_from(c.row).unwrap_or(i64::MAX))),
        limit,
    })?;
    let next = (rows.len() == limit)
        .then(|| rows.last())
        .flatten()
        .map(|last| Cursor {
            time: last.observation.time,
            row: u64::try_from(last.id).unwrap_or(0),
        });
    let rows = rows
        .into_iter()
        .filter(|r| search.time_matches(r.observation.time))
        .collect();
    Ok(Page { rows, next })
}

fn empty_bundle(base: &str, search: &Search) -> Response {
    let self_url = format!(
        "{base}/Observation?{}",
        search.link_query(search.cursor.as_ref())
    );
    super::searchset(SearchsetWriter::new(base), Some(0), &self_url, None)
}

/// `GET /fhir/r4/Observation/{id}`.
pub(super) async fn read_observation(
    State(access): State<Access>,
    user: FhirUser,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    user.require_scope(ResourceType::Observation, Interaction::Read)?;
    let not_found = || Fail(FhirError::NotFound(ResourceType::Observation));
    let row: i64 = id.parse().map_err(|_| not_found())?;
    blocking_with(move || {
        let principal = &user.0;
        // Ask the policy before saying whether the row exists: a stranger learns nothing.
        let stored = access
            .store()
            .observation(row)
            .map_err(|error| match error {
                // The patient's key is gone: the observation was erased with them.
                vigil_store::StoreError::Seal(_) => {
                    Fail(FhirError::Erased(ResourceType::Observation))
                }
                other => other.into(),
            })?;
        let stored = stored.ok_or_else(not_found)?;
        let patient = stored.observation.patient.clone().ok_or_else(not_found)?;
        let basis = authorize(&access, principal, Operation::ReadPatientRecord, &patient)
            .map_err(|_| not_found())?;
        let resource = vigil_fhir::observation::observation(&id, &stored.observation)?;
        audit_patient_read(
            &access,
            principal,
            ResourceKind::Observation,
            &patient,
            "Observation read",
            basis,
        );
        super::resource_json(&resource)
    })
    .await
}

fn device_resource(
    access: &Access,
    id: &DeviceId,
    patient: Option<&PatientId>,
) -> Result<serde_json::Value, Fail> {
    let record = access
        .store()
        .device(id)?
        .ok_or(Fail(FhirError::NotFound(ResourceType::Device)))?;
    let status = match record.status {
        vigil_store::DeviceStatus::Revoked => vigil_fhir::device::DeviceStatus::Inactive,
        _ => vigil_fhir::device::DeviceStatus::Active,
    };
    Ok(vigil_fhir::device::device(
        &vigil_fhir::device::DeviceFacts {
            id,
            class: record.class,
            status,
            patient,
        },
    )?)
}

/// `GET /fhir/r4/Device/{id}`: staff who look after devices see any; a clinician or patient
/// sees the devices of a patient they may read.
pub(super) async fn read_device(
    State(access): State<Access>,
    user: FhirUser,
    Path(id): Path<String>,
) -> Result<Response, Fail> {
    user.require_scope(ResourceType::Device, Interaction::Read)?;
    let not_found = || Fail(FhirError::NotFound(ResourceType::Device));
    let device = DeviceId::new(&id).map_err(|_| not_found())?;
    blocking_with(move || {
        let principal = &user.0;
        let serving = access.store().patient_of(&device, Timestamp::now())?;
        let staff = access
            .authorize(principal, Operation::ReadDevice, None)
            .is_ok();
        if !staff {
            let patient = serving.as_ref().ok_or_else(not_found)?;
            let basis = authorize(&access, principal, Operation::ReadPatientRecord, patient)
                .map_err(|_| not_found())?;
            audit_patient_read(
                &access,
                principal,
                ResourceKind::Patient,
                patient,
                "Device read",
                basis,
            );
        } else {
            access.auditor().record_later(crate::audit::entry(
                vigil_model::Actor::User(principal.user.clone()),
                vigil_model::Action::Read,
                ResourceKind::Device,
                device.as_str(),
                vigil_model::Outcome::Success,
                Some("FHIR Device read"),
            ));
        }
        // Which patient a device serves is clinical context: staff see the device alone.
        let resource = device_resource(&access, &device, serving.as_ref().filter(|_| !staff))?;
        super::resource_json(&resource)
    })
    .await
}

/// `GET /fhir/r4/Device?patient=`: the devices serving a patient now.
pub(super) async fn search_devices(
    State(access): State<Access>,
    user: FhirUser,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Fail> {
    user.require_scope(ResourceType::Device, Interaction::Search)?;
    let search = parse(ResourceType::Device, &uri, &headers)?;
    let base = base_url(&headers);
    blocking_with(move || {
        let principal = &user.0;
        let patient = searched_patient(principal, &search)?;
        let basis = authorize(&access, principal, Operation::ReadPatientRecord, &patient)?;
        let mut writer = SearchsetWriter::new(&base);
        for assignment in access
            .store()
            .assignments_of(&patient)?
            .into_iter()
            .filter(|a| a.to.is_none())
            .take(search.count as usize)
        {
            writer.push_resource(&device_resource(
                &access,
                &assignment.device,
                Some(&patient),
            )?)?;
        }
        audit_patient_read(
            &access,
            principal,
            ResourceKind::Patient,
            &patient,
            "Device search",
            basis,
        );
        let self_url = format!("{base}/Device?{}", search.link_query(None));
        Ok(super::searchset(writer, None, &self_url, None))
    })
    .await
}

/// The `Identifier.system` of medical record numbers (`[fhir] mrn_system`).
#[derive(Debug, Clone)]
pub struct MrnSystem(pub String);
