//! The epoch VDF as this node computes it (ADR 0020): started off the loop as soon as the
//! epoch's seed block is stored, so that whoever leads the epoch's last block has the proof
//! ready; a leader that asks before it is done waits for the same computation, and one that
//! restarted in between computes it then.

use super::*;
use crate::lock::LockExt;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Epochs whose proofs are kept.
const KEPT: usize = 4;

#[derive(Default)]
pub struct EpochVdfs {
    /// Per epoch: the proof once computed. Its mutex is held while computing, so a second
    /// caller waits for the first instead of squaring again.
    cells: Mutex<BTreeMap<u64, Arc<Mutex<Option<state::Bytes>>>>>,
}

impl EpochVdfs {
    /// `y ‖ π` of `epoch`, computed from the stored seed on first use.
    pub fn proof(
        &self,
        store: &ChainStore,
        cfg: &ExecConfig,
        epoch: u64,
        seconds: &prometheus::Gauge,
    ) -> Result<state::Bytes, String> {
        let cell = {
            let mut cells = self.cells.locked();
            let cell = cells.entry(epoch).or_default().clone();
            while cells.len() > KEPT {
                cells.pop_first();
            }
            cell
        };
        let mut slot = cell.locked();
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let seed = {
            let ro = store.db().tx().map_err(|e| e.to_string())?;
            state::exec::epoch_vdf::seed(&ro, cfg.epoch_blocks, epoch).map_err(|e| e.to_string())?
        };
        let started = Instant::now();
        let proof = state::exec::epoch_vdf::prove(&cfg.vdf, &seed).map_err(|e| e.to_string())?;
        seconds.set(started.elapsed().as_secs_f64());
        tracing::info!(target: "consensus", epoch, iterations = cfg.vdf.iterations, ms = started.elapsed().as_millis() as u64, "epoch VDF evaluated");
        *slot = Some(proof.clone());
        Ok(proof)
    }
}

impl Driver {
    /// After block `number` is stored: if it is its epoch's seed block, start the VDF.
    pub(super) fn maybe_start_vdf(&self, number: u64) {
        let exec = &self.ctx.exec;
        let epoch = number / exec.epoch_blocks.max(1);
        if !exec.vdf_active(epoch)
            || number != state::exec::epoch_vdf::seed_block(epoch, exec.epoch_blocks)
        {
            return;
        }
        let (vdfs, store, exec) = (self.vdfs.clone(), self.ctx.store.clone(), exec.clone());
        let seconds = self.ctx.metrics.vdf_seconds.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = vdfs.proof(&store, &exec, epoch, &seconds) {
                tracing::error!(target: "consensus", epoch, error = %e, "could not evaluate the epoch VDF");
            }
        });
    }
}
