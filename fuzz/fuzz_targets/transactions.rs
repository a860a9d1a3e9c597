#![no_main]
//! Any bytes as a transaction (`eth_sendRawTransaction`, relayed batches, block bodies) and as
//! a staking transaction (`hmy_sendRawStakingTransaction`): decoding and sender recovery never
//! panic, and a decoded transaction's cost never wraps.

use libfuzzer_sys::fuzz_target;
use state::staking::SignedStakingTx;
use state::tx::SignedTx;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = SignedTx::decode(data, 31_415_926) {
        let _ = tx.max_cost();
        let _ = tx.tx_env();
    }
    if let Ok(tx) = SignedStakingTx::decode(data, 31_415_926) {
        assert_eq!(tx.raw.as_ref(), data);
        assert_eq!(tx.sender, tx.tx.msg.signer());
    }
});
