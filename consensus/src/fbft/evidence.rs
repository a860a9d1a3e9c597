//! Double-sign detection: a member that signs commit votes for two different blocks at one
//! (number, view) has equivocated, and the two votes prove it (`state::staking::slash`).
//! Every node remembers the first commit vote it sees from each member at the heights in play
//! (the tip's and the round's) and reports a conflicting second one, once per offence, naming
//! itself as the reporter. The votes go out as they came: the caller checks the signatures
//! off the loop before pooling the evidence, so a forged vote costs two pairings at most.

use super::*;
use state::staking::{BlsKey, DoubleSign, SignedVote};

/// Most first votes remembered (a member may vote at many views of a height).
const MAX_SEEN: usize = 4096;

#[derive(Debug, Default)]
pub(super) struct CommitsSeen {
    first: HashMap<(u64, u64, usize), Vote>,
    reported: HashSet<(u64, u64, usize)>,
}

impl CommitsSeen {
    /// Forgets heights below `tip` (the tip's late commits still count).
    pub(super) fn prune(&mut self, tip: u64) {
        self.first.retain(|k, _| k.0 >= tip);
        self.reported.retain(|k| k.0 >= tip);
    }
}

impl Fbft {
    /// Remembers `vote` from member `from`, or reports it with the first one if they
    /// conflict.
    pub(super) fn note_commit(&mut self, from: usize, vote: &Vote, out: &mut Vec<Effect>) {
        // Only votes that name exactly the member's keys can be pinned on it.
        let own = self.committee.member_bitmap(from);
        if vote.bitmap.as_ref() != own.as_bytes() || vote.number + 1 < self.tip.number {
            return;
        }
        let key = (vote.number, vote.view, from);
        let reporter = self
            .me_index()
            .map_or(Default::default(), |m| self.committee.members[m].address);
        let seen = &mut self.commits_seen;
        let Some(first) = seen.first.get(&key) else {
            if seen.first.len() < MAX_SEEN {
                seen.first.insert(key, vote.clone());
            }
            return;
        };
        if first.hash == vote.hash || !seen.reported.insert(key) {
            return;
        }
        let first = first.clone();
        let keys: Vec<BlsKey> = own
            .ones()
            .map(|i| BlsKey::from(self.committee.keys[i].public_key.to_bytes()))
            .collect();
        tracing::warn!(
            target: "consensus",
            number = vote.number,
            view = vote.view,
            member = from,
            "a member signed commits for two blocks at one height and view: reporting it"
        );
        out.push(Effect::Evidence(Box::new(DoubleSign {
            number: vote.number,
            view: vote.view,
            keys,
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
