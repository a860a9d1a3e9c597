//! Catch-up: asking peers for the blocks this node misses and serving theirs.

use super::*;

/// Most blocks sent in one sync response.
const SYNC_BATCH: u64 = 64;

/// A verified sync response being applied, one block at a time.
pub(super) struct SyncBatch {
    peer: usize,
    /// The peer sent a whole batch: there is probably more to fetch.
    full: bool,
    /// Blocks not yet applied, in order (filled once the certificates verify).
    blocks: VecDeque<(state::Block, state::CommitCertificate)>,
    stored: usize,
}

/// Work of catch-up that ran off the loop, coming back to it.
pub(super) enum SyncStep {
    Verified {
        response: SyncResponse,
        result: Result<(), consensus::CertificateError>,
    },
    Executed {
        block: Box<state::Block>,
        cert: state::CommitCertificate,
        /// Its execution (None: this node had executed it already, when it validated the
        /// block live), or why it (or its leader's VRF) was refused.
        result: Result<Option<Box<ExecutedBlock>>, String>,
    },
}

impl Driver {
    pub(super) fn on_peer_status(&mut self, peer: usize, s: Status) {
        self.sync_peers.claim(peer, s.number);
        if s.number > self.fbft.tip().number {
            self.request_sync(peer, s.number);
        }
    }

    /// A request unanswered for `sync_peers::SYNC_TIMEOUT`: its peer is skipped for a while
    /// and the best other peer that claims to be ahead is asked at once.
    pub(super) fn check_sync_timeout(&mut self) {
        if self.note_sync_timeout(Instant::now()) {
            let tip = self.fbft.tip().number;
            if let Some((other, target)) = self.sync_peers.best(tip, Instant::now()) {
                self.request_sync(other, target);
            }
        }
    }

    /// Marks the peer of a timed-out request silent; true when there was one.
    fn note_sync_timeout(&mut self, now: Instant) -> bool {
        let Some(peer) = self.sync_peers.time_out(now) else {
            return false;
        };
        tracing::warn!(target: "sync", peer, "peer left a sync request unanswered; asking another");
        true
    }

    /// Asks `peer` (or, if it left a request unanswered lately, the best other peer ahead)
    /// for the blocks past our tip, up to `target`.
    pub(super) fn request_sync(&mut self, peer: usize, target: u64) {
        let tip = self.fbft.tip().number;
        let now = Instant::now();
        self.note_sync_timeout(now);
        if target <= tip || self.sync_batch.is_some() || self.sync_peers.waiting(now) {
            return;
        }
        let Some((peer, target)) = self.sync_peers.choose(peer, target, tip, now) else {
            return;
        };
        self.sync_peers.asked(peer, now);
        let count = (target - tip).min(SYNC_BATCH);
        tracing::info!(target: "sync", peer, from = tip + 1, count, "behind; fetching blocks");
        self.mesh.send(
            peer,
            Message::SyncRequest(SyncRequest {
                from: tip + 1,
                count,
            })
            .encode(),
        );
    }

    pub(super) fn on_sync_request(&mut self, peer: usize, r: SyncRequest) {
        if self.peers.request(peer, crate::peers::Request::Sync) {
            return self.fault(
                peer,
                FaultKind::Protocol,
                &format!(
                    "more than {} sync requests in one status interval",
                    crate::peers::Request::Sync.limit()
                ),
            );
        }
        let mut blocks = Vec::new();
        let mut certificates = Vec::new();
        let mut size = 0usize;
        for n in r.from..r.from.saturating_add(r.count.min(SYNC_BATCH)) {
            let (Ok(Some(b)), Ok(Some(c))) =
                (self.ctx.store.block(n), self.ctx.store.certificate(n))
            else {
                break;
            };
            size += alloy_rlp::Encodable::length(&b);
            if size > 1 << 20 && !blocks.is_empty() {
                break;
            }
            blocks.push(b);
            certificates.push(c);
        }
        self.mesh.send(
            peer,
            Message::SyncResponse(SyncResponse {
                blocks,
                certificates,
            })
            .encode(),
        );
    }

    /// A peer's blocks with their commit certificates. The certificates of the whole response
    /// are verified as one batch off the loop; then each block is checked (linkage, proposer,
    /// certificate's block) on the loop, re-executed off it, and stored in order.
    pub(super) fn on_sync_response(&mut self, peer: usize, r: SyncResponse) {
        self.sync_peers.answered(peer);
        if self.sync_batch.is_some() {
            return; // a late or duplicate answer while an earlier one is still being applied
        }
        if r.blocks.len() != r.certificates.len() {
            return self.fault(
                peer,
                FaultKind::Malformed,
                "sync response with unequal block and certificate counts",
            );
        }
        let mut full = r.blocks.len() as u64 == SYNC_BATCH;
        // Certificates are checked against the committee of the round's epoch; blocks of a
        // later epoch wait until its committee is known (the hand-off block stored), then
        // come with the next request.
        let mut r = r;
        let tip = self.fbft.tip().number;
        let epoch_of = |n: u64| n / self.ctx.spec.epoch_blocks;
        let epoch = epoch_of(tip + 1);
        full |= r.blocks.iter().any(|b| epoch_of(b.number()) > epoch);
        (r.blocks, r.certificates) = std::mem::take(&mut r.blocks)
            .into_iter()
            .zip(std::mem::take(&mut r.certificates))
            .filter(|(b, _)| b.number() > tip && epoch_of(b.number()) == epoch)
            .unzip();
        self.sync_batch = Some(SyncBatch {
            peer,
            full,
            blocks: VecDeque::new(),
            stored: 0,
        });
        let (engine, committee, done) = (
            self.ctx.engine.clone(),
            self.fbft.committee().clone(),
            self.syncs.clone(),
        );
        let (chain_id, shard) = (self.ctx.spec.chain_id, self.ctx.spec.shard);
        tokio::task::spawn_blocking(move || {
            let result = consensus::verify_commit_certificates(
                &engine,
                &committee,
                chain_id,
                shard,
                &r.certificates,
            );
            let _ = done.send(SyncStep::Verified {
                response: r,
                result,
            });
        });
    }

    pub(super) fn on_sync_step(&mut self, step: SyncStep) {
        let Some(peer) = self.sync_batch.as_ref().map(|b| b.peer) else {
            return;
        };
        match step {
            SyncStep::Verified { result: Err(e), .. } => {
                self.sync_batch = None;
                self.fault(
                    peer,
                    FaultKind::BadSignature,
                    &format!("sync response: {e}"),
                );
            }
            SyncStep::Verified {
                response,
                result: Ok(()),
            } => {
                let batch = self.sync_batch.as_mut().expect("present");
                batch.blocks = response
                    .blocks
                    .into_iter()
                    .zip(response.certificates)
                    .collect();
                self.apply_next_synced();
            }
            SyncStep::Executed {
                block,
                cert,
                result,
            } => {
                if block.number() != self.fbft.tip().number + 1 {
                    // Consensus finalized this height meanwhile (the same block: one is final).
                    return self.apply_next_synced();
                }
                match result {
                    Ok(Some(executed)) => {
                        self.executed.insert(block.hash(), *executed);
                    }
                    // Kept from live validation; `commit` executes it if it is gone meanwhile.
                    Ok(None) => {}
                    Err(reason) => {
                        self.sync_batch = None;
                        let number = block.number();
                        return self.fault(
                            peer,
                            FaultKind::InvalidBlock,
                            &format!("sync block #{number}: {reason}"),
                        );
                    }
                }
                if let Err(e) = self.commit(&block, &cert) {
                    tracing::error!(target: "storage", error = %e, "could not store synced block");
                    self.sync_batch = None;
                    return;
                }
                self.ctx.metrics.sync_blocks.inc();
                if let Some(b) = self.sync_batch.as_mut() {
                    b.stored += 1;
                }
                let Some(committees) = self.committees_around(block.number()) else {
                    return;
                };
                self.after_persisted(&block);
                self.feed(Input::Persisted {
                    tip: Tip::of(&block, Some(cert)),
                    committees,
                });
                self.apply_next_synced();
            }
        }
    }

    /// Checks the next fetched block against the tip and sends it for execution, or ends the
    /// batch (asking for more if the peer's answer was full).
    fn apply_next_synced(&mut self) {
        let tip = self.fbft.tip().clone();
        let Some(batch) = self.sync_batch.as_mut() else {
            return;
        };
        let peer = batch.peer;
        let next = loop {
            match batch.blocks.pop_front() {
                Some((block, _)) if block.number() <= tip.number => continue,
                other => break other,
            }
        };
        let Some((block, cert)) = next else {
            let batch = self.sync_batch.take().expect("present");
            if batch.stored > 0 {
                tracing::info!(target: "sync", peer, stored = batch.stored, tip = tip.number, "caught up blocks");
            }
            if batch.full {
                self.request_sync(peer, tip.number + SYNC_BATCH);
            }
            return;
        };
        let Ok(Some(parent)) = self.ctx.store.header(tip.number) else {
            self.sync_batch = None;
            return;
        };
        let recent = recent_bitmaps(&self.ctx.store, tip.number).unwrap_or_default();
        let checked = check_link(
            self.fbft.committee(),
            &self.ctx.spec,
            &parent,
            &recent,
            &block,
        )
        .and_then(|vrf| {
            // Its signature verified with the batch.
            if cert.number != block.number()
                || cert.hash != block.hash()
                || cert.view < block.header.view
            {
                return Err("certificate is for another block".into());
            }
            Ok(vrf)
        });
        let vrf = match checked {
            Ok(vrf) => vrf,
            Err(reason) => {
                self.sync_batch = None;
                return self.fault(
                    peer,
                    FaultKind::InvalidBlock,
                    &format!("sync block #{}: {reason}", block.number()),
                );
            }
        };
        // Re-executed only once its certificate checks out (execution costs more), and off
        // the loop: a batch of full blocks takes seconds. A node falls behind when it is
        // short of CPU, and must then store blocks faster than the network makes them: a block
        // it already executed live (validated, but its `Committed` missed) is not executed
        // again, and the senders its pool recovered are not recovered again (a full block's
        // 1,428 recoveries cost 43 ms of one core).
        let executed_here = self.executed.contains_key(&block.hash());
        let known = if executed_here {
            HashMap::new()
        } else {
            self.pooled(&block)
        };
        let (store, exec, done) = (
            self.ctx.store.clone(),
            self.ctx.exec.clone(),
            self.syncs.clone(),
        );
        let engine = self.ctx.engine.clone();
        let histogram = self.ctx.metrics.block_seconds.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let vrf_ok = vrf.is_none_or(|(payload, vote)| {
                engine.verify_votes(&payload, std::slice::from_ref(&vote))[0]
            });
            let result = if !vrf_ok {
                Err("the leader's VRF does not verify".to_string())
            } else if executed_here {
                Ok(None)
            } else {
                execute_block(&engine, &store, &exec, &block, &known)
                    .map(|e| Some(Box::new(e)))
                    .map_err(|e| e.to_string())
            };
            if !executed_here {
                histogram
                    .with_label_values(&["sync"])
                    .observe(started.elapsed().as_secs_f64());
            }
            let _ = done.send(SyncStep::Executed {
                block: Box::new(block),
                cert,
                result,
            });
        });
    }
}
