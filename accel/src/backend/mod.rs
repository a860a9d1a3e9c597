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

/// What the operator asked for (`accel.backend`, `--accel`): a backend, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Reference,
    Cpu,
    /// The CUDA backend: refused with a reason when this binary or machine cannot run it.
    Cuda,
    /// CUDA when this binary has it and a device is present, otherwise the CPU backend (the
    /// reason is returned for the log).
    Auto,
}

impl std::str::FromStr for Selection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reference" => Ok(Self::Reference),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            other => Err(format!(
                "unknown accel backend `{other}`: expected reference, cpu, cuda or auto"
            )),
        }
    }
}

/// Why the CUDA backend cannot run here (this binary is built without it).
pub const CUDA_NOT_BUILT: &str = "the cuda backend is not built into this binary (it needs the \
     cargo feature `cuda` and the CUDA toolkit at build time); use `cpu` or `auto`";

impl Selection {
    /// The backend to run, and for `auto` the reason it settled on the CPU; `cuda` where it
    /// cannot run is an error that says why.
    pub fn resolve(self) -> Result<(Backend, Option<String>), String> {
        match self {
            Self::Reference => Ok((Backend::Reference, None)),
            Self::Cpu => Ok((Backend::Cpu, None)),
            Self::Cuda => Err(CUDA_NOT_BUILT.to_string()),
            Self::Auto => Ok((
                Backend::Cpu,
                Some(format!(
                    "auto: using the multicore CPU backend, because {CUDA_NOT_BUILT}"
                )),
            )),
        }
    }
}

/// The kernels a backend provides. Inputs are validated by the engine first: no empty key
/// list, no empty batch, signers deduplicated.
pub(crate) trait VerifyBackend: Send + Sync {
    fn kind(&self) -> Backend;

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
