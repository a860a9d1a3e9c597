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
//! Under the `rewards` fork, every block then pays the reward of the certificate it carries
//! (its parent's) and counts who signed (`staking::rewards`).
//!
//! Double-sign evidence in the header's `slashes` is checked and applied after the staking
//! transactions (`staking::slash`).
//!
//! At an epoch's last block, the availability check makes under-signing validators Inactive,
//! HIP-30 raises low commissions (from its fork), matured undelegations are paid out and the
//! next committee is elected; the header carries it (`committee`).

use super::execute::{BlockInputs, ExecConfig};
use super::state_db::StateReader;
use crate::bitmap::Bitmap;
use crate::changes::{AccountInfoLite, StateChanges};
use crate::db::DbError;
use crate::staking::rewards;
use crate::staking::{
    elect, Balances, DoubleSign, Elected, Issuance, Payout, Seat, SignedStakingTx, SlashError,
    Slashed, StakeMsg, StakingState, Validator,
};
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
    /// The reward this block paid for its parent's certificate.
    pub payout: Payout,
    /// Validators the availability check at this election block made Inactive.
    pub made_inactive: Vec<Address>,
    /// The issuance record, when this block changed it.
    pub issuance: Option<Issuance>,
    /// Double-sign evidence applied, in header order, and what each took.
    pub slashes: Vec<DoubleSign>,
    pub slashed: Vec<Slashed>,
    /// Evidence left out (leader mode), with the reason.
    pub rejected_slashes: Vec<(DoubleSign, String)>,
}

/// Why a block's staking part cannot be applied (validator mode), or the store failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Tx {
        index: usize,
        hash: B256,
        reason: String,
    },
    Slash {
        index: usize,
        reason: String,
    },
    Db(String),
}

/// Whether `e` may be applied by block `inputs.number`: [`evidence_offender`], and that
/// offender not banned yet (by an earlier block, or by earlier evidence in this one).
fn check_evidence<K: TransactionKind>(
    tx: &crate::db::Tx<'_, K>,
    cfg: &ExecConfig,
    inputs: &BlockInputs,
    staking: &StakingState,
    e: &DoubleSign,
) -> Result<Address, Refused> {
    let refused = |reason: String| Refused::Slash { index: 0, reason };
    let offender = match evidence_offender(tx, cfg, inputs.number, e) {
        Ok(o) => o,
        Err(EvidenceError::Store(e)) => return Err(Refused::Db(e.to_string())),
        Err(EvidenceError::Refused(e)) => return Err(refused(e.to_string())),
    };
    staking
        .check_not_banned(offender)
        .map_err(|e| refused(e.to_string()))?;
    Ok(offender)
}

/// Why evidence does not hold: a rule, or this node's store.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Refused(#[from] SlashError),
    #[error(transparent)]
    Store(#[from] DbError),
}

/// The validator `e` convicts, for a block `number` that would carry it: the offence is
/// before that block, both signatures verify, and every key was elected for one validator in
/// the committee of the offence's height (read from stored headers). What a node checks before
/// pooling evidence, and execution before applying it.
pub fn evidence_offender<K: TransactionKind>(
    tx: &crate::db::Tx<'_, K>,
    cfg: &ExecConfig,
    number: u64,
    e: &DoubleSign,
) -> Result<Address, EvidenceError> {
    if e.number >= number {
        return Err(SlashError::NotPast {
            number: e.number,
            now: number,
        }
        .into());
    }
    e.check_signatures(cfg.chain_id, cfg.shard)?;
    let epoch = e.number / cfg.epoch_blocks.max(1);
    let elected = elected_for(tx, cfg, epoch)?;
    Ok(crate::staking::slash::offender_in(
        &elected.slots,
        &e.keys,
        e.number,
    )?)
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

/// From the `fee_split` fork: pays each fee collector its share of the block's base fees
/// (`base_fee × gas`, which execution burnt). Returns what was paid; the rest stays burnt.
pub fn pay_fee_collectors<K: TransactionKind>(
    reader: &StateReader<'_, K>,
    changes: &mut StateChanges,
    cfg: &ExecConfig,
    inputs: &BlockInputs,
    gas: u64,
) -> U256 {
    let fees = U256::from(inputs.base_fee) * U256::from(gas);
    let mut p = Pending { reader, changes };
    let mut paid = U256::ZERO;
    for c in &cfg.economics.fee_collectors {
        let share = c.share.mul_amount(fees);
        if !share.is_zero() {
            p.set_balance(c.address, p.balance(c.address) + share);
            paid += share;
        }
    }
    paid
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
    slashes: Vec<DoubleSign>,
    after_evm: Option<StakingState>,
    strict: bool,
) -> Result<StakingExecution, Refused> {
    let mut out = StakingExecution {
        root: inputs.parent_staking_root,
        ..Default::default()
    };
    let epoch_end = is_epoch_end(inputs.number, cfg.epoch_blocks);
    let db_err = |e: DbError| Refused::Db(e.to_string());
    // The committee behind the certificate this block carries, when it has elected seats
    // (internal ones neither earn nor count).
    let certified = if cfg.rewards_active(inputs.epoch) && !inputs.last_commit_bitmap.is_empty() {
        let seats = parent_seats(tx, cfg, inputs.number).map_err(db_err)?;
        seats.iter().any(|s| s.validator.is_some()).then_some(seats)
    } else {
        None
    };
    if txs.is_empty()
        && slashes.is_empty()
        && !epoch_end
        && after_evm.is_none()
        && certified.is_none()
    {
        return Ok(out);
    }
    let params = cfg.staking_params(inputs.epoch);
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
                    .apply(&params, inputs.epoch, t.sender, &t.tx.msg, &mut p)
                    .map_err(|e| e.to_string())
            })
        };
        if let Err(reason) = result {
            *p.changes = snapshot_changes;
            staking = snapshot_staking;
            if strict {
                return Err(Refused::Tx {
                    index,
                    hash: t.hash,
                    reason,
                });
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
    for (index, evidence) in slashes.into_iter().enumerate() {
        match check_evidence(tx, cfg, inputs, &staking, &evidence) {
            Err(Refused::Db(e)) => return Err(Refused::Db(e)),
            Ok(offender) => {
                let offence_epoch = evidence.number / cfg.epoch_blocks.max(1);
                let rates = cfg.economics.slash_rates();
                let slashed =
                    staking.slash(offender, offence_epoch, evidence.reporter, rates, &mut p);
                out.slashed.push(slashed);
                out.slashes.push(evidence);
            }
            Err(Refused::Slash { reason, .. } | Refused::Tx { reason, .. }) if strict => {
                return Err(Refused::Slash { index, reason })
            }
            Err(Refused::Slash { reason, .. } | Refused::Tx { reason, .. }) => {
                out.rejected_slashes.push((evidence, reason))
            }
        }
    }
    if let Some(seats) = certified {
        let signed = Bitmap::from_bytes(&inputs.last_commit_bitmap, seats.len());
        // Consensus checked the certificate against this committee; a bitmap that does not
        // fit it cannot come with a valid block, and pays nobody.
        let signed = signed.unwrap_or_default();
        let reward = rewards::block_reward(
            &cfg.economics,
            cfg.hip30_active(inputs.epoch),
            cfg.genesis_timestamp_ms,
            inputs.timestamp_ms,
        );
        // The parent ended the previous epoch: its signers were counted there (or not at all).
        let eb = cfg.epoch_blocks.max(1);
        let count = (inputs.number - 1) / eb == inputs.number / eb;
        out.payout = staking.reward_block(&seats, &signed, count, reward, &mut p);
    }
    if epoch_end {
        if cfg.rewards_active(inputs.epoch) {
            out.made_inactive = staking.close_epoch_signing(cfg.economics.min_signing_rate);
        }
        if cfg.hip30_active(inputs.epoch) {
            staking.raise_commissions(params.min_commission_rate);
        }
        staking.end_epoch(&params, inputs.epoch, &mut p);
        let election = elect(&staking, &params);
        out.committee = alloy_rlp::encode(&election.slots).into();
    }
    if staking.issuance() != before.issuance() {
        out.issuance = Some(staking.issuance());
    }
    out.changed = crate::db::staking::changed(&before, &staking);
    if !out.changed.is_empty() || out.issuance.is_some() {
        out.root = crate::db::staking::root(&staking);
    }
    Ok(out)
}

/// The seats of the committee that signed block `number − 1`: the internal keys, then the
/// validators elected at the end of the epoch before that block's (none before staking).
pub fn parent_seats<K: TransactionKind>(
    tx: &crate::db::Tx<'_, K>,
    cfg: &ExecConfig,
    number: u64,
) -> Result<Vec<Seat>, DbError> {
    let epoch = number.saturating_sub(1) / cfg.epoch_blocks.max(1);
    Ok(elected_for(tx, cfg, epoch)?.seats(&cfg.internal_keys))
}

/// What was elected for `epoch`: from the previous epoch's last header (nothing before the
/// first election).
pub fn elected_for<K: TransactionKind>(
    tx: &crate::db::Tx<'_, K>,
    cfg: &ExecConfig,
    epoch: u64,
) -> Result<Elected, DbError> {
    if epoch == 0 || !cfg.staking_active(epoch - 1) {
        return Ok(Elected::default());
    }
    let last = epoch * cfg.epoch_blocks - 1;
    let corrupt = |reason: String| DbError::Corrupt {
        table: "Headers",
        key: last.to_string(),
        reason,
    };
    let header = tx
        .get::<crate::db::Headers>(&last)?
        .ok_or_else(|| corrupt("the election block of the epoch is not stored".into()))?;
    Elected::of(&header).map_err(|e| corrupt(format!("the elected committee does not decode: {e}")))
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
