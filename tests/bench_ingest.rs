//! `vigil bench ingest` runs end to end (its figures belong in docs/performance.md; this only
//! checks that the command works and acknowledges messages).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use common::{run, stderr, stdout};

/// Runs the bench with `extra` arguments; its report and the messages acknowledged.
fn bench(extra: &[&str]) -> (String, u64) {
    let mut args = vec![
        "bench",
        "ingest",
        "--devices",
        "2",
        "--seconds",
        "1",
        "--readings",
        "3",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    let acknowledged: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("messages acknowledged"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {report}"));
    assert!(report.contains("due → PUBACK"), "{report}");
    assert!(report.contains("hub peak memory"), "{report}");
    assert!(!report.contains("devices that failed"), "{report}");
    (report, acknowledged)
}

#[test]
fn the_ingest_bench_runs_and_reports() {
    let (report, acknowledged) = bench(&[]);
    assert!(acknowledged > 0, "{report}");
    assert!(report.contains("closed loop"), "{report}");
}

#[test]
fn an_open_loop_bench_sends_at_the_rate_asked() {
    // 2 devices × 5 messages/s for 1 s: about 10, never many more (the schedule holds).
    let (report, acknowledged) = bench(&["--rate", "5", "--timeline"]);
    assert!((5..=14).contains(&acknowledged), "{report}");
    assert!(report.contains("offered 5 messages/s/device"), "{report}");
    // The timeline: a line per second, whose counts add up to the messages acknowledged.
    let seconds: Vec<u64> = report
        .lines()
        .skip_while(|l| !l.starts_with("second  acked"))
        .skip(1)
        .map_while(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.len() == 4).then(|| fields[1].parse::<u64>().ok())?
        })
        .collect();
    assert!(!seconds.is_empty(), "{report}");
    assert_eq!(seconds.iter().sum::<u64>(), acknowledged, "{report}");
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
