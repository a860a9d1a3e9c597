//! YubiHSM 2 (and MockHsm) backend, provisioning profiles and sealed BLS keys.
//!
//! YubiHSM 2 has no BLS12-381. Each BLS secret is sealed with AES-256-GCM (ring) under a key
//! that is an HMAC-SHA256 computed *inside* the HSM (`hmac_key` of the profile) over a random
//! salt stored in the sealed file; the HMAC key leaves the device only wrapped under the backup
//! wrap key. A sealed file is useless without the HSM. At start the secrets are unsealed into
//! locked, zeroized memory ([`LockedKeys`]).
//!
//! The Ed25519 transport key and the secp256k1 operator key are generated in the HSM and never
//! leave it: [`HsmEd25519Key`] signs TLS handshakes and certificates through the device.
//!
//! MockHsm does not enforce capabilities or domains, so [`check_device`] reads back every
//! object the node uses and refuses a device provisioned looser than its profile.
//!
//! By step: [`connect`] (connector, session, MockHsm server), [`profile`] (what a device should
//! hold), [`setup`] (provisioning as named steps, and the check of a provisioned device),
//! [`seal`] (sealed BLS keys) and [`signer`] (the keys in use).

mod connect;
mod profile;
mod seal;
mod setup;
mod signer;

pub use connect::{connector, is_mock, open, serve_mock};
pub use profile::{ObjectSpec, Profile};
pub use seal::{sealed_files, SealedKey};
pub use setup::{check_device, setup};
pub use signer::{operator_public_key, HsmEd25519Key, HsmSigner};
pub use yubihsm::Client;

/// Serial number MockHsm reports; a real device never has it.
pub const MOCK_SERIAL: &str = "0123456789";
/// The profile shipped in `firmware-config/yubihsm/default.toml`.
pub const DEFAULT_PROFILE: &str = include_str!("../../../firmware-config/yubihsm/default.toml");
const SEAL_CONTEXT: &[u8] = b"harmony-appliance/bls-seal/v1";

/// An HSM problem, phrased as what to do about it (the message), by kind (so a caller can tell
/// an absent device from a refused password or a damaged sealed file). Never carries key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// No device answers at the connector, or the connector spec is malformed.
    #[error("{0}")]
    Unreachable(String),
    /// The device refused the authentication key or its password.
    #[error("{0}")]
    AuthRefused(String),
    /// The provisioning profile is invalid.
    #[error("{0}")]
    Profile(String),
    /// The device is not provisioned as the profile says (or provisioning it failed).
    #[error("{0}")]
    Provisioning(String),
    /// A sealed key file is missing, damaged, or belongs to another device.
    #[error("{0}")]
    Sealed(String),
    /// A device operation failed.
    #[error("{0}")]
    Device(String),
}
