//! EIP-2335 keystores (version 4): scrypt or PBKDF2-HMAC-SHA256, AES-128-CTR, SHA-256 checksum.
//!
//! Interoperable with the Ethereum consensus tooling that reads and writes the format
//! (staking-deposit-cli, Lighthouse, Teku). The password is NFKD-normalized and stripped of
//! control codes, as the EIP requires.

use crate::locked::LockedKeys;
use crate::request::{payload, SignRequest};
use crate::{SignError, Signatures, Signer};
use accel::{PublicKey, SecretKey};
use aes::cipher::{KeyIvInit, StreamCipher};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Memory one scrypt derivation may take (128·n·r bytes): 2 GiB, eight times EIP-2335's
/// default of n = 2^18, r = 8.
const MAX_SCRYPT_MEMORY: u64 = 2 << 30;

/// Why a keystore could not be read or written. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error(
        "keystore {path}: wrong password (the checksum does not match); check the password file"
    )]
    WrongPassword { path: String },
    #[error("keystore {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("keystore {path}: {message}")]
    Io { path: String, message: String },
}

/// The JSON form (EIP-2335).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Keystore {
    pub crypto: Crypto,
    #[serde(default)]
    pub description: String,
    pub pubkey: String,
    pub path: String,
    pub uuid: String,
    pub version: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Crypto {
    pub kdf: Module,
    pub checksum: Module,
    pub cipher: Module,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Module {
    pub function: String,
    pub params: serde_json::Value,
    pub message: String,
}

/// Key derivation for new keystores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// log2(n); the EIP's default is 18 (n = 262144, r = 8, p = 1).
    Scrypt { log_n: u8 },
    /// Iterations; the EIP's default is 262144.
    Pbkdf2 { c: u32 },
}

impl Kdf {
    pub const SCRYPT_DEFAULT: Kdf = Kdf::Scrypt { log_n: 18 };
    pub const PBKDF2_DEFAULT: Kdf = Kdf::Pbkdf2 { c: 262_144 };
}

/// EIP-2335 password processing: NFKD, then drop C0, C1 and DEL control codes.
pub fn normalize_password(pw: &str) -> Zeroizing<Vec<u8>> {
    use unicode_normalization::UnicodeNormalization;
    let s: Zeroizing<String> = Zeroizing::new(
        pw.nfkd()
            .filter(|c| {
                let u = *c as u32;
                !(u <= 0x1f || (0x7f..=0x9f).contains(&u))
            })
            .collect(),
    );
    Zeroizing::new(s.as_bytes().to_vec())
}

fn derive(kdf: &Module, password: &[u8], path: &str) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let bad = |m: String| KeystoreError::Invalid {
        path: path.into(),
        message: m,
    };
    let p = &kdf.params;
    let get_u64 = |k: &str| {
        p.get(k)
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad(format!("kdf.params.{k} is missing or not a number")))
    };
    let salt = hex::decode(
        p.get("salt")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("kdf.params.salt is missing".into()))?,
    )
    .map_err(|_| bad("kdf.params.salt is not hex".into()))?;
    if get_u64("dklen")? != 32 {
        return Err(bad("kdf.params.dklen must be 32".into()));
    }
    let mut dk = Zeroizing::new([0u8; 32]);
    match kdf.function.as_str() {
        "scrypt" => {
            let n = get_u64("n")?;
            let r = get_u64("r")?;
            let pp = get_u64("p")?;
            if !n.is_power_of_two() || !(2..=1 << 24).contains(&n) {
                return Err(bad(format!(
                    "kdf.params.n = {n} is not a power of two ≤ 2^24"
                )));
            }
            // Bounded before use: `r` and `p` are 8 and 1 in every keystore the tools write; a
            // file asking for more could demand gigabytes of memory or hours of work.
            if !(1..=32).contains(&r) || !(1..=16).contains(&pp) {
                return Err(bad(format!(
                    "kdf.params r = {r}, p = {pp} are out of range (r 1..=32, p 1..=16)"
                )));
            }
            if 128 * n * r > MAX_SCRYPT_MEMORY {
                return Err(bad(format!(
                    "kdf.params n = {n}, r = {r} need {} MiB; at most {} MiB is allowed",
                    (128 * n * r) >> 20,
                    MAX_SCRYPT_MEMORY >> 20
                )));
            }
            let params = scrypt::Params::new(n.trailing_zeros() as u8, r as u32, pp as u32, 32)
                .map_err(|e| bad(format!("scrypt parameters: {e}")))?;
            scrypt::scrypt(password, &salt, &params, &mut dk[..])
                .map_err(|e| bad(format!("scrypt: {e}")))?;
        }
        "pbkdf2" => {
            let prf = p.get("prf").and_then(|v| v.as_str()).unwrap_or("");
            if prf != "hmac-sha256" {
                return Err(bad(format!("kdf.params.prf `{prf}` is not hmac-sha256")));
            }
            let c = get_u64("c")?;
            if c == 0 || c > 1 << 24 {
                return Err(bad(format!("kdf.params.c = {c} is out of range")));
            }
            pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, c as u32, &mut dk[..]);
        }
        other => return Err(bad(format!("kdf `{other}` is not scrypt or pbkdf2"))),
    }
    Ok(dk)
}

impl Keystore {
    pub fn from_json(text: &str, path: &str) -> Result<Self, KeystoreError> {
        let ks: Keystore = serde_json::from_str(text).map_err(|e| KeystoreError::Invalid {
            path: path.into(),
            message: format!("not an EIP-2335 keystore: {e}"),
        })?;
        if ks.version != 4 {
            return Err(KeystoreError::Invalid {
                path: path.into(),
                message: format!("version {} is not 4", ks.version),
            });
        }
        Ok(ks)
    }

    pub fn load(path: &Path) -> Result<Self, KeystoreError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeystoreError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializes")
    }

    /// Decrypts the secret with a (raw, not yet normalized) password.
    pub fn decrypt(&self, password: &str, path: &str) -> Result<SecretKey, KeystoreError> {
        let bad = |m: String| KeystoreError::Invalid {
            path: path.into(),
            message: m,
        };
        // The file's shape is checked before the (deliberately slow) key derivation, and a
        // checksum that could never match is reported as damage, not as a wrong password.
        let cipher_msg = hex::decode(&self.crypto.cipher.message)
            .ok()
            .filter(|m| m.len() == 32)
            .ok_or_else(|| bad("cipher.message is not 32 hex bytes (a BLS secret)".into()))?;
        if self.crypto.checksum.function != "sha256" {
            return Err(bad("checksum.function is not sha256".into()));
        }
        let want = hex::decode(&self.crypto.checksum.message)
            .ok()
            .filter(|m| m.len() == 32)
            .ok_or_else(|| {
                bad("checksum.message is not 32 hex bytes; the file is damaged".into())
            })?;
        if self.crypto.cipher.function != "aes-128-ctr" {
            return Err(bad(format!(
                "cipher `{}` is not aes-128-ctr",
                self.crypto.cipher.function
            )));
        }
        let iv = self
            .crypto
            .cipher
            .params
            .get("iv")
            .and_then(|v| v.as_str())
            .and_then(|s| hex::decode(s).ok())
            .filter(|v| v.len() == 16)
            .ok_or_else(|| bad("cipher.params.iv is not 16 hex bytes".into()))?;
        let pw = normalize_password(password);
        let dk = derive(&self.crypto.kdf, &pw, path)?;
        let mut h = Sha256::new();
        h.update(&dk[16..32]);
        h.update(&cipher_msg);
        if h.finalize()[..] != want[..] {
            return Err(KeystoreError::WrongPassword { path: path.into() });
        }
        let mut secret = Zeroizing::new(cipher_msg);
        Aes128Ctr::new(dk[..16].into(), iv[..].into()).apply_keystream(&mut secret);
        let sk = SecretKey::from_bytes(&secret)
            .map_err(|e| bad(format!("decrypted secret is not a BLS key: {e}")))?;
        if !self.pubkey.is_empty()
            && hex::encode(sk.public_key().to_bytes()) != self.pubkey.trim_start_matches("0x")
        {
            return Err(bad(
                "pubkey does not match the decrypted secret; the file was altered".into(),
            ));
        }
        Ok(sk)
    }

    /// Encrypts `sk` under `password`.
    pub fn encrypt(sk: &SecretKey, password: &str, kdf: Kdf, path: &str) -> Self {
        let pw = normalize_password(password);
        let mut salt = [0u8; 32];
        let mut iv = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let kdf_module = match kdf {
            Kdf::Scrypt { log_n } => Module {
                function: "scrypt".into(),
                params: serde_json::json!({"dklen": 32, "n": 1u64 << log_n, "r": 8, "p": 1, "salt": hex::encode(salt)}),
                message: String::new(),
            },
            Kdf::Pbkdf2 { c } => Module {
                function: "pbkdf2".into(),
                params: serde_json::json!({"dklen": 32, "c": c, "prf": "hmac-sha256", "salt": hex::encode(salt)}),
                message: String::new(),
            },
        };
        let dk = derive(&kdf_module, &pw, "new keystore").expect("parameters we chose are valid");
        let mut msg = Zeroizing::new(sk.to_bytes().to_vec());
        Aes128Ctr::new(dk[..16].into(), iv[..].into()).apply_keystream(&mut msg);
        let mut h = Sha256::new();
        h.update(&dk[16..32]);
        h.update(&msg[..]);
        Keystore {
            crypto: Crypto {
                kdf: kdf_module,
                checksum: Module {
                    function: "sha256".into(),
                    params: serde_json::json!({}),
                    message: hex::encode(h.finalize()),
                },
                cipher: Module {
                    function: "aes-128-ctr".into(),
                    params: serde_json::json!({"iv": hex::encode(iv)}),
                    message: hex::encode(&msg[..]),
                },
            },
            description: String::new(),
            pubkey: hex::encode(sk.public_key().to_bytes()),
            path: path.into(),
            uuid: uuid::Uuid::new_v4().to_string(),
            version: 4,
        }
    }

    /// Writes the keystore with mode 0600 and fsyncs it.
    pub fn write(&self, path: &Path) -> Result<(), KeystoreError> {
        write_private(path, self.to_json().as_bytes()).map_err(|e| KeystoreError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

/// Creates or truncates `path` with mode 0600, writes `data` and fsyncs it.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Reads a password file (refused when group/world readable); one trailing newline is dropped.
pub fn read_password_file(path: &Path) -> Result<Zeroizing<String>, String> {
    crate::local::check_private(path)
        .map_err(|e| format!("password file {}: {e}", path.display()))?;
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("password file {}: {e}", path.display()))?,
    );
    let t = text.strip_suffix('\n').unwrap_or(&text);
    let t = t.strip_suffix('\r').unwrap_or(t);
    if t.is_empty() {
        return Err(format!("password file {} is empty", path.display()));
    }
    Ok(Zeroizing::new(t.to_string()))
}

/// The keystores in `dir` (`*.json`), sorted by file name.
pub fn keystore_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "keystore directory {}: {e}; create keys with `harmony-appliance keys generate`",
            dir.display()
        )
    })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    Ok(v)
}

/// Signs with keys decrypted from EIP-2335 keystores, held in locked memory.
pub struct KeystoreSigner {
    keys: LockedKeys,
    public: Vec<PublicKey>,
}

impl KeystoreSigner {
    /// Decrypts every keystore in `files` with `password`.
    pub fn open(files: &[PathBuf], password: &str) -> Result<Self, KeystoreError> {
        if files.is_empty() {
            return Err(KeystoreError::Invalid {
                path: "(none)".into(),
                message: "no keystore given; create one with `harmony-appliance keys generate`"
                    .into(),
            });
        }
        let mut keys = Vec::with_capacity(files.len());
        for f in files {
            let ks = Keystore::load(f)?;
            keys.push(ks.decrypt(password, &f.display().to_string())?);
        }
        Ok(Self::from_keys(keys))
    }

    pub fn from_keys(keys: Vec<SecretKey>) -> Self {
        let public = keys.iter().map(SecretKey::public_key).collect();
        Self {
            keys: LockedKeys::new(keys),
            public,
        }
    }

    /// Whether the secrets are locked in RAM (mlock succeeded).
    pub fn memory_locked(&self) -> bool {
        self.keys.is_locked()
    }
}

impl Signer for KeystoreSigner {
    fn public_keys(&self) -> &[PublicKey] {
        &self.public
    }

    fn sign(&self, req: &SignRequest) -> Result<Signatures, SignError> {
        let msg = payload(req);
        Ok(self.keys.keys().iter().map(|k| k.sign(&msg)).collect())
    }
}
