//! Double-sign detection: a member that signs commit votes for two different blocks at one
//! (number, view) has equivocated, and the two votes prove it (`state::staking::slash`).
//!
//! Every node remembers the commit votes it sees from each member at the heights in play (the
//! tip's and the round's, views up to [`MAX_VIEW_AHEAD`] past the round's) and reports each
//! new conflicting pair once, naming itself as the reporter. The votes go out as they came:
//! the caller checks the signatures off the loop before pooling the evidence. A member can
//! send junk votes first, but up to [`VOTES_PER_MEMBER`] distinct votes are kept per
//! (number, view), and each new one is paired with every one kept, so junk only hides a real
//! pair once a member has flooded that slot (which the votes' own checks penalize).

use super::*;
use state::staking::{BlsKey, DoubleSign, SignedVote};

/// Most votes remembered in all (views of the heights in play, across members).
const MAX_SEEN: usize = 4096;
/// Distinct votes kept per member and (number, view).
const VOTES_PER_MEMBER: usize = 4;

type Slot = (u64, u64, [u8; 32]);

#[derive(Debug, Default)]
pub(super) struct CommitsSeen {
    /// (number, view, member's transport key) → its distinct votes there.
    votes: HashMap<Slot, Vec<Vote>>,
    seen: usize,
    /// (slot, the two hashes, lower first) already reported.
    reported: HashSet<(Slot, B256, B256)>,
}

impl CommitsSeen {
    /// Forgets heights below `tip` (the tip's late commits still count).
    pub(super) fn prune(&mut self, tip: u64) {
        self.votes.retain(|k, _| k.0 >= tip);
        self.seen = self.votes.values().map(Vec::len).sum();
        self.reported.retain(|k| k.0 .0 >= tip);
    }
}

impl Fbft {
    /// Remembers `vote` from `peer`, and reports it with each earlier vote of the same member
    /// at the same (number, view) for another block.
    pub(super) fn note_commit(&mut self, peer: &PeerId, vote: &Vote, out: &mut Vec<Effect>) {
        if vote.number < self.tip.number
            || vote.number > self.round.number
            || vote.view > self.round.view.saturating_add(MAX_VIEW_AHEAD)
        {
            return;
        }
        // The committee that votes at that height: the tip's or the round's.
        let committee = if vote.number == self.tip.number {
            self.tip_committee.clone()
        } else {
            self.committee.clone()
        };
        let Some(member) = committee.member_by_transport_key(peer) else {
            return;
        };
        // Only votes that name exactly the member's keys can be pinned on it.
        let own = committee.member_bitmap(member);
        if vote.bitmap.as_ref() != own.as_bytes() {
            return;
        }
        let reporter = self
            .me_index()
            .map_or(Default::default(), |m| self.committee.members[m].address);
        let slot: Slot = (vote.number, vote.view, *peer);
        let seen = &mut self.commits_seen;
        let kept = seen.votes.entry(slot).or_default();
        if kept.iter().any(|v| v.hash == vote.hash) {
            return;
        }
        let earlier: Vec<Vote> = kept.clone();
        if kept.len() < VOTES_PER_MEMBER && seen.seen < MAX_SEEN {
            kept.push(vote.clone());
            seen.seen += 1;
        }
        let keys: Vec<BlsKey> = own
            .ones()
            .map(|i| BlsKey::from(committee.keys[i].public_key.to_bytes()))
            .collect();
        for first in earlier {
            let pair = if first.hash < vote.hash {
                (slot, first.hash, vote.hash)
            } else {
                (slot, vote.hash, first.hash)
            };
            if !self.commits_seen.reported.insert(pair) {
                continue;
            }
            tracing::warn!(
                target: "consensus",
                number = vote.number,
                view = vote.view,
                member,
                "a member signed commits for two blocks at one height and view: reporting it"
            );
            out.push(Effect::Evidence(Box::new(DoubleSign {
                number: vote.number,
                view: vote.view,
                keys: keys.clone(),
                first: SignedVote {
                    hash: first.hash,
                    signature: first.signature.clone(),
                },
                second: SignedVote {
                    hash: vote.hash,
                    signature: vote.signature.clone(),
                },
                reporter,
            })));
        }
    }
}
