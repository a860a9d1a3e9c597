//! Chain types, their RLP codecs, the chain spec and the MDBX chain store.
#![forbid(unsafe_code)]

// Layers, each importing only from those above it in this list (checked by
// `scripts/module_graph.py` in `make test`):
// primitives: bitmap, block, fees, forks, tx, types, changes, spec
// storage:    db (tables, codecs, the ChainStore, the state trie)
// execution:  exec (revm over db)
// staking:    staking (rules and election over primitives and a Balances trait)
// pool:       mempool
pub mod bitmap;
pub mod block;
pub mod changes;
pub mod exec;
pub mod fees;
pub mod forks;
pub mod mempool;
pub mod spec;
pub mod staking;
pub mod tx;
pub mod types;

pub use alloy_primitives::{keccak256, Address, Bloom, Bytes, B256, U256};
pub use bitmap::Bitmap;
pub use block::{
    decode_exact, transactions_root, Block, BlockTemplate, Body, CommitCertificate, Header,
    HeaderError, HeaderV2, EMPTY_ROOT, GAS_LIMIT, HEADER_VERSION, MAX_HEADER_VERSION, VRF_BYTES,
};
pub use spec::{ChainSpec, GenesisAccount, SpecError, Validator, ValidatorKey, VdfParams};
pub mod db;
