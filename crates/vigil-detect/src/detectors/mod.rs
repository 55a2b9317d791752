//! The built-in detectors.

pub mod identity;
pub mod limits;
pub mod plausibility;
pub mod sequence;

pub use identity::Identity;
pub use limits::Limits;
pub use plausibility::Plausibility;
pub use sequence::Sequence;

use crate::Detector;

/// One of each built-in detector.
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(Limits),
        Box::new(Plausibility::default()),
        Box::new(Sequence::default()),
        Box::new(Identity::default()),
    ]
}
