#![no_main]
//! Any bytes as a peer message: decoding never panics, and whatever decodes re-encodes to
//! bytes that decode to the same message (so nothing a peer sends is read two ways).

use consensus::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let again = m.encode();
        assert_eq!(Message::decode(&again).expect("re-decodes"), m);
        if let Message::CompactAnnounce(c) = &m {
            let _ = c.check_bounds();
        }
    }
});
