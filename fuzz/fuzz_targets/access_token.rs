//! What arrives in `Authorization: Bearer …` and at the OpenID callback: session tokens, scope
//! strings, ID tokens and the provider's key set, from hostile text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_auth::{Expected, Jwks, Scopes, TokenVerifier, verify_id_token};

fuzz_target!(|data: &[u8]| {
    let _ = Jwks::from_json(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(verifier) = TokenVerifier::from_public_key(&[7; 32], "https://hub.example") {
        let _ = verifier.verify(text, 1_800_000_000);
    }
    let _ = Scopes::parse(text);
    let expected = Expected {
        issuer: "https://idp.example",
        client_id: "vigil",
        nonce: "n-0S6_WzA2Mj",
        max_age_secs: 600,
    };
    let keys = Jwks::from_json(br#"{"keys":[]}"#);
    if let Ok(keys) = keys {
        let _ = verify_id_token(text, &keys, &expected, 1_800_000_000);
    }
});
