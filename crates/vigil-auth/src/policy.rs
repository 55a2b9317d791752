//! Who may do what: the access decision for a role, an operation and the requester's relation
//! to the patient concerned.
//!
//! Deny by default, and separation of duties: administrators and security officers run the
//! system and investigate it but do not read clinical data; clinicians read the records of
//! patients they care for, who consented, or whose record they opened by break-glass;
//! patients read their own. The caller computes the [`Relation`] from the store, audits the
//! [`Decision`] with its [`Basis`] or [`DenyReason`], and for break-glass requires a reason
//! and alerts the security officer.

use vigil_model::Role;

use crate::scope::Scopes;

/// An operation someone asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Read one patient's record: Patient, Observations, the patient's devices.
    ReadPatientRecord,
    /// Read one patient's clinical alerts.
    ReadPatientAlerts,
    /// Read the audit entries about one patient (who looked at the record).
    ReadPatientAccessLog,
    /// Read the whole audit log.
    ReadAuditLog,
    /// Read the audit log's signed checkpoints.
    ReadCheckpoints,
    /// List patients.
    ListPatients,
    /// List devices.
    ListDevices,
    /// Read one device (identity, certificate, status).
    ReadDevice,
    /// Register, enrol, replace, revoke, update devices.
    ManageDevices,
    /// Read every security alert.
    ReadAlerts,
    /// Acknowledge or close security alerts.
    HandleAlerts,
    /// Create, change, disable users.
    ManageUsers,
    /// Assign clinicians to patients' care teams.
    ManageCareTeams,
    /// Grant or withdraw one patient's consent to share.
    ManageConsent,
    /// Open one patient's record in an emergency, outside care team and consent.
    BreakGlass,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 15] = [
        Operation::ReadPatientRecord,
        Operation::ReadPatientAlerts,
        Operation::ReadPatientAccessLog,
        Operation::ReadAuditLog,
        Operation::ReadCheckpoints,
        Operation::ListPatients,
        Operation::ListDevices,
        Operation::ReadDevice,
        Operation::ManageDevices,
        Operation::ReadAlerts,
        Operation::HandleAlerts,
        Operation::ManageUsers,
        Operation::ManageCareTeams,
        Operation::ManageConsent,
        Operation::BreakGlass,
    ];

    /// Stable snake_case name, for audit entries.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::ReadPatientRecord => "read_patient_record",
            Operation::ReadPatientAlerts => "read_patient_alerts",
            Operation::ReadPatientAccessLog => "read_patient_access_log",
            Operation::ReadAuditLog => "read_audit_log",
            Operation::ReadCheckpoints => "read_checkpoints",
            Operation::ListPatients => "list_patients",
            Operation::ListDevices => "list_devices",
            Operation::ReadDevice => "read_device",
            Operation::ManageDevices => "manage_devices",
            Operation::ReadAlerts => "read_alerts",
            Operation::HandleAlerts => "handle_alerts",
            Operation::ManageUsers => "manage_users",
            Operation::ManageCareTeams => "manage_care_teams",
            Operation::ManageConsent => "manage_consent",
            Operation::BreakGlass => "break_glass",
        }
    }
}

/// Facts about the requester and the patient concerned, from the store. All false when no
/// patient is concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relation {
    /// The requester is this patient.
    pub own_record: bool,
    /// The requester is on the patient's care team.
    pub care_team: bool,
    /// The patient shares their record with the requester.
    pub consented: bool,
    /// The requester holds an unexpired break-glass grant for the patient.
    pub break_glass_active: bool,
}

/// Why access is allowed; recorded in the audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// The role may, whatever the patient.
    Role,
    /// The requester's own record.
    Own,
    /// The requester is on the patient's care team.
    CareTeam,
    /// The patient consented.
    Consent,
    /// An emergency break-glass grant.
    BreakGlass,
}

impl Basis {
    /// Stable snake_case name, for audit entries.
    pub const fn as_str(self) -> &'static str {
        match self {
            Basis::Role => "role",
            Basis::Own => "own",
            Basis::CareTeam => "care_team",
            Basis::Consent => "consent",
            Basis::BreakGlass => "break_glass",
        }
    }
}

/// Why access is denied; recorded in the audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The role never may.
    RoleNotPermitted,
    /// A clinician without care-team membership, consent or break-glass for this patient
    /// (break-glass is the way in an emergency).
    NoCareRelationship,
    /// A patient asking about another patient.
    NotOwnRecord,
}

impl DenyReason {
    /// Stable snake_case name, for audit entries.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyReason::RoleNotPermitted => "role_not_permitted",
            DenyReason::NoCareRelationship => "no_care_relationship",
            DenyReason::NotOwnRecord => "not_own_record",
        }
    }
}

/// An access decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Allowed, on this basis.
    Allow(Basis),
    /// Denied, for this reason.
    Deny(DenyReason),
}

impl Decision {
    /// Whether access is allowed.
    pub const fn is_allowed(self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// Whether `role` may do `operation`, given `relation` to the patient concerned.
pub fn decide(role: Role, operation: Operation, relation: &Relation) -> Decision {
    use Operation as Op;
    let by_role = |allowed: bool| {
        if allowed {
            Decision::Allow(Basis::Role)
        } else {
            Decision::Deny(DenyReason::RoleNotPermitted)
        }
    };
    match role {
        Role::Admin => by_role(matches!(
            operation,
            Op::ManageUsers
                | Op::ManageCareTeams
                | Op::ListDevices
                | Op::ReadDevice
                | Op::ReadCheckpoints
        )),
        // Alerts' clinical evidence is redacted by the caller for this role.
        Role::SecurityOfficer => by_role(matches!(
            operation,
            Op::ReadAlerts
                | Op::HandleAlerts
                | Op::ReadAuditLog
                | Op::ReadCheckpoints
                | Op::ListDevices
                | Op::ReadDevice
                | Op::ReadPatientAccessLog
        )),
        Role::ClinicalEngineer => by_role(matches!(
            operation,
            Op::ListDevices
                | Op::ReadDevice
                | Op::ManageDevices
                | Op::ReadAlerts
                | Op::ReadCheckpoints
        )),
        Role::Clinician => match operation {
            Op::ReadPatientRecord | Op::ReadPatientAlerts => clinical_basis(relation),
            // The caller filters the list to the clinician's patients, and for break-glass
            // requires a reason and alerts the security officer.
            Op::ListPatients | Op::BreakGlass => Decision::Allow(Basis::Role),
            _ => Decision::Deny(DenyReason::RoleNotPermitted),
        },
        Role::Patient => match operation {
            Op::ReadPatientRecord
            | Op::ReadPatientAlerts
            | Op::ReadPatientAccessLog
            | Op::ManageConsent => {
                if relation.own_record {
                    Decision::Allow(Basis::Own)
                } else {
                    Decision::Deny(DenyReason::NotOwnRecord)
                }
            }
            _ => Decision::Deny(DenyReason::RoleNotPermitted),
        },
        Role::Auditor => by_role(matches!(
            operation,
            Op::ReadAuditLog | Op::ReadPatientAccessLog | Op::ReadCheckpoints
        )),
    }
}

/// A clinician's basis for one patient's record, the most ordinary first: care team, then
/// consent, then break-glass (which the audit should show only when nothing else applies).
fn clinical_basis(relation: &Relation) -> Decision {
    if relation.care_team {
        Decision::Allow(Basis::CareTeam)
    } else if relation.consented {
        Decision::Allow(Basis::Consent)
    } else if relation.break_glass_active {
        Decision::Allow(Basis::BreakGlass)
    } else {
        Decision::Deny(DenyReason::NoCareRelationship)
    }
}

/// The widest SMART scopes a token of `role` may carry; a requested scope is narrowed to it
/// with [`Scopes::intersect`]. FHIR resources: Patient, Observation, Device, DetectedIssue
/// (alerts), AuditEvent, Consent, CareTeam. Every role gets `openid fhirUser`; a patient's
/// scopes are in the patient context, everyone else's in the user context.
pub fn role_scopes(role: Role) -> Scopes {
    let text = match role {
        Role::Admin => "openid fhirUser user/CareTeam.cruds user/Device.rs",
        Role::SecurityOfficer => {
            "openid fhirUser user/AuditEvent.rs user/DetectedIssue.rus user/Device.rs"
        }
        Role::ClinicalEngineer => "openid fhirUser user/DetectedIssue.rs user/Device.cruds",
        Role::Clinician => {
            "openid fhirUser user/DetectedIssue.rs user/Device.rs user/Observation.rs \
             user/Patient.rs"
        }
        Role::Patient => {
            "openid fhirUser launch/patient patient/AuditEvent.rs patient/Consent.cruds \
             patient/DetectedIssue.rs patient/Device.rs patient/Observation.rs patient/Patient.rs"
        }
        Role::Auditor => "openid fhirUser user/AuditEvent.rs",
    };
    // The strings above are constants a test parses; fail closed all the same.
    Scopes::parse(text).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::scope::{Context, Interaction};
    use Operation as Op;

    /// How an allowed (role, operation) pair depends on the relation.
    #[derive(Clone, Copy)]
    enum Rule {
        /// Allowed on the role alone.
        Always,
        /// Allowed for the requester's own record.
        Own,
        /// Allowed with care team, consent or break-glass, in that order of basis.
        Clinical,
    }

    /// The access matrix of issue #8, written out independently of `decide`. Any pair not
    /// listed is denied for the role.
    const MATRIX: &[(Role, Op, Rule)] = &[
        (Role::Admin, Op::ManageUsers, Rule::Always),
        (Role::Admin, Op::ManageCareTeams, Rule::Always),
        (Role::Admin, Op::ListDevices, Rule::Always),
        (Role::Admin, Op::ReadDevice, Rule::Always),
        (Role::Admin, Op::ReadCheckpoints, Rule::Always),
        (Role::SecurityOfficer, Op::ReadAlerts, Rule::Always),
        (Role::SecurityOfficer, Op::HandleAlerts, Rule::Always),
        (Role::SecurityOfficer, Op::ReadAuditLog, Rule::Always),
        (Role::SecurityOfficer, Op::ReadCheckpoints, Rule::Always),
        (Role::SecurityOfficer, Op::ListDevices, Rule::Always),
        (Role::SecurityOfficer, Op::ReadDevice, Rule::Always),
        (
            Role::SecurityOfficer,
            Op::ReadPatientAccessLog,
            Rule::Always,
        ),
        (Role::ClinicalEngineer, Op::ListDevices, Rule::Always),
        (Role::ClinicalEngineer, Op::ReadDevice, Rule::Always),
        (Role::ClinicalEngineer, Op::ManageDevices, Rule::Always),
        (Role::ClinicalEngineer, Op::ReadAlerts, Rule::Always),
        (Role::ClinicalEngineer, Op::ReadCheckpoints, Rule::Always),
        (Role::Clinician, Op::ReadPatientRecord, Rule::Clinical),
        (Role::Clinician, Op::ReadPatientAlerts, Rule::Clinical),
        (Role::Clinician, Op::BreakGlass, Rule::Always),
        (Role::Clinician, Op::ListPatients, Rule::Always),
        (Role::Patient, Op::ReadPatientRecord, Rule::Own),
        (Role::Patient, Op::ReadPatientAlerts, Rule::Own),
        (Role::Patient, Op::ReadPatientAccessLog, Rule::Own),
        (Role::Patient, Op::ManageConsent, Rule::Own),
        (Role::Auditor, Op::ReadAuditLog, Rule::Always),
        (Role::Auditor, Op::ReadPatientAccessLog, Rule::Always),
        (Role::Auditor, Op::ReadCheckpoints, Rule::Always),
    ];

    fn every_relation() -> Vec<Relation> {
        (0..16u8)
            .map(|bits| Relation {
                own_record: bits & 1 != 0,
                care_team: bits & 2 != 0,
                consented: bits & 4 != 0,
                break_glass_active: bits & 8 != 0,
            })
            .collect()
    }

    fn expected(role: Role, operation: Op, relation: &Relation) -> Decision {
        let rule = MATRIX
            .iter()
            .find(|(r, o, _)| *r == role && *o == operation)
            .map(|(_, _, rule)| *rule);
        match rule {
            None => Decision::Deny(DenyReason::RoleNotPermitted),
            Some(Rule::Always) => Decision::Allow(Basis::Role),
            Some(Rule::Own) if relation.own_record => Decision::Allow(Basis::Own),
            Some(Rule::Own) => Decision::Deny(DenyReason::NotOwnRecord),
            Some(Rule::Clinical) if relation.care_team => Decision::Allow(Basis::CareTeam),
            Some(Rule::Clinical) if relation.consented => Decision::Allow(Basis::Consent),
            Some(Rule::Clinical) if relation.break_glass_active => {
                Decision::Allow(Basis::BreakGlass)
            }
            Some(Rule::Clinical) => Decision::Deny(DenyReason::NoCareRelationship),
        }
    }

    #[test]
    fn every_role_operation_and_relation_matches_the_matrix() {
        let mut checked = 0;
        for role in Role::ALL {
            for operation in Operation::ALL {
                for relation in every_relation() {
                    assert_eq!(
                        decide(*role, operation, &relation),
                        expected(*role, operation, &relation),
                        "{role} {operation:?} {relation:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 6 * 15 * 16);
    }

    #[test]
    fn administrators_and_security_officers_never_read_clinical_data() {
        for role in [
            Role::Admin,
            Role::SecurityOfficer,
            Role::ClinicalEngineer,
            Role::Auditor,
        ] {
            for operation in [
                Op::ReadPatientRecord,
                Op::ReadPatientAlerts,
                Op::BreakGlass,
                Op::ListPatients,
            ] {
                for relation in every_relation() {
                    assert!(
                        !decide(role, operation, &relation).is_allowed(),
                        "{role} {operation:?}"
                    );
                }
            }
            let scopes = role_scopes(role);
            for context in Context::ALL {
                for resource in ["Patient", "Observation", "Consent"] {
                    assert!(
                        !scopes.permits(context, resource, Interaction::Read),
                        "{role} may read {resource}"
                    );
                }
            }
        }
    }

    #[test]
    fn break_glass_is_the_last_basis_a_clinician_is_given() {
        let everything = Relation {
            own_record: false,
            care_team: true,
            consented: true,
            break_glass_active: true,
        };
        assert_eq!(
            decide(Role::Clinician, Op::ReadPatientRecord, &everything),
            Decision::Allow(Basis::CareTeam)
        );
        let only_break_glass = Relation {
            break_glass_active: true,
            ..Relation::default()
        };
        assert_eq!(
            decide(Role::Clinician, Op::ReadPatientRecord, &only_break_glass),
            Decision::Allow(Basis::BreakGlass)
        );
        // Break-glass opens the record to clinicians only.
        assert_eq!(
            decide(Role::Patient, Op::ReadPatientRecord, &only_break_glass),
            Decision::Deny(DenyReason::NotOwnRecord)
        );
    }

    #[test]
    fn every_role_has_parseable_scopes_in_its_context() {
        for role in Role::ALL {
            let scopes = role_scopes(*role);
            assert!(!scopes.is_empty(), "{role}");
            assert!(scopes.has(crate::scope::SpecialScope::OpenId), "{role}");
            // Canonical text round-trips.
            assert_eq!(Scopes::parse(&scopes.to_string()).unwrap(), scopes);
        }
        let patient = role_scopes(Role::Patient);
        assert!(patient.permits(Context::Patient, "Observation", Interaction::Read));
        assert!(patient.permits(Context::Patient, "Consent", Interaction::Update));
        assert!(!patient.permits(Context::User, "Observation", Interaction::Read));
        let clinician = role_scopes(Role::Clinician);
        assert!(clinician.permits(Context::User, "Observation", Interaction::Search));
        assert!(!clinician.permits(Context::User, "Observation", Interaction::Update));
        assert!(!clinician.permits(Context::User, "AuditEvent", Interaction::Read));
        let auditor = role_scopes(Role::Auditor);
        assert_eq!(auditor.to_string(), "openid fhirUser user/AuditEvent.rs");
    }

    #[test]
    fn a_request_is_narrowed_to_the_role() {
        let request = Scopes::parse("openid user/*.cruds offline_access").unwrap();
        assert_eq!(
            request.intersect(&role_scopes(Role::Auditor)).to_string(),
            "openid user/AuditEvent.rs"
        );
        assert!(!request.is_within(&role_scopes(Role::Clinician)));
    }
}
