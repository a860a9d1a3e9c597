//! The public RPC port under bad and oversized input: every request gets a clear JSON-RPC
//! error (or HTTP refusal), the configured limits hold, and the node keeps finalizing.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// POSTs `body` and returns the HTTP status and response body.
fn post(port: u16, body: &str) -> (u16, String) {
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    request(port, &host, body)
}

/// Sends `body` with the header lines `headers` (each ending in CRLF) and returns the HTTP
/// status and response body.
fn request(port: u16, headers: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // The server may refuse before reading all of an oversized body.
    let _ = s.write_all(body.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

fn call(port: u16, method: &str, params: Value) -> Value {
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, body) = post(port, &req.to_string());
    assert_eq!(status, 200, "{method}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method}: {e}: {body}"))
}

fn error_of(v: &Value) -> (i64, String) {
    let e = v
        .get("error")
        .unwrap_or_else(|| panic!("expected an error: {v}"));
    (
        e["code"].as_i64().unwrap(),
        e["message"].as_str().unwrap().to_string(),
    )
}

fn height(port: u16) -> u64 {
    let v = call(port, "eth_blockNumber", json!([]));
    u64::from_str_radix(v["result"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn bad_and_oversized_requests_are_refused_and_the_node_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let offset = support::port_offset(6000);
    support::generate(
        tmp.path(),
        offset,
        &["--nodes", "1", "--block-time-ms", "300"],
    );
    support::edit_config(
        tmp.path(),
        0,
        &[
            ("max_batch_len = 100", "max_batch_len = 3"),
            ("max_logs_range = 10000", "max_logs_range = 5"),
            ("max_request_bytes = 1048576", "max_request_bytes = 65536"),
            ("call_gas_cap = 30000000", "call_gas_cap = 2000000"),
        ],
    );
    let _node = support::Nodes::start(tmp.path(), 1, "info");
    let port = 9500 + offset;
    support::wait_port(&format!("127.0.0.1:{port}"), Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    while height(port) < 7 {
        assert!(Instant::now() < deadline, "node never reached block 7");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Malformed JSON, unknown methods, bad parameters: standard codes, messages that say what.
    let (status, body) = post(port, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ");
    assert_eq!(status, 200);
    assert_eq!(error_of(&serde_json::from_str(&body).unwrap()).0, -32700);
    assert_eq!(
        error_of(&call(port, "eth_noSuchMethod", json!([]))).0,
        -32601
    );
    let (code, msg) = error_of(&call(port, "eth_getBalance", json!(["0x12", "latest"])));
    assert_eq!(code, -32602);
    assert!(msg.contains("20-byte address"), "{msg}");
    let (code, msg) = error_of(&call(
        port,
        "eth_getBlockByNumber",
        json!(["tomorrow", false]),
    ));
    assert_eq!(code, -32602);
    assert!(msg.contains("expected a tag"), "{msg}");
    // Issue 14: a newest block of u64::MAX wrapped into a scan of the whole chain.
    let (code, msg) = error_of(&call(
        port,
        "eth_feeHistory",
        json!(["0x10", "0xffffffffffffffff", [50]]),
    ));
    assert_eq!(code, -32602, "{msg}");
    assert!(msg.contains("past the chain head"), "{msg}");
    let (code, msg) = error_of(&call(port, "eth_sendRawTransaction", json!(["0xdeadbeef"])));
    assert_eq!(code, -32602);
    assert!(msg.contains("decode"), "{msg}");

    // Batch length.
    let one = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []});
    let (status, body) = post(port, &json!([one, one, one]).to_string());
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&body).unwrap().len(), 3);
    let (_, body) = post(port, &json!([one, one, one, one]).to_string());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v.get("error").is_some() || v[0].get("error").is_some(),
        "a batch over the limit must be refused: {body}"
    );

    // Request size.
    let big = format!("0x{}", "ab".repeat(40_000));
    let req =
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [big]});
    let (status, _) = post(port, &req.to_string());
    assert_eq!(
        status, 413,
        "a request over rpc.max_request_bytes is refused"
    );

    // Log range.
    let (code, msg) = error_of(&call(
        port,
        "eth_getLogs",
        json!([{"fromBlock": "0x1", "toBlock": "0x7"}]),
    ));
    assert_eq!(code, -32000);
    assert!(msg.contains("max block range"), "{msg}");
    let ok = call(
        port,
        "eth_getLogs",
        json!([{"fromBlock": "0x1", "toBlock": "0x5"}]),
    );
    assert!(ok["result"].is_array(), "{ok}");

    // Filter size: every block's bloom and every log would be tested against each address
    // and topic alternative, so a huge filter is refused before any block is read.
    let many_addresses: Vec<String> = (0..1001).map(|i| format!("0x{i:040x}")).collect();
    let (code, msg) = error_of(&call(
        port,
        "eth_getLogs",
        json!([{"fromBlock": "0x1", "toBlock": "0x2", "address": many_addresses}]),
    ));
    assert_eq!(code, -32602);
    assert!(msg.contains("at most 1000 addresses"), "{msg}");
    let many_topics: Vec<String> = (0..101).map(|i| format!("0x{i:064x}")).collect();
    let (code, msg) = error_of(&call(
        port,
        "eth_getLogs",
        json!([{"fromBlock": "0x1", "toBlock": "0x2", "topics": [null, many_topics]}]),
    ));
    assert_eq!(code, -32602);
    assert!(msg.contains("alternatives per position"), "{msg}");

    // Call gas cap: an endless loop (JUMPDEST PUSH1 0 JUMP) as init code runs out of the
    // capped gas, not the 1e9 asked for.
    let started = Instant::now();
    let r = call(
        port,
        "eth_call",
        json!([{"data": "0x5b600056", "gas": "0x3b9aca00"}, "latest"]),
    );
    let (_, msg) = error_of(&r);
    assert!(
        msg.to_lowercase().contains("halt") || msg.contains("gas"),
        "{msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let r = call(
        port,
        "eth_estimateGas",
        json!([{"data": "0x5b600056"}, "latest"]),
    );
    assert!(r.get("error").is_some(), "{r}");

    // A web page may not call the node: a foreign Host (DNS rebinding) or a browser Origin
    // is refused before any method runs, WebSocket upgrades included.
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": "hmy_blockedPeers", "params": []});
    let (status, _) = request(port, "Host: evil.example:9500\r\n", &req.to_string());
    assert_eq!(status, 403, "foreign Host refused");
    let own = format!("Host: 127.0.0.1:{port}\r\n");
    let (status, body) = request(
        port,
        &format!("{own}Origin: https://evil.example\r\n"),
        &req.to_string(),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("rpc.allowed_origins"), "{body}");
    let (status, _) = request(
        port,
        &format!(
            "{own}Origin: http://localhost:3000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        ),
        "",
    );
    assert_eq!(status, 403, "cross-origin WebSocket refused");
    // Without an Origin (scripts, wallet back ends) the same call is served.
    let (status, _) = request(port, &own, &req.to_string());
    assert_eq!(status, 200);

    logs_subscriptions_share_one_budget(port);

    // Still finalizing.
    let h = height(port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while height(port) <= h + 2 {
        assert!(Instant::now() < deadline, "node stopped finalizing");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 14: live `logs` subscriptions on all connections together name at most 65,536
/// addresses and topics; past that a subscription is refused with -32005, and the entries come
/// back when subscriptions end.
fn logs_subscriptions_share_one_budget(port: u16) {
    use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
    use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addresses: Vec<String> = (0..1000).map(|i| format!("0x{i:040x}")).collect();
        let filter = json!({ "address": addresses });
        let url = format!("ws://127.0.0.1:{port}");
        async fn subscribe(
            c: &WsClient,
            filter: &Value,
        ) -> Result<Subscription<Value>, jsonrpsee::core::ClientError> {
            c.subscribe(
                "eth_subscribe",
                jsonrpsee::rpc_params!["logs", filter.clone()],
                "eth_unsubscribe",
            )
            .await
        }
        let first = WsClientBuilder::default().build(&url).await.unwrap();
        let second = WsClientBuilder::default().build(&url).await.unwrap();
        // Each costs 1 + 1,000 entries: 64 on one connection (its own limit), one more on
        // another still fits (65,065), the next does not.
        let mut held: Vec<Subscription<Value>> = Vec::new();
        for i in 0..64 {
            held.push(
                subscribe(&first, &filter)
                    .await
                    .unwrap_or_else(|e| panic!("subscription {i}: {e}")),
            );
        }
        held.push(
            subscribe(&second, &filter)
                .await
                .expect("65,065 entries fit"),
        );
        let err = subscribe(&second, &filter).await.unwrap_err().to_string();
        assert!(
            err.contains("-32005") || err.contains("limit exceeded"),
            "{err}"
        );
        assert!(err.contains("65536 addresses and topics"), "{err}");
        // newHeads holds no filter: still served.
        let heads = second
            .subscribe::<Value, _>(
                "eth_subscribe",
                jsonrpsee::rpc_params!["newHeads"],
                "eth_unsubscribe",
            )
            .await
            .expect("newHeads is not limited by filter entries");
        drop(heads);
        // Ending subscriptions gives their entries back.
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match subscribe(&second, &filter).await {
                Ok(_) => break,
                Err(e) => {
                    assert!(Instant::now() < deadline, "entries never came back: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
}
