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
    /// Where the hub's standard error goes (appended across restarts on one data directory).
    pub(crate) log: std::path::PathBuf,
}

impl Served {
    /// What the hub has logged so far: for a failing test's message.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
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
    let log = dir.join("hub.stderr");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let mut child = vigil()
        .args(["serve", "--data-dir", dir.to_str().unwrap()])
        .env("VIGIL_HUB_HTTPS_LISTEN", "127.0.0.1:0")
        .env("VIGIL_HUB_MQTT_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log_file)
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
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("no {key} in {line:?}; the hub's log:\n{log}")
            })
    };
    Served {
        https: format!("https://localhost:{}", port("https=")),
        mqtt_port: port("mqtt="),
        child,
        log,
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

// ---------------------------------------------------------------------------------------------
// People's access (issue #8): a served hub with one account of every role, two patients with
// a device and observations each, a seeded alert, and an HTTPS client that trusts the
// hospital CA.

/// Every account's password (set with `--password-stdin`; passes the password policy).
pub(crate) const PASSWORD: &str = "Quiet-Harbour-Lantern-58";
/// The patient cared for by `dr-care`, whose account is `pat-one`.
pub(crate) const P1: &str = "pt-1001";
/// The other patient, whose account is `pat-two`; nobody cares for them.
pub(crate) const P2: &str = "pt-1002";
/// The devices serving [`P1`] and [`P2`].
pub(crate) const DEV1: &str = "oxi-1";
pub(crate) const DEV2: &str = "oxi-2";

/// The accounts of a [`Ward`]: (name, role, patient).
pub(crate) const ACCOUNTS: &[(&str, &str, Option<&str>)] = &[
    ("admin", "admin", None),
    ("secoff", "security_officer", None),
    ("engineer", "clinical_engineer", None),
    // On P1's care team.
    ("dr-care", "clinician", None),
    // On no care team.
    ("dr-other", "clinician", None),
    ("pat-one", "patient", Some(P1)),
    ("pat-two", "patient", Some(P2)),
    ("auditor", "auditor", None),
    // Targets of writes (care team, consent) and of disabling, never signed in.
    ("dr-spare", "clinician", None),
    ("leaver", "clinician", None),
];

/// A hub served from a fresh data directory, with the people of [`ACCOUNTS`].
pub(crate) struct Ward {
    // Dropped first: the hub stops before its directory goes.
    pub(crate) served: Served,
    pub(crate) data: std::path::PathBuf,
    pub(crate) http: reqwest::Client,
    /// Row ids (= FHIR Observation ids) of each patient's observations, oldest first.
    pub(crate) obs1: Vec<i64>,
    pub(crate) obs2: Vec<i64>,
    /// An alert about P1 (with a clinical value as evidence), seeded before the hub started.
    pub(crate) alert: u64,
    /// Second factors printed by `vigil user add`, and the last step each one used.
    totp: std::sync::Mutex<std::collections::HashMap<String, (String, Option<i64>)>>,
    _tmp: tempfile::TempDir,
}

/// An HTTP answer.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.status, self.content_type, self.text())
    }
}

/// `vigil user add`, the password on standard input; returns what it printed.
pub(crate) fn add_user(dir: &Path, name: &str, role: &str, patient: Option<&str>) -> String {
    use std::io::Write;
    let mut args = vec![
        "user",
        "add",
        "--data-dir",
        dir.to_str().unwrap(),
        "--name",
        name,
        "--role",
        role,
        "--password-stdin",
    ];
    if let Some(patient) = patient {
        args.extend(["--patient", patient]);
    }
    let mut child = vigil()
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add {name}: {}", stderr(&out));
    stdout(&out)
}

/// Observations of `patient` from `device`: SpO2 once a minute, the newest a minute ago.
fn observations(device: &str, patient: &str, count: usize) -> Vec<vigil_model::Observation> {
    let now = vigil_model::Timestamp::now().unix_millis();
    (0..count)
        .map(|i| vigil_model::Observation {
            device: vigil_model::DeviceId::new(device).unwrap(),
            patient: Some(vigil_model::PatientId::new(patient).unwrap()),
            quantity: vigil_model::Quantity::Spo2,
            value: vigil_model::Phi::new(95.0 + (i % 4) as f64),
            time: vigil_model::Timestamp::from_unix_millis(now - (count - i) as i64 * 60_000)
                .unwrap(),
            sequence: i as u64 + 1,
            implausible: false,
        })
        .collect()
}

/// Writes observations and an alert with the store library (ingest has its own tests);
/// returns the observation row ids of P1 and P2 and the alert's id.
fn seed(dir: &Path, p1_count: usize) -> (Vec<i64>, Vec<i64>, u64) {
    use vigil_store::{AlertStore, ClinicalStore, ObservationQuery};
    let keyring = vigil_hub::load_keyring(dir).unwrap();
    let store = vigil_store::SqliteStore::open(dir, std::sync::Arc::new(keyring)).unwrap();
    store
        .commit_observations(observations(DEV1, P1, p1_count))
        .unwrap();
    store
        .commit_observations(observations(DEV2, P2, 3))
        .unwrap();
    let ids = |patient: &str| -> Vec<i64> {
        store
            .observation_page(&ObservationQuery {
                patient: vigil_model::PatientId::new(patient).unwrap(),
                quantities: Vec::new(),
                from: vigil_model::Timestamp::EPOCH,
                to: vigil_model::Timestamp::from_unix_millis(
                    vigil_model::Timestamp::now().unix_millis() + 86_400_000,
                )
                .unwrap(),
                after: None,
                limit: 10_000,
            })
            .unwrap()
            .into_iter()
            .map(|row| row.id)
            .collect()
    };
    let alert = store
        .add_alert(&vigil_model::Alert {
            time: vigil_model::Timestamp::now(),
            severity: vigil_model::Severity::High,
            kind: vigil_model::AlertKind::ImpossibleChange,
            device: Some(vigil_model::DeviceId::new(DEV1).unwrap()),
            patient: Some(vigil_model::PatientId::new(P1).unwrap()),
            evidence: vec![
                vigil_model::Evidence::Clinical {
                    quantity: vigil_model::Quantity::Spo2,
                    value: vigil_model::Phi::new(71.0),
                },
                vigil_model::Evidence::Fact {
                    name: "seconds".into(),
                    value: "2".into(),
                },
            ],
            attack_technique: Some("T0832".into()),
        })
        .unwrap();
    (ids(P1), ids(P2), alert)
}

/// A ward: `vigil init`, the devices, patients, accounts and care team through the command
/// line, `p1_observations` observations of P1 (3 of P2) and one alert about P1 through the
/// store, then `vigil serve` with `env`.
pub(crate) fn ward(p1_observations: usize, env: &[(&str, &str)]) -> Ward {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    init(&data);
    device_serving_patient(&data, DEV1, "pulse_oximeter", P1);
    device_serving_patient(&data, DEV2, "pulse_oximeter", P2);
    let mut totp = std::collections::HashMap::new();
    for (name, role, patient) in ACCOUNTS {
        let printed = add_user(&data, name, role, *patient);
        let key = printed
            .lines()
            .find_map(|l| l.trim().strip_prefix("key: "))
            .map(str::to_owned);
        // Privileged roles, and only they, get a second factor at once.
        assert_eq!(
            key.is_some(),
            matches!(*role, "admin" | "security_officer"),
            "{name}: {printed}"
        );
        if let Some(key) = key {
            totp.insert((*name).to_owned(), (key, None));
        }
    }
    let out = run(&[
        "careteam",
        "add",
        "--data-dir",
        data.to_str().unwrap(),
        "--user",
        "dr-care",
        "--patient",
        P1,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (obs1, obs2, alert) = seed(&data, p1_observations);
    let served = serve(&data, env);
    let ca = std::fs::read(data.join("pki/ca.crt.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .timeout(std::time::Duration::from_secs(20))
        // The hub closes a connection idle for 90 s (10 s when its listener is crowded);
        // never reuse one that old, or a request may race the close.
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    Ward {
        served,
        data,
        http,
        obs1,
        obs2,
        alert,
        totp: std::sync::Mutex::new(totp),
        _tmp: tmp,
    }
}

impl Ward {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.served.https)
    }

    /// Sends `method path` with an optional bearer token and JSON body.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        reply(request.send().await.unwrap()).await
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token), None).await
    }

    /// The current code of `user`'s second factor, or the next step's when the current one was
    /// used (a code is good once); waits for a fresh step when both were used.
    pub(crate) fn totp_code(&self, user: &str) -> Option<String> {
        use vigil_auth::totp::{STEP_SECS, TotpSecret, code_at};
        let mut all = self.totp.lock().unwrap();
        let (key, last) = all.get_mut(user)?;
        let now = vigil_model::Timestamp::now().unix_millis() / 1000;
        let mut step = now / STEP_SECS;
        if let Some(last) = *last {
            step = step.max(last + 1);
        }
        // The hub accepts the steps around its own clock; stay within one.
        while step > vigil_model::Timestamp::now().unix_millis() / 1000 / STEP_SECS + 1 {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        *last = Some(step);
        let secret = TotpSecret::from_base32(key).unwrap();
        Some(code_at(&secret, step * STEP_SECS).unwrap())
    }

    /// Every code the hub accepts for `user` now (the steps around the clock), used or not.
    pub(crate) fn totp_window(&self, user: &str) -> Vec<String> {
        use vigil_auth::totp::{STEP_SECS, TotpSecret, code_at};
        let all = self.totp.lock().unwrap();
        let secret = TotpSecret::from_base32(&all[user].0).unwrap();
        let now = vigil_model::Timestamp::now().unix_millis() / 1000;
        [-2, -1, 0, 1, 2]
            .iter()
            .map(|k| code_at(&secret, now + k * STEP_SECS).unwrap())
            .collect()
    }

    /// Signs `user` in (with their second factor where they have one); returns the token.
    pub(crate) async fn sign_in(&self, user: &str) -> String {
        let mut body = serde_json::json!({"user": user, "password": PASSWORD});
        if let Some(code) = self.totp_code(user) {
            body["code"] = code.into();
        }
        let reply = self
            .call("POST", "/api/v1/session", None, Some(&body))
            .await;
        assert_eq!(reply.status, 201, "{user}: {reply:?}");
        reply.json()["token"].as_str().unwrap().to_owned()
    }

    /// The hub's SQLite database, opened beside the running hub (WAL allows it).
    pub(crate) fn database(&self) -> rusqlite::Connection {
        let db = rusqlite::Connection::open(self.data.join("vigil.db")).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        db
    }
}

pub(crate) async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.bytes().await.unwrap().to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

/// Asserts that `reply` is an RFC 9457 problem document with its own status.
pub(crate) fn assert_problem(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.content_type, "application/problem+json", "{reply:?}");
    let doc = reply.json();
    assert_eq!(doc["status"], status, "{reply:?}");
    for field in ["type", "title", "detail"] {
        assert!(doc[field].is_string(), "{field}: {reply:?}");
    }
}

/// Asserts that `reply` is a FHIR OperationOutcome with an error issue, answered `status`.
pub(crate) fn assert_outcome(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert!(
        reply.content_type.starts_with("application/fhir+json"),
        "{reply:?}"
    );
    let doc = reply.json();
    assert_eq!(doc["resourceType"], "OperationOutcome", "{reply:?}");
    assert!(
        matches!(
            doc["issue"][0]["severity"].as_str(),
            Some("error" | "fatal")
        ),
        "{reply:?}"
    );
}
