//! How long the hub waits for an HTTP/1.1 client: between requests, for a request head, for a
//! request body, and for the client to take its response (and how large a head it holds:
//! [`MAX_BUFFER`]). A client that is slow on purpose (slowloris, slow POST) holds one of the
//! listener's connections for as long as the hub waits, so every wait is bounded, and the
//! bounds are generous only where real clients need it.
//!
//! - **Between requests** ([`Timeouts::idle`], long): hyper has one timer for this and for the
//!   head (`header_read_timeout` starts as soon as a connection is idle). A short one closes
//!   idle keep-alive connections early, and a client that sends its next request just as the
//!   hub closes gets the connection reset under it: a reverse proxy or FHIR client keeping a
//!   pool of connections would fail requests at random. So the timer hyper is given here is
//!   told by the connection's reads when a head begins: until the first byte, the deadline is
//!   the idle timeout from when hyper began waiting; from the first byte, [`Timeouts::head`].
//! - **A request body** ([`Timeouts::body`]): hyper has no timer for it, and axum's body limit
//!   bounds its size, not its pace; a sign-in with `Content-Length: 10000` and a byte a second
//!   held its connection for hours. Each body must have arrived this long after its head, or
//!   the request is answered 408 and the connection closed.
//! - **A response** ([`Timeouts::write`]): a client that stops reading leaves its response
//!   (a FHIR page, a document) in the hub's memory for as long as the hub waits; a write that
//!   makes no progress for this long ends the connection ([`WriteStall`]). A slow reader that
//!   keeps reading is never cut off.
//! - **When crowded** ([`Timeouts::crowded`]): the long idle wait makes a place cheap to hold,
//!   so a connection that arrives while the listener is more than half full gets 10 seconds
//!   for everything.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower::ServiceExt;

use super::problem::Problem;
use crate::write_stall::WriteStall;

/// The most a connection buffers of what it reads or writes, so also the largest request head
/// (a larger one is answered 431). hyper's default, about 400 KB, let 16,384 connections hold
/// 6.5 GB of headers; the longest head a client of the hub sends (a bearer token, an OpenID
/// callback's query) is a few kilobytes. (hyper refuses less than 8 KiB.)
pub const MAX_BUFFER: usize = 32 * 1024;

/// How long the hub waits on an HTTP/1.1 client at each stage (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A connection with no request under way (new, or between two requests) is closed after
    /// this long. Longer than the idle time of common client and proxy pools (nginx closes its
    /// own at 75 s; load balancers commonly keep 60 s), so that they close first.
    pub idle: Duration,
    /// A request head must be complete this long after its first byte arrived.
    pub head: Duration,
    /// A request body must be complete this long after its head. Bodies are at most 64 KiB,
    /// so 30 s asks for about 2 KB/s, which a device on a weak cellular link still manages.
    pub body: Duration,
    /// A response the client has not taken a byte of for this long is abandoned and the
    /// connection closed (a client that stops reading holds the response in memory).
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(90),
            head: Duration::from_secs(10),
            body: Duration::from_secs(30),
            write: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// For a connection that arrives while the listener is more than half full
    /// ([`Occupancy::is_crowded`](crate::listener::Occupancy::is_crowded)): perhaps a flood of
    /// connections that each idle or trickle to hold a place, so every wait is short. Clients
    /// that need longer come back when the crowd has gone.
    pub fn crowded() -> Self {
        Self {
            idle: Duration::from_secs(10),
            head: Duration::from_secs(10),
            body: Duration::from_secs(10),
            write: Duration::from_secs(10),
        }
    }
}

/// Serves HTTP/1.1 on `stream` with `app` until the client or a timeout ends the connection.
/// Every request carries a copy of `extensions` (who the peer is).
pub async fn serve_http1<S>(
    stream: S,
    timeouts: Timeouts,
    app: Router,
    extensions: axum::http::Extensions,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stream, timer) = watch(WriteStall::new(stream, timeouts.write), timeouts);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let expired = Arc::new(AtomicBool::new(false));
        let (mut parts, body) = request.into_parts();
        parts.extensions.extend(extensions.clone());
        let body = BodyDeadline::new(body, timeouts.body, Arc::clone(&expired));
        let request = Request::from_parts(parts, body);
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await?;
            // Whatever the handler made of the failed read, the answer is the timeout's.
            if expired.load(Ordering::Relaxed) {
                return Ok::<_, Infallible>(body_too_slow(timeouts.body));
            }
            Ok(response)
        }
    });
    hyper::server::conn::http1::Builder::new()
        .timer(timer)
        .header_read_timeout(timeouts.head)
        .max_buf_size(MAX_BUFFER)
        .serve_connection(TokioIo::new(stream), service)
        .await
}

/// 408 with `Connection: close`: the rest of a body that came too slowly is not awaited.
fn body_too_slow(limit: Duration) -> Response {
    let mut response = Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "body-too-slow",
        "Request body too slow",
        format!(
            "the request body must arrive within {} seconds of its headers",
            limit.as_secs()
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The error a body gives once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTooSlow;

/// A request body that fails with [`BodyTooSlow`] once its deadline passes, and says so.
pub struct BodyDeadline<B> {
    inner: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

impl<B> BodyDeadline<B> {
    /// `inner`, which must be read within `limit` from now; `expired` is set if it was not.
    pub fn new(inner: B, limit: Duration, expired: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            expired,
        }
    }
}

impl<B> Body for BodyDeadline<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTooSlow))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// When the first byte since hyper began waiting for a head arrived, shared by a connection's
/// [`Watched`] stream and its [`HeadTimer`].
type FirstByte = Arc<Mutex<Option<Instant>>>;

/// Wraps a connection's stream and its timer for hyper: served with
/// `.timer(timer).header_read_timeout(timeouts.head)` on `stream`.
fn watch<S>(stream: S, timeouts: Timeouts) -> (Watched<S>, HeadTimer) {
    let first_byte = FirstByte::default();
    (
        Watched {
            inner: stream,
            first_byte: Arc::clone(&first_byte),
        },
        HeadTimer {
            first_byte,
            timeouts,
        },
    )
}

/// A stream that notes when bytes arrive after hyper began waiting for a request head.
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    first_byte: FirstByte,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.first_byte
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(Instant::now);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// hyper's timer for one connection. hyper's server uses its timer only for the header read
/// timeout, and asks for a new sleep each time it begins waiting for a head; the deadline it
/// asks for is replaced by the one [`Timeouts`] gives.
#[derive(Debug, Clone)]
pub struct HeadTimer {
    first_byte: FirstByte,
    timeouts: Timeouts,
}

impl HeadTimer {
    fn arm(&self) -> Pin<Box<dyn hyper::rt::Sleep>> {
        *self
            .first_byte
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        let armed_at = Instant::now();
        Box::pin(HeadSleep {
            armed_at,
            first_byte: Arc::clone(&self.first_byte),
            timeouts: self.timeouts,
            sleep: Box::pin(tokio::time::sleep_until(
                (armed_at + self.timeouts.idle).into(),
            )),
        })
    }
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, _duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.arm()
    }

    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.arm()
    }
}

/// Ends `idle` after hyper began waiting, or `head` after the first byte, whichever applies.
struct HeadSleep {
    armed_at: Instant,
    first_byte: FirstByte,
    timeouts: Timeouts,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // hyper polls this after every read that left the head incomplete, on the task that
        // reads, so a first byte is seen here without a wake-up of its own.
        let first_byte = *self
            .first_byte
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let deadline = match first_byte {
            Some(at) => at + self.timeouts.head,
            None => self.armed_at + self.timeouts.idle,
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

#[cfg(test)]
mod tests {
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// Serves over plain HTTP/1.1 with `timeouts` on one connection; returns the client's end.
    /// `GET /` answers "ok"; `POST /echo` the body's length, `POST /slow` too but a second
    /// after reading it.
    async fn connection(timeouts: Timeouts) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .route("/large", get(|| async { vec![b'x'; LARGE] }))
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .route(
                "/slow",
                post(|body: Bytes| async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    body.len().to_string()
                }),
            );
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = serve_http1(tcp, timeouts, app, axum::http::Extensions::new()).await;
        });
        // A small receive buffer (no autotuning) so that a response the client does not read
        // fills it quickly.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(64 * 1024).unwrap();
        socket.connect(address).await.unwrap()
    }

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: hub\r\n\r\n";
    /// More than the two ends' socket buffers hold (the server's sends at most 4 MiB here), so
    /// that writing it waits on the reader.
    const LARGE: usize = 16 << 20;

    async fn reply(client: &mut TcpStream) -> String {
        let mut reply = vec![0; 2048];
        let n = client.read(&mut reply).await.unwrap();
        String::from_utf8_lossy(&reply[..n]).into_owned()
    }

    async fn ask(client: &mut TcpStream) -> String {
        client.write_all(REQUEST).await.unwrap();
        reply(client).await
    }

    /// Waits (at most `limit`) for the server to close `client`; true if it did.
    async fn closed_within(client: &mut TcpStream, limit: Duration) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(limit, client.read_to_end(&mut rest)).await,
            Ok(Ok(_) | Err(_))
        )
    }

    fn timeouts(idle_ms: u64, head_ms: u64, body_ms: u64) -> Timeouts {
        Timeouts {
            idle: Duration::from_millis(idle_ms),
            head: Duration::from_millis(head_ms),
            body: Duration::from_millis(body_ms),
            write: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn an_idle_connection_outlives_the_head_timeout() {
        let mut client = connection(timeouts(30_000, 100, 30_000)).await;
        assert!(ask(&mut client).await.starts_with("HTTP/1.1 200"));
        // Idle for several head timeouts: still open, and serves the next request.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(ask(&mut client).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_new_connection_may_wait_before_its_first_request() {
        let mut client = connection(timeouts(30_000, 100, 30_000)).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(ask(&mut client).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_after_the_idle_timeout() {
        let mut client = connection(timeouts(300, 30_000, 30_000)).await;
        assert!(ask(&mut client).await.starts_with("HTTP/1.1 200"));
        // Closed long before the head timeout could have done it.
        assert!(closed_within(&mut client, Duration::from_secs(10)).await);
    }

    #[tokio::test]
    async fn a_slow_head_is_closed_after_the_head_timeout() {
        let mut client = connection(timeouts(60_000, 300, 60_000)).await;
        assert!(ask(&mut client).await.starts_with("HTTP/1.1 200"));
        // Half a head, then nothing: closed long before the idle timeout.
        client.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
        assert!(closed_within(&mut client, Duration::from_secs(10)).await);
    }

    #[tokio::test]
    async fn a_head_trickled_byte_by_byte_gets_no_more_time() {
        let mut client = connection(timeouts(60_000, 500, 60_000)).await;
        // One byte every 100 ms: each read is news, but the deadline stays at the first byte's.
        let mut closed = false;
        let head = b"GET / HTTP/1.1\r\nx-slow: "
            .iter()
            .chain([b'a'; 100].iter());
        for byte in head {
            if client.write_all(&[*byte]).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // About 12 s of trickling: the hub gave up after 0.5 s (a write into the closed
        // connection may still succeed once; reading tells).
        assert!(closed || closed_within(&mut client, Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn a_body_trickled_past_its_deadline_is_answered_408_and_the_connection_closed() {
        let client = connection(timeouts(60_000, 60_000, 500)).await;
        let (mut read, mut write) = client.into_split();
        write
            .write_all(b"POST /echo HTTP/1.1\r\nhost: hub\r\ncontent-length: 100\r\n\r\n")
            .await
            .unwrap();
        // A byte every 100 ms would take 10 s; the hub answers at about 0.5 s.
        tokio::spawn(async move {
            for _ in 0..100 {
                if write.write_all(b"a").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut answer = Vec::new();
        let read_all = tokio::time::timeout(Duration::from_secs(5), read.read_to_end(&mut answer));
        // Closed (end of stream, or reset by the trickle's next write) within the time.
        assert!(read_all.await.is_ok(), "still open");
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(answer.starts_with("http/1.1 408"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        assert!(
            answer.contains("urn:vigil:problem:body-too-slow"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_body_in_time_is_served_and_the_deadline_does_not_bound_the_handler() {
        let mut client = connection(timeouts(60_000, 60_000, 300)).await;
        for path in ["/echo", "/slow"] {
            let request =
                format!("POST {path} HTTP/1.1\r\nhost: hub\r\ncontent-length: 5\r\n\r\nhello");
            client.write_all(request.as_bytes()).await.unwrap();
            // `/slow` answers a second after reading the body, past the body's 300 ms.
            let answer = reply(&mut client).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
            assert!(answer.ends_with("\r\n\r\n5"), "{path}: {answer}");
        }
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped_and_a_slow_reader_is_not() {
        let mut limits = timeouts(60_000, 60_000, 60_000);
        limits.write = Duration::from_millis(500);
        // Reads nothing for 2 s, then all it can: the hub gave up on the response meanwhile.
        let mut client = connection(limits).await;
        client
            .write_all(b"GET /large HTTP/1.1\r\nhost: hub\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut got = Vec::new();
        let read_all = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut got));
        let r = read_all.await;
        assert!(r.is_ok(), "still open");
        assert!(got.len() < LARGE, "the whole response came: {}", got.len());
        // Reading steadily, a little at a time, gets all of it.
        let mut client = connection(limits).await;
        client
            .write_all(b"GET /large HTTP/1.1\r\nhost: hub\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut total = 0;
        let mut chunk = vec![0; 1 << 20];
        loop {
            match client.read(&mut chunk).await.unwrap() {
                0 => break,
                n => total += n,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(total > LARGE, "{total}");
    }

    #[tokio::test]
    async fn a_head_larger_than_the_buffer_is_answered_431_and_a_long_token_is_not() {
        let mut client = connection(timeouts(60_000, 60_000, 60_000)).await;
        let token = "t".repeat(8 * 1024);
        let request =
            format!("GET / HTTP/1.1\r\nhost: hub\r\nauthorization: Bearer {token}\r\n\r\n");
        client.write_all(request.as_bytes()).await.unwrap();
        assert!(reply(&mut client).await.starts_with("HTTP/1.1 200"));
        let padding = "p".repeat(MAX_BUFFER);
        let request = format!("GET / HTTP/1.1\r\nhost: hub\r\nx-padding: {padding}\r\n\r\n");
        // The hub answers and closes before it has read all of it; the unread rest makes the
        // close a reset, which may reach the client before the answer does. So: closed (by end
        // or by reset) within the time, never served, and 431 if anything came.
        let _ = client.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            let mut chunk = [0; 4096];
            loop {
                match client.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => answer.extend_from_slice(&chunk[..n]),
                }
            }
        });
        assert!(closed.await.is_ok(), "still open");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{answer}"
        );
    }
}
