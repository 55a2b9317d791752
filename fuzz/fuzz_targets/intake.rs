//! An intake log segment from damaged bytes (a crash mid-write, a bad disk): decoding keeps a
//! valid prefix of whole, checked records and never panics or reads past the end.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (records, valid) = vigil_store::intake::decode(data);
    assert!(valid <= data.len());
    assert!(records.iter().map(|r| r.len() + 12).sum::<usize>() == valid);
});
