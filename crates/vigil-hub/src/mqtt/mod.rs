//! The MQTT listener: MQTT 3.1.1 and 5.0 over TLS with mandatory client certificates.
//!
//! Each connection: a place under the connection limit, a TLS handshake within
//! [`HANDSHAKE_TIMEOUT`](crate::https::HANDSHAKE_TIMEOUT), the device from its certificate, a
//! CONNECT within [`CONNECT_TIMEOUT`] whose client id is the device id (or empty, then assigned),
//! then packets until DISCONNECT, a keep-alive timeout, or a refusal.
//!
//! Topics (DESIGN.md): a device publishes only to `vigil/v1/d/{id}/obs` (observations, SenML
//! JSON or CBOR), `…/evt` and `…/cmd/ack`, and subscribes only to `…/cmd` and `…/fw`, with `{id}` its
//! own. Everything else is refused (version 5 reason code Not authorized; 3.1.1 has none and
//! closes) and audited. A QoS 1 observation is acknowledged (PUBACK) only after the store has
//! committed it; QoS 0 is accepted and may be lost. QoS 2 is not supported (0x9B).
//!
//! Each device's publications are rate limited ([`crate::throttle`]): over the limit the hub
//! stops reading (TCP pushes back); still over it after a few seconds, the device is
//! disconnected (0x96 Message rate too high) and a flood alert raised.
//!
//! Up to [`codec::RECEIVE_MAXIMUM`] QoS 1 publications of a connection commit at once; their
//! PUBACKs leave in the order the publications arrived. Decoding, validation and the sequence
//! check run in arrival order ([`Ingest::prepare`]); only the commit runs concurrently.
//!
//! Sessions persist (3.1.1 Clean Session 0, or a version 5 Session Expiry Interval, capped at
//! [`delivery::MAX_SESSION_EXPIRY`]): a device reconnecting finds its subscriptions, and the
//! messages queued for it in the [`Outbox`] while it was away are sent at QoS 1 as soon as it
//! is subscribed, each until it expires ([`delivery`]).

pub mod codec;
pub mod delivery;
pub mod sessions;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use vigil_model::{Action, Actor, DeviceId, Outcome, ResourceKind};
use vigil_wire::senml::Encoding;

use crate::audit::{Auditor, entry};
use crate::https::HANDSHAKE_TIMEOUT;
use crate::ingest::{Ingest, IngestError};
use crate::listener::accept_loop;
use crate::outbox::{Outbox, blocking};
use crate::throttle::Admission;
use crate::write_stall::WriteStall;
use codec::{ConnectRefusal, Inbound, Outbound, ReadError, Refusal, Version};

/// The CONNECT packet must arrive within this time after the handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A write to a device that has taken nothing for this long ends its connection.
pub const WRITE_STALL: Duration = Duration::from_secs(30);
/// Idle limit for a client that asked for no keep-alive.
const DEFAULT_IDLE: Duration = Duration::from_secs(600);

/// Serves MQTT on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    ingest: Ingest,
    outbox: Outbox,
    auditor: Auditor,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let sessions = Arc::new(sessions::Sessions::default());
    accept_loop(listener, max_connections, shutdown, |tcp, address, _| {
        let session = Session {
            ingest: ingest.clone(),
            outbox: outbox.clone(),
            auditor: auditor.clone(),
            sessions: Arc::clone(&sessions),
            address,
        };
        session.run(acceptor.clone(), tcp)
    })
    .await;
}

struct Session {
    ingest: Ingest,
    outbox: Outbox,
    auditor: Auditor,
    sessions: Arc<sessions::Sessions>,
    address: SocketAddr,
}

/// How a session ends.
enum End {
    /// Closed by the client or by a timeout: nothing to send.
    Quiet,
    /// Refused: send this (version 5) and close.
    Refuse(DisconnectReasonCode),
}

impl Session {
    async fn run(self, acceptor: TlsAcceptor, tcp: tokio::net::TcpStream) {
        let address = self.address;
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                tracing::info!(%address, %error, "MQTT TLS handshake failed");
                // The verifier cannot see the address; here it is known. Client certificates
                // are mandatory on this listener, so a failed handshake is a failed
                // authentication (or a client that does not speak TLS at all).
                self.ingest.report(vigil_detect::Event::Refused {
                    at: vigil_model::Timestamp::now(),
                    device: None,
                    address: Some(address.ip()),
                    refusal: vigil_detect::Refusal::BadCertificate,
                });
                return;
            }
            Err(_) => {
                tracing::info!(%address, "MQTT TLS handshake timed out");
                return;
            }
        };
        let Some(leaf) = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .cloned()
        else {
            return; // mandatory client auth: unreachable
        };
        let device = match vigil_pki::identity::device_id(&leaf) {
            Ok(device) => device,
            Err(error) => {
                self.denied(
                    &address.ip().to_string(),
                    ResourceKind::Certificate,
                    "-",
                    &error.to_string(),
                );
                return;
            }
        };
        // A device that stops reading (its radio receives no more, but it still sends) must
        // not leave this session waiting to write for as long as TCP takes to give up.
        let (mut reader, mut writer) = tokio::io::split(WriteStall::new(tls, WRITE_STALL));
        let mut buffer = BytesMut::with_capacity(4096);

        // CONNECT: find the version, then check the client id.
        let version =
            match tokio::time::timeout(CONNECT_TIMEOUT, connect_version(&mut reader, &mut buffer))
                .await
            {
                Ok(Some(4)) => Version::V311,
                Ok(Some(5)) => Version::V5,
                Ok(Some(_)) => {
                    let _ = send(
                        &mut writer,
                        Version::V311,
                        &Outbound::ConnAck(Err(ConnectRefusal::UnsupportedVersion)),
                    )
                    .await;
                    return;
                }
                Ok(None) | Err(_) => return,
            };
        let (client_id, keep_alive, clean_start, asked_expiry) =
            match codec::read(version, &mut buffer) {
                Ok(Inbound::Connect {
                    client_id,
                    keep_alive,
                    clean_start,
                    session_expiry,
                }) => (client_id, keep_alive, clean_start, session_expiry),
                _ => {
                    let _ = send(
                        &mut writer,
                        version,
                        &Outbound::Disconnect(DisconnectReasonCode::MalformedPacket),
                    )
                    .await;
                    return;
                }
            };
        let assigned = if client_id.is_empty() {
            Some(device.to_string())
        } else if client_id == device.as_str() {
            None
        } else {
            self.denied(
                &format!("device {device}"),
                ResourceKind::Device,
                device.as_str(),
                "MQTT client id is not the device id",
            );
            self.refused(&device, vigil_detect::Refusal::ClientIdMismatch);
            let _ = send(
                &mut writer,
                version,
                &Outbound::ConnAck(Err(ConnectRefusal::ClientIdNotValid)),
            )
            .await;
            return;
        };
        let expiry = delivery::granted_expiry(clean_start, asked_expiry);
        let resumed = match self.resume(&device, clean_start).await {
            Ok(resumed) => resumed,
            Err(error) => {
                tracing::error!(device = %device, %error, "MQTT session state could not be read");
                let _ = send(
                    &mut writer,
                    version,
                    &Outbound::Disconnect(DisconnectReasonCode::UnspecifiedError),
                )
                .await;
                return;
            }
        };
        let accepted = codec::Accepted {
            assigned_client_id: assigned,
            session_present: resumed.is_some(),
            session_expiry: asked_expiry
                .filter(|asked| *asked != expiry)
                .map(|_| expiry),
        };
        if send(&mut writer, version, &Outbound::ConnAck(Ok(accepted)))
            .await
            .is_err()
        {
            return;
        }
        tracing::info!(%address, device = %device, ?version, "MQTT session opened");
        let registration = self.sessions.register(&device, address);
        if let Some(previous) = registration.replaced {
            self.took_over(&device, previous);
        }
        self.ingest.report(vigil_detect::Event::Connected {
            at: vigil_model::Timestamp::now(),
            device: device.clone(),
            address: address.ip(),
            took_over: registration.replaced.map(|previous| previous.ip()),
        });
        let connection_id = registration.id;
        let mut taken_over = registration.taken_over;
        let idle = if keep_alive == 0 {
            DEFAULT_IDLE
        } else {
            Duration::from_millis(u64::from(keep_alive) * 1500)
        };

        let mut delivery = delivery::Delivery::resume(resumed.as_ref());
        let signal = self.outbox.signal(&device);
        signal.notify_one(); // messages may have queued while the device was away
        let link = Link {
            version,
            idle,
            reader: &mut reader,
            writer: &mut writer,
            buffer: &mut buffer,
            taken_over: &mut taken_over,
            signal: &signal,
        };
        let end = self.packets(&device, link, (&mut delivery, expiry)).await;
        drop(signal);
        self.outbox.release(&device);
        self.sessions.unregister(&device, connection_id);
        // A session that ends with its connection and left nothing stored needs no write.
        if expiry > 0 || resumed.is_some() {
            self.keep_session(&device, &delivery, expiry).await;
        }
        if let End::Refuse(reason) = end {
            let _ = send(&mut writer, version, &Outbound::Disconnect(reason)).await;
        }
        let _ = writer.shutdown().await;
        tracing::info!(%address, device = %device, "MQTT session closed");
    }

    async fn packets<R, W>(
        &self,
        device: &DeviceId,
        link: Link<'_, R, W>,
        (delivery, expiry): (&mut delivery::Delivery, u32),
    ) -> End
    where
        R: AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        let Link {
            version,
            idle,
            reader,
            writer,
            buffer,
            taken_over,
            signal,
        } = link;
        let topics = Topics::of(device);
        // Publications being committed, oldest first: several commit at once, and their
        // acknowledgements leave in the order the publications arrived (MQTT requires it).
        let mut pending: VecDeque<InFlight> = VecDeque::new();
        let window = usize::from(codec::RECEIVE_MAXIMUM);
        loop {
            let full = pending.len() >= window;
            let step = match pending.front_mut() {
                Some(head) if full => Step::Done(head.outcome().await),
                Some(head) => tokio::select! {
                    biased;
                    outcome = head.outcome() => Step::Done(outcome),
                    () = signal.notified() => Step::Queued,
                    packet = next_packet(version, reader, buffer, idle, taken_over) => Step::Packet(packet),
                },
                None => tokio::select! {
                    () = signal.notified() => Step::Queued,
                    packet = next_packet(version, reader, buffer, idle, taken_over) => Step::Packet(packet),
                },
            };
            let packet = match step {
                Step::Queued => {
                    if let Err(end) = self
                        .deliver(device, &topics, delivery, writer, version)
                        .await
                    {
                        return end;
                    }
                    continue;
                }
                Step::Done(outcome) => {
                    if let Some(done) = pending.pop_front()
                        && let Err(end) = acknowledge(writer, version, done.pkid, outcome).await
                    {
                        return end;
                    }
                    continue;
                }
                Step::Packet(Ok(packet)) => packet,
                Step::Packet(Err(ReadEnd::Closed)) => return End::Quiet,
                Step::Packet(Err(ReadEnd::TooLarge)) => {
                    return End::Refuse(DisconnectReasonCode::PacketTooLarge);
                }
                Step::Packet(Err(ReadEnd::Idle)) => {
                    return End::Refuse(DisconnectReasonCode::KeepAliveTimeout);
                }
                Step::Packet(Err(ReadEnd::TakenOver)) => {
                    return End::Refuse(DisconnectReasonCode::SessionTakenOver);
                }
                Step::Packet(Err(ReadEnd::Malformed)) => {
                    self.denied(
                        &format!("device {device}"),
                        ResourceKind::Device,
                        device.as_str(),
                        "malformed MQTT packet",
                    );
                    self.refused(device, vigil_detect::Refusal::MalformedPacket);
                    return End::Refuse(DisconnectReasonCode::MalformedPacket);
                }
            };
            let answer = match packet {
                Inbound::Publish {
                    topic,
                    qos,
                    pkid,
                    payload,
                    content_type,
                } => {
                    if qos > 1 {
                        return End::Refuse(DisconnectReasonCode::QoSNotSupported);
                    }
                    match self.ingest.admit(device).await {
                        Admission::Now => {}
                        // Not reading on is how MQTT pushes back: TCP fills, the device waits.
                        Admission::After(wait) | Admission::AfterAlert(wait) => {
                            tokio::time::sleep(wait).await;
                        }
                        Admission::Flooding { .. } => {
                            self.denied(
                                &format!("device {device}"),
                                ResourceKind::Device,
                                device.as_str(),
                                "message rate too high (flood)",
                            );
                            return End::Refuse(DisconnectReasonCode::MessageRateTooHigh);
                        }
                    }
                    let work = if topic == topics.observations {
                        self.observations(device, content_type.as_deref(), &payload)
                            .await
                    } else if topic == topics.events || topic == topics.command_acks {
                        Work::Ready(Ok(()))
                    } else {
                        self.denied(
                            &format!("device {device}"),
                            ResourceKind::Topic,
                            &clip(&topic),
                            "publish outside the device's topics",
                        );
                        self.refused(device, vigil_detect::Refusal::ForeignTopic);
                        Work::Ready(Err(Refusal::NotAuthorized))
                    };
                    pending.push_back(InFlight {
                        pkid: (qos == 1).then_some(pkid),
                        work,
                    });
                    continue;
                }
                Inbound::Subscribe { pkid, filters } => {
                    let granted: Vec<bool> = filters
                        .iter()
                        .map(|filter| {
                            let channel = topics.channel(filter);
                            if let Some(channel) = channel {
                                delivery.set(channel, true);
                            } else {
                                self.denied(
                                    &format!("device {device}"),
                                    ResourceKind::Topic,
                                    &clip(filter),
                                    "subscription outside the device's topics",
                                );
                                self.refused(device, vigil_detect::Refusal::ForeignTopic);
                            }
                            channel.is_some()
                        })
                        .collect();
                    if send(writer, version, &Outbound::SubAck(pkid, granted))
                        .await
                        .is_err()
                    {
                        return End::Quiet;
                    }
                    self.save_subscriptions(device, delivery, expiry).await;
                    // Now subscribed: what waits for the device may go.
                    if let Err(end) = self
                        .deliver(device, &topics, delivery, writer, version)
                        .await
                    {
                        return end;
                    }
                    continue;
                }
                Inbound::Unsubscribe { pkid, filters } => {
                    for channel in filters.iter().filter_map(|f| topics.channel(f)) {
                        delivery.set(channel, false);
                    }
                    self.save_subscriptions(device, delivery, expiry).await;
                    Outbound::UnsubAck(pkid, filters.len())
                }
                Inbound::PubAck { pkid } => {
                    if let Some(message) = delivery.acknowledged(pkid) {
                        if let Err(error) = self.outbox.delivered(device, message).await {
                            tracing::error!(device = %device, %error, "delivery could not be recorded");
                        }
                        if let Err(end) = self
                            .deliver(device, &topics, delivery, writer, version)
                            .await
                        {
                            return end;
                        }
                    }
                    continue;
                }
                Inbound::PingReq => Outbound::PingResp,
                Inbound::Disconnect => return End::Quiet,
                Inbound::Connect { .. } | Inbound::Unexpected => {
                    return End::Refuse(DisconnectReasonCode::ProtocolError);
                }
            };
            if send(writer, version, &answer).await.is_err() {
                return End::Quiet;
            }
        }
    }

    /// Sends the next queued message, if one is due and nothing is in flight.
    async fn deliver<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        device: &DeviceId,
        topics: &Topics,
        delivery: &mut delivery::Delivery,
        writer: &mut W,
        version: Version,
    ) -> Result<(), End> {
        let Some(publish) = delivery
            .next(&self.outbox, device, |channel| topics.of_channel(channel))
            .await
        else {
            return Ok(());
        };
        send(writer, version, &publish)
            .await
            .map_err(|_| End::Quiet)
    }

    /// The stored session to resume; a clean start discards it (a write only when a session
    /// was stored).
    async fn resume(
        &self,
        device: &DeviceId,
        clean_start: bool,
    ) -> Result<Option<vigil_store::SessionRecord>, vigil_store::StoreError> {
        let store = std::sync::Arc::clone(self.outbox.store());
        let device = device.clone();
        blocking(move || {
            let stored = store.session(&device, vigil_model::Timestamp::now())?;
            if clean_start && stored.is_some() {
                store.end_session(&device)?;
                return Ok(None);
            }
            Ok(stored)
        })
        .await
    }

    /// Stores the subscriptions of a session that outlives its connection.
    async fn save_subscriptions(
        &self,
        device: &DeviceId,
        delivery: &delivery::Delivery,
        expiry: u32,
    ) {
        if expiry == 0 {
            return;
        }
        let store = std::sync::Arc::clone(self.outbox.store());
        let device = device.clone();
        let record = delivery.record(expiry, None);
        if let Err(error) = blocking(move || store.save_session(&device, &record)).await {
            tracing::error!(%error, "MQTT session could not be saved");
        }
    }

    /// When the connection ends: keeps the session for its expiry, or forgets it.
    async fn keep_session(&self, device: &DeviceId, delivery: &delivery::Delivery, expiry: u32) {
        let store = std::sync::Arc::clone(self.outbox.store());
        let device = device.clone();
        let record = delivery.record(expiry, Some(vigil_model::Timestamp::now()));
        let kept = blocking(move || {
            if expiry == 0 {
                store.end_session(&device)
            } else {
                store.save_session(&device, &record)
            }
        })
        .await;
        if let Err(error) = kept {
            tracing::error!(%error, "MQTT session could not be saved");
        }
    }

    /// Checks an observation pack in arrival order and starts its commit; the work to await
    /// before acknowledging it.
    async fn observations(
        &self,
        device: &DeviceId,
        content_type: Option<&str>,
        payload: &[u8],
    ) -> Work {
        // A version 5 Content Type, when sent, must name a SenML encoding (and the payload
        // must then be in it); otherwise the payload's first byte tells JSON from CBOR.
        let encoding = match content_type {
            None => None,
            Some(declared) => match Encoding::from_content_type(declared) {
                Some(encoding) => Some(encoding),
                None => return Work::Ready(Err(Refusal::PayloadInvalid)),
            },
        };
        match self.ingest.prepare(device, encoding, payload).await {
            Ok(prepared) => {
                let ingest = self.ingest.clone();
                let device = device.clone();
                Work::Task(tokio::spawn(async move {
                    ingest
                        .log(prepared)
                        .await
                        .map_err(|error| refusal(&device, &error))
                }))
            }
            Err(error) => Work::Ready(Err(refusal(device, &error))),
        }
    }

    /// The same device connected twice: audit and log (detection raises the alert).
    fn took_over(&self, device: &DeviceId, previous: SocketAddr) {
        let address = self.address;
        tracing::warn!(device = %device, %previous, %address, "device connected twice; the newer connection takes over");
        self.auditor.record_later(entry(
            Actor::Device(device.clone()),
            Action::Connect,
            ResourceKind::Device,
            device.as_str(),
            Outcome::Success,
            Some("took over an existing connection of the same device"),
        ));
    }

    /// Tells detection what `device` was refused.
    fn refused(&self, device: &DeviceId, refusal: vigil_detect::Refusal) {
        self.ingest.report(vigil_detect::Event::Refused {
            at: vigil_model::Timestamp::now(),
            device: Some(device.clone()),
            address: Some(self.address.ip()),
            refusal,
        });
    }

    fn denied(&self, who: &str, kind: ResourceKind, id: &str, reason: &str) {
        tracing::warn!(address = %self.address, who, resource = id, reason, "MQTT refusal");
        self.auditor.record_later(entry(
            Actor::Unauthenticated(who.to_owned()),
            Action::Connect,
            kind,
            id,
            Outcome::Denied,
            Some(reason),
        ));
    }
}

/// An open connection as the packet loop uses it.
struct Link<'a, R, W> {
    version: Version,
    /// Nothing received for this long ends the connection (1.5 × keep-alive).
    idle: Duration,
    reader: &'a mut R,
    writer: &'a mut W,
    /// Bytes read but not yet decoded.
    buffer: &'a mut BytesMut,
    /// Completes when a newer connection of the device takes over.
    taken_over: &'a mut tokio::sync::oneshot::Receiver<()>,
    /// Wakes when a message is queued for the device.
    signal: &'a tokio::sync::Notify,
}

/// What ends reading.
enum ReadEnd {
    /// The client closed the connection.
    Closed,
    /// A packet larger than the maximum.
    TooLarge,
    /// A malformed packet.
    Malformed,
    /// Nothing within the keep-alive.
    Idle,
    /// A newer connection of the same device took over.
    TakenOver,
}

/// The next thing to do: acknowledge the oldest publication, or handle a packet.
enum Step {
    Done(Result<(), Refusal>),
    /// A message was queued for the device.
    Queued,
    Packet(Result<Inbound, ReadEnd>),
}

/// A publication waiting for its acknowledgement.
struct InFlight {
    /// Packet identifier to acknowledge (QoS 1), or none (QoS 0).
    pkid: Option<u16>,
    work: Work,
}

/// The outcome of a publication: known already, or its commit running.
enum Work {
    Ready(Result<(), Refusal>),
    Task(tokio::task::JoinHandle<Result<(), Refusal>>),
}

impl InFlight {
    /// Waits for the outcome. Cancel-safe: a join handle may be polled again until it is ready,
    /// and the caller removes the entry as soon as it is.
    async fn outcome(&mut self) -> Result<(), Refusal> {
        match &mut self.work {
            Work::Ready(outcome) => *outcome,
            Work::Task(task) => task.await.unwrap_or(Err(Refusal::Internal)),
        }
    }
}

/// Sends the acknowledgement of a finished publication; an `End` if the session must end (a
/// refusal version 3.1.1 cannot express, or a QoS 0 publication to a foreign topic).
async fn acknowledge<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    version: Version,
    pkid: Option<u16>,
    outcome: Result<(), Refusal>,
) -> Result<(), End> {
    match (pkid, outcome) {
        (Some(pkid), outcome) => send(writer, version, &Outbound::PubAck(pkid, outcome.err()))
            .await
            .map_err(|_| End::Quiet),
        (None, Err(Refusal::NotAuthorized)) => {
            Err(End::Refuse(DisconnectReasonCode::NotAuthorized))
        }
        (None, _) => Ok(()),
    }
}

/// The refusal to send for an ingest error (logged here).
fn refusal(device: &DeviceId, error: &IngestError) -> Refusal {
    tracing::warn!(device = %device, %error, "MQTT observations refused");
    match error {
        IngestError::Overloaded => Refusal::QuotaExceeded,
        IngestError::Store(_) => Refusal::Internal,
        IngestError::DeviceNotAllowed(_) => Refusal::NotAuthorized,
        _ => Refusal::PayloadInvalid,
    }
}

/// Reads the next whole packet, or says why reading ends.
async fn next_packet<R: AsyncRead + Unpin>(
    version: Version,
    reader: &mut R,
    buffer: &mut BytesMut,
    idle: Duration,
    taken_over: &mut tokio::sync::oneshot::Receiver<()>,
) -> Result<Inbound, ReadEnd> {
    loop {
        match codec::read(version, buffer) {
            Ok(packet) => return Ok(packet),
            Err(ReadError::Incomplete) => {}
            Err(ReadError::TooLarge) => return Err(ReadEnd::TooLarge),
            Err(ReadError::Malformed) => return Err(ReadEnd::Malformed),
        }
        let read = tokio::select! {
            read = tokio::time::timeout(idle, reader.read_buf(buffer)) => read,
            _ = &mut *taken_over => return Err(ReadEnd::TakenOver),
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(ReadEnd::Closed),
            Ok(Ok(_)) => {}
            Err(_) => return Err(ReadEnd::Idle),
        }
    }
}

/// A device's own topics.
struct Topics {
    observations: String,
    events: String,
    command_acks: String,
    commands: String,
    firmware: String,
}

impl Topics {
    /// The channel a subscription filter names, if it is one of the device's.
    fn channel(&self, filter: &str) -> Option<vigil_store::Channel> {
        if filter == self.commands {
            Some(vigil_store::Channel::Commands)
        } else if filter == self.firmware {
            Some(vigil_store::Channel::Firmware)
        } else {
            None
        }
    }

    fn of_channel(&self, channel: vigil_store::Channel) -> String {
        match channel {
            vigil_store::Channel::Commands => self.commands.clone(),
            vigil_store::Channel::Firmware => self.firmware.clone(),
        }
    }

    fn of(device: &DeviceId) -> Topics {
        let base = format!("vigil/v1/d/{device}");
        Topics {
            observations: format!("{base}/obs"),
            events: format!("{base}/evt"),
            command_acks: format!("{base}/cmd/ack"),
            commands: format!("{base}/cmd"),
            firmware: format!("{base}/fw"),
        }
    }
}

/// A topic as it may appear in an audit entry: at most 100 characters, no control characters.
fn clip(topic: &str) -> String {
    topic
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect()
}

/// Reads until a whole first packet is buffered; returns its CONNECT protocol level.
async fn connect_version<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
) -> Option<u8> {
    loop {
        if buffer.len() >= 2 && buffer.first().map(|b| b >> 4) != Some(1) {
            return None; // the first packet is not a CONNECT
        }
        // The level is read once the whole packet is there (its length is in the fixed
        // header), not on every read of a CONNECT that arrives a byte at a time.
        match codec::frame_len(buffer) {
            Some(length) if length > codec::MAX_PACKET => return None,
            Some(length) if buffer.len() >= length => return codec::connect_level(buffer),
            // A remaining length of more than four bytes is malformed.
            None if buffer.len() >= 5 => return None,
            _ => {}
        }
        match reader.read_buf(buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn send<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    version: Version,
    answer: &Outbound,
) -> std::io::Result<()> {
    let mut out = BytesMut::with_capacity(64);
    match codec::write(version, answer, &mut out) {
        Some(()) => {
            writer.write_all(&out).await?;
            writer.flush().await
        }
        // Version 3.1.1 cannot say it: close.
        None => Err(std::io::Error::other("refusal closes a 3.1.1 connection")),
    }
}

#[cfg(test)]
mod tests {
    use rumqttc::mqttbytes::v4;
    use tokio::io::AsyncWriteExt;

    use super::*;

    fn connect() -> BytesMut {
        let mut packet = BytesMut::new();
        v4::Packet::Connect(v4::Connect::new("dev-1"))
            .write(&mut packet, 1024)
            .unwrap();
        packet
    }

    /// What `connect_version` makes of `bytes` arriving one at a time (then the sender waits).
    async fn version_of(bytes: Vec<u8>) -> Option<u8> {
        let (mut client, mut hub) = tokio::io::duplex(1 << 20);
        let sender = tokio::spawn(async move {
            for byte in bytes {
                client.write_all(&[byte]).await.unwrap();
                tokio::task::yield_now().await;
            }
            // Keep the connection open: a verdict must not need the end of the stream.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let mut buffer = BytesMut::new();
        let version = tokio::time::timeout(
            Duration::from_secs(10),
            connect_version(&mut hub, &mut buffer),
        )
        .await
        .expect("a verdict without waiting for more");
        sender.abort();
        version
    }

    #[tokio::test]
    async fn a_connect_sent_a_byte_at_a_time_is_read_once_whole() {
        let mut bytes = connect().to_vec();
        // A PUBLISH right behind it stays in the buffer for the session.
        bytes.extend_from_slice(&[0x30, 0x00]);
        assert_eq!(version_of(bytes).await, Some(4));
    }

    #[tokio::test]
    async fn a_first_packet_that_is_not_a_connect_or_too_long_is_refused_at_once() {
        assert_eq!(version_of(vec![0x30, 0x05]).await, None);
        // Declares 2 MB: refused from the fixed header, before any of it is sent.
        assert_eq!(version_of(vec![0x10, 0x80, 0x80, 0x80, 0x01]).await, None);
        // A remaining length of five bytes.
        assert_eq!(
            version_of(vec![0x10, 0xff, 0xff, 0xff, 0xff, 0x01]).await,
            None
        );
    }
}
