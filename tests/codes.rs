//! `vigil codes`: the vocabulary as integrators read it, checked against UCUM's reference
//! implementation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{run, stderr, stdout};
use vigil_model::{DeviceClass, Quantity};

#[test]
fn table_lists_every_quantity_with_mdc_loinc_and_units() {
    let out = run(&["codes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for quantity in Quantity::ALL {
        let spec = quantity.spec();
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(spec.key))
            .unwrap_or_else(|| panic!("{} missing:\n{text}", spec.key));
        assert!(line.contains(spec.mdc.refid), "{line}");
        assert!(line.contains(&spec.mdc.code().to_string()), "{line}");
        for loinc in spec.loinc {
            assert!(line.contains(loinc.code), "{line}");
        }
        for unit in spec.units {
            assert!(line.contains(unit.unit.ucum), "{line}");
        }
    }
}

fn codes_json(extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["codes", "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn json_carries_codes_systems_units_and_sources() {
    let json = codes_json(&[]);
    let entries = json.as_array().unwrap();
    assert_eq!(entries.len(), Quantity::ALL.len());
    let spo2 = entries.iter().find(|e| e["key"] == "spo2").unwrap();
    assert_eq!(spo2["mdc"]["code"], 150_456);
    assert_eq!(spo2["mdc"]["system"], "urn:iso:std:iso:11073:10101");
    assert_eq!(spo2["loinc"][0]["code"], "2708-6");
    assert_eq!(spo2["canonical_unit"], "%");
    for entry in entries {
        assert!(!entry["sources"].as_str().unwrap().is_empty());
    }
}

#[test]
fn devices_json_lists_every_class_and_the_safety_profiles() {
    let json = codes_json(&["--devices"]);
    let classes = json.as_array().unwrap();
    assert_eq!(classes.len(), DeviceClass::ALL.len());
    let pump = classes.iter().find(|c| c["key"] == "insulin_pump").unwrap();
    let basal = pump["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "set_basal_rate")
        .unwrap();
    assert_eq!(basal["parameter"]["unit"], "[iU]/h");
    assert_eq!(basal["parameter"]["max"], 15.0);
    assert_eq!(basal["second_person"]["when"], "above");
    let pacer = classes
        .iter()
        .find(|c| c["key"] == "pacemaker_monitor")
        .unwrap();
    assert_eq!(pacer["commands"][0]["second_person"]["when"], "always");
}

/// Runs the UCUM reference check (tools/ucum-check) on a codes document.
fn ucum_check(document: &[u8]) -> (bool, String) {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/ucum-check");
    assert!(
        tool.join("node_modules/@lhncbc/ucum-lhc").is_dir(),
        "the UCUM reference implementation is not installed: run `npm ci` in {}",
        tool.display()
    );
    let mut child = Command::new("node")
        .arg(tool.join("check.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child.stdin.take().unwrap().write_all(document).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[test]
fn every_unit_and_conversion_agrees_with_ucum() {
    let out = run(&["codes", "--format", "json"]);
    assert!(out.status.success());
    let (ok, report) = ucum_check(&out.stdout);
    assert!(ok, "{report}");
    assert!(report.contains(" 0 failed"), "{report}");
}

#[test]
fn the_ucum_check_catches_a_wrong_factor_or_code() {
    let mut json = codes_json(&[]);
    let systolic = json
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["key"] == "nibp_systolic")
        .unwrap();
    systolic["units"][1]["scale"] = serde_json::json!(7.5);
    let (ok, report) = ucum_check(serde_json::to_vec(&json).unwrap().as_slice());
    assert!(!ok, "a kPa factor of 7.5 must fail:\n{report}");

    let mut json = codes_json(&[]);
    json[0]["units"][0]["ucum"] = serde_json::json!("bpm");
    let (ok, report) = ucum_check(serde_json::to_vec(&json).unwrap().as_slice());
    assert!(!ok, "\"bpm\" is not UCUM:\n{report}");
}
