//! Schema versions: stamping, refusing newer or pre-v2 data, migrations in order, and the
//! safety record's table.

use super::*;

#[test]
fn fresh_database_gets_the_current_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("a/b")).unwrap();
    assert_eq!(db.schema_version().unwrap(), Some(SCHEMA_VERSION));
}

fn write_version(path: &Path, version: u32) {
    let db = Db::open_raw(path).unwrap();
    let tx = db.tx_mut().unwrap();
    env::write_schema_version(&tx, version).unwrap();
    tx.commit().unwrap();
}

/// A chain written before consensus v2 (schema 2, headers without `last_commit_view`) is
/// refused with advice, not misread.
#[test]
fn a_pre_v2_chain_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    drop(ChainStore::open(dir.path()).unwrap());
    write_version(dir.path(), 2);
    let err = ChainStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, DbError::NoMigration { from: 2, to: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--reset"), "{err}");
}

#[test]
fn newer_schema_is_refused_with_upgrade_advice() {
    let dir = tempfile::tempdir().unwrap();
    drop(ChainStore::open(dir.path()).unwrap());
    write_version(dir.path(), SCHEMA_VERSION + 1);
    let err = ChainStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, DbError::SchemaTooNew { found, supported: SCHEMA_VERSION, .. } if found == SCHEMA_VERSION + 1)
    );
    let msg = err.to_string();
    assert!(msg.contains("newer harmony-appliance version"), "{msg}");
    assert!(msg.contains("upgrade the binary"), "{msg}");
    assert!(msg.contains("restore a backup"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    // Refusing did not touch the version.
    let db = Db::open_raw(dir.path()).unwrap();
    assert_eq!(db.schema_version().unwrap(), Some(SCHEMA_VERSION + 1));
}

#[test]
fn newer_schema_is_refused_before_anything_is_written() {
    // A database from a "newer node" whose schema has only a Metadata table.
    let dir = tempfile::tempdir().unwrap();
    let options = || libmdbx::DatabaseOptions {
        max_tables: Some(8),
        ..Default::default()
    };
    {
        let env =
            libmdbx::Database::<libmdbx::NoWriteMap>::open_with_options(dir.path(), options())
                .unwrap();
        let tx = env.begin_rw_txn().unwrap();
        let t = tx
            .create_table(Some("Metadata"), Default::default())
            .unwrap();
        tx.put(
            &t,
            SCHEMA_VERSION_KEY,
            7u32.to_be_bytes(),
            libmdbx::WriteFlags::UPSERT,
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let err = ChainStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, DbError::SchemaTooNew { found: 7, .. }),
        "{err:?}"
    );
    let env =
        libmdbx::Database::<libmdbx::NoWriteMap>::open_with_options(dir.path(), options()).unwrap();
    let tx = env.begin_ro_txn().unwrap();
    assert!(matches!(
        tx.open_table(Some("Headers")),
        Err(libmdbx::Error::NotFound)
    ));
}

fn mig_0_to_1(tx: &RwTx<'_>) -> Result<(), DbError> {
    // Sees the database at version 0 and rewrites data, like a real migration would.
    assert_eq!(
        tx.get::<Metadata>(&SCHEMA_VERSION_KEY.to_string())?,
        Some(0u32.to_be_bytes().to_vec())
    );
    let old = tx
        .get::<Metadata>(&"old_name".to_string())?
        .unwrap_or_default();
    tx.delete::<Metadata>(&"old_name".to_string())?;
    tx.put::<Metadata>("new_name".to_string(), &old)?;
    let mut log = tx.get::<Metadata>(&"log".to_string())?.unwrap_or_default();
    log.push(1);
    tx.put::<Metadata>("log".to_string(), &log)
}

fn mig_1_to_2(tx: &RwTx<'_>) -> Result<(), DbError> {
    let mut log = tx.get::<Metadata>(&"log".to_string())?.unwrap_or_default();
    log.push(2);
    tx.put::<Metadata>("log".to_string(), &log)
}

fn mig_fails(tx: &RwTx<'_>) -> Result<(), DbError> {
    tx.put::<Metadata>("half_done".to_string(), &vec![1])?;
    Err(DbError::InvalidBlock {
        number: 0,
        reason: "test migration failure".into(),
    })
}

fn meta(db: &Db, key: &str) -> Option<Vec<u8>> {
    db.tx().unwrap().get::<Metadata>(&key.to_string()).unwrap()
}

#[test]
fn older_schema_is_migrated_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open_raw(dir.path()).unwrap();
        let tx = db.tx_mut().unwrap();
        env::write_schema_version(&tx, 0).unwrap();
        tx.put::<Metadata>("old_name".to_string(), &b"v".to_vec())
            .unwrap();
        tx.commit().unwrap();
    }
    // Registered out of order on purpose: steps are chosen by `from`, not by position.
    let migrations = [
        Migration {
            from: 1,
            run: mig_1_to_2,
        },
        Migration {
            from: 0,
            run: mig_0_to_1,
        },
    ];
    let db = Db::open_with_migrations(dir.path(), 2, &migrations).unwrap();
    assert_eq!(db.schema_version().unwrap(), Some(2));
    assert_eq!(meta(&db, "log"), Some(vec![1, 2]));
    assert_eq!(meta(&db, "new_name"), Some(b"v".to_vec()));
    assert_eq!(meta(&db, "old_name"), None);
    drop(db);
    // Reopening at the same version runs nothing again.
    let db = Db::open_with_migrations(dir.path(), 2, &migrations).unwrap();
    assert_eq!(meta(&db, "log"), Some(vec![1, 2]));
}

#[test]
fn single_registered_migration_runs_to_current_version() {
    let dir = tempfile::tempdir().unwrap();
    write_version(dir.path(), 0);
    let db = Db::open_with_migrations(
        dir.path(),
        1,
        &[Migration {
            from: 0,
            run: mig_0_to_1,
        }],
    )
    .unwrap();
    assert_eq!(db.schema_version().unwrap(), Some(1));
    assert_eq!(meta(&db, "log"), Some(vec![1]));
}

#[test]
fn missing_or_failing_migration_leaves_the_version() {
    let dir = tempfile::tempdir().unwrap();
    write_version(dir.path(), 0);
    // The released binary has no migration from 0.
    let err = ChainStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, DbError::NoMigration { from: 0, to: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--reset"), "{err}");

    // Step 0 → 1 succeeds, step 1 → 2 fails: the database stays at 1, the failed step's writes
    // are rolled back.
    let migrations = [
        Migration {
            from: 0,
            run: mig_0_to_1,
        },
        Migration {
            from: 1,
            run: mig_fails,
        },
    ];
    let err = Db::open_with_migrations(dir.path(), 2, &migrations).unwrap_err();
    assert!(
        matches!(err, DbError::MigrationFailed { from: 1, to: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("test migration failure"), "{err}");
    let db = Db::open_raw(dir.path()).unwrap();
    assert_eq!(db.schema_version().unwrap(), Some(1));
    assert_eq!(meta(&db, "half_done"), None);
    assert_eq!(meta(&db, "log"), Some(vec![1]));
}

#[test]
fn data_without_schema_version_is_corrupt_not_stamped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open_raw(dir.path()).unwrap();
        let tx = db.tx_mut().unwrap();
        tx.put::<CanonicalHashes>(0, &B256::ZERO).unwrap();
        tx.commit().unwrap();
    }
    let err = ChainStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            DbError::Corrupt {
                table: "Metadata",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("CanonicalHashes"), "{err}");
}

/// A stand-in for consensus's safety record (any RLP type is stored the same way).
#[derive(Debug, PartialEq, alloy_rlp::RlpEncodable, alloy_rlp::RlpDecodable)]
struct Rec {
    number: u64,
    view: u64,
}

#[test]
fn schema_3_safety_record_moves_to_its_table() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open_raw(dir.path()).unwrap();
        let tx = db.tx_mut().unwrap();
        env::write_schema_version(&tx, 3).unwrap();
        tx.put::<Metadata>(
            env::LEGACY_SAFETY_KEY.to_string(),
            &alloy_rlp::encode(Rec { number: 7, view: 2 }),
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let store = ChainStore::open(dir.path()).unwrap();
    assert_eq!(store.db().schema_version().unwrap(), Some(SCHEMA_VERSION));
    assert_eq!(store.get_meta(env::LEGACY_SAFETY_KEY).unwrap(), None);
    let record: Option<Rec> = store.consensus_safety(0).unwrap();
    assert_eq!(record, Some(Rec { number: 7, view: 2 }));
}

#[test]
fn consensus_safety_round_trips_and_refuses_damaged_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChainStore::open(dir.path()).unwrap();
    assert_eq!(store.consensus_safety::<Rec>(0).unwrap(), None);
    store
        .put_consensus_safety(0, &Rec { number: 9, view: 4 })
        .unwrap();
    assert_eq!(
        store.consensus_safety::<Rec>(0).unwrap(),
        Some(Rec { number: 9, view: 4 })
    );
    let tx = store.db().tx_mut().unwrap();
    tx.put::<ConsensusSafety>(0, &vec![0xc2, 0x01]).unwrap();
    tx.commit().unwrap();
    let err = store.consensus_safety::<Rec>(0).unwrap_err();
    assert!(
        matches!(
            err,
            DbError::Corrupt {
                table: "ConsensusSafety",
                ..
            }
        ),
        "{err:?}"
    );
}
