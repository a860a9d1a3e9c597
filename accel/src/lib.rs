//! BLS12-381 verification engine of the appliance.
//!
//! Keys and signatures follow the Ethereum consensus conventions (blst "min-pk": 48-byte G1
//! public keys, 96-byte G2 signatures, proof-of-possession ciphersuite), so public test vectors
//! apply. The [`Engine`] is the one door through which the node verifies votes and
//! certificates; it has several backends that must agree bit for bit, and runs parallel work on
//! a thread pool owned by the caller.
//!
//! This crate performs no I/O.

mod bls;
mod engine;

pub use bls::{
    AggregatePublicKey, AggregateSignature, BlsError, PublicKey, SecretKey, Signature, DST_POP,
    DST_SIG, PUBLIC_KEY_BYTES, SECRET_KEY_BYTES, SIGNATURE_BYTES,
};
pub use engine::{Backend, Engine, Vote};
