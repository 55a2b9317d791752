//! A connection whose writes fail once the peer has taken nothing for a while.
//!
//! A peer that stops reading (a client that walked away from a response, a device whose radio
//! receives no more but still sends) leaves the hub's writes waiting on a full socket buffer,
//! with what was to be sent held in memory, until TCP gives up (about a quarter of an hour).
//! Every listener wraps its connections in [`WriteStall`], so such a write fails after the
//! limit and the connection ends. A peer that reads slowly but steadily is never cut off: the
//! limit counts from the last write that made progress.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `S` with writes that fail after making no progress for a limit.
#[derive(Debug)]
pub struct WriteStall<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write waits on a peer that does not read.
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteStall<S> {
    /// Wraps `inner`: a write that cannot make progress for `limit` fails with
    /// [`io::ErrorKind::TimedOut`].
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            waiting: None,
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Passes a write's outcome through; if it must wait, fails it once the limit has passed
    /// since the last progress.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting = None;
            return polled;
        }
        let limit = self.limit;
        let waiting = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if waiting.as_mut().poll(cx).is_ready() {
            self.waiting = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_write_the_peer_never_takes_fails_after_the_limit() {
        // A pipe that holds 1 KiB, and a peer that reads none of it.
        let (ours, _peer) = tokio::io::duplex(1024);
        let mut stream = WriteStall::new(ours, Duration::from_millis(200));
        let written = tokio::time::timeout(Duration::from_secs(10), async {
            stream.write_all(&[7; 8192]).await
        })
        .await
        .expect("the write gave up before the test's own limit");
        assert_eq!(written.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_peer_that_reads_slowly_but_steadily_gets_everything() {
        let (ours, mut peer) = tokio::io::duplex(1024);
        let mut stream = WriteStall::new(ours, Duration::from_millis(200));
        // 100 ms between reads of 512 bytes: each write waits, never 200 ms without progress;
        // the whole takes about 1.6 s, far past the limit.
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0; 512];
            loop {
                match peer.read(&mut chunk).await.unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&chunk[..n]),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        stream.write_all(&[7; 8192]).await.unwrap();
        stream.shutdown().await.unwrap();
        drop(stream);
        assert_eq!(reader.await.unwrap().len(), 8192);
    }
}
