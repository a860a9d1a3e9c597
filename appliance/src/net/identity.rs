//! Transport identity: the Ed25519 key a validator uses to authenticate its QUIC connections.
//!
//! The private key is only ever handed to rustls (and to certificate generation) as an
//! `Arc<dyn rustls::sign::SigningKey>`, so an HSM backend can provide its own implementation
//! through [`TransportIdentity::from_signing_key`] without the rest of the mesh noticing.
//!
//! # Frozen formats
//!
//! * Key file: PKCS#8 DER (v1 or v2; [`TransportIdentity::generate`] writes v2, as
//!   `ring::signature::Ed25519KeyPair::generate_pkcs8` does), raw bytes, no PEM, mode `0600`.
//! * Public key: the 32-byte Ed25519 public key (RFC 8032), as found in the
//!   `SubjectPublicKeyInfo` of the certificate (RFC 8410, no algorithm parameters).
//! * Certificate: X.509 v3, self-signed by the transport key with Ed25519, generated with rcgen.
//!   Subject `CN=harmony-transport`, validity 1975-01-01 .. 4096-01-01 (validity is never
//!   checked), serial = first 20 bytes of SHA-256 of the public key (MSB cleared), and exactly
//!   one subject alternative name, the DNS name returned by [`spec_dns_name`]. Generation is
//!   deterministic: the same key and chain-spec hash always give the same DER.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::SignatureScheme;
use zeroize::Zeroizing;

/// DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (0 unused bits) }. The 32 key bytes follow.
pub(crate) const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Largest key file we are willing to read (a PKCS#8 Ed25519 key is 83 or 85 bytes).
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Common name written in every transport certificate (informational only).
pub const CERT_COMMON_NAME: &str = "harmony-transport";

/// Errors loading, storing or using a transport identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// An I/O error on a key file.
    #[error("transport key file {}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The key file can be read by someone other than its owner (or is executable).
    #[error(
        "transport key file {} has permissions {mode:04o}, looser than 0600; \
         fix with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions {
        /// The file concerned.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not a regular file.
    #[error("transport key file {} is not a regular file", path.display())]
    NotAFile {
        /// The file concerned.
        path: PathBuf,
    },
    /// The bytes are not a PKCS#8 Ed25519 private key.
    #[error("invalid transport key: {0}")]
    InvalidKey(String),
    /// The signing key is not an Ed25519 key (or does not expose its public key).
    #[error("transport key is not an Ed25519 key with a known public key")]
    NotEd25519,
    /// The certificate could not be generated (for example, the signer failed).
    #[error("cannot generate transport certificate: {0}")]
    Certificate(String),
}

impl IdentityError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The DNS name, carried as the only subject alternative name of every transport certificate,
/// that binds the certificate to one network: `<hex(hash[..16])>.<hex(hash[16..])>.spec.harmony`
/// (lower-case hex, two 32-character labels).
pub fn spec_dns_name(spec_hash: &[u8; 32]) -> String {
    format!(
        "{}.{}.spec.harmony",
        hex::encode(&spec_hash[..16]),
        hex::encode(&spec_hash[16..])
    )
}

/// Returns the raw Ed25519 key if `spki` is exactly an RFC 8410 Ed25519 `SubjectPublicKeyInfo`.
pub(crate) fn ed25519_key_from_spki(spki: &[u8]) -> Option<[u8; 32]> {
    let key = spki.strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    key.try_into().ok()
}

/// A validator's transport identity: an Ed25519 signing key and its public key.
#[derive(Clone)]
pub struct TransportIdentity {
    key: Arc<dyn SigningKey>,
    public_key: [u8; 32],
}

impl fmt::Debug for TransportIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportIdentity")
            .field("public_key", &hex::encode(self.public_key))
            .finish_non_exhaustive()
    }
}

impl TransportIdentity {
    /// Generates a fresh software key. Returns the identity and its PKCS#8 v2 DER encoding,
    /// which the caller stores (see [`TransportIdentity::write_pkcs8_file`]) and should zeroize.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails.
    pub fn generate() -> (Self, Vec<u8>) {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .expect("the OS random number generator failed");
        let der = doc.as_ref().to_vec();
        let identity =
            Self::from_pkcs8_der(&der).expect("a freshly generated Ed25519 key is valid PKCS#8");
        (identity, der)
    }

    /// Loads a software key from PKCS#8 DER bytes.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, IdentityError> {
        let der = PrivatePkcs8KeyDer::from(der);
        let key = rustls::crypto::ring::sign::any_eddsa_type(&der)
            .map_err(|e| IdentityError::InvalidKey(e.to_string()))?;
        Self::from_signing_key(key)
    }

    /// Wraps any rustls signing key (for example one backed by an HSM). The key must be an
    /// Ed25519 key that reports its public key through `SigningKey::public_key`.
    pub fn from_signing_key(key: Arc<dyn SigningKey>) -> Result<Self, IdentityError> {
        let spki = key.public_key().ok_or(IdentityError::NotEd25519)?;
        let public_key = ed25519_key_from_spki(spki.as_ref()).ok_or(IdentityError::NotEd25519)?;
        if key.choose_scheme(&[SignatureScheme::ED25519]).is_none() {
            return Err(IdentityError::NotEd25519);
        }
        Ok(Self { key, public_key })
    }

    /// Loads a software key from a PKCS#8 DER file. The file must be a regular file whose
    /// permissions are not looser than `0600` (no group/other bits, not executable).
    pub fn from_pkcs8_file(path: impl AsRef<Path>) -> Result<Self, IdentityError> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| IdentityError::io(path, e))?;
        // fstat the opened file, so the check applies to what we read.
        let meta = file.metadata().map_err(|e| IdentityError::io(path, e))?;
        if !meta.is_file() {
            return Err(IdentityError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & !0o600 != 0 {
            return Err(IdentityError::InsecurePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut der = Zeroizing::new(Vec::with_capacity(128));
        (&mut file)
            .take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut der)
            .map_err(|e| IdentityError::io(path, e))?;
        if der.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(IdentityError::InvalidKey(format!(
                "{} is larger than {MAX_KEY_FILE_BYTES} bytes",
                path.display()
            )));
        }
        Self::from_pkcs8_der(&der).map_err(|e| match e {
            IdentityError::InvalidKey(msg) => {
                IdentityError::InvalidKey(format!("{}: {msg}", path.display()))
            }
            other => other,
        })
    }

    /// Writes PKCS#8 DER bytes to a new file created with mode `0600` and synced to disk.
    /// Refuses to overwrite an existing file, so an identity is never destroyed by accident.
    pub fn write_pkcs8_file(path: impl AsRef<Path>, der: &[u8]) -> Result<(), IdentityError> {
        let path = path.as_ref();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| IdentityError::io(path, e))?;
        // The mode above is subject to the umask, which can only remove bits; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| IdentityError::io(path, e))?;
        file.write_all(der)
            .map_err(|e| IdentityError::io(path, e))?;
        file.sync_all().map_err(|e| IdentityError::io(path, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Best effort: make the new directory entry durable too.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// The signing key, as handed to rustls.
    pub fn signing_key(&self) -> Arc<dyn SigningKey> {
        self.key.clone()
    }

    /// The self-signed certificate for this key on the network identified by `spec_hash`
    /// (see the module docs for its exact shape). Fails only if the signer fails.
    pub fn self_signed_cert(
        &self,
        spec_hash: [u8; 32],
    ) -> Result<CertificateDer<'static>, IdentityError> {
        let mut params = rcgen::CertificateParams::new(vec![spec_dns_name(&spec_hash)])
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, CERT_COMMON_NAME);
        params.distinguished_name = dn;
        let signer = RcgenSigner {
            key: self.key.as_ref(),
            public_key: self.public_key,
        };
        let cert = params
            .self_signed(&signer)
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        Ok(cert.der().clone())
    }

    /// The certificate and key rustls presents on the network identified by `spec_hash`.
    pub fn certified_key(&self, spec_hash: [u8; 32]) -> Result<Arc<CertifiedKey>, IdentityError> {
        let cert = self.self_signed_cert(spec_hash)?;
        Ok(Arc::new(CertifiedKey::new(vec![cert], self.key.clone())))
    }
}

/// Adapts a rustls signing key to rcgen, so certificates are signed through the same door as
/// the TLS handshake (and an HSM key works for both).
struct RcgenSigner<'a> {
    key: &'a dyn SigningKey,
    public_key: [u8; 32],
}

impl rcgen::PublicKeyData for RcgenSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for RcgenSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signer = self
            .key
            .choose_scheme(&[SignatureScheme::ED25519])
            .ok_or(rcgen::Error::RemoteKeyError)?;
        signer.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_dns_name_format() {
        let mut h = [0u8; 32];
        for (i, b) in h.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(
            spec_dns_name(&h),
            "000102030405060708090a0b0c0d0e0f.101112131415161718191a1b1c1d1e1f.spec.harmony"
        );
    }

    #[test]
    fn generate_roundtrip_and_public_key() {
        let (id, der) = TransportIdentity::generate();
        let again = TransportIdentity::from_pkcs8_der(&der).unwrap();
        assert_eq!(id.public_key(), again.public_key());
        let ring_kp = ring::signature::Ed25519KeyPair::from_pkcs8(&der).unwrap();
        use ring::signature::KeyPair;
        assert_eq!(ring_kp.public_key().as_ref(), &id.public_key());
        let (other, _) = TransportIdentity::generate();
        assert_ne!(id.public_key(), other.public_key());
    }

    #[test]
    fn rejects_garbage_and_non_ed25519_keys() {
        assert!(matches!(
            TransportIdentity::from_pkcs8_der(b"not a key"),
            Err(IdentityError::InvalidKey(_))
        ));
        let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        assert!(TransportIdentity::from_pkcs8_der(&p256.serialize_der()).is_err());
        let ecdsa = rustls::crypto::ring::sign::any_ecdsa_type(
            &rustls::pki_types::PrivateKeyDer::Pkcs8(p256.serialize_der().into()),
        )
        .unwrap();
        assert!(matches!(
            TransportIdentity::from_signing_key(ecdsa),
            Err(IdentityError::NotEd25519)
        ));
    }

    #[test]
    fn file_roundtrip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transport.key");
        let (id, der) = TransportIdentity::generate();
        TransportIdentity::write_pkcs8_file(&path, &der).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        let loaded = TransportIdentity::from_pkcs8_file(&path).unwrap();
        assert_eq!(loaded.public_key(), id.public_key());
        // Never overwrites an existing identity.
        assert!(matches!(
            TransportIdentity::write_pkcs8_file(&path, &der),
            Err(IdentityError::Io { .. })
        ));
    }

    #[test]
    fn refuses_loose_permissions_with_a_helpful_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transport.key");
        let (_, der) = TransportIdentity::generate();
        TransportIdentity::write_pkcs8_file(&path, &der).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o700, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = TransportIdentity::from_pkcs8_file(&path).unwrap_err();
            assert!(
                matches!(err, IdentityError::InsecurePermissions { mode: m, .. } if m == mode),
                "{err}"
            );
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("chmod 600"), "{msg}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        TransportIdentity::from_pkcs8_file(&path).unwrap();
    }

    #[test]
    fn refuses_missing_file_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.key");
        let err = TransportIdentity::from_pkcs8_file(&missing).unwrap_err();
        assert!(err.to_string().contains("nope.key"), "{err}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(TransportIdentity::from_pkcs8_file(dir.path()).is_err());
    }

    #[test]
    fn certificate_is_deterministic_self_signed_and_names_the_spec() {
        let (id, _) = TransportIdentity::generate();
        let spec = [7u8; 32];
        let der = id.self_signed_cert(spec).unwrap();
        assert_eq!(der, id.self_signed_cert(spec).unwrap());
        assert_ne!(der, id.self_signed_cert([8u8; 32]).unwrap());

        let ee = webpki::EndEntityCert::try_from(&der).unwrap();
        let spki = ee.subject_public_key_info();
        assert_eq!(ed25519_key_from_spki(spki.as_ref()), Some(id.public_key()));
        let names: Vec<&str> = ee.valid_dns_names().collect();
        assert_eq!(names, vec![spec_dns_name(&spec).as_str()]);

        // Self-signed: the certificate's signature verifies under its own key. The signed
        // TBSCertificate is the first element of the outer SEQUENCE; check it with ring.
        let (tbs, sig) = split_cert(der.as_ref());
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, id.public_key())
            .verify(tbs, sig)
            .unwrap();
    }

    /// Splits a DER certificate into (TBSCertificate incl. header, signature bytes).
    fn split_cert(der: &[u8]) -> (&[u8], &[u8]) {
        fn header(b: &[u8]) -> (usize, usize) {
            // (header length, content length) of a DER TLV.
            let first = b[1];
            if first < 0x80 {
                (2, first as usize)
            } else {
                let n = (first & 0x7f) as usize;
                let mut len = 0usize;
                for &x in &b[2..2 + n] {
                    len = (len << 8) | x as usize;
                }
                (2 + n, len)
            }
        }
        let (h, _) = header(der);
        let body = &der[h..];
        let (th, tl) = header(body);
        let tbs = &body[..th + tl];
        let rest = &body[th + tl..];
        let (ah, al) = header(rest); // signatureAlgorithm
        let rest = &rest[ah + al..];
        let (bh, bl) = header(rest); // BIT STRING
        let sig = &rest[bh + 1..bh + bl]; // skip the unused-bits byte
        (tbs, sig)
    }
}
