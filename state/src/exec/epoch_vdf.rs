//! The epoch VDF (fork `vdf`, ADR 0020): unbiasable randomness for ordering the next
//! committee.
//!
//! - Seed: `sha256(tag ‖ epoch ‖ β…)` over the VRF outputs β of the epoch's blocks from its
//!   first to its [`seed_block`] (the middle): the leaders of the first half each add one, and
//!   none of them can see the result before it is fixed.
//! - Evaluation: `iterations` squarings of the generator in the class group of the discriminant
//!   derived from the seed (`accel::vdf`, chiavdf's construction), with a Wesolowski proof.
//!   Every node starts it once the seed block is final; the leader of the epoch's last block
//!   puts `y ‖ π` in that header's `vdf` field.
//! - Verification: executing the epoch's last block checks the proof against the seed it
//!   recomputes from stored headers (milliseconds; the squarings are never redone). Every other
//!   block's `vdf` is empty.
//! - Output: `sha256(y)`; it orders the elected validators of the next committee
//!   ([`crate::staking::seats`]).

use super::execute::ExecConfig;
use crate::db::{DbError, Headers, Tx};
use crate::spec::VdfParams;
use accel::vdf::{self, Discriminant, Form, Proof};
use alloy_primitives::{Bytes, B256};
use libmdbx::TransactionKind;
use sha2::{Digest, Sha256};

/// Domain tag of the seed.
const SEED_TAG: &[u8] = b"harmony-appliance/vdf-seed";

/// The last block whose VRF goes into `epoch`'s seed: the middle of the epoch.
pub fn seed_block(epoch: u64, epoch_blocks: u64) -> u64 {
    epoch * epoch_blocks + (epoch_blocks / 2).max(1) - 1
}

/// `epoch`'s seed, from the stored headers of its first half (a header without a VRF adds 32
/// zero bytes).
pub fn seed<K: TransactionKind>(
    tx: &Tx<'_, K>,
    epoch_blocks: u64,
    epoch: u64,
) -> Result<[u8; 32], DbError> {
    let mut h = Sha256::new();
    h.update(SEED_TAG);
    h.update(epoch.to_be_bytes());
    for n in epoch * epoch_blocks..=seed_block(epoch, epoch_blocks) {
        let header = tx.get::<Headers>(&n)?.ok_or_else(|| DbError::Corrupt {
            table: "Headers",
            key: n.to_string(),
            reason: format!("the VDF seed of epoch {epoch} needs this block, which is not stored"),
        })?;
        h.update(header.vrf_output().unwrap_or_default());
    }
    Ok(h.finalize().into())
}

/// Evaluates and proves the VDF of `seed`: `y ‖ π` (chiavdf's `prove` output). Takes
/// `iterations` sequential squarings: run it off any event loop.
pub fn prove(params: &VdfParams, seed: &[u8; 32]) -> Result<Bytes, vdf::VdfError> {
    let d = Discriminant::from_seed(seed, params.discriminant_bits)?;
    let proof = vdf::prove(&d, &Form::generator(&d), params.iterations)?;
    Ok(proof.to_bytes(&d)?.into())
}

/// Checks `field` (`y ‖ π`) against `seed`; returns the VDF output.
pub fn verify(params: &VdfParams, seed: &[u8; 32], field: &[u8]) -> Result<B256, String> {
    let d = Discriminant::from_seed(seed, params.discriminant_bits).map_err(|e| e.to_string())?;
    let proof = Proof::from_bytes(field, &d).map_err(|e| e.to_string())?;
    match vdf::verify(
        &d,
        &Form::generator(&d),
        &proof.y,
        &proof.pi,
        params.iterations,
    ) {
        Ok(true) => Ok(crate::block::vdf_output_of(field)),
        Ok(false) => Err("the proof does not verify for this epoch's seed".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether block `number` must carry the epoch's VDF: the last block of an epoch under the fork.
pub fn carries_vdf(cfg: &ExecConfig, number: u64) -> bool {
    let epoch = number / cfg.epoch_blocks.max(1);
    cfg.vdf_active(epoch) && super::staking::is_epoch_end(number, cfg.epoch_blocks)
}

/// The header rule of `vdf`: the proof on the epoch's last block (checked), nothing elsewhere.
pub fn check_field<K: TransactionKind>(
    tx: &Tx<'_, K>,
    cfg: &ExecConfig,
    number: u64,
    field: &[u8],
) -> Result<(), String> {
    if !carries_vdf(cfg, number) {
        return match field.is_empty() {
            true => Ok(()),
            false => Err(format!("block #{number} must not carry a VDF")),
        };
    }
    if field.is_empty() {
        return Err(format!(
            "block #{number} ends its epoch and must carry its VDF proof"
        ));
    }
    let epoch = number / cfg.epoch_blocks;
    let seed = seed(tx, cfg.epoch_blocks, epoch).map_err(|e| e.to_string())?;
    verify(&cfg.vdf, &seed, field).map(|_| ())
}
