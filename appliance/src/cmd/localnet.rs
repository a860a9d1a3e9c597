//! `harmony-appliance localnet`: generates keys, a chain spec and configs for N nodes on
//! loopback, runs one `harmony-appliance run` process per node and shows a live status line.
//!
//! Node i listens on QUIC 127.0.0.1:9000+i/udp, RPC 127.0.0.1:9500+i and metrics
//! 127.0.0.1:9900+i (plus `--port-offset`). Re-running resumes the same chain; `--reset`
//! starts over. The keys are development keys written in plain files: never use them on a
//! public network (the chain id is not Harmony's).
// libc: child nodes die with the supervisor (prctl in pre_exec), and signals to them;
// mdbx-sys: libmdbx's log level before forking.
#![allow(unsafe_code)]

use super::Cli;
use crate::config::NodeConfig;
use accel::SecretKey;
use alloy_primitives::{keccak256, Address};
use clap::Args;
use eyre::{bail, WrapErr};
use rand::RngCore;
use state::{ChainSpec, Validator, ValidatorKey};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Chain id of generated local networks (not one of Harmony's).
pub const LOCALNET_CHAIN_ID: u64 = 31_415_926;
/// The standard development mnemonic (Hardhat, Anvil): its keys are public, which is why the
/// localnet chain id is not Harmony's.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";
/// Prefunded development accounts (m/44'/60'/0'/0/i for i below this).
pub const DEV_ACCOUNTS: u32 = 10;
/// Each development account starts with 10,000 ether.
pub const DEV_BALANCE_ETHER: u64 = 10_000;

/// The development accounts: address and private key.
pub fn dev_accounts() -> eyre::Result<Vec<(Address, alloy_primitives::B256)>> {
    (0..DEV_ACCOUNTS)
        .map(|i| {
            let signer = alloy_signer_local::MnemonicBuilder::english()
                .phrase(DEV_MNEMONIC)
                .index(i)?
                .build()?;
            Ok((signer.address(), signer.to_bytes()))
        })
        .collect()
}

fn print_dev_accounts() -> eyre::Result<()> {
    println!(
        "development accounts ({DEV_BALANCE_ETHER} ETH each in genesis; mnemonic \"{DEV_MNEMONIC}\"; \
         these keys are public: never use them on a real network):"
    );
    for (i, (address, key)) in dev_accounts()?.into_iter().enumerate() {
        println!("  ({i}) {address}  private key {key}");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct LocalnetArgs {
    /// Number of validator nodes.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Target block time in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub block_time_ms: u64,
    /// Blocks each leader proposes before the next one takes over (Harmony HET-8).
    #[arg(long, default_value_t = 10)]
    pub blocks_per_leader: u64,
    /// Squarings of each epoch's VDF (1,024-bit discriminant, about 180,000 a second on one current core).
    #[arg(long, default_value_t = 20_000)]
    pub vdf_iterations: u64,
    /// Blocks per epoch. Short by default so an election (at each epoch's last block) comes
    /// within a minute at 2-second blocks; mainnet Harmony uses 32,768.
    #[arg(long, default_value_t = 30)]
    pub epoch_blocks: u64,
    /// Extra nodes outside the chain spec (node<nodes>, …): they sync as observers, listed in
    /// every node's `network.observers`, until registered with `staking create-validator`
    /// and elected. Fixed when the network is generated.
    #[arg(long, default_value_t = 0)]
    pub observers: usize,
    /// Delete the data directory and start a new chain.
    #[arg(long)]
    pub reset: bool,
    /// Only write keys, spec and configs; start nothing.
    #[arg(long)]
    pub generate_only: bool,
    /// Added to every port (QUIC 9000+i, RPC 9500+i, metrics 9900+i), to run beside another network.
    #[arg(long, default_value_t = 0)]
    pub port_offset: u16,
    /// Where nodes keep their BLS keys: `keystore` (EIP-2335 files, password in a 0600 file
    /// in each node's keys/) or `mockhsm` (sealed under a MockHsm that localnet serves per
    /// node with `hsm mock-connector` on 127.0.0.1:12400+i, which also holds the transport
    /// key). The double-sign guard is on in both. Fixed when the network is generated.
    #[arg(long, default_value = "keystore")]
    pub signer: String,
}

pub fn run(cli: &Cli, args: &LocalnetArgs) -> eyre::Result<()> {
    let dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./localnet"));
    if args.nodes == 0 || args.nodes > 64 {
        bail!("--nodes must be between 1 and 64, got {}", args.nodes);
    }
    if args.observers > 16 {
        bail!("--observers must be at most 16, got {}", args.observers);
    }
    let total = args.nodes + args.observers;
    if args.reset && dir.exists() {
        super::keys::localnet_stop_mocks(&dir);
        std::fs::remove_dir_all(&dir).wrap_err_with(|| format!("removing {}", dir.display()))?;
    }
    if !matches!(args.signer.as_str(), "keystore" | "mockhsm") {
        bail!(
            "--signer must be keystore or mockhsm, got `{}`",
            args.signer
        );
    }
    let spec_path = dir.join("chain-spec.toml");
    if spec_path.exists() {
        let spec = ChainSpec::load(&spec_path)?;
        if spec.validators.len() != args.nodes || spec.block_time_ms != args.block_time_ms {
            bail!(
                "{} holds a network of {} nodes with {} ms blocks; pass --reset to start a new one \
                 with {} nodes and {} ms blocks",
                dir.display(),
                spec.validators.len(),
                spec.block_time_ms,
                args.nodes,
                args.block_time_ms
            );
        }
        println!("resuming the local network in {}", dir.display());
        for i in 0..total {
            let node = dir.join(format!("node{i}"));
            if i >= args.nodes && !node.exists() {
                bail!(
                    "{} was generated without observer node{i}; pass --reset to generate one",
                    dir.display()
                );
            }
            super::keys::localnet_resume_node(&node, i, args.port_offset)?;
        }
    } else {
        generate(&dir, args)?;
        println!(
            "generated a {}-node local network in {}",
            args.nodes,
            dir.display()
        );
    }
    if args.generate_only {
        return Ok(());
    }
    print_dev_accounts()?;
    mdbx_warnings_only();
    let exe = std::env::current_exe()?;
    let mut children: Vec<Child> = (0..total)
        .map(|i| {
            spawn(
                &exe,
                &dir.join(format!("node{i}")),
                cli.log_format.as_deref(),
            )
        })
        .collect::<eyre::Result<_>>()?;
    for i in 0..total {
        let role = if i < args.nodes { "" } else { " (observer)" };
        println!(
            "node{i}{role}: QUIC 127.0.0.1:{} RPC http://127.0.0.1:{} metrics http://127.0.0.1:{}/metrics log {}",
            9000 + args.port_offset as usize + i,
            9500 + args.port_offset as usize + i,
            9900 + args.port_offset as usize + i,
            dir.join(format!("node{i}/node.log")).display()
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(status_loop(args, &mut children));
    stop_all(&mut children);
    println!("\nall nodes stopped");
    result
}

fn node_addr(base: u16, offset: u16, i: usize) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], base + offset + i as u16))
}

fn generate(dir: &Path, args: &LocalnetArgs) -> eyre::Result<()> {
    let mut validators = Vec::new();
    let mut configs = Vec::new();
    let mut observers = Vec::new();
    for i in 0..args.nodes + args.observers {
        let node_dir = dir.join(format!("node{i}"));
        let keys_dir = node_dir.join("keys");
        std::fs::create_dir_all(&keys_dir)?;
        let mut ikm = zeroize::Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut ikm[..]);
        let sk = SecretKey::from_ikm(&ikm[..])?;
        let mut cfg = NodeConfig {
            chain_spec: "../chain-spec.toml".into(),
            ..NodeConfig::default()
        };
        // Keys in the chosen backend, registered with the guard (they never signed before).
        let transport = super::keys::localnet_generate_node_keys(
            &node_dir,
            &mut cfg,
            &sk,
            &args.signer,
            i,
            args.port_offset,
        )?;
        if i >= args.nodes {
            // Outside the spec: it listens where the others will dial it.
            cfg.network.listen = Some(node_addr(9000, args.port_offset, i));
            observers.push(crate::config::ObserverConfig {
                transport_key: hex::encode(transport),
                endpoint: node_addr(9000, args.port_offset, i),
            });
            cfg.rpc.listen = node_addr(9500, args.port_offset, i);
            cfg.metrics.listen = node_addr(9900, args.port_offset, i);
            cfg.accel.threads = 1;
            configs.push((node_dir, cfg));
            continue;
        }
        validators.push(Validator {
            address: Address::from_slice(&keccak256(transport)[12..]),
            voting_power: 100,
            transport_key: hex::encode(transport),
            endpoint: node_addr(9000, args.port_offset, i),
            bls_keys: vec![ValidatorKey {
                public_key: hex::encode(sk.public_key().to_bytes()),
                proof_of_possession: hex::encode(sk.prove_possession().to_bytes()),
            }],
        });
        cfg.rpc.listen = node_addr(9500, args.port_offset, i);
        cfg.metrics.listen = node_addr(9900, args.port_offset, i);
        // Several nodes share this machine: one verification thread each.
        cfg.accel.threads = 1;
        configs.push((node_dir, cfg));
    }
    for (node_dir, mut cfg) in configs {
        cfg.network.observers = observers.clone();
        std::fs::write(node_dir.join("config.toml"), cfg.to_toml())?;
    }
    let spec = ChainSpec {
        name: "localnet".into(),
        chain_id: LOCALNET_CHAIN_ID,
        shard: 0,
        block_time_ms: args.block_time_ms,
        blocks_per_leader: args.blocks_per_leader,
        epoch_blocks: args.epoch_blocks,
        genesis_timestamp_ms: crate::chain::now_ms(),
        // New networks start on the newest header version, with staking, the leader's VRF in
        // every header, block rewards (Harmony's numbers) and the epoch VDF. Development
        // accounts hold 10,000 ETH: the minimum self-delegation is lowered to fit.
        forks: [
            (state::forks::HEADER_V2.to_string(), 0),
            (state::forks::STAKING.to_string(), 0),
            (state::forks::VRF.to_string(), 0),
            (state::forks::REWARDS.to_string(), 0),
            (state::forks::VDF.to_string(), 0),
        ]
        .into(),
        // The spec's validators keep 70% of the voting power after elections (Harmony:
        // 49%), so a test validator that registers and never runs a node cannot stall it.
        staking: state::staking::StakingParams {
            min_self_delegation: alloy_primitives::U256::from(1_000u64)
                * alloy_primitives::U256::from(state::staking::ONE),
            internal_voting_share: state::staking::Dec::percent(70),
            ..Default::default()
        },
        economics: Default::default(),
        // A lighter epoch VDF than Harmony's 50,000 squarings, so that test networks with
        // 300 ms blocks and 10-block epochs (half an epoch: 1.5 s) have room on two cores.
        vdf: state::VdfParams {
            iterations: args.vdf_iterations,
            ..Default::default()
        },
        alloc: dev_accounts()?
            .into_iter()
            .map(|(address, _)| {
                let balance = alloy_primitives::U256::from(DEV_BALANCE_ETHER)
                    * alloy_primitives::U256::from(10u64).pow(alloy_primitives::U256::from(18));
                (
                    address,
                    state::GenesisAccount {
                        balance,
                        ..Default::default()
                    },
                )
            })
            .collect(),
        validators,
    };
    spec.validate()?;
    std::fs::write(dir.join("chain-spec.toml"), spec.to_toml())?;
    Ok(())
}

/// Sets libmdbx's log level to warnings and errors before the nodes are forked.
///
/// libmdbx's fork handler logs a notice in every child, and until a process opens its first
/// database (this supervisor opens none) its default logger writes notices to stderr: the
/// terminal showed "rthc_afterfork:36856 drown 0 rthc entries" once per node started.
fn mdbx_warnings_only() {
    // SAFETY: sets two libmdbx globals (no logger and no buffer passed, so both stay as they
    // are); nothing else in this process is using libmdbx.
    unsafe {
        mdbx_sys::mdbx_setup_debug_nofmt(
            mdbx_sys::MDBX_LOG_WARN,
            mdbx_sys::MDBX_DBG_DONTCHANGE,
            None,
            std::ptr::null_mut(),
            0,
        );
    }
}

fn spawn(exe: &Path, node_dir: &Path, log_format: Option<&str>) -> eyre::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(node_dir.join("node.log"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg("--data-dir")
        .arg(node_dir)
        .arg("--config")
        .arg(node_dir.join("config.toml"));
    if let Some(f) = log_format {
        cmd.arg("--log-format").arg(f);
    }
    // Own process group: Ctrl-C reaches only this supervisor, which stops the nodes in order.
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // If the supervisor itself is killed (even with SIGKILL), the kernel stops its nodes too.
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    Ok(child)
}

async fn status_loop(args: &LocalnetArgs, children: &mut [Child]) -> eyre::Result<()> {
    use jsonrpsee::core::client::ClientT;
    let clients: Vec<_> = (0..args.nodes + args.observers)
        .map(|i| {
            jsonrpsee::http_client::HttpClientBuilder::default()
                .request_timeout(Duration::from_millis(500))
                .build(format!("http://{}", node_addr(9500, args.port_offset, i)))
        })
        .collect::<Result<_, _>>()?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut last_height = u64::MAX;
    let mut waiting_shown = false;
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    // Created once, so a signal that arrives while nodes are being polled is not lost.
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            _ = ticker.tick() => {}
        }
        for (i, c) in children.iter_mut().enumerate() {
            if let Ok(Some(status)) = c.try_wait() {
                eprintln!("\nnode{i} exited with {status}; see its node.log");
            }
        }
        let mut best: Option<serde_json::Value> = None;
        let mut up = 0;
        for c in &clients {
            let s: Result<serde_json::Value, _> = c
                .request("hmy_consensusStatus", jsonrpsee::rpc_params![])
                .await;
            if let Ok(s) = s {
                up += 1;
                if best
                    .as_ref()
                    .is_none_or(|b| s["blockNumber"].as_u64() > b["blockNumber"].as_u64())
                {
                    best = Some(s);
                }
            }
        }
        let Some(b) = best else {
            // Piped (a log file, `tee`), one line once; on a terminal, the line is redrawn.
            if tty {
                print!("\rwaiting for nodes to answer RPC...");
                flush();
            } else if !waiting_shown {
                println!("waiting for nodes to answer RPC...");
            }
            waiting_shown = true;
            continue;
        };
        let height = b["blockNumber"].as_u64().unwrap_or(0);
        let latency = b["lastFinalityMs"]
            .as_f64()
            .map(|v| format!("{v:.1} ms"))
            .unwrap_or_else(|| "-".into());
        let line = format!(
            "height {height} | epoch {} | last finality {latency} | view {} | leader node{} | nodes up {up}/{}",
            height / args.epoch_blocks.max(1),
            b["viewID"],
            b["leader"],
            args.nodes + args.observers
        );
        if tty {
            print!("\r{line}    ");
            flush();
        } else if height != last_height {
            println!("{line}");
        }
        last_height = height;
    }
}

fn flush() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// SIGTERM to every node, then SIGKILL to any still running after 10 s.
fn stop_all(children: &mut [Child]) {
    for c in children.iter() {
        // SAFETY: kill with a pid we spawned; at worst the process is already gone.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for c in children.iter_mut() {
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if c.try_wait().ok().flatten().is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
