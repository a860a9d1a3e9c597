//! Damaged values and headers are reported as corruption, never panicked on.

use super::*;

#[test]
fn corrupted_values_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(6);
    let store = store_with(dir.path(), &blocks);
    {
        let tx = store.db().tx_mut().unwrap();
        tx.put_raw::<Headers>(&5, b"\xde\xad\xbe\xef garbage")
            .unwrap();
        // Valid RLP with a trailing byte.
        let mut trailing = alloy_rlp::encode(&blocks[4].body);
        trailing.push(0);
        tx.put_raw::<Bodies>(&4, &trailing).unwrap();
        tx.put_raw::<HeaderNumbers>(&blocks[3].hash(), &[1, 2, 3])
            .unwrap();
        tx.put_raw::<Certificates>(&2, &[]).unwrap();
        tx.commit().unwrap();
    }
    let err = store.header(5).unwrap_err();
    match &err {
        DbError::Corrupt { table, key, .. } => {
            assert_eq!(*table, "Headers");
            assert_eq!(key, "5");
        }
        e => panic!("{e:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("table Headers, key 5") && msg.contains("backup"),
        "{msg}"
    );
    assert!(matches!(
        store.block(5),
        Err(DbError::Corrupt {
            table: "Headers",
            ..
        })
    ));
    assert!(matches!(
        store.block(4),
        Err(DbError::Corrupt {
            table: "Bodies",
            ..
        })
    ));
    assert!(matches!(
        store.number_of(&blocks[3].hash()),
        Err(DbError::Corrupt {
            table: "HeaderNumbers",
            ..
        })
    ));
    assert!(matches!(
        store.certificate(2),
        Err(DbError::Corrupt {
            table: "Certificates",
            ..
        })
    ));
    assert_eq!(
        store
            .db()
            .tx()
            .unwrap()
            .get_raw::<Headers>(&5)
            .unwrap()
            .unwrap()[..4],
        [0xde, 0xad, 0xbe, 0xef]
    );
    // Intact entries still read fine.
    assert_eq!(store.block(6).unwrap().as_ref(), Some(&blocks[6]));

    // A missing body under a stored header, and a malformed key at the tip.
    {
        let tx = store.db().tx_mut().unwrap();
        tx.delete::<Bodies>(&6).unwrap();
        tx.commit().unwrap();
    }
    assert!(matches!(
        store.block(6),
        Err(DbError::Corrupt {
            table: "Bodies",
            ..
        })
    ));
    {
        let db = store.db();
        let tx = db.tx_mut().unwrap();
        // A 9-byte key sorts after every 8-byte key that shares its prefix.
        struct Raw;
        impl Table for Raw {
            const NAME: &'static str = "CanonicalHashes";
            type Key = String;
            type Value = Vec<u8>;
        }
        tx.put::<Raw>(
            "\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}".to_string(),
            &vec![0; 32],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let err = store.tip().unwrap_err();
    assert!(
        matches!(
            err,
            DbError::Corrupt {
                table: "CanonicalHashes",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("expected 8 bytes"), "{err}");
}

#[test]
fn stored_header_of_unknown_version_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut h = genesis().header;
    h.version = 9;
    h.v2 = Some(crate::block::HeaderV2::default());
    let tx = db.tx_mut().unwrap();
    tx.put_raw::<Headers>(&0, &alloy_rlp::encode(&h)).unwrap();
    tx.commit().unwrap();
    let err = db.tx().unwrap().get::<Headers>(&0).unwrap_err();
    assert!(
        matches!(
            err,
            DbError::Corrupt {
                table: "Headers",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("version 9"), "{err}");
}
