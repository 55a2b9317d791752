//! People's roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a person may do in Vigil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the hub: users, configuration.
    Admin,
    /// Watches security: alerts, audit, posture.
    SecurityOfficer,
    /// Enrols, replaces, revokes and updates devices.
    ClinicalEngineer,
    /// Cares for patients: their vitals, device settings.
    Clinician,
    /// Sees their own record and who accessed it; shares it.
    Patient,
    /// Reads the audit log, nothing else.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: &'static [Role] = &[
        Role::Admin,
        Role::SecurityOfficer,
        Role::ClinicalEngineer,
        Role::Clinician,
        Role::Patient,
        Role::Auditor,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SecurityOfficer => "security_officer",
            Role::ClinicalEngineer => "clinical_engineer",
            Role::Clinician => "clinician",
            Role::Patient => "patient",
            Role::Auditor => "auditor",
        }
    }

    /// Whether the role is privileged (second factor required at sign-in).
    pub fn is_privileged(self) -> bool {
        matches!(self, Role::Admin | Role::SecurityOfficer)
    }
}

/// A role name Vigil does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role; use one of: admin, security_officer, clinical_engineer, clinician, patient, auditor"
)]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(text: &str) -> Result<Self, UnknownRole> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == text)
            .ok_or(UnknownRole)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_ones_are_refused() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        assert_eq!("root".parse::<Role>(), Err(UnknownRole));
        assert!(Role::Admin.is_privileged() && !Role::Clinician.is_privileged());
    }
}
