//! View change: timeouts, our view changes, gathering others' into a NewView as the next
//! leader, and checking and adopting a NewView.

use super::*;

/// Why a node moved to a new view (for metrics: a node that mostly *joins* view changes has a
/// network problem or a slow clock; one that mostly *times out* sees stalled leaders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewChangeReason {
    /// Its own view timer ran out.
    Timeout,
    /// More than 1/3 of the committee's power had already moved to the view.
    Joined,
    /// A valid NewView for a later view arrived.
    NewView,
}

impl ViewChangeReason {
    pub fn name(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Joined => "joined",
            Self::NewView => "new_view",
        }
    }
}

impl Fbft {
    // ---- view change -------------------------------------------------------------------

    /// The view's time is up. In a normal view: move to the next. While waiting for a NewView:
    /// move on only once a quorum is known to have left this view too (its leader failed);
    /// otherwise repeat our view change and wait again. A node cut off from the others thus
    /// stays at most one view ahead of a quorum, so views converge once the network heals.
    ///
    /// The quorum must also have had half a view timeout to produce its NewView: a node that
    /// reached the view long before the others would otherwise leave it just as they arrive,
    /// and stay one view ahead of them for ever (in a committee that needs it for a quorum,
    /// no view would then commit).
    pub(super) fn on_view_timeout(&mut self, view: u64, out: &mut Vec<Effect>) {
        if !self.round.in_view_change {
            return self.start_view_change(view + 1, ViewChangeReason::Timeout, out);
        }
        self.note_quorum();
        let grace = self.view_timeout(view).as_millis() as u64 / 2;
        if let Some(since) = self.round.quorum_since_ms {
            let waited = self.now_ms.saturating_sub(since);
            if waited >= grace {
                return self.start_view_change(view + 1, ViewChangeReason::Timeout, out);
            }
            return self.arm_view_clock(Duration::from_millis(grace - waited), out);
        }
        match self.round.own_view_changes.get(&view).cloned() {
            Some(vc) => out.push(Effect::Broadcast(Message::ViewChange(Box::new(vc)))),
            // Restarted while waiting: sign the same view change again (same payload).
            None => {
                self.sign(MsgKind::ViewChange, view, self.lock_digest(), out);
            }
        }
        self.arm_view_timer(view, out);
    }

    /// Voting power of the members known (by a verified view change) to have reached `view` or
    /// a later one. A node one view ahead of the rest counts for `view`: without that, a node
    /// that moved on (say, after it restarted) and the nodes it left behind wait for each other
    /// for ever when neither side alone holds more than 1/3.
    /// Records when a quorum was first known to be at or past the view we wait in.
    pub(super) fn note_quorum(&mut self) {
        if self.round.in_view_change
            && self.round.quorum_since_ms.is_none()
            && self
                .committee
                .is_quorum(self.power_at_or_past(self.round.view))
        {
            self.round.quorum_since_ms = Some(self.now_ms);
        }
    }

    pub(super) fn power_at_or_past(&self, view: u64) -> u64 {
        let mut members = HashSet::new();
        let mut power = 0;
        for e in self
            .round
            .view_changes
            .iter()
            .filter(|(v, _)| **v >= view)
            .flat_map(|(_, s)| s.verified.iter())
        {
            if members.insert(*e.0) {
                power += self.committee.power_of(&e.1.bitmap);
            }
        }
        power
    }

    /// What our view change signs: the lock (its hash bound to its certificate's view), or
    /// zero when we hold none.
    pub(super) fn lock_digest(&self) -> B256 {
        self.round
            .locked
            .as_ref()
            .map(|l| B256::from(view_change_lock(l.block.hash().0, l.cert.view)))
            .unwrap_or_default()
    }

    pub(super) fn arm_view_timer(&mut self, view: u64, out: &mut Vec<Effect>) {
        self.arm_view_clock(self.view_timeout(view), out);
    }

    /// Leaves the current view for `view`: sign a view change carrying the lock.
    pub(super) fn start_view_change(
        &mut self,
        view: u64,
        reason: ViewChangeReason,
        out: &mut Vec<Effect>,
    ) {
        let r = &mut self.round;
        r.view = view;
        r.in_view_change = true;
        r.quorum_since_ms = None;
        r.block = None;
        r.prepared = None;
        r.commit_requested = false;
        r.announce_checking = false;
        r.prepares = VoteSet::default();
        r.commits = VoteSet::default();
        r.new_view_groups = None;
        self.round.leader = self.leader_of(view);
        let number = self.round.number;
        out.push(Effect::ViewChanged {
            number,
            view,
            reason,
        });
        self.sign(MsgKind::ViewChange, view, self.lock_digest(), out);
        self.arm_view_timer(view, out);
    }

    pub(super) fn send_view_change(
        &mut self,
        req: SignRequest,
        sig: Signature,
        bitmap: Bitmap,
        out: &mut Vec<Effect>,
    ) {
        if req.view != self.round.view {
            return;
        }
        let locked = self.round.locked.clone().filter(|l| {
            req.hash != [0; 32] && view_change_lock(l.block.hash().0, l.cert.view) == req.hash
        });
        if req.hash != [0; 32] && locked.is_none() {
            return; // signed for a lock we no longer hold; the timer re-signs the current one
        }
        let prepared_hash = locked.as_ref().map(|l| l.block.hash()).unwrap_or_default();
        let vc = ViewChange {
            number: req.number,
            view: req.view,
            prepared_hash,
            bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
            signature: Bytes::copy_from_slice(&sig.to_bytes()),
            prepared: locked.clone().into_iter().collect(),
        };
        // Everyone hears view changes (so a lagging node can join); the new leader uses them.
        out.push(Effect::Broadcast(Message::ViewChange(Box::new(vc.clone()))));
        self.round.own_view_changes.insert(vc.view, vc.clone());
        let Some(me) = self.me_index() else { return };
        let set = self.round.view_changes.entry(req.view).or_default();
        set.verified.insert(
            me,
            VcEntry {
                bitmap,
                signature: sig,
                hash: prepared_hash,
                prepared: locked,
            },
        );
        self.after_view_change_vote(req.view, out);
    }

    pub(super) fn on_view_change(&mut self, from: usize, vc: ViewChange, out: &mut Vec<Effect>) {
        if vc.view < self.round.view {
            // The peer lags; if it lacks our vote for its view, that quorum may hinge on it.
            if let Some(mine) = self.round.own_view_changes.get(&vc.view) {
                if self.round.handed.insert((from, vc.view)) {
                    out.push(Effect::Send(
                        self.peer(from),
                        Message::ViewChange(Box::new(mine.clone())),
                    ));
                }
            }
            return;
        }
        let set = self.round.view_changes.entry(vc.view).or_default();
        if set.done || set.verified.contains_key(&from) || !set.checking.insert(from) {
            return;
        }
        let checked = self.check_view_change(from, &vc);
        let (bitmap, signature, jobs) = match checked {
            Ok(x) => x,
            Err(reason) => {
                self.round
                    .view_changes
                    .entry(vc.view)
                    .or_default()
                    .checking
                    .remove(&from);
                return Self::fault(
                    out,
                    self.peer(from),
                    FaultKind::Protocol,
                    format!("view change: {reason}"),
                );
            }
        };
        self.verify(
            jobs,
            Check::ViewChange {
                from,
                vc: Box::new(vc),
                bitmap,
                signature,
            },
            out,
        );
    }

    /// Cheap checks of a view change; returns its bitmap, signature and the verification jobs
    /// (its signature, and the prepare certificate of the lock it carries).
    #[allow(clippy::type_complexity)]
    pub(super) fn check_view_change(
        &self,
        from: usize,
        vc: &ViewChange,
    ) -> Result<
        (
            Bitmap,
            Signature,
            Vec<([u8; PAYLOAD_BYTES], Vec<accel::Vote>)>,
        ),
        String,
    > {
        let bitmap = Bitmap::from_bytes(&vc.bitmap, self.committee.key_count())
            .ok_or("bitmap has the wrong length")?;
        if !self.committee.bitmap_owned_by(&bitmap, from) {
            return Err("bitmap names keys the sender does not own".into());
        }
        let signature =
            Signature::from_bytes(&vc.signature).map_err(|e| format!("signature: {e}"))?;
        let mut cert_job = None;
        let mut cert_view = 0;
        match vc.prepared.as_slice() {
            [] if vc.prepared_hash.is_zero() => {}
            [p] if p.block.hash() == vc.prepared_hash
                && p.cert.hash == vc.prepared_hash
                && p.cert.number == vc.number
                && p.cert.view < vc.view =>
            {
                self.check_parent_fields(&p.block)
                    .map_err(|e| e.to_string())?;
                cert_view = p.cert.view;
                let (p, v) = self
                    .certificate_vote(MsgKind::Prepare, &p.cert)
                    .map_err(|e| format!("prepared certificate: {e}"))?;
                cert_job = Some((p, vec![v]));
            }
            _ => return Err("prepared proof does not match the named hash".into()),
        }
        let signed = view_change_lock(vc.prepared_hash.0, cert_view);
        let req = self.sign_request(MsgKind::ViewChange, vc.number, vc.view, B256::from(signed));
        let public_key = self
            .committee
            .aggregate_key(&bitmap)
            .ok_or("empty bitmap")?;
        let mut jobs = vec![(
            payload(&req),
            vec![accel::Vote {
                public_key,
                signature,
            }],
        )];
        jobs.extend(cert_job);
        Ok((bitmap, signature, jobs))
    }

    /// After a verified view-change vote: join a view change that more than 1/3 already
    /// started, and as the new leader, propose once more than 2/3 did.
    pub(super) fn after_view_change_vote(&mut self, view: u64, out: &mut Vec<Effect>) {
        self.note_quorum();
        let committee = self.committee.clone();
        let Some(set) = self.round.view_changes.get(&view) else {
            return;
        };
        let power: u64 = set
            .verified
            .values()
            .map(|e| committee.power_of(&e.bitmap))
            .sum();
        if view > self.round.view && (power as u128) * 3 > committee.total_power as u128 {
            self.start_view_change(view, ViewChangeReason::Joined, out);
            return;
        }
        // Our own view change must be among them: it carries our lock, which the NewView
        // must respect like every other (and the leader prepares what it proposes).
        if view != self.round.view
            || Some(self.leader_of(view)) != self.me_index()
            || !self
                .me_index()
                .is_some_and(|me| set.verified.contains_key(&me))
            || !committee.is_quorum(power)
        {
            return;
        }
        let set = self.round.view_changes.get_mut(&view).expect("present");
        if set.done {
            return;
        }
        set.done = true;
        // Group by what was signed: the lock's hash and certificate view. Drop locks on blocks
        // this node found invalid (an honest quorum remains: a block that failed validation can
        // never have been committed).
        let mut groups: Vec<(B256, Bitmap, Vec<Signature>, Option<PreparedProof>)> = Vec::new();
        for e in set.verified.values() {
            if self.round.invalid.contains(&e.hash) {
                continue;
            }
            let view_of = |p: &Option<PreparedProof>| p.as_ref().map(|p| p.cert.view);
            match groups
                .iter_mut()
                .find(|g| g.0 == e.hash && view_of(&g.3) == view_of(&e.prepared))
            {
                Some(g) => {
                    g.1.union_with(&e.bitmap);
                    g.2.push(e.signature);
                }
                None => groups.push((
                    e.hash,
                    e.bitmap.clone(),
                    vec![e.signature],
                    e.prepared.clone(),
                )),
            }
        }
        let power: u64 = groups.iter().map(|g| committee.power_of(&g.1)).sum();
        if !committee.is_quorum(power) {
            self.round
                .view_changes
                .get_mut(&view)
                .expect("present")
                .done = false;
            return;
        }
        let chosen = groups
            .iter()
            .filter_map(|g| g.3.clone())
            .max_by_key(|p| p.cert.view);
        if let Some(c) = &chosen {
            // Two certificates of one view for different blocks mean more than f Byzantine
            // signers; no NewView from these groups could be accepted.
            if groups.iter().any(|g| {
                g.3.as_ref()
                    .is_some_and(|p| p.cert.view == c.cert.view && g.0 != c.block.hash())
            }) {
                tracing::error!(target: "consensus", view, "conflicting prepare certificates in one view");
                return;
            }
        }
        let wire: Vec<ViewChangeGroup> = groups
            .iter()
            .map(|(hash, bitmap, sigs, prepared)| ViewChangeGroup {
                hash: *hash,
                signature: Bytes::copy_from_slice(
                    &AggregateSignature::aggregate(sigs)
                        .expect("non-empty")
                        .to_signature()
                        .to_bytes(),
                ),
                bitmap: Bytes::copy_from_slice(bitmap.as_bytes()),
                prepared: prepared.iter().map(|p| p.cert.clone()).collect(),
            })
            .collect();
        self.round.new_view_groups = Some(wire);
        match chosen {
            Some(proof) => {
                // Re-propose the locked block of the highest view.
                let block = proof.block;
                let hash = block.hash();
                let groups = self.round.new_view_groups.take().expect("just set");
                self.send_new_view(groups, block.clone(), out);
                self.round.block = Some(block.clone());
                if !self.round.validated.contains(&hash) {
                    out.push(Effect::Validate(block));
                }
                self.sign(MsgKind::Prepare, view, hash, out);
            }
            None => self.request_build(out),
        }
    }

    /// As the new leader: sends the NewView proposing `block` with the proof `groups`. The
    /// view begins now for everyone, so its clock restarts with a full timeout.
    pub(super) fn send_new_view(
        &mut self,
        groups: Vec<ViewChangeGroup>,
        block: Block,
        out: &mut Vec<Effect>,
    ) {
        let (number, view) = (self.round.number, self.round.view);
        let nv = NewView {
            number,
            view,
            groups,
            block,
        };
        out.push(Effect::Broadcast(Message::NewView(Box::new(nv))));
        self.round.in_view_change = false;
        self.arm_view_clock(self.view_timeout(view), out);
    }

    pub(super) fn on_new_view(
        &mut self,
        now_ms: u64,
        from: usize,
        nv: NewView,
        out: &mut Vec<Effect>,
    ) {
        if nv.view < self.round.view || (nv.view == self.round.view && !self.round.in_view_change) {
            return;
        }
        if from != self.leader_of(nv.view) {
            return Self::fault(
                out,
                self.peer(from),
                FaultKind::Protocol,
                format!(
                    "NewView for view {} from a node that is not its leader",
                    nv.view
                ),
            );
        }
        match self.check_new_view(now_ms, &nv) {
            Ok(jobs) => self.verify(
                jobs,
                Check::NewView {
                    from,
                    nv: Box::new(nv),
                },
                out,
            ),
            Err(reason) => Self::fault(
                out,
                self.peer(from),
                FaultKind::Protocol,
                format!("NewView for view {}: {reason}", nv.view),
            ),
        }
    }

    /// Checks a NewView's shape and returns the verification jobs of its proof: every group's
    /// aggregate view-change signature and every group's prepare certificate.
    #[allow(clippy::type_complexity)]
    pub(super) fn check_new_view(
        &self,
        now_ms: u64,
        nv: &NewView,
    ) -> Result<Vec<([u8; PAYLOAD_BYTES], Vec<accel::Vote>)>, String> {
        let n = self.committee.key_count();
        let mut union = Bitmap::with_len(n);
        let mut jobs = Vec::new();
        let mut best: Option<(u64, B256)> = None;
        let mut locks = HashSet::new();
        for g in &nv.groups {
            let cert_view = g.prepared.first().map_or(0, |c| c.view);
            if !locks.insert((g.hash, cert_view)) {
                return Err("two groups name the same lock".into());
            }
            let bitmap =
                Bitmap::from_bytes(&g.bitmap, n).ok_or("group bitmap has the wrong length")?;
            if bitmap.count() == 0 || !bitmap.is_disjoint(&union) {
                return Err("group bitmaps are empty or overlap".into());
            }
            union.union_with(&bitmap);
            let signature =
                Signature::from_bytes(&g.signature).map_err(|e| format!("group signature: {e}"))?;
            let public_key = self
                .committee
                .aggregate_key(&bitmap)
                .ok_or("empty bitmap")?;
            // Each group's signers signed their lock's certificate view: a certificate of
            // another view (an older one, to downgrade a lock) fails this signature.
            let signed = B256::from(view_change_lock(g.hash.0, cert_view));
            let req = self.sign_request(MsgKind::ViewChange, nv.number, nv.view, signed);
            jobs.push((
                payload(&req),
                vec![accel::Vote {
                    public_key,
                    signature,
                }],
            ));
            match (g.hash.is_zero(), g.prepared.as_slice()) {
                (true, []) => {}
                (false, [cert])
                    if cert.hash == g.hash && cert.number == nv.number && cert.view < nv.view =>
                {
                    let (p, v) = self
                        .certificate_vote(MsgKind::Prepare, cert)
                        .map_err(|e| format!("prepare certificate: {e}"))?;
                    jobs.push((p, vec![v]));
                    match best {
                        Some((v, h)) if v == cert.view && h != g.hash => {
                            return Err("two prepare certificates of one view".into())
                        }
                        Some((v, _)) if v >= cert.view => {}
                        _ => best = Some((cert.view, g.hash)),
                    }
                }
                _ => return Err("group prepared certificate missing or for another block".into()),
            }
        }
        if !self.committee.is_quorum(self.committee.power_of(&union)) {
            return Err("view-change signers hold no quorum".into());
        }
        let block = &nv.block;
        match best {
            Some((_, hash)) => {
                if block.hash() != hash {
                    return Err("does not re-propose the prepared block of the highest view".into());
                }
                if block.header.number != nv.number {
                    return Err("re-proposed block is for another height".into());
                }
                self.check_parent_fields(block).map_err(|e| e.to_string())?;
            }
            None => self
                .check_header(now_ms, block, nv.view)
                .map_err(|e| e.to_string())?,
        }
        Ok(jobs)
    }

    /// Jumps to the NewView's view and treats its block as that view's proposal.
    pub(super) fn adopt_new_view(
        &mut self,
        _now_ms: u64,
        from: usize,
        nv: NewView,
        out: &mut Vec<Effect>,
    ) {
        if nv.view < self.round.view || (nv.view == self.round.view && !self.round.in_view_change) {
            return;
        }
        if nv.view > self.round.view {
            self.round.view = nv.view;
            self.round.quorum_since_ms = None;
            self.round.leader = self.leader_of(nv.view);
            out.push(Effect::ViewChanged {
                number: nv.number,
                view: nv.view,
                reason: ViewChangeReason::NewView,
            });
        }
        // The view begins now, whenever we entered it: a full timeout from here.
        self.arm_view_clock(self.view_timeout(nv.view), out);
        let r = &mut self.round;
        r.in_view_change = false;
        r.block = None;
        r.prepared = None;
        r.commit_requested = false;
        r.prepares = VoteSet::default();
        r.commits = VoteSet::default();
        let block = nv.block;
        if block.header.view == nv.view {
            // A fresh block: its parent certificate must check out like an announce's.
            self.check_parent_then(block, from, out);
        } else {
            // Re-proposed: justified by the highest certificate, which is for this block.
            let justify = nv
                .groups
                .iter()
                .filter(|g| g.hash == block.hash())
                .filter_map(|g| g.prepared.first().map(|c| c.view))
                .max();
            self.accept_proposal(block, justify, out);
        }
    }
}
