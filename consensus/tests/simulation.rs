//! Deterministic simulation: all nodes in one thread, seeded RNG, virtual time, a network that
//! delays, drops, duplicates, reorders and partitions, nodes that crash (even between two
//! effects of one step) and restart from what they persisted, verification, validation and
//! block-building results that come back late and out of order, and up to f Byzantine nodes
//! that stay silent, withhold votes, send garbage, equivocate, propose invalid blocks, deny
//! their locks, certify two blocks of one height, assemble NewViews from older certificates,
//! or replay old messages. Every honest node signs through the real double-sign guard (a log
//! on disk, reopened when the node restarts), as in the appliance.
//!
//! Nodes tell each other their tips every second, as the appliance's status messages do, and
//! fetch a longer chain they see (certificates checked).
//!
//! Invariants, checked after every event: no two honest nodes finalize different blocks at one
//! height; every finalized block carries a valid commit certificate; no honest key signs two
//! different hashes in one (kind, number, view) slot; the guard never has to refuse an honest
//! node (a refusal is a vote the state machine should not have asked for, and a height can
//! wedge on it). Liveness: once faults heal (Byzantine nodes stay), every honest node
//! finalizes 3 more blocks within (f + 2) views of twice the longest view timeout after
//! back-off (64 × the seed's view timeout, plus a block time), plus 20 s of virtual time:
//! up to f Byzantine leaders in a row, one view lost to the heal, then an honest one.
//!
//! `SIM_SEEDS` (default 6) and `SIM_SEED_START` (default 1) choose the seeds; a failure prints
//! the seed and the command that replays it.

mod common;

use accel::{Engine, Signature};
use common::{build_by, node_of, peer, secret, signer, spec, CHAIN_ID, GENESIS_MS};
use consensus::{Committee, Config, Effect, Fbft, Input, Message, SafetyRecord, Timer, Tip};
use hsm::{LocalSigner, Signer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use state::{Block, Bytes, CommitCertificate, B256};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

const BLOCK_MS: u64 = 1000;
const FAULT_PHASE_MS: u64 = 25_000;
/// Short epochs, so every seed crosses several committee hand-offs.
const EPOCH_BLOCKS: u64 = 4;
/// How often nodes tell each other their tips (the appliance's status interval).
const STATUS_MS: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Byz {
    Silent,
    Withhold,
    Garbage,
    Equivocate,
    InvalidBlocks,
    /// Votes normally, but its view changes deny any lock (signs the zero hash).
    Amnesia,
    /// As leader, shows a second block of the same view to half of the committee and
    /// certifies each block with whatever votes it gets (it signs both).
    TwoBlocks,
    /// As a new leader, pairs each view-change group with the oldest prepare certificate it
    /// has seen for that block and re-proposes whatever block then looks highest.
    MixedNewView,
    /// Sends old view changes, votes and certificates again, to anyone, at any time.
    Replay,
}

/// What a [`Byz::TwoBlocks`] leader keeps of its second block.
struct SecondBlock {
    block: Block,
    to: Vec<usize>,
    prepares: Vec<(usize, Signature)>,
    commits: Vec<(usize, Signature)>,
    prepared: bool,
    committed: bool,
}

struct SimNode {
    fbft: Option<Fbft>,
    incarnation: u64,
    signer: LocalSigner,
    chain: Vec<(Block, CommitCertificate)>,
    safety: Option<SafetyRecord>,
    byz: Option<Byz>,
    /// The real guard, for honest nodes; closed by a crash, reopened from disk at boot.
    guard: Option<hsm::Guard>,
    /// Byzantine memory: messages received (for Replay and MixedNewView) and a second block.
    seen: Vec<Message>,
    second: Option<SecondBlock>,
}

enum Ev {
    Deliver {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Sync {
        node: usize,
        peer: usize,
        upto: u64,
    },
    Timer {
        node: usize,
        incarnation: u64,
        timer: Timer,
    },
    /// A verification, validation or build result coming back to the state machine.
    Result {
        node: usize,
        incarnation: u64,
        input: Box<Input>,
    },
}

#[derive(Default)]
struct Stats {
    steps: u64,
    view_changes: u64,
    dropped: u64,
    duplicated: u64,
    crashes: u64,
    partitions: u64,
    byzantine_messages: u64,
    blocks: u64,
    guard_refusals: u64,
    /// Finalized blocks whose certificate the spare (an observer at genesis) signed.
    spare_signed: u64,
    /// Epochs begun (committee hand-offs finalized).
    epochs: u64,
    /// Double-sign evidence honest nodes reported (only Byzantine nodes can be its subject).
    evidence: u64,
}

struct Sim {
    seed: u64,
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Ev>,
    nodes: Vec<SimNode>,
    spec: state::ChainSpec,
    /// Committee size: nodes `0..size` form epoch 0's committee; node `size` is a spare that
    /// starts as an observer. From epoch 1 on, each epoch benches one honest node (maybe a
    /// different one) and the rest sign: validators leave and join at every hand-off.
    size: usize,
    committees: RefCell<HashMap<u64, Arc<Committee>>>,
    engine: Engine,
    verify_cache: HashMap<Vec<u8>, bool>,
    sign_cache: HashMap<(usize, [u8; hsm::PAYLOAD_BYTES]), Vec<Signature>>,
    cut: HashSet<(usize, usize)>,
    faults_on: bool,
    finalized: HashMap<u64, B256>,
    signed: HashMap<(usize, u8, u64, u64), B256>,
    stats: Stats,
    /// Per seed: short timeouts make views expire mid-round, which is where safety is tested.
    view_timeout_ms: u64,
    /// Chance that a message takes 50–600 ms instead of a few.
    slow: f64,
    /// Guard logs of the honest nodes (on tmpfs when there is one: the guard fsyncs).
    guard_dir: tempfile::TempDir,
}

fn bad_block(b: &Block) -> bool {
    b.header.extra_data.as_ref() == b"invalid"
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = [4usize, 4, 5, 7][rng.gen_range(0..4)];
        let f = (n - 1) / 3;
        let keys: Vec<usize> = (0..n).map(|_| rng.gen_range(1..=2)).collect();
        // One more node than the committee holds: the spare.
        let keys: Vec<usize> = keys.into_iter().chain([rng.gen_range(1..=2)]).collect();
        let spec = spec(&keys, rng.gen_range(1..=3));
        let spec = state::ChainSpec {
            block_time_ms: BLOCK_MS,
            epoch_blocks: EPOCH_BLOCKS,
            // Every leader signs a VRF for its block, through its guard.
            forks: [(state::forks::VRF.to_string(), 0)].into(),
            ..spec
        };
        let byz_kinds = [
            Byz::Silent,
            Byz::Withhold,
            Byz::Garbage,
            Byz::Equivocate,
            Byz::InvalidBlocks,
            Byz::Amnesia,
            Byz::TwoBlocks,
            Byz::MixedNewView,
            Byz::Replay,
        ];
        let byzantine: Vec<usize> = (0..f).map(|_| rng.gen_range(0..n)).collect();
        let nodes = (0..=n)
            .map(|i| SimNode {
                fbft: None,
                incarnation: 0,
                signer: signer(&spec, i),
                chain: vec![],
                safety: None,
                byz: byzantine
                    .contains(&i)
                    .then(|| byz_kinds[rng.gen_range(0..byz_kinds.len())]),
                guard: None,
                seen: vec![],
                second: None,
            })
            .collect();
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap(),
        );
        let mut sim = Sim {
            seed,
            rng,
            now: GENESIS_MS,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            nodes,
            spec,
            size: n,
            committees: RefCell::default(),
            engine: Engine::cpu(pool),
            verify_cache: HashMap::new(),
            sign_cache: HashMap::new(),
            cut: HashSet::new(),
            faults_on: true,
            finalized: HashMap::new(),
            signed: HashMap::new(),
            stats: Stats::default(),
            view_timeout_ms: 0,
            slow: 0.0,
            guard_dir: guard_dir(),
        };
        sim.view_timeout_ms = [150, 400, 2000][sim.rng.gen_range(0..3)];
        sim.slow = [0.05, 0.2][sim.rng.gen_range(0..2)];
        for i in 0..=n {
            sim.boot(i);
        }
        sim
    }

    /// The committee that signs block `number`: its epoch's.
    fn committee(&self, number: u64) -> Arc<Committee> {
        let epoch = number / EPOCH_BLOCKS;
        self.committees
            .borrow_mut()
            .entry(epoch)
            .or_insert_with(|| {
                let bench = if epoch == 0 {
                    self.size
                } else {
                    let honest: Vec<usize> =
                        (0..self.nodes.len()).filter(|&i| self.honest(i)).collect();
                    let mix = (self.seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    honest[(mix >> 32) as usize % honest.len()]
                };
                let spec = state::ChainSpec {
                    validators: (0..self.nodes.len())
                        .filter(|&i| i != bench)
                        .map(|i| self.spec.validators[i].clone())
                        .collect(),
                    ..self.spec.clone()
                };
                Arc::new(Committee::from_spec(&spec).unwrap())
            })
            .clone()
    }

    /// The committees around tip `number`.
    fn committees(&self, number: u64) -> consensus::Committees {
        consensus::Committees {
            tip: self.committee(number),
            next: self.committee(number + 1),
        }
    }

    /// Node `i`'s member index in the committee of block `number` (None: benched).
    fn member(&self, i: usize, number: u64) -> Option<usize> {
        self.committee(number).member_by_transport_key(&peer(i))
    }

    fn honest(&self, i: usize) -> bool {
        self.nodes[i].byz.is_none()
    }

    fn config(&self, me: usize) -> Config {
        Config {
            chain_id: CHAIN_ID,
            shard: 0,
            epoch_blocks: self.spec.epoch_blocks,
            block_time_ms: BLOCK_MS,
            max_future_ms: 1000,
            view_timeout_ms: self.view_timeout_ms,
            keys: self.nodes[me].signer.public_keys().to_vec(),
            vrf_from: Some(0),
        }
    }

    /// Starts node `i` from what it persisted: its chain and its last safety record.
    fn boot(&mut self, i: usize) {
        let node = &self.nodes[i];
        let tip = match node.chain.last() {
            Some((b, c)) => Tip::of(b, Some(c.clone())),
            None => Tip::of(&self.spec.genesis(), None),
        };
        let recent: Vec<Bytes> = node
            .chain
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(|(b, _)| b.header.last_commit_bitmap.clone())
            .collect();
        let committees = self.committees(tip.number);
        let fbft = Fbft::new(self.config(i), committees, tip, recent, node.safety.clone());
        if self.honest(i) {
            let dir = self.guard_dir.path().join(i.to_string());
            let guard = hsm::Guard::open(&dir).expect("guard log reopens after a crash");
            guard.register(self.nodes[i].signer.public_keys()).unwrap();
            self.nodes[i].guard = Some(guard);
        }
        self.nodes[i].fbft = Some(fbft);
        self.nodes[i].incarnation += 1;
        self.input(i, Input::Start);
    }

    fn crash(&mut self, i: usize) {
        if self.nodes[i].fbft.take().is_some() {
            self.stats.crashes += 1;
        }
        self.nodes[i].guard = None;
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if self.cut.contains(&(from, to)) || self.cut.contains(&(to, from)) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if self.faults_on && self.rng.gen_bool(0.03) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.faults_on && self.rng.gen_bool(0.05) {
                self.stats.dropped += 1;
                continue;
            }
            // Mostly a few ms; sometimes long enough to reorder across phases.
            let delay = if self.rng.gen_bool(self.slow) {
                self.rng.gen_range(50..600)
            } else {
                self.rng.gen_range(1..15)
            };
            self.push(
                self.now + delay,
                Ev::Deliver {
                    from,
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    fn send_msg(&mut self, from: usize, to: usize, msg: &Message) {
        match self.nodes[from].byz {
            Some(Byz::Silent) => return,
            Some(Byz::Withhold) if matches!(msg, Message::Prepare(_) | Message::Commit(_)) => {
                return
            }
            Some(Byz::Garbage) => {
                self.stats.byzantine_messages += 1;
                let len = self.rng.gen_range(0..200);
                let mut junk: Vec<u8> = (0..len).map(|_| self.rng.gen()).collect();
                if let Some(b) = junk.first_mut() {
                    *b = self.rng.gen_range(1..8);
                }
                self.send(from, to, junk);
            }
            Some(Byz::Amnesia) => {
                if let Message::ViewChange(vc) = msg {
                    if !vc.prepared.is_empty() {
                        self.stats.byzantine_messages += 1;
                        let req = hsm::SignRequest {
                            kind: hsm::MsgKind::ViewChange,
                            chain_id: CHAIN_ID,
                            shard: 0,
                            number: vc.number,
                            view: vc.view,
                            hash: [0; 32],
                        };
                        let sigs = self.nodes[from].signer.sign(&req).unwrap();
                        let sig = accel::AggregateSignature::aggregate(&sigs)
                            .unwrap()
                            .to_signature();
                        let forged = consensus::ViewChange {
                            prepared_hash: B256::ZERO,
                            signature: Bytes::copy_from_slice(&sig.to_bytes()),
                            prepared: vec![],
                            ..(**vc).clone()
                        };
                        return self.send(from, to, Message::ViewChange(Box::new(forged)).encode());
                    }
                }
            }
            Some(Byz::TwoBlocks) => {
                if let Message::Announce(a) = msg {
                    if let Some(m) = self.second_block(from, to, &a.block) {
                        return self.send(from, to, m.encode());
                    }
                }
            }
            Some(Byz::MixedNewView) => {
                if let Message::NewView(nv) = msg {
                    if let Some(m) = self.mixed_new_view(from, nv) {
                        self.stats.byzantine_messages += 1;
                        return self.send(from, to, m.encode());
                    }
                }
            }
            Some(Byz::Replay) => {
                let seen = &self.nodes[from].seen;
                if !seen.is_empty() && self.rng.gen_bool(0.3) {
                    let old = seen[self.rng.gen_range(0..seen.len())].encode();
                    self.stats.byzantine_messages += 1;
                    self.send(from, to, old);
                }
            }
            Some(Byz::Equivocate) if to.is_multiple_of(2) => {
                if let Message::Announce(a) = msg {
                    // A second block for the same view to half of the committee.
                    self.stats.byzantine_messages += 1;
                    let mut other = a.block.clone();
                    other.header.timestamp_ms += 1;
                    let m = Message::Announce(Box::new(consensus::Announce { block: other }));
                    return self.send(from, to, m.encode());
                }
            }
            _ => {}
        }
        self.send(from, to, msg.encode());
    }

    /// Records that node `i`'s vote (its keys' aggregate signature on `payload`) verifies: it
    /// was just made by its own keys. Spares the pairing for the votes honest nodes send, which
    /// are most of the run's verifications; certificates and anything a Byzantine node makes
    /// up are still verified for real.
    fn known_valid(&mut self, i: usize, payload: &[u8], sigs: &[Signature]) {
        let sig = accel::AggregateSignature::aggregate(sigs)
            .unwrap()
            .to_signature();
        let pk = accel::AggregatePublicKey::aggregate(self.nodes[i].signer.public_keys())
            .unwrap()
            .to_public_key();
        let mut key = payload.to_vec();
        key.extend_from_slice(&pk.to_bytes());
        key.extend_from_slice(&sig.to_bytes());
        self.verify_cache.insert(key, true);
    }

    /// A quorum job: answered from the known-valid votes when every vote is one (summing
    /// them, as the engine would), otherwise by the engine from the wire bytes.
    fn verify_quorum(&mut self, job: &consensus::QuorumJob) -> Input {
        let known: Option<Vec<Signature>> = job
            .votes
            .iter()
            .map(|(m, bytes)| {
                let sig = Signature::decode(bytes).ok()?;
                let pk = job.committee.member_keys[*m as usize];
                let mut key = job.payload.to_vec();
                key.extend_from_slice(&pk.to_bytes());
                key.extend_from_slice(&sig.to_bytes());
                self.verify_cache
                    .get(&key)
                    .copied()
                    .filter(|v| *v)
                    .map(|_| sig)
            })
            .collect();
        match known {
            Some(sigs) if !sigs.is_empty() => Input::QuorumVerified {
                id: job.id,
                valid: vec![true; sigs.len()],
                aggregate: Some(
                    accel::AggregateSignature::aggregate(&sigs)
                        .unwrap()
                        .to_signature(),
                ),
            },
            _ => consensus::run_quorum_job(&self.engine, job),
        }
    }

    fn verify(&mut self, job: &consensus::VerifyJob) -> Vec<bool> {
        job.votes
            .iter()
            .map(|v| {
                let mut key = job.payload.to_vec();
                key.extend_from_slice(&v.public_key.to_bytes());
                key.extend_from_slice(&v.signature.to_bytes());
                let engine = &self.engine;
                *self.verify_cache.entry(key).or_insert_with(|| {
                    engine.verify_votes(&job.payload, std::slice::from_ref(v))[0]
                })
            })
            .collect()
    }

    fn input(&mut self, i: usize, input: Input) {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let Some(fbft) = self.nodes[i].fbft.as_mut() else {
                return;
            };
            let effects = fbft.step(self.now, input);
            for e in effects {
                // A crash between two effects of one step: later effects never happen.
                if self.faults_on && self.honest(i) && self.rng.gen_bool(0.002) {
                    self.crash(i);
                    return;
                }
                if let Some(next) = self.execute(i, e) {
                    queue.push_back(next);
                }
            }
        }
    }

    fn execute(&mut self, i: usize, e: Effect) -> Option<Input> {
        match e {
            Effect::Broadcast(m) => {
                for j in 0..self.nodes.len() {
                    if j != i {
                        self.send_msg(i, j, &m);
                    }
                }
            }
            Effect::Send(j, m) => self.send_msg(i, node_of(&j), &m),
            Effect::PersistSafety(r) => self.nodes[i].safety = Some(r),
            Effect::Sign(req) => {
                if self.honest(i) {
                    let n = &self.nodes[i];
                    let guard = n
                        .guard
                        .as_ref()
                        .expect("honest nodes sign through the guard");
                    if let Err(e) = guard.check_and_record(n.signer.public_keys(), &req) {
                        // As in the appliance: refused, nothing signed. The run fails at the end.
                        self.stats.guard_refusals += 1;
                        eprintln!("seed {}: node {i}'s guard refused {req:?}: {e}", self.seed);
                        return None;
                    }
                    let slot = (i, req.kind as u8, req.number, req.view);
                    let prev = *self.signed.entry(slot).or_insert(B256::from(req.hash));
                    assert_eq!(
                        prev,
                        B256::from(req.hash),
                        "honest node {i} signed two payloads in slot {slot:?}"
                    );
                }
                // BLS signatures are deterministic: a node signing the same payload again (after
                // a restart, or repeating a view change) gets the same bytes, so they are cached.
                let key = (i, hsm::payload(&req));
                let signatures = match self.sign_cache.get(&key) {
                    Some(s) => s.clone(),
                    None => {
                        let s = self.nodes[i].signer.sign(&req).unwrap();
                        self.sign_cache.insert(key, s.clone());
                        self.known_valid(i, &key.1, &s);
                        s
                    }
                };
                return Some(Input::Signed { req, signatures });
            }
            Effect::Verify(job) => {
                let valid = self.verify(&job);
                self.later(i, Input::Verified { id: job.id, valid });
            }
            Effect::VerifyQuorum(job) => {
                let result = self.verify_quorum(&job);
                self.later(i, result);
            }
            Effect::Validate(block) => {
                let result = if bad_block(&block) {
                    Err(state::exec::BlockError::Tx {
                        index: 0,
                        hash: block.hash(),
                        reason: "invalid by construction".into(),
                    })
                } else {
                    Ok(())
                };
                let hash = block.hash();
                self.later(i, Input::Validated { hash, result });
            }
            e @ Effect::BuildBlock { .. } => {
                let Effect::BuildBlock { number, .. } = e else {
                    unreachable!()
                };
                let committee = self.committee(number);
                let me = self.member(i, number).expect("only members lead");
                let mut block = build_by(&committee, &e, self.now, Some(me));
                if self.nodes[i].byz == Some(Byz::InvalidBlocks) {
                    block.header.extra_data = Bytes::from_static(b"invalid");
                    self.stats.byzantine_messages += 1;
                }
                self.later(i, Input::Proposal(block));
            }
            Effect::Schedule(timer, delay) => {
                let at = self.now + delay.as_millis() as u64;
                let incarnation = self.nodes[i].incarnation;
                self.push(
                    at,
                    Ev::Timer {
                        node: i,
                        incarnation,
                        timer,
                    },
                );
            }
            Effect::Finalize { block, cert } => {
                if self.store(i, block.clone(), cert.clone()) {
                    let committees = self.committees(block.number());
                    let tip = Tip::of(&block, Some(cert));
                    return Some(Input::Persisted { tip, committees });
                }
            }
            Effect::Behind { peer, number } => {
                // Catch-up is a request/response exchange, as in the appliance.
                let delay = self.rng.gen_range(2..30);
                self.push(
                    self.now + delay,
                    Ev::Sync {
                        node: i,
                        peer: node_of(&peer),
                        upto: number,
                    },
                );
            }
            Effect::PeerFault { peer, kind, reason } => {
                if std::env::var("SIM_TRACE").is_ok() {
                    eprintln!(
                        "{} node {i} fault from {} ({kind}): {reason}",
                        self.now - GENESIS_MS,
                        node_of(&peer)
                    );
                }
                // Membership faults are certain: an honest node never speaks at a height
                // whose committee it is not in (epoch hand-offs and benched nodes included).
                let accused = node_of(&peer);
                assert!(
                    !(reason.contains("outside the committee") && self.honest(accused)),
                    "seed {}: honest node {accused} faulted by node {i}: {reason}",
                    self.seed
                );
            }
            Effect::Evidence(e) => {
                self.stats.evidence += 1;
                // Evidence that verifies convicts its keys: never an honest node's.
                if e.check_signatures(CHAIN_ID, 0).is_ok() {
                    for j in (0..self.nodes.len()).filter(|&j| self.honest(j)) {
                        let framed = self.nodes[j].signer.public_keys().iter().any(|pk| {
                            e.keys
                                .contains(&state::staking::BlsKey::from(pk.to_bytes()))
                        });
                        assert!(
                            !framed,
                            "seed {}: honest node {j} double signed: {e:?}",
                            self.seed
                        );
                    }
                }
            }
            Effect::ViewChanged { number, view, .. } => {
                self.stats.view_changes += 1;
                if std::env::var("SIM_TRACE").is_ok() {
                    eprintln!(
                        "{} node {i} -> view {view} at #{number}",
                        self.now - GENESIS_MS
                    );
                }
            }
        }
        None
    }

    /// A result of work the caller does off the state machine's loop: mostly at once, sometimes
    /// after other inputs (so results come back late and out of order).
    fn later(&mut self, node: usize, input: Input) {
        let delay = if self.rng.gen_bool(0.3) {
            self.rng.gen_range(1..80)
        } else {
            0
        };
        let incarnation = self.nodes[node].incarnation;
        self.push(
            self.now + delay,
            Ev::Result {
                node,
                incarnation,
                input: Box::new(input),
            },
        );
    }

    /// [`Byz::TwoBlocks`]: the message for `to` when `from` announces `block`: odd-numbered
    /// nodes get a second block of the same view, which `from` then certifies on its own.
    fn second_block(&mut self, from: usize, to: usize, block: &Block) -> Option<Message> {
        if to.is_multiple_of(2) {
            return None;
        }
        let node = &mut self.nodes[from];
        let fresh = node.second.as_ref().is_none_or(|s| {
            (s.block.number(), s.block.header.view) != (block.number(), block.header.view)
        });
        if fresh {
            let mut other = block.clone();
            other.header.timestamp_ms += 1;
            node.second = Some(SecondBlock {
                block: other,
                to: vec![],
                prepares: vec![],
                commits: vec![],
                prepared: false,
                committed: false,
            });
        }
        let second = node.second.as_mut().expect("set above");
        second.to.push(to);
        self.stats.byzantine_messages += 1;
        let block = second.block.clone();
        Some(Message::Announce(Box::new(consensus::Announce { block })))
    }

    /// [`Byz::TwoBlocks`]: a vote for the second block reached its leader; certify it once
    /// the committee's quorum rule calls the votes (with its own) a quorum.
    fn second_block_vote(&mut self, leader: usize, from: usize, msg: &Message) {
        let (kind, v) = match msg {
            Message::Prepare(v) => (hsm::MsgKind::Prepare, v),
            Message::Commit(v) => (hsm::MsgKind::Commit, v),
            _ => return,
        };
        let Some(second) = self.nodes[leader].second.as_mut() else {
            return;
        };
        let hash = second.block.hash();
        if v.hash != hash || v.number != second.block.number() {
            return;
        }
        let Ok(sig) = Signature::decode(&v.signature) else {
            return;
        };
        let votes = match kind {
            hsm::MsgKind::Prepare => &mut second.prepares,
            _ => &mut second.commits,
        };
        if votes.iter().any(|(f, _)| *f == from) {
            return;
        }
        votes.push((from, sig));
        let view = v.view;
        let req = hsm::SignRequest {
            kind,
            chain_id: CHAIN_ID,
            shard: 0,
            number: v.number,
            view,
            hash: hash.0,
        };
        let own = self.nodes[leader].signer.sign(&req).unwrap();
        let committee = self.committee(v.number);
        let second = self.nodes[leader].second.as_mut().expect("checked");
        let (votes, done) = match kind {
            hsm::MsgKind::Prepare => (&second.prepares, &mut second.prepared),
            _ => (&second.commits, &mut second.committed),
        };
        let Some(me) = committee.member_by_transport_key(&peer(leader)) else {
            return;
        };
        let mut bitmap = committee.member_bitmap(me);
        let mut sigs = own;
        for (f, sig) in votes {
            let Some(m) = committee.member_by_transport_key(&peer(*f)) else {
                continue;
            };
            bitmap.union_with(&committee.member_bitmap(m));
            sigs.push(*sig);
        }
        if *done || !committee.is_quorum(committee.power_of(&bitmap)) {
            return;
        }
        *done = true;
        let agg = accel::AggregateSignature::aggregate(&sigs)
            .unwrap()
            .to_signature();
        let cert = CommitCertificate {
            number: v.number,
            view,
            hash,
            signature: Bytes::copy_from_slice(&agg.to_bytes()),
            bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
        };
        let (to, m) = match kind {
            hsm::MsgKind::Prepare => (second.to.clone(), Message::Prepared(cert)),
            _ => ((0..self.nodes.len()).collect(), Message::Committed(cert)),
        };
        for t in to.into_iter().filter(|t| *t != leader) {
            self.stats.byzantine_messages += 1;
            self.send(leader, t, m.encode());
        }
    }

    /// [`Byz::MixedNewView`]: `nv` with each group's certificate swapped for the oldest
    /// certificate of the same block this node has seen, re-proposing the block that then
    /// holds the highest one. None when it has nothing older to offer.
    fn mixed_new_view(&self, from: usize, nv: &consensus::NewView) -> Option<Message> {
        let mut certs: Vec<CommitCertificate> = vec![];
        let mut blocks: Vec<Block> = vec![];
        for m in &self.nodes[from].seen {
            match m {
                Message::Prepared(c) if c.number == nv.number => certs.push(c.clone()),
                Message::ViewChange(vc) if vc.number == nv.number => {
                    for p in &vc.prepared {
                        certs.push(p.cert.clone());
                        blocks.push(p.block.clone());
                    }
                }
                Message::Announce(a) => blocks.push(a.block.clone()),
                Message::NewView(n) => blocks.push(n.block.clone()),
                _ => {}
            }
        }
        let mut mixed = nv.clone();
        let mut changed = false;
        for g in &mut mixed.groups {
            let oldest = certs
                .iter()
                .filter(|c| c.hash == g.hash)
                .min_by_key(|c| c.view);
            if let (Some(old), Some(cur)) = (oldest, g.prepared.first()) {
                if old.view < cur.view {
                    g.prepared = vec![old.clone()];
                    changed = true;
                }
            }
        }
        let best = mixed
            .groups
            .iter()
            .filter_map(|g| g.prepared.first())
            .max_by_key(|c| c.view)?;
        if best.hash != mixed.block.hash() {
            mixed.block = blocks.into_iter().find(|b| b.hash() == best.hash)?;
            changed = true;
        }
        changed.then(|| Message::NewView(Box::new(mixed)))
    }

    /// What the appliance's status messages do (every node tells its peers its tip every
    /// status interval, members or not): a running node that sees a longer chain on a peer
    /// it can reach fetches from it. Without it, a node that missed an epoch's last block
    /// hears of the next height only from the next committee, whose members may be exactly the
    /// nodes that missed it.
    fn exchange_status(&mut self) {
        let n = self.nodes.len();
        for i in 0..n {
            for j in 0..n {
                let (mine, theirs) = (self.nodes[i].chain.len(), self.nodes[j].chain.len());
                if i != j
                    && theirs > mine
                    && self.nodes[i].fbft.is_some()
                    && self.nodes[j].fbft.is_some()
                    && !self.cut.contains(&(i, j))
                    && !self.cut.contains(&(j, i))
                {
                    let delay = self.rng.gen_range(2..30);
                    self.push(
                        self.now + delay,
                        Ev::Sync {
                            node: i,
                            peer: j,
                            upto: theirs as u64,
                        },
                    );
                }
            }
        }
    }

    /// Blocks with certificates from `peer` (honest and reachable), each certificate checked
    /// before storing, as the appliance's catch-up does.
    fn sync(&mut self, i: usize, peer: usize, upto: u64) {
        if self.nodes[peer].byz.is_some()
            || self.cut.contains(&(i, peer))
            || self.cut.contains(&(peer, i))
        {
            return;
        }
        let have = self.nodes[i].chain.len();
        let theirs: Vec<_> = self.nodes[peer]
            .chain
            .iter()
            .skip(have)
            .take_while(|(b, _)| b.number() <= upto)
            .cloned()
            .collect();
        for (block, cert) in theirs {
            if self.nodes[i].fbft.is_none() {
                return;
            }
            if self.store(i, block.clone(), cert.clone()) {
                let committees = self.committees(block.number());
                let tip = Tip::of(&block, Some(cert));
                self.input(i, Input::Persisted { tip, committees });
            }
        }
    }

    /// Stores a finalized block; false when that height is already stored (same block).
    fn store(&mut self, i: usize, block: Block, cert: CommitCertificate) -> bool {
        let n = block.number();
        if let Some((have, _)) = self.nodes[i].chain.get(n as usize - 1) {
            assert_eq!(
                have.hash(),
                block.hash(),
                "node {i} finalizes a second block at {n}"
            );
            return false;
        }
        assert_eq!(
            n,
            self.nodes[i].chain.len() as u64 + 1,
            "node {i} stores out of order"
        );
        if self.honest(i) {
            assert!(
                !bad_block(&block),
                "honest node {i} finalized an invalid block at {n}"
            );
            assert!(
                common_cert_valid(&self.engine, &self.committee(n), &cert),
                "certificate of block {n} invalid"
            );
            assert_eq!(cert.hash, block.hash());
            let prev = *self.finalized.entry(n).or_insert(block.hash());
            assert_eq!(prev, block.hash(), "disagreement at height {n}: node {i}");
            if self.stats.blocks < n {
                self.stats.epochs = n / EPOCH_BLOCKS;
                let committee = self.committee(n);
                let signed = self.member(self.size, n).is_some_and(|m| {
                    state::Bitmap::from_bytes(&cert.bitmap, committee.key_count())
                        .is_some_and(|b| committee.members[m].keys.clone().all(|k| b.get(k)))
                });
                self.stats.spare_signed += signed as u64;
            }
            self.stats.blocks = self.stats.blocks.max(n);
        }
        self.nodes[i].chain.push((block, cert));
        true
    }

    fn random_fault(&mut self) {
        let n = self.nodes.len();
        match self.rng.gen_range(0..3) {
            0 => {
                // Partition: isolate one node, or split in two.
                self.cut.clear();
                self.stats.partitions += 1;
                let k = self.rng.gen_range(1..=n / 2);
                let side: Vec<usize> = (0..k).map(|_| self.rng.gen_range(0..n)).collect();
                for &a in &side {
                    for b in 0..n {
                        if !side.contains(&b) {
                            self.cut.insert((a, b));
                        }
                    }
                }
            }
            1 => self.cut.clear(),
            _ => {
                let i = self.rng.gen_range(0..n);
                if self.nodes[i].fbft.is_some() && self.honest(i) {
                    self.crash(i);
                } else if self.nodes[i].fbft.is_none() {
                    self.boot(i);
                }
            }
        }
    }

    fn heal(&mut self) {
        self.faults_on = false;
        self.cut.clear();
        for i in 0..self.nodes.len() {
            if self.nodes[i].fbft.is_none() {
                self.boot(i);
            }
        }
    }

    fn min_honest_height(&self) -> u64 {
        (0..self.nodes.len())
            .filter(|&i| self.honest(i))
            .map(|i| self.nodes[i].chain.len() as u64)
            .min()
            .unwrap()
    }

    fn run(&mut self) {
        let mut next_fault = self.now + 2_000;
        let mut next_status = self.now + STATUS_MS;
        let heal_at = GENESIS_MS + FAULT_PHASE_MS;
        let mut healed = false;
        let mut target = 0;
        while let Some(Reverse((at, seq))) = self.queue.pop() {
            self.now = self.now.max(at);
            if self.now >= next_status {
                self.exchange_status();
                next_status = self.now + STATUS_MS;
            }
            if !healed && self.now >= next_fault {
                self.random_fault();
                next_fault = self.now + self.rng.gen_range(500..4_000);
            }
            if !healed && self.now >= heal_at {
                self.heal();
                healed = true;
                target = self.finalized.keys().max().copied().unwrap_or(0) + 3;
            }
            // Liveness bound. A view costs at most the longest timeout after back-off (×64,
            // plus the block time the first view also waits) and the half timeout a fresh
            // quorum gets for its NewView, once more when its NewView restarts its clock: 2 T.
            // Up to f views in a row can have Byzantine leaders, and one more may be lost to
            // the heal itself; then the honest leader's view finalizes. So (f + 2) · 2 T, plus
            // slack for delays and catch-up.
            let f = self.nodes.iter().filter(|n| n.byz.is_some()).count() as u64;
            let bound = (f + 2) * 2 * (self.view_timeout_ms * 64 + BLOCK_MS) + 20_000;
            if healed {
                if self.min_honest_height() >= target {
                    return;
                }
                if self.now >= heal_at + bound {
                    for (i, n) in self.nodes.iter().enumerate() {
                        eprintln!(
                            "node {i} byz {:?}: {}",
                            n.byz,
                            n.fbft.as_ref().map(|f| f.describe()).unwrap_or_default()
                        );
                    }
                }
                assert!(
                    self.now < heal_at + bound,
                    "no progress within {bound} ms after healing: heights {:?}, target {target}",
                    self.nodes.iter().map(|n| n.chain.len()).collect::<Vec<_>>()
                );
            }
            self.stats.steps += 1;
            match self.events.remove(&seq).expect("event") {
                Ev::Deliver { from, to, bytes } => {
                    if self.nodes[to].fbft.is_none() {
                        continue;
                    }
                    if let Ok(msg) = Message::decode(&bytes) {
                        match self.nodes[to].byz {
                            Some(Byz::TwoBlocks) => self.second_block_vote(to, from, &msg),
                            Some(Byz::Replay | Byz::MixedNewView)
                                if self.nodes[to].seen.len() < 500 =>
                            {
                                self.nodes[to].seen.push(msg.clone())
                            }
                            _ => {}
                        }
                        if std::env::var("SIM_TRACE").is_ok() {
                            eprintln!(
                                "{} deliver {from}->{to} {}",
                                self.now - GENESIS_MS,
                                msg.name()
                            );
                        }
                        let from = peer(from);
                        self.input(to, Input::Message { from, msg });
                    }
                }
                Ev::Sync { node, peer, upto } => self.sync(node, peer, upto),
                Ev::Result {
                    node,
                    incarnation,
                    input,
                } => {
                    if self.nodes[node].incarnation == incarnation {
                        self.input(node, *input);
                    }
                }
                Ev::Timer {
                    node,
                    incarnation,
                    timer,
                } => {
                    if self.nodes[node].incarnation == incarnation {
                        self.input(node, Input::Timeout(timer));
                    }
                }
            }
        }
        panic!("event queue ran dry (seed {})", self.seed);
    }
}

/// Guard logs on tmpfs where there is one: the guard fsyncs every record, and a run of many
/// seeds would otherwise wait on the disk.
fn guard_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

fn common_cert_valid(engine: &Engine, committee: &Committee, c: &CommitCertificate) -> bool {
    consensus::verify_commit_certificate(engine, committee, CHAIN_ID, 0, c).is_ok()
}

/// Seeds that found a fault once, kept as regression tests:
/// - 5000002889: a node that entered a view ~10 s before the others left it just as they
///   arrived (its timer fired with the quorum barely there), so it stayed one view ahead and
///   with one silent validator no view could commit (fixed: a quorum gets half a view timeout
///   to produce its NewView).
/// - 9000000001745: the same lag, one level up: a new leader's view timer had been armed when
///   it entered the view, ~9 s before its NewView, so it abandoned the view ~1 s after the
///   view really began (fixed: a view's clock restarts at its NewView). 1001781 failed the
///   same way.
/// - 9000000000633: 7 nodes, two Byzantine leaders (silent, invalid blocks): progress, but
///   slower than the old bound of two views allowed; the bound now counts f + 2 views.
///   1009217 failed the old bound the same way.
const REGRESSION_SEEDS: &[u64] = &[
    5_000_002_889,
    9_000_000_001_745,
    1_001_781,
    9_000_000_000_633,
    1_009_217,
];

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn simulation() {
    let seeds = env("SIM_SEEDS", 6);
    let start = env("SIM_SEED_START", 1);
    let mut total = Stats::default();
    // SIM_KEEP_GOING=1 runs every seed and lists the failures at the end (for wide ranges).
    let mut failed = Vec::new();
    let began = std::time::Instant::now();
    // Seeds that once failed run every time (unless a range is asked for explicitly).
    let regressions: &[u64] = if std::env::var("SIM_SEED_START").is_ok() {
        &[]
    } else {
        REGRESSION_SEEDS
    };
    for seed in regressions.iter().copied().chain(start..start + seeds) {
        let result = std::panic::catch_unwind(|| {
            let mut sim = Sim::new(seed);
            sim.run();
            let byz: Vec<_> = sim
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.byz.map(|b| (i, b)))
                .collect();
            if std::env::var("SIM_QUIET").is_err() {
                println!(
                    "seed {seed}: {} nodes, byzantine {byz:?}, {} blocks, {} steps, {} view changes",
                    sim.nodes.len(),
                    sim.stats.blocks,
                    sim.stats.steps,
                    sim.stats.view_changes
                );
            }
            assert_eq!(
                sim.stats.guard_refusals, 0,
                "the guard refused an honest node's vote (seed {seed})"
            );
            sim.stats
        });
        match result {
            Ok(s) => {
                let done = seed + 1 - start;
                if std::env::var("SIM_KEEP_GOING").is_ok() && done.is_multiple_of(500) {
                    eprintln!(
                        "simulation progress: {done} seeds from {start} in {:.0?}, failures {failed:?}",
                        began.elapsed()
                    );
                }
                total.steps += s.steps;
                total.view_changes += s.view_changes;
                total.dropped += s.dropped;
                total.duplicated += s.duplicated;
                total.crashes += s.crashes;
                total.partitions += s.partitions;
                total.byzantine_messages += s.byzantine_messages;
                total.blocks += s.blocks;
                total.epochs += s.epochs;
                total.spare_signed += s.spare_signed;
            }
            Err(e) => {
                eprintln!(
                    "simulation failed for seed {seed}; replay with:\n  SIM_SEED_START={seed} SIM_SEEDS=1 cargo test -p consensus --test simulation -- --nocapture"
                );
                if std::env::var("SIM_KEEP_GOING").is_err() {
                    std::panic::resume_unwind(e);
                }
                failed.push(seed);
            }
        }
    }
    println!(
        "simulation: {seeds} seeds from {start}: {} steps, {} blocks finalized, {} view changes; faults: {} dropped, {} duplicated, {} crashes, {} partitions, {} byzantine messages",
        total.steps, total.blocks, total.view_changes, total.dropped, total.duplicated, total.crashes, total.partitions, total.byzantine_messages
    );
    println!(
        "simulation: {} committee hand-offs; the spare (an observer at genesis) signed {} blocks",
        total.epochs, total.spare_signed
    );
    println!("simulation: {seeds} seeds took {:.0?}", began.elapsed());
    assert!(failed.is_empty(), "failed seeds: {failed:?}");
    assert!(total.blocks > 0);
    assert!(
        total.epochs > 0,
        "no run crossed an epoch: the hand-off went untested"
    );
    assert!(
        total.spare_signed > 0,
        "the spare never signed: joining the committee went untested"
    );
    let _ = secret(0, 0);
}
