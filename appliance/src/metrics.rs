//! Prometheus metrics: one registry, served as text on `/metrics`.
//! Names follow `harmony_<area>_<what>_<unit>`; the catalogue is `docs/metrics.md`.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub chain_height: IntGauge,
    pub consensus_view: IntGauge,
    pub consensus_is_leader: IntGauge,
    pub finality_seconds: Histogram,
    pub vote_verification_seconds: HistogramVec,
    pub blocks_finalized: IntCounter,
    pub transactions_finalized: IntCounter,
    pub mempool_size: IntGauge,
    pub relay_dropped: IntCounter,
    pub gossip_dropped: IntCounter,
    pub compact_announces: IntCounterVec,
    pub view_changes: IntCounter,
    pub peer_faults: IntCounterVec,
    pub messages_received: IntCounterVec,
    pub messages_invalid: IntCounter,
    pub sync_blocks: IntCounter,
    pub connected_peers: IntGauge,
    pub peer_bans: IntCounterVec,
    pub blocked_peers: IntGauge,
    pub guard_refusals: IntCounterVec,
    pub guard_records: IntCounter,
    pub epoch: IntGauge,
    pub committee_members: IntGauge,
    pub in_committee: IntGauge,
    pub committee_handoffs: IntCounter,
    pub known_peers: IntGauge,
    pub validator_status: IntGaugeVec,
    pub validator_lifetime_reward: Gauge,
    pub validator_pending_reward: Gauge,
    pub validator_epoch_signed: IntGauge,
    pub validator_epoch_to_sign: IntGauge,
    pub issued: Gauge,
    pub evidence: IntCounterVec,
    pub vdf_seconds: Gauge,
}

/// Statuses `harmony_validator_status` reports, one series each.
pub const VALIDATOR_STATUSES: [&str; 4] = ["active", "inactive", "banned", "unregistered"];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = Self {
            chain_height: IntGauge::new(
                "harmony_chain_height_blocks",
                "Number of the last finalized block",
            )
            .unwrap(),
            consensus_view: IntGauge::new(
                "harmony_consensus_view_number",
                "View of the round in progress",
            )
            .unwrap(),
            consensus_is_leader: IntGauge::new(
                "harmony_consensus_is_leader_bool",
                "1 while this node leads the round",
            )
            .unwrap(),
            finality_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "harmony_consensus_finality_seconds",
                    "Announce to committed, as seen by this node",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            )
            .unwrap(),
            vote_verification_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "harmony_consensus_vote_verification_seconds",
                    "Leader: one batch of votes verified from wire bytes (decode, aggregate, \
                     pairing, bisection of bad votes)",
                )
                .buckets(vec![
                    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                ]),
                &["kind"],
            )
            .unwrap(),
            blocks_finalized: IntCounter::new(
                "harmony_consensus_blocks_finalized_total",
                "Blocks this node finalized in consensus",
            )
            .unwrap(),
            transactions_finalized: IntCounter::new(
                "harmony_execution_transactions_finalized_total",
                "Transactions in blocks this node finalized",
            )
            .unwrap(),
            mempool_size: IntGauge::new(
                "harmony_mempool_transactions",
                "Transactions waiting in this node's pool",
            )
            .unwrap(),
            relay_dropped: IntCounter::new(
                "harmony_mempool_relay_dropped_total",
                "Transactions accepted through RPC but not relayed because the relay queue was full",
            )
            .unwrap(),
            gossip_dropped: IntCounter::new(
                "harmony_mempool_gossip_dropped_total",
                "Relayed transactions from peers dropped unchecked because the gossip worker was behind",
            )
            .unwrap(),
            compact_announces: IntCounterVec::new(
                Opts::new(
                    "harmony_consensus_compact_announces_total",
                    "Header-only proposals received, by outcome (complete from the pool, fetched, incomplete)",
                ),
                &["outcome"],
            )
            .unwrap(),
            view_changes: IntCounter::new(
                "harmony_consensus_view_changes_total",
                "Views this node moved to because a leader stalled",
            )
            .unwrap(),
            peer_faults: IntCounterVec::new(
                Opts::new(
                    "harmony_network_peer_faults_total",
                    "Invalid messages or signatures, by peer index",
                ),
                &["peer"],
            )
            .unwrap(),
            messages_received: IntCounterVec::new(
                Opts::new(
                    "harmony_network_messages_received_total",
                    "Consensus messages received, by kind",
                ),
                &["kind"],
            )
            .unwrap(),
            messages_invalid: IntCounter::new(
                "harmony_network_messages_invalid_total",
                "Messages that failed to decode",
            )
            .unwrap(),
            sync_blocks: IntCounter::new("harmony_sync_blocks_total", "Blocks stored by catch-up")
                .unwrap(),
            connected_peers: IntGauge::new(
                "harmony_network_connected_peers",
                "Peers with an open outgoing connection",
            )
            .unwrap(),
            peer_bans: IntCounterVec::new(
                Opts::new(
                    "harmony_network_peer_bans_total",
                    "Peers disconnected and refused, by reason (score or operator)",
                ),
                &["reason"],
            )
            .unwrap(),
            blocked_peers: IntGauge::new(
                "harmony_network_blocked_peers",
                "Peers currently refused (banned by score or blocked by the operator)",
            )
            .unwrap(),
            guard_refusals: IntCounterVec::new(
                Opts::new(
                    "harmony_signer_guard_refusals_total",
                    "Signing requests the double-sign guard refused, by reason",
                ),
                &["reason"],
            )
            .unwrap(),
            guard_records: IntCounter::new(
                "harmony_signer_guard_records_total",
                "Durable double-sign guard records written (one per signed message)",
            )
            .unwrap(),
            epoch: IntGauge::new("harmony_chain_epoch", "Epoch of the round in progress").unwrap(),
            committee_members: IntGauge::new(
                "harmony_consensus_committee_members",
                "Validators in the committee of the round in progress",
            )
            .unwrap(),
            in_committee: IntGauge::new(
                "harmony_validator_in_committee_bool",
                "1 while this node's keys sign in the current committee (0: it observes)",
            )
            .unwrap(),
            committee_handoffs: IntCounter::new(
                "harmony_consensus_committee_handoffs_total",
                "Epoch boundaries where the committee changed, as this node took them over",
            )
            .unwrap(),
            known_peers: IntGauge::new(
                "harmony_network_known_peers",
                "Peers this node accepts and dials: spec validators, observers, registered validators",
            )
            .unwrap(),
            validator_status: IntGaugeVec::new(
                Opts::new(
                    "harmony_validator_status",
                    "1 for this node's validator's staking status (active, inactive, banned, unregistered), 0 for the others",
                ),
                &["status"],
            )
            .unwrap(),
            validator_lifetime_reward: Gauge::new(
                "harmony_validator_lifetime_reward_one",
                "Rewards this node's validator has earned since it registered (commission and delegators' shares), in ONE",
            )
            .unwrap(),
            validator_pending_reward: Gauge::new(
                "harmony_validator_pending_reward_one",
                "Rewards the operator's self-delegation has accumulated and not yet collected, in ONE",
            )
            .unwrap(),
            validator_epoch_signed: IntGauge::new(
                "harmony_validator_epoch_blocks_signed",
                "Blocks this node's validator signed in the current epoch (one per elected key)",
            )
            .unwrap(),
            validator_epoch_to_sign: IntGauge::new(
                "harmony_validator_epoch_blocks_to_sign",
                "Blocks this node's validator had to sign in the current epoch (one per elected key)",
            )
            .unwrap(),
            issued: Gauge::new(
                "harmony_chain_issued_one",
                "What block rewards have issued since genesis, in ONE",
            )
            .unwrap(),
            evidence: IntCounterVec::new(
                Opts::new(
                    "harmony_consensus_double_sign_evidence_total",
                    "Double-sign evidence this node verified and pooled, by source (detected, relayed)",
                ),
                &["source"],
            )
            .unwrap(),
            vdf_seconds: Gauge::new(
                "harmony_vdf_prove_seconds",
                "Time this node took to evaluate and prove the last epoch VDF (must stay well under half an epoch)",
            )
            .unwrap(),
            registry,
        };
        for c in m.collectors() {
            m.registry.register(c).expect("metric names are unique");
        }
        m
    }

    /// Every metric, for registration (and for checking the catalogue).
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        let m = self;
        vec![
            Box::new(m.chain_height.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.consensus_view.clone()),
            Box::new(m.consensus_is_leader.clone()),
            Box::new(m.finality_seconds.clone()),
            Box::new(m.vote_verification_seconds.clone()),
            Box::new(m.blocks_finalized.clone()),
            Box::new(m.transactions_finalized.clone()),
            Box::new(m.mempool_size.clone()),
            Box::new(m.relay_dropped.clone()),
            Box::new(m.gossip_dropped.clone()),
            Box::new(m.compact_announces.clone()),
            Box::new(m.view_changes.clone()),
            Box::new(m.peer_faults.clone()),
            Box::new(m.messages_received.clone()),
            Box::new(m.messages_invalid.clone()),
            Box::new(m.sync_blocks.clone()),
            Box::new(m.connected_peers.clone()),
            Box::new(m.peer_bans.clone()),
            Box::new(m.blocked_peers.clone()),
            Box::new(m.guard_refusals.clone()),
            Box::new(m.guard_records.clone()),
            Box::new(m.epoch.clone()),
            Box::new(m.committee_members.clone()),
            Box::new(m.in_committee.clone()),
            Box::new(m.committee_handoffs.clone()),
            Box::new(m.known_peers.clone()),
            Box::new(m.validator_status.clone()),
            Box::new(m.validator_lifetime_reward.clone()),
            Box::new(m.validator_pending_reward.clone()),
            Box::new(m.validator_epoch_signed.clone()),
            Box::new(m.validator_epoch_to_sign.clone()),
            Box::new(m.issued.clone()),
            Box::new(m.evidence.clone()),
            Box::new(m.vdf_seconds.clone()),
        ]
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("utf-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `GET /metrics` (anything else is 404) until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Metrics) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    sock.read(&mut buf),
                )
                .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
                let req = String::from_utf8_lossy(&buf[..n]);
                let (status, body) =
                    if req.starts_with("GET /metrics ") || req.starts_with("GET /metrics?") {
                        ("200 OK", metrics.render())
                    } else {
                        (
                            "404 Not Found",
                            "only /metrics is served here\n".to_string(),
                        )
                    };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/metrics.md` is the exact catalogue: every metric is in it, and it names no
    /// metric that does not exist.
    #[test]
    fn the_catalogue_matches_the_registry() {
        let names: std::collections::BTreeSet<String> = Metrics::new()
            .collectors()
            .iter()
            .flat_map(|c| c.desc().into_iter().map(|d| d.fq_name.clone()))
            .collect();
        let doc = include_str!("../../docs/metrics.md");
        let documented: std::collections::BTreeSet<String> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split(['`', '{']).next())
            .map(str::to_string)
            .collect();
        assert_eq!(
            names, documented,
            "registry (left) vs docs/metrics.md (right)"
        );
    }
}
