//! Effects of a consensus step turned into work: signing, verification, execution off the
//! loop, timers, persistence and finalizing.

use super::*;
use crate::lock::LockExt;

/// Finality samples kept for `hmy_finalityStats`.
const LATENCY_RING: usize = 4096;

impl Driver {
    pub(super) fn execute(&mut self, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Broadcast(Message::Announce(a))
                if self.ctx.announce_headers_only
                    && !a.block.body.transactions.is_empty()
                    && a.block.body.staking_transactions.is_empty() =>
            {
                let compact = consensus::CompactAnnounce::of(&a.block);
                self.mesh
                    .broadcast(Message::CompactAnnounce(Box::new(compact)).encode());
            }
            Effect::Broadcast(m) => self.mesh.broadcast(m.encode()),
            Effect::Send(to, m) => {
                if let Some(to) = self.peer_index(&to) {
                    self.mesh.send(to, m.encode());
                }
            }
            Effect::Sign(req) => match self.sign_observed(&req) {
                Ok(signatures) => {
                    if req.kind == hsm::MsgKind::Commit {
                        self.double_sign_for_tests(req);
                    }
                    return Some(Input::Signed { req, signatures });
                }
                Err(e) => {
                    tracing::error!(target: "signer", ?req, error = %e, "signing failed; not voting")
                }
            },
            // Verification runs off the loop like execution; every result carries its job id,
            // and consensus drops one whose (number, view, block) has passed.
            Effect::Verify(job) => {
                let (engine, done) = (self.ctx.engine.clone(), self.verified.clone());
                tokio::task::spawn_blocking(move || {
                    let _ = done.send(consensus::run_verify_job(&engine, &job));
                });
            }
            Effect::VerifyQuorum(job) => {
                let (engine, done) = (self.ctx.engine.clone(), self.verified.clone());
                let histogram = self.ctx.metrics.vote_verification_seconds.clone();
                tokio::task::spawn_blocking(move || {
                    let start = Instant::now();
                    let result = consensus::run_quorum_job(&engine, &job);
                    let kind = if job.payload[..16] == hsm::MsgKind::Prepare.tag() {
                        "prepare"
                    } else {
                        "commit"
                    };
                    histogram
                        .with_label_values(&[kind])
                        .observe(start.elapsed().as_secs_f64());
                    let _ = done.send(result);
                });
            }
            Effect::Validate(block) => {
                let hash = block.hash();
                if self.executed.contains_key(&hash) {
                    return Some(Input::Validated {
                        hash,
                        result: Ok(()),
                    });
                }
                if self.validating.insert(hash) {
                    // Off the loop: QUIC, timers, votes and RPC go on while it executes.
                    let (store, exec) = (self.ctx.store.clone(), self.ctx.exec.clone());
                    let engine = self.ctx.engine.clone();
                    let known = self.pooled(&block);
                    let done = self.validations.clone();
                    let histogram = self.ctx.metrics.block_seconds.clone();
                    tokio::task::spawn_blocking(move || {
                        let started = Instant::now();
                        let result = execute_block(&engine, &store, &exec, &block, &known);
                        histogram
                            .with_label_values(&["validate"])
                            .observe(started.elapsed().as_secs_f64());
                        let number = block.number();
                        let _ = done.send(Validation {
                            number,
                            hash,
                            result,
                        });
                    });
                }
            }
            Effect::BuildBlock {
                number,
                view,
                epoch,
                parent,
                min_timestamp_ms,
                last_commit,
                vrf,
            } => {
                let template = BlockTemplate {
                    number,
                    view,
                    epoch,
                    shard: self.ctx.spec.shard,
                    parent_hash: parent,
                    timestamp_ms: now_ms().max(min_timestamp_ms),
                    leader: match self.fbft.me_index() {
                        Some(me) => self.fbft.committee().members[me].address,
                        None => return None, // not a member: never asked to lead
                    },
                    last_commit,
                    transactions: vec![],
                    vrf,
                };
                if let Err(e) = self.build_block(template) {
                    tracing::error!(target: "consensus", number, view, error = %e, "could not build a block; the view will time out");
                }
            }
            Effect::Schedule(timer, delay) => {
                let tx = self.timers.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(timer);
                });
            }
            Effect::PersistSafety(record) => {
                // Durable (MDBX commit with full sync) before the signature it protects.
                if let Err(e) = self.ctx.store.put_consensus_safety(SHARD, &record) {
                    tracing::error!(target: "storage", error = %e, "could not persist the safety record; stopping to stay safe");
                    // Nothing after this effect runs (the signature it protects included): the
                    // loop stops and `run` returns the error.
                    self.fatal = Some(eyre::eyre!(
                        "could not persist the consensus safety record ({e}); stopped before \
                         signing. Check the data directory's disk (space, permissions, errors) \
                         and restart"
                    ));
                }
            }
            Effect::Evidence(e) => self.check_evidence(None, *e),
            Effect::ViewChanged {
                number,
                view,
                reason,
            } => {
                self.observe_view_change(number, view, reason);
                tracing::warn!(target: "consensus", number, view, reason = reason.name(), leader = self.fbft.round().2, "view change");
            }
            Effect::Finalize { block, cert } => {
                let hash = block.hash();
                if self.ctx.store.canonical_hash(block.number()).ok().flatten() == Some(hash) {
                    return None; // already stored by catch-up
                }
                if let Err(e) = self.commit(&block, &cert) {
                    // The round stays open; catch-up will bring the block if we lost it.
                    tracing::error!(target: "storage", number = block.number(), error = %e, "could not store finalized block");
                    return None;
                }
                if let Some(start) = self.started.remove(&hash) {
                    let elapsed = start.elapsed();
                    self.ctx
                        .metrics
                        .finality_seconds
                        .observe(elapsed.as_secs_f64());
                    let mut ring = self.ctx.board.latencies.locked();
                    if ring.len() == LATENCY_RING {
                        ring.pop_front();
                    }
                    ring.push_back((block.number(), elapsed.as_micros() as u64));
                    self.ctx.board.status.locked().last_finality_ms =
                        Some(elapsed.as_secs_f64() * 1000.0);
                }
                self.started
                    .retain(|_, t| t.elapsed() < Duration::from_secs(60));
                self.ctx.metrics.blocks_finalized.inc();
                self.observe_finalized(&block);
                tracing::info!(target: "consensus", number = block.number(), %hash, view = block.header.view, "finalized");
                let committees = self.committees_around(block.number())?;
                self.after_persisted(&block);
                return Some(Input::Persisted {
                    tip: Tip::of(&block, Some(cert)),
                    committees,
                });
            }
            Effect::Behind { peer, number } => {
                if let Some(peer) = self.peer_index(&peer) {
                    self.request_sync(peer, number);
                }
            }
            Effect::PeerFault { peer, kind, reason } => {
                if let Some(peer) = self.peer_index(&peer) {
                    self.fault(peer, kind, &reason);
                }
            }
        }
        None
    }

    /// A block's re-execution finished: keep the result for finalizing, tell consensus.
    pub(super) fn on_validation(&mut self, v: Validation) {
        self.validating.remove(&v.hash);
        if v.number <= self.fbft.tip().number {
            return; // its height was finalized meanwhile
        }
        let result = match v.result {
            Ok(executed) => {
                self.ctx
                    .metrics
                    .state_root_seconds
                    .observe(executed.root_time.as_secs_f64());
                self.executed.insert(v.hash, executed);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(target: "consensus", number = v.number, hash = %v.hash, error = %e, "announced block does not re-execute");
                Err(e)
            }
        };
        self.feed(Input::Validated {
            hash: v.hash,
            result,
        });
    }

    /// The block's transactions this node's pool already decoded (senders recovered).
    pub(super) fn pooled(&self, block: &state::Block) -> HashMap<B256, SignedTx> {
        let pool = self.ctx.pool.locked();
        block
            .body
            .transactions
            .iter()
            .filter_map(|raw| {
                let h = state::keccak256(raw);
                pool.get(&h).map(|t| (h, t.clone()))
            })
            .collect()
    }

    /// The leader's block: the pool's best transactions, executed on the tip.
    /// Picks the block's transactions from the pool here, then executes them on a blocking
    /// thread; the block comes back through `on_built` as the proposal.
    pub(super) fn build_block(&mut self, mut template: BlockTemplate) -> Result<(), String> {
        if self.ctx.forge_vrf && !template.vrf.is_empty() {
            template.vrf = forged_vrf(&self.ctx.exec, &template);
        }
        let store = self.ctx.store.clone();
        let parent = tip_header(&store)?;
        let base_fee = state::exec::next_base_fee_after(&parent);
        let candidates = {
            let ro = store.db().tx().map_err(|e| e.to_string())?;
            let pool = self.ctx.pool.locked();
            pool.best(&StateReader::new(&ro), base_fee, state::GAS_LIMIT)
        };
        let staking = self.ctx.staking_pool.locked().candidates();
        let evidence = self.pooled_evidence();
        let exec = self.ctx.exec.clone();
        let done = self.builds.clone();
        let (number, view) = (template.number, template.view);
        let vdfs = self.vdfs.clone();
        let vdf_seconds = self.ctx.metrics.vdf_seconds.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            // The epoch's last block carries its VDF (computed since the seed block, or now).
            let vdf = if state::exec::epoch_vdf::carries_vdf(&exec, number) {
                vdfs.proof(&store, &exec, number / exec.epoch_blocks, &vdf_seconds)
            } else {
                Ok(Default::default())
            };
            let result = vdf.and_then(|vdf| {
                let extras = state::exec::BlockExtras {
                    staking,
                    evidence,
                    vdf,
                };
                state::exec::build_full(&store, &exec, &parent, template, candidates, extras)
                    .map_err(|e| e.to_string())
            });
            let _ = done.send(Built {
                number,
                view,
                started,
                result,
            });
        });
        Ok(())
    }

    /// A block built off the loop: prune what the pool could not include, keep the
    /// execution for finalizing, and propose it (consensus ignores it if the view moved on).
    pub(super) fn on_built(&mut self, built: Built) {
        let (block, executed) = match built.result {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(target: "consensus", number = built.number, view = built.view, error = %e, "could not build a block; the view will time out");
                return;
            }
        };
        if !executed.execution.rejected.is_empty() {
            let mut pool = self.ctx.pool.locked();
            for (hash, reason) in &executed.execution.rejected {
                tracing::debug!(target: "mempool", %hash, %reason, "left out of the block");
                // Left out for the block's gas only: they stay for a later block.
                if !matches!(
                    reason,
                    state::exec::TxRejection::BlockGas { .. }
                        | state::exec::TxRejection::AfterBlockGas
                ) {
                    pool.remove_rejected(&[*hash]);
                }
            }
        }
        if !executed.staking.rejected.is_empty() {
            let mut pool = self.ctx.staking_pool.locked();
            for (hash, reason) in &executed.staking.rejected {
                tracing::info!(target: "mempool", %hash, %reason, "staking transaction left out of the block and dropped");
                pool.remove(&[*hash]);
            }
        }
        self.prune_evidence(&executed.staking);
        let m = &self.ctx.metrics;
        m.block_seconds
            .with_label_values(&["build"])
            .observe(built.started.elapsed().as_secs_f64());
        m.state_root_seconds
            .observe(executed.root_time.as_secs_f64());
        m.blocks_proposed.inc();
        tracing::debug!(target: "consensus", number = block.number(), txs = block.body.transactions.len(), gas = block.header.gas_used, ms = built.started.elapsed().as_millis() as u64, "built block");
        self.executed.insert(block.hash(), executed);
        self.started.insert(block.hash(), Instant::now());
        self.feed(Input::Proposal(block));
    }

    /// Writes a final block with its state (executing it now if it was never validated
    /// here), then prunes the pool and tells subscribers.
    pub(super) fn commit(
        &mut self,
        block: &state::Block,
        cert: &state::CommitCertificate,
    ) -> Result<(), state::exec::BlockError> {
        let hash = block.hash();
        let executed = match self.executed.remove(&hash) {
            Some(e) => e,
            None => execute_block(
                &self.ctx.engine,
                &self.ctx.store,
                &self.ctx.exec,
                block,
                &self.pooled(block),
            )?,
        };
        let started = Instant::now();
        self.ctx
            .store
            .commit_executed(block, Some(cert), executed.writes())?;
        self.ctx
            .metrics
            .storage_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.ctx.metrics.gas_used.inc_by(block.header.gas_used);
        // Every other executed block was a competitor at this height: stale now.
        self.executed.clear();
        {
            let hashes: Vec<B256> = executed.execution.txs.iter().map(|t| t.hash).collect();
            let mut pool = self.ctx.pool.locked();
            pool.remove_included(&hashes);
            if let Ok(ro) = self.ctx.store.db().tx() {
                pool.prune(&StateReader::new(&ro));
            }
            self.ctx.metrics.mempool_size.set(pool.len() as i64);
        }
        {
            let hashes: Vec<B256> = executed.staking.txs.iter().map(|t| t.hash).collect();
            let mut pool = self.ctx.staking_pool.locked();
            pool.remove(&hashes);
            if let Ok(ro) = self.ctx.store.db().tx() {
                pool.prune(&StateReader::new(&ro));
            }
        }
        self.ctx
            .metrics
            .transactions_finalized
            .inc_by(executed.execution.txs.len() as u64);
        let _ = self.ctx.events.send(Arc::new(FinalizedBlock {
            header: block.header.clone(),
            receipts: executed.execution.receipts,
        }));
        Ok(())
    }
}

impl Driver {
    /// The test-only double-signing mode: a commit for another block at the same (number,
    /// view), signed outside the guard and broadcast.
    fn double_sign_for_tests(&mut self, req: hsm::SignRequest) {
        let (Some(signer), Some(me)) = (self.ctx.double_signer.clone(), self.fbft.me_index())
        else {
            return;
        };
        let fake = hsm::SignRequest {
            hash: alloy_primitives::keccak256(req.hash).0,
            ..req
        };
        let Ok(signatures) = signer.sign(&fake) else {
            return;
        };
        let committee = self.fbft.committee();
        let mine: Vec<_> = consensus::fbft::member_keys(committee, me)
            .iter()
            .filter_map(|pk| {
                let p = signer.public_keys().iter().position(|k| k == pk)?;
                signatures.get(p)
            })
            .collect();
        let Ok(agg) = accel::AggregateSignature::aggregate(mine) else {
            return;
        };
        let vote = consensus::Vote {
            number: fake.number,
            view: fake.view,
            hash: fake.hash.into(),
            bitmap: state::Bytes::copy_from_slice(committee.member_bitmap(me).as_bytes()),
            signature: state::Bytes::copy_from_slice(&agg.to_signature().to_uncompressed()),
        };
        tracing::warn!(target: "signer", number = fake.number, view = fake.view, "TEST MODE: signed a conflicting commit");
        self.mesh.broadcast(Message::Commit(vote).encode());
    }
}

/// The test-only forged VRF: well formed (β = sha256(π), π a valid signature over this block's
/// VRF request), signed by a key that is not the leader's.
fn forged_vrf(exec: &ExecConfig, t: &BlockTemplate) -> state::Bytes {
    let key = accel::SecretKey::from_ikm(&[0x66; 32]).expect("32 bytes of key material");
    let req =
        consensus::rules::vrf_request(exec.chain_id, exec.shard, t.number, t.view, t.parent_hash);
    tracing::warn!(target: "consensus", number = t.number, view = t.view, "TEST MODE: proposing with a forged VRF");
    consensus::rules::vrf_field(&key.sign(&hsm::payload(&req)))
}
