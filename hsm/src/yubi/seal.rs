//! BLS secrets sealed under a key derived inside the HSM (AES-256-GCM over an HMAC the device
//! computes), and the sealed files on disk.

use super::{HsmError, SEAL_CONTEXT};
use accel::SecretKey;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use yubihsm::Client;
use zeroize::Zeroizing;

fn err(m: impl Into<String>) -> HsmError {
    HsmError::Sealed(m.into())
}

/// A BLS secret sealed under the HSM (JSON, mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedKey {
    pub version: u32,
    pub hmac_key_id: u16,
    pub public_key: String,
    pub salt: String,
    pub nonce: String,
    pub ciphertext: String,
}

fn seal_key(client: &Client, hmac_id: u16, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, HsmError> {
    let mut msg = SEAL_CONTEXT.to_vec();
    msg.extend_from_slice(salt);
    let tag = client.sign_hmac(hmac_id, msg).map_err(|e| {
        err(format!(
            "the HSM could not compute the sealing HMAC with key 0x{hmac_id:04x} ({e}); is this \
             the device the key was sealed with?"
        ))
    })?;
    let bytes = tag.into_vec();
    let mut k = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(err("the HSM returned an HMAC of the wrong length"));
    }
    k.copy_from_slice(&bytes);
    Ok(k)
}

fn aad(pk: &[u8], hmac_id: u16) -> Vec<u8> {
    let mut a = SEAL_CONTEXT.to_vec();
    a.extend_from_slice(&hmac_id.to_be_bytes());
    a.extend_from_slice(pk);
    a
}

impl SealedKey {
    pub fn seal(client: &Client, hmac_id: u16, sk: &SecretKey) -> Result<Self, HsmError> {
        use ring::aead;
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let key = seal_key(client, hmac_id, &salt)?;
        let pk = sk.public_key().to_bytes();
        let k = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, &key[..]).expect("32-byte key"),
        );
        let mut buf = sk.to_bytes().to_vec();
        k.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad(&pk, hmac_id)),
            &mut buf,
        )
        .map_err(|_| err("sealing failed"))?;
        Ok(Self {
            version: 1,
            hmac_key_id: hmac_id,
            public_key: format!("0x{}", hex::encode(pk)),
            salt: hex::encode(salt),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(buf),
        })
    }

    pub fn load(path: &Path) -> Result<Self, HsmError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("sealed key {}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            err(format!(
                "sealed key {} is damaged ({e}); restore it from backup",
                path.display()
            ))
        })
    }

    pub fn write(&self, path: &Path) -> Result<(), HsmError> {
        crate::keystore::write_private(
            path,
            serde_json::to_string_pretty(self)
                .expect("serializes")
                .as_bytes(),
        )
        .map_err(|e| err(format!("{}: {e}", path.display())))
    }

    pub fn unseal(&self, client: &Client, path: &str) -> Result<SecretKey, HsmError> {
        use ring::aead;
        let bad = |what: &str| {
            err(format!(
                "sealed key {path} is damaged ({what}); restore it from backup"
            ))
        };
        let salt = hex::decode(&self.salt).map_err(|_| bad("salt"))?;
        let nonce: [u8; 12] = hex::decode(&self.nonce)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("nonce"))?;
        let pk =
            hex::decode(self.public_key.trim_start_matches("0x")).map_err(|_| bad("public key"))?;
        let mut buf = Zeroizing::new(hex::decode(&self.ciphertext).map_err(|_| bad("ciphertext"))?);
        let key = seal_key(client, self.hmac_key_id, &salt)?;
        let k = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, &key[..]).expect("32-byte key"),
        );
        let plain = k
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad(&pk, self.hmac_key_id)),
                &mut buf,
            )
            .map_err(|_| {
                err(format!(
                    "sealed key {path} does not open with this HSM's sealing key: it was sealed \
                     by another device, or the file was altered"
                ))
            })?;
        let sk = SecretKey::from_bytes(plain).map_err(|_| bad("not a BLS key"))?;
        if sk.public_key().to_bytes()[..] != pk[..] {
            return Err(bad("public key mismatch"));
        }
        Ok(sk)
    }
}

/// The sealed keys in `dir` (`*.sealed.json`), sorted by file name.
pub fn sealed_files(dir: &Path) -> Result<Vec<PathBuf>, HsmError> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        err(format!(
            "sealed key directory {}: {e}; create keys with `harmony-appliance keys generate --backend yubihsm`",
            dir.display()
        ))
    })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".sealed.json"))
        .collect();
    v.sort();
    Ok(v)
}
