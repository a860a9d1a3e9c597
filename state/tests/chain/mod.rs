//! Shared by the chain-level state tests: a spec with staking from genesis, a leader and a
//! follower store, and steps that build, re-execute and commit blocks on both.
#![allow(dead_code)] // each test file uses part of it

pub use alloy_primitives::{Address, Bytes, B256, U256};
pub use alloy_signer::SignerSync;
pub use alloy_signer_local::PrivateKeySigner;
pub use state::db::ChainStore;
pub use state::exec::{self, ExecConfig, StateReader};
pub use state::staking::*;
pub use state::{Block, BlockTemplate, ChainSpec, CommitCertificate, GenesisAccount, Header};
pub use std::collections::BTreeMap;

pub const CHAIN_ID: u64 = 31_337;
pub const EPOCH_BLOCKS: u64 = 4;
pub const GAS_PRICE: u128 = 2_000_000_000;

pub fn signer(i: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(i + 1)).unwrap()
}

pub fn one(n: u64) -> U256 {
    U256::from(n) * U256::from(ONE)
}

pub fn spec() -> ChainSpec {
    ChainSpec {
        name: "staking-test".into(),
        chain_id: CHAIN_ID,
        shard: 0,
        block_time_ms: 1000,
        blocks_per_leader: 1,
        epoch_blocks: EPOCH_BLOCKS,
        genesis_timestamp_ms: 1_700_000_000_000,
        forks: BTreeMap::from([
            (state::forks::HEADER_V2.to_string(), 0),
            (state::forks::STAKING.to_string(), 0),
        ]),
        staking: Default::default(),
        economics: Default::default(),
        vdf: Default::default(),
        validators: vec![],
        alloc: (0..3)
            .map(|i| {
                (
                    signer(i).address(),
                    GenesisAccount {
                        balance: one(1_000_000),
                        ..Default::default()
                    },
                )
            })
            .chain(
                [
                    (FORWARDER.0, FORWARDER.1.to_vec()),
                    (REVERTER.0, REVERTER.1.to_vec()),
                ]
                .map(|(address, code)| {
                    (
                        address,
                        GenesisAccount {
                            balance: one(50_000),
                            code: Bytes::from(code),
                            ..Default::default()
                        },
                    )
                }),
            )
            .collect(),
    }
}

/// Runtime code that calls the staking precompile with its own calldata (CALL, no value).
const CALL_0XFC: [u8; 19] = [
    0x36, 0x60, 0x00, 0x60, 0x00, 0x37, // calldatacopy(0, 0, calldatasize)
    0x60, 0x00, 0x60, 0x00, 0x36, 0x60, 0x00, 0x60, 0x00, 0x60, 0xfc, 0x5a,
    0xf1, // call(gas, 0xfc, 0, 0, calldatasize, 0, 0)
];

const fn concat<const N: usize>(tail: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < 19 {
        out[i] = CALL_0XFC[i];
        i += 1;
    }
    while i < N {
        out[i] = tail[i - 19];
        i += 1;
    }
    out
}

/// A contract that forwards its calldata to 0xfc and succeeds when the call did.
pub const FORWARDER: (Address, [u8; 29]) = (
    Address::repeat_byte(0xf0),
    // jumpi(27, success); revert(0, 0); 27: jumpdest; stop
    concat(&[0x60, 0x1b, 0x57, 0x60, 0x00, 0x60, 0x00, 0xfd, 0x5b, 0x00]),
);

/// A contract that forwards its calldata to 0xfc, then reverts whatever happened.
pub const REVERTER: (Address, [u8; 25]) = (
    Address::repeat_byte(0xf1),
    // pop; revert(0, 0)
    concat(&[0x50, 0x60, 0x00, 0x60, 0x00, 0xfd]),
);

pub fn open(dir: &std::path::Path, spec: &ChainSpec) -> ChainStore {
    let store = ChainStore::open(dir).unwrap();
    store
        .init_genesis_with_state(&spec.genesis(), &spec.genesis_state())
        .unwrap();
    store
}

pub fn tip(store: &ChainStore) -> Header {
    let (n, _) = store.tip().unwrap().unwrap();
    store.header(n).unwrap().unwrap()
}

pub fn template(parent: &Header) -> BlockTemplate {
    let number = parent.number + 1;
    BlockTemplate {
        number,
        view: parent.view + 1,
        epoch: number / EPOCH_BLOCKS,
        shard: 0,
        parent_hash: parent.hash(),
        timestamp_ms: parent.timestamp_ms + 1000,
        leader: Address::repeat_byte(0x1e),
        last_commit: None,
        transactions: vec![],
        vrf: Default::default(),
    }
}

pub fn cert(block: &Block) -> CommitCertificate {
    cert_of(&block.header)
}

pub fn cert_of(header: &Header) -> CommitCertificate {
    CommitCertificate {
        number: header.number,
        view: header.view,
        hash: header.hash(),
        signature: Bytes::from(vec![0; 96]),
        bitmap: Bytes::from(vec![1]),
    }
}

pub fn staking_tx(from: u8, nonce: u64, msg: StakeMsg) -> SignedStakingTx {
    let tx = StakingTx {
        msg,
        nonce,
        gas_price: GAS_PRICE,
        gas_limit: 6_000_000,
    };
    let sig = signer(from)
        .sign_hash_sync(&tx.signing_hash(CHAIN_ID))
        .unwrap();
    SignedStakingTx::decode(&tx.encode_signed(CHAIN_ID, &sig), CHAIN_ID).unwrap()
}

pub fn create(from: u8, key_seed: u8) -> StakeMsg {
    let sk = accel::SecretKey::from_ikm(&[key_seed; 32]).unwrap();
    StakeMsg::CreateValidator(CreateValidator {
        validator_address: signer(from).address(),
        description: Description {
            name: format!("validator {from}"),
            ..Default::default()
        },
        commission_rates: CommissionRates {
            rate: Dec::percent(10),
            max_rate: Dec::percent(20),
            max_change_rate: Dec::percent(1),
        },
        min_self_delegation: one(10_000),
        max_total_delegation: one(500_000),
        slot_pub_keys: vec![BlsKey::from(sk.public_key().to_bytes())],
        slot_key_sigs: vec![BlsSig::from(sk.prove_possession().to_bytes())],
        amount: one(20_000),
        transport_key: B256::repeat_byte(from + 1),
        endpoint: format!("10.0.0.{from}:9000"),
    })
}

/// The leader builds the next block from `staking`, commits it, and a second node
/// re-executes and commits it too; both must agree.
pub fn step(
    leader: &ChainStore,
    follower: &ChainStore,
    cfg: &ExecConfig,
    staking: Vec<SignedStakingTx>,
) -> Block {
    step_with(leader, follower, cfg, vec![], staking)
}

/// As [`step`], with EVM transactions first.
pub fn step_with(
    leader: &ChainStore,
    follower: &ChainStore,
    cfg: &ExecConfig,
    txs: Vec<state::exec::SignedTx>,
    staking: Vec<SignedStakingTx>,
) -> Block {
    step_certified(leader, follower, cfg, txs, staking, None)
}

/// As [`step_with`], the block carrying its parent's certificate with signer `bitmap`.
pub fn step_certified(
    leader: &ChainStore,
    follower: &ChainStore,
    cfg: &ExecConfig,
    txs: Vec<state::exec::SignedTx>,
    staking: Vec<SignedStakingTx>,
    bitmap: Option<&[u8]>,
) -> Block {
    let parent = tip(leader);
    let mut t = template(&parent);
    t.last_commit = bitmap.map(|b| CommitCertificate {
        bitmap: Bytes::copy_from_slice(b),
        ..cert_of(&parent)
    });
    let (block, executed) =
        exec::build_with_staking(leader, cfg, &parent, t, txs, staking).unwrap();
    leader
        .commit_executed(&block, Some(&cert(&block)), executed.writes())
        .unwrap();
    let checked = exec::verify(follower, cfg, &tip(follower), &block).unwrap();
    follower
        .commit_executed(&block, Some(&cert(&block)), checked.writes())
        .unwrap();
    assert_eq!(
        leader.staking_state().unwrap(),
        follower.staking_state().unwrap()
    );
    block
}

pub fn balance(store: &ChainStore, a: Address) -> U256 {
    let ro = store.db().tx().unwrap();
    StateReader::new(&ro)
        .account(a)
        .unwrap()
        .map_or(U256::ZERO, |a| a.balance)
}

/// Every account's balance plus everything held by staking (delegations, undelegations and
/// accumulated rewards).
pub fn supply(store: &ChainStore) -> U256 {
    let ro = store.db().tx().unwrap();
    let mut total = U256::ZERO;
    ro.walk::<state::db::Accounts>(&B256::ZERO, |_, a| {
        total += a.balance;
        Ok(true)
    })
    .unwrap();
    let staked: U256 = store
        .staking_state()
        .unwrap()
        .validators()
        .flat_map(|v| &v.delegations)
        .map(|d| d.amount + d.reward + d.undelegating())
        .sum();
    total + staked
}

/// Commit votes of `key_seed`'s BLS key for two different blocks at (number, view).
pub fn double_sign(key_seed: u8, number: u64, view: u64, reporter: Address) -> DoubleSign {
    let sk = accel::SecretKey::from_ikm(&[key_seed; 32]).unwrap();
    let vote = |hash: B256| {
        let req = hsm::SignRequest {
            kind: hsm::MsgKind::Commit,
            chain_id: CHAIN_ID,
            shard: 0,
            number,
            view,
            hash: hash.0,
        };
        SignedVote {
            hash,
            signature: Bytes::from(sk.sign(&hsm::payload(&req)).to_bytes().to_vec()),
        }
    };
    DoubleSign {
        number,
        view,
        keys: vec![BlsKey::from(sk.public_key().to_bytes())],
        first: vote(B256::repeat_byte(0xa1)),
        second: vote(B256::repeat_byte(0xa2)),
        reporter,
    }
}

/// An EVM transaction from `from` to `to` with `input`.
pub fn evm_tx(from: u8, nonce: u64, to: Address, input: Vec<u8>) -> state::exec::SignedTx {
    use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
    use alloy_eips::eip2718::Encodable2718;
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 200_000,
        max_fee_per_gas: 10 * GAS_PRICE,
        max_priority_fee_per_gas: GAS_PRICE,
        to: alloy_primitives::TxKind::Call(to),
        input: input.into(),
        ..Default::default()
    };
    let sig = signer(from).sign_hash_sync(&tx.signature_hash()).unwrap();
    let env: TxEnvelope = tx.into_signed(sig).into();
    state::exec::SignedTx::decode(&env.encoded_2718(), CHAIN_ID).unwrap()
}

/// Epoch 0 on both stores: signer 0 registers validator `v` (10% commission, 20,000 ONE, BLS
/// key seed 1), signer 1 delegates 5,000 ONE to it, and the epoch's last block elects it.
/// Returns (v, the delegator).
pub fn elect_one_validator(
    leader: &ChainStore,
    follower: &ChainStore,
    cfg: &ExecConfig,
) -> (Address, Address) {
    let (v, d) = (signer(0).address(), signer(1).address());
    step(leader, follower, cfg, vec![staking_tx(0, 0, create(0, 1))]);
    let delegate = Delegate {
        delegator_address: d,
        validator_address: v,
        amount: one(5_000),
    };
    step(
        leader,
        follower,
        cfg,
        vec![staking_tx(1, 0, StakeMsg::Delegate(delegate))],
    );
    while tip(leader).number < EPOCH_BLOCKS - 1 {
        step(leader, follower, cfg, vec![]);
    }
    (v, d)
}
