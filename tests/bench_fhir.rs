//! `vigil bench fhir` runs end to end (its figures belong in docs/performance.md; this checks
//! that it reads every observation, page by page, and says so).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use common::{run, stderr, stdout};

/// Runs the bench with `args` after `bench fhir`; its report.
fn bench(args: &[&str]) -> String {
    let mut all = vec!["bench", "fhir"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The line of `report` that starts with `prefix`.
fn line<'a>(report: &'a str, prefix: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in {report}"))
}

#[test]
fn a_small_bench_reads_every_observation_page_by_page() {
    // 0.1 h at 1 Hz = 360 instants × 5 quantities; pages of 500: 500, 500, 500, 300.
    let report = bench(&["--hours", "0.1", "--runs", "1", "--page", "500"]);
    assert!(report.contains("loading 1800 observations"), "{report}");
    let run = line(&report, "run 1:");
    assert!(run.contains(" 4 pages "), "{run}");
    assert!(run.contains(" 1800 observations "), "{run}");
    assert!(
        line(&report, "observations read").contains("1800 per run (expected 1800), ids unique"),
        "{report}"
    );
    assert!(!report.contains("run 2:"), "{report}");
    assert!(report.contains("where the time goes"), "{report}");
}

#[test]
fn a_last_full_page_is_followed_by_an_empty_one() {
    // 360 instants × 2 quantities = 720 = two full pages of 360, then an empty page (keyset
    // paging cannot know there is nothing after a full page), for each of two runs.
    let report = bench(&[
        "--hours",
        "0.1",
        "--quantities",
        "2",
        "--page",
        "360",
        "--runs",
        "2",
        "--sequential",
    ]);
    assert!(
        report.contains("parses each page before asking for the next"),
        "{report}"
    );
    for n in ["run 1:", "run 2:"] {
        let run = line(&report, n);
        assert!(run.contains(" 3 pages "), "{run}");
        assert!(run.contains(" 720 observations "), "{run}");
    }
}

#[test]
fn bad_bench_arguments_are_refused() {
    for args in [
        &["--hours", "0"][..],
        &["--hours", "-1"],
        &["--hours", "NaN"],
        &["--page", "0"],
        &["--page", "10001"],
        &["--quantities", "10"],
        &["--hz", "0"],
        &["--runs", "0"],
        // 168 h × 100 Hz × 9 quantities is far more than the bench holds.
        &["--hours", "168", "--hz", "100", "--quantities", "9"],
    ] {
        let mut all = vec!["bench", "fhir"];
        all.extend_from_slice(args);
        let out = run(&all);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(!stdout(&out).contains("loading"), "{args:?} loaded data");
    }
}
