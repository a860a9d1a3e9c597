//! Four real node processes on loopback: agreement, a killed validator, garbage from a peer,
//! and catch-up after restart.

mod support;
use appliance::net::{Mesh, MeshConfig, MeshHandle, PeerInfo, TransportIdentity};
use consensus::{Message, Vote};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use serde_json::Value;
use state::ChainSpec;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_harmony-appliance");
const NODES: usize = 4;

struct Net {
    dir: PathBuf,
    offset: u16,
    children: Vec<Option<Child>>,
}

impl Net {
    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}"))
    }

    fn start(&mut self, i: usize) {
        let dir = self.node_dir(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .unwrap();
        let child = Command::new(BIN)
            .arg("run")
            .arg("--data-dir")
            .arg(&dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn client(&self, i: usize) -> HttpClient {
        HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(2))
            .build(format!(
                "http://127.0.0.1:{}",
                9500 + self.offset as usize + i
            ))
            .unwrap()
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.node_dir(i).join("node.log")).unwrap_or_default()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for i in 0..NODES {
                let log = self.log(i);
                let tail: String = log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                eprintln!("---- node{i} log (tail) ----\n{tail}");
            }
        }
    }
}

/// Generates a 4-node localnet (ports shifted by `offset`) with `extra` arguments, in a fresh
/// temporary directory that lives as long as the returned handle.
fn generate(offset: u16, extra: &[&str]) -> (tempfile::TempDir, ChainSpec, Net) {
    let tmp = tempfile::tempdir().unwrap();
    let status = Command::new(BIN)
        .args(["localnet", "--generate-only", "--nodes", "4"])
        .args(extra)
        .arg("--port-offset")
        .arg(offset.to_string())
        .arg("--data-dir")
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let spec = ChainSpec::load(&tmp.path().join("chain-spec.toml")).unwrap();
    let net = Net {
        dir: tmp.path().to_path_buf(),
        offset,
        children: (0..NODES).map(|_| None).collect(),
    };
    (tmp, spec, net)
}

async fn height(c: &HttpClient) -> Option<u64> {
    let h: String = c.request("eth_blockNumber", rpc_params![]).await.ok()?;
    u64::from_str_radix(h.trim_start_matches("0x"), 16).ok()
}

async fn block_hash(c: &HttpClient, n: u64) -> String {
    let b: Value = c
        .request(
            "eth_getBlockByNumber",
            rpc_params![format!("0x{n:x}"), false],
        )
        .await
        .unwrap();
    b["hash"]
        .as_str()
        .unwrap_or_else(|| panic!("block {n} missing: {b}"))
        .to_string()
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

async fn assert_same_hashes(net: &Net, nodes: &[usize], upto: u64) {
    // Each node has stored `upto` (a block is final on one node a moment before the rest).
    for &i in nodes {
        wait_for(
            &format!("node{i} to reach {upto}"),
            Duration::from_secs(10),
            async || height(&net.client(i)).await.unwrap_or(0) >= upto,
        )
        .await;
    }
    for n in 1..=upto {
        let want = block_hash(&net.client(nodes[0]), n).await;
        for &i in &nodes[1..] {
            assert_eq!(
                block_hash(&net.client(i), n).await,
                want,
                "node{i} disagrees at height {n}"
            );
        }
    }
}

/// Waits until node `i` finalizes a block through consensus itself (not catch-up).
async fn finalizes_in_consensus(offset: u16, i: usize) {
    let name = "harmony_consensus_blocks_finalized_total";
    let before = support::metric(offset, i, name).await;
    wait_for(
        &format!("node{i} to finalize in consensus"),
        Duration::from_secs(30),
        async || support::metric(offset, i, name).await > before,
    )
    .await;
}

/// A mesh speaking with node `i`'s transport key (whose file we hold), on its endpoint, while
/// node `i` is down.
fn impostor(net: &Net, spec: &ChainSpec, i: usize) -> MeshHandle {
    let identity =
        TransportIdentity::from_pkcs8_file(net.node_dir(i).join("keys/transport.pk8")).unwrap();
    let peers = spec
        .validators
        .iter()
        .enumerate()
        .map(|(i, v)| PeerInfo {
            index: i,
            endpoint: v.endpoint,
            transport_key: state::spec::parse_hex::<32>(&v.transport_key).unwrap(),
        })
        .collect();
    let (mesh, _inbound) = Mesh::start(MeshConfig {
        listen: spec.validators[i].endpoint,
        identity,
        peers,
        spec_hash: spec.hash().0,
        max_message_bytes: 8 << 20,
    })
    .unwrap();
    mesh
}

/// Sends garbage to node 0 while pretending to be node 3 (whose key file we hold).
async fn impersonate_and_send_garbage(net: &Net, spec: &ChainSpec) {
    let mesh = impostor(net, spec, 3);
    let garbage_vote = Vote {
        number: 1_000_000,
        view: 1,
        hash: Default::default(),
        bitmap: vec![0xff].into(),
        signature: vec![7; 96].into(),
    };
    for _ in 0..20 {
        mesh.send(0, vec![0xde, 0xad, 0xbe, 0xef]);
        mesh.send(0, vec![99]);
        mesh.send(0, Message::Prepare(garbage_vote.clone()).encode());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mesh.shutdown().await;
}

async fn check_rpc(c: &HttpClient, chain_id: u64) {
    let id: String = c.request("eth_chainId", rpc_params![]).await.unwrap();
    assert_eq!(id, format!("0x{chain_id:x}"));
    let h: Value = c.request("hmy_latestHeader", rpc_params![]).await.unwrap();
    for field in [
        "blockNumber",
        "blockHash",
        "viewID",
        "epoch",
        "shardID",
        "leader",
    ] {
        assert!(!h[field].is_null(), "hmy_latestHeader lacks {field}: {h}");
    }
    let n = h["blockNumber"].as_u64().unwrap();
    let b: Value = c
        .request(
            "eth_getBlockByNumber",
            rpc_params![format!("0x{n:x}"), false],
        )
        .await
        .unwrap();
    assert_eq!(b["hash"], h["blockHash"]);
    assert_eq!(b["miner"], h["leader"]);
    let latest: Value = c
        .request("eth_getBlockByNumber", rpc_params!["latest", false])
        .await
        .unwrap();
    assert!(
        latest["number"].is_string()
            && !latest["parentHash"].is_null()
            && !latest["timestamp"].is_null()
    );
    let err = c
        .request::<Value, _>("eth_getBlockByNumber", rpc_params!["yesterday", false])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expected a tag"), "{err}");
    let missing: Value = c
        .request("eth_getBlockByNumber", rpc_params!["0xffffff", false])
        .await
        .unwrap();
    assert!(missing.is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_agree_survive_a_kill_and_catch_up() {
    let offset = 1000 + (std::process::id() % 40) as u16 * 10;
    let (_tmp, spec, mut net) = generate(offset, &["--block-time-ms", "250"]);
    for i in 0..NODES {
        net.start(i);
    }

    // 20 finalized blocks, identical on every node.
    wait_for(
        "20 blocks on every node",
        Duration::from_secs(90),
        async || {
            for i in 0..NODES {
                if height(&net.client(i)).await.unwrap_or(0) < 20 {
                    return false;
                }
            }
            true
        },
    )
    .await;
    assert_same_hashes(&net, &[0, 1, 2, 3], 20).await;
    check_rpc(&net.client(1), spec.chain_id).await;
    // Every vote went through the double-sign guard (exported once per status interval).
    wait_for(
        "guard records in metrics",
        Duration::from_secs(10),
        async || support::metric(offset, 1, "harmony_signer_guard_records_total").await >= 20.0,
    )
    .await;
    assert_eq!(
        support::metric(offset, 1, "harmony_signer_guard_refusals_total").await,
        0.0
    );

    // Kill a non-leader (node 0 leads for the whole test); the chain goes on without it, and
    // garbage sent in its name changes nothing.
    net.kill(3);
    let at_kill = height(&net.client(0)).await.unwrap();
    impersonate_and_send_garbage(&net, &spec).await;
    wait_for(
        "10 more blocks with node3 down",
        Duration::from_secs(60),
        async || height(&net.client(0)).await.unwrap_or(0) >= at_kill + 10,
    )
    .await;
    let h = height(&net.client(1)).await.unwrap();
    assert_same_hashes(&net, &[0, 1, 2], h).await;
    let faults = support::metric(offset, 0, "harmony_network_peer_faults_total{peer=\"3\"}").await;
    assert!(faults >= 10.0, "garbage from node3 was counted: {faults}");
    assert!(
        net.log(0).contains("rejected message from peer"),
        "reason logged"
    );
    // Ten faults cost the peer its connection (HET-61).
    assert!(
        support::metric(
            offset,
            0,
            "harmony_network_peer_bans_total{reason=\"score\"}"
        )
        .await
            >= 1.0
    );
    let blocked: Vec<u64> = net
        .client(0)
        .request("hmy_blockedPeers", rpc_params![])
        .await
        .unwrap();
    assert_eq!(blocked, vec![3]);
    // The operator lifts the ban at run time (and can block by key or index).
    let after: Vec<u64> = net
        .client(0)
        .request("hmy_unblockPeer", rpc_params![3])
        .await
        .unwrap();
    assert!(after.is_empty());
    let key = spec.validators[2].transport_key.clone();
    let blocked: Vec<u64> = net
        .client(1)
        .request("hmy_blockPeer", rpc_params![key.clone()])
        .await
        .unwrap();
    assert_eq!(blocked, vec![2]);
    let blocked: Vec<u64> = net
        .client(1)
        .request("hmy_unblockPeer", rpc_params![key])
        .await
        .unwrap();
    assert!(blocked.is_empty());
    let err = net
        .client(1)
        .request::<Value, _>("hmy_blockPeer", rpc_params![17])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("names no known peer"), "{err}");

    // Restarted, node 3 catches up from its peers and agrees.
    net.start(3);
    wait_for("node3 to catch up", Duration::from_secs(60), async || {
        let lead = height(&net.client(0)).await.unwrap_or(0);
        height(&net.client(3)).await.unwrap_or(0) + 2 >= lead && lead > at_kill + 10
    })
    .await;
    let h3 = height(&net.client(3)).await.unwrap();
    assert_same_hashes(&net, &[0, 3], h3).await;
    assert!(
        support::metric(offset, 3, "harmony_sync_blocks_total").await >= 10.0,
        "node3 used catch-up"
    );
    // And then it takes part in consensus again (finalizes blocks itself).
    finalizes_in_consensus(offset, 3).await;

    // Clean stop on SIGTERM.
    for i in 0..NODES {
        let mut c = net.children[i].take().unwrap();
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let st = c.wait().unwrap();
        assert!(st.success(), "node{i} exited with {st}");
        assert!(net.log(i).contains("stopped cleanly"));
    }
}

#[test]
fn corrupted_config_and_spec_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let st = Command::new(BIN)
        .args(["localnet", "--generate-only", "--nodes", "2", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(st.status.success());
    let node = tmp.path().join("node0");
    let check = |dir: &Path| {
        Command::new(BIN)
            .args(["config", "check", "--data-dir"])
            .arg(dir)
            .output()
            .unwrap()
    };
    let ok = check(&node);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // A config with a bad field.
    let cfg_path = node.join("config.toml");
    let good_cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        good_cfg.replace("format = \"human\"", "format = \"xml\""),
    )
    .unwrap();
    let out = check(&node);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("log.format"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&cfg_path, &good_cfg).unwrap();

    // `run` refuses the development key backend (a BLS key in a plain file).
    std::fs::write(
        &cfg_path,
        good_cfg.replace("backend = \"keystore\"", "backend = \"local\""),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", "--data-dir"])
        .arg(&node)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("keys.backend") && err.contains("plain file"),
        "{err}"
    );
    std::fs::write(&cfg_path, &good_cfg).unwrap();

    // A spec whose proof of possession belongs to another key.
    let spec_path = tmp.path().join("chain-spec.toml");
    let mut spec = ChainSpec::load(&spec_path).unwrap();
    spec.validators[1].bls_keys[0].proof_of_possession =
        spec.validators[0].bls_keys[0].proof_of_possession.clone();
    std::fs::write(&spec_path, spec.to_toml()).unwrap();
    let out = check(&node);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("validators[1].bls_keys[0].proof_of_possession"),
        "{err}"
    );

    // A spec that is not TOML at all.
    std::fs::write(&spec_path, "chain_id = [").unwrap();
    let out = check(&node);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chain-spec.toml"));
}

async fn status(c: &HttpClient) -> Option<Value> {
    c.request("hmy_consensusStatus", rpc_params![]).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_causes_a_view_change_and_the_chain_continues() {
    let offset = 3000 + (std::process::id() % 40) as u16 * 10;
    let (_tmp, _spec, mut net) = generate(
        offset,
        &["--block-time-ms", "250", "--blocks-per-leader", "5"],
    );
    for i in 0..NODES {
        net.start(i);
    }
    wait_for("8 blocks", Duration::from_secs(60), async || {
        height(&net.client(1)).await.unwrap_or(0) >= 8
    })
    .await;

    // Kill whoever leads now.
    let leader = status(&net.client(0)).await.unwrap()["leader"]
        .as_u64()
        .unwrap() as usize;
    let at_kill = height(&net.client((leader + 1) % NODES)).await.unwrap();
    net.kill(leader);
    let others: Vec<usize> = (0..NODES).filter(|&i| i != leader).collect();
    wait_for(
        "10 blocks after the leader died",
        Duration::from_secs(60),
        async || height(&net.client(others[0])).await.unwrap_or(0) >= at_kill + 10,
    )
    .await;
    let mut changes = 0.0;
    for &i in &others {
        changes += support::metric(offset, i, "harmony_consensus_view_changes_total").await;
    }
    assert!(changes >= 1.0, "a view change happened");
    let h = height(&net.client(others[2])).await.unwrap();
    assert_same_hashes(&net, &others, h).await;

    // The old leader comes back, catches up and agrees.
    net.start(leader);
    wait_for(
        "old leader to catch up",
        Duration::from_secs(60),
        async || height(&net.client(leader)).await.unwrap_or(0) >= h + 3,
    )
    .await;
    assert_same_hashes(&net, &[others[0], leader], h + 3).await;

    // The load generator against the healed network: deploys its token, funds its accounts,
    // and every transaction it offers is included.
    let rpc: Vec<String> = (0..NODES)
        .map(|i| format!("http://127.0.0.1:{}", 9500 + offset as usize + i))
        .collect();
    let out = Command::new(BIN)
        .args([
            "loadgen",
            "--rpc",
            &rpc.join(","),
            "--rate",
            "100",
            "--duration-s",
            "3",
        ])
        .args(["--accounts", "20", "--drain-s", "20"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen failed: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in ["refused     0", "included    300 tx", "not seen    0"] {
        assert!(
            report.contains(line),
            "loadgen report lacks {line:?}:\n{report}"
        );
    }
}

/// A validator that was down from genesis joins when the chain is more than two sync batches
/// (64 blocks each) long: it verifies, executes and stores them off its event loop, batch after
/// batch, and then votes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_validator_catches_up_over_several_sync_batches() {
    let offset = 5000 + (std::process::id() % 40) as u16 * 10;
    let (_tmp, _spec, mut net) = generate(offset, &["--block-time-ms", "50"]);
    for i in 0..3 {
        net.start(i);
    }
    wait_for(
        "140 blocks on node0",
        Duration::from_secs(120),
        async || height(&net.client(0)).await.unwrap_or(0) >= 140,
    )
    .await;
    net.start(3);
    wait_for("node3 to catch up", Duration::from_secs(90), async || {
        let lead = height(&net.client(0)).await.unwrap_or(0);
        height(&net.client(3)).await.unwrap_or(0) + 2 >= lead
    })
    .await;
    let synced = support::metric(offset, 3, "harmony_sync_blocks_total").await;
    assert!(synced >= 129.0, "node3 stored {synced} blocks by catch-up");
    let h3 = height(&net.client(3)).await.unwrap();
    assert_same_hashes(&net, &[0, 3], h3).await;
    finalizes_in_consensus(offset, 3).await;
}

/// A peer that claims a far height many times a second and never answers a sync request
/// (here: node 2's key, after node 2 stopped) does not hold catch-up: after one unanswered
/// request the late node asks another peer that claims to be ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_claims_a_height_and_never_answers_does_not_hold_catch_up() {
    let offset = 6500 + (std::process::id() % 40) as u16 * 10;
    let (_tmp, spec, mut net) = generate(offset, &["--block-time-ms", "50"]);
    for i in 0..3 {
        net.start(i);
    }
    wait_for("40 blocks on node0", Duration::from_secs(60), async || {
        height(&net.client(0)).await.unwrap_or(0) >= 40
    })
    .await;
    let syncing: Value = net
        .client(0)
        .request("eth_syncing", rpc_params![])
        .await
        .unwrap();
    assert_eq!(syncing, Value::Bool(false), "node 0 is in sync");
    // Node 2 stops: two of four cannot finalize, the chain halts where it is. Nodes 0 and 1
    // go down too for now, so the liar below is the only peer node 3 hears at first.
    net.kill(2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let halted = height(&net.client(0)).await.unwrap();
    net.kill(0);
    net.kill(1);

    // Node 2's key now claims block 1,000,000 to node 3, a hundred times a second.
    let liar = impostor(&net, &spec, 2);
    let claim = consensus::Message::Status(consensus::Status {
        number: 1_000_000,
        hash: Default::default(),
    })
    .encode();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spam = {
        let (liar, stop) = (liar.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                liar.send(3, claim.clone());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Node 3 starts from genesis, asks the liar, and gets nothing.
    net.start(3);
    wait_for(
        "node3 to give up on the liar",
        Duration::from_secs(30),
        async || net.log(3).contains("left a sync request unanswered"),
    )
    .await;
    // Behind a claim it cannot reach, node 3 says it is syncing (as geth: start, current,
    // highest); node 0 said false while the chain was live.
    wait_for(
        "node3 to report syncing",
        Duration::from_secs(10),
        async || {
            let s: Option<Value> = net
                .client(3)
                .request("eth_syncing", rpc_params![])
                .await
                .ok();
            s.is_some_and(|s| {
                s["highestBlock"] == "0xf4240"
                    && s["currentBlock"] == "0x0"
                    && s["startingBlock"] == "0x0"
            })
        },
    )
    .await;
    // Honest peers return; node 3 catches up from them although the liar keeps claiming
    // (a hundred times for each of their status messages).
    let started = Instant::now();
    net.start(0);
    net.start(1);
    wait_for("node3 to catch up", Duration::from_secs(15), async || {
        height(&net.client(3)).await.unwrap_or(0) >= halted
    })
    .await;
    eprintln!(
        "node3 caught up {halted} blocks in {:.1} s while a peer claimed block 1,000,000",
        started.elapsed().as_secs_f64()
    );
    assert_same_hashes(&net, &[0, 3], halted).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = spam.await;
    liar.shutdown().await;
}

/// `make localnet` as an operator runs it: the supervisor starts 4 nodes, its status lines show
/// blocks finalized with every node up, its output holds nothing else (libmdbx's fork handler
/// once printed "rthc_afterfork: drown 0 rthc entries" per node), and an interrupt stops every
/// node before it exits.
#[test]
fn the_supervisor_reports_finality_and_stops_its_nodes_on_interrupt() {
    use std::io::{BufRead, BufReader, Read};
    let tmp = tempfile::tempdir().unwrap();
    let offset = support::port_offset(2000);
    let mut sup = support::Kill(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(tmp.path())
            .args(["localnet", "--block-time-ms", "250", "--port-offset"])
            .arg(offset.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = sup.0.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = BufReader::new(sup.0.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                panic!("no status line with height 3 in 60 s:\n{}", seen.join("\n"))
            });
        seen.push(line.clone());
        // Status lines: "height N | epoch E | last finality X ms | ... | nodes up 4/4".
        let height = line
            .split(" | ")
            .next()
            .and_then(|h| h.rsplit(' ').next())
            .and_then(|h| h.parse::<u64>().ok());
        if height.is_some_and(|h| h >= 3) && line.ends_with("nodes up 4/4") {
            assert!(line.contains(" ms | "), "no finality time: {line}");
            break;
        }
    }
    let node0 = std::net::SocketAddr::from(([127, 0, 0, 1], 9500 + offset));
    assert!(std::net::TcpStream::connect(node0).is_ok());
    // SAFETY: a signal to the child this test spawned.
    unsafe {
        libc::kill(sup.0.id() as i32, libc::SIGINT);
    }
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = sup.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "the supervisor did not exit within 20 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "supervisor exited with {status}");
    seen.extend(rx.try_iter());
    assert!(
        seen.iter().any(|l| l.contains("all nodes stopped")),
        "{}",
        seen.join("\n")
    );
    for i in 0..4u16 {
        let rpc = std::net::SocketAddr::from(([127, 0, 0, 1], 9500 + offset + i));
        assert!(
            std::net::TcpStream::connect(rpc).is_err(),
            "node{i} still answers on {rpc} after the supervisor stopped"
        );
    }
    let errors = errors.join().unwrap();
    assert!(
        errors.trim().is_empty(),
        "the supervisor wrote to stderr: {errors}"
    );
    let noise: Vec<_> = seen
        .iter()
        .filter(|l| {
            !(l.starts_with("height ")
                || l.starts_with("node")
                || l.starts_with("  (")
                || l.starts_with("generated ")
                || l.starts_with("development accounts")
                || l.starts_with("waiting for nodes")
                || l.contains("all nodes stopped")
                || l.trim().is_empty())
        })
        .collect();
    assert!(noise.is_empty(), "unexpected output lines: {noise:?}");
}
