//! The staking state and the rules of each staking message (`../shared/PROTOCOL.md`, "Staking
//! (EPoS)"). Every message is checked in full before anything changes, so a refused one leaves
//! the state and the balances exactly as they were.

use super::dec::Dec;
use super::msg::{CreateValidator, Delegate, EditValidator, StakeMsg, Undelegate};
use super::params::{StakingParams, MAX_DETAILS_BYTES, MAX_ENDPOINT_BYTES, MAX_NAME_BYTES};
use super::types::{
    BlsKey, BlsSig, CommissionRates, Delegation, Description, Undelegation, Validator,
    ValidatorStatus,
};
use alloy_primitives::{Address, B256, U256};
use std::collections::BTreeMap;

/// Account balances as the staking rules see them (the EVM state on chain, a map in tests).
pub trait Balances {
    fn balance(&self, address: Address) -> U256;
    fn set_balance(&mut self, address: Address, balance: U256);
}

impl Balances for BTreeMap<Address, U256> {
    fn balance(&self, address: Address) -> U256 {
        self.get(&address).copied().unwrap_or_default()
    }
    fn set_balance(&mut self, address: Address, balance: U256) {
        self.insert(address, balance);
    }
}

/// Why a staking message was refused. Each says what was wrong and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StakingError {
    #[error("{directive} must be sent by {expected}, not {sender}")]
    WrongSender {
        directive: &'static str,
        expected: Address,
        sender: Address,
    },
    #[error("validator {0} already exists")]
    ValidatorExists(Address),
    #[error("no validator {0}")]
    NoValidator(Address),
    #[error("description {field} is {len} bytes; at most {max} are allowed")]
    DescriptionTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("commission: {0}")]
    Commission(String),
    #[error("min self-delegation {amount} wei is below the network minimum of {min} wei")]
    MinSelfDelegationTooLow { amount: U256, min: U256 },
    #[error(
        "max total delegation {max_total} wei is below the min self-delegation {min_self} wei"
    )]
    MaxTotalBelowMinSelf { max_total: U256, min_self: U256 },
    #[error("self-delegation {amount} wei is below the declared minimum {min} wei")]
    SelfDelegationTooLow { amount: U256, min: U256 },
    #[error("total delegation would be {total} wei, above the validator's maximum {max} wei")]
    OverMaxTotalDelegation { total: U256, max: U256 },
    #[error("{count} BLS keys given; a validator holds 1 to {max}")]
    KeyCount { count: usize, max: usize },
    #[error("{keys} BLS keys but {sigs} proofs of possession; give one proof per key")]
    ProofCount { keys: usize, sigs: usize },
    #[error("BLS key {0} is not a valid G1 point")]
    BadKey(BlsKey),
    #[error("the proof of possession of BLS key {0} does not verify")]
    BadProof(BlsKey),
    #[error("BLS key {key} is already used by validator {owner}")]
    KeyInUse { key: BlsKey, owner: Address },
    #[error("BLS key {0} is not one of this validator's keys")]
    KeyNotFound(BlsKey),
    #[error("a validator keeps at least one BLS key; add another before removing {0}")]
    LastKey(BlsKey),
    #[error("endpoint `{0}` is not host:port (at most {MAX_ENDPOINT_BYTES} bytes)")]
    BadEndpoint(String),
    #[error("the transport key must be a 32-byte Ed25519 public key, not zero")]
    BadTransportKey,
    #[error(
        "transport key {key} is already registered by validator {owner}; each node has its own \
         (`harmony-appliance keys transport` prints this node's)"
    )]
    TransportKeyInUse { key: B256, owner: Address },
    #[error("status can only be set to Active or Inactive")]
    BadStatus,
    #[error("validator {0} is banned (double signing); that is final")]
    Banned(Address),
    #[error("delegation of {amount} wei is below the minimum of {min} wei")]
    DelegationTooSmall { amount: U256, min: U256 },
    #[error("insufficient balance: {needed} wei needed, {available} wei available")]
    InsufficientBalance { needed: U256, available: U256 },
    #[error("{delegator} has no delegation with validator {validator}")]
    NoDelegation {
        delegator: Address,
        validator: Address,
    },
    #[error("undelegation amount must be above 0 and at most the delegated {delegated} wei")]
    BadUndelegationAmount { delegated: U256 },
    #[error("no rewards to collect")]
    NoRewards,
}

/// The staking state: every validator with its delegations, by operator address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StakingState {
    validators: BTreeMap<Address, Validator>,
    /// BLS key → the validator holding it: a key belongs to one validator at most.
    key_owner: BTreeMap<BlsKey, Address>,
    /// What block rewards have issued.
    issuance: super::types::Issuance,
}

impl StakingState {
    pub fn from_validators(validators: impl IntoIterator<Item = Validator>) -> Self {
        let mut s = Self::default();
        for v in validators {
            for k in &v.bls_keys {
                s.key_owner.insert(*k, v.address);
            }
            s.validators.insert(v.address, v);
        }
        s
    }

    pub fn validator(&self, address: &Address) -> Option<&Validator> {
        self.validators.get(address)
    }

    /// The validator holding BLS key `key`.
    pub fn owner_of(&self, key: &BlsKey) -> Option<Address> {
        self.key_owner.get(key).copied()
    }

    pub(crate) fn validator_mut(&mut self, address: &Address) -> Option<&mut Validator> {
        self.validators.get_mut(address)
    }

    pub(crate) fn validators_mut(&mut self) -> impl Iterator<Item = &mut Validator> {
        self.validators.values_mut()
    }

    pub fn issuance(&self) -> super::types::Issuance {
        self.issuance
    }

    pub fn set_issuance(&mut self, issuance: super::types::Issuance) {
        self.issuance = issuance;
    }

    pub fn validators(&self) -> impl Iterator<Item = &Validator> {
        self.validators.values()
    }

    /// Every delegation of `delegator`, with its validator.
    pub fn delegations_of(&self, delegator: Address) -> Vec<(Address, &Delegation)> {
        self.validators
            .values()
            .filter_map(|v| v.delegation_of(delegator).map(|d| (v.address, d)))
            .collect()
    }

    /// Applies one message sent by `sender` in `epoch`. On error nothing changed.
    pub fn apply(
        &mut self,
        params: &StakingParams,
        epoch: u64,
        sender: Address,
        msg: &StakeMsg,
        balances: &mut impl Balances,
    ) -> Result<(), StakingError> {
        let expected = msg.signer();
        if sender != expected {
            return Err(StakingError::WrongSender {
                directive: msg.directive().name(),
                expected,
                sender,
            });
        }
        match msg {
            StakeMsg::CreateValidator(m) => self.create_validator(params, epoch, m, balances),
            StakeMsg::EditValidator(m) => self.edit_validator(params, m),
            StakeMsg::Delegate(m) => self.delegate(params, epoch, m, balances),
            StakeMsg::Undelegate(m) => self.undelegate(params, epoch, m),
            StakeMsg::CollectRewards(m) => self.collect_rewards(m.delegator_address, balances),
        }
    }

    fn create_validator(
        &mut self,
        params: &StakingParams,
        epoch: u64,
        m: &CreateValidator,
        balances: &mut impl Balances,
    ) -> Result<(), StakingError> {
        let address = m.validator_address;
        if self.validators.contains_key(&address) {
            return Err(StakingError::ValidatorExists(address));
        }
        check_description(&m.description)?;
        check_commission(params, &m.commission_rates)?;
        check_delegation_limits(params, m.min_self_delegation, m.max_total_delegation)?;
        if m.amount < m.min_self_delegation {
            return Err(StakingError::SelfDelegationTooLow {
                amount: m.amount,
                min: m.min_self_delegation,
            });
        }
        if m.amount > m.max_total_delegation {
            return Err(StakingError::OverMaxTotalDelegation {
                total: m.amount,
                max: m.max_total_delegation,
            });
        }
        if m.slot_pub_keys.is_empty() || m.slot_pub_keys.len() > params.max_bls_keys {
            return Err(StakingError::KeyCount {
                count: m.slot_pub_keys.len(),
                max: params.max_bls_keys,
            });
        }
        if m.slot_key_sigs.len() != m.slot_pub_keys.len() {
            return Err(StakingError::ProofCount {
                keys: m.slot_pub_keys.len(),
                sigs: m.slot_key_sigs.len(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for (k, sig) in m.slot_pub_keys.iter().zip(&m.slot_key_sigs) {
            if !seen.insert(*k) {
                return Err(StakingError::KeyInUse {
                    key: *k,
                    owner: address,
                });
            }
            self.check_new_key(k, sig)?;
        }
        check_endpoint(&m.endpoint)?;
        check_transport_key(&m.transport_key)?;
        self.check_transport_key_free(&m.transport_key, address)?;
        debit(balances, address, m.amount)?;
        let v = Validator {
            address,
            bls_keys: m.slot_pub_keys.clone(),
            transport_key: m.transport_key,
            endpoint: m.endpoint.clone(),
            min_self_delegation: m.min_self_delegation,
            max_total_delegation: m.max_total_delegation,
            status: ValidatorStatus::Active,
            commission: m.commission_rates,
            epoch_start_rate: m.commission_rates.rate,
            description: m.description.clone(),
            creation_epoch: epoch,
            lifetime: Default::default(),
            epoch_counters: Default::default(),
            lifetime_reward: U256::ZERO,
            delegations: vec![Delegation::new(address, m.amount)],
        };
        for k in &v.bls_keys {
            self.key_owner.insert(*k, address);
        }
        self.validators.insert(address, v);
        Ok(())
    }

    /// A transport key names one node: refused when another validator registered it.
    fn check_transport_key_free(&self, key: &B256, me: Address) -> Result<(), StakingError> {
        match self
            .validators()
            .find(|v| v.transport_key == *key && v.address != me)
        {
            Some(v) => Err(StakingError::TransportKeyInUse {
                key: *key,
                owner: v.address,
            }),
            None => Ok(()),
        }
    }

    fn check_new_key(&self, key: &BlsKey, sig: &BlsSig) -> Result<(), StakingError> {
        if let Some(owner) = self.key_owner.get(key) {
            return Err(StakingError::KeyInUse {
                key: *key,
                owner: *owner,
            });
        }
        let pk =
            accel::PublicKey::from_bytes(key.as_slice()).map_err(|_| StakingError::BadKey(*key))?;
        let proof = accel::Signature::from_bytes(sig.as_slice())
            .map_err(|_| StakingError::BadProof(*key))?;
        if !pk.verify_possession(&proof) {
            return Err(StakingError::BadProof(*key));
        }
        Ok(())
    }

    fn edit_validator(
        &mut self,
        params: &StakingParams,
        m: &EditValidator,
    ) -> Result<(), StakingError> {
        let address = m.validator_address;
        let current = self
            .validators
            .get(&address)
            .ok_or(StakingError::NoValidator(address))?;
        if current.status == ValidatorStatus::Banned {
            return Err(StakingError::Banned(address));
        }
        // Build the edited record, check it whole, then store it.
        let mut v = current.clone();
        merge_description(&mut v.description, &m.description);
        check_description(&v.description)?;
        if let Some(rate) = m.commission_rate.0 {
            let c = &v.commission;
            if rate > c.max_rate {
                return Err(StakingError::Commission(format!(
                    "rate {rate} is above the max rate {}",
                    c.max_rate
                )));
            }
            if rate < params.min_commission_rate {
                return Err(StakingError::Commission(format!(
                    "rate {rate} is below the network minimum {}",
                    params.min_commission_rate
                )));
            }
            if rate.abs_diff(v.epoch_start_rate) > c.max_change_rate {
                return Err(StakingError::Commission(format!(
                    "rate {rate} moves more than the max change rate {} from this epoch's \
                     starting rate {}",
                    c.max_change_rate, v.epoch_start_rate
                )));
            }
            v.commission.rate = rate;
        }
        if let Some(min) = m.min_self_delegation.0 {
            v.min_self_delegation = min;
        }
        if let Some(max) = m.max_total_delegation.0 {
            v.max_total_delegation = max;
        }
        check_delegation_limits(params, v.min_self_delegation, v.max_total_delegation)?;
        let total = v.total_delegation();
        if total > v.max_total_delegation {
            return Err(StakingError::OverMaxTotalDelegation {
                total,
                max: v.max_total_delegation,
            });
        }
        let mut removed = None;
        if let Some(k) = m.slot_key_to_remove.0 {
            let i = v
                .bls_keys
                .iter()
                .position(|x| *x == k)
                .ok_or(StakingError::KeyNotFound(k))?;
            v.bls_keys.remove(i);
            removed = Some(k);
        }
        let mut added = None;
        if let Some(k) = m.slot_key_to_add.0 {
            let sig = m
                .slot_key_to_add_sig
                .0
                .ok_or(StakingError::ProofCount { keys: 1, sigs: 0 })?;
            if removed != Some(k) {
                self.check_new_key(&k, &sig)?;
            }
            v.bls_keys.push(k);
            added = Some(k);
        }
        if v.bls_keys.is_empty() {
            return Err(StakingError::LastKey(removed.unwrap_or_default()));
        }
        if v.bls_keys.len() > params.max_bls_keys {
            return Err(StakingError::KeyCount {
                count: v.bls_keys.len(),
                max: params.max_bls_keys,
            });
        }
        if let Some(status) = m.status.0 {
            match status {
                ValidatorStatus::Banned => return Err(StakingError::BadStatus),
                ValidatorStatus::Active if v.self_delegation() < v.min_self_delegation => {
                    return Err(StakingError::SelfDelegationTooLow {
                        amount: v.self_delegation(),
                        min: v.min_self_delegation,
                    })
                }
                s => v.status = s,
            }
        }
        if let Some(t) = m.transport_key.0 {
            check_transport_key(&t)?;
            self.check_transport_key_free(&t, m.validator_address)?;
            v.transport_key = t;
        }
        if let Some(e) = &m.endpoint.0 {
            check_endpoint(e)?;
            v.endpoint = e.clone();
        }
        if let Some(k) = removed {
            self.key_owner.remove(&k);
        }
        if let Some(k) = added {
            self.key_owner.insert(k, address);
        }
        self.validators.insert(address, v);
        Ok(())
    }

    fn delegate(
        &mut self,
        params: &StakingParams,
        epoch: u64,
        m: &Delegate,
        balances: &mut impl Balances,
    ) -> Result<(), StakingError> {
        let v = self
            .validators
            .get(&m.validator_address)
            .ok_or(StakingError::NoValidator(m.validator_address))?;
        if v.status == ValidatorStatus::Banned {
            return Err(StakingError::Banned(v.address));
        }
        if m.amount < params.min_delegation {
            return Err(StakingError::DelegationTooSmall {
                amount: m.amount,
                min: params.min_delegation,
            });
        }
        let total = v.total_delegation() + m.amount;
        if total > v.max_total_delegation {
            return Err(StakingError::OverMaxTotalDelegation {
                total,
                max: v.max_total_delegation,
            });
        }
        // Matured undelegations are used first, then the balance.
        let matured = self.matured(m.delegator_address, epoch, params);
        let from_balance = m.amount.saturating_sub(matured);
        let available = balances.balance(m.delegator_address);
        if from_balance > available {
            return Err(StakingError::InsufficientBalance {
                needed: from_balance,
                available: available + matured,
            });
        }
        self.take_matured(m.delegator_address, epoch, params, m.amount - from_balance);
        balances.set_balance(m.delegator_address, available - from_balance);
        let v = self
            .validators
            .get_mut(&m.validator_address)
            .expect("checked above");
        match v
            .delegations
            .iter_mut()
            .find(|d| d.delegator == m.delegator_address)
        {
            Some(d) => d.amount += m.amount,
            None => v
                .delegations
                .push(Delegation::new(m.delegator_address, m.amount)),
        }
        Ok(())
    }

    fn is_matured(u: &Undelegation, epoch: u64, params: &StakingParams) -> bool {
        epoch.saturating_sub(u.epoch) >= params.undelegation_lock_epochs
    }

    /// Stake of `delegator` whose undelegation lock has run out (not yet paid out).
    fn matured(&self, delegator: Address, epoch: u64, params: &StakingParams) -> U256 {
        self.validators
            .values()
            .filter_map(|v| v.delegation_of(delegator))
            .flat_map(|d| &d.undelegations)
            .filter(|u| Self::is_matured(u, epoch, params))
            .map(|u| u.amount)
            .sum()
    }

    /// Takes `amount` from `delegator`'s matured undelegations: validators in address order,
    /// oldest undelegation first, the last one taken in part if need be.
    fn take_matured(&mut self, delegator: Address, epoch: u64, p: &StakingParams, amount: U256) {
        let mut left = amount;
        for v in self.validators.values_mut() {
            let Some(d) = v.delegations.iter_mut().find(|d| d.delegator == delegator) else {
                continue;
            };
            for u in d.undelegations.iter_mut() {
                if left.is_zero() {
                    break;
                }
                if Self::is_matured(u, epoch, p) {
                    let take = left.min(u.amount);
                    u.amount -= take;
                    left -= take;
                }
            }
            d.undelegations.retain(|u| !u.amount.is_zero());
        }
        debug_assert!(left.is_zero(), "callers take at most the matured total");
    }

    fn undelegate(
        &mut self,
        params: &StakingParams,
        epoch: u64,
        m: &Undelegate,
    ) -> Result<(), StakingError> {
        let v = self
            .validators
            .get_mut(&m.validator_address)
            .ok_or(StakingError::NoValidator(m.validator_address))?;
        let d = v
            .delegations
            .iter_mut()
            .find(|d| d.delegator == m.delegator_address)
            .ok_or(StakingError::NoDelegation {
                delegator: m.delegator_address,
                validator: m.validator_address,
            })?;
        if m.amount.is_zero() || m.amount > d.amount {
            return Err(StakingError::BadUndelegationAmount {
                delegated: d.amount,
            });
        }
        d.amount -= m.amount;
        match d.undelegations.iter_mut().find(|u| u.epoch == epoch) {
            Some(u) => u.amount += m.amount,
            None => d.undelegations.push(Undelegation {
                amount: m.amount,
                epoch,
            }),
        }
        if m.delegator_address == v.address
            && v.self_delegation() < v.min_self_delegation
            && v.status == ValidatorStatus::Active
        {
            v.status = ValidatorStatus::Inactive;
        }
        let _ = params;
        Ok(())
    }

    fn collect_rewards(
        &mut self,
        delegator: Address,
        balances: &mut impl Balances,
    ) -> Result<(), StakingError> {
        let total: U256 = self
            .delegations_of(delegator)
            .iter()
            .map(|(_, d)| d.reward)
            .sum();
        if total.is_zero() {
            return Err(StakingError::NoRewards);
        }
        for v in self.validators.values_mut() {
            if let Some(d) = v.delegations.iter_mut().find(|d| d.delegator == delegator) {
                d.reward = U256::ZERO;
            }
        }
        balances.set_balance(delegator, balances.balance(delegator) + total);
        Ok(())
    }

    /// At the election block of `epoch`: pays out every undelegation whose lock has run out,
    /// drops delegations left empty (never the self-delegation), and records each validator's
    /// rate as the new epoch's starting rate. Returns the total paid.
    pub fn end_epoch(
        &mut self,
        params: &StakingParams,
        epoch: u64,
        balances: &mut impl Balances,
    ) -> U256 {
        let mut paid = U256::ZERO;
        for v in self.validators.values_mut() {
            v.epoch_start_rate = v.commission.rate;
            for d in v.delegations.iter_mut() {
                let (due, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut d.undelegations)
                    .into_iter()
                    .partition(|u| Self::is_matured(u, epoch, params));
                d.undelegations = kept;
                let amount: U256 = due.iter().map(|u| u.amount).sum();
                if !amount.is_zero() {
                    balances.set_balance(d.delegator, balances.balance(d.delegator) + amount);
                    paid += amount;
                }
            }
            let operator = v.address;
            v.delegations.retain(|d| {
                d.delegator == operator
                    || !(d.amount.is_zero() && d.reward.is_zero() && d.undelegations.is_empty())
            });
        }
        paid
    }
}

fn debit(balances: &mut impl Balances, address: Address, amount: U256) -> Result<(), StakingError> {
    let available = balances.balance(address);
    if amount > available {
        return Err(StakingError::InsufficientBalance {
            needed: amount,
            available,
        });
    }
    balances.set_balance(address, available - amount);
    Ok(())
}

fn check_description(d: &Description) -> Result<(), StakingError> {
    for (field, value, max) in [
        ("name", &d.name, MAX_NAME_BYTES),
        ("identity", &d.identity, MAX_NAME_BYTES),
        ("website", &d.website, MAX_NAME_BYTES),
        ("security contact", &d.security_contact, MAX_NAME_BYTES),
        ("details", &d.details, MAX_DETAILS_BYTES),
    ] {
        if value.len() > max {
            return Err(StakingError::DescriptionTooLong {
                field,
                len: value.len(),
                max,
            });
        }
    }
    Ok(())
}

/// Harmony's rule: an empty field in an edit keeps the current value.
fn merge_description(into: &mut Description, edit: &Description) {
    for (to, from) in [
        (&mut into.name, &edit.name),
        (&mut into.identity, &edit.identity),
        (&mut into.website, &edit.website),
        (&mut into.security_contact, &edit.security_contact),
        (&mut into.details, &edit.details),
    ] {
        if !from.is_empty() {
            to.clone_from(from);
        }
    }
}

fn check_commission(params: &StakingParams, c: &CommissionRates) -> Result<(), StakingError> {
    let err = |m: String| Err(StakingError::Commission(m));
    if c.max_rate > Dec::ONE {
        return err(format!("max rate {} is above 1", c.max_rate));
    }
    if c.rate > c.max_rate {
        return err(format!(
            "rate {} is above the max rate {}",
            c.rate, c.max_rate
        ));
    }
    if c.max_change_rate > c.max_rate {
        return err(format!(
            "max change rate {} is above the max rate {}",
            c.max_change_rate, c.max_rate
        ));
    }
    if c.rate < params.min_commission_rate {
        return err(format!(
            "rate {} is below the network minimum {}",
            c.rate, params.min_commission_rate
        ));
    }
    Ok(())
}

fn check_delegation_limits(
    params: &StakingParams,
    min_self: U256,
    max_total: U256,
) -> Result<(), StakingError> {
    if min_self < params.min_self_delegation {
        return Err(StakingError::MinSelfDelegationTooLow {
            amount: min_self,
            min: params.min_self_delegation,
        });
    }
    if max_total < min_self {
        return Err(StakingError::MaxTotalBelowMinSelf {
            max_total,
            min_self,
        });
    }
    Ok(())
}

fn check_endpoint(e: &str) -> Result<(), StakingError> {
    let ok = e.len() <= MAX_ENDPOINT_BYTES
        && e.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
    if ok {
        Ok(())
    } else {
        Err(StakingError::BadEndpoint(e.to_string()))
    }
}

fn check_transport_key(k: &B256) -> Result<(), StakingError> {
    if k.is_zero() {
        Err(StakingError::BadTransportKey)
    } else {
        Ok(())
    }
}
