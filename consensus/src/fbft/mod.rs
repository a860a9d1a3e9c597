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

use crate::committee::{Committee, RECENT_BITMAPS};
use crate::fault::FaultKind;
use crate::message::{
    Announce, Message, NewView, PreparedProof, ViewChange, ViewChangeGroup, Vote,
};
use crate::rules::{self, Parent, ProposalError};
use crate::safety::{SafetyRecord, SignedVote};
use accel::{
    AggregateSignature, PublicKey, Signature, SIGNATURE_BYTES, SIGNATURE_UNCOMPRESSED_BYTES,
};
use alloy_primitives::{Bytes, B256};
use hsm::{payload, view_change_lock, MsgKind, SignRequest, PAYLOAD_BYTES};
use state::{Bitmap, Block, CommitCertificate};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

mod checks;
mod evidence;
mod proposal;
mod round;
mod view_change;
pub use view_change::ViewChangeReason;
mod votes;

use round::*;

/// Messages for views further ahead than this are ignored (bounds leader computation).
pub const MAX_VIEW_AHEAD: u64 = 1000;
/// Consecutive failed views after which the timeout stops doubling.
const MAX_BACKOFF_EXP: u64 = 6;
/// Messages for a later height kept until the tip catches up (bounded).
const FUTURE_BUFFER: usize = 256;

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
    /// This node's BLS public keys, in the order its signer returns signatures. The member of
    /// each epoch's committee that holds them is this node; when none does, it observes.
    pub keys: Vec<PublicKey>,
    /// First epoch of the `vrf` fork: from it, every header carries its leader's VRF.
    pub vrf_from: Option<u64>,
}

/// The committees around a tip: the one that signed it (its certificate is checked against
/// it), and the one of the height after it, which differs after an epoch's last block.
#[derive(Debug, Clone)]
pub struct Committees {
    pub tip: Arc<Committee>,
    pub next: Arc<Committee>,
}

impl Committees {
    /// One committee on both sides of the tip.
    pub fn same(committee: Arc<Committee>) -> Self {
        Self {
            tip: committee.clone(),
            next: committee,
        }
    }
}

/// A peer, named by its Ed25519 transport key (stable across committees; the member it is in
/// an epoch's committee comes from [`Committee::member_by_transport_key`]).
pub type PeerId = [u8; 32];

impl Config {
    /// Default view timeout: one block time, at least one second. The first view of a height
    /// also gets the block time the leader waits before proposing, and finality takes tens of
    /// milliseconds, so a dead leader costs about two block times and a live one is not
    /// cut short.
    pub fn default_view_timeout_ms(block_time_ms: u64) -> u64 {
        block_time_ms.max(1000)
    }

    /// Whether block `number` must carry a VRF.
    pub fn vrf_required(&self, number: u64) -> bool {
        self.vrf_from
            .is_some_and(|from| number / self.epoch_blocks >= from)
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
    /// Time for the leader that certified block `number` to broadcast its certificate with
    /// the commits that came after the quorum (so the next leader's header carries them, and
    /// their signers count as having signed).
    LateCommits { number: u64 },
}

/// A batch of votes on one payload to verify; answered by [`Input::Verified`] with one bool
/// per vote, in order.
#[derive(Debug, Clone)]
pub struct VerifyJob {
    pub id: u64,
    pub payload: [u8; PAYLOAD_BYTES],
    pub votes: Vec<accel::Vote>,
}

/// Votes of one kind on one payload as they came off the wire, to verify with
/// `accel::Engine::verify_quorum` against the committee's member keys
/// ([`crate::run_quorum_job`]); answered by [`Input::QuorumVerified`]. The job carries bytes
/// and signer indices only, so a backend (CPU or GPU) takes it whole.
#[derive(Debug, Clone)]
pub struct QuorumJob {
    pub id: u64,
    /// The committee the member indices refer to.
    pub committee: Arc<Committee>,
    pub payload: [u8; PAYLOAD_BYTES],
    /// (member index, signature bytes: 192 uncompressed or 96 compressed).
    pub votes: Vec<(u32, Bytes)>,
}

// Inputs and effects are moved once through the step; boxing the block would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// The node started (after the tip was loaded with [`Fbft::new`]).
    Start,
    Message {
        from: PeerId,
        msg: Message,
    },
    Timeout(Timer),
    /// The block the caller built after [`Effect::BuildBlock`].
    Proposal(Block),
    /// Result of full validation (re-execution) of a block. Any error means no commit vote
    /// for it in this round (a local failure too: a vote must never outrun validation).
    Validated {
        hash: B256,
        result: Result<(), state::exec::BlockError>,
    },
    Signed {
        req: SignRequest,
        signatures: Vec<Signature>,
    },
    Verified {
        id: u64,
        valid: Vec<bool>,
    },
    /// Result of a [`QuorumJob`]: one bool per vote, in order, and the aggregate signature of
    /// the valid ones.
    QuorumVerified {
        id: u64,
        valid: Vec<bool>,
        aggregate: Option<Signature>,
    },
    /// A block was durably stored (by finalization or catch-up): the new tip, the committee
    /// that signed it and the one of the height after it.
    Persisted {
        tip: Tip,
        committees: Committees,
    },
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Effect {
    Broadcast(Message),
    Send(PeerId, Message),
    /// Make this record durable before executing any later effect.
    PersistSafety(SafetyRecord),
    Sign(SignRequest),
    Verify(VerifyJob),
    VerifyQuorum(QuorumJob),
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
        /// The header's VRF field (empty before the `vrf` fork).
        vrf: Bytes,
    },
    Schedule(Timer, Duration),
    /// Store the block with its certificate, then answer with [`Input::Persisted`].
    Finalize {
        block: Block,
        cert: CommitCertificate,
    },
    /// A peer has finalized past our tip: fetch blocks from it.
    Behind {
        peer: PeerId,
        number: u64,
    },
    /// A peer sent something invalid; the caller logs and scores it (by `kind`).
    PeerFault {
        peer: PeerId,
        kind: FaultKind,
        reason: String,
    },
    /// This node moved to a new view of the current height (for metrics and logs).
    ViewChanged {
        number: u64,
        view: u64,
        reason: ViewChangeReason,
    },
    /// Two commit votes of one member for one (number, view) and different blocks, as they
    /// came (signatures unchecked): the caller checks them (`DoubleSign::check_signatures`),
    /// pools the evidence for the blocks it leads and relays it.
    Evidence(Box<state::staking::DoubleSign>),
}

pub struct Fbft {
    cfg: Config,
    /// The committee of the round in progress (its epoch's).
    committee: Arc<Committee>,
    /// The committee that signed the tip (its certificate, carried in the next header).
    tip_committee: Arc<Committee>,
    /// This node's member index in `committee` and, per member key, the position of its
    /// signature in what the signer returns; None while this node observes.
    me: Option<(usize, Vec<usize>)>,
    tip: Tip,
    /// Commit bitmaps of the round's committee from the last headers, for leader selection.
    recent: VecDeque<Bitmap>,
    round: Round,
    pending: HashMap<u64, Pending>,
    jobs: HashMap<u64, u64>,
    next_id: u64,
    future: Vec<(PeerId, Message)>,
    /// As leader of the tip: commit votes that arrive after the certificate, folded into it so
    /// the next header's bitmap names every validator that was live (Harmony upgrades the
    /// tip's certificate the same way).
    late: Option<LateCommits>,
    /// The first commit vote seen from each member at (number, view), and the offences
    /// already reported (see `evidence.rs`).
    commits_seen: evidence::CommitsSeen,
    /// Wall-clock time of the step in progress (header timestamps, and how long a quorum has
    /// been waiting for a NewView; never a view number).
    now_ms: u64,
}

impl Fbft {
    /// A machine at `tip`. `recent` are the `last_commit_bitmap`s of the last (up to 4) stored
    /// headers, oldest first, tip's last; `safety` is the last persisted record, if any.
    pub fn new(
        cfg: Config,
        committees: Committees,
        tip: Tip,
        recent: Vec<Bytes>,
        safety: Option<SafetyRecord>,
    ) -> Self {
        let Committees {
            tip: tip_committee,
            next: committee,
        } = committees;
        let recent: VecDeque<Bitmap> =
            rules::leader_history(tip.number, cfg.epoch_blocks, &recent, &committee).into();
        let round = Self::round_after(&committee, &tip, &recent);
        let me_in = committee.member_signing_with(&cfg.keys);
        let mut me = Self {
            cfg,
            committee,
            tip_committee,
            me: me_in,
            tip,
            recent,
            round,
            pending: HashMap::new(),
            jobs: HashMap::new(),
            next_id: 0,
            future: Vec::new(),
            late: None,
            commits_seen: Default::default(),
            now_ms: 0,
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
            quorum_since_ms: None,
            view_deadline_ms: 0,
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
        self.me_index() == Some(self.round.leader)
    }

    /// This node's member index in the round's committee (None: it observes).
    pub fn me_index(&self) -> Option<usize> {
        self.me.as_ref().map(|(m, _)| *m)
    }

    /// The committee of the round in progress.
    pub fn committee(&self) -> &Arc<Committee> {
        &self.committee
    }

    /// Takes over the committee of a new epoch and finds this node in it (the leader history
    /// restarts with every epoch anyway, see `Input::Persisted`). Votes for the old tip are no
    /// longer folded in: they are the old committee's.
    fn hand_off(&mut self, committee: Arc<Committee>) {
        let was = self.me_index();
        self.me = committee.member_signing_with(&self.cfg.keys);
        if self.me.is_none() && committee.holds_any(&self.cfg.keys) {
            tracing::error!(
                target: "consensus",
                "this node holds some but not all keys of its validator in the new committee: \
                 it cannot vote; load every registered BLS key into its signer"
            );
        }
        tracing::info!(
            target: "consensus",
            members = committee.members.len(),
            keys = committee.key_count(),
            was = ?was,
            me = ?self.me_index(),
            "committee hand-off"
        );
        self.committee = committee;
        self.late = None;
        self.pending
            .retain(|_, p| !matches!(p.check, Check::LateCommit { .. }));
    }

    /// The transport key of `member` of the round's committee.
    fn peer(&self, member: usize) -> PeerId {
        self.committee.members[member].transport_key
    }

    fn leader_of(&self, view: u64) -> usize {
        self.committee.keys[self.leader_key_of(view)].member
    }

    /// Committee key index of the leader of `view` in the round: the key that signs its VRF.
    fn leader_key_of(&self, view: u64) -> usize {
        let recent: Vec<Bitmap> = self.recent.iter().cloned().collect();
        self.committee
            .leader_key(self.round.number, view, self.round.first_view, &recent)
    }

    /// Advances the machine by one input. `now_ms` is wall-clock time, used only to bound
    /// header timestamps (views never come from the clock).
    pub fn step(&mut self, now_ms: u64, input: Input) -> Vec<Effect> {
        self.now_ms = now_ms;
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
                    self.request_build(&mut out);
                }
            }
            Input::Timeout(Timer::LateCommits { number }) => {
                self.relay_late_commits(number, &mut out)
            }
            Input::Timeout(Timer::ViewTimeout { number, view }) => {
                let r = &self.round;
                if r.number == number && r.view == view && !r.committed {
                    if now_ms < r.view_deadline_ms {
                        // Armed before the view's clock restarted: wait for the rest.
                        let rest = Duration::from_millis(r.view_deadline_ms - now_ms);
                        out.push(Effect::Schedule(Timer::ViewTimeout { number, view }, rest));
                    } else {
                        self.on_view_timeout(view, &mut out);
                    }
                }
            }
            Input::Proposal(block) => self.on_proposal(block, &mut out),
            Input::Validated { hash, result } => self.on_validated(hash, result, &mut out),
            Input::Signed { req, signatures } => self.on_signed(req, signatures, &mut out),
            Input::Verified { id, valid } => self.on_verified(now_ms, id, valid, None, &mut out),
            Input::QuorumVerified {
                id,
                valid,
                aggregate,
            } => self.on_verified(now_ms, id, valid, aggregate, &mut out),
            Input::Persisted { tip, committees } => {
                if tip.number > self.tip.number || (self.tip.number == 0 && tip.number == 0) {
                    self.tip_committee = committees.tip;
                    if !Arc::ptr_eq(&committees.next, &self.committee) {
                        self.hand_off(committees.next);
                    }
                    // Leader history is per epoch (`rules::leader_history`, as a restart
                    // rebuilds it): it restarts with a new epoch, and the tip's bitmap, which
                    // certifies its parent, counts only when the parent is in the round's epoch.
                    let epoch = (tip.number + 1) / self.cfg.epoch_blocks;
                    let parent_epoch = tip.number.checked_sub(1).map(|p| p / self.cfg.epoch_blocks);
                    if epoch != self.round.number / self.cfg.epoch_blocks
                        || parent_epoch != Some(epoch)
                    {
                        self.recent.clear();
                    } else if let Some(b) =
                        Bitmap::from_bytes(&tip.last_commit_bitmap, self.committee.key_count())
                    {
                        self.recent.push_back(b);
                        while self.recent.len() > RECENT_BITMAPS {
                            self.recent.pop_front();
                        }
                    }
                    self.tip = tip;
                    self.commits_seen.prune(self.tip.number);
                    self.round = Self::round_after(&self.committee, &self.tip, &self.recent);
                    // Checks of the finished round are moot, except late commits for the tip.
                    self.pending
                        .retain(|_, p| matches!(p.check, Check::LateCommit { .. }));
                    let pending = &self.pending;
                    self.jobs.retain(|_, cid| pending.contains_key(cid));
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

    /// As leader: asks for the block of the round's view, after its VRF when the fork wants
    /// one (signed first, through the guard; see [`Fbft::on_vrf_signed`]).
    pub(super) fn request_build(&mut self, out: &mut Vec<Effect>) {
        let (number, view) = (self.round.number, self.round.view);
        if self.cfg.vrf_required(number) {
            out.push(Effect::Sign(rules::vrf_request(
                self.cfg.chain_id,
                self.cfg.shard,
                number,
                view,
                self.tip.hash,
            )));
        } else {
            out.push(self.build_request(Bytes::new()));
        }
    }

    fn build_request(&self, vrf: Bytes) -> Effect {
        Effect::BuildBlock {
            number: self.round.number,
            view: self.round.view,
            epoch: self.round.number / self.cfg.epoch_blocks,
            parent: self.tip.hash,
            min_timestamp_ms: self.tip.timestamp_ms + 1,
            last_commit: self.tip.cert.clone(),
            vrf,
        }
    }

    /// The VRF signed: its proof is the signature of the leader key of this view (one of this
    /// member's keys); build the block with it, if the view still wants one from us.
    pub(super) fn on_vrf_signed(
        &mut self,
        req: SignRequest,
        signatures: Vec<Signature>,
        out: &mut Vec<Effect>,
    ) {
        let r = &self.round;
        if req.number != r.number
            || req.view != r.view
            || req.hash != self.tip.hash.0
            || r.block.is_some()
            || !self.is_leader()
        {
            return;
        }
        let pk = self.committee.keys[self.leader_key_of(r.view)].public_key;
        let Some(proof) = self
            .cfg
            .keys
            .iter()
            .position(|k| *k == pk)
            .and_then(|p| signatures.get(p))
        else {
            return;
        };
        out.push(self.build_request(rules::vrf_field(proof)));
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
        self.arm_view_clock(timeout, out);
    }

    /// (Re)starts the current view's clock: its timeout is due `after` from now.
    pub(super) fn arm_view_clock(&mut self, after: Duration, out: &mut Vec<Effect>) {
        let (number, view) = (self.round.number, self.round.view);
        self.round.view_deadline_ms = self.now_ms + after.as_millis() as u64;
        out.push(Effect::Schedule(Timer::ViewTimeout { number, view }, after));
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
        if self.me.is_none() {
            return false; // an observer never signs
        }
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

    fn on_message(&mut self, now_ms: u64, peer: PeerId, msg: Message, out: &mut Vec<Effect>) {
        // Status and sync are the caller's business.
        let Some((number, view)) = msg.position() else {
            return;
        };
        // Only members of the round's committee speak in its consensus. A message of a later
        // height may come from a member of a later epoch's committee, though: it still tells
        // us we are behind (catch-up checks what it fetches), and is kept for that height.
        let member = self.committee.member_by_transport_key(&peer);
        // At the tip's height and the round's, who may speak is known: the tip's committee
        // (late commits, the enlarged certificate) and the round's. Anyone else there is
        // forging; older and later heights are dropped or kept without blame (a member of a
        // later epoch may be ahead of us).
        let outsider = member.is_none()
            && self.tip_committee.member_by_transport_key(&peer).is_none()
            && (number == self.tip.number || number == self.round.number);
        if outsider {
            return Self::fault(
                out,
                peer,
                FaultKind::Protocol,
                format!(
                    "{} for #{number} from a peer outside the committee",
                    msg.name()
                ),
            );
        }
        if let Message::Commit(v) = &msg {
            self.note_commit(&peer, v, out);
        }
        if number <= self.tip.number {
            match msg {
                Message::Commit(v) => {
                    // Late commits are the certifying committee's (the tip's).
                    let late = self.late.as_ref();
                    if let Some(from) =
                        late.and_then(|l| l.committee.member_by_transport_key(&peer))
                    {
                        self.on_late_commit(from, v, out);
                    }
                }
                Message::Committed(c) if number == self.tip.number => {
                    if let Some(from) = self.tip_committee.member_by_transport_key(&peer) {
                        self.on_tip_certificate(from, c, out);
                    }
                }
                _ => {}
            }
            return; // stale
        }
        if view.is_some_and(|v| v > self.round.view + MAX_VIEW_AHEAD) {
            return Self::fault(
                out,
                peer,
                FaultKind::Protocol,
                format!("view {view:?} is implausibly far ahead"),
            );
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
                    peer,
                    number: number - 1,
                });
            }
            if self.future.len() < FUTURE_BUFFER && number == self.round.number + 1 {
                self.future.push((peer, msg));
            }
            return;
        }
        let Some(from) = member else {
            return;
        };
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

    fn fault(out: &mut Vec<Effect>, peer: PeerId, kind: FaultKind, reason: impl Into<String>) {
        out.push(Effect::PeerFault {
            peer,
            kind,
            reason: reason.into(),
        });
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
