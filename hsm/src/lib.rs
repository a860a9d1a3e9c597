//! Signing: the one door through which consensus gets signatures.
//!
//! Consensus asks for a signature *by meaning* ([`SignRequest`]); this crate owns the exact
//! bytes each kind of message signs ([`payload`]), so no caller can make a key sign arbitrary
//! bytes. Backends implement [`Signer`]: a local-key backend for development networks now,
//! YubiHSM 2, EIP-2335 keystores and the double-sign guard later, behind the same trait.

mod local;
mod request;

pub use local::{LocalKeyFile, LocalSigner};
pub use request::{payload, MsgKind, SignRequest, PAYLOAD_BYTES};

use accel::{PublicKey, Signature};

/// Why a signature was not produced.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("signing refused: {0}")]
    Refused(String),
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
}
