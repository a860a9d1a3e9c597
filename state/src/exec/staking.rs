//! Staking transactions in a block (shard 0, from the `staking` fork), after the block's EVM
//! transactions.
//!
//! Each is charged like a transfer: its nonce must be the sender's, its gas price at least the
//! base fee, and `gas × price` is taken from the sender (the base fee burnt, the tip to the
//! leader when `priority_fee_to_leader` is active). Its gas is Harmony's intrinsic gas: 5,300,000
//! for CreateValidator, 21,000 for the others, plus 16 per non-zero and 4 per zero byte of the
//! message. The message is then applied to the staking state with balances read and written
//! through the block's pending changes. One that fails any rule is not includable: the leader
//! leaves it out, a validator refuses a block with it. Its receipt follows the EVM receipts
//! (type 0, no logs) in the receipts root.
//!
//! At an epoch's last block, matured undelegations are paid out and the next committee is
//! elected; the header carries it (`committee`).

use super::execute::{BlockInputs, ExecConfig};
use super::state_db::StateReader;
use crate::changes::{AccountInfoLite, StateChanges};
use crate::db::DbError;
use crate::staking::{elect, Balances, SignedStakingTx, StakeMsg, StakingState, Validator};
use crate::types::{StoredReceipt, EMPTY_CODE_HASH};
use alloy_primitives::{Address, Bloom, Bytes, B256, U256};
use libmdbx::TransactionKind;

pub use crate::staking::params::{CREATE_VALIDATOR_GAS, STAKING_TX_GAS};

/// What the staking part of a block did.
#[derive(Debug, Clone, Default)]
pub struct StakingExecution {
    /// Included staking transactions, in block order.
    pub txs: Vec<SignedStakingTx>,
    pub receipts: Vec<StoredReceipt>,
    /// Validator records this block wrote.
    pub changed: Vec<Validator>,
    /// The staking root after the block.
    pub root: B256,
    /// The next committee (RLP), at an epoch's last block.
    pub committee: Bytes,
    pub gas_used: u64,
    /// Left out (leader mode), with the reason.
    pub rejected: Vec<(B256, String)>,
}

/// The intrinsic gas of a staking message carried in `raw`: its base plus the data gas.
pub fn intrinsic_gas(msg: &StakeMsg, raw: &[u8]) -> u64 {
    let base = match msg {
        StakeMsg::CreateValidator(_) => CREATE_VALIDATOR_GAS,
        _ => STAKING_TX_GAS,
    };
    base + crate::staking::params::data_gas(raw)
}

fn message_gas(tx: &SignedStakingTx) -> u64 {
    intrinsic_gas(&tx.tx.msg, &tx.raw)
}

/// Balances and nonces seen through the block's pending changes over the stored state.
struct Pending<'a, 'r, K: TransactionKind> {
    reader: &'a StateReader<'r, K>,
    changes: &'a mut StateChanges,
}

impl<K: TransactionKind> Pending<'_, '_, K> {
    fn info(&self, a: Address) -> AccountInfoLite {
        match self.changes.accounts.get(&a) {
            Some(Some(i)) => *i,
            Some(None) => empty(),
            None => match self.reader.account(a) {
                Ok(Some(s)) => AccountInfoLite {
                    nonce: s.nonce,
                    balance: s.balance,
                    code_hash: s.code_hash,
                },
                // A read error counts as empty: the block then fails on its state root
                // at worst, never on a guess that could pass.
                _ => empty(),
            },
        }
    }

    fn set(&mut self, a: Address, info: AccountInfoLite) {
        let is_empty =
            info.nonce == 0 && info.balance.is_zero() && info.code_hash == EMPTY_CODE_HASH;
        self.changes
            .accounts
            .insert(a, if is_empty { None } else { Some(info) });
    }
}

fn empty() -> AccountInfoLite {
    AccountInfoLite {
        nonce: 0,
        balance: U256::ZERO,
        code_hash: EMPTY_CODE_HASH,
    }
}

impl<K: TransactionKind> Balances for Pending<'_, '_, K> {
    fn balance(&self, address: Address) -> U256 {
        self.info(address).balance
    }
    fn set_balance(&mut self, address: Address, balance: U256) {
        let mut i = self.info(address);
        i.balance = balance;
        self.set(address, i);
    }
}

/// Why a staking transaction cannot be included.
fn check_and_charge<K: TransactionKind>(
    p: &mut Pending<'_, '_, K>,
    cfg: &ExecConfig,
    inputs: &BlockInputs,
    tx: &SignedStakingTx,
    gas: u64,
) -> Result<(), String> {
    let info = p.info(tx.sender);
    if tx.tx.nonce != info.nonce {
        return Err(format!(
            "nonce {} is not the sender's next nonce {}",
            tx.tx.nonce, info.nonce
        ));
    }
    if tx.tx.gas_limit < gas {
        return Err(format!(
            "gas limit {} is below the intrinsic gas {gas}",
            tx.tx.gas_limit
        ));
    }
    if tx.tx.gas_price < u128::from(inputs.base_fee) {
        return Err(format!(
            "gas price {} is below the base fee {}",
            tx.tx.gas_price, inputs.base_fee
        ));
    }
    let fee = U256::from(gas) * U256::from(tx.tx.gas_price);
    if fee > info.balance {
        return Err(format!(
            "insufficient funds for gas: {fee} wei needed, {} available",
            info.balance
        ));
    }
    p.set(
        tx.sender,
        AccountInfoLite {
            nonce: info.nonce + 1,
            balance: info.balance - fee,
            code_hash: info.code_hash,
        },
    );
    if cfg.leader_paid(inputs.epoch) {
        let tip = U256::from(gas) * U256::from(tx.tx.gas_price - u128::from(inputs.base_fee));
        let leader = p.balance(inputs.leader);
        p.set_balance(inputs.leader, leader + tip);
    }
    Ok(())
}

/// Whether block `number` is the last of its epoch.
pub fn is_epoch_end(number: u64, epoch_blocks: u64) -> bool {
    epoch_blocks > 0 && (number + 1).is_multiple_of(epoch_blocks)
}

/// Applies `txs` after the EVM part of a block (`changes`, `evm_gas` used so far;
/// `after_evm`, the staking state its precompile calls left, if any). In strict mode the
/// first staking transaction that cannot be included fails the block:
/// `Err((index, hash, reason))`.
#[allow(clippy::too_many_arguments)]
pub fn apply<K: TransactionKind>(
    reader: &StateReader<'_, K>,
    tx: &crate::db::Tx<'_, K>,
    cfg: &ExecConfig,
    inputs: &BlockInputs,
    changes: &mut StateChanges,
    evm_gas: u64,
    txs: Vec<SignedStakingTx>,
    after_evm: Option<StakingState>,
    strict: bool,
) -> Result<StakingExecution, (usize, B256, String)> {
    let mut out = StakingExecution {
        root: inputs.parent_staking_root,
        ..Default::default()
    };
    let epoch_end = is_epoch_end(inputs.number, cfg.epoch_blocks);
    if txs.is_empty() && !epoch_end && after_evm.is_none() {
        return Ok(out);
    }
    let db_err = |e: DbError| (0, B256::ZERO, e.to_string());
    let before = crate::db::staking::load(tx).map_err(db_err)?;
    let mut staking: StakingState = after_evm.unwrap_or_else(|| before.clone());
    let mut p = Pending { reader, changes };
    for (index, t) in txs.into_iter().enumerate() {
        let gas = message_gas(&t);
        let left = inputs.gas_limit - evm_gas - out.gas_used;
        let (snapshot_changes, snapshot_staking) = (p.changes.clone(), staking.clone());
        let result = if gas > left {
            Err(format!("block gas: {gas} needed, {left} left"))
        } else {
            check_and_charge(&mut p, cfg, inputs, &t, gas).and_then(|()| {
                staking
                    .apply(&cfg.staking, inputs.epoch, t.sender, &t.tx.msg, &mut p)
                    .map_err(|e| e.to_string())
            })
        };
        if let Err(reason) = result {
            *p.changes = snapshot_changes;
            staking = snapshot_staking;
            if strict {
                return Err((index, t.hash, reason));
            }
            out.rejected.push((t.hash, reason));
            continue;
        }
        out.gas_used += gas;
        out.receipts.push(StoredReceipt {
            tx_hash: t.hash,
            tx_type: 0,
            success: true,
            cumulative_gas_used: evm_gas + out.gas_used,
            gas_used: gas,
            effective_gas_price: t.tx.gas_price,
            from: t.sender,
            to: staking_target(&t.tx.msg),
            create: false,
            contract_address: Address::ZERO,
            logs_bloom: Bloom::ZERO,
            logs: Vec::new(),
        });
        out.txs.push(t);
    }
    if epoch_end {
        staking.end_epoch(&cfg.staking, inputs.epoch, &mut p);
        let election = elect(&staking, &cfg.staking);
        out.committee = alloy_rlp::encode(&election.slots).into();
    }
    out.changed = crate::db::staking::changed(&before, &staking);
    if !out.changed.is_empty() {
        out.root = crate::db::staking::root(&staking);
    }
    Ok(out)
}

/// The account a staking receipt names as `to`: the validator acted on.
fn staking_target(msg: &StakeMsg) -> Address {
    match msg {
        StakeMsg::CreateValidator(m) => m.validator_address,
        StakeMsg::EditValidator(m) => m.validator_address,
        StakeMsg::Delegate(m) => m.validator_address,
        StakeMsg::Undelegate(m) => m.validator_address,
        StakeMsg::CollectRewards(m) => m.delegator_address,
    }
}
