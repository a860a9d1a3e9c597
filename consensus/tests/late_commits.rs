//! The tip's certificate after the quorum: late commits folded in by the leader, relayed so
//! the next leader's header carries every signer; and double signing caught from the commit
//! votes a node receives.

mod common;

use alloy_primitives::Bytes;
use common::*;
use consensus::{Effect, Input, Message};
use hsm::{MsgKind, Signer};

/// A commit vote that arrived while the leader's batch was being verified is not lost when
/// the batch alone makes the certificate: it is verified afterwards and folded into the tip's
/// certificate, so the next header names that validator as live.
#[test]
fn a_vote_pending_at_certification_is_folded_into_the_tip_certificate() {
    let c = Cluster::new(&[1, 1, 1, 1], 1000);
    let now = GENESIS_MS + 10;
    let (mut leader, block) = leader_with_block_1(&c, now);
    let hash = block.hash();
    let vote = |m: usize, kind: MsgKind| {
        let req = hsm::SignRequest {
            kind,
            chain_id: CHAIN_ID,
            shard: 0,
            number: 1,
            view: 1,
            hash: hash.0,
        };
        let s = c.nodes[m].signer.sign(&req).unwrap()[0];
        let v = consensus::Vote {
            number: 1,
            view: 1,
            hash,
            bitmap: Bytes::copy_from_slice(c.committee.member_bitmap(m).as_bytes()),
            signature: Bytes::copy_from_slice(&s.to_uncompressed()),
        };
        match kind {
            MsgKind::Prepare => Message::Prepare(v),
            _ => Message::Commit(v),
        }
    };
    // Runs the leader: signs its own votes, answers verification jobs unless held back.
    let mut held: Vec<Effect> = vec![];
    let run = |leader: &mut consensus::Fbft, input: Input, held: &mut Vec<Effect>, hold: bool| {
        let mut queue = std::collections::VecDeque::from([input]);
        let mut finalized = None;
        while let Some(i) = queue.pop_front() {
            for e in leader.step(now, i) {
                match e {
                    Effect::Sign(req) => queue.push_back(Input::Signed {
                        req,
                        signatures: c.nodes[0].signer.sign(&req).unwrap(),
                    }),
                    e @ (Effect::Verify(_) | Effect::VerifyQuorum(_)) if hold => held.push(e),
                    e @ (Effect::Verify(_) | Effect::VerifyQuorum(_)) => {
                        queue.push_back(verified(&c, &e))
                    }
                    Effect::Finalize { block, cert } => {
                        finalized = Some(cert.clone());
                        queue.push_back(Input::Persisted {
                            tip: consensus::Tip::of(&block, Some(cert)),
                            committees: consensus::Committees::same(c.committee.clone()),
                        });
                    }
                    _ => {}
                }
            }
        }
        finalized
    };
    run(&mut leader, Input::Proposal(block), &mut held, false);
    for m in [1, 2] {
        let msg = vote(m, MsgKind::Prepare);
        run(
            &mut leader,
            Input::Message { from: peer(m), msg },
            &mut held,
            false,
        );
    }
    // Commits of 1 and 2 go to verification and are held; node 3's arrives meanwhile.
    for m in [1, 2] {
        let msg = vote(m, MsgKind::Commit);
        run(
            &mut leader,
            Input::Message { from: peer(m), msg },
            &mut held,
            true,
        );
    }
    assert_eq!(held.len(), 1, "one batch in flight");
    let msg = vote(3, MsgKind::Commit);
    run(
        &mut leader,
        Input::Message { from: peer(3), msg },
        &mut held,
        true,
    );
    let batch = held.remove(0);
    let cert = run(&mut leader, verified(&c, &batch), &mut held, false).expect("certified");
    let signers = |b: &alloy_primitives::Bytes| {
        state::Bitmap::from_bytes(b, 4)
            .unwrap()
            .ones()
            .collect::<Vec<_>>()
    };
    assert_eq!(signers(&cert.bitmap), vec![0, 1, 2]);
    let tip = leader.tip().cert.clone().expect("tip certificate");
    assert_eq!(
        signers(&tip.bitmap),
        vec![0, 1, 2, 3],
        "node 3's pending vote folded in"
    );
    assert!(c.cert_valid(&tip));
}

/// Who signed the certificate each block carries for its parent, block by block from 2.
fn carried_signers(c: &Cluster, node: usize) -> Vec<Vec<usize>> {
    let n = c.committee.key_count();
    c.nodes[node]
        .chain
        .iter()
        .skip(1)
        .map(|(b, _)| {
            state::Bitmap::from_bytes(&b.header.last_commit_bitmap, n)
                .unwrap()
                .ones()
                .collect()
        })
        .collect()
}

#[test]
fn late_commits_reach_the_next_leader_so_every_signer_is_carried() {
    // Leaders change every block: the next header is built by a node that did not collect
    // the commits. The quorum is 3 of 4, so one commit always comes after it.
    let mut c = Cluster::new(&[1, 1, 1, 1], 1);
    c.start();
    c.run_until(12, 100_000);
    c.assert_agreement();
    for n in &c.nodes {
        assert!(n.faults.is_empty(), "{:?}", n.faults);
    }
    for (i, signers) in carried_signers(&c, 2).iter().enumerate() {
        assert_eq!(
            signers,
            &vec![0, 1, 2, 3],
            "block {} carries {signers:?}",
            i + 2
        );
    }
    // A stored certificate stays the one that finalized (a quorum); the header's is larger.
    let first = &c.nodes[2].chain[0].1;
    let count = state::Bitmap::from_bytes(&first.bitmap, 4).unwrap().count();
    assert!(count >= 3, "{count}");
}

#[test]
fn with_a_node_down_the_enlarged_certificate_goes_out_on_the_timer() {
    let mut c = Cluster::new(&[1, 1, 1, 1, 1], 1);
    c.nodes[4].up = false;
    c.start();
    c.run_until(10, 200_000);
    c.assert_agreement();
    // Quorum of five at equal power is four: the four up nodes all sign every block, and
    // each header carries all four even though node 4 never answers.
    for (i, signers) in carried_signers(&c, 1).iter().enumerate() {
        assert_eq!(
            signers,
            &vec![0, 1, 2, 3],
            "block {} carries {signers:?}",
            i + 2
        );
    }
}

#[test]
fn a_forged_larger_tip_certificate_is_refused_and_faulted() {
    // Node 3 is down: every certificate holds 0, 1 and 2 only.
    let mut c = Cluster::new(&[1, 1, 1, 1], 1);
    c.nodes[3].up = false;
    c.start();
    c.run_until(3, 100_000);
    let tip = c.nodes[1].fbft.tip().clone();
    let mut forged = tip.cert.clone().unwrap();
    assert_eq!(forged.bitmap, Bytes::from(vec![0b0111]));
    // Claims node 3 signed too, with the same aggregate signature.
    forged.bitmap = Bytes::from(vec![0b1111]);
    let msg = Message::Committed(forged);
    let effects = c.nodes[1]
        .fbft
        .step(c.now_ms, Input::Message { from: peer(0), msg });
    let job = effects
        .iter()
        .find(|e| matches!(e, Effect::Verify(_)))
        .expect("the larger certificate is checked");
    let input = verified(&c, job);
    let out = c.nodes[1].fbft.step(c.now_ms, input);
    assert!(
        out.iter().any(|e| matches!(e, Effect::PeerFault { .. })),
        "{out:?}"
    );
    assert_eq!(
        c.nodes[1].fbft.tip().cert,
        tip.cert,
        "the tip certificate is unchanged"
    );
}

#[test]
fn two_commit_votes_of_one_member_for_different_blocks_are_reported_even_after_junk() {
    let mut c = Cluster::new(&[1, 1, 1, 1], 1);
    c.start();
    c.run_until(2, 100_000);
    let (number, view, _) = c.nodes[0].fbft.round();
    let vote = |m: usize, hash: alloy_primitives::B256| {
        let req = hsm::SignRequest {
            kind: MsgKind::Commit,
            chain_id: CHAIN_ID,
            shard: 0,
            number,
            view,
            hash: hash.0,
        };
        let s = c.nodes[m].signer.sign(&req).unwrap()[0];
        Message::Commit(consensus::Vote {
            number,
            view,
            hash,
            bitmap: Bytes::copy_from_slice(c.committee.member_bitmap(m).as_bytes()),
            signature: Bytes::copy_from_slice(&s.to_uncompressed()),
        })
    };
    let (a, b, x) = (
        alloy_primitives::B256::repeat_byte(0xa),
        alloy_primitives::B256::repeat_byte(0xb),
        alloy_primitives::B256::repeat_byte(0xc),
    );
    // A junk vote first (its signature is another height's), then the real two.
    let junk = match vote(3, x) {
        Message::Commit(mut v) => {
            v.hash = alloy_primitives::B256::repeat_byte(0xd);
            Message::Commit(v)
        }
        _ => unreachable!(),
    };
    let mut evidence = vec![];
    let b_vote = vote(3, b);
    let b_again = b_vote.clone();
    let msgs = [
        (3, junk),
        (3, vote(3, a)),
        (3, vote(3, a)),
        (2, vote(2, a)),
        (3, b_vote),
    ];
    for (m, msg) in msgs {
        let from = peer(m);
        for e in c.nodes[0].fbft.step(c.now_ms, Input::Message { from, msg }) {
            if let Effect::Evidence(e) = e {
                evidence.push(*e);
            }
        }
    }
    // Each new vote is paired with every earlier one of that member: junk–a, junk–b, a–b.
    assert_eq!(evidence.len(), 3, "{evidence:?}");
    let valid: Vec<_> = evidence
        .iter()
        .filter(|e| e.check_signatures(CHAIN_ID, 0).is_ok())
        .collect();
    assert_eq!(valid.len(), 1, "only the real pair convicts");
    let e = valid[0];
    assert_eq!((e.number, e.view), (number, view));
    assert_eq!((e.first.hash, e.second.hash), (a, b));
    assert_eq!(
        e.keys,
        vec![state::staking::BlsKey::from(
            c.committee.keys[3].public_key.to_bytes()
        )]
    );
    assert_eq!(e.reporter, c.committee.members[0].address);
    // The same pair again is not reported twice.
    let again = c.nodes[0].fbft.step(
        c.now_ms,
        Input::Message {
            from: peer(3),
            msg: b_again,
        },
    );
    assert!(!again.iter().any(|e| matches!(e, Effect::Evidence(_))));
    // An honest run reports nobody.
    assert!(c.nodes.iter().all(|n| n.evidence.is_empty()));
}
