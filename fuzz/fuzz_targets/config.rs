//! The configuration file, and identifiers, from hostile text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vigil_config::load_from_str(text, vigil_config::Source::Default, Vec::new());
        let _ = vigil_model::DeviceId::new(text);
    }
});
