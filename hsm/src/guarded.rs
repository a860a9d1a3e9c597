//! Any backend behind the double-sign guard: the guard decides and records, then the backend
//! signs. Every backend (keystore, MockHsm, YubiHSM 2, local file) goes through this door.

use crate::guard::{Decision, Guard, GuardError, GuardStats};
use crate::request::SignRequest;
use crate::{SignError, Signatures, Signer};
use accel::PublicKey;
use std::sync::Arc;

/// A signer whose every signature is first recorded durably by a [`Guard`].
pub struct GuardedSigner {
    inner: Box<dyn Signer>,
    guard: Arc<Guard>,
}

impl std::fmt::Debug for GuardedSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedSigner")
            .field("keys", &self.inner.public_keys().len())
            .field("guard", &self.guard)
            .finish()
    }
}

impl GuardedSigner {
    /// Wraps `inner`. Every key must have a history in `guard`; with `allow_new_history`, keys
    /// without one get an empty history (for keys that never signed anywhere).
    pub fn new(
        inner: Box<dyn Signer>,
        guard: Arc<Guard>,
        allow_new_history: bool,
    ) -> Result<Self, GuardError> {
        let keys = inner.public_keys().to_vec();
        if allow_new_history {
            guard.register(&keys)?;
        } else {
            for pk in &keys {
                if !guard.has_history(pk)? {
                    return Err(GuardError::NoHistory(format!(
                        "0x{}",
                        hex::encode(pk.to_bytes())
                    )));
                }
            }
        }
        Ok(Self { inner, guard })
    }

    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// Refusal and write counters, for metrics.
    pub fn stats(&self) -> Arc<GuardStats> {
        self.guard.stats()
    }

    /// Like [`Signer::sign`], also saying whether the request was new or a repeat.
    pub fn sign_decided(&self, req: &SignRequest) -> Result<(Signatures, Decision), SignError> {
        let d = self
            .guard
            .check_and_record(self.inner.public_keys(), req)
            .map_err(guard_to_sign_error)?;
        Ok((self.inner.sign(req)?, d))
    }
}

pub(crate) fn guard_to_sign_error(e: GuardError) -> SignError {
    match e {
        GuardError::Conflict { .. } | GuardError::BelowWatermark { .. } => SignError::Refused(e),
        other => SignError::Guard(other),
    }
}

impl Signer for GuardedSigner {
    fn public_keys(&self) -> &[PublicKey] {
        self.inner.public_keys()
    }

    fn sign(&self, req: &SignRequest) -> Result<Signatures, SignError> {
        self.sign_decided(req).map(|(s, _)| s)
    }

    fn probe(&self) -> Result<(), SignError> {
        self.inner.probe()
    }
}
