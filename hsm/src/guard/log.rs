//! The guard's log on disk: framed, checksummed records appended and fsynced (file, then
//! directory) under an exclusive `flock`; catch-up of records other processes appended, and
//! compaction to the watermarks.
// `flock` is the one libc call here: the std library has no advisory file lock on this MSRV.
#![allow(unsafe_code)]

use super::*;

pub(super) const LOG_FILE: &str = "guard.log";
pub(super) const LOCK_FILE: &str = "guard.lock";
pub(super) const REC_KEY: u8 = 1;
pub(super) const REC_SIGN: u8 = 2;
/// Above this size the log is rewritten with only the watermarks when a guard is opened.
pub(super) const COMPACT_BYTES: u64 = 4 << 20;

pub(super) fn key_body(pk: &[u8; 48]) -> Vec<u8> {
    let mut b = Vec::with_capacity(49);
    b.push(REC_KEY);
    b.extend_from_slice(pk);
    b
}

pub(super) fn sign_body(kind: MsgKind, shard: u32, mark: &Mark, keys: &[u16]) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + 2 * keys.len());
    b.push(REC_SIGN);
    b.push(kind as u8);
    b.extend_from_slice(&mark.chain_id.to_be_bytes());
    b.extend_from_slice(&shard.to_be_bytes());
    b.extend_from_slice(&mark.number.to_be_bytes());
    b.extend_from_slice(&mark.view.to_be_bytes());
    b.extend_from_slice(&mark.hash);
    b.extend_from_slice(&(keys.len() as u16).to_be_bytes());
    for k in keys {
        b.extend_from_slice(&k.to_be_bytes());
    }
    b
}

pub(super) fn frame(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&Sha256::digest(body)[..8]);
}

pub(super) fn io_err(path: &Path, e: impl std::fmt::Display) -> GuardError {
    GuardError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

pub(super) fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(super) struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    pub(super) fn exclusive(f: &'a File, path: &Path) -> Result<Self, GuardError> {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(Self(f));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(io_err(path, format!("lock: {e}")));
            }
        }
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlock a descriptor we own.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

pub(super) fn open_log(path: &Path) -> Result<File, GuardError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, e))
}

/// Applies records appended since `read_to`. A torn record at the very end is cut off.
pub(super) fn catch_up(inner: &mut Inner, path: &Path) -> Result<(), GuardError> {
    let len = inner.log.metadata().map_err(|e| io_err(path, e))?.len();
    if len == inner.read_to {
        return Ok(());
    }
    let mut buf = Vec::with_capacity((len - inner.read_to) as usize);
    inner
        .log
        .seek(SeekFrom::Start(inner.read_to))
        .map_err(|e| io_err(path, e))?;
    (&inner.log)
        .take(len - inner.read_to)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    let mut off = 0usize;
    while off < buf.len() {
        let at = inner.read_to + off as u64;
        let torn = |inner: &mut Inner| -> Result<(), GuardError> {
            // An incomplete last record: its write never finished, so its fsync never
            // returned and no signature depended on it.
            inner.log.set_len(at).map_err(|e| io_err(path, e))?;
            inner.log.sync_data().map_err(|e| io_err(path, e))?;
            inner.read_to = at;
            Ok(())
        };
        if buf.len() - off < 4 {
            return torn(inner);
        }
        let n = u32::from_be_bytes(buf[off..off + 4].try_into().expect("4")) as usize;
        if buf.len() - off < 4 + n + 8 {
            if n > 1 << 20 {
                return Err(GuardError::Corrupt {
                    path: path.display().to_string(),
                    offset: at,
                    message: "impossible record length".into(),
                });
            }
            return torn(inner);
        }
        let body = &buf[off + 4..off + 4 + n];
        let sum = &buf[off + 4 + n..off + 12 + n];
        if Sha256::digest(body)[..8] != *sum {
            if off + 12 + n == buf.len() {
                return torn(inner);
            }
            return Err(GuardError::Corrupt {
                path: path.display().to_string(),
                offset: at,
                message: "checksum mismatch".into(),
            });
        }
        inner.state.apply(body).map_err(|m| GuardError::Corrupt {
            path: path.display().to_string(),
            offset: at,
            message: m,
        })?;
        off += 12 + n;
    }
    inner.read_to = len;
    Ok(())
}

/// Rewrites the log with only keys and watermarks (under the lock), atomically.
pub(super) fn compact(inner: &mut Inner, dir: &Path) -> Result<(), GuardError> {
    let mut buf = Vec::new();
    for pk in &inner.state.keys {
        frame(&key_body(pk), &mut buf);
    }
    for ((k, shard, kind), m) in &inner.state.marks {
        frame(&sign_body(*kind, *shard, m, &[*k]), &mut buf);
    }
    let tmp = dir.join("guard.log.tmp");
    let path = dir.join(LOG_FILE);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        f.write_all(&buf).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    fsync_dir(dir).map_err(|e| io_err(dir, e))?;
    inner.log = open_log(&path)?;
    inner.ino = inner.log.metadata().map_err(|e| io_err(&path, e))?.ino();
    inner.read_to = buf.len() as u64;
    Ok(())
}
