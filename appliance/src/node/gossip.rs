//! Transactions relayed between peers, and answers to requests for them.

use super::*;

/// Most hashes one `GetTransactions` may name (a full block of plain transfers is 1,428).
const MAX_TX_REQUEST: usize = 2048;
/// Bytes of transactions in one answer to `GetTransactions`.
const MAX_TX_RESPONSE_BYTES: usize = 4 << 20;

impl Driver {
    /// Transactions relayed by a peer: recovered in parallel, then pooled. A peer that sends
    /// undecodable transactions is scored down; state-dependent refusals (nonce too low after
    /// a block, say) are ordinary races and are not.
    pub(super) fn on_transactions(&mut self, peer: usize, batch: consensus::TxBatch) {
        if let Some(p) = self.pending_announce.as_mut().filter(|p| p.from == peer) {
            // Relayed transactions from the leader may arrive before its answer: every batch
            // from it fills what is missing, whatever the pool later thinks of each one (the
            // block's validity is for execution to judge).
            for raw in &batch.transactions {
                let h = state::keccak256(raw);
                if p.missing.remove(&h) {
                    p.fetched.insert(h, raw.clone());
                }
            }
            if p.missing.is_empty() {
                let p = self.pending_announce.take().expect("present");
                self.complete_announce(p.from, p.compact, p.received, &p.fetched);
            }
        }
        let decoded = SignedTx::decode_all(&batch.transactions, self.ctx.exec.chain_id);
        let mut bad = 0;
        for r in decoded {
            match r {
                Ok(tx) => {
                    if let Err(e) = submit_transaction(&self.ctx.store, &self.ctx.pool, tx) {
                        tracing::trace!(target: "mempool", peer, error = %e, "relayed transaction refused");
                    }
                }
                Err(_) => bad += 1,
            }
        }
        self.ctx
            .metrics
            .mempool_size
            .set(self.ctx.pool.lock().expect("lock").len() as i64);
        if bad > 0 {
            self.fault(peer, &format!("{bad} undecodable relayed transactions"));
        }
    }

    /// Answers a request for transactions by hash: from the pool, or from a block executed
    /// here but not yet final (the leader's own proposal). Bounded in hashes and bytes, so a
    /// request cannot make this node build an arbitrarily large answer.
    pub(super) fn on_get_transactions(&mut self, peer: usize, r: consensus::TxRequest) {
        if r.hashes.len() > MAX_TX_REQUEST {
            return self.fault(
                peer,
                &format!("transaction request for {} hashes", r.hashes.len()),
            );
        }
        let proposed: HashMap<B256, &state::Bytes> = self
            .executed
            .values()
            .flat_map(|e| e.execution.txs.iter())
            .map(|t| (t.hash, &t.raw))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut size = 0usize;
        let mut transactions = Vec::new();
        let pool = self.ctx.pool.lock().expect("lock");
        for h in r.hashes.iter().filter(|h| seen.insert(**h)) {
            let raw = pool
                .get(h)
                .map(|t| t.raw.clone())
                .or_else(|| proposed.get(h).map(|r| (*r).clone()));
            if let Some(raw) = raw {
                size += raw.len();
                if size > MAX_TX_RESPONSE_BYTES {
                    break;
                }
                transactions.push(raw);
            }
        }
        drop(pool);
        self.mesh.send(
            peer,
            Message::Transactions(consensus::TxBatch { transactions }).encode(),
        );
    }
}
