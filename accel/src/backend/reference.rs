//! The scalar oracle: every signature on its own, one pairing each, on the caller's thread.
//! Slow on purpose; the other backends are tested against it.

use super::{Backend, VerifyBackend};
use crate::bls::{
    core_verify, AggregatePublicKey, AggregateSignature, BlsError, PublicKey, Signature, DST_SIG,
};
use crate::job::{BatchItem, Candidate, QuorumPolicy, Vote};

#[derive(Debug)]
pub(crate) struct ReferenceBackend;

impl VerifyBackend for ReferenceBackend {
    fn kind(&self) -> Backend {
        Backend::Reference
    }

    fn sum_keys(&self, pks: &[PublicKey]) -> Result<PublicKey, BlsError> {
        AggregatePublicKey::aggregate(pks).map(|a| a.to_public_key())
    }

    fn miller_loops(&self, pairs: &[(&PublicKey, &[u8])]) -> Option<blst::Pairing<'static>> {
        super::cpu::miller_chunk(pairs)
    }

    fn batch_verify(&self, items: &[BatchItem<'_>]) -> bool {
        items
            .iter()
            .all(|it| it.signature.verify(it.public_key, it.message))
    }

    fn verify_votes(&self, msg: &[u8], votes: &[Vote]) -> Vec<bool> {
        votes
            .iter()
            .map(|v| v.signature.verify(&v.public_key, msg))
            .collect()
    }

    fn decode_votes(
        &self,
        wanted: &[usize],
        decode: &(dyn Fn(usize) -> Result<Candidate, (usize, BlsError)> + Sync),
    ) -> Vec<Result<Candidate, (usize, BlsError)>> {
        wanted.iter().map(|&i| decode(i)).collect()
    }

    fn check_candidates(
        &self,
        msg: &[u8],
        cands: &[Candidate],
        _policy: QuorumPolicy,
    ) -> (Vec<bool>, Option<Signature>) {
        let ok: Vec<bool> = cands
            .iter()
            .map(|c| core_verify(&c.pk, &c.sig, msg, DST_SIG, true))
            .collect();
        let valid = cands
            .iter()
            .zip(&ok)
            .filter(|(_, o)| **o)
            .map(|(c, _)| &c.sig);
        let aggregate = AggregateSignature::aggregate(valid)
            .ok()
            .map(|a| a.to_signature());
        (ok, aggregate)
    }
}
