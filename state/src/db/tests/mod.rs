use super::env::{Migration, SCHEMA_VERSION_KEY};
use super::*;
use crate::block::{
    Block, Body, CommitCertificate, Header, EMPTY_ROOT, GAS_LIMIT, HEADER_VERSION,
    MAX_HEADER_VERSION,
};
use alloy_primitives::{Address, Bloom, Bytes, B256};
use proptest::prelude::*;
use std::path::Path;

fn header(number: u64, parent_hash: B256, view: u64) -> Header {
    Header {
        version: HEADER_VERSION,
        parent_hash,
        number,
        epoch: number / 10,
        shard: 0,
        view,
        timestamp_ms: 1_700_000_000_000 + number * 2_000,
        leader: Address::repeat_byte((number % 4) as u8 + 1),
        state_root: EMPTY_ROOT,
        transactions_root: EMPTY_ROOT,
        receipts_root: EMPTY_ROOT,
        logs_bloom: Bloom::ZERO,
        gas_limit: GAS_LIMIT,
        gas_used: 0,
        base_fee: 1_000_000_000,
        extra_data: Bytes::new(),
        vrf: Bytes::new(),
        vdf: Bytes::new(),
        last_commit_view: if number > 1 {
            view.saturating_sub(1)
        } else {
            0
        },
        last_commit_signature: if number > 1 {
            Bytes::from(vec![3u8; 96])
        } else {
            Bytes::new()
        },
        last_commit_bitmap: if number > 1 {
            Bytes::from(vec![0x0f])
        } else {
            Bytes::new()
        },
        v2: None,
    }
}

fn genesis() -> Block {
    Block {
        header: header(0, B256::ZERO, 0),
        body: Body::default(),
    }
}

fn child(parent: &Block, view: u64, txs: Vec<Bytes>) -> Block {
    let mut block = Block {
        header: header(parent.number() + 1, parent.hash(), view),
        body: Body {
            transactions: txs,
            staking_transactions: Vec::new(),
        },
    };
    block.header.transactions_root = block.compute_transactions_root();
    block
}

fn cert_for(block: &Block, bitmap: u8) -> CommitCertificate {
    CommitCertificate {
        number: block.number(),
        view: block.header.view,
        hash: block.hash(),
        signature: Bytes::from(vec![bitmap; 96]),
        bitmap: Bytes::from(vec![bitmap]),
    }
}

/// Genesis followed by `n` blocks.
fn chain(n: u64) -> Vec<Block> {
    let mut blocks = vec![genesis()];
    for i in 1..=n {
        let txs = (0..i % 3)
            .map(|t| Bytes::from(vec![i as u8, t as u8]))
            .collect();
        let b = child(blocks.last().unwrap(), i * 2, txs);
        blocks.push(b);
    }
    blocks
}

fn store_with(dir: &Path, blocks: &[Block]) -> ChainStore {
    let store = ChainStore::open(dir).unwrap();
    store.init_genesis(&blocks[0]).unwrap();
    for b in &blocks[1..] {
        store.insert_block(b, Some(&cert_for(b, 0x0f))).unwrap();
    }
    store
}

/// Entry counts of every table: a cheap fingerprint of "nothing changed".
fn counts(db: &Db) -> Vec<usize> {
    let tx = db.tx().unwrap();
    vec![
        tx.entries::<Headers>().unwrap(),
        tx.entries::<Bodies>().unwrap(),
        tx.entries::<Certificates>().unwrap(),
        tx.entries::<CanonicalHashes>().unwrap(),
        tx.entries::<HeaderNumbers>().unwrap(),
        tx.entries::<Metadata>().unwrap(),
    ]
}

#[test]
fn store_is_send_sync_and_tables_are_listed() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ChainStore>();
    assert_send_sync::<Db>();
    assert_eq!(
        TABLES,
        &[
            "Headers",
            "Bodies",
            "Certificates",
            "CanonicalHashes",
            "HeaderNumbers",
            "Metadata",
            "ConsensusSafety",
            "Accounts",
            "Storage",
            "Bytecodes",
            "Receipts",
            "TxLookup",
            "AccountTrie",
            "StorageTrie",
            "Validators"
        ]
    );
    assert_eq!(Headers::NAME, "Headers");
}

#[test]
fn geometry_grows_on_demand_up_to_one_tebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let geometry = db.env().info().unwrap().geometry();
    assert_eq!(geometry.max_size(), MAX_SIZE);
    assert_eq!(geometry.growth_step(), GROWTH_STEP);
    assert!(
        geometry.current_size() <= GROWTH_STEP,
        "{}",
        geometry.current_size()
    );
    let stat = db.env().stat().unwrap();
    eprintln!(
        "page size {}, current size {}, min {}, shrink {}",
        stat.page_size(),
        geometry.current_size(),
        geometry.min_size(),
        geometry.shrink_threshold()
    );
}

#[test]
fn u64_keys_sort_numerically() {
    let mut keys: Vec<[u8; 8]> = [256u64, 1, 255, u64::MAX, 0, 65_536]
        .iter()
        .map(|k| k.encode_key())
        .collect();
    keys.sort();
    let decoded: Vec<u64> = keys.iter().map(|k| u64::decode_key(k).unwrap()).collect();
    assert_eq!(decoded, vec![0, 1, 255, 256, 65_536, u64::MAX]);
}

#[test]
fn every_table_roundtrips() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let blocks = chain(2);
    let b = &blocks[2];
    let cert = cert_for(b, 7);
    let tx = db.tx_mut().unwrap();
    tx.put::<Headers>(2, &b.header).unwrap();
    tx.put::<Bodies>(2, &b.body).unwrap();
    tx.put::<Certificates>(2, &cert).unwrap();
    tx.put::<CanonicalHashes>(2, &b.hash()).unwrap();
    tx.put::<HeaderNumbers>(b.hash(), &2).unwrap();
    tx.put::<Metadata>("k".to_string(), &vec![1, 2, 3]).unwrap();
    tx.put::<Metadata>("empty".to_string(), &vec![]).unwrap();
    // Reads inside the write transaction see its writes.
    assert_eq!(tx.get::<Headers>(&2).unwrap(), Some(b.header.clone()));
    tx.commit().unwrap();

    let tx = db.tx().unwrap();
    assert_eq!(tx.get::<Headers>(&2).unwrap(), Some(b.header.clone()));
    assert_eq!(tx.get::<Bodies>(&2).unwrap(), Some(b.body.clone()));
    assert_eq!(tx.get::<Certificates>(&2).unwrap(), Some(cert));
    assert_eq!(tx.get::<CanonicalHashes>(&2).unwrap(), Some(b.hash()));
    assert_eq!(tx.get::<HeaderNumbers>(&b.hash()).unwrap(), Some(2));
    assert_eq!(
        tx.get::<Metadata>(&"k".to_string()).unwrap(),
        Some(vec![1, 2, 3])
    );
    assert_eq!(
        tx.get::<Metadata>(&"empty".to_string()).unwrap(),
        Some(vec![])
    );
    assert_eq!(tx.get::<Headers>(&3).unwrap(), None);
    assert_eq!(tx.get::<HeaderNumbers>(&B256::ZERO).unwrap(), None);
    assert_eq!(tx.last::<CanonicalHashes>().unwrap(), Some((2, b.hash())));
    drop(tx);

    let tx = db.tx_mut().unwrap();
    assert!(tx.delete::<Headers>(&2).unwrap());
    assert!(!tx.delete::<Headers>(&2).unwrap());
    tx.commit().unwrap();
    assert_eq!(db.tx().unwrap().get::<Headers>(&2).unwrap(), None);

    // An uncommitted write transaction leaves nothing behind.
    let tx = db.tx_mut().unwrap();
    tx.put::<Headers>(9, &b.header).unwrap();
    drop(tx);
    assert_eq!(db.tx().unwrap().get::<Headers>(&9).unwrap(), None);
}

#[test]
fn hundred_blocks_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(100);
    drop(store_with(dir.path(), &blocks));

    let store = ChainStore::open(dir.path()).unwrap();
    assert_eq!(store.tip().unwrap(), Some((100, blocks[100].hash())));
    for b in &blocks {
        let n = b.number();
        assert_eq!(store.block(n).unwrap().as_ref(), Some(b));
        assert_eq!(store.header(n).unwrap().as_ref(), Some(&b.header));
        assert_eq!(store.canonical_hash(n).unwrap(), Some(b.hash()));
        assert_eq!(store.number_of(&b.hash()).unwrap(), Some(n));
        let expected_cert = (n > 0).then(|| cert_for(b, 0x0f));
        assert_eq!(store.certificate(n).unwrap(), expected_cert);
    }
    assert_eq!(store.block(101).unwrap(), None);
    assert_eq!(store.certificate(101).unwrap(), None);
    // Keeps going after the reopen.
    let next = child(&blocks[100], 500, vec![]);
    store
        .insert_block(&next, Some(&cert_for(&next, 1)))
        .unwrap();
    assert_eq!(store.tip().unwrap(), Some((101, next.hash())));
    assert_eq!(store.db().schema_version().unwrap(), Some(SCHEMA_VERSION));
}

#[test]
fn empty_store_has_no_tip_and_wants_genesis_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChainStore::open(dir.path()).unwrap();
    assert_eq!(store.tip().unwrap(), None);
    let blocks = chain(1);
    let err = store
        .insert_block(&blocks[1], Some(&cert_for(&blocks[1], 1)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            DbError::NotNext {
                number: 1,
                tip: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("genesis"), "{err}");
    // insert_block takes genesis too (without a certificate).
    store.insert_block(&blocks[0], None).unwrap();
    assert_eq!(store.tip().unwrap(), Some((0, blocks[0].hash())));
    assert_eq!(store.certificate(0).unwrap(), None);
}

#[test]
fn refused_blocks_leave_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(5);
    let store = store_with(dir.path(), &blocks[..4]);
    let before = counts(store.db());
    let tip = Some((3, blocks[3].hash()));

    // Gap: block 5 on tip 3.
    let err = store
        .insert_block(&blocks[5], Some(&cert_for(&blocks[5], 1)))
        .unwrap_err();
    assert!(
        matches!(err, DbError::NotNext { number: 5, tip: t, .. } if t == tip),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("block 5")
            && msg.contains("only block 4")
            && msg.contains("nothing was written"),
        "{msg}"
    );

    // Replay of an existing height.
    let err = store
        .insert_block(&blocks[3], Some(&cert_for(&blocks[3], 1)))
        .unwrap_err();
    assert!(matches!(err, DbError::NotNext { number: 3, .. }), "{err:?}");

    // Right number, wrong parent.
    let mut fork = blocks[4].clone();
    fork.header.parent_hash = B256::repeat_byte(0xee);
    let err = store
        .insert_block(&fork, Some(&cert_for(&fork, 1)))
        .unwrap_err();
    assert!(matches!(err, DbError::NotNext { number: 4, .. }), "{err:?}");

    // Certificate for another block, or a view before the header's, or none at all.
    let err = store
        .insert_block(&blocks[4], Some(&cert_for(&blocks[3], 1)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            DbError::CertificateMismatch {
                number: 4,
                cert_number: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let mut wrong_hash = cert_for(&blocks[4], 1);
    wrong_hash.hash = B256::repeat_byte(1);
    assert!(matches!(
        store
            .insert_block(&blocks[4], Some(&wrong_hash))
            .unwrap_err(),
        DbError::CertificateMismatch { .. }
    ));
    let mut wrong_view = cert_for(&blocks[4], 1);
    assert!(
        wrong_view.view > 0,
        "the test chain proposes block 4 after view 0"
    );
    wrong_view.view -= 1;
    assert!(matches!(
        store
            .insert_block(&blocks[4], Some(&wrong_view))
            .unwrap_err(),
        DbError::CertificateMismatch { .. }
    ));
    let err = store.insert_block(&blocks[4], None).unwrap_err();
    assert!(
        matches!(err, DbError::MissingCertificate { number: 4 }),
        "{err:?}"
    );

    // A header version the store could not read back.
    let mut newer = blocks[4].clone();
    newer.header.version = MAX_HEADER_VERSION + 1;
    newer.header.v2 = Some(crate::block::HeaderV2::default());
    let err = store
        .insert_block(&newer, Some(&cert_for(&newer, 1)))
        .unwrap_err();
    assert!(
        matches!(err, DbError::InvalidBlock { number: 4, .. }),
        "{err:?}"
    );

    assert_eq!(counts(store.db()), before);
    assert_eq!(store.tip().unwrap(), tip);
    assert_eq!(store.number_of(&fork.hash()).unwrap(), None);
    assert_eq!(store.header(4).unwrap(), None);

    // The right block still goes in.
    store
        .insert_block(&blocks[4], Some(&cert_for(&blocks[4], 1)))
        .unwrap();
    assert_eq!(store.tip().unwrap(), Some((4, blocks[4].hash())));
}

#[test]
fn genesis_is_idempotent_and_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(2);
    let store = store_with(dir.path(), &blocks);
    store.init_genesis(&blocks[0]).unwrap();
    assert_eq!(store.tip().unwrap(), Some((2, blocks[2].hash())));
    drop(store);

    let store = ChainStore::open(dir.path()).unwrap();
    let mut other = genesis();
    other.header.extra_data = Bytes::from_static(b"another network");
    let before = counts(store.db());
    let err = store.init_genesis(&other).unwrap_err();
    match &err {
        DbError::GenesisMismatch {
            stored, expected, ..
        } => {
            assert_eq!(*stored, blocks[0].hash());
            assert_eq!(*expected, other.hash());
        }
        e => panic!("{e:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("another network") && msg.contains("--reset") && msg.contains("--data-dir"),
        "{msg}"
    );
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert_eq!(counts(store.db()), before);

    let not_genesis = &blocks[1];
    assert!(matches!(
        store.init_genesis(not_genesis),
        Err(DbError::InvalidBlock { number: 1, .. })
    ));
}

#[test]
fn certificates_can_be_upgraded_for_stored_blocks_only() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(3);
    let store = store_with(dir.path(), &blocks);
    let better = cert_for(&blocks[2], 0xff);
    store.upgrade_certificate(&better).unwrap();
    assert_eq!(store.certificate(2).unwrap(), Some(better));
    assert_eq!(
        store.certificate(3).unwrap(),
        Some(cert_for(&blocks[3], 0x0f))
    );

    let mut wrong = cert_for(&blocks[2], 0xff);
    wrong.hash = blocks[3].hash();
    let err = store.upgrade_certificate(&wrong).unwrap_err();
    assert!(
        matches!(err, DbError::CertificateMismatch { number: 2, .. }),
        "{err:?}"
    );

    let mut unknown = cert_for(&blocks[3], 1);
    unknown.number = 9;
    let err = store.upgrade_certificate(&unknown).unwrap_err();
    assert!(
        matches!(
            err,
            DbError::UnknownBlock {
                number: 9,
                tip: Some((3, _))
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("insert the block first"), "{err}");
    assert_eq!(store.certificate(9).unwrap(), None);
}

#[test]
fn metadata_roundtrips_and_schema_key_is_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChainStore::open(dir.path()).unwrap();
    assert_eq!(store.get_meta("x").unwrap(), None);
    store.put_meta("x", b"hello").unwrap();
    store.put_meta("x", b"again").unwrap();
    assert_eq!(store.get_meta("x").unwrap(), Some(b"again".to_vec()));
    let err = store
        .put_meta(SCHEMA_VERSION_KEY, &[0, 0, 0, 9])
        .unwrap_err();
    assert!(
        matches!(err, DbError::ReservedMetadataKey { .. }),
        "{err:?}"
    );
    assert_eq!(
        store.get_meta(SCHEMA_VERSION_KEY).unwrap(),
        Some(SCHEMA_VERSION.to_be_bytes().to_vec())
    );
}

prop_compose! {
    fn arb_steps()(steps in prop::collection::vec(
        (1u64..5, prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..4), any::<u8>()),
        0..24,
    )) -> Vec<(u64, Vec<Vec<u8>>, u8)> {
        steps
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_block_sequences_roundtrip(steps in arb_steps(), extra in prop::collection::vec(any::<u8>(), 0..32)) {
        let dir = tempfile::tempdir().unwrap();
        let mut g = genesis();
        g.header.extra_data = Bytes::from(extra);
        let mut blocks = vec![g];
        let mut certs = vec![None];
        let mut view = 0;
        for (dv, txs, bitmap) in steps {
            view += dv;
            let b = child(blocks.last().unwrap(), view, txs.into_iter().map(Bytes::from).collect());
            certs.push(Some(cert_for(&b, bitmap)));
            blocks.push(b);
        }
        {
            let store = ChainStore::open(dir.path()).unwrap();
            store.init_genesis(&blocks[0]).unwrap();
            for (b, c) in blocks.iter().zip(&certs).skip(1) {
                store.insert_block(b, c.as_ref()).unwrap();
            }
        }
        let store = ChainStore::open(dir.path()).unwrap();
        let last = blocks.last().unwrap();
        prop_assert_eq!(store.tip().unwrap(), Some((last.number(), last.hash())));
        for (b, c) in blocks.iter().zip(&certs) {
            prop_assert_eq!(store.block(b.number()).unwrap(), Some(b.clone()));
            prop_assert_eq!(&store.certificate(b.number()).unwrap(), c);
            prop_assert_eq!(store.number_of(&b.hash()).unwrap(), Some(b.number()));
            prop_assert_eq!(store.canonical_hash(b.number()).unwrap(), Some(b.hash()));
        }
        prop_assert_eq!(counts(store.db())[..5].to_vec(), vec![blocks.len(), blocks.len(), blocks.len() - 1, blocks.len(), blocks.len()]);
    }
}

mod corruption;
mod locking;
mod schema;
