//! The open validator set on five real node processes: four spec validators and a fifth node
//! that starts as an observer (listed in the others' `network.observers`) and syncs. Its
//! operator registers it with the CLI, the operator key inside a MockHsm; it is elected at the
//! next epoch and its keys sign; a wallet delegates to it through the staking precompile at
//! 0xfc with an ordinary transaction. A second validator (never run) is elected, undelegates
//! below its minimum self-delegation and leaves the committee. The chain keeps finalizing
//! across five epoch changes, and a validator killed before all that, restarted epochs later,
//! catches up across every hand-off. Every header carries its leader's VRF, and every epoch's
//! last header the epoch VDF.

mod support;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, Address, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::rpc_params;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const VALIDATORS: usize = 4;
const OBSERVER: usize = 4;
const EPOCH_BLOCKS: u64 = 10;
const CHAIN_ID: u64 = 31_415_926;
/// Development account 0 of the standard test mnemonic.
const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Development account 5's address (the second validator's operator).
const DEV5: &str = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc";
/// Development account 3 (a wallet that delegates through the precompile).
const DEV3_KEY: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
const ONE: u128 = 1_000_000_000_000_000_000;

use support::{block_hash, elected, height, wait_for};

/// Runs `staking <args>` against the given nodes; panics with the output on failure.
fn staking(dir: &Path, rpcs: &[String], args: &[&str]) {
    support::staking_ok(dir, rpcs, args);
}

/// A signed EIP-1559 transaction from `key` (nonce 0) as raw hex.
fn signed(key: &str, to: Address, value: u128, input: Vec<u8>, gas_limit: u64) -> String {
    let funder: PrivateKeySigner = key.parse().unwrap();
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        input: input.into(),
        ..Default::default()
    };
    let sig = funder.sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    format!("0x{}", hex::encode(env.encoded_2718()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_registers_is_elected_signs_and_a_restarted_node_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let hsm_dir = tmp.path().join("hsm");
    std::fs::create_dir_all(&hsm_dir).unwrap();
    let (_mock, hsm_url) = support::mock_hsm(&hsm_dir);
    let operator_pw = hsm_dir.join("hsm-secrets/operator-password");

    let net = tmp.path().join("net");
    let offset = support::port_offset(3000);
    support::generate_fast(&net, offset, EPOCH_BLOCKS, 1);
    let mut nodes = support::Nodes::start(&net, VALIDATORS + 1, "info");
    let rpcs = support::rpc_urls(offset, OBSERVER + 1);
    let rpc = |i: usize| support::client(9500 + offset + i as u16);
    let guard_records = |i: usize| support::metric(offset, i, "harmony_signer_guard_records_total");

    // The observer follows the chain without signing anything.
    wait_for(
        "the observer to sync",
        Duration::from_secs(60),
        async || height(&rpc(OBSERVER)).await >= 3,
    )
    .await;
    assert_eq!(
        block_hash(&rpc(OBSERVER), 3).await,
        block_hash(&rpc(0), 3).await
    );
    // Validator 3 goes down here and comes back epochs later.
    nodes.kill(3);
    let stopped_at = height(&rpc(0)).await;

    // The operator key is the HSM's; fund it.
    let pw = std::fs::read_to_string(&operator_pw).unwrap();
    let session = hsm::yubi::open(&hsm_url, 3, pw.trim().as_bytes()).unwrap();
    let public = hsm::yubi::operator_public_key(&session, 49).unwrap();
    drop(session);
    let operator = Address::from_slice(&keccak256(&public[1..])[12..]);
    let _: String = rpc(0)
        .request(
            "eth_sendRawTransaction",
            rpc_params![signed(DEV_KEY, operator, 5_000 * ONE, vec![], 21_000)],
        )
        .await
        .unwrap();
    wait_for(
        "the funding transfer",
        Duration::from_secs(30),
        async || {
            let b: Value = rpc(1)
                .request("eth_getBalance", rpc_params![operator, "latest"])
                .await
                .unwrap();
            support::quantity(&b) > 0
        },
    )
    .await;

    // Register the observer: its BLS key with proof of possession and its transport key, as
    // its own node prints them, signed by the operator key inside the HSM.
    let node4 = net.join(format!("node{OBSERVER}"));
    let (bls, transport) = support::node_identity(&node4);
    let endpoint = format!("127.0.0.1:{}", 9000 + offset + OBSERVER as u16);
    assert_eq!(guard_records(OBSERVER).await, 0.0, "an observer signed");
    let in_committee = |i: usize| support::metric(offset, i, "harmony_validator_in_committee_bool");
    assert_eq!(in_committee(OBSERVER).await, 0.0);
    assert_eq!(in_committee(0).await, 1.0);
    // Epochs passed with elections that chose nobody: the committee never changed.
    wait_for("an epoch change", Duration::from_secs(30), async || {
        height(&rpc(0)).await > EPOCH_BLOCKS
    })
    .await;
    assert_eq!(
        support::metric(offset, 0, "harmony_consensus_committee_handoffs_total").await,
        0.0
    );
    let create = |bls: &str, transport: &str, endpoint: &str, amount: &str| {
        support::create_validator_args("newcomer", bls, transport, endpoint, amount)
    };
    let mut args = create(&bls, &transport, &endpoint, "2000");
    args.extend([
        "--hsm-connector".into(),
        hsm_url.clone(),
        "--hsm-password-file".into(),
        operator_pw.to_str().unwrap().into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    staking(tmp.path(), &rpcs[..3], &args);

    // A second validator that never runs a node (development account 5).
    let bls2 = support::bls_with_pop(55);
    let mut args = create(
        &bls2,
        &format!("0x{}", "22".repeat(32)),
        "127.0.0.1:1",
        "1500",
    );
    args.extend(["--dev-account".into(), "5".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    staking(tmp.path(), &rpcs[..3], &args);
    let leaver: Address = DEV5.parse().unwrap();
    let registered_at = height(&rpc(0)).await;
    let epoch_of = |h: u64| h / EPOCH_BLOCKS;

    // The next election chooses both; from that epoch on the observer's keys sign.
    wait_for("both to be elected", Duration::from_secs(60), async || {
        let e = elected(&rpc(0)).await;
        e.contains(&operator) && e.contains(&leaver)
    })
    .await;
    wait_for(
        "the newcomer to sign",
        Duration::from_secs(60),
        async || guard_records(OBSERVER).await > 0.0,
    )
    .await;
    assert_eq!(in_committee(OBSERVER).await, 1.0);
    assert!(support::metric(offset, 0, "harmony_consensus_committee_handoffs_total").await >= 1.0);
    // Node 0 knows the four spec validators, the observer (also registered) and the second
    // validator (registered only).
    assert_eq!(
        support::metric(offset, 0, "harmony_network_known_peers").await,
        6.0
    );
    let info: Value = rpc(1)
        .request("hmy_getValidatorInformation", rpc_params![operator])
        .await
        .unwrap();
    assert_eq!(info["epos-status"], "currently elected", "{info}");

    // A wallet delegates to the newcomer with an ordinary transaction to 0xfc.
    let wallet: PrivateKeySigner = DEV3_KEY.parse().unwrap();
    let call = alloy_sol_types::SolCall::abi_encode(&state::exec::precompile::DelegateCall {
        delegatorAddress: wallet.address(),
        validatorAddress: operator,
        amount: U256::from(300 * ONE),
    });
    let precompile = state::exec::precompile::STAKING_PRECOMPILE;
    let _: String = rpc(2)
        .request(
            "eth_sendRawTransaction",
            rpc_params![signed(DEV3_KEY, precompile, 0, call, 100_000)],
        )
        .await
        .unwrap();
    wait_for(
        "the delegation through 0xfc",
        Duration::from_secs(30),
        async || {
            let d: Value = rpc(0)
                .request("hmy_getDelegationsByValidator", rpc_params![operator])
                .await
                .unwrap();
            d.as_array().unwrap().iter().any(|d| {
                d["delegator_address"]
                    .as_str()
                    .and_then(|a| a.parse::<Address>().ok())
                    == Some(wallet.address())
                    && d["amount"] == (300 * ONE).to_string()
            })
        },
    )
    .await;

    // The second validator takes its stake out: below its minimum self-delegation it is not
    // elected again, and leaves the committee.
    let leaver_s = leaver.to_string();
    staking(
        tmp.path(),
        &rpcs[..3],
        &[
            "undelegate",
            "--dev-account",
            "5",
            "--validator",
            &leaver_s,
            "--amount",
            "1500",
            "--wait-s",
            "60",
        ],
    );
    wait_for("the leaver to leave", Duration::from_secs(60), async || {
        elected(&rpc(0)).await == vec![operator]
    })
    .await;

    // Five epoch changes since registration, without a stall.
    let target = (epoch_of(registered_at) + 5) * EPOCH_BLOCKS;
    wait_for("five epoch changes", Duration::from_secs(120), async || {
        height(&rpc(0)).await >= target
    })
    .await;
    let signed = guard_records(OBSERVER).await;
    assert!(
        signed >= 10.0,
        "the newcomer signed only {signed} messages over several epochs in the committee"
    );

    // Validator 3, down since before the first hand-off, catches up across all of them.
    nodes.restart(3);
    let now = height(&rpc(0)).await;
    assert!(
        epoch_of(now) >= epoch_of(stopped_at) + 5,
        "{stopped_at} → {now}"
    );
    wait_for(
        "validator 3 to catch up",
        Duration::from_secs(120),
        async || height(&rpc(3)).await >= now,
    )
    .await;
    for n in [stopped_at + 1, registered_at, now] {
        assert_eq!(
            block_hash(&rpc(3), n).await,
            block_hash(&rpc(OBSERVER), n).await,
            "block {n}"
        );
    }

    // Every header carries its leader's VRF (the nodes verified each proof against the
    // leader's key before preparing or storing it); β is the block's PREVRANDAO.
    for n in 1..=now {
        let b: Value = rpc(OBSERVER)
            .request(
                "eth_getBlockByNumber",
                rpc_params![format!("0x{n:x}"), false],
            )
            .await
            .unwrap();
        let vrf = hex::decode(b["vrf"].as_str().unwrap().trim_start_matches("0x")).unwrap();
        assert_eq!(vrf.len(), 128, "block {n}: {b}");
        use sha2::Digest;
        assert_eq!(sha2::Sha256::digest(&vrf[32..])[..], vrf[..32], "block {n}");
        assert_eq!(
            b["mixHash"].as_str().unwrap(),
            format!("0x{}", hex::encode(&vrf[..32])),
            "block {n}: PREVRANDAO is β"
        );
        // Each epoch's last block carries the epoch VDF (y ‖ π, 100 bytes each at 1,024
        // bits); validator 3 verified every one of them while catching up (the block hashes
        // it agrees on commit to them).
        let vdf = b["vdf"].as_str().unwrap().trim_start_matches("0x").len() / 2;
        let epoch_end = (n + 1) % EPOCH_BLOCKS == 0;
        assert_eq!(vdf, if epoch_end { 200 } else { 0 }, "block {n}: {b}");
    }
    let proofs = support::metric(offset, 3, "harmony_vdf_prove_seconds").await;
    assert!(
        proofs > 0.0,
        "validator 3 evaluated no epoch VDF since it came back"
    );
}
