//! IEEE 11073-10101 nomenclature codes (the "MDC" codes medical devices speak).
//!
//! A code lives in a partition (2 = SCADA, vital signs; 4 = dimensions, units; 1 = object
//! oriented; …) and has a term code inside it. The context-free code that SenML records and FHIR
//! codings carry is `partition × 2^16 + term`. FHIR names the system
//! `urn:iso:std:iso:11073:10101`.

use std::fmt;

/// The FHIR code system URI of IEEE 11073-10101.
pub const MDC_SYSTEM: &str = "urn:iso:std:iso:11073:10101";

/// One IEEE 11073-10101 term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MdcCode {
    /// The reference id, e.g. `MDC_ECG_HEART_RATE`.
    pub refid: &'static str,
    /// The nomenclature partition.
    pub partition: u16,
    /// The term code within the partition.
    pub term: u16,
}

impl MdcCode {
    /// Builds a code from its reference id, partition and term code.
    pub const fn new(refid: &'static str, partition: u16, term: u16) -> Self {
        Self {
            refid,
            partition,
            term,
        }
    }

    /// The context-free numeric code, `partition × 65536 + term`.
    pub const fn code(self) -> u32 {
        ((self.partition as u32) << 16) | self.term as u32
    }
}

impl fmt::Display for MdcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.refid, self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_free_code_is_partition_and_term() {
        let hr = MdcCode::new("MDC_ECG_HEART_RATE", 2, 16770);
        assert_eq!(hr.code(), 147_842);
        assert_eq!(hr.to_string(), "MDC_ECG_HEART_RATE (147842)");
    }
}
