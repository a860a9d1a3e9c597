//! The verification engine: one API over several backends ([`crate::backend`]) that must
//! agree bit for bit. The engine checks what every backend would check the same way (empty
//! inputs, lengths, the aggregate's subgroup); the backend does the work.

use crate::backend::{cpu::CpuBackend, reference::ReferenceBackend, Backend, VerifyBackend};
use crate::bls::{core_verify, PublicKey, Signature, DST_SIG};
use crate::device::DeviceBackend;
pub use crate::job::{BatchItem, Vote};
use rayon::ThreadPool;
use std::sync::Arc;

/// Verification engine. Cheap to clone; the backend and the pool are shared.
#[derive(Clone)]
pub struct Engine {
    pub(crate) backend: Arc<dyn VerifyBackend>,
    pool: Option<Arc<ThreadPool>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine({:?})", self.backend.kind())
    }
}

impl Engine {
    /// The scalar oracle.
    pub fn reference() -> Self {
        Self {
            backend: Arc::new(ReferenceBackend),
            pool: None,
        }
    }

    /// The multicore backend on a pool the caller sized together with its other runtimes.
    pub fn cpu(pool: Arc<ThreadPool>) -> Self {
        Self {
            backend: Arc::new(CpuBackend::new(pool.clone())),
            pool: Some(pool),
        }
    }

    /// The engine for a resolved backend ([`Selection::resolve`](crate::Selection)); the
    /// CUDA backend can still fail here (context creation, loading its kernels), with the
    /// reason.
    pub fn new(backend: Backend, pool: Arc<ThreadPool>) -> Result<Self, String> {
        match backend {
            Backend::Reference => Ok(Self::reference()),
            Backend::Cpu => Ok(Self::cpu(pool)),
            Backend::DeviceTwin => Ok(Self::device_twin(pool)),
            Backend::Cuda => Self::cuda(pool),
        }
    }

    /// The device backend with the kernels run on the host (ADR 0023): for tests and
    /// benches of the device path on machines without a GPU.
    #[doc(hidden)]
    pub fn device_twin(pool: Arc<ThreadPool>) -> Self {
        let kernels = Box::new(crate::device::twin::HostTwin::new(pool.clone()));
        Self {
            backend: Arc::new(DeviceBackend::new(kernels, pool.clone())),
            pool: Some(pool),
        }
    }

    /// The CUDA backend, once its known-answer batches came back right.
    #[cfg(feature = "cuda")]
    fn cuda(pool: Arc<ThreadPool>) -> Result<Self, String> {
        let kernels = Box::new(crate::device::cuda::CudaKernels::start()?);
        let backend = DeviceBackend::new(kernels, pool.clone());
        backend.self_test()?;
        Ok(Self {
            backend: Arc::new(backend),
            pool: Some(pool),
        })
    }

    #[cfg(not(feature = "cuda"))]
    fn cuda(_pool: Arc<ThreadPool>) -> Result<Self, String> {
        Err(crate::selection::CUDA_NOT_BUILT.to_string())
    }

    /// Batches a device failed and the CPU answered instead (0 for host backends); a rising
    /// count means the GPU is unwell.
    pub fn device_fallbacks(&self) -> u64 {
        self.backend.device_fallbacks()
    }

    pub fn backend(&self) -> Backend {
        self.backend.kind()
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
        match self.backend.sum_keys(signers) {
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
        let Some(acc) = self.backend.miller_loops(&pairs) else {
            return false;
        };
        let mut gt = blst::blst_fp12::default();
        blst::Pairing::aggregated(&mut gt, sig.affine());
        acc.finalverify(Some(&gt))
    }

    /// True when every (key, message, signature) triple is valid. `reference` checks one by
    /// one; `cpu` checks one random linear combination (see the CPU backend). Each signature
    /// is subgroup-checked. An empty batch is refused.
    pub fn batch_verify(&self, items: &[BatchItem<'_>]) -> bool {
        !items.is_empty() && self.backend.batch_verify(items)
    }

    /// Returns, for each vote on `msg`, whether it is valid.
    pub fn verify_votes(&self, msg: &[u8], votes: &[Vote]) -> Vec<bool> {
        self.backend.verify_votes(msg, votes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bls::{AggregateSignature, SecretKey};

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
    fn selection_parses_and_auto_says_why_it_chose_the_cpu() {
        use crate::selection::Selection;
        let resolve = |s: &str| s.parse::<Selection>().unwrap().resolve();
        assert_eq!(resolve("reference").unwrap(), (Backend::Reference, None));
        assert_eq!(resolve("cpu").unwrap(), (Backend::Cpu, None));
        // With the feature, what auto picks depends on the machine (tests/cuda.rs).
        #[cfg(not(feature = "cuda"))]
        {
            let (backend, why) = resolve("auto").unwrap();
            assert_eq!(backend, Backend::Cpu);
            assert!(why.unwrap().contains(crate::selection::CUDA_NOT_BUILT));
            assert!(resolve("cuda").unwrap_err().contains("feature `cuda`"));
        }
        assert!("gpu"
            .parse::<Selection>()
            .unwrap_err()
            .contains("expected reference, cpu, cuda or auto"));
    }
}
