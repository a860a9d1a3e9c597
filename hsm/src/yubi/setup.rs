//! Provisioning a device from a profile, and checking a provisioned one against it.

use super::connect::is_mock;
use super::profile::{ObjectSpec, Profile};
use super::HsmError;
use std::path::Path;
use yubihsm::object::Type as T;
use yubihsm::{asymmetric, object, wrap, Capability, Client, Domain};
use zeroize::Zeroizing;

fn err(m: impl Into<String>) -> HsmError {
    HsmError::Provisioning(m.into())
}

/// Provisions a device from `profile`; idempotent. Passwords of new authentication keys and
/// a new wrap key are written (mode 0600) into `secrets_dir`. Returns what was done, one line
/// per object.
///
/// The steps, in order: refuse a device holding objects the profile does not name (unless
/// `force`), then for each object keep it if it matches the profile, replace it (with `force`)
/// or create it: authentication keys, the wrap key, the HMAC sealing key, the transport and
/// operator keys; last, retire the factory authentication key if the profile says so.
pub fn setup(
    client: &Client,
    profile: &Profile,
    secrets_dir: &Path,
    wrap_key_hex: Option<&str>,
    force: bool,
) -> Result<Vec<String>, HsmError> {
    let mut p = Provisioning {
        client,
        profile,
        secrets_dir,
        force,
        domains: profile.domains()?,
        entries: client
            .list_objects(&[])
            .map_err(|e| err(format!("listing objects: {e}")))?,
        done: Vec::new(),
    };
    p.refuse_foreign_objects()?;
    std::fs::create_dir_all(secrets_dir)
        .map_err(|e| err(format!("{}: {e}", secrets_dir.display())))?;
    p.authentication_keys()?;
    p.wrap_key(wrap_key_hex)?;
    p.hmac_key()?;
    p.asymmetric_keys()?;
    p.retire_factory_key()?;
    Ok(p.done)
}

/// One provisioning run: the device, the profile, and the report of what was done.
struct Provisioning<'a> {
    client: &'a Client,
    profile: &'a Profile,
    secrets_dir: &'a Path,
    force: bool,
    domains: Domain,
    entries: Vec<object::Entry>,
    done: Vec<String>,
}

impl Provisioning<'_> {
    fn exists(&self, id: u16, t: T) -> bool {
        self.entries
            .iter()
            .any(|e| e.object_id == id && e.object_type == t)
    }

    /// Objects other than the profile's (and the factory key) are someone else's.
    fn refuse_foreign_objects(&self) -> Result<(), HsmError> {
        let p = self.profile;
        let mut named: Vec<(u16, T)> = p
            .roles
            .iter()
            .map(|r| (r.id, T::AuthenticationKey))
            .collect();
        named.push((1, T::AuthenticationKey));
        named.push((p.wrap_key.id, T::WrapKey));
        named.push((p.hmac_key.id, T::HmacKey));
        named.push((p.transport_key.id, T::AsymmetricKey));
        named.push((p.operator_key.id, T::AsymmetricKey));
        let others: Vec<String> = self
            .entries
            .iter()
            .filter(|e| !named.contains(&(e.object_id, e.object_type)))
            .map(|e| format!("{:?} 0x{:04x}", e.object_type, e.object_id))
            .collect();
        if !others.is_empty() && !self.force {
            return Err(err(format!(
                "the device holds objects the profile does not name ({}); refusing to touch it. \
                 Pass --force to provision it anyway",
                others.join(", ")
            )));
        }
        Ok(())
    }

    /// Whether `spec` already exists exactly as the profile says (kept). One that differs is
    /// deleted with `force` (and reported), refused without.
    fn keep_existing(&mut self, spec: &ObjectSpec, t: T) -> Result<bool, HsmError> {
        if !self.exists(spec.id, t) {
            return Ok(false);
        }
        let info = self
            .client
            .get_object_info(spec.id, t)
            .map_err(|e| err(format!("reading {} 0x{:04x}: {e}", spec.name, spec.id)))?;
        if info.capabilities == spec.caps()?
            && info.domains == self.domains
            && info.delegated_capabilities == spec.delegated()?
        {
            self.done.push(format!(
                "{} (0x{:04x}): already provisioned, kept",
                spec.name, spec.id
            ));
            return Ok(true);
        }
        if !self.force {
            return Err(err(format!(
                "{} (0x{:04x}) exists with other capabilities or domains than the profile; \
                 pass --force to replace it",
                spec.name, spec.id
            )));
        }
        self.client
            .delete_object(spec.id, t)
            .map_err(|e| err(format!("deleting {} 0x{:04x}: {e}", spec.name, spec.id)))?;
        self.done.push(format!(
            "{} (0x{:04x}): differed from the profile, deleted",
            spec.name, spec.id
        ));
        Ok(false)
    }

    /// One authentication key per role, each with a fresh random password written beside.
    fn authentication_keys(&mut self) -> Result<(), HsmError> {
        for r in &self.profile.roles {
            if self.keep_existing(r, T::AuthenticationKey)? {
                continue;
            }
            let mut pw = Zeroizing::new([0u8; 24]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut pw[..]);
            let pw_hex = Zeroizing::new(hex::encode(&pw[..]));
            let file = self.secrets_dir.join(format!("{}-password", r.name));
            crate::keystore::write_private(&file, pw_hex.as_bytes())
                .map_err(|e| err(format!("{}: {e}", file.display())))?;
            self.client
                .put_authentication_key(
                    r.id,
                    r.label(),
                    self.domains,
                    r.caps()?,
                    r.delegated()?,
                    yubihsm::authentication::Algorithm::YubicoAes,
                    yubihsm::authentication::Key::derive_from_password(pw_hex.as_bytes()),
                )
                .map_err(|e| err(format!("creating auth key {}: {e}", r.name)))?;
            self.done.push(format!(
                "{} (0x{:04x}): authentication key created, password in {}",
                r.name,
                r.id,
                file.display()
            ));
        }
        Ok(())
    }

    /// The backup wrap key: the operator's material (`wrap_key_hex`), or fresh material
    /// written to `wrap-key.hex` for the operator to store offline.
    fn wrap_key(&mut self, wrap_key_hex: Option<&str>) -> Result<(), HsmError> {
        let w = &self.profile.wrap_key;
        if self.keep_existing(w, T::WrapKey)? {
            return Ok(());
        }
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
                let file = self.secrets_dir.join("wrap-key.hex");
                crate::keystore::write_private(&file, hex::encode(&k[..]).as_bytes())
                    .map_err(|e| err(format!("{}: {e}", file.display())))?;
                self.done.push(format!(
                    "wrap key material written to {}: store it offline (split it), then delete it",
                    file.display()
                ));
                k
            }
        };
        self.client
            .put_wrap_key(
                w.id,
                w.label(),
                self.domains,
                w.caps()?,
                w.delegated()?,
                wrap::Algorithm::Aes256Ccm,
                key.to_vec(),
            )
            .map_err(|e| err(format!("putting the wrap key: {e}")))?;
        self.done
            .push(format!("{} (0x{:04x}): wrap key created", w.name, w.id));
        Ok(())
    }

    /// The HMAC key sealed BLS keys are derived under (generated inside, never exported).
    fn hmac_key(&mut self) -> Result<(), HsmError> {
        let h = &self.profile.hmac_key;
        if self.keep_existing(h, T::HmacKey)? {
            return Ok(());
        }
        self.client
            .generate_hmac_key(
                h.id,
                h.label(),
                self.domains,
                h.caps()?,
                yubihsm::hmac::Algorithm::Sha256,
            )
            .map_err(|e| err(format!("generating the HMAC sealing key: {e}")))?;
        self.done.push(format!(
            "{} (0x{:04x}): HMAC sealing key generated",
            h.name, h.id
        ));
        Ok(())
    }

    /// The Ed25519 transport key and the secp256k1 operator key, generated inside.
    fn asymmetric_keys(&mut self) -> Result<(), HsmError> {
        let p = self.profile;
        for (k, alg) in [
            (&p.transport_key, asymmetric::Algorithm::Ed25519),
            (&p.operator_key, asymmetric::Algorithm::EcK256),
        ] {
            if self.keep_existing(k, T::AsymmetricKey)? {
                continue;
            }
            self.client
                .generate_asymmetric_key(k.id, k.label(), self.domains, k.caps()?, alg)
                .map_err(|e| err(format!("generating {}: {e}", k.name)))?;
            self.done.push(format!(
                "{} (0x{:04x}): {alg:?} key generated in the HSM",
                k.name, k.id
            ));
        }
        Ok(())
    }

    /// Deletes the factory authentication key (0x0001, known password) when the profile asks.
    fn retire_factory_key(&mut self) -> Result<(), HsmError> {
        if !self.profile.delete_default_auth_key || !self.exists(1, T::AuthenticationKey) {
            return Ok(());
        }
        let client = self.client;
        let info = client
            .get_object_info(1, T::AuthenticationKey)
            .map_err(|e| err(format!("reading the factory authentication key: {e}")))?;
        // Already neutralized (see below): nothing to do.
        if info.capabilities.is_empty() && info.label.to_string() == "harmony-retired" {
            self.done
                .push("factory authentication key (0x0001): already retired, kept".into());
            return Ok(());
        }
        client
            .delete_object(1, T::AuthenticationKey)
            .map_err(|e| err(format!("deleting the factory authentication key: {e}")))?;
        if !is_mock(client)? {
            self.done
                .push("factory authentication key (0x0001): deleted".into());
            return Ok(());
        }
        // MockHsm (yubihsm 0.42) panics, and stays dead, when a session is opened with a
        // deleted authentication key. On a MockHsm the factory key is replaced by one with no
        // capabilities and a random, unrecorded password.
        let mut pw = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut pw[..]);
        client
            .put_authentication_key(
                1,
                object::Label::from("harmony-retired"),
                self.domains,
                Capability::empty(),
                Capability::empty(),
                yubihsm::authentication::Algorithm::YubicoAes,
                yubihsm::authentication::Key::derive_from_password(&pw[..]),
            )
            .map_err(|e| err(format!("retiring the factory authentication key: {e}")))?;
        self.done.push(
            "factory authentication key (0x0001): deleted (MockHsm: replaced by a \
             capability-less key with a random password)"
                .into(),
        );
        Ok(())
    }
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
