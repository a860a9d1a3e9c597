//! The leader's VRF: signed through the signer as its own message kind before the block is
//! built, carried in the header, verified by validators with the parent checks; forged,
//! missing or malformed ones refused.

mod common;

use common::*;
use consensus::{Effect, Input, Message, Timer};
use hsm::{MsgKind, Signer};
use std::sync::Arc;

#[test]
fn the_leader_signs_a_vrf_and_a_forged_one_is_refused() {
    let mut spec = spec(&[1, 1, 1, 1], 1000);
    spec.forks.insert(state::forks::VRF.into(), 0);
    let committee = Arc::new(consensus::Committee::from_spec(&spec).unwrap());
    let now = GENESIS_MS + 10;
    let engine = accel::Engine::reference();

    // The leader signs its VRF (its own message kind, over the parent hash) before building.
    let mut leader = fresh(&spec, &committee, 0);
    leader.step(now, Input::Start);
    let eff = leader.step(now, Input::Timeout(Timer::Propose { number: 1, view: 1 }));
    let [Effect::Sign(req)] = &eff[..] else {
        panic!("expected the VRF signature request first: {eff:?}")
    };
    let genesis = spec.genesis().hash();
    assert_eq!(
        (req.kind, req.number, req.view, req.hash),
        (MsgKind::Vrf, 1, 1, genesis.0)
    );
    let signatures = signer(&spec, 0).sign(req).unwrap();
    let eff = leader.step(
        now,
        Input::Signed {
            req: *req,
            signatures: signatures.clone(),
        },
    );
    let block = build(&committee, &eff[0], now);
    assert_eq!(block.header.vrf.len(), state::VRF_BYTES);
    assert_eq!(
        block.header.vrf,
        consensus::rules::vrf_field(&signatures[0]),
        "β ‖ π with π the leader key's signature"
    );
    // PREVRANDAO is β.
    assert_eq!(
        state::exec::inputs_of(&block.header).prevrandao,
        block.header.vrf_output().unwrap()
    );

    // A validator verifies it with the parent checks, then prepares.
    let announce = |block: &state::Block| Input::Message {
        from: peer(0),
        msg: Message::Announce(Box::new(consensus::Announce {
            block: block.clone(),
        })),
    };
    let mut v = fresh(&spec, &committee, 1);
    v.step(now, Input::Start);
    let eff = v.step(now, announce(&block));
    let job = find(&eff, |e| matches!(e, Effect::Verify(_)));
    let Effect::Verify(job) = job else {
        unreachable!()
    };
    let eff = v.step(now, consensus::run_verify_job(&engine, job));
    let Effect::Sign(prepare) = find(&eff, |e| matches!(e, Effect::Sign(_))) else {
        unreachable!()
    };
    assert_eq!(prepare.kind, MsgKind::Prepare);

    // Forged: another key's signature of the same request, with a matching β.
    let mut forged = block.clone();
    let other = signer(&spec, 1).sign(req).unwrap()[0];
    forged.header.vrf = consensus::rules::vrf_field(&other);
    let mut v = fresh(&spec, &committee, 2);
    v.step(now, Input::Start);
    let eff = v.step(now, announce(&forged));
    let Effect::Verify(job) = find(&eff, |e| matches!(e, Effect::Verify(_))) else {
        unreachable!()
    };
    let eff = v.step(now, consensus::run_verify_job(&engine, job));
    assert!(
        matches!(&eff[..], [Effect::PeerFault { kind: consensus::FaultKind::BadSignature, reason, .. }] if reason.contains("VRF")),
        "{eff:?}"
    );
    // Missing, or β not the hash of π: refused before any pairing.
    for (vrf, want) in [
        (alloy_primitives::Bytes::new(), "bytes"),
        (
            {
                let mut b = block.header.vrf.to_vec();
                b[0] ^= 1;
                b.into()
            },
            "sha256",
        ),
    ] {
        let mut bad = block.clone();
        bad.header.vrf = vrf;
        let mut v = fresh(&spec, &committee, 3);
        v.step(now, Input::Start);
        let eff = v.step(now, announce(&bad));
        assert!(
            matches!(&eff[..], [Effect::PeerFault { kind: consensus::FaultKind::InvalidBlock, reason, .. }] if reason.contains(want)),
            "{want}: {eff:?}"
        );
    }
}
