//! The HTTPS listener: TLS with optional client certificates, then the device API.
//!
//! Each connection: a place under the connection limit (or it is closed at once), a TLS
//! handshake within [`HANDSHAKE_TIMEOUT`] (slow clients are dropped), the peer's identity from
//! its verified certificate, then HTTP/1.1 held to the [`slow_clients`] timeouts (long between
//! requests, short for a request head or body). Every request carries the connection's
//! [`Peer`].

pub mod api;
pub mod fhir;
pub mod problem;
pub mod routes;
pub mod slow_clients;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use vigil_detect::{Event, Refusal};
use vigil_model::{Action, Actor, DeviceId, Outcome, ResourceKind};
use vigil_pki::IdentityError;

use crate::audit::{Auditor, entry};
use crate::detection::Detection;
use crate::listener::accept_loop;

/// A TLS handshake must finish within this time.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub enum Peer {
    /// No client certificate.
    Anonymous,
    /// A verified device.
    Device(DeviceId),
    /// A verified certificate that does not identify a device.
    Unidentified(IdentityError),
}

/// How much the HTTPS listener serves at once, and how long it waits on clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are closed on arrival.
    pub max_connections: usize,
    /// The waits of a connection that arrives while the listener is at most half full (a
    /// fuller listener uses [`slow_clients::Timeouts::crowded`]).
    pub timeouts: slow_clients::Timeouts,
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    auditor: Auditor,
    detection: Option<Detection>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    accept_loop(
        listener,
        limits.max_connections,
        shutdown,
        |tcp, address, occupancy| {
            let timeouts = if occupancy.is_crowded() {
                slow_clients::Timeouts::crowded()
            } else {
                limits.timeouts
            };
            serve_connection(
                timeouts,
                acceptor.clone(),
                tcp,
                address,
                app.clone(),
                auditor.clone(),
                detection.clone(),
            )
        },
    )
    .await;
}

/// What a failed handshake tells detection, if anything: a refused client certificate (a
/// failed authentication) or bytes that are not TLS (a scanner, a fuzzer). Handshakes given up
/// by the client are not reported (browsers and health checks do that).
fn handshake_refusal(error: &std::io::Error) -> Option<Refusal> {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::InvalidCertRevocationList(_),
        ) => Some(Refusal::BadCertificate),
        Some(rustls::Error::InvalidMessage(_) | rustls::Error::PeerIncompatible(_)) => {
            Some(Refusal::MalformedPacket)
        }
        _ => None,
    }
}

async fn serve_connection(
    timeouts: slow_clients::Timeouts,
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    address: SocketAddr,
    app: Router,
    auditor: Auditor,
    detection: Option<Detection>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::info!(%address, %error, "TLS handshake failed");
            if let (Some(detection), Some(refusal)) = (&detection, handshake_refusal(&error)) {
                detection.report(Event::Refused {
                    at: vigil_model::Timestamp::now(),
                    device: None,
                    address: Some(address.ip()),
                    refusal,
                });
            }
            return;
        }
        Err(_) => {
            tracing::info!(%address, "TLS handshake timed out");
            return;
        }
    };
    let peer = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        None => Peer::Anonymous,
        Some(leaf) => match vigil_pki::identity::device_id(leaf) {
            Ok(device) => Peer::Device(device),
            Err(error) => {
                tracing::warn!(%address, %error, "verified certificate does not identify a device");
                auditor.record_later(entry(
                    Actor::Unauthenticated(address.ip().to_string()),
                    Action::Connect,
                    ResourceKind::Certificate,
                    &vigil_pki::facts::fingerprint(leaf),
                    Outcome::Denied,
                    Some(&error.to_string()),
                ));
                Peer::Unidentified(error)
            }
        },
    };
    let mut extensions = axum::http::Extensions::new();
    extensions.insert(peer);
    extensions.insert(address);
    let result = slow_clients::serve_http1(tls, timeouts, app, extensions).await;
    if let Err(error) = result {
        tracing::debug!(%address, %error, "connection ended with an error");
    }
}
