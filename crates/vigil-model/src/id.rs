//! Identifiers of devices, patients and users.
//!
//! All three share one syntax so that an identifier can travel safely in an MQTT topic
//! (`vigil/v1/d/{id}/obs`), a certificate SAN (`urn:vigil:device:{id}`), a URL path and a log
//! line without escaping: 1 to 64 ASCII characters from `A-Z a-z 0-9 - .`, starting with a
//! letter or digit. `/`, `+` and `#` (MQTT topic syntax), `:` (URN separator), whitespace and
//! anything outside ASCII are refused.
//!
//! Device and patient ids are also the ids of their FHIR resources (`Device/{id}`,
//! `Patient/{id}`), so they keep to FHIR R4's id syntax (`[A-Za-z0-9\-\.]{1,64}`, FHIR R4
//! §2.24.0.1 "id"): no `_`. A user name may also hold `_` (`dr_smith`); it is never a FHIR id.
//!
//! A [`PatientId`] is Vigil's own pseudonymous identifier, not the medical record number: the
//! MRN, name and birth date are PHI and live in [`crate::phi`] types. That is why a patient id
//! may appear in audit entries and logs.
//!
//! Parse errors never echo the rejected text: a mistyped field could hold PHI.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The prefix of the URI that names a device in certificates and SenML packs:
/// `urn:vigil:device:<id>`.
pub const DEVICE_URN_PREFIX: &str = "urn:vigil:device:";

/// Longest identifier accepted, in bytes (all characters are ASCII).
pub const MAX_ID_LEN: usize = 64;

/// Why a text is not a valid identifier. Carries positions, never the rejected text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is empty.
    #[error("{kind} id is empty")]
    Empty {
        /// Which identifier was being parsed.
        kind: IdKind,
    },
    /// The text is longer than [`MAX_ID_LEN`].
    #[error("{kind} id is {len} bytes long; at most {MAX_ID_LEN} are allowed")]
    TooLong {
        /// Which identifier was being parsed.
        kind: IdKind,
        /// Length of the rejected text in bytes.
        len: usize,
    },
    /// A character outside the kind's set ([`IdKind::allowed`]).
    #[error(
        "{kind} id has a character that is not allowed at position {position} \
         (allowed: {})",
        kind.allowed()
    )]
    InvalidCharacter {
        /// Which identifier was being parsed.
        kind: IdKind,
        /// Zero-based character position of the first offending character.
        position: usize,
    },
    /// The first character is not a letter or a digit.
    #[error("{kind} id must start with a letter or a digit")]
    InvalidStart {
        /// Which identifier was being parsed.
        kind: IdKind,
    },
}

/// The kinds of identifier, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// A [`DeviceId`].
    Device,
    /// A [`PatientId`].
    Patient,
    /// A [`UserId`].
    User,
}

impl IdKind {
    /// The characters an id of this kind may hold, as error messages name them.
    pub fn allowed(self) -> &'static str {
        match self {
            IdKind::Device | IdKind::Patient => "A-Z a-z 0-9 - .",
            IdKind::User => "A-Z a-z 0-9 - _ .",
        }
    }

    fn allows(self, c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '-' || c == '.' || (c == '_' && self == IdKind::User)
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Device => "device",
            IdKind::Patient => "patient",
            IdKind::User => "user",
        })
    }
}

fn validate(kind: IdKind, text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if text.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            len: text.len(),
        });
    }
    if let Some(position) = text.chars().position(|c| !kind.allows(c)) {
        return Err(IdError::InvalidCharacter { kind, position });
    }
    if !text.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(IdError::InvalidStart { kind });
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an identifier.
            pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
                let text = text.into();
                validate($kind, &text)?;
                Ok(Self(text))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::new(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(text: String) -> Result<Self, IdError> {
                Self::new(text)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::new(text).map_err(serde::de::Error::custom)
            }
        }
    };
}

identifier!(
    /// A device's identifier: the `{id}` of its MQTT topics and of `urn:vigil:device:{id}`.
    DeviceId,
    IdKind::Device
);
identifier!(
    /// A patient's pseudonymous identifier inside Vigil (not the medical record number).
    PatientId,
    IdKind::Patient
);
identifier!(
    /// A person's user name (clinician, patient, officer, engineer, auditor, admin).
    UserId,
    IdKind::User
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_typical_ids() {
        for ok in [
            "pump-0042",
            "ICU.bed7",
            "a",
            "0",
            "cgm-9f3e",
            &"x".repeat(MAX_ID_LEN),
        ] {
            assert_eq!(DeviceId::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(UserId::new("dr_smith").unwrap().as_str(), "dr_smith");
    }

    #[test]
    fn device_and_patient_ids_are_fhir_ids_so_refuse_an_underscore() {
        assert_eq!(
            DeviceId::new("cgm_9f3e"),
            Err(IdError::InvalidCharacter {
                kind: IdKind::Device,
                position: 3
            })
        );
        let refused = PatientId::new("p_1").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "patient id has a character that is not allowed at position 1 (allowed: A-Z a-z 0-9 - .)"
        );
    }

    #[test]
    fn refuses_each_invalid_form_with_its_reason() {
        assert_eq!(
            DeviceId::new(""),
            Err(IdError::Empty {
                kind: IdKind::Device
            })
        );
        assert_eq!(
            PatientId::new("p".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong {
                kind: IdKind::Patient,
                len: MAX_ID_LEN + 1
            })
        );
        for (bad, position) in [
            ("a/b", 1),
            ("a+", 1),
            ("#", 0),
            ("dev ice", 3),
            ("urn:x", 3),
            ("é", 0),
            ("ab\n", 2),
        ] {
            assert_eq!(
                UserId::new(bad),
                Err(IdError::InvalidCharacter {
                    kind: IdKind::User,
                    position
                }),
                "{bad:?}"
            );
        }
        for bad in ["-a", ".a"] {
            assert_eq!(
                DeviceId::new(bad),
                Err(IdError::InvalidStart {
                    kind: IdKind::Device
                })
            );
        }
        assert_eq!(
            UserId::new("_a"),
            Err(IdError::InvalidStart { kind: IdKind::User })
        );
    }

    #[test]
    fn error_text_never_echoes_the_input() {
        let secret = "Jane Doe 1970-01-01";
        let message = PatientId::new(secret).unwrap_err().to_string();
        assert!(!message.contains("Jane"), "{message}");
        assert_eq!(
            message,
            "patient id has a character that is not allowed at position 4 (allowed: A-Z a-z 0-9 - .)"
        );
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let id: DeviceId = serde_json::from_str("\"oxi-1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"oxi-1\"");
        assert!(serde_json::from_str::<DeviceId>("\"oxi/1\"").is_err());
    }

    proptest! {
        #[test]
        fn valid_ids_round_trip(text in "[A-Za-z0-9][A-Za-z0-9.-]{0,63}") {
            let id = DeviceId::new(text.clone()).unwrap();
            prop_assert_eq!(id.to_string(), text.clone());
            prop_assert_eq!(text.parse::<DeviceId>().unwrap(), id);
        }

        #[test]
        fn valid_user_names_round_trip(text in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}") {
            let id = UserId::new(text.clone()).unwrap();
            prop_assert_eq!(text.parse::<UserId>().unwrap(), id);
        }

        #[test]
        fn anything_else_is_refused_without_panic(text in ".*") {
            let valid = !text.is_empty()
                && text.len() <= MAX_ID_LEN
                && text.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
                && text.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
            prop_assert_eq!(DeviceId::new(text).is_ok(), valid);
        }
    }
}
