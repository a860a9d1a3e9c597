//! The incremental account-trie root against the full recomputation, over random blocks of
//! inserts, updates and deletions (deletions collapse branches, the hard case), including
//! the first block on an empty trie and a trie emptied again.

use alloy_primitives::{Address, B256, U256};
use proptest::prelude::*;
use state::db::root;
use state::db::ChainStore;
use state::exec::{AccountInfoLite, StateChanges, EMPTY_CODE_HASH};

fn address(i: u16) -> Address {
    let mut a = [0u8; 20];
    a[18..].copy_from_slice(&i.to_be_bytes());
    Address::from(a)
}

/// One block: (account index, new balance or `None` to delete, whether to touch storage).
type Block = Vec<(u16, Option<u64>, Option<(u8, u8)>)>;

fn changes(block: &Block) -> StateChanges {
    let mut c = StateChanges::default();
    for (i, balance, slot) in block {
        let a = address(*i);
        c.accounts.insert(
            a,
            balance.map(|b| AccountInfoLite {
                nonce: 1,
                balance: U256::from(b),
                code_hash: EMPTY_CODE_HASH,
            }),
        );
        if let (Some((k, v)), Some(_)) = (slot, balance) {
            c.storage
                .entry(a)
                .or_default()
                .insert(U256::from(*k), U256::from(*v));
        }
    }
    c
}

fn blocks(accounts: u16) -> impl Strategy<Value = Vec<Block>> {
    prop::collection::vec(
        prop::collection::vec(
            (
                0..accounts,
                prop::option::weighted(0.7, 1u64..1_000_000),
                prop::option::of((0u8..48, 0u8..3)),
            ),
            1..24,
        ),
        1..10,
    )
}

fn check(blocks: Vec<Block>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = ChainStore::open(dir.path()).unwrap();
    for (n, block) in blocks.iter().enumerate() {
        let tx = store.db().tx_mut().unwrap();
        let incremental = root::apply_changes(&tx, &changes(block)).unwrap();
        let full = root::state_root(&tx).unwrap();
        prop_assert_eq!(incremental, full, "block {}: {:?}", n, block);
        // Every cached storage root equals the one recomputed from all of the slots.
        let mut accounts = Vec::new();
        tx.walk::<state::db::Accounts>(&B256::ZERO, |hashed, acc| {
            accounts.push((hashed, acc.storage_root));
            Ok(true)
        })
        .unwrap();
        for (hashed, cached) in accounts {
            prop_assert_eq!(
                cached,
                root::storage_root(&tx, hashed).unwrap(),
                "block {}",
                n
            );
        }
        tx.commit().unwrap();
    }
    Ok(())
}

fn cases(default: u32) -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("TRIE_PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

proptest! {
    // Small tries collapse and regrow branches often: many cases, each cheap. (Leaving stale
    // branch nodes behind after a rebuild was caught within 2,000 cases, not within 64.)
    #![proptest_config(cases(512))]

    #[test]
    fn incremental_root_equals_the_full_walk_few_accounts(b in blocks(6)) {
        check(b)?;
    }
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn incremental_root_equals_the_full_walk_many_accounts(b in blocks(400)) {
        check(b)?;
    }
}

/// One contract whose storage is written, cleared and rewritten across blocks.
fn storage_blocks() -> impl Strategy<Value = Vec<Vec<(u16, u8)>>> {
    prop::collection::vec(prop::collection::vec((0u16..300, 0u8..3), 1..40), 1..12)
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn incremental_storage_root_equals_the_full_walk(blocks in storage_blocks()) {
        let dir = tempfile::tempdir().unwrap();
        let store = ChainStore::open(dir.path()).unwrap();
        let contract = address(7);
        let hashed = alloy_primitives::keccak256(contract);
        for (n, writes) in blocks.iter().enumerate() {
            let mut c = StateChanges::default();
            c.accounts.insert(
                contract,
                Some(AccountInfoLite { nonce: 1, balance: U256::from(1), code_hash: EMPTY_CODE_HASH }),
            );
            let slots = c.storage.entry(contract).or_default();
            for (k, v) in writes {
                slots.insert(U256::from(*k), U256::from(*v));
            }
            let tx = store.db().tx_mut().unwrap();
            root::apply_changes(&tx, &c).unwrap();
            let cached = tx.get::<state::db::Accounts>(&hashed).unwrap().unwrap().storage_root;
            prop_assert_eq!(cached, root::storage_root(&tx, hashed).unwrap(), "block {}", n);
            tx.commit().unwrap();
        }
    }
}

#[test]
fn emptied_and_refilled() {
    let all: Block = (0..50).map(|i| (i, Some(5), None)).collect();
    let none: Block = (0..50).map(|i| (i, None, None)).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = ChainStore::open(dir.path()).unwrap();
    for block in [&all, &none, &all] {
        let tx = store.db().tx_mut().unwrap();
        let r = root::apply_changes(&tx, &changes(block)).unwrap();
        assert_eq!(r, root::state_root(&tx).unwrap());
        tx.commit().unwrap();
    }
    let tx = store.db().tx().unwrap();
    assert_ne!(root::state_root(&tx).unwrap(), B256::ZERO);
}
