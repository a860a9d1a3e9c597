//! Keys in use: the unsealed BLS signer, and the Ed25519 transport and secp256k1 operator keys
//! that never leave the HSM.

use super::seal::SealedKey;
use super::HsmError;
use crate::locked::LockedKeys;
use crate::request::{payload, SignRequest};
use crate::{SignError, Signatures, Signer};
use accel::{PublicKey, SecretKey};
use std::path::PathBuf;
use std::sync::Arc;
use yubihsm::{asymmetric, Client};

fn err(m: impl Into<String>) -> HsmError {
    HsmError::Device(m.into())
}

/// BLS keys unsealed through the HSM into locked memory; the session stays open for the
/// transport key.
pub struct HsmSigner {
    keys: LockedKeys,
    public: Vec<PublicKey>,
    client: Arc<Client>,
}

impl HsmSigner {
    pub fn open(client: Arc<Client>, sealed: &[PathBuf]) -> Result<Self, HsmError> {
        if sealed.is_empty() {
            return Err(err(
                "no sealed BLS key; create one with `harmony-appliance keys generate --backend yubihsm`",
            ));
        }
        // Exactly sized: a growing Vec would move the scalars on reallocation and leave
        // copies in freed memory that nothing zeroizes (each key is zeroized where it ends).
        let mut keys = Vec::with_capacity(sealed.len());
        for p in sealed {
            keys.push(SealedKey::load(p)?.unseal(&client, &p.display().to_string())?);
        }
        let public = keys.iter().map(SecretKey::public_key).collect();
        Ok(Self {
            keys: LockedKeys::new(keys),
            public,
            client,
        })
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

impl Signer for HsmSigner {
    fn public_keys(&self) -> &[PublicKey] {
        &self.public
    }
    fn sign(&self, req: &SignRequest) -> Result<Signatures, SignError> {
        let msg = payload(req);
        Ok(self.keys.keys().iter().map(|k| k.sign(&msg)).collect())
    }

    /// An echo through the open session: the transport key's TLS signatures need the HSM.
    fn probe(&self) -> Result<(), SignError> {
        const PING: &[u8] = b"harmony-appliance probe";
        match self.client.echo(PING) {
            Ok(back) if back == PING => Ok(()),
            Ok(_) => Err(SignError::Backend("the HSM echoed other bytes".into())),
            Err(e) => Err(SignError::Backend(format!("HSM unreachable: {e}"))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys that never leave the HSM

/// The Ed25519 transport key inside the HSM, usable by rustls (and rcgen through it).
#[derive(Clone)]
pub struct HsmEd25519Key {
    client: Arc<Client>,
    id: u16,
    public: [u8; 32],
}

impl std::fmt::Debug for HsmEd25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HsmEd25519Key(0x{:04x}, {})",
            self.id,
            hex::encode(self.public)
        )
    }
}

impl HsmEd25519Key {
    pub fn open(client: Arc<Client>, id: u16) -> Result<Self, HsmError> {
        let pk = client.get_public_key(id).map_err(|e| {
            err(format!(
                "transport key 0x{id:04x} is not on the HSM ({e}); run `harmony-appliance hsm setup`"
            ))
        })?;
        if pk.algorithm != asymmetric::Algorithm::Ed25519 || pk.bytes.len() != 32 {
            return Err(err(format!("object 0x{id:04x} is not an Ed25519 key")));
        }
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.bytes);
        Ok(Self { client, id, public })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    pub fn sign(&self, msg: &[u8]) -> Result<[u8; 64], HsmError> {
        let s = self
            .client
            .sign_ed25519(self.id, msg.to_vec())
            .map_err(|e| err(format!("HSM Ed25519 signing failed: {e}")))?;
        Ok(s.to_bytes())
    }
}

impl rustls::sign::SigningKey for HsmEd25519Key {
    fn choose_scheme(
        &self,
        offered: &[rustls::SignatureScheme],
    ) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&rustls::SignatureScheme::ED25519)
            .then(|| Box::new(self.clone()) as Box<dyn rustls::sign::Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ED25519
    }

    fn public_key(&self) -> Option<rustls::pki_types::SubjectPublicKeyInfoDer<'_>> {
        // SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING { key } } (RFC 8410).
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(&self.public);
        Some(rustls::pki_types::SubjectPublicKeyInfoDer::from(spki))
    }
}

impl rustls::sign::Signer for HsmEd25519Key {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        HsmEd25519Key::sign(self, message)
            .map(|s| s.to_vec())
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        rustls::SignatureScheme::ED25519
    }
}

/// The secp256k1 operator public key (uncompressed, 0x04 || x || y), generated in the HSM.
pub fn operator_public_key(client: &Client, id: u16) -> Result<Vec<u8>, HsmError> {
    let pk = client
        .get_public_key(id)
        .map_err(|e| err(format!("operator key 0x{id:04x} is not on the HSM ({e})")))?;
    if pk.algorithm != asymmetric::Algorithm::EcK256 {
        return Err(err(format!("object 0x{id:04x} is not a secp256k1 key")));
    }
    let mut v = vec![4u8];
    v.extend_from_slice(&pk.bytes);
    Ok(v)
}
