//! The shipped observability against a running 4-node localnet: a real Prometheus (Debian's
//! `prometheus`, started here) scrapes the nodes and a real node_exporter with the shipped
//! alert rules loaded; every PromQL expression of the dashboards and alert rules must
//! evaluate without error, every dashboard query that the localnet should feed must return
//! data, and every rule must evaluate healthy.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A program the test needs; a missing one fails the test with the command that installs it
/// (`make test` installs it through scripts/ensure-deps.sh).
fn require(program: &str, package: &str) -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` not found: install it with `apt-get install {package}` (make test does)"
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One instant query through Prometheus's HTTP API.
fn query(prom: u16, expr: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-G"])
        .arg(format!("http://127.0.0.1:{prom}/api/v1/query"))
        .arg("--data-urlencode")
        .arg(format!("query={expr}"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON from Prometheus for {expr} ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn get(prom: u16, path: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{prom}{path}"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_and_alert_expression_evaluates_on_a_live_localnet() {
    let prometheus = require("prometheus", "prometheus");
    let node_exporter = require("prometheus-node-exporter", "prometheus-node-exporter");
    require("curl", "curl");

    let dir = tempfile::tempdir().unwrap();
    let offset = port_offset(8500);
    generate(dir.path(), offset, &["--block-time-ms", "500"]);
    let _nodes = Nodes::start(dir.path(), 4, "warn");
    let metrics: Vec<String> = (0..4)
        .map(|i| format!("127.0.0.1:{}", 9900 + offset + i))
        .collect();
    for m in &metrics {
        wait_port(m, Duration::from_secs(60));
    }

    let exporter_port = free_port();
    let _exporter = Kill(
        Command::new(node_exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom_port = free_port();
    let rules = repo()
        .join("deploy/prometheus/alerts.yml")
        .canonicalize()
        .unwrap();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files: [\"{}\"]\n\
         scrape_configs:\n\
         - job_name: harmony-appliance\n  static_configs: [{{targets: [{}]}}]\n\
         - job_name: node\n  static_configs: [{{targets: [\"127.0.0.1:{exporter_port}\"]}}]\n",
        rules.display(),
        metrics
            .iter()
            .map(|m| format!("\"{m}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::write(dir.path().join("prometheus.yml"), cfg).unwrap();
    let _prom = Kill(
        Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let ready = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", prom_port)).is_err() {
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        assert!(
            std::time::Instant::now() < ready,
            "Prometheus did not start:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Some traffic for the execution, mempool and RPC panels: transfers through every node.
    let rpcs = rpc_urls(offset, 4).join(",");
    let load = Command::new(BIN)
        .args([
            "loadgen",
            "--rate",
            "40",
            "--duration-s",
            "8",
            "--accounts",
            "16",
        ])
        .args(["--drain-s", "4", "--rpc", &rpcs])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(load.success(), "loadgen failed against the localnet");
    // Rate windows are 1m; 20 s of 1 s scrapes give every rate() and increase() samples.
    tokio::time::sleep(Duration::from_secs(20)).await;

    let up = query(prom_port, "sum(up)");
    let up: f64 = up["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap();
    assert_eq!(
        up, 5.0,
        "Prometheus does not scrape all 4 nodes and node_exporter"
    );

    let out = Command::new("python3")
        .arg(repo().join("scripts/observability.py"))
        .arg("exprs")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exprs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(exprs.len() > 50, "only {} expressions", exprs.len());
    let (mut errors, mut empty, mut with_data) = (Vec::new(), Vec::new(), 0);
    for e in &exprs {
        let (source, expr) = (e["source"].as_str().unwrap(), e["expr"].as_str().unwrap());
        let r = query(prom_port, expr);
        if r["status"] != "success" {
            errors.push(format!("{source}: {expr}: {}", r["error"]));
            continue;
        }
        let has = r["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        if has {
            with_data += 1;
        } else if e["expect_data"] == true {
            empty.push(format!("{source}: {expr}"));
        }
    }
    println!(
        "{} expressions evaluated, {with_data} with data, {} failed, {} empty where data was expected",
        exprs.len(),
        errors.len(),
        empty.len()
    );
    assert!(
        errors.is_empty(),
        "expressions that do not evaluate:\n{}",
        errors.join("\n")
    );
    assert!(
        empty.is_empty(),
        "queries with no data on a live localnet:\n{}",
        empty.join("\n")
    );

    // The rules are loaded and every one evaluates healthy.
    let rules = get(prom_port, "/api/v1/rules");
    let rules: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    assert!(rules.len() >= 10, "only {} rules loaded", rules.len());
    let unhealthy: Vec<String> = rules
        .iter()
        .filter(|r| r["health"] != "ok")
        .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
        .collect();
    assert!(
        unhealthy.is_empty(),
        "unhealthy rules:\n{}",
        unhealthy.join("\n")
    );
    // A healthy localnet pages nobody about consensus: these must not be firing or pending.
    let alerts = get(prom_port, "/api/v1/alerts");
    let active: Vec<String> = alerts["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_string())
        .collect();
    for quiet in [
        "HarmonyNodeDown",
        "HarmonyNotFinalizing",
        "HarmonyDoubleSignRefused",
        "HarmonySignerDown",
        "HarmonyPeersLow",
    ] {
        assert!(
            !active.iter().any(|a| a == quiet),
            "{quiet} is active: {active:?}"
        );
    }
}
