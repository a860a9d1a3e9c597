//! Reaching the device: connector specs, authenticated sessions, and the MockHsm server.

use super::{HsmError, MOCK_SERIAL};
use yubihsm::{Client, Connector, Credentials};

fn err(m: impl Into<String>) -> HsmError {
    HsmError::Device(m.into())
}

/// Parses `usb` or `http://host:port`.
pub fn connector(spec: &str) -> Result<Connector, HsmError> {
    if spec == "usb" {
        return Ok(Connector::usb(&Default::default()));
    }
    let rest = spec.strip_prefix("http://").ok_or_else(|| {
        HsmError::Unreachable(format!(
            "HSM connector `{spec}` is neither `usb` nor `http://host:port`"
        ))
    })?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| {
            HsmError::Unreachable(format!(
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
            K::AuthenticationError | K::CreateFailed => HsmError::AuthRefused(format!(
                "the HSM at {spec} refused authentication key {auth_key_id} with this password; \
                 check the key id (`keys.hsm_auth_key_id`) and the password file"
            )),
            _ => HsmError::Unreachable(format!(
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
