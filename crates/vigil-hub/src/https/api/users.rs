//! `GET/POST /api/v1/users`, `POST /api/v1/users/{user}/disable` (administrators).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use vigil_auth::policy::Operation;
use vigil_model::{Action, Actor, Outcome, PatientId, ResourceKind, Role, Timestamp, UserId};

use super::{JsonBody, authorize_problem, bad_parameter, blocking, store_problem};
use crate::access::users::{NewUserError, create_user};
use crate::access::{Access, Principal};
use crate::audit::entry;
use crate::https::problem::Problem;

#[derive(Serialize)]
pub(super) struct UserView {
    user: String,
    role: Role,
    created_at: String,
    disabled_at: Option<String>,
}

pub(super) async fn list(
    State(access): State<Access>,
    principal: Principal,
) -> Result<Json<Vec<UserView>>, Problem> {
    blocking(move || {
        access
            .authorize(&principal, Operation::ManageUsers, None)
            .map_err(authorize_problem)?;
        let users = access.store().users().map_err(store_problem)?;
        access.auditor().record_later(entry(
            Actor::User(principal.user.clone()),
            Action::Read,
            ResourceKind::User,
            "*",
            Outcome::Success,
            None,
        ));
        Ok(Json(
            users
                .into_iter()
                .map(|u| UserView {
                    user: u.id.as_str().to_owned(),
                    role: u.role,
                    created_at: u.created_at.to_string(),
                    disabled_at: u.disabled_at.map(|t| t.to_string()),
                })
                .collect(),
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserBody {
    user: String,
    role: Role,
    patient: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Created {
    user: String,
    role: Role,
    /// Shown once; the person changes it... or an administrator resets it.
    initial_password: String,
    /// `otpauth://` URI of the second factor, for privileged roles.
    totp_uri: Option<String>,
}

pub(super) async fn create(
    State(access): State<Access>,
    principal: Principal,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<Response, Problem> {
    let user = UserId::new(&body.user)
        .map_err(|_| bad_parameter("user", "1 to 64 letters, digits, '.', '-' or '_'"))?;
    let patient = body
        .patient
        .as_deref()
        .map(PatientId::new)
        .transpose()
        .map_err(|_| bad_parameter("patient", "a patient id"))?;
    let role = body.role;
    blocking(move || {
        access
            .authorize(&principal, Operation::ManageUsers, None)
            .map_err(authorize_problem)?;
        let made = create_user(
            access.store().as_ref(),
            access.auditor(),
            Actor::User(principal.user.clone()),
            user,
            role,
            patient.as_ref(),
            None,
        )
        .map_err(new_user_problem)?;
        let totp_uri = made
            .totp
            .as_ref()
            .map(|s| s.otpauth_uri("Vigil", made.user.as_str()));
        let mut response = (
            StatusCode::CREATED,
            Json(Created {
                user: made.user.as_str().to_owned(),
                role,
                initial_password: made.password,
                totp_uri,
            }),
        )
            .into_response();
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        Ok(response)
    })
    .await
}

fn new_user_problem(error: NewUserError) -> Problem {
    match error {
        NewUserError::PatientLink => {
            bad_parameter("patient", "required for the patient role, and only for it")
        }
        NewUserError::Policy(detail) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak-password",
            "Password refused",
            detail,
        ),
        NewUserError::Store(error) => store_problem(error),
        other => Problem::internal(&other),
    }
}

pub(super) async fn disable(
    State(access): State<Access>,
    principal: Principal,
    Path(user): Path<String>,
) -> Result<StatusCode, Problem> {
    let user = UserId::new(&user).map_err(|_| super::not_found("user"))?;
    blocking(move || {
        access
            .authorize(&principal, Operation::ManageUsers, None)
            .map_err(authorize_problem)?;
        if user == principal.user {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "own-account",
                "Own account",
                "an administrator cannot disable their own account",
            ));
        }
        let now = Timestamp::now();
        access
            .store()
            .disable_user(&user, now)
            .map_err(store_problem)?;
        access
            .store()
            .revoke_sessions_of(&user, now)
            .map_err(store_problem)?;
        access.auditor().record_later(entry(
            Actor::User(principal.user.clone()),
            Action::Update,
            ResourceKind::User,
            user.as_str(),
            Outcome::Success,
            Some("account disabled"),
        ));
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
