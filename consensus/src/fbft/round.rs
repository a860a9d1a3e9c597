//! The state of one height: the round, the vote sets the leader collects, the view changes
//! a new leader gathers, and the checks waiting for verification results.

use super::*;

/// Votes of one kind collected by the leader.
#[derive(Default)]
pub(super) struct VoteSet {
    /// Verified signers and their aggregate signature, one entry per verified batch.
    pub(super) verified: Vec<(Bitmap, Signature)>,
    /// Votes not verified yet: (member, signature bytes as received).
    pub(super) pending: Vec<(usize, Bytes)>,
    pub(super) voted: HashSet<usize>,
    pub(super) in_flight: bool,
    pub(super) certified: bool,
}

/// A verified view-change vote.
pub(super) struct VcEntry {
    pub(super) bitmap: Bitmap,
    pub(super) signature: Signature,
    pub(super) hash: B256,
    pub(super) prepared: Option<PreparedProof>,
}

#[derive(Default)]
pub(super) struct VcSet {
    pub(super) verified: HashMap<usize, VcEntry>,
    pub(super) checking: HashSet<usize>,
    pub(super) done: bool,
}

pub(super) struct Round {
    /// Since when (wall clock) a quorum is known to be at this view or past it, while we wait
    /// for its NewView.
    pub(super) quorum_since_ms: Option<u64>,
    /// Wall-clock time before which this view's timeout is not due: the view's clock restarts
    /// when it really begins (its NewView), and timers armed earlier are then early.
    pub(super) view_deadline_ms: u64,
    pub(super) number: u64,
    pub(super) view: u64,
    pub(super) first_view: u64,
    pub(super) leader: usize,
    /// The proposal of the current view.
    pub(super) block: Option<Block>,
    /// Waiting for a NewView (after a timeout or before the first proposal of a new view).
    pub(super) in_view_change: bool,
    pub(super) prepared: Option<CommitCertificate>,
    /// Highest prepared block this node validated, with its certificate.
    pub(super) locked: Option<PreparedProof>,
    pub(super) validated: HashSet<B256>,
    pub(super) invalid: HashSet<B256>,
    pub(super) commit_requested: bool,
    pub(super) committed: bool,
    pub(super) announce_checking: bool,
    pub(super) prepares: VoteSet,
    pub(super) commits: VoteSet,
    pub(super) view_changes: HashMap<u64, VcSet>,
    /// Groups for the NewView this node (as new leader) sends once its fresh block is built.
    pub(super) new_view_groups: Option<Vec<ViewChangeGroup>>,
    /// Votes signed at this height.
    pub(super) votes: Vec<SignedVote>,
    /// Our view changes by view: the latest is repeated while no NewView comes; older ones are
    /// handed to a peer still in that view, so it can complete the quorum we already saw.
    pub(super) own_view_changes: HashMap<u64, ViewChange>,
    /// (peer, view) pairs we already handed an old view change to.
    pub(super) handed: HashSet<(usize, u64)>,
}

pub(super) enum Check {
    AnnounceParent {
        block: Box<Block>,
    },
    Prepared(CommitCertificate),
    Committed {
        cert: CommitCertificate,
        from: usize,
    },
    /// Votes of `kind` on (view, hash): dropped if the round moved on meanwhile.
    Votes {
        kind: MsgKind,
        voters: Vec<usize>,
        view: u64,
        hash: B256,
    },
    ViewChange {
        from: usize,
        vc: Box<ViewChange>,
        bitmap: Bitmap,
        signature: Signature,
    },
    LateCommit {
        from: usize,
        /// The certified block the vote is for: a result for another is dropped.
        number: u64,
        hash: B256,
        bitmap: Bitmap,
        signature: Signature,
    },
    /// A larger certificate of the tip (its leader folded late commits in).
    TipCertificate {
        cert: CommitCertificate,
        from: usize,
    },
    NewView {
        from: usize,
        nv: Box<NewView>,
    },
}

pub(super) struct Pending {
    pub(super) check: Check,
    pub(super) parts: usize,
    pub(super) ok: bool,
    pub(super) valid: Vec<bool>,
    /// Aggregate of the valid votes, for a quorum job.
    pub(super) aggregate: Option<Signature>,
}

pub(super) struct LateCommits {
    pub(super) number: u64,
    pub(super) view: u64,
    pub(super) hash: B256,
    pub(super) bitmap: Bitmap,
    pub(super) signature: Signature,
    pub(super) voted: HashSet<usize>,
    /// Whether the enlarged certificate is scheduled for broadcast ([`Timer::LateCommits`]),
    /// or already went out.
    pub(super) relay: Relay,
    /// The committee that certified the block (the round's then; the tip's now).
    pub(super) committee: Arc<Committee>,
}

/// Where the broadcast of a leader's enlarged commit certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relay {
    /// Nothing folded in yet.
    Idle,
    Scheduled,
    Sent,
}
