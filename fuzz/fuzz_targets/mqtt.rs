//! MQTT packets from a hostile client, in both protocol versions: the hub's reader refuses them
//! or waits for more, and never panics or reads a packet without consuming it.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use vigil_hub::mqtt::codec::{self, Version};

fuzz_target!(|data: &[u8]| {
    let _ = codec::connect_level(data);
    let _ = codec::frame_len(data);
    for version in [Version::V311, Version::V5] {
        let mut buffer = BytesMut::from(data);
        while !buffer.is_empty() {
            let before = buffer.len();
            match codec::read(version, &mut buffer) {
                Ok(_) => assert!(buffer.len() < before, "a packet read consumed nothing"),
                Err(_) => break,
            }
        }
    }
});
