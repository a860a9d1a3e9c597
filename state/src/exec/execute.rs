//! Executing transactions with revm at the Prague spec, and fee handling.

use super::precompile::{HarmonyPrecompiles, StakingCalls, STAKING_PRECOMPILE};
use super::state_db::PendingState;
use crate::block::GAS_LIMIT;
use crate::changes::StateChanges;
use crate::tx::{CallRequest, SignedTx};
use crate::types::StoredReceipt;
use alloy_consensus::Transaction;
use alloy_primitives::{Address, Bloom, Bytes, B256, U256};
use revm::context::result::{EVMError, ExecutionResult, InvalidTransaction};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::context_interface::block::BlobExcessGasAndPrice;
use revm::database_interface::DatabaseRef;
use revm::handler::{MainBuilder, MainContext, MainnetContext};
use revm::primitives::hardfork::SpecId;
use revm::{ExecuteCommitEvm, ExecuteEvm};
use std::collections::HashSet;

/// The EVM specification this chain executes.
pub const SPEC: SpecId = SpecId::PRAGUE;

/// Chain-wide execution settings, from the chain spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    pub chain_id: u64,
    pub shard: u32,
    /// From this epoch on, priority fees are paid to the block's leader; before it (and when
    /// `None`) the whole fee is burnt.
    pub priority_fee_to_leader_from: Option<u64>,
    /// From this epoch on, headers are version 2 (the `header_v2` fork).
    pub header_v2_from: Option<u64>,
    /// From this epoch on, staking transactions and elections run (the `staking` fork).
    pub staking_from: Option<u64>,
    pub epoch_blocks: u64,
    pub staking: crate::staking::StakingParams,
    /// From this epoch on, certified blocks pay rewards and count signatures (`rewards`).
    pub rewards_from: Option<u64>,
    /// From this epoch on, base fees go to the fee collectors (`fee_split`).
    pub fee_split_from: Option<u64>,
    /// From this epoch on, HIP-30's minimum commission and emission split apply (`hip30`).
    pub hip30_from: Option<u64>,
    /// Block 0's timestamp: issuance years count from it.
    pub genesis_timestamp_ms: u64,
    /// From this epoch on, each epoch's last block carries its VDF proof (`vdf`).
    pub vdf_from: Option<u64>,
    pub vdf: crate::spec::VdfParams,
    pub economics: std::sync::Arc<crate::staking::EconomicsParams>,
    /// The chain spec's BLS keys in committee order: the internal seats of every committee.
    pub internal_keys: std::sync::Arc<[crate::staking::BlsKey]>,
}

impl ExecConfig {
    /// Whether staking transactions and elections run in `epoch`.
    pub fn staking_active(&self, epoch: u64) -> bool {
        self.staking_from.is_some_and(|from| epoch >= from)
    }

    /// The header version of blocks in `epoch`.
    pub fn header_version(&self, epoch: u64) -> u8 {
        if self.header_v2_from.is_some_and(|from| epoch >= from) {
            2
        } else {
            crate::block::HEADER_VERSION
        }
    }

    pub fn rewards_active(&self, epoch: u64) -> bool {
        self.rewards_from.is_some_and(|from| epoch >= from)
    }

    pub fn vdf_active(&self, epoch: u64) -> bool {
        self.vdf_from.is_some_and(|from| epoch >= from)
    }

    pub fn fee_split_active(&self, epoch: u64) -> bool {
        self.fee_split_from.is_some_and(|from| epoch >= from)
    }

    pub fn hip30_active(&self, epoch: u64) -> bool {
        self.hip30_from.is_some_and(|from| epoch >= from)
    }

    /// The staking rules of `epoch`: the configured ones, with HIP-30's minimum commission
    /// once its fork is active.
    pub fn staking_params(&self, epoch: u64) -> crate::staking::StakingParams {
        let mut p = self.staking;
        if self.hip30_active(epoch) {
            p.min_commission_rate = p
                .min_commission_rate
                .max(self.economics.hip30_min_commission);
        }
        p
    }

    pub(crate) fn leader_paid(&self, epoch: u64) -> bool {
        self.priority_fee_to_leader_from
            .is_some_and(|from| epoch >= from)
    }
}

/// What a block's execution depends on besides its transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInputs {
    pub number: u64,
    pub epoch: u64,
    pub timestamp_ms: u64,
    pub base_fee: u64,
    pub gas_limit: u64,
    pub leader: Address,
    /// PREVRANDAO (the parent hash until the VRF is enabled).
    pub prevrandao: B256,
    /// The parent's staking root (kept by a block that does not change the staking state).
    pub parent_staking_root: B256,
    /// The signer bitmap of the parent's commit certificate, which this block carries (empty
    /// without one): who earns this block's reward.
    pub last_commit_bitmap: alloy_primitives::Bytes,
    /// The header's `vdf` field (the epoch's proof on its last block under the `vdf` fork).
    pub vdf: alloy_primitives::Bytes,
}

impl BlockInputs {
    fn block_env(&self, cfg: &ExecConfig) -> BlockEnv {
        BlockEnv {
            number: U256::from(self.number),
            beneficiary: if cfg.leader_paid(self.epoch) {
                self.leader
            } else {
                Address::ZERO
            },
            // Header timestamps are milliseconds; the EVM's TIMESTAMP is seconds.
            timestamp: U256::from(self.timestamp_ms / 1000),
            gas_limit: self.gas_limit,
            basefee: self.base_fee,
            difficulty: U256::ZERO,
            prevrandao: Some(self.prevrandao),
            blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new_with_spec(0, SPEC)),
            ..Default::default()
        }
    }
}

type Ctx<D> = MainnetContext<PendingState<D>>;
type Evm<'a, D> = revm::context::Evm<
    Ctx<D>,
    (),
    revm::handler::instructions::EthInstructions<
        revm::interpreter::interpreter::EthInterpreter,
        Ctx<D>,
    >,
    HarmonyPrecompiles<'a>,
    revm::handler::EthFrame<revm::interpreter::interpreter::EthInterpreter>,
>;

fn new_evm<'a, D: DatabaseRef>(
    state: PendingState<D>,
    c: CfgEnv,
    block: BlockEnv,
    staking: Option<StakingCalls<'a>>,
) -> Evm<'a, D> {
    Context::mainnet()
        .with_cfg(c)
        .with_block(block)
        .with_db(state)
        .build_mainnet()
        .with_precompiles(HarmonyPrecompiles::new(SPEC, staking))
}

fn cfg_env(cfg: &ExecConfig) -> CfgEnv {
    let mut c = CfgEnv::new_with_spec(SPEC);
    c.chain_id = cfg.chain_id;
    c
}

/// Why one transaction could not be included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxRejection {
    #[error("exceeds block gas limit: gas {gas} with {left} left in the block")]
    BlockGas { gas: u64, left: u64 },
    /// An earlier nonce of the same sender was left out of this block for gas, so this one
    /// cannot run here either (it stays pooled for a later block).
    #[error("an earlier nonce of this sender did not fit the block's gas")]
    AfterBlockGas,
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Db(String),
}

/// Maps revm's validation errors to the messages Ethereum clients return.
pub fn describe_invalid(e: &InvalidTransaction) -> String {
    match e {
        InvalidTransaction::NonceTooLow { tx, state } => {
            format!("nonce too low: next nonce {state}, tx nonce {tx}")
        }
        InvalidTransaction::NonceTooHigh { tx, state } => {
            format!("nonce too high: next nonce {state}, tx nonce {tx}")
        }
        InvalidTransaction::LackOfFundForMaxFee { fee, balance } => {
            format!("insufficient funds for gas * price + value: balance {balance}, tx cost {fee}")
        }
        InvalidTransaction::CallGasCostMoreThanGasLimit {
            initial_gas,
            gas_limit,
        } => format!("intrinsic gas too low: gas {gas_limit}, minimum needed {initial_gas}"),
        InvalidTransaction::GasFloorMoreThanGasLimit {
            gas_floor,
            gas_limit,
        } => format!("intrinsic gas too low: gas {gas_limit}, minimum needed {gas_floor}"),
        InvalidTransaction::GasPriceLessThanBasefee => {
            "max fee per gas less than block base fee".into()
        }
        other => other.to_string(),
    }
}

/// The result of executing a list of transactions on top of a state.
#[derive(Debug, Clone, Default)]
pub struct Execution {
    pub changes: StateChanges,
    pub txs: Vec<SignedTx>,
    pub receipts: Vec<StoredReceipt>,
    pub gas_used: u64,
    /// Transactions left out (leader mode only), with the reason.
    pub rejected: Vec<(B256, TxRejection)>,
    /// The staking state after the block's staking precompile calls; None when none came.
    pub staking_state: Option<crate::staking::StakingState>,
}

/// Executes `txs` in order on `base`. In strict mode (validating someone else's block) the
/// first transaction that cannot be included fails the whole block; otherwise (the leader
/// building from its mempool) it is left out and reported in [`Execution::rejected`].
/// `staking` (under the staking fork) serves the staking precompile.
pub fn execute<D: DatabaseRef>(
    base: D,
    cfg: &ExecConfig,
    inputs: &BlockInputs,
    txs: impl IntoIterator<Item = SignedTx>,
    strict: bool,
    staking: Option<StakingCalls<'_>>,
) -> Result<Execution, (usize, B256, TxRejection)>
where
    D::Error: std::fmt::Display,
{
    let block_env = inputs.block_env(cfg);
    let beneficiary = block_env.beneficiary;
    let burn_tips = !cfg.leader_paid(inputs.epoch);
    let mut evm = new_evm(PendingState::new(base), cfg_env(cfg), block_env, staking);
    let mut out = Execution::default();
    // Senders with a transaction left out for gas: their later nonces cannot run after it.
    let mut gas_blocked: HashSet<Address> = HashSet::new();
    for (index, tx) in txs.into_iter().enumerate() {
        let left = inputs.gas_limit - out.gas_used;
        let reject = |r: TxRejection| (index, tx.hash, r);
        if !strict && gas_blocked.contains(&tx.sender) {
            out.rejected.push((tx.hash, TxRejection::AfterBlockGas));
            continue;
        }
        // What fits is decided on the gas actually used so far, as Ethereum clients do: a
        // transaction needs its whole limit free, and returns what it does not use.
        if tx.gas_limit() > left {
            let r = TxRejection::BlockGas {
                gas: tx.gas_limit(),
                left,
            };
            if strict {
                return Err(reject(r));
            }
            gas_blocked.insert(tx.sender);
            out.rejected.push((tx.hash, r));
            continue;
        }
        let result = match evm.transact(tx.tx_env()) {
            Ok(r) => r,
            Err(e) => {
                let r = match e {
                    EVMError::Transaction(t) => TxRejection::Invalid(describe_invalid(&t)),
                    EVMError::Database(d) => TxRejection::Db(d.to_string()),
                    other => TxRejection::Invalid(other.to_string()),
                };
                if strict || matches!(r, TxRejection::Db(_)) {
                    return Err(reject(r));
                }
                out.rejected.push((tx.hash, r));
                continue;
            }
        };
        let (result, state) = (result.result, result.state);
        evm.commit(state);
        if result.is_success() {
            if let Some(calls) = evm.precompiles.staking.as_mut() {
                // The staking calls of a successful transaction take effect; their escrow
                // is burnt (the stake now lives in the staking state).
                let escrow = calls
                    .commit_logs(result.logs())
                    .map_err(|e| reject(TxRejection::Db(e)))?;
                evm.ctx
                    .journaled_state
                    .database
                    .debit(STAKING_PRECOMPILE, escrow)
                    .map_err(|e| reject(TxRejection::Db(e.to_string())))?;
            }
        }
        let gas_used = result.tx_gas_used();
        let price = tx.envelope.effective_gas_price(Some(inputs.base_fee));
        if burn_tips {
            let tip = price.saturating_sub(inputs.base_fee as u128);
            let reward = U256::from(tip) * U256::from(gas_used);
            evm.ctx
                .journaled_state
                .database
                .debit(beneficiary, reward)
                .map_err(|e| reject(TxRejection::Db(e.to_string())))?;
        }
        out.gas_used += gas_used;
        out.receipts
            .push(receipt(&tx, &result, gas_used, out.gas_used, price));
        out.txs.push(tx);
    }
    out.staking_state = evm.precompiles.staking.take().and_then(|s| s.into_state());
    out.changes = evm.ctx.journaled_state.database.into_changes();
    Ok(out)
}

fn receipt(
    tx: &SignedTx,
    result: &ExecutionResult,
    gas_used: u64,
    cumulative: u64,
    price: u128,
) -> StoredReceipt {
    let logs = result.logs().to_vec();
    let mut bloom = Bloom::ZERO;
    for log in &logs {
        bloom.accrue_log(log);
    }
    StoredReceipt {
        tx_hash: tx.hash,
        tx_type: tx.tx_type(),
        success: result.is_success(),
        cumulative_gas_used: cumulative,
        gas_used,
        effective_gas_price: price,
        from: tx.sender,
        to: tx.to().unwrap_or_default(),
        create: tx.to().is_none(),
        contract_address: match tx.to() {
            None => tx.sender.create(tx.nonce()),
            Some(_) => Address::ZERO,
        },
        logs_bloom: bloom,
        logs,
    }
}

/// What `eth_call` returns: output, gas used, and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    Success { output: Bytes, gas_used: u64 },
    Revert { output: Bytes, gas_used: u64 },
    Halt { reason: String, gas_used: u64 },
}

/// Runs a call against `base` without keeping its effects (eth_call, eth_estimateGas). The
/// nonce check is off, as in Ethereum clients; value transfers still need funds.
pub fn call<D: DatabaseRef>(
    base: D,
    cfg: &ExecConfig,
    inputs: &BlockInputs,
    req: &CallRequest,
    gas: u64,
    staking: Option<StakingCalls<'_>>,
) -> Result<CallOutcome, String>
where
    D::Error: std::fmt::Display,
{
    let mut c = cfg_env(cfg);
    c.disable_nonce_check = true;
    // Calls may claim any `from`, contracts included (as geth allows).
    c.disable_eip3607 = true;
    // A call without a gas price runs at base fee zero (as geth does), so it needs no funds
    // for gas.
    let mut inputs = inputs.clone();
    if req.gas_price.unwrap_or(0) == 0 {
        inputs.base_fee = 0;
    }
    let mut evm = new_evm(PendingState::new(base), c, inputs.block_env(cfg), staking);
    let env: TxEnv = req.tx_env(gas.min(GAS_LIMIT), cfg.chain_id);
    let r = evm.transact(env).map_err(|e| match e {
        EVMError::Transaction(t) => describe_invalid(&t),
        other => other.to_string(),
    })?;
    let gas_used = r.result.tx_gas_used();
    Ok(match r.result {
        ExecutionResult::Success { output, .. } => CallOutcome::Success {
            output: output.into_data(),
            gas_used,
        },
        ExecutionResult::Revert { output, .. } => CallOutcome::Revert { output, gas_used },
        ExecutionResult::Halt { reason, .. } => CallOutcome::Halt {
            reason: format!("{reason:?}"),
            gas_used,
        },
    })
}
