//! Certificate signing requests as devices send them to `POST /api/v1/enroll`: PEM or DER,
//! hostile. Parsing must never panic and never accept garbage.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vigil_pki::ValidatedCsr::parse(data);
});
