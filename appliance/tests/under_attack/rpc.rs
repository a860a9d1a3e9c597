//! The attacks on node 0's JSON-RPC port (HTTP and WebSocket), measured like the peer attacks
//! but judged by node 0's refusal counters instead of a peer score.

use super::*;

async fn subscribe_errors(offset: u16) -> f64 {
    metric(
        offset,
        0,
        "harmony_rpc_requests_total{method=\"eth_subscribe\",status=\"error\"}",
    )
    .await
}

/// Opens WebSocket clients 10 at a time up to 120 (the node allows 100), each asking for 70
/// subscriptions (it allows 64), alternating newHeads and logs filters naming 1,000
/// addresses; past 120 the oldest 10 are dropped and replaced each round. Connections the
/// node refused are counted in `counted`.
fn ws_storm(port: u16, counted: Arc<AtomicU64>) -> Attack {
    use jsonrpsee::core::client::SubscriptionClientT;
    use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
    let rt = tokio::runtime::Handle::current();
    let addresses: Vec<String> = (0..1000).map(|i| format!("0x{i:040x}")).collect();
    let filter = serde_json::json!({ "address": addresses });
    #[allow(clippy::type_complexity)]
    let mut clients: std::collections::VecDeque<(
        WsClient,
        Vec<jsonrpsee::core::client::Subscription<serde_json::Value>>,
    )> = Default::default();
    let attack: Attack = Box::new(move |_| {
        rt.block_on(async {
            if clients.len() >= 110 {
                clients.drain(..10);
            }
            for _ in 0..10 {
                let connect = WsClientBuilder::default()
                    .max_buffer_capacity_per_subscription(4)
                    .request_timeout(Duration::from_secs(2))
                    .connection_timeout(Duration::from_secs(2))
                    .build(format!("ws://127.0.0.1:{port}"));
                let Ok(c) = connect.await else {
                    counted.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let mut subs = Vec::new();
                for i in 0..70 {
                    let params = if i % 2 == 0 {
                        jsonrpsee::rpc_params!["newHeads"]
                    } else {
                        jsonrpsee::rpc_params!["logs", filter.clone()]
                    };
                    if let Ok(sub) = c
                        .subscribe::<serde_json::Value, _>(
                            "eth_subscribe",
                            params,
                            "eth_unsubscribe",
                        )
                        .await
                    {
                        subs.push(sub);
                    }
                }
                // Held (open) with the client until it is churned out; nothing reads them.
                clients.push_back((c, subs));
            }
        });
        std::thread::sleep(Duration::from_millis(200));
    });
    attack
}

/// What an attack on node 0's RPC port is measured against: the same finality window and bound
/// as the peer attacks; the attacker is judged by a refusal counter instead of a peer score.
pub struct RpcTarget<'a> {
    pub client: &'a jsonrpsee::http_client::HttpClient,
    pub tip: &'a AtomicU64,
    pub pid: u32,
    pub bound: f64,
    pub idle_p99_ms: f64,
}

impl RpcTarget<'_> {
    /// Costly calls from four connections at once: endless `eth_call` loops, whole-chain
    /// `eth_feeHistory`, `eth_getLogs` naming 1,000 addresses.
    pub async fn costly_calls(&self, offset: u16) -> String {
        let name = "RPC: endless eth_call loops, whole-chain eth_feeHistory, 1,000-address eth_getLogs (4 clients)";
        let port = 9500 + offset;
        let addresses: Vec<String> = (0..1000).map(|i| format!("\"0x{i:040x}\"")).collect();
        let bodies = [
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"data":"0x5b600056","gas":"0x3b9aca00"},"latest"]}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_feeHistory","params":["0x400","latest",[1,50,99]]}"#.to_string(),
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{{"fromBlock":"0x0","toBlock":"latest","address":[{}]}}]}}"#,
                addresses.join(",")
            ),
        ];
        let attack = move || -> Attack {
            let bodies = bodies.clone();
            Box::new(move |round| {
                std::thread::scope(|s| {
                    for c in 0..4 {
                        let body = &bodies[(round as usize + c) % bodies.len()];
                        s.spawn(move || rpc_post(port, body));
                    }
                });
            })
        };
        self.attack(
            name,
            attack,
            "refused or failed calls",
            async || rpc_refusals(offset).await,
            String::new,
        )
        .await
    }

    /// WebSocket clients churning over the node's connection and subscription limits.
    pub async fn websocket_storm(&self, offset: u16) -> String {
        let name = "WebSocket storm: 120 connections churning, 70 subscriptions each (newHeads, 1,000-address logs)";
        let refused_connections = Arc::new(AtomicU64::new(0));
        let connections = refused_connections.clone();
        let counted = refused_connections.clone();
        let line = self
            .attack(
                name,
                move || ws_storm(9500 + offset, counted.clone()),
                "subscriptions refused",
                async || subscribe_errors(offset).await,
                move || {
                    format!(
                        ", connections refused {}",
                        connections.load(Ordering::Relaxed)
                    )
                },
            )
            .await;
        assert!(
            refused_connections.load(Ordering::Relaxed) > 0,
            "no connection was refused: {line}"
        );
        line
    }

    /// Runs an attack from `make` for one window (two when the first is over the bound),
    /// prints and returns its line, and asserts that finality and memory held and that
    /// `refusals` (a counter of node 0's) grew.
    async fn attack(
        &self,
        name: &str,
        mut make: impl FnMut() -> Attack,
        refused_what: &str,
        refusals: impl AsyncFn() -> f64,
        detail: impl FnOnce() -> String,
    ) -> String {
        let refused_before = refusals().await;
        let rss_before = rss_mib(self.pid);
        let cpu_before = cpu_s(self.pid);
        let m = attacked_window(
            self.client,
            self.tip,
            self.pid,
            &mut make,
            WINDOW,
            self.bound,
        )
        .await;
        let refused = refusals().await - refused_before;
        let line = describe(
            name,
            &m,
            self.idle_p99_ms,
            rss_before,
            &format!(
                "{refused_what} +{refused}{}; CPU node 0 {:.1} s",
                detail(),
                cpu_s(self.pid) - cpu_before
            ),
        );
        check_held(&m, self.bound, rss_before, &line);
        assert!(refused > 0.0, "nothing was refused: {line}");
        line
    }
}

/// Node 0's RPC calls refused (host, origin, busy) or failed (`eth_call` out of capped gas).
async fn rpc_refusals(offset: u16) -> f64 {
    metric(offset, 0, "harmony_rpc_refused_total").await
        + metric(
            offset,
            0,
            "harmony_rpc_requests_total{method=\"eth_call\",status=\"error\"}",
        )
        .await
}

/// One JSON-RPC POST over a fresh connection; the answer is read and dropped.
fn rpc_post(port: u16, body: &str) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.read_to_end(&mut Vec::new());
}
