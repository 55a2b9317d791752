//! An intake log segment from damaged bytes (a crash mid-write, a bad disk): decoding keeps a
//! valid prefix of whole, checked records and never panics or reads past the end; a record's
//! payload that passed its check decodes into rows or is refused, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (records, valid) = vigil_store::intake::decode(data, 0);
    assert!(valid <= data.len());
    assert!(
        records
            .iter()
            .map(|r| r.len() + vigil_store::intake::HEADER)
            .sum::<usize>()
            == valid
    );
    for record in records {
        let _ = vigil_store::intake::observations_in(record);
    }
    // Payloads are rarely reached through a valid check: try the bytes as one, too.
    if let Ok(rows) = vigil_store::intake::observations_in(data) {
        assert!(rows <= data.len() / 38);
    }
});
