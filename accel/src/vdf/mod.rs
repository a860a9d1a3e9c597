//! Wesolowski VDF over class groups of imaginary quadratic fields, compatible with chiavdf:
//! the discriminant from a challenge seed and a bit size, the compressed form serialization
//! (100 bytes for discriminants up to 1024 bits), and `prove` output `y ‖ π`, byte for byte.
//!
//! Squarings are sequential by nature: more cores (or a GPU) cannot speed up the evaluation;
//! they are only useful for the proof. Arithmetic runs on GMP through `rug`, except the two
//! Euclids of every squaring (the inverse b⁻¹ mod a and the partial reduction), which run on
//! fixed limb arrays (`lehmer`, ADR 0022).

mod form;
mod hash_prime;
mod lehmer;
mod serialize;
mod wesolowski;
mod xgcd;

pub use form::{Discriminant, Form, MAX_DISCRIMINANT_BITS};
pub use hash_prime::hash_prime;
pub use serialize::FORM_BYTES;
pub use wesolowski::{get_b, prove, prove_with_progress, verify, Proof, B_BITS};

/// Why a VDF input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VdfError {
    #[error("discriminant size must be a positive multiple of 8 up to 1024 bits, got {0}")]
    DiscriminantBits(usize),
    #[error("the challenge seed is empty")]
    EmptySeed,
    #[error("a serialized form is {expected} bytes, got {got}")]
    FormLength { expected: usize, got: usize },
    #[error("bytes are not the canonical serialization of a reduced form of this discriminant")]
    BadForm,
    #[error("the form cannot be serialized in {0} bits")]
    Unserializable(usize),
    #[error("bad hex: {0}")]
    Hex(String),
    #[error("proof is {got} bytes; expected y ‖ π, {expected} bytes")]
    ProofLength { expected: usize, got: usize },
}
