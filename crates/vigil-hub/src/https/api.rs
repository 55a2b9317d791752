//! Vigil's own API for people, at `/api/v1`: sign-in, users, care teams, consent, break-glass,
//! a patient's access history with proofs, alerts, the audit log, devices. Described by the
//! OpenAPI document served at `/api/v1/openapi.json`.
//!
//! Every handler takes a [`Principal`] (the bearer token, checked), asks
//! [`Access::authorize`], and audits what it served or changed. Bodies are JSON, bounded, and
//! refused with a problem document when they do not parse.

mod alerts;
mod audit_log;
mod devices;
mod oidc;
pub(crate) mod patients;
mod session;
mod users;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;

use crate::access::{AuthorizeError, Principal};
use crate::https::problem::Problem;
use crate::https::routes::Api;

/// The largest JSON body the people's API reads.
pub const MAX_JSON_BODY: usize = 16 * 1024;

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("api/openapi.json");

/// The router of the people's API.
pub fn router() -> Router<Api> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route(
            "/api/v1/session",
            post(session::sign_in).delete(session::sign_out),
        )
        .route("/api/v1/me", get(session::me))
        .route("/api/v1/oidc/login", get(oidc::login))
        .route("/api/v1/oidc/callback", get(oidc::callback))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route("/api/v1/users/{user}/disable", post(users::disable))
        .route("/api/v1/patients", get(patients::list))
        .route(
            "/api/v1/patients/{patient}/care-team",
            get(patients::care_team),
        )
        .route(
            "/api/v1/patients/{patient}/care-team/{user}",
            put(patients::add_to_care_team).delete(patients::remove_from_care_team),
        )
        .route(
            "/api/v1/patients/{patient}/consents",
            get(patients::consents),
        )
        .route(
            "/api/v1/patients/{patient}/consents/{user}",
            put(patients::grant_consent).delete(patients::withdraw_consent),
        )
        .route(
            "/api/v1/patients/{patient}/break-glass",
            post(patients::break_glass),
        )
        .route(
            "/api/v1/patients/{patient}/access-log",
            get(patients::access_log),
        )
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/alerts/stream", get(alerts::stream))
        .route("/api/v1/alerts/{alert}", get(alerts::one))
        .route(
            "/api/v1/alerts/{alert}/acknowledge",
            post(alerts::acknowledge),
        )
        .route("/api/v1/alerts/{alert}/close", post(alerts::close))
        .route("/api/v1/audit/entries", get(audit_log::entries))
        .route("/api/v1/audit/checkpoint", get(audit_log::checkpoint))
        .route("/api/v1/audit/proof", get(audit_log::proof))
        .route("/api/v1/devices", get(devices::list))
        .route("/api/v1/devices/{device}", get(devices::one))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::map_response(as_problem))
}

/// The refusals axum makes before a handler runs (a path segment that is not UTF-8: plain
/// text; a method the route does not take: an empty 405) become problem documents like every
/// other refusal of this API. The `Allow` header of a 405 is kept.
async fn as_problem(response: axum::response::Response) -> axum::response::Response {
    use axum::http::header::{ALLOW, CONTENT_TYPE};
    use axum::response::IntoResponse;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let problem = match status {
        StatusCode::METHOD_NOT_ALLOWED => Problem::new(
            status,
            "method-not-allowed",
            "Method not allowed",
            "this resource does not take this method (see the Allow header)",
        ),
        StatusCode::BAD_REQUEST => Problem::new(
            status,
            "bad-request",
            "Bad request",
            "the request's path could not be read",
        ),
        _ => Problem::new(
            status,
            "refused",
            status.canonical_reason().unwrap_or("Refused"),
            "the request was refused",
        ),
    };
    let mut converted = problem.into_response();
    if let Some(allow) = response.headers().get(ALLOW) {
        converted.headers_mut().insert(ALLOW, allow.clone());
    }
    converted
}

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// A JSON body, refused with a problem document (400, 413, 415) when it does not parse.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json",
        ),
        JsonRejection::JsonSyntaxError(_) => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            "the body is not valid JSON",
        ),
        JsonRejection::JsonDataError(error) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid body",
            // serde's message names the field and what was expected, never the value.
            body_error_detail(&error.body_text()),
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request too large",
            format!("the body may be at most {MAX_JSON_BODY} bytes"),
        ),
        _ => Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable-body",
            "Unreadable body",
            "the body could not be read",
        ),
    }
}

/// serde_json's data errors quote unknown variants and field names; keep the message short.
fn body_error_detail(text: &str) -> String {
    let text = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(text);
    text.chars().take(160).collect()
}

/// The answer to a refused or failed authorisation.
pub fn authorize_problem(error: AuthorizeError) -> Problem {
    match error {
        AuthorizeError::Forbidden(_) => forbidden(),
        AuthorizeError::Store(error) => Problem::internal(&error),
    }
}

/// 403: the principal may not do this.
pub fn forbidden() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Forbidden",
        "your role, care team or the patient's consent does not allow this",
    )
}

/// 404 for a named resource.
pub fn not_found(what: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        format!("no such {what}"),
    )
}

/// 400 for an invalid path or query parameter.
pub fn bad_parameter(name: &str, expected: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-parameter",
        "Bad parameter",
        format!("`{name}`: {expected}"),
    )
}

/// Runs blocking work (SQLite, Argon2id) off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => Err(Problem::internal(&error)),
    }
}

/// A store error as a problem.
pub fn store_problem(error: vigil_store::StoreError) -> Problem {
    match error {
        vigil_store::StoreError::NoSuchPatient(_) => not_found("patient"),
        vigil_store::StoreError::NoSuchUser(_) => not_found("user"),
        vigil_store::StoreError::NoSuchDevice(_) => not_found("device"),
        vigil_store::StoreError::NoSuchAlert(_) => not_found("alert"),
        vigil_store::StoreError::UserExists(_) => Problem::new(
            StatusCode::CONFLICT,
            "exists",
            "Already exists",
            "a user with this name exists",
        ),
        vigil_store::StoreError::Overloaded => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "Hub busy",
            "the store is busy; retry after a second",
        )
        .with_retry_after(1),
        other => Problem::internal(&other),
    }
}

/// The principal extractor, re-exported for handlers.
pub type Who = Principal;
