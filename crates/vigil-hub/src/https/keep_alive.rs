//! HTTP/1.1 connections between requests: an idle keep-alive connection may wait long for its
//! next request, but a request head, once begun, must arrive quickly.
//!
//! hyper has one timer for both (`header_read_timeout` starts as soon as a connection is idle).
//! A short one (against slow-header attacks) closes idle keep-alive connections early, and a
//! client that sends its next request just as the hub closes gets the connection reset under
//! it: a reverse proxy or FHIR client keeping a pool of connections would fail requests at
//! random. So the timer hyper is given here is told by the connection's reads when a head
//! begins: until the first byte, the deadline is [`Timeouts::idle`] from when hyper began
//! waiting; from the first byte, [`Timeouts::head`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long an HTTP/1.1 connection may wait for, and take over, a request head.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A connection with no request under way (new, or between two requests) is closed after
    /// this long. Longer than the idle time of common client and proxy pools (nginx closes its
    /// own at 75 s; load balancers commonly keep 60 s), so that they close first.
    pub idle: Duration,
    /// A request head must be complete this long after its first byte arrived.
    pub head: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(90),
            head: Duration::from_secs(10),
        }
    }
}

/// When the first byte since hyper began waiting for a head arrived, shared by a connection's
/// [`Watched`] stream and its [`HeadTimer`].
type FirstByte = Arc<Mutex<Option<Instant>>>;

/// Wraps a connection's stream and its timer for hyper: serve with
/// `.timer(timer).header_read_timeout(timeouts.head)` on `stream`.
pub fn watch<S>(stream: S, timeouts: Timeouts) -> (Watched<S>, HeadTimer) {
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
    use std::convert::Infallible;

    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// Serves "ok" over plain HTTP/1.1 with `timeouts` on one connection; returns the client's
    /// end.
    async fn connection(timeouts: Timeouts) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (stream, timer) = watch(tcp, timeouts);
            let service = hyper::service::service_fn(|_request| async {
                Ok::<_, Infallible>(hyper::Response::new("ok".to_owned()))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(timer)
                .header_read_timeout(timeouts.head)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        TcpStream::connect(address).await.unwrap()
    }

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: hub\r\n\r\n";

    async fn ask(client: &mut TcpStream) -> String {
        client.write_all(REQUEST).await.unwrap();
        let mut reply = vec![0; 1024];
        let n = client.read(&mut reply).await.unwrap();
        String::from_utf8_lossy(&reply[..n]).into_owned()
    }

    /// Waits (at most `limit`) for the server to close `client`; true if it did.
    async fn closed_within(client: &mut TcpStream, limit: Duration) -> bool {
        let mut byte = [0; 1];
        matches!(
            tokio::time::timeout(limit, client.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn an_idle_connection_outlives_the_head_timeout() {
        let timeouts = Timeouts {
            idle: Duration::from_secs(30),
            head: Duration::from_millis(100),
        };
        let mut client = connection(timeouts).await;
        assert!(ask(&mut client).await.starts_with("HTTP/1.1 200"));
        // Idle for several head timeouts: still open, and serves the next request.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(ask(&mut client).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_new_connection_may_wait_before_its_first_request() {
        let timeouts = Timeouts {
            idle: Duration::from_secs(30),
            head: Duration::from_millis(100),
        };
        let mut client = connection(timeouts).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(ask(&mut client).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_after_the_idle_timeout() {
        let timeouts = Timeouts {
            idle: Duration::from_millis(300),
            head: Duration::from_secs(30),
        };
        let mut client = connection(timeouts).await;
        assert!(ask(&mut client).await.starts_with("HTTP/1.1 200"));
        // Closed long before the head timeout could have done it.
        assert!(closed_within(&mut client, Duration::from_secs(10)).await);
    }

    #[tokio::test]
    async fn a_slow_head_is_closed_after_the_head_timeout() {
        let timeouts = Timeouts {
            idle: Duration::from_secs(60),
            head: Duration::from_millis(300),
        };
        let mut client = connection(timeouts).await;
        assert!(ask(&mut client).await.starts_with("HTTP/1.1 200"));
        // Half a head, then nothing: closed long before the idle timeout.
        client.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
        assert!(closed_within(&mut client, Duration::from_secs(10)).await);
    }

    #[tokio::test]
    async fn a_head_trickled_byte_by_byte_gets_no_more_time() {
        let timeouts = Timeouts {
            idle: Duration::from_secs(60),
            head: Duration::from_millis(500),
        };
        let mut client = connection(timeouts).await;
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
}
