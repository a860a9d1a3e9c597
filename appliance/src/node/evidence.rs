//! Double-sign evidence at the edge: what consensus detects and what peers relay is checked
//! off the loop (two pairings), pooled for the blocks this node leads, and relayed once. A
//! record leaves the pool when a block includes it, or when building shows it can no longer
//! apply (its offender is banned already, or its keys were not elected at that height).

use super::*;
use state::staking::{BlsKey, DoubleSign};
use std::collections::BTreeSet;

/// Most records pooled at once (each is a validator caught double signing: rare).
const MAX_POOLED: usize = 64;
/// Offences remembered, so a relayed copy is neither checked nor relayed again.
const MAX_KNOWN: usize = 1024;

/// An offence, whoever reports it: (number, view, keys sorted).
type Offence = (u64, u64, Vec<BlsKey>);

#[derive(Default)]
pub(super) struct EvidencePool {
    pooled: Vec<DoubleSign>,
    known: BTreeSet<Offence>,
    checking: HashSet<Offence>,
}

/// A check that finished off the loop.
pub(super) struct EvidenceChecked {
    /// The peer that relayed it (None: this node's consensus detected it).
    from: Option<usize>,
    evidence: DoubleSign,
    verdict: Verdict,
}

/// What to do with checked evidence.
enum Verdict {
    /// It convicts a validator the next block may slash.
    Pool,
    /// It holds but cannot apply any more (its offender is banned already: remember it), or
    /// this node could not tell (its store: it may come again): drop it, blame nobody.
    Drop { why: String, remember: bool },
    /// It does not hold: its signatures, or its keys were not elected at that height.
    Invalid(String),
}

/// The same checks as a block that carries `e` (state::exec::staking::evidence_offender), on
/// this node's tip.
fn verdict(store: &ChainStore, exec: &ExecConfig, e: &DoubleSign) -> Verdict {
    use state::exec::staking::{evidence_offender, EvidenceError};
    let check = || -> Result<Verdict, state::db::DbError> {
        let ro = store.db().tx()?;
        let tip = store.tip()?.map_or(0, |(n, _)| n);
        Ok(match evidence_offender(&ro, exec, tip + 1, e) {
            Ok(offender) => match store.validator(&offender)? {
                Some(v) if v.status == state::staking::ValidatorStatus::Banned => Verdict::Drop {
                    why: format!("{offender} is banned already"),
                    remember: true,
                },
                _ => Verdict::Pool,
            },
            Err(EvidenceError::Refused(r)) => Verdict::Invalid(r.to_string()),
            Err(EvidenceError::Store(e)) => Verdict::Drop {
                why: e.to_string(),
                remember: false,
            },
        })
    };
    check().unwrap_or_else(|e| Verdict::Drop {
        why: e.to_string(),
        remember: false,
    })
}

impl Driver {
    /// Checks `e` off the loop unless this offence is known or being checked.
    pub(super) fn check_evidence(&mut self, from: Option<usize>, e: DoubleSign) {
        let offence = e.offence();
        let pool = &mut self.evidence;
        if pool.known.contains(&offence)
            || pool.pooled.len() >= MAX_POOLED
            || !pool.checking.insert(offence)
        {
            return;
        }
        let (store, exec) = (self.ctx.store.clone(), self.ctx.exec.clone());
        let done = self.evidence_checked.clone();
        tokio::task::spawn_blocking(move || {
            let verdict = verdict(&store, &exec, &e);
            let _ = done.send(EvidenceChecked {
                from,
                evidence: e,
                verdict,
            });
        });
    }

    pub(super) fn on_evidence_checked(&mut self, c: EvidenceChecked) {
        let offence = c.evidence.offence();
        self.evidence.checking.remove(&offence);
        match c.verdict {
            Verdict::Pool => {}
            Verdict::Drop { why, remember } => {
                tracing::debug!(target: "consensus", %why, "double-sign evidence dropped");
                if remember {
                    self.evidence.known.insert(offence);
                }
                return;
            }
            Verdict::Invalid(e) => {
                match c.from {
                    Some(peer) => self.fault(
                        peer,
                        FaultKind::BadSignature,
                        &format!("relayed double-sign evidence: {e}"),
                    ),
                    None => {
                        tracing::debug!(target: "consensus", error = %e, "conflicting votes did not make evidence")
                    }
                }
                return;
            }
        }
        let pool = &mut self.evidence;
        if !pool.known.insert(offence) {
            return;
        }
        while pool.known.len() > MAX_KNOWN {
            pool.known.pop_first();
        }
        let source = if c.from.is_some() {
            "relayed"
        } else {
            "detected"
        };
        tracing::warn!(target: "consensus", number = c.evidence.number, view = c.evidence.view, source, "double-sign evidence pooled for the next block this node leads");
        self.ctx.metrics.evidence.with_label_values(&[source]).inc();
        pool.pooled.push(c.evidence.clone());
        self.mesh
            .broadcast(Message::Evidence(Box::new(c.evidence)).encode());
    }

    /// Evidence for the block this node builds.
    pub(super) fn pooled_evidence(&self) -> Vec<DoubleSign> {
        self.evidence.pooled.clone()
    }

    /// Drops pooled records that `executed` included or could not apply.
    pub(super) fn prune_evidence(&mut self, executed: &state::exec::staking::StakingExecution) {
        let gone: HashSet<Offence> = executed
            .slashes
            .iter()
            .chain(executed.rejected_slashes.iter().map(|(e, _)| e))
            .map(DoubleSign::offence)
            .collect();
        for (e, reason) in &executed.rejected_slashes {
            tracing::info!(target: "consensus", number = e.number, %reason, "double-sign evidence cannot be applied; dropped");
        }
        self.evidence
            .pooled
            .retain(|e| !gone.contains(&e.offence()));
    }
}

impl Driver {
    /// A stored block's slashes are applied: their offences leave the pool.
    pub(super) fn prune_applied_evidence(&mut self, block: &state::Block) {
        let Some(v2) = block.header.v2.as_ref().filter(|v| !v.slashes.is_empty()) else {
            return;
        };
        let Ok(applied) = state::block::decode_exact::<Vec<DoubleSign>>(&v2.slashes) else {
            return; // execution refused such a block; nothing stored carries it
        };
        let gone: HashSet<Offence> = applied.iter().map(DoubleSign::offence).collect();
        self.evidence
            .pooled
            .retain(|e| !gone.contains(&e.offence()));
        self.evidence.known.extend(gone);
    }
}
