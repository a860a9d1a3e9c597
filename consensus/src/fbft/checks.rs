//! Verification jobs and what resumes when their results come back: one function per kind
//! of check.

use super::*;

impl Fbft {
    /// Starts one check made of several verification jobs; it succeeds when all do.
    pub(super) fn verify(
        &mut self,
        jobs: Vec<([u8; PAYLOAD_BYTES], Vec<accel::Vote>)>,
        check: Check,
        out: &mut Vec<Effect>,
    ) {
        let cid = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            cid,
            Pending {
                check,
                parts: jobs.len(),
                ok: true,
                valid: Vec::new(),
                aggregate: None,
            },
        );
        for (payload, votes) in jobs {
            let id = self.next_id;
            self.next_id += 1;
            self.jobs.insert(id, cid);
            out.push(Effect::Verify(VerifyJob { id, payload, votes }));
        }
    }

    /// Starts a check of votes from wire bytes: one quorum job.
    pub(super) fn verify_quorum(
        &mut self,
        payload: [u8; PAYLOAD_BYTES],
        votes: Vec<(u32, Bytes)>,
        check: Check,
        out: &mut Vec<Effect>,
    ) {
        let cid = self.next_id;
        let id = cid + 1;
        self.next_id += 2;
        self.pending.insert(
            cid,
            Pending {
                check,
                parts: 1,
                ok: true,
                valid: Vec::new(),
                aggregate: None,
            },
        );
        self.jobs.insert(id, cid);
        out.push(Effect::VerifyQuorum(QuorumJob {
            id,
            committee: self.committee.clone(),
            payload,
            votes,
        }));
    }

    /// A verification job finished; once every job of its check is in, resume the check.
    pub(super) fn on_verified(
        &mut self,
        now_ms: u64,
        id: u64,
        valid: Vec<bool>,
        aggregate: Option<Signature>,
        out: &mut Vec<Effect>,
    ) {
        let Some(cid) = self.jobs.remove(&id) else {
            return;
        };
        let Some(p) = self.pending.get_mut(&cid) else {
            return;
        };
        p.parts -= 1;
        p.ok &= !valid.is_empty() && valid.iter().all(|v| *v);
        p.valid = valid;
        p.aggregate = aggregate;
        if p.parts > 0 {
            return;
        }
        let Pending {
            check,
            ok: all_ok,
            valid,
            aggregate,
            ..
        } = self.pending.remove(&cid).expect("present");
        match check {
            Check::AnnounceParent { block } => self.resume_announce(*block, all_ok, out),
            Check::Prepared(cert) => self.resume_prepared(cert, all_ok, out),
            Check::Committed { cert, from } => self.resume_committed(cert, from, all_ok, out),
            Check::Votes {
                kind,
                voters,
                view,
                hash,
            } => {
                let r = &self.round;
                if r.view != view || r.block.as_ref().map(Block::hash) != Some(hash) {
                    return; // votes of a view (or block) we left: they count for nothing now
                }
                self.resume_votes(kind, voters, valid, aggregate, out)
            }
            Check::ViewChange {
                from,
                vc,
                bitmap,
                signature,
            } => self.resume_view_change(from, *vc, bitmap, signature, all_ok, out),
            Check::LateCommit {
                from,
                number,
                hash,
                bitmap,
                signature,
            } => {
                let current = self.late.as_ref().map(|l| (l.number, l.hash));
                if current == Some((number, hash)) {
                    self.resume_late_commit(from, bitmap, signature, all_ok, out)
                }
            }
            Check::TipCertificate { cert, from } => {
                self.resume_tip_certificate(cert, from, all_ok, out)
            }
            Check::NewView { from, nv } => {
                if !all_ok {
                    return Self::fault(
                        out,
                        self.peer(from),
                        FaultKind::BadSignature,
                        "NewView proof does not verify",
                    );
                }
                self.adopt_new_view(now_ms, from, *nv, out);
            }
        }
    }

    /// The parent certificate of a proposal verified (or not): accept the proposal.
    fn resume_announce(&mut self, block: Block, all_ok: bool, out: &mut Vec<Effect>) {
        self.round.announce_checking = false;
        // Only while the view it was proposed for is still ours and open: a result that comes
        // back after a view change must not become a prepare vote in the new view.
        let r = &self.round;
        let current = block.header.number == r.number
            && block.header.view == r.view
            && !r.in_view_change
            && r.block.is_none();
        if all_ok && current {
            self.accept_proposal(block, None, out);
        } else if !all_ok {
            Self::fault(
                out,
                self.peer(self.round.leader),
                FaultKind::BadSignature,
                "proposal carries an invalid parent commit signature or VRF",
            );
        }
    }

    /// The leader's prepare certificate verified: lock, and commit once validated.
    fn resume_prepared(&mut self, cert: CommitCertificate, all_ok: bool, out: &mut Vec<Effect>) {
        if all_ok && self.round.prepared.is_none() && cert.view == self.round.view {
            self.round.prepared = Some(cert);
            self.maybe_lock();
            self.maybe_commit(out);
        } else if !all_ok {
            Self::fault(
                out,
                self.peer(self.round.leader),
                FaultKind::BadSignature,
                "invalid prepared certificate",
            );
        }
    }

    /// A commit certificate verified: finalize the block it names, or fetch it.
    fn resume_committed(
        &mut self,
        cert: CommitCertificate,
        from: usize,
        all_ok: bool,
        out: &mut Vec<Effect>,
    ) {
        if !all_ok {
            return Self::fault(
                out,
                self.peer(from),
                FaultKind::BadSignature,
                "invalid commit certificate",
            );
        }
        if self.round.committed || cert.number != self.round.number {
            return;
        }
        let held = [
            self.round.block.as_ref(),
            self.round.locked.as_ref().map(|l| &l.block),
        ];
        match held
            .into_iter()
            .flatten()
            .find(|b| b.hash() == cert.hash && b.header.view <= cert.view)
        {
            Some(b) => {
                self.round.committed = true;
                out.push(Effect::Finalize {
                    block: b.clone(),
                    cert,
                });
            }
            // Finalized by a quorum, but we lack the block: fetch it with its certificate.
            None => out.push(Effect::Behind {
                peer: self.peer(from),
                number: cert.number,
            }),
        }
    }

    /// A batch of votes came back, one result per vote and the aggregate of the valid ones:
    /// count them, fault the senders of the others, certify if they now make a quorum.
    fn resume_votes(
        &mut self,
        kind: MsgKind,
        voters: Vec<usize>,
        valid: Vec<bool>,
        aggregate: Option<Signature>,
        out: &mut Vec<Effect>,
    ) {
        let hash = self.round.block.as_ref().map(Block::hash);
        let committee = self.committee.clone();
        let set = self.votes(kind);
        set.in_flight = false;
        let mut signers = Bitmap::with_len(committee.key_count());
        let mut faults = Vec::new();
        for (from, ok) in voters
            .into_iter()
            .zip(valid.into_iter().chain(std::iter::repeat(false)))
        {
            if ok {
                signers.union_with(&committee.member_bitmap(from));
            } else {
                faults.push(from);
            }
        }
        if let Some(agg) = aggregate.filter(|_| signers.count() > 0) {
            set.verified.push((signers, agg));
        }
        for f in faults {
            Self::fault(
                out,
                self.peer(f),
                FaultKind::BadSignature,
                format!("invalid {kind:?} signature"),
            );
        }
        if let Some(hash) = hash {
            self.try_certify(kind, hash, out);
            self.maybe_verify_votes(kind, hash, out);
        }
    }

    /// A view change (signature and lock certificate) verified: count it.
    fn resume_view_change(
        &mut self,
        from: usize,
        vc: ViewChange,
        bitmap: Bitmap,
        signature: Signature,
        all_ok: bool,
        out: &mut Vec<Effect>,
    ) {
        let set = self.round.view_changes.entry(vc.view).or_default();
        set.checking.remove(&from);
        if !all_ok {
            return Self::fault(
                out,
                self.peer(from),
                FaultKind::BadSignature,
                "invalid view-change signature or prepared certificate",
            );
        }
        let prepared = vc.prepared.into_iter().next();
        if let Some(proof) = &prepared {
            // A lock is only worth carrying if it is a valid block. Executed only now
            // that its certificate verified: a forged view change costs a pairing, not
            // a block execution.
            let hash = proof.block.hash();
            if !self.round.validated.contains(&hash) && !self.round.invalid.contains(&hash) {
                out.push(Effect::Validate(proof.block.clone()));
            }
        }
        let set = self.round.view_changes.entry(vc.view).or_default();
        set.verified.insert(
            from,
            VcEntry {
                bitmap,
                signature,
                hash: vc.prepared_hash,
                prepared,
            },
        );
        self.after_view_change_vote(vc.view, out);
    }

    /// A late commit vote for the tip verified: fold it into the tip's certificate.
    fn resume_late_commit(
        &mut self,
        from: usize,
        bitmap: Bitmap,
        signature: Signature,
        all_ok: bool,
        out: &mut Vec<Effect>,
    ) {
        let Some(late) = self.late.as_mut() else {
            return;
        };
        if !all_ok {
            return Self::fault(
                out,
                late.committee.members[from].transport_key,
                FaultKind::BadSignature,
                "invalid Commit signature",
            );
        }
        if !late.bitmap.is_disjoint(&bitmap) {
            return;
        }
        late.bitmap.union_with(&bitmap);
        late.signature = AggregateSignature::aggregate([&late.signature, &signature])
            .expect("two signatures")
            .to_signature();
        if self.tip.number == late.number && self.tip.hash == late.hash {
            self.tip.cert = Some(CommitCertificate {
                number: late.number,
                view: late.view,
                hash: late.hash,
                signature: Bytes::copy_from_slice(&late.signature.to_bytes()),
                bitmap: Bytes::copy_from_slice(late.bitmap.as_bytes()),
            });
            self.after_late_fold(out);
        }
    }

    fn resume_tip_certificate(
        &mut self,
        cert: CommitCertificate,
        from: usize,
        all_ok: bool,
        out: &mut Vec<Effect>,
    ) {
        if !all_ok {
            let peer = self.tip_committee.members[from].transport_key;
            return Self::fault(
                out,
                peer,
                FaultKind::BadSignature,
                "invalid commit certificate of the tip",
            );
        }
        // Still our tip, and still larger than what we hold (another may have come first).
        if self.enlarges_tip_certificate(&cert) {
            self.tip.cert = Some(cert);
        }
    }
}
