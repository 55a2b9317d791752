//! The device side of Vigil.
//!
//! A device [`enrol`]s once — its own P-256 key, a CSR and the one-time token the hospital gave
//! it, over TLS that trusts only the hospital CA — and gets its certificate. It then opens a
//! [`Link`]: MQTT 5.0 over mutual TLS, where it publishes observation packs (each acknowledged
//! only after the hub stored it), subscribes to its command topic, and receives what the hub
//! queued for it.
//!
//! Simulators and benchmarks use this crate as real devices would; it holds no test shortcut.

#![forbid(unsafe_code)]

pub mod enrol;
mod identity;
pub mod link;
pub mod topics;

pub use enrol::{EnrolError, enrol};
pub use identity::{Identity, IdentityError};
pub use link::{Link, LinkError, LinkOptions, Message, Published};
