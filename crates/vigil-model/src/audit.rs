//! Audit entries: who did what to which resource, with what outcome. Never PHI.
//!
//! An entry names people and devices by their Vigil identifiers and resources by kind and id;
//! patient ids are pseudonyms (see [`crate::id`]). Free text is limited to a short `reason`
//! whose constructor refuses control characters and overlong text; callers must not put patient
//! details in it (break-glass reasons are chosen from a list for that purpose).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{DeviceId, UserId};
use crate::timestamp::Timestamp;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// An authenticated device.
    Device(DeviceId),
    /// An authenticated person.
    User(UserId),
    /// The hub itself (a scheduled job, a detector, startup).
    System,
    /// A peer that did not authenticate; `id` is what it claimed or its network address.
    Unauthenticated(String),
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Read a resource.
    Read,
    /// Created a resource.
    Create,
    /// Changed a resource.
    Update,
    /// Deleted a resource.
    Delete,
    /// Stored a batch of observations.
    Ingest,
    /// Signed in.
    Login,
    /// Signed out.
    Logout,
    /// Enrolled a device (certificate issued from a CSR).
    Enroll,
    /// Renewed a device certificate.
    Renew,
    /// Revoked a device certificate.
    Revoke,
    /// Connected (a device over MQTT or HTTPS).
    Connect,
    /// Sent a command to a device.
    Command,
    /// Approved another person's command.
    Approve,
    /// Changed configuration.
    Configure,
    /// Opened a record outside the care team in an emergency.
    BreakGlass,
    /// Granted or withdrew consent.
    Consent,
    /// Erased a patient's data (crypto-shredding).
    Erase,
    /// Rotated keys.
    RotateKeys,
    /// Published or installed firmware.
    Firmware,
}

/// The kinds of resource an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResourceKind {
    /// A device.
    Device,
    /// A patient's record.
    Patient,
    /// Observations of a patient.
    Observation,
    /// An alert.
    Alert,
    /// A user account.
    User,
    /// A certificate.
    Certificate,
    /// The hub's configuration.
    Configuration,
    /// A key or keyring.
    Key,
    /// An MQTT topic.
    Topic,
    /// The audit log.
    AuditLog,
    /// A firmware image or update metadata.
    Firmware,
}

/// The resource an action applied to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resource {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its identifier (a Vigil id, a serial number, a topic); never PHI.
    pub id: String,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Success,
    /// Refused by authentication, authorisation or a safety rule.
    Denied,
    /// Attempted and failed.
    Failed,
}

/// A short reason: at most [`Reason::MAX_LEN`] bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

/// A reason that is too long or holds control characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    /// Longer than [`Reason::MAX_LEN`].
    #[error("reason is longer than {} bytes", Reason::MAX_LEN)]
    TooLong,
    /// Holds a control character (it could forge lines in a log).
    #[error("reason holds a control character")]
    ControlCharacter,
}

impl Reason {
    /// Longest reason, in bytes.
    pub const MAX_LEN: usize = 200;

    /// Validates a reason.
    pub fn new(text: impl Into<String>) -> Result<Self, ReasonError> {
        let text = text.into();
        if text.len() > Self::MAX_LEN {
            return Err(ReasonError::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(ReasonError::ControlCharacter);
        }
        Ok(Self(text))
    }

    /// The reason as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = ReasonError;
    fn try_from(text: String) -> Result<Self, ReasonError> {
        Self::new(text)
    }
}

impl From<Reason> for String {
    fn from(reason: Reason) -> String {
        reason.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened, by the hub's clock.
    pub time: Timestamp,
    /// Who acted.
    pub actor: Actor,
    /// What was done.
    pub action: Action,
    /// To what.
    pub resource: Resource,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, where there is a reason to give (a refusal's cause, a break-glass justification).
    pub reason: Option<Reason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_stable_json() {
        let entry = AuditEntry {
            time: Timestamp::from_unix_millis(1_764_403_200_000).unwrap(),
            actor: Actor::User(UserId::new("dr.house").unwrap()),
            action: Action::BreakGlass,
            resource: Resource {
                kind: ResourceKind::Patient,
                id: "p-17".into(),
            },
            outcome: Outcome::Success,
            reason: Some(Reason::new("emergency: unresponsive on arrival").unwrap()),
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            json,
            r#"{"time":1764403200000,"actor":{"type":"user","id":"dr.house"},"action":"break_glass","resource":{"kind":"patient","id":"p-17"},"outcome":"success","reason":"emergency: unresponsive on arrival"}"#
        );
        assert_eq!(serde_json::from_str::<AuditEntry>(&json).unwrap(), entry);
    }

    #[test]
    fn reasons_refuse_log_forging_and_overlong_text() {
        assert_eq!(
            Reason::new("ok\nFAKE LINE"),
            Err(ReasonError::ControlCharacter)
        );
        assert_eq!(Reason::new("x".repeat(201)), Err(ReasonError::TooLong));
        assert!(serde_json::from_str::<Reason>("\"a\\u0007\"").is_err());
    }
}
