//! Compact announces (header plus transaction hashes, HET-86): assembled from the pool, with
//! what is missing fetched from the leader.

use super::*;
use crate::lock::LockExt;

/// A compact announce from the round's leader, waiting for the transactions asked of it.
pub(super) struct PendingAnnounce {
    pub(super) from: usize,
    pub(super) compact: consensus::CompactAnnounce,
    pub(super) received: Instant,
    /// Hashes asked for and not yet received.
    pub(super) missing: std::collections::HashSet<B256>,
    pub(super) fetched: HashMap<B256, state::Bytes>,
}

impl Driver {
    /// A proposal announced as header plus hashes (HET-86): the body comes from the pool;
    /// for the current leader's proposal, what is missing is asked of it once, and the
    /// announce waits (at most one view timeout) for the answer.
    pub(super) fn on_compact_announce(&mut self, from: usize, compact: consensus::CompactAnnounce) {
        if let Err(e) = compact.check_bounds() {
            return self.fault(from, FaultKind::Malformed, &e.to_string());
        }
        let assembled = {
            let pool = self.ctx.pool.locked();
            compact.assemble(|h| pool.get(h).map(|t| t.raw.clone()))
        };
        let (number, view, leader) = self.fbft.round();
        let current =
            from == leader && compact.header.number == number && compact.header.view == view;
        if current {
            self.started
                .entry(compact.header.hash())
                .or_insert_with(Instant::now);
        }
        match assembled {
            Ok(_) => self.complete_announce(from, compact, Instant::now(), &HashMap::new()),
            // Only the expected proposal is worth a round trip; anything else is a stale or
            // bogus announce, and must not displace the one being fetched.
            Err(_) if !current => {
                tracing::debug!(target: "consensus", from, number = compact.header.number, "incomplete compact announce not from the current leader; ignored");
            }
            Err(missing) => {
                tracing::debug!(target: "consensus", number, missing = missing.len(), "fetching transactions of a compact announce");
                self.mesh.send(
                    from,
                    Message::GetTransactions(consensus::TxRequest {
                        hashes: missing.clone(),
                    })
                    .encode(),
                );
                self.pending_announce = Some(PendingAnnounce {
                    from,
                    compact,
                    received: Instant::now(),
                    missing: missing.into_iter().collect(),
                    fetched: HashMap::new(),
                });
            }
        }
    }

    /// Rebuilds a compact announce's block from the pool and `fetched` and hands it to
    /// consensus.
    pub(super) fn complete_announce(
        &mut self,
        from: usize,
        compact: consensus::CompactAnnounce,
        received: Instant,
        fetched: &HashMap<B256, state::Bytes>,
    ) {
        let assembled = {
            let pool = self.ctx.pool.locked();
            compact.assemble(|h| {
                fetched
                    .get(h)
                    .cloned()
                    .or_else(|| pool.get(h).map(|t| t.raw.clone()))
            })
        };
        let Ok(block) = assembled else {
            // A transaction left the pool meanwhile (a block was final): the view moves on.
            self.ctx
                .metrics
                .compact_announces
                .with_label_values(&["incomplete"])
                .inc();
            return;
        };
        if block.compute_transactions_root() != block.header.transactions_root {
            return self.fault(
                from,
                FaultKind::InvalidBlock,
                "compact announce: transactions do not match the header's root",
            );
        }
        let outcome = if fetched.is_empty() {
            "complete"
        } else {
            "fetched"
        };
        self.ctx
            .metrics
            .compact_announces
            .with_label_values(&[outcome])
            .inc();
        tracing::debug!(target: "consensus", number = block.number(), txs = block.body.transactions.len(), fetched = fetched.len(), ms = received.elapsed().as_millis() as u64, "compact announce assembled");
        self.feed_message(
            from,
            Message::Announce(Box::new(consensus::Announce { block })),
        );
    }
}
