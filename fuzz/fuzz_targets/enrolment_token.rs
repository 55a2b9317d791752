//! Enrolment tokens from the Authorization header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(token) = vigil_pki::PresentedToken::parse(text) {
            let _ = token.matches(&[0u8; 32]);
        }
    }
});
