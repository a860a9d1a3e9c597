//! Peer scoring (Harmony HET-61): invalid signatures, undecodable or oversized messages and
//! floods cost points; a peer that falls below the threshold is disconnected and refused for a
//! while. The operator can also block a peer for good (config or `hmy_blockPeer`).

use consensus::FaultKind;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Points lost per fault of the cheapest kinds (malformed input, protocol breaches).
pub const FAULT_PENALTY: i32 = 10;

/// Points a fault of `kind` costs. A failed signature cost this node a pairing and an invalid
/// block a re-execution, so each counts double; an equivocating leader is half-way to a ban
/// at once (a ban is not immediate: an honest node's clock skew must not cost it the mesh).
pub fn penalty(kind: FaultKind) -> i32 {
    match kind {
        FaultKind::Malformed | FaultKind::Protocol => FAULT_PENALTY,
        FaultKind::BadSignature | FaultKind::InvalidBlock => 2 * FAULT_PENALTY,
        FaultKind::Equivocation => 5 * FAULT_PENALTY,
    }
}
/// Score at which a peer is banned.
pub const BAN_THRESHOLD: i32 = -100;
/// How long a ban lasts.
pub const BAN_TIME: Duration = Duration::from_secs(60);
/// Incoming connections one peer may complete per status interval. An honest peer connects
/// once and redials at most every 200 ms after a loss (with back-off); each connection past
/// this costs a protocol fault, so a reconnect storm is banned within a second or two.
pub const CONNECTIONS_PER_INTERVAL: u32 = 4;
/// Points regained per status interval (good behaviour heals).
pub const RECOVERY_PER_TICK: i32 = 2;

/// Requests that make this node read and send data; each kind is limited per peer per status
/// interval, so a peer cannot turn this node into a disk and bandwidth pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `SyncRequest`: up to 64 blocks with certificates (1 MiB).
    Sync,
    /// `GetTransactions`: up to 2,048 pool lookups (4 MiB).
    Transactions,
}

impl Request {
    /// Allowed per status interval: enough for a node catching up batch after batch, and for a
    /// validator fetching what a few header-only proposals lack.
    pub const fn limit(self) -> u32 {
        match self {
            Request::Sync => 16,
            Request::Transactions => 32,
        }
    }
}

#[derive(Default)]
struct Score {
    points: i32,
    received: u32,
    sync_requests: u32,
    tx_requests: u32,
    banned_until: Option<Instant>,
}

/// Peers blocked by the operator; shared with RPC.
pub type OperatorBlocks = Arc<Mutex<HashSet<usize>>>;

#[derive(Default)]
pub struct PeerBook {
    scores: HashMap<usize, Score>,
}

impl PeerBook {
    /// Each peer with a score other than clean (0), for metrics.
    pub fn scores(&self) -> impl Iterator<Item = (usize, i32)> + '_ {
        self.scores
            .iter()
            .filter(|(_, s)| s.points != 0)
            .map(|(p, s)| (*p, s.points))
    }

    /// Records a fault of `kind`; true when the peer has just been banned.
    pub fn fault(&mut self, peer: usize, kind: FaultKind, now: Instant) -> bool {
        self.faults(peer, kind, 1, now)
    }

    /// Records `times` faults of `kind` at once (transport reports come in counts); true when
    /// the peer has just been banned.
    pub fn faults(&mut self, peer: usize, kind: FaultKind, times: u32, now: Instant) -> bool {
        let s = self.scores.entry(peer).or_default();
        // Past a ban's worth the count no longer matters; the cap keeps the product small.
        let times = times.min((-BAN_THRESHOLD / FAULT_PENALTY) as u32) as i32;
        s.points = s.points.saturating_sub(penalty(kind) * times);
        if s.points <= BAN_THRESHOLD && s.banned_until.is_none() {
            s.banned_until = Some(now + BAN_TIME);
            return true;
        }
        false
    }

    /// Counts one received message; true when the peer exceeds `limit` in this interval.
    pub fn received(&mut self, peer: usize, limit: u32) -> bool {
        let s = self.scores.entry(peer).or_default();
        s.received += 1;
        s.received == limit + 1
    }

    /// Counts one request of `kind`; true when it is over the kind's limit for this interval
    /// (the request is then refused, not answered).
    pub fn request(&mut self, peer: usize, kind: Request) -> bool {
        let s = self.scores.entry(peer).or_default();
        let n = match kind {
            Request::Sync => &mut s.sync_requests,
            Request::Transactions => &mut s.tx_requests,
        };
        *n += 1;
        *n > kind.limit()
    }

    pub fn is_banned(&self, peer: usize) -> bool {
        self.scores
            .get(&peer)
            .is_some_and(|s| s.banned_until.is_some())
    }

    /// Once per status interval: heal scores, reset flood counters, return expired bans.
    pub fn tick(&mut self, now: Instant) -> Vec<usize> {
        let mut expired = Vec::new();
        for (peer, s) in self.scores.iter_mut() {
            s.received = 0;
            s.sync_requests = 0;
            s.tx_requests = 0;
            s.points = (s.points + RECOVERY_PER_TICK).min(0);
            if s.banned_until.is_some_and(|t| t <= now) {
                s.banned_until = None;
                s.points = 0;
                expired.push(*peer);
            }
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_limited_per_kind_and_interval() {
        let mut b = PeerBook::default();
        for _ in 0..Request::Sync.limit() {
            assert!(!b.request(1, Request::Sync));
        }
        assert!(b.request(1, Request::Sync), "one past the limit");
        assert!(!b.request(1, Request::Transactions), "kinds count apart");
        assert!(!b.request(2, Request::Sync), "peers count apart");
        b.tick(Instant::now());
        assert!(!b.request(1, Request::Sync), "a new interval");
    }

    #[test]
    fn faults_ban_and_bans_expire() {
        let mut b = PeerBook::default();
        let t = Instant::now();
        for i in 1..10 {
            assert!(
                !b.fault(3, FaultKind::Protocol, t),
                "fault {i} bans too early"
            );
        }
        assert!(b.fault(3, FaultKind::Protocol, t), "the 10th fault bans");
        assert!(b.is_banned(3) && !b.is_banned(2));
        assert!(!b.fault(3, FaultKind::Protocol, t), "banned once");
        assert!(b.tick(t + Duration::from_secs(1)).is_empty());
        assert_eq!(b.tick(t + BAN_TIME + Duration::from_secs(1)), vec![3]);
        assert!(!b.is_banned(3));
    }

    #[test]
    fn costly_faults_weigh_more() {
        let mut b = PeerBook::default();
        let t = Instant::now();
        for i in 1..5 {
            assert!(!b.fault(1, FaultKind::BadSignature, t), "bad signature {i}");
        }
        assert!(
            b.fault(1, FaultKind::InvalidBlock, t),
            "five costly faults ban"
        );
        assert!(!b.fault(2, FaultKind::Equivocation, t));
        assert!(
            b.fault(2, FaultKind::Equivocation, t),
            "two equivocations ban"
        );
    }

    #[test]
    fn good_behaviour_heals_and_floods_are_noticed() {
        let mut b = PeerBook::default();
        let t = Instant::now();
        for _ in 0..5 {
            b.fault(1, FaultKind::Protocol, t);
        }
        for _ in 0..25 {
            b.tick(t);
        }
        for _ in 0..9 {
            assert!(
                !b.fault(1, FaultKind::Protocol, t),
                "healed score needs 10 new faults"
            );
        }
        assert!((0..3).all(|_| !b.received(2, 3)));
        assert!(b.received(2, 3), "the 4th message of 3 allowed is a flood");
        assert!(!b.received(2, 3), "reported once per interval");
        b.tick(t);
        assert!(!b.received(2, 3));
    }

    #[test]
    fn counted_faults_weigh_like_single_ones_and_cap_at_a_ban() {
        let t = Instant::now();
        let mut b = PeerBook::default();
        assert!(!b.faults(1, FaultKind::Protocol, 9, t));
        assert!(
            b.faults(1, FaultKind::Protocol, 1, t),
            "the 10th fault bans"
        );
        let mut c = PeerBook::default();
        assert!(
            c.faults(2, FaultKind::Malformed, u32::MAX, t),
            "a huge count bans, without overflow"
        );
        assert_eq!(c.scores().collect::<Vec<_>>(), vec![(2, BAN_THRESHOLD)]);
    }
}
