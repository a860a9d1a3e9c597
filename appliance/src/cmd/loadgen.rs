//! `loadgen`: signed ETH and ERC-20 transfers from many accounts, sent through JSON-RPC at a
//! target rate, as a wallet-side load would arrive; reports what was offered, refused,
//! included and how long submit → final took.
//!
//! Setup (from the public development accounts of a `localnet`): deploy the ERC-20 of
//! `contracts/build/ERC20.json`, then fund `--accounts` loader accounts with ETH and tokens,
//! each development account in rounds that stay under the pool's per-sender limit. Load: every
//! transaction of the run is signed first (so signing is not in the measured window), then
//! sent at `--rate` per second, round-robin over the RPC endpoints, from the accounts in turn.
//! Blocks are final when included (1-block finality), so a transaction's latency is the time
//! from its submission to the first poll that sees it in a block.

use crate::lock::LockExt;
use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use clap::Args;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ERC20_JSON: &str = include_str!("../../../contracts/build/ERC20.json");
/// Transactions one development account sends per funding round (the pool holds 64 per
/// sender).
const FUNDING_ROUND: usize = 60;
const GWEI: u128 = 1_000_000_000;
/// The fee cap of every load transaction. The base fee climbs 12.5% per full block (EIP-1559),
/// from 1 gwei past 100 gwei after ~40 full blocks (10 s at 250 ms): a cap that low priced the
/// load out of the chain in the middle of a run and emptied blocks with the pool full. 5,000
/// gwei lasts ~72 full blocks in a row; a sender's 40 pending ERC-20 transfers at that cap still
/// cost under its 20 ETH.
const MAX_FEE: u128 = 5_000 * GWEI;
/// With `--retry-full`: how long a refused transaction waits before it is sent again, and how
/// many times.
const RETRY_AFTER: Duration = Duration::from_millis(250);
const MAX_RETRIES: u32 = 40;

#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// JSON-RPC endpoints, comma-separated; transactions go to them in turn.
    #[arg(
        long,
        default_value = "http://127.0.0.1:9500,http://127.0.0.1:9501,http://127.0.0.1:9502,http://127.0.0.1:9503"
    )]
    pub rpc: String,
    /// Transactions offered per second.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    pub duration_s: u64,
    /// Sending accounts (funded from the development accounts first).
    #[arg(long, default_value_t = 1000)]
    pub accounts: usize,
    /// Share of ERC-20 transfers (the rest are ETH transfers), 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    pub erc20_share: f64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Seconds to wait after the load for the last transactions to be included.
    #[arg(long, default_value_t = 10)]
    pub drain_s: u64,
    /// Send a transaction refused with "txpool is full" again every 250 ms (up to 40 times),
    /// as a wallet would, instead of counting it refused and sending its account's next
    /// nonces above the gap.
    #[arg(long)]
    pub retry_full: bool,
}

/// One account of the run: key, address and the next nonce.
struct Account {
    key: PrivateKeySigner,
    address: Address,
    nonce: u64,
}

impl Account {
    fn new(key: PrivateKeySigner, nonce: u64) -> Self {
        Self {
            address: key.address(),
            key,
            nonce,
        }
    }

    /// Signs the next transaction of this account.
    fn sign(&mut self, chain_id: u64, to: TxKind, gas: u64, value: U256, input: Bytes) -> Bytes {
        let tx = TxEip1559 {
            chain_id,
            nonce: self.nonce,
            gas_limit: gas,
            max_fee_per_gas: MAX_FEE,
            max_priority_fee_per_gas: GWEI,
            to,
            value,
            input,
            ..Default::default()
        };
        self.nonce += 1;
        let sig = self
            .key
            .sign_hash_sync(&tx.signature_hash())
            .expect("local keys sign");
        let env: TxEnvelope = tx.into_signed(sig).into();
        env.encoded_2718().into()
    }
}

fn transfer_call(to: Address, amount: U256) -> Bytes {
    let mut d = Vec::with_capacity(68);
    d.extend_from_slice(&keccak256("transfer(address,uint256)")[..4]);
    d.extend_from_slice(&[0u8; 12]);
    d.extend_from_slice(to.as_slice());
    d.extend_from_slice(&amount.to_be_bytes::<32>());
    d.into()
}

fn deploy_code(supply: U256) -> eyre::Result<Bytes> {
    let v: serde_json::Value = serde_json::from_str(ERC20_JSON)?;
    let hex_code = v["bytecode"]
        .as_str()
        .ok_or_else(|| eyre::eyre!("ERC20.json has no bytecode"))?;
    let mut code = hex::decode(hex_code.trim_start_matches("0x"))?;
    code.extend_from_slice(&supply.to_be_bytes::<32>());
    Ok(code.into())
}

fn quantity(v: &serde_json::Value) -> eyre::Result<u64> {
    let s = v
        .as_str()
        .ok_or_else(|| eyre::eyre!("expected a hex quantity, got {v}"))?;
    Ok(u64::from_str_radix(s.trim_start_matches("0x"), 16)?)
}

/// One submission through the JSON-RPC client (setup: deploy and funding).
async fn send(client: &HttpClient, raw: &Bytes) -> Result<B256, String> {
    client
        .request::<B256, _>("eth_sendRawTransaction", rpc_params![raw])
        .await
        .map_err(|e| match e {
            jsonrpsee::core::ClientError::Call(c) => c.message().to_string(),
            other => other.to_string(),
        })
}

/// The load's send path: each transaction's `eth_sendRawTransaction` body is built before the
/// run (like its signature), then posted as is over a pool of keep-alive HTTP/1.1 connections.
/// A generic JSON-RPC client serializes and parses every call, which on a shared 2-core box
/// took CPU from the nodes being measured (44 µs per request).
#[derive(Clone)]
struct RawSender {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<hyper::body::Bytes>,
    >,
    uri: hyper::Uri,
}

impl RawSender {
    fn new(url: &str) -> eyre::Result<Self> {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        Ok(Self {
            client,
            uri: url.parse()?,
        })
    }

    /// The request body that submits `raw`.
    fn body(raw: &Bytes) -> hyper::body::Bytes {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["{raw}"]}}"#
        )
        .into()
    }

    /// Posts one pre-built body; the node's error message when it refuses.
    async fn send(&self, body: hyper::body::Bytes) -> Result<(), String> {
        use http_body_util::BodyExt;
        let request = hyper::Request::post(self.uri.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(body))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(10), async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        })
        .await
        .map_err(|_| "request timed out after 10 s".to_string())??;
        let (status, bytes) = response;
        answer(status, &bytes)
    }
}

/// Reads the node's answer to one submission: a result is success; otherwise the error's
/// message (or the HTTP status, for an answer that is not JSON-RPC).
fn answer(status: hyper::StatusCode, body: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| format!("HTTP {status}: {}", String::from_utf8_lossy(body).trim()))?;
    if v.get("result").is_some_and(|r| !r.is_null()) {
        return Ok(());
    }
    Err(v["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}: {v}")))
}

/// `who`'s nonce at `tag`: `latest` to see what was included, `pending` to continue after
/// what an earlier run left pooled (starting at `latest` would collide with it: "replacement
/// transaction underpriced").
async fn nonce(client: &HttpClient, who: Address, tag: &str) -> eyre::Result<u64> {
    let n: serde_json::Value = client
        .request("eth_getTransactionCount", rpc_params![who, tag])
        .await?;
    quantity(&n)
}

/// Sends `txs` (account index, raw) and waits until every sender's nonce passed them.
async fn send_and_wait(
    client: &HttpClient,
    txs: Vec<(Address, u64, Bytes)>,
    what: &str,
) -> eyre::Result<()> {
    let mut last: HashMap<Address, u64> = HashMap::new();
    for (from, n, raw) in &txs {
        send(client, raw)
            .await
            .map_err(|e| eyre::eyre!("{what}: {from} nonce {n} refused: {e}"))?;
        last.insert(*from, *n);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for (who, n) in last {
        while nonce(client, who, "latest").await? <= n {
            if Instant::now() > deadline {
                eyre::bail!("{what}: {who}'s transactions not included after 60 s; is the network finalizing?");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Deploys the token and funds the loader accounts; returns them and the token address.
async fn setup(
    client: &HttpClient,
    chain_id: u64,
    args: &LoadgenArgs,
) -> eyre::Result<(Vec<Account>, Address)> {
    let mut devs = Vec::new();
    for (address, key) in crate::cmd::localnet::dev_accounts()? {
        let n = nonce(client, address, "pending").await?;
        devs.push(Account::new(PrivateKeySigner::from_bytes(&key)?, n));
    }
    let supply = U256::from(10u64).pow(U256::from(30u64));
    let token = devs[0].address.create(devs[0].nonce);
    let code = deploy_code(supply)?;
    let n0 = devs[0].nonce;
    let deploy = devs[0].sign(chain_id, TxKind::Create, 2_000_000, U256::ZERO, code);
    let mut txs = vec![(devs[0].address, n0, deploy)];
    let share = supply / U256::from(devs.len() as u64 * 2);
    for i in 1..devs.len() {
        let to = devs[i].address;
        let n = devs[0].nonce;
        let raw = devs[0].sign(
            chain_id,
            TxKind::Call(token),
            100_000,
            U256::ZERO,
            transfer_call(to, share),
        );
        txs.push((devs[0].address, n, raw));
    }
    send_and_wait(client, txs, "deploying the ERC-20").await?;

    // The same accounts every run (a chain that ran the load before has them funded and
    // their nonces advanced).
    let mut accounts = Vec::with_capacity(args.accounts);
    for i in 0..args.accounts {
        let seed = keccak256(format!("harmony-appliance loadgen account {i}"));
        let key = PrivateKeySigner::from_bytes(&seed)?;
        let n = nonce(client, key.address(), "pending").await?;
        accounts.push(Account::new(key, n));
    }
    let ether = U256::from(10u64).pow(U256::from(18u64));
    let mut todo: Vec<Vec<Address>> = vec![Vec::new(); devs.len()];
    for (i, a) in accounts.iter().enumerate() {
        todo[i % devs.len()].push(a.address);
    }
    // Two transactions (ETH, tokens) per account; rounds under the per-sender pool limit.
    let per_round = FUNDING_ROUND / 2;
    let rounds = todo
        .iter()
        .map(|t| t.len())
        .max()
        .unwrap_or(0)
        .div_ceil(per_round);
    for round in 0..rounds {
        let mut txs = Vec::new();
        for (d, targets) in todo.iter().enumerate() {
            for to in targets.iter().skip(round * per_round).take(per_round) {
                let dev = &mut devs[d];
                let n = dev.nonce;
                let raw = dev.sign(
                    chain_id,
                    TxKind::Call(*to),
                    21_000,
                    ether * U256::from(20),
                    Bytes::new(),
                );
                txs.push((dev.address, n, raw));
                let n = dev.nonce;
                let raw = dev.sign(
                    chain_id,
                    TxKind::Call(token),
                    100_000,
                    U256::ZERO,
                    transfer_call(*to, share / U256::from(args.accounts as u64 + 1)),
                );
                txs.push((dev.address, n, raw));
            }
        }
        send_and_wait(client, txs, "funding the loader accounts").await?;
        eprint!(
            "\rfunded {}/{} accounts",
            ((round + 1) * per_round * todo.len()).min(args.accounts),
            args.accounts
        );
    }
    eprintln!();
    Ok((accounts, token))
}

/// What happened to each transaction sent: submit time, and inclusion time once seen.
#[derive(Default)]
struct Ledger {
    submitted: HashMap<B256, Instant>,
    latencies_ms: Vec<f64>,
    refused: BTreeMap<String, u64>,
    included_in_window: u64,
    last_inclusion: Option<Instant>,
    /// (number, gas used, transactions, when the watcher first saw it).
    blocks: Vec<(u64, u64, usize, Instant)>,
    /// Round trips of the watcher's `eth_blockNumber`: is RPC responsive under load?
    rpc_ms: Vec<f64>,
    /// Sends repeated after "txpool is full" (`--retry-full`).
    retries: u64,
}

pub fn run(args: LoadgenArgs) -> eyre::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: LoadgenArgs) -> eyre::Result<()> {
    if !(0.0..=1.0).contains(&args.erc20_share) || args.rate == 0 || args.accounts == 0 {
        eyre::bail!("--erc20-share must be in [0, 1], --rate and --accounts above 0");
    }
    // The load goes to every endpoint in turn; setup and the block watcher use the first.
    let senders: Vec<RawSender> = args
        .rpc
        .split(',')
        .map(|u| RawSender::new(u.trim()))
        .collect::<eyre::Result<_>>()?;
    let first = args.rpc.split(',').next().unwrap_or_default().trim();
    let client = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(10))
        .max_concurrent_requests(args.concurrency.max(1))
        .build(first)?;
    let chain_id = quantity(
        &client
            .request::<serde_json::Value, _>("eth_chainId", rpc_params![])
            .await
            .map_err(|e| {
                eyre::eyre!("cannot reach {first}: {e}; start a network first (make localnet)")
            })?,
    )?;
    let (mut accounts, token) = setup(&client, chain_id, &args).await?;

    let total = (args.rate * args.duration_s) as usize;
    eprintln!("signing {total} transactions...");
    let mut txs = Vec::with_capacity(total);
    for k in 0..total {
        let n = accounts.len();
        let to = accounts[(k * 7 + 1) % n].address;
        let a = &mut accounts[k % n];
        // Deterministic mix: ERC-20 for the first `share` of every 100.
        let raw = if ((k % 100) as f64) < args.erc20_share * 100.0 {
            a.sign(
                chain_id,
                TxKind::Call(token),
                60_000,
                U256::ZERO,
                transfer_call(to, U256::from(1)),
            )
        } else {
            a.sign(
                chain_id,
                TxKind::Call(to),
                21_000,
                U256::from(1),
                Bytes::new(),
            )
        };
        txs.push((keccak256(&raw), RawSender::body(&raw)));
    }

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let start_block = quantity(&client.request("eth_blockNumber", rpc_params![]).await?)?;
    let watcher = tokio::spawn(watch_blocks(client.clone(), start_block, ledger.clone()));
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let cpu_before = own_cpu_s();
    let began = Instant::now();
    let tick = Duration::from_millis(10);
    let per_tick = (args.rate as f64 / 100.0).max(0.0);
    let mut sent = 0usize;
    let mut interval = tokio::time::interval(tick);
    let mut handles = Vec::with_capacity(total);
    while sent < total {
        interval.tick().await;
        let due = ((began.elapsed().as_secs_f64() * 100.0 + 1.0) * per_tick) as usize;
        while sent < due.min(total) {
            let (hash, body) = txs[sent].clone();
            let sender = senders[sent % senders.len()].clone();
            let ledger = ledger.clone();
            let permit = permits.clone().acquire_owned().await?;
            ledger.locked().submitted.insert(hash, Instant::now());
            let (permits, retry) = (permits.clone(), args.retry_full);
            handles.push(tokio::spawn(async move {
                let mut permit = Some(permit);
                let mut attempt = 0;
                let r = loop {
                    let r = sender.send(body.clone()).await;
                    // A wallet whose transaction met a full pool sends it again later; sending
                    // the account's next nonces meanwhile would leave them gapped for ever.
                    match r {
                        Err(e)
                            if retry && e.contains("txpool is full") && attempt < MAX_RETRIES =>
                        {
                            attempt += 1;
                            ledger.locked().retries += 1;
                            drop(permit.take());
                            tokio::time::sleep(RETRY_AFTER).await;
                            permit = permits.clone().acquire_owned().await.ok();
                        }
                        r => break r,
                    }
                };
                drop(permit);
                if let Err(e) = r {
                    let mut l = ledger.locked();
                    l.submitted.remove(&hash);
                    *l.refused.entry(reason_of(&e)).or_default() += 1;
                }
            }));
            sent += 1;
        }
    }
    let last_send = Instant::now();
    for h in handles {
        let _ = h.await;
    }
    let offered_s = began.elapsed().as_secs_f64();
    let load_cpu_s = own_cpu_s()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let drain_until = Instant::now() + Duration::from_secs(args.drain_s);
    while Instant::now() < drain_until && !ledger.locked().submitted.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.abort();
    report(
        &args,
        &ledger.locked(),
        total,
        offered_s,
        (began, last_send),
    );
    if let Some(cpu) = load_cpu_s {
        // On a box shared with the nodes, this is CPU the nodes did not get.
        println!(
            "  loader CPU  {cpu:.2} s while sending ({:.0} µs per transaction)",
            cpu * 1e6 / total.max(1) as f64
        );
    }
    Ok(())
}

/// CPU time (user + system) this process has used, from /proc (in USER_HZ ticks, which Linux
/// fixes at 100 for what it reports to user space).
fn own_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, hence the last ')').
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // utime and stime: fields 14 and 15 of the line, 11 and 12 after the name.
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// Polls for new blocks and records when each submitted transaction was first seen in one.
async fn watch_blocks(client: HttpClient, mut next: u64, ledger: Arc<Mutex<Ledger>>) {
    next += 1;
    loop {
        let asked = Instant::now();
        let head = match client
            .request::<serde_json::Value, _>("eth_blockNumber", rpc_params![])
            .await
        {
            Ok(v) => quantity(&v).unwrap_or(0),
            Err(_) => 0,
        };
        let rtt = asked.elapsed().as_secs_f64() * 1000.0;
        ledger.locked().rpc_ms.push(rtt);
        while next <= head {
            let block: Result<serde_json::Value, _> = client
                .request(
                    "eth_getBlockByNumber",
                    rpc_params![format!("0x{next:x}"), false],
                )
                .await;
            let Ok(block) = block else { break };
            let now = Instant::now();
            let hashes: Vec<B256> = block["transactions"]
                .as_array()
                .map(|a| a.iter().filter_map(|h| h.as_str()?.parse().ok()).collect())
                .unwrap_or_default();
            let gas = quantity(&block["gasUsed"]).unwrap_or(0);
            let mut l = ledger.locked();
            l.blocks.push((next, gas, hashes.len(), now));
            for h in hashes {
                if let Some(t) = l.submitted.remove(&h) {
                    l.latencies_ms
                        .push(now.duration_since(t).as_secs_f64() * 1000.0);
                    l.included_in_window += 1;
                    l.last_inclusion = Some(now);
                }
            }
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A refusal's message with its numbers replaced by `N`, so refusals group by reason.
fn reason_of(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Blocks seen this long after the first send have a pool that the load had time to fill.
const LOAD_WARMUP: Duration = Duration::from_secs(2);

/// Fullness (gas used / gas limit) of the blocks seen while the load was still being offered,
/// after the warm-up: the blocks an overload should keep full. The drain's tail of emptier
/// blocks after the last send is not in it.
fn fullness_under_load(
    blocks: &[(u64, u64, usize, Instant)],
    from: Instant,
    to: Instant,
) -> Vec<f64> {
    blocks
        .iter()
        .filter(|(.., seen)| *seen >= from && *seen <= to)
        .map(|(_, gas, ..)| *gas as f64 / state::GAS_LIMIT as f64)
        .collect()
}

fn report(
    args: &LoadgenArgs,
    l: &Ledger,
    total: usize,
    offered_s: f64,
    window: (Instant, Instant),
) {
    let (began, last_send) = window;
    let mut lat = l.latencies_ms.clone();
    lat.sort_by(|a, b| a.total_cmp(b));
    let refused: u64 = l.refused.values().sum();
    let elapsed = l
        .last_inclusion
        .map_or(offered_s, |t| t.duration_since(began).as_secs_f64());
    let mut rpc = l.rpc_ms.clone();
    rpc.sort_by(|a, b| a.total_cmp(b));
    let blocks = &l.blocks;
    let full: Vec<f64> = blocks
        .iter()
        .map(|(_, gas, ..)| *gas as f64 / state::GAS_LIMIT as f64)
        .collect();
    let loaded = fullness_under_load(blocks, began + LOAD_WARMUP, last_send);
    let mean_full = if full.is_empty() {
        0.0
    } else {
        full.iter().sum::<f64>() / full.len() as f64
    };
    println!(
        "loadgen: {} accounts, {:.0}% ERC-20, {} endpoints",
        args.accounts,
        args.erc20_share * 100.0,
        args.rpc.split(',').count()
    );
    println!(
        "  offered     {total} tx in {offered_s:.1} s = {:.0} tx/s (target {})",
        total as f64 / offered_s,
        args.rate
    );
    println!(
        "  refused     {refused} (sent again after a full pool: {})",
        l.retries
    );
    for (reason, n) in &l.refused {
        println!("    {n:>8}  {reason}");
    }
    println!("  included    {} tx in {elapsed:.1} s = {:.0} tx/s ({} blocks, mean fullness {:.0}% of the gas limit)", l.included_in_window, l.included_in_window as f64 / elapsed, blocks.len(), mean_full * 100.0);
    if !loaded.is_empty() {
        let n = loaded.len();
        let min = loaded.iter().copied().fold(f64::INFINITY, f64::min);
        let at_85 = loaded.iter().filter(|f| **f >= 0.85).count();
        println!(
            "  under load  {n} blocks seen from {} s after the start to the last send: mean fullness {:.0}%, min {:.0}%, {at_85} of {n} at ≥ 85%",
            LOAD_WARMUP.as_secs(),
            loaded.iter().sum::<f64>() / n as f64 * 100.0,
            min * 100.0
        );
    }
    println!(
        "  not seen    {} (still pooled or dropped after the drain)",
        l.submitted.len()
    );
    println!(
        "  submit→final ms: p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  eth_blockNumber round trip ms under load: p50 {:.1}  p99 {:.1}  max {:.1}",
        percentile(&rpc, 0.5),
        percentile(&rpc, 0.99),
        rpc.last().copied().unwrap_or(f64::NAN)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_success_or_the_nodes_message() {
        let ok = hyper::StatusCode::OK;
        let body = RawSender::body(&Bytes::from_static(&[0x02, 0xab]));
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent["params"][0], "0x02ab");
        assert_eq!(sent["method"], "eth_sendRawTransaction");
        assert_eq!(
            answer(ok, br#"{"jsonrpc":"2.0","id":1,"result":"0x12"}"#),
            Ok(())
        );
        assert_eq!(
            answer(
                ok,
                br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"txpool is full"}}"#
            ),
            Err("txpool is full".to_string())
        );
        let busy = answer(
            hyper::StatusCode::TOO_MANY_REQUESTS,
            b"Too many connections",
        );
        assert_eq!(
            busy,
            Err("HTTP 429 Too Many Requests: Too many connections".to_string())
        );
    }

    #[test]
    fn fullness_under_load_keeps_only_the_blocks_seen_while_offered() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let half = state::GAS_LIMIT / 2;
        let blocks = [
            (1, 0, 0, at(500)), // warm-up: pool still filling
            (2, state::GAS_LIMIT, 1428, at(2_500)),
            (3, half, 714, at(3_500)),
            (4, 0, 0, at(9_000)), // drain tail after the last send
        ];
        let got = fullness_under_load(&blocks, at(2_000), at(4_000));
        assert_eq!(got, vec![1.0, 0.5]);
        assert!(fullness_under_load(&blocks, at(5_000), at(6_000)).is_empty());
    }

    #[test]
    fn refusals_group_by_reason_without_their_numbers() {
        assert_eq!(
            reason_of("nonce too low: next nonce 12, tx nonce 3"),
            "nonce too low: next nonce N, tx nonce N"
        );
    }
}
