//! Helpers shared by the benchmarks in `benches/`.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One JSON-RPC call over plain HTTP/1.1 (no client library, so the bench measures the node).
pub fn rpc(
    port: u16,
    method: &str,
    params: serde_json::Value,
) -> std::io::Result<serde_json::Value> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let json = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(json).map_err(std::io::Error::other)?;
    Ok(v["result"].clone())
}

/// `validators` Active validators with `keys` (placeholder) BLS keys and `delegations`
/// delegations each (the first the operator's), every delegation with one undelegation made at
/// epoch 0; stakes all different.
pub fn staking_state(validators: u32, keys: u32, delegations: u32) -> state::staking::StakingState {
    use state::staking::*;
    use state::{Address, B256, U256};
    let records = (0..validators).map(|i| {
        let mut a = [0u8; 20];
        a[..4].copy_from_slice(&i.to_be_bytes());
        let address = Address::from(a);
        let delegations = (0..delegations)
            .map(|j| {
                let mut d = [0xd0u8; 20];
                d[..4].copy_from_slice(&(i * 10 + j).to_be_bytes());
                let delegator = if j == 0 { address } else { Address::from(d) };
                let mut del =
                    Delegation::new(delegator, U256::from(ONE) * U256::from(10_000 + i * 7 + j));
                del.undelegations.push(Undelegation {
                    amount: U256::from(ONE),
                    epoch: 0,
                });
                del
            })
            .collect();
        Validator {
            address,
            bls_keys: (0..keys)
                .map(|k| {
                    let mut key = [0u8; 48];
                    key[..4].copy_from_slice(&(i * keys + k).to_be_bytes());
                    BlsKey::from(key)
                })
                .collect(),
            transport_key: B256::repeat_byte(1),
            endpoint: "10.0.0.1:9000".into(),
            min_self_delegation: U256::from(ONE) * U256::from(10_000),
            max_total_delegation: U256::MAX,
            status: ValidatorStatus::Active,
            commission: CommissionRates {
                rate: Dec::percent(10),
                max_rate: Dec::percent(20),
                max_change_rate: Dec::percent(1),
            },
            epoch_start_rate: Dec::percent(10),
            description: Description::default(),
            creation_epoch: 0,
            delegations,
            lifetime: Default::default(),
            epoch_counters: Default::default(),
            lifetime_reward: U256::ZERO,
        }
    });
    StakingState::from_validators(records)
}
