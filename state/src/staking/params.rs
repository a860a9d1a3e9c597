//! Staking numbers. Harmony changes several of them by fork epoch; here each is configuration,
//! with Harmony's mainnet value as the default (`../shared/PROTOCOL.md`, "Staking (EPoS)").

use super::dec::Dec;
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

/// 10^18 wei: one ONE.
pub const ONE: u128 = 1_000_000_000_000_000_000;

/// Longest name, identity, website and security contact of a description, in bytes.
pub const MAX_NAME_BYTES: usize = 140;
/// Longest description details, in bytes.
pub const MAX_DETAILS_BYTES: usize = 280;
/// Longest endpoint (`host:port`) a validator may register, in bytes.
pub const MAX_ENDPOINT_BYTES: usize = 255;
/// Intrinsic gas of CreateValidator (Harmony).
pub const CREATE_VALIDATOR_GAS: u64 = 5_300_000;
/// Base gas of the other staking messages (and of a staking precompile call).
pub const STAKING_TX_GAS: u64 = 21_000;

/// Gas for carrying `data`: 16 per non-zero and 4 per zero byte (Harmony's intrinsic gas, as
/// for an Ethereum transaction's input).
pub fn data_gas(data: &[u8]) -> u64 {
    let zero = data.iter().filter(|b| **b == 0).count() as u64;
    16 * (data.len() as u64 - zero) + 4 * zero
}

/// The staking parameters of a network (chain spec `[staking]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StakingParams {
    /// Smallest self-delegation a validator may declare (10,000 ONE).
    pub min_self_delegation: U256,
    /// Smallest delegation (100 ONE).
    pub min_delegation: U256,
    /// Most BLS keys one validator may hold (106).
    pub max_bls_keys: usize,
    /// Epochs an undelegation stays locked before it is paid out (7).
    pub undelegation_lock_epochs: u64,
    /// Half-width of the effective-stake band around the median (0.35 since Harmony epoch 631).
    pub effective_band: Dec,
    /// Slots elected each epoch (external validators).
    pub slots: usize,
    /// Most slots one validator may win, as a fraction of `slots` (0.06), at least one.
    pub slot_limit: Dec,
    /// Lowest commission rate a validator may set (0; HIP-30 raises it to 0.07 by fork).
    pub min_commission_rate: Dec,
    /// Share of the voting power held by the chain spec's (internal, foundation) validators
    /// once an election has chosen external ones (Harmony: 0.49; HIP-32 lowers it to 0.01).
    pub internal_voting_share: Dec,
}

impl Default for StakingParams {
    fn default() -> Self {
        Self {
            min_self_delegation: U256::from(10_000 * ONE),
            min_delegation: U256::from(100 * ONE),
            max_bls_keys: 106,
            undelegation_lock_epochs: 7,
            effective_band: Dec::percent(35),
            slots: 800,
            slot_limit: Dec::percent(6),
            min_commission_rate: Dec::ZERO,
            internal_voting_share: Dec::percent(49),
        }
    }
}

impl StakingParams {
    /// Slots one validator may hold: `slot_limit` of `slots`, rounded down, at least one.
    pub fn max_slots_per_validator(&self) -> usize {
        let n = self.slot_limit.mul_amount(U256::from(self.slots));
        usize::try_from(n).unwrap_or(usize::MAX).max(1)
    }
}

/// 365.25 days in milliseconds: the length of an issuance year, counted in block timestamps
/// from genesis.
pub const YEAR_MS: u64 = 31_557_600_000;

/// One receiver of a share of the base fee (from the `fee_split` fork).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeCollector {
    pub address: alloy_primitives::Address,
    pub share: Dec,
}

/// HIP-30's emission split (from the `hip30` fork): a share of every block reward to one
/// address, the rest to the signers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmissionSplit {
    pub recipient: alloy_primitives::Address,
    pub share: Dec,
}

/// The network's economics (chain spec `[economics]`): what a block issues, the cap on it,
/// the availability threshold, and the numbers Harmony's forks change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EconomicsParams {
    /// Wei issued for every certified block, to its signers (7 ONE: Harmony's per-shard block
    /// reward). From the `rewards` fork.
    pub block_reward: U256,
    /// Most wei issued in one issuance year ([`YEAR_MS`] of block timestamps from genesis):
    /// 441 M ONE, Harmony's yearly emission at 2 s blocks. Blocks past it issue less, or
    /// nothing, until the next year starts.
    pub annual_issuance_cap: U256,
    /// At the election block, an Active validator that signed at or below this share of what
    /// it had to sign in the epoch becomes Inactive, and is not elected (2/3).
    pub min_signing_rate: Dec,
    /// From the `hip30` fork: the lowest commission rate (0.07). Rates below it are raised to
    /// it at each election block, and creation and edits must meet it.
    pub hip30_min_commission: Dec,
    /// From the `hip30` fork: a share of every block reward paid to one address (Harmony: 25%
    /// to its community fund). None: all to the signers.
    pub hip30_emission: Option<EmissionSplit>,
    /// From the `fee_split` fork: who receives the base fees instead of their being burnt
    /// (Harmony: two collectors at 50% each). Shares sum to at most 1; the rest is burnt.
    pub fee_collectors: Vec<FeeCollector>,
    /// Share of its self-delegation a double-signing validator loses (0.5).
    pub slash_self_share: Dec,
    /// What its delegators lose together, as a share of what the validator lost, pro rata
    /// (0.8).
    pub slash_delegation_ratio: Dec,
    /// Share of everything slashed paid to the reporter; the rest is burnt (0.5).
    pub slash_reporter_share: Dec,
}

impl EconomicsParams {
    pub fn slash_rates(&self) -> SlashRates {
        SlashRates {
            self_share: self.slash_self_share,
            delegation_ratio: self.slash_delegation_ratio,
            reporter_share: self.slash_reporter_share,
        }
    }
}

impl Default for EconomicsParams {
    fn default() -> Self {
        Self {
            block_reward: U256::from(7 * ONE),
            annual_issuance_cap: U256::from(441_000_000u128 * ONE),
            min_signing_rate: Dec(666_666_666_666_666_666),
            hip30_min_commission: Dec::percent(7),
            hip30_emission: None,
            fee_collectors: Vec::new(),
            slash_self_share: Dec::percent(50),
            slash_delegation_ratio: Dec::percent(80),
            slash_reporter_share: Dec::percent(50),
        }
    }
}

/// The slashing numbers (chain spec `[economics]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlashRates {
    pub self_share: Dec,
    pub delegation_ratio: Dec,
    pub reporter_share: Dec,
}
