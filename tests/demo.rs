//! `vigil demo`, headless, for about 30 seconds: observations are stored, the attack timeline
//! plays and its ground truth is written, and the data directory it leaves verifies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::collections::BTreeSet;

use common::{stderr, stdout, vigil};

#[test]
fn the_demo_runs_headless_and_leaves_a_data_directory_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = vigil()
        .args(["demo", "--data-dir"])
        .arg(&data)
        .args([
            "--duration",
            "30",
            "--headless",
            "--patients",
            "4",
            "--seed",
            "7",
        ])
        // Free ports: tests run side by side.
        .env("VIGIL_HUB_HTTPS_LISTEN", "127.0.0.1:0")
        .env("VIGIL_HUB_MQTT_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let report = stdout(&out);
    assert!(out.status.success(), "{report}\n{}", stderr(&out));
    assert!(report.contains("Audit log verified"), "{report}");

    // Observations were stored: the audit verifier counts their rows.
    let verify = vigil()
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let verified = stdout(&verify);
    assert!(verify.status.success(), "{verified}");
    let rows: u64 = verified
        .lines()
        .next()
        .and_then(|line| line.strip_suffix(" observation rows"))
        .and_then(|line| line.rsplit(", ").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no row count in {verified}"));
    assert!(rows > 100, "{verified}");

    // The ground truth names every attack of the timeline, each with its device and window.
    let truth = std::fs::read_to_string(data.join("demo-ground-truth.jsonl")).unwrap();
    let mut attacks = BTreeSet::new();
    for line in truth.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        match record["kind"].as_str() {
            Some("attack") => {
                assert!(
                    record["device"].as_str().is_some_and(|d| !d.is_empty()),
                    "{line}"
                );
                assert!(record["start"].as_f64() < record["end"].as_f64(), "{line}");
                attacks.insert(record["attack"].as_str().unwrap().to_owned());
            }
            Some("clinical_event") => {
                assert!(
                    record["patient_id"].as_str().is_some_and(|p| !p.is_empty()),
                    "{line}"
                );
            }
            Some("run") => {
                assert_eq!(
                    record["patients"].as_array().map(Vec::len),
                    Some(4),
                    "{line}"
                );
            }
            Some("run_end") => assert!(record["end"].as_f64() >= Some(29.0), "{line}"),
            Some("first_forged" | "restored") => {
                // Names an attack already written, which alters readings.
                let attack = record["attack"].as_str().unwrap();
                assert!(attacks.contains(attack), "{line}");
                assert!(
                    [
                        "hide_desaturation",
                        "fake_hypoglycaemia",
                        "implausible_injection"
                    ]
                    .contains(&attack),
                    "{line}"
                );
            }
            other => panic!("unknown record kind {other:?}: {line}"),
        }
    }
    for attack in [
        "stolen_certificate",
        "replay",
        "hide_desaturation",
        "implausible_injection",
        "flood",
        "foreign_topic",
        "malformed_packets",
        "reused_token",
        "forged_token",
    ] {
        assert!(attacks.contains(attack), "{attack} missing from {truth}");
    }
    // The hidden desaturation is a real clinical event in the truth, never an attack.
    assert!(truth.contains("\"event\":\"desaturation\""), "{truth}");
}

#[test]
fn ctrl_c_ends_the_demo_cleanly_and_the_data_directory_verifies() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = vigil()
        .args(["demo", "--headless", "--patients", "3", "--data-dir"])
        .arg(&data)
        .env("VIGIL_HUB_HTTPS_LISTEN", "127.0.0.1:0")
        .env("VIGIL_HUB_MQTT_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for devices to enrol and publish, and for a first summary.
    std::thread::sleep(std::time::Duration::from_secs(12));
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    let mut report = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();
    assert!(status.success(), "{report}");
    assert!(report.contains("Stopped."), "{report}");
    assert!(report.contains("Audit log verified"), "{report}");
    let verify = vigil()
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(stdout(&verify).contains("OK: no alteration found"));
}
