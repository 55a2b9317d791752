//! The hub-to-device half of a session: which of its topics a device subscribes to, and the one
//! queued message in flight to it.
//!
//! One message at a time: commands and update notices are rare, and one in flight keeps their
//! order without any window bookkeeping. The message counts as delivered when the device
//! acknowledges it (PUBACK); a message unacknowledged when the connection ends is sent again,
//! marked duplicate, on the next one.

use vigil_model::{DeviceId, Timestamp};
use vigil_store::{Channel, SessionRecord};

use super::codec::Outbound;
use crate::outbox::Outbox;

/// The longest a session outlives its connection, whatever the client asks: a device away for
/// longer starts afresh (its queued messages wait on, until they expire).
pub const MAX_SESSION_EXPIRY: u32 = 7 * 24 * 3600;

/// A session's subscriptions and its message in flight.
#[derive(Debug, Default)]
pub struct Delivery {
    commands: bool,
    firmware: bool,
    in_flight: Option<(u16, u64)>,
    last_pkid: u16,
}

impl Delivery {
    /// A session resuming `record`'s subscriptions (or a fresh one).
    pub fn resume(record: Option<&SessionRecord>) -> Delivery {
        Delivery {
            commands: record.is_some_and(|r| r.commands),
            firmware: record.is_some_and(|r| r.firmware),
            ..Delivery::default()
        }
    }

    /// What to store of this session.
    pub fn record(&self, expiry_seconds: u32, ended_at: Option<Timestamp>) -> SessionRecord {
        SessionRecord {
            commands: self.commands,
            firmware: self.firmware,
            expiry_seconds,
            ended_at,
        }
    }

    /// Subscribes to or unsubscribes from `channel`.
    pub fn set(&mut self, channel: Channel, on: bool) {
        match channel {
            Channel::Commands => self.commands = on,
            Channel::Firmware => self.firmware = on,
        }
    }

    fn channels(&self) -> Vec<Channel> {
        let mut channels = Vec::with_capacity(2);
        if self.commands {
            channels.push(Channel::Commands);
        }
        if self.firmware {
            channels.push(Channel::Firmware);
        }
        channels
    }

    /// The next queued message to send, if the device subscribes to its topic and nothing is in
    /// flight. A store failure is logged and leaves the message queued.
    pub async fn next(
        &mut self,
        outbox: &Outbox,
        device: &DeviceId,
        topic: impl Fn(Channel) -> String,
    ) -> Option<Outbound> {
        let channels = self.channels();
        if self.in_flight.is_some() || channels.is_empty() {
            return None;
        }
        let message = match outbox.next_for(device, &channels).await {
            Ok(message) => message?,
            Err(error) => {
                tracing::error!(device = %device, %error, "queued messages could not be read");
                return None;
            }
        };
        self.last_pkid = self.last_pkid.checked_add(1).unwrap_or(1);
        self.in_flight = Some((self.last_pkid, message.id));
        let left_ms = message.expires_at.unix_millis() - Timestamp::now().unix_millis();
        Some(Outbound::Publish {
            topic: topic(message.channel),
            pkid: self.last_pkid,
            payload: message.payload.into(),
            dup: message.attempts > 0,
            expires_in: u32::try_from((left_ms / 1000).max(1)).unwrap_or(u32::MAX),
        })
    }

    /// The device acknowledged `pkid`: the id of the message it delivered, if it was ours.
    pub fn acknowledged(&mut self, pkid: u16) -> Option<u64> {
        match self.in_flight {
            Some((sent, message)) if sent == pkid => {
                self.in_flight = None;
                Some(message)
            }
            _ => None,
        }
    }
}

/// The session expiry the hub grants: what a version 5 client asks, capped; a 3.1.1 client
/// asking for a persistent session (Clean Session 0) gets the cap.
pub fn granted_expiry(clean_start: bool, asked: Option<u32>) -> u32 {
    match asked {
        Some(asked) => asked.min(MAX_SESSION_EXPIRY),
        None if clean_start => 0,
        None => MAX_SESSION_EXPIRY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_capped_and_follows_the_version() {
        assert_eq!(granted_expiry(true, Some(60)), 60);
        assert_eq!(granted_expiry(false, Some(u32::MAX)), MAX_SESSION_EXPIRY);
        assert_eq!(granted_expiry(true, None), 0);
        assert_eq!(granted_expiry(false, None), MAX_SESSION_EXPIRY);
    }

    #[test]
    fn only_the_message_in_flight_is_acknowledged() {
        let mut delivery = Delivery::default();
        assert_eq!(delivery.acknowledged(1), None);
        delivery.in_flight = Some((7, 42));
        assert_eq!(delivery.acknowledged(8), None);
        assert_eq!(delivery.acknowledged(7), Some(42));
        assert_eq!(delivery.acknowledged(7), None);
    }
}
