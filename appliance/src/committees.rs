//! The committee of every epoch, as the chain decides it: the chain spec's at epoch 0, and
//! after each election (an epoch's last block, with the staking fork active) the spec's
//! internal members followed by the elected validators (`Committee::after_election`).
//!
//! Derived from stored headers only, so a node that restarts, or catches up across hand-offs,
//! computes the same committees as one that watched every epoch end. Transport keys come
//! from the staking records as they are when the committee is first asked for; they route
//! messages and name peers, and never decide what a certificate proves.

use crate::lock::LockExt;
use consensus::{Committee, Committees};
use state::db::ChainStore;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Epochs kept in memory (a catch-up walks forward; older ones are recomputed if asked).
const CACHED_EPOCHS: usize = 8;

/// Committees by epoch, computed on first use and cached.
pub struct CommitteeBook {
    spec: Arc<Committee>,
    epoch_blocks: u64,
    forks: BTreeMap<String, u64>,
    internal_share: state::staking::Dec,
    cache: Mutex<BTreeMap<u64, Arc<Committee>>>,
}

impl CommitteeBook {
    pub fn new(spec: &state::ChainSpec, spec_committee: Arc<Committee>) -> Self {
        Self {
            spec: spec_committee,
            epoch_blocks: spec.epoch_blocks,
            forks: spec.forks.clone(),
            internal_share: spec.staking.internal_voting_share,
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    /// The chain spec's committee (epoch 0's, and the internal members of every later one).
    pub fn spec_committee(&self) -> &Arc<Committee> {
        &self.spec
    }

    /// The committee that signs block `number`. Needs the last block of the previous epoch
    /// stored (always true for the tip's successor).
    pub fn for_block(&self, store: &ChainStore, number: u64) -> eyre::Result<Arc<Committee>> {
        self.for_epoch(store, number / self.epoch_blocks)
    }

    /// The committees around tip `number` (what `Input::Persisted` and `Fbft::new` take).
    pub fn around(&self, store: &ChainStore, number: u64) -> eyre::Result<Committees> {
        Ok(Committees {
            tip: self.for_block(store, number)?,
            next: self.for_block(store, number + 1)?,
        })
    }

    pub fn for_epoch(&self, store: &ChainStore, epoch: u64) -> eyre::Result<Arc<Committee>> {
        // No election before this epoch: the spec's committee.
        if epoch == 0 || !state::forks::active(&self.forks, state::forks::STAKING, epoch - 1) {
            return Ok(self.spec.clone());
        }
        if let Some(c) = self.cache.locked().get(&epoch) {
            return Ok(c.clone());
        }
        let last = epoch * self.epoch_blocks - 1;
        let header = store.header(last)?.ok_or_else(|| {
            eyre::eyre!(
                "the committee of epoch {epoch} needs block {last}, which is not stored yet"
            )
        })?;
        let elected = state::staking::Elected::of(&header)
            .map_err(|e| eyre::eyre!("block {last}: the elected committee does not decode: {e}"))?;
        let staking = store.staking_state()?;
        let computed =
            Committee::after_election(&self.spec, &elected, &staking, self.internal_share)
                .map_err(|e| eyre::eyre!("block {last}: {e}"))?;
        let mut cache = self.cache.locked();
        // The same committee as the epoch before (nobody new elected): the same value, so
        // consensus sees no hand-off.
        let before = epoch - 1;
        let previous = match cache.get(&before) {
            Some(c) => Some(c.clone()),
            None if before == 0
                || !state::forks::active(&self.forks, state::forks::STAKING, before - 1) =>
            {
                Some(self.spec.clone())
            }
            None => None,
        };
        let committee = match previous {
            Some(p) if same_members(&p, &computed) => p,
            _ => Arc::new(computed),
        };
        cache.insert(epoch, committee.clone());
        while cache.len() > CACHED_EPOCHS {
            cache.pop_first();
        }
        Ok(committee)
    }
}

/// Same keys, in the same order, with the same power and transport keys.
fn same_members(a: &Committee, b: &Committee) -> bool {
    a.keys.len() == b.keys.len()
        && a.members.len() == b.members.len()
        && a.keys.iter().zip(&b.keys).all(|(x, y)| {
            x.public_key == y.public_key && x.power == y.power && x.member == y.member
        })
        && a.members
            .iter()
            .zip(&b.members)
            .all(|(x, y)| x.address == y.address && x.transport_key == y.transport_key)
}
