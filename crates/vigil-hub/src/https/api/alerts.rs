//! `GET /api/v1/alerts[/{id}]`, `POST /api/v1/alerts/{id}/acknowledge|close`: the security
//! officer's and clinical engineer's alert queue. Clinical evidence never appears here (these
//! roles do not read clinical data); clinicians see their patients' alerts through FHIR.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use vigil_auth::policy::Operation;
use vigil_model::{
    Action, Actor, AlertKind, AlertStatus, Evidence, Outcome, ResourceKind, Severity, Timestamp,
};
use vigil_store::StoredAlert;

use super::{authorize_problem, bad_parameter, blocking, not_found, store_problem};
use crate::access::{Access, Principal};
use crate::audit::entry;
use crate::https::problem::Problem;

#[derive(Serialize)]
pub(super) struct AlertView {
    id: u64,
    time: String,
    severity: Severity,
    kind: AlertKind,
    device: Option<String>,
    patient: Option<String>,
    technique: Option<String>,
    /// Non-clinical evidence (counts, rates, addresses, sequence numbers).
    facts: Vec<Fact>,
    /// How many clinical values back the alert (shown to the care team, not here).
    clinical_evidence: usize,
    status: AlertStatus,
    handled_by: Option<String>,
    handled_at: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Fact {
    name: String,
    value: String,
}

pub(crate) fn view(stored: StoredAlert) -> AlertView {
    let alert = stored.alert;
    let mut facts = Vec::new();
    let mut clinical = 0;
    for evidence in alert.evidence {
        match evidence {
            Evidence::Fact { name, value } => facts.push(Fact { name, value }),
            Evidence::Clinical { .. } => clinical += 1,
        }
    }
    AlertView {
        id: stored.id,
        time: alert.time.to_string(),
        severity: alert.severity,
        kind: alert.kind,
        device: alert.device.map(|d| d.as_str().to_owned()),
        patient: alert.patient.map(|p| p.as_str().to_owned()),
        technique: alert.attack_technique,
        facts,
        clinical_evidence: clinical,
        status: stored.status,
        handled_by: stored.handled.as_ref().map(|(u, _)| u.as_str().to_owned()),
        handled_at: stored.handled.map(|(_, t)| t.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Filter {
    status: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn list(
    State(access): State<Access>,
    principal: Principal,
    query: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AlertView>>, Problem> {
    let Query(filter) = query
        .map_err(|_| bad_parameter("query", "status (open, acknowledged, closed) and limit"))?;
    let status = filter
        .status
        .as_deref()
        .map(str::parse::<AlertStatus>)
        .transpose()
        .map_err(|_| bad_parameter("status", "open, acknowledged or closed"))?;
    let limit = filter.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_parameter("limit", "from 1 to 1000"));
    }
    blocking(move || {
        access
            .authorize(&principal, Operation::ReadAlerts, None)
            .map_err(authorize_problem)?;
        let alerts = access
            .store()
            .alerts(status, limit)
            .map_err(store_problem)?;
        access.auditor().record_later(entry(
            Actor::User(principal.user.clone()),
            Action::Read,
            ResourceKind::Alert,
            "*",
            Outcome::Success,
            None,
        ));
        Ok(Json(alerts.into_iter().map(view).collect()))
    })
    .await
}

pub(super) async fn one(
    State(access): State<Access>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, Problem> {
    let id: u64 = id.parse().map_err(|_| not_found("alert"))?;
    blocking(move || {
        access
            .authorize(&principal, Operation::ReadAlerts, None)
            .map_err(authorize_problem)?;
        let alert = access
            .store()
            .alert(id)
            .map_err(store_problem)?
            .ok_or_else(|| not_found("alert"))?;
        access.auditor().record_later(entry(
            Actor::User(principal.user.clone()),
            Action::Read,
            ResourceKind::Alert,
            &id.to_string(),
            Outcome::Success,
            None,
        ));
        Ok(Json(view(alert)))
    })
    .await
}

pub(super) async fn acknowledge(
    state: State<Access>,
    principal: Principal,
    id: Path<String>,
) -> Result<Json<AlertView>, Problem> {
    set_status(state, principal, id, AlertStatus::Acknowledged).await
}

pub(super) async fn close(
    state: State<Access>,
    principal: Principal,
    id: Path<String>,
) -> Result<Json<AlertView>, Problem> {
    set_status(state, principal, id, AlertStatus::Closed).await
}

async fn set_status(
    State(access): State<Access>,
    principal: Principal,
    Path(id): Path<String>,
    status: AlertStatus,
) -> Result<Json<AlertView>, Problem> {
    let id: u64 = id.parse().map_err(|_| not_found("alert"))?;
    blocking(move || {
        access
            .authorize(&principal, Operation::HandleAlerts, None)
            .map_err(authorize_problem)?;
        let current = access
            .store()
            .alert(id)
            .map_err(store_problem)?
            .ok_or_else(|| not_found("alert"))?;
        // Open → acknowledged → closed; a closed alert stays closed.
        let allowed = matches!(
            (current.status, status),
            (AlertStatus::Open, _) | (AlertStatus::Acknowledged, AlertStatus::Closed)
        );
        if !allowed {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "alert-state",
                "Alert state",
                format!("the alert is {}", current.status.as_str()),
            ));
        }
        access
            .store()
            .set_alert_status(id, status, &principal.user, Timestamp::now())
            .map_err(store_problem)?;
        access.auditor().record_later(entry(
            Actor::User(principal.user.clone()),
            Action::Update,
            ResourceKind::Alert,
            &id.to_string(),
            Outcome::Success,
            Some(status.as_str()),
        ));
        let updated = access
            .store()
            .alert(id)
            .map_err(store_problem)?
            .ok_or_else(|| not_found("alert"))?;
        Ok(Json(view(updated)))
    })
    .await
}

/// How often an idle stream sends a comment, so that proxies keep it open.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// `GET /api/v1/alerts/stream`: every alert stored from now on, as Server-Sent Events (`event:
/// alert`, data: the alert as in the list; `event: lagged` when the reader fell behind and
/// alerts were skipped: read the list to catch up).
pub(super) async fn stream(
    State(access): State<Access>,
    State(registry): State<crate::Registry>,
    principal: Principal,
) -> Result<axum::response::Response, Problem> {
    use axum::response::IntoResponse;
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let check = access.clone();
    let who = principal.clone();
    blocking(move || {
        check
            .authorize(&who, Operation::ReadAlerts, None)
            .map_err(authorize_problem)
    })
    .await?;
    let Some(detection) = registry.detection() else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "detection-off",
            "Detection is off",
            "this hub runs without detection; there is no alert stream",
        ));
    };
    access.auditor().record_later(entry(
        Actor::User(principal.user.clone()),
        Action::Read,
        ResourceKind::Alert,
        "stream",
        Outcome::Success,
        Some("live alert stream opened"),
    ));
    let receiver = detection.subscribe();
    let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok((id, alert)) => {
                let stored = StoredAlert {
                    id,
                    alert,
                    status: AlertStatus::Open,
                    handled: None,
                };
                Event::default()
                    .event("alert")
                    .id(id.to_string())
                    .json_data(view(stored))
                    .unwrap_or_else(|_| Event::default().event("error"))
            }
            Err(RecvError::Lagged(missed)) => {
                Event::default().event("lagged").data(missed.to_string())
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<Event, std::convert::Infallible>(event), receiver))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}
