//! MQTT interop with third-party clients against the real `vigil serve`: `mosquitto_pub`
//! (Debian's mosquitto-clients) and paho-mqtt (Python), both protocol versions, over TLS with
//! the device certificate enrolled by the guide's script. Every acknowledged pack is stored (the
//! audit verification counts the rows); another device's topic is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::path::Path;
use std::process::Command;

use common::{device_serving_patient, enrol_with_guide, init, run, serve, stdout};

fn pack(device: &str, seq: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        r#"[{{"bn": "urn:vigil:device:{device}:", "bt": {now}, "seq_": {seq}, "n": "157784", "u": "mL/h", "v": 125}}]"#
    )
}

#[test]
fn mosquitto_and_paho_publish_with_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    init(&data);
    let d = data.to_str().unwrap();
    let token = device_serving_patient(&data, "infusion-7", "infusion_pump", "p-1");
    let served = serve(&data, &[]);
    let mqtt_port = served.mqtt_port.to_string();
    let device = tmp.path().join("device");
    std::fs::create_dir(&device).unwrap();
    let ca = data.join("pki/ca.crt.pem");
    let (enrolled, log) = enrol_with_guide(&device, &served.https, &ca, &token);
    assert!(enrolled, "{log}");
    let (cert, key) = (device.join("device.pem"), device.join("device.key"));

    let mosquitto = |version: &str, topic: &str, seq: u64| {
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "localhost",
                "-p",
                &mqtt_port,
                "-i",
                "infusion-7",
                "-q",
                "1",
                "-V",
                version,
            ])
            .args([
                "--cafile",
                ca.to_str().unwrap(),
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ])
            .args(["-t", topic, "-m", &pack("infusion-7", seq)])
            .output()
            .expect("mosquitto_pub runs (mosquitto-clients; .ci/run installs it)")
    };
    let paho = |version: &str, topic: &str, seq: u64| {
        Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/paho_publish.py"))
            .args([
                "localhost",
                &mqtt_port,
                ca.to_str().unwrap(),
                cert.to_str().unwrap(),
                key.to_str().unwrap(),
            ])
            .args(["infusion-7", version, topic, &pack("infusion-7", seq)])
            .output()
            .expect("python3 runs (paho-mqtt; .ci/run installs it)")
    };
    let own = "vigil/v1/d/infusion-7/obs";
    for (name, result) in [
        ("mosquitto 3.1.1", mosquitto("mqttv311", own, 1)),
        ("mosquitto 5", mosquitto("mqttv5", own, 2)),
        ("paho 3.1.1", paho("3", own, 3)),
        ("paho 5", paho("5", own, 4)),
    ] {
        assert!(
            result.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    let refused = paho("5", "vigil/v1/d/someone-else/obs", 5);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("Not authorized"),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );

    let out = run(&["audit", "verify", "--data-dir", d]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("4 observation rows"),
        "{}",
        stdout(&out)
    );
}
