//! SenML packs in CBOR, and packs in either encoding through `decode`: decoding must never panic
//! or accept garbage, and a pack that is accepted must read the same once written again, in
//! JSON and in CBOR, by `vigil_wire::encode` (a differential check of the two decoders).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_model::{DeviceId, Timestamp};
use vigil_wire::encode::{EncodeError, PackBuilder, ReadingTime};
use vigil_wire::senml::{self, Encoding};

fuzz_target!(|data: &[u8]| {
    let device = DeviceId::new("oxi-7").expect("valid id");
    let now = Timestamp::from_unix_millis(1_764_403_300_000).expect("valid time");
    let cbor = senml::decode_cbor(data, &device, now);
    let detected = senml::decode(data, &device, now);
    if Encoding::detect(data) == Some(Encoding::Cbor) {
        assert_eq!(cbor, detected);
    }
    let Ok(pack) = detected else {
        return;
    };
    // Every time a decoder accepts is absolute and at least 2^28 s, so it can be a base time.
    let mut builder = PackBuilder::new(&device, pack.sequence, pack.readings[0].time)
        .expect("a decoded time is a base time");
    for reading in &pack.readings {
        match builder.reading(
            reading.code,
            &reading.unit,
            *reading.value.expose(),
            ReadingTime::At(reading.time),
        ) {
            Ok(_) => {}
            // Escaped units and long numbers can make the JSON larger than what was sent.
            Err(EncodeError::TooLarge { .. }) => return,
            Err(error) => panic!("a decoded reading is refused by the encoder: {error}"),
        }
    }
    for encoding in [Encoding::Json, Encoding::Cbor] {
        let again = senml::decode_as(encoding, &builder.encode(encoding), &device, now);
        assert_eq!(again.as_ref(), Ok(&pack), "{encoding:?}");
    }
});
