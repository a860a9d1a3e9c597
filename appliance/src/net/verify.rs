//! Certificate verifiers that pin peers by Ed25519 public key.
//!
//! There are no certificate authorities: a certificate is accepted if and only if
//!
//! 1. it parses as an X.509 certificate whose `SubjectPublicKeyInfo` is an Ed25519 key
//!    (RFC 8410, exactly 44 bytes of DER);
//! 2. that key is in the pinned set (the dialled peer's key on the client side; any other
//!    committee member's key on the server side);
//! 3. it names this network's chain spec: its subject alternative names must cover
//!    [`spec_dns_name`](super::identity::spec_dns_name()) of the expected chain-spec hash;
//! 4. the TLS 1.3 `CertificateVerify` signature verifies under that key with Ed25519 (the only
//!    scheme offered or accepted). TLS 1.2 signatures are always refused.
//!
//! Validity dates, key usages, intermediates and the certificate's own self-signature are
//! not checked: the pinned key and the proof of possession in the handshake are what count.
//! Every refusal carries a [`PinRejection`] (in a `rustls::Error::InvalidCertificate(Other)`,
//! see [`pin_rejection`]), which ends up in the QUIC connection error that the mesh logs at
//! `warn`; the verifier itself logs it at `debug` (target `harmony::net`).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};

use super::identity::{ed25519_key_from_spki, spec_dns_name};

/// Transport keys accepted at the door; shared so the set can grow while the mesh runs.
pub type PinSet = Arc<std::sync::RwLock<HashSet<[u8; 32]>>>;

/// Why a peer certificate or handshake signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinRejection {
    /// The certificate could not be parsed.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// The certificate's key is not an Ed25519 key.
    #[error("certificate key is not an Ed25519 key")]
    NotEd25519,
    /// The key is not pinned for this connection.
    #[error("unknown transport key {key} (not pinned{context})")]
    UnknownKey {
        /// Hex of the presented key.
        key: String,
        /// Extra context, e.g. which peer was expected.
        context: String,
    },
    /// The certificate is for another network (different chain-spec hash).
    #[error("wrong network: certificate names {found:?}, expected chain spec {expected}")]
    WrongSpec {
        /// The DNS name we expect.
        expected: String,
        /// The DNS names the certificate carries.
        found: Vec<String>,
    },
    /// The handshake signature does not verify under the certificate's (pinned) key.
    #[error("bad handshake signature for key {key}: {reason}")]
    BadHandshakeSignature {
        /// Hex of the certificate's key.
        key: String,
        /// Why verification failed.
        reason: String,
    },
    /// The handshake was signed with a scheme other than Ed25519.
    #[error("handshake signed with unsupported scheme {0}")]
    UnsupportedScheme(String),
    /// TLS 1.2 is never accepted.
    #[error("TLS 1.2 is not supported")]
    Tls12,
}

impl From<PinRejection> for rustls::Error {
    fn from(r: PinRejection) -> Self {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(r))))
    }
}

/// Extracts the Ed25519 public key of an end-entity certificate.
pub fn cert_ed25519_key(cert: &CertificateDer<'_>) -> Result<[u8; 32], PinRejection> {
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| PinRejection::MalformedCertificate(e.to_string()))?;
    let spki = ee.subject_public_key_info();
    ed25519_key_from_spki(spki.as_ref()).ok_or(PinRejection::NotEd25519)
}

/// The checks shared by both sides.
struct Pins {
    /// Which side of the handshake we are, for logs: "client" or "server".
    side: &'static str,
    keys: PinSet,
    /// Appended to `UnknownKey` errors (e.g. " for peer 3").
    context: String,
    expected_name: ServerName<'static>,
    expected_name_str: String,
    algs: WebPkiSupportedAlgorithms,
}

impl Pins {
    fn new(side: &'static str, keys: PinSet, context: String, spec: &[u8; 32]) -> Self {
        let expected_name_str = spec_dns_name(spec);
        let expected_name = ServerName::try_from(expected_name_str.clone())
            .expect("spec DNS name is a valid DNS name");
        Self {
            side,
            keys,
            context,
            expected_name,
            expected_name_str,
            algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    fn reject(&self, r: PinRejection) -> rustls::Error {
        // The mesh logs the failed connection (with the peer's address) at `warn`.
        tracing::debug!(target: "harmony::net", side = self.side, reason = %r, "refusing TLS peer");
        r.into()
    }

    /// Steps 1-3: parse, key pinned, names the spec.
    fn check_cert(&self, cert: &CertificateDer<'_>) -> Result<[u8; 32], PinRejection> {
        let ee = webpki::EndEntityCert::try_from(cert)
            .map_err(|e| PinRejection::MalformedCertificate(e.to_string()))?;
        let spki = ee.subject_public_key_info();
        let key = ed25519_key_from_spki(spki.as_ref()).ok_or(PinRejection::NotEd25519)?;
        if !self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return Err(PinRejection::UnknownKey {
                key: hex::encode(key),
                context: self.context.clone(),
            });
        }
        if ee
            .verify_is_valid_for_subject_name(&self.expected_name)
            .is_err()
        {
            return Err(PinRejection::WrongSpec {
                expected: self.expected_name_str.clone(),
                found: ee.valid_dns_names().map(str::to_owned).collect(),
            });
        }
        Ok(key)
    }

    /// Step 4: the TLS 1.3 handshake signature, under the pinned key of `cert`.
    fn check_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, PinRejection> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(PinRejection::UnsupportedScheme(format!("{:?}", dss.scheme)));
        }
        // Defence in depth: the certificate must still be a pinned one.
        let key = self.check_cert(cert)?;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs).map_err(|e| {
            PinRejection::BadHandshakeSignature {
                key: hex::encode(key),
                reason: e.to_string(),
            }
        })
    }

    fn check_tls13_logged(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_tls13(message, cert, dss)
            .map_err(|r| self.reject(r))
    }
}

impl fmt::Debug for Pins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pins")
            .field("side", &self.side)
            .field(
                "keys",
                &self
                    .keys
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(hex::encode)
                    .collect::<Vec<_>>(),
            )
            .field("expected_name", &self.expected_name_str)
            .finish()
    }
}

/// Client side: accepts only the one key expected for the peer being dialled.
#[derive(Debug)]
pub struct PinnedServerVerifier {
    pins: Pins,
}

impl PinnedServerVerifier {
    /// Pins `peer_key` (the key of the peer being dialled; `peer_label` names it in errors)
    /// on the network with chain-spec hash `spec_hash`.
    pub fn new(peer_key: [u8; 32], peer_label: &str, spec_hash: [u8; 32]) -> Self {
        let context = format!("; expected {} for {peer_label}", hex::encode(peer_key));
        Self {
            pins: Pins::new(
                "client",
                Arc::new(std::sync::RwLock::new(HashSet::from([peer_key]))),
                context,
                &spec_hash,
            ),
        }
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.pins
            .check_cert(end_entity)
            .map(|_| ServerCertVerified::assertion())
            .map_err(|r| self.pins.reject(r))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(self.pins.reject(PinRejection::Tls12))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.pins.check_tls13_logged(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Server side: client authentication is mandatory and accepts any pinned committee key.
#[derive(Debug)]
pub struct PinnedClientVerifier {
    pins: Pins,
}

impl PinnedClientVerifier {
    /// Pins `keys` (the known peers' transport keys) on the network with hash `spec_hash`.
    pub fn new(keys: impl IntoIterator<Item = [u8; 32]>, spec_hash: [u8; 32]) -> Self {
        Self::shared(
            Arc::new(std::sync::RwLock::new(keys.into_iter().collect())),
            spec_hash,
        )
    }

    /// Pins whatever `keys` holds at each handshake (the mesh adds peers as they register).
    pub fn shared(keys: PinSet, spec_hash: [u8; 32]) -> Self {
        Self {
            pins: Pins::new("server", keys, " among known peers".to_owned(), &spec_hash),
        }
    }
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.pins
            .check_cert(end_entity)
            .map(|_| ClientCertVerified::assertion())
            .map_err(|r| self.pins.reject(r))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(self.pins.reject(PinRejection::Tls12))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.pins.check_tls13_logged(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Finds the [`PinRejection`] inside a rustls error, if there is one.
pub fn pin_rejection(err: &rustls::Error) -> Option<&PinRejection> {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(e))) => {
            e.downcast_ref::<PinRejection>()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::identity::TransportIdentity;
    use rustls::internal::msgs::codec::{Codec, Reader};

    const SPEC: [u8; 32] = [0x42; 32];

    fn dss(scheme: SignatureScheme, sig: &[u8]) -> DigitallySignedStruct {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&u16::from(scheme).to_be_bytes());
        bytes.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        bytes.extend_from_slice(sig);
        DigitallySignedStruct::read(&mut Reader::init(&bytes)).unwrap()
    }

    fn sign(id: &TransportIdentity, msg: &[u8]) -> Vec<u8> {
        id.signing_key()
            .choose_scheme(&[SignatureScheme::ED25519])
            .unwrap()
            .sign(msg)
            .unwrap()
    }

    fn rejection(r: Result<impl fmt::Debug, rustls::Error>) -> PinRejection {
        let e = r.unwrap_err();
        pin_rejection(&e)
            .cloned()
            .unwrap_or_else(|| panic!("not a pin rejection: {e}"))
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    fn server_name() -> ServerName<'static> {
        ServerName::try_from(spec_dns_name(&SPEC)).unwrap()
    }

    #[test]
    fn client_side_accepts_only_the_dialled_key_on_this_network() {
        let (a, _) = TransportIdentity::generate();
        let (b, _) = TransportIdentity::generate();
        let v = PinnedServerVerifier::new(a.public_key(), "peer 1", SPEC);
        let name = server_name();

        let good = a.self_signed_cert(SPEC).unwrap();
        v.verify_server_cert(&good, &[], &name, &[], now()).unwrap();

        let other = b.self_signed_cert(SPEC).unwrap();
        let r = rejection(v.verify_server_cert(&other, &[], &name, &[], now()));
        let b_hex = hex::encode(b.public_key());
        assert!(
            matches!(&r, PinRejection::UnknownKey { key, .. } if *key == b_hex),
            "{r:?}"
        );
        assert!(r.to_string().contains("peer 1"), "{r}");

        let wrong_net = a.self_signed_cert([0x43; 32]).unwrap();
        let r = rejection(v.verify_server_cert(&wrong_net, &[], &name, &[], now()));
        match r {
            PinRejection::WrongSpec { expected, found } => {
                assert_eq!(expected, spec_dns_name(&SPEC));
                assert_eq!(found, vec![spec_dns_name(&[0x43; 32])]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_side_accepts_any_committee_key_and_requires_client_auth() {
        let ids: Vec<_> = (0..3).map(|_| TransportIdentity::generate().0).collect();
        let (outsider, _) = TransportIdentity::generate();
        let v = PinnedClientVerifier::new(ids.iter().map(|i| i.public_key()), SPEC);
        assert!(v.offer_client_auth());
        assert!(v.client_auth_mandatory());
        for id in &ids {
            v.verify_client_cert(&id.self_signed_cert(SPEC).unwrap(), &[], now())
                .unwrap();
        }
        let r =
            rejection(v.verify_client_cert(&outsider.self_signed_cert(SPEC).unwrap(), &[], now()));
        assert!(matches!(r, PinRejection::UnknownKey { .. }), "{r:?}");
        let r =
            rejection(v.verify_client_cert(&ids[0].self_signed_cert([0; 32]).unwrap(), &[], now()));
        assert!(matches!(r, PinRejection::WrongSpec { .. }), "{r:?}");
    }

    #[test]
    fn rejects_malformed_and_non_ed25519_certificates() {
        let (a, _) = TransportIdentity::generate();
        let v = PinnedClientVerifier::new([a.public_key()], SPEC);
        let r =
            rejection(v.verify_client_cert(&CertificateDer::from(vec![0x30, 0x00]), &[], now()));
        assert!(matches!(r, PinRejection::MalformedCertificate(_)), "{r:?}");

        let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec![spec_dns_name(&SPEC)])
            .unwrap()
            .self_signed(&p256)
            .unwrap();
        let r = rejection(v.verify_client_cert(cert.der(), &[], now()));
        assert_eq!(r, PinRejection::NotEd25519);
    }

    #[test]
    fn handshake_signature_must_come_from_the_certificate_key() {
        let (victim, _) = TransportIdentity::generate();
        let (attacker, _) = TransportIdentity::generate();
        let sv = PinnedServerVerifier::new(victim.public_key(), "peer 1", SPEC);
        let cv = PinnedClientVerifier::new([victim.public_key()], SPEC);
        let cert = victim.self_signed_cert(SPEC).unwrap();
        let msg = b"tls13 transcript hash stand-in";

        let good = dss(SignatureScheme::ED25519, &sign(&victim, msg));
        sv.verify_tls13_signature(msg, &cert, &good).unwrap();
        cv.verify_tls13_signature(msg, &cert, &good).unwrap();

        // Victim's certificate, attacker's signature.
        let forged = dss(SignatureScheme::ED25519, &sign(&attacker, msg));
        for r in [
            rejection(sv.verify_tls13_signature(msg, &cert, &forged)),
            rejection(cv.verify_tls13_signature(msg, &cert, &forged)),
        ] {
            assert!(
                matches!(r, PinRejection::BadHandshakeSignature { .. }),
                "{r:?}"
            );
        }
        // Right signature over a different message.
        let r = rejection(sv.verify_tls13_signature(b"other", &cert, &good));
        assert!(
            matches!(r, PinRejection::BadHandshakeSignature { .. }),
            "{r:?}"
        );
        // Another scheme is refused outright.
        let r = rejection(sv.verify_tls13_signature(
            msg,
            &cert,
            &dss(SignatureScheme::ECDSA_NISTP256_SHA256, &sign(&victim, msg)),
        ));
        assert!(matches!(r, PinRejection::UnsupportedScheme(_)), "{r:?}");
        // A valid signature from an unpinned certificate is still refused.
        let attacker_cert = attacker.self_signed_cert(SPEC).unwrap();
        let r = rejection(sv.verify_tls13_signature(msg, &attacker_cert, &forged));
        assert!(matches!(r, PinRejection::UnknownKey { .. }), "{r:?}");
    }

    #[test]
    fn tls12_is_always_refused_and_only_ed25519_is_offered() {
        let (a, _) = TransportIdentity::generate();
        let sv = PinnedServerVerifier::new(a.public_key(), "peer 1", SPEC);
        let cv = PinnedClientVerifier::new([a.public_key()], SPEC);
        let cert = a.self_signed_cert(SPEC).unwrap();
        let msg = b"m";
        let good = dss(SignatureScheme::ED25519, &sign(&a, msg));
        assert_eq!(
            rejection(sv.verify_tls12_signature(msg, &cert, &good)),
            PinRejection::Tls12
        );
        assert_eq!(
            rejection(cv.verify_tls12_signature(msg, &cert, &good)),
            PinRejection::Tls12
        );
        assert_eq!(
            sv.supported_verify_schemes(),
            vec![SignatureScheme::ED25519]
        );
        assert_eq!(
            cv.supported_verify_schemes(),
            vec![SignatureScheme::ED25519]
        );
    }

    #[test]
    fn cert_ed25519_key_extracts_the_key() {
        let (a, _) = TransportIdentity::generate();
        assert_eq!(
            cert_ed25519_key(&a.self_signed_cert(SPEC).unwrap()),
            Ok(a.public_key())
        );
    }
}
