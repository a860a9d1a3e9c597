//! BLS12-381 verification engine of the appliance.
//!
//! Keys and signatures follow the Ethereum consensus conventions (blst "min-pk": 48-byte G1
//! public keys, 96-byte G2 signatures, proof-of-possession ciphersuite), so public test vectors
//! apply. The [`Engine`] is the one door through which the node verifies votes and
//! certificates; it has several backends that must agree bit for bit, and runs parallel work on
//! a thread pool owned by the caller.
//!
//! - [`Engine::verify_quorum`]: votes for one payload straight from wire bytes (curve check per
//!   vote, one subgroup-checked aggregate and one pairing, bisection to find bad votes; see
//!   `docs/adr/0004-quorum-verification.md` for the checks skipped per vote).
//! - [`Engine::batch_verify`], [`Engine::aggregate_verify`], [`Engine::fast_aggregate_verify`],
//!   proofs of possession, EIP-2333 derivation, compressed and uncompressed encodings.
//! - [`vdf`]: Wesolowski VDF over class groups, byte-compatible with chiavdf.
//!
//! This crate performs no I/O.
// Unsafe code only where a module allows it and says why (FFI to blst, GMP, libc).
#![deny(unsafe_code)]

mod backend;
mod bls;
mod device;
mod engine;
mod job;
mod quorum;
mod selection;
pub mod vdf;

pub use backend::Backend;
pub use bls::{
    decode_g1_point, decode_g2_point, AggregatePublicKey, AggregateSignature, BlsError, PublicKey,
    SecretKey, Signature, DST_POP, DST_SIG, PUBLIC_KEY_BYTES, PUBLIC_KEY_UNCOMPRESSED_BYTES,
    SECRET_KEY_BYTES, SIGNATURE_BYTES, SIGNATURE_UNCOMPRESSED_BYTES,
};
pub use engine::{BatchItem, Engine, Vote};
pub use quorum::{encode_vote, QuorumOutcome, QuorumPolicy, VoteStatus, WireVote, WIRE_VOTE_BYTES};
pub use selection::{Selection, CUDA_NOT_BUILT};
