//! The status screen's layout, drawn from one [`Screen`] (no I/O here, so a fixed fixture
//! renders to a buffer in tests).

use crate::chain::NodeStatus;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Gauge, Paragraph, Row, Table};
use ratatui::Frame;

/// What one refresh shows.
#[derive(Debug, Clone)]
pub struct Screen {
    pub url: String,
    pub status: Option<NodeStatus>,
    /// Finality over the node's recent blocks, milliseconds.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Blocks finalized per second while this screen has watched.
    pub blocks_per_s: Option<f64>,
    pub error: Option<String>,
}

impl Screen {
    pub fn new(
        url: String,
        status: Option<NodeStatus>,
        latencies: &[(u64, u64)],
        blocks_per_s: Option<f64>,
        error: Option<String>,
    ) -> Self {
        let mut us: Vec<u64> = latencies.iter().map(|l| l.1).collect();
        us.sort_unstable();
        let pick = |q: f64| {
            (!us.is_empty()).then(|| us[((us.len() - 1) as f64 * q).round() as usize] as f64 / 1e3)
        };
        Self {
            url,
            status,
            p50_ms: pick(0.5),
            p99_ms: pick(0.99),
            blocks_per_s,
            error,
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0} ms"))
}

/// Catch-up progress: (ratio, label) when the node is behind its peers.
fn sync_progress(s: &NodeStatus, blocks_per_s: Option<f64>) -> Option<(f64, String)> {
    if !s.is_behind() {
        return None;
    }
    let behind = s.peer_height.saturating_sub(s.finalized);
    let ratio = s.finalized as f64 / s.peer_height.max(1) as f64;
    let eta = match blocks_per_s {
        Some(r) if r > 0.0 => {
            let secs = (behind as f64 / r).round() as u64;
            format!("ETA {}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
        }
        _ => "ETA unknown".into(),
    };
    Some((
        ratio,
        format!(
            "#{} of #{} — {behind} blocks behind, {eta}",
            s.finalized, s.peer_height
        ),
    ))
}

pub fn draw(f: &mut Frame, screen: &Screen) {
    let [title, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(
        Line::from(format!("harmony-appliance status — {}", screen.url)).bold(),
        title,
    );
    f.render_widget(
        Line::from("q: quit").style(Style::default().fg(Color::DarkGray)),
        footer,
    );
    let Some(s) = &screen.status else {
        let msg = format!(
            "The node does not answer: {}\nIs it running, with rpc.enabled on this address?",
            screen.error.as_deref().unwrap_or("no reply")
        );
        f.render_widget(
            Paragraph::new(msg)
                .red()
                .block(Block::bordered().title("unreachable")),
            body,
        );
        return;
    };
    let [chain, sync, keys, net] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(3),
        Constraint::Min(4),
        Constraint::Length(3),
    ])
    .areas(body);
    draw_chain(f, chain, s, screen);
    draw_sync(f, sync, s, screen.blocks_per_s);
    draw_keys(f, keys, s);
    let others = s.committee_members.saturating_sub(1);
    let peers = format!(
        "peers {} connected (committee of {}: {} others)   mempool {} transactions",
        s.connected_peers.len(),
        s.committee_members,
        others,
        s.mempool
    );
    f.render_widget(
        Paragraph::new(peers).block(Block::bordered().title("network")),
        net,
    );
}

fn draw_chain(f: &mut Frame, area: Rect, s: &NodeStatus, screen: &Screen) {
    let role = match (s.in_committee, s.is_leader) {
        (true, true) => "leader",
        (true, false) => "validator",
        (false, _) => "observer",
    };
    let lines = vec![
        Line::from(format!(
            "finalized #{}   epoch {}   round #{} view {}",
            s.finalized,
            s.epoch,
            s.block_number + 1,
            s.view_id
        )),
        Line::from(format!("leader {}   this node: {role}", s.leader)),
        Line::from(format!(
            "finality last {}   p50 {}   p99 {}",
            ms(s.last_finality_ms),
            ms(screen.p50_ms),
            ms(screen.p99_ms)
        )),
    ];
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("chain")),
        area,
    );
}

fn draw_sync(f: &mut Frame, area: Rect, s: &NodeStatus, blocks_per_s: Option<f64>) {
    let block = Block::bordered().title("sync");
    match sync_progress(s, blocks_per_s) {
        Some((ratio, label)) => f.render_widget(
            Gauge::default()
                .block(block)
                .gauge_style(Style::default().fg(Color::Yellow))
                .ratio(ratio.clamp(0.0, 1.0))
                .label(label),
            area,
        ),
        None => f.render_widget(
            Paragraph::new(format!("in sync (peers claim #{})", s.peer_height)).block(block),
            area,
        ),
    }
}

fn draw_keys(f: &mut Frame, area: Rect, s: &NodeStatus) {
    let block = Block::bordered().title("my keys (blocks since the node started)");
    if s.keys.is_empty() {
        let why = if s.in_committee {
            "no block counted yet"
        } else {
            "not in the committee: nothing to sign"
        };
        f.render_widget(Paragraph::new(why).block(block), area);
        return;
    }
    let rows = s.keys.iter().map(|k| {
        let total = k.signed + k.missed;
        let rate = if total == 0 {
            "–".to_string()
        } else {
            format!("{:.1}%", 100.0 * k.signed as f64 / total as f64)
        };
        let row = Row::new(vec![
            k.key.clone(),
            k.signed.to_string(),
            k.missed.to_string(),
            rate,
        ]);
        if k.missed > 0 {
            row.yellow()
        } else {
            row
        }
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(20),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(8),
        ],
    )
    .header(Row::new(vec!["key", "signed", "missed", "rate"]).bold())
    .block(block);
    f.render_widget(table, area);
}

/// One frame as plain text lines (`--once`, tests).
pub fn to_text(screen: &Screen, width: u16, height: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = ratatui::Terminal::new(backend).expect("test backend");
    terminal.draw(|f| draw(f, screen)).expect("draws");
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::KeySigning;

    fn fixture() -> NodeStatus {
        NodeStatus {
            block_number: 1041,
            view_id: 1043,
            leader: 2,
            is_leader: false,
            last_finality_ms: Some(212.4),
            connected_peers: vec![1, 2, 3],
            finalized: 1041,
            epoch: 10,
            peer_height: 1041,
            sync_started: None,
            mempool: 17,
            in_committee: true,
            committee_members: 4,
            keys: vec![KeySigning {
                key: "0x8f3a11c2d4e5f607".into(),
                signed: 990,
                missed: 10,
            }],
        }
    }

    fn screen(s: NodeStatus, rate: Option<f64>) -> Screen {
        let lat: Vec<(u64, u64)> = (0..100).map(|i| (i, 100_000 + i * 1_000)).collect();
        Screen::new("http://127.0.0.1:9500".into(), Some(s), &lat, rate, None)
    }

    #[test]
    fn a_synced_validator_shows_height_finality_keys_and_peers() {
        let text = to_text(&screen(fixture(), None), 100, 24);
        for want in [
            "harmony-appliance status — http://127.0.0.1:9500",
            "finalized #1041   epoch 10   round #1042 view 1043",
            "leader 2   this node: validator",
            "finality last 212 ms   p50 150 ms   p99 198 ms",
            "in sync (peers claim #1041)",
            "0x8f3a11c2d4e5f607",
            "990",
            "99.0%",
            "peers 3 connected (committee of 4: 3 others)   mempool 17 transactions",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn a_node_behind_shows_a_progress_bar_with_an_eta() {
        let mut s = fixture();
        s.finalized = 500;
        s.peer_height = 1100;
        let text = to_text(&screen(s, Some(20.0)), 100, 24);
        assert!(
            text.contains("#500 of #1100 — 600 blocks behind, ETA 0:00:30"),
            "{text}"
        );
        let text = to_text(&screen(fixture_behind(), None), 100, 24);
        assert!(text.contains("ETA unknown"), "{text}");
    }

    fn fixture_behind() -> NodeStatus {
        let mut s = fixture();
        s.finalized = 10;
        s.peer_height = 20;
        s
    }

    #[test]
    fn an_observer_and_an_unreachable_node_say_so() {
        let mut s = fixture();
        s.in_committee = false;
        s.keys.clear();
        let text = to_text(&screen(s, None), 100, 24);
        assert!(text.contains("this node: observer"), "{text}");
        assert!(
            text.contains("not in the committee: nothing to sign"),
            "{text}"
        );
        let down = Screen::new(
            "http://127.0.0.1:9500".into(),
            None,
            &[],
            None,
            Some("connection refused".into()),
        );
        let text = to_text(&down, 100, 24);
        assert!(
            text.contains("The node does not answer: connection refused"),
            "{text}"
        );
    }
}
