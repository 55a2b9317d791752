//! A device's MQTT 5.0 connection to the hub over mutual TLS.
//!
//! One publication at a time at QoS 1: [`Link::publish`] returns when the hub acknowledged (or
//! refused) it, which for observations means they are stored. Messages the hub sends meanwhile
//! (commands, update notices) are acknowledged and kept for [`Link::next_message`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{
    ConnectProperties, ConnectReturnCode, Disconnect, DisconnectReasonCode, Packet, PubAck,
    PubAckReason, Publish, Subscribe, SubscribeReasonCode,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use vigil_model::DeviceId;

use crate::{Identity, IdentityError};

/// Largest packet the device accepts from the hub.
const MAX_PACKET: u32 = 256 * 1024;

/// How to connect.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// The hub's host name, checked against its certificate.
    pub server_name: String,
    /// Keep-alive, seconds.
    pub keep_alive: u16,
    /// Start a fresh session (Clean Start).
    pub clean_start: bool,
    /// How long the hub should keep the session after a disconnection, seconds.
    pub session_expiry: u32,
    /// The client id to send: `None` sends the device id (the only one the hub accepts).
    pub client_id: Option<String>,
    /// Longest wait for any answer from the hub.
    pub timeout: Duration,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            server_name: "localhost".to_owned(),
            keep_alive: 60,
            clean_start: true,
            session_expiry: 0,
            client_id: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why the link failed or closed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The identity does not load.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The hub's name is not a valid TLS server name.
    #[error("invalid server name")]
    ServerName,
    /// Network or TLS failure (including a certificate the other side refused).
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The hub refused the connection (CONNACK reason code).
    #[error("connection refused by the hub: {0:?}")]
    Refused(ConnectReturnCode),
    /// The hub closed the connection, with its DISCONNECT reason when it sent one.
    #[error("the hub closed the connection ({0:?})")]
    Closed(Option<DisconnectReasonCode>),
    /// The hub did not answer in time.
    #[error("no answer from the hub in time")]
    Timeout,
    /// The hub sent something that is not valid MQTT 5.0 here.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// The hub's answer to a QoS 1 publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Acknowledged: for observations, durably stored.
    Accepted,
    /// Refused with this PUBACK reason.
    Refused(PubAckReason),
}

/// A message the hub sent to the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// A resend of a message the device may already have seen.
    pub duplicate: bool,
}

/// An open MQTT 5.0 connection of one device.
pub struct Link {
    device: DeviceId,
    stream: TlsStream<TcpStream>,
    input: BytesMut,
    last_pkid: u16,
    inbox: VecDeque<Message>,
    timeout: Duration,
    keep_alive: u16,
    /// Whether the hub resumed a stored session.
    pub session_present: bool,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Connects to the hub's MQTT listener at `address` as `identity`.
    pub async fn connect(
        address: SocketAddr,
        identity: &Identity,
        options: &LinkOptions,
    ) -> Result<Link, LinkError> {
        let config = identity.client_config()?;
        let name =
            ServerName::try_from(options.server_name.clone()).map_err(|_| LinkError::ServerName)?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let connecting = async {
            let tcp = TcpStream::connect(address).await?;
            tcp.set_nodelay(true)?;
            connector.connect(name, tcp).await
        };
        let stream = tokio::time::timeout(options.timeout, connecting)
            .await
            .map_err(|_| LinkError::Timeout)??;
        let mut link = Link {
            device: identity.device.clone(),
            stream,
            input: BytesMut::with_capacity(1024),
            last_pkid: 0,
            inbox: VecDeque::new(),
            timeout: options.timeout,
            keep_alive: options.keep_alive,
            session_present: false,
        };
        let client_id = options
            .client_id
            .clone()
            .unwrap_or_else(|| identity.device.to_string());
        let mut connect = rumqttc::v5::mqttbytes::v5::Connect {
            keep_alive: options.keep_alive,
            client_id,
            clean_start: options.clean_start,
            properties: Some(ConnectProperties {
                session_expiry_interval: Some(options.session_expiry),
                max_packet_size: Some(MAX_PACKET),
                ..ConnectProperties::new()
            }),
        };
        if options.session_expiry == 0 {
            connect.properties = None;
        }
        link.send(&Packet::Connect(connect, None, None)).await?;
        match link.read().await? {
            Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Success => {
                link.session_present = ack.session_present;
                Ok(link)
            }
            Packet::ConnAck(ack) => Err(LinkError::Refused(ack.code)),
            other => Err(LinkError::Protocol(format!(
                "expected CONNACK, got {other:?}"
            ))),
        }
    }

    /// The device this link speaks for.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// Publishes `payload` to `topic` at QoS 1 and waits for the hub's answer.
    pub async fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<Published, LinkError> {
        let pkid = self.next_pkid();
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload.to_vec(), None);
        publish.pkid = pkid;
        self.send(&Packet::Publish(publish)).await?;
        loop {
            match self.read().await? {
                Packet::PubAck(ack) if ack.pkid == pkid => {
                    return Ok(match ack.reason {
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => {
                            Published::Accepted
                        }
                        reason => Published::Refused(reason),
                    });
                }
                other => self.aside(other).await?,
            }
        }
    }

    /// Publishes at QoS 0 (the hub may lose it; nothing comes back).
    pub async fn publish_at_most_once(
        &mut self,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), LinkError> {
        let publish = Publish::new(topic, QoS::AtMostOnce, payload.to_vec(), None);
        self.send(&Packet::Publish(publish)).await
    }

    /// Subscribes to `filters` at QoS 1; whether each was granted.
    pub async fn subscribe(&mut self, filters: &[String]) -> Result<Vec<bool>, LinkError> {
        let pkid = self.next_pkid();
        let mut subscribe = Subscribe::new_many(
            filters
                .iter()
                .map(|f| rumqttc::v5::mqttbytes::v5::Filter::new(f.clone(), QoS::AtLeastOnce)),
            None,
        );
        subscribe.pkid = pkid;
        self.send(&Packet::Subscribe(subscribe)).await?;
        loop {
            match self.read().await? {
                Packet::SubAck(ack) if ack.pkid == pkid => {
                    return Ok(ack
                        .return_codes
                        .iter()
                        .map(|code| matches!(code, SubscribeReasonCode::Success(_)))
                        .collect());
                }
                other => self.aside(other).await?,
            }
        }
    }

    /// Sends PINGREQ and waits for PINGRESP: what keeps an idle connection open (the hub closes
    /// one that sends nothing for 1.5 × its keep-alive).
    pub async fn ping(&mut self) -> Result<(), LinkError> {
        self.send(&Packet::PingReq(rumqttc::v5::mqttbytes::v5::PingReq))
            .await?;
        loop {
            match self.read().await? {
                Packet::PingResp(_) => return Ok(()),
                other => self.aside(other).await?,
            }
        }
    }

    /// The keep-alive this link announced, seconds (0: none).
    pub fn keep_alive(&self) -> u16 {
        self.keep_alive
    }

    /// The next message from the hub, waiting up to `wait` for one.
    pub async fn next_message(&mut self, wait: Duration) -> Result<Option<Message>, LinkError> {
        if let Some(message) = self.inbox.pop_front() {
            return Ok(Some(message));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let packet = match tokio::time::timeout_at(deadline, self.read_packet()).await {
                Ok(packet) => packet?,
                Err(_) => return Ok(None),
            };
            self.aside(packet).await?;
            if let Some(message) = self.inbox.pop_front() {
                return Ok(Some(message));
            }
        }
    }

    /// Writes bytes as they are (a simulator plays broken or hostile devices with this).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Waits for the hub to close the connection; its DISCONNECT reason, if it sent one.
    pub async fn closed(&mut self) -> Result<Option<DisconnectReasonCode>, LinkError> {
        loop {
            match self.read().await {
                Ok(Packet::Disconnect(disconnect)) => return Ok(Some(disconnect.reason_code)),
                Ok(other) => self.aside(other).await?,
                Err(LinkError::Closed(reason)) => return Ok(reason),
                Err(error) => return Err(error),
            }
        }
    }

    /// Says goodbye (DISCONNECT, normal) and closes.
    pub async fn disconnect(mut self) -> Result<(), LinkError> {
        self.send(&Packet::Disconnect(Disconnect::new(
            DisconnectReasonCode::NormalDisconnection,
        )))
        .await?;
        self.stream.shutdown().await?;
        Ok(())
    }

    /// Handles a packet that is not the answer being waited for.
    async fn aside(&mut self, packet: Packet) -> Result<(), LinkError> {
        match packet {
            Packet::Publish(publish) => {
                if publish.qos == QoS::AtLeastOnce {
                    self.send(&Packet::PubAck(PubAck::new(publish.pkid, None)))
                        .await?;
                }
                self.inbox.push_back(Message {
                    topic: String::from_utf8_lossy(&publish.topic).into_owned(),
                    payload: publish.payload,
                    duplicate: publish.dup,
                });
                Ok(())
            }
            Packet::PingResp(_) => Ok(()),
            Packet::Disconnect(disconnect) => Err(LinkError::Closed(Some(disconnect.reason_code))),
            other => Err(LinkError::Protocol(format!("unexpected {other:?}"))),
        }
    }

    fn next_pkid(&mut self) -> u16 {
        self.last_pkid = self.last_pkid.checked_add(1).unwrap_or(1);
        self.last_pkid
    }

    async fn send(&mut self, packet: &Packet) -> Result<(), LinkError> {
        let mut out = BytesMut::new();
        packet
            .write(&mut out, Some(MAX_PACKET))
            .map_err(|e| LinkError::Protocol(format!("cannot encode: {e:?}")))?;
        self.stream.write_all(&out).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The next packet, within the link's timeout.
    async fn read(&mut self) -> Result<Packet, LinkError> {
        tokio::time::timeout(self.timeout, self.read_packet())
            .await
            .map_err(|_| LinkError::Timeout)?
    }

    async fn read_packet(&mut self) -> Result<Packet, LinkError> {
        loop {
            // A DISCONNECT may omit its reason code or its properties (MQTT 5.0 §3.14.2.1);
            // rumqttc's reader wants both.
            if self.input.starts_with(&[0xE0, 0x00]) {
                let _ = self.input.split_to(2);
                return Ok(Packet::Disconnect(Disconnect::new(
                    DisconnectReasonCode::NormalDisconnection,
                )));
            }
            if self.input.len() >= 3 && self.input.starts_with(&[0xE0, 0x01]) {
                let packet = self.input.split_to(3);
                let reason = DisconnectReasonCode::try_from(packet[2])
                    .unwrap_or(DisconnectReasonCode::UnspecifiedError);
                return Ok(Packet::Disconnect(Disconnect::new(reason)));
            }
            match Packet::read(&mut self.input, Some(MAX_PACKET)) {
                Ok(packet) => return Ok(packet),
                Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(error) => return Err(LinkError::Protocol(format!("{error:?}"))),
            }
            match self.stream.read_buf(&mut self.input).await {
                Ok(0) => return Err(LinkError::Closed(None)),
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(LinkError::Closed(None));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}
