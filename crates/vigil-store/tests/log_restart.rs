//! The write-ahead log stays bounded under a steady stream of commits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_model::phi::Phi;
use vigil_model::{DeviceId, Observation, PatientId, Quantity, Timestamp};
use vigil_store::seal::Keyring;
use vigil_store::sqlite::CommitSettings;
use vigil_store::{ClinicalStore, Demographics, SqliteStore};

const IN_FLIGHT: usize = 8;

/// Commits one small batch after another for `run`, as ingest under load does (the committer
/// never idle long enough for a checkpoint to find the log fully copied); returns the bytes in
/// the log at the end (frames written since it last restarted), and the commits made.
fn steady_commits(dir: &Path, settings: CommitSettings, run: Duration) -> (i64, u64) {
    let keyring = Keyring::create(dir).unwrap();
    let store = SqliteStore::open_with(dir, Arc::new(keyring), settings).unwrap();
    let patient = PatientId::new("p-1").unwrap();
    let demographics = Demographics {
        name: Phi::new("A. Patient".to_owned()),
        mrn: Phi::new("MRN-1".to_owned()),
        birth_date: Phi::new(time::macros::date!(1970 - 01 - 01)),
    };
    store
        .add_patient(
            &patient,
            &demographics,
            Timestamp::from_unix_millis(0).unwrap(),
        )
        .unwrap();
    let started = Instant::now();
    let mut commits = 0u64;
    // Several submissions outstanding, so that the committer always has the next batch waiting
    // (one at a time, each would also wait for the intake log's sync, and the committer idle).
    let (done, finished) =
        std::sync::mpsc::channel::<Result<vigil_store::Receipt, vigil_store::StoreError>>();
    let mut outstanding = 0;
    while started.elapsed() < run {
        if outstanding == IN_FLIGHT {
            finished.recv().unwrap().unwrap();
            outstanding -= 1;
        }
        commits += 1;
        let batch = (0..20)
            .map(|n| Observation {
                device: DeviceId::new(format!("oxi-{}", n % 7)).unwrap(),
                patient: Some(patient.clone()),
                quantity: Quantity::Spo2,
                value: Phi::new(97.0),
                time: Timestamp::from_unix_millis(1_000_000 + i64::try_from(commits).unwrap())
                    .unwrap(),
                sequence: commits * 20 + n,
                implausible: false,
            })
            .collect();
        let done = done.clone();
        store.submit_observations(
            batch,
            Box::new(move |result| {
                let _ = done.send(result);
            }),
        );
        outstanding += 1;
    }
    for _ in 0..outstanding {
        finished.recv().unwrap().unwrap();
    }
    let connection = rusqlite::Connection::open(dir.join("vigil.db")).unwrap();
    let page: i64 = connection
        .pragma_query_value(None, "page_size", |row| row.get(0))
        .unwrap();
    // The store's own checkpointer may be checkpointing at this moment (every 50 ms): a
    // checkpoint that finds it busy reports -1 frames, so ask again.
    let frames = (0..200)
        .find_map(|_| {
            let (busy, frames): (i64, i64) = connection
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .unwrap();
            if busy == 0 && frames >= 0 {
                Some(frames)
            } else {
                std::thread::sleep(Duration::from_millis(10));
                None
            }
        })
        .expect("a checkpoint that was not busy within 2 s");
    (frames * page, commits)
}

#[test]
fn the_log_restarts_although_commits_never_pause() {
    let settings = CommitSettings {
        checkpoint_interval: Duration::from_millis(50),
        log_restart_bytes: 256 * 1024,
        ..CommitSettings::default()
    };
    let run = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    let (restarted, commits) = steady_commits(dir.path(), settings, run);
    assert!(commits > 1_000, "{commits} commits: too few to grow a log");
    // The same load without restarts: the log holds everything since the run began.
    let dir = tempfile::tempdir().unwrap();
    let never = CommitSettings {
        log_restart_bytes: i64::MAX,
        ..settings
    };
    let (grown, _) = steady_commits(dir.path(), never, run);
    eprintln!("{commits} commits; the log holds {restarted} bytes restarted, {grown} never");
    // Restarted after a checkpoint every 50 ms once past 256 KiB, the log holds what the last
    // interval or two committed: a small part of the whole run.
    assert!(restarted < grown / 10, "{restarted} of {grown} bytes");
}
