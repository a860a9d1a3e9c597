//! The status line, metrics gauges and the periodic tick (peer status, bans, guard counters).

use super::*;
use crate::lock::LockExt;

/// Wei in ONE, for gauges (f64 holds what an operator reads).
fn in_one(wei: alloy_primitives::U256) -> f64 {
    f64::from(wei) / 1e18
}

impl Driver {
    /// Notes which validator holds this node's keys (the first found).
    pub(super) fn find_my_validator(&mut self, staking: &state::staking::StakingState) {
        let mine: Vec<state::staking::BlsKey> = self
            .ctx
            .signer
            .public_keys()
            .iter()
            .map(|k| state::staking::BlsKey::from(k.to_bytes()))
            .collect();
        self.my_validator = staking
            .validators()
            .find(|v| v.bls_keys.iter().any(|k| mine.contains(k)))
            .map(|v| v.address);
    }

    /// The gauges of this node's validator (status, rewards, signing this epoch) and of the
    /// chain's issuance: two lookups, after every stored block.
    pub(super) fn publish_validator(&self) {
        let m = &self.ctx.metrics;
        let record = match self.my_validator.map(|a| self.ctx.store.validator(&a)) {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                tracing::warn!(target: "staking", error = %e, "could not read this node's validator record");
                return;
            }
            None => None,
        };
        let status = match record.as_ref().map(|v| v.status) {
            Some(state::staking::ValidatorStatus::Active) => "active",
            Some(state::staking::ValidatorStatus::Inactive) => "inactive",
            Some(state::staking::ValidatorStatus::Banned) => "banned",
            None => "unregistered",
        };
        for s in crate::metrics::VALIDATOR_STATUSES {
            m.validator_status
                .with_label_values(&[s])
                .set(i64::from(s == status));
        }
        if let Some(v) = &record {
            m.validator_lifetime_reward.set(in_one(v.lifetime_reward));
            let own = v
                .delegations
                .first()
                .map_or(Default::default(), |d| d.reward);
            m.validator_pending_reward.set(in_one(own));
            m.validator_epoch_signed.set(v.epoch_counters.signed as i64);
            m.validator_epoch_to_sign
                .set(v.epoch_counters.to_sign as i64);
        }
        match self.ctx.store.issuance() {
            Ok(i) => m.issued.set(in_one(i.total)),
            Err(e) => {
                tracing::warn!(target: "staking", error = %e, "could not read the issuance record")
            }
        }
    }

    pub(super) fn publish_status(&mut self) {
        let (number, view, leader) = self.fbft.round();
        let m = &self.ctx.metrics;
        m.chain_height.set(self.fbft.tip().number as i64);
        m.consensus_view.set(view as i64);
        m.consensus_is_leader
            .set((Some(leader) == self.fbft.me_index()) as i64);
        m.epoch.set((number / self.ctx.spec.epoch_blocks) as i64);
        m.committee_members
            .set(self.fbft.committee().members.len() as i64);
        m.in_committee.set(self.fbft.me_index().is_some() as i64);
        let leads = Some(leader) == self.fbft.me_index();
        let mut s = self.ctx.board.status.locked();
        s.finalized = self.fbft.tip().number;
        s.epoch = number / self.ctx.spec.epoch_blocks;
        s.in_committee = self.fbft.me_index().is_some();
        s.committee_members = self.fbft.committee().members.len();
        s.mempool = self.ctx.metrics.mempool_size.get().max(0) as usize;
        s.block_number = number - 1;
        s.view_id = view;
        s.leader = leader;
        s.is_leader = leads;
        drop(s);
        self.note_leading(number, view, leads);
    }

    pub(super) fn on_status_tick(&mut self) {
        // A leader that never answers a fetch: give up after two block times; the view
        // timer handles the round.
        let patience = Duration::from_millis(2 * self.ctx.spec.block_time_ms.max(1000));
        if self
            .pending_announce
            .as_ref()
            .is_some_and(|p| p.received.elapsed() > patience)
        {
            let p = self.pending_announce.take().expect("present");
            tracing::warn!(target: "consensus", from = p.from, number = p.compact.header.number, missing = p.missing.len(), "the leader did not supply its block's transactions");
            self.ctx
                .metrics
                .compact_announces
                .with_label_values(&["incomplete"])
                .inc();
        }
        self.check_sync_timeout();
        let tip = self.fbft.tip();
        self.mesh.broadcast(
            Message::Status(Status {
                number: tip.number,
                hash: tip.hash,
            })
            .encode(),
        );
        self.score_transport();
        let fallbacks = self.ctx.engine.device_fallbacks();
        super::observe::sync_counter(&self.ctx.metrics.accel_device_fallbacks, fallbacks);
        if fallbacks > self.device_fallbacks {
            tracing::warn!(target: "accel", new = fallbacks - self.device_fallbacks, total = fallbacks, "the GPU failed verification batches; the CPU answered them instead (check the device and its driver)");
            self.device_fallbacks = fallbacks;
        }
        for peer in self.peers.tick(Instant::now()) {
            if !self.ctx.operator_blocks.locked().contains(&peer) {
                tracing::info!(target: "net", peer, "ban expired; accepting the peer again");
                self.mesh.unblock(peer);
            }
        }
        self.ctx
            .metrics
            .blocked_peers
            .set(self.mesh.blocked().len() as i64);
        if let Some(g) = &self.ctx.guard_stats {
            super::observe::sync_guard(&self.ctx.metrics, g);
        }
        self.sample();
        let peers = self.mesh.connected_peers();
        self.ctx.metrics.connected_peers.set(peers.len() as i64);
        let (number, view, _) = self.fbft.round();
        let finalized = self.fbft.tip().number;
        self.ctx.notifier.pet(|| {
            format!(
                "finalized {finalized}, round {number} view {view}, {} peers",
                peers.len()
            )
        });
        self.ctx.board.status.locked().connected_peers = peers;
    }

    /// Scores what peers did at the transport level this interval: invalid frames, more
    /// connections than [`crate::peers::CONNECTIONS_PER_INTERVAL`] (a reconnect storm), and
    /// writes they left without progress (a slow reader).
    fn score_transport(&mut self) {
        use crate::peers::CONNECTIONS_PER_INTERVAL;
        for (peer, r) in self.mesh.take_reports() {
            if r.invalid_frames > 0 {
                self.fault_times(
                    peer,
                    FaultKind::Malformed,
                    r.invalid_frames,
                    "invalid frames (version, length, truncated, trailing data or too slow)",
                );
            }
            if r.connections > CONNECTIONS_PER_INTERVAL {
                self.fault_times(
                    peer,
                    FaultKind::Protocol,
                    r.connections - CONNECTIONS_PER_INTERVAL,
                    &format!(
                        "reconnect storm: {} connections in one status interval (at most {CONNECTIONS_PER_INTERVAL})",
                        r.connections
                    ),
                );
            }
            if r.stalled > 0 {
                self.fault_times(
                    peer,
                    FaultKind::Protocol,
                    r.stalled,
                    "slow reader: left a message unread for the write stall timeout",
                );
            }
        }
    }
}
