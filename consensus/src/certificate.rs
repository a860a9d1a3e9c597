//! Turning a quorum certificate into one verification job.

use crate::committee::Committee;
use accel::Signature;
use hsm::{payload, MsgKind, SignRequest, PAYLOAD_BYTES};
use state::{Bitmap, CommitCertificate};

/// Why a certificate (prepare or commit quorum) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("bitmap has the wrong length for the committee")]
    BitmapLength,
    #[error("signers hold no quorum of voting power")]
    NoQuorum,
    #[error("signature: {0}")]
    Signature(String),
    #[error("empty bitmap")]
    EmptyBitmap,
    #[error("certificate of block {number}: aggregate signature does not verify")]
    DoesNotVerify { number: u64 },
    #[error("certificate of block {number}: {error}")]
    Of {
        number: u64,
        error: Box<CertificateError>,
    },
    #[error("certificates fail as a batch but pass one by one")]
    BatchOnly,
}

/// Cheap checks of a certificate (bitmap shape, quorum of power, signature encoding) and the
/// (payload, aggregate-key vote) pair whose verification proves it. One pairing verifies it.
pub fn certificate_vote(
    committee: &Committee,
    chain_id: u64,
    shard: u32,
    kind: MsgKind,
    cert: &CommitCertificate,
) -> Result<([u8; PAYLOAD_BYTES], accel::Vote), CertificateError> {
    let bitmap = Bitmap::from_bytes(&cert.bitmap, committee.key_count())
        .ok_or(CertificateError::BitmapLength)?;
    if !committee.is_quorum(committee.power_of(&bitmap)) {
        return Err(CertificateError::NoQuorum);
    }
    let signature = Signature::from_bytes(&cert.signature)
        .map_err(|e| CertificateError::Signature(e.to_string()))?;
    let public_key = committee
        .aggregate_key(&bitmap)
        .ok_or(CertificateError::EmptyBitmap)?;
    let req = SignRequest {
        kind,
        chain_id,
        shard,
        number: cert.number,
        view: cert.view,
        hash: cert.hash.0,
    };
    Ok((
        payload(&req),
        accel::Vote {
            public_key,
            signature,
        },
    ))
}

/// Verifies a commit certificate synchronously (catch-up path).
pub fn verify_commit_certificate(
    engine: &accel::Engine,
    committee: &Committee,
    chain_id: u64,
    shard: u32,
    cert: &CommitCertificate,
) -> Result<(), CertificateError> {
    let (payload, vote) = certificate_vote(committee, chain_id, shard, MsgKind::Commit, cert)?;
    if engine.verify_votes(&payload, &[vote]) == [true] {
        Ok(())
    } else {
        Err(CertificateError::DoesNotVerify {
            number: cert.number,
        })
    }
}

/// Verifies many commit certificates at once (catch-up): the cheap checks of each, then one
/// random-linear-combination batch (`Engine::batch_verify`); only when the batch fails are
/// they checked one by one, to name the bad one. An empty list is trivially fine.
pub fn verify_commit_certificates(
    engine: &accel::Engine,
    committee: &Committee,
    chain_id: u64,
    shard: u32,
    certs: &[CommitCertificate],
) -> Result<(), CertificateError> {
    if certs.is_empty() {
        return Ok(());
    }
    let jobs = certs
        .iter()
        .map(|c| {
            certificate_vote(committee, chain_id, shard, MsgKind::Commit, c).map_err(|e| {
                CertificateError::Of {
                    number: c.number,
                    error: Box::new(e),
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let items: Vec<accel::BatchItem<'_>> = jobs
        .iter()
        .map(|(payload, vote)| accel::BatchItem {
            public_key: &vote.public_key,
            message: payload,
            signature: &vote.signature,
        })
        .collect();
    if engine.batch_verify(&items) {
        return Ok(());
    }
    for (c, (payload, vote)) in certs.iter().zip(&jobs) {
        if engine.verify_votes(payload, std::slice::from_ref(vote)) != [true] {
            return Err(CertificateError::DoesNotVerify { number: c.number });
        }
    }
    Err(CertificateError::BatchOnly)
}
