//! Vigil's clinical vocabulary and domain types.
//!
//! Every other Vigil crate speaks these types: [identifiers](id) of devices, patients and
//! users; the [quantities](quantity) Vigil understands with their IEEE 11073 MDC and LOINC codes,
//! UCUM units and plausibility limits; [device classes](device) with what they report and
//! accept; the [safety profiles](safety) that hold commands; [observations](observation),
//! [alerts](alert) and [audit entries](audit). Values that are PHI are wrapped in [`Phi`] and
//! never print.
//!
//! This crate does no I/O and imports no other Vigil crate.

#![forbid(unsafe_code)]

pub mod alert;
pub mod audit;
pub mod device;
pub mod id;
pub mod mdc;
pub mod observation;
pub mod phi;
pub mod quantity;
pub mod safety;
pub mod timestamp;
pub mod unit;
pub mod user;

pub use alert::{Alert, AlertKind, AlertStatus, Evidence, Severity};
pub use audit::{Action, Actor, AuditEntry, Outcome, Reason, Resource, ResourceKind};
pub use device::{CommandKind, DeviceClass};
pub use id::{DeviceId, IdError, PatientId, UserId};
pub use observation::Observation;
pub use phi::Phi;
pub use quantity::{Quantity, QuantityKind, QuantitySpec};
pub use safety::SafetyProfile;
pub use timestamp::Timestamp;
pub use user::Role;
