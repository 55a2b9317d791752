//! What crosses the wire between devices and the hub.
//!
//! Today: [`senml`], observation packs in Vigil's profile of SenML (RFC 8428), JSON and CBOR
//! encodings, and [`encode`], which writes them.
//! Every decoder here treats its input as hostile: bounded sizes, no panics, and errors that say
//! which record and which field is wrong without echoing values (they may be PHI).

#![forbid(unsafe_code)]

pub mod encode;
pub mod senml;
