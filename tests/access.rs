//! People's access (issue #8) through the real `vigil` program: accounts made with `vigil user
//! add`, a served hub, and a real HTTPS client. The authorisation matrix of every role against
//! every endpoint of `/api/v1` and `/fhir/r4`, object-level attacks, tokens that must not work
//! (expired, tampered, foreign, signed out, of a disabled account, idle), lockout, the second
//! factor, consent and break-glass, a patient's access log with inclusion proofs checked
//! against the signed checkpoint, refusals of malformed input, and schemathesis against the
//! served OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    DEV1, DEV2, P1, P2, PASSWORD, Reply, Ward, assert_outcome, assert_problem, run, stderr, ward,
};
use serde_json::{Value, json};

/// The matrix's columns: no token, then one signed-in account of each role.
const COLUMNS: [&str; 9] = [
    "-", "admin", "secoff", "engineer", "dr-care", "dr-other", "pat-one", "pat-two", "auditor",
];

/// One row: method, path, JSON body, and the expected answer for each of [`COLUMNS`].
///
/// Placeholders: `{P1}` (dr-care's patient, who is pat-one), `{P2}` (pat-two, nobody's),
/// `{OBS1}`/`{OBS2}` an observation of each, `{LEAF1}`/`{LEAF2}` an audit leaf about each,
/// `{ALERT}` an alert about P1. A cell is the status; for a FHIR searchset `200` also means
/// "at least one entry" and `200:0` means "200 with no entry".
type Row = (
    &'static str,
    &'static str,
    Option<&'static str>,
    [&'static str; 9],
);

/// The authorisation matrix (issue #8), in the order it runs: reads first, then writes (each
/// allowed write targets an account no read depends on), break-glass, and sign-out last.
#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //                                                          -      admin  secoff engin. dr-care dr-oth pat-1  pat-2  auditor
    ("GET", "/api/v1/openapi.json", None,                     ["200", "200", "200", "200", "200", "200", "200", "200", "200"]),
    // OpenID Connect is not configured in this ward: its endpoints are not there for anyone.
    ("GET", "/api/v1/oidc/login", None,                       ["404", "404", "404", "404", "404", "404", "404", "404", "404"]),
    ("GET", "/api/v1/oidc/callback", None,                    ["404", "404", "404", "404", "404", "404", "404", "404", "404"]),
    ("GET", "/api/v1/me", None,                               ["401", "200", "200", "200", "200", "200", "200", "200", "200"]),
    ("GET", "/api/v1/users", None,                            ["401", "200", "403", "403", "403", "403", "403", "403", "403"]),
    ("GET", "/api/v1/patients", None,                         ["401", "403", "403", "403", "200", "200", "200", "200", "403"]),
    ("GET", "/api/v1/patients/{P1}/care-team", None,          ["401", "200", "403", "403", "403", "403", "403", "403", "403"]),
    ("GET", "/api/v1/patients/{P2}/care-team", None,          ["401", "200", "403", "403", "403", "403", "403", "403", "403"]),
    // Another patient's consents.
    ("GET", "/api/v1/patients/{P1}/consents", None,           ["401", "403", "403", "403", "403", "403", "200", "403", "403"]),
    ("GET", "/api/v1/patients/{P2}/consents", None,           ["401", "403", "403", "403", "403", "403", "403", "200", "403"]),
    // Another patient's access log.
    ("GET", "/api/v1/patients/{P1}/access-log", None,         ["401", "403", "200", "403", "403", "403", "200", "403", "200"]),
    ("GET", "/api/v1/patients/{P2}/access-log", None,         ["401", "403", "200", "403", "403", "403", "403", "200", "200"]),
    // Who may not ask learns nothing of which patients exist.
    ("GET", "/api/v1/patients/pt-9999/access-log", None,      ["401", "403", "404", "403", "403", "403", "403", "403", "404"]),
    ("GET", "/api/v1/alerts", None,                           ["401", "403", "200", "200", "403", "403", "403", "403", "403"]),
    ("GET", "/api/v1/alerts/{ALERT}", None,                   ["401", "403", "200", "200", "403", "403", "403", "403", "403"]),
    ("GET", "/api/v1/audit/entries", None,                    ["401", "403", "200", "403", "403", "403", "403", "403", "200"]),
    ("GET", "/api/v1/audit/checkpoint", None,                 ["401", "200", "200", "200", "403", "403", "403", "403", "200"]),
    ("GET", "/api/v1/audit/proof?index=0", None,              ["401", "403", "200", "403", "403", "403", "403", "403", "200"]),
    ("GET", "/api/v1/devices", None,                          ["401", "200", "200", "200", "403", "403", "403", "403", "403"]),
    ("GET", "/api/v1/devices/{DEV1}", None,                   ["401", "200", "200", "200", "403", "403", "403", "403", "403"]),
    // FHIR: the CapabilityStatement is public, as FHIR expects.
    ("GET", "/fhir/r4/metadata", None,                        ["200", "200", "200", "200", "200", "200", "200", "200", "200"]),
    ("GET", "/fhir/r4/Patient/{P1}", None,                    ["401", "403", "403", "403", "200", "403", "200", "403", "403"]),
    ("GET", "/fhir/r4/Patient/{P2}", None,                    ["401", "403", "403", "403", "403", "403", "403", "200", "403"]),
    ("GET", "/fhir/r4/Patient?_id={P1}", None,                ["401", "403", "403", "403", "200", "200:0", "200", "200:0", "403"]),
    ("GET", "/fhir/r4/Patient?_id={P2}", None,                ["401", "403", "403", "403", "200:0", "200:0", "200:0", "200", "403"]),
    ("GET", "/fhir/r4/Patient", None,                         ["401", "403", "403", "403", "200", "200:0", "200", "200", "403"]),
    ("GET", "/fhir/r4/Observation?patient={P1}", None,        ["401", "403", "403", "403", "200", "403", "200", "403", "403"]),
    ("GET", "/fhir/r4/Observation?patient={P2}", None,        ["401", "403", "403", "403", "403", "403", "403", "200", "403"]),
    ("GET", "/fhir/r4/Observation", None,                     ["401", "403", "403", "403", "400", "400", "200", "200", "403"]),
    // Another patient's Observation id: not found, so that ids reveal nothing.
    ("GET", "/fhir/r4/Observation/{OBS1}", None,              ["401", "403", "403", "403", "200", "404", "200", "404", "403"]),
    ("GET", "/fhir/r4/Observation/{OBS2}", None,              ["401", "403", "403", "403", "404", "404", "404", "200", "403"]),
    ("GET", "/fhir/r4/Device?patient={P1}", None,             ["401", "403", "403", "403", "200", "403", "200", "403", "403"]),
    ("GET", "/fhir/r4/Device?patient={P2}", None,             ["401", "403", "403", "403", "403", "403", "403", "200", "403"]),
    ("GET", "/fhir/r4/Device/{DEV1}", None,                   ["401", "200", "200", "200", "200", "404", "200", "404", "403"]),
    ("GET", "/fhir/r4/Device/{DEV2}", None,                   ["401", "200", "200", "200", "404", "404", "404", "200", "403"]),
    ("GET", "/fhir/r4/AuditEvent?patient={P1}", None,         ["401", "403", "200", "403", "403", "403", "200", "403", "200"]),
    ("GET", "/fhir/r4/AuditEvent?patient={P2}", None,         ["401", "403", "200", "403", "403", "403", "403", "200", "200"]),
    ("GET", "/fhir/r4/AuditEvent", None,                      ["401", "403", "200", "403", "403", "403", "200", "200", "200"]),
    ("GET", "/fhir/r4/AuditEvent/{LEAF1}", None,              ["401", "403", "200", "403", "403", "403", "200", "404", "200"]),
    ("GET", "/fhir/r4/AuditEvent/{LEAF2}", None,              ["401", "403", "200", "403", "403", "403", "404", "200", "200"]),
    ("GET", "/fhir/r4/DetectedIssue?patient={P1}", None,      ["401", "403", "403", "403", "200", "403", "200", "403", "403"]),
    ("GET", "/fhir/r4/DetectedIssue?patient={P2}", None,      ["401", "403", "403", "403", "403", "403", "403", "200:0", "403"]),
    ("GET", "/fhir/r4/DetectedIssue", None,                   ["401", "403", "200", "200", "403", "403", "200", "200:0", "403"]),
    ("GET", "/fhir/r4/DetectedIssue/{ALERT}", None,           ["401", "403", "200", "200", "200", "404", "200", "404", "403"]),
    // Writes. Care teams: administrators.
    ("PUT", "/api/v1/patients/{P1}/care-team/dr-spare", None, ["401", "201", "403", "403", "403", "403", "403", "403", "403"]),
    ("DELETE", "/api/v1/patients/{P1}/care-team/dr-spare", None, ["401", "204", "403", "403", "403", "403", "403", "403", "403"]),
    ("PUT", "/api/v1/patients/{P2}/care-team/dr-spare", None, ["401", "201", "403", "403", "403", "403", "403", "403", "403"]),
    ("DELETE", "/api/v1/patients/{P2}/care-team/dr-spare", None, ["401", "204", "403", "403", "403", "403", "403", "403", "403"]),
    // Consent: the patient, for their own record only.
    ("PUT", "/api/v1/patients/{P1}/consents/dr-spare", None,  ["401", "403", "403", "403", "403", "403", "201", "403", "403"]),
    ("DELETE", "/api/v1/patients/{P1}/consents/dr-spare", None, ["401", "403", "403", "403", "403", "403", "204", "403", "403"]),
    ("PUT", "/api/v1/patients/{P2}/consents/dr-spare", None,  ["401", "403", "403", "403", "403", "403", "403", "201", "403"]),
    ("DELETE", "/api/v1/patients/{P2}/consents/dr-spare", None, ["401", "403", "403", "403", "403", "403", "403", "204", "403"]),
    // Accounts: administrators.
    ("POST", "/api/v1/users", Some(r#"{"user":"newcomer","role":"clinician"}"#),
                                                              ["401", "201", "403", "403", "403", "403", "403", "403", "403"]),
    ("POST", "/api/v1/users/leaver/disable", None,            ["401", "204", "403", "403", "403", "403", "403", "403", "403"]),
    // Alerts: the security officer handles them.
    ("POST", "/api/v1/alerts/{ALERT}/acknowledge", None,      ["401", "403", "200", "403", "403", "403", "403", "403", "403"]),
    ("POST", "/api/v1/alerts/{ALERT}/close", None,            ["401", "403", "200", "403", "403", "403", "403", "403", "403"]),
    // Break-glass: any clinician, for any patient (audited, alerted; tested below).
    ("POST", "/api/v1/patients/{P1}/break-glass", Some(r#"{"reason":"emergency-treatment"}"#),
                                                              ["401", "403", "403", "403", "201", "201", "403", "403", "403"]),
    ("POST", "/api/v1/patients/{P2}/break-glass", Some(r#"{"reason":"critical-result"}"#),
                                                              ["401", "403", "403", "403", "201", "201", "403", "403", "403"]),
    // Signing out ends the session: the same token is refused from then on.
    ("DELETE", "/api/v1/session", None,                       ["401", "204", "204", "204", "204", "204", "204", "204", "204"]),
    ("GET", "/api/v1/me", None,                               ["401", "401", "401", "401", "401", "401", "401", "401", "401"]),
    ("GET", "/fhir/r4/Patient/{P1}", None,                    ["401", "401", "401", "401", "401", "401", "401", "401", "401"]),
];

/// Every path of the OpenAPI document and every FHIR route, so that an endpoint added without
/// a row in [`MATRIX`] fails this test.
const FHIR_ROUTES: &[&str] = &[
    "/fhir/r4/metadata",
    "/fhir/r4/Patient",
    "/fhir/r4/Patient/{id}",
    "/fhir/r4/Observation",
    "/fhir/r4/Observation/{id}",
    "/fhir/r4/Device",
    "/fhir/r4/Device/{id}",
    "/fhir/r4/AuditEvent",
    "/fhir/r4/AuditEvent/{id}",
    "/fhir/r4/DetectedIssue",
    "/fhir/r4/DetectedIssue/{id}",
];

/// The leaf index of the first audit entry about `patient` (its `vigil patient add`).
async fn leaf_about(ward: &Ward, auditor: &str, patient: &str) -> u64 {
    let entries = ward.get("/api/v1/audit/entries?limit=1000", auditor).await;
    assert_eq!(entries.status, 200, "{entries:?}");
    entries
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"]["resource"] == json!({"kind": "patient", "id": patient}))
        .and_then(|e| e["index"].as_u64())
        .unwrap_or_else(|| panic!("no audit entry about {patient}"))
}

/// The shape of a path (`{x}` for each placeholder or id), to match rows to routes.
fn shape(path: &str) -> String {
    let path = path.split('?').next().unwrap();
    path.split('/')
        .enumerate()
        .map(|(i, part)| {
            let fixed = [
                "",
                "api",
                "v1",
                "fhir",
                "r4",
                "users",
                "patients",
                "care-team",
                "consents",
                "break-glass",
                "access-log",
                "alerts",
                "acknowledge",
                "close",
                "audit",
                "entries",
                "checkpoint",
                "proof",
                "devices",
                "session",
                "me",
                "openapi.json",
                "disable",
                "metadata",
                "Patient",
                "Observation",
                "Device",
                "AuditEvent",
                "DetectedIssue",
            ];
            if i > 0 && !fixed.contains(&part) {
                "{x}".to_owned()
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_role_against_every_endpoint_matches_the_matrix() {
    let ward = ward(5, &[]);
    // Every endpoint has a row: the OpenAPI document's operations and the FHIR routes.
    let openapi: Value = ward
        .call("GET", "/api/v1/openapi.json", None, None)
        .await
        .json();
    let covered: Vec<(String, String)> = MATRIX
        .iter()
        .map(|(method, path, _, _)| (method.to_lowercase(), shape(path)))
        .collect();
    let mut endpoints = Vec::new();
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            endpoints.push((method.clone(), shape(path)));
        }
    }
    endpoints.extend(FHIR_ROUTES.iter().map(|p| ("get".to_owned(), shape(p))));
    for endpoint in &endpoints {
        // Signing in is every role's way in, tested on its own below; the live alert stream
        // never ends, so its column of answers is checked from the headers alone, below.
        if endpoint == &("post".to_owned(), "/api/v1/session".to_owned())
            || endpoint == &("get".to_owned(), "/api/v1/alerts/stream".to_owned())
        {
            continue;
        }
        assert!(covered.contains(endpoint), "no matrix row for {endpoint:?}");
    }

    let mut tokens = vec![None];
    for user in &COLUMNS[1..] {
        tokens.push(Some(ward.sign_in(user).await));
    }
    let auditor = tokens[8].clone().unwrap();
    let leaf1 = leaf_about(&ward, &auditor, P1).await;
    let leaf2 = leaf_about(&ward, &auditor, P2).await;
    let fill = |text: &str| {
        text.replace("{P1}", P1)
            .replace("{P2}", P2)
            .replace("{DEV1}", DEV1)
            .replace("{DEV2}", DEV2)
            .replace("{OBS1}", &ward.obs1[0].to_string())
            .replace("{OBS2}", &ward.obs2[0].to_string())
            .replace("{LEAF1}", &leaf1.to_string())
            .replace("{LEAF2}", &leaf2.to_string())
            .replace("{ALERT}", &ward.alert.to_string())
    };

    let mut wrong = Vec::new();
    let mut cells = 0;
    for (method, path, body, expected) in MATRIX {
        let path = fill(path);
        let body: Option<Value> = body.map(|b| serde_json::from_str(b).unwrap());
        for (column, token) in tokens.iter().enumerate() {
            let reply = ward
                .call(method, &path, token.as_deref(), body.as_ref())
                .await;
            cells += 1;
            let got = outcome(&path, &reply);
            if got != expected[column] {
                wrong.push(format!(
                    "{method} {path} as {}: expected {}, got {got} {}",
                    COLUMNS[column],
                    expected[column],
                    reply.text().chars().take(200).collect::<String>()
                ));
            }
            check_refusal(&path, &reply);
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(cells, MATRIX.len() * COLUMNS.len());
}

/// A reply as a matrix cell: its status, and for a FHIR searchset whether it is empty.
fn outcome(path: &str, reply: &Reply) -> String {
    if reply.status == 200 && path.starts_with("/fhir/r4/") {
        let doc = reply.json();
        if doc["resourceType"] == "Bundle" {
            let entries = doc["entry"].as_array().map_or(0, Vec::len);
            return if entries == 0 {
                "200:0".into()
            } else {
                "200".into()
            };
        }
    }
    reply.status.to_string()
}

/// Every refusal is a problem document (API) or an OperationOutcome (FHIR), and tells no PHI.
fn check_refusal(path: &str, reply: &Reply) {
    if reply.status < 400 {
        return;
    }
    if path.starts_with("/fhir/r4/") {
        assert_outcome(reply, reply.status);
    } else {
        assert_problem(reply, reply.status);
    }
    // The seeded patients' name and MRN are "N" and "M": look for the birth date instead.
    assert!(!reply.text().contains("1980-01-01"), "{reply:?}");
}

/// Decodes a token's claims with the hub's own session key (the test plays a forger who stole
/// it, or checks what the hub signed).
fn hub_signer(ward: &Ward) -> vigil_auth::token::TokenSigner {
    let pkcs8 = std::fs::read(ward.data.join("session-signing.key")).unwrap();
    vigil_auth::token::TokenSigner::from_pkcs8(&pkcs8, "urn:vigil:hub").unwrap()
}

fn now_secs() -> i64 {
    vigil_model::Timestamp::now().unix_millis() / 1000
}

#[tokio::test]
async fn tokens_that_must_not_work_are_refused() {
    let ward = ward(2, &[]);
    let me = "/api/v1/me";
    let record = format!("/fhir/r4/Observation?patient={P1}");
    let token = ward.sign_in("dr-care").await;
    assert_eq!(ward.get(me, &token).await.status, 200);

    // Re-signed by the hub's key with its claims unchanged, the token still works: what
    // follows refuses only what each case changes.
    let signer = hub_signer(&ward);
    let claims = signer.verifier().verify(&token, now_secs()).unwrap();
    let resigned = signer.sign(&claims).unwrap();
    assert_eq!(ward.get(me, &resigned).await.status, 200);

    // Expired (beyond the verifier's minute of clock skew).
    let mut expired = claims.clone();
    expired.iat = now_secs() - 3600;
    expired.exp = now_secs() - 120;
    let expired = signer.sign(&expired).unwrap();
    // Another role claimed for the same session.
    let mut promoted = claims.clone();
    promoted.role = vigil_model::Role::Admin;
    let promoted = signer.sign(&promoted).unwrap();
    // Another hub's key.
    let (foreign, _) = vigil_auth::token::TokenSigner::generate("urn:vigil:hub").unwrap();
    let foreign = foreign.sign(&claims).unwrap();
    // One character of the payload changed.
    let mut tampered = token.clone().into_bytes();
    let at = "v4.public.".len() + 20;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (case, bad) in [
        ("expired", expired.as_str()),
        ("another role", promoted.as_str()),
        ("foreign key", foreign.as_str()),
        ("tampered", tampered.as_str()),
        ("garbage", "v4.public.bm90IGEgdG9rZW4"),
        ("too long", &"A".repeat(10_000)),
    ] {
        let reply = ward.get(me, bad).await;
        assert_problem(&reply, 401);
        assert!(
            reply.json()["type"] == "urn:vigil:problem:unauthenticated",
            "{case}: {reply:?}"
        );
        assert_outcome(&ward.get(&record, bad).await, 401);
    }
    assert_eq!(ward.get(me, &token).await.status, 200);

    // Signed out: the token is dead, a new sign-in works.
    let reply = ward
        .call("DELETE", "/api/v1/session", Some(&token), None)
        .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_problem(&ward.get(me, &token).await, 401);
    assert_outcome(&ward.get(&record, &token).await, 401);

    // Idle: the session unused for longer than [access] idle_minutes (15), as the database
    // says; the hub reads it on every request.
    let token = ward.sign_in("dr-care").await;
    assert_eq!(ward.get(&record, &token).await.status, 200);
    let sid = signer.verifier().verify(&token, now_secs()).unwrap().sid;
    let changed = ward
        .database()
        .execute(
            "UPDATE user_sessions SET last_used = last_used - 16 * 60 * 1000 WHERE id = ?1",
            [&sid],
        )
        .unwrap();
    assert_eq!(changed, 1);
    assert_problem(&ward.get(me, &token).await, 401);
    assert_outcome(&ward.get(&record, &token).await, 401);

    // Past the session's end, whatever the token says.
    let token = ward.sign_in("dr-care").await;
    let sid = signer.verifier().verify(&token, now_secs()).unwrap().sid;
    ward.database()
        .execute(
            "UPDATE user_sessions SET expires_at = 1000 WHERE id = ?1",
            [&sid],
        )
        .unwrap();
    assert_problem(&ward.get(me, &token).await, 401);

    // A disabled account: its open session ends at once, and it cannot sign in again.
    let token = ward.sign_in("dr-other").await;
    assert_eq!(ward.get(me, &token).await.status, 200);
    let out = run(&[
        "user",
        "disable",
        "--data-dir",
        ward.data.to_str().unwrap(),
        "--name",
        "dr-other",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_problem(&ward.get(me, &token).await, 401);
    let reply = ward
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(&json!({"user": "dr-other", "password": PASSWORD})),
        )
        .await;
    assert_problem(&reply, 401);
    assert_eq!(reply.json()["type"], "urn:vigil:problem:sign-in-refused");
}

/// Entries of the whole audit log, as the security officer reads them.
async fn audit_log(ward: &Ward, token: &str) -> Vec<Value> {
    let reply = ward.get("/api/v1/audit/entries?limit=1000", token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json().as_array().unwrap().clone()
}

/// Whether `alert` (as the API lists it) has the fact `name` with `value`.
fn has_fact(alert: &Value, name: &str, value: &str) -> bool {
    alert["facts"].as_array().is_some_and(|facts| {
        facts
            .iter()
            .any(|f| f["name"] == name && f["value"] == value)
    })
}

/// Polls the security officer's alert queue (alerts are written asynchronously) for one of
/// `kind` matching `test`.
async fn wait_for_alert(
    ward: &Ward,
    token: &str,
    kind: &str,
    test: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let reply = ward.get("/api/v1/alerts", token).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        if let Some(alert) = reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == kind && test(a))
        {
            return alert.clone();
        }
        assert!(Instant::now() < deadline, "no {kind} alert: {reply:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `POST /api/v1/session` with a password and maybe a second-factor code.
async fn sign_in_attempt(ward: &Ward, user: &str, password: &str, code: Option<&str>) -> Reply {
    let mut body = json!({"user": user, "password": password});
    if let Some(code) = code {
        body["code"] = code.into();
    }
    ward.call("POST", "/api/v1/session", None, Some(&body))
        .await
}

#[tokio::test]
async fn second_factor_and_lockout() {
    let ward = ward(1, &[]);

    // Second factor: the password alone is not enough for an administrator.
    let reply = sign_in_attempt(&ward, "admin", PASSWORD, None).await;
    assert_problem(&reply, 401);
    assert_eq!(
        reply.json()["type"],
        "urn:vigil:problem:second-factor-required"
    );
    // A wrong code: not any of the codes the hub accepts now.
    let code = ward.totp_code("admin").unwrap();
    let wrong = (0..10)
        .map(|d| format!("{}{d}", &code[..5]))
        .find(|c| !ward.totp_window("admin").contains(c))
        .unwrap();
    let reply = sign_in_attempt(&ward, "admin", PASSWORD, Some(&wrong)).await;
    assert_problem(&reply, 401);
    assert_eq!(
        reply.json()["type"],
        "urn:vigil:problem:second-factor-required"
    );
    // The right code, once.
    let reply = sign_in_attempt(&ward, "admin", PASSWORD, Some(&code)).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.json()["role"], "admin");
    let reply = sign_in_attempt(&ward, "admin", PASSWORD, Some(&code)).await;
    assert_problem(&reply, 401);
    assert_eq!(
        reply.json()["type"],
        "urn:vigil:problem:second-factor-required"
    );
    // A code right for the account but with the wrong password says nothing about the code.
    let next = ward.totp_code("secoff").unwrap();
    let reply = sign_in_attempt(&ward, "secoff", "Not-The-Password-99", Some(&next)).await;
    assert_eq!(
        reply.json()["type"],
        "urn:vigil:problem:sign-in-refused",
        "{reply:?}"
    );

    // Lockout: five wrong passwords, then the right one is refused too.
    let secoff = ward.sign_in("secoff").await;
    for _ in 0..5 {
        let reply = sign_in_attempt(&ward, "dr-care", "Wrong-Guess-Lantern-11", None).await;
        assert_problem(&reply, 401);
        assert_eq!(reply.json()["type"], "urn:vigil:problem:sign-in-refused");
    }
    let reply = sign_in_attempt(&ward, "dr-care", PASSWORD, None).await;
    assert_problem(&reply, 401);
    assert_eq!(reply.json()["type"], "urn:vigil:problem:sign-in-refused");
    // The audit says why; the security officer gets an alert.
    let alert = wait_for_alert(&ward, &secoff, "auth_failure_burst", |a| {
        has_fact(a, "user", "dr-care")
    })
    .await;
    assert!(alert["patient"].is_null(), "{alert}");
    // Audit entries are written asynchronously too.
    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = audit_log(&ward, &secoff).await;
        let about = |reason: &str| {
            log.iter()
                .filter(|e| {
                    e["entry"]["resource"]["id"] == "dr-care" && e["entry"]["reason"] == reason
                })
                .count()
        };
        let counts = [
            about("wrong password"),
            about("account locked after repeated failed sign-ins"),
            // The right password, refused, is audited with the reason.
            about("account locked"),
        ];
        if counts == [5, 1, 1] {
            break log;
        }
        assert!(Instant::now() < deadline, "audit counts {counts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // No password ever reaches the audit log.
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("Wrong-Guess") && !text.contains(PASSWORD));

    // An administrator's reset unlocks the account.
    let mut child = common::vigil()
        .args([
            "user",
            "password",
            "--data-dir",
            ward.data.to_str().unwrap(),
            "--name",
            "dr-care",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "Fresh-Meadow-Compass-27").unwrap();
    }
    assert!(child.wait().unwrap().success());
    let reply = sign_in_attempt(&ward, "dr-care", "Fresh-Meadow-Compass-27", None).await;
    assert_eq!(reply.status, 201, "{reply:?}");
}

#[tokio::test]
async fn consent_and_break_glass_open_the_record_and_are_audited() {
    let ward = ward(3, &[]);
    let patient = ward.sign_in("pat-one").await;
    let clinician = ward.sign_in("dr-other").await;
    let secoff = ward.sign_in("secoff").await;
    let record = format!("/fhir/r4/Observation?patient={P1}");
    assert_outcome(&ward.get(&record, &clinician).await, 403);

    // The patient shares with the clinician, who may read; then stops sharing.
    let consent = format!("/api/v1/patients/{P1}/consents/dr-other");
    assert_eq!(
        ward.call("PUT", &consent, Some(&patient), None)
            .await
            .status,
        201
    );
    assert_eq!(
        ward.call("PUT", &consent, Some(&patient), None)
            .await
            .status,
        204
    );
    let reply = ward.get(&record, &clinician).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["entry"].as_array().unwrap().len(), 3);
    let listed = ward.get("/api/v1/patients", &clinician).await.json();
    assert_eq!(listed, json!([{"patient": P1, "basis": "consent"}]));
    let consents = ward
        .get(&format!("/api/v1/patients/{P1}/consents"), &patient)
        .await
        .json();
    assert_eq!(consents[0]["user"], "dr-other");
    assert!(consents[0]["withdrawn_at"].is_null());
    assert_eq!(
        ward.call("DELETE", &consent, Some(&patient), None)
            .await
            .status,
        204
    );
    assert_problem(
        &ward.call("DELETE", &consent, Some(&patient), None).await,
        404,
    );
    assert_outcome(&ward.get(&record, &clinician).await, 403);
    // Consent is given to clinicians only.
    let reply = ward
        .call(
            "PUT",
            &format!("/api/v1/patients/{P1}/consents/auditor"),
            Some(&patient),
            None,
        )
        .await;
    assert_problem(&reply, 422);

    // Break-glass: a reason from the list, or nothing opens.
    let glass = format!("/api/v1/patients/{P1}/break-glass");
    for reason in [json!("curious"), json!("Emergency-Treatment"), json!("")] {
        let reply = ward
            .call(
                "POST",
                &glass,
                Some(&clinician),
                Some(&json!({"reason": reason})),
            )
            .await;
        assert_problem(&reply, 400);
    }
    assert_outcome(&ward.get(&record, &clinician).await, 403);
    let reply = ward
        .call(
            "POST",
            &glass,
            Some(&clinician),
            Some(&json!({"reason": "patient-unresponsive"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let opened = reply.json();
    let until = time::OffsetDateTime::parse(
        opened["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let minutes = (until - time::OffsetDateTime::now_utc()).whole_minutes();
    assert!(
        (58..=60).contains(&minutes),
        "break-glass for {minutes} minutes"
    );
    assert_eq!(ward.get(&record, &clinician).await.status, 200);
    assert_eq!(
        ward.get(&format!("/fhir/r4/Patient/{P1}"), &clinician)
            .await
            .status,
        200
    );

    // The patient's access log says on what basis each read was allowed.
    let reads = [
        "FHIR Observation search; consent",
        "FHIR Observation search; break-glass",
        "FHIR Patient read; break-glass",
        "patient-unresponsive",
    ];
    wait_for_reasons(&ward, &patient, "dr-other", &reads).await;
    // The patient's own consent requests are in it too, the one that changed nothing included.
    let consents = [
        "shared with dr-other",
        "already shared with dr-other",
        "stopped sharing with dr-other",
        "was not shared with dr-other",
    ];
    wait_for_reasons(&ward, &patient, "pat-one", &consents).await;

    // The security officer is alerted, without clinical detail.
    let alert = wait_for_alert(&ward, &secoff, "break_glass", |a| a["patient"] == P1).await;
    assert_eq!(alert["severity"], "high");
    assert!(has_fact(&alert, "user", "dr-other"), "{alert}");
    assert!(
        has_fact(&alert, "reason", "patient-unresponsive"),
        "{alert}"
    );

    // The grant lasts its time and no longer.
    let ended = ward
        .database()
        .execute(
            "UPDATE break_glass SET expires_at = ?1 WHERE user_id = 'dr-other'",
            [vigil_model::Timestamp::now().unix_millis() - 1],
        )
        .unwrap();
    assert_eq!(ended, 1);
    assert_outcome(&ward.get(&record, &clinician).await, 403);
}

/// Polls `P1`'s access log, as its patient (`token`), until entries by `actor` give every one
/// of `wanted` as their reason (entries are written asynchronously).
async fn wait_for_reasons(ward: &Ward, token: &str, actor: &str, wanted: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = ward
            .get(&format!("/api/v1/patients/{P1}/access-log"), token)
            .await
            .json();
        let reasons: Vec<String> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["entry"]["actor"] == json!({"type": "user", "id": actor}))
            .filter_map(|e| e["entry"]["reason"].as_str().map(str::to_owned))
            .collect();
        if wanted.iter().all(|w| reasons.iter().any(|r| r == w)) {
            return;
        }
        assert!(Instant::now() < deadline, "{reasons:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_patient_checks_who_read_their_record_with_inclusion_proofs() {
    let ward = ward(3, &[]);
    let clinician = ward.sign_in("dr-care").await;
    let patient = ward.sign_in("pat-one").await;
    for path in [
        format!("/fhir/r4/Patient/{P1}"),
        format!("/fhir/r4/Observation?patient={P1}"),
        format!("/fhir/r4/Observation/{}", ward.obs1[1]),
    ] {
        assert_eq!(ward.get(&path, &clinician).await.status, 200, "{path}");
    }
    let key: vigil_audit::VerifierKey = std::fs::read_to_string(ward.data.join("audit.pub"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let path = format!("/api/v1/patients/{P1}/access-log");
    let wanted = [
        "FHIR Patient read; care team",
        "FHIR Observation search; care team",
        "FHIR Observation read; care team",
    ];
    // The hub signs a checkpoint every 5 s: wait until one covers the clinician's reads.
    let deadline = Instant::now() + Duration::from_secs(15);
    let log = loop {
        let reply = ward.get(&path, &patient).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let log = reply.json();
        let proven = |reason: &str| {
            log["entries"].as_array().unwrap().iter().any(|e| {
                e["entry"]["reason"] == reason
                    && e["entry"]["actor"] == json!({"type": "user", "id": "dr-care"})
                    && e["inclusion_proof"].is_array()
            })
        };
        if wanted.iter().all(|r| proven(r)) {
            break log;
        }
        assert!(Instant::now() < deadline, "no proofs yet: {log}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let checkpoint =
        vigil_audit::open_note(log["checkpoint"]["note"].as_str().unwrap(), &key).unwrap();
    assert_eq!(
        checkpoint.size(),
        log["checkpoint"]["size"].as_u64().unwrap()
    );
    let mut verified = 0;
    for entry in log["entries"].as_array().unwrap() {
        let Some(proof) = entry["inclusion_proof"].as_array() else {
            continue;
        };
        let proof: Vec<vigil_audit::Hash> =
            proof.iter().map(|h| unhex(h.as_str().unwrap())).collect();
        let leaf = entry["leaf"].as_str().unwrap();
        // The leaf is the entry as served.
        assert_eq!(serde_json::from_str::<Value>(leaf).unwrap(), entry["entry"]);
        let index = entry["index"].as_u64().unwrap();
        let hash = leaf_hash(leaf.as_bytes());
        vigil_audit::verify_inclusion(index, checkpoint.size(), &hash, &proof, checkpoint.root())
            .unwrap_or_else(|e| panic!("entry {index}: {e}"));
        // A changed entry does not verify.
        let forged = leaf.replace("dr-care", "dr-evil");
        if forged != leaf {
            assert!(
                vigil_audit::verify_inclusion(
                    index,
                    checkpoint.size(),
                    &leaf_hash(forged.as_bytes()),
                    &proof,
                    checkpoint.root()
                )
                .is_err()
            );
        }
        verified += 1;
    }
    assert!(verified >= wanted.len(), "{verified} proofs");
    // Another key of the same name does not open the checkpoint.
    let pkcs8 = vigil_audit::CheckpointSigner::generate().unwrap();
    let other = vigil_audit::CheckpointSigner::from_pkcs8(key.name(), pkcs8.as_ref())
        .unwrap()
        .verifier();
    assert!(vigil_audit::open_note(log["checkpoint"]["note"].as_str().unwrap(), &other).is_err());
}

/// RFC 9162 leaf hash of an audit entry: the entry's tag, then its JSON.
fn leaf_hash(leaf: &[u8]) -> vigil_audit::Hash {
    let mut data = b"vigil/audit-entry/v1\n".to_vec();
    data.extend_from_slice(leaf);
    vigil_audit::leaf_hash(&data)
}

fn unhex(text: &str) -> vigil_audit::Hash {
    assert_eq!(text.len(), 64, "{text}");
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[tokio::test]
async fn malformed_oversized_and_bad_parameters_get_a_problem_never_a_5xx() {
    let ward = ward(1, &[]);
    let admin = ward.sign_in("admin").await;
    let secoff = ward.sign_in("secoff").await;
    let clinician = ward.sign_in("dr-care").await;
    let raw = |method: &str,
               path: &str,
               token: Option<&str>,
               content_type: Option<&str>,
               body: Vec<u8>| {
        let mut request = ward
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                ward.url(path),
            )
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request
    };
    let json_type = Some("application/json");
    let big = format!(
        r#"{{"user":"admin","password":"{}"}}"#,
        "x".repeat(17 * 1024)
    )
    .into_bytes();
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "malformed JSON",
            raw(
                "POST",
                "/api/v1/session",
                None,
                json_type,
                b"{\"user\": ".to_vec(),
            ),
            400,
            "malformed-json",
        ),
        (
            "not JSON at all",
            raw(
                "POST",
                "/api/v1/session",
                None,
                json_type,
                b"\xff\xfe".to_vec(),
            ),
            400,
            "malformed-json",
        ),
        (
            "no content type",
            raw("POST", "/api/v1/session", None, None, b"{}".to_vec()),
            415,
            "unsupported-media-type",
        ),
        (
            "wrong field type",
            raw(
                "POST",
                "/api/v1/session",
                None,
                json_type,
                br#"{"user":1,"password":"x"}"#.to_vec(),
            ),
            422,
            "invalid-body",
        ),
        (
            "unknown field",
            raw(
                "POST",
                "/api/v1/session",
                None,
                json_type,
                br#"{"user":"a","password":"b","admin":true}"#.to_vec(),
            ),
            422,
            "invalid-body",
        ),
        (
            "oversized sign-in",
            raw("POST", "/api/v1/session", None, json_type, big.clone()),
            413,
            "too-large",
        ),
        (
            "oversized new user",
            raw(
                "POST",
                "/api/v1/users",
                Some(&admin),
                json_type,
                big.clone(),
            ),
            413,
            "too-large",
        ),
        (
            "oversized break-glass",
            raw(
                "POST",
                &format!("/api/v1/patients/{P1}/break-glass"),
                Some(&clinician),
                json_type,
                big,
            ),
            413,
            "too-large",
        ),
        (
            "malformed break-glass",
            raw(
                "POST",
                &format!("/api/v1/patients/{P1}/break-glass"),
                Some(&clinician),
                json_type,
                b"[".to_vec(),
            ),
            400,
            "malformed-json",
        ),
        (
            "unknown role",
            raw(
                "POST",
                "/api/v1/users",
                Some(&admin),
                json_type,
                br#"{"user":"x1","role":"root"}"#.to_vec(),
            ),
            422,
            "invalid-body",
        ),
        (
            "bad user name",
            raw(
                "POST",
                "/api/v1/users",
                Some(&admin),
                json_type,
                br#"{"user":"a b/c","role":"clinician"}"#.to_vec(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "patient role without patient",
            raw(
                "POST",
                "/api/v1/users",
                Some(&admin),
                json_type,
                br#"{"user":"x2","role":"patient"}"#.to_vec(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "existing user",
            raw(
                "POST",
                "/api/v1/users",
                Some(&admin),
                json_type,
                br#"{"user":"auditor","role":"auditor"}"#.to_vec(),
            ),
            409,
            "exists",
        ),
        (
            "limit not a number",
            raw(
                "GET",
                "/api/v1/alerts?limit=ten",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "limit zero",
            raw(
                "GET",
                "/api/v1/alerts?limit=0",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "limit too large",
            raw(
                "GET",
                "/api/v1/alerts?limit=1001",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "unknown status",
            raw(
                "GET",
                "/api/v1/alerts?status=burning",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "unknown parameter",
            raw(
                "GET",
                "/api/v1/alerts?sort=desc",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "negative from",
            raw(
                "GET",
                "/api/v1/audit/entries?from=-1",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "missing index",
            raw(
                "GET",
                "/api/v1/audit/proof",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "index past the log",
            raw(
                "GET",
                "/api/v1/audit/proof?index=99999999",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            404,
            "not-found",
        ),
        (
            "before not a number",
            raw(
                "GET",
                &format!("/api/v1/patients/{P1}/access-log?before=x"),
                Some(&secoff),
                None,
                Vec::new(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "access-log limit",
            raw(
                "GET",
                &format!("/api/v1/patients/{P1}/access-log?limit=501"),
                Some(&secoff),
                None,
                Vec::new(),
            ),
            400,
            "bad-parameter",
        ),
        (
            "alert id not a number",
            raw("GET", "/api/v1/alerts/abc", Some(&secoff), None, Vec::new()),
            404,
            "not-found",
        ),
        (
            "alert id overflows",
            raw(
                "GET",
                "/api/v1/alerts/99999999999999999999999",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            404,
            "not-found",
        ),
        (
            "unknown alert",
            raw(
                "POST",
                "/api/v1/alerts/424242/acknowledge",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            404,
            "not-found",
        ),
        (
            "device id not UTF-8",
            raw(
                "GET",
                "/api/v1/devices/%00%ff",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            400,
            "bad-request",
        ),
        (
            "method not allowed",
            raw(
                "PATCH",
                "/api/v1/users",
                Some(&admin),
                json_type,
                b"{}".to_vec(),
            ),
            405,
            "method-not-allowed",
        ),
        (
            "unknown path",
            raw(
                "GET",
                "/api/v1/nothing-here",
                Some(&secoff),
                None,
                Vec::new(),
            ),
            404,
            "not-found",
        ),
        (
            "bad patient id",
            raw(
                "PUT",
                "/api/v1/patients/a%20b/consents/dr-care",
                Some(&admin),
                None,
                Vec::new(),
            ),
            404,
            "not-found",
        ),
        (
            "not a bearer token",
            raw("GET", "/api/v1/me", None, None, Vec::new()).header("authorization", "Basic YTpi"),
            401,
            "unauthenticated",
        ),
        (
            "own account",
            raw(
                "POST",
                "/api/v1/users/admin/disable",
                Some(&admin),
                None,
                Vec::new(),
            ),
            409,
            "own-account",
        ),
    ];
    for (case, request, status, slug) in cases {
        let reply = common::reply(request.send().await.unwrap()).await;
        assert_problem(&reply, status);
        assert_eq!(
            reply.json()["type"],
            format!("urn:vigil:problem:{slug}"),
            "{case}: {reply:?}"
        );
        // Refusals never echo what was sent.
        assert!(
            !reply.text().contains("xxxxxxxx") && !reply.text().contains("burning"),
            "{case}: {reply:?}"
        );
    }
    // Still up and answering.
    assert_eq!(ward.get("/api/v1/me", &admin).await.status, 200);
}

/// schemathesis (PyPI) against the OpenAPI document the running hub serves, signed in as a
/// clinician and then as an administrator (each role reaches other handlers past the access
/// decision): `tests/interop/schemathesis.sh` runs it with every check (its one excluded
/// operation is justified there) and a bounded number of examples, and fails on any failure or
/// if schemathesis is missing.
#[tokio::test]
async fn schemathesis_finds_no_failure_against_the_served_openapi_document() {
    // Connection errors are logged at debug: the hub's own lines are printed if schemathesis
    // fails.
    let mut ward = ward(1, &[("VIGIL_LOG_LEVEL", "debug")]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/schemathesis.sh");
    // The clinician first: the administrator's run disables accounts it finds in the user
    // list (schemathesis follows the links it infers), ending their sessions.
    for user in ["dr-care", "admin"] {
        let token = ward.sign_in(user).await;
        // Blocking is fine here: the hub runs in its own process.
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(&ward.served.https)
            .arg(ward.data.join("pki/ca.crt.pem"))
            .arg(&token)
            .output()
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "schemathesis as {user} failed:\n{log}\nthe hub's log:\n{}",
            ward.served
                .log()
                .lines()
                .filter(|line| line.contains("vigil") || !line.contains("DEBUG"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        // It generated test cases (and found nothing), and the hub is still running.
        assert!(log.contains(" generated, "), "{log}");
        assert!(
            ward.served.child.try_wait().unwrap().is_none(),
            "the hub exited:\n{log}"
        );
    }
}

/// The OpenAPI document the hub serves (compiled in) is what `tools/openapi/generate.py`
/// writes: a change to the generator without regenerating fails here.
#[test]
fn the_served_openapi_document_is_the_generated_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg(root.join("tools/openapi/generate.py"))
        .arg("--check")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The live alert stream answers like the alert list (the security team only), read from the
/// status line alone: a stream that is allowed never ends.
#[tokio::test]
async fn the_live_alert_stream_is_the_security_teams_alone() {
    let ward = ward(1, &[]);
    let expected = [
        "401", "403", "200", "200", "403", "403", "403", "403", "403",
    ];
    let mut tokens = vec![None];
    for user in &COLUMNS[1..] {
        tokens.push(Some(ward.sign_in(user).await));
    }
    for (column, token) in tokens.iter().enumerate() {
        let mut request = ward.http.get(ward.url("/api/v1/alerts/stream"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status().as_str(),
            expected[column],
            "as {}",
            COLUMNS[column]
        );
        if response.status() == 200 {
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/event-stream")
            );
        }
    }
}

/// Password spraying: one password tried on many accounts, a failure or two each, never locks
/// any account; the failures of one address do get it refused (429, before any password is
/// checked), audited and alerted once, while other addresses sign in as before.
#[tokio::test]
async fn an_address_spraying_passwords_is_refused_and_others_are_not() {
    let ward = ward(1, &[("VIGIL_ACCESS_ADDRESS_FAILURES", "4")]);
    let secoff = ward.sign_in("secoff").await;
    for user in ["dr-care", "dr-other", "auditor", "pat-two"] {
        let reply = sign_in_attempt(&ward, user, "Summer-Holiday-2026!", None).await;
        assert_problem(&reply, 401);
    }
    // The fifth attempt, even with the right password, is refused without a check.
    let reply = sign_in_attempt(&ward, "pat-one", PASSWORD, None).await;
    assert_problem(&reply, 429);
    assert_eq!(
        reply.json()["type"],
        "urn:vigil:problem:sign-in-rate-limited"
    );
    let raw = ward
        .http
        .post(ward.url("/api/v1/session"))
        .json(&json!({"user": "pat-one", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 429);
    let retry: u64 = raw.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry), "Retry-After {retry}");

    // Another address (127.0.0.2 is loopback too) signs in; no account was locked.
    let ca = std::fs::read(ward.data.join("pki/ca.crt.pem")).unwrap();
    let elsewhere = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    for user in ["pat-one", "dr-care"] {
        let reply = elsewhere
            .post(ward.url("/api/v1/session"))
            .json(&json!({"user": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201, "{user}");
    }

    // The security officer learns which address, once.
    let alert = wait_for_alert(&ward, &secoff, "auth_failure_burst", |a| {
        has_fact(a, "source", "127.0.0.1")
    })
    .await;
    assert_eq!(alert["severity"], "high", "{alert}");
    let alerts = ward.get("/api/v1/alerts", &secoff).await.json();
    let about_sources = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["facts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == "source")
        })
        .count();
    assert_eq!(about_sources, 1, "{alerts}");
}
