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
