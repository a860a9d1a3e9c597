//! `harmony-appliance status`: a live terminal screen of a running node, from its RPC
//! (`hmy_consensusStatus`, `hmy_finalityStats`): height and finality, view and leader, this
//! node's keys' signing, peers, the pool, and catch-up progress with an ETA when behind.
//! `--once` prints one frame as text (for scripts and logs).

mod render;

use crate::chain::NodeStatus;
use clap::Args;
use jsonrpsee::core::client::ClientT;
pub use render::{draw, Screen};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node's JSON-RPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:9500")]
    pub rpc: String,
    /// Print one frame as text and exit (no terminal control).
    #[arg(long)]
    pub once: bool,
    /// Refresh interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Width and height of the `--once` frame.
    #[arg(long, default_value_t = 100)]
    pub width: u16,
    #[arg(long, default_value_t = 24)]
    pub height: u16,
}

pub fn run(args: &StatusArgs) -> eyre::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = jsonrpsee::http_client::HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(3))
        .build(&args.rpc)
        .map_err(|e| eyre::eyre!("--rpc {}: {e}", args.rpc))?;
    let mut poller = Poller::new(args.rpc.clone());
    if args.once {
        let screen = rt.block_on(poller.poll(&client));
        let reachable = screen.status.is_some();
        print!("{}", render::to_text(&screen, args.width, args.height));
        if !reachable {
            eyre::bail!(
                "the node at {} did not answer; is it running with rpc.enabled?",
                args.rpc
            );
        }
        return Ok(());
    }
    interactive(
        &rt,
        &client,
        &mut poller,
        Duration::from_millis(args.interval_ms),
    )
}

/// Polls the node and keeps what the screen derives over time (the finalization rate).
pub struct Poller {
    url: String,
    first: Option<(Instant, u64)>,
}

impl Poller {
    pub fn new(url: String) -> Self {
        Self { url, first: None }
    }

    async fn poll(&mut self, client: &jsonrpsee::http_client::HttpClient) -> Screen {
        let status: Result<NodeStatus, _> = client
            .request("hmy_consensusStatus", jsonrpsee::rpc_params![])
            .await;
        let latencies: Vec<(u64, u64)> = client
            .request("hmy_finalityStats", jsonrpsee::rpc_params![])
            .await
            .unwrap_or_default();
        match status {
            Ok(s) => {
                let rate = self.rate(s.finalized);
                Screen::new(self.url.clone(), Some(s), &latencies, rate, None)
            }
            Err(e) => Screen::new(self.url.clone(), None, &[], None, Some(e.to_string())),
        }
    }

    /// Blocks finalized per second since the first poll (catch-up ETA).
    fn rate(&mut self, finalized: u64) -> Option<f64> {
        let (t0, h0) = *self.first.get_or_insert((Instant::now(), finalized));
        let secs = t0.elapsed().as_secs_f64();
        (secs >= 2.0 && finalized > h0).then(|| (finalized - h0) as f64 / secs)
    }
}

fn interactive(
    rt: &tokio::runtime::Runtime,
    client: &jsonrpsee::http_client::HttpClient,
    poller: &mut Poller,
    interval: Duration,
) -> eyre::Result<()> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        eyre::bail!(
            "the live status screen needs a terminal and stdout is not one; use `status --once` \
             to print one frame as text"
        );
    }
    let mut terminal = ratatui::init();
    let result = (|| -> eyre::Result<()> {
        loop {
            let screen = rt.block_on(poller.poll(client));
            terminal.draw(|f| draw(f, &screen))?;
            let deadline = Instant::now() + interval;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                if !event::poll(left)? {
                    break;
                }
                if let Event::Key(k) = event::read()? {
                    let ctrl_c =
                        k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                    if ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) {
                        return Ok(());
                    }
                }
            }
        }
    })();
    ratatui::restore();
    result
}
