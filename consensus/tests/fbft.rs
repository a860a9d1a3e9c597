//! FBFT driven message by message, and a 4-node cluster in one thread.

mod common;

use alloy_primitives::Bytes;
use common::*;
use consensus::{Effect, Input, Message, Timer};
use hsm::{MsgKind, Signer};
use std::sync::Arc;

#[test]
fn validator_walks_through_every_phase() {
    let mut c = Cluster::new(&[1, 1, 1, 1], 1000);
    let spec = c.spec.clone();
    let committee = c.committee.clone();
    // Node 0 leads view 1. Drive node 1 by hand.
    let mut v = fresh(&spec, &committee, 1);
    let now = GENESIS_MS + 10;
    let eff = v.step(now, Input::Start);
    assert!(
        matches!(
            &eff[..],
            [Effect::Schedule(
                Timer::ViewTimeout { number: 1, view: 1 },
                _
            )]
        ),
        "a validator only arms its view timer: {eff:?}"
    );

    // Leader builds block 1.
    let mut leader = fresh(&spec, &committee, 0);
    let eff = leader.step(now, Input::Start);
    assert!(matches!(
        eff[0],
        Effect::Schedule(Timer::Propose { number: 1, view: 1 }, _)
    ));
    let eff = leader.step(now, Input::Timeout(Timer::Propose { number: 1, view: 1 }));
    let block = build(&committee, &eff[0], now);
    let hash = block.hash();

    // Announce → sign prepare and validate in parallel.
    let eff = v.step(
        now,
        Input::Message {
            from: peer(0),
            msg: Message::Announce(Box::new(consensus::Announce {
                block: block.clone(),
            })),
        },
    );
    let Effect::Sign(req) = find(&eff, |e| matches!(e, Effect::Sign(_))) else {
        unreachable!()
    };
    assert_eq!(
        (req.kind, req.number, req.view, req.hash),
        (MsgKind::Prepare, 1, 1, hash.0)
    );
    find(
        &eff,
        |e| matches!(e, Effect::Validate(b) if b.hash() == hash),
    );
    let sigs = c.nodes[1].signer.sign(req).unwrap();
    let eff = v.step(
        now,
        Input::Signed {
            req: *req,
            signatures: sigs,
        },
    );
    assert!(
        matches!(&eff[..], [Effect::Send(p, Message::Prepare(vote))] if vote.hash == hash && *p == peer(0))
    );

    // A prepared certificate from nodes 0, 2, 3.
    let prepared = cert(&c, MsgKind::Prepare, &[0, 2, 3], 1, 1, hash);
    let eff = v.step(
        now,
        Input::Message {
            from: peer(0),
            msg: Message::Prepared(prepared),
        },
    );
    let input = verified(&c, &eff[0]);
    let eff = v.step(now, input);
    assert!(
        eff.is_empty(),
        "no commit before the block validated: {eff:?}"
    );
    let eff = v.step(
        now,
        Input::Validated {
            hash,
            result: Ok(()),
        },
    );
    let Effect::Sign(req) = find(&eff, |e| matches!(e, Effect::Sign(_))) else {
        panic!("{eff:?}")
    };
    assert_eq!(req.kind, MsgKind::Commit);
    let sigs = c.nodes[1].signer.sign(req).unwrap();
    let eff = v.step(
        now,
        Input::Signed {
            req: *req,
            signatures: sigs,
        },
    );
    assert!(matches!(&eff[..], [Effect::Send(p, Message::Commit(_))] if *p == peer(0)));

    // Committed certificate → finalize.
    let committed = cert(&c, MsgKind::Commit, &[0, 1, 2], 1, 1, hash);
    let eff = v.step(
        now,
        Input::Message {
            from: peer(0),
            msg: Message::Committed(committed.clone()),
        },
    );
    let input = verified(&c, &eff[0]);
    let eff = v.step(now, input);
    assert!(
        matches!(&eff[..], [Effect::Finalize { block: b, cert }] if b.hash() == hash && cert == &committed)
    );
    c.now_ms = now;
}

/// Certificate over `kind` by `members` (one key each).
fn cert(
    c: &Cluster,
    kind: MsgKind,
    members: &[usize],
    number: u64,
    view: u64,
    hash: alloy_primitives::B256,
) -> state::CommitCertificate {
    let req = hsm::SignRequest {
        kind,
        chain_id: CHAIN_ID,
        shard: 0,
        number,
        view,
        hash: hash.0,
    };
    let mut bitmap = state::Bitmap::with_len(c.committee.key_count());
    let mut sigs = vec![];
    for &m in members {
        sigs.extend(c.nodes[m].signer.sign(&req).unwrap());
        bitmap.union_with(&c.committee.member_bitmap(m));
    }
    let agg = accel::AggregateSignature::aggregate(&sigs)
        .unwrap()
        .to_signature();
    state::CommitCertificate {
        number,
        view,
        hash,
        signature: Bytes::copy_from_slice(&agg.to_bytes()),
        bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
    }
}

#[test]
fn minority_certificate_and_forged_signature_are_refused() {
    let c = Cluster::new(&[1, 1, 1, 1], 1000);
    let spec = c.spec.clone();
    let mut leader = fresh(&spec, &c.committee, 0);
    let now = GENESIS_MS + 10;
    leader.step(now, Input::Start);
    let eff = leader.step(now, Input::Timeout(Timer::Propose { number: 1, view: 1 }));
    let block = build(&c.committee, &eff[0], now);
    let hash = block.hash();
    let mut v = fresh(&spec, &c.committee, 1);
    v.step(
        now,
        Input::Message {
            from: peer(0),
            msg: Message::Announce(Box::new(consensus::Announce { block })),
        },
    );

    // 2 of 4 is no quorum: refused before any pairing.
    let weak = cert(&c, MsgKind::Commit, &[0, 2], 1, 1, hash);
    let eff = v.step(
        now,
        Input::Message {
            from: peer(0),
            msg: Message::Committed(weak),
        },
    );
    assert!(
        matches!(&eff[..], [Effect::PeerFault { peer: p, kind: consensus::FaultKind::Protocol, reason }] if reason.contains("quorum") && *p == peer(0)),
        "{eff:?}"
    );

    // A prepare certificate replayed as a commit certificate fails verification.
    let replay = cert(&c, MsgKind::Prepare, &[0, 2, 3], 1, 1, hash);
    let eff = v.step(
        now,
        Input::Message {
            from: peer(2),
            msg: Message::Committed(replay),
        },
    );
    let input = verified(&c, &eff[0]);
    let eff = v.step(now, input);
    assert!(
        matches!(&eff[..], [Effect::PeerFault { peer: p, .. }] if *p == peer(2)),
        "{eff:?}"
    );
}

#[test]
fn announce_checks_refuse_bad_proposals() {
    let c = Cluster::new(&[1, 1, 1, 1], 1000);
    let spec = c.spec.clone();
    let now = GENESIS_MS + 10;
    let mut leader = fresh(&spec, &c.committee, 0);
    leader.step(now, Input::Start);
    let eff = leader.step(now, Input::Timeout(Timer::Propose { number: 1, view: 1 }));
    let good = build(&c.committee, &eff[0], now);

    type Mutation = Box<dyn Fn(&mut state::Block)>;
    let cases: Vec<(usize, Mutation, &str)> = vec![
        (2, Box::new(|_| {}), "not its leader"),
        (
            0,
            Box::new(|b| b.header.timestamp_ms = GENESIS_MS + 60_000),
            "in the future",
        ),
        (
            0,
            Box::new(|b| b.header.timestamp_ms = GENESIS_MS),
            "not after the parent",
        ),
        (
            0,
            Box::new(|b| b.header.parent_hash = Default::default()),
            "does not extend our tip",
        ),
        (
            0,
            Box::new(|b| b.header.last_commit_view = 3),
            "block 1 carries a parent commit certificate",
        ),
        (0, Box::new(|b| b.header.version = 3), "header version 3"),
        // Version 2 announced without the fields version 2 has.
        (0, Box::new(|b| b.header.version = 2), "header version 2"),
        (
            0,
            Box::new(|b| b.header.leader = Default::default()),
            "leader field",
        ),
        (0, Box::new(|b| b.header.gas_limit = 1), "gas limit"),
        (
            0,
            Box::new(|b| b.body.transactions.push(Bytes::from_static(b"x"))),
            "transactions root",
        ),
    ];
    for (from, mutate, want) in cases {
        let mut v = fresh(&spec, &c.committee, 1);
        let mut block = good.clone();
        mutate(&mut block);
        let eff = v.step(
            now,
            Input::Message {
                from: peer(from),
                msg: Message::Announce(Box::new(consensus::Announce { block })),
            },
        );
        assert!(
            matches!(&eff[..], [Effect::PeerFault { reason, .. }] if reason.contains(want)),
            "want fault `{want}`, got {eff:?}"
        );
    }
}

#[test]
fn leader_finds_bad_votes_and_still_certifies() {
    let c = Cluster::new(&[1, 1, 1, 1], 1000);
    let spec = c.spec.clone();
    let now = GENESIS_MS + 10;
    let mut leader = fresh(&spec, &c.committee, 0);
    leader.step(now, Input::Start);
    let eff = leader.step(now, Input::Timeout(Timer::Propose { number: 1, view: 1 }));
    let block = build(&c.committee, &eff[0], now);
    let hash = block.hash();
    let eff = leader.step(now, Input::Proposal(block));
    assert!(matches!(eff[0], Effect::Broadcast(Message::Announce(_))));
    let Effect::Sign(req) = find(&eff, |e| matches!(e, Effect::Sign(_))) else {
        panic!()
    };
    let own = c.nodes[0].signer.sign(req).unwrap();
    assert!(leader
        .step(
            now,
            Input::Signed {
                req: *req,
                signatures: own
            }
        )
        .is_empty());

    let vote = |m: usize, sign_hash: alloy_primitives::B256| {
        let r = hsm::SignRequest {
            hash: sign_hash.0,
            ..*req
        };
        let s = c.nodes[m].signer.sign(&r).unwrap()[0];
        consensus::Vote {
            number: 1,
            view: 1,
            hash,
            bitmap: Bytes::copy_from_slice(c.committee.member_bitmap(m).as_bytes()),
            signature: Bytes::copy_from_slice(&s.to_uncompressed()),
        }
    };
    // A vote claiming another member's key is refused outright.
    let eff = leader.step(
        now,
        Input::Message {
            from: peer(3),
            msg: Message::Prepare(vote(2, hash)),
        },
    );
    assert!(matches!(&eff[..], [Effect::PeerFault { peer: p, .. }] if *p == peer(3)));
    // Node 1's vote signs the wrong hash; nodes 2 and 3 vote correctly.
    assert!(leader
        .step(
            now,
            Input::Message {
                from: peer(1),
                msg: Message::Prepare(vote(1, Default::default()))
            }
        )
        .is_empty());
    let eff = leader.step(
        now,
        Input::Message {
            from: peer(2),
            msg: Message::Prepare(vote(2, hash)),
        },
    );
    let Effect::VerifyQuorum(job) = &eff[0] else {
        panic!("{eff:?}")
    };
    assert_eq!(job.votes.len(), 2, "optimistic batch of both pending votes");
    assert!(
        job.votes.iter().all(|(_, s)| s.len() == 192),
        "votes go to the engine as the wire bytes"
    );
    let input = verified(&c, &eff[0]);
    let eff = leader.step(now, input);
    assert!(
        matches!(&eff[..], [Effect::PeerFault { peer: p, .. }] if *p == peer(1)),
        "bad vote isolated: {eff:?}"
    );
    let eff = leader.step(
        now,
        Input::Message {
            from: peer(3),
            msg: Message::Prepare(vote(3, hash)),
        },
    );
    let input = verified(&c, &eff[0]);
    let eff = leader.step(now, input);
    let Effect::Broadcast(Message::Prepared(p)) = &eff[0] else {
        panic!("{eff:?}")
    };
    let bm = state::Bitmap::from_bytes(&p.bitmap, 4).unwrap();
    assert_eq!(bm.ones().collect::<Vec<_>>(), vec![0, 2, 3]);
    assert!(
        matches!(find(&eff, |e| matches!(e, Effect::Sign(_))), Effect::Sign(r) if r.kind == MsgKind::Commit)
    );
}

#[test]
fn four_nodes_finalize_twenty_blocks_with_rotation() {
    let mut c = Cluster::new(&[1, 1, 1, 1], 2);
    c.start();
    c.run_until(20, 100_000);
    c.assert_agreement();
    for n in &c.nodes {
        assert_eq!(n.fbft.tip().number, 20);
        assert!(n.faults.is_empty(), "{:?}", n.faults);
    }
    // Leaders rotated every 2 blocks across all 4 members.
    let leaders: Vec<_> = c.nodes[0]
        .chain
        .iter()
        .map(|(b, _)| b.header.leader)
        .collect();
    for (i, l) in leaders.iter().enumerate() {
        let member = (i / 2) % 4;
        assert_eq!(*l, c.committee.members[member].address, "block {}", i + 1);
    }
    // Block N+1 carries N's certificate.
    let chain = &c.nodes[1].chain;
    for w in chain.windows(2) {
        assert_eq!(w[1].0.header.parent_hash, w[0].0.hash());
        assert!(!w[1].0.header.last_commit_signature.is_empty());
    }
}

#[test]
fn multi_key_members_and_a_down_node() {
    // Member 3 holds 3 keys but the same power as the others.
    let mut c = Cluster::new(&[1, 2, 1, 3], 1000);
    c.nodes[2].up = false;
    c.start();
    c.run_until(10, 100_000);
    for i in [0, 1, 3] {
        assert_eq!(c.nodes[i].fbft.tip().number, 10);
    }
    c.assert_agreement();
    // Every certificate lacks node 2's key and counts member 3's three keys.
    for (_, cert) in &c.nodes[0].chain {
        let bm = state::Bitmap::from_bytes(&cert.bitmap, 7).unwrap();
        assert!(!bm.get(3));
        assert!(bm.get(4) && bm.get(5) && bm.get(6));
    }
    // Node 2 comes back, hears the next announce, catches up and then takes part.
    c.nodes[2].up = true;
    c.run_until(14, 100_000);
    assert!(c.nodes[2].fbft.tip().number >= 13);
    c.assert_agreement();
    let _ = Arc::strong_count(&c.committee);
}

#[test]
fn block_that_fails_validation_is_never_committed_by_that_node() {
    let mut c = Cluster::new(&[1, 1, 1, 1], 1000);
    c.start();
    c.run_until(2, 10_000);
    // Node 3 will reject block 3: it must not send a commit for it.
    let mut probe = c.nodes[0].fbft.tip().clone();
    probe.number += 1;
    c.start();
    // Deliver until block 3 exists at the leader, marking it rejected at node 3 first.
    for _ in 0..10_000 {
        if let Some((_, _, Message::Announce(a))) = c.wire.front() {
            if a.block.number() == 3 {
                c.nodes[3].reject = Some(a.block.hash());
            }
        }
        if c.nodes[0].fbft.tip().number >= 3 || !c.tick() {
            break;
        }
    }
    assert_eq!(
        c.nodes[0].fbft.tip().number,
        3,
        "three honest validators suffice"
    );
    let cert = &c.nodes[0].chain[2].1;
    let bm = state::Bitmap::from_bytes(&cert.bitmap, 4).unwrap();
    assert!(!bm.get(3), "node 3 committed a block it found invalid");
    c.assert_agreement();
}

/// Catch-up checks a response's certificates as one batch, and names the bad one when the
/// batch fails.
#[test]
fn fetched_certificates_verify_as_a_batch() {
    let c = Cluster::new(&[1, 2, 1, 1], 1000);
    let hash = |n: u8| alloy_primitives::B256::repeat_byte(n);
    let certs: Vec<_> = (1..=8u8)
        .map(|n| cert(&c, MsgKind::Commit, &[0, 1, 2], n as u64, n as u64, hash(n)))
        .collect();
    for engine in [accel::Engine::reference(), c.engine.clone()] {
        let check = |certs: &[state::CommitCertificate]| {
            consensus::verify_commit_certificates(&engine, &c.committee, CHAIN_ID, 0, certs)
        };
        assert_eq!(check(&certs), Ok(()));
        assert_eq!(check(&[]), Ok(()));
        let mut bad = certs.clone();
        bad[5].hash = hash(99); // signed for another block
        assert_eq!(
            check(&bad),
            Err(consensus::CertificateError::DoesNotVerify { number: 6 })
        );
        let mut minority = certs.clone();
        minority[2] = cert(&c, MsgKind::Commit, &[0, 2], 3, 3, hash(3));
        assert!(matches!(
            check(&minority),
            Err(consensus::CertificateError::Of { number: 3, error })
                if *error == consensus::CertificateError::NoQuorum
        ));
    }
}

/// A vote batch whose verification comes back after the leader left the view counts for
/// nothing: no certificate of the old view's votes in the new view (results are tagged with
/// the view and block they were asked for).
#[test]
fn a_late_vote_result_is_dropped_after_a_view_change() {
    let c = Cluster::new(&[1, 1, 1, 1], 1000);
    let now = GENESIS_MS + 10;
    let (mut leader, block) = leader_with_block_1(&c, now);
    let hash = block.hash();
    let eff = leader.step(now, Input::Proposal(block));
    let Effect::Sign(req) = find(&eff, |e| matches!(e, Effect::Sign(_))) else {
        unreachable!()
    };
    let req = *req;
    let own = c.nodes[0].signer.sign(&req).unwrap();
    leader.step(
        now,
        Input::Signed {
            req,
            signatures: own,
        },
    );
    let mut job = None;
    for m in [1, 2] {
        let s = c.nodes[m].signer.sign(&req).unwrap()[0];
        let vote = consensus::Vote {
            number: 1,
            view: 1,
            hash,
            bitmap: Bytes::copy_from_slice(c.committee.member_bitmap(m).as_bytes()),
            signature: Bytes::copy_from_slice(&s.to_uncompressed()),
        };
        let eff = leader.step(
            now,
            Input::Message {
                from: peer(m),
                msg: Message::Prepare(vote),
            },
        );
        job = job.or(eff
            .into_iter()
            .find(|e| matches!(e, Effect::VerifyQuorum(_))));
    }
    let job = job.expect("a quorum of votes went to verification");
    // The view times out before the result is back.
    let eff = leader.step(
        now + 60_000,
        Input::Timeout(Timer::ViewTimeout { number: 1, view: 1 }),
    );
    assert!(eff
        .iter()
        .any(|e| matches!(e, Effect::ViewChanged { view: 2, .. })));
    let eff = leader.step(now + 60_000, verified(&c, &job));
    assert!(
        eff.is_empty(),
        "a stale vote result produced effects (a certificate of view 1 in view 2?): {eff:?}"
    );
}

/// An announce whose parent-certificate check comes back after the validator left its view is
/// not prepared: it would be a prepare vote in the new view for the old view's block.
#[test]
fn a_late_announce_check_does_not_prepare_in_a_new_view() {
    let mut c = Cluster::new(&[1, 1, 1, 1], 1000);
    c.start();
    c.run_until(1, 10_000);
    assert!(c.nodes.iter().all(|n| n.fbft.tip().number == 1));
    // Let the leader of height 2 propose; keep its announce off the wire.
    let announce = loop {
        if let Some(pos) = c
            .wire
            .iter()
            .position(|(_, to, m)| *to == 1 && m.name() == "announce")
        {
            break c.wire.remove(pos).unwrap();
        }
        assert!(c.tick(), "no announce for height 2");
    };
    let (from, _, msg) = announce;
    let v = &mut c.nodes[1].fbft;
    let (number, view, _) = v.round();
    let now = c.now_ms;
    let eff = v.step(
        now,
        Input::Message {
            from: peer(from),
            msg,
        },
    );
    let job = eff
        .into_iter()
        .find(|e| matches!(e, Effect::Verify(_)))
        .expect("the parent certificate goes to verification");
    // The view's time passes before the check is back.
    let later = now + 60_000;
    let eff = v.step(later, Input::Timeout(Timer::ViewTimeout { number, view }));
    assert!(eff.iter().any(|e| matches!(e, Effect::ViewChanged { .. })));
    let result = verified(&c, &job);
    let eff = c.nodes[1].fbft.step(later, result);
    assert!(
        !eff.iter()
            .any(|e| matches!(e, Effect::Sign(r) if r.kind == MsgKind::Prepare)),
        "prepared the old view's block in the new view: {eff:?}"
    );
}

/// A peer outside every committee this node knows, voting at the round's height or the tip's,
/// is forging (and is faulted); at a later height it may be a later epoch's member and is only
/// ignored.
#[test]
fn votes_from_outside_the_committee_are_faults_where_membership_is_known() {
    let spec = spec(&[1, 1, 1, 1], 1);
    let committee = Arc::new(consensus::Committee::from_spec(&spec).unwrap());
    let mut v = fresh(&spec, &committee, 1);
    let now = 1_000;
    v.step(now, Input::Start);
    let outsider = [0xee; 32];
    let vote = |number| consensus::Vote {
        number,
        view: 1,
        hash: [7; 32].into(),
        bitmap: Bytes::from_static(&[0x0f]),
        signature: Bytes::from(vec![0u8; 192]),
    };
    for (number, msg) in [
        (1, Message::Prepare(vote(1))),
        (1, Message::Commit(vote(1))),
        (0, Message::Commit(vote(0))),
    ] {
        let eff = v.step(
            now,
            Input::Message {
                from: outsider,
                msg,
            },
        );
        assert!(
            matches!(&eff[..], [Effect::PeerFault { peer, kind: consensus::FaultKind::Protocol, reason }]
                if *peer == outsider && reason.contains("outside the committee") && reason.contains(&format!("#{number}"))),
            "{eff:?}"
        );
    }
    // A later height: no blame (a member of a later epoch may be ahead of this node).
    let eff = v.step(
        now,
        Input::Message {
            from: outsider,
            msg: Message::Prepare(vote(5)),
        },
    );
    assert!(
        !eff.iter().any(|e| matches!(e, Effect::PeerFault { .. })),
        "{eff:?}"
    );
}
