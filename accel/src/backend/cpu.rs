//! The multicore CPU backend: optimistic aggregation (one pairing for a whole quorum),
//! bisection to find bad votes, random-linear-combination batches with a multi-scalar
//! multiplication, all in parallel on the pool the operator sized.
// blst point arithmetic through its C API (no safe wrapper for these calls).
#![allow(unsafe_code)]

use super::{Backend, VerifyBackend};
use crate::bls::{
    core_verify, AggregatePublicKey, AggregateSignature, BlsError, PublicKey, Signature, DST_SIG,
};
use crate::job::{BatchItem, Candidate, QuorumPolicy, Vote};
use blst::BLST_ERROR;
use rayon::prelude::*;
use rayon::ThreadPool;
use std::sync::Arc;

pub(crate) struct CpuBackend {
    pool: Arc<ThreadPool>,
}

impl CpuBackend {
    pub(crate) fn new(pool: Arc<ThreadPool>) -> Self {
        Self { pool }
    }
}

impl VerifyBackend for CpuBackend {
    fn kind(&self) -> Backend {
        Backend::Cpu
    }

    fn sum_keys(&self, pks: &[PublicKey]) -> Result<PublicKey, BlsError> {
        self.pool.install(|| sum_public_keys(pks))
    }

    fn miller_loops(&self, pairs: &[(&PublicKey, &[u8])]) -> Option<blst::Pairing<'static>> {
        self.pool.install(|| {
            let chunk = chunk_len(pairs.len());
            pairs
                .par_chunks(chunk)
                .map(miller_chunk)
                .reduce_with(merge_pairings)
                .flatten()
        })
    }

    /// One random linear combination e(g₁, Σ rᵢσᵢ) = Π e(rᵢ·pkᵢ, H(mᵢ)) (64-bit scalars, so
    /// a batch with an invalid triple passes with probability at most 2^-64), with Σ rᵢσᵢ by
    /// multi-scalar multiplication, in parallel.
    fn batch_verify(&self, items: &[BatchItem<'_>]) -> bool {
        let rands: Vec<[u8; 8]> = super::random_scalars(items.len())
            .into_iter()
            .map(u64::to_le_bytes)
            .collect();
        self.pool.install(|| {
            // Per chunk: subgroup checks, Σ rᵢσᵢ by one multi-scalar multiplication
            // (Pippenger), and the Miller loops of e(rᵢ·pkᵢ, H(mᵢ)).
            let chunk = chunk_len(items.len());
            let parts: Option<Vec<(blst::Pairing<'static>, blst::blst_p2)>> = items
                .par_chunks(chunk)
                .zip(rands.par_chunks(chunk))
                .map(|(its, rs)| {
                    if !its.iter().all(|it| it.signature.subgroup_check()) {
                        return None;
                    }
                    let mut p = blst::Pairing::new(true, DST_SIG);
                    for (it, r) in its.iter().zip(rs) {
                        if p.mul_n_aggregate(
                            it.public_key.affine(),
                            false,
                            &(),
                            false,
                            r,
                            64,
                            it.message,
                            &[],
                        ) != BLST_ERROR::BLST_SUCCESS
                        {
                            return None;
                        }
                    }
                    p.commit();
                    let sigs: Vec<&Signature> = its.iter().map(|it| it.signature).collect();
                    Some((p, msm_g2(&sigs, rs)))
                })
                .collect();
            let Some(parts) = parts else { return false };
            let mut parts = parts.into_iter();
            let (mut acc, mut sig_sum) = parts.next().expect("a non-empty batch");
            for (p, s) in parts {
                if acc.merge(&p) != BLST_ERROR::BLST_SUCCESS {
                    return false;
                }
                sig_sum = add_g2(&sig_sum, &s);
            }
            let mut gt = blst::blst_fp12::default();
            blst::Pairing::aggregated(&mut gt, &to_affine_g2(&sig_sum));
            acc.finalverify(Some(&gt))
        })
    }

    fn verify_votes(&self, msg: &[u8], votes: &[Vote]) -> Vec<bool> {
        let mut out = vec![false; votes.len()];
        self.pool.install(|| bisect(msg, votes, &mut out));
        out
    }

    fn decode_votes(
        &self,
        wanted: &[usize],
        decode: &(dyn Fn(usize) -> Result<Candidate, (usize, BlsError)> + Sync),
    ) -> Vec<Result<Candidate, (usize, BlsError)>> {
        self.pool.install(|| {
            wanted
                .par_chunks(chunk_len(wanted.len()).max(16))
                .flat_map_iter(|c| c.iter().map(|&i| decode(i)))
                .collect()
        })
    }

    fn check_candidates(
        &self,
        msg: &[u8],
        cands: &[Candidate],
        policy: QuorumPolicy,
    ) -> (Vec<bool>, Option<Signature>) {
        let mut ok = vec![false; cands.len()];
        let aggregate = self.pool.install(|| {
            let mut pre = vec![true; cands.len()];
            if policy.subgroup_check_each {
                pre = cands.par_iter().map(|c| c.sig.subgroup_check()).collect();
            }
            let kept: Vec<usize> = (0..cands.len()).filter(|&k| pre[k]).collect();
            let sub: Vec<&Candidate> = kept.iter().map(|&k| &cands[k]).collect();
            let mut sub_ok = vec![false; sub.len()];
            let aggregate = bisect_wire(msg, &sub, &mut sub_ok);
            for (k, o) in kept.iter().zip(sub_ok) {
                ok[*k] = o;
            }
            aggregate
        });
        (ok, aggregate)
    }
}

/// Σ rᵢ·σᵢ with 64-bit little-endian scalars, by blst's Pippenger on the calling thread.
fn msm_g2(sigs: &[&Signature], rands: &[[u8; 8]]) -> blst::blst_p2 {
    let points: Vec<*const blst::blst_p2_affine> = sigs
        .iter()
        .map(|s| s.affine() as *const blst::blst_p2_affine)
        .collect();
    let scalars: Vec<*const u8> = rands.iter().map(|r| r.as_ptr()).collect();
    let mut out = blst::blst_p2::default();
    // SAFETY: `points` and `scalars` hold one valid pointer per term (affine points and 8-byte
    // scalars that outlive the call); the scratch buffer has the size blst asks for.
    unsafe {
        let bytes = blst::blst_p2s_mult_pippenger_scratch_sizeof(points.len());
        let mut scratch =
            vec![0 as blst::limb_t; bytes.div_ceil(std::mem::size_of::<blst::limb_t>())];
        blst::blst_p2s_mult_pippenger(
            &mut out,
            points.as_ptr(),
            points.len(),
            scalars.as_ptr(),
            64,
            scratch.as_mut_ptr(),
        );
    }
    out
}

fn add_g2(a: &blst::blst_p2, b: &blst::blst_p2) -> blst::blst_p2 {
    let mut out = blst::blst_p2::default();
    // SAFETY: plain values, distinct output.
    unsafe { blst::blst_p2_add_or_double(&mut out, a, b) };
    out
}

fn to_affine_g2(p: &blst::blst_p2) -> blst::blst_p2_affine {
    let mut out = blst::blst_p2_affine::default();
    // SAFETY: plain values, distinct output.
    unsafe { blst::blst_p2_to_affine(&mut out, p) };
    out
}

/// Work per task: a few tasks per thread so uneven chunks even out.
fn chunk_len(n: usize) -> usize {
    let tasks = rayon::current_num_threads().max(1) * 2;
    n.div_ceil(tasks).max(1)
}

pub(super) fn miller_chunk(pairs: &[(&PublicKey, &[u8])]) -> Option<blst::Pairing<'static>> {
    let mut p = blst::Pairing::new(true, DST_SIG);
    for (pk, msg) in pairs {
        if p.aggregate(pk.affine(), false, &(), false, msg, &[]) != BLST_ERROR::BLST_SUCCESS {
            return None;
        }
    }
    p.commit();
    Some(p)
}

fn merge_pairings(
    a: Option<blst::Pairing<'static>>,
    b: Option<blst::Pairing<'static>>,
) -> Option<blst::Pairing<'static>> {
    let (mut a, b) = (a?, b?);
    (a.merge(&b) == BLST_ERROR::BLST_SUCCESS).then_some(a)
}

/// Sum of validated keys, in parallel chunks on the current pool.
fn sum_public_keys(pks: &[PublicKey]) -> Result<PublicKey, BlsError> {
    if pks.is_empty() {
        return Err(BlsError::Empty);
    }
    let chunk = chunk_len(pks.len()).max(32);
    pks.par_chunks(chunk)
        .map(|c| AggregatePublicKey::aggregate(c).map(|a| a.to_public_key()))
        .reduce_with(|a, b| {
            let (a, b) = (a?, b?);
            AggregatePublicKey::aggregate([&a, &b]).map(|s| s.to_public_key())
        })
        .unwrap_or(Err(BlsError::Empty))
}

/// Sum of signatures (no group check), in parallel chunks on the current pool.
fn sum_signatures(sigs: &[Signature]) -> Result<Signature, BlsError> {
    if sigs.is_empty() {
        return Err(BlsError::Empty);
    }
    let chunk = chunk_len(sigs.len()).max(32);
    sigs.par_chunks(chunk)
        .map(|c| AggregateSignature::aggregate(c).map(|a| a.to_signature()))
        .reduce_with(|a, b| {
            let (a, b) = (a?, b?);
            AggregateSignature::aggregate([&a, &b]).map(|s| s.to_signature())
        })
        .unwrap_or(Err(BlsError::Empty))
}

/// Checks `votes` as one aggregate; on failure splits in halves (in parallel) until the bad
/// votes are isolated. Costs one pairing when all votes are good.
fn bisect(msg: &[u8], votes: &[Vote], out: &mut [bool]) {
    if votes.is_empty() {
        return;
    }
    if votes.len() == 1 {
        out[0] = core_verify(
            &votes[0].public_key,
            &votes[0].signature,
            msg,
            DST_SIG,
            true,
        );
        return;
    }
    if aggregate_ok(msg, votes) {
        out.iter_mut().for_each(|o| *o = true);
        return;
    }
    let mid = votes.len() / 2;
    let (lv, rv) = votes.split_at(mid);
    let (lo, ro) = out.split_at_mut(mid);
    rayon::join(|| bisect(msg, lv, lo), || bisect(msg, rv, ro));
}

fn aggregate_ok(msg: &[u8], votes: &[Vote]) -> bool {
    let sig = match AggregateSignature::aggregate(votes.iter().map(|v| &v.signature)) {
        Ok(s) => s.to_signature(),
        Err(_) => return false,
    };
    let apk = match AggregatePublicKey::aggregate(votes.iter().map(|v| &v.public_key)) {
        Ok(p) => p.to_public_key(),
        Err(_) => return false,
    };
    core_verify(&apk, &sig, msg, DST_SIG, true)
}

/// Marks in `out` the candidates that are part of an accepted aggregate and returns the sum
/// of their signatures (in G2), so the caller never aggregates twice.
fn bisect_wire(msg: &[u8], cands: &[&Candidate], out: &mut [bool]) -> Option<Signature> {
    match cands.len() {
        0 => return None,
        1 => {
            out[0] = core_verify(&cands[0].pk, &cands[0].sig, msg, DST_SIG, true);
            return out[0].then_some(cands[0].sig);
        }
        _ => {}
    }
    let sigs: Vec<Signature> = cands.iter().map(|c| c.sig).collect();
    let pks: Vec<PublicKey> = cands.iter().map(|c| c.pk).collect();
    let (sig, apk) = rayon::join(|| sum_signatures(&sigs), || sum_public_keys(&pks));
    if let (Ok(sig), Ok(apk)) = (sig, apk) {
        // The subgroup check of the aggregate is part of core_verify (groupcheck = true).
        if core_verify(&apk, &sig, msg, DST_SIG, true) {
            out.iter_mut().for_each(|o| *o = true);
            return Some(sig);
        }
    }
    let mid = cands.len() / 2;
    let (lc, rc) = cands.split_at(mid);
    let (lo, ro) = out.split_at_mut(mid);
    match rayon::join(|| bisect_wire(msg, lc, lo), || bisect_wire(msg, rc, ro)) {
        (Some(l), Some(r)) => sum_signatures(&[l, r]).ok(),
        (l, r) => l.or(r),
    }
}
