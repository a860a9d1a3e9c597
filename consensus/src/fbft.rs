//! The FBFT state machine of one node: Announce → Prepare → Prepared → Commit → Committed.
//!
//! One round per height. The leader of the round's view proposes; every validator signs
//! *prepare* as soon as the header and proposer check out (full validation runs in parallel)
//! and *commit* only once the block validated and a prepared certificate arrived. Quorum is
//! strictly more than 2/3 of voting power. Block N+1 carries N's commit certificate.
//!
//! All BLS work is requested as [`Effect::Verify`] jobs and completed by [`Input::Verified`],
//! signatures by [`Effect::Sign`] / [`Input::Signed`], so this module does no I/O and no
//! expensive computation beyond aggregating points.

use crate::committee::Committee;
use crate::message::{Announce, Message, Vote};
use accel::{AggregateSignature, PublicKey, Signature};
use alloy_primitives::{Bytes, B256};
use hsm::{payload, MsgKind, SignRequest, PAYLOAD_BYTES};
use state::{Bitmap, Block, CommitCertificate, GAS_LIMIT, HEADER_VERSION};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Static parameters of a node's consensus.
#[derive(Debug, Clone)]
pub struct Config {
    pub chain_id: u64,
    pub shard: u32,
    pub epoch_blocks: u64,
    pub block_time_ms: u64,
    /// How far a header timestamp may run ahead of this node's wall clock.
    pub max_future_ms: u64,
    /// This node's committee member index.
    pub me: usize,
}

/// The finalized tip the next round builds on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    pub number: u64,
    pub hash: B256,
    pub view: u64,
    pub timestamp_ms: u64,
    /// Commit certificate of the tip (None for genesis).
    pub cert: Option<CommitCertificate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Time for the leader of (number, view) to propose.
    Propose { number: u64, view: u64 },
}

/// A batch of votes on one payload to verify; answered by [`Input::Verified`] with one bool
/// per vote, in order.
#[derive(Debug, Clone)]
pub struct VerifyJob {
    pub id: u64,
    pub payload: [u8; PAYLOAD_BYTES],
    pub votes: Vec<accel::Vote>,
}

// Inputs and effects are moved once through the step; boxing the block would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// The node started (after the tip was loaded with [`Fbft::new`]).
    Start,
    Message {
        from: usize,
        msg: Message,
    },
    Timeout(Timer),
    /// The block the caller built after [`Effect::BuildBlock`].
    Proposal(Block),
    /// Result of full validation (re-execution) of a block.
    Validated {
        hash: B256,
        result: Result<(), String>,
    },
    Signed {
        req: SignRequest,
        signatures: Vec<Signature>,
    },
    Verified {
        id: u64,
        valid: Vec<bool>,
    },
    /// A block was durably stored (by finalization or catch-up): the new tip.
    Persisted(Tip),
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Effect {
    Broadcast(Message),
    Send(usize, Message),
    Sign(SignRequest),
    Verify(VerifyJob),
    /// Validate the whole block (roots, gas, transactions); answer with [`Input::Validated`].
    Validate(Block),
    /// Build the block for (number, view) on `parent`; answer with [`Input::Proposal`].
    BuildBlock {
        number: u64,
        view: u64,
        epoch: u64,
        parent: B256,
        min_timestamp_ms: u64,
        last_commit: Option<CommitCertificate>,
    },
    Schedule(Timer, Duration),
    /// Store the block with its certificate, then answer with [`Input::Persisted`].
    Finalize {
        block: Block,
        cert: CommitCertificate,
    },
    /// A peer has finalized past our tip: fetch blocks from it.
    Behind {
        peer: usize,
        number: u64,
    },
    /// A peer sent something invalid; the caller logs and scores it.
    PeerFault {
        peer: usize,
        reason: String,
    },
}

/// Votes of one kind collected by the leader.
#[derive(Default)]
struct VoteSet {
    verified: Vec<(Bitmap, Signature)>,
    pending: Vec<(usize, Bitmap, Signature)>,
    voted: std::collections::HashSet<usize>,
    in_flight: bool,
    certified: bool,
}

struct Round {
    number: u64,
    view: u64,
    leader: usize,
    block: Option<Block>,
    validated: bool,
    prepared: Option<CommitCertificate>,
    commit_requested: bool,
    committed: bool,
    announce_checking: bool,
    prepares: VoteSet,
    commits: VoteSet,
}

enum Check {
    AnnounceParent {
        block: Box<Block>,
    },
    Prepared(CommitCertificate),
    Committed {
        cert: CommitCertificate,
        from: usize,
    },
    Votes {
        kind: MsgKind,
        voters: Vec<(usize, Bitmap, Signature)>,
    },
}

/// Messages for a later height kept until the tip catches up (bounded).
const FUTURE_BUFFER: usize = 256;

pub struct Fbft {
    cfg: Config,
    committee: Arc<Committee>,
    tip: Tip,
    round: Round,
    checks: HashMap<u64, Check>,
    next_check: u64,
    future: Vec<(usize, Message)>,
}

impl Fbft {
    pub fn new(cfg: Config, committee: Arc<Committee>, tip: Tip) -> Self {
        let round = Self::round_after(&committee, &tip);
        Self {
            cfg,
            committee,
            tip,
            round,
            checks: HashMap::new(),
            next_check: 0,
            future: Vec::new(),
        }
    }

    fn round_after(committee: &Committee, tip: &Tip) -> Round {
        let view = tip.view + 1;
        Round {
            number: tip.number + 1,
            view,
            leader: committee.leader_of(view),
            block: None,
            validated: false,
            prepared: None,
            commit_requested: false,
            committed: false,
            announce_checking: false,
            prepares: VoteSet::default(),
            commits: VoteSet::default(),
        }
    }

    pub fn tip(&self) -> &Tip {
        &self.tip
    }

    /// (number, view, leader) of the round in progress.
    pub fn round(&self) -> (u64, u64, usize) {
        (self.round.number, self.round.view, self.round.leader)
    }

    pub fn is_leader(&self) -> bool {
        self.round.leader == self.cfg.me
    }

    /// Advances the machine by one input. `now_ms` is wall-clock time, used only to bound
    /// header timestamps (views never come from the clock).
    pub fn step(&mut self, now_ms: u64, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::Start => self.start_round(now_ms, &mut out),
            Input::Message { from, msg } => self.on_message(now_ms, from, msg, &mut out),
            Input::Timeout(Timer::Propose { number, view }) => {
                let r = &self.round;
                if r.number == number && r.view == view && r.block.is_none() && self.is_leader() {
                    out.push(Effect::BuildBlock {
                        number,
                        view,
                        epoch: number / self.cfg.epoch_blocks,
                        parent: self.tip.hash,
                        min_timestamp_ms: self.tip.timestamp_ms + 1,
                        last_commit: self.tip.cert.clone(),
                    });
                }
            }
            Input::Proposal(block) => self.on_proposal(block, &mut out),
            Input::Validated { hash, result } => {
                if self.round.block.as_ref().map(Block::hash) == Some(hash) {
                    match result {
                        Ok(()) => {
                            self.round.validated = true;
                            self.maybe_commit(&mut out);
                        }
                        Err(reason) => {
                            // Never commit it; the view change (a later issue) moves past it.
                            tracing::warn!(target: "consensus", %hash, %reason, "block failed validation");
                            self.round.block = None;
                        }
                    }
                }
            }
            Input::Signed { req, signatures } => self.on_signed(req, signatures, &mut out),
            Input::Verified { id, valid } => self.on_verified(id, valid, &mut out),
            Input::Persisted(tip) => {
                if tip.number >= self.tip.number {
                    self.tip = tip;
                    self.round = Self::round_after(&self.committee, &self.tip);
                    self.checks.clear();
                    self.start_round(now_ms, &mut out);
                    let buffered = std::mem::take(&mut self.future);
                    for (from, msg) in buffered {
                        self.on_message(now_ms, from, msg, &mut out);
                    }
                }
            }
        }
        out
    }

    fn start_round(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        if self.is_leader() && self.round.block.is_none() {
            let due = self.tip.timestamp_ms + self.cfg.block_time_ms;
            let delay = Duration::from_millis(due.saturating_sub(now_ms));
            out.push(Effect::Schedule(
                Timer::Propose {
                    number: self.round.number,
                    view: self.round.view,
                },
                delay,
            ));
        }
    }

    fn request(&self, kind: MsgKind, hash: B256) -> SignRequest {
        SignRequest {
            kind,
            chain_id: self.cfg.chain_id,
            shard: self.cfg.shard,
            number: self.round.number,
            view: self.round.view,
            hash: hash.0,
        }
    }

    fn on_proposal(&mut self, block: Block, out: &mut Vec<Effect>) {
        let h = &block.header;
        if !self.is_leader()
            || h.number != self.round.number
            || h.view != self.round.view
            || self.round.block.is_some()
        {
            return;
        }
        let hash = block.hash();
        self.round.block = Some(block.clone());
        // The leader built the block itself: it is validated by construction.
        self.round.validated = true;
        out.push(Effect::Broadcast(Message::Announce(Box::new(Announce {
            block,
        }))));
        out.push(Effect::Sign(self.request(MsgKind::Prepare, hash)));
    }

    fn on_message(&mut self, now_ms: u64, from: usize, msg: Message, out: &mut Vec<Effect>) {
        if from >= self.committee.members.len() {
            return;
        }
        let number = match &msg {
            Message::Announce(a) => a.block.header.number,
            Message::Prepare(v) | Message::Commit(v) => v.number,
            Message::Prepared(c) | Message::Committed(c) => c.number,
            // Status and sync are the caller's business.
            _ => return,
        };
        if number <= self.tip.number {
            return; // stale
        }
        if number > self.round.number {
            if matches!(msg, Message::Committed(_) | Message::Announce(_)) {
                out.push(Effect::Behind {
                    peer: from,
                    number: number - 1,
                });
            }
            if self.future.len() < FUTURE_BUFFER && number == self.round.number + 1 {
                self.future.push((from, msg));
            }
            return;
        }
        match msg {
            Message::Announce(a) => self.on_announce(now_ms, from, a.block, out),
            Message::Prepare(v) => self.on_vote(MsgKind::Prepare, from, v, out),
            Message::Commit(v) => self.on_vote(MsgKind::Commit, from, v, out),
            Message::Prepared(c) => self.on_certificate(MsgKind::Prepare, from, c, out),
            Message::Committed(c) => self.on_certificate(MsgKind::Commit, from, c, out),
            _ => {}
        }
    }

    fn fault(out: &mut Vec<Effect>, peer: usize, reason: impl Into<String>) {
        out.push(Effect::PeerFault {
            peer,
            reason: reason.into(),
        });
    }

    fn on_announce(&mut self, now_ms: u64, from: usize, block: Block, out: &mut Vec<Effect>) {
        let r = &self.round;
        let h = &block.header;
        if from != r.leader {
            return Self::fault(
                out,
                from,
                format!(
                    "announce for view {} from a node that is not its leader",
                    h.view
                ),
            );
        }
        if r.block.is_some() || r.announce_checking {
            if r.block.as_ref().map(Block::hash) != Some(block.hash()) {
                Self::fault(
                    out,
                    from,
                    "second, different announce in one round (equivocation)",
                );
            }
            return;
        }
        if let Err(reason) = self.check_header(now_ms, &block) {
            return Self::fault(out, from, format!("announce #{}: {reason}", h.number));
        }
        if self.tip.number == 0 {
            return self.accept_announce(block, out);
        }
        // Verify the parent's commit certificate carried in the header.
        let cert = CommitCertificate {
            number: self.tip.number,
            view: self.tip.view,
            hash: self.tip.hash,
            signature: h.last_commit_signature.clone(),
            bitmap: h.last_commit_bitmap.clone(),
        };
        match self.certificate_vote(MsgKind::Commit, &cert) {
            Ok((payload, vote)) => {
                self.round.announce_checking = true;
                self.verify(
                    payload,
                    vec![vote],
                    Check::AnnounceParent {
                        block: Box::new(block),
                    },
                    out,
                );
            }
            Err(reason) => Self::fault(
                out,
                from,
                format!("announce #{}: last commit {reason}", h.number),
            ),
        }
    }

    /// Header and proposer checks that gate the prepare vote.
    fn check_header(&self, now_ms: u64, block: &Block) -> Result<(), String> {
        let h = &block.header;
        let r = &self.round;
        if h.version != HEADER_VERSION {
            return Err(format!("header version {}", h.version));
        }
        if h.number != r.number || h.view != r.view {
            return Err(format!(
                "expected number {} view {}, got {} {}",
                r.number, r.view, h.number, h.view
            ));
        }
        if h.parent_hash != self.tip.hash {
            return Err(format!(
                "parent {} is not our tip {}",
                h.parent_hash, self.tip.hash
            ));
        }
        if h.shard != self.cfg.shard {
            return Err(format!(
                "shard {} is not ours ({})",
                h.shard, self.cfg.shard
            ));
        }
        if h.epoch != h.number / self.cfg.epoch_blocks {
            return Err(format!("epoch {} is wrong for block {}", h.epoch, h.number));
        }
        if h.leader != self.committee.members[r.leader].address {
            return Err(format!(
                "leader field {} is not the view's leader",
                h.leader
            ));
        }
        if h.timestamp_ms <= self.tip.timestamp_ms {
            return Err("timestamp not after the parent's".into());
        }
        if h.timestamp_ms > now_ms + self.cfg.max_future_ms {
            return Err(format!(
                "timestamp {} ms in the future",
                h.timestamp_ms - now_ms
            ));
        }
        if h.gas_limit != GAS_LIMIT || h.gas_used > h.gas_limit {
            return Err(format!("gas limit {} / used {}", h.gas_limit, h.gas_used));
        }
        if h.transactions_root != block.compute_transactions_root() {
            return Err("transactions root does not match the body".into());
        }
        Ok(())
    }

    fn accept_announce(&mut self, block: Block, out: &mut Vec<Effect>) {
        let hash = block.hash();
        self.round.announce_checking = false;
        self.round.block = Some(block.clone());
        out.push(Effect::Sign(self.request(MsgKind::Prepare, hash)));
        out.push(Effect::Validate(block));
    }

    fn certificate_vote(
        &self,
        kind: MsgKind,
        cert: &CommitCertificate,
    ) -> Result<([u8; PAYLOAD_BYTES], accel::Vote), String> {
        crate::certificate::certificate_vote(
            &self.committee,
            self.cfg.chain_id,
            self.cfg.shard,
            kind,
            cert,
        )
    }

    fn verify(
        &mut self,
        payload: [u8; PAYLOAD_BYTES],
        votes: Vec<accel::Vote>,
        check: Check,
        out: &mut Vec<Effect>,
    ) {
        let id = self.next_check;
        self.next_check += 1;
        self.checks.insert(id, check);
        out.push(Effect::Verify(VerifyJob { id, payload, votes }));
    }

    fn on_certificate(
        &mut self,
        kind: MsgKind,
        from: usize,
        cert: CommitCertificate,
        out: &mut Vec<Effect>,
    ) {
        let r = &self.round;
        let our_hash = r.block.as_ref().map(Block::hash);
        match kind {
            MsgKind::Prepare => {
                if from != r.leader
                    || r.prepared.is_some()
                    || our_hash != Some(cert.hash)
                    || cert.view != r.view
                {
                    return;
                }
            }
            _ => {
                if r.committed {
                    return;
                }
            }
        }
        match self.certificate_vote(kind, &cert) {
            Ok((payload, vote)) => {
                let check = if kind == MsgKind::Prepare {
                    Check::Prepared(cert)
                } else {
                    Check::Committed { cert, from }
                };
                self.verify(payload, vec![vote], check, out)
            }
            Err(reason) => Self::fault(
                out,
                from,
                format!("{kind:?} certificate #{}: {reason}", cert.number),
            ),
        }
    }

    fn on_vote(&mut self, kind: MsgKind, from: usize, vote: Vote, out: &mut Vec<Effect>) {
        if !self.is_leader() {
            return;
        }
        let Some(hash) = self.round.block.as_ref().map(Block::hash) else {
            return;
        };
        if vote.view != self.round.view || vote.hash != hash {
            return;
        }
        let Some(bitmap) = Bitmap::from_bytes(&vote.bitmap, self.committee.key_count()) else {
            return Self::fault(out, from, "vote bitmap has the wrong length");
        };
        if !self.committee.bitmap_owned_by(&bitmap, from) {
            return Self::fault(out, from, "vote bitmap names keys the sender does not own");
        }
        let signature = match Signature::from_bytes(&vote.signature) {
            Ok(s) => s,
            Err(e) => return Self::fault(out, from, format!("vote signature: {e}")),
        };
        let set = self.votes(kind);
        if set.certified || !set.voted.insert(from) {
            return;
        }
        set.pending.push((from, bitmap, signature));
        self.maybe_verify_votes(kind, hash, out);
    }

    fn votes(&mut self, kind: MsgKind) -> &mut VoteSet {
        if kind == MsgKind::Prepare {
            &mut self.round.prepares
        } else {
            &mut self.round.commits
        }
    }

    /// Sends pending votes for verification once, together with the verified ones, they could
    /// make a quorum: one pairing for the whole batch in the common case.
    fn maybe_verify_votes(&mut self, kind: MsgKind, hash: B256, out: &mut Vec<Effect>) {
        let req = self.request(kind, hash);
        let committee = self.committee.clone();
        let set = self.votes(kind);
        if set.in_flight || set.pending.is_empty() || set.certified {
            return;
        }
        let power: u64 = set
            .verified
            .iter()
            .map(|(b, _)| committee.power_of(b))
            .sum::<u64>()
            + set
                .pending
                .iter()
                .map(|(_, b, _)| committee.power_of(b))
                .sum::<u64>();
        if !committee.is_quorum(power) {
            return;
        }
        let voters = std::mem::take(&mut set.pending);
        set.in_flight = true;
        let votes = voters
            .iter()
            .map(|(_, b, s)| accel::Vote {
                public_key: committee
                    .aggregate_key(b)
                    .expect("non-empty checked bitmap"),
                signature: *s,
            })
            .collect();
        self.verify(payload(&req), votes, Check::Votes { kind, voters }, out);
    }

    fn on_verified(&mut self, id: u64, valid: Vec<bool>, out: &mut Vec<Effect>) {
        let Some(check) = self.checks.remove(&id) else {
            return;
        };
        let all_ok = !valid.is_empty() && valid.iter().all(|v| *v);
        match check {
            Check::AnnounceParent { block } => {
                self.round.announce_checking = false;
                if all_ok && block.header.number == self.round.number && self.round.block.is_none()
                {
                    self.accept_announce(*block, out);
                } else if !all_ok {
                    Self::fault(
                        out,
                        self.round.leader,
                        "announce carries an invalid parent commit signature",
                    );
                }
            }
            Check::Prepared(cert) => {
                if all_ok && self.round.prepared.is_none() {
                    self.round.prepared = Some(cert);
                    self.maybe_commit(out);
                } else if !all_ok {
                    Self::fault(out, self.round.leader, "invalid prepared certificate");
                }
            }
            Check::Committed { cert, from } => {
                if !all_ok {
                    return Self::fault(out, from, "invalid commit certificate");
                }
                if self.round.committed || cert.number != self.round.number {
                    return;
                }
                match &self.round.block {
                    Some(b) if b.hash() == cert.hash => {
                        self.round.committed = true;
                        out.push(Effect::Finalize {
                            block: b.clone(),
                            cert,
                        });
                    }
                    // Finalized by a quorum, but we lack the block: fetch it with its certificate.
                    _ => out.push(Effect::Behind {
                        peer: from,
                        number: cert.number,
                    }),
                }
            }
            Check::Votes { kind, voters } => {
                let hash = self.round.block.as_ref().map(Block::hash);
                let set = self.votes(kind);
                set.in_flight = false;
                let mut faults = Vec::new();
                for ((from, bitmap, sig), ok) in voters.into_iter().zip(valid) {
                    if ok {
                        set.verified.push((bitmap, sig));
                    } else {
                        faults.push(from);
                    }
                }
                for f in faults {
                    Self::fault(out, f, format!("invalid {kind:?} signature"));
                }
                if let Some(hash) = hash {
                    self.try_certify(kind, hash, out);
                    self.maybe_verify_votes(kind, hash, out);
                }
            }
        }
    }

    /// Adds the leader's own vote (trusted, no verification) to its vote set.
    fn add_own_vote(&mut self, kind: MsgKind, sig: Signature, hash: B256, out: &mut Vec<Effect>) {
        let bitmap = self.committee.member_bitmap(self.cfg.me);
        let me = self.cfg.me;
        let set = self.votes(kind);
        if set.voted.insert(me) {
            set.verified.push((bitmap, sig));
        }
        self.try_certify(kind, hash, out);
        self.maybe_verify_votes(kind, hash, out);
    }

    fn try_certify(&mut self, kind: MsgKind, hash: B256, out: &mut Vec<Effect>) {
        let committee = self.committee.clone();
        let (number, view) = (self.round.number, self.round.view);
        let set = self.votes(kind);
        if set.certified {
            return;
        }
        let power: u64 = set
            .verified
            .iter()
            .map(|(b, _)| committee.power_of(b))
            .sum();
        if !committee.is_quorum(power) {
            return;
        }
        let mut bitmap = Bitmap::with_len(committee.key_count());
        for (b, _) in &set.verified {
            bitmap.union_with(b);
        }
        let agg = AggregateSignature::aggregate(set.verified.iter().map(|(_, s)| s))
            .expect("quorum is non-empty")
            .to_signature();
        set.certified = true;
        let cert = CommitCertificate {
            number,
            view,
            hash,
            signature: Bytes::copy_from_slice(&agg.to_bytes()),
            bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
        };
        match kind {
            MsgKind::Prepare => {
                out.push(Effect::Broadcast(Message::Prepared(cert.clone())));
                self.round.prepared = Some(cert);
                self.maybe_commit(out);
            }
            _ => {
                out.push(Effect::Broadcast(Message::Committed(cert.clone())));
                self.round.committed = true;
                let block = self.round.block.clone().expect("certified a block we hold");
                out.push(Effect::Finalize { block, cert });
            }
        }
    }

    fn maybe_commit(&mut self, out: &mut Vec<Effect>) {
        let r = &self.round;
        if r.validated && r.prepared.is_some() && !r.commit_requested {
            if let Some(hash) = r.block.as_ref().map(Block::hash) {
                self.round.commit_requested = true;
                out.push(Effect::Sign(self.request(MsgKind::Commit, hash)));
            }
        }
    }

    fn on_signed(&mut self, req: SignRequest, signatures: Vec<Signature>, out: &mut Vec<Effect>) {
        let r = &self.round;
        let Some(hash) = r.block.as_ref().map(Block::hash) else {
            return;
        };
        if req.number != r.number || req.view != r.view || req.hash != hash.0 {
            return;
        }
        let Ok(agg) = AggregateSignature::aggregate(&signatures) else {
            return;
        };
        let sig = agg.to_signature();
        if self.is_leader() {
            return self.add_own_vote(req.kind, sig, hash, out);
        }
        let vote = Vote {
            number: req.number,
            view: req.view,
            hash,
            bitmap: Bytes::copy_from_slice(self.committee.member_bitmap(self.cfg.me).as_bytes()),
            signature: Bytes::copy_from_slice(&sig.to_bytes()),
        };
        let msg = match req.kind {
            MsgKind::Prepare => Message::Prepare(vote),
            MsgKind::Commit => Message::Commit(vote),
            _ => return,
        };
        out.push(Effect::Send(r.leader, msg));
    }
}

/// Public keys of a member, for checking a signer against the committee at start.
pub fn member_keys(committee: &Committee, member: usize) -> Vec<PublicKey> {
    committee.members[member]
        .keys
        .clone()
        .map(|i| committee.keys[i].public_key)
        .collect()
}
