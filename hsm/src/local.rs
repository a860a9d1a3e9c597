//! Local-key backend for development networks: BLS secrets in a 0600 JSON file.
//!
//! This backend exists so `localnet` runs without hardware. Production keys live in a
//! YubiHSM 2 or an EIP-2335 keystore (later backends behind the same trait).

use crate::request::{payload, SignRequest};
use crate::{SignError, Signatures, Signer};
use accel::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// On-disk form: hex secret keys. Written with mode 0600 and refused if group/world readable.
#[derive(Serialize, Deserialize)]
pub struct LocalKeyFile {
    /// Hex-encoded 32-byte BLS secret keys.
    pub bls_secret_keys: Vec<String>,
}

/// Signs with secret keys held in process memory.
pub struct LocalSigner {
    keys: Vec<SecretKey>,
    public: Vec<PublicKey>,
}

impl LocalSigner {
    pub fn new(keys: Vec<SecretKey>) -> Self {
        let public = keys.iter().map(SecretKey::public_key).collect();
        Self { keys, public }
    }

    /// Loads a key file, refusing one that others can read.
    pub fn from_file(path: &Path) -> Result<Self, SignError> {
        let err = |m: String| SignError::Backend(format!("key file {}: {m}", path.display()));
        check_private(path).map_err(err)?;
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let file: LocalKeyFile = serde_json::from_str(&text).map_err(|e| {
            err(format!(
                "not a key file ({e}); expected {{\"bls_secret_keys\": [hex, ...]}}"
            ))
        })?;
        if file.bls_secret_keys.is_empty() {
            return Err(err("holds no key".into()));
        }
        let keys = file
            .bls_secret_keys
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let bytes = zeroize::Zeroizing::new(
                    hex::decode(h.trim_start_matches("0x"))
                        .map_err(|_| err(format!("key #{i} is not hex")))?,
                );
                SecretKey::from_bytes(&bytes).map_err(|e| err(format!("key #{i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(keys))
    }

    /// Writes `keys` to `path` with mode 0600.
    pub fn write_file(path: &Path, keys: &[SecretKey]) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let file = LocalKeyFile {
            bls_secret_keys: keys
                .iter()
                .map(|k| hex::encode(&k.to_bytes()[..]))
                .collect(),
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
        f.sync_all()
    }
}

/// Refuses files readable or writable by group or others.
pub fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "permissions {mode:o} are too open; run `chmod 600 {}`",
            path.display()
        ));
    }
    Ok(())
}

impl Signer for LocalSigner {
    fn public_keys(&self) -> &[PublicKey] {
        &self.public
    }

    fn sign(&self, req: &SignRequest) -> Result<Signatures, SignError> {
        let msg = payload(req);
        Ok(self.keys.iter().map(|k| k.sign(&msg)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MsgKind;

    #[test]
    fn file_roundtrip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let keys = vec![
            SecretKey::from_ikm(&[1; 32]).unwrap(),
            SecretKey::from_ikm(&[2; 32]).unwrap(),
        ];
        let pks: Vec<_> = keys.iter().map(SecretKey::public_key).collect();
        LocalSigner::write_file(&path, &keys).unwrap();
        let signer = LocalSigner::from_file(&path).unwrap();
        assert_eq!(signer.public_keys(), &pks[..]);

        let req = SignRequest {
            kind: MsgKind::Prepare,
            chain_id: 1,
            shard: 0,
            number: 1,
            view: 1,
            hash: [1; 32],
        };
        let sigs = signer.sign(&req).unwrap();
        assert_eq!(sigs.len(), 2);
        for (sig, pk) in sigs.iter().zip(&pks) {
            assert!(sig.verify(pk, &payload(&req)));
        }

        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = LocalSigner::from_file(&path).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn malformed_file_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        use std::os::unix::fs::OpenOptionsExt;
        for (body, want) in [
            ("{", "not a key file"),
            ("{\"bls_secret_keys\":[]}", "no key"),
            ("{\"bls_secret_keys\":[\"zz\"]}", "key #0 is not hex"),
        ] {
            let _ = std::fs::remove_file(&path);
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .unwrap();
            std::fs::write(&path, body).unwrap();
            let err = LocalSigner::from_file(&path).err().unwrap().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
