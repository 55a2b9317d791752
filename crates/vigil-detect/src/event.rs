//! What the hub tells detection.

use std::net::IpAddr;

use vigil_model::{DeviceClass, DeviceId, PatientId, Phi, Quantity, Timestamp};

/// One reading of a stored pack, in its quantity's canonical unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// What was measured.
    pub quantity: Quantity,
    /// The value, canonical unit (PHI).
    pub value: Phi<f64>,
    /// When it was measured.
    pub time: Timestamp,
}

/// Something a device or an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Publishing or subscribing outside the device's own topics.
    ForeignTopic,
    /// Bytes that are not a valid packet of the protocol.
    MalformedPacket,
    /// An MQTT client id that is not the certificate's device.
    ClientIdMismatch,
    /// An enrolment token that is spent, expired, forged or unknown.
    EnrolmentToken,
    /// A client certificate that is not from the hospital CA, expired, or otherwise invalid.
    BadCertificate,
    /// A revoked device certificate.
    RevokedCertificate,
    /// A pack that is not valid SenML in Vigil's profile, or names what the device may not send.
    InvalidPayload,
}

impl Refusal {
    /// Stable name, for evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ForeignTopic => "foreign_topic",
            Refusal::MalformedPacket => "malformed_packet",
            Refusal::ClientIdMismatch => "client_id_mismatch",
            Refusal::EnrolmentToken => "enrolment_token",
            Refusal::BadCertificate => "bad_certificate",
            Refusal::RevokedCertificate => "revoked_certificate",
            Refusal::InvalidPayload => "invalid_payload",
        }
    }
}

/// Something that happened at the hub.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A pack of observations was committed.
    Stored {
        /// When the hub received it.
        at: Timestamp,
        /// The device that sent it.
        device: DeviceId,
        /// Its class.
        class: DeviceClass,
        /// The patient it serves.
        patient: PatientId,
        /// The pack's sequence number.
        sequence: u64,
        /// The size of the message that carried it, bytes (for rate baselines).
        bytes: usize,
        /// Its readings (including any stored flagged as implausible).
        readings: Vec<Reading>,
        /// Readings newly stored.
        stored: usize,
        /// Readings that were already stored (a redelivery or a replay).
        duplicates: usize,
    },
    /// A device connected (MQTT session opened).
    Connected {
        /// When.
        at: Timestamp,
        /// The device, from its certificate.
        device: DeviceId,
        /// From where.
        address: IpAddr,
        /// The address of a connection of the same device that was still open and that this
        /// one took over: the same certificate in two places at once.
        took_over: Option<IpAddr>,
    },
    /// A device went over its message rate for long enough to be cut off (the start of a
    /// flood episode).
    Flooding {
        /// When.
        at: Timestamp,
        /// The device.
        device: DeviceId,
        /// How long it had been over its rate, milliseconds.
        over_for_ms: u64,
    },
    /// The hub refused something.
    Refused {
        /// When.
        at: Timestamp,
        /// The device, when it is known (authenticated, or named by the token).
        device: Option<DeviceId>,
        /// The address it came from, when known.
        address: Option<IpAddr>,
        /// What was refused.
        refusal: Refusal,
    },
}

impl Event {
    /// When it happened.
    pub fn at(&self) -> Timestamp {
        match self {
            Event::Stored { at, .. }
            | Event::Connected { at, .. }
            | Event::Flooding { at, .. }
            | Event::Refused { at, .. } => *at,
        }
    }
}
