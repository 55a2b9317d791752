//! Client certificates as presented in a TLS handshake: the identity function and the facts
//! recorded about refused certificates both parse them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vigil_pki::identity::device_id(data);
    let _ = vigil_pki::CertificateFacts::from_der(data);
    let _ = vigil_pki::facts::server_names(data);
});
