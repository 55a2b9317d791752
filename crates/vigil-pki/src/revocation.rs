//! Revocation: reasons and revoked-certificate entries for the CRL.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

/// Why a certificate was revoked (the RFC 5280 §5.3.1 reasons that apply to devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// No reason given.
    Unspecified,
    /// The device's key is, or may be, in someone else's hands.
    KeyCompromise,
    /// The device moved to another owner or site.
    AffiliationChanged,
    /// Replaced by a newer certificate.
    Superseded,
    /// The device is retired.
    CessationOfOperation,
    /// The device may no longer connect.
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// Every reason, in a stable order.
    pub const ALL: &'static [RevocationReason] = &[
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// Stable kebab-case name, as the command line and the store use it.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key-compromise",
            RevocationReason::AffiliationChanged => "affiliation-changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation-of-operation",
            RevocationReason::PrivilegeWithdrawn => "privilege-withdrawn",
        }
    }
}

/// A revocation reason name that Vigil does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown revocation reason; use one of: {}", RevocationReason::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))]
pub struct UnknownReason;

impl FromStr for RevocationReason {
    type Err = UnknownReason;
    fn from_str(text: &str) -> Result<Self, UnknownReason> {
        Self::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == text)
            .ok_or(UnknownReason)
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<RevocationReason> for rcgen::RevocationReason {
    fn from(reason: RevocationReason) -> Self {
        match reason {
            RevocationReason::Unspecified => rcgen::RevocationReason::Unspecified,
            RevocationReason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            RevocationReason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            RevocationReason::Superseded => rcgen::RevocationReason::Superseded,
            RevocationReason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
            RevocationReason::PrivilegeWithdrawn => rcgen::RevocationReason::PrivilegeWithdrawn,
        }
    }
}

/// One revoked certificate, as the CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}
