//! FHIR R4 from the real running hub, checked by an independent validator: every resource type
//! Vigil serves (Patient, Observation, Device, AuditEvent, DetectedIssue, their searchsets with
//! paging, the CapabilityStatement and OperationOutcomes) is fetched over HTTPS, written to a
//! temporary directory and validated with FHIR.js (`tools/fhir-check`, needs Node.js and
//! `npm ci` there). And every bad request gets an OperationOutcome, never a 5xx.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{DEV1, P1, P2, Reply, Ward, assert_outcome, ward};
use serde_json::{Value, json};

/// What was fetched: a file name and the body.
struct Fetched(Vec<(String, Value)>);

impl Fetched {
    /// Keeps `reply` as `name`, asserting its status and resource type.
    fn keep(&mut self, name: &str, reply: &Reply, status: u16, resource_type: &str) -> Value {
        assert_eq!(reply.status, status, "{name}: {reply:?}");
        assert!(
            reply.content_type.starts_with("application/fhir+json"),
            "{name}: {reply:?}"
        );
        let doc = reply.json();
        assert_eq!(doc["resourceType"], resource_type, "{name}: {reply:?}");
        self.0.push((name.to_owned(), doc.clone()));
        doc
    }
}

/// The entries' resources of a searchset.
fn resources(bundle: &Value) -> Vec<Value> {
    assert_eq!(bundle["type"], "searchset", "{bundle}");
    bundle["entry"]
        .as_array()
        .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

/// The `next` link of a searchset, as a path on the hub.
fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| {
            let url = l["url"].as_str().unwrap();
            let at = url.find("/fhir/r4/").unwrap();
            url[at..].to_owned()
        })
}

fn fhir_check(files: &[PathBuf]) -> (bool, String) {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/fhir-check");
    assert!(
        tool.join("node_modules/fhir").is_dir(),
        "FHIR.js is not installed: run `npm ci` in {}",
        tool.display()
    );
    let out = Command::new("node")
        .arg(tool.join("check.mjs"))
        .args(files)
        .output()
        .expect("node runs (install Node.js)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// Raises a BreakGlass alert about P2 and returns its id, once the security officer sees it.
async fn break_glass_alert(ward: &Ward, clinician: &str, secoff: &str) -> u64 {
    let reply = ward
        .call(
            "POST",
            &format!("/api/v1/patients/{P2}/break-glass"),
            Some(clinician),
            Some(&json!({"reason": "rapid-response-call"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let alerts = ward.get("/api/v1/alerts", secoff).await.json();
        if let Some(alert) = alerts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "break_glass")
        {
            return alert["id"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "no break-glass alert: {alerts}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn every_resource_the_running_hub_serves_is_valid_fhir_r4() {
    let ward = ward(25, &[]);
    let clinician = ward.sign_in("dr-care").await;
    let other = ward.sign_in("dr-other").await;
    let secoff = ward.sign_in("secoff").await;
    let auditor = ward.sign_in("auditor").await;
    let engineer = ward.sign_in("engineer").await;
    let patient = ward.sign_in("pat-one").await;
    let glass = break_glass_alert(&ward, &other, &secoff).await;
    let mut got = Fetched(Vec::new());

    let reply = ward.call("GET", "/fhir/r4/metadata", None, None).await;
    let statement = got.keep("capability-statement", &reply, 200, "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1", "{statement}");

    let reply = ward
        .get(&format!("/fhir/r4/Patient/{P1}"), &clinician)
        .await;
    let resource = got.keep("patient", &reply, 200, "Patient");
    assert_eq!(resource["id"], P1);
    let reply = ward
        .get(&format!("/fhir/r4/Patient?_id={P1}"), &patient)
        .await;
    assert_eq!(
        resources(&got.keep("patient-searchset", &reply, 200, "Bundle")).len(),
        1
    );

    let id = ward.obs1[0].to_string();
    let reply = ward
        .get(&format!("/fhir/r4/Observation/{id}"), &clinician)
        .await;
    let resource = got.keep("observation", &reply, 200, "Observation");
    assert_eq!(resource["id"], id);
    assert_eq!(resource["subject"]["reference"], format!("Patient/{P1}"));

    // The searchset a page of 10 at a time: every observation once, in order, then no next.
    let mut path = Some(format!("/fhir/r4/Observation?patient={P1}&_count=10"));
    let mut seen = Vec::new();
    let mut page = 0;
    while let Some(current) = path {
        page += 1;
        let reply = ward.get(&current, &clinician).await;
        let bundle = got.keep(
            &format!("observation-searchset-{page}"),
            &reply,
            200,
            "Bundle",
        );
        for resource in resources(&bundle) {
            assert_eq!(resource["resourceType"], "Observation");
            seen.push(resource["id"].as_str().unwrap().parse::<i64>().unwrap());
        }
        path = next_link(&bundle);
        assert!(page <= 4, "paging does not end: {bundle}");
    }
    assert_eq!(
        seen, ward.obs1,
        "pages hold each observation once, oldest first"
    );
    assert!(
        page >= 3,
        "25 observations in pages of 10 take 3 pages, got {page}"
    );

    let reply = ward
        .get(&format!("/fhir/r4/Device/{DEV1}"), &clinician)
        .await;
    let resource = got.keep("device", &reply, 200, "Device");
    assert_eq!(resource["patient"]["reference"], format!("Patient/{P1}"));
    // Staff see the device without the patient it serves.
    let reply = ward
        .get(&format!("/fhir/r4/Device/{DEV1}"), &engineer)
        .await;
    let resource = got.keep("device-staff", &reply, 200, "Device");
    assert!(resource.get("patient").is_none(), "{resource}");
    let reply = ward
        .get(&format!("/fhir/r4/Device?patient={P1}"), &clinician)
        .await;
    assert_eq!(
        resources(&got.keep("device-searchset", &reply, 200, "Bundle")).len(),
        1
    );

    let reply = ward
        .get(&format!("/fhir/r4/AuditEvent?patient={P1}"), &secoff)
        .await;
    assert!(
        !resources(&got.keep("auditevent-patient-searchset", &reply, 200, "Bundle")).is_empty()
    );
    let reply = ward.get("/fhir/r4/AuditEvent?_count=5", &auditor).await;
    let bundle = got.keep("auditevent-searchset", &reply, 200, "Bundle");
    assert_eq!(resources(&bundle).len(), 5);
    let next = next_link(&bundle).expect("a next link");
    let reply = ward.get(&next, &auditor).await;
    let page2 = got.keep("auditevent-searchset-2", &reply, 200, "Bundle");
    let first: BTreeSet<String> = resources(&bundle)
        .iter()
        .map(|r| r["id"].to_string())
        .collect();
    assert!(
        resources(&page2)
            .iter()
            .all(|r| !first.contains(&r["id"].to_string()))
    );
    let leaf = resources(&bundle)[2]["id"].as_str().unwrap().to_owned();
    let reply = ward
        .get(&format!("/fhir/r4/AuditEvent/{leaf}"), &auditor)
        .await;
    assert_eq!(
        got.keep("auditevent", &reply, 200, "AuditEvent")["id"],
        leaf
    );

    let reply = ward
        .get(&format!("/fhir/r4/DetectedIssue?patient={P1}"), &clinician)
        .await;
    assert_eq!(
        resources(&got.keep("detectedissue-patient-searchset", &reply, 200, "Bundle")).len(),
        1
    );
    let reply = ward.get("/fhir/r4/DetectedIssue", &secoff).await;
    assert_eq!(
        resources(&got.keep("detectedissue-searchset", &reply, 200, "Bundle")).len(),
        2
    );
    let reply = ward
        .get(
            &format!("/fhir/r4/DetectedIssue/{}", ward.alert),
            &clinician,
        )
        .await;
    got.keep("detectedissue-clinical", &reply, 200, "DetectedIssue");
    let reply = ward
        .get(&format!("/fhir/r4/DetectedIssue/{}", ward.alert), &secoff)
        .await;
    got.keep("detectedissue-security", &reply, 200, "DetectedIssue");
    let reply = ward
        .get(&format!("/fhir/r4/DetectedIssue/{glass}"), &secoff)
        .await;
    got.keep("detectedissue-break-glass", &reply, 200, "DetectedIssue");

    // OperationOutcomes.
    let reply = ward
        .get(
            &format!("/fhir/r4/Observation?patient={P1}&_count=0"),
            &clinician,
        )
        .await;
    got.keep("outcome-400", &reply, 400, "OperationOutcome");
    let reply = ward
        .call("GET", &format!("/fhir/r4/Patient/{P1}"), None, None)
        .await;
    got.keep("outcome-401", &reply, 401, "OperationOutcome");
    let reply = ward.get(&format!("/fhir/r4/Patient/{P1}"), &auditor).await;
    got.keep("outcome-403", &reply, 403, "OperationOutcome");
    let reply = ward.get("/fhir/r4/Observation/99999999", &clinician).await;
    got.keep("outcome-404", &reply, 404, "OperationOutcome");
    let reply = ward
        .call(
            "POST",
            "/fhir/r4/Observation",
            Some(&clinician),
            Some(&json!({})),
        )
        .await;
    got.keep("outcome-405", &reply, 405, "OperationOutcome");

    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("VIGIL_FHIR_OUT").map(PathBuf::from);
    let out = keep.as_deref().unwrap_or(dir.path());
    std::fs::create_dir_all(out).unwrap();
    let files: Vec<PathBuf> = got
        .0
        .iter()
        .map(|(name, doc)| {
            let path = out.join(format!("{name}.json"));
            std::fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();
            path
        })
        .collect();
    let (ok, report) = fhir_check(&files);
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!("{} resources, 0 errors", files.len())),
        "{report}"
    );
    // The validator is not a rubber stamp: the same Observation with an invalid status fails.
    let mut broken = got
        .0
        .iter()
        .find(|(n, _)| n == "observation")
        .unwrap()
        .1
        .clone();
    broken["status"] = "done".into();
    let path = dir.path().join("broken.json");
    std::fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
    assert!(!fhir_check(&[path]).0);
}

#[tokio::test]
async fn bad_fhir_requests_get_an_operation_outcome_never_a_5xx() {
    let ward = ward(2, &[]);
    let clinician = ward.sign_in("dr-care").await;
    let auditor = ward.sign_in("auditor").await;
    let search = format!("/fhir/r4/Observation?patient={P1}");
    let long = format!("{search}&code={}", "x".repeat(5000));
    let cases: Vec<(String, &str, u16)> = vec![
        (format!("{search}&_count=0"), "GET", 400),
        (format!("{search}&_count=10001"), "GET", 400),
        (format!("{search}&_count=ten"), "GET", 400),
        (format!("{search}&date=yesterday"), "GET", 400),
        (format!("{search}&date=2025-13-01"), "GET", 400),
        (format!("{search}&date=zz2025"), "GET", 400),
        (format!("{search}&code:text=pulse"), "GET", 400),
        (format!("{search}&_cursor=not-a-cursor"), "GET", 400),
        (format!("{search}&patient={P2}"), "GET", 400),
        ("/fhir/r4/Observation?patient=a%20b".to_owned(), "GET", 400),
        ("/fhir/r4/Observation?patient=%ff%fe".to_owned(), "GET", 400),
        ("/fhir/r4/Observation".to_owned(), "GET", 400),
        (long, "GET", 400),
        ("/fhir/r4/Observation/abc".to_owned(), "GET", 404),
        ("/fhir/r4/Observation/-1".to_owned(), "GET", 404),
        (
            "/fhir/r4/Observation/99999999999999999999999".to_owned(),
            "GET",
            404,
        ),
        ("/fhir/r4/Observation/%ff".to_owned(), "GET", 400),
        ("/fhir/r4/Patient/a%20b".to_owned(), "GET", 404),
        ("/fhir/r4/Device/a%2Fb".to_owned(), "GET", 404),
        ("/fhir/r4/DetectedIssue/abc".to_owned(), "GET", 404),
        ("/fhir/r4/Medication/1".to_owned(), "GET", 404),
        ("/fhir/r4/Observation".to_owned(), "POST", 405),
        (format!("/fhir/r4/Patient/{P1}"), "DELETE", 405),
        (format!("/fhir/r4/Patient/{P1}"), "PUT", 405),
    ];
    for (path, method, status) in &cases {
        let reply = ward.call(method, path, Some(&clinician), None).await;
        assert_eq!(reply.status, *status, "{method} {path}: {reply:?}");
        assert_outcome(&reply, *status);
        assert!(
            !reply.text().contains("xxxxxxxx"),
            "{path}: echoed input {reply:?}"
        );
    }
    // The clinician may not read AuditEvents at all (403 before the id is looked at); the
    // auditor may, and a bad id is not found.
    let reply = ward
        .call("GET", "/fhir/r4/AuditEvent/abc", Some(&clinician), None)
        .await;
    assert_outcome(&reply, 403);
    for id in ["abc", "-1", "99999999999", "%ff"] {
        let reply = ward
            .get(&format!("/fhir/r4/AuditEvent/{id}"), &auditor)
            .await;
        assert_outcome(&reply, if id == "%ff" { 400 } else { 404 });
    }
    // `Prefer: handling=strict` refuses what lenient handling ignores.
    let unknown = format!("{search}&colour=red");
    let lenient = ward.get(&unknown, &clinician).await;
    assert_eq!(lenient.status, 200, "{lenient:?}");
    let strict = common::reply(
        ward.http
            .get(ward.url(&unknown))
            .bearer_auth(&clinician)
            .header("prefer", "handling=strict")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_outcome(&strict, 400);
    // A wrong or missing token is a 401 OperationOutcome with a challenge.
    let reply = ward
        .call("GET", &search, Some("v4.public.nope"), None)
        .await;
    assert_outcome(&reply, 401);
    let reply = ward.call("GET", &search, None, None).await;
    assert_outcome(&reply, 401);
}

/// The hub reads the next page of an Observation search ahead of its request; that request is
/// still decided on its own: a consent withdrawn or a session ended meanwhile refuses it, and
/// another session asking the same page gets it read for itself, the same rows.
#[tokio::test]
async fn a_page_read_ahead_is_served_only_under_the_request_s_own_decision() {
    let ward = ward(25, &[]);
    let patient = ward.sign_in("pat-one").await;
    let clinician = ward.sign_in("dr-other").await;
    let consent = format!("/api/v1/patients/{P1}/consents/dr-other");
    let first = format!("/fhir/r4/Observation?patient={P1}&_count=10");
    let grant = |expected: u16| {
        let (ward, consent, patient) = (&ward, &consent, &patient);
        async move {
            let reply = ward.call("PUT", consent, Some(patient), None).await;
            assert_eq!(reply.status, expected, "{reply:?}");
        }
    };
    let withdraw = || async {
        let reply = ward.call("DELETE", &consent, Some(&patient), None).await;
        assert_eq!(reply.status, 204, "{reply:?}");
    };
    let ids = |bundle: &Value| -> Vec<String> {
        resources(bundle)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };

    // Consent withdrawn between page 1 and page 2 (read ahead meanwhile): page 2 is refused.
    grant(201).await;
    let page1 = ward.get(&first, &clinician).await;
    assert_eq!(page1.status, 200, "{page1:?}");
    let second = next_link(&page1.json()).expect("25 observations make a second page");
    withdraw().await;
    assert_outcome(&ward.get(&second, &clinician).await, 403);

    // Granted again: page 2 read by another session of the same clinician is the page the
    // first would have had, and the first session, read ahead again, gets the same rows.
    grant(201).await;
    let again = ward.sign_in("dr-other").await;
    let page1 = ward.get(&first, &clinician).await;
    let second = next_link(&page1.json()).unwrap();
    let other_session = ward.get(&second, &again).await;
    assert_eq!(other_session.status, 200, "{other_session:?}");
    let own_session = ward.get(&second, &clinician).await;
    assert_eq!(own_session.status, 200, "{own_session:?}");
    assert_eq!(ids(&other_session.json()), ids(&own_session.json()));
    assert_eq!(
        ids(&own_session.json()),
        ward.obs1[10..20]
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
    );

    // A session ended after page 1: its page 2 is refused like any request of it.
    let page1 = ward.get(&first, &clinician).await;
    let second = next_link(&page1.json()).unwrap();
    let out = ward
        .call("DELETE", "/api/v1/session", Some(&clinician), None)
        .await;
    assert_eq!(out.status, 204, "{out:?}");
    assert_outcome(&ward.get(&second, &clinician).await, 401);
}
