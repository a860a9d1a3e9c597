#![no_main]
//! Every point decoder on arbitrary bytes: never panics, and whatever decodes re-encodes to
//! bytes that decode to the same point.

use accel::{PublicKey, Signature, WireVote};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = accel::decode_g1_point(data);
    let _ = accel::decode_g2_point(data);
    if let Ok(pk) = PublicKey::decode(data) {
        assert_eq!(PublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
        assert_eq!(PublicKey::from_uncompressed(&pk.to_uncompressed()).unwrap(), pk);
    }
    if let Ok(sig) = Signature::decode(data) {
        assert_eq!(Signature::from_bytes(&sig.to_bytes()).unwrap(), sig);
        assert_eq!(Signature::from_uncompressed(&sig.to_uncompressed()).unwrap(), sig);
        let _ = sig.subgroup_check();
    }
    if let Ok(v) = WireVote::parse(data) {
        let _ = Signature::decode(v.signature);
    }
});
