//! `POST /api/v1/session` (sign in), `DELETE /api/v1/session` (sign out), `GET /api/v1/me`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{JsonBody, blocking};
use crate::access::{Access, Principal, SignInError, SignedIn};
use crate::https::problem::Problem;

/// What a person signs in with.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignIn {
    user: String,
    password: String,
    /// The second-factor code, when the account has one.
    code: Option<String>,
    /// SMART scopes to narrow the session to.
    scope: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Session {
    token: String,
    token_type: &'static str,
    user: String,
    role: vigil_model::Role,
    expires_at: String,
    idle_timeout_seconds: i64,
    scope: String,
}

/// Bounds that keep a sign-in cheap to refuse (Argon2id runs only on sane input).
const MAX_USER: usize = 64;
const MAX_PASSWORD: usize = 256;

pub(super) async fn sign_in(
    State(access): State<Access>,
    Extension(address): Extension<SocketAddr>,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<Response, Problem> {
    if body.user.len() > MAX_USER || body.password.len() > MAX_PASSWORD {
        return Err(refused());
    }
    // An address refused for spraying is answered before any password is checked.
    let now_secs = vigil_model::Timestamp::now().unix_millis().div_euclid(1000);
    if let Some(until) = access.address_refused_until(address.ip(), now_secs) {
        return Err(too_many_failures(until - now_secs));
    }
    let idle = access.settings().idle_ms / 1000;
    // One password check at a time: sign-in attempts queue here instead of taking the cores
    // that ingest needs.
    let turns = access.clone();
    let _turn = turns.password_check_turn().await;
    let signed_in = blocking(move || {
        access
            .sign_in(
                &body.user,
                &body.password,
                body.code.as_deref(),
                body.scope.as_deref(),
                address.ip(),
            )
            .map_err(sign_in_problem)
    })
    .await?;
    Ok(created(signed_in, idle))
}

/// 201 with the session: the answer to every successful sign-in, by password or through the
/// hospital's OpenID provider.
pub(super) fn created(signed_in: SignedIn, idle_timeout_seconds: i64) -> Response {
    let session = Session {
        token: signed_in.token,
        token_type: "Bearer",
        user: signed_in.user.as_str().to_owned(),
        role: signed_in.role,
        expires_at: signed_in.expires_at.to_string(),
        idle_timeout_seconds,
        scope: signed_in.scope,
    };
    let mut response = (StatusCode::CREATED, Json(session)).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// 429: too many failed sign-ins came from this address, on any accounts.
fn too_many_failures(retry_after_secs: i64) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "sign-in-rate-limited",
        "Too many failed sign-ins",
        "too many failed sign-ins came from this network address; try again later",
    )
    .with_retry_after(u32::try_from(retry_after_secs.max(1)).unwrap_or(u32::MAX))
}

fn refused() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "sign-in-refused",
        "Sign-in refused",
        "the user name or password is wrong, or the account is locked or disabled",
    )
}

fn sign_in_problem(error: SignInError) -> Problem {
    match error {
        SignInError::Refused => refused(),
        SignInError::SecondFactor => Problem::new(
            StatusCode::UNAUTHORIZED,
            "second-factor-required",
            "Second factor required",
            "send the current code of your authenticator as `code`",
        ),
        SignInError::SecondFactorNotEnrolled => Problem::new(
            StatusCode::FORBIDDEN,
            "second-factor-not-enrolled",
            "Second factor not enrolled",
            "this role needs a second factor; ask an administrator to enrol one (`vigil user totp`)",
        ),
        SignInError::Scope(detail) => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-scope",
            "Invalid scope",
            detail,
        ),
        other => Problem::internal(&other),
    }
}

pub(super) async fn sign_out(
    State(access): State<Access>,
    principal: Principal,
) -> Result<StatusCode, Problem> {
    blocking(move || access.sign_out(&principal).map_err(super::store_problem)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub(super) struct Me {
    user: String,
    role: vigil_model::Role,
    patient: Option<String>,
    scope: String,
}

pub(super) async fn me(principal: Principal) -> Json<impl Serialize> {
    Json(Me {
        user: principal.user.as_str().to_owned(),
        role: principal.role,
        patient: principal.patient.map(|p| p.as_str().to_owned()),
        scope: principal.scopes.to_string(),
    })
}
