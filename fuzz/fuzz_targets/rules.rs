//! A detection rules file from hostile bytes (the hub reloads `rules.toml` while it runs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vigil_detect::rules::RuleSet::parse_bytes(data);
});
