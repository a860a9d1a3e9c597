//! The backend seam: what differs between verification backends, behind one trait, so the
//! [`Engine`](crate::Engine) keeps the checks every backend shares (empty inputs, duplicate
//! signers, statuses) and a new backend (a GPU one, issue 16) implements the kernels only.
//!
//! Each method is a whole job (all the votes of a quorum, all the triples of a batch), so a
//! device backend can take the job entire: decoding, subgroup checks, aggregation and pairings
//! where it runs them fastest. Every backend must give the same answers for every input,
//! invalid points, non-subgroup points and bad signatures included (bisection finds the same
//! bad indices); the engine's tests and `accel/tests/` hold them to it.

use crate::bls::{BlsError, PublicKey, Signature};
use crate::job::{BatchItem, Candidate, QuorumPolicy, Vote};

pub(crate) mod cpu;
pub(crate) mod reference;

/// Which implementation verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One signature at a time, one pairing per vote: the scalar oracle used in tests.
    Reference,
    /// Optimistic aggregation (one pairing for a whole quorum), bisection to find bad votes,
    /// random-linear-combination batches; parallel on the caller's thread pool.
    Cpu,
    /// RLC batches on a CUDA device (feature `cuda`), everything else as `Cpu`.
    Cuda,
    /// The CUDA backend's kernels compiled for the host and run on the pool: how the device
    /// path is tested on machines without a GPU. Slow, and not selectable by operators.
    DeviceTwin,
}

impl Backend {
    /// The name `--accel` takes (and metrics report).
    pub fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::DeviceTwin => "device-twin",
        }
    }
}

/// The kernels a backend provides. Inputs are validated by the engine first: no empty key
/// list, no empty batch, signers deduplicated.
pub(crate) trait VerifyBackend: Send + Sync {
    fn kind(&self) -> Backend;

    /// Jobs a device failed and the CPU answered instead (0 for host backends).
    fn device_fallbacks(&self) -> u64 {
        0
    }

    /// Σ of validated public keys.
    fn sum_keys(&self, pks: &[PublicKey]) -> Result<PublicKey, BlsError>;

    /// The product of the Miller loops e(pkᵢ, H(mᵢ)), committed; None if a pair is refused.
    fn miller_loops(&self, pairs: &[(&PublicKey, &[u8])]) -> Option<blst::Pairing<'static>>;

    /// Whether every triple of a non-empty batch is valid (each signature subgroup-checked).
    fn batch_verify(&self, items: &[BatchItem<'_>]) -> bool;

    /// For each vote on `msg`, whether it is valid.
    fn verify_votes(&self, msg: &[u8], votes: &[Vote]) -> Vec<bool>;

    /// Decodes the signatures of the votes at `wanted` (indices into the caller's list).
    fn decode_votes(
        &self,
        wanted: &[usize],
        decode: &(dyn Fn(usize) -> Result<Candidate, (usize, BlsError)> + Sync),
    ) -> Vec<Result<Candidate, (usize, BlsError)>>;

    /// Which decoded candidates are valid votes on `msg`, and the aggregate of the valid ones.
    fn check_candidates(
        &self,
        msg: &[u8],
        cands: &[Candidate],
        policy: QuorumPolicy,
    ) -> (Vec<bool>, Option<Signature>);
}

/// Non-zero 64-bit scalars for a random linear combination (a zero would drop its triple from
/// the check), so a batch with an invalid triple passes with probability at most 2^-64.
pub(crate) fn random_scalars(n: usize) -> Vec<u64> {
    use rand::RngCore;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| loop {
            let r = rng.next_u64();
            if r != 0 {
                break r;
            }
        })
        .collect()
}
