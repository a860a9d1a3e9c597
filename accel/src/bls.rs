//! Key, signature and aggregate types over blst's min-pk variant.

use blst::min_pk as raw;
use blst::BLST_ERROR;
use std::fmt;

/// Uncompressed (affine x ‖ y) encodings, for wire formats where decoding speed pays.
pub const PUBLIC_KEY_UNCOMPRESSED_BYTES: usize = 96;
pub const SIGNATURE_UNCOMPRESSED_BYTES: usize = 192;

/// Signature domain of the proof-of-possession ciphersuite (IETF BLS draft, as Ethereum).
pub const DST_SIG: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Domain of proofs of possession.
pub const DST_POP: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

pub const SECRET_KEY_BYTES: usize = 32;
pub const PUBLIC_KEY_BYTES: usize = 48;
pub const SIGNATURE_BYTES: usize = 96;

/// Why a BLS operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlsError {
    #[error("bad encoding: expected {expected} bytes of a compressed point, got {got}")]
    Length { expected: usize, got: usize },
    #[error("point is not a valid compressed encoding on the curve ({0:?})")]
    Encoding(BLST_ERROR),
    #[error("point is not in the prime-order subgroup")]
    NotInGroup,
    #[error("public key is the point at infinity")]
    Infinity,
    #[error("secret key material is invalid: {0}")]
    SecretKey(&'static str),
    #[error("nothing to aggregate")]
    Empty,
    #[error("inputs differ in length: {0}")]
    Mismatch(&'static str),
}

fn map_err(e: BLST_ERROR) -> BlsError {
    match e {
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => BlsError::NotInGroup,
        BLST_ERROR::BLST_PK_IS_INFINITY => BlsError::Infinity,
        other => BlsError::Encoding(other),
    }
}

/// A BLS secret key. Zeroized on drop by blst; deliberately neither `Clone` nor `Debug`.
pub struct SecretKey(raw::SecretKey);

impl SecretKey {
    /// Derives a key from at least 32 bytes of input keying material (IETF KeyGen).
    pub fn from_ikm(ikm: &[u8]) -> Result<Self, BlsError> {
        if ikm.len() < 32 {
            return Err(BlsError::SecretKey(
                "input keying material shorter than 32 bytes",
            ));
        }
        raw::SecretKey::key_gen(ikm, &[])
            .map(Self)
            .map_err(|_| BlsError::SecretKey("key generation failed"))
    }

    /// EIP-2333 master key from a seed of at least 32 bytes.
    pub fn derive_master_eip2333(seed: &[u8]) -> Result<Self, BlsError> {
        if seed.len() < 32 {
            return Err(BlsError::SecretKey("EIP-2333 seed shorter than 32 bytes"));
        }
        raw::SecretKey::derive_master_eip2333(seed)
            .map(Self)
            .map_err(|_| BlsError::SecretKey("EIP-2333 derivation failed"))
    }

    /// EIP-2333 hardened child `index` of this key.
    pub fn derive_child_eip2333(&self, index: u32) -> Self {
        Self(self.0.derive_child_eip2333(index))
    }

    /// Parses a 32-byte big-endian scalar; zero and values ≥ r are refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        if bytes.len() != SECRET_KEY_BYTES {
            return Err(BlsError::Length {
                expected: SECRET_KEY_BYTES,
                got: bytes.len(),
            });
        }
        raw::SecretKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| BlsError::SecretKey("not a scalar in [1, r)"))
    }

    /// The scalar, for sealing into a keystore. Callers must zeroize what they receive.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; SECRET_KEY_BYTES]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.sk_to_pk())
    }

    /// Signs `msg` under the POP ciphersuite's signature domain.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg, DST_SIG, &[]))
    }

    /// Proof of possession: a signature over the compressed public key in the POP domain.
    pub fn prove_possession(&self) -> Signature {
        let pk = self.public_key().to_bytes();
        Signature(self.0.sign(&pk, DST_POP, &[]))
    }
}

/// A validated-on-decode G1 public key (48-byte compressed form).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub(crate) raw::PublicKey);

impl PublicKey {
    /// Decodes a compressed key and checks it is on the curve, in the subgroup and not infinity.
    /// Keys are validated once, when a committee is loaded, and cached in this form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        if bytes.len() != PUBLIC_KEY_BYTES {
            return Err(BlsError::Length {
                expected: PUBLIC_KEY_BYTES,
                got: bytes.len(),
            });
        }
        raw::PublicKey::key_validate(bytes)
            .map(Self)
            .map_err(map_err)
    }

    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_BYTES] {
        self.0.compress()
    }

    /// Decodes a 96-byte uncompressed key with the same checks as [`PublicKey::from_bytes`].
    pub fn from_uncompressed(bytes: &[u8]) -> Result<Self, BlsError> {
        if bytes.len() != PUBLIC_KEY_UNCOMPRESSED_BYTES {
            return Err(BlsError::Length {
                expected: PUBLIC_KEY_UNCOMPRESSED_BYTES,
                got: bytes.len(),
            });
        }
        let pk = raw::PublicKey::deserialize(bytes).map_err(map_err)?;
        pk.validate().map_err(map_err)?;
        Ok(Self(pk))
    }

    /// Decodes either encoding (48 bytes compressed, 96 uncompressed), fully validated.
    pub fn decode(bytes: &[u8]) -> Result<Self, BlsError> {
        match bytes.len() {
            PUBLIC_KEY_UNCOMPRESSED_BYTES => Self::from_uncompressed(bytes),
            _ => Self::from_bytes(bytes),
        }
    }

    pub fn to_uncompressed(&self) -> [u8; PUBLIC_KEY_UNCOMPRESSED_BYTES] {
        self.0.serialize()
    }

    /// IETF KeyValidate on an encoding: on the curve, in G1, not the identity.
    pub fn key_validate(bytes: &[u8]) -> bool {
        Self::decode(bytes).is_ok()
    }

    pub(crate) fn affine(&self) -> &blst::blst_p1_affine {
        (&self.0).into()
    }

    /// Checks a proof of possession for this key (with the proof's subgroup check).
    pub fn verify_possession(&self, proof: &Signature) -> bool {
        let msg = self.to_bytes();
        core_verify(self, proof, &msg, DST_POP, true)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(0x{})", hex::encode(self.to_bytes()))
    }
}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.to_bytes().hash(state)
    }
}

/// A G2 signature (96-byte compressed form).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub(crate) raw::Signature);

impl Signature {
    /// Decodes a compressed signature with its curve check only. Subgroup membership is
    /// checked where a signature is accepted (see [`Signature::verify`] and the engine).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BlsError> {
        if bytes.len() != SIGNATURE_BYTES {
            return Err(BlsError::Length {
                expected: SIGNATURE_BYTES,
                got: bytes.len(),
            });
        }
        raw::Signature::uncompress(bytes).map(Self).map_err(map_err)
    }

    pub fn to_bytes(&self) -> [u8; SIGNATURE_BYTES] {
        self.0.compress()
    }

    /// Decodes a 192-byte uncompressed signature with its curve check only (no square root,
    /// so several times cheaper than [`Signature::from_bytes`]).
    pub fn from_uncompressed(bytes: &[u8]) -> Result<Self, BlsError> {
        if bytes.len() != SIGNATURE_UNCOMPRESSED_BYTES {
            return Err(BlsError::Length {
                expected: SIGNATURE_UNCOMPRESSED_BYTES,
                got: bytes.len(),
            });
        }
        raw::Signature::deserialize(bytes)
            .map(Self)
            .map_err(map_err)
    }

    /// Decodes either encoding (96 bytes compressed, 192 uncompressed), curve check only.
    pub fn decode(bytes: &[u8]) -> Result<Self, BlsError> {
        match bytes.len() {
            SIGNATURE_UNCOMPRESSED_BYTES => Self::from_uncompressed(bytes),
            _ => Self::from_bytes(bytes),
        }
    }

    /// Decodes either encoding with curve and subgroup checks (the identity is allowed).
    pub fn decode_checked(bytes: &[u8]) -> Result<Self, BlsError> {
        let sig = Self::decode(bytes)?;
        if !sig.subgroup_check() {
            return Err(BlsError::NotInGroup);
        }
        Ok(sig)
    }

    pub fn to_uncompressed(&self) -> [u8; SIGNATURE_UNCOMPRESSED_BYTES] {
        self.0.serialize()
    }

    pub fn subgroup_check(&self) -> bool {
        self.0.subgroup_check()
    }

    /// Plain verification of one signature, with the subgroup check.
    pub fn verify(&self, pk: &PublicKey, msg: &[u8]) -> bool {
        core_verify(pk, self, msg, DST_SIG, true)
    }

    /// Verification without the subgroup check, for callers that already made it.
    pub fn verify_unchecked(&self, pk: &PublicKey, msg: &[u8]) -> bool {
        core_verify(pk, self, msg, DST_SIG, false)
    }

    pub(crate) fn affine(&self) -> &blst::blst_p2_affine {
        (&self.0).into()
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(0x{})", hex::encode(self.to_bytes()))
    }
}

/// One pairing check e(pk, H(msg)) == e(g1, sig) on the calling thread (blst's own `verify`
/// hands the work to its private thread pool; the engine keeps all work on the caller's).
pub(crate) fn core_verify(
    pk: &PublicKey,
    sig: &Signature,
    msg: &[u8],
    dst: &[u8],
    groupcheck: bool,
) -> bool {
    let mut pairing = blst::Pairing::new(true, dst);
    if pairing.aggregate(pk.affine(), false, sig.affine(), groupcheck, msg, &[])
        != BLST_ERROR::BLST_SUCCESS
    {
        return false;
    }
    pairing.commit();
    pairing.finalverify(None)
}

/// Decodes a G1 point (48 compressed or 96 uncompressed bytes) with curve and subgroup
/// checks; unlike a public key, the identity is accepted. This is the Ethereum vectors'
/// `deserialization_G1` rule.
pub fn decode_g1_point(bytes: &[u8]) -> Result<(), BlsError> {
    let p = match bytes.len() {
        PUBLIC_KEY_BYTES => raw::PublicKey::uncompress(bytes),
        PUBLIC_KEY_UNCOMPRESSED_BYTES => raw::PublicKey::deserialize(bytes),
        got => {
            return Err(BlsError::Length {
                expected: PUBLIC_KEY_BYTES,
                got,
            })
        }
    }
    .map_err(map_err)?;
    match p.validate() {
        Ok(()) | Err(BLST_ERROR::BLST_PK_IS_INFINITY) => Ok(()),
        Err(e) => Err(map_err(e)),
    }
}

/// Decodes a G2 point (96 or 192 bytes) with curve and subgroup checks, identity accepted
/// (`deserialization_G2`).
pub fn decode_g2_point(bytes: &[u8]) -> Result<(), BlsError> {
    if bytes.len() != SIGNATURE_BYTES && bytes.len() != SIGNATURE_UNCOMPRESSED_BYTES {
        return Err(BlsError::Length {
            expected: SIGNATURE_BYTES,
            got: bytes.len(),
        });
    }
    Signature::decode_checked(bytes).map(|_| ())
}

/// Sum of signatures.
#[derive(Clone)]
pub struct AggregateSignature(raw::AggregateSignature);

impl AggregateSignature {
    pub fn aggregate<'a>(sigs: impl IntoIterator<Item = &'a Signature>) -> Result<Self, BlsError> {
        let mut it = sigs.into_iter();
        let first = it.next().ok_or(BlsError::Empty)?;
        let mut agg = raw::AggregateSignature::from_signature(&first.0);
        for s in it {
            agg.add_signature(&s.0, false).map_err(map_err)?;
        }
        Ok(Self(agg))
    }

    pub fn add(&mut self, sig: &Signature) {
        // Cannot fail without the group check.
        let _ = self.0.add_signature(&sig.0, false);
    }

    pub fn to_signature(&self) -> Signature {
        Signature(self.0.to_signature())
    }
}

/// Sum of public keys (keys are already validated, so no check is repeated).
#[derive(Clone)]
pub struct AggregatePublicKey(raw::AggregatePublicKey);

impl AggregatePublicKey {
    pub fn aggregate<'a>(pks: impl IntoIterator<Item = &'a PublicKey>) -> Result<Self, BlsError> {
        let mut it = pks.into_iter();
        let first = it.next().ok_or(BlsError::Empty)?;
        let mut agg = raw::AggregatePublicKey::from_public_key(&first.0);
        for pk in it {
            agg.add_public_key(&pk.0, false).map_err(map_err)?;
        }
        Ok(Self(agg))
    }

    pub fn to_public_key(&self) -> PublicKey {
        PublicKey(self.0.to_public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_ikm(&[seed; 32]).unwrap()
    }

    #[test]
    fn sign_verify_roundtrip_and_wrong_message_fails() {
        let sk = key(1);
        let pk = sk.public_key();
        let sig = sk.sign(b"hello");
        assert!(sig.verify(&pk, b"hello"));
        assert!(!sig.verify(&pk, b"hellO"));
        assert!(!sig.verify(&key(2).public_key(), b"hello"));
    }

    #[test]
    fn codecs_roundtrip() {
        let sk = key(3);
        let pk = sk.public_key();
        assert_eq!(PublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
        let sig = sk.sign(b"m");
        assert_eq!(Signature::from_bytes(&sig.to_bytes()).unwrap(), sig);
        assert_eq!(
            SecretKey::from_bytes(&sk.to_bytes()[..])
                .unwrap()
                .public_key(),
            pk
        );
    }

    #[test]
    fn bad_encodings_are_refused() {
        assert!(matches!(
            PublicKey::from_bytes(&[0u8; 47]),
            Err(BlsError::Length { .. })
        ));
        assert!(PublicKey::from_bytes(&[0xffu8; 48]).is_err());
        // Compressed infinity is a valid encoding but not a valid public key.
        let mut inf = [0u8; 48];
        inf[0] = 0xc0;
        assert_eq!(PublicKey::from_bytes(&inf), Err(BlsError::Infinity));
        assert!(Signature::from_bytes(&[0x11u8; 96]).is_err());
        assert!(SecretKey::from_bytes(&[0u8; 32]).is_err());
        assert!(SecretKey::from_ikm(&[0u8; 31]).is_err());
    }

    #[test]
    fn proof_of_possession() {
        let sk = key(4);
        let pk = sk.public_key();
        let pop = sk.prove_possession();
        assert!(pk.verify_possession(&pop));
        assert!(!key(5).public_key().verify_possession(&pop));
        // A plain signature over the key bytes is not a proof (different domain).
        assert!(!pk.verify_possession(&sk.sign(&pk.to_bytes())));
    }

    #[test]
    fn aggregate_of_same_message() {
        let sks: Vec<_> = (10..14).map(key).collect();
        let sigs: Vec<_> = sks.iter().map(|k| k.sign(b"block")).collect();
        let pks: Vec<_> = sks.iter().map(|k| k.public_key()).collect();
        let agg = AggregateSignature::aggregate(&sigs).unwrap().to_signature();
        let apk = AggregatePublicKey::aggregate(&pks).unwrap().to_public_key();
        assert!(agg.verify(&apk, b"block"));
        let apk3 = AggregatePublicKey::aggregate(&pks[..3])
            .unwrap()
            .to_public_key();
        assert!(!agg.verify(&apk3, b"block"));
        assert_eq!(
            AggregateSignature::aggregate([]).err(),
            Some(BlsError::Empty)
        );
    }
}
