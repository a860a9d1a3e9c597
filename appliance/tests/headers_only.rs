//! Header-only proposals (Harmony HET-86) on four real node processes: every leader announces
//! header plus transaction hashes. Node 0 does not relay the transactions it receives over RPC,
//! so when it leads, the others hold none of its block's transactions and must fetch exactly
//! those from it before voting; the chain still finalizes them and every node agrees.

mod support;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use serde_json::Value;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const NODES: usize = 4;
const CHAIN_ID: u64 = 31_415_926;
/// Development account 0 (public key material of the standard test mnemonic).
const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn client(port: u16) -> HttpClient {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(5))
        .build(format!("http://127.0.0.1:{port}"))
        .unwrap()
}

/// Sum of `harmony_consensus_compact_announces_total{outcome}` on a node's metrics endpoint.
fn compact_announces(port: u16, outcome: &str) -> u64 {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    let prefix = format!("harmony_consensus_compact_announces_total{{outcome=\"{outcome}\"}} ");
    body.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn transfer(nonce: u64) -> String {
    let signer: PrivateKeySigner = DEV_KEY.parse().unwrap();
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::repeat_byte(0x42)),
        value: U256::from(1000 + nonce),
        ..Default::default()
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    format!("0x{}", hex::encode(env.encoded_2718()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_fetch_only_what_a_header_only_leader_announced() {
    let tmp = tempfile::tempdir().unwrap();
    let offset = support::port_offset(5000);
    support::generate(
        tmp.path(),
        offset,
        &["--block-time-ms", "500", "--blocks-per-leader", "3"],
    );
    for i in 0..NODES {
        let mut edits = vec![(
            "announce_headers_only = false",
            "announce_headers_only = true",
        )];
        if i == 0 {
            edits.push(("relay_transactions = true", "relay_transactions = false"));
        }
        support::edit_config(tmp.path(), i, &edits);
    }
    let _nodes = support::Nodes::start(tmp.path(), NODES, "info,consensus=debug");
    let rpc = |i: usize| client(9500 + offset + i as u16);
    // Every node's RPC must answer before the test asks node 1 about node 0's transactions
    // (under a loaded test run node 1 can start a second after node 0).
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..NODES {
        loop {
            let n: Result<String, _> = rpc(i).request("eth_blockNumber", rpc_params![]).await;
            if n.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "node{i} RPC never answered");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Submitted to node 0 only, which keeps them to itself.
    let mut hashes = Vec::new();
    for nonce in 0..5 {
        let h: String = rpc(0)
            .request("eth_sendRawTransaction", rpc_params![transfer(nonce)])
            .await
            .unwrap();
        hashes.push(h);
    }
    let pending: Value = rpc(1)
        .request("eth_getTransactionByHash", rpc_params![&hashes[0]])
        .await
        .unwrap();
    assert!(
        pending.is_null(),
        "node 1 must not have heard of the transaction"
    );

    // Finalized (node 0 leads within a rotation), and seen by node 1.
    let deadline = Instant::now() + Duration::from_secs(90);
    let receipt = loop {
        let r: Value = rpc(1)
            .request("eth_getTransactionReceipt", rpc_params![&hashes[4]])
            .await
            .unwrap();
        if !r.is_null() {
            break r;
        }
        assert!(Instant::now() < deadline, "transactions never finalized");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(receipt["status"], "0x1");
    let number = receipt["blockNumber"].as_str().unwrap().to_string();

    let fetched: u64 = (1..NODES)
        .map(|i| compact_announces(9900 + offset + i as u16, "fetched"))
        .sum();
    assert!(
        fetched >= 1,
        "validators should have fetched node 0's transactions"
    );
    let mut hashes_at = Vec::new();
    for i in 0..NODES {
        let deadline = Instant::now() + Duration::from_secs(30);
        let b = loop {
            let b: Value = rpc(i)
                .request("eth_getBlockByNumber", rpc_params![&number, false])
                .await
                .unwrap();
            if !b.is_null() {
                break b;
            }
            assert!(Instant::now() < deadline, "node{i} never reached {number}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        hashes_at.push(b["hash"].as_str().unwrap().to_string());
    }
    assert!(
        hashes_at.iter().all(|h| *h == hashes_at[0]),
        "{hashes_at:?}"
    );
    let balance: String = rpc(3)
        .request(
            "eth_getBalance",
            rpc_params![format!("{:?}", Address::repeat_byte(0x42)), "latest"],
        )
        .await
        .unwrap();
    let total: u64 = (0..5).map(|n| 1000 + n).sum();
    assert_eq!(balance, format!("0x{total:x}"));
}
