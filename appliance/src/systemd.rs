//! systemd's notify protocol (`Type=notify`, `WatchdogSec=`): `READY=1` once the node serves,
//! `WATCHDOG=1` from the consensus loop, `STATUS=` for `systemctl status`, `STOPPING=1` on the
//! way out. A datagram to `$NOTIFY_SOCKET`; nothing happens when the variable is unset.
//!
//! The watchdog is petted from the event loop itself (its status tick), not from a timer
//! thread: a loop that stops turning is exactly what systemd should restart.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Where to notify systemd, and how often the watchdog wants a sign of life.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    watchdog: Option<Duration>,
    last_pet: std::sync::Mutex<Option<Instant>>,
}

impl Notifier {
    /// From the environment systemd sets for the service (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
    /// `WATCHDOG_PID`). A socket that cannot be used is logged and ignored: the node runs the
    /// same without systemd.
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let watchdog = watchdog_from(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
        );
        let target = socket.and_then(|path| match connect(&path) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(target: "node", socket = ?path, error = %e, "NOTIFY_SOCKET is set but unusable; systemd will not hear from this node");
                None
            }
        });
        Self {
            target,
            watchdog,
            last_pet: Default::default(),
        }
    }

    /// A notifier that sends nothing (tests, `localnet`).
    pub fn disabled() -> Self {
        Self {
            target: None,
            watchdog: None,
            last_pet: Default::default(),
        }
    }

    /// Sends one notification (`KEY=value` lines). Errors are logged, never fatal.
    pub fn notify(&self, state: &str) {
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(state.as_bytes(), addr) {
                tracing::warn!(target: "node", error = %e, "could not notify systemd");
            }
        }
    }

    /// Pets the watchdog when a quarter of its interval has passed since the last time (so
    /// a status tick of any length keeps it fed), with a status line for `systemctl status`.
    pub fn pet(&self, status: impl FnOnce() -> String) {
        let Some(interval) = self.watchdog else {
            return;
        };
        let mut last = self.last_pet.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < interval / 4) {
            return;
        }
        *last = Some(Instant::now());
        self.notify(&format!("WATCHDOG=1\nSTATUS={}", status()));
    }

    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// The watchdog interval, if systemd asked this process for one.
fn watchdog_from(usec: Option<&str>, pid: Option<&str>) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None; // meant for another process (a wrapper that exec'd us differently)
        }
    }
    Some(Duration::from_micros(usec))
}

fn connect(
    path: &std::ffi::OsStr,
) -> std::io::Result<(UnixDatagram, std::os::unix::net::SocketAddr)> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name)?,
        None => std::os::unix::net::SocketAddr::from_pathname(path)?,
    };
    Ok((UnixDatagram::unbound()?, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_interval_is_for_this_process_only() {
        let me = std::process::id().to_string();
        assert_eq!(
            watchdog_from(Some("30000000"), Some(&me)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_from(Some("30000000"), None),
            Some(Duration::from_secs(30))
        );
        assert_eq!(watchdog_from(Some("30000000"), Some("1")), None);
        assert_eq!(watchdog_from(Some("0"), None), None);
        assert_eq!(watchdog_from(Some("soon"), None), None);
        assert_eq!(watchdog_from(None, None), None);
    }

    #[test]
    fn notifications_reach_the_socket_and_pets_are_spaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let n = Notifier {
            target: Some(connect(path.as_os_str()).unwrap()),
            watchdog: Some(Duration::from_secs(40)),
            last_pet: Default::default(),
        };
        n.notify("READY=1");
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        n.pet(|| "height 7".into());
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1\nSTATUS=height 7");
        // A second pet within a quarter of the interval sends nothing.
        n.pet(|| "height 8".into());
        server.set_nonblocking(true).unwrap();
        assert!(server.recv(&mut buf).is_err());
    }

    #[test]
    fn a_disabled_notifier_is_silent() {
        let n = Notifier::disabled();
        n.notify("READY=1");
        n.pet(|| unreachable!("no watchdog, no status"));
        assert_eq!(n.watchdog(), None);
    }
}
