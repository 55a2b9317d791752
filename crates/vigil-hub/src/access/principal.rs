//! Who is asking: the bearer token of a request, checked against its session.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use vigil_auth::scope::Scopes;
use vigil_model::{PatientId, Role, Timestamp, UserId};

use super::Access;
use crate::https::problem::Problem;

/// A session is marked used at most this often (each mark is a database write).
const TOUCH_EVERY_MS: i64 = 30_000;

/// The signed-in person behind a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user: UserId,
    /// Their role.
    pub role: Role,
    /// The session id.
    pub session: String,
    /// What the token allows (SMART scopes, within the role's).
    pub scopes: Scopes,
    /// For a patient, the patient they are.
    pub patient: Option<PatientId>,
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a valid token of this hub, or expired.
    Invalid,
    /// The session was ended, timed out or the account changed.
    SessionEnded,
}

impl Access {
    /// The principal behind a bearer token, if the token and its session are valid now.
    pub fn authenticate(&self, token: &str) -> Result<Principal, TokenRefusal> {
        let now = Timestamp::now();
        let claims = self
            .inner
            .verifier
            .verify(token, now.unix_millis().div_euclid(1000))
            .map_err(|_| TokenRefusal::Invalid)?;
        let store = &self.inner.store;
        let session = store
            .user_session(&claims.sid)
            .ok()
            .flatten()
            .ok_or(TokenRefusal::SessionEnded)?;
        let idle_ends = session.last_used.unix_millis() + self.inner.settings.idle_ms;
        if session.revoked_at.is_some()
            || session.user.as_str() != claims.sub
            || session.expires_at <= now
            || idle_ends <= now.unix_millis()
        {
            return Err(TokenRefusal::SessionEnded);
        }
        let user = store
            .user(&session.user)
            .ok()
            .flatten()
            .filter(|u| u.disabled_at.is_none() && u.role == claims.role)
            .ok_or(TokenRefusal::SessionEnded)?;
        if now.unix_millis() - session.last_used.unix_millis() >= TOUCH_EVERY_MS
            && let Err(error) = store.touch_user_session(&session.id, now)
        {
            tracing::warn!(%error, "session use could not be recorded");
        }
        let scopes = Scopes::parse(&claims.scope).map_err(|_| TokenRefusal::Invalid)?;
        let patient = if user.role == Role::Patient {
            store.user_patient(&user.id).ok().flatten()
        } else {
            None
        };
        Ok(Principal {
            user: user.id,
            role: user.role,
            session: session.id,
            scopes,
            patient,
        })
    }
}

impl<S> FromRequestParts<S> for Principal
where
    Access: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Principal, Problem> {
        let access = Access::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let refusal = match token {
            None => TokenRefusal::Missing,
            Some(token) => {
                let token = token.to_owned();
                let checked =
                    tokio::task::spawn_blocking(move || access.authenticate(&token)).await;
                match checked {
                    Ok(Ok(principal)) => return Ok(principal),
                    Ok(Err(refusal)) => refusal,
                    Err(error) => return Err(Problem::internal(&error)),
                }
            }
        };
        let detail = match refusal {
            TokenRefusal::Missing => {
                "sign in and send the session token as `Authorization: Bearer <token>`"
            }
            TokenRefusal::Invalid => {
                "the session token is not valid (malformed, not this hub's, or expired)"
            }
            TokenRefusal::SessionEnded => {
                "the session has ended (signed out, idle too long, or the account changed); sign in again"
            }
        };
        Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Not signed in",
            detail,
        )
        .with_bearer_challenge())
    }
}
