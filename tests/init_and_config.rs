//! `vigil init`, `vigil config check` and `--version`, driven as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{init, run, stderr, stdout, vigil};

#[test]
fn version_names_the_program() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("vigil {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn init_creates_a_private_data_directory_with_the_default_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hub");
    init(&dir);

    let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let config = dir.join("vigil.toml");
    let file_mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(file_mode, 0o600);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        vigil_config::DEFAULT_CONFIG
    );
}

#[test]
fn init_refuses_to_overwrite_an_initialised_directory() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path());
    let config = tmp.path().join("vigil.toml");
    std::fs::write(&config, "[log]\nlevel = \"debug\"\n").unwrap();

    let out = run(&["init", "--data-dir", tmp.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already initialised"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "[log]\nlevel = \"debug\"\n"
    );
}

#[test]
fn config_check_prints_the_values_in_force_and_where_they_come_from() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path());
    let out = vigil()
        .args(["config", "check"])
        .env("VIGIL_DATA_DIR", tmp.path())
        .env("VIGIL_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("configuration is valid"), "{text}");
    assert!(text.contains("log.level = \"info\""), "{text}");
    assert!(
        text.contains("log.format = \"json\"    # from environment variable VIGIL_LOG_FORMAT"),
        "{text}"
    );
}

#[test]
fn invalid_configuration_names_key_value_source_and_problem() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path());
    let dir = tmp.path().to_str().unwrap();

    let out = vigil()
        .args(["config", "check", "--data-dir", dir])
        .env("VIGIL_LOG_LEVEL", "verbose")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        "error: `log.level` = \"verbose\" (from environment variable VIGIL_LOG_LEVEL): \
         expected one of: trace, debug, info, warn, error"
    );

    std::fs::write(tmp.path().join("vigil.toml"), "[log]\nformat = \"xml\"\n").unwrap();
    let out = run(&["config", "check", "--data-dir", dir]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("`log.format` = \"xml\""), "{err}");
    assert!(err.contains("vigil.toml"), "{err}");
    assert!(err.contains("expected one of: human, json"), "{err}");

    std::fs::write(tmp.path().join("vigil.toml"), "[log]\nlevl = \"info\"\n").unwrap();
    let out = run(&["config", "check", "--data-dir", dir]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown key `log.levl`") && stderr(&out).contains("log.level"),
        "{}",
        stderr(&out)
    );

    std::fs::write(tmp.path().join("vigil.toml"), "[log\n").unwrap();
    let out = run(&["config", "check", "--data-dir", dir]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not valid TOML"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_check_on_an_uninitialised_directory_says_which_file_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&[
        "config",
        "check",
        "--data-dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot read") && err.contains("vigil.toml"),
        "{err}"
    );
}

#[test]
fn json_logs_are_one_object_per_line_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&[
        "--log-format",
        "json",
        "init",
        "--data-dir",
        tmp.path().join("d").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let logs = stderr(&out);
    let line = logs.lines().next().expect("a log line");
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["message"], "data directory initialised");
    assert!(
        stdout(&out).starts_with("Initialised"),
        "stdout stays clean"
    );
}

#[test]
fn a_bad_log_filter_is_a_clear_error() {
    let out = run(&["--log-level", "vigil=verbose", "codes"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--log-level"), "{}", stderr(&out));
}
