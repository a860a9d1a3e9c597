//! Chain types, their RLP codecs, the chain spec and the MDBX chain store.
#![forbid(unsafe_code)]

pub mod bitmap;
pub mod block;
pub mod exec;
pub mod mempool;
pub mod spec;

pub use alloy_primitives::{keccak256, Address, Bloom, Bytes, B256, U256};
pub use bitmap::Bitmap;
pub use block::{
    decode_exact, transactions_root, Block, BlockTemplate, Body, CommitCertificate, Header,
    HeaderError, EMPTY_ROOT, GAS_LIMIT, HEADER_VERSION,
};
pub use spec::{ChainSpec, GenesisAccount, SpecError, Validator, ValidatorKey};
pub mod db;
