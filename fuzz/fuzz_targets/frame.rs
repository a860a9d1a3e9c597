//! Frame decoding from any bytes (what a QUIC stream delivers): never a panic, a limit that
//! holds, and every accepted frame re-encodes to exactly the bytes read.
#![no_main]

use appliance::net::{decode_frame_with_limit, encode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (limit, bytes) = match data.split_first() {
        // The first byte picks a small limit, so oversize refusals are reached too.
        Some((l, rest)) => (usize::from(*l) * 16, rest),
        None => return,
    };
    if let Ok((version, payload)) = decode_frame_with_limit(bytes, limit) {
        assert!(payload.len() <= limit, "a payload above the limit was accepted");
        assert_eq!(encode_frame(version, payload), bytes, "accepted frame does not round-trip");
    }
});
