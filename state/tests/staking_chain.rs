//! Staking transactions executed by the chain (the `staking` fork on header version 2):
//! a leader builds blocks with them, a second node re-executes and stores the same blocks,
//! invalid ones are left out by the leader and refused by a validator, and the epoch's last
//! block carries the elected committee.

mod chain;

use chain::*;

#[test]
fn staking_transactions_run_on_chain_and_the_epoch_end_elects() {
    let spec = spec();

    let cfg = ExecConfig::from_spec(&spec);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(d1.path(), &spec), open(d2.path(), &spec));
    let (v, d) = (signer(0).address(), signer(1).address());

    // Block 1: a CreateValidator, and one with a key already taken that the leader leaves out.
    let good = staking_tx(0, 0, create(0, 1));
    let dup = staking_tx(2, 0, create(2, 1));
    let b1 = step(&leader, &follower, &cfg, vec![good.clone(), dup.clone()]);
    assert_eq!(b1.body.staking_transactions, vec![good.raw.clone()]);
    let state = leader.staking_state().unwrap();
    let val = state.validator(&v).unwrap();
    assert_eq!(val.self_delegation(), one(20_000));
    let gas = b1.header.gas_used;
    assert!(gas >= state::exec::staking::CREATE_VALIDATOR_GAS, "{gas}");
    assert_eq!(
        balance(&leader, v),
        one(1_000_000) - one(20_000) - U256::from(u128::from(gas) * GAS_PRICE)
    );
    let receipts = leader.receipts(1).unwrap().unwrap().receipts;
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].tx_hash, good.hash);
    assert_eq!(leader.tx_location(&good.hash).unwrap().unwrap().block, 1);
    let root1 = b1.header.v2.as_ref().unwrap().staking_root;
    assert_ne!(root1, state::EMPTY_ROOT);

    // A block carrying the refused transaction is refused by a validator, naming it.
    let parent = tip(&leader);
    let (mut bad, _) =
        exec::build_with_staking(&leader, &cfg, &parent, template(&parent), vec![], vec![])
            .unwrap();
    bad.body.staking_transactions = vec![dup.raw.clone()];
    bad.header.v2.as_mut().unwrap().staking_transactions_root =
        state::transactions_root(&bad.body.staking_transactions);
    let err = exec::verify(&follower, &cfg, &tip(&follower), &bad).unwrap_err();
    assert!(err.to_string().contains("staking transaction 0"), "{err}");
    assert!(err.to_string().contains("already used"), "{err}");
    // And a wrong staking root.
    let (mut bad, _) =
        exec::build_with_staking(&leader, &cfg, &parent, template(&parent), vec![], vec![])
            .unwrap();
    bad.header.v2.as_mut().unwrap().staking_root = B256::repeat_byte(3);
    let err = exec::verify(&follower, &cfg, &tip(&follower), &bad).unwrap_err();
    assert!(err.to_string().contains("staking root"), "{err}");

    // Block 2: a delegation. Block 3 (the epoch's last): nothing sent, the committee elected.
    let delegate = staking_tx(
        1,
        0,
        StakeMsg::Delegate(Delegate {
            delegator_address: d,
            validator_address: v,
            amount: one(5_000),
        }),
    );
    let b2 = step(&leader, &follower, &cfg, vec![delegate]);
    assert_ne!(b2.header.v2.as_ref().unwrap().staking_root, root1);
    assert!(b2.header.v2.as_ref().unwrap().committee.is_empty());
    let b3 = step(&leader, &follower, &cfg, vec![]);
    assert_eq!(b3.number(), EPOCH_BLOCKS - 1);
    let committee: Vec<Slot> =
        alloy_rlp::decode_exact(&b3.header.v2.as_ref().unwrap().committee[..]).unwrap();
    assert_eq!(committee.len(), 1);
    assert_eq!(committee[0].validator, v);
    assert_eq!(committee[0].raw_stake, one(25_000));
    assert_eq!(
        b3.header.v2.as_ref().unwrap().staking_root,
        b2.header.v2.as_ref().unwrap().staking_root,
        "an epoch end with nothing to pay keeps the root"
    );
}

#[test]
fn the_staking_pool_checks_rules_at_admission() {
    use state::mempool::staking::{StakingAdmission, StakingPool};
    let spec = spec();
    let cfg = ExecConfig::from_spec(&spec);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &spec);
    let mut pool = StakingPool::default();
    let staking = store.staking_state().unwrap();
    let ro = store.db().tx().unwrap();
    let reader = StateReader::new(&ro);
    let base_fee = 1_000_000_000;

    // Not before the fork.
    let mut off = cfg.clone();
    off.staking_from = Some(5);
    let err = pool
        .insert(
            staking_tx(0, 0, create(0, 1)),
            &off,
            0,
            base_fee,
            &reader,
            &staking,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StakingAdmission::Inactive {
                epoch: 0,
                from: Some(5)
            }
        ),
        "{err}"
    );
    // Under the base fee.
    let err = pool
        .insert(
            staking_tx(0, 0, create(0, 1)),
            &cfg,
            0,
            u64::MAX,
            &reader,
            &staking,
        )
        .unwrap_err();
    assert!(matches!(err, StakingAdmission::Underpriced { .. }), "{err}");
    // A rule broken at the sender's next nonce: refused with the rule's own error.
    let mut bad = create(0, 1);
    if let StakeMsg::CreateValidator(m) = &mut bad {
        m.min_self_delegation = one(1);
    }
    let err = pool
        .insert(staking_tx(0, 0, bad), &cfg, 0, base_fee, &reader, &staking)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StakingAdmission::Rules(StakingError::MinSelfDelegationTooLow { .. })
        ),
        "{err}"
    );
    assert!(pool.is_empty(), "refusals leave nothing behind");
    // Admitted; then a later nonce waits without the rules check (its state is unknown yet).
    let create0 = staking_tx(0, 0, create(0, 1));
    pool.insert(create0.clone(), &cfg, 0, base_fee, &reader, &staking)
        .unwrap();
    let edit = staking_tx(
        0,
        1,
        StakeMsg::EditValidator(EditValidator {
            validator_address: signer(0).address(),
            commission_rate: Opt(Some(Dec::percent(11))),
            ..Default::default()
        }),
    );
    pool.insert(edit.clone(), &cfg, 0, base_fee, &reader, &staking)
        .unwrap();
    let err = pool
        .insert(create0.clone(), &cfg, 0, base_fee, &reader, &staking)
        .unwrap_err();
    assert!(matches!(err, StakingAdmission::Known), "{err}");
    let order: Vec<u64> = pool.candidates().iter().map(|t| t.tx.nonce).collect();
    assert_eq!(order, vec![0, 1]);
    drop(ro);

    // Both go into one block; the pool forgets them once the chain passed their nonces.
    let (d2, follower) = {
        let d = tempfile::tempdir().unwrap();
        let s = open(d.path(), &spec);
        (d, s)
    };
    let block = step(&store, &follower, &cfg, pool.candidates());
    assert_eq!(block.body.staking_transactions.len(), 2);
    let ro = store.db().tx().unwrap();
    pool.prune(&StateReader::new(&ro));
    assert!(pool.is_empty());
    let err = pool
        .insert(
            create0,
            &cfg,
            0,
            base_fee,
            &StateReader::new(&ro),
            &store.staking_state().unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(err, StakingAdmission::NonceTooLow { next: 2, nonce: 0 }),
        "{err}"
    );
    drop(d2);
}

fn abi_delegate(delegator: Address, validator: Address, amount: U256) -> Vec<u8> {
    use alloy_sol_types::SolCall;
    state::exec::precompile::DelegateCall {
        delegatorAddress: delegator,
        validatorAddress: validator,
        amount,
    }
    .abi_encode()
}

#[test]
fn wallets_and_contracts_delegate_through_the_staking_precompile() {
    use alloy_sol_types::{SolCall, SolError};
    use state::exec::precompile::{UndelegateCall, STAKING_PRECOMPILE};
    let spec = spec();
    let cfg = ExecConfig::from_spec(&spec);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(d1.path(), &spec), open(d2.path(), &spec));
    let v = signer(0).address();
    let (w1, w2) = (signer(1).address(), signer(2).address());
    let (fwd, rev) = (FORWARDER.0, REVERTER.0);
    step(
        &leader,
        &follower,
        &cfg,
        vec![staking_tx(0, 0, create(0, 1))],
    );
    let root_before = tip(&leader).v2.unwrap().staking_root;
    let w1_before = balance(&leader, w1);

    let txs = vec![
        // A wallet delegates for itself: included, the stake leaves its balance.
        evm_tx(1, 0, STAKING_PRECOMPILE, abi_delegate(w1, v, one(1_000))),
        // ...and for someone else: reverted.
        evm_tx(2, 0, STAKING_PRECOMPILE, abi_delegate(w1, v, one(100))),
        // A contract delegates, then reverts: nothing of it stays.
        evm_tx(2, 1, rev, abi_delegate(rev, v, one(500))),
        // A contract delegates for itself through a plain CALL.
        evm_tx(2, 2, fwd, abi_delegate(fwd, v, one(700))),
        // The wallet takes some back, in the same block.
        evm_tx(
            1,
            1,
            STAKING_PRECOMPILE,
            UndelegateCall {
                delegatorAddress: w1,
                validatorAddress: v,
                amount: one(200),
            }
            .abi_encode(),
        ),
        // Garbage input: reverted with a clear reason.
        evm_tx(2, 3, STAKING_PRECOMPILE, vec![1, 2, 3, 4, 5]),
    ];
    let block = step_with(&leader, &follower, &cfg, txs, vec![]);
    assert_eq!(block.body.transactions.len(), 6, "every call is includable");
    let receipts = leader.receipts(2).unwrap().unwrap().receipts;
    let ok: Vec<bool> = receipts.iter().map(|r| r.success).collect();
    assert_eq!(ok, vec![true, false, false, true, true, false]);
    // Successful calls leave a log at 0xfc naming the caller.
    assert_eq!(receipts[0].logs.len(), 1);
    assert_eq!(receipts[0].logs[0].address, STAKING_PRECOMPILE);
    assert_eq!(receipts[0].logs[0].topics()[1], w1.into_word());
    assert!(receipts[2].logs.is_empty(), "a reverted call leaves no log");

    let state = leader.staking_state().unwrap();
    let val = state.validator(&v).unwrap();
    let delegated = |a: Address| {
        val.delegations
            .iter()
            .find(|d| d.delegator == a)
            .map(|d| d.amount)
    };
    assert_eq!(delegated(w1), Some(one(800)));
    assert_eq!(delegated(fwd), Some(one(700)));
    assert_eq!(delegated(rev), None);
    assert_eq!(delegated(w2), None);
    assert_ne!(tip(&leader).v2.unwrap().staking_root, root_before);
    // The stake left the balances; the precompile keeps no escrow.
    let gas = U256::from(receipts[0].gas_used + receipts[4].gas_used)
        * U256::from(receipts[0].effective_gas_price);
    assert_eq!(balance(&leader, w1), w1_before - one(1_000) - gas);
    assert_eq!(balance(&leader, fwd), one(50_000) - one(700));
    assert_eq!(balance(&leader, rev), one(50_000));
    assert_eq!(balance(&leader, STAKING_PRECOMPILE), U256::ZERO);

    // eth_call and gas estimation see the precompile too, with the rule's message.
    let ro = leader.db().tx().unwrap();
    let inputs = {
        let mut i = exec::inputs_of(&tip(&leader));
        i.number += 1;
        i
    };
    let call = |from: Address, input: Vec<u8>| {
        let req = exec::CallRequest {
            from: Some(from),
            to: Some(STAKING_PRECOMPILE),
            data: input.into(),
            ..Default::default()
        };
        let calls = exec::staking_calls(&cfg, inputs.epoch, &ro);
        exec::call(StateReader::new(&ro), &cfg, &inputs, &req, 200_000, calls).unwrap()
    };
    match call(w2, abi_delegate(w2, v, one(150))) {
        exec::CallOutcome::Success { gas_used, .. } => assert!(gas_used > 21_000 * 2),
        other => panic!("{other:?}"),
    }
    match call(w2, abi_delegate(w1, v, one(10))) {
        exec::CallOutcome::Revert { output, .. } => {
            let reason = alloy_sol_types::Revert::abi_decode(&output).unwrap().reason;
            assert!(reason.contains("is not the caller"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match call(w2, abi_delegate(w2, Address::repeat_byte(0x77), one(10))) {
        exec::CallOutcome::Revert { output, .. } => {
            let reason = alloy_sol_types::Revert::abi_decode(&output).unwrap().reason;
            assert!(reason.contains("staking precompile"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
