//! A deterministic in-process cluster: every node's effects executed in one thread, messages
//! delivered in FIFO order unless a test intervenes. The base for message-level tests.
#![allow(dead_code)]

use accel::{Engine, SecretKey};
use alloy_primitives::{Address, B256};
use consensus::{Committee, Config, Effect, Fbft, Input, Message, PeerId, Timer, Tip};
use hsm::{LocalSigner, Signer};
use state::{Block, BlockTemplate, ChainSpec, CommitCertificate, Validator, ValidatorKey};
use std::collections::VecDeque;
use std::sync::Arc;

pub const CHAIN_ID: u64 = 31_415_926;
pub const GENESIS_MS: u64 = 1_800_000_000_000;

pub fn secret(member: usize, key: usize) -> SecretKey {
    let mut ikm = [0x42u8; 32];
    ikm[0] = member as u8;
    ikm[1] = key as u8;
    SecretKey::from_ikm(&ikm).unwrap()
}

/// A spec with `keys_per_member[i]` keys for member i, equal voting power.
pub fn spec(keys_per_member: &[usize], blocks_per_leader: u64) -> ChainSpec {
    let validators = keys_per_member
        .iter()
        .enumerate()
        .map(|(i, &k)| Validator {
            address: Address::repeat_byte(i as u8 + 1),
            voting_power: 100,
            transport_key: hex::encode([i as u8 + 1; 32]),
            endpoint: format!("127.0.0.1:{}", 9000 + i).parse().unwrap(),
            bls_keys: (0..k)
                .map(|j| {
                    let sk = secret(i, j);
                    ValidatorKey {
                        public_key: hex::encode(sk.public_key().to_bytes()),
                        proof_of_possession: hex::encode(sk.prove_possession().to_bytes()),
                    }
                })
                .collect(),
        })
        .collect();
    let spec = ChainSpec {
        name: "test".into(),
        chain_id: CHAIN_ID,
        shard: 0,
        block_time_ms: 1000,
        blocks_per_leader,
        epoch_blocks: 100,
        genesis_timestamp_ms: GENESIS_MS,
        forks: Default::default(),
        staking: Default::default(),
        economics: Default::default(),
        vdf: Default::default(),
        alloc: Default::default(),
        validators,
    };
    spec.validate().unwrap();
    spec
}

/// The transport key of spec validator `i` (what [`spec`] registers), as consensus names peers.
pub fn peer(i: usize) -> PeerId {
    [i as u8 + 1; 32]
}

/// The spec validator a peer is.
pub fn node_of(p: &PeerId) -> usize {
    p[0] as usize - 1
}

pub fn signer(spec: &ChainSpec, member: usize) -> LocalSigner {
    LocalSigner::new(
        (0..spec.validators[member].bls_keys.len())
            .map(|j| secret(member, j))
            .collect(),
    )
}

pub fn genesis_tip(spec: &ChainSpec) -> Tip {
    Tip::of(&spec.genesis(), None)
}

/// A machine at genesis.
pub fn fresh(spec: &ChainSpec, committee: &Arc<Committee>, me: usize) -> Fbft {
    Fbft::new(
        config(spec, me),
        consensus::Committees::same(committee.clone()),
        genesis_tip(spec),
        vec![],
        None,
    )
}

pub fn config(spec: &ChainSpec, me: usize) -> Config {
    Config {
        chain_id: spec.chain_id,
        shard: spec.shard,
        epoch_blocks: spec.epoch_blocks,
        block_time_ms: spec.block_time_ms,
        max_future_ms: 1000,
        view_timeout_ms: Config::default_view_timeout_ms(spec.block_time_ms),
        keys: signer(spec, me).public_keys().to_vec(),
        vrf_from: spec.forks.get(state::forks::VRF).copied(),
    }
}

/// Builds what `Effect::BuildBlock` asks for (the appliance does the same with its mempool).
pub fn build(committee: &Committee, e: &Effect, now_ms: u64) -> Block {
    build_by(committee, e, now_ms, None)
}

/// As [`build`], with the leader given (after view changes it is not the rotation's).
pub fn build_by(committee: &Committee, e: &Effect, now_ms: u64, leader: Option<usize>) -> Block {
    let Effect::BuildBlock {
        number,
        view,
        epoch,
        parent,
        min_timestamp_ms,
        last_commit,
        vrf,
    } = e
    else {
        panic!("not a build request: {e:?}")
    };
    BlockTemplate {
        number: *number,
        view: *view,
        epoch: *epoch,
        shard: 0,
        parent_hash: *parent,
        timestamp_ms: now_ms.max(*min_timestamp_ms),
        leader: committee.members
            [leader.unwrap_or_else(|| committee.leader(*number, *view, *view, &[]))]
        .address,
        last_commit: last_commit.clone(),
        transactions: vec![],
        vrf: vrf.clone(),
    }
    .build()
}

pub struct Node {
    pub fbft: Fbft,
    pub signer: LocalSigner,
    pub chain: Vec<(Block, CommitCertificate)>,
    pub faults: Vec<String>,
    pub safety: Option<consensus::SafetyRecord>,
    pub up: bool,
    /// Blocks whose full validation this node reports as failed.
    pub reject: Option<B256>,
    /// The double-sign guard the appliance puts in front of every signer, once
    /// [`Cluster::guard`] gave this node one.
    pub guard: Option<hsm::Guard>,
    /// Double-sign evidence this node reported.
    pub evidence: Vec<state::staking::DoubleSign>,
}

pub struct Cluster {
    pub spec: ChainSpec,
    pub committee: Arc<Committee>,
    pub nodes: Vec<Node>,
    pub engine: Engine,
    pub now_ms: u64,
    pub wire: VecDeque<(usize, usize, Message)>,
    pub timers: Vec<(u64, usize, Timer)>,
    pub delivered: usize,
}

impl Cluster {
    pub fn new(keys_per_member: &[usize], blocks_per_leader: u64) -> Self {
        let spec = spec(keys_per_member, blocks_per_leader);
        let committee = Arc::new(Committee::from_spec(&spec).unwrap());
        let nodes = (0..keys_per_member.len())
            .map(|i| Node {
                fbft: fresh(&spec, &committee, i),
                signer: signer(&spec, i),
                chain: vec![],
                faults: vec![],
                safety: None,
                up: true,
                reject: None,
                guard: None,
                evidence: vec![],
            })
            .collect();
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap(),
        );
        Self {
            spec,
            committee,
            nodes,
            engine: Engine::cpu(pool),
            now_ms: GENESIS_MS,
            wire: VecDeque::new(),
            timers: vec![],
            delivered: 0,
        }
    }

    /// Puts the real double-sign guard (a log under `dir`) in front of node `i`'s signer.
    pub fn guard(&mut self, i: usize, dir: &std::path::Path) {
        let g = hsm::Guard::open(dir).unwrap();
        g.register(self.nodes[i].signer.public_keys()).unwrap();
        self.nodes[i].guard = Some(g);
    }

    pub fn start(&mut self) {
        for i in 0..self.nodes.len() {
            self.input(i, Input::Start);
        }
    }

    /// Feeds one input to node `i` and executes every effect, depth first, in order.
    pub fn input(&mut self, i: usize, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            if !self.nodes[i].up {
                return;
            }
            let effects = self.nodes[i].fbft.step(self.now_ms, input);
            for e in effects {
                self.execute(i, e, &mut queue);
            }
        }
    }

    fn execute(&mut self, i: usize, e: Effect, queue: &mut VecDeque<Input>) {
        match e {
            Effect::Broadcast(m) => {
                for j in 0..self.nodes.len() {
                    if j != i {
                        self.wire.push_back((i, j, m.clone()));
                    }
                }
            }
            Effect::Send(j, m) => self.wire.push_back((i, node_of(&j), m)),
            Effect::Sign(req) => {
                let n = &mut self.nodes[i];
                if let Some(g) = &n.guard {
                    // As in the appliance: a refused request is logged, and nothing is signed.
                    if let Err(e) = g.check_and_record(n.signer.public_keys(), &req) {
                        return n.faults.push(format!("signer: {e}"));
                    }
                }
                let signatures = n.signer.sign(&req).unwrap();
                queue.push_back(Input::Signed { req, signatures });
            }
            Effect::Verify(job) => queue.push_back(consensus::run_verify_job(&self.engine, &job)),
            Effect::VerifyQuorum(job) => {
                queue.push_back(consensus::run_quorum_job(&self.engine, &job))
            }
            Effect::Validate(block) => {
                let hash = block.hash();
                let result = if self.nodes[i].reject == Some(hash) {
                    Err(state::exec::BlockError::Tx {
                        index: 0,
                        hash: block.hash(),
                        reason: "rejected by test".into(),
                    })
                } else {
                    Ok(())
                };
                queue.push_back(Input::Validated { hash, result });
            }
            e @ Effect::BuildBlock { .. } => {
                let block = build_by(&self.committee, &e, self.now_ms, Some(i));
                queue.push_back(Input::Proposal(block));
            }
            Effect::Schedule(timer, delay) => {
                self.timers
                    .push((self.now_ms + delay.as_millis() as u64, i, timer));
            }
            Effect::PersistSafety(r) => self.nodes[i].safety = Some(r),
            Effect::ViewChanged { .. } => {}
            Effect::Evidence(e) => self.nodes[i].evidence.push(*e),
            Effect::Finalize { block, cert } => {
                let tip = Tip::of(&block, Some(cert.clone()));
                self.nodes[i].chain.push((block, cert));
                let committees = consensus::Committees::same(self.committee.clone());
                queue.push_back(Input::Persisted { tip, committees });
            }
            Effect::Behind { peer, number } => {
                // Catch up from the peer's chain, as the appliance's sync does.
                let have = self.nodes[i].chain.len();
                let theirs: Vec<_> = self.nodes[node_of(&peer)]
                    .chain
                    .iter()
                    .skip(have)
                    .take_while(|(b, _)| b.number() <= number)
                    .cloned()
                    .collect();
                for (block, cert) in theirs {
                    let tip = Tip::of(&block, Some(cert.clone()));
                    self.nodes[i].chain.push((block, cert));
                    let committees = consensus::Committees::same(self.committee.clone());
                    queue.push_back(Input::Persisted { tip, committees });
                }
            }
            Effect::PeerFault { peer, kind, reason } => self.nodes[i]
                .faults
                .push(format!("{}: {kind}: {reason}", node_of(&peer))),
        }
    }

    /// Delivers one message or, when the wire is empty, fires the earliest timer.
    /// Returns false when nothing is left to do.
    pub fn tick(&mut self) -> bool {
        if let Some((from, to, msg)) = self.wire.pop_front() {
            self.delivered += 1;
            let from = peer(from);
            self.input(to, Input::Message { from, msg });
            return true;
        }
        if self.timers.is_empty() {
            return false;
        }
        self.timers.sort_by_key(|(at, _, _)| *at);
        let (at, i, timer) = self.timers.remove(0);
        self.now_ms = self.now_ms.max(at);
        self.input(i, Input::Timeout(timer));
        true
    }

    /// Runs until every up node has finalized `height` (or `max_ticks` pass).
    pub fn run_until(&mut self, height: u64, max_ticks: usize) {
        for _ in 0..max_ticks {
            if self
                .nodes
                .iter()
                .filter(|n| n.up)
                .all(|n| n.fbft.tip().number >= height)
            {
                return;
            }
            if !self.tick() {
                return;
            }
        }
    }

    /// Asserts all nodes agree on every height both have, and every certificate verifies.
    pub fn assert_agreement(&self) {
        let longest = self.nodes.iter().map(|n| n.chain.len()).max().unwrap_or(0);
        for h in 0..longest {
            let mut hash = None;
            for n in &self.nodes {
                if let Some((b, c)) = n.chain.get(h) {
                    assert_eq!(b.number() as usize, h + 1);
                    assert_eq!(c.hash, b.hash());
                    assert!(
                        self.cert_valid(c),
                        "certificate of block {} does not verify",
                        h + 1
                    );
                    match hash {
                        None => hash = Some(b.hash()),
                        Some(x) => assert_eq!(x, b.hash(), "disagreement at height {}", h + 1),
                    }
                }
            }
        }
    }

    pub fn cert_valid(&self, c: &CommitCertificate) -> bool {
        let bitmap = state::Bitmap::from_bytes(&c.bitmap, self.committee.key_count()).unwrap();
        if !self.committee.is_quorum(self.committee.power_of(&bitmap)) {
            return false;
        }
        let pks: Vec<_> = bitmap
            .ones()
            .map(|i| self.committee.keys[i].public_key)
            .collect();
        let req = hsm::SignRequest {
            kind: hsm::MsgKind::Commit,
            chain_id: self.spec.chain_id,
            shard: self.spec.shard,
            number: c.number,
            view: c.view,
            hash: c.hash.0,
        };
        let sig = accel::Signature::from_bytes(&c.signature).unwrap();
        self.engine
            .verify_aggregate(&hsm::payload(&req), &pks, &sig)
    }
}

/// The first effect matching `pred` (panics with all of them when none does).
pub fn find(effects: &[Effect], pred: impl Fn(&Effect) -> bool) -> &Effect {
    effects
        .iter()
        .find(|e| pred(e))
        .unwrap_or_else(|| panic!("expected effect missing in {effects:#?}"))
}

/// Runs a verification job (certificates, or votes from wire bytes) with the reference
/// engine.
pub fn verified(_c: &Cluster, e: &Effect) -> Input {
    let engine = accel::Engine::reference();
    match e {
        Effect::Verify(job) => consensus::run_verify_job(&engine, job),
        Effect::VerifyQuorum(job) => consensus::run_quorum_job(&engine, job),
        _ => panic!("not a verification job: {e:?}"),
    }
}

/// Node 0, leader of view 1, and the block 1 it asked to build (not yet proposed).
pub fn leader_with_block_1(c: &Cluster, now: u64) -> (consensus::Fbft, state::Block) {
    let mut leader = fresh(&c.spec, &c.committee, 0);
    leader.step(now, Input::Start);
    let eff = leader.step(now, Input::Timeout(Timer::Propose { number: 1, view: 1 }));
    let block = build(&c.committee, &eff[0], now);
    (leader, block)
}
