#![no_main]
//! Any bytes as a header, body or block (as catch-up and storage read them): never a panic,
//! and what decodes re-encodes to the same bytes (the hash of a block is its encoding's).

use libfuzzer_sys::fuzz_target;
use state::{decode_exact, Block, Body, CommitCertificate, Header};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::decode_exact(data) {
        assert_eq!(h.encode_to_vec(), data, "headers have one encoding");
        let _ = h.hash();
    }
    if let Ok(b) = decode_exact::<Body>(data) {
        assert_eq!(alloy_rlp::encode(&b), data, "bodies have one encoding");
    }
    if let Ok(b) = decode_exact::<Block>(data) {
        assert_eq!(decode_exact::<Block>(&alloy_rlp::encode(&b)).unwrap(), b);
        let _ = b.compute_transactions_root();
    }
    let _ = decode_exact::<CommitCertificate>(data);
});
