//! YubiHSM 2 (and MockHsm) backend, provisioning profiles and sealed BLS keys.
//!
//! YubiHSM 2 has no BLS12-381. Each BLS secret is sealed with AES-256-GCM (ring) under a key
//! that is an HMAC-SHA256 computed *inside* the HSM (`hmac_key` of the profile) over a random
//! salt stored in the sealed file; the HMAC key leaves the device only wrapped under the backup
//! wrap key. A sealed file is useless without the HSM. At start the secrets are unsealed into
//! locked, zeroized memory ([`LockedKeys`]).
//!
//! The Ed25519 transport key and the secp256k1 operator key are generated in the HSM and never
//! leave it: [`HsmEd25519Key`] signs TLS handshakes and certificates through the device.
//!
//! MockHsm does not enforce capabilities or domains, so [`check_device`] reads back every
//! object the node uses and refuses a device provisioned looser than its profile.

use crate::locked::LockedKeys;
use crate::request::{payload, SignRequest};
use crate::{SignError, Signatures, Signer};
use accel::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
pub use yubihsm::Client;
use yubihsm::{asymmetric, object, wrap, Capability, Connector, Credentials, Domain};
use zeroize::Zeroizing;

/// Serial number MockHsm reports; a real device never has it.
pub const MOCK_SERIAL: &str = "0123456789";
/// The profile shipped in `firmware-config/yubihsm/default.toml`.
pub const DEFAULT_PROFILE: &str = include_str!("../../firmware-config/yubihsm/default.toml");
const SEAL_CONTEXT: &[u8] = b"harmony-appliance/bls-seal/v1";

/// An HSM problem, phrased as what to do about it. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HsmError(pub String);

fn err(m: impl Into<String>) -> HsmError {
    HsmError(m.into())
}

/// Parses `usb` or `http://host:port`.
pub fn connector(spec: &str) -> Result<Connector, HsmError> {
    if spec == "usb" {
        return Ok(Connector::usb(&Default::default()));
    }
    let rest = spec.strip_prefix("http://").ok_or_else(|| {
        err(format!(
            "HSM connector `{spec}` is neither `usb` nor `http://host:port`"
        ))
    })?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| {
            err(format!(
                "HSM connector `{spec}` lacks a port (http://host:port)"
            ))
        })?;
    Ok(Connector::http(&yubihsm::HttpConfig {
        addr: host.into(),
        port,
        timeout_ms: 5000,
    }))
}

/// Opens an authenticated session. Errors say whether the device is absent or the
/// authentication key refused the password.
pub fn open(spec: &str, auth_key_id: u16, password: &[u8]) -> Result<Client, HsmError> {
    let c = connector(spec)?;
    Client::open(c, Credentials::from_password(auth_key_id, password), true).map_err(|e| {
        use yubihsm::client::ErrorKind as K;
        match e.kind() {
            K::AuthenticationError | K::CreateFailed => err(format!(
                "the HSM at {spec} refused authentication key {auth_key_id} with this password; \
                 check the key id (`keys.hsm_auth_key_id`) and the password file"
            )),
            _ => err(format!(
                "no HSM answers at {spec} ({e}); plug in the YubiHSM 2 and start \
                 yubihsm-connector, or for development start `harmony-appliance hsm mock-connector`"
            )),
        }
    })
}

/// Serves a fresh MockHsm over the yubihsm-connector HTTP protocol until the process ends.
pub fn serve_mock(addr: &str, port: u16, ready: impl FnOnce()) -> Result<(), HsmError> {
    let server = yubihsm::connector::http::Server::new(
        &yubihsm::HttpConfig {
            addr: addr.into(),
            port,
            timeout_ms: 5000,
        },
        Connector::mockhsm(),
    )
    .map_err(|e| err(format!("cannot listen on {addr}:{port}: {e}")))?;
    ready();
    loop {
        // One bad request must not stop the device.
        if let Err(e) = server.handle_request() {
            eprintln!("mock-connector: {e}");
        }
    }
}

/// Whether the device behind `client` is a MockHsm.
pub fn is_mock(client: &Client) -> Result<bool, HsmError> {
    let info = client
        .device_info()
        .map_err(|e| err(format!("device info: {e}")))?;
    Ok(info.serial_number.to_string() == MOCK_SERIAL)
}

// ---------------------------------------------------------------------------------------------
// Profiles

/// A declarative provisioning profile (`firmware-config/yubihsm/*.toml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    /// Domains (1..=16) every object of the profile lives in.
    pub domains: Vec<u8>,
    /// Delete the factory authentication key (id 1, password `password`) at the end.
    pub delete_default_auth_key: bool,
    /// Authentication keys, one per role: admin, operator, auditor, validator.
    pub roles: Vec<ObjectSpec>,
    pub wrap_key: ObjectSpec,
    pub hmac_key: ObjectSpec,
    pub transport_key: ObjectSpec,
    pub operator_key: ObjectSpec,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSpec {
    /// Role name for authentication keys; a label otherwise.
    pub name: String,
    pub id: u16,
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub delegated_capabilities: Vec<String>,
}

fn caps(names: &[String], what: &str) -> Result<Capability, HsmError> {
    let mut c = Capability::empty();
    for n in names {
        c |= n.parse::<Capability>().map_err(|_| {
            err(format!(
                "profile: `{n}` in {what} is not a YubiHSM capability (e.g. sign-hmac)"
            ))
        })?;
    }
    Ok(c)
}

impl ObjectSpec {
    pub fn caps(&self) -> Result<Capability, HsmError> {
        caps(&self.capabilities, &self.name)
    }
    pub fn delegated(&self) -> Result<Capability, HsmError> {
        caps(&self.delegated_capabilities, &self.name)
    }
    fn label(&self) -> object::Label {
        object::Label::from(format!("harmony-{}", self.name).as_str())
    }
}

impl Profile {
    pub fn parse(text: &str, path: &str) -> Result<Self, HsmError> {
        let p: Profile = toml::from_str(text).map_err(|e| err(format!("profile {path}: {e}")))?;
        p.validate()
            .map_err(|e| err(format!("profile {path}: {e}")))?;
        Ok(p)
    }

    pub fn load(path: &Path) -> Result<Self, HsmError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("profile {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn default_profile() -> Self {
        Self::parse(DEFAULT_PROFILE, "default").expect("the shipped profile is valid")
    }

    pub fn domains(&self) -> Result<Domain, HsmError> {
        let mut d = Domain::empty();
        for &n in &self.domains {
            if !(1..=16).contains(&n) {
                return Err(err(format!("domain {n} is not in 1..=16")));
            }
            d |= yubihsm::domain::DOMAINS[n as usize - 1];
        }
        Ok(d)
    }

    pub fn role(&self, name: &str) -> Result<&ObjectSpec, HsmError> {
        self.roles
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| err(format!("profile has no `{name}` role")))
    }

    fn validate(&self) -> Result<(), HsmError> {
        if self.domains.is_empty() {
            return Err(err("`domains` is empty"));
        }
        self.domains()?;
        for want in ["admin", "operator", "auditor", "validator"] {
            self.role(want)?;
        }
        let mut ids = std::collections::HashSet::new();
        for o in self.roles.iter() {
            o.caps()?;
            o.delegated()?;
            if o.id == 1 {
                return Err(err(format!(
                    "role `{}` uses id 1, the factory authentication key",
                    o.name
                )));
            }
            if !ids.insert(o.id) {
                return Err(err(format!("authentication key id {} used twice", o.id)));
            }
        }
        for o in [
            &self.wrap_key,
            &self.hmac_key,
            &self.transport_key,
            &self.operator_key,
        ] {
            o.caps()?;
            o.delegated()?;
        }
        // Least privilege: the key a running node holds may only sign.
        let v = self.role("validator")?.caps()?;
        let allowed = Capability::SIGN_HMAC | Capability::SIGN_EDDSA | Capability::SIGN_ECDSA;
        if !allowed.contains(v) {
            return Err(err(
                "the validator role may only have sign-hmac, sign-eddsa and sign-ecdsa",
            ));
        }
        if self
            .transport_key
            .caps()?
            .contains(Capability::EXPORTABLE_UNDER_WRAP)
            || self
                .operator_key
                .caps()?
                .contains(Capability::EXPORTABLE_UNDER_WRAP)
        {
            return Err(err(
                "the transport and operator keys never leave the HSM: drop exportable-under-wrap",
            ));
        }
        Ok(())
    }
}

/// Provisions a device from `profile`; idempotent. Passwords of new authentication keys and
/// a new wrap key are written (mode 0600) into `secrets_dir`. Returns what was done, one line
/// per object.
pub fn setup(
    client: &Client,
    profile: &Profile,
    secrets_dir: &Path,
    wrap_key_hex: Option<&str>,
    force: bool,
) -> Result<Vec<String>, HsmError> {
    use object::Type as T;
    let domains = profile.domains()?;
    let entries = client
        .list_objects(&[])
        .map_err(|e| err(format!("listing objects: {e}")))?;
    let mut named: Vec<(u16, T)> = profile
        .roles
        .iter()
        .map(|r| (r.id, T::AuthenticationKey))
        .collect();
    named.push((1, T::AuthenticationKey));
    named.push((profile.wrap_key.id, T::WrapKey));
    named.push((profile.hmac_key.id, T::HmacKey));
    named.push((profile.transport_key.id, T::AsymmetricKey));
    named.push((profile.operator_key.id, T::AsymmetricKey));
    let others: Vec<String> = entries
        .iter()
        .filter(|e| !named.contains(&(e.object_id, e.object_type)))
        .map(|e| format!("{:?} 0x{:04x}", e.object_type, e.object_id))
        .collect();
    if !others.is_empty() && !force {
        return Err(err(format!(
            "the device holds objects the profile does not name ({}); refusing to touch it. \
             Pass --force to provision it anyway",
            others.join(", ")
        )));
    }
    let exists = |id: u16, t: T| {
        entries
            .iter()
            .any(|e| e.object_id == id && e.object_type == t)
    };
    std::fs::create_dir_all(secrets_dir)
        .map_err(|e| err(format!("{}: {e}", secrets_dir.display())))?;
    let mut done = Vec::new();
    // Existing objects must match the profile exactly, or be replaced with --force.
    let check_existing =
        |spec: &ObjectSpec, t: T, done: &mut Vec<String>| -> Result<bool, HsmError> {
            if !exists(spec.id, t) {
                return Ok(false);
            }
            let info = client
                .get_object_info(spec.id, t)
                .map_err(|e| err(format!("reading {} 0x{:04x}: {e}", spec.name, spec.id)))?;
            if info.capabilities == spec.caps()?
                && info.domains == domains
                && info.delegated_capabilities == spec.delegated()?
            {
                done.push(format!(
                    "{} (0x{:04x}): already provisioned, kept",
                    spec.name, spec.id
                ));
                return Ok(true);
            }
            if !force {
                return Err(err(format!(
                    "{} (0x{:04x}) exists with other capabilities or domains than the profile; \
                 pass --force to replace it",
                    spec.name, spec.id
                )));
            }
            client
                .delete_object(spec.id, t)
                .map_err(|e| err(format!("deleting {} 0x{:04x}: {e}", spec.name, spec.id)))?;
            done.push(format!(
                "{} (0x{:04x}): differed from the profile, deleted",
                spec.name, spec.id
            ));
            Ok(false)
        };
    for r in &profile.roles {
        if check_existing(r, T::AuthenticationKey, &mut done)? {
            continue;
        }
        let mut pw = Zeroizing::new([0u8; 24]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut pw[..]);
        let pw_hex = Zeroizing::new(hex::encode(&pw[..]));
        let file = secrets_dir.join(format!("{}-password", r.name));
        crate::keystore::write_private(&file, pw_hex.as_bytes())
            .map_err(|e| err(format!("{}: {e}", file.display())))?;
        client
            .put_authentication_key(
                r.id,
                r.label(),
                domains,
                r.caps()?,
                r.delegated()?,
                yubihsm::authentication::Algorithm::YubicoAes,
                yubihsm::authentication::Key::derive_from_password(pw_hex.as_bytes()),
            )
            .map_err(|e| err(format!("creating auth key {}: {e}", r.name)))?;
        done.push(format!(
            "{} (0x{:04x}): authentication key created, password in {}",
            r.name,
            r.id,
            file.display()
        ));
    }
    let w = &profile.wrap_key;
    if !check_existing(w, T::WrapKey, &mut done)? {
        let key: Zeroizing<Vec<u8>> = match wrap_key_hex {
            Some(h) => Zeroizing::new(
                hex::decode(h.trim())
                    .ok()
                    .filter(|k| k.len() == 32)
                    .ok_or_else(|| err("the wrap key file must hold 32 bytes in hex"))?,
            ),
            None => {
                let mut k = Zeroizing::new(vec![0u8; 32]);
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k[..]);
                let file = secrets_dir.join("wrap-key.hex");
                crate::keystore::write_private(&file, hex::encode(&k[..]).as_bytes())
                    .map_err(|e| err(format!("{}: {e}", file.display())))?;
                done.push(format!(
                    "wrap key material written to {}: store it offline (split it), then delete it",
                    file.display()
                ));
                k
            }
        };
        client
            .put_wrap_key(
                w.id,
                w.label(),
                domains,
                w.caps()?,
                w.delegated()?,
                wrap::Algorithm::Aes256Ccm,
                key.to_vec(),
            )
            .map_err(|e| err(format!("putting the wrap key: {e}")))?;
        done.push(format!("{} (0x{:04x}): wrap key created", w.name, w.id));
    }
    let h = &profile.hmac_key;
    if !check_existing(h, T::HmacKey, &mut done)? {
        client
            .generate_hmac_key(
                h.id,
                h.label(),
                domains,
                h.caps()?,
                yubihsm::hmac::Algorithm::Sha256,
            )
            .map_err(|e| err(format!("generating the HMAC sealing key: {e}")))?;
        done.push(format!(
            "{} (0x{:04x}): HMAC sealing key generated",
            h.name, h.id
        ));
    }
    for (k, alg) in [
        (&profile.transport_key, asymmetric::Algorithm::Ed25519),
        (&profile.operator_key, asymmetric::Algorithm::EcK256),
    ] {
        if !check_existing(k, T::AsymmetricKey, &mut done)? {
            client
                .generate_asymmetric_key(k.id, k.label(), domains, k.caps()?, alg)
                .map_err(|e| err(format!("generating {}: {e}", k.name)))?;
            done.push(format!(
                "{} (0x{:04x}): {alg:?} key generated in the HSM",
                k.name, k.id
            ));
        }
    }
    if profile.delete_default_auth_key && exists(1, T::AuthenticationKey) {
        let info = client
            .get_object_info(1, T::AuthenticationKey)
            .map_err(|e| err(format!("reading the factory authentication key: {e}")))?;
        // Already neutralized (see below): nothing to do.
        if info.capabilities.is_empty() && info.label.to_string() == "harmony-retired" {
            done.push("factory authentication key (0x0001): already retired, kept".into());
        } else {
            client
                .delete_object(1, T::AuthenticationKey)
                .map_err(|e| err(format!("deleting the factory authentication key: {e}")))?;
            if is_mock(client)? {
                // MockHsm (yubihsm 0.42) panics, and stays dead, when a session is opened
                // with a deleted authentication key. On a MockHsm the factory key is
                // replaced by one with no capabilities and a random, unrecorded password.
                let mut pw = Zeroizing::new([0u8; 32]);
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut pw[..]);
                client
                    .put_authentication_key(
                        1,
                        object::Label::from("harmony-retired"),
                        domains,
                        Capability::empty(),
                        Capability::empty(),
                        yubihsm::authentication::Algorithm::YubicoAes,
                        yubihsm::authentication::Key::derive_from_password(&pw[..]),
                    )
                    .map_err(|e| err(format!("retiring the factory authentication key: {e}")))?;
                done.push(
                    "factory authentication key (0x0001): deleted (MockHsm: replaced by a \
                     capability-less key with a random password)"
                        .into(),
                );
            } else {
                done.push("factory authentication key (0x0001): deleted".into());
            }
        }
    }
    Ok(done)
}

/// Reads back the objects a running node uses and refuses any looser than `profile` (MockHsm
/// enforces nothing, and a device may have been set up by hand).
pub fn check_device(client: &Client, profile: &Profile, auth_key_id: u16) -> Result<(), HsmError> {
    use object::Type as T;
    let domains = profile.domains()?;
    let validator = profile.role("validator")?;
    if validator.id != auth_key_id {
        return Err(err(format!(
            "the node logs in with authentication key {auth_key_id}, but the profile's validator \
             role is {}; set keys.hsm_auth_key_id = {}",
            validator.id, validator.id
        )));
    }
    let mut objects: Vec<(&ObjectSpec, T)> = profile
        .roles
        .iter()
        .map(|r| (r, T::AuthenticationKey))
        .collect();
    objects.extend([
        (&profile.wrap_key, T::WrapKey),
        (&profile.hmac_key, T::HmacKey),
        (&profile.transport_key, T::AsymmetricKey),
        (&profile.operator_key, T::AsymmetricKey),
    ]);
    for (spec, t) in objects {
        let info = client.get_object_info(spec.id, t).map_err(|e| {
            err(format!(
                "{} (0x{:04x}) is missing or unreadable on the HSM ({e}); provision the device \
                 with `harmony-appliance hsm setup`",
                spec.name, spec.id
            ))
        })?;
        let extra = info.capabilities - spec.caps()?;
        let extra_del = info.delegated_capabilities - spec.delegated()?;
        let extra_dom = info.domains - domains;
        if !extra.is_empty() || !extra_del.is_empty() || !extra_dom.is_empty() {
            return Err(err(format!(
                "{} (0x{:04x}) is looser than profile `{}` (extra capabilities: {extra:?}, extra \
                 delegated: {extra_del:?}, extra domains: {extra_dom:?}); re-provision with \
                 `harmony-appliance hsm setup --force`",
                spec.name, spec.id, profile.name
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sealed BLS keys

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
