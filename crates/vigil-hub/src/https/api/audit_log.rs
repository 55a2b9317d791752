//! The audit log for auditors and security officers: entries, the latest signed checkpoint,
//! inclusion proofs.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use vigil_auth::policy::Operation;
use vigil_model::{Action, Actor, AuditEntry, Outcome, ResourceKind};

use super::patients::hex;
use super::{authorize_problem, bad_parameter, blocking, not_found, store_problem};
use crate::access::{Access, Principal};
use crate::audit::entry;
use crate::checkpoints::Checkpointer;
use crate::https::problem::Problem;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Range {
    from: Option<u64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub(super) struct Entry {
    index: u64,
    entry: AuditEntry,
}

/// `GET /api/v1/audit/entries?from=&limit=`: audit entries in log order.
pub(super) async fn entries(
    State(access): State<Access>,
    principal: Principal,
    query: Result<Query<Range>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Entry>>, Problem> {
    let Query(range) =
        query.map_err(|_| bad_parameter("query", "from and limit are whole numbers"))?;
    let limit = range.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_parameter("limit", "from 1 to 1000"));
    }
    blocking(move || {
        access
            .authorize(&principal, Operation::ReadAuditLog, None)
            .map_err(authorize_problem)?;
        let entries = access
            .store()
            .audit_entries(range.from.unwrap_or(0), limit)
            .map_err(store_problem)?;
        access.auditor().record_later(entry(
            Actor::User(principal.user.clone()),
            Action::Read,
            ResourceKind::AuditLog,
            &range.from.unwrap_or(0).to_string(),
            Outcome::Success,
            None,
        ));
        Ok(Json(
            entries
                .into_iter()
                .map(|(index, entry)| Entry { index, entry })
                .collect(),
        ))
    })
    .await
}

#[derive(Serialize)]
pub(super) struct CheckpointView {
    size: u64,
    note: String,
}

/// `GET /api/v1/audit/checkpoint`: the newest signed checkpoint.
pub(super) async fn checkpoint(
    State(access): State<Access>,
    principal: Principal,
) -> Result<Json<CheckpointView>, Problem> {
    blocking(move || {
        access
            .authorize(&principal, Operation::ReadCheckpoints, None)
            .map_err(authorize_problem)?;
        let (size, note) = access
            .store()
            .latest_checkpoint()
            .map_err(store_problem)?
            .ok_or_else(|| not_found("checkpoint"))?;
        Ok(Json(CheckpointView { size, note }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProofQuery {
    index: u64,
}

#[derive(Serialize)]
pub(super) struct Proof {
    index: u64,
    size: u64,
    note: String,
    inclusion_proof: Vec<String>,
}

/// `GET /api/v1/audit/proof?index=`: an entry's inclusion proof in the newest checkpoint.
pub(super) async fn proof(
    State(access): State<Access>,
    State(checkpointer): State<Checkpointer>,
    principal: Principal,
    query: Result<Query<ProofQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Proof>, Problem> {
    let Query(query) = query.map_err(|_| bad_parameter("index", "a leaf index (whole number)"))?;
    blocking(move || {
        access
            .authorize(&principal, Operation::ReadAuditLog, None)
            .map_err(authorize_problem)?;
        let signed = checkpointer
            .inclusion_proofs(&[query.index])
            .map_err(|e| Problem::internal(&e))?
            .ok_or_else(|| not_found("checkpoint"))?;
        let proof = signed
            .proofs
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| not_found("leaf in the newest checkpoint"))?;
        Ok(Json(Proof {
            index: query.index,
            size: signed.size,
            note: signed.note,
            inclusion_proof: proof.iter().map(hex).collect(),
        }))
    })
    .await
}
