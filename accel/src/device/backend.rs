//! The device backend: batches on the device's kernels, everything else on the CPU backend.
// blst's C API for hashing to G2, one Miller loop and the final exponentiation.
#![allow(unsafe_code)]

use super::{DeviceError, Expanded, Kernels};
use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, VerifyBackend};
use crate::bls::{BlsError, PublicKey, Signature, DST_SIG};
use crate::job::{BatchItem, Candidate, QuorumPolicy, Vote};
use blst::{blst_fp12, blst_p1_affine, blst_p2, blst_p2_affine};
use rayon::prelude::*;
use rayon::ThreadPool;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) struct DeviceBackend {
    kernels: Box<dyn Kernels>,
    cpu: CpuBackend,
    pool: Arc<ThreadPool>,
    /// Jobs the device failed (or answered "invalid" where the CPU found the batch valid) and
    /// the CPU answered instead.
    fallbacks: AtomicU64,
    /// Device errors in a row; at [`GIVE_UP_AFTER`] the device is no longer tried (a CUDA
    /// context that hit a sticky error fails every later call).
    failures_in_a_row: AtomicU32,
}

/// Consecutive device errors after which every batch goes to the CPU until a restart.
const GIVE_UP_AFTER: u32 = 3;

impl DeviceBackend {
    pub(crate) fn new(kernels: Box<dyn Kernels>, pool: Arc<ThreadPool>) -> Self {
        Self {
            kernels,
            cpu: CpuBackend::new(pool.clone()),
            pool,
            fallbacks: AtomicU64::new(0),
            failures_in_a_row: AtomicU32::new(0),
        }
    }

    /// A known-answer check at start: a valid batch must pass on the device and the same batch
    /// with one wrong message must fail, or the backend is refused (a kernel the driver
    /// miscompiled must not decide anything).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))] // only CUDA runs it at start
    pub(crate) fn self_test(&self) -> Result<(), String> {
        let sks: Vec<crate::SecretKey> = (1..=5u8)
            .map(|i| crate::SecretKey::from_ikm(&[i; 32]).expect("32 bytes of key material"))
            .collect();
        let pks: Vec<PublicKey> = sks.iter().map(|k| k.public_key()).collect();
        let mut msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 40]).collect();
        let sigs: Vec<Signature> = sks.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let run = |msgs: &[Vec<u8>]| {
            let items: Vec<BatchItem> = (0..5)
                .map(|i| BatchItem {
                    public_key: &pks[i],
                    message: &msgs[i],
                    signature: &sigs[i],
                })
                .collect();
            self.device_batch(&items)
                .map_err(|e| format!("the known-answer batch failed: {}", e.0))
        };
        let valid = run(&msgs)?;
        msgs[3][0] ^= 1;
        let forged = run(&msgs)?;
        match (valid, forged) {
            (true, false) => Ok(()),
            _ => Err(format!(
                "the device answered the known-answer batches wrongly (valid: {valid}, with a \
                 wrong message: {forged}); refusing it"
            )),
        }
    }
    fn device_batch(&self, items: &[BatchItem<'_>]) -> Result<bool, DeviceError> {
        let rands = crate::backend::random_scalars(items.len());
        let sigs: Vec<blst_p2_affine> = items.iter().map(|it| *it.signature.affine()).collect();
        let (in_group, sum) = self.kernels.sig_sum(&sigs, &rands)?;
        if !in_group {
            return Ok(false);
        }
        let pks: Vec<blst_p1_affine> = items.iter().map(|it| *it.public_key.affine()).collect();
        let uniform: Vec<Expanded> = self
            .pool
            .install(|| items.par_iter().map(|it| expand(it.message)).collect());
        let product = self.kernels.pair_product(&pks, &uniform, &rands)?;
        Ok(closes_to_one(&product, &sum))
    }
}

/// expand_message_xmd(msg, DST_SIG, 256) (RFC 9380 section 5.3.1), hash-to-G2's first step.
pub(crate) fn expand(msg: &[u8]) -> Expanded {
    let mut out = [0u8; 256];
    // SAFETY: blst writes 256 bytes and reads `msg` and the DST for the lengths given.
    unsafe {
        blst::blst_expand_message_xmd(
            out.as_mut_ptr(),
            out.len(),
            msg.as_ptr(),
            msg.len(),
            DST_SIG.as_ptr(),
            DST_SIG.len(),
        )
    };
    out
}

/// Whether FinalExp(product · e(-g₁, sum)) = 1, i.e. e(g₁, Σ rᵢσᵢ) = Π e(rᵢpkᵢ, H(mᵢ)).
fn closes_to_one(product: &blst_fp12, sum: &blst_p2) -> bool {
    let mut acc = *product;
    // SAFETY: plain values of blst's layout; every output is a distinct local.
    unsafe {
        if !blst::blst_p2_is_inf(sum) {
            let mut sum_affine = blst_p2_affine::default();
            blst::blst_p2_to_affine(&mut sum_affine, sum);
            let mut neg_g1 = *blst::blst_p1_affine_generator();
            let y = neg_g1.y;
            blst::blst_fp_cneg(&mut neg_g1.y, &y, true);
            let mut m = blst_fp12::default();
            blst::blst_miller_loop(&mut m, &sum_affine, &neg_g1);
            let prev = acc;
            blst::blst_fp12_mul(&mut acc, &prev, &m);
        }
        let mut out = blst_fp12::default();
        blst::blst_final_exp(&mut out, &acc);
        blst::blst_fp12_is_one(&out)
    }
}

impl VerifyBackend for DeviceBackend {
    fn kind(&self) -> Backend {
        self.kernels.kind()
    }

    fn device_fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    fn sum_keys(&self, pks: &[PublicKey]) -> Result<PublicKey, BlsError> {
        self.cpu.sum_keys(pks)
    }

    fn miller_loops(&self, pairs: &[(&PublicKey, &[u8])]) -> Option<blst::Pairing<'static>> {
        self.cpu.miller_loops(pairs)
    }

    fn batch_verify(&self, items: &[BatchItem<'_>]) -> bool {
        if self.failures_in_a_row.load(Ordering::Relaxed) >= GIVE_UP_AFTER {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
            return self.cpu.batch_verify(items);
        }
        match self.device_batch(items) {
            Ok(true) => {
                self.failures_in_a_row.store(0, Ordering::Relaxed);
                true
            }
            // "Invalid" is rare (a lying peer) and final, so the CPU confirms it: a device
            // that went wrong must not make the node refuse valid certificates.
            Ok(false) => {
                self.failures_in_a_row.store(0, Ordering::Relaxed);
                let valid = self.cpu.batch_verify(items);
                if valid {
                    self.fallbacks.fetch_add(1, Ordering::Relaxed);
                }
                valid
            }
            Err(_) => {
                self.failures_in_a_row.fetch_add(1, Ordering::Relaxed);
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                self.cpu.batch_verify(items)
            }
        }
    }

    fn verify_votes(&self, msg: &[u8], votes: &[Vote]) -> Vec<bool> {
        self.cpu.verify_votes(msg, votes)
    }

    fn decode_votes(
        &self,
        wanted: &[usize],
        decode: &(dyn Fn(usize) -> Result<Candidate, (usize, BlsError)> + Sync),
    ) -> Vec<Result<Candidate, (usize, BlsError)>> {
        self.cpu.decode_votes(wanted, decode)
    }

    fn check_candidates(
        &self,
        msg: &[u8],
        cands: &[Candidate],
        policy: QuorumPolicy,
    ) -> (Vec<bool>, Option<Signature>) {
        self.cpu.check_candidates(msg, cands, policy)
    }
}
