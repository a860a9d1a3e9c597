//! The staking precompile at `0xfc` (Harmony's `core/vm/contracts_write.go`): `Delegate`,
//! `Undelegate` and `CollectRewards` from the EVM, so a wallet or a contract stakes with an
//! ordinary transaction. Active from the `staking` fork, on top of Ethereum's precompiles.
//!
//! A call is checked against the staking state as the transaction sees it (the block's state
//! so far plus this transaction's earlier calls), under the same rules as a staking
//! transaction, and only for the caller itself (`delegatorAddress` must be `msg.sender`). A
//! refused call reverts with the rule's message (`Error(string)`). Gas: 21,000 plus 16 per
//! non-zero and 4 per zero byte of the input, as a staking transaction's message.
//!
//! Revert safety: the call itself never touches the staking state. It moves balances
//! through the EVM journal (stake into the precompile's account as escrow, rewards to the
//! caller) and emits a log (`topic0` = keccak of the function signature, `topic1` = the
//! caller, data = the arguments). A revert anywhere above it undoes both, as for any
//! contract. Once the transaction succeeded, its logs from `0xfc` are applied to the block's
//! staking state in order ([`StakingCalls::commit_logs`]) and the escrow is burnt: the stake
//! now lives in the staking state, as with a Delegate staking transaction.

use crate::staking::{msg, StakeMsg, StakingParams, StakingState};
use alloy_primitives::{address, Address, Bytes, Log, LogData, B256, U256};
use alloy_sol_types::{sol, Revert, SolCall, SolError};
use revm::context::Cfg;
use revm::context_interface::{ContextTr, JournalTr};
use revm::handler::{EthPrecompiles, PrecompileProvider};
use revm::interpreter::{CallInputs, CallScheme, Gas, InstructionResult, InterpreterResult};
use revm::primitives::{hardfork::SpecId, AddressSet};
use std::collections::BTreeMap;

/// Where the staking precompile lives (Harmony's address).
pub const STAKING_PRECOMPILE: Address = address!("00000000000000000000000000000000000000fc");

sol! {
    /// Stake `amount` wei of the caller's with a validator.
    function Delegate(address delegatorAddress, address validatorAddress, uint256 amount);
    /// Withdraw `amount` wei of stake (locked for the undelegation period, then paid out).
    function Undelegate(address delegatorAddress, address validatorAddress, uint256 amount);
    /// Pay the caller's accumulated rewards into its balance.
    function CollectRewards(address delegatorAddress);
}

/// The staking message a call's input asks for.
pub fn decode_call(input: &[u8]) -> Result<StakeMsg, String> {
    let selector: [u8; 4] = input
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or("input shorter than a function selector")?;
    let bad = |e: alloy_sol_types::Error| format!("malformed arguments: {e}");
    Ok(match selector {
        DelegateCall::SELECTOR => {
            let c = DelegateCall::abi_decode(input).map_err(bad)?;
            StakeMsg::Delegate(msg::Delegate {
                delegator_address: c.delegatorAddress,
                validator_address: c.validatorAddress,
                amount: c.amount,
            })
        }
        UndelegateCall::SELECTOR => {
            let c = UndelegateCall::abi_decode(input).map_err(bad)?;
            StakeMsg::Undelegate(msg::Undelegate {
                delegator_address: c.delegatorAddress,
                validator_address: c.validatorAddress,
                amount: c.amount,
            })
        }
        CollectRewardsCall::SELECTOR => {
            let c = CollectRewardsCall::abi_decode(input).map_err(bad)?;
            StakeMsg::CollectRewards(msg::CollectRewards {
                delegator_address: c.delegatorAddress,
            })
        }
        other => {
            return Err(format!(
                "unknown function selector 0x{}: the staking precompile takes \
                 Delegate(address,address,uint256), Undelegate(address,address,uint256) and \
                 CollectRewards(address)",
                hex::encode(other)
            ))
        }
    })
}

/// The topic a call's log carries: keccak of its function signature.
fn topic_of(selector: [u8; 4]) -> B256 {
    let signature = match selector {
        DelegateCall::SELECTOR => DelegateCall::SIGNATURE,
        UndelegateCall::SELECTOR => UndelegateCall::SIGNATURE,
        _ => CollectRewardsCall::SIGNATURE,
    };
    alloy_primitives::keccak256(signature)
}

/// Gas of a call with `input`: a staking message's (base and data gas).
pub fn call_gas(input: &[u8]) -> u64 {
    crate::staking::params::STAKING_TX_GAS + crate::staking::params::data_gas(input)
}

/// The staking state the precompile works on during one block's (or one call's) execution.
pub struct StakingCalls<'a> {
    params: StakingParams,
    epoch: u64,
    load: Box<dyn FnMut() -> Result<StakingState, String> + 'a>,
    /// The block's state after the calls of its successful transactions (loaded on first use).
    state: Option<StakingState>,
}

impl<'a> StakingCalls<'a> {
    /// Calls at `epoch`; `load` reads the staking state at the block's start (only if a call
    /// comes).
    pub fn new(
        params: StakingParams,
        epoch: u64,
        load: impl FnMut() -> Result<StakingState, String> + 'a,
    ) -> Self {
        Self {
            params,
            epoch,
            load: Box::new(load),
            state: None,
        }
    }

    fn state(&mut self) -> Result<&mut StakingState, String> {
        if self.state.is_none() {
            self.state = Some((self.load)()?);
        }
        Ok(self.state.as_mut().expect("loaded above"))
    }

    /// Applies one call's log to `state`; returns the wei it moved into escrow.
    fn replay(&self, state: &mut StakingState, log: &Log) -> Result<U256, String> {
        let (Some(topic), Some(caller)) = (log.topics().first(), log.topics().get(1)) else {
            return Err("staking log without its topics".into());
        };
        let mut input = topic[..4].to_vec();
        input.extend_from_slice(&log.data.data);
        let m = decode_call(&input)?;
        let caller = Address::from_word(*caller);
        // Balances already moved in the EVM; this only measures the escrow.
        let plenty = U256::MAX >> 1;
        let mut balances = BTreeMap::from([(caller, plenty)]);
        state
            .apply(&self.params, self.epoch, caller, &m, &mut balances)
            .map_err(|e| format!("a staking call that passed failed on replay: {e}"))?;
        Ok(plenty.saturating_sub(balances[&caller]))
    }

    /// After a successful transaction: applies its calls (its logs from `0xfc`, in order) to
    /// the block's staking state and returns the escrow to burn.
    pub fn commit_logs(&mut self, logs: &[Log]) -> Result<U256, String> {
        let calls: Vec<&Log> = logs
            .iter()
            .filter(|l| l.address == STAKING_PRECOMPILE)
            .collect();
        if calls.is_empty() {
            return Ok(U256::ZERO);
        }
        let mut state = std::mem::take(self.state()?);
        let mut escrow = U256::ZERO;
        let result = calls.iter().try_for_each(|l| {
            escrow += self.replay(&mut state, l)?;
            Ok::<_, String>(())
        });
        self.state = Some(state);
        result.map(|()| escrow)
    }

    /// The block's staking state after its calls; None when no call came.
    pub fn into_state(self) -> Option<StakingState> {
        self.state
    }

    /// Runs one call: checks, the view of the staking state, balances through the journal,
    /// the log. `Err` only for a failure of this node (its database), never of the call.
    fn run<CTX: ContextTr>(
        &mut self,
        context: &mut CTX,
        inputs: &CallInputs,
    ) -> Result<InterpreterResult, String> {
        let input = inputs.input.as_bytes(context).to_vec();
        let mut gas = Gas::new(inputs.gas_limit);
        if !gas.record_regular_cost(call_gas(&input)) {
            gas.spend_all();
            return Ok(InterpreterResult::new(
                InstructionResult::PrecompileOOG,
                Bytes::new(),
                gas,
            ));
        }
        let revert = |reason: String, gas: Gas| {
            let output = Revert::from(format!("staking precompile: {reason}")).abi_encode();
            Ok(InterpreterResult::new(
                InstructionResult::Revert,
                output.into(),
                gas,
            ))
        };
        if inputs.is_static {
            return revert(
                "it changes state; not callable from a static call".into(),
                gas,
            );
        }
        if inputs.scheme != CallScheme::Call || inputs.target_address != STAKING_PRECOMPILE {
            return revert(
                "call it directly (CALL), not through DELEGATECALL or CALLCODE".into(),
                gas,
            );
        }
        if !inputs.value.get().is_zero() {
            return revert(
                "it takes no value; the amount is an argument, paid from the caller's balance"
                    .into(),
                gas,
            );
        }
        let m = match decode_call(&input) {
            Ok(m) => m,
            Err(e) => return revert(e, gas),
        };
        let caller = inputs.caller;
        if m.signer() != caller {
            return revert(
                format!(
                    "delegatorAddress {} is not the caller {caller}: an account or contract \
                     stakes only for itself",
                    m.signer()
                ),
                gas,
            );
        }
        // The state this call sees: the block's so far and this transaction's earlier calls
        // (the journal holds the logs of the calls that were not reverted).
        let mut view = self.state()?.clone();
        let earlier: Vec<Log> = context
            .journal()
            .logs()
            .iter()
            .filter(|l| l.address == STAKING_PRECOMPILE)
            .cloned()
            .collect();
        for l in &earlier {
            self.replay(&mut view, l)?;
        }
        let before = context
            .journal_mut()
            .load_account(caller)
            .map_err(|e| e.to_string())?
            .info
            .balance;
        let mut balances = BTreeMap::from([(caller, before)]);
        if let Err(e) = view.apply(&self.params, self.epoch, caller, &m, &mut balances) {
            return revert(e.to_string(), gas);
        }
        let after = balances[&caller];
        let journal = context.journal_mut();
        if after < before {
            if let Some(e) = journal
                .transfer(caller, STAKING_PRECOMPILE, before - after)
                .map_err(|e| e.to_string())?
            {
                return revert(format!("moving the stake: {e:?}"), gas);
            }
        } else if after > before {
            journal
                .balance_incr(caller, after - before)
                .map_err(|e| e.to_string())?;
        }
        let selector: [u8; 4] = input[..4].try_into().expect("decoded above");
        journal.log(Log {
            address: STAKING_PRECOMPILE,
            data: LogData::new_unchecked(
                vec![topic_of(selector), caller.into_word()],
                Bytes::copy_from_slice(&input[4..]),
            ),
        });
        Ok(InterpreterResult::new(
            InstructionResult::Return,
            Bytes::new(),
            gas,
        ))
    }
}

/// Ethereum's precompiles, plus the staking precompile when `staking` is given.
pub struct HarmonyPrecompiles<'a> {
    eth: EthPrecompiles,
    warm: AddressSet,
    pub staking: Option<StakingCalls<'a>>,
}

impl<'a> HarmonyPrecompiles<'a> {
    pub fn new(spec: SpecId, staking: Option<StakingCalls<'a>>) -> Self {
        let eth = EthPrecompiles::new(spec);
        let warm = Self::warm_for(&eth, staking.is_some());
        Self { eth, warm, staking }
    }

    fn warm_for(eth: &EthPrecompiles, staking: bool) -> AddressSet {
        let mut warm = eth.warm_addresses().clone();
        if staking {
            warm.insert(STAKING_PRECOMPILE);
        }
        warm
    }
}

impl<CTX> PrecompileProvider<CTX> for HarmonyPrecompiles<'_>
where
    CTX: ContextTr<Cfg: Cfg<Spec = SpecId>>,
{
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: SpecId) -> bool {
        let changed = <EthPrecompiles as PrecompileProvider<CTX>>::set_spec(&mut self.eth, spec);
        if changed {
            self.warm = Self::warm_for(&self.eth, self.staking.is_some());
        }
        changed
    }

    fn run(
        &mut self,
        context: &mut CTX,
        inputs: &CallInputs,
    ) -> Result<Option<InterpreterResult>, String> {
        if inputs.bytecode_address == STAKING_PRECOMPILE {
            if let Some(calls) = self.staking.as_mut() {
                return calls.run(context, inputs).map(Some);
            }
        }
        self.eth.run(context, inputs)
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.warm
    }

    fn contains(&self, address: &Address) -> bool {
        self.warm.contains(address)
    }
}
