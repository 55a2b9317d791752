//! `vigil sim` against a running `vigil serve`: the devices enrol and publish over the network,
//! a scenario file plays, the ground truth is written; the same seed plays the same run; a
//! scenario that does not fit the ward is refused before anything is registered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::path::Path;

use common::{init, serve, stderr, stdout, vigil};

/// Runs `vigil sim` for `seconds` against the hub of `dir`; its stdout.
fn sim(
    dir: &Path,
    served: &common::Served,
    truth: &Path,
    scenario: &Path,
    seconds: &str,
) -> String {
    let hub = served.https.trim_start_matches("https://");
    let out = vigil()
        .args(["sim", "--data-dir"])
        .arg(dir)
        .args(["--hub", hub, "--mqtt"])
        .arg(format!("localhost:{}", served.mqtt_port))
        .args(["--patients", "2", "--duration", seconds, "--seed", "11"])
        .arg("--scenario")
        .arg(scenario)
        .arg("--truth")
        .arg(truth)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// The ground truth without what differs from run to run: wall-clock times and device ids.
fn comparable(truth: &str) -> Vec<serde_json::Value> {
    truth
        .lines()
        .map(|line| {
            let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
            let fields = record.as_object_mut().unwrap();
            for key in ["start_time", "end_time", "time", "device", "patient_id"] {
                fields.remove(key);
            }
            // The run's ids differ (a new ward each time); their numbers do not.
            for key in ["devices", "patients"] {
                if let Some(ids) = fields.remove(key) {
                    fields.insert(key.into(), ids.as_array().map_or(0, Vec::len).into());
                }
            }
            record
        })
        .collect()
}

#[test]
fn a_fleet_runs_against_a_served_hub_and_a_seed_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    init(&data);
    let served = serve(&data, &[]);
    let scenario = dir.path().join("scenario.jsonl");
    std::fs::write(
        &scenario,
        "# two attacks\n\
         {\"attack\": \"hide_desaturation\", \"patient\": 1, \"at\": 3, \"duration\": 4}\n\
         {\"attack\": \"implausible_injection\", \"patient\": 0, \"at\": 2, \"duration\": 3}\n",
    )
    .unwrap();
    let first = dir.path().join("truth-1.jsonl");
    let report = sim(&data, &served, &first, &scenario, "8");
    assert!(report.contains("devices enrolled"), "{report}");
    // "6 of 6 devices enrolled; 104 observations stored in 40 messages; …"
    let stored: u64 = report
        .split("; ")
        .find_map(|part| part.strip_suffix(" messages"))
        .and_then(|part| part.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(stored > 0, "{report}");
    let truth = std::fs::read_to_string(&first).unwrap();
    assert!(
        truth.contains("\"attack\":\"hide_desaturation\""),
        "{truth}"
    );
    assert!(
        truth.contains("\"attack\":\"implausible_injection\""),
        "{truth}"
    );
    assert!(truth.contains("\"event\":\"desaturation\""), "{truth}");

    // The same seed again (new devices, same hub): the same ward, events and attacks.
    let second = dir.path().join("truth-2.jsonl");
    sim(&data, &served, &second, &scenario, "8");
    assert_eq!(
        comparable(&truth),
        comparable(&std::fs::read_to_string(&second).unwrap())
    );
}

#[test]
fn a_scenario_that_does_not_fit_the_ward_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    init(&data);
    let scenario = dir.path().join("scenario.jsonl");
    std::fs::write(
        &scenario,
        "{\"attack\": \"flood\", \"patient\": 0, \"at\": 1, \"duration\": 1}\n\
         {\"attack\": \"flood\", \"patient\": 9, \"at\": 1, \"duration\": 1}\n",
    )
    .unwrap();
    let out = vigil()
        .args(["sim", "--data-dir"])
        .arg(&data)
        .args(["--patients", "2", "--duration", "1", "--scenario"])
        .arg(&scenario)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("scenario line 2"), "{}", stderr(&out));
    let devices = vigil()
        .args(["device", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!stdout(&devices).contains("sim11-"), "{}", stdout(&devices));
}
