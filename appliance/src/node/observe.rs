//! What the loop measures for operators beyond the round itself: signing (per key and kind),
//! leader slots, consensus phases, the certificate each block carries, and the periodic
//! samples of the mesh, storage, disk and signer backend.

use super::*;
use crate::metrics::key_label;
use std::sync::atomic::Ordering::Relaxed;

/// How often storage and disk are sampled (MDBX's free list is walked each time).
const STORAGE_EVERY: Duration = Duration::from_secs(10);
/// How often the signer's backend is probed (an HSM round trip with `yubihsm`).
const PROBE_EVERY: Duration = Duration::from_secs(30);

/// The loop's own bookkeeping for those measurements.
#[derive(Default)]
pub(super) struct Observed {
    /// Each of this node's keys as a metric label, in the signer's order.
    keys: Vec<String>,
    /// (number, view) of the round this node leads, while it leads one.
    leading: Option<(u64, u64)>,
    /// When this node prepared (signed its commit for) each block.
    prepared_at: HashMap<B256, Instant>,
    storage_sampled: Option<Instant>,
    probed: Option<Instant>,
}

impl Observed {
    /// For a signer holding `keys` (their labels are computed once, here).
    pub(super) fn for_keys(keys: &[accel::PublicKey]) -> Self {
        Self {
            keys: keys.iter().map(key_label).collect(),
            ..Default::default()
        }
    }
}

/// Raises a Prometheus counter to `value` (for monotonic counters kept elsewhere).
pub(super) fn sync_counter(c: &prometheus::IntCounter, value: u64) {
    let now = c.get();
    if value > now {
        c.inc_by(value - now);
    }
}

impl Driver {
    /// Signs through the guard, timing it and counting signatures and failures.
    pub(super) fn sign_observed(
        &mut self,
        req: &hsm::SignRequest,
    ) -> Result<hsm::Signatures, hsm::SignError> {
        let started = Instant::now();
        let result = self.ctx.signer.sign(req);
        let m = &self.ctx.metrics;
        m.sign_seconds.observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => {
                m.signer_up.set(1);
                for key in &self.observed.keys {
                    m.signatures
                        .with_label_values(&[key, req.kind.name()])
                        .inc();
                }
                if req.kind == hsm::MsgKind::Commit {
                    self.note_prepared(B256::from(req.hash));
                }
            }
            Err(e) => {
                let reason = match e {
                    hsm::SignError::Refused(_) => "refused",
                    hsm::SignError::Guard(_) => "guard",
                    hsm::SignError::Backend(_) => {
                        m.signer_up.set(0);
                        "backend"
                    }
                };
                m.signer_errors.with_label_values(&[reason]).inc();
            }
        }
        result
    }

    /// The prepare phase ends when this node signs its commit for a block it saw proposed.
    fn note_prepared(&mut self, hash: B256) {
        if let Some(proposed) = self.started.get(&hash) {
            self.ctx
                .metrics
                .phase_seconds
                .with_label_values(&["prepare"])
                .observe(proposed.elapsed().as_secs_f64());
            self.observed.prepared_at.insert(hash, Instant::now());
        }
    }

    /// A block finalized through consensus: the commit phase, and whether this node's keys
    /// signed the certificate of its parent that the block carries (what rewards read).
    pub(super) fn observe_finalized(&mut self, block: &state::Block) {
        let m = &self.ctx.metrics;
        if let Some(at) = self.observed.prepared_at.remove(&block.hash()) {
            m.phase_seconds
                .with_label_values(&["commit"])
                .observe(at.elapsed().as_secs_f64());
        }
        self.observed
            .prepared_at
            .retain(|_, t| t.elapsed() < Duration::from_secs(60));
        // The parent's certificate verifies under this epoch's committee only when the parent
        // is in the same epoch (the first block of an epoch is skipped).
        let n = block.number();
        let eb = self.ctx.spec.epoch_blocks.max(1);
        if n < 2 || (n - 1) / eb != n / eb {
            return;
        }
        let committee = self.fbft.committee();
        let Some(bitmap) =
            state::Bitmap::from_bytes(&block.header.last_commit_bitmap, committee.keys.len())
        else {
            return;
        };
        let mut board = Vec::new();
        let keys = self.ctx.signer.public_keys().iter();
        for (key, label) in keys.zip(&self.observed.keys) {
            let Some(i) = committee.keys.iter().position(|k| k.public_key == *key) else {
                continue;
            };
            let counter = if bitmap.get(i) {
                &m.blocks_signed
            } else {
                &m.blocks_missed
            };
            counter.with_label_values(&[label]).inc();
            board.push(crate::chain::KeySigning {
                signed: m.blocks_signed.with_label_values(&[label]).get(),
                missed: m.blocks_missed.with_label_values(&[label]).get(),
                key: label.clone(),
            });
        }
        self.ctx.board.status.locked().keys = board;
    }

    /// A view change: by reason, and a missed slot when this node led the view it left.
    pub(super) fn observe_view_change(
        &mut self,
        number: u64,
        view: u64,
        reason: consensus::ViewChangeReason,
    ) {
        let m = &self.ctx.metrics;
        m.view_changes.with_label_values(&[reason.name()]).inc();
        if matches!(self.observed.leading, Some((n, v)) if n == number && v < view) {
            m.leader_views_missed.inc();
            self.observed.leading = None;
        }
    }

    /// Notes the round this node leads (called after every step).
    pub(super) fn note_leading(&mut self, number: u64, view: u64, leads: bool) {
        self.observed.leading = leads.then_some((number, view));
    }

    /// The periodic samples: mesh counters, peer scores and heights, storage and disk every
    /// 10 s, the signer's backend every 30 s (off the loop: an HSM may be slow to answer).
    pub(super) fn sample(&mut self) {
        let m = &self.ctx.metrics;
        let s = self.mesh.stats();
        let dropped = &m.dropped_messages;
        sync_counter(
            &dropped.with_label_values(&["queue_full"]),
            s.dropped_queue_full,
        );
        sync_counter(
            &dropped.with_label_values(&["send_failed"]),
            s.dropped_send_failed,
        );
        sync_counter(
            &dropped.with_label_values(&["oversized"]),
            s.dropped_oversized_outgoing,
        );
        sync_counter(
            &dropped.with_label_values(&["invalid_frame"]),
            s.dropped_invalid,
        );
        sync_counter(&dropped.with_label_values(&["stalled"]), s.stalled_writes);
        sync_counter(&m.handshakes_refused, s.handshake_refused);
        sync_counter(&m.quic_retries, s.retries_sent);
        m.peer_score.reset();
        for (peer, points) in self.peers.scores() {
            m.peer_score
                .with_label_values(&[&peer.to_string()])
                .set(i64::from(points));
        }
        let tip = self.fbft.tip().number;
        let peer_height = self.sync_peers.highest_claim().unwrap_or(tip).max(tip);
        m.peer_height.set(peer_height as i64);
        let mut status = self.ctx.board.status.locked();
        status.finalized = tip;
        status.note_peer_height(peer_height);
        drop(status);
        if self
            .observed
            .storage_sampled
            .is_none_or(|t| t.elapsed() >= STORAGE_EVERY)
        {
            self.observed.storage_sampled = Some(Instant::now());
            self.sample_storage();
        }
        if self
            .observed
            .probed
            .is_none_or(|t| t.elapsed() >= PROBE_EVERY)
        {
            self.observed.probed = Some(Instant::now());
            let (signer, m) = (self.ctx.signer.clone(), self.ctx.metrics.clone());
            tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let ok = signer.probe();
                m.signer_probe_seconds.set(started.elapsed().as_secs_f64());
                if let Err(e) = &ok {
                    tracing::error!(target: "signer", error = %e, "the signer's backend does not answer");
                }
                m.signer_up.set(i64::from(ok.is_ok()));
            });
        }
    }

    fn sample_storage(&self) {
        let m = &self.ctx.metrics;
        let db = self.ctx.store.db();
        match db.usage() {
            Ok(u) => {
                m.storage_size.set(u.file_bytes as i64);
                m.storage_pages
                    .with_label_values(&["used"])
                    .set(u.used_pages as i64);
                m.storage_pages
                    .with_label_values(&["free"])
                    .set(u.free_pages as i64);
            }
            Err(e) => {
                tracing::warn!(target: "storage", error = %e, "could not read the database's usage")
            }
        }
        match crate::host::disk_free_bytes(db.path()) {
            Ok(free) => m.disk_free.set(free as i64),
            Err(e) => {
                tracing::warn!(target: "storage", path = %db.path().display(), error = %e, "could not read the free disk space")
            }
        }
    }
}

/// Guard counters (kept by the guard itself) raised into their metrics.
pub(super) fn sync_guard(m: &crate::metrics::Metrics, g: &hsm::GuardStats) {
    let refusals = &m.guard_refusals;
    sync_counter(
        &refusals.with_label_values(&["conflict"]),
        g.conflicts.load(Relaxed),
    );
    sync_counter(
        &refusals.with_label_values(&["below_watermark"]),
        g.below_watermark.load(Relaxed),
    );
    sync_counter(&m.guard_records, g.records.load(Relaxed));
}
