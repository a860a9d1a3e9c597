//! Double-sign slashing (Harmony's `staking/slash`): the evidence, its checks, and what it
//! takes.
//!
//! Evidence is two commit votes by the same keys for the same (number, view) and different
//! block hashes, each a BLS signature over the frozen commit payload (`hsm::payload`) under
//! the aggregate of the keys. A block carries it in its header's `slashes`; executing the
//! block checks it and applies it:
//!
//! - the offender (the validator holding every key) loses `slash_self_share` (50%) of its
//!   self-delegation; its delegators together lose `slash_delegation_ratio` (80%) of that
//!   amount, in proportion to their delegations. Each debt is taken from the delegation's
//!   amount, then from its undelegations made at or after the offence's epoch, then from its
//!   accumulated reward, and never more than they hold;
//! - the offender is Banned, for ever;
//! - `slash_reporter_share` (50%) of everything taken goes to the reporter named in the
//!   evidence (none: the zero address), and the rest is burnt.

use super::dec::Dec;
use super::ledger::{Balances, StakingState};
use super::params::SlashRates;
use super::types::{BlsKey, Delegation, ValidatorStatus};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rlp::{RlpDecodable, RlpEncodable};

/// Most keys one piece of evidence may name (a validator's keys in one member).
pub const MAX_EVIDENCE_KEYS: usize = 106;

/// One signed commit vote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, RlpEncodable, RlpDecodable)]
pub struct SignedVote {
    pub hash: B256,
    /// BLS signature (96 bytes compressed, or 192 uncompressed as votes travel).
    pub signature: Bytes,
}

/// Two conflicting commit votes of the same keys, and who reported them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, RlpEncodable, RlpDecodable)]
pub struct DoubleSign {
    pub number: u64,
    pub view: u64,
    pub keys: Vec<BlsKey>,
    pub first: SignedVote,
    pub second: SignedVote,
    /// Paid the reporter's share (the zero address: nobody, all of it burnt).
    pub reporter: Address,
}

/// Why evidence cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlashError {
    #[error("the two votes are for the same block; that is no double signing")]
    SameBlock,
    #[error("evidence names {0} keys; it must name 1 to {MAX_EVIDENCE_KEYS}")]
    KeyCount(usize),
    #[error("key {0} is not a valid BLS public key")]
    BadKey(BlsKey),
    #[error("the {0} vote's signature does not verify under the named keys")]
    BadSignature(&'static str),
    #[error("the offence at block #{number} is not before this block #{now}")]
    NotPast { number: u64, now: u64 },
    #[error("the keys were elected for more than one validator ({0} and {1})")]
    SeveralValidators(Address, Address),
    #[error("key {key} was not elected in the committee of block #{number}")]
    NotInCommittee { key: BlsKey, number: u64 },
    #[error("validator {0} is already banned (its double signing was slashed)")]
    AlreadyBanned(Address),
}

/// The validator that held every key of `keys` in the committee `elected` (the election of
/// the offence's epoch): whoever holds the keys now, the slash falls on who signed with them.
pub fn offender_in(
    elected: &[super::Slot],
    keys: &[BlsKey],
    number: u64,
) -> Result<Address, SlashError> {
    let mut offender: Option<Address> = None;
    for k in keys {
        let owner = elected
            .iter()
            .find(|s| s.key == *k)
            .map(|s| s.validator)
            .ok_or(SlashError::NotInCommittee { key: *k, number })?;
        match offender {
            Some(o) if o != owner => return Err(SlashError::SeveralValidators(o, owner)),
            _ => offender = Some(owner),
        }
    }
    offender.ok_or(SlashError::KeyCount(0))
}

impl DoubleSign {
    /// The keys (sorted, deduplicated) and votes identify an offence, whoever reports it.
    pub fn offence(&self) -> (u64, u64, Vec<BlsKey>) {
        let mut keys = self.keys.clone();
        keys.sort();
        keys.dedup();
        (self.number, self.view, keys)
    }

    /// Checks the form and both signatures, for the network `chain_id` and `shard`.
    pub fn check_signatures(&self, chain_id: u64, shard: u32) -> Result<(), SlashError> {
        if self.first.hash == self.second.hash {
            return Err(SlashError::SameBlock);
        }
        if self.keys.is_empty() || self.keys.len() > MAX_EVIDENCE_KEYS {
            return Err(SlashError::KeyCount(self.keys.len()));
        }
        let mut pks = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            pks.push(
                accel::PublicKey::from_bytes(k.as_slice()).map_err(|_| SlashError::BadKey(*k))?,
            );
        }
        let key = accel::AggregatePublicKey::aggregate(&pks)
            .map_err(|_| SlashError::KeyCount(0))?
            .to_public_key();
        for (which, vote) in [("first", &self.first), ("second", &self.second)] {
            let req = hsm::SignRequest {
                kind: hsm::MsgKind::Commit,
                chain_id,
                shard,
                number: self.number,
                view: self.view,
                hash: vote.hash.0,
            };
            let ok = accel::Signature::decode_checked(&vote.signature)
                .is_ok_and(|s| s.verify(&key, &hsm::payload(&req)));
            if !ok {
                return Err(SlashError::BadSignature(which));
            }
        }
        Ok(())
    }
}

/// What one slash took and where it went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slashed {
    pub offender: Address,
    /// Taken from the operator's self-delegation.
    pub from_self: U256,
    /// Taken from the other delegations.
    pub from_delegators: U256,
    pub to_reporter: U256,
    pub burnt: U256,
}

impl StakingState {
    /// Refuses evidence against a validator already banned (an offence is paid once).
    pub fn check_not_banned(&self, offender: Address) -> Result<(), SlashError> {
        match self.validator(&offender) {
            Some(v) if v.status == ValidatorStatus::Banned => {
                Err(SlashError::AlreadyBanned(offender))
            }
            _ => Ok(()),
        }
    }

    /// Applies checked evidence of an offence in `offence_epoch` against `offender`.
    pub fn slash(
        &mut self,
        offender: Address,
        offence_epoch: u64,
        reporter: Address,
        rates: SlashRates,
        balances: &mut impl Balances,
    ) -> Slashed {
        let mut out = Slashed {
            offender,
            ..Default::default()
        };
        let Some(v) = self.validator_mut(&offender) else {
            return out;
        };
        v.status = ValidatorStatus::Banned;
        let Some((own, others)) = v.delegations.split_first_mut() else {
            return out;
        };
        let debt = rates.self_share.min(Dec::ONE).mul_amount(own.amount);
        out.from_self = take(own, debt, offence_epoch);
        let total: U256 = others.iter().map(|d| d.amount).sum();
        let owed = rates.delegation_ratio.mul_amount(out.from_self);
        if !total.is_zero() {
            for d in others.iter_mut() {
                out.from_delegators += take(d, owed * d.amount / total, offence_epoch);
            }
        }
        let slashed = out.from_self + out.from_delegators;
        if reporter != Address::ZERO {
            out.to_reporter = rates.reporter_share.min(Dec::ONE).mul_amount(slashed);
            balances.set_balance(reporter, balances.balance(reporter) + out.to_reporter);
        }
        out.burnt = slashed - out.to_reporter;
        out
    }
}

/// Takes up to `debt` from `d`: its amount, then undelegations made at or after
/// `offence_epoch` (newest first), then its reward. Returns what was taken.
fn take(d: &mut Delegation, debt: U256, offence_epoch: u64) -> U256 {
    let mut left = debt;
    let mut grab = |held: &mut U256| {
        let t = left.min(*held);
        *held -= t;
        left -= t;
    };
    grab(&mut d.amount);
    for u in d.undelegations.iter_mut().rev() {
        if u.epoch >= offence_epoch {
            grab(&mut u.amount);
        }
    }
    d.undelegations.retain(|u| !u.amount.is_zero());
    grab(&mut d.reward);
    debt - left
}
