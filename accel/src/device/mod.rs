//! Bulk verification on a device (issue 16, ADR 0023). The device takes what is bulk and
//! independent per item — each signature's subgroup check and its term rᵢσᵢ, each hash to
//! G2, each Miller loop e(rᵢpkᵢ, H(mᵢ)), and the reductions over them — while the host
//! expands the messages (SHA-256), adds the one Miller loop e(-g₁, Σ rᵢσᵢ) and runs the
//! single final exponentiation.
//! Live quorums (one message, one pairing) stay on the CPU backend: ADR 0022 measured them
//! at 1.8 ms for 250 votes, less than a device round trip would leave to gain.
//!
//! [`Kernels`] is what a device provides; [`HostTwin`](twin::HostTwin) runs the very same
//! kernel source on the host, so the whole path — kernels, job assembly, fallbacks — is
//! tested on every machine, and the CUDA executor (feature `cuda`) only moves buffers.

mod backend;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;
pub(crate) mod twin;

#[cfg(test)]
mod tests;

pub(crate) use backend::DeviceBackend;

use crate::backend::Backend;
use blst::{blst_fp12, blst_p1_affine, blst_p2, blst_p2_affine};

/// expand_message_xmd(m, DST, 256): the bytes hash-to-G2 reduces to two Fp2 elements.
pub(crate) type Expanded = [u8; 256];

/// A device failed a job (launch, copy, or a batch too large for it); the backend answers
/// that job on the CPU instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceError(pub(crate) String);

/// The batch kernels, as one device (or the host twin) runs them. Both calls take parallel
/// slices of one batch.
pub(crate) trait Kernels: Send + Sync {
    fn kind(&self) -> Backend;

    /// Whether every signature is in G2, and Σ rᵢσᵢ.
    fn sig_sum(&self, sigs: &[blst_p2_affine], r: &[u64]) -> Result<(bool, blst_p2), DeviceError>;

    /// Π of the Miller loops of (rᵢ·pkᵢ, H(mᵢ)), before the final exponentiation, with
    /// H(mᵢ) hashed on the device from mᵢ's expanded bytes.
    fn pair_product(
        &self,
        pks: &[blst_p1_affine],
        uniform: &[Expanded],
        r: &[u64],
    ) -> Result<blst_fp12, DeviceError>;
}

/// The most items one device job takes.
pub(crate) const MAX_JOB_ITEMS: usize = 1 << 30;

/// Refuses a job whose parallel inputs differ in length, or too large for the kernels' 32-bit
/// item indices.
pub(crate) fn check_job(n: usize, others: &[usize]) -> Result<(), DeviceError> {
    if let Some(m) = others.iter().find(|&&m| m != n) {
        return Err(DeviceError(format!(
            "a job's inputs differ in length ({n} and {m} items)"
        )));
    }
    // Kernels index items with an `int` thread index (block index × block size + lane), so a
    // job stays well below i32::MAX for that sum not to wrap.
    if n > MAX_JOB_ITEMS {
        return Err(DeviceError(format!(
            "a batch of {n} items is too large for one job (at most {MAX_JOB_ITEMS})"
        )));
    }
    Ok(())
}
