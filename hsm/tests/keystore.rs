//! EIP-2335 keystores: the EIP's own test vectors, round trips and bad input.

use accel::SecretKey;
use hsm::keystore::{normalize_password, Kdf};
use hsm::{Keystore, KeystoreError, KeystoreSigner, MsgKind, SignRequest, Signer};

// Test vectors copied from the EIP-2335 text (https://eips.ethereum.org/EIPS/eip-2335).
const PASSWORD: &str = "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑";
const SECRET: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
const PUBKEY: &str = "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07";

const SCRYPT_VECTOR: &str = r#"{
    "crypto": {
        "kdf": {
            "function": "scrypt",
            "params": {
                "dklen": 32,
                "n": 262144,
                "p": 1,
                "r": 8,
                "salt": "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"
            },
            "message": ""
        },
        "checksum": {
            "function": "sha256",
            "params": {},
            "message": "d2217fe5f3e9a1e34581ef8a78f7c9928e436d36dacc5e846690a5581e8ea484"
        },
        "cipher": {
            "function": "aes-128-ctr",
            "params": {
                "iv": "264daa3f303d7259501c93d997d84fe6"
            },
            "message": "06ae90d55fe0a6e9c5c3bc5b170827b2e5cce3929ed3f116c2811e6366dfe20f"
        }
    },
    "description": "This is a test keystore that uses scrypt to secure the secret.",
    "pubkey": "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07",
    "path": "m/12381/60/3141592653/589793238",
    "uuid": "1d85ae20-35c5-4611-98e8-aa14a633906f",
    "version": 4
}"#;

const PBKDF2_VECTOR: &str = r#"{
    "crypto": {
        "kdf": {
            "function": "pbkdf2",
            "params": {
                "dklen": 32,
                "c": 262144,
                "prf": "hmac-sha256",
                "salt": "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"
            },
            "message": ""
        },
        "checksum": {
            "function": "sha256",
            "params": {},
            "message": "8a9f5d9912ed7e75ea794bc5a89bca5f193721d30868ade6f73043c6ea6febf1"
        },
        "cipher": {
            "function": "aes-128-ctr",
            "params": {
                "iv": "264daa3f303d7259501c93d997d84fe6"
            },
            "message": "cee03fde2af33149775b7223e7845e4fb2c8ae1792e5f99fe9ecf474cc8c16ad"
        }
    },
    "description": "This is a test keystore that uses PBKDF2 to secure the secret.",
    "pubkey": "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07",
    "path": "m/12381/60/0/0",
    "uuid": "64625def-3331-4eea-ab6f-782f3ed16a83",
    "version": 4
}"#;

#[test]
fn password_normalization_matches_the_eip() {
    // The EIP: "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑" is processed to "testpassword🔑".
    assert_eq!(
        &normalize_password(PASSWORD)[..],
        "testpassword🔑".as_bytes()
    );
    assert_eq!(&normalize_password("a\u{7f}b\u{1}c\u{85}")[..], b"abc");
}

#[test]
fn eip2335_vectors_decrypt() {
    for (name, json) in [("scrypt", SCRYPT_VECTOR), ("pbkdf2", PBKDF2_VECTOR)] {
        let ks = Keystore::from_json(json, name).unwrap();
        let sk = ks.decrypt(PASSWORD, name).unwrap();
        assert_eq!(hex::encode(&sk.to_bytes()[..]), SECRET, "{name}");
        assert_eq!(hex::encode(sk.public_key().to_bytes()), PUBKEY, "{name}");
        let err = ks.decrypt("testpassword", name).err().unwrap();
        assert!(matches!(err, KeystoreError::WrongPassword { .. }), "{name}");
        assert!(err.to_string().contains("wrong password"), "{err}");
    }
}

#[test]
fn roundtrip_both_kdfs_and_reencrypted_vector() {
    let sk = SecretKey::from_bytes(&hex::decode(SECRET).unwrap()).unwrap();
    for kdf in [Kdf::Scrypt { log_n: 10 }, Kdf::Pbkdf2 { c: 1000 }] {
        let ks = Keystore::encrypt(&sk, "pässwörd", kdf, "m/12381/60/0/0");
        let back = Keystore::from_json(&ks.to_json(), "t").unwrap();
        let sk2 = back.decrypt("pässwörd", "t").unwrap();
        assert_eq!(sk2.to_bytes()[..], sk.to_bytes()[..]);
        assert_eq!(back.pubkey, PUBKEY);
        assert!(back.decrypt("password", "t").is_err());
    }
}

#[test]
fn bad_input_is_a_clear_error_never_a_panic() {
    let sk = SecretKey::from_ikm(&[7; 32]).unwrap();
    let good = Keystore::encrypt(&sk, "pw", Kdf::Pbkdf2 { c: 10 }, "");
    let good_json = good.to_json();
    let mut flipped = good.clone();
    let mut m = hex::decode(&flipped.crypto.cipher.message).unwrap();
    m[0] ^= 1;
    flipped.crypto.cipher.message = hex::encode(m);
    let mut wrong_pub = good.clone();
    wrong_pub.pubkey = PUBKEY.into();
    let mut bad_kdf = good.clone();
    bad_kdf.crypto.kdf.function = "argon2".into();
    let mut bad_n: Keystore = Keystore::from_json(SCRYPT_VECTOR, "v").unwrap();
    bad_n.crypto.kdf.params["n"] = serde_json::json!(1000);
    // r and p were passed on truncated to 32 bits and unbounded: a file could ask for
    // terabytes. Each is refused before any derivation.
    let mut big_r: Keystore = Keystore::from_json(SCRYPT_VECTOR, "v").unwrap();
    big_r.crypto.kdf.params["r"] = serde_json::json!(1u64 << 32);
    let mut big_p: Keystore = Keystore::from_json(SCRYPT_VECTOR, "v").unwrap();
    big_p.crypto.kdf.params["p"] = serde_json::json!(1000);
    let mut big_mem: Keystore = Keystore::from_json(SCRYPT_VECTOR, "v").unwrap();
    big_mem.crypto.kdf.params["n"] = serde_json::json!(1u64 << 24);
    big_mem.crypto.kdf.params["r"] = serde_json::json!(8);
    // A checksum that is not 32 bytes was damage reported as "wrong password".
    let mut short_sum = good.clone();
    short_sum.crypto.checksum.message = "abcd".into();
    for (json, want) in [
        ("{".to_string(), "not an EIP-2335 keystore"),
        (
            good_json.replace("\"version\": 4", "\"version\": 3"),
            "version 3",
        ),
        (flipped.to_json(), "wrong password"),
        (wrong_pub.to_json(), "altered"),
        (bad_kdf.to_json(), "argon2"),
        (bad_n.to_json(), "power of two"),
        (big_r.to_json(), "out of range"),
        (big_p.to_json(), "out of range"),
        (big_mem.to_json(), "MiB"),
        (short_sum.to_json(), "damaged"),
        (good_json.replace("\"iv\": \"", "\"iv\": \"zz"), "iv"),
    ] {
        let err = Keystore::from_json(&json, "f.json")
            .and_then(|k| k.decrypt("pw", "f.json"))
            .err()
            .unwrap_or_else(|| panic!("accepted: {json}"));
        let s = err.to_string();
        assert!(s.contains(want), "{want}: {s}");
        assert!(s.contains("f.json"), "{s}");
    }
}

#[test]
fn signer_from_files_signs_with_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<_> = (1..=3u8)
        .map(|i| SecretKey::from_ikm(&[i; 32]).unwrap())
        .collect();
    let mut files = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let p = dir.path().join(format!("k{i}.json"));
        Keystore::encrypt(k, "pw", Kdf::Pbkdf2 { c: 10 }, "")
            .write(&p)
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        files.push(p);
    }
    let s = KeystoreSigner::open(&files, "pw").unwrap();
    let want: Vec<_> = keys.iter().map(|k| k.public_key()).collect();
    assert_eq!(s.public_keys(), &want[..]);
    let req = SignRequest {
        kind: MsgKind::Commit,
        chain_id: 1,
        shard: 0,
        number: 3,
        view: 1,
        hash: [9; 32],
    };
    let sigs = s.sign(&req).unwrap();
    for (sig, pk) in sigs.iter().zip(&want) {
        assert!(sig.verify(pk, &hsm::payload(&req)));
    }
    let err = KeystoreSigner::open(&files, "nope")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("wrong password") && err.contains("k0.json"),
        "{err}"
    );
}
