//! Staking on four real node processes, through the CLI a validator operator uses:
//! `staking create-validator` signed by the operator key inside a MockHsm (a separate
//! `hsm mock-connector` process, provisioned with `hsm setup`), a delegation and an
//! undelegation signed with development keys, a refused CreateValidator (a BLS key already
//! registered) that fails at submission with the rule's message, and the `hmy_` staking
//! methods reading the result.

mod support;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, Address, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClient;
use jsonrpsee::rpc_params;
use serde_json::Value;
use std::time::{Duration, Instant};

const NODES: usize = 4;
const CHAIN_ID: u64 = 31_415_926;
/// Development account 0 of the standard test mnemonic (public key material).
const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ONE: u128 = 1_000_000_000_000_000_000;

async fn balance(c: &HttpClient, a: Address) -> u128 {
    support::quantity(
        &c.request::<Value, _>("eth_getBalance", rpc_params![a, "latest"])
            .await
            .unwrap(),
    )
}

/// Waits until every node has stored the block of `receipt` (the CLI polled one of them).
async fn all_reach(rpcs: &[HttpClient], receipt: &Value) {
    let n = support::quantity(&receipt["blockNumber"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    for c in rpcs {
        while support::quantity(
            &c.request::<Value, _>("eth_blockNumber", rpc_params![])
                .await
                .unwrap(),
        ) < n
        {
            assert!(Instant::now() < deadline, "a node never reached block {n}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The receipt JSON the CLI printed after the hash line.
fn printed_receipt(out: &str) -> (String, Value) {
    let (hash, rest) = out.split_once('\n').unwrap();
    (hash.trim().to_string(), serde_json::from_str(rest).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_register_and_delegators_delegate_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let hsm_dir = tmp.path().join("hsm");
    std::fs::create_dir_all(&hsm_dir).unwrap();
    let (_mock, hsm_url) = support::mock_hsm(&hsm_dir);
    let operator_pw = hsm_dir.join("hsm-secrets/operator-password");

    let net = tmp.path().join("net");
    let offset = support::port_offset(7000);
    support::generate(
        &net,
        offset,
        &[
            "--block-time-ms",
            "300",
            "--blocks-per-leader",
            "2",
            "--epoch-blocks",
            "10",
        ],
    );
    let _nodes = support::Nodes::start(&net, NODES, "info");
    let rpcs: Vec<String> = (0..NODES)
        .map(|i| format!("http://127.0.0.1:{}", 9500 + offset + i as u16))
        .collect();
    let rpc = |i: usize| support::client(9500 + offset + i as u16);
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..NODES {
        while rpc(i)
            .request::<String, _>("eth_blockNumber", rpc_params![])
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "node{i} RPC never answered");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // `keys transport` prints what the chain spec has for the node.
    let out = support::ha(&net.join("node0"), &["keys", "transport"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let spec = std::fs::read_to_string(net.join("chain-spec.toml")).unwrap();
    assert!(
        printed.len() == 66 && spec.contains(printed.trim_start_matches("0x")),
        "{printed} is not node0's transport key in the spec"
    );

    // Bad input gets a clear error and changes nothing.
    let err = rpc(0)
        .request::<Value, _>("hmy_sendRawStakingTransaction", rpc_params!["0x1234"])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("malformed staking transaction"), "{err}");
    let err = rpc(0)
        .request::<Value, _>("hmy_sendRawStakingTransaction", rpc_params!["not hex"])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("0x-prefixed hex"), "{err}");
    let err = rpc(0)
        .request::<Value, _>(
            "hmy_getValidatorInformation",
            rpc_params![Address::repeat_byte(0xde)],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no validator"), "{err}");

    // Before any election the committee is the chain spec's.
    let genesis: Vec<Address> = rpc(0)
        .request("hmy_getElectedValidatorAddresses", rpc_params![])
        .await
        .unwrap();
    assert_eq!(genesis.len(), NODES, "{genesis:?}");

    // The operator address is the HSM's secp256k1 key; fund it from development account 0.
    let pw = std::fs::read_to_string(&operator_pw).unwrap();
    let session = hsm::yubi::open(&hsm_url, 3, pw.trim().as_bytes()).unwrap();
    let public = hsm::yubi::operator_public_key(&session, 49).unwrap();
    drop(session);
    let operator = Address::from_slice(&keccak256(&public[1..])[12..]);
    let funder: PrivateKeySigner = DEV_KEY.parse().unwrap();
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(operator),
        value: U256::from(5_000 * ONE),
        ..Default::default()
    };
    let sig = funder.sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    let raw = format!("0x{}", hex::encode(env.encoded_2718()));
    let _: String = rpc(0)
        .request("eth_sendRawTransaction", rpc_params![raw])
        .await
        .unwrap();
    while balance(&rpc(1), operator).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the funding transfer never landed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // create-validator, signed inside the HSM.
    let bls = support::bls_with_pop(77);
    let create = |signer: Vec<String>| {
        let mut a = support::create_validator_args(
            "newcomer",
            &bls,
            "0x1111111111111111111111111111111111111111111111111111111111111111",
            "127.0.0.1:9999",
            "2000",
        );
        a.extend(signer);
        a
    };
    let hsm_signer = vec![
        "--hsm-connector".to_string(),
        hsm_url.clone(),
        "--hsm-password-file".to_string(),
        operator_pw.to_str().unwrap().to_string(),
    ];
    let args = create(hsm_signer);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, err, ok) = support::staking(tmp.path(), &rpcs, &args);
    assert!(ok, "create-validator: {out}\n{err}");
    let (hash, receipt) = printed_receipt(&out);
    assert_eq!(receipt["transactionHash"], Value::String(hash.clone()));
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert_eq!(
        receipt["from"]
            .as_str()
            .unwrap()
            .parse::<Address>()
            .unwrap(),
        operator
    );
    let clients: Vec<HttpClient> = (0..NODES).map(rpc).collect();
    all_reach(&clients, &receipt).await;

    let info: Value = rpc(2)
        .request("hmy_getValidatorInformation", rpc_params![operator])
        .await
        .unwrap();
    assert_eq!(info["validator"]["name"], "newcomer", "{info}");
    assert_eq!(
        info["total-delegation"],
        (2_000 * ONE).to_string(),
        "{info}"
    );
    assert_eq!(info["active-status"], "active");
    let all: Vec<Address> = rpc(3)
        .request("hmy_getAllValidatorAddresses", rpc_params![])
        .await
        .unwrap();
    assert_eq!(all, vec![operator]);

    // The same BLS key again, from another account: refused at submission, with the rule.
    let args = create(vec!["--dev-account".into(), "7".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, err, ok) = support::staking(tmp.path(), &rpcs, &args);
    assert!(!ok, "a taken BLS key was accepted: {out}");
    assert!(err.contains("already used by validator"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A delegation and an undelegation from development account 6, each sent to one node
    // only: that node relays it to the committee, whoever leads includes it.
    let op = operator.to_string();
    let (out, err, ok) = support::staking(
        tmp.path(),
        &rpcs[2..3],
        &[
            "delegate",
            "--dev-account",
            "6",
            "--validator",
            &op,
            "--amount",
            "500",
            "--wait-s",
            "60",
        ],
    );
    assert!(ok, "delegate: {out}\n{err}");
    assert_eq!(printed_receipt(&out).1["status"], "0x1");
    all_reach(&clients, &printed_receipt(&out).1).await;
    let (out, err, ok) = support::staking(
        tmp.path(),
        &rpcs[3..],
        &[
            "undelegate",
            "--dev-account",
            "6",
            "--validator",
            &op,
            "--amount",
            "100",
            "--wait-s",
            "60",
        ],
    );
    assert!(ok, "undelegate: {out}\n{err}");
    all_reach(&clients, &printed_receipt(&out).1).await;
    let delegator: Address = "0x976EA74026E726554dB657fA54763abd0C3a0aa9"
        .parse()
        .unwrap();
    let by_delegator: Value = rpc(1)
        .request("hmy_getDelegationsByDelegator", rpc_params![delegator])
        .await
        .unwrap();
    assert_eq!(
        by_delegator[0]["amount"],
        (400 * ONE).to_string(),
        "{by_delegator}"
    );
    assert_eq!(
        by_delegator[0]["Undelegations"][0]["Amount"],
        (100 * ONE).to_string(),
        "{by_delegator}"
    );
    let snapshot: Value = rpc(0)
        .request("hmy_getMedianRawStakeSnapshot", rpc_params![])
        .await
        .unwrap();
    let winners = snapshot["epos-slot-winners"].as_array().unwrap();
    assert_eq!(winners.len(), 1, "{snapshot}");
    assert_eq!(winners[0]["raw-stake"], (2_400 * ONE).to_string());
    // The next epoch's committee, elected at the last block of the current one, holds the
    // newcomer; the header that carries it is the same on every node.
    let start: String = rpc(0).request("hmy_getEpoch", rpc_params![]).await.unwrap();
    let start = support::quantity(&Value::String(start));
    loop {
        let e: String = rpc(0).request("hmy_getEpoch", rpc_params![]).await.unwrap();
        if support::quantity(&Value::String(e)) > start {
            break;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(60),
            "no epoch change"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elected: Vec<Address> = rpc(1)
        .request("hmy_getElectedValidatorAddresses", rpc_params![])
        .await
        .unwrap();
    assert_eq!(elected, vec![operator]);
    let info: Value = rpc(1)
        .request("hmy_getValidatorInformation", rpc_params![operator])
        .await
        .unwrap();
    assert_eq!(info["currently-in-committee"], true, "{info}");
    assert_eq!(info["epos-status"], "currently elected");
    // Every node holds the same staking state. Signing counts move with each block, and two
    // nodes queried one after the other may stand a block apart, so each pair gets a few
    // tries to be read at the same tip; the last pair read must be equal.
    for i in 1..NODES {
        let mut pair = (Value::Null, Value::Null);
        for _ in 0..20 {
            let info_0: Value = rpc(0)
                .request("hmy_getValidatorInformation", rpc_params![operator])
                .await
                .unwrap();
            let info_i: Value = rpc(i)
                .request("hmy_getValidatorInformation", rpc_params![operator])
                .await
                .unwrap();
            pair = (info_i, info_0);
            if pair.0 == pair.1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(pair.0, pair.1, "node {i} disagrees");
    }
}
