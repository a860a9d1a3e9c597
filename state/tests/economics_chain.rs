//! Rewards, fees and slashing executed by the chain: certified blocks pay their signers,
//! supply moves only by issuance and burns, and double-sign evidence in a header slashes, bans
//! and pays the reporter; a second node re-executes every block to the same roots.

mod chain;

use chain::*;

#[test]
fn certified_blocks_pay_their_signers_and_supply_moves_only_by_issuance_and_burns() {
    let collector = Address::repeat_byte(0xc0);
    let mut spec = spec();
    spec.forks.insert(state::forks::REWARDS.into(), 0);
    spec.forks.insert(state::forks::FEE_SPLIT.into(), 0);
    spec.economics.fee_collectors = vec![FeeCollector {
        address: collector,
        share: Dec::percent(50),
    }];
    let cfg = ExecConfig::from_spec(&spec);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(d1.path(), &spec), open(d2.path(), &spec));
    let genesis_supply = supply(&leader);
    // Epoch 0: v registers (10% commission, 20,000 ONE), d delegates 5,000; v is elected.
    let (v, d) = elect_one_validator(&leader, &follower, &cfg);
    // Block 4 carries block 3's certificate: epoch 0 had no elected seat, nothing is paid.
    let b4 = step_certified(&leader, &follower, &cfg, vec![], vec![], Some(&[1]));
    assert_eq!(
        leader.staking_state().unwrap().issuance(),
        Issuance::default()
    );
    // Blocks 5–7 carry epoch 1's certificates: v's key (seat 0) signed two of three.
    let mut roots = vec![b4.header.v2.as_ref().unwrap().staking_root];
    for bit in [1u8, 0, 1] {
        let b = step_certified(&leader, &follower, &cfg, vec![], vec![], Some(&[bit]));
        roots.push(b.header.v2.as_ref().unwrap().staking_root);
    }
    assert!(
        roots.windows(2).all(|w| w[0] != w[1]),
        "every certified block counts: {roots:?}"
    );
    let state = leader.staking_state().unwrap();
    let val = state.validator(&v).unwrap();
    assert_eq!(state.issuance().total, one(14));
    assert_eq!(val.lifetime_reward, one(14));
    assert_eq!((val.lifetime.to_sign, val.lifetime.signed), (3, 2));
    // d: 90% of 14 ONE by 5,000 of 25,000 stake = 2.52 ONE; v keeps the rest.
    let d_reward = U256::from(2_520_000_000_000_000_000u128);
    assert_eq!(val.delegation_of(d).unwrap().reward, d_reward);
    assert_eq!(val.delegation_of(v).unwrap().reward, one(14) - d_reward);
    // Block 7 was the epoch's last: 2 of 3 is at the threshold, so v is Inactive now and the
    // next committee is empty; the epoch counts restarted.
    assert_eq!(val.status, ValidatorStatus::Inactive);
    assert_eq!(val.epoch_counters, Counters::default());
    assert!(tip(&leader).v2.unwrap().committee.as_ref() == [0xc0]);

    // A block whose certificate says otherwise than its staking root is refused.
    let parent = tip(&leader);
    let mut t = template(&parent);
    t.last_commit = Some(cert_of(&parent));
    let (mut forged, _) =
        exec::build_with_staking(&leader, &cfg, &parent, t, vec![], vec![]).unwrap();
    forged.header.last_commit_bitmap = Bytes::from(vec![0]);
    let err = exec::verify(&follower, &cfg, &tip(&follower), &forged).unwrap_err();
    assert!(err.to_string().contains("staking root"), "{err}");

    // d collects: its balance grows by the reward less the fee; the reward is gone.
    let before = balance(&leader, d);
    let collect = StakeMsg::CollectRewards(CollectRewards {
        delegator_address: d,
    });
    let b = step(&leader, &follower, &cfg, vec![staking_tx(1, 1, collect)]);
    let fee = U256::from(u128::from(b.header.gas_used) * GAS_PRICE);
    assert_eq!(balance(&leader, d), before + d_reward - fee);
    let state = leader.staking_state().unwrap();
    assert_eq!(
        state
            .validator(&v)
            .unwrap()
            .delegation_of(d)
            .unwrap()
            .reward,
        U256::ZERO
    );

    // The operator collects through the staking precompile, with an ordinary transaction.
    let owed = state
        .validator(&v)
        .unwrap()
        .delegation_of(v)
        .unwrap()
        .reward;
    assert!(!owed.is_zero());
    let call = alloy_sol_types::SolCall::abi_encode(&state::exec::precompile::CollectRewardsCall {
        delegatorAddress: v,
    });
    let before = balance(&leader, v);
    let precompile = state::exec::precompile::STAKING_PRECOMPILE;
    let b = step_with(
        &leader,
        &follower,
        &cfg,
        vec![evm_tx(0, 1, precompile, call)],
        vec![],
    );
    let receipt = &leader.receipts(b.number()).unwrap().unwrap().receipts[0];
    assert!(receipt.success);
    let fee = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(balance(&leader, v), before + owed - fee);
    let state = leader.staking_state().unwrap();
    assert_eq!(
        state
            .validator(&v)
            .unwrap()
            .delegation_of(v)
            .unwrap()
            .reward,
        U256::ZERO
    );

    // Supply: genesis + issued − fees burnt (half of each base fee went to the collector).
    // Every fee is burnt (no leader is paid on this chain), less the collector's half of the
    // base fees.
    let mut burnt = U256::ZERO;
    let mut collected = U256::ZERO;
    for n in 1..=tip(&leader).number {
        let h = leader.header(n).unwrap().unwrap();
        collected += U256::from(h.gas_used) * U256::from(h.base_fee) / U256::from(2);
        for r in leader.receipts(n).unwrap().unwrap().receipts {
            burnt += U256::from(r.gas_used) * U256::from(r.effective_gas_price);
        }
    }
    assert!(!collected.is_zero());
    assert_eq!(balance(&leader, collector), collected);
    assert_eq!(
        supply(&leader),
        genesis_supply + state.issuance().total - burnt + collected
    );
    assert_eq!(supply(&follower), supply(&leader));
}

#[test]
fn double_sign_evidence_in_a_header_slashes_bans_and_pays_the_reporter() {
    let spec = spec();
    let cfg = ExecConfig::from_spec(&spec);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(d1.path(), &spec), open(d2.path(), &spec));
    let reporter = signer(2).address();
    let (v, d) = elect_one_validator(&leader, &follower, &cfg);
    while tip(&leader).number < EPOCH_BLOCKS + 1 {
        step(&leader, &follower, &cfg, vec![]);
    }
    // After the offence v swaps the key out (and could hand it to a validator with no stake):
    // the evidence still falls on v, who held it in the committee of the offence.
    let sk = accel::SecretKey::from_ikm(&[0x42; 32]).unwrap();
    let swap = StakeMsg::EditValidator(EditValidator {
        validator_address: v,
        description: Default::default(),
        commission_rate: Opt(None),
        min_self_delegation: Opt(None),
        max_total_delegation: Opt(None),
        slot_key_to_remove: Opt(Some(BlsKey::from(
            accel::SecretKey::from_ikm(&[1; 32])
                .unwrap()
                .public_key()
                .to_bytes(),
        ))),
        slot_key_to_add: Opt(Some(BlsKey::from(sk.public_key().to_bytes()))),
        slot_key_to_add_sig: Opt(Some(BlsSig::from(sk.prove_possession().to_bytes()))),
        status: Opt(None),
        transport_key: Opt(None),
        endpoint: Opt(None),
    });
    let b = step(&leader, &follower, &cfg, vec![staking_tx(0, 1, swap)]);
    assert_eq!(
        b.body.staking_transactions.len(),
        1,
        "the key swap is included"
    );
    let reporter_before = balance(&leader, reporter);
    let supply_before = supply(&leader);

    // v's key signed two blocks at (4, 7): block 4 sat in epoch 1, where v was elected.
    let evidence = double_sign(1, EPOCH_BLOCKS, 7, reporter);
    let early = double_sign(1, 2, 1, reporter); // epoch 0: v was not in the committee
    let future = double_sign(1, EPOCH_BLOCKS + 5, 1, reporter);
    let parent = tip(&leader);
    let extras = exec::BlockExtras {
        evidence: vec![early, evidence.clone(), evidence.clone(), future],
        ..Default::default()
    };
    let (block, executed) =
        exec::build_full(&leader, &cfg, &parent, template(&parent), vec![], extras).unwrap();
    let reasons: Vec<&String> = executed
        .staking
        .rejected_slashes
        .iter()
        .map(|r| &r.1)
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("was not elected"), "{reasons:?}");
    assert!(reasons[1].contains("already banned"), "{reasons:?}");
    assert!(
        reasons[2].contains("is not before this block"),
        "{reasons:?}"
    );
    let included: Vec<DoubleSign> =
        alloy_rlp::decode_exact(&block.header.v2.as_ref().unwrap().slashes[..]).unwrap();
    assert_eq!(included, vec![evidence.clone()]);
    leader
        .commit_executed(&block, Some(&cert(&block)), executed.writes())
        .unwrap();
    let checked = exec::verify(&follower, &cfg, &tip(&follower), &block).unwrap();
    follower
        .commit_executed(&block, Some(&cert(&block)), checked.writes())
        .unwrap();

    // Half of v's 20,000 ONE; d owes 80% of that (8,000) but holds 5,000; half of the
    // 15,000 taken to the reporter, the rest burnt.
    let state = leader.staking_state().unwrap();
    let val = state.validator(&v).unwrap();
    assert_eq!(val.status, ValidatorStatus::Banned);
    assert_eq!(val.self_delegation(), one(10_000));
    // (An emptied delegation is dropped at the epoch's end, which this block is.)
    assert_eq!(
        val.delegation_of(d).map_or(U256::ZERO, |d| d.amount),
        U256::ZERO
    );
    assert_eq!(balance(&leader, reporter), reporter_before + one(7_500));
    assert_eq!(supply(&leader), supply_before - one(7_500));
    assert_eq!(supply(&follower), supply(&leader));
    // Banned for good: the next election leaves v out, and v cannot re-activate.
    while !state::exec::staking::is_epoch_end(tip(&leader).number, EPOCH_BLOCKS) {
        step(&leader, &follower, &cfg, vec![]);
    }
    let committee = &tip(&leader).v2.unwrap().committee;
    assert_eq!(committee.as_ref(), [0xc0], "nobody elected");

    // A block whose header carries a forged record is refused, naming it.
    let parent = tip(&leader);
    let (mut bad, _) =
        exec::build_with_staking(&leader, &cfg, &parent, template(&parent), vec![], vec![])
            .unwrap();
    let mut forged = double_sign(1, EPOCH_BLOCKS + 1, 7, reporter);
    forged.second.signature = forged.first.signature.clone();
    bad.header.v2.as_mut().unwrap().slashes = alloy_rlp::encode(vec![forged]).into();
    let err = exec::verify(&follower, &cfg, &tip(&follower), &bad).unwrap_err();
    assert!(err.to_string().contains("slash record 0"), "{err}");
    assert!(err.to_string().contains("second vote"), "{err}");
}

#[test]
fn the_epoch_vdf_is_required_on_the_last_block_verified_and_orders_the_committee() {
    let mut spec = spec();
    spec.forks.insert(state::forks::VRF.into(), 0);
    spec.forks.insert(state::forks::VDF.into(), 0);
    spec.vdf = state::VdfParams {
        iterations: 2_000,
        discriminant_bits: 512,
    };
    let cfg = ExecConfig::from_spec(&spec);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, follower) = (open(d1.path(), &spec), open(d2.path(), &spec));
    // Two validators registered in the epoch's first half; the seed is fixed by block 1.
    step(
        &leader,
        &follower,
        &cfg,
        vec![
            staking_tx(0, 0, create(0, 1)),
            staking_tx(1, 0, create(1, 2)),
        ],
    );
    assert_eq!(exec::epoch_vdf::seed_block(0, EPOCH_BLOCKS), 1);
    let build = |vdf: Bytes| {
        let parent = tip(&leader);
        let extras = exec::BlockExtras {
            vdf,
            ..Default::default()
        };
        exec::build_full(&leader, &cfg, &parent, template(&parent), vec![], extras)
    };
    // Block 2 is no epoch end: a VDF there is refused.
    let err = build(Bytes::from(vec![1; 8])).unwrap_err();
    assert!(err.to_string().contains("must not carry a VDF"), "{err}");
    step(&leader, &follower, &cfg, vec![]);
    assert_eq!(tip(&leader).number, EPOCH_BLOCKS - 2);

    // Block 3 ends the epoch: without its proof, or with one for another seed, it is refused.
    let err = build(Bytes::new()).unwrap_err();
    assert!(
        err.to_string().contains("must carry its VDF proof"),
        "{err}"
    );
    let wrong = exec::epoch_vdf::prove(&spec.vdf, &[9; 32]).unwrap();
    let err = build(wrong).unwrap_err();
    // Another seed, another discriminant: its forms do not even parse in this one.
    assert!(err.to_string().starts_with("VDF: "), "{err}");
    let seed = {
        let ro = leader.db().tx().unwrap();
        exec::epoch_vdf::seed(&ro, EPOCH_BLOCKS, 0).unwrap()
    };
    // The right seed, one squaring short: it parses, and does not verify.
    let short = state::VdfParams {
        iterations: spec.vdf.iterations - 1,
        ..spec.vdf
    };
    let err = build(exec::epoch_vdf::prove(&short, &seed).unwrap()).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
    let proof = exec::epoch_vdf::prove(&spec.vdf, &seed).unwrap();
    let (block, executed) = build(proof.clone()).unwrap();
    leader
        .commit_executed(&block, Some(&cert(&block)), executed.writes())
        .unwrap();
    // The follower checks it (a few milliseconds: the squarings are not redone).
    let checked = exec::verify(&follower, &cfg, &tip(&follower), &block).unwrap();
    follower
        .commit_executed(&block, Some(&cert(&block)), checked.writes())
        .unwrap();
    // A header whose proof was swapped after building is refused by the follower too.
    let mut forged = block.clone();
    forged.header.vdf = exec::epoch_vdf::prove(&spec.vdf, &[7; 32]).unwrap();
    let d3 = tempfile::tempdir().unwrap();
    let third = open(d3.path(), &spec);
    for n in 1..EPOCH_BLOCKS - 1 {
        let b = leader.block(n).unwrap().unwrap();
        let e = exec::verify(&third, &cfg, &tip(&third), &b).unwrap();
        third
            .commit_executed(&b, Some(&cert(&b)), e.writes())
            .unwrap();
    }
    let err = exec::verify(&third, &cfg, &tip(&third), &forged).unwrap_err();
    assert!(err.to_string().contains("VDF"), "{err}");

    // Its output orders the next committee: both validators elected, seated by it.
    let elected = Elected::of(&block.header).unwrap();
    assert_eq!(elected.slots.len(), 2);
    assert_eq!(elected.order, Some(state::block::vdf_output_of(&proof)));
    let by_vdf: Vec<Address> = elected
        .seats(&[])
        .iter()
        .map(|s| s.validator.unwrap())
        .collect();
    let rank =
        |a: &Address| state::keccak256([elected.order.unwrap().as_slice(), a.as_slice()].concat());
    let mut expected = by_vdf.clone();
    expected.sort_by_key(rank);
    assert_eq!(by_vdf, expected);
}
