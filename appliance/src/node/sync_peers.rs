//! Whom catch-up asks: the heights peers claimed in their status messages, and the peers
//! that left a request unanswered. A silent peer is skipped for [`SILENT_FOR`], so one peer
//! that claims a height it never serves cannot hold catch-up: after one timeout the next
//! request goes to another peer that claims to be ahead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A sync request unanswered for this long is given up (and may go to another peer).
pub(super) const SYNC_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a peer that left a request unanswered is not asked again.
pub(super) const SILENT_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub(super) struct SyncPeers {
    /// The last height each peer claimed.
    claimed: HashMap<usize, u64>,
    /// Peers that left a request unanswered, and when.
    silent: HashMap<usize, Instant>,
    /// The request in flight: its peer and when it was sent.
    asked: Option<(usize, Instant)>,
}

impl SyncPeers {
    pub(super) fn claim(&mut self, peer: usize, number: u64) {
        self.claimed.insert(peer, number);
    }

    /// The highest height any peer has claimed.
    pub(super) fn highest_claim(&self) -> Option<u64> {
        self.claimed.values().copied().max()
    }

    /// Whether a request is in flight and not yet timed out.
    pub(super) fn waiting(&self, now: Instant) -> bool {
        self.asked
            .is_some_and(|(_, at)| now.duration_since(at) < SYNC_TIMEOUT)
    }

    fn is_silent(&self, peer: usize, now: Instant) -> bool {
        self.silent
            .get(&peer)
            .is_some_and(|at| now.duration_since(*at) < SILENT_FOR)
    }

    /// The peer to ask for blocks past `tip` (with the height to ask up to): `preferred`
    /// (who told us, claiming `target`) unless it is silent; otherwise [`SyncPeers::best`].
    pub(super) fn choose(
        &self,
        preferred: usize,
        target: u64,
        tip: u64,
        now: Instant,
    ) -> Option<(usize, u64)> {
        if !self.is_silent(preferred, now) {
            return Some((preferred, target));
        }
        self.best(tip, now)
    }

    pub(super) fn asked(&mut self, peer: usize, now: Instant) {
        self.asked = Some((peer, now));
    }

    /// `peer` answered: it is not silent, and nothing is in flight.
    pub(super) fn answered(&mut self, peer: usize) {
        self.silent.remove(&peer);
        self.asked = None;
    }

    /// The request in flight timed out: its peer counts as silent from now; returns it.
    pub(super) fn time_out(&mut self, now: Instant) -> Option<usize> {
        let (peer, at) = self.asked?;
        if now.duration_since(at) < SYNC_TIMEOUT {
            return None;
        }
        self.asked = None;
        self.silent.insert(peer, now);
        Some(peer)
    }

    /// The peer that claims the highest height above `tip` and is not silent (ties: the
    /// lowest index), with that height. None when nobody else claims to be ahead.
    pub(super) fn best(&self, tip: u64, now: Instant) -> Option<(usize, u64)> {
        self.claimed
            .iter()
            .filter(|(p, n)| **n > tip && !self.is_silent(**p, now))
            .max_by_key(|(p, n)| (**n, std::cmp::Reverse(**p)))
            .map(|(p, n)| (*p, *n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_peer_is_skipped_for_another_that_claims_to_be_ahead() {
        let t0 = Instant::now();
        let mut s = SyncPeers::default();
        s.claim(1, 1_000_000); // claims far ahead, never answers
        s.claim(2, 50);
        s.claim(3, 40);
        // Peer 1 told us first: it is asked.
        assert_eq!(s.choose(1, 1_000_000, 10, t0), Some((1, 1_000_000)));
        s.asked(1, t0);
        assert!(s.waiting(t0 + Duration::from_secs(1)));
        assert_eq!(s.time_out(t0 + Duration::from_secs(1)), None, "not yet");
        let t1 = t0 + SYNC_TIMEOUT;
        assert_eq!(s.time_out(t1), Some(1));
        assert!(!s.waiting(t1));
        // Peer 1 again, however often it repeats its claim: the next-highest claim instead.
        assert_eq!(s.choose(1, 1_000_000, 10, t1), Some((2, 50)));
        assert_eq!(s.best(10, t1), Some((2, 50)));
        // Nobody else ahead of us: nothing to ask.
        assert_eq!(s.choose(1, 1_000_000, 60, t1), None);
        // After a while peer 1 gets another chance; an answer clears it at once.
        assert_eq!(
            s.choose(1, 1_000_000, 10, t1 + SILENT_FOR),
            Some((1, 1_000_000))
        );
        s.asked(2, t1);
        s.answered(2);
        assert!(!s.waiting(t1));
        s.time_out(t1); // nothing in flight: no effect
        assert_eq!(s.choose(2, 50, 10, t1), Some((2, 50)));
    }
}
