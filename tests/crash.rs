//! Nothing acknowledged is lost: a process committing observations under load is killed with
//! SIGKILL; after reopening, every observation it was told was stored is there exactly once and
//! `vigil audit verify` passes. Both acknowledgements are tried: once in the database (HTTPS's
//! 201) and once in the intake log (MQTT's PUBACK, ADR 0014), where the kill also leaves
//! records logged but not yet applied, which the next open must apply.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{init, run, stderr, stdout};
use vigil_model::phi::Phi;
use vigil_model::{DeviceId, Observation, PatientId, Quantity, Timestamp};
use vigil_store::{ClinicalStore, SqliteStore};

const DEVICES: usize = 4;
const PER_COMMIT: u64 = 50;
/// Submissions each writer thread keeps waiting for their intake acknowledgement.
const IN_FLIGHT: usize = 64;

fn open_store(dir: &Path) -> SqliteStore {
    let keyring = vigil_store::seal::Keyring::load(dir, None).unwrap();
    SqliteStore::open(dir, Arc::new(keyring)).unwrap()
}

/// The writer, run in a child process by the tests below: submits observations from several
/// threads and prints `ack <device> <first seq> <count>` once each submission is acknowledged
/// (`VIGIL_CRASH_WRITER_ACK`: `applied` waits for the database, `logged` for the intake log,
/// with [`IN_FLIGHT`] submissions outstanding per thread), until it is killed.
#[test]
#[ignore = "helper process of the sigkill tests"]
fn crash_writer_child() {
    let Ok(dir) = std::env::var("VIGIL_CRASH_WRITER_DIR") else {
        return;
    };
    let logged = std::env::var("VIGIL_CRASH_WRITER_ACK").as_deref() == Ok("logged");
    let store = Arc::new(open_store(Path::new(&dir)));
    let threads: Vec<_> = (0..DEVICES)
        .map(|d| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let device = DeviceId::new(format!("oxi-{d}")).unwrap();
                let ack = |seq: u64| {
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {d} {seq} {PER_COMMIT}").unwrap();
                    out.flush().unwrap();
                };
                let (acks, acked) = std::sync::mpsc::channel::<Option<u64>>();
                let mut outstanding = 0;
                let mut seq = 0u64;
                // Until killed (the bound only keeps the loop finite).
                while seq < 1 << 40 {
                    let batch = (seq..seq + PER_COMMIT)
                        .map(|s| Observation {
                            device: device.clone(),
                            patient: Some(PatientId::new("p-1").unwrap()),
                            quantity: Quantity::Spo2,
                            value: Phi::new(95.0),
                            time: Timestamp::from_unix_millis(
                                1_000_000 + i64::try_from(s).unwrap(),
                            )
                            .unwrap(),
                            sequence: s,
                            implausible: false,
                        })
                        .collect();
                    if logged {
                        let acks = acks.clone();
                        let first = seq;
                        store.submit_observations_logged(
                            batch,
                            // A refusal (a full queue) is simply not acknowledged.
                            Box::new(move |result| {
                                let _ = acks.send(result.ok().map(|()| first));
                            }),
                            Box::new(|_| {}),
                        );
                        outstanding += 1;
                        while outstanding >= IN_FLIGHT {
                            if let Some(first) = acked.recv().unwrap() {
                                ack(first);
                            }
                            outstanding -= 1;
                        }
                    } else {
                        store.commit_observations(batch).unwrap();
                        ack(seq);
                    }
                    seq += PER_COMMIT;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn observations_acknowledged_in_the_database_survive_sigkill() {
    survives_sigkill("applied");
}

#[test]
fn observations_acknowledged_in_the_intake_log_survive_sigkill_and_the_backlog_is_applied() {
    let backlog = survives_sigkill("logged");
    // The kill must have struck between acknowledgement and apply, or the test proved little:
    // with 256 submissions outstanding, the committer is always behind the intake log.
    assert!(backlog > 0, "the kill left no logged record unapplied");
}

/// The intake records after the position the database has applied: what a kill left logged
/// but not yet applied.
fn unapplied_records(dir: &Path) -> u64 {
    let applied: i64 = rusqlite::Connection::open(dir.join("vigil.db"))
        .unwrap()
        .query_row("SELECT next FROM intake_applied", [], |row| row.get(0))
        .unwrap();
    let mut records = 0;
    vigil_store::intake::IntakeLog::open(
        &dir.join(vigil_store::sqlite::INTAKE_DIR),
        u64::MAX,
        u64::try_from(applied).unwrap(),
        |_, _| {
            records += 1;
            Ok(())
        },
    )
    .unwrap();
    records
}

/// Runs the writer with `ack`, kills it under load, checks that every acknowledged observation
/// is stored exactly once; returns how many intake records the kill left unapplied.
fn survives_sigkill(ack: &str) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hub");
    init(&dir);
    let d = dir.to_str().unwrap();
    let setup = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    setup(&[
        "patient",
        "add",
        "--data-dir",
        d,
        "--id",
        "p-1",
        "--name",
        "N",
        "--mrn",
        "M",
        "--birth-date",
        "1990-01-01",
    ]);
    for i in 0..DEVICES {
        let id = format!("oxi-{i}");
        setup(&[
            "device",
            "add",
            "--data-dir",
            d,
            "--id",
            &id,
            "--class",
            "pulse_oximeter",
        ]);
        setup(&[
            "device",
            "assign",
            "--data-dir",
            d,
            "--id",
            &id,
            "--patient",
            "p-1",
        ]);
    }

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_writer_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("VIGIL_CRASH_WRITER_DIR", &dir)
        .env("VIGIL_CRASH_WRITER_ACK", ack)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked: HashSet<(usize, u64)> = HashSet::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let start = Instant::now();
    // Kill in the middle of the load: after some acknowledgements and a moment of writing.
    while start.elapsed() < Duration::from_millis(1500) || acked.len() < 2_000 {
        let Some(Ok(line)) = lines.next() else { break };
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let ["ack", device, first, count] = parts[..] {
            let (device, first, count): (usize, u64, u64) = (
                device.parse().unwrap(),
                first.parse().unwrap(),
                count.parse().unwrap(),
            );
            acked.extend((first..first + count).map(|s| (device, s)));
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the writer is too slow"
        );
    }
    // SIGKILL: no destructor, no flush, no goodbye.
    child.kill().unwrap();
    child.wait().unwrap();
    // Acknowledgements printed before the kill but not yet read still count.
    for line in lines.map_while(Result::ok) {
        if let ["ack", device, first, count] = line.split_whitespace().collect::<Vec<_>>()[..] {
            let (device, first, count): (usize, u64, u64) = (
                device.parse().unwrap(),
                first.parse().unwrap(),
                count.parse().unwrap(),
            );
            acked.extend((first..first + count).map(|s| (device, s)));
        }
    }
    assert!(
        acked.len() >= 2_000,
        "the writer acknowledged only {}",
        acked.len()
    );

    let backlog = unapplied_records(&dir);
    eprintln!(
        "{ack}: {} acknowledged; {backlog} intake records unapplied at the kill",
        acked.len()
    );
    let store = open_store(&dir);
    let stored = store
        .observations(
            &PatientId::new("p-1").unwrap(),
            Quantity::Spo2,
            Timestamp::EPOCH,
            Timestamp::from_unix_millis(4_000_000_000_000).unwrap(),
        )
        .unwrap();
    let mut seen = HashSet::new();
    for observation in &stored {
        let device: usize = observation
            .device
            .as_str()
            .trim_start_matches("oxi-")
            .parse()
            .unwrap();
        assert!(
            seen.insert((device, observation.sequence)),
            "stored twice: {device} {}",
            observation.sequence
        );
    }
    let lost: Vec<_> = acked.difference(&seen).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged observations lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    drop(store);

    let out = run(&["audit", "checkpoint", "--data-dir", d]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["audit", "verify", "--data-dir", d]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("OK: no alteration found"));
    backlog
}
