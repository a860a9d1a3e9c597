//! Provisioning profiles (`firmware-config/yubihsm/*.toml`): which objects a device holds, with
//! which capabilities and domains.

use super::{HsmError, DEFAULT_PROFILE};
use serde::{Deserialize, Serialize};
use std::path::Path;
use yubihsm::{object, Capability, Domain};

fn err(m: impl Into<String>) -> HsmError {
    HsmError::Profile(m.into())
}

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

pub(super) fn caps(names: &[String], what: &str) -> Result<Capability, HsmError> {
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
    pub(super) fn label(&self) -> object::Label {
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
