//! Protected health information (PHI), redacted whenever it is printed.
//!
//! [`Phi<T>`] wraps any value that identifies a patient or describes their health: name, medical
//! record number, birth date, a vital sign's value. Its `Debug` and `Display` print
//! `[redacted]`, so a `tracing` field, a panic message or an error chain cannot carry PHI into a
//! log by accident. Reading the value takes an explicit, greppable [`Phi::expose`].
//!
//! `Phi` deliberately implements no `Serialize`: writing PHI to a wire format or to the store is
//! a decision made where it happens (sealing, FHIR output), not something a derive does silently.

use std::fmt;

/// What every redacted value prints as.
pub const REDACTED: &str = "[redacted]";

/// A value that is PHI. Printing it shows [`REDACTED`].
#[derive(Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Phi<T>(T);

impl<T> Phi<T> {
    /// Marks a value as PHI.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself. Call this only where PHI is meant to be used (sealing, an authorised
    /// read, a computation), never to log it.
    pub const fn expose(&self) -> &T {
        &self.0
    }

    /// Takes the value out of its wrapper.
    pub fn into_inner(self) -> T {
        self.0
    }

    /// Applies a function to the value, keeping the result PHI.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Phi<U> {
        Phi(f(self.0))
    }
}

impl<T> fmt::Debug for Phi<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Phi<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A patient's name as recorded by the hospital.
pub type PatientName = Phi<String>;
/// A patient's medical record number at the hospital.
pub type MedicalRecordNumber = Phi<String>;
/// A patient's date of birth.
pub type BirthDate = Phi<time::Date>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)] // fields exist to be printed by Debug
    struct Record {
        name: PatientName,
        mrn: MedicalRecordNumber,
        heart_rate: Phi<f64>,
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let record = Record {
            name: Phi::new("Jane Doe".to_owned()),
            mrn: Phi::new("MRN-0042".to_owned()),
            heart_rate: Phi::new(141.0),
        };
        let printed = format!("{record:?} {record:#?} {}", record.name);
        for secret in ["Jane", "0042", "141"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains(REDACTED));
    }

    #[test]
    fn expose_and_map_keep_the_value() {
        let celsius = Phi::new(98.6_f64).map(|f| (f - 32.0) * 5.0 / 9.0);
        assert!((celsius.expose() - 37.0).abs() < 1e-9);
        assert_eq!(Phi::new(3).into_inner(), 3);
    }
}
