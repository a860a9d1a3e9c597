//! The committee hand-off as one node sees it: messages of a later height from a member of
//! the next epoch's committee (not of ours) still tell us we are behind, and a message of our
//! height from a non-member is a fault (nobody outside our height's committee speaks there).
//!
//! Found by the simulation (seed 12500000000595 before this fix): at an epoch's last block,
//! two members of the next committee missed the block's Committed message; the only nodes
//! ahead were a Byzantine one, one benched in the new epoch (silent as an observer), and the
//! newcomer, whose messages the two ignored as a non-member's. Nobody told them to catch up.

mod common;

use common::*;
use consensus::{Committees, Effect, Fbft, Input, Message, ViewChange};
use std::sync::Arc;

#[test]
fn a_later_committee_member_tells_a_node_it_is_behind() {
    // Five validators in the spec; epoch 0's committee is the first four.
    let spec = spec(&[1, 1, 1, 1, 1], 1);
    let first_four = state::ChainSpec {
        validators: spec.validators[..4].to_vec(),
        ..spec.clone()
    };
    let committee = Arc::new(consensus::Committee::from_spec(&first_four).unwrap());
    let mut node = Fbft::new(
        config(&spec, 0),
        Committees::same(committee),
        genesis_tip(&spec),
        vec![],
        None,
    );
    node.step(GENESIS_MS, Input::Start);
    let vc = |number: u64| {
        Message::ViewChange(Box::new(ViewChange {
            number,
            view: 3,
            prepared_hash: Default::default(),
            bitmap: vec![0b1_0000].into(),
            signature: vec![0; 96].into(),
            prepared: vec![],
        }))
    };
    // Height 2 from validator 4 (a member of a later committee only): we are behind.
    let eff = node.step(
        GENESIS_MS,
        Input::Message {
            from: peer(4),
            msg: vc(2),
        },
    );
    assert!(
        matches!(&eff[..], [Effect::Behind { peer: p, number: 1 }] if *p == peer(4)),
        "{eff:?}"
    );
    // Our own height from the same non-member: forged (a member of a later committee is
    // ahead of us, so it speaks of later heights only).
    let eff = node.step(
        GENESIS_MS,
        Input::Message {
            from: peer(4),
            msg: vc(1),
        },
    );
    assert!(
        matches!(&eff[..], [Effect::PeerFault { peer: p, kind: consensus::FaultKind::Protocol, .. }] if *p == peer(4)),
        "{eff:?}"
    );
}
