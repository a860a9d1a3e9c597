//! A Byzantine leader that proposes two blocks at one height and certifies each with the votes
//! it gets, helped by a second Byzantine validator that votes for both. 7 validators (f = 2),
//! five honest `Fbft`s behind the real guard. The honest nodes split 3 / 2 between the blocks,
//! so with both Byzantine votes the blocks hold 5 and 4 of 7: only a quorum rule of more than
//! 2/3 keeps the second block from being certified. This is the test that catches a quorum
//! weakened to more than 1/2 (`Committee::is_quorum`).

mod common;

use accel::{AggregateSignature, Signature};
use alloy_primitives::{Bytes, B256};
use common::*;
use consensus::{Announce, Input, Message};
use hsm::{MsgKind, SignRequest, Signer};
use state::{Bitmap, Block, BlockTemplate, CommitCertificate};

const LEADER: usize = 0;
const COLLUDER: usize = 6;
const N: usize = 7;

fn byzantine(i: usize) -> bool {
    i == LEADER || i == COLLUDER
}

/// Delivers the wire; what is addressed to a Byzantine node is returned instead.
fn flush(c: &mut Cluster) -> Vec<(usize, Message)> {
    let mut inbox = Vec::new();
    while let Some((from, to, msg)) = c.wire.pop_front() {
        if byzantine(to) {
            inbox.push((from, msg));
        } else {
            c.input(
                to,
                Input::Message {
                    from: peer(from),
                    msg,
                },
            );
        }
    }
    inbox
}

fn block(c: &Cluster, timestamp_offset: u64) -> Block {
    BlockTemplate {
        number: 1,
        view: 1,
        epoch: 0,
        shard: 0,
        parent_hash: c.spec.genesis().hash(),
        timestamp_ms: GENESIS_MS + 1000 + timestamp_offset,
        leader: c.committee.members[LEADER].address,
        last_commit: None,
        transactions: vec![],
        vrf: Default::default(),
    }
    .build()
}

fn sign(c: &Cluster, who: usize, kind: MsgKind, hash: B256) -> Signature {
    let req = SignRequest {
        kind,
        chain_id: CHAIN_ID,
        shard: 0,
        number: 1,
        view: 1,
        hash: hash.0,
    };
    c.nodes[who].signer.sign(&req).unwrap()[0]
}

/// The leader's certificate of `kind` on `hash` from the honest votes in `inbox` and both
/// Byzantine signatures, if the committee's quorum rule lets it call that a quorum.
fn certify(
    c: &Cluster,
    inbox: &[(usize, Message)],
    kind: MsgKind,
    hash: B256,
) -> Option<CommitCertificate> {
    let mut sigs = vec![sign(c, LEADER, kind, hash), sign(c, COLLUDER, kind, hash)];
    let mut bitmap = Bitmap::with_len(N);
    bitmap.set(LEADER);
    bitmap.set(COLLUDER);
    for (from, m) in inbox {
        let v = match (kind, m) {
            (MsgKind::Prepare, Message::Prepare(v)) | (MsgKind::Commit, Message::Commit(v)) => v,
            _ => continue,
        };
        if v.hash == hash && !bitmap.get(*from) {
            sigs.push(Signature::decode(&v.signature).unwrap());
            bitmap.set(*from);
        }
    }
    if !c.committee.is_quorum(c.committee.power_of(&bitmap)) {
        return None;
    }
    let agg = AggregateSignature::aggregate(&sigs).unwrap().to_signature();
    Some(CommitCertificate {
        number: 1,
        view: 1,
        hash,
        signature: Bytes::copy_from_slice(&agg.to_bytes()),
        bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
    })
}

fn send(c: &mut Cluster, to: &[usize], m: &Message) {
    for &t in to {
        c.wire.push_back((LEADER, t, m.clone()));
    }
}

#[test]
fn equivocating_leader_with_a_colluder_cannot_finalize_two_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(&[1; N], 1);
    c.nodes[LEADER].up = false;
    c.nodes[COLLUDER].up = false;
    for i in (0..N).filter(|&i| !byzantine(i)) {
        c.guard(i, &dir.path().join(format!("guard-{i}")));
    }
    c.start();
    c.now_ms = GENESIS_MS + 1000;
    let (a, a2) = (block(&c, 0), block(&c, 1));
    assert_ne!(a.hash(), a2.hash());
    let sides: [(&[usize], &Block); 2] = [(&[1, 2, 3], &a), (&[4, 5], &a2)];

    for (to, b) in sides {
        let m = Message::Announce(Box::new(Announce { block: b.clone() }));
        send(&mut c, to, &m);
    }
    let mut inbox = flush(&mut c);
    for kind in [MsgKind::Prepare, MsgKind::Commit] {
        for (to, b) in sides {
            if let Some(cert) = certify(&c, &inbox, kind, b.hash()) {
                let m = match kind {
                    MsgKind::Prepare => Message::Prepared(cert),
                    _ => Message::Committed(cert),
                };
                send(&mut c, to, &m);
            }
        }
        inbox.extend(flush(&mut c));
    }

    // Both sides prepared what they were shown, each honest node once.
    let prepared = |hash: B256| {
        inbox
            .iter()
            .filter(|(_, m)| matches!(m, Message::Prepare(v) if v.hash == hash))
            .count()
    };
    assert_eq!((prepared(a.hash()), prepared(a2.hash())), (3, 2));
    c.assert_agreement();
    let finalized: Vec<B256> = c
        .nodes
        .iter()
        .filter_map(|n| n.chain.first().map(|(b, _)| b.hash()))
        .collect();
    assert_eq!(
        finalized,
        vec![a.hash(); 3],
        "only the 5-of-7 block is final"
    );

    // The two that were shown the other block finish the height on `a` too (catch-up).
    c.run_until(1, 10_000);
    c.assert_agreement();
    for i in (0..N).filter(|&i| !byzantine(i)) {
        assert_eq!(c.nodes[i].chain[0].0.hash(), a.hash(), "node {i}");
    }
}
