//! The deterministic, I/O-free core of Vigil's fleet simulator.
//!
//! - [`physiology`]: virtual patients whose vital signs evolve realistically — a 24-hour rhythm,
//!   mean-reverting variability, heart rate and blood pressure moving together, glucose following
//!   meals and insulin;
//! - [`events`]: clinical events (tachycardia, desaturation, hypotension, hypoglycaemia, atrial
//!   fibrillation, fever), scripted or drawn from the seed, each leaving a ground-truth record
//!   labelled clinical — real deteriorations, never attacks;
//! - [`devices`]: a virtual device for every device class of the vocabulary, sampling its patient
//!   with the noise, resolution, units and reporting period of a real one;
//! - [`ward`]: patients and devices advanced together, which a driver steps in simulated time and
//!   polls for due readings;
//! - [`attacks`]: attack scenarios (JSON lines) and the readings an attacker forges;
//! - [`fleet`]: the driver on the network: every device enrols with the hub, connects over
//!   MQTT with mutual TLS ([`vigil_device`]) and publishes; attacks play on schedule; clinical
//!   events and attacks are written down as ground truth.
//!
//! A run is fixed by its seed ([`rng`]): the same seed and the same calls give the same readings
//! and ground truth. Everything but [`fleet`] is I/O-free: no clock, file or network. The model,
//! its equations and the source of every clinical number are in `docs/simulator.md`.

#![forbid(unsafe_code)]

pub mod attacks;
pub mod devices;
pub mod events;
pub mod fleet;
pub mod physiology;
pub mod rng;
pub mod ward;

pub use attacks::{AttackKind, AttackStep, PlannedAttack, Scenario, ScenarioError};
pub use devices::{Channel, DeviceError, SimReading, VirtualDevice};
pub use events::{
    ClinicalEvent, ClinicalEventKind, ClinicalEventRecord, ClinicalEventSchedule, EventError,
    EventOrigin, GroundTruth,
};
pub use physiology::{PatientProfile, Physiology, Population, Rhythm, Vitals};
pub use rng::SimRng;
pub use ward::{
    CommandError, DeviceMix, DeviceReading, ScriptedEvent, Ward, WardConfig, WardError,
};

/// Rounds to the nearest multiple of `step`, as a device displays a value.
pub(crate) fn round_to(value: f64, step: f64) -> f64 {
    (value / step).round() * step
}
