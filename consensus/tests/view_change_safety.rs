//! View change at one height, 4 validators (f = 1), written from the schedules that broke the
//! first view-change rules (issue 11): nodes 0-2 are honest `Fbft`s behind the real
//! double-sign guard, as in the appliance; node 3 is driven by hand and may lie. Leaders:
//! view 1 → node 0, 2 → 1, 3 → 2, 4 → 3.
//!
//! - `new_view_cannot_downgrade_a_lock`: after B is committed in view 3, node 3's NewView for
//!   view 4 pairs an honest view change for B (lock of view 3) with B's older view-1
//!   certificate, to make its own B″ (view 2) look like the highest lock. Before the fix,
//!   honest nodes prepared and committed B″: two commit certificates at height 1.
//! - `one_crashed_node_does_not_stop_the_chain`: the same views 1-2, then node 3 crashes.
//!   Before the fix, every later view re-proposed B with a commit payload at its header's view
//!   1, which node 1's guard (it had signed a commit in view 2) refused for ever.

mod common;

use accel::{AggregateSignature, Signature};
use alloy_primitives::{Bytes, B256};
use common::*;
use consensus::{Input, Message, NewView, Timer, ViewChange, ViewChangeGroup, Vote};
use hsm::{view_change_lock, MsgKind, SignRequest, Signer};
use state::{Bitmap, CommitCertificate};

const BYZ: usize = 3;
/// Messages that reached node 3: (sender, message).
type Inbox = Vec<(usize, Message)>;

/// Delivers the wire in order; messages to node 3 go to its inbox, those `lost` selects are
/// dropped.
fn flush(c: &mut Cluster, inbox: &mut Inbox, lost: impl Fn(usize, usize, &Message) -> bool) {
    while let Some((from, to, msg)) = c.wire.pop_front() {
        if to == BYZ {
            inbox.push((from, msg));
        } else if !lost(from, to, &msg) {
            c.input(
                to,
                Input::Message {
                    from: peer(from),
                    msg,
                },
            );
        }
    }
}

/// The view timers of `nodes` fire (a view's time has passed).
fn time_out(c: &mut Cluster, nodes: &[usize], view: u64) {
    c.now_ms += 10_000;
    for &i in nodes {
        c.input(i, Input::Timeout(Timer::ViewTimeout { number: 1, view }));
    }
}

/// Node 3 sends `m` to each of `to`.
fn send(c: &mut Cluster, to: &[usize], m: Message) {
    for &t in to {
        c.wire.push_back((BYZ, t, m.clone()));
    }
}

/// Node 3's signature on (kind, 1, view, hash).
fn byz_sign(c: &Cluster, kind: MsgKind, view: u64, hash: B256) -> Signature {
    let req = SignRequest {
        kind,
        chain_id: CHAIN_ID,
        shard: 0,
        number: 1,
        view,
        hash: hash.0,
    };
    c.nodes[BYZ].signer.sign(&req).unwrap()[0]
}

fn bits(members: &[usize]) -> Bytes {
    let mut b = Bitmap::with_len(4);
    members.iter().for_each(|&m| b.set(m));
    Bytes::copy_from_slice(b.as_bytes())
}

fn aggregate(sigs: &[Signature]) -> Bytes {
    let s = AggregateSignature::aggregate(sigs).unwrap().to_signature();
    Bytes::copy_from_slice(&s.to_bytes())
}

/// Node 3's vote of `kind` on (1, view, hash), sent to `to`.
fn byz_vote(c: &mut Cluster, to: usize, kind: MsgKind, view: u64, hash: B256) {
    let signature = Bytes::copy_from_slice(&byz_sign(c, kind, view, hash).to_bytes());
    let vote = Vote {
        number: 1,
        view,
        hash,
        bitmap: bits(&[BYZ]),
        signature,
    };
    let msg = match kind {
        MsgKind::Prepare => Message::Prepare(vote),
        _ => Message::Commit(vote),
    };
    send(c, &[to], msg);
}

/// Node 3's view change naming no lock (what a node that saw no Prepared in time sends).
fn byz_view_change(c: &mut Cluster, to: usize, view: u64) {
    let sig = byz_sign(c, MsgKind::ViewChange, view, B256::ZERO);
    let vc = ViewChange {
        number: 1,
        view,
        prepared_hash: B256::ZERO,
        bitmap: bits(&[BYZ]),
        signature: Bytes::copy_from_slice(&sig.to_bytes()),
        prepared: vec![],
    };
    send(c, &[to], Message::ViewChange(Box::new(vc)));
}

fn prepared_cert(inbox: &Inbox, view: u64, hash: B256) -> Option<CommitCertificate> {
    inbox.iter().find_map(|(_, m)| match m {
        Message::Prepared(p) if p.view == view && p.hash == hash => Some(p.clone()),
        _ => None,
    })
}

/// The hash honest node `i` signed in its (kind, view) slot of height 1, from its persisted
/// safety record.
fn signed(c: &Cluster, i: usize, kind: MsgKind, view: u64) -> Option<B256> {
    let votes = &c.nodes[i].safety.as_ref()?.votes;
    votes
        .iter()
        .find(|v| v.kind == kind as u8 && v.view == view)
        .map(|v| v.hash)
}

/// Honest nodes that sent node 3 a prepare vote for (1, view, hash).
fn preparers(inbox: &Inbox, view: u64, hash: B256) -> Vec<usize> {
    inbox
        .iter()
        .filter(|(_, m)| matches!(m, Message::Prepare(v) if v.view == view && v.hash == hash))
        .map(|(f, _)| *f)
        .collect()
}

struct Setup {
    c: Cluster,
    inbox: Inbox,
    b: B256,
    b2: state::Block,
    _dir: tempfile::TempDir,
}

/// Views 1 and 2, and the start of view 3:
/// - view 1: node 0 proposes B, all honest prepare; only node 0 (the leader) sees P1(B) and
///   locks it;
/// - view 2: node 1 leads with view changes {1, 2, 3} (node 0's, carrying B, comes late) and
///   proposes a fresh B″; node 0 refuses it (it conflicts with its lock), node 3 prepares it, so
///   only node 1 sees P2(B″), locks it and signs Commit(1, 2, B″);
/// - nodes 0-2 time out of view 2; node 3 sends node 2 a view change naming no lock.
fn views_1_and_2(guarded: &[usize]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(&[1, 1, 1, 1], 1);
    c.nodes[BYZ].up = false;
    for &i in guarded {
        c.guard(i, &dir.path().join(format!("guard-{i}")));
    }
    c.start();
    let mut inbox = Inbox::new();

    c.input(0, Input::Timeout(Timer::Propose { number: 1, view: 1 }));
    flush(&mut c, &mut inbox, |_, _, m| m.name() == "prepared");
    let b = inbox
        .iter()
        .find_map(|(_, m)| match m {
            Message::Announce(a) => Some(a.block.hash()),
            _ => None,
        })
        .expect("node 0 announced B");
    assert!((0..3).all(|i| signed(&c, i, MsgKind::Prepare, 1) == Some(b)));

    time_out(&mut c, &[0, 1, 2], 1);
    byz_view_change(&mut c, 1, 2);
    let late = |f, t, m: &Message| (f, t, m.name()) == (0, 1, "view-change");
    flush(&mut c, &mut inbox, |f, t, m| {
        late(f, t, m) || m.name() == "prepared"
    });
    let b2 = inbox
        .iter()
        .find_map(|(_, m)| match m {
            Message::NewView(nv) if nv.view == 2 => Some(nv.block.clone()),
            _ => None,
        })
        .expect("node 1 sent a NewView for view 2");
    assert!(b2.hash() != b && b2.header.view == 2);
    assert_eq!(
        signed(&c, 0, MsgKind::Prepare, 2),
        None,
        "node 0, locked on B, must not prepare B''"
    );
    assert_eq!(signed(&c, 2, MsgKind::Prepare, 2), Some(b2.hash()));
    byz_vote(&mut c, 1, MsgKind::Prepare, 2, b2.hash());
    flush(&mut c, &mut inbox, |_, _, m| m.name() == "prepared");
    assert_eq!(
        signed(&c, 1, MsgKind::Commit, 2),
        Some(b2.hash()),
        "node 1 signed Commit(1, 2, B'')"
    );

    time_out(&mut c, &[0, 1, 2], 2);
    byz_view_change(&mut c, 2, 3);
    Setup {
        c,
        inbox,
        b,
        b2,
        _dir: dir,
    }
}

#[test]
fn new_view_cannot_downgrade_a_lock() {
    let Setup {
        mut c,
        mut inbox,
        b,
        b2,
        _dir,
    } = views_1_and_2(&[0, 1, 2]);
    // View 3: node 2 re-proposes B (highest lock among {0: B @1, 2, 3}); node 1's view change
    // (B'' @2) comes late. Node 1 refuses B (its lock is higher than B's certificate); node 3
    // votes for B instead, so B is committed in view 3. Committed reaches only node 3.
    let late = |f, t, m: &Message| (f, t, m.name()) == (1, 2, "view-change");
    flush(&mut c, &mut inbox, |f, t, m| {
        late(f, t, m) || m.name() == "committed"
    });
    assert_eq!(signed(&c, 0, MsgKind::Prepare, 3), Some(b));
    assert_eq!(
        signed(&c, 1, MsgKind::Prepare, 3),
        None,
        "node 1, locked on B'' @2, must not prepare B under a view-1 certificate"
    );
    byz_vote(&mut c, 2, MsgKind::Prepare, 3, b);
    flush(&mut c, &mut inbox, |_, _, m| m.name() == "committed");
    byz_vote(&mut c, 2, MsgKind::Commit, 3, b);
    flush(&mut c, &mut inbox, |_, _, m| m.name() == "committed");
    let (committed, cert_b) = c.nodes[2].chain.first().cloned().expect("node 2 finalized");
    assert!(committed.hash() == b && cert_b.view == 3 && c.cert_valid(&cert_b));

    // View 4 (node 3 leads): node 0 (locked on B @3) and node 1 (B'' @2) send view changes.
    time_out(&mut c, &[0, 1], 3);
    flush(&mut c, &mut inbox, |_, _, _| false);
    let vcs: Vec<(usize, ViewChange)> = inbox
        .iter()
        .filter_map(|(f, m)| match m {
            Message::ViewChange(vc) if vc.view == 4 => Some((*f, (**vc).clone())),
            _ => None,
        })
        .collect();
    let vc0 = &vcs
        .iter()
        .find(|(f, _)| *f == 0)
        .expect("node 0's view change")
        .1;
    let vc1 = &vcs
        .iter()
        .find(|(f, _)| *f == 1)
        .expect("node 1's view change")
        .1;
    assert!(vc0.prepared_hash == b && vc0.prepared[0].cert.view == 3);
    assert!(vc1.prepared_hash == b2.hash() && vc1.prepared[0].cert.view == 2);

    // The downgrade: node 0's view change for B paired with the view-1 certificate; nodes 1 and
    // 3 (node 3 signs what it likes) for B'' with the view-2 one. B'' would be the highest.
    let p1 = prepared_cert(&inbox, 1, b).expect("node 0 broadcast P1(B)");
    let p2 = vc1.prepared[0].cert.clone();
    let own = byz_sign(
        &c,
        MsgKind::ViewChange,
        4,
        B256::from(view_change_lock(b2.hash().0, 2)),
    );
    let vc1_sig = Signature::from_bytes(&vc1.signature).unwrap();
    let groups = vec![
        ViewChangeGroup {
            hash: b,
            signature: vc0.signature.clone(),
            bitmap: bits(&[0]),
            prepared: vec![p1],
        },
        ViewChangeGroup {
            hash: b2.hash(),
            signature: aggregate(&[vc1_sig, own]),
            bitmap: bits(&[1, BYZ]),
            prepared: vec![p2],
        },
    ];
    let nv = NewView {
        number: 1,
        view: 4,
        groups,
        block: b2.clone(),
    };
    send(&mut c, &[0, 1], Message::NewView(Box::new(nv)));
    flush(&mut c, &mut inbox, |_, _, _| false);
    assert!(
        preparers(&inbox, 4, b2.hash()).is_empty(),
        "an honest node prepared B'' after B was committed"
    );
    assert!(
        c.nodes[0]
            .faults
            .iter()
            .any(|f| f.contains("NewView proof does not verify")),
        "node 0 faults: {:?}",
        c.nodes[0].faults
    );

    // Without the downgrade node 3 holds no quorum for B''; with B's true lock it must
    // re-propose B. Node 3 stops; the honest nodes finish the height on B.
    c.run_until(1, 4000);
    assert!((0..3).all(|i| c.nodes[i].fbft.tip().number >= 1));
    c.assert_agreement();
    assert!(c.nodes.iter().take(3).all(|n| n.chain[0].0.hash() == b));
}

/// Views 1-2 as above, then node 3 crashes: right away, or after it helped prepare B in view 3
/// (so nodes 0 and 2 lock B at view 3 and a later NewView re-proposes B above node 1's lock).
/// Nodes 0-2 alone must finish height 1. With commits signed at the header's view, node 1 (it
/// signed a commit in view 2) would have to sign B's commit at view 1, below its guard's
/// watermark, in every later view: the height never finishes.
#[test]
fn one_crashed_node_does_not_stop_the_chain() {
    for helps_in_view_3 in [false, true] {
        for guarded in [&[0, 2][..], &[0, 1, 2]] {
            let Setup {
                mut c,
                mut inbox,
                b,
                _dir,
                ..
            } = views_1_and_2(guarded);
            flush(&mut c, &mut inbox, |f, t, m| {
                (f, t, m.name()) == (1, 2, "view-change")
            });
            if helps_in_view_3 {
                byz_vote(&mut c, 2, MsgKind::Prepare, 3, b);
                flush(&mut c, &mut inbox, |_, _, _| false);
                assert!(
                    prepared_cert(&inbox, 3, b).is_some(),
                    "B prepared in view 3"
                );
            }
            c.run_until(1, 4000);
            let refused: Vec<&String> = c
                .nodes
                .iter()
                .flat_map(|n| n.faults.iter().filter(|f| f.starts_with("signer:")))
                .collect();
            assert!(
                (0..3).all(|i| c.nodes[i].fbft.tip().number >= 1),
                "height 1 is stuck (guards on {guarded:?}, node 3 helped: {helps_in_view_3}): \
                 views {:?}, {} refusals, first {:?}",
                (0..3)
                    .map(|i| c.nodes[i].fbft.round().1)
                    .collect::<Vec<_>>(),
                refused.len(),
                refused.first()
            );
            assert!(refused.is_empty(), "the guard refused {refused:?}");
            c.assert_agreement();
        }
    }
}

/// Issue 14: a view change's lock is executed only once its signature and certificate have
/// verified, so a forged one costs the receiver a pairing, not a full block execution.
#[test]
fn a_view_change_lock_is_executed_only_after_it_verified() {
    let Setup {
        c, inbox, b, _dir, ..
    } = views_1_and_2(&[]);
    let proof = inbox
        .iter()
        .find_map(|(_, m)| match m {
            Message::ViewChange(vc) if vc.prepared_hash == b => Some(vc.prepared[0].clone()),
            _ => None,
        })
        .expect("node 0's view change carries B");
    let lock = B256::from(view_change_lock(b.0, proof.cert.view));
    let good = byz_sign(&c, MsgKind::ViewChange, 2, lock);
    let forged = byz_sign(&c, MsgKind::ViewChange, 2, B256::ZERO);
    for (signature, valid) in [(forged, false), (good, true)] {
        // A node that never saw B: it has not validated it.
        let mut fbft = fresh(&c.spec, &c.committee, 2);
        fbft.step(GENESIS_MS, Input::Start);
        let vc = ViewChange {
            number: 1,
            view: 2,
            prepared_hash: b,
            bitmap: bits(&[BYZ]),
            signature: Bytes::copy_from_slice(&signature.to_bytes()),
            prepared: vec![proof.clone()],
        };
        let msg = Message::ViewChange(Box::new(vc));
        let eff = fbft.step(
            GENESIS_MS,
            Input::Message {
                from: peer(BYZ),
                msg,
            },
        );
        let validates = |eff: &[consensus::Effect]| {
            eff.iter()
                .any(|e| matches!(e, consensus::Effect::Validate(x) if x.hash() == b))
        };
        assert!(!validates(&eff), "executed before verifying: {eff:?}");
        let mut after = vec![];
        for e in eff {
            if let consensus::Effect::Verify(job) = e {
                let ok = c.engine.verify_votes(&job.payload, &job.votes);
                after.extend(fbft.step(
                    GENESIS_MS,
                    Input::Verified {
                        id: job.id,
                        valid: ok,
                    },
                ));
            }
        }
        assert_eq!(validates(&after), valid, "{after:?}");
        let faulted = after
            .iter()
            .any(|e| matches!(e, consensus::Effect::PeerFault { peer, .. } if *peer == common::peer(BYZ)));
        assert_eq!(faulted, !valid, "{after:?}");
    }
}

/// Views converge (issue 11's seed 103447581): node 0 is silent. Node 3 saw a quorum of view
/// changes for view 3 and moved to view 4, but nodes 1 and 2 never got its view change for 3,
/// and node 3 restarted, losing the old view change it could have handed them. Nodes 1 and 2
/// wait in view 3 (two votes of four), node 3 in view 4 (one): neither side alone holds the
/// 1/3 that makes the other join. A node one view ahead counts for the views before it, so
/// nodes 1 and 2 move on and the height finishes.
#[test]
fn views_converge_when_one_node_is_a_view_ahead() {
    let mut c = Cluster::new(&[1, 1, 1, 1], 1);
    c.nodes[0].up = false;
    c.start();
    let deliver = |c: &mut Cluster, lost: &dyn Fn(usize, usize, &Message) -> bool| {
        while let Some((from, to, msg)) = c.wire.pop_front() {
            if to != 0 && !lost(from, to, &msg) {
                c.input(
                    to,
                    Input::Message {
                        from: peer(from),
                        msg,
                    },
                );
            }
        }
    };
    // View 1 (node 0's) times out; view 2's NewView (node 1's) is lost; everyone saw the
    // view changes for 2, so view 2 times out into view 3.
    time_out(&mut c, &[1, 2, 3], 1);
    deliver(&mut c, &|_, _, m| m.name() == "new-view");
    time_out(&mut c, &[1, 2, 3], 2);
    // View 3: node 3's view change reaches nobody; it sees the others' and moves to view 4.
    deliver(&mut c, &|f, _, m| f == 3 && m.name() == "view-change");
    time_out(&mut c, &[3], 3);
    deliver(&mut c, &|_, _, _| false);
    let views = |c: &Cluster| {
        (1..4)
            .map(|i| c.nodes[i].fbft.round().1)
            .collect::<Vec<_>>()
    };
    assert_eq!(views(&c), vec![3, 3, 4]);
    // Node 3 restarts from its safety record.
    let safety = c.nodes[3].safety.clone();
    assert!(safety
        .as_ref()
        .is_some_and(|s| s.view == 4 && s.waiting_new_view));
    c.nodes[3].fbft = consensus::Fbft::new(
        config(&c.spec, 3),
        consensus::Committees::same(c.committee.clone()),
        genesis_tip(&c.spec),
        vec![],
        safety,
    );
    c.input(3, Input::Start);
    c.timers.clear();
    for i in 1..4 {
        let view = c.nodes[i].fbft.round().1;
        c.timers
            .push((c.now_ms + 1000, i, Timer::ViewTimeout { number: 1, view }));
    }
    c.run_until(1, 20_000);
    assert!(
        (1..4).all(|i| c.nodes[i].fbft.tip().number >= 1),
        "views never converged: {:?}",
        (1..4)
            .map(|i| c.nodes[i].fbft.describe())
            .collect::<Vec<_>>()
    );
    c.assert_agreement();
}

/// Steps node `i` with `msg` from `from`, answering its verification jobs at once, and returns
/// every effect it produced (nothing is executed: no sends, no signatures fed back).
fn step_with(c: &mut Cluster, i: usize, from: usize, msg: Message) -> Vec<consensus::Effect> {
    let now = c.now_ms;
    let mut all = vec![];
    let mut queue = std::collections::VecDeque::from([Input::Message {
        from: peer(from),
        msg,
    }]);
    while let Some(input) = queue.pop_front() {
        for e in c.nodes[i].fbft.step(now, input) {
            match &e {
                consensus::Effect::Verify(job) => {
                    queue.push_back(consensus::run_verify_job(&c.engine, job))
                }
                consensus::Effect::VerifyQuorum(job) => {
                    queue.push_back(consensus::run_quorum_job(&c.engine, job))
                }
                _ => {}
            }
            all.push(e);
        }
    }
    all
}

/// The sign request among `effects`, if any.
fn sign_of(effects: &[consensus::Effect]) -> Option<SignRequest> {
    effects.iter().find_map(|e| match e {
        consensus::Effect::Sign(r) => Some(*r),
        _ => None,
    })
}

/// The rules of consensus v2 as input → expected effect, on the state `views_1_and_2` leaves
/// (node 0 locked on B at view 1, node 1 on B'' at view 2, view 3 led by node 2 re-proposing
/// B under its view-1 certificate).
#[test]
fn rules_table() {
    type Expect = fn(&Setup, Option<SignRequest>) -> bool;
    let rows: [(&str, usize, Expect); 4] = [
        (
            "a lock refuses a re-proposal justified by a lower certificate",
            1,
            |_, s| s.is_none(),
        ),
        (
            "a lock accepts the re-proposal of its own block",
            0,
            |st, s| s.is_some_and(|r| (r.kind, r.view, r.hash) == (MsgKind::Prepare, 3, st.b.0)),
        ),
        (
            "a node without a lock prepares the re-proposal",
            2,
            |st, s| s.is_some_and(|r| (r.kind, r.view, r.hash) == (MsgKind::Prepare, 3, st.b.0)),
        ),
        (
            "a view change signs the lock bound to its certificate view",
            0,
            |st, s| {
                let lock = view_change_lock(st.b.0, 1);
                s.is_some_and(|r| (r.kind, r.view, r.hash) == (MsgKind::ViewChange, 4, lock))
            },
        ),
    ];
    for (rule, node, expect) in rows {
        let mut st = views_1_and_2(&[0, 1, 2]);
        // Node 2 gathers {0, 2, 3} for view 3 (node 1's view change is late) and re-proposes B.
        let mut nv = None;
        while let Some((from, to, msg)) = st.c.wire.pop_front() {
            if to == BYZ || (from, to, msg.name()) == (1, 2, "view-change") {
                continue;
            }
            if let Message::NewView(n) = &msg {
                if n.view == 3 {
                    nv = Some((**n).clone());
                    continue;
                }
            }
            st.c.input(
                to,
                Input::Message {
                    from: peer(from),
                    msg,
                },
            );
        }
        let nv = nv.expect("node 2 sent NewView(3)");
        assert_eq!(nv.block.hash(), st.b, "{rule}: node 2 re-proposes B");
        let effects = if node == 2 {
            // The leader prepared its own re-proposal when it sent the NewView.
            let signed = signed(&st.c, 2, MsgKind::Prepare, 3);
            vec![consensus::Effect::Sign(SignRequest {
                kind: MsgKind::Prepare,
                chain_id: CHAIN_ID,
                shard: 0,
                number: 1,
                view: 3,
                hash: signed.unwrap_or_default().0,
            })]
        } else {
            step_with(&mut st.c, node, 2, Message::NewView(Box::new(nv)))
        };
        let effects = if rule.starts_with("a view change") {
            st.c.now_ms += 10_000;
            let t = Timer::ViewTimeout { number: 1, view: 3 };
            st.c.nodes[node].fbft.step(st.c.now_ms, Input::Timeout(t))
        } else {
            effects
        };
        let s = sign_of(&effects);
        assert!(expect(&st, s), "{rule}: node {node} signed {s:?}");
    }
}
