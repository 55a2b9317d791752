//! A device's life through the real `vigil` program and third-party tools: `vigil init`,
//! `vigil device add`, `vigil serve`, enrolment and renewal with `openssl` and `curl` exactly as
//! docs/device-enrolment.md shows, offline issuance, `vigil device revoke` against the running
//! hub, and `vigil device list`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{init, run, serve, stderr, stdout};

fn add_device(dir: &Path, id: &str, class: &str) -> String {
    let out = run(&[
        "device",
        "add",
        "--data-dir",
        dir.to_str().unwrap(),
        "--id",
        id,
        "--class",
        class,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .find(|l| l.starts_with("vigil1."))
        .expect("a token line")
        .to_owned()
}

fn shell(script: &Path, workdir: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new("bash")
        .arg(script)
        .arg(workdir)
        .envs(env.iter().copied())
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

#[test]
fn enrol_renew_issue_offline_and_revoke_with_the_real_program_and_tools() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    init(&data);
    let ca = data.join("pki/ca.crt.pem");
    let token = add_device(&data, "infusion-7", "infusion_pump");
    let served = serve(&data, &[]);

    // The guide's commands, as written.
    let device_dir = tmp.path().join("device");
    std::fs::create_dir(&device_dir).unwrap();
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/enrol-device.sh");
    let env = [
        ("HUB", served.https.as_str()),
        ("CA", ca.to_str().unwrap()),
        ("TOKEN", token.as_str()),
    ];
    let (ok, log) = shell(&guide, &device_dir, &env);
    assert!(ok, "{log}");
    assert!(log.contains("URI:urn:vigil:device:infusion-7"), "{log}");

    // The same token a second time: refused with a problem document (curl writes the body
    // where the certificate would have gone).
    let second = tmp.path().join("second");
    std::fs::create_dir(&second).unwrap();
    let (ok, log) = shell(&guide, &second, &env);
    assert!(!ok && log.contains("401"), "{log}");
    let problem = std::fs::read_to_string(second.join("device.pem")).unwrap();
    assert!(
        problem.contains("urn:vigil:problem:token-used"),
        "{problem}"
    );

    // An air-gapped device: a CSR file in, a chain file out.
    let out = run(&[
        "device",
        "add",
        "--data-dir",
        data.to_str().unwrap(),
        "--id",
        "thermo-2",
        "--class",
        "thermometer",
    ]);
    assert!(out.status.success());
    let status = Command::new("openssl")
        .args([
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "t.key", "-out", "t.csr",
            "-subj", "/CN=t",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(status.status.success());
    let out = run(&[
        "device",
        "issue",
        "--data-dir",
        data.to_str().unwrap(),
        "--id",
        "thermo-2",
        "--csr",
        tmp.path().join("t.csr").to_str().unwrap(),
        "--out",
        tmp.path().join("t.pem").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let verify = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            "-purpose",
            "sslclient",
            "t.pem",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // Revocation from the command line reaches the running hub without a restart.
    let renew = |key: &str, cert: &str| {
        Command::new("curl")
            .args([
                "--fail-with-body",
                "--silent",
                "--show-error",
                "--cacert",
                ca.to_str().unwrap(),
                "--cert",
                cert,
                "--key",
                key,
                "--data-binary",
                "@device.csr",
                "-o",
                "/dev/null",
            ])
            .arg(format!("{}/api/v1/renew", served.https))
            .current_dir(&device_dir)
            .output()
            .unwrap()
    };
    assert!(renew("device-next.key", "device-next.pem").status.success());
    let out = run(&[
        "device",
        "revoke",
        "--data-dir",
        data.to_str().unwrap(),
        "--id",
        "infusion-7",
        "--reason",
        "key-compromise",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Until the hub reloads its revocation list (within a second), the registry itself refuses
    // the revoked device (403); then the TLS handshake does.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = renew("device-next.key", "device-next.pem");
        let err = String::from_utf8_lossy(&attempt.stderr).into_owned();
        assert!(!attempt.status.success(), "a revoked device renewed");
        if err.contains("alert certificate revoked") {
            break;
        }
        assert!(err.contains("403"), "refused for the wrong reason: {err}");
        assert!(
            Instant::now() < deadline,
            "the running hub still completes handshakes with a revoked certificate"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = run(&["device", "list", "--data-dir", data.to_str().unwrap()]);
    let list = stdout(&out);
    assert!(
        list.lines()
            .any(|l| l.starts_with("infusion-7") && l.contains("revoked")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("thermo-2") && l.contains("active") && l.contains("rsa 2048")),
        "{list}"
    );
}

#[test]
fn device_commands_refuse_bad_input_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let out = run(&[
        "device",
        "add",
        "--data-dir",
        dir,
        "--id",
        "bad/id",
        "--class",
        "thermometer",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--id: device id has a character that is not allowed"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "device",
        "add",
        "--data-dir",
        dir,
        "--id",
        "t1",
        "--class",
        "toaster",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown device class"),
        "{}",
        stderr(&out)
    );
    assert!(
        run(&[
            "device",
            "add",
            "--data-dir",
            dir,
            "--id",
            "t1",
            "--class",
            "thermometer"
        ])
        .status
        .success()
    );
    let out = run(&[
        "device",
        "add",
        "--data-dir",
        dir,
        "--id",
        "t1",
        "--class",
        "thermometer",
    ]);
    assert!(
        stderr(&out).contains("device t1 already exists"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "device",
        "revoke",
        "--data-dir",
        dir,
        "--id",
        "t1",
        "--reason",
        "bored",
    ]);
    assert!(
        stderr(&out).contains("unknown revocation reason"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "device",
        "revoke",
        "--data-dir",
        dir,
        "--id",
        "ghost",
        "--reason",
        "superseded",
    ]);
    assert!(
        stderr(&out).contains("device ghost is not registered"),
        "{}",
        stderr(&out)
    );
    std::fs::write(tmp.path().join("junk.csr"), "junk").unwrap();
    let out = run(&[
        "device",
        "issue",
        "--data-dir",
        dir,
        "--id",
        "t1",
        "--csr",
        tmp.path().join("junk.csr").to_str().unwrap(),
        "--out",
        tmp.path().join("o.pem").to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("not a valid PKCS#10"),
        "{}",
        stderr(&out)
    );
    let uninitialised = tempfile::tempdir().unwrap();
    std::fs::write(uninitialised.path().join("vigil.toml"), "").unwrap();
    let out = run(&[
        "serve",
        "--data-dir",
        uninitialised.path().to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("run `vigil init"), "{}", stderr(&out));
}
