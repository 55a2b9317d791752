//! MQTT 3.1.1 and 5.0 on the wire, through rumqttc's packet codecs (ADR 0008): the session sees
//! one vocabulary of [`Inbound`] packets and [`Outbound`] answers whatever the version.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::{QoS as V5QoS, v5};

/// The protocol version a client connected with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

/// Largest packet accepted (a SenML pack of 64 KiB plus topic and headers).
pub const MAX_PACKET: usize = 64 * 1024 + 1024;

/// What a client sent, in either version.
#[derive(Debug)]
pub enum Inbound {
    /// CONNECT.
    Connect {
        /// Client identifier (may be empty).
        client_id: String,
        /// Keep-alive in seconds (0: none).
        keep_alive: u16,
        /// Start afresh, discarding a previous session (3.1.1 Clean Session, 5.0 Clean Start).
        clean_start: bool,
        /// How long the session should outlive the connection, in seconds (version 5 Session
        /// Expiry Interval; `None` in 3.1.1, where a session that is not clean lasts "forever").
        session_expiry: Option<u32>,
    },
    /// PUBLISH.
    Publish {
        /// Topic name.
        topic: String,
        /// 0, 1 or 2.
        qos: u8,
        /// Packet identifier (QoS > 0).
        pkid: u16,
        /// Payload.
        payload: bytes::Bytes,
        /// Version 5 Content Type property, if sent.
        content_type: Option<String>,
    },
    /// PUBACK of a message the hub sent.
    PubAck {
        /// Packet identifier.
        pkid: u16,
    },
    /// SUBSCRIBE.
    Subscribe {
        /// Packet identifier.
        pkid: u16,
        /// Topic filters.
        filters: Vec<String>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// Packet identifier.
        pkid: u16,
        /// Topic filters.
        filters: Vec<String>,
    },
    /// PINGREQ.
    PingReq,
    /// DISCONNECT.
    Disconnect,
    /// Anything a client may not send to a server here (CONNACK, PUBREL without QoS 2, AUTH…).
    Unexpected,
}

/// Why a packet could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// More bytes are needed.
    Incomplete,
    /// Larger than [`MAX_PACKET`].
    TooLarge,
    /// Not a valid packet.
    Malformed,
}

/// Why a subscription or publication was refused, in version-neutral words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not this device's topic.
    NotAuthorized,
    /// The payload is not an acceptable observation pack.
    PayloadInvalid,
    /// The hub is busy.
    QuotaExceeded,
    /// Something failed in the hub.
    Internal,
}

/// What the server sends.
#[derive(Debug)]
pub enum Outbound {
    /// CONNACK: accepted, or refused.
    ConnAck(Result<Accepted, ConnectRefusal>),
    /// PUBLISH at QoS 1 of a queued message.
    Publish {
        /// Topic name.
        topic: String,
        /// Packet identifier.
        pkid: u16,
        /// Payload.
        payload: bytes::Bytes,
        /// A resend of a message sent on an earlier connection.
        dup: bool,
        /// Seconds left before the message expires (version 5 Message Expiry Interval).
        expires_in: u32,
    },
    /// PUBACK, with the refusal where version 5 can carry one.
    PubAck(u16, Option<Refusal>),
    /// SUBACK with one result per filter (`true`: granted at QoS 1).
    SubAck(u16, Vec<bool>),
    /// UNSUBACK.
    UnsubAck(u16, usize),
    /// PINGRESP.
    PingResp,
    /// DISCONNECT with a version 5 reason (version 3.1.1 just closes).
    Disconnect(v5::DisconnectReasonCode),
}

/// An accepted CONNECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The client id the hub assigned (the client sent an empty one).
    pub assigned_client_id: Option<String>,
    /// The hub resumed a session of this client.
    pub session_present: bool,
    /// Version 5: the session expiry the hub grants, when it is less than the client asked.
    pub session_expiry: Option<u32>,
}

/// Largest payload of a message the hub sends (the rest of [`MAX_PACKET`] holds the topic and
/// properties).
pub const MAX_OUTBOUND_PAYLOAD: usize = 64 * 1024;

/// Why a CONNECT was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefusal {
    /// The client id is not the certificate's device id.
    ClientIdNotValid,
    /// The protocol level is neither 4 nor 5.
    UnsupportedVersion,
}

/// The length of the packet at the start of `buffer` (fixed header and remaining length),
/// once its fixed header has arrived; `None` before, or if its remaining length is malformed
/// (more than four bytes).
pub fn frame_len(buffer: &[u8]) -> Option<usize> {
    fixed_header(buffer).map(|(header, remaining)| header + remaining)
}

/// The fixed header at the start of `buffer`: its length (type byte and 1 to 4 bytes of
/// remaining length in 7-bit groups) and the remaining length it declares.
fn fixed_header(buffer: &[u8]) -> Option<(usize, usize)> {
    let mut remaining = 0usize;
    for (index, byte) in buffer.iter().skip(1).take(4).enumerate() {
        remaining |= usize::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((1 + index + 1, remaining));
        }
    }
    None
}

/// The protocol level of a complete CONNECT packet at the start of `buffer`, without consuming
/// it: 4 for 3.1.1, 5 for 5.0. `None` if the buffer does not start with a CONNECT yet.
pub fn connect_level(buffer: &[u8]) -> Option<u8> {
    if buffer.first().map(|b| b >> 4) != Some(1) {
        return None;
    }
    let (offset, _) = fixed_header(buffer)?;
    let name_len = usize::from(u16::from_be_bytes([
        *buffer.get(offset)?,
        *buffer.get(offset + 1)?,
    ]));
    buffer.get(offset + 2 + name_len).copied()
}

/// Reads one packet of `version` from `buffer`, consuming it.
pub fn read(version: Version, buffer: &mut BytesMut) -> Result<Inbound, ReadError> {
    match version {
        Version::V311 => match v4::Packet::read(buffer, MAX_PACKET) {
            Ok(packet) => Ok(from_v4(packet)),
            Err(v4_error) => Err(read_error_v4(&v4_error)),
        },
        Version::V5 => {
            // MQTT 5.0 §3.14.2.1: a DISCONNECT may omit its reason code (remaining length 0)
            // or its properties (remaining length 1); rumqttc's reader refuses both.
            match buffer.get(..2) {
                Some([0xE0, 0x00]) => {
                    let _ = buffer.split_to(2);
                    return Ok(Inbound::Disconnect);
                }
                Some([0xE0, 0x01]) if buffer.len() >= 3 => {
                    let _ = buffer.split_to(3);
                    return Ok(Inbound::Disconnect);
                }
                Some([0xE0, 0x01]) => return Err(ReadError::Incomplete),
                _ => {}
            }
            let max = u32::try_from(MAX_PACKET).unwrap_or(u32::MAX);
            match v5::Packet::read(buffer, Some(max)) {
                Ok(packet) => Ok(from_v5(packet)),
                Err(v5_error) => Err(read_error_v5(&v5_error)),
            }
        }
    }
}

fn read_error_v4(error: &rumqttc::mqttbytes::Error) -> ReadError {
    use rumqttc::mqttbytes::Error as E;
    match error {
        E::InsufficientBytes(_) => ReadError::Incomplete,
        E::PayloadSizeLimitExceeded(_) => ReadError::TooLarge,
        _ => ReadError::Malformed,
    }
}

fn read_error_v5(error: &rumqttc::v5::mqttbytes::Error) -> ReadError {
    use rumqttc::v5::mqttbytes::Error as E;
    match error {
        E::InsufficientBytes(_) => ReadError::Incomplete,
        E::PayloadSizeLimitExceeded { .. } => ReadError::TooLarge,
        _ => ReadError::Malformed,
    }
}

fn qos_number(qos: rumqttc::mqttbytes::QoS) -> u8 {
    match qos {
        rumqttc::mqttbytes::QoS::AtMostOnce => 0,
        rumqttc::mqttbytes::QoS::AtLeastOnce => 1,
        rumqttc::mqttbytes::QoS::ExactlyOnce => 2,
    }
}

fn from_v4(packet: v4::Packet) -> Inbound {
    match packet {
        v4::Packet::Connect(connect) => Inbound::Connect {
            client_id: connect.client_id,
            keep_alive: connect.keep_alive,
            clean_start: connect.clean_session,
            session_expiry: None,
        },
        v4::Packet::Publish(publish) => Inbound::Publish {
            topic: publish.topic,
            qos: qos_number(publish.qos),
            pkid: publish.pkid,
            payload: publish.payload,
            content_type: None,
        },
        v4::Packet::PubAck(ack) => Inbound::PubAck { pkid: ack.pkid },
        v4::Packet::Subscribe(subscribe) => Inbound::Subscribe {
            pkid: subscribe.pkid,
            filters: subscribe.filters.into_iter().map(|f| f.path).collect(),
        },
        v4::Packet::Unsubscribe(unsubscribe) => Inbound::Unsubscribe {
            pkid: unsubscribe.pkid,
            filters: unsubscribe.topics,
        },
        v4::Packet::PingReq => Inbound::PingReq,
        v4::Packet::Disconnect => Inbound::Disconnect,
        _ => Inbound::Unexpected,
    }
}

fn from_v5(packet: v5::Packet) -> Inbound {
    match packet {
        v5::Packet::Connect(connect, _, _) => Inbound::Connect {
            client_id: connect.client_id,
            keep_alive: connect.keep_alive,
            clean_start: connect.clean_start,
            // Absent means 0: the session ends with the connection (MQTT 5.0 §3.1.2.11.2).
            session_expiry: Some(
                connect
                    .properties
                    .and_then(|p| p.session_expiry_interval)
                    .unwrap_or(0),
            ),
        },
        v5::Packet::Publish(publish) => Inbound::Publish {
            // A topic that is not UTF-8 can match no allowed topic; it is refused there.
            topic: String::from_utf8(publish.topic.to_vec()).unwrap_or_default(),
            qos: match publish.qos {
                V5QoS::AtMostOnce => 0,
                V5QoS::AtLeastOnce => 1,
                V5QoS::ExactlyOnce => 2,
            },
            pkid: publish.pkid,
            payload: publish.payload,
            content_type: publish.properties.and_then(|p| p.content_type),
        },
        v5::Packet::PubAck(ack) => Inbound::PubAck { pkid: ack.pkid },
        v5::Packet::Subscribe(subscribe) => Inbound::Subscribe {
            pkid: subscribe.pkid,
            filters: subscribe.filters.into_iter().map(|f| f.path).collect(),
        },
        v5::Packet::Unsubscribe(unsubscribe) => Inbound::Unsubscribe {
            pkid: unsubscribe.pkid,
            filters: unsubscribe.filters,
        },
        v5::Packet::PingReq(_) => Inbound::PingReq,
        v5::Packet::Disconnect(_) => Inbound::Disconnect,
        _ => Inbound::Unexpected,
    }
}

/// Encodes an answer; `None` when version 3.1.1 has no packet for it (the caller closes).
pub fn write(version: Version, answer: &Outbound, out: &mut BytesMut) -> Option<()> {
    match version {
        Version::V311 => write_v4(answer, out),
        Version::V5 => write_v5(answer, out),
    }
}

fn write_v4(answer: &Outbound, out: &mut BytesMut) -> Option<()> {
    let packet = match answer {
        Outbound::ConnAck(Ok(accepted)) => v4::Packet::ConnAck(v4::ConnAck::new(
            v4::ConnectReturnCode::Success,
            accepted.session_present,
        )),
        Outbound::Publish {
            topic,
            pkid,
            payload,
            dup,
            ..
        } => {
            let mut publish = v4::Publish::new(
                topic.as_str(),
                rumqttc::mqttbytes::QoS::AtLeastOnce,
                payload.to_vec(),
            );
            publish.pkid = *pkid;
            publish.dup = *dup;
            v4::Packet::Publish(publish)
        }
        Outbound::ConnAck(Err(ConnectRefusal::ClientIdNotValid)) => {
            v4::Packet::ConnAck(v4::ConnAck::new(v4::ConnectReturnCode::BadClientId, false))
        }
        Outbound::ConnAck(Err(ConnectRefusal::UnsupportedVersion)) => v4::Packet::ConnAck(
            v4::ConnAck::new(v4::ConnectReturnCode::RefusedProtocolVersion, false),
        ),
        // 3.1.1 has no way to refuse one publication but closing the connection.
        Outbound::PubAck(_, Some(_)) | Outbound::Disconnect(_) => return None,
        Outbound::PubAck(pkid, None) => v4::Packet::PubAck(v4::PubAck::new(*pkid)),
        Outbound::SubAck(pkid, granted) => v4::Packet::SubAck(v4::SubAck::new(
            *pkid,
            granted
                .iter()
                .map(|ok| {
                    if *ok {
                        v4::SubscribeReasonCode::Success(rumqttc::mqttbytes::QoS::AtLeastOnce)
                    } else {
                        v4::SubscribeReasonCode::Failure
                    }
                })
                .collect(),
        )),
        Outbound::UnsubAck(pkid, _) => v4::Packet::UnsubAck(v4::UnsubAck::new(*pkid)),
        Outbound::PingResp => v4::Packet::PingResp,
    };
    packet.write(out, MAX_PACKET).ok().map(|_| ())
}

fn write_v5(answer: &Outbound, out: &mut BytesMut) -> Option<()> {
    if let Outbound::Disconnect(reason) = answer {
        // Written here: rumqttc declares a remaining length of 1 for a reason code without
        // properties, then writes a property length byte after it (a stray byte on the wire).
        // Reason code, then a property length of 0: MQTT 5.0 §3.14.
        out.extend_from_slice(&[0xE0, 0x02, *reason as u8, 0x00]);
        return Some(());
    }
    let max = u32::try_from(MAX_PACKET).unwrap_or(u32::MAX);
    let packet = match answer {
        Outbound::ConnAck(result) => {
            let (code, accepted) = match result {
                Ok(accepted) => (v5::ConnectReturnCode::Success, accepted.clone()),
                Err(ConnectRefusal::ClientIdNotValid) => (
                    v5::ConnectReturnCode::ClientIdentifierNotValid,
                    Accepted::default(),
                ),
                Err(ConnectRefusal::UnsupportedVersion) => (
                    v5::ConnectReturnCode::UnsupportedProtocolVersion,
                    Accepted::default(),
                ),
            };
            let properties = v5::ConnAckProperties {
                session_expiry_interval: accepted.session_expiry,
                receive_max: Some(RECEIVE_MAXIMUM),
                max_qos: Some(1),
                retain_available: Some(0),
                max_packet_size: Some(max),
                assigned_client_identifier: accepted.assigned_client_id,
                topic_alias_max: None,
                reason_string: None,
                user_properties: Vec::new(),
                wildcard_subscription_available: Some(0),
                subscription_identifiers_available: Some(0),
                shared_subscription_available: Some(0),
                server_keep_alive: None,
                response_information: None,
                server_reference: None,
                authentication_method: None,
                authentication_data: None,
            };
            v5::Packet::ConnAck(v5::ConnAck {
                session_present: accepted.session_present,
                code,
                properties: Some(properties),
            })
        }
        Outbound::Publish {
            topic,
            pkid,
            payload,
            dup,
            expires_in,
        } => {
            let mut publish =
                v5::Publish::new(topic.as_str(), V5QoS::AtLeastOnce, payload.clone(), None);
            publish.pkid = *pkid;
            publish.dup = *dup;
            publish.properties = Some(v5::PublishProperties {
                message_expiry_interval: Some(*expires_in),
                ..Default::default()
            });
            v5::Packet::Publish(publish)
        }
        Outbound::PubAck(pkid, refusal) => v5::Packet::PubAck(v5::PubAck {
            pkid: *pkid,
            reason: match refusal {
                None => v5::PubAckReason::Success,
                Some(Refusal::NotAuthorized) => v5::PubAckReason::NotAuthorized,
                Some(Refusal::PayloadInvalid) => v5::PubAckReason::PayloadFormatInvalid,
                Some(Refusal::QuotaExceeded) => v5::PubAckReason::QuotaExceeded,
                Some(Refusal::Internal) => v5::PubAckReason::ImplementationSpecificError,
            },
            properties: None,
        }),
        Outbound::SubAck(pkid, granted) => v5::Packet::SubAck(v5::SubAck {
            pkid: *pkid,
            return_codes: granted
                .iter()
                .map(|ok| {
                    if *ok {
                        v5::SubscribeReasonCode::Success(V5QoS::AtLeastOnce)
                    } else {
                        v5::SubscribeReasonCode::NotAuthorized
                    }
                })
                .collect(),
            properties: None,
        }),
        Outbound::UnsubAck(pkid, count) => v5::Packet::UnsubAck(v5::UnsubAck {
            pkid: *pkid,
            reasons: vec![v5::UnsubAckReason::Success; *count],
            properties: None,
        }),
        Outbound::PingResp => v5::Packet::PingResp(v5::PingResp),
        Outbound::Disconnect(reason) => v5::Packet::Disconnect(v5::Disconnect {
            reason_code: *reason,
            properties: None,
        }),
    };
    packet.write(out, Some(max)).ok().map(|_| ())
}

/// QoS 1 publications a client may have unacknowledged at once (version 5 Receive Maximum).
pub const RECEIVE_MAXIMUM: u16 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_reads_the_fixed_header() {
        let mut buffer = BytesMut::new();
        v4::Packet::Connect(v4::Connect::new("dev-1"))
            .write(&mut buffer, 1024)
            .unwrap();
        assert_eq!(frame_len(&buffer), Some(buffer.len()));
        assert_eq!(frame_len(&buffer[..1]), None);
        assert_eq!(frame_len(&[0x30, 0x00]), Some(2));
        // 321 = 0xC1 0x02: two length bytes.
        assert_eq!(frame_len(&[0x30, 0xc1, 0x02]), Some(1 + 2 + 321));
        assert_eq!(
            frame_len(&[0x30, 0xff, 0xff, 0xff, 0x7f]),
            Some(1 + 4 + 268_435_455)
        );
        assert_eq!(frame_len(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), None);
    }

    #[test]
    fn finds_the_protocol_level_of_a_connect() {
        let mut buffer = BytesMut::new();
        v4::Packet::Connect(v4::Connect::new("dev-1"))
            .write(&mut buffer, 1024)
            .unwrap();
        assert_eq!(connect_level(&buffer), Some(4));
        assert_eq!(connect_level(&[0x10]), None);
        assert_eq!(connect_level(&[0x30, 0, 0]), None);
        assert_eq!(connect_level(&[]), None);
        assert_eq!(connect_level(&[0x10, 0xff, 0xff, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn a_version_5_disconnect_without_reason_code_is_a_normal_disconnect() {
        // What rumqttc, paho and mosquitto send for a normal disconnection: E0 00.
        let mut buffer = BytesMut::new();
        v5::Packet::Disconnect(v5::Disconnect::new(
            v5::DisconnectReasonCode::NormalDisconnection,
        ))
        .write(&mut buffer, None)
        .unwrap();
        assert_eq!(&buffer[..], &[0xE0, 0x00]);
        buffer.extend_from_slice(&[0xC0, 0x00]); // and a PINGREQ after it
        assert!(matches!(
            read(Version::V5, &mut buffer),
            Ok(Inbound::Disconnect)
        ));
        assert!(matches!(
            read(Version::V5, &mut buffer),
            Ok(Inbound::PingReq)
        ));
        // With a reason code it goes through the codec as before.
        let mut buffer = BytesMut::from(&[0xE0, 0x01, 0x04][..]);
        assert!(matches!(
            read(Version::V5, &mut buffer),
            Ok(Inbound::Disconnect)
        ));
    }

    #[test]
    fn a_version_5_disconnect_is_written_exactly() {
        let mut out = BytesMut::new();
        write(
            Version::V5,
            &Outbound::Disconnect(v5::DisconnectReasonCode::KeepAliveTimeout),
            &mut out,
        )
        .unwrap();
        assert_eq!(&out[..], &[0xE0, 0x02, 0x8D, 0x00]);
        // An independent reader takes it whole, leaving nothing behind.
        let packet = v5::Packet::read(&mut out, None).unwrap();
        assert!(matches!(
            packet,
            v5::Packet::Disconnect(d) if d.reason_code == v5::DisconnectReasonCode::KeepAliveTimeout
        ));
        assert!(out.is_empty());
    }
}
