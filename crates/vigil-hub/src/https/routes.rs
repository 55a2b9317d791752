//! The HTTPS API for devices: enrolment, renewal, the CA certificate and the revocation list.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, FromRef, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rustls::pki_types::CertificateRevocationListDer;
use rustls::pki_types::pem::PemObject;
use vigil_pki::csr::MAX_CSR_BYTES;
use vigil_store::TokenRefusal;

use vigil_model::DeviceId;
use vigil_wire::senml::{Encoding, MAX_PACK_BYTES};

use crate::access::Access;
use crate::checkpoints::Checkpointer;
use crate::https::Peer;
use crate::https::problem::Problem;
use crate::ingest::{Ingest, IngestError};
use crate::registry::{Registry, RegistryError};
use crate::throttle::{Admission, FLOOD_AFTER};

/// `application/pem-certificate-chain` (RFC 8555 §9.1): the device certificate, then the CA.
const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    /// The device registry.
    pub registry: Registry,
    /// The ingest pipeline.
    pub ingest: Ingest,
    /// People's sign-in, sessions and access decisions.
    pub access: Access,
    /// The audit checkpoints (for inclusion proofs).
    pub checkpointer: Checkpointer,
    /// The `Identifier.system` of medical record numbers.
    pub mrn_system: crate::https::fhir::MrnSystem,
    /// Observation pages read ahead of their request.
    pub observation_read_ahead: crate::https::fhir::ObservationReadAhead,
}

impl FromRef<Api> for crate::https::fhir::ObservationReadAhead {
    fn from_ref(api: &Api) -> crate::https::fhir::ObservationReadAhead {
        api.observation_read_ahead.clone()
    }
}

impl FromRef<Api> for crate::https::fhir::MrnSystem {
    fn from_ref(api: &Api) -> crate::https::fhir::MrnSystem {
        api.mrn_system.clone()
    }
}

impl FromRef<Api> for Access {
    fn from_ref(api: &Api) -> Access {
        api.access.clone()
    }
}

impl FromRef<Api> for Checkpointer {
    fn from_ref(api: &Api) -> Checkpointer {
        api.checkpointer.clone()
    }
}

impl FromRef<Api> for Registry {
    fn from_ref(api: &Api) -> Registry {
        api.registry.clone()
    }
}

impl FromRef<Api> for Ingest {
    fn from_ref(api: &Api) -> Ingest {
        api.ingest.clone()
    }
}

/// The router of the hub's HTTPS API: the device API here, the people's API
/// ([`crate::https::api`]) and FHIR.
pub fn router(api: Api) -> Router {
    Router::new()
        .merge(crate::https::api::router())
        .merge(crate::https::fhir::router())
        .route(
            "/api/v1/enroll",
            post(enroll).layer(DefaultBodyLimit::max(MAX_CSR_BYTES)),
        )
        .route(
            "/api/v1/renew",
            post(renew).layer(DefaultBodyLimit::max(MAX_CSR_BYTES)),
        )
        .route(
            "/api/v1/devices/{id}/observations",
            post(observations).layer(DefaultBodyLimit::max(MAX_PACK_BYTES)),
        )
        .route("/pki/crl", get(crl))
        .route("/pki/ca.pem", get(ca))
        .fallback(not_found)
        .with_state(api)
}

/// `POST /api/v1/devices/{id}/observations` over mutual TLS as device `{id}`, body a SenML pack
/// (`application/senml+json` or `application/senml+cbor`); answers 201 once the observations
/// are durably stored.
async fn observations(
    State(ingest): State<Ingest>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let device = require_device(
        peer,
        "observations are accepted over mutual TLS with the device's certificate",
    )?;
    if device.as_str() != id {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "wrong-device",
            "Not this device's resource",
            "a device may post only to its own observations",
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let encoding = match content_type.as_deref() {
        // Plain JSON is what a generic HTTP client sends; it is the same pack.
        Some("application/json") => Some(Encoding::Json),
        Some(other) => Encoding::from_content_type(other),
        None => None,
    }
    .ok_or_else(|| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send a SenML pack as application/senml+json or application/senml+cbor",
        )
    })?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request too large",
                format!("a SenML pack is at most {MAX_PACK_BYTES} bytes"),
            )
        } else {
            body_problem(&rejection)
        }
    })?;
    match ingest.admit(&device).await {
        Admission::Now => {}
        Admission::After(wait) | Admission::AfterAlert(wait) => {
            let seconds = u32::try_from(wait.as_secs().saturating_add(1)).unwrap_or(u32::MAX);
            return Err(too_many(
                seconds,
                "the device is over its message rate; slow down",
            ));
        }
        Admission::Flooding { .. } => {
            let seconds = u32::try_from(FLOOD_AFTER.as_secs()).unwrap_or(3);
            return Err(too_many(seconds, "the device is flooding the hub"));
        }
    }
    let accepted = ingest
        .accept(&device, encoding, &body)
        .await
        .map_err(ingest_problem)?;
    let receipt = serde_json::json!({
        "sequence": accepted.sequence,
        "stored": accepted.stored,
        "duplicates": accepted.duplicates,
        "implausible": accepted.implausible,
    });
    Ok((StatusCode::CREATED, axum::Json(receipt)).into_response())
}

fn too_many(seconds: u32, detail: &str) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        detail,
    )
    .with_retry_after(seconds)
}

fn ingest_problem(error: IngestError) -> Problem {
    let detail = error.to_string();
    match error {
        IngestError::Senml(_) => Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-senml",
            "Malformed SenML pack",
            detail,
        ),
        IngestError::UnknownCode { .. } => Problem::new(
            StatusCode::BAD_REQUEST,
            "unknown-quantity",
            "Unknown quantity",
            detail,
        ),
        IngestError::NotReported { .. } => Problem::new(
            StatusCode::BAD_REQUEST,
            "quantity-not-for-class",
            "Quantity not reported by this device class",
            detail,
        ),
        IngestError::Unit { .. } => Problem::new(
            StatusCode::BAD_REQUEST,
            "unit-not-accepted",
            "Unit not accepted",
            detail,
        ),
        IngestError::ClockSkew { .. } => Problem::new(
            StatusCode::BAD_REQUEST,
            "clock-skew",
            "Reading time out of bounds",
            detail,
        ),
        IngestError::DeviceNotAllowed(_) => Problem::new(
            StatusCode::FORBIDDEN,
            "device-not-allowed",
            "Device may not send",
            detail,
        ),
        IngestError::NoPatient(_) => Problem::new(
            StatusCode::CONFLICT,
            "no-patient",
            "Device serves no patient",
            detail,
        ),
        IngestError::Overloaded => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "Hub busy",
            "the store is busy; retry after a second",
        )
        .with_retry_after(1),
        IngestError::Store(error) => Problem::internal(&error),
    }
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such resource",
    )
}

fn body_problem(rejection: &BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request too large",
            format!("a certificate signing request is at most {MAX_CSR_BYTES} bytes"),
        )
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-body",
            "Unreadable request body",
            rejection.body_text(),
        )
    }
}

fn registry_problem(error: RegistryError) -> Problem {
    match error {
        RegistryError::Csr(error) => Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-csr",
            "Certificate signing request refused",
            error.to_string(),
        ),
        RegistryError::MalformedToken => Problem::new(
            StatusCode::UNAUTHORIZED,
            "token-malformed",
            "Enrolment token refused",
            "enrolment token is malformed (expected Authorization: Bearer vigil1.<id>.<secret>)",
        )
        .with_bearer_challenge(),
        RegistryError::Token(refusal) => {
            let slug = match refusal {
                TokenRefusal::Invalid => "token-invalid",
                TokenRefusal::Expired => "token-expired",
                TokenRefusal::AlreadyUsed => "token-used",
                TokenRefusal::DeviceRevoked => "device-revoked",
            };
            Problem::new(
                StatusCode::UNAUTHORIZED,
                slug,
                "Enrolment token refused",
                error.to_string(),
            )
            .with_bearer_challenge()
        }
        RegistryError::Revoked(_) => Problem::new(
            StatusCode::FORBIDDEN,
            "device-revoked",
            "Device revoked",
            "this device is revoked and may not renew",
        ),
        RegistryError::UnknownDevice(_) => Problem::new(
            StatusCode::FORBIDDEN,
            "device-unknown",
            "Device not registered",
            "this device is not registered with the hub",
        ),
        other => Problem::internal(&other),
    }
}

/// The device on the other end, or the problem to answer: 401 without a certificate (`why`
/// says what the resource needs), 403 with one that names no device.
fn require_device(peer: Peer, why: &'static str) -> Result<DeviceId, Problem> {
    match peer {
        Peer::Device(device) => Ok(device),
        Peer::Anonymous => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "certificate-required",
            "Client certificate required",
            why,
        )),
        Peer::Unidentified(error) => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "certificate-not-a-device",
            "Client certificate does not identify a device",
            error.to_string(),
        )),
    }
}

fn chain_response(chain: String) -> Response {
    let mut response = (StatusCode::CREATED, chain).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PEM_CHAIN));
    response
}

/// Runs registry work on a blocking thread (it signs and writes SQLite).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, Problem> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(registry_problem),
        Err(error) => Err(Problem::internal(&error)),
    }
}

/// `POST /api/v1/enroll` with `Authorization: Bearer <token>` and a CSR (PEM or DER) as body;
/// answers 201 with the certificate chain.
async fn enroll(
    State(registry): State<Registry>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = body.map_err(|r| body_problem(&r))?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "token-missing",
                "Enrolment token required",
                "send the one-time enrolment token as Authorization: Bearer <token>",
            )
            .with_bearer_challenge()
        })?;
    let (_, chain) = blocking(move || registry.enroll(&token, &body)).await?;
    Ok(chain_response(chain))
}

/// `POST /api/v1/renew` over mutual TLS with the device's current certificate and a CSR as body;
/// answers 201 with the new certificate chain.
async fn renew(
    State(registry): State<Registry>,
    Extension(peer): Extension<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let device = require_device(
        peer,
        "renewal needs mutual TLS with the device's current certificate",
    )?;
    let body = body.map_err(|r| body_problem(&r))?;
    let chain = blocking(move || registry.renew(&device, &body)).await?;
    Ok(chain_response(chain))
}

/// `GET /pki/crl`: the current revocation list, DER (`application/pkix-crl`).
async fn crl(State(registry): State<Registry>) -> Result<Response, Problem> {
    let path = registry.pki().crl_path();
    let der =
        tokio::task::spawn_blocking(move || CertificateRevocationListDer::from_pem_file(path))
            .await
            .map_err(|e| Problem::internal(&e))?
            .map_err(|e| Problem::internal(&e))?;
    let mut response = der.as_ref().to_vec().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pkix-crl"),
    );
    Ok(response)
}

/// `GET /pki/ca.pem`: the hospital CA certificate.
async fn ca(State(registry): State<Registry>) -> Response {
    let mut response = registry.ca().cert_pem().to_owned().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    response
}
