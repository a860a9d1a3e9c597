//! The FBFT state machine of one node: Announce → Prepare → Prepared → Commit → Committed,
//! with view change (ViewChange → NewView) when a leader stalls.
//!
//! One round per height. The leader of the round's view proposes; every validator signs
//! *prepare* as soon as the header and proposer check out (full validation runs in parallel)
//! and *commit* only once the block validated and a prepared certificate arrived. Quorum is
//! strictly more than 2/3 of voting power. Block N+1 carries N's commit certificate.
//!
//! When the round's timer fires first, a validator signs a view change for the next view,
//! carrying its lock: the highest prepared block it validated, with the certificate; the
//! signature binds the lock's hash *and* the certificate's view. The next view's leader
//! gathers more than 2/3 and sends `NewView` with the proof, re-proposing the locked block of
//! the highest certificate view among them, or a fresh block when there is none. A validator
//! prepares a block that conflicts with its own lock only when a higher certificate justifies
//! it. Votes (prepare and commit) sign the current view, so a re-proposed block can always
//! finish its height. Timeouts double with every consecutive failed view of a height
//! (ADR 0010 has the safety argument).
//!
//! All BLS work is requested as [`Effect::Verify`] jobs and completed by [`Input::Verified`],
//! signatures by [`Effect::Sign`] / [`Input::Signed`]; everything a restart needs for safety is
//! handed out as [`Effect::PersistSafety`] before the signature it protects is requested.

use crate::committee::Committee;
use crate::message::{
    Announce, Message, NewView, PreparedProof, ViewChange, ViewChangeGroup, Vote,
};
use crate::safety::{SafetyRecord, SignedVote};
use accel::{AggregateSignature, PublicKey, Signature};
use alloy_primitives::{Bytes, B256};
use hsm::{payload, view_change_lock, MsgKind, SignRequest, PAYLOAD_BYTES};
use state::{Bitmap, Block, CommitCertificate, GAS_LIMIT, HEADER_VERSION};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Messages for views further ahead than this are ignored (bounds leader computation).
pub const MAX_VIEW_AHEAD: u64 = 1000;
/// Consecutive failed views after which the timeout stops doubling.
const MAX_BACKOFF_EXP: u64 = 6;
/// Messages for a later height kept until the tip catches up (bounded).
const FUTURE_BUFFER: usize = 256;
/// Commit bitmaps remembered for leader selection.
const RECENT_BITMAPS: usize = 4;

/// Static parameters of a node's consensus.
#[derive(Debug, Clone)]
pub struct Config {
    pub chain_id: u64,
    pub shard: u32,
    pub epoch_blocks: u64,
    pub block_time_ms: u64,
    /// How far a header timestamp may run ahead of this node's wall clock.
    pub max_future_ms: u64,
    /// Time a view may take before validators move to the next one; doubles per failed view.
    pub view_timeout_ms: u64,
    /// This node's committee member index.
    pub me: usize,
}

impl Config {
    /// Default view timeout: one block time, at least one second. The first view of a height
    /// also gets the block time the leader waits before proposing, and finality takes tens of
    /// milliseconds, so a dead leader costs about two block times and a live one is not
    /// cut short.
    pub fn default_view_timeout_ms(block_time_ms: u64) -> u64 {
        block_time_ms.max(1000)
    }
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
    /// `last_commit_bitmap` of the tip's header (commit signers of its parent).
    pub last_commit_bitmap: Bytes,
}

impl Tip {
    pub fn of(block: &Block, cert: Option<CommitCertificate>) -> Self {
        Tip {
            number: block.number(),
            hash: block.hash(),
            view: block.header.view,
            timestamp_ms: block.header.timestamp_ms,
            cert,
            last_commit_bitmap: block.header.last_commit_bitmap.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Time for the leader of (number, view) to propose.
    Propose { number: u64, view: u64 },
    /// The view (number, view) took too long: move to the next.
    ViewTimeout { number: u64, view: u64 },
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
    /// Make this record durable before executing any later effect.
    PersistSafety(SafetyRecord),
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
    /// This node moved to a new view of the current height (for metrics and logs).
    ViewChanged {
        number: u64,
        view: u64,
    },
}

/// Votes of one kind collected by the leader.
#[derive(Default)]
struct VoteSet {
    verified: Vec<(Bitmap, Signature)>,
    pending: Vec<(usize, Bitmap, Signature)>,
    voted: HashSet<usize>,
    in_flight: bool,
    certified: bool,
}

/// A verified view-change vote.
struct VcEntry {
    bitmap: Bitmap,
    signature: Signature,
    hash: B256,
    prepared: Option<PreparedProof>,
}

#[derive(Default)]
struct VcSet {
    verified: HashMap<usize, VcEntry>,
    checking: HashSet<usize>,
    done: bool,
}

struct Round {
    number: u64,
    view: u64,
    first_view: u64,
    leader: usize,
    /// The proposal of the current view.
    block: Option<Block>,
    /// Waiting for a NewView (after a timeout or before the first proposal of a new view).
    in_view_change: bool,
    prepared: Option<CommitCertificate>,
    /// Highest prepared block this node validated, with its certificate.
    locked: Option<PreparedProof>,
    validated: HashSet<B256>,
    invalid: HashSet<B256>,
    commit_requested: bool,
    committed: bool,
    announce_checking: bool,
    prepares: VoteSet,
    commits: VoteSet,
    view_changes: HashMap<u64, VcSet>,
    /// Groups for the NewView this node (as new leader) sends once its fresh block is built.
    new_view_groups: Option<Vec<ViewChangeGroup>>,
    /// Votes signed at this height.
    votes: Vec<SignedVote>,
    /// Our view changes by view: the latest is repeated while no NewView comes; older ones are
    /// handed to a peer still in that view, so it can complete the quorum we already saw.
    own_view_changes: HashMap<u64, ViewChange>,
    /// (peer, view) pairs we already handed an old view change to.
    handed: HashSet<(usize, u64)>,
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
    ViewChange {
        from: usize,
        vc: Box<ViewChange>,
        bitmap: Bitmap,
        signature: Signature,
    },
    LateCommit {
        from: usize,
        bitmap: Bitmap,
        signature: Signature,
    },
    NewView {
        from: usize,
        nv: Box<NewView>,
    },
}

struct Pending {
    check: Check,
    parts: usize,
    ok: bool,
    valid: Vec<bool>,
}

pub struct Fbft {
    cfg: Config,
    committee: Arc<Committee>,
    tip: Tip,
    recent: VecDeque<Bitmap>,
    round: Round,
    pending: HashMap<u64, Pending>,
    jobs: HashMap<u64, u64>,
    next_id: u64,
    future: Vec<(usize, Message)>,
    /// As leader of the tip: commit votes that arrive after the certificate, folded into it so
    /// the next header's bitmap names every validator that was live (Harmony upgrades the
    /// tip's certificate the same way).
    late: Option<LateCommits>,
}

struct LateCommits {
    number: u64,
    view: u64,
    hash: B256,
    bitmap: Bitmap,
    signature: Signature,
    voted: HashSet<usize>,
}

impl Fbft {
    /// A machine at `tip`. `recent` are the `last_commit_bitmap`s of the last (up to 4) stored
    /// headers, oldest first, tip's last; `safety` is the last persisted record, if any.
    pub fn new(
        cfg: Config,
        committee: Arc<Committee>,
        tip: Tip,
        recent: Vec<Bytes>,
        safety: Option<SafetyRecord>,
    ) -> Self {
        let n = committee.key_count();
        let recent: VecDeque<Bitmap> = recent
            .iter()
            .rev()
            .take(RECENT_BITMAPS)
            .rev()
            .filter_map(|b| Bitmap::from_bytes(b, n))
            .collect();
        let round = Self::round_after(&committee, &tip, &recent);
        let mut me = Self {
            cfg,
            committee,
            tip,
            recent,
            round,
            pending: HashMap::new(),
            jobs: HashMap::new(),
            next_id: 0,
            future: Vec::new(),
            late: None,
        };
        if let Some(rec) = safety.filter(|r| r.number == me.round.number) {
            me.restore(rec);
        }
        me
    }

    fn restore(&mut self, rec: SafetyRecord) {
        let recent: Vec<Bitmap> = self.recent.iter().cloned().collect();
        let r = &mut self.round;
        if rec.view >= r.view {
            r.view = rec.view;
            r.leader = self
                .committee
                .leader(r.number, r.view, r.first_view, &recent);
            r.in_view_change = rec.waiting_new_view;
        }
        r.locked = rec.locked.into_iter().next();
        if let Some(l) = &r.locked {
            r.validated.insert(l.block.hash());
        }
        r.votes = rec.votes;
    }

    fn round_after(committee: &Committee, tip: &Tip, recent: &VecDeque<Bitmap>) -> Round {
        let view = tip.view + 1;
        let recent: Vec<Bitmap> = recent.iter().cloned().collect();
        Round {
            number: tip.number + 1,
            view,
            first_view: view,
            leader: committee.leader(tip.number + 1, view, view, &recent),
            block: None,
            in_view_change: false,
            prepared: None,
            locked: None,
            validated: HashSet::new(),
            invalid: HashSet::new(),
            commit_requested: false,
            committed: false,
            announce_checking: false,
            prepares: VoteSet::default(),
            commits: VoteSet::default(),
            view_changes: HashMap::new(),
            new_view_groups: None,
            votes: Vec::new(),
            own_view_changes: HashMap::new(),
            handed: HashSet::new(),
        }
    }

    pub fn tip(&self) -> &Tip {
        &self.tip
    }

    /// (number, view, leader) of the round in progress.
    pub fn round(&self) -> (u64, u64, usize) {
        (self.round.number, self.round.view, self.round.leader)
    }

    /// One line describing the round, for logs and failing tests.
    pub fn describe(&self) -> String {
        let r = &self.round;
        format!(
            "tip {} round {}/view {} (first {}) leader {} block {} prepared {} locked {} vc {} votes {:?}",
            self.tip.number,
            r.number,
            r.view,
            r.first_view,
            r.leader,
            r.block.is_some(),
            r.prepared.is_some(),
            r.locked.as_ref().map(|l| l.cert.view).map_or("-".into(), |v| v.to_string()),
            r.in_view_change,
            r.view_changes.iter().map(|(v, s)| (*v, s.verified.len())).collect::<Vec<_>>()
        )
    }

    pub fn is_leader(&self) -> bool {
        self.round.leader == self.cfg.me
    }

    fn leader_of(&self, view: u64) -> usize {
        let recent: Vec<Bitmap> = self.recent.iter().cloned().collect();
        self.committee
            .leader(self.round.number, view, self.round.first_view, &recent)
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
                if r.number == number
                    && r.view == view
                    && r.block.is_none()
                    && !r.in_view_change
                    && self.is_leader()
                {
                    out.push(self.build_request());
                }
            }
            Input::Timeout(Timer::ViewTimeout { number, view }) => {
                let r = &self.round;
                if r.number == number && r.view == view && !r.committed {
                    self.on_view_timeout(view, &mut out);
                }
            }
            Input::Proposal(block) => self.on_proposal(block, &mut out),
            Input::Validated { hash, result } => self.on_validated(hash, result, &mut out),
            Input::Signed { req, signatures } => self.on_signed(req, signatures, &mut out),
            Input::Verified { id, valid } => self.on_verified(now_ms, id, valid, &mut out),
            Input::Persisted(tip) => {
                if tip.number > self.tip.number || (self.tip.number == 0 && tip.number == 0) {
                    if let Some(b) =
                        Bitmap::from_bytes(&tip.last_commit_bitmap, self.committee.key_count())
                    {
                        self.recent.push_back(b);
                        while self.recent.len() > RECENT_BITMAPS {
                            self.recent.pop_front();
                        }
                    }
                    self.tip = tip;
                    self.round = Self::round_after(&self.committee, &self.tip, &self.recent);
                    self.pending.clear();
                    self.jobs.clear();
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

    fn build_request(&self) -> Effect {
        Effect::BuildBlock {
            number: self.round.number,
            view: self.round.view,
            epoch: self.round.number / self.cfg.epoch_blocks,
            parent: self.tip.hash,
            min_timestamp_ms: self.tip.timestamp_ms + 1,
            last_commit: self.tip.cert.clone(),
        }
    }

    fn view_timeout(&self, view: u64) -> Duration {
        let failed = view
            .saturating_sub(self.round.first_view)
            .min(MAX_BACKOFF_EXP);
        Duration::from_millis(self.cfg.view_timeout_ms << failed)
    }

    fn start_round(&mut self, now_ms: u64, out: &mut Vec<Effect>) {
        let (number, view) = (self.round.number, self.round.view);
        if self.is_leader() && self.round.block.is_none() && !self.round.in_view_change {
            let due = self.tip.timestamp_ms + self.cfg.block_time_ms;
            let delay = Duration::from_millis(due.saturating_sub(now_ms));
            out.push(Effect::Schedule(Timer::Propose { number, view }, delay));
        }
        // The leader waits a block time before proposing; count that in the view's budget.
        let timeout = self.view_timeout(view) + Duration::from_millis(self.cfg.block_time_ms);
        out.push(Effect::Schedule(
            Timer::ViewTimeout { number, view },
            timeout,
        ));
    }

    /// A signing request of this network and shard.
    fn sign_request(&self, kind: MsgKind, number: u64, view: u64, hash: B256) -> SignRequest {
        SignRequest {
            kind,
            chain_id: self.cfg.chain_id,
            shard: self.cfg.shard,
            number,
            view,
            hash: hash.0,
        }
    }

    fn safety_record(&self) -> SafetyRecord {
        SafetyRecord {
            number: self.round.number,
            view: self.round.view,
            waiting_new_view: self.round.in_view_change,
            locked: self.round.locked.clone().into_iter().collect(),
            votes: self.round.votes.clone(),
        }
    }

    /// Records the vote, persists, and asks for the signature — unless this node already signed
    /// a different hash in that (kind, view) slot, which it refuses.
    fn sign(&mut self, kind: MsgKind, view: u64, hash: B256, out: &mut Vec<Effect>) -> bool {
        let k = kind as u8;
        if let Some(v) = self
            .round
            .votes
            .iter()
            .find(|v| v.kind == k && v.view == view)
        {
            if v.hash != hash {
                tracing::error!(target: "consensus", ?kind, view, "refusing to sign a conflicting vote");
                return false;
            }
        } else {
            self.round.votes.push(SignedVote {
                kind: k,
                view,
                hash,
            });
        }
        out.push(Effect::PersistSafety(self.safety_record()));
        out.push(Effect::Sign(self.sign_request(
            kind,
            self.round.number,
            view,
            hash,
        )));
        true
    }

    fn on_proposal(&mut self, block: Block, out: &mut Vec<Effect>) {
        let h = &block.header;
        let r = &self.round;
        if !self.is_leader() || h.number != r.number || h.view != r.view || r.block.is_some() {
            return;
        }
        let (number, view, in_view_change) = (r.number, r.view, r.in_view_change);
        if let Some(groups) = self.round.new_view_groups.take() {
            let nv = NewView {
                number,
                view,
                groups,
                block: block.clone(),
            };
            out.push(Effect::Broadcast(Message::NewView(Box::new(nv))));
            self.round.in_view_change = false;
        } else if in_view_change {
            return;
        } else {
            out.push(Effect::Broadcast(Message::Announce(Box::new(Announce {
                block: block.clone(),
            }))));
        }
        let hash = block.hash();
        // The leader built the block itself: it is validated by construction.
        self.round.validated.insert(hash);
        self.round.block = Some(block);
        self.sign(MsgKind::Prepare, self.round.view, hash, out);
    }

    fn on_validated(&mut self, hash: B256, result: Result<(), String>, out: &mut Vec<Effect>) {
        match result {
            Ok(()) => {
                self.round.validated.insert(hash);
                self.maybe_lock();
                self.maybe_commit(out);
            }
            Err(reason) => {
                // Never commit it, never carry it into a view change.
                tracing::warn!(target: "consensus", %hash, %reason, "block failed validation");
                self.round.invalid.insert(hash);
                if self
                    .round
                    .locked
                    .as_ref()
                    .is_some_and(|l| l.block.hash() == hash)
                {
                    self.round.locked = None;
                }
            }
        }
    }

    fn message_position(msg: &Message) -> Option<(u64, Option<u64>)> {
        Some(match msg {
            Message::Announce(a) => (a.block.header.number, Some(a.block.header.view)),
            Message::Prepare(v) | Message::Commit(v) => (v.number, None),
            Message::Prepared(c) | Message::Committed(c) => (c.number, None),
            Message::ViewChange(v) => (v.number, Some(v.view)),
            Message::NewView(v) => (v.number, Some(v.view)),
            _ => return None,
        })
    }

    fn on_message(&mut self, now_ms: u64, from: usize, msg: Message, out: &mut Vec<Effect>) {
        if from >= self.committee.members.len() {
            return;
        }
        // Status and sync are the caller's business.
        let Some((number, view)) = Self::message_position(&msg) else {
            return;
        };
        if number <= self.tip.number {
            if let Message::Commit(v) = msg {
                self.on_late_commit(from, v, out);
            }
            return; // stale
        }
        if view.is_some_and(|v| v > self.round.view + MAX_VIEW_AHEAD) {
            return Self::fault(out, from, format!("view {view:?} is implausibly far ahead"));
        }
        if number > self.round.number {
            if matches!(
                msg,
                Message::Committed(_)
                    | Message::Announce(_)
                    | Message::NewView(_)
                    | Message::ViewChange(_)
            ) {
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
            Message::ViewChange(v) => self.on_view_change(from, *v, out),
            Message::NewView(v) => self.on_new_view(now_ms, from, *v, out),
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
        if h.view != r.view {
            return; // another view; NewView is how views change
        }
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
        if r.in_view_change {
            return; // this view starts with a NewView
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
        if let Err(reason) = self.check_header(now_ms, &block, r.view) {
            return Self::fault(out, from, format!("announce #{}: {reason}", h.number));
        }
        self.check_parent_then(block, from, out);
    }

    /// Verifies the parent's commit certificate carried in the header, then accepts `block`.
    fn check_parent_then(&mut self, block: Block, from: usize, out: &mut Vec<Effect>) {
        if self.tip.number == 0 {
            return self.accept_proposal(block, None, out);
        }
        let cert = CommitCertificate {
            number: self.tip.number,
            view: block.header.last_commit_view,
            hash: self.tip.hash,
            signature: block.header.last_commit_signature.clone(),
            bitmap: block.header.last_commit_bitmap.clone(),
        };
        match self.certificate_vote(MsgKind::Commit, &cert) {
            Ok((payload, vote)) => {
                self.round.announce_checking = true;
                self.verify(
                    vec![(payload, vec![vote])],
                    Check::AnnounceParent {
                        block: Box::new(block),
                    },
                    out,
                );
            }
            Err(reason) => Self::fault(
                out,
                from,
                format!("proposal #{}: last commit {reason}", block.header.number),
            ),
        }
    }

    /// Header and proposer checks that gate the prepare vote of a fresh proposal in `view`.
    fn check_header(&self, now_ms: u64, block: &Block, view: u64) -> Result<(), String> {
        let h = &block.header;
        let r = &self.round;
        if h.version != HEADER_VERSION {
            return Err(format!("header version {}", h.version));
        }
        if h.number != r.number || h.view != view {
            return Err(format!(
                "expected number {} view {}, got {} {}",
                r.number, view, h.number, h.view
            ));
        }
        self.check_parent_fields(block)?;
        if h.leader != self.committee.members[self.leader_of(view)].address {
            return Err(format!(
                "leader field {} is not the view's leader",
                h.leader
            ));
        }
        if h.timestamp_ms > now_ms + self.cfg.max_future_ms {
            return Err(format!(
                "timestamp {} ms in the future",
                h.timestamp_ms - now_ms
            ));
        }
        Ok(())
    }

    /// Checks that hold for any proposal at this height, fresh or re-proposed.
    fn check_parent_fields(&self, block: &Block) -> Result<(), String> {
        let h = &block.header;
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
        if h.timestamp_ms <= self.tip.timestamp_ms {
            return Err("timestamp not after the parent's".into());
        }
        if h.gas_limit != GAS_LIMIT || h.gas_used > h.gas_limit {
            return Err(format!("gas limit {} / used {}", h.gas_limit, h.gas_used));
        }
        if h.transactions_root != block.compute_transactions_root() {
            return Err("transactions root does not match the body".into());
        }
        if self.tip.number == 0 {
            if h.last_commit_view != 0
                || !h.last_commit_signature.is_empty()
                || !h.last_commit_bitmap.is_empty()
            {
                return Err("block 1 carries a parent commit certificate".into());
            }
        } else if h.last_commit_view < self.tip.view {
            return Err(format!(
                "last commit view {} is before the parent's view {}",
                h.last_commit_view, self.tip.view
            ));
        }
        Ok(())
    }

    /// Takes `block` as the view's proposal and prepares it. `justify` is the view of the
    /// prepare certificate that a NewView re-proposes it under (None for a fresh block).
    fn accept_proposal(&mut self, block: Block, justify: Option<u64>, out: &mut Vec<Effect>) {
        let hash = block.hash();
        self.round.announce_checking = false;
        if self.round.invalid.contains(&hash) {
            return;
        }
        if let Some(lock) = &self.round.locked {
            // Safety: never prepare against our lock unless a higher certificate shows that a
            // quorum moved on (then the locked block cannot have been committed).
            if lock.block.hash() != hash && justify.is_none_or(|j| j <= lock.cert.view) {
                tracing::warn!(
                    target: "consensus",
                    number = self.round.number,
                    view = self.round.view,
                    %hash,
                    locked = %lock.block.hash(),
                    lock_view = lock.cert.view,
                    justify,
                    "refusing a proposal that conflicts with our lock"
                );
                return;
            }
        }
        let needs_validation = !self.round.validated.contains(&hash);
        self.round.block = Some(block.clone());
        if self.sign(MsgKind::Prepare, self.round.view, hash, out) && needs_validation {
            out.push(Effect::Validate(block));
        }
        self.maybe_commit(out);
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

    /// Starts one check made of several verification jobs; it succeeds when all do.
    fn verify(
        &mut self,
        jobs: Vec<([u8; PAYLOAD_BYTES], Vec<accel::Vote>)>,
        check: Check,
        out: &mut Vec<Effect>,
    ) {
        let cid = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            cid,
            Pending {
                check,
                parts: jobs.len(),
                ok: true,
                valid: Vec::new(),
            },
        );
        for (payload, votes) in jobs {
            let id = self.next_id;
            self.next_id += 1;
            self.jobs.insert(id, cid);
            out.push(Effect::Verify(VerifyJob { id, payload, votes }));
        }
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
                self.verify(vec![(payload, vec![vote])], check, out)
            }
            Err(reason) => Self::fault(
                out,
                from,
                format!("{kind:?} certificate #{}: {reason}", cert.number),
            ),
        }
    }

    /// The view a vote on the current proposal signs: the round's view, for prepare and commit
    /// alike. Commits at the header's view would let a guard watermark raised by a commit in a
    /// later view refuse the re-proposal of an earlier block for ever (ADR 0010).
    fn vote_view(&self, _kind: MsgKind) -> Option<u64> {
        self.round.block.as_ref().map(|_| self.round.view)
    }

    fn on_vote(&mut self, kind: MsgKind, from: usize, vote: Vote, out: &mut Vec<Effect>) {
        if !self.is_leader() {
            return;
        }
        let Some(hash) = self.round.block.as_ref().map(Block::hash) else {
            return;
        };
        if Some(vote.view) != self.vote_view(kind) || vote.hash != hash {
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

    fn vote_payload(&self, kind: MsgKind, hash: B256) -> Option<[u8; PAYLOAD_BYTES]> {
        let view = self.vote_view(kind)?;
        Some(payload(&self.sign_request(
            kind,
            self.round.number,
            view,
            hash,
        )))
    }

    /// Sends pending votes for verification once, together with the verified ones, they could
    /// make a quorum: one pairing for the whole batch in the common case.
    fn maybe_verify_votes(&mut self, kind: MsgKind, hash: B256, out: &mut Vec<Effect>) {
        let Some(payload) = self.vote_payload(kind, hash) else {
            return;
        };
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
        self.verify(vec![(payload, votes)], Check::Votes { kind, voters }, out);
    }

    fn on_verified(&mut self, now_ms: u64, id: u64, valid: Vec<bool>, out: &mut Vec<Effect>) {
        let Some(cid) = self.jobs.remove(&id) else {
            return;
        };
        let Some(p) = self.pending.get_mut(&cid) else {
            return;
        };
        p.parts -= 1;
        p.ok &= !valid.is_empty() && valid.iter().all(|v| *v);
        p.valid = valid;
        if p.parts > 0 {
            return;
        }
        let Pending {
            check,
            ok: all_ok,
            valid,
            ..
        } = self.pending.remove(&cid).expect("present");
        match check {
            Check::AnnounceParent { block } => {
                self.round.announce_checking = false;
                if all_ok && block.header.number == self.round.number && self.round.block.is_none()
                {
                    self.accept_proposal(*block, None, out);
                } else if !all_ok {
                    Self::fault(
                        out,
                        self.round.leader,
                        "proposal carries an invalid parent commit signature",
                    );
                }
            }
            Check::Prepared(cert) => {
                if all_ok && self.round.prepared.is_none() && cert.view == self.round.view {
                    self.round.prepared = Some(cert);
                    self.maybe_lock();
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
                let held = [
                    self.round.block.as_ref(),
                    self.round.locked.as_ref().map(|l| &l.block),
                ];
                match held
                    .into_iter()
                    .flatten()
                    .find(|b| b.hash() == cert.hash && b.header.view <= cert.view)
                {
                    Some(b) => {
                        self.round.committed = true;
                        out.push(Effect::Finalize {
                            block: b.clone(),
                            cert,
                        });
                    }
                    // Finalized by a quorum, but we lack the block: fetch it with its certificate.
                    None => out.push(Effect::Behind {
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
            Check::ViewChange {
                from,
                vc,
                bitmap,
                signature,
            } => {
                let set = self.round.view_changes.entry(vc.view).or_default();
                set.checking.remove(&from);
                if !all_ok {
                    return Self::fault(
                        out,
                        from,
                        "invalid view-change signature or prepared certificate",
                    );
                }
                let prepared = vc.prepared.into_iter().next();
                if let Some(proof) = &prepared {
                    // A lock is only worth carrying if it is a valid block. Executed only now
                    // that its certificate verified: a forged view change costs a pairing, not
                    // a block execution.
                    let hash = proof.block.hash();
                    if !self.round.validated.contains(&hash) && !self.round.invalid.contains(&hash)
                    {
                        out.push(Effect::Validate(proof.block.clone()));
                    }
                }
                let set = self.round.view_changes.entry(vc.view).or_default();
                set.verified.insert(
                    from,
                    VcEntry {
                        bitmap,
                        signature,
                        hash: vc.prepared_hash,
                        prepared,
                    },
                );
                self.after_view_change_vote(vc.view, out);
            }
            Check::LateCommit {
                from,
                bitmap,
                signature,
            } => {
                let Some(late) = self.late.as_mut() else {
                    return;
                };
                if !all_ok {
                    return Self::fault(out, from, "invalid Commit signature");
                }
                if !late.bitmap.is_disjoint(&bitmap) {
                    return;
                }
                late.bitmap.union_with(&bitmap);
                late.signature = AggregateSignature::aggregate([&late.signature, &signature])
                    .expect("two signatures")
                    .to_signature();
                if self.tip.number == late.number && self.tip.hash == late.hash {
                    self.tip.cert = Some(CommitCertificate {
                        number: late.number,
                        view: late.view,
                        hash: late.hash,
                        signature: Bytes::copy_from_slice(&late.signature.to_bytes()),
                        bitmap: Bytes::copy_from_slice(late.bitmap.as_bytes()),
                    });
                }
            }
            Check::NewView { from, nv } => {
                if !all_ok {
                    return Self::fault(out, from, "NewView proof does not verify");
                }
                self.adopt_new_view(now_ms, from, *nv, out);
            }
        }
    }

    /// A lock is the highest prepared block this node both holds a certificate for and validated.
    fn maybe_lock(&mut self) {
        let r = &mut self.round;
        let (Some(block), Some(cert)) = (&r.block, &r.prepared) else {
            return;
        };
        if r.validated.contains(&cert.hash)
            && block.hash() == cert.hash
            && r.locked.as_ref().is_none_or(|l| l.cert.view < cert.view)
        {
            r.locked = Some(PreparedProof {
                block: block.clone(),
                cert: cert.clone(),
            });
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
        let number = self.round.number;
        let Some(view) = self.vote_view(kind) else {
            return;
        };
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
                self.maybe_lock();
                self.maybe_commit(out);
            }
            _ => {
                out.push(Effect::Broadcast(Message::Committed(cert.clone())));
                self.round.committed = true;
                self.late = Some(LateCommits {
                    number,
                    view,
                    hash,
                    bitmap: bitmap.clone(),
                    signature: agg,
                    voted: self.round.commits.voted.clone(),
                });
                let block = self.round.block.clone().expect("certified a block we hold");
                out.push(Effect::Finalize { block, cert });
            }
        }
    }

    fn maybe_commit(&mut self, out: &mut Vec<Effect>) {
        let r = &self.round;
        let Some(block) = &r.block else { return };
        let hash = block.hash();
        let view = r.view;
        if r.validated.contains(&hash)
            && r.prepared.as_ref().is_some_and(|p| p.hash == hash)
            && !r.commit_requested
        {
            self.round.commit_requested = true;
            self.sign(MsgKind::Commit, view, hash, out);
        }
    }

    fn on_signed(&mut self, req: SignRequest, signatures: Vec<Signature>, out: &mut Vec<Effect>) {
        if req.number != self.round.number {
            return;
        }
        let Ok(agg) = AggregateSignature::aggregate(&signatures) else {
            return;
        };
        let sig = agg.to_signature();
        let bitmap = self.committee.member_bitmap(self.cfg.me);
        if req.kind == MsgKind::ViewChange {
            return self.send_view_change(req, sig, bitmap, out);
        }
        let Some(hash) = self.round.block.as_ref().map(Block::hash) else {
            return;
        };
        if req.hash != hash.0 || Some(req.view) != self.vote_view(req.kind) {
            return;
        }
        if self.is_leader() {
            return self.add_own_vote(req.kind, sig, hash, out);
        }
        let vote = Vote {
            number: req.number,
            view: req.view,
            hash,
            bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
            signature: Bytes::copy_from_slice(&sig.to_bytes()),
        };
        let msg = match req.kind {
            MsgKind::Prepare => Message::Prepare(vote),
            MsgKind::Commit => Message::Commit(vote),
            _ => return,
        };
        out.push(Effect::Send(self.round.leader, msg));
    }

    /// A commit vote for the tip this node certified as leader: verify and fold it in.
    fn on_late_commit(&mut self, from: usize, vote: Vote, out: &mut Vec<Effect>) {
        let Some(late) = self.late.as_mut() else {
            return;
        };
        if vote.number != late.number
            || vote.view != late.view
            || vote.hash != late.hash
            || late.voted.contains(&from)
        {
            return;
        }
        let Some(bitmap) = Bitmap::from_bytes(&vote.bitmap, self.committee.key_count()) else {
            return;
        };
        if !self.committee.bitmap_owned_by(&bitmap, from) {
            return Self::fault(out, from, "vote bitmap names keys the sender does not own");
        }
        let Ok(signature) = Signature::from_bytes(&vote.signature) else {
            return Self::fault(out, from, "undecodable commit signature");
        };
        late.voted.insert(from);
        let (number, view, hash) = (late.number, late.view, late.hash);
        let req = self.sign_request(MsgKind::Commit, number, view, hash);
        let public_key = self
            .committee
            .aggregate_key(&bitmap)
            .expect("non-empty checked bitmap");
        self.verify(
            vec![(
                payload(&req),
                vec![accel::Vote {
                    public_key,
                    signature,
                }],
            )],
            Check::LateCommit {
                from,
                bitmap,
                signature,
            },
            out,
        );
    }

    // ---- view change -------------------------------------------------------------------

    /// The view's time is up. In a normal view: move to the next. While waiting for a NewView:
    /// move on only once a quorum is known to have left this view too (its leader failed);
    /// otherwise repeat our view change and wait again. A node cut off from the others thus
    /// stays at most one view ahead of a quorum, so views converge once the network heals.
    fn on_view_timeout(&mut self, view: u64, out: &mut Vec<Effect>) {
        if !self.round.in_view_change {
            return self.start_view_change(view + 1, out);
        }
        if self.committee.is_quorum(self.power_at_or_past(view)) {
            return self.start_view_change(view + 1, out);
        }
        match self.round.own_view_changes.get(&view).cloned() {
            Some(vc) => out.push(Effect::Broadcast(Message::ViewChange(Box::new(vc)))),
            // Restarted while waiting: sign the same view change again (same payload).
            None => {
                self.sign(MsgKind::ViewChange, view, self.lock_digest(), out);
            }
        }
        self.arm_view_timer(view, out);
    }

    /// Voting power of the members known (by a verified view change) to have reached `view` or
    /// a later one. A node one view ahead of the rest counts for `view`: without that, a node
    /// that moved on (say, after it restarted) and the nodes it left behind wait for each other
    /// for ever when neither side alone holds more than 1/3.
    fn power_at_or_past(&self, view: u64) -> u64 {
        let mut members = HashSet::new();
        let mut power = 0;
        for e in self
            .round
            .view_changes
            .iter()
            .filter(|(v, _)| **v >= view)
            .flat_map(|(_, s)| s.verified.iter())
        {
            if members.insert(*e.0) {
                power += self.committee.power_of(&e.1.bitmap);
            }
        }
        power
    }

    /// What our view change signs: the lock (its hash bound to its certificate's view), or
    /// zero when we hold none.
    fn lock_digest(&self) -> B256 {
        self.round
            .locked
            .as_ref()
            .map(|l| B256::from(view_change_lock(l.block.hash().0, l.cert.view)))
            .unwrap_or_default()
    }

    fn arm_view_timer(&self, view: u64, out: &mut Vec<Effect>) {
        let timer = Timer::ViewTimeout {
            number: self.round.number,
            view,
        };
        out.push(Effect::Schedule(timer, self.view_timeout(view)));
    }

    /// Leaves the current view for `view`: sign a view change carrying the lock.
    fn start_view_change(&mut self, view: u64, out: &mut Vec<Effect>) {
        let r = &mut self.round;
        r.view = view;
        r.in_view_change = true;
        r.block = None;
        r.prepared = None;
        r.commit_requested = false;
        r.announce_checking = false;
        r.prepares = VoteSet::default();
        r.commits = VoteSet::default();
        r.new_view_groups = None;
        self.round.leader = self.leader_of(view);
        let number = self.round.number;
        out.push(Effect::ViewChanged { number, view });
        self.sign(MsgKind::ViewChange, view, self.lock_digest(), out);
        self.arm_view_timer(view, out);
    }

    fn send_view_change(
        &mut self,
        req: SignRequest,
        sig: Signature,
        bitmap: Bitmap,
        out: &mut Vec<Effect>,
    ) {
        if req.view != self.round.view {
            return;
        }
        let locked = self.round.locked.clone().filter(|l| {
            req.hash != [0; 32] && view_change_lock(l.block.hash().0, l.cert.view) == req.hash
        });
        if req.hash != [0; 32] && locked.is_none() {
            return; // signed for a lock we no longer hold; the timer re-signs the current one
        }
        let prepared_hash = locked.as_ref().map(|l| l.block.hash()).unwrap_or_default();
        let vc = ViewChange {
            number: req.number,
            view: req.view,
            prepared_hash,
            bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
            signature: Bytes::copy_from_slice(&sig.to_bytes()),
            prepared: locked.clone().into_iter().collect(),
        };
        // Everyone hears view changes (so a lagging node can join); the new leader uses them.
        out.push(Effect::Broadcast(Message::ViewChange(Box::new(vc.clone()))));
        self.round.own_view_changes.insert(vc.view, vc.clone());
        let me = self.cfg.me;
        let set = self.round.view_changes.entry(req.view).or_default();
        set.verified.insert(
            me,
            VcEntry {
                bitmap,
                signature: sig,
                hash: prepared_hash,
                prepared: locked,
            },
        );
        self.after_view_change_vote(req.view, out);
    }

    fn on_view_change(&mut self, from: usize, vc: ViewChange, out: &mut Vec<Effect>) {
        if vc.view < self.round.view {
            // The peer lags; if it lacks our vote for its view, that quorum may hinge on it.
            if let Some(mine) = self.round.own_view_changes.get(&vc.view) {
                if self.round.handed.insert((from, vc.view)) {
                    out.push(Effect::Send(
                        from,
                        Message::ViewChange(Box::new(mine.clone())),
                    ));
                }
            }
            return;
        }
        let set = self.round.view_changes.entry(vc.view).or_default();
        if set.done || set.verified.contains_key(&from) || !set.checking.insert(from) {
            return;
        }
        let checked = self.check_view_change(from, &vc);
        let (bitmap, signature, jobs) = match checked {
            Ok(x) => x,
            Err(reason) => {
                self.round
                    .view_changes
                    .entry(vc.view)
                    .or_default()
                    .checking
                    .remove(&from);
                return Self::fault(out, from, format!("view change: {reason}"));
            }
        };
        self.verify(
            jobs,
            Check::ViewChange {
                from,
                vc: Box::new(vc),
                bitmap,
                signature,
            },
            out,
        );
    }

    /// Cheap checks of a view change; returns its bitmap, signature and the verification jobs
    /// (its signature, and the prepare certificate of the lock it carries).
    #[allow(clippy::type_complexity)]
    fn check_view_change(
        &self,
        from: usize,
        vc: &ViewChange,
    ) -> Result<
        (
            Bitmap,
            Signature,
            Vec<([u8; PAYLOAD_BYTES], Vec<accel::Vote>)>,
        ),
        String,
    > {
        let bitmap = Bitmap::from_bytes(&vc.bitmap, self.committee.key_count())
            .ok_or("bitmap has the wrong length")?;
        if !self.committee.bitmap_owned_by(&bitmap, from) {
            return Err("bitmap names keys the sender does not own".into());
        }
        let signature =
            Signature::from_bytes(&vc.signature).map_err(|e| format!("signature: {e}"))?;
        let mut cert_job = None;
        let mut cert_view = 0;
        match vc.prepared.as_slice() {
            [] if vc.prepared_hash.is_zero() => {}
            [p] if p.block.hash() == vc.prepared_hash
                && p.cert.hash == vc.prepared_hash
                && p.cert.number == vc.number
                && p.cert.view < vc.view =>
            {
                self.check_parent_fields(&p.block)?;
                cert_view = p.cert.view;
                let (p, v) = self
                    .certificate_vote(MsgKind::Prepare, &p.cert)
                    .map_err(|e| format!("prepared certificate: {e}"))?;
                cert_job = Some((p, vec![v]));
            }
            _ => return Err("prepared proof does not match the named hash".into()),
        }
        let signed = view_change_lock(vc.prepared_hash.0, cert_view);
        let req = self.sign_request(MsgKind::ViewChange, vc.number, vc.view, B256::from(signed));
        let public_key = self
            .committee
            .aggregate_key(&bitmap)
            .ok_or("empty bitmap")?;
        let mut jobs = vec![(
            payload(&req),
            vec![accel::Vote {
                public_key,
                signature,
            }],
        )];
        jobs.extend(cert_job);
        Ok((bitmap, signature, jobs))
    }

    /// After a verified view-change vote: join a view change that more than 1/3 already
    /// started, and as the new leader, propose once more than 2/3 did.
    fn after_view_change_vote(&mut self, view: u64, out: &mut Vec<Effect>) {
        let committee = self.committee.clone();
        let Some(set) = self.round.view_changes.get(&view) else {
            return;
        };
        let power: u64 = set
            .verified
            .values()
            .map(|e| committee.power_of(&e.bitmap))
            .sum();
        if view > self.round.view && (power as u128) * 3 > committee.total_power as u128 {
            self.start_view_change(view, out);
            return;
        }
        // Our own view change must be among them: it carries our lock, which the NewView
        // must respect like every other (and the leader prepares what it proposes).
        if view != self.round.view
            || self.leader_of(view) != self.cfg.me
            || !set.verified.contains_key(&self.cfg.me)
            || !committee.is_quorum(power)
        {
            return;
        }
        let set = self.round.view_changes.get_mut(&view).expect("present");
        if set.done {
            return;
        }
        set.done = true;
        // Group by what was signed: the lock's hash and certificate view. Drop locks on blocks
        // this node found invalid (an honest quorum remains: a block that failed validation can
        // never have been committed).
        let mut groups: Vec<(B256, Bitmap, Vec<Signature>, Option<PreparedProof>)> = Vec::new();
        for e in set.verified.values() {
            if self.round.invalid.contains(&e.hash) {
                continue;
            }
            let view_of = |p: &Option<PreparedProof>| p.as_ref().map(|p| p.cert.view);
            match groups
                .iter_mut()
                .find(|g| g.0 == e.hash && view_of(&g.3) == view_of(&e.prepared))
            {
                Some(g) => {
                    g.1.union_with(&e.bitmap);
                    g.2.push(e.signature);
                }
                None => groups.push((
                    e.hash,
                    e.bitmap.clone(),
                    vec![e.signature],
                    e.prepared.clone(),
                )),
            }
        }
        let power: u64 = groups.iter().map(|g| committee.power_of(&g.1)).sum();
        if !committee.is_quorum(power) {
            self.round
                .view_changes
                .get_mut(&view)
                .expect("present")
                .done = false;
            return;
        }
        let chosen = groups
            .iter()
            .filter_map(|g| g.3.clone())
            .max_by_key(|p| p.cert.view);
        if let Some(c) = &chosen {
            // Two certificates of one view for different blocks mean more than f Byzantine
            // signers; no NewView from these groups could be accepted.
            if groups.iter().any(|g| {
                g.3.as_ref()
                    .is_some_and(|p| p.cert.view == c.cert.view && g.0 != c.block.hash())
            }) {
                tracing::error!(target: "consensus", view, "conflicting prepare certificates in one view");
                return;
            }
        }
        let wire: Vec<ViewChangeGroup> = groups
            .iter()
            .map(|(hash, bitmap, sigs, prepared)| ViewChangeGroup {
                hash: *hash,
                signature: Bytes::copy_from_slice(
                    &AggregateSignature::aggregate(sigs)
                        .expect("non-empty")
                        .to_signature()
                        .to_bytes(),
                ),
                bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
                prepared: prepared.iter().map(|p| p.cert.clone()).collect(),
            })
            .collect();
        self.round.new_view_groups = Some(wire);
        match chosen {
            Some(proof) => {
                // Re-propose the locked block of the highest view.
                let block = proof.block;
                let hash = block.hash();
                let groups = self.round.new_view_groups.take().expect("just set");
                let nv = NewView {
                    number: self.round.number,
                    view,
                    groups,
                    block: block.clone(),
                };
                out.push(Effect::Broadcast(Message::NewView(Box::new(nv))));
                self.round.in_view_change = false;
                self.round.block = Some(block.clone());
                if !self.round.validated.contains(&hash) {
                    out.push(Effect::Validate(block));
                }
                self.sign(MsgKind::Prepare, view, hash, out);
            }
            None => out.push(self.build_request()),
        }
    }

    fn on_new_view(&mut self, now_ms: u64, from: usize, nv: NewView, out: &mut Vec<Effect>) {
        if nv.view < self.round.view || (nv.view == self.round.view && !self.round.in_view_change) {
            return;
        }
        if from != self.leader_of(nv.view) {
            return Self::fault(
                out,
                from,
                format!(
                    "NewView for view {} from a node that is not its leader",
                    nv.view
                ),
            );
        }
        match self.check_new_view(now_ms, &nv) {
            Ok(jobs) => self.verify(
                jobs,
                Check::NewView {
                    from,
                    nv: Box::new(nv),
                },
                out,
            ),
            Err(reason) => {
                Self::fault(out, from, format!("NewView for view {}: {reason}", nv.view))
            }
        }
    }

    /// Checks a NewView's shape and returns the verification jobs of its proof: every group's
    /// aggregate view-change signature and every group's prepare certificate.
    #[allow(clippy::type_complexity)]
    fn check_new_view(
        &self,
        now_ms: u64,
        nv: &NewView,
    ) -> Result<Vec<([u8; PAYLOAD_BYTES], Vec<accel::Vote>)>, String> {
        let n = self.committee.key_count();
        let mut union = Bitmap::with_len(n);
        let mut jobs = Vec::new();
        let mut best: Option<(u64, B256)> = None;
        let mut locks = HashSet::new();
        for g in &nv.groups {
            let cert_view = g.prepared.first().map_or(0, |c| c.view);
            if !locks.insert((g.hash, cert_view)) {
                return Err("two groups name the same lock".into());
            }
            let bitmap =
                Bitmap::from_bytes(&g.bitmap, n).ok_or("group bitmap has the wrong length")?;
            if bitmap.count() == 0 || !bitmap.is_disjoint(&union) {
                return Err("group bitmaps are empty or overlap".into());
            }
            union.union_with(&bitmap);
            let signature =
                Signature::from_bytes(&g.signature).map_err(|e| format!("group signature: {e}"))?;
            let public_key = self
                .committee
                .aggregate_key(&bitmap)
                .ok_or("empty bitmap")?;
            // Each group's signers signed their lock's certificate view: a certificate of
            // another view (an older one, to downgrade a lock) fails this signature.
            let signed = B256::from(view_change_lock(g.hash.0, cert_view));
            let req = self.sign_request(MsgKind::ViewChange, nv.number, nv.view, signed);
            jobs.push((
                payload(&req),
                vec![accel::Vote {
                    public_key,
                    signature,
                }],
            ));
            match (g.hash.is_zero(), g.prepared.as_slice()) {
                (true, []) => {}
                (false, [cert])
                    if cert.hash == g.hash && cert.number == nv.number && cert.view < nv.view =>
                {
                    let (p, v) = self.certificate_vote(MsgKind::Prepare, cert)?;
                    jobs.push((p, vec![v]));
                    match best {
                        Some((v, h)) if v == cert.view && h != g.hash => {
                            return Err("two prepare certificates of one view".into())
                        }
                        Some((v, _)) if v >= cert.view => {}
                        _ => best = Some((cert.view, g.hash)),
                    }
                }
                _ => return Err("group prepared certificate missing or for another block".into()),
            }
        }
        if !self.committee.is_quorum(self.committee.power_of(&union)) {
            return Err("view-change signers hold no quorum".into());
        }
        let block = &nv.block;
        match best {
            Some((_, hash)) => {
                if block.hash() != hash {
                    return Err("does not re-propose the prepared block of the highest view".into());
                }
                if block.header.number != nv.number {
                    return Err("re-proposed block is for another height".into());
                }
                self.check_parent_fields(block)?;
            }
            None => self.check_header(now_ms, block, nv.view)?,
        }
        Ok(jobs)
    }

    /// Jumps to the NewView's view and treats its block as that view's proposal.
    fn adopt_new_view(&mut self, _now_ms: u64, from: usize, nv: NewView, out: &mut Vec<Effect>) {
        if nv.view < self.round.view || (nv.view == self.round.view && !self.round.in_view_change) {
            return;
        }
        if nv.view > self.round.view {
            self.round.view = nv.view;
            self.round.leader = self.leader_of(nv.view);
            out.push(Effect::ViewChanged {
                number: nv.number,
                view: nv.view,
            });
            let timeout = self.view_timeout(nv.view);
            out.push(Effect::Schedule(
                Timer::ViewTimeout {
                    number: nv.number,
                    view: nv.view,
                },
                timeout,
            ));
        }
        let r = &mut self.round;
        r.in_view_change = false;
        r.block = None;
        r.prepared = None;
        r.commit_requested = false;
        r.prepares = VoteSet::default();
        r.commits = VoteSet::default();
        let block = nv.block;
        if block.header.view == nv.view {
            // A fresh block: its parent certificate must check out like an announce's.
            self.check_parent_then(block, from, out);
        } else {
            // Re-proposed: justified by the highest certificate, which is for this block.
            let justify = nv
                .groups
                .iter()
                .filter(|g| g.hash == block.hash())
                .filter_map(|g| g.prepared.first().map(|c| c.view))
                .max();
            self.accept_proposal(block, justify, out);
        }
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
