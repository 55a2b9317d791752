//! Shared helpers for end-to-end tests: run the real `vigil` binary.

#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `vigil` binary cargo built for these tests.
pub(crate) const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

/// A `vigil` command with a clean environment: no `VIGIL_*` variable leaks in from the shell
/// that runs the tests.
pub(crate) fn vigil() -> Command {
    let mut command = Command::new(VIGIL);
    for (name, _) in std::env::vars() {
        if name.starts_with("VIGIL_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// Runs `vigil` with `args` and returns its output.
pub(crate) fn run(args: &[&str]) -> Output {
    vigil().args(args).output().expect("vigil runs")
}

/// `vigil init` into `dir`, asserting success.
pub(crate) fn init(dir: &Path) {
    let out = run(&["init", "--data-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running `vigil serve` on free loopback ports; killed and reaped when dropped.
pub(crate) struct Served {
    pub(crate) child: std::process::Child,
    /// `https://localhost:<port>`.
    pub(crate) https: String,
    /// The MQTT port.
    pub(crate) mqtt_port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `vigil serve` on `dir` with both listeners on free ports and `env` set; returns once
/// it listens.
pub(crate) fn serve(dir: &Path, env: &[(&str, &str)]) -> Served {
    use std::io::{BufRead, BufReader};
    let mut child = vigil()
        .args(["serve", "--data-dir", dir.to_str().unwrap()])
        .env("VIGIL_HUB_HTTPS_LISTEN", "127.0.0.1:0")
        .env("VIGIL_HUB_MQTT_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "vigil hub listening: https=127.0.0.1:P mqtt=127.0.0.1:Q"
    let port = |key: &str| -> u16 {
        line.split_whitespace()
            .find_map(|part| part.strip_prefix(key))
            .and_then(|address| address.rsplit(':').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    Served {
        https: format!("https://localhost:{}", port("https=")),
        mqtt_port: port("mqtt="),
        child,
    }
}

/// Runs the enrolment guide's script (docs/examples/enrol-device.sh) for a device into
/// `device_dir`; returns its output.
pub(crate) fn enrol_with_guide(
    device_dir: &Path,
    hub: &str,
    ca: &Path,
    token: &str,
) -> (bool, String) {
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/enrol-device.sh");
    let out = Command::new("bash")
        .arg(guide)
        .arg(device_dir)
        .env("HUB", hub)
        .env("CA", ca)
        .env("TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Registers `device` of `class` and a patient `patient` it serves, through the command line;
/// returns the device's one-time enrolment token.
pub(crate) fn device_serving_patient(
    dir: &Path,
    device: &str,
    class: &str,
    patient: &str,
) -> String {
    let d = dir.to_str().unwrap();
    let out = run(&[
        "device",
        "add",
        "--data-dir",
        d,
        "--id",
        device,
        "--class",
        class,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out)
        .lines()
        .find(|l| l.starts_with("vigil1."))
        .expect("a token line")
        .to_owned();
    for args in [
        [
            "patient",
            "add",
            "--data-dir",
            d,
            "--id",
            patient,
            "--name",
            "N",
            "--mrn",
            "M",
            "--birth-date",
            "1980-01-01",
        ]
        .as_slice(),
        [
            "device",
            "assign",
            "--data-dir",
            d,
            "--id",
            device,
            "--patient",
            patient,
        ]
        .as_slice(),
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    token
}
