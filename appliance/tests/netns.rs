//! Real node processes in Linux network namespaces joined by veth pairs through a router
//! namespace, with a userspace UDP proxy there adding delay, loss and reordering (this kernel
//! has no netem and no packet filter). Shows: killing the leader causes a view change and the
//! chain continues; a partitioned minority stalls nothing; healing a partitioned majority
//! resumes finality; no two nodes ever disagree.
//!
//! Needs root and `ip` (iproute2) and `curl`; prints why it skips otherwise.

use serde_json::Value;
use state::ChainSpec;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_harmony-appliance");
const NODES: usize = 4;
const SUBNET: &str = "10.213";

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

struct Lab {
    id: u32,
    dir: PathBuf,
    nodes: Vec<Option<Child>>,
    proxy: Option<Child>,
}

impl Lab {
    fn router(&self) -> String {
        format!("hr{}", self.id)
    }
    fn ns(&self, i: usize) -> String {
        format!("hn{}x{i}", self.id)
    }
    fn router_if(&self, i: usize) -> String {
        format!("vr{}x{i}", self.id)
    }

    /// Router namespace with forwarding; one namespace per node, linked to the router by a veth
    /// pair on its own /24.
    fn build(id: u32, dir: PathBuf) -> Result<Self, String> {
        let lab = Lab {
            id,
            dir,
            nodes: (0..NODES).map(|_| None).collect(),
            proxy: None,
        };
        let r = lab.router();
        sh(&["ip", "netns", "add", &r])?;
        sh(&["ip", "netns", "exec", &r, "ip", "link", "set", "lo", "up"])?;
        sh(&[
            "ip",
            "netns",
            "exec",
            &r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])?;
        for i in 0..NODES {
            let (n, vr, vn) = (lab.ns(i), lab.router_if(i), format!("vn{}x{i}", id));
            sh(&["ip", "netns", "add", &n])?;
            sh(&["ip", "netns", "exec", &n, "ip", "link", "set", "lo", "up"])?;
            sh(&[
                "ip", "link", "add", &vr, "netns", &r, "type", "veth", "peer", "name", &vn,
                "netns", &n,
            ])?;
            sh(&[
                "ip",
                "netns",
                "exec",
                &r,
                "ip",
                "addr",
                "add",
                &format!("{SUBNET}.{i}.1/24"),
                "dev",
                &vr,
            ])?;
            sh(&["ip", "netns", "exec", &r, "ip", "link", "set", &vr, "up"])?;
            sh(&[
                "ip",
                "netns",
                "exec",
                &n,
                "ip",
                "addr",
                "add",
                &format!("{SUBNET}.{i}.2/24"),
                "dev",
                &vn,
            ])?;
            sh(&["ip", "netns", "exec", &n, "ip", "link", "set", &vn, "up"])?;
            sh(&[
                "ip",
                "netns",
                "exec",
                &n,
                "ip",
                "route",
                "add",
                "default",
                "via",
                &format!("{SUBNET}.{i}.1"),
            ])?;
        }
        Ok(lab)
    }

    fn start(&mut self, i: usize) {
        let dir = self.dir.join(format!("node{i}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(i), BIN, "run", "--data-dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // `ip netns exec` execs the node, so the pid is the node's; make sure nothing is left.
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.ns(i)])
            .output()
            .map(|o| {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            });
    }

    fn link(&self, i: usize, up: bool) {
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.router(),
            "ip",
            "link",
            "set",
            &self.router_if(i),
            if up { "up" } else { "down" },
        ])
        .unwrap();
    }

    /// One JSON-RPC call to node i, made from the router namespace.
    fn rpc(&self, i: usize, method: &str, params: Value) -> Option<Value> {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                .to_string();
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.router(),
                "curl",
                "-s",
                "-m",
                "2",
                "-H",
                "Content-Type: application/json",
                "-d",
                &body,
            ])
            .arg(format!("http://{SUBNET}.{i}.2:9500"))
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(v["result"].clone())
    }

    /// Node i's height; 0 when it cannot be asked (link down, node stopped). A failed query
    /// is retried once, so one slow `curl` under load does not read as height 0.
    fn height(&self, i: usize) -> u64 {
        for _ in 0..2 {
            let h = self
                .rpc(i, "eth_blockNumber", serde_json::json!([]))
                .and_then(|v| u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok());
            if let Some(h) = h {
                return h;
            }
        }
        0
    }

    fn hash(&self, i: usize, n: u64) -> Option<String> {
        let b = self.rpc(
            i,
            "eth_getBlockByNumber",
            serde_json::json!([format!("0x{n:x}"), false]),
        )?;
        b["hash"].as_str().map(str::to_owned)
    }

    fn metric(&self, i: usize, name: &str) -> f64 {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.router(), "curl", "-s", "-m", "2"])
            .arg(format!("http://{SUBNET}.{i}.2:9900/metrics"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn wait(&self, what: &str, limit: Duration, f: impl Fn(&Lab) -> bool) {
        let start = Instant::now();
        while !f(self) {
            if start.elapsed() >= limit {
                let heights: Vec<u64> = (0..NODES).map(|i| self.height(i)).collect();
                panic!("timed out after {limit:?} waiting for {what}; heights {heights:?}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        println!("{what}: {:.1} s", start.elapsed().as_secs_f64());
    }

    /// Equal hashes at the highest common height mean equal chains below it (each header names
    /// its parent's hash); the last ten heights are compared to say where a split began.
    fn assert_agreement(&self, nodes: &[usize]) {
        // A probe through the router can fail transiently (a link just came back up).
        self.wait("every node to answer", Duration::from_secs(30), |l| {
            nodes.iter().all(|&i| l.height(i) > 0)
        });
        let top = nodes.iter().map(|&i| self.height(i)).min().unwrap_or(0);
        assert!(top > 0, "a node could not be asked for its height");
        for n in top.saturating_sub(9).max(1)..=top {
            let hashes: Vec<_> = nodes
                .iter()
                .map(|&i| (0..3).find_map(|_| self.hash(i, n)))
                .collect();
            assert!(
                hashes.windows(2).all(|w| w[0] == w[1]),
                "disagreement at height {n}: {hashes:?}"
            );
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in 0..NODES {
            self.kill(i);
        }
        if let Some(mut p) = self.proxy.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
        if std::thread::panicking() {
            // Whole logs outlive the temporary directory, for the first panic of a node.
            let keep = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("netns-logs");
            let _ = std::fs::create_dir_all(&keep);
            for i in 0..NODES {
                let path = self.dir.join(format!("node{i}/node.log"));
                let _ = std::fs::copy(&path, keep.join(format!("node{i}.log")));
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                if let Some(first) = log.lines().position(|l| l.contains("panicked at")) {
                    eprintln!(
                        "---- node{i}: first panic ----\n{}",
                        log.lines()
                            .skip(first)
                            .take(3)
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
                // Backtrace frames would crowd out what matters: drop them, keep panics.
                let tail: Vec<_> = log
                    .lines()
                    .filter(|l| !l.contains("libmdbx") && !l.starts_with("  "))
                    .rev()
                    .take(25)
                    .collect();
                eprintln!(
                    "---- node{i} ----\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        for i in 0..NODES {
            let _ = sh(&["ip", "netns", "del", &self.ns(i)]);
        }
        let _ = sh(&["ip", "netns", "del", &self.router()]);
    }
}

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root to create network namespaces".into());
    }
    for tool in ["ip", "curl"] {
        if Command::new(tool).arg("-V").output().is_err()
            && Command::new(tool).arg("--version").output().is_err()
        {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    let probe = format!("hprobe{}", std::process::id());
    match sh(&["ip", "netns", "add", &probe]) {
        Ok(()) => {
            let _ = sh(&["ip", "netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("network namespaces unavailable: {e}")),
    }
}

#[test]
fn namespaces_view_change_partitions_and_healing() {
    if let Some(why) = skip_reason() {
        println!("SKIP namespaces_view_change_partitions_and_healing: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let st = Command::new(BIN)
        .args([
            "localnet",
            "--generate-only",
            "--nodes",
            "4",
            "--block-time-ms",
            "500",
            "--blocks-per-leader",
            "5",
        ])
        .arg("--data-dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(st.status.success());
    // Each validator is reached through its proxy in the router namespace.
    let spec_path = tmp.path().join("chain-spec.toml");
    let mut spec = ChainSpec::load(&spec_path).unwrap();
    let mut routes = Vec::new();
    for i in 0..NODES {
        let proxy: SocketAddr = format!("{SUBNET}.{i}.1:7000").parse().unwrap();
        spec.validators[i].endpoint = proxy;
        routes.push(format!("{proxy}={SUBNET}.{i}.2:9000"));
        let cfg_path = tmp.path().join(format!("node{i}/config.toml"));
        let mut cfg = appliance::config::NodeConfig::load(Some(&cfg_path)).unwrap();
        cfg.network.listen = Some(format!("{SUBNET}.{i}.2:9000").parse().unwrap());
        cfg.rpc.listen = format!("{SUBNET}.{i}.2:9500").parse().unwrap();
        // Not loopback: the operator's peer methods must be off (the node refuses otherwise).
        cfg.rpc.admin_methods = false;
        cfg.metrics.listen = format!("{SUBNET}.{i}.2:9900").parse().unwrap();
        std::fs::write(&cfg_path, cfg.to_toml()).unwrap();
    }
    std::fs::write(&spec_path, spec.to_toml()).unwrap();

    let id = std::process::id() % 100_000;
    let mut lab = match Lab::build(id, tmp.path().to_path_buf()) {
        Ok(l) => l,
        Err(e) => panic!("building the namespaces failed: {e}"),
    };
    let me = std::env::current_exe().unwrap();
    lab.proxy = Some(
        Command::new("ip")
            .args(["netns", "exec", &lab.router()])
            .arg(&me)
            .args(["--exact", "udp_proxy_process", "--ignored", "--nocapture"])
            .env("NETNS_PROXY_ROUTES", routes.join(","))
            .env("NETNS_PROXY_LOSS", "0.01")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for i in 0..NODES {
        lab.start(i);
    }
    let all: Vec<usize> = (0..NODES).collect();
    lab.wait("5 blocks on every node", Duration::from_secs(90), |l| {
        all.iter().all(|&i| l.height(i) >= 5)
    });

    // 1. Kill the leader: a view change, and the chain continues.
    let leader = lab
        .rpc(0, "hmy_consensusStatus", serde_json::json!([]))
        .unwrap()["leader"]
        .as_u64()
        .unwrap() as usize;
    let others: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    let h = lab.height(others[0]);
    lab.kill(leader);
    lab.wait(
        "5 blocks without the leader",
        Duration::from_secs(90),
        |l| l.height(others[0]) >= h + 5,
    );
    let vc: f64 = others
        .iter()
        .map(|&i| lab.metric(i, "harmony_consensus_view_changes_total"))
        .sum();
    assert!(vc >= 1.0, "killing the leader caused a view change");
    lab.start(leader);
    lab.wait("old leader to catch up", Duration::from_secs(90), |l| {
        l.height(leader) + 1 >= l.height(others[0])
    });
    lab.assert_agreement(&all);

    // 2. A minority (one node's link down) stalls nothing.
    let k = others[1];
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != k).collect();
    lab.link(k, false);
    let h = rest.iter().map(|&i| lab.height(i)).max().unwrap();
    lab.wait(
        "5 blocks with one node cut off",
        Duration::from_secs(90),
        |l| rest.iter().all(|&i| l.height(i) >= h + 5),
    );
    lab.link(k, true);
    lab.wait(
        "the cut-off node to catch up",
        Duration::from_secs(90),
        |l| l.height(k) >= h + 5,
    );
    lab.assert_agreement(&all);

    // 3. A partitioned majority stalls finality; healing resumes it.
    lab.link(all[0], false);
    lab.link(all[1], false);
    std::thread::sleep(Duration::from_secs(3));
    let stalled = all.iter().map(|&i| lab.height(i)).max().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let still: Vec<u64> = [2usize, 3].iter().map(|&i| lab.height(i)).collect();
    assert!(
        still.iter().all(|&x| x <= stalled),
        "no quorum, yet blocks were finalized: {still:?} > {stalled}"
    );
    lab.link(all[0], true);
    lab.link(all[1], true);
    lab.wait(
        "finality to resume after healing",
        Duration::from_secs(240),
        |l| all.iter().all(|&i| l.height(i) >= stalled + 3),
    );
    lab.assert_agreement(&all);
}

/// The UDP proxy, run by the test above inside the router namespace (re-executing this test
/// binary). Routes: `listen=upstream,...`; each datagram is delayed 1–20 ms (so datagrams
/// reorder) and dropped with probability `NETNS_PROXY_LOSS`.
#[test]
#[ignore = "helper process of namespaces_view_change_partitions_and_healing"]
fn udp_proxy_process() {
    let Ok(routes) = std::env::var("NETNS_PROXY_ROUTES") else {
        println!("udp_proxy_process only runs as a helper of the namespace test");
        return;
    };
    let loss: f64 = std::env::var("NETNS_PROXY_LOSS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for route in routes.split(',') {
            let (listen, upstream) = route.split_once('=').unwrap();
            let listen: SocketAddr = listen.parse().unwrap();
            let upstream: SocketAddr = upstream.parse().unwrap();
            tasks.push(tokio::spawn(proxy(listen, upstream, loss)));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

async fn proxy(listen: SocketAddr, upstream: SocketAddr, loss: f64) {
    use rand::Rng;
    use std::collections::HashMap;
    use std::sync::Arc;
    use tokio::net::UdpSocket;
    let front = Arc::new(UdpSocket::bind(listen).await.unwrap());
    let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, client)) = front.recv_from(&mut buf).await else {
            continue;
        };
        let up = match clients.get(&client) {
            Some(u) => u.clone(),
            None => {
                let u = Arc::new(UdpSocket::bind("0.0.0.0:0").await.unwrap());
                u.connect(upstream).await.unwrap();
                let (back, front2) = (u.clone(), front.clone());
                tokio::spawn(async move {
                    let mut b = vec![0u8; 65_536];
                    loop {
                        // A connected UDP socket reports an ICMP "port unreachable" (a node not
                        // listening yet, or restarting) as an error on the next recv: keep going.
                        let Ok(m) = back.recv(&mut b).await else {
                            continue;
                        };
                        let data = b[..m].to_vec();
                        let (d, drop) = {
                            let mut r = rand::thread_rng();
                            (r.gen_range(1..20), r.gen_bool(loss))
                        };
                        if drop {
                            continue;
                        }
                        let f = front2.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(d)).await;
                            let _ = f.send_to(&data, client).await;
                        });
                    }
                });
                clients.insert(client, u.clone());
                u
            }
        };
        let data = buf[..n].to_vec();
        let (d, drop) = {
            let mut r = rand::thread_rng();
            (r.gen_range(1..20), r.gen_bool(loss))
        };
        if drop {
            continue;
        }
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(d)).await;
            let _ = up.send(&data).await;
        });
    }
}
