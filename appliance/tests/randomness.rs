//! The leader's VRF on four real node processes: node 0 runs in the test-only forged-VRF mode
//! (as leader it signs each block's VRF with a key that is not its own: well formed, wrong
//! signature). Its proposals are refused and the others move past its views; the chain goes
//! on without a single block of its, and every stored header's VRF verifies under a key of
//! the committee. Each epoch's last header carries the epoch VDF.

mod support;

use jsonrpsee::core::client::ClientT;
use jsonrpsee::rpc_params;
use serde_json::Value;
use std::time::Duration;
use support::{height, wait_for};

const EPOCH_BLOCKS: u64 = 10;

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap().trim_start_matches("0x")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_vrf_is_refused_and_every_stored_vrf_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let net = tmp.path().join("net");
    let offset = support::port_offset(3800);
    support::generate_fast(&net, offset, EPOCH_BLOCKS, 0);
    support::edit_config(
        &net,
        0,
        &[("forge_vrf_for_tests = false", "forge_vrf_for_tests = true")],
    );
    let _nodes = support::Nodes::start(&net, 4, "info");
    let rpc = |i: usize| support::client(9500 + offset + i as u16);
    let spec = state::ChainSpec::load(&net.join("chain-spec.toml")).unwrap();
    let forger = spec.validators[0].address;

    // Node 0's turns come round every 8 blocks; 30 blocks see several of them refused.
    wait_for("30 blocks", Duration::from_secs(120), async || {
        height(&rpc(1)).await >= 30
    })
    .await;
    let refused = support::metric(offset, 1, "harmony_consensus_view_changes_total").await;
    assert!(refused > 0.0, "node 1 never moved past a forged proposal");
    let faults = support::metric(offset, 2, "harmony_network_peer_faults_total").await;
    assert!(faults > 0.0, "nobody was faulted for a forged VRF");

    let keys: Vec<accel::PublicKey> = spec
        .validators
        .iter()
        .flat_map(|v| &v.bls_keys)
        .map(|k| {
            accel::PublicKey::from_bytes(
                &hex::decode(k.public_key.trim_start_matches("0x")).unwrap(),
            )
            .unwrap()
        })
        .collect();
    let top = height(&rpc(1)).await;
    for n in 1..=top {
        let b: Value = rpc(1)
            .request(
                "eth_getBlockByNumber",
                rpc_params![format!("0x{n:x}"), false],
            )
            .await
            .unwrap();
        assert_ne!(
            b["miner"]
                .as_str()
                .unwrap()
                .parse::<state::Address>()
                .unwrap(),
            forger,
            "block {n} was proposed by the forger: {b}"
        );
        let vrf = bytes(&b["vrf"]);
        assert_eq!(vrf.len(), 128, "block {n}");
        let pi = accel::Signature::from_bytes(&vrf[32..]).unwrap();
        let req = hsm::SignRequest {
            kind: hsm::MsgKind::Vrf,
            chain_id: spec.chain_id,
            shard: 0,
            number: n,
            view: support::quantity(&b["viewID"]) as u64,
            hash: bytes(&b["parentHash"]).try_into().unwrap(),
        };
        let payload = hsm::payload(&req);
        assert!(
            keys.iter().any(|k| pi.verify(k, &payload)),
            "block {n}: its VRF is not signed by a committee key"
        );
        let vdf = bytes(&b["vdf"]).len();
        assert_eq!(
            vdf,
            if (n + 1) % EPOCH_BLOCKS == 0 { 200 } else { 0 },
            "block {n}"
        );
    }
}
