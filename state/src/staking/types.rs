//! What the chain stores about validators and delegations (RLP, in the staking state).

use super::dec::Dec;
use alloy_primitives::{Address, FixedBytes, B256, U256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use serde::{Deserialize, Serialize};

/// A compressed BLS12-381 public key (G1, 48 bytes).
pub type BlsKey = FixedBytes<48>;
/// A compressed BLS12-381 signature (G2, 96 bytes): a proof of possession.
pub type BlsSig = FixedBytes<96>;

/// Who a validator is, for people (Harmony's `Description`).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    pub name: String,
    pub identity: String,
    pub website: String,
    pub security_contact: String,
    pub details: String,
}

/// Commission limits set at creation (Harmony's `CommissionRates`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct CommissionRates {
    pub rate: Dec,
    pub max_rate: Dec,
    pub max_change_rate: Dec,
}

/// Whether a validator takes part in elections. Banned is final (double signing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValidatorStatus {
    Active = 1,
    Inactive = 2,
    Banned = 3,
}

impl ValidatorStatus {
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Active),
            2 => Some(Self::Inactive),
            3 => Some(Self::Banned),
            _ => None,
        }
    }
}

impl Encodable for ValidatorStatus {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        (*self as u8).encode(out)
    }
    fn length(&self) -> usize {
        (*self as u8).length()
    }
}

impl Decodable for ValidatorStatus {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        Self::from_u8(u8::decode(buf)?).ok_or(alloy_rlp::Error::Custom("unknown validator status"))
    }
}

/// Stake returned by Undelegate, locked until `epoch` + the lock period.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
pub struct Undelegation {
    pub amount: U256,
    /// The epoch the undelegation was made in.
    pub epoch: u64,
}

/// One delegator's stake with one validator.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
pub struct Delegation {
    pub delegator: Address,
    pub amount: U256,
    /// Rewards accumulated, paid by CollectRewards (the economics issue fills it).
    pub reward: U256,
    pub undelegations: Vec<Undelegation>,
}

impl Delegation {
    pub fn new(delegator: Address, amount: U256) -> Self {
        Self {
            delegator,
            amount,
            reward: U256::ZERO,
            undelegations: Vec::new(),
        }
    }

    /// Stake still locked in undelegations.
    pub fn undelegating(&self) -> U256 {
        self.undelegations.iter().map(|u| u.amount).sum()
    }
}

/// Signing counts of one validator over its elected keys: `to_sign` grows by one per key per
/// certified block of an epoch it was elected in, `signed` when that key's bit is set in the
/// certificate (Harmony's `Counters`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub struct Counters {
    pub to_sign: u64,
    pub signed: u64,
}

impl Counters {
    /// `signed / to_sign` (zero when there was nothing to sign).
    pub fn rate(&self) -> Dec {
        if self.to_sign == 0 {
            Dec::ZERO
        } else {
            Dec::ratio(U256::from(self.signed), U256::from(self.to_sign))
        }
    }
}

/// A validator as the chain stores it (Harmony's `ValidatorWrapper`, with our transport key
/// and endpoint). `delegations[0]` is always the operator's self-delegation.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Validator {
    /// Operator address: signs its staking transactions, receives its rewards.
    pub address: Address,
    pub bls_keys: Vec<BlsKey>,
    /// Ed25519 public key of the node's QUIC identity.
    pub transport_key: B256,
    /// `host:port` the node accepts QUIC on.
    pub endpoint: String,
    pub min_self_delegation: U256,
    pub max_total_delegation: U256,
    pub status: ValidatorStatus,
    pub commission: CommissionRates,
    /// The rate at the start of the current epoch: an edit may move at most `max_change_rate`
    /// away from it within one epoch.
    pub epoch_start_rate: Dec,
    pub description: Description,
    pub creation_epoch: u64,
    pub delegations: Vec<Delegation>,
    /// Signing counts since creation.
    pub lifetime: Counters,
    /// Signing counts of the current epoch (reset at each election block, after the
    /// availability check).
    pub epoch_counters: Counters,
    /// Every reward this validator's signing earned (commission and delegators' shares).
    pub lifetime_reward: U256,
}

impl Validator {
    /// Delegated stake (self-delegation included), undelegations not counted.
    pub fn total_delegation(&self) -> U256 {
        self.delegations.iter().map(|d| d.amount).sum()
    }

    /// The operator's own stake.
    pub fn self_delegation(&self) -> U256 {
        self.delegations.first().map_or(U256::ZERO, |d| d.amount)
    }

    pub fn delegation_of(&self, delegator: Address) -> Option<&Delegation> {
        self.delegations.iter().find(|d| d.delegator == delegator)
    }
}

/// What the chain has issued, kept with the staking state (and in its root).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Issuance {
    /// The issuance year of the last reward (block timestamp from genesis, in [`super::params::YEAR_MS`]).
    pub year: u64,
    /// Wei issued in that year.
    pub issued_in_year: U256,
    /// Wei issued since genesis.
    pub total: U256,
}

impl Issuance {
    /// Wei that may still be issued in `year` under `cap`.
    pub fn room(&self, year: u64, cap: U256) -> U256 {
        if year == self.year {
            cap.saturating_sub(self.issued_in_year)
        } else {
            cap
        }
    }

    pub(crate) fn record(&mut self, year: u64, amount: U256) {
        if year != self.year {
            self.year = year;
            self.issued_in_year = U256::ZERO;
        }
        self.issued_in_year += amount;
        self.total += amount;
    }
}
