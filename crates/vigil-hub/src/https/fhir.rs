//! FHIR R4 at `/fhir/r4`: CapabilityStatement, Patient, Device, Observation (search by
//! patient, code and date, keyset paging), AuditEvent and DetectedIssue (security alerts).
//!
//! Every request is signed in ([`FhirUser`]), held to the token's SMART scopes and to the
//! access policy (role, care team, consent, break-glass), and audited with the basis of the
//! decision. Every refusal is an `OperationOutcome` (never a problem document: FHIR clients
//! expect FHIR).

mod clinical;
pub mod read_ahead;
mod security;

pub use clinical::{MrnSystem, ObservationReadAhead};

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use vigil_auth::policy::{Basis, Operation};
use vigil_auth::scope::{Context, Interaction};
use vigil_fhir::{FHIR_JSON, FhirError, ResourceType};
use vigil_model::{Action, Actor, Outcome, PatientId, ResourceKind, Role};

use crate::access::{Access, AuthorizeError, Principal};
use crate::audit::entry;
use crate::https::routes::Api;

/// Where FHIR is served.
pub const BASE_PATH: &str = "/fhir/r4";

/// The router of the FHIR API.
pub fn router() -> Router<Api> {
    Router::new()
        .route("/fhir/r4/metadata", get(clinical::metadata))
        .route("/fhir/r4/Patient", get(clinical::search_patients))
        .route("/fhir/r4/Patient/{id}", get(clinical::read_patient))
        .route("/fhir/r4/Observation", get(clinical::search_observations))
        .route("/fhir/r4/Observation/{id}", get(clinical::read_observation))
        .route("/fhir/r4/Device", get(clinical::search_devices))
        .route("/fhir/r4/Device/{id}", get(clinical::read_device))
        .route("/fhir/r4/AuditEvent", get(security::search_audit_events))
        .route("/fhir/r4/AuditEvent/{id}", get(security::read_audit_event))
        .route("/fhir/r4/DetectedIssue", get(security::search_issues))
        .route("/fhir/r4/DetectedIssue/{id}", get(security::read_issue))
        .route("/fhir/r4/{*rest}", axum::routing::any(unsupported))
        .layer(axum::middleware::map_response(as_outcome))
}

/// The refusals axum makes before a handler runs (an id that is not UTF-8: plain text; a
/// method the route does not take: an empty 405) become OperationOutcomes like every other
/// refusal of FHIR. The `Allow` header of a 405 is kept.
async fn as_outcome(response: Response) -> Response {
    let status = response.status();
    let is_fhir = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(FHIR_JSON.as_bytes()));
    if is_fhir || !status.is_client_error() {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => FhirError::UnsupportedInteraction,
        // The only requests axum refuses itself with 400 are ids that are not UTF-8.
        StatusCode::BAD_REQUEST => FhirError::InvalidId,
        _ => return response,
    };
    let mut converted = Fail(error).into_response();
    if let Some(allow) = response.headers().get(header::ALLOW) {
        converted.headers_mut().insert(header::ALLOW, allow.clone());
    }
    converted
}

/// Anything else under `/fhir/r4`: an unknown type (404) or an interaction Vigil does not
/// offer (405), as an OperationOutcome.
async fn unsupported(
    method: axum::http::Method,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Fail {
    let kind = rest.split('/').next().unwrap_or("");
    match ResourceType::from_name(kind) {
        Some(_) if method != axum::http::Method::GET => Fail(FhirError::UnsupportedInteraction),
        Some(_) => Fail(FhirError::NotFound(ResourceType::Patient)),
        None => Fail(FhirError::UnsupportedResource),
    }
}

/// A FHIR failure, answered as an `OperationOutcome`.
#[derive(Debug)]
pub struct Fail(pub FhirError);

impl From<FhirError> for Fail {
    fn from(error: FhirError) -> Fail {
        Fail(error)
    }
}

impl From<AuthorizeError> for Fail {
    fn from(error: AuthorizeError) -> Fail {
        match error {
            AuthorizeError::Forbidden(_) => Fail(FhirError::Forbidden),
            AuthorizeError::Store(error) => internal(&error),
        }
    }
}

impl From<vigil_store::StoreError> for Fail {
    fn from(error: vigil_store::StoreError) -> Fail {
        match error {
            // The store could not bring its database up to what it acknowledged in time.
            vigil_store::StoreError::Overloaded => Fail(FhirError::Unavailable),
            other => internal(&other),
        }
    }
}

fn internal(error: &dyn std::fmt::Display) -> Fail {
    tracing::error!(%error, "FHIR request failed");
    Fail(FhirError::Internal)
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let (status, outcome) = self.0.response();
        let body = serde_json::to_vec(&outcome).unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() =
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        if status == 401 {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vigil\""),
            );
        }
        response
    }
}

/// A FHIR JSON answer.
pub fn fhir_json(body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// A resource as a FHIR JSON answer.
pub fn resource_json(resource: &serde_json::Value) -> Result<Response, Fail> {
    Ok(fhir_json(
        serde_json::to_vec(resource).map_err(|e| internal(&e))?,
    ))
}

/// A searchset as a FHIR JSON answer: `self` and, when more follow, `next`.
pub fn searchset(
    writer: vigil_fhir::SearchsetWriter,
    total: Option<u64>,
    self_url: &str,
    next: Option<&str>,
) -> Response {
    fhir_json(writer.finish(
        total,
        &vigil_fhir::Links {
            self_url,
            next,
            previous: None,
        },
    ))
}

/// The signed-in user of a FHIR request; a missing or invalid token is a 401 OperationOutcome.
pub struct FhirUser(pub Principal);

impl<S> FromRequestParts<S> for FhirUser
where
    Access: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<FhirUser, Fail> {
        Principal::from_request_parts(parts, state)
            .await
            .map(FhirUser)
            .map_err(|_| Fail(FhirError::Unauthenticated))
    }
}

impl FhirUser {
    /// Refuses what the token's SMART scopes do not allow.
    pub fn require_scope(
        &self,
        resource: ResourceType,
        interaction: Interaction,
    ) -> Result<(), Fail> {
        let context = if self.0.role == Role::Patient {
            Context::Patient
        } else {
            Context::User
        };
        if self.0.scopes.permits(context, resource.name(), interaction) {
            Ok(())
        } else {
            Err(Fail(FhirError::Forbidden))
        }
    }
}

/// Whether the client asked for strict handling of unknown parameters (`Prefer:
/// handling=strict`).
pub fn strict(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("handling=strict"))
}

/// The absolute base URL of this FHIR server as the client reached it.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("https://{host}{BASE_PATH}")
}

/// The raw query string of a request.
pub fn raw_query(uri: &axum::http::Uri) -> &str {
    uri.query().unwrap_or("")
}

/// Audits a successful read or search of a patient's data, with the decision's basis.
pub fn audit_patient_read(
    access: &Access,
    principal: &Principal,
    kind: ResourceKind,
    patient: &PatientId,
    what: &str,
    basis: Basis,
) {
    access.auditor().record_later(entry(
        Actor::User(principal.user.clone()),
        Action::Read,
        kind,
        patient.as_str(),
        Outcome::Success,
        Some(&format!(
            "FHIR {what}; {}",
            crate::https::api::patients::basis_name(basis)
        )),
    ));
}

/// Authorises a patient-scoped operation, as a FHIR failure when refused.
pub fn authorize(
    access: &Access,
    principal: &Principal,
    operation: Operation,
    patient: &PatientId,
) -> Result<Basis, Fail> {
    Ok(access.authorize(principal, operation, Some(patient))?)
}

/// Runs blocking work (SQLite, decryption) off the async threads.
pub async fn blocking_with<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Fail> + Send + 'static,
) -> Result<T, Fail> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => Err(internal(&error)),
    }
}
