//! Prometheus metrics: one registry, served as text on `/metrics`.
//! Names follow `harmony_<area>_<what>_<unit>`; the catalogue is `docs/metrics.md`.

use prometheus::process_collector::ProcessCollector;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

mod serve;
pub use serve::serve;

/// The git commit this binary was built from (`build.rs`; `unknown` outside a checkout).
pub const GIT_COMMIT: &str = env!("HARMONY_GIT_COMMIT");

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
    pub view_changes: IntCounterVec,
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
    pub build_info: IntGaugeVec,
    pub signatures: IntCounterVec,
    pub signer_errors: IntCounterVec,
    pub sign_seconds: Histogram,
    pub signer_up: IntGauge,
    /// Verification batches the GPU failed and the CPU answered (accel's device backend).
    pub accel_device_fallbacks: IntCounter,
    pub signer_probe_seconds: Gauge,
    pub blocks_signed: IntCounterVec,
    pub blocks_missed: IntCounterVec,
    pub blocks_proposed: IntCounter,
    pub leader_views_missed: IntCounter,
    pub phase_seconds: HistogramVec,
    pub late_votes: IntCounter,
    pub clock_skew: Gauge,
    pub block_seconds: HistogramVec,
    pub gas_used: IntCounter,
    pub state_root_seconds: Histogram,
    pub sender_recovery_seconds: Histogram,
    pub sent_messages: IntCounterVec,
    pub sent_bytes: IntCounterVec,
    pub received_bytes: IntCounterVec,
    pub dropped_messages: IntCounterVec,
    pub handshakes_refused: IntCounter,
    pub quic_retries: IntCounter,
    pub peer_score: IntGaugeVec,
    pub peer_height: IntGauge,
    pub storage_size: IntGauge,
    pub storage_pages: IntGaugeVec,
    pub storage_commit_seconds: Histogram,
    pub disk_free: IntGauge,
    pub rpc_requests: IntCounterVec,
    pub rpc_seconds: HistogramVec,
    pub rpc_refused: IntCounterVec,
}

/// Statuses `harmony_validator_status` reports, one series each.
/// Buckets for work that takes from a fraction of a millisecond to seconds.
const FAST: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

fn int_gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid metric")
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn histogram(name: &str, help: &str, buckets: &[f64]) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("valid metric")
}

fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("valid metric")
}

/// A BLS key as a metric label: `0x` and its first 8 bytes (unique enough for an operator's
/// handful of keys, short enough for a dashboard legend).
pub fn key_label(key: &accel::PublicKey) -> String {
    format!("0x{}", hex::encode(&key.to_bytes()[..8]))
}

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
            view_changes: counter_vec(
                "harmony_consensus_view_changes_total",
                "Views this node moved to, by reason (timeout, joined, new_view)",
                &["reason"],
            ),
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
            build_info: gauge_vec(
                "harmony_build_info",
                "Always 1; labels name the version, git commit and verification backend",
                &["version", "commit", "backend"],
            ),
            signatures: counter_vec(
                "harmony_signer_signatures_total",
                "Signatures this node's signer produced, by BLS key and message kind",
                &["key", "kind"],
            ),
            signer_errors: counter_vec(
                "harmony_signer_errors_total",
                "Signing requests that produced no signature, by reason (refused, guard, backend)",
                &["reason"],
            ),
            sign_seconds: histogram(
                "harmony_signer_sign_seconds",
                "One signing request for all keys, durable guard record included",
                FAST,
            ),
            signer_up: int_gauge(
                "harmony_signer_up",
                "1 while the signer's backend answers (last signing request or probe succeeded)",
            ),
            accel_device_fallbacks: counter(
                "harmony_accel_device_fallbacks_total",
                "Verification batches the GPU failed and the CPU backend answered instead",
            ),
            signer_probe_seconds: Gauge::new(
                "harmony_signer_probe_seconds",
                "Round trip of the last signer health probe (an HSM echo with the yubihsm backend)",
            )
            .unwrap(),
            blocks_signed: counter_vec(
                "harmony_validator_blocks_signed_total",
                "Blocks whose certificate (as carried in the next header) holds this key's signature",
                &["key"],
            ),
            blocks_missed: counter_vec(
                "harmony_validator_blocks_missed_total",
                "Blocks whose certificate (as carried in the next header) lacks this key's signature",
                &["key"],
            ),
            blocks_proposed: counter(
                "harmony_consensus_blocks_proposed_total",
                "Blocks this node built and proposed as leader",
            ),
            leader_views_missed: counter(
                "harmony_consensus_leader_views_missed_total",
                "Views this node led that ended in a view change",
            ),
            phase_seconds: histogram_vec(
                "harmony_consensus_phase_seconds",
                "Consensus phases as seen by this node: prepare (proposal to prepared), commit (prepared to finalized)",
                &["phase"],
                FAST,
            ),
            late_votes: counter(
                "harmony_consensus_late_votes_total",
                "Prepare and commit votes received for a height already finalized here",
            ),
            clock_skew: Gauge::new(
                "harmony_consensus_proposal_clock_skew_seconds",
                "This node's clock minus the last received proposal's timestamp, at receipt",
            )
            .unwrap(),
            block_seconds: histogram_vec(
                "harmony_execution_block_seconds",
                "Executing one block, by path (build, validate, sync)",
                &["path"],
                FAST,
            ),
            gas_used: counter(
                "harmony_execution_gas_used_total",
                "Gas used by the blocks this node stored",
            ),
            state_root_seconds: histogram(
                "harmony_execution_state_root_seconds",
                "Computing one block's state root after execution",
                FAST,
            ),
            sender_recovery_seconds: histogram(
                "harmony_execution_sender_recovery_seconds",
                "Recovering the senders of one batch of transactions",
                FAST,
            ),
            sent_messages: counter_vec(
                "harmony_network_sent_messages_total",
                "Messages handed to the mesh, by kind (a broadcast counts once per peer)",
                &["kind"],
            ),
            sent_bytes: counter_vec(
                "harmony_network_sent_bytes_total",
                "Payload bytes handed to the mesh, by kind (per peer)",
                &["kind"],
            ),
            received_bytes: counter_vec(
                "harmony_network_received_bytes_total",
                "Payload bytes of decoded messages received, by kind",
                &["kind"],
            ),
            dropped_messages: counter_vec(
                "harmony_network_dropped_messages_total",
                "Messages the mesh dropped, by reason (queue_full, send_failed, oversized, invalid_frame, stalled)",
                &["reason"],
            ),
            handshakes_refused: counter(
                "harmony_network_handshakes_refused_total",
                "QUIC handshakes refused by this node or its peer for a TLS reason",
            ),
            quic_retries: counter(
                "harmony_network_quic_retries_total",
                "Handshakes answered with a QUIC Retry because many arrived at once",
            ),
            peer_score: gauge_vec(
                "harmony_network_peer_score",
                "Fault score of each peer with faults (0 is clean), by peer index",
                &["peer"],
            ),
            peer_height: int_gauge(
                "harmony_sync_peer_height_blocks",
                "Highest finalized height a peer has claimed",
            ),
            storage_size: int_gauge(
                "harmony_storage_size_bytes",
                "Size of the MDBX database file",
            ),
            storage_pages: gauge_vec(
                "harmony_storage_pages",
                "MDBX pages: used (up to the last page) and free (on the free list)",
                &["kind"],
            ),
            storage_commit_seconds: histogram(
                "harmony_storage_commit_seconds",
                "One block's MDBX write transaction, durable commit included",
                FAST,
            ),
            disk_free: int_gauge(
                "harmony_storage_disk_free_bytes",
                "Bytes available to this node on the data directory's filesystem",
            ),
            rpc_requests: counter_vec(
                "harmony_rpc_requests_total",
                "JSON-RPC calls by method and outcome (ok, error)",
                &["method", "status"],
            ),
            rpc_seconds: histogram_vec(
                "harmony_rpc_request_seconds",
                "Time to answer one JSON-RPC call, by method",
                &["method"],
                FAST,
            ),
            rpc_refused: counter_vec(
                "harmony_rpc_refused_total",
                "RPC requests refused before a method ran (host, origin, busy)",
                &["reason"],
            ),
            registry,
        };
        for c in m.collectors() {
            m.registry.register(c).expect("metric names are unique");
        }
        // CPU, RSS, file descriptors and threads of this process (Linux /proc).
        m.registry
            .register(Box::new(ProcessCollector::for_self()))
            .expect("process metric names are unique");
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), GIT_COMMIT, "unknown"])
            .set(1);
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
            Box::new(m.build_info.clone()),
            Box::new(m.signatures.clone()),
            Box::new(m.signer_errors.clone()),
            Box::new(m.sign_seconds.clone()),
            Box::new(m.signer_up.clone()),
            Box::new(m.accel_device_fallbacks.clone()),
            Box::new(m.signer_probe_seconds.clone()),
            Box::new(m.blocks_signed.clone()),
            Box::new(m.blocks_missed.clone()),
            Box::new(m.blocks_proposed.clone()),
            Box::new(m.leader_views_missed.clone()),
            Box::new(m.phase_seconds.clone()),
            Box::new(m.late_votes.clone()),
            Box::new(m.clock_skew.clone()),
            Box::new(m.block_seconds.clone()),
            Box::new(m.gas_used.clone()),
            Box::new(m.state_root_seconds.clone()),
            Box::new(m.sender_recovery_seconds.clone()),
            Box::new(m.sent_messages.clone()),
            Box::new(m.sent_bytes.clone()),
            Box::new(m.received_bytes.clone()),
            Box::new(m.dropped_messages.clone()),
            Box::new(m.handshakes_refused.clone()),
            Box::new(m.quic_retries.clone()),
            Box::new(m.peer_score.clone()),
            Box::new(m.peer_height.clone()),
            Box::new(m.storage_size.clone()),
            Box::new(m.storage_pages.clone()),
            Box::new(m.storage_commit_seconds.clone()),
            Box::new(m.disk_free.clone()),
            Box::new(m.rpc_requests.clone()),
            Box::new(m.rpc_seconds.clone()),
            Box::new(m.rpc_refused.clone()),
        ]
    }

    /// Names the verification backend in `harmony_build_info` (known once the engine is up).
    pub fn set_backend(&self, backend: &str) {
        self.build_info.reset();
        self.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), GIT_COMMIT, backend])
            .set(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/metrics.md` is the exact catalogue: every metric is in it, and it names no
    /// metric that does not exist.
    #[test]
    fn the_catalogue_matches_the_registry() {
        let process: Box<dyn prometheus::core::Collector> = Box::new(ProcessCollector::for_self());
        let names: std::collections::BTreeSet<String> = Metrics::new()
            .collectors()
            .iter()
            .chain([&process])
            .flat_map(|c| c.desc().into_iter().map(|d| d.fq_name.clone()))
            .collect();
        let doc = include_str!("../../../docs/metrics.md");
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
