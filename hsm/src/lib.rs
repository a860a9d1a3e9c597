//! Signing: the one door through which consensus gets signatures.
//!
//! Consensus asks for a signature *by meaning* ([`SignRequest`]); this crate owns the exact
//! bytes each kind of message signs ([`payload`]), so no caller can make a key sign arbitrary
//! bytes. Backends implement [`Signer`]: EIP-2335 keystores ([`KeystoreSigner`]), YubiHSM 2 and
//! MockHsm ([`yubi`]), and a local-key file for development. [`GuardedSigner`] puts any of them
//! behind the double-sign [`Guard`], which records each slot durably before a signature leaves.
// Unsafe code only where a module allows it and says why (FFI to blst, GMP, libc).
#![deny(unsafe_code)]

pub mod guard;
mod guarded;
pub mod keystore;
mod local;
mod locked;
mod request;
pub mod yubi;

pub use guard::{Decision, Guard, GuardError, GuardStats, Interchange};
pub use guarded::GuardedSigner;
pub use keystore::{Keystore, KeystoreError, KeystoreSigner};
pub use local::{check_private, LocalKeyFile, LocalSigner};
pub use locked::LockedKeys;
pub use request::{payload, view_change_lock, MsgKind, SignRequest, PAYLOAD_BYTES};

use accel::{PublicKey, Signature};

/// Why a signature was not produced.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The double-sign guard refused the request (a conflict or a slot below the watermark)
    /// or could not record it; kept whole so callers can tell which (metrics, alerts).
    #[error("signing refused: {0}")]
    Refused(GuardError),
    #[error("double-sign guard failed: {0}")]
    Guard(GuardError),
    #[error("signer backend failed: {0}")]
    Backend(String),
}

/// One signature per key the node holds, in the order of [`Signer::public_keys`].
pub type Signatures = Vec<Signature>;

/// A source of consensus signatures.
pub trait Signer: Send + Sync {
    /// The BLS keys this node signs with, in a stable order.
    fn public_keys(&self) -> &[PublicKey];
    /// Signs `req` with every key the node holds. The signer builds the signed bytes itself.
    fn sign(&self, req: &SignRequest) -> Result<Signatures, SignError>;
    /// Checks that the backend answers (an HSM round trip); backends with nothing remote to
    /// reach answer at once. The node probes periodically for `harmony_signer_up`.
    fn probe(&self) -> Result<(), SignError> {
        Ok(())
    }
}

impl<S: Signer + ?Sized> Signer for Box<S> {
    fn public_keys(&self) -> &[PublicKey] {
        (**self).public_keys()
    }
    fn sign(&self, req: &SignRequest) -> Result<Signatures, SignError> {
        (**self).sign(req)
    }
    fn probe(&self) -> Result<(), SignError> {
        (**self).probe()
    }
}
