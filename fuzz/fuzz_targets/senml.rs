//! SenML packs as devices send them: decoding must never panic or accept garbage.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let device = vigil_model::DeviceId::new("oxi-7").expect("valid id");
    let now = vigil_model::Timestamp::from_unix_millis(1_764_403_300_000).expect("valid time");
    let _ = vigil_wire::senml::decode_json(data, &device, now);
});
