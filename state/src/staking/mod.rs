//! Staking (EPoS) on shard 0: the validator set, delegations, and the election of each epoch's
//! committee. Harmony's rules, numbers as configuration (`../shared/PROTOCOL.md`).
//!
//! - [`dec`]: 18-place fixed-point decimals (rates, shares).
//! - [`params`]: the network's staking numbers ([`StakingParams`]).
//! - [`types`]: what is stored: [`Validator`], [`Delegation`], [`Undelegation`].
//! - [`msg`]: the five staking messages and their signed envelope ([`SignedStakingTx`]).
//! - [`ledger`]: [`StakingState`] and the rules each message must pass ([`StakingError`]);
//!   a refused message changes nothing.
//! - [`election`]: [`elect`], effective stake within the band around the median.
//! - [`seats`]: the committee's keys in signing order (bit i of a certificate is seat i).
//! - [`slash`]: double-sign evidence, its checks, and what a slash takes.
//! - [`rewards`]: block rewards to signers, availability counts, the issuance cap
//!   ([`EconomicsParams`]).
//!
//! This layer sits beside `exec`: it needs the primitives only, and reads and writes balances
//! through [`Balances`], so the chain can apply it to EVM state and tests to a map.

pub mod dec;
pub mod election;
pub mod ledger;
pub mod msg;
pub mod params;
pub mod rewards;
pub mod seats;
pub mod slash;
pub mod types;

pub use dec::Dec;
pub use election::{elect, Election, Slot};
pub use ledger::{Balances, StakingError, StakingState};
pub use msg::{
    CollectRewards, CreateValidator, Delegate, Directive, EditValidator, Opt, SignedStakingTx,
    StakeMsg, StakingTx, StakingTxError, Undelegate,
};
pub use params::{
    EconomicsParams, EmissionSplit, FeeCollector, SlashRates, StakingParams, ONE, YEAR_MS,
};
pub use rewards::Payout;
pub use seats::{seats, Elected, Seat};
pub use slash::{DoubleSign, SignedVote, SlashError, Slashed};
pub use types::{
    BlsKey, BlsSig, CommissionRates, Counters, Delegation, Description, Issuance, Undelegation,
    Validator, ValidatorStatus,
};
