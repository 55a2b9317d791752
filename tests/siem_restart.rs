//! Alert export survives the hub: an alert waiting for an unreachable SIEM when the hub is
//! killed with SIGKILL reaches the SIEM after the restart, and an alert the SIEM has is not sent
//! again after a clean restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Served, init, serve};

/// A free loopback port, for a SIEM that is not listening yet.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_siem_toml(data: &Path, port: u16) {
    use std::os::unix::fs::PermissionsExt;
    let path = data.join("siem.toml");
    std::fs::write(
        &path,
        format!(
            "[siem]\nhostname = \"hub.test\"\n\n[[siem.sinks]]\nname = \"soc\"\nkind = \"tcp\"\n\
             address = \"127.0.0.1:{port}\"\nformat = \"json\"\nbackoff_initial_ms = 50\n\
             backoff_max_ms = 200\nmax_attempts = 1000\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Bytes that are not TLS, to the hub's HTTPS port: a protocol violation, alerted.
fn provoke_an_alert(hub: &Served) {
    let port = hub.https.rsplit(':').next().unwrap();
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let _ = stream.read(&mut [0u8; 64]);
}

fn stored_alerts(data: &Path) -> i64 {
    let db = rusqlite::Connection::open(data.join("vigil.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.query_row("SELECT count(*) FROM alerts", [], |row| row.get(0))
        .unwrap()
}

/// What the SIEM receives on `listener` within `wait`: the concatenated syslog frames.
fn receive(listener: &TcpListener, wait: Duration) -> String {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + wait;
    let mut received = Vec::new();
    let mut connections: Vec<TcpStream> = Vec::new();
    while Instant::now() < deadline {
        if let Ok((stream, _)) = listener.accept() {
            stream.set_nonblocking(true).unwrap();
            connections.push(stream);
        }
        for stream in &mut connections {
            let mut buffer = [0u8; 4096];
            if let Ok(n) = stream.read(&mut buffer) {
                received.extend_from_slice(&buffer[..n]);
            }
        }
        if String::from_utf8_lossy(&received).contains("protocol_violation") {
            // Let anything right behind it arrive too.
            std::thread::sleep(Duration::from_millis(300));
            for stream in &mut connections {
                let mut buffer = [0u8; 4096];
                if let Ok(n) = stream.read(&mut buffer) {
                    received.extend_from_slice(&buffer[..n]);
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// How many syslog messages in `received` are about a protocol violation.
fn violations(received: &str) -> usize {
    received
        .split(" hub.test vigil ")
        .skip(1)
        .filter(|message| message.contains("protocol_violation"))
        .count()
}

fn terminate(mut hub: Served) {
    let pid = hub.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the hub did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_alert_waiting_for_the_siem_survives_a_sigkill_and_is_not_sent_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    init(&data);
    let port = free_port();
    write_siem_toml(&data, port);

    // The SIEM is down: the alert waits in the hub's queue, retried.
    let mut hub = serve(&data, &[]);
    provoke_an_alert(&hub);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored_alerts(&data) == 0 {
        assert!(Instant::now() < deadline, "no alert stored");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    hub.child.kill().unwrap();
    hub.child.wait().unwrap();
    drop(hub);

    // The SIEM comes up, the hub restarts: it owes the SIEM that alert.
    let siem = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let hub = serve(&data, &[]);
    let received = receive(&siem, Duration::from_secs(15));
    assert!(
        received.contains("protocol_violation"),
        "the SIEM got: {received:?}"
    );
    assert_eq!(violations(&received), 1, "{received}");

    // Delivered and recorded: a clean restart does not send it again.
    terminate(hub);
    let _hub = serve(&data, &[]);
    let again = receive(&siem, Duration::from_secs(3));
    assert_eq!(violations(&again), 0, "sent again: {again}");
}
