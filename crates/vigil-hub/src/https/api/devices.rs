//! `GET /api/v1/devices[/{id}]`: the device fleet for clinical engineers, security officers
//! and administrators (no patient data: which patient a device serves is in FHIR, for the
//! care team).

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use vigil_auth::policy::Operation;
use vigil_model::{Action, Actor, DeviceClass, DeviceId, Outcome, ResourceKind};

use super::{authorize_problem, blocking, not_found, store_problem};
use crate::access::{Access, Principal};
use crate::audit::entry;
use crate::https::problem::Problem;

#[derive(Serialize)]
pub(super) struct DeviceView {
    id: String,
    class: DeviceClass,
    status: String,
    created_at: String,
    revoked_at: Option<String>,
    certificate: Option<CertificateView>,
}

#[derive(Serialize)]
pub(super) struct CertificateView {
    serial: String,
    fingerprint: String,
    not_after: String,
    key: String,
}

fn view(access: &Access, device: vigil_store::DeviceRecord) -> Result<DeviceView, Problem> {
    let certificate = access
        .store()
        .certificates_of(&device.id)
        .map_err(store_problem)?
        .into_iter()
        .rfind(|c| c.revoked_at.is_none())
        .map(|c| CertificateView {
            serial: c.serial,
            fingerprint: c.fingerprint,
            not_after: c.not_after.to_string(),
            key: format!("{} {}", c.key_kind, c.key_bits),
        });
    Ok(DeviceView {
        id: device.id.as_str().to_owned(),
        class: device.class,
        status: device.status.as_str().to_owned(),
        created_at: device.created_at.to_string(),
        revoked_at: device.revoked_at.map(|t| t.to_string()),
        certificate,
    })
}

pub(super) async fn list(
    State(access): State<Access>,
    principal: Principal,
) -> Result<Json<Vec<DeviceView>>, Problem> {
    blocking(move || {
        access
            .authorize(&principal, Operation::ListDevices, None)
            .map_err(authorize_problem)?;
        let devices = access.store().devices().map_err(store_problem)?;
        access.auditor().record_later(entry(
            Actor::User(principal.user.clone()),
            Action::Read,
            ResourceKind::Device,
            "*",
            Outcome::Success,
            None,
        ));
        devices
            .into_iter()
            .map(|d| view(&access, d))
            .collect::<Result<Vec<_>, _>>()
            .map(Json)
    })
    .await
}

pub(super) async fn one(
    State(access): State<Access>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, Problem> {
    let id = DeviceId::new(&id).map_err(|_| not_found("device"))?;
    blocking(move || {
        access
            .authorize(&principal, Operation::ReadDevice, None)
            .map_err(authorize_problem)?;
        let device = access
            .store()
            .device(&id)
            .map_err(store_problem)?
            .ok_or_else(|| not_found("device"))?;
        access.auditor().record_later(entry(
            Actor::User(principal.user.clone()),
            Action::Read,
            ResourceKind::Device,
            id.as_str(),
            Outcome::Success,
            None,
        ));
        view(&access, device).map(Json)
    })
    .await
}
