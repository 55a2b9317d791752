//! A patient's circle: the care team (administrators), consents (the patient), break-glass
//! (clinicians, in an emergency), and the access history the patient can check with proofs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use vigil_auth::policy::{Basis, Operation};
use vigil_model::{
    Action, Actor, AlertKind, Outcome, PatientId, ResourceKind, Role, Severity, Timestamp, UserId,
};
use vigil_store::BreakGlassRecord;

use super::{JsonBody, authorize_problem, bad_parameter, blocking, not_found, store_problem};
use crate::access::{Access, Principal};
use crate::audit::entry;
use crate::checkpoints::Checkpointer;
use crate::https::problem::Problem;

fn patient_id(text: &str) -> Result<PatientId, Problem> {
    PatientId::new(text).map_err(|_| not_found("patient"))
}

fn user_id(text: &str) -> Result<UserId, Problem> {
    UserId::new(text).map_err(|_| not_found("user"))
}

/// Every patient-scoped handler starts here: the patient exists, and the principal may.
fn check(
    access: &Access,
    principal: &Principal,
    operation: Operation,
    patient: &PatientId,
) -> Result<Basis, Problem> {
    // Existence is checked after the decision for people who may not know it: a stranger
    // gets 403 for every id, never a hint of which patients exist.
    let basis = access
        .authorize(principal, operation, Some(patient))
        .map_err(authorize_problem)?;
    if access
        .store()
        .patient(patient)
        .map_err(store_problem)?
        .is_none()
    {
        return Err(not_found("patient"));
    }
    Ok(basis)
}

fn audit(
    access: &Access,
    principal: &Principal,
    action: Action,
    patient: &PatientId,
    reason: &str,
) {
    audit_outcome(access, principal, action, patient, Outcome::Success, reason);
}

fn audit_outcome(
    access: &Access,
    principal: &Principal,
    action: Action,
    patient: &PatientId,
    outcome: Outcome,
    reason: &str,
) {
    access.auditor().record_later(entry(
        Actor::User(principal.user.clone()),
        action,
        ResourceKind::Patient,
        patient.as_str(),
        outcome,
        Some(reason),
    ));
}

/// The name of a decision's basis, in audit entries and answers.
pub(crate) fn basis_name(basis: Basis) -> &'static str {
    match basis {
        Basis::Role => "role",
        Basis::Own => "own record",
        Basis::CareTeam => "care team",
        Basis::Consent => "consent",
        Basis::BreakGlass => "break-glass",
    }
}

#[derive(Serialize)]
pub(super) struct Listed {
    patient: String,
    basis: &'static str,
}

/// `GET /api/v1/patients`: the patients the principal may open (care team, consent; a
/// patient: themselves).
pub(super) async fn list(
    State(access): State<Access>,
    principal: Principal,
) -> Result<Json<Vec<Listed>>, Problem> {
    blocking(move || {
        access
            .authorize(&principal, Operation::ListPatients, None)
            .or_else(|e| {
                // A patient lists only themselves, through their own-record right.
                match &principal.patient {
                    Some(own) if principal.role == Role::Patient => access
                        .authorize(&principal, Operation::ReadPatientRecord, Some(own))
                        .map(|_| Basis::Own),
                    _ => Err(e),
                }
            })
            .map_err(authorize_problem)?;
        let store = access.store();
        let mut listed = Vec::new();
        if let Some(own) = &principal.patient {
            listed.push(Listed {
                patient: own.as_str().to_owned(),
                basis: basis_name(Basis::Own),
            });
        } else {
            for p in store
                .care_team_patients(&principal.user)
                .map_err(store_problem)?
            {
                listed.push(Listed {
                    patient: p.as_str().to_owned(),
                    basis: basis_name(Basis::CareTeam),
                });
            }
            for p in store
                .consented_patients(&principal.user)
                .map_err(store_problem)?
            {
                if !listed.iter().any(|l| l.patient == p.as_str()) {
                    listed.push(Listed {
                        patient: p.as_str().to_owned(),
                        basis: basis_name(Basis::Consent),
                    });
                }
            }
        }
        access.auditor().record_later(entry(
            Actor::User(principal.user.clone()),
            Action::Read,
            ResourceKind::Patient,
            "*",
            Outcome::Success,
            Some("patient list"),
        ));
        Ok(Json(listed))
    })
    .await
}

#[derive(Serialize)]
pub(super) struct Member {
    user: String,
}

/// `GET /api/v1/patients/{patient}/care-team` (administrators).
pub(super) async fn care_team(
    State(access): State<Access>,
    principal: Principal,
    Path(patient): Path<String>,
) -> Result<Json<Vec<Member>>, Problem> {
    let patient = patient_id(&patient)?;
    blocking(move || {
        check(&access, &principal, Operation::ManageCareTeams, &patient)?;
        let mut members = Vec::new();
        for user in access.store().users().map_err(store_problem)? {
            if access
                .store()
                .is_on_care_team(&user.id, &patient)
                .map_err(store_problem)?
            {
                members.push(Member {
                    user: user.id.as_str().to_owned(),
                });
            }
        }
        audit(&access, &principal, Action::Read, &patient, "care team");
        Ok(Json(members))
    })
    .await
}

/// `PUT /api/v1/patients/{patient}/care-team/{user}`: puts a clinician on the care team.
pub(super) async fn add_to_care_team(
    State(access): State<Access>,
    principal: Principal,
    Path((patient, user)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    link(access, principal, &patient, &user, Link::CareTeam).await
}

/// `DELETE /api/v1/patients/{patient}/care-team/{user}`.
pub(super) async fn remove_from_care_team(
    State(access): State<Access>,
    principal: Principal,
    Path((patient, user)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    unlink(access, principal, &patient, &user, Link::CareTeam).await
}

/// The two ways a clinician is given a patient's record: a place on the care team (managed by
/// staff) and the patient's own consent. Their endpoints differ only in what this says.
#[derive(Debug, Clone, Copy)]
enum Link {
    CareTeam,
    Consent,
}

/// What a request did to a link.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Made it.
    Made,
    /// Found it in place already.
    Kept,
    /// Ended it.
    Ended,
    /// Found none to end.
    Absent,
}

impl Link {
    fn operation(self) -> Operation {
        match self {
            Link::CareTeam => Operation::ManageCareTeams,
            Link::Consent => Operation::ManageConsent,
        }
    }

    fn action(self) -> Action {
        match self {
            Link::CareTeam => Action::Update,
            Link::Consent => Action::Consent,
        }
    }

    /// What the audit entry says of `change` for `user`.
    fn reason(self, change: Change, user: &UserId) -> String {
        match (self, change) {
            (Link::CareTeam, Change::Made) => format!("care team: added {user}"),
            (Link::CareTeam, Change::Kept) => format!("care team: already has {user}"),
            (Link::CareTeam, Change::Ended) => format!("care team: removed {user}"),
            (Link::CareTeam, Change::Absent) => format!("care team: {user} was not on it"),
            (Link::Consent, Change::Made) => format!("shared with {user}"),
            (Link::Consent, Change::Kept) => format!("already shared with {user}"),
            (Link::Consent, Change::Ended) => format!("stopped sharing with {user}"),
            (Link::Consent, Change::Absent) => format!("was not shared with {user}"),
        }
    }

    /// What a 404 names when there is no such link to end.
    fn missing(self) -> &'static str {
        match self {
            Link::CareTeam => "care team member",
            Link::Consent => "consent",
        }
    }

    /// Makes the link; `false` if it was in place already.
    fn make(self, access: &Access, user: &UserId, patient: &PatientId) -> Result<bool, Problem> {
        let store = access.store();
        let now = Timestamp::now();
        match self {
            Link::CareTeam => store.add_to_care_team(user, patient, now),
            Link::Consent => store.grant_consent(patient, user, now),
        }
        .map_err(store_problem)
    }

    /// Ends the link (kept for the record); `false` if there was none.
    fn end(self, access: &Access, user: &UserId, patient: &PatientId) -> Result<bool, Problem> {
        let store = access.store();
        let now = Timestamp::now();
        match self {
            Link::CareTeam => store.remove_from_care_team(user, patient, now),
            Link::Consent => store.withdraw_consent(patient, user, now),
        }
        .map_err(store_problem)
    }
}

/// Gives an enabled clinician `link` to the patient's record: 201, or 204 if it was in place.
async fn link(
    access: Access,
    principal: Principal,
    patient: &str,
    user: &str,
    link: Link,
) -> Result<StatusCode, Problem> {
    let patient = patient_id(patient)?;
    let user = user_id(user)?;
    blocking(move || {
        check(&access, &principal, link.operation(), &patient)?;
        require_clinician(&access, &user)?;
        // Audited either way: a request to give access is a write, even when it changes nothing.
        let made = link.make(&access, &user, &patient)?;
        let what = link.reason(if made { Change::Made } else { Change::Kept }, &user);
        audit(&access, &principal, link.action(), &patient, &what);
        Ok(if made {
            StatusCode::CREATED
        } else {
            StatusCode::NO_CONTENT
        })
    })
    .await
}

/// Ends `link`: 204, or 404 if there was none.
async fn unlink(
    access: Access,
    principal: Principal,
    patient: &str,
    user: &str,
    link: Link,
) -> Result<StatusCode, Problem> {
    let patient = patient_id(patient)?;
    let user = user_id(user)?;
    blocking(move || {
        check(&access, &principal, link.operation(), &patient)?;
        if !link.end(&access, &user, &patient)? {
            let what = link.reason(Change::Absent, &user);
            audit_outcome(
                &access,
                &principal,
                link.action(),
                &patient,
                Outcome::Failed,
                &what,
            );
            return Err(not_found(link.missing()));
        }
        let what = link.reason(Change::Ended, &user);
        audit(&access, &principal, link.action(), &patient, &what);
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

fn require_clinician(access: &Access, user: &UserId) -> Result<(), Problem> {
    match access.store().user(user).map_err(store_problem)? {
        Some(u) if u.role == Role::Clinician && u.disabled_at.is_none() => Ok(()),
        Some(_) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-a-clinician",
            "Not a clinician",
            "only an enabled clinician's account can be given access to a patient's record",
        )),
        None => Err(not_found("user")),
    }
}

#[derive(Serialize)]
pub(super) struct Consent {
    user: String,
    granted_at: String,
    withdrawn_at: Option<String>,
}

/// `GET /api/v1/patients/{patient}/consents` (the patient).
pub(super) async fn consents(
    State(access): State<Access>,
    principal: Principal,
    Path(patient): Path<String>,
) -> Result<Json<Vec<Consent>>, Problem> {
    let patient = patient_id(&patient)?;
    blocking(move || {
        check(&access, &principal, Operation::ManageConsent, &patient)?;
        let consents = access.store().consents(&patient).map_err(store_problem)?;
        audit(&access, &principal, Action::Read, &patient, "consents");
        Ok(Json(
            consents
                .into_iter()
                .map(|c| Consent {
                    user: c.user.as_str().to_owned(),
                    granted_at: c.granted_at.to_string(),
                    withdrawn_at: c.withdrawn_at.map(|t| t.to_string()),
                })
                .collect(),
        ))
    })
    .await
}

/// `PUT /api/v1/patients/{patient}/consents/{user}`: the patient shares with a clinician.
pub(super) async fn grant_consent(
    State(access): State<Access>,
    principal: Principal,
    Path((patient, user)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    link(access, principal, &patient, &user, Link::Consent).await
}

/// `DELETE /api/v1/patients/{patient}/consents/{user}`: the patient stops sharing.
pub(super) async fn withdraw_consent(
    State(access): State<Access>,
    principal: Principal,
    Path((patient, user)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    unlink(access, principal, &patient, &user, Link::Consent).await
}

/// The reasons a clinician may give for emergency access: chosen from a list, so that no
/// patient detail is ever typed into the audit log.
pub(super) const BREAK_GLASS_REASONS: &[&str] = &[
    "emergency-treatment",
    "patient-unresponsive",
    "covering-clinician",
    "critical-result",
    "rapid-response-call",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BreakGlassBody {
    reason: String,
}

#[derive(Serialize)]
pub(super) struct Opened {
    patient: String,
    reason: String,
    expires_at: String,
}

/// `POST /api/v1/patients/{patient}/break-glass` with a reason from the list: opens the
/// record to a clinician outside the care team for a limited time; audited, and the security
/// officer is alerted.
pub(super) async fn break_glass(
    State(access): State<Access>,
    principal: Principal,
    Path(patient): Path<String>,
    JsonBody(body): JsonBody<BreakGlassBody>,
) -> Result<(StatusCode, Json<Opened>), Problem> {
    let patient = patient_id(&patient)?;
    if !BREAK_GLASS_REASONS.contains(&body.reason.as_str()) {
        return Err(bad_parameter(
            "reason",
            &format!("one of: {}", BREAK_GLASS_REASONS.join(", ")),
        ));
    }
    blocking(move || {
        check(&access, &principal, Operation::BreakGlass, &patient)?;
        let now = Timestamp::now();
        let expires_at =
            Timestamp::from_unix_millis(now.unix_millis() + access.settings().break_glass_ms)
                .map_err(|e| Problem::internal(&e))?;
        access
            .store()
            .open_break_glass(&BreakGlassRecord {
                user: principal.user.clone(),
                patient: patient.clone(),
                reason: body.reason.clone(),
                opened_at: now,
                expires_at,
            })
            .map_err(store_problem)?;
        access.auditor().record_later(entry(
            Actor::User(principal.user.clone()),
            Action::BreakGlass,
            ResourceKind::Patient,
            patient.as_str(),
            Outcome::Success,
            Some(&body.reason),
        ));
        access.raise(Access::person_alert(
            AlertKind::BreakGlass,
            Severity::High,
            Some(patient.clone()),
            &[
                ("user", principal.user.as_str().to_owned()),
                ("reason", body.reason.clone()),
                ("until", expires_at.to_string()),
            ],
        ));
        Ok((
            StatusCode::CREATED,
            Json(Opened {
                patient: patient.as_str().to_owned(),
                reason: body.reason,
                expires_at: expires_at.to_string(),
            }),
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Page {
    before: Option<u64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub(super) struct AccessLog {
    /// The signed checkpoint every proof below leads to (C2SP signed note).
    checkpoint: Option<CheckpointView>,
    entries: Vec<AccessEntry>,
    /// Pass as `before` for the next (older) page.
    next_before: Option<u64>,
}

#[derive(Serialize)]
pub(super) struct CheckpointView {
    size: u64,
    note: String,
}

#[derive(Serialize)]
pub(super) struct AccessEntry {
    /// The entry's leaf index in the audit log.
    index: u64,
    /// The entry.
    entry: vigil_model::AuditEntry,
    /// The leaf's data as the log hashed it, after its tag: the leaf hash is RFC 9162's
    /// `SHA-256(0x00 || "vigil/audit-entry/v1\n" || leaf)`, which anyone can recompute.
    leaf: String,
    /// RFC 9162 inclusion proof (hex hashes) in the checkpoint's tree; absent until the next
    /// checkpoint covers the entry (within seconds).
    inclusion_proof: Option<Vec<String>>,
}

/// `GET /api/v1/patients/{patient}/access-log`: who accessed the record, newest first, each
/// entry with an inclusion proof in the latest signed checkpoint.
pub(super) async fn access_log(
    State(access): State<Access>,
    State(checkpointer): State<Checkpointer>,
    principal: Principal,
    Path(patient): Path<String>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AccessLog>, Problem> {
    let patient = patient_id(&patient)?;
    let Query(page) =
        query.map_err(|_| bad_parameter("query", "before and limit are whole numbers"))?;
    let limit = page.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(bad_parameter("limit", "from 1 to 500"));
    }
    blocking(move || {
        check(
            &access,
            &principal,
            Operation::ReadPatientAccessLog,
            &patient,
        )?;
        let entries = access
            .store()
            .patient_audit_entries(&patient, page.before, limit)
            .map_err(store_problem)?;
        let indexes: Vec<u64> = entries.iter().map(|(index, _)| *index).collect();
        let signed = checkpointer
            .inclusion_proofs(&indexes)
            .map_err(|e| Problem::internal(&e))?;
        let proofs = signed
            .as_ref()
            .map(|s| s.proofs.clone())
            .unwrap_or_else(|| vec![None; indexes.len()]);
        let next_before = (entries.len() == limit)
            .then(|| indexes.last().copied())
            .flatten();
        let entries = entries
            .into_iter()
            .zip(proofs)
            .map(|((index, entry), proof)| AccessEntry {
                index,
                leaf: serde_json::to_string(&entry).unwrap_or_default(),
                entry,
                inclusion_proof: proof.map(|hashes| hashes.iter().map(hex).collect()),
            })
            .collect();
        audit(&access, &principal, Action::Read, &patient, "access log");
        Ok(Json(AccessLog {
            checkpoint: signed.map(|s| CheckpointView {
                size: s.size,
                note: s.note,
            }),
            entries,
            next_before,
        }))
    })
    .await
}

pub(crate) fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
