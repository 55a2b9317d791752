//! Vigil's streaming detection.
//!
//! The hub describes what happens as [`Event`]s — a pack of observations stored, a device
//! connected, something refused — and an [`Engine`] runs every [`Detector`] over each, in the
//! order they happened, and hands back the [`Alert`]s to raise, deduplicated: the same kind of
//! alert for the same device (or patient, or address) is raised once per suppression window.
//!
//! No I/O and no clock: time comes from the events, so a detector behaves the same on a live
//! hub, in a test, and on a replayed log. Evidence that is a clinical value stays
//! [`vigil_model::Phi`].
//!
//! The detectors ([`detectors`]): physiological plausibility (impossible changes, signals of
//! one patient that contradict each other, flat lines and repeated sequences), sequence and
//! replay, identity and protocol misuse (topic probing, malformed traffic, refused credentials,
//! bursts of failures).

#![forbid(unsafe_code)]

pub mod detectors;
mod engine;
mod event;
pub mod rules;

pub use engine::{Engine, SUPPRESSION_WINDOW_MS};
pub use event::{Event, Reading, Refusal};

use vigil_model::Alert;

/// A detector: sees every event, in order, and may raise alerts.
pub trait Detector: Send {
    /// A stable name, for logs and configuration.
    fn name(&self) -> &'static str;
    /// Looks at `event`; pushes any alert to `alerts`.
    fn observe(&mut self, event: &Event, alerts: &mut Vec<Alert>);
}
