//! The built-in detectors.

pub mod anomaly;
pub mod identity;
pub mod limits;
pub mod plausibility;
pub mod rate;
pub mod sequence;

pub use anomaly::Anomaly;
pub use identity::Identity;
pub use limits::Limits;
pub use plausibility::Plausibility;
pub use rate::Rate;
pub use sequence::Sequence;

use crate::Detector;

/// One of each built-in detector of the default set.
///
/// [`Anomaly`] is not in it: its learned models cannot tell a clinical event from a forgery
/// and raised about two alerts for every five clinical events in simulated wards
/// (docs/detection.md). A hub that wants it adds `Box::new(Anomaly::default())`.
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(Limits),
        Box::new(Plausibility::default()),
        Box::new(Sequence::default()),
        Box::new(Identity::default()),
        Box::new(Rate::default()),
    ]
}
