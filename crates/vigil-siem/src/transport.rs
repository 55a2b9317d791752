//! One attempt at delivering an alert, over each transport.
//!
//! Syslog sinks keep one connection (a connected UDP socket, a TCP stream, a TLS stream) and
//! make a new one after any failure, resolving the address again. Syslog has no
//! acknowledgement, so before each write a stream sink looks whether the receiver has closed
//! its end (a restarted receiver has): writing into a closed connection would succeed locally
//! and lose the message. Webhooks are one HTTPS request per attempt, signed afresh.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::record::Record;
use crate::sink::Outgoing;
use crate::syslog::{self, Facility, Format, Origin};
use crate::{json, webhook};

/// How long a UDP sink keeps the address it resolved.
const UDP_RESOLVE_INTERVAL: Duration = Duration::from_secs(300);

/// A syslog sink's transport and the fixed parts of its messages.
pub(crate) struct Syslog {
    address: String,
    protocol: Protocol,
    origin: Origin,
    facility: Facility,
    format: Format,
    max_bytes: usize,
    timeout: Duration,
    connection: Option<Connection>,
    connected_at: Instant,
}

/// How a syslog sink reaches its receiver.
pub(crate) enum Protocol {
    Udp,
    Tcp,
    Tls {
        connector: TlsConnector,
        server_name: ServerName<'static>,
    },
}

enum Connection {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A webhook sink's client and signing secret.
pub(crate) struct Webhook {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: webhook::Secret,
    hostname: Option<String>,
}

/// Why one attempt failed. Carries no alert content.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error("cannot resolve the address: {0}")]
    Resolve(io::Error),
    #[error("the address resolves to nothing")]
    Unresolved,
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    #[error("cannot send: {0}")]
    Send(io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    #[error("the request failed: {0}")]
    Request(reqwest::Error),
}

impl DeliveryError {
    /// A refusal that a retry cannot change: the receiver understood and said no (wrong
    /// secret, wrong path). Timeouts, rate limits and server errors are worth retrying.
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, DeliveryError::Status(status)
            if (400..500).contains(status) && *status != 408 && *status != 429)
    }
}

impl Syslog {
    pub(crate) fn new(
        address: String,
        protocol: Protocol,
        origin: Origin,
        facility: Facility,
        format: Format,
        max_bytes: usize,
        timeout: Duration,
    ) -> Syslog {
        Syslog {
            address,
            protocol,
            origin,
            facility,
            format,
            max_bytes,
            timeout,
            connection: None,
            connected_at: Instant::now(),
        }
    }

    /// Ends the connection politely: FIN over TCP, `close_notify` then FIN over TLS
    /// (RFC 5425 §5.4).
    pub(crate) async fn close(&mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = tokio::time::timeout(self.timeout, connection.close()).await;
        }
    }

    /// One attempt at sending `record`.
    pub(crate) async fn deliver(&mut self, record: &Record) -> Result<(), DeliveryError> {
        let message = syslog::message(
            record,
            &self.origin,
            self.facility,
            self.format,
            self.max_bytes,
        );
        if let Some(connection) = &mut self.connection
            && connection.closed_by_peer().await
        {
            tracing::debug!(address = %self.address, "syslog receiver closed the connection");
            self.connection = None;
        }
        // A UDP socket never fails when the receiver moves; a new one resolves the name again.
        if matches!(self.connection, Some(Connection::Udp(_)))
            && self.connected_at.elapsed() >= UDP_RESOLVE_INTERVAL
        {
            self.connection = None;
        }
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => {
                let connection = within(self.timeout, self.connect()).await?;
                self.connected_at = Instant::now();
                self.connection.insert(connection)
            }
        };
        let sent = within(self.timeout, connection.send(&message)).await;
        if sent.is_err() {
            // Whatever state the stream is in, a new one starts clean.
            self.connection = None;
        }
        sent
    }

    async fn connect(&self) -> Result<Connection, DeliveryError> {
        let target = tokio::net::lookup_host(&self.address)
            .await
            .map_err(DeliveryError::Resolve)?
            .next()
            .ok_or(DeliveryError::Unresolved)?;
        match &self.protocol {
            Protocol::Udp => {
                let local: std::net::SocketAddr = if target.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(DeliveryError::Connect)?;
                socket
                    .connect(target)
                    .await
                    .map_err(DeliveryError::Connect)?;
                Ok(Connection::Udp(socket))
            }
            Protocol::Tcp => Ok(Connection::Tcp(
                TcpStream::connect(target)
                    .await
                    .map_err(DeliveryError::Connect)?,
            )),
            Protocol::Tls {
                connector,
                server_name,
            } => {
                let tcp = TcpStream::connect(target)
                    .await
                    .map_err(DeliveryError::Connect)?;
                let tls = connector
                    .connect(server_name.clone(), tcp)
                    .await
                    .map_err(DeliveryError::Handshake)?;
                Ok(Connection::Tls(Box::new(tls)))
            }
        }
    }
}

impl Connection {
    /// One message: a datagram of its own over UDP, octet-counted over a stream.
    async fn send(&mut self, message: &[u8]) -> Result<(), DeliveryError> {
        match self {
            Connection::Udp(socket) => {
                let sent = socket.send(message).await.map_err(DeliveryError::Send)?;
                if sent != message.len() {
                    return Err(DeliveryError::Send(io::ErrorKind::WriteZero.into()));
                }
                Ok(())
            }
            Connection::Tcp(stream) => write_frame(stream, message).await,
            Connection::Tls(stream) => write_frame(stream.as_mut(), message).await,
        }
    }

    async fn close(self) {
        match self {
            Connection::Udp(_) => {}
            Connection::Tcp(mut stream) => {
                let _ = stream.shutdown().await;
            }
            Connection::Tls(mut stream) => {
                let _ = stream.shutdown().await;
            }
        }
    }

    /// Whether the receiver has closed its end (or reset it). A syslog receiver never sends,
    /// so anything readable is either the end of the stream or noise to discard.
    async fn closed_by_peer(&mut self) -> bool {
        match self {
            Connection::Udp(_) => false,
            Connection::Tcp(stream) => at_end(stream).await,
            Connection::Tls(stream) => at_end(stream.as_mut()).await,
        }
    }
}

async fn write_frame<S: tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    message: &[u8],
) -> Result<(), DeliveryError> {
    let frame = syslog::octet_counted(message);
    stream
        .write_all(&frame)
        .await
        .map_err(DeliveryError::Send)?;
    stream.flush().await.map_err(DeliveryError::Send)
}

/// Polls a read once, without waiting: end of stream or an error means the peer is gone.
async fn at_end<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut buffer = [0_u8; 512];
    poll_fn(|cx| {
        let mut read = ReadBuf::new(&mut buffer);
        Poll::Ready(match Pin::new(&mut *stream).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => read.filled().is_empty(),
            Poll::Ready(Err(_)) => true,
            Poll::Pending => false,
        })
    })
    .await
}

async fn within<T>(
    limit: Duration,
    future: impl std::future::Future<Output = Result<T, DeliveryError>>,
) -> Result<T, DeliveryError> {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or(Err(DeliveryError::Timeout(limit)))
}

impl Webhook {
    pub(crate) fn new(
        client: reqwest::Client,
        url: reqwest::Url,
        secret: webhook::Secret,
        hostname: Option<String>,
    ) -> Webhook {
        Webhook {
            client,
            url,
            secret,
            hostname,
        }
    }

    /// One signed POST of `outgoing`.
    pub(crate) async fn deliver(&self, outgoing: &Outgoing) -> Result<(), DeliveryError> {
        let body = json::webhook_body(&outgoing.record, self.hostname.as_deref());
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let id = webhook::message_id(
            &self.secret,
            outgoing.record.id,
            outgoing.record.time.unix_millis(),
        );
        let signature = webhook::sign(&self.secret, &id, timestamp, &body);
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(webhook::HEADER_ID, id.as_str())
            .header(webhook::HEADER_TIMESTAMP, timestamp.to_string())
            .header(webhook::HEADER_SIGNATURE, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| DeliveryError::Request(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status(status.as_u16()))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clear_client_refusal_is_permanent() {
        for status in [400, 401, 403, 404, 410, 422] {
            assert!(DeliveryError::Status(status).is_permanent(), "{status}");
        }
        for status in [408, 429, 500, 502, 503] {
            assert!(!DeliveryError::Status(status).is_permanent(), "{status}");
        }
        assert!(!DeliveryError::Timeout(Duration::from_secs(1)).is_permanent());
        assert!(!DeliveryError::Unresolved.is_permanent());
    }
}
