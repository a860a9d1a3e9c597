//! Proposals: the leader's own block, announces, header and parent checks, and accepting a
//! block as the view's proposal (with the lock rule).

use super::*;

impl Fbft {
    pub(super) fn on_proposal(&mut self, block: Block, out: &mut Vec<Effect>) {
        let h = &block.header;
        let r = &self.round;
        if !self.is_leader() || h.number != r.number || h.view != r.view || r.block.is_some() {
            return;
        }
        let in_view_change = r.in_view_change;
        if let Some(groups) = self.round.new_view_groups.take() {
            self.send_new_view(groups, block.clone(), out);
        } else if in_view_change {
            return;
        } else {
            out.push(Effect::Broadcast(Message::Announce(Box::new(Announce {
                block: block.clone(),
            }))));
        }
        let hash = block.hash();
        // The leader built the block itself: it is validated by construction.
        self.round.validated.insert(hash);
        self.round.block = Some(block);
        self.sign(MsgKind::Prepare, self.round.view, hash, out);
    }

    pub(super) fn on_validated(
        &mut self,
        hash: B256,
        result: Result<(), state::exec::BlockError>,
        out: &mut Vec<Effect>,
    ) {
        match result {
            Ok(()) => {
                self.round.validated.insert(hash);
                self.maybe_lock();
                self.maybe_commit(out);
            }
            Err(reason) => {
                // Never commit it, never carry it into a view change.
                if matches!(reason, state::exec::BlockError::Db(_)) {
                    tracing::error!(target: "consensus", %hash, %reason, "block could not be validated (local storage failure)");
                } else {
                    tracing::warn!(target: "consensus", %hash, %reason, "block failed validation");
                }
                self.round.invalid.insert(hash);
                if self
                    .round
                    .locked
                    .as_ref()
                    .is_some_and(|l| l.block.hash() == hash)
                {
                    self.round.locked = None;
                }
            }
        }
    }

    pub(super) fn on_announce(
        &mut self,
        now_ms: u64,
        from: usize,
        block: Block,
        out: &mut Vec<Effect>,
    ) {
        let r = &self.round;
        let h = &block.header;
        if h.view != r.view {
            return; // another view; NewView is how views change
        }
        if from != r.leader {
            return Self::fault(
                out,
                self.peer(from),
                FaultKind::Protocol,
                format!(
                    "announce for view {} from a node that is not its leader",
                    h.view
                ),
            );
        }
        if r.in_view_change {
            return; // this view starts with a NewView
        }
        if r.block.is_some() || r.announce_checking {
            if r.block.as_ref().map(Block::hash) != Some(block.hash()) {
                Self::fault(
                    out,
                    self.peer(from),
                    FaultKind::Equivocation,
                    "second, different announce in one round (equivocation)",
                );
            }
            return;
        }
        if let Err(reason) = self.check_header(now_ms, &block, r.view) {
            return Self::fault(
                out,
                self.peer(from),
                FaultKind::InvalidBlock,
                format!("announce #{}: {reason}", h.number),
            );
        }
        self.check_parent_then(block, from, out);
    }

    /// Verifies the parent's commit certificate carried in the header and the leader's VRF,
    /// then accepts `block`.
    pub(super) fn check_parent_then(&mut self, block: Block, from: usize, out: &mut Vec<Effect>) {
        let mut jobs = Vec::with_capacity(2);
        if self.tip.number > 0 {
            let cert = CommitCertificate {
                number: self.tip.number,
                view: block.header.last_commit_view,
                hash: self.tip.hash,
                signature: block.header.last_commit_signature.clone(),
                bitmap: block.header.last_commit_bitmap.clone(),
            };
            // The tip's own committee signed it (the previous epoch's, at a hand-off).
            match self.certificate_vote_of(&self.tip_committee, MsgKind::Commit, &cert) {
                Ok(job) => jobs.push((job.0, vec![job.1])),
                Err(reason) => {
                    return Self::fault(
                        out,
                        self.peer(from),
                        FaultKind::InvalidBlock,
                        format!("proposal #{}: last commit {reason}", block.header.number),
                    )
                }
            }
        }
        match rules::check_vrf_form(&block.header, self.cfg.vrf_required(block.number())) {
            Ok(Some(proof)) => {
                let h = &block.header;
                let public_key = self.committee.keys[self.leader_key_of(h.view)].public_key;
                let req = rules::vrf_request(
                    self.cfg.chain_id,
                    self.cfg.shard,
                    h.number,
                    h.view,
                    h.parent_hash,
                );
                jobs.push((
                    hsm::payload(&req),
                    vec![accel::Vote {
                        public_key,
                        signature: proof,
                    }],
                ));
            }
            Ok(None) => {}
            Err(reason) => {
                return Self::fault(
                    out,
                    self.peer(from),
                    FaultKind::InvalidBlock,
                    format!("proposal #{}: {reason}", block.header.number),
                )
            }
        }
        if jobs.is_empty() {
            return self.accept_proposal(block, None, out);
        }
        self.round.announce_checking = true;
        self.verify(
            jobs,
            Check::AnnounceParent {
                block: Box::new(block),
            },
            out,
        );
    }

    /// Header and proposer checks that gate the prepare vote of a fresh proposal in `view`.
    pub(super) fn check_header(
        &self,
        now_ms: u64,
        block: &Block,
        view: u64,
    ) -> Result<(), ProposalError> {
        let h = &block.header;
        if h.view != view {
            return Err(ProposalError::WrongView {
                expected: view,
                got: h.view,
            });
        }
        self.check_parent_fields(block)?;
        let recent: Vec<Bitmap> = self.recent.iter().cloned().collect();
        rules::check_leader(&self.committee, h, self.round.first_view, &recent)?;
        rules::check_not_future(h, now_ms, self.cfg.max_future_ms)
    }

    /// Checks that hold for any proposal at this height, fresh or re-proposed (the VRF's form
    /// here; its signature with the parent certificate, [`Fbft::check_parent_then`]).
    pub(super) fn check_parent_fields(&self, block: &Block) -> Result<(), ProposalError> {
        rules::check_child(
            &Parent::from(&self.tip),
            block,
            self.cfg.shard,
            self.cfg.epoch_blocks,
        )?;
        rules::check_vrf_form(&block.header, self.cfg.vrf_required(block.number())).map(|_| ())
    }

    /// Takes `block` as the view's proposal and prepares it. `justify` is the view of the
    /// prepare certificate that a NewView re-proposes it under (None for a fresh block).
    pub(super) fn accept_proposal(
        &mut self,
        block: Block,
        justify: Option<u64>,
        out: &mut Vec<Effect>,
    ) {
        let hash = block.hash();
        self.round.announce_checking = false;
        if self.round.invalid.contains(&hash) {
            return;
        }
        if let Some(lock) = &self.round.locked {
            // Safety: never prepare against our lock unless a higher certificate shows that a
            // quorum moved on (then the locked block cannot have been committed).
            if lock.block.hash() != hash && justify.is_none_or(|j| j <= lock.cert.view) {
                tracing::warn!(
                    target: "consensus",
                    number = self.round.number,
                    view = self.round.view,
                    %hash,
                    locked = %lock.block.hash(),
                    lock_view = lock.cert.view,
                    justify,
                    "refusing a proposal that conflicts with our lock"
                );
                return;
            }
        }
        let needs_validation = !self.round.validated.contains(&hash);
        self.round.block = Some(block.clone());
        if self.sign(MsgKind::Prepare, self.round.view, hash, out) && needs_validation {
            out.push(Effect::Validate(block));
        }
        self.maybe_commit(out);
    }
}
