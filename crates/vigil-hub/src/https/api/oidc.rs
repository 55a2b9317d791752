//! `GET /api/v1/oidc/login` and `GET /api/v1/oidc/callback`: signing in through the
//! hospital's OpenID provider ([`crate::access::oidc`]). Both answer 404 when it is not
//! configured.

use std::net::SocketAddr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::blocking;
use super::session::created;
use crate::access::Access;
use crate::access::oidc::{OidcClient, OidcFlowError, OidcSignInError, authorization_error_code};
use crate::https::problem::Problem;

/// The longest `code` or `state` read; providers' codes are far shorter.
const MAX_PARAMETER: usize = 2048;

/// What the provider sends the browser back with (RFC 6749 §4.1.2, RFC 9207's `iss`).
#[derive(Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

fn client(access: &Access) -> Result<OidcClient, Problem> {
    access.oidc().cloned().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "oidc-not-configured",
            "Sign-in through an OpenID provider is not configured",
            "this hub has no [oidc] issuer; sign in with POST /api/v1/session",
        )
    })
}

/// The cookie that binds a sign-in to the browser that began it: without it, whoever got hold
/// of a callback URL (code and state) could finish someone else's sign-in, and a page could
/// sign a victim's browser in as the attacker (login CSRF). `__Host-`: only over HTTPS, for
/// this host alone, for every path; `SameSite=Lax` still comes back with the provider's
/// top-level redirect.
const BINDING_COOKIE: &str = "__Host-vigil-oidc";

/// 302 to the provider's authorization endpoint, with the binding cookie.
pub(super) async fn login(
    State(access): State<Access>,
    Extension(address): Extension<SocketAddr>,
) -> Result<Response, Problem> {
    let (url, state) = client(&access)?
        .begin(address.ip())
        .map_err(|error| Problem::internal(&error))?;
    let location = HeaderValue::try_from(url).map_err(|error| Problem::internal(&error))?;
    let cookie = HeaderValue::try_from(format!(
        "{BINDING_COOKIE}={state}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600"
    ))
    .map_err(|error| Problem::internal(&error))?;
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::SET_COOKIE, cookie);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Whether the request carries the binding cookie of `state` (compared in constant time).
fn bound_to_this_browser(headers: &axum::http::HeaderMap, state: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == BINDING_COOKIE)
        .any(|(_, value)| {
            aws_lc_rs::constant_time::verify_slices_are_equal(value.as_bytes(), state.as_bytes())
                .is_ok()
        })
}

/// The browser back from the provider: 201 with a session, as `POST /api/v1/session` answers.
pub(super) async fn callback(
    State(access): State<Access>,
    Extension(address): Extension<SocketAddr>,
    headers: axum::http::HeaderMap,
    query: Result<Query<Callback>, QueryRejection>,
) -> Result<Response, Problem> {
    let oidc = client(&access)?;
    let Query(callback) =
        query.map_err(|_| super::bad_parameter("code, state", "the query does not parse"))?;
    let state = callback
        .state
        .filter(|s| !s.is_empty() && s.len() <= MAX_PARAMETER)
        .ok_or_else(|| super::bad_parameter("state", "required, as the provider sent it"))?;
    if !bound_to_this_browser(&headers, &state) {
        tracing::info!(%address, "OpenID callback without its browser's binding cookie");
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "oidc-other-browser",
            "Sign-in began elsewhere",
            "this sign-in was not begun in this browser; start again at /api/v1/oidc/login",
        ));
    }
    let outcome = match (callback.error, callback.code) {
        // The provider's refusal ends the sign-in it answers.
        (Some(error), _) => {
            oidc.abandon(&state);
            Err(OidcFlowError::ProviderRefused(authorization_error_code(
                &error,
            )))
        }
        (None, Some(code)) if !code.is_empty() && code.len() <= MAX_PARAMETER => {
            oidc.finish(&code, &state, callback.iss.as_deref()).await
        }
        (None, _) => {
            return Err(super::bad_parameter(
                "code",
                "required, as the provider sent it",
            ));
        }
    };
    let identity = match outcome {
        Ok(identity) => identity,
        Err(error) => {
            tracing::info!(%error, "sign-in through the OpenID provider failed");
            access.audit_oidc_failure(address.ip(), &error);
            return Err(flow_problem(&error));
        }
    };
    let idle = access.settings().idle_ms / 1000;
    let signed_in = blocking(move || {
        access
            .sign_in_oidc(&identity, address.ip())
            .map_err(sign_in_problem)
    })
    .await?;
    let mut response = created(signed_in, idle);
    // The binding is spent with the sign-in.
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-vigil-oidc=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
        ),
    );
    Ok(response)
}

fn flow_problem(error: &OidcFlowError) -> Problem {
    match error {
        OidcFlowError::UnknownState => Problem::new(
            StatusCode::BAD_REQUEST,
            "oidc-unknown-state",
            "Unknown sign-in",
            "this sign-in is unknown, older than 10 minutes or already used; start again at /api/v1/oidc/login",
        ),
        OidcFlowError::WrongIssuer => Problem::new(
            StatusCode::BAD_REQUEST,
            "oidc-wrong-issuer",
            "Answer from another provider",
            "the answer names another issuer than the hub's OpenID provider",
        ),
        OidcFlowError::ProviderRefused(code) => Problem::new(
            StatusCode::UNAUTHORIZED,
            "oidc-provider-refused",
            "The provider did not sign you in",
            format!("the OpenID provider answered: {code}"),
        ),
        OidcFlowError::TokenExchange(_) | OidcFlowError::IdToken(_) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "oidc-provider-failed",
            "The provider's answer could not be used",
            "the code could not be exchanged or the ID token was refused; the reason is in the hub's log",
        ),
        OidcFlowError::Random => Problem::internal(error),
    }
}

fn sign_in_problem(error: OidcSignInError) -> Problem {
    match error {
        OidcSignInError::NoAccount => Problem::new(
            StatusCode::FORBIDDEN,
            "oidc-no-account",
            "No Vigil account",
            "no enabled Vigil account matches your identity at the provider; an administrator creates accounts",
        ),
        OidcSignInError::MfaRequired => Problem::new(
            StatusCode::FORBIDDEN,
            "oidc-mfa-required",
            "Multi-factor authentication required",
            "this role needs multi-factor authentication at the provider; sign in there with a second factor",
        ),
        other => Problem::internal(&other),
    }
}
