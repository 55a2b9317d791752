//! Slow HTTPS clients against the real hub, through `openssl s_client`: an idle keep-alive
//! connection is kept past the request-head timeout, and a request body trickled too slowly
//! is answered 408 and its connection closed (crates/vigil-hub/src/https/slow_clients.rs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use common::{Served, init, serve};

/// An `openssl s_client` connection to the hub: what is written goes to the hub, and each line
/// it answers arrives on `lines` (`None` once the connection has ended).
struct Client {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Option<String>>,
}

impl Client {
    fn connect(hub: &Served, ca: &std::path::Path) -> Client {
        let port = hub.https.rsplit(':').next().unwrap();
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-no_ign_eof", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-CAfile")
            .arg(ca)
            .args(["-verify_return_error", "-servername", "localhost"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl runs");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(Some(line)).is_err() {
                    return;
                }
            }
            let _ = send.send(None);
        });
        Client {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    /// The status line of the next answer, within `limit`.
    fn status(&self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Some(line)) if line.starts_with("HTTP/1.1 ") => return line,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the connection ended without an answer"),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("no answer within {limit:?}")
                }
            }
        }
    }

    /// Whether the hub ends the connection within `limit` (what it sends meanwhile is read).
    fn ends_within(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Some(_)) => {}
                Ok(None) | Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hub(env: &[(&str, &str)]) -> (tempfile::TempDir, Served) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    init(&data);
    let served = serve(&data, env);
    (tmp, served)
}

const GET_CA: &[u8] = b"GET /pki/ca.pem HTTP/1.1\r\nhost: localhost\r\n\r\n";

#[test]
fn an_idle_keep_alive_connection_outlives_the_head_timeout() {
    let (tmp, hub) = hub(&[]);
    let mut client = Client::connect(&hub, &tmp.path().join("hub/pki/ca.crt.pem"));
    client.send(GET_CA);
    assert_eq!(client.status(Duration::from_secs(20)), "HTTP/1.1 200 OK");
    // Idle past the 10-second request-head timeout: the connection is still there.
    std::thread::sleep(Duration::from_secs(12));
    client.send(GET_CA);
    assert_eq!(
        client.status(Duration::from_secs(20)),
        "HTTP/1.1 200 OK",
        "{}",
        hub.log()
    );
}

#[test]
fn a_body_trickled_on_a_crowded_listener_is_answered_408_and_closed() {
    // One connection allowed: the one connection makes the listener crowded, and a body gets
    // 10 seconds (30 otherwise).
    let (tmp, hub) = hub(&[("VIGIL_HUB_MAX_CONNECTIONS", "1")]);
    let mut client = Client::connect(&hub, &tmp.path().join("hub/pki/ca.crt.pem"));
    let started = Instant::now();
    client.send(
        b"POST /api/v1/session HTTP/1.1\r\nhost: localhost\r\n\
          content-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"user\": \"",
    );
    // A byte a second (the whole body would take a quarter of an hour) until the hub answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        assert!(Instant::now() < deadline, "no answer within 30 s");
        match client.lines.recv_timeout(Duration::from_secs(1)) {
            Ok(Some(line)) if line.starts_with("HTTP/1.1 ") => break line,
            Ok(Some(_)) => {}
            Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                panic!("the connection ended without an answer: {}", hub.log())
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = client
                    .stdin
                    .write_all(b"a")
                    .and_then(|()| client.stdin.flush());
            }
        }
    };
    assert_eq!(status, "HTTP/1.1 408 Request Timeout", "{}", hub.log());
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    assert!(client.ends_within(Duration::from_secs(10)));
}

#[test]
fn the_idle_wait_is_the_configured_one() {
    let (tmp, hub) = hub(&[("VIGIL_HUB_HTTP_IDLE_SECONDS", "10")]);
    let mut client = Client::connect(&hub, &tmp.path().join("hub/pki/ca.crt.pem"));
    client.send(GET_CA);
    assert_eq!(client.status(Duration::from_secs(20)), "HTTP/1.1 200 OK");
    // Closed at about 10 s, long before the default 90.
    assert!(client.ends_within(Duration::from_secs(40)), "{}", hub.log());
}
