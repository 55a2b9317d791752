//! `vigil audit verify` catches every way of changing the record behind the hub's back: a row
//! edited with plain SQL, an audit leaf deleted or edited, two ciphertexts swapped, a checkpoint
//! replaced, and names exactly what changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{init, run, stderr, stdout};
use rusqlite::Connection;
use vigil_model::phi::Phi;
use vigil_model::{DeviceId, Observation, PatientId, Quantity, Timestamp};
use vigil_store::{ClinicalStore, SqliteStore};

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A data directory with a patient, a device, 20 stored observations in 4 batches, and a
/// checkpoint over all of it.
fn populated() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hub");
    init(&dir);
    let d = dir.to_str().unwrap();
    ok(&[
        "patient",
        "add",
        "--data-dir",
        d,
        "--id",
        "p-1",
        "--name",
        "Ada Quist",
        "--mrn",
        "MRN-5",
        "--birth-date",
        "1950-06-01",
    ]);
    ok(&[
        "device",
        "add",
        "--data-dir",
        d,
        "--id",
        "oxi-1",
        "--class",
        "pulse_oximeter",
    ]);
    ok(&[
        "device",
        "assign",
        "--data-dir",
        d,
        "--id",
        "oxi-1",
        "--patient",
        "p-1",
    ]);
    {
        let keyring = vigil_store::seal::Keyring::load(&dir, None).unwrap();
        let store = SqliteStore::open(&dir, Arc::new(keyring)).unwrap();
        for batch in 0..4u64 {
            let observations = (0..5u64)
                .map(|i| Observation {
                    device: DeviceId::new("oxi-1").unwrap(),
                    patient: Some(PatientId::new("p-1").unwrap()),
                    quantity: Quantity::Spo2,
                    value: Phi::new(90.0 + f64::from(u32::try_from(i).unwrap())),
                    time: Timestamp::from_unix_millis(
                        1_000_000 + i64::try_from(batch * 5 + i).unwrap(),
                    )
                    .unwrap(),
                    sequence: batch * 5 + i,
                    implausible: false,
                })
                .collect();
            store.commit_observations(observations).unwrap();
        }
    }
    ok(&["audit", "checkpoint", "--data-dir", d]);
    tmp
}

fn verify(dir: &Path) -> (bool, String) {
    let out = run(&["audit", "verify", "--data-dir", dir.to_str().unwrap()]);
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

fn sql(dir: &Path, statement: &str) {
    Connection::open(dir.join("vigil.db"))
        .unwrap()
        .execute_batch(statement)
        .unwrap();
}

#[test]
fn an_untouched_data_directory_verifies() {
    let tmp = populated();
    let (ok, report) = verify(&tmp.path().join("hub"));
    assert!(ok, "{report}");
    assert!(report.contains("20 observation rows"), "{report}");
    assert!(report.contains("OK: no alteration found"), "{report}");
}

#[test]
fn an_edited_row_is_named() {
    let tmp = populated();
    let dir = tmp.path().join("hub");
    sql(&dir, "UPDATE observations SET flags = 1 WHERE id = 7;");
    let (ok, report) = verify(&dir);
    assert!(!ok, "{report}");
    assert!(
        report.contains("FINDING: observation row 7 was altered"),
        "{report}"
    );
    assert!(report.contains("FAILED: 1 findings"), "{report}");
}

#[test]
fn swapped_ciphertexts_are_named() {
    let tmp = populated();
    let dir = tmp.path().join("hub");
    sql(
        &dir,
        "CREATE TEMP TABLE saved AS SELECT id, value FROM observations WHERE id IN (3, 12); \
         UPDATE observations SET value = (SELECT value FROM saved WHERE saved.id = 15 - observations.id) \
         WHERE id IN (3, 12);",
    );
    let (ok, report) = verify(&dir);
    assert!(!ok);
    assert!(report.contains("observation row 3 was altered"), "{report}");
    assert!(
        report.contains("observation row 12 was altered"),
        "{report}"
    );
}

#[test]
fn deleted_and_inserted_rows_are_named() {
    let tmp = populated();
    let dir = tmp.path().join("hub");
    sql(
        &dir,
        "DELETE FROM observations WHERE id = 5; \
         INSERT INTO observations (patient_id, device_id, quantity, time, sequence, flags, value, batch) \
         SELECT patient_id, device_id, quantity, time + 1, 999, flags, value, batch FROM observations WHERE id = 6;",
    );
    let (ok, report) = verify(&dir);
    assert!(!ok);
    assert!(report.contains("observation row 5 is missing"), "{report}");
    assert!(
        report.contains("observation row 21 was not recorded by any batch"),
        "{report}"
    );
}

#[test]
fn a_deleted_leaf_is_named() {
    let tmp = populated();
    let dir = tmp.path().join("hub");
    sql(&dir, "DELETE FROM audit_log WHERE seq = 2;");
    let (ok, report) = verify(&dir);
    assert!(!ok);
    assert!(
        report.contains("audit leaf 2 is missing (deleted)"),
        "{report}"
    );
    assert!(
        report.contains("differs from the signed checkpoint"),
        "{report}"
    );
}

#[test]
fn an_edited_audit_entry_is_named() {
    let tmp = populated();
    let dir = tmp.path().join("hub");
    // Rewrite who registered the device: the entry's text changes, its stored hash does not.
    sql(
        &dir,
        "UPDATE audit_log SET data = CAST(REPLACE(CAST(data AS TEXT), 'local.', 'other.') AS BLOB) WHERE kind = 'entry';",
    );
    let (ok, report) = verify(&dir);
    assert!(!ok);
    assert!(
        report.contains("was altered (its content no longer matches its hash)"),
        "{report}"
    );
}

#[test]
fn a_rewritten_log_with_recomputed_hashes_fails_the_signed_checkpoint() {
    let tmp = populated();
    let dir = tmp.path().join("hub");
    // A careful attacker edits an entry and recomputes its leaf hash too.
    let connection = Connection::open(dir.join("vigil.db")).unwrap();
    let data: Vec<u8> = connection
        .query_row("SELECT data FROM audit_log WHERE seq = 1", [], |r| r.get(0))
        .unwrap();
    let forged = String::from_utf8(data)
        .unwrap()
        .replace("\"success\"", "\"denied\"")
        .into_bytes();
    let hash = vigil_audit::leaf_hash(&forged);
    connection
        .execute(
            "UPDATE audit_log SET data = ?1, leaf_hash = ?2 WHERE seq = 1",
            rusqlite::params![forged, hash.as_slice()],
        )
        .unwrap();
    drop(connection);
    let (ok, report) = verify(&dir);
    assert!(!ok);
    assert!(
        report.contains("differs from the signed checkpoint (log rewritten)"),
        "{report}"
    );
}

#[test]
fn a_replaced_checkpoint_is_named() {
    let tmp = populated();
    let dir = tmp.path().join("hub");
    // A note signed by another key, for the same size and root.
    let connection = Connection::open(dir.join("vigil.db")).unwrap();
    let (size, note): (i64, String) = connection
        .query_row(
            "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let body = note.split("\n\n").next().unwrap().to_owned() + "\n";
    let mut lines = body.lines();
    let origin = lines.next().unwrap();
    let pkcs8 = vigil_audit::CheckpointSigner::generate().unwrap();
    let impostor = vigil_audit::CheckpointSigner::from_pkcs8(origin, pkcs8.as_ref()).unwrap();
    let checkpoint =
        vigil_audit::Checkpoint::new(origin, lines.next().unwrap().parse().unwrap(), {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(lines.next().unwrap())
                .unwrap();
            bytes.try_into().unwrap()
        })
        .unwrap();
    connection
        .execute(
            "UPDATE checkpoints SET note = ?1 WHERE size = ?2",
            rusqlite::params![impostor.sign(&checkpoint).unwrap(), size],
        )
        .unwrap();
    drop(connection);
    let (ok, report) = verify(&dir);
    assert!(!ok);
    assert!(
        report.contains(&format!("checkpoint at size {size} does not verify")),
        "{report}"
    );
}

#[test]
fn truncating_the_log_is_named() {
    let tmp = populated();
    let dir = tmp.path().join("hub");
    sql(
        &dir,
        "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log);",
    );
    let (ok, report) = verify(&dir);
    assert!(!ok);
    assert!(report.contains("covers more than the"), "{report}");
}

#[test]
fn verification_needs_the_right_key() {
    let tmp = populated();
    let dir = tmp.path().join("hub");
    let other = tempfile::tempdir().unwrap();
    let pkcs8 = vigil_audit::CheckpointSigner::generate().unwrap();
    let signer = vigil_audit::CheckpointSigner::from_pkcs8("elsewhere", pkcs8.as_ref()).unwrap();
    std::fs::write(other.path().join("key.pub"), signer.verifier_key()).unwrap();
    let out = run(&[
        "audit",
        "verify",
        "--data-dir",
        dir.to_str().unwrap(),
        "--key",
        other.path().join("key.pub").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("does not verify"), "{}", stdout(&out));
}
