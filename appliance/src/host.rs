//! Facts about the machine the node runs on, for metrics and `doctor`: free disk space, the
//! kernel's clock-synchronization state, the CPU features blst uses.
// statvfs(3) and adjtimex(2) through libc: two plain system calls with no crate that wraps
// exactly them.
#![allow(unsafe_code)]

use std::path::Path;

/// Bytes available to an unprivileged process on the filesystem holding `path`.
pub fn disk_free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a properly sized, writable struct.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// The kernel's view of its clock: whether NTP (chrony, systemd-timesyncd) disciplines it, and
/// the estimated error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockState {
    pub sync: ClockSync,
    /// The kernel's maximum error estimate, in seconds.
    pub max_error_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSync {
    Synchronized,
    Unsynchronized,
}

/// Reads the clock state with `adjtimex` (read only: `modes = 0` changes nothing).
pub fn clock_state() -> std::io::Result<ClockState> {
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, writable timex with modes 0 (query only).
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ClockState {
        sync: if state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0 {
            ClockSync::Synchronized
        } else {
            ClockSync::Unsynchronized
        },
        max_error_s: tx.maxerror as f64 / 1e6,
    })
}

/// x86-64 features blst's assembly uses for speed (`adx` for field multiplication; the rest
/// for hashing and the pool's parallel work). Missing ones make it slower, not wrong.
pub fn cpu_features() -> Vec<(&'static str, bool)> {
    #[cfg(target_arch = "x86_64")]
    {
        vec![
            ("adx", std::arch::is_x86_feature_detected!("adx")),
            ("bmi2", std::arch::is_x86_feature_detected!("bmi2")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("sha", std::arch::is_x86_feature_detected!("sha")),
        ]
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_free_is_read_and_a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(disk_free_bytes(dir.path()).unwrap() > 0);
        let err = disk_free_bytes(&dir.path().join("no-such")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn the_clock_state_is_readable() {
        let c = clock_state().unwrap();
        assert!(c.max_error_s >= 0.0);
    }
}
