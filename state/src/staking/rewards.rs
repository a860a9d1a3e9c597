//! Block rewards and availability (Harmony's `AccumulateRewardsAndCountSigs` and
//! `availability`), with an annual issuance cap Harmony does not have.
//!
//! Every block carries the commit certificate of its parent. When it is executed, the parent's
//! committee (as [`super::seats`]) is read against that certificate's bitmap:
//!
//! - each elected key counts one block *to sign* for its validator, and one *signed* when its
//!   bit is set (internal keys earn and count nothing, as in Harmony);
//! - the block reward — at most what the issuance year still allows — is split among the keys
//!   that signed by effective stake (Harmony: by voting power, external validators only);
//! - inside a validator, the commission comes first, the rest goes to the delegations in
//!   proportion to their amounts, and the rounding dust to the operator's self-delegation;
//! - rewards accumulate in each delegation until CollectRewards pays them out.
//!
//! At the election block, an Active validator whose signing rate in the epoch is at or below
//! [`EconomicsParams::min_signing_rate`] becomes Inactive, so it is not elected; its operator
//! re-activates it with EditValidator.

use super::dec::Dec;
use super::ledger::{Balances, StakingState};
use super::params::{EconomicsParams, EmissionSplit, YEAR_MS};
use super::seats::Seat;
use super::types::{Validator, ValidatorStatus};
use crate::bitmap::Bitmap;
use alloy_primitives::{Address, U256};
use std::collections::BTreeMap;

/// The issuance year of a block with `timestamp_ms` on a chain that started at `genesis_ms`.
pub fn issuance_year(genesis_ms: u64, timestamp_ms: u64) -> u64 {
    timestamp_ms.saturating_sub(genesis_ms) / YEAR_MS
}

/// What one certified block's reward did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Payout {
    /// Wei added to delegations' accumulated rewards (commissions included).
    pub to_signers: U256,
    /// Wei paid to the HIP-30 emission recipient.
    pub emission: U256,
}

impl Payout {
    /// Wei this block issued.
    pub fn issued(&self) -> U256 {
        self.to_signers + self.emission
    }
}

/// The reward of one certified block, as configured at its height.
#[derive(Debug, Clone, Copy)]
pub struct BlockReward {
    /// The configured reward ([`EconomicsParams::block_reward`]).
    pub amount: U256,
    /// The annual cap and the year the paying block falls in.
    pub cap: U256,
    pub year: u64,
    /// HIP-30's split, when its fork is active.
    pub emission: Option<EmissionSplit>,
}

impl StakingState {
    /// Pays `reward` to the elected keys that signed certificate `signed` of a block whose
    /// committee sat in `seats`, and, with `count`, counts it (`signed` shorter than the seats,
    /// or absent bits, count as not signed). The certificate of an epoch's last block arrives
    /// in the next epoch, after that epoch's counts were closed: it is paid, not counted.
    pub fn reward_block(
        &mut self,
        seats: &[Seat],
        signed: &Bitmap,
        count: bool,
        reward: BlockReward,
        balances: &mut impl Balances,
    ) -> Payout {
        // (validator, effective stake) of every elected key that signed.
        let mut signers: Vec<(Address, U256)> = Vec::new();
        for (i, seat) in seats.iter().enumerate() {
            let Some(address) = seat.validator else {
                continue;
            };
            let Some(v) = self.validator_mut(&address) else {
                continue;
            };
            let did = signed.get(i);
            if count {
                for c in [&mut v.lifetime, &mut v.epoch_counters] {
                    c.to_sign += 1;
                    c.signed += u64::from(did);
                }
            }
            if did {
                signers.push((address, seat.effective_stake));
            }
        }
        let stake: U256 = signers.iter().map(|s| s.1).sum();
        let issuance = self.issuance();
        let amount = if stake.is_zero() {
            U256::ZERO
        } else {
            reward.amount.min(issuance.room(reward.year, reward.cap))
        };
        let mut payout = Payout::default();
        if amount.is_zero() {
            return payout;
        }
        if let Some(split) = reward.emission {
            payout.emission = split.share.min(Dec::ONE).mul_amount(amount);
            let to = split.recipient;
            balances.set_balance(to, balances.balance(to) + payout.emission);
        }
        let rest = amount - payout.emission;
        let mut due: BTreeMap<Address, U256> = BTreeMap::new();
        for (address, s) in signers {
            *due.entry(address).or_default() += rest * s / stake;
        }
        for (address, amount) in due {
            if let Some(v) = self.validator_mut(&address) {
                distribute(v, amount);
                payout.to_signers += amount;
            }
        }
        let mut issuance = issuance;
        issuance.record(reward.year, payout.issued());
        self.set_issuance(issuance);
        payout
    }

    /// At an election block: every Active validator whose signing rate this epoch is at or
    /// below `min_rate` becomes Inactive; every epoch count restarts. Returns the validators
    /// made Inactive.
    pub fn close_epoch_signing(&mut self, min_rate: Dec) -> Vec<Address> {
        let mut inactive = Vec::new();
        for v in self.validators_mut() {
            let c = v.epoch_counters;
            if v.status == ValidatorStatus::Active && c.to_sign > 0 && c.rate() <= min_rate {
                v.status = ValidatorStatus::Inactive;
                inactive.push(v.address);
            }
            v.epoch_counters = Default::default();
        }
        inactive
    }

    /// HIP-30 at an election block: every commission rate below `min` is raised to it (and
    /// the maximum rate with it where needed).
    pub fn raise_commissions(&mut self, min: Dec) {
        for v in self.validators_mut() {
            let c = &mut v.commission;
            if c.rate < min {
                c.rate = min;
                c.max_rate = c.max_rate.max(min);
            }
        }
    }
}

/// Splits `amount` earned by `v`: commission first, then the delegations by amount, the
/// rounding dust to the self-delegation.
fn distribute(v: &mut Validator, amount: U256) {
    v.lifetime_reward += amount;
    let commission = v.commission.rate.min(Dec::ONE).mul_amount(amount);
    let rest = amount - commission;
    let total = v.total_delegation();
    let mut paid = U256::ZERO;
    if !total.is_zero() {
        for d in v.delegations.iter_mut() {
            let share = rest * d.amount / total;
            d.reward += share;
            paid += share;
        }
    }
    if let Some(own) = v.delegations.first_mut() {
        own.reward += commission + (rest - paid);
    }
}

/// The economics of a block reward at `epoch`: what [`StakingState::reward_block`] is given.
pub fn block_reward(
    params: &EconomicsParams,
    hip30: bool,
    genesis_ms: u64,
    timestamp_ms: u64,
) -> BlockReward {
    BlockReward {
        amount: params.block_reward,
        cap: params.annual_issuance_cap,
        year: issuance_year(genesis_ms, timestamp_ms),
        emission: params.hip30_emission.filter(|_| hip30),
    }
}
