//! `vigil bench ingest` runs end to end (its figures belong in docs/performance.md; this only
//! checks that the command works and acknowledges messages).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use common::{run, stderr, stdout};

#[test]
fn the_ingest_bench_runs_and_reports() {
    let out = run(&[
        "bench",
        "ingest",
        "--devices",
        "2",
        "--seconds",
        "1",
        "--readings",
        "3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    let acknowledged: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("messages acknowledged"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {report}"));
    assert!(acknowledged > 0, "{report}");
    assert!(report.contains("publish → PUBACK"), "{report}");
    assert!(!report.contains("devices that failed"), "{report}");
}

#[test]
fn bad_bench_arguments_are_refused() {
    let out = run(&["bench", "ingest", "--devices", "0"]);
    assert!(!out.status.success());
    let out = run(&["bench", "ingest", "--server", "localhost:1"]);
    assert!(
        !out.status.success(),
        "--server needs --ca, --cert and --key"
    );
}
