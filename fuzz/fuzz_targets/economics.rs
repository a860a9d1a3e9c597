#![no_main]
//! Any bytes as what the economics take from outside: double-sign evidence (a peer's
//! `Message::Evidence`, a header's `slashes`) and a header's `vdf` field. Decoding and checking
//! never panic; evidence that decodes re-encodes to the same bytes; a VDF field that is not a
//! proof for the seed is refused, never accepted.

use libfuzzer_sys::fuzz_target;
use state::staking::DoubleSign;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = state::block::decode_exact::<DoubleSign>(data) {
        assert_eq!(alloy_rlp::encode(&e), data);
        let _ = e.check_signatures(31_415_926, 0);
        let _ = e.offence();
    }
    if let Ok(list) = state::block::decode_exact::<Vec<DoubleSign>>(data) {
        assert_eq!(alloy_rlp::encode(&list), data);
    }
    // A small discriminant keeps each run fast; the parsing and checks are the same code.
    let params = state::VdfParams {
        iterations: 16,
        discriminant_bits: 64,
    };
    let _ = state::exec::epoch_vdf::verify(&params, &[7; 32], data);
    let _ = state::block::vdf_output_of(data);
});
