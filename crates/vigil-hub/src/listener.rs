//! The accept loop every listener shares: a place under the connection limit for each
//! connection (or it is closed at once), how full the listener is when it arrives, accept
//! errors that back off instead of spinning, and a clean stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How full a listener was when a connection arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupancy {
    /// Connections open, this one included.
    pub open: usize,
    /// The listener's connection limit.
    pub limit: usize,
}

impl Occupancy {
    /// More than half the limit in use: perhaps a flood of connections, so a connection that
    /// arrives now is given less time to idle (each idle one holds a place).
    pub fn is_crowded(&self) -> bool {
        self.open.saturating_mul(2) > self.limit
    }
}

/// Accepts connections on `listener` until `shutdown` completes, running `handle` for each in
/// its own task, at most `limit` at once (more are closed on arrival).
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    limit: usize,
    shutdown: impl Future<Output = ()>,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr, Occupancy) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limit));
    tokio::pin!(shutdown);
    loop {
        let (tcp, address) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%address, "connection limit reached; connection closed");
            continue;
        };
        let occupancy = Occupancy {
            open: limit.saturating_sub(slots.available_permits()),
            limit,
        };
        let connection = handle(tcp, address, occupancy);
        tokio::spawn(async move {
            connection.await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn crowded_past_half_the_limit() {
        let at = |open| Occupancy { open, limit: 10 }.is_crowded();
        assert!(!at(1));
        assert!(!at(5));
        assert!(at(6));
        assert!(at(10));
        assert!(!Occupancy { open: 0, limit: 0 }.is_crowded());
    }

    #[tokio::test]
    async fn each_connection_learns_how_many_are_open_and_the_limit_holds() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let recorded = Arc::clone(&seen);
        let server = tokio::spawn(accept_loop(
            listener,
            3,
            async {
                let _ = stopped.await;
            },
            move |tcp, _, occupancy| {
                recorded.lock().unwrap().push(occupancy);
                // Hold the connection (and its place) until the client closes it.
                async move {
                    let mut byte = [0; 1];
                    let _ = tokio::io::AsyncReadExt::read(&mut { tcp }, &mut byte).await;
                }
            },
        ));
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(TcpStream::connect(address).await.unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The fourth found the listener full and was closed without a place.
        let open: Vec<usize> = seen.lock().unwrap().iter().map(|o| o.open).collect();
        assert_eq!(open, [1, 2, 3]);
        assert!(seen.lock().unwrap().iter().all(|o| o.limit == 3));
        drop(clients);
        let _ = stop.send(());
        server.await.unwrap();
    }
}
