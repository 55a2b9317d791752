//! The accept loop every listener shares: a place under the connection limit for each
//! connection (or it is closed at once), accept errors that back off instead of spinning, and a
//! clean stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Accepts connections on `listener` until `shutdown` completes, running `handle` for each in
/// its own task, at most `limit` at once (more are closed on arrival).
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    limit: usize,
    shutdown: impl Future<Output = ()>,
    handle: H,
) where
    H: Fn(TcpStream, SocketAddr) -> F,
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
        let connection = handle(tcp, address);
        tokio::spawn(async move {
            connection.await;
            drop(slot);
        });
    }
}
