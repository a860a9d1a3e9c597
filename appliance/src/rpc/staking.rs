//! The `hmy_` staking methods, with Harmony's result shapes (`rpc/harmony/staking.go`,
//! `staking/types`): validators, delegations, the staking network and the median-stake
//! snapshot, plus staking transaction submission and receipts.
//!
//! Differences, on purpose: addresses are 0x hex (no `one1` bech32), and amounts (wei) are
//! decimal strings, since JSON numbers cannot hold them exactly. `hmy_getValidatorInformation`
//! has Harmony's `lifetime` (accumulated reward, blocks to sign and signed) and
//! `current-epoch-performance` without the APR figures, which Harmony derives from its own
//! reward history.

use super::json::{self, hex_u64, Mined};
use super::params::{arg, located, params_vec, parse_address, parse_hash, tip};
use super::{internal, invalid, RpcContext, RpcResult};
use alloy_primitives::{Address, B256, U256};
use jsonrpsee::RpcModule;
use serde_json::{json, Value};
use state::staking::{elect, Delegation, Slot, StakingState, Validator, ValidatorStatus};

fn amount(v: U256) -> Value {
    Value::String(v.to_string())
}

fn staking_state(c: &RpcContext) -> RpcResult<StakingState> {
    c.store.staking_state().map_err(internal)
}

fn tip_epoch(c: &RpcContext) -> RpcResult<(u64, u64)> {
    let (n, h) = tip(c)?;
    Ok((n, h.epoch))
}

/// The committee of the current epoch as elected at the previous epoch's last block (none
/// before the first election).
fn current_committee(c: &RpcContext) -> RpcResult<Option<Vec<Slot>>> {
    let (_, epoch) = tip_epoch(c)?;
    if epoch == 0 {
        return Ok(None);
    }
    let Some(h) = c
        .store
        .header(epoch * c.exec.epoch_blocks - 1)
        .map_err(internal)?
    else {
        return Ok(None);
    };
    match h.v2 {
        Some(v2) if !v2.committee.is_empty() => alloy_rlp::decode_exact(&v2.committee[..])
            .map(Some)
            .map_err(internal),
        _ => Ok(None),
    }
}

fn delegation_json(validator: Address, d: &Delegation) -> Value {
    json!({
        "validator_address": validator,
        "delegator_address": d.delegator,
        "amount": amount(d.amount),
        "reward": amount(d.reward),
        "Undelegations": d.undelegations.iter().map(|u| json!({
            "Amount": amount(u.amount),
            "Epoch": u.epoch,
        })).collect::<Vec<_>>(),
    })
}

fn validator_json(v: &Validator, elected: bool, eligible: bool) -> Value {
    json!({
        "validator": {
            "address": v.address,
            "bls-public-keys": v.bls_keys,
            "min-self-delegation": amount(v.min_self_delegation),
            "max-total-delegation": amount(v.max_total_delegation),
            "rate": v.commission.rate.to_string(),
            "max-rate": v.commission.max_rate.to_string(),
            "max-change-rate": v.commission.max_change_rate.to_string(),
            "name": v.description.name,
            "identity": v.description.identity,
            "website": v.description.website,
            "security-contact": v.description.security_contact,
            "details": v.description.details,
            "creation-epoch": v.creation_epoch,
            "transport-key": v.transport_key,
            "endpoint": v.endpoint,
            "delegations": v.delegations.iter().map(|d| json!({
                "delegator-address": d.delegator,
                "amount": amount(d.amount),
                "reward": amount(d.reward),
                "undelegations": d.undelegations.iter().map(|u| json!({
                    "amount": amount(u.amount),
                    "epoch": u.epoch,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        },
        "total-delegation": amount(v.total_delegation()),
        "lifetime": {
            "reward-accumulated": amount(v.lifetime_reward),
            "blocks": {
                "to-sign": v.lifetime.to_sign,
                "signed": v.lifetime.signed,
            },
        },
        // Harmony gives the epoch's signing only for elected validators.
        "current-epoch-performance": elected.then(|| json!({
            "current-epoch-signing-percent": {
                "current-epoch-signed": v.epoch_counters.signed,
                "current-epoch-to-sign": v.epoch_counters.to_sign,
                "current-epoch-signing-percentage": v.epoch_counters.rate().to_string(),
            },
        })),
        "currently-in-committee": elected,
        "epos-status": if elected {
            "currently elected"
        } else if eligible {
            "eligible to be elected next epoch"
        } else {
            "not eligible to be elected next epoch"
        },
        "active-status": match v.status {
            ValidatorStatus::Active => "active",
            ValidatorStatus::Inactive => "inactive",
            ValidatorStatus::Banned => "banned",
        },
    })
}

fn slot_json(s: &Slot) -> Value {
    json!({
        "slot-owner": s.validator,
        "bls-public-key": s.key,
        "raw-stake": amount(s.raw_stake),
        "eposed-stake": amount(s.effective_stake),
    })
}

fn address_param(p: &jsonrpsee::types::Params, what: &str) -> RpcResult<Address> {
    let shape = format!("[{what}]");
    let v = params_vec(p, &shape)?;
    parse_address(arg(&v, 0, &shape)?, what)
}

/// Registers the staking methods.
pub fn register(m: &mut RpcModule<RpcContext>) {
    m.register_method("hmy_getEpoch", |_, c, _| {
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(hex_u64(tip_epoch(c)?.1))
    })
    .expect("unique name");
    m.register_method("hmy_getAllValidatorAddresses", |_, c, _| {
        let s = staking_state(c)?;
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(
            s.validators().map(|v| v.address).collect::<Vec<_>>(),
        )
    })
    .expect("unique name");
    m.register_method("hmy_getElectedValidatorAddresses", |_, c, _| {
        let addrs: Vec<Address> = match current_committee(c)? {
            Some(slots) => {
                let mut a: Vec<Address> = slots.iter().map(|s| s.validator).collect();
                a.sort();
                a.dedup();
                a
            }
            // Before the first election: the genesis committee of the chain spec.
            None => {
                let mut a = c.genesis_validators.clone();
                a.sort();
                a.dedup();
                a
            }
        };
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(addrs)
    })
    .expect("unique name");
    m.register_method("hmy_getValidatorInformation", |p, c, _| {
        let address = address_param(&p, "validatorAddress")?;
        let s = staking_state(c)?;
        let v = s
            .validator(&address)
            .ok_or_else(|| invalid(format!("no validator {address}")))?;
        let elected =
            current_committee(c)?.is_some_and(|slots| slots.iter().any(|x| x.validator == address));
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(validator_json(
            v,
            elected,
            state::staking::election::eligible(v),
        ))
    })
    .expect("unique name");
    m.register_method("hmy_getDelegationsByDelegator", |p, c, _| {
        let address = address_param(&p, "delegatorAddress")?;
        let s = staking_state(c)?;
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(
            s.delegations_of(address)
                .into_iter()
                .map(|(v, d)| delegation_json(v, d))
                .collect::<Vec<_>>(),
        )
    })
    .expect("unique name");
    m.register_method("hmy_getDelegationsByValidator", |p, c, _| {
        let address = address_param(&p, "validatorAddress")?;
        let s = staking_state(c)?;
        let v = s
            .validator(&address)
            .ok_or_else(|| invalid(format!("no validator {address}")))?;
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(
            v.delegations
                .iter()
                .map(|d| delegation_json(address, d))
                .collect::<Vec<_>>(),
        )
    })
    .expect("unique name");
    m.register_method("hmy_getStakingNetworkInfo", |_, c, _| {
        let _permit = c.heavy_permit()?;
        let s = staking_state(c)?;
        let (_, epoch) = tip_epoch(c)?;
        let total: U256 = s.validators().map(Validator::total_delegation).sum();
        let election = elect(&s, &c.exec.staking);
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(json!({
            "epoch-last-block": (epoch + 1) * c.exec.epoch_blocks - 1,
            "total-staking": amount(total),
            "median-raw-stake": amount(election.median),
        }))
    })
    .expect("unique name");
    m.register_method("hmy_getMedianRawStakeSnapshot", |_, c, _| {
        let _permit = c.heavy_permit()?;
        let s = staking_state(c)?;
        let election = elect(&s, &c.exec.staking);
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(json!({
            "epos-median-stake": amount(election.median),
            "max-external-slots": c.exec.staking.slots,
            "epos-slot-winners": election.slots.iter().map(slot_json).collect::<Vec<_>>(),
        }))
    })
    .expect("unique name");
    m.register_method("hmy_sendRawStakingTransaction", |p, c, _| {
        let shape = "[rawTransaction]";
        let v = params_vec(&p, shape)?;
        let raw: alloy_primitives::Bytes = arg(&v, 0, shape)?
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("rawTransaction must be 0x-prefixed hex"))?;
        let hash = crate::chain::submit_staking(&c.store, &c.exec, &c.staking_pool, &raw)
            .map_err(invalid)?;
        // Every committee member pools it too, so whoever leads next includes it.
        if let Some(admin) = &c.peers {
            admin.mesh.broadcast(
                consensus::Message::StakingTransactions(consensus::TxBatch {
                    transactions: vec![raw],
                })
                .encode(),
            );
        }
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(hash)
    })
    .expect("unique name");
    m.register_method("hmy_getStakingTransactionReceipt", |p, c, _| {
        let shape = "[transactionHash]";
        let v = params_vec(&p, shape)?;
        let hash: B256 = parse_hash(arg(&v, 0, shape)?, "transactionHash")?;
        let Some((block, receipts, i)) = located(c, &hash)? else {
            return Ok(Value::Null);
        };
        // Staking transactions come after the block's other transactions.
        if i < block.body.transactions.len() {
            return Ok(Value::Null);
        }
        let r = receipts
            .get(i)
            .ok_or_else(|| internal("indexed receipt missing from its block"))?;
        let mined = Mined {
            block_hash: block.hash(),
            number: block.number(),
            index: (i - block.body.transactions.len()) as u64,
            base_fee: block.header.base_fee,
        };
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(json::receipt(r, mined, 0))
    })
    .expect("unique name");
}
