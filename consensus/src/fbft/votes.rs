//! Prepare and commit votes: collecting and certifying them as leader, certificates as
//! validator, locks, and the late commits folded into the tip's certificate.

use super::*;

impl Fbft {
    /// A certificate of the round's height, checked against the round's committee.
    pub(super) fn certificate_vote(
        &self,
        kind: MsgKind,
        cert: &CommitCertificate,
    ) -> Result<([u8; PAYLOAD_BYTES], accel::Vote), crate::CertificateError> {
        self.certificate_vote_of(&self.committee, kind, cert)
    }

    pub(super) fn certificate_vote_of(
        &self,
        committee: &Committee,
        kind: MsgKind,
        cert: &CommitCertificate,
    ) -> Result<([u8; PAYLOAD_BYTES], accel::Vote), crate::CertificateError> {
        crate::certificate::certificate_vote(
            committee,
            self.cfg.chain_id,
            self.cfg.shard,
            kind,
            cert,
        )
    }

    pub(super) fn on_certificate(
        &mut self,
        kind: MsgKind,
        from: usize,
        cert: CommitCertificate,
        out: &mut Vec<Effect>,
    ) {
        let r = &self.round;
        let our_hash = r.block.as_ref().map(Block::hash);
        match kind {
            MsgKind::Prepare => {
                if from != r.leader
                    || r.prepared.is_some()
                    || our_hash != Some(cert.hash)
                    || cert.view != r.view
                {
                    return;
                }
            }
            _ => {
                if r.committed {
                    return;
                }
            }
        }
        match self.certificate_vote(kind, &cert) {
            Ok((payload, vote)) => {
                let check = if kind == MsgKind::Prepare {
                    Check::Prepared(cert)
                } else {
                    Check::Committed { cert, from }
                };
                self.verify(vec![(payload, vec![vote])], check, out)
            }
            Err(reason) => Self::fault(
                out,
                self.peer(from),
                FaultKind::Protocol,
                format!("{kind:?} certificate #{}: {reason}", cert.number),
            ),
        }
    }

    /// The view a vote on the current proposal signs: the round's view, for prepare and commit
    /// alike. Commits at the header's view would let a guard watermark raised by a commit in a
    /// later view refuse the re-proposal of an earlier block for ever (ADR 0010).
    pub(super) fn vote_view(&self, _kind: MsgKind) -> Option<u64> {
        self.round.block.as_ref().map(|_| self.round.view)
    }

    pub(super) fn on_vote(
        &mut self,
        kind: MsgKind,
        from: usize,
        vote: Vote,
        out: &mut Vec<Effect>,
    ) {
        if !self.is_leader() {
            return;
        }
        let Some(hash) = self.round.block.as_ref().map(Block::hash) else {
            return;
        };
        if Some(vote.view) != self.vote_view(kind) || vote.hash != hash {
            return;
        }
        // A vote carries all of its member's keys; the signature stays in wire bytes until
        // the quorum job decodes it (with the rest of the batch, off the loop in a backend).
        if vote.bitmap.as_ref() != self.committee.member_bitmap(from).as_bytes() {
            return Self::fault(
                out,
                self.peer(from),
                FaultKind::Protocol,
                "vote bitmap is not exactly the sender's keys",
            );
        }
        if ![SIGNATURE_BYTES, SIGNATURE_UNCOMPRESSED_BYTES].contains(&vote.signature.len()) {
            return Self::fault(
                out,
                self.peer(from),
                FaultKind::Malformed,
                format!("vote signature has {} bytes", vote.signature.len()),
            );
        }
        let set = self.votes(kind);
        if set.certified || !set.voted.insert(from) {
            return;
        }
        set.pending.push((from, vote.signature));
        self.maybe_verify_votes(kind, hash, out);
    }

    pub(super) fn votes(&mut self, kind: MsgKind) -> &mut VoteSet {
        if kind == MsgKind::Prepare {
            &mut self.round.prepares
        } else {
            &mut self.round.commits
        }
    }

    pub(super) fn vote_payload(&self, kind: MsgKind, hash: B256) -> Option<[u8; PAYLOAD_BYTES]> {
        let view = self.vote_view(kind)?;
        Some(payload(&self.sign_request(
            kind,
            self.round.number,
            view,
            hash,
        )))
    }

    /// Sends pending votes for verification once, together with the verified ones, they could
    /// make a quorum: one pairing for the whole batch in the common case.
    pub(super) fn maybe_verify_votes(&mut self, kind: MsgKind, hash: B256, out: &mut Vec<Effect>) {
        let Some(payload) = self.vote_payload(kind, hash) else {
            return;
        };
        let committee = self.committee.clone();
        let set = self.votes(kind);
        if set.in_flight || set.pending.is_empty() || set.certified {
            return;
        }
        let power: u64 = set
            .verified
            .iter()
            .map(|(b, _)| committee.power_of(b))
            .sum::<u64>()
            + set
                .pending
                .iter()
                .map(|(m, _)| committee.members[*m].power)
                .sum::<u64>();
        if !committee.is_quorum(power) {
            return;
        }
        let pending = std::mem::take(&mut set.pending);
        set.in_flight = true;
        let voters = pending.iter().map(|(m, _)| *m).collect();
        let votes = pending.into_iter().map(|(m, s)| (m as u32, s)).collect();
        let view = self.round.view;
        let check = Check::Votes {
            kind,
            voters,
            view,
            hash,
        };
        self.verify_quorum(payload, votes, check, out);
    }

    /// A lock is the highest prepared block this node both holds a certificate for and validated.
    pub(super) fn maybe_lock(&mut self) {
        let r = &mut self.round;
        let (Some(block), Some(cert)) = (&r.block, &r.prepared) else {
            return;
        };
        if r.validated.contains(&cert.hash)
            && block.hash() == cert.hash
            && r.locked.as_ref().is_none_or(|l| l.cert.view < cert.view)
        {
            r.locked = Some(PreparedProof {
                block: block.clone(),
                cert: cert.clone(),
            });
        }
    }

    /// Adds the leader's own vote (trusted, no verification) to its vote set.
    pub(super) fn add_own_vote(
        &mut self,
        kind: MsgKind,
        sig: Signature,
        hash: B256,
        out: &mut Vec<Effect>,
    ) {
        let Some(me) = self.me_index() else { return };
        let bitmap = self.committee.member_bitmap(me);
        let set = self.votes(kind);
        if set.voted.insert(me) {
            set.verified.push((bitmap, sig));
        }
        self.try_certify(kind, hash, out);
        self.maybe_verify_votes(kind, hash, out);
    }

    pub(super) fn try_certify(&mut self, kind: MsgKind, hash: B256, out: &mut Vec<Effect>) {
        let committee = self.committee.clone();
        let number = self.round.number;
        let Some(view) = self.vote_view(kind) else {
            return;
        };
        let set = self.votes(kind);
        if set.certified {
            return;
        }
        let power: u64 = set
            .verified
            .iter()
            .map(|(b, _)| committee.power_of(b))
            .sum();
        if !committee.is_quorum(power) {
            return;
        }
        let mut bitmap = Bitmap::with_len(committee.key_count());
        for (b, _) in &set.verified {
            bitmap.union_with(b);
        }
        let agg = AggregateSignature::aggregate(set.verified.iter().map(|(_, s)| s))
            .expect("quorum is non-empty")
            .to_signature();
        set.certified = true;
        let cert = CommitCertificate {
            number,
            view,
            hash,
            signature: Bytes::copy_from_slice(&agg.to_bytes()),
            bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
        };
        match kind {
            MsgKind::Prepare => {
                out.push(Effect::Broadcast(Message::Prepared(cert.clone())));
                self.round.prepared = Some(cert);
                self.maybe_lock();
                self.maybe_commit(out);
            }
            _ => {
                out.push(Effect::Broadcast(Message::Committed(cert.clone())));
                self.round.committed = true;
                self.late = Some(LateCommits {
                    number,
                    view,
                    hash,
                    bitmap: bitmap.clone(),
                    signature: agg,
                    // Members in the certificate, not every member heard from: a vote still
                    // pending (unverified) when quorum was reached may be folded in later.
                    voted: (0..committee.members.len())
                        .filter(|&m| committee.members[m].keys.clone().all(|k| bitmap.get(k)))
                        .collect(),
                    relay: Relay::Idle,
                    committee: committee.clone(),
                });
                let block = self.round.block.clone().expect("certified a block we hold");
                out.push(Effect::Finalize { block, cert });
                // Votes that arrived while a batch was in flight: fold them in as late commits.
                for (m, signature) in std::mem::take(&mut self.round.commits.pending) {
                    let vote = Vote {
                        number,
                        view,
                        hash,
                        bitmap: Bytes::copy_from_slice(committee.member_bitmap(m).as_bytes()),
                        signature,
                    };
                    self.on_late_commit(m, vote, out);
                }
            }
        }
    }

    pub(super) fn maybe_commit(&mut self, out: &mut Vec<Effect>) {
        let r = &self.round;
        let Some(block) = &r.block else { return };
        let hash = block.hash();
        let view = r.view;
        if r.validated.contains(&hash)
            && r.prepared.as_ref().is_some_and(|p| p.hash == hash)
            && !r.commit_requested
        {
            self.round.commit_requested = true;
            self.sign(MsgKind::Commit, view, hash, out);
        }
    }

    pub(super) fn on_signed(
        &mut self,
        req: SignRequest,
        signatures: Vec<Signature>,
        out: &mut Vec<Effect>,
    ) {
        if req.number != self.round.number {
            return;
        }
        if req.kind == MsgKind::Vrf {
            return self.on_vrf_signed(req, signatures, out);
        }
        // The member's keys, in committee order, from the signer's signatures (a signer may
        // hold keys the election passed over; those do not sign).
        let Some((me, positions)) = &self.me else {
            return;
        };
        let Some(mine) = positions
            .iter()
            .map(|&p| signatures.get(p))
            .collect::<Option<Vec<_>>>()
        else {
            return;
        };
        let Ok(agg) = AggregateSignature::aggregate(mine) else {
            return;
        };
        let sig = agg.to_signature();
        let bitmap = self.committee.member_bitmap(*me);
        if req.kind == MsgKind::ViewChange {
            return self.send_view_change(req, sig, bitmap, out);
        }
        let Some(hash) = self.round.block.as_ref().map(Block::hash) else {
            return;
        };
        if req.hash != hash.0 || Some(req.view) != self.vote_view(req.kind) {
            return;
        }
        if self.is_leader() {
            return self.add_own_vote(req.kind, sig, hash, out);
        }
        let vote = Vote {
            number: req.number,
            view: req.view,
            hash,
            bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
            // Uncompressed: the leader decodes it without a square root (ADR 0004).
            signature: Bytes::copy_from_slice(&sig.to_uncompressed()),
        };
        let msg = match req.kind {
            MsgKind::Prepare => Message::Prepare(vote),
            MsgKind::Commit => Message::Commit(vote),
            _ => return,
        };
        out.push(Effect::Send(self.peer(self.round.leader), msg));
    }

    /// A commit vote for the tip this node certified as leader: verify and fold it in.
    /// `from` is a member of the committee that certified it (`late.committee`), which is not
    /// the round's once the tip ended an epoch.
    pub(super) fn on_late_commit(&mut self, from: usize, vote: Vote, out: &mut Vec<Effect>) {
        let Some(late) = self.late.as_mut() else {
            return;
        };
        if vote.number != late.number
            || vote.view != late.view
            || vote.hash != late.hash
            || late.voted.contains(&from)
        {
            return;
        }
        let committee = late.committee.clone();
        let peer = committee.members[from].transport_key;
        let Some(bitmap) = Bitmap::from_bytes(&vote.bitmap, committee.key_count()) else {
            return;
        };
        if !committee.bitmap_owned_by(&bitmap, from) {
            return Self::fault(
                out,
                peer,
                FaultKind::Protocol,
                "vote bitmap names keys the sender does not own",
            );
        }
        let Ok(signature) = Signature::decode(&vote.signature) else {
            return Self::fault(
                out,
                peer,
                FaultKind::Malformed,
                "undecodable commit signature",
            );
        };
        late.voted.insert(from);
        let (number, view, hash) = (late.number, late.view, late.hash);
        let req = self.sign_request(MsgKind::Commit, number, view, hash);
        let public_key = committee
            .aggregate_key(&bitmap)
            .expect("non-empty checked bitmap");
        self.verify(
            vec![(
                payload(&req),
                vec![accel::Vote {
                    public_key,
                    signature,
                }],
            )],
            Check::LateCommit {
                from,
                number,
                hash,
                bitmap,
                signature,
            },
            out,
        );
    }
}

impl Fbft {
    /// The leader's enlarged tip certificate goes out once: when every member has signed, or
    /// half a block time after the first late commit was folded in.
    pub(super) fn relay_late_commits(&mut self, number: u64, out: &mut Vec<Effect>) {
        let Some(late) = self.late.as_mut() else {
            return;
        };
        if late.number != number || late.relay == Relay::Sent {
            return;
        }
        late.relay = Relay::Sent;
        if self.tip.number == number && self.tip.hash == late.hash {
            if let Some(cert) = self.tip.cert.clone() {
                out.push(Effect::Broadcast(Message::Committed(cert)));
            }
        }
    }

    /// A late commit was folded into the tip's certificate: relay it now if nobody is missing,
    /// else schedule the relay.
    pub(super) fn after_late_fold(&mut self, out: &mut Vec<Effect>) {
        let Some(late) = self.late.as_mut() else {
            return;
        };
        let members = late.committee.members.len();
        let number = late.number;
        if late.voted.len() >= members {
            self.relay_late_commits(number, out);
        } else if late.relay == Relay::Idle {
            late.relay = Relay::Scheduled;
            let after = Duration::from_millis(self.cfg.block_time_ms / 2);
            out.push(Effect::Schedule(Timer::LateCommits { number }, after));
        }
    }

    /// A certificate of the tip from its leader, possibly with more signers than ours: check
    /// it, and carry the larger one in the next header.
    pub(super) fn on_tip_certificate(
        &mut self,
        from: usize,
        cert: CommitCertificate,
        out: &mut Vec<Effect>,
    ) {
        if !self.enlarges_tip_certificate(&cert) {
            return;
        }
        let committee = self.tip_committee.clone();
        match self.certificate_vote_of(&committee, MsgKind::Commit, &cert) {
            Ok((payload, vote)) => self.verify(
                vec![(payload, vec![vote])],
                Check::TipCertificate { cert, from },
                out,
            ),
            Err(reason) => Self::fault(
                out,
                committee.members[from].transport_key,
                FaultKind::Protocol,
                format!("commit certificate of the tip #{}: {reason}", cert.number),
            ),
        }
    }

    /// Whether `cert` certifies the tip, in the view of ours, with strictly more signers.
    pub(super) fn enlarges_tip_certificate(&self, cert: &CommitCertificate) -> bool {
        let Some(ours) = &self.tip.cert else {
            return false;
        };
        let n = self.tip_committee.key_count();
        let (Some(theirs), Some(mine)) = (
            Bitmap::from_bytes(&cert.bitmap, n),
            Bitmap::from_bytes(&ours.bitmap, n),
        ) else {
            return false;
        };
        cert.number == self.tip.number
            && cert.hash == self.tip.hash
            && cert.view == ours.view
            && theirs.count() > mine.count()
            && mine.ones().all(|i| theirs.get(i))
    }
}
