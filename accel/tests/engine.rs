//! Engine behaviour across backends: quorum verification from wire bytes, batch and aggregate
//! verification, key derivation. `reference` is the oracle every backend must match.

use accel::{
    encode_vote, AggregatePublicKey, AggregateSignature, BatchItem, BlsError, Engine, PublicKey,
    QuorumPolicy, SecretKey, Signature, VoteStatus, WireVote,
};
use proptest::prelude::*;
use std::sync::Arc;

fn key(i: usize) -> SecretKey {
    let mut ikm = [9u8; 32];
    ikm[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SecretKey::from_ikm(&ikm).unwrap()
}

fn cpu(threads: usize) -> Engine {
    Engine::cpu(Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap(),
    ))
}

/// The device backend with its kernels run on the host (ADR 0023).
fn device_twin() -> Engine {
    Engine::device_twin(Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    ))
}

fn committee(n: usize) -> (Vec<SecretKey>, Vec<PublicKey>) {
    let sks: Vec<_> = (0..n).map(key).collect();
    let pks = sks.iter().map(|k| k.public_key()).collect();
    (sks, pks)
}

#[test]
fn quorum_classifies_every_kind_of_bad_vote() {
    let (sks, pks) = committee(12);
    let msg = b"payload";
    let mut frames: Vec<Vec<u8>> = (0..12)
        .map(|i| encode_vote(i as u32, &sks[i].sign(msg)).to_vec())
        .collect();
    // 3: signed another payload; 5: compressed encoding (accepted); 7: garbage bytes;
    // 9: signed by the wrong key; then an unknown signer and a duplicate of 1.
    frames[3] = encode_vote(3, &sks[3].sign(b"other")).to_vec();
    let mut compressed = 5u32.to_be_bytes().to_vec();
    compressed.extend_from_slice(&sks[5].sign(msg).to_bytes());
    frames[5] = compressed;
    frames[7][10] ^= 0x55;
    frames[9] = encode_vote(9, &sks[10].sign(msg)).to_vec();
    frames.push(encode_vote(40, &sks[0].sign(msg)).to_vec());
    frames.push(encode_vote(1, &sks[1].sign(msg)).to_vec());
    let votes: Vec<WireVote> = frames.iter().map(|f| WireVote::parse(f).unwrap()).collect();

    let want_valid: Vec<bool> = (0..14).map(|i| i < 12 && ![3, 7, 9].contains(&i)).collect();
    for engine in [Engine::reference(), cpu(1), cpu(2), device_twin()] {
        for each in [false, true] {
            let out = engine.verify_quorum(
                msg,
                &pks,
                &votes,
                QuorumPolicy {
                    subgroup_check_each: each,
                },
            );
            assert_eq!(out.valid(), want_valid, "{engine:?} each={each}");
            assert_eq!(out.status[3], VoteStatus::Invalid);
            assert!(matches!(out.status[7], VoteStatus::Malformed(_)));
            assert_eq!(out.status[9], VoteStatus::Invalid);
            assert_eq!(out.status[12], VoteStatus::UnknownSigner);
            assert_eq!(out.status[13], VoteStatus::Duplicate);
            let signers: Vec<PublicKey> = out.signers.iter().map(|&s| pks[s as usize]).collect();
            assert_eq!(signers.len(), 9);
            let agg = out.aggregate.expect("an aggregate of the valid votes");
            assert!(agg.subgroup_check());
            assert!(engine.verify_aggregate(msg, &signers, &agg));
        }
    }
}

#[test]
fn quorum_with_no_valid_vote_has_no_aggregate() {
    let (sks, pks) = committee(3);
    let frames: Vec<_> = (0..3)
        .map(|i| encode_vote(i as u32, &sks[i].sign(b"x")))
        .collect();
    let votes: Vec<_> = frames.iter().map(|f| WireVote::parse(f).unwrap()).collect();
    let out = cpu(2).verify_quorum(b"y", &pks, &votes, QuorumPolicy::default());
    assert_eq!(out.valid(), vec![false; 3]);
    assert!(out.aggregate.is_none() && out.signers.is_empty());
    assert!(matches!(
        WireVote::parse(&[1, 2]),
        Err(BlsError::Length { .. })
    ));
}

#[test]
fn batch_and_aggregate_verify_agree_across_backends() {
    let (sks, pks) = committee(9);
    let msgs: Vec<Vec<u8>> = (0..9)
        .map(|i| format!("message {i}").into_bytes())
        .collect();
    let sigs: Vec<Signature> = sks.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let items = |sigs: &[Signature]| -> Vec<(PublicKey, Vec<u8>, Signature)> {
        (0..9).map(|i| (pks[i], msgs[i].clone(), sigs[i])).collect()
    };
    let good = items(&sigs);
    let mut bad_sigs = sigs.clone();
    bad_sigs.swap(2, 6);
    let bad = items(&bad_sigs);
    let msg_refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let agg = AggregateSignature::aggregate(&sigs).unwrap().to_signature();
    for engine in [Engine::reference(), cpu(1), cpu(2), device_twin()] {
        let b = |v: &[(PublicKey, Vec<u8>, Signature)]| {
            let items: Vec<BatchItem> = v
                .iter()
                .map(|(p, m, s)| BatchItem {
                    public_key: p,
                    message: m,
                    signature: s,
                })
                .collect();
            engine.batch_verify(&items)
        };
        assert!(b(&good), "{engine:?}");
        assert!(!b(&bad), "{engine:?}");
        assert!(!engine.batch_verify(&[]));
        assert!(engine.aggregate_verify(&pks, &msg_refs, &agg));
        let mut wrong = msg_refs.clone();
        wrong[4] = b"tampered";
        assert!(!engine.aggregate_verify(&pks, &wrong, &agg));
        assert!(!engine.aggregate_verify(&pks[..8], &msg_refs, &agg));
        assert!(!engine.aggregate_verify(&[], &[], &agg));
        let same = AggregateSignature::aggregate(
            sks.iter().map(|k| k.sign(b"m")).collect::<Vec<_>>().iter(),
        )
        .unwrap()
        .to_signature();
        assert!(engine.fast_aggregate_verify(&pks, b"m", &same));
        assert!(!engine.fast_aggregate_verify(&pks[1..], b"m", &same));
    }
}

#[test]
fn encodings_roundtrip_and_are_checked() {
    let sk = key(1);
    let pk = sk.public_key();
    let sig = sk.sign(b"m");
    assert_eq!(
        PublicKey::from_uncompressed(&pk.to_uncompressed()).unwrap(),
        pk
    );
    assert_eq!(PublicKey::decode(&pk.to_uncompressed()).unwrap(), pk);
    assert_eq!(
        Signature::from_uncompressed(&sig.to_uncompressed()).unwrap(),
        sig
    );
    assert_eq!(Signature::decode_checked(&sig.to_bytes()).unwrap(), sig);
    let mut off_curve = sig.to_uncompressed();
    off_curve[191] ^= 1;
    assert!(Signature::from_uncompressed(&off_curve).is_err());
    let mut bad_pk = pk.to_uncompressed();
    bad_pk[95] ^= 1;
    assert!(PublicKey::from_uncompressed(&bad_pk).is_err());
    assert!(matches!(
        Signature::from_uncompressed(&[0u8; 100]),
        Err(BlsError::Length { expected: 192, .. })
    ));
    // The identity decodes as a G1 point but is not a public key.
    let mut inf = [0u8; 48];
    inf[0] = 0xc0;
    assert!(accel::decode_g1_point(&inf).is_ok());
    assert!(!PublicKey::key_validate(&inf));
    let apk = AggregatePublicKey::aggregate([&pk])
        .unwrap()
        .to_public_key();
    assert!(PublicKey::key_validate(&apk.to_bytes()));
}

#[test]
fn eip2333_test_case_0() {
    // EIP-2333, test case 0.
    let seed = hex::decode(
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
    )
    .unwrap();
    let dec = |s: &str| {
        let n = rug::Integer::from_str_radix(s, 10).unwrap();
        let mut b = n.to_digits::<u8>(rug::integer::Order::Msf);
        while b.len() < 32 {
            b.insert(0, 0);
        }
        b
    };
    let master = SecretKey::derive_master_eip2333(&seed).unwrap();
    assert_eq!(
        master.to_bytes().to_vec(),
        dec("6083874454709270928345386274498605044986640685124978867557563392430687146096")
    );
    assert_eq!(
        master.derive_child_eip2333(0).to_bytes().to_vec(),
        dec("20397789859736650942317412262472558107875392172444076792671091975210932703118")
    );
    assert!(SecretKey::derive_master_eip2333(&seed[..31]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any mix of good, wrongly signed and corrupted votes: cpu equals reference.
    #[test]
    fn cpu_matches_reference_on_quorums(
        kinds in proptest::collection::vec(0u8..6, 1..20),
        threads in 1usize..3,
    ) {
        let (sks, pks) = committee(kinds.len());
        let msg = b"vote";
        let frames: Vec<Vec<u8>> = kinds.iter().enumerate().map(|(i, k)| {
            let s = i as u32;
            match k {
                0 => encode_vote(s, &sks[i].sign(b"nope")).to_vec(),
                1 => { let mut f = encode_vote(s, &sks[i].sign(msg)).to_vec(); f[50] ^= 1; f }
                2 => { let mut f = s.to_be_bytes().to_vec(); f.extend_from_slice(&sks[i].sign(msg).to_bytes()); f }
                _ => encode_vote(s, &sks[i].sign(msg)).to_vec(),
            }
        }).collect();
        let votes: Vec<WireVote> = frames.iter().map(|f| WireVote::parse(f).unwrap()).collect();
        let r = Engine::reference().verify_quorum(msg, &pks, &votes, QuorumPolicy::default());
        let c = cpu(threads).verify_quorum(msg, &pks, &votes, QuorumPolicy::default());
        prop_assert_eq!(&r.status, &c.status);
        prop_assert_eq!(&r.signers, &c.signers);
        prop_assert_eq!(r.aggregate, c.aggregate);
        let want: Vec<bool> = kinds.iter().map(|k| *k >= 2).collect();
        prop_assert_eq!(r.valid(), want);
    }

    /// Batch verification of any size, with at most one bad triple: cpu equals reference.
    #[test]
    fn cpu_matches_reference_on_batches(n in 1usize..14, bad in proptest::option::of(0usize..14), threads in 1usize..4) {
        let (sks, pks) = committee(n);
        let msgs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i + 1]).collect();
        let sigs: Vec<Signature> = (0..n)
            .map(|i| sks[i].sign(if Some(i) == bad { b"forged".as_slice() } else { &msgs[i] }))
            .collect();
        let items: Vec<BatchItem> = (0..n)
            .map(|i| BatchItem { public_key: &pks[i], message: &msgs[i], signature: &sigs[i] })
            .collect();
        let want = bad.is_none_or(|b| b >= n);
        prop_assert_eq!(Engine::reference().batch_verify(&items), want);
        prop_assert_eq!(cpu(threads).batch_verify(&items), want);
        let twin = device_twin();
        prop_assert_eq!(twin.batch_verify(&items), want);
        prop_assert_eq!(twin.device_fallbacks(), 0);
    }

    /// verify_votes (decoded votes): cpu equals reference.
    #[test]
    fn cpu_matches_reference_on_votes(bad in proptest::collection::vec(any::<bool>(), 1..16)) {
        let votes: Vec<accel::Vote> = bad.iter().enumerate().map(|(i, b)| accel::Vote {
            public_key: key(i).public_key(),
            signature: key(i).sign(if *b { b"x".as_slice() } else { b"m".as_slice() }),
        }).collect();
        prop_assert_eq!(
            Engine::reference().verify_votes(b"m", &votes),
            cpu(2).verify_votes(b"m", &votes)
        );
    }
}
