//! The verification engine: one API, several backends that must agree bit for bit.
// blst point arithmetic through its C API (no safe wrapper for these calls).
#![allow(unsafe_code)]

use crate::bls::{
    core_verify, AggregatePublicKey, AggregateSignature, BlsError, PublicKey, Signature, DST_SIG,
};
use blst::BLST_ERROR;
use rand::RngCore;
use rayon::prelude::*;
use rayon::ThreadPool;
use std::sync::Arc;

/// Which implementation verifies. `Reference` is the plain scalar oracle used in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One signature at a time, one pairing per vote.
    Reference,
    /// Optimistic aggregation (one pairing for a whole quorum), bisection to find bad votes,
    /// parallel on the caller's thread pool.
    Cpu,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reference" => Ok(Self::Reference),
            "cpu" | "auto" => Ok(Self::Cpu),
            other => Err(format!(
                "unknown accel backend `{other}`: expected reference, cpu or auto \
                 (cuda is not built into this binary)"
            )),
        }
    }
}

impl Backend {
    /// The name `--accel` takes (and metrics report).
    pub fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Cpu => "cpu",
        }
    }
}

/// One vote on a known message: the (possibly aggregated) key of its signers and its signature.
#[derive(Debug, Clone)]
pub struct Vote {
    pub public_key: PublicKey,
    pub signature: Signature,
}

/// Verification engine. Cheap to clone; the pool is shared.
#[derive(Clone)]
pub struct Engine {
    backend: Backend,
    pool: Option<Arc<ThreadPool>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine({:?})", self.backend)
    }
}

/// One (public key, message, signature) triple of a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    pub public_key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

impl Engine {
    /// The scalar oracle.
    pub fn reference() -> Self {
        Self {
            backend: Backend::Reference,
            pool: None,
        }
    }

    /// The multicore backend on a pool the caller sized together with its other runtimes.
    pub fn cpu(pool: Arc<ThreadPool>) -> Self {
        Self {
            backend: Backend::Cpu,
            pool: Some(pool),
        }
    }

    pub fn new(backend: Backend, pool: Arc<ThreadPool>) -> Self {
        match backend {
            Backend::Reference => Self::reference(),
            Backend::Cpu => Self::cpu(pool),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` on the engine's pool (the caller's thread for `reference`). Other parallel work
    /// of the node (sender recovery in execution) runs here too, so one pool sized by the
    /// operator serves all of it and nothing falls back to rayon's global pool.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// Verifies an aggregate signature by `signers` (validated keys) over one message,
    /// including the subgroup check of the aggregate.
    pub fn verify_aggregate(&self, msg: &[u8], signers: &[PublicKey], sig: &Signature) -> bool {
        if signers.is_empty() {
            return false;
        }
        let apk = match self.backend {
            Backend::Reference => AggregatePublicKey::aggregate(signers).map(|a| a.to_public_key()),
            Backend::Cpu => self.run(|| sum_public_keys(signers)),
        };
        match apk {
            Ok(apk) => core_verify(&apk, sig, msg, DST_SIG, true),
            Err(_) => false,
        }
    }

    /// FastAggregateVerify of the IETF draft (same message); the same as
    /// [`Engine::verify_aggregate`].
    pub fn fast_aggregate_verify(
        &self,
        signers: &[PublicKey],
        msg: &[u8],
        sig: &Signature,
    ) -> bool {
        self.verify_aggregate(msg, signers, sig)
    }

    /// AggregateVerify of the IETF draft: `sig` aggregates one signature per (key, message).
    /// Messages need not be distinct (the keys carry proofs of possession).
    pub fn aggregate_verify(&self, pks: &[PublicKey], msgs: &[&[u8]], sig: &Signature) -> bool {
        if pks.is_empty() || pks.len() != msgs.len() || !sig.subgroup_check() {
            return false;
        }
        let pairs: Vec<(&PublicKey, &[u8])> = pks.iter().zip(msgs.iter().copied()).collect();
        let acc = match self.backend {
            Backend::Reference => miller_chunk(&pairs),
            Backend::Cpu => self.run(|| {
                let chunk = chunk_len(pairs.len());
                pairs
                    .par_chunks(chunk)
                    .map(miller_chunk)
                    .reduce_with(merge_pairings)
                    .flatten()
            }),
        };
        let Some(acc) = acc else { return false };
        let mut gt = blst::blst_fp12::default();
        blst::Pairing::aggregated(&mut gt, sig.affine());
        acc.finalverify(Some(&gt))
    }

    /// True when every (key, message, signature) triple is valid. `reference` checks one by
    /// one; `cpu` checks one random linear combination e(g₁, Σ rᵢσᵢ) = Π e(rᵢ·pkᵢ, H(mᵢ))
    /// (64-bit scalars, so a batch with an invalid triple passes with probability at most
    /// 2^-64), with Σ rᵢσᵢ by multi-scalar multiplication, in parallel. Each signature is
    /// subgroup-checked. An empty batch is refused.
    pub fn batch_verify(&self, items: &[BatchItem<'_>]) -> bool {
        if items.is_empty() {
            return false;
        }
        match self.backend {
            Backend::Reference => items
                .iter()
                .all(|it| it.signature.verify(it.public_key, it.message)),
            Backend::Cpu => {
                let mut rands = vec![[0u8; 8]; items.len()];
                let mut rng = rand::thread_rng();
                for r in rands.iter_mut() {
                    // A zero scalar would drop its triple from the check.
                    while *r == [0u8; 8] {
                        rng.fill_bytes(r);
                    }
                }
                self.run(|| {
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
        }
    }

    /// Returns, for each vote on `msg`, whether it is valid.
    pub fn verify_votes(&self, msg: &[u8], votes: &[Vote]) -> Vec<bool> {
        match self.backend {
            Backend::Reference => votes
                .iter()
                .map(|v| v.signature.verify(&v.public_key, msg))
                .collect(),
            Backend::Cpu => {
                let mut out = vec![false; votes.len()];
                self.run(|| bisect(msg, votes, &mut out));
                out
            }
        }
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
pub(crate) fn chunk_len(n: usize) -> usize {
    let tasks = rayon::current_num_threads().max(1) * 2;
    n.div_ceil(tasks).max(1)
}

fn miller_chunk(pairs: &[(&PublicKey, &[u8])]) -> Option<blst::Pairing<'static>> {
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
pub(crate) fn sum_public_keys(pks: &[PublicKey]) -> Result<PublicKey, BlsError> {
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
pub(crate) fn sum_signatures(sigs: &[Signature]) -> Result<Signature, BlsError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bls::SecretKey;

    fn votes(n: usize, bad: &[usize], msg: &[u8]) -> Vec<Vote> {
        (0..n)
            .map(|i| {
                let mut ikm = [7u8; 32];
                ikm[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let sk = SecretKey::from_ikm(&ikm).unwrap();
                let signed: &[u8] = if bad.contains(&i) { b"other" } else { msg };
                Vote {
                    public_key: sk.public_key(),
                    signature: sk.sign(signed),
                }
            })
            .collect()
    }

    fn pool() -> Arc<ThreadPool> {
        Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap(),
        )
    }

    #[test]
    fn backends_agree_and_find_exactly_the_bad_votes() {
        let cpu = Engine::cpu(pool());
        let reference = Engine::reference();
        for bad in [
            vec![],
            vec![0],
            vec![5],
            vec![1, 2, 9],
            (0..10).collect::<Vec<_>>(),
        ] {
            let vs = votes(10, &bad, b"payload");
            let want: Vec<bool> = (0..10).map(|i| !bad.contains(&i)).collect();
            assert_eq!(
                reference.verify_votes(b"payload", &vs),
                want,
                "reference, bad={bad:?}"
            );
            assert_eq!(cpu.verify_votes(b"payload", &vs), want, "cpu, bad={bad:?}");
        }
        assert!(cpu.verify_votes(b"payload", &[]).is_empty());
    }

    #[test]
    fn aggregate_certificate() {
        let vs = votes(4, &[], b"m");
        let pks: Vec<_> = vs.iter().map(|v| v.public_key).collect();
        let sig = AggregateSignature::aggregate(vs.iter().map(|v| &v.signature))
            .unwrap()
            .to_signature();
        let e = Engine::cpu(pool());
        assert!(e.verify_aggregate(b"m", &pks, &sig));
        assert!(!e.verify_aggregate(b"m", &pks[..3], &sig));
        assert!(!e.verify_aggregate(b"x", &pks, &sig));
        assert!(!e.verify_aggregate(b"m", &[], &sig));
    }

    #[test]
    fn backend_parses() {
        assert_eq!("reference".parse::<Backend>().unwrap(), Backend::Reference);
        assert_eq!("auto".parse::<Backend>().unwrap(), Backend::Cpu);
        assert!("gpu"
            .parse::<Backend>()
            .unwrap_err()
            .contains("expected reference"));
    }
}
