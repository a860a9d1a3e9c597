//! The verification engine: one API, several backends that must agree bit for bit.

use crate::bls::{AggregatePublicKey, AggregateSignature, PublicKey, Signature};
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

    /// Verifies an aggregate signature by `signers` (validated keys) over one message,
    /// including the subgroup check of the aggregate.
    pub fn verify_aggregate(&self, msg: &[u8], signers: &[PublicKey], sig: &Signature) -> bool {
        if signers.is_empty() {
            return false;
        }
        let apk = match AggregatePublicKey::aggregate(signers) {
            Ok(apk) => apk.to_public_key(),
            Err(_) => return false,
        };
        sig.verify(&apk, msg)
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
                let pool = self.pool.as_ref().expect("cpu backend has a pool");
                pool.install(|| bisect(msg, votes, &mut out));
                out
            }
        }
    }
}

/// Checks `votes` as one aggregate; on failure splits in halves (in parallel) until the bad
/// votes are isolated. Costs one pairing when all votes are good.
fn bisect(msg: &[u8], votes: &[Vote], out: &mut [bool]) {
    if votes.is_empty() {
        return;
    }
    if votes.len() == 1 {
        out[0] = votes[0].signature.verify(&votes[0].public_key, msg);
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
    sig.verify(&apk, msg)
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
