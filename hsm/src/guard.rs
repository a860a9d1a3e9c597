//! The double-sign guard: no consensus signature leaves the signer before its slot and payload
//! hash are durable on disk.
//!
//! A *slot* is (key, chain id, shard, kind, block number, view). Each (key, shard, kind) has one
//! *watermark*, the highest (number, view) it signed, with the hash of the payload signed there.
//! A request
//! - above the watermark is recorded (one record for all keys of the message), the log file is
//!   fsynced, then its directory, and only then is the request allowed;
//! - at the watermark with the same payload is answered again (no write);
//! - at the watermark with another payload is refused ([`GuardStats::conflicts`]);
//! - below the watermark is refused ([`GuardStats::below_watermark`]).
//!
//! The log (`guard.log`) is append-only: each record is `len u32 | body | sha256(body)[..8]`.
//! A torn record at the end (a crash inside `write`) is dropped on load: its fsync had not
//! returned, so nothing it guarded was released. Damage anywhere else stops the guard.
//!
//! Several processes may share a guard directory: every check runs under an exclusive `flock`
//! on `guard.lock` and first reads what others appended, so of two conflicting requests exactly
//! one succeeds.

use crate::request::{payload, MsgKind, SignRequest};
use accel::PublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const LOG_FILE: &str = "guard.log";
const LOCK_FILE: &str = "guard.lock";
const REC_KEY: u8 = 1;
const REC_SIGN: u8 = 2;
/// Above this size the log is rewritten with only the watermarks when a guard is opened.
const COMPACT_BYTES: u64 = 4 << 20;

/// Why the guard refused or failed. Messages name the slot, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "double-sign refused: key {key} already signed another {kind:?} payload at \
         shard {shard} block {number} view {view}"
    )]
    Conflict {
        key: String,
        kind: MsgKind,
        shard: u32,
        number: u64,
        view: u64,
    },
    #[error(
        "refused: {kind:?} at shard {shard} block {number} view {view} is below key {key}'s \
         watermark (block {w_number} view {w_view})"
    )]
    BelowWatermark {
        key: String,
        kind: MsgKind,
        shard: u32,
        number: u64,
        view: u64,
        w_number: u64,
        w_view: u64,
    },
    #[error(
        "key {0} has no double-sign guard history here; import it with \
         `harmony-appliance keys import-guard`, or pass --allow-new-guard-history if this key \
         has never signed on any machine"
    )]
    NoHistory(String),
    #[error("guard {path}: {message}")]
    Io { path: String, message: String },
    #[error("guard {path} is damaged at byte {offset}: {message}; restore it from an interchange export (`keys import-guard`) before signing again")]
    Corrupt {
        path: String,
        offset: u64,
        message: String,
    },
    #[error("guard interchange file: {0}")]
    Interchange(String),
}

/// Counters the appliance exports as metrics.
#[derive(Debug, Default)]
pub struct GuardStats {
    /// Requests refused because the slot was signed with another payload.
    pub conflicts: AtomicU64,
    /// Requests refused because they were below the watermark.
    pub below_watermark: AtomicU64,
    /// Durable records written (one per message, for all keys).
    pub records: AtomicU64,
    /// Identical requests answered again without a write.
    pub repeats: AtomicU64,
}

impl GuardStats {
    pub fn refused(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed) + self.below_watermark.load(Ordering::Relaxed)
    }
}

/// Points inside a durable write where a test may kill the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    AfterWrite,
    AfterFileSync,
    AfterDirSync,
    BeforeReturn,
}

type Hook = Box<dyn Fn(Failpoint) + Send + Sync>;

/// Outcome of an allowed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Recorded durably just now.
    Recorded,
    /// Identical to what was signed at this slot: answered again.
    Repeat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    chain_id: u64,
    number: u64,
    view: u64,
    hash: [u8; 32],
}

#[derive(Default)]
struct State {
    keys: Vec<[u8; 48]>,
    index: HashMap<[u8; 48], u16>,
    marks: HashMap<(u16, u32, MsgKind), Mark>,
}

impl State {
    fn apply(&mut self, body: &[u8]) -> Result<(), String> {
        match body.first() {
            Some(&REC_KEY) if body.len() == 49 => {
                let mut pk = [0u8; 48];
                pk.copy_from_slice(&body[1..]);
                if !self.index.contains_key(&pk) {
                    let i = u16::try_from(self.keys.len()).map_err(|_| "too many keys")?;
                    self.index.insert(pk, i);
                    self.keys.push(pk);
                }
                Ok(())
            }
            Some(&REC_SIGN) if body.len() >= 64 => {
                let kind = MsgKind::from_u8(body[1]).ok_or("unknown message kind")?;
                let u64_at = |o: usize| u64::from_be_bytes(body[o..o + 8].try_into().expect("8"));
                let chain_id = u64_at(2);
                let shard = u32::from_be_bytes(body[10..14].try_into().expect("4"));
                let number = u64_at(14);
                let view = u64_at(22);
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&body[30..62]);
                let n = u16::from_be_bytes([body[62], body[63]]) as usize;
                if body.len() != 64 + 2 * n {
                    return Err("bad key count".into());
                }
                let mark = Mark {
                    chain_id,
                    number,
                    view,
                    hash,
                };
                for i in 0..n {
                    let k = u16::from_be_bytes([body[64 + 2 * i], body[65 + 2 * i]]);
                    if k as usize >= self.keys.len() {
                        return Err("record names an unknown key".into());
                    }
                    let e = self.marks.entry((k, shard, kind)).or_insert(mark);
                    if (number, view) >= (e.number, e.view) {
                        *e = mark;
                    }
                }
                Ok(())
            }
            _ => Err("unknown record".into()),
        }
    }
}

fn key_body(pk: &[u8; 48]) -> Vec<u8> {
    let mut b = Vec::with_capacity(49);
    b.push(REC_KEY);
    b.extend_from_slice(pk);
    b
}

fn sign_body(kind: MsgKind, shard: u32, mark: &Mark, keys: &[u16]) -> Vec<u8> {
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

fn frame(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&Sha256::digest(body)[..8]);
}

struct Inner {
    log: File,
    ino: u64,
    /// Bytes of the log already applied to `state`.
    read_to: u64,
    state: State,
}

/// The double-sign guard over one directory. Cheap to share behind an `Arc`.
pub struct Guard {
    dir: PathBuf,
    lock: File,
    inner: Mutex<Inner>,
    stats: Arc<GuardStats>,
    failpoint: Option<Hook>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("dir", &self.dir).finish()
    }
}

/// Payload hash stored by the guard: SHA-256 of the exact signed bytes.
pub fn payload_hash(req: &SignRequest) -> [u8; 32] {
    Sha256::digest(payload(req)).into()
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> GuardError {
    GuardError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    fn exclusive(f: &'a File, path: &Path) -> Result<Self, GuardError> {
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

impl Guard {
    /// Opens (creating if needed, mode 0700) the guard in `dir`.
    pub fn open(dir: &Path) -> Result<Self, GuardError> {
        Self::open_compacting_above(dir, COMPACT_BYTES)
    }

    /// Like [`Guard::open`], rewriting the log to its watermarks when it is larger than
    /// `bytes` (tests use a small value).
    #[doc(hidden)]
    pub fn open_compacting_above(dir: &Path, bytes: u64) -> Result<Self, GuardError> {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io_err(dir, e))?;
            if let Some(parent) = dir.parent() {
                let _ = fsync_dir(parent);
            }
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| io_err(&lock_path, e))?;
        let log_path = dir.join(LOG_FILE);
        let _l = Flock::exclusive(&lock, &lock_path)?;
        let existed = log_path.exists();
        let log = open_log(&log_path)?;
        if !existed {
            fsync_dir(dir).map_err(|e| io_err(dir, e))?;
        }
        let ino = log.metadata().map_err(|e| io_err(&log_path, e))?.ino();
        let mut inner = Inner {
            log,
            ino,
            read_to: 0,
            state: State::default(),
        };
        let guard_path = log_path.clone();
        catch_up(&mut inner, &guard_path)?;
        if inner.read_to > bytes {
            compact(&mut inner, dir)?;
        }
        drop(_l);
        Ok(Self {
            dir: dir.to_path_buf(),
            lock,
            inner: Mutex::new(inner),
            stats: Arc::new(GuardStats::default()),
            failpoint: None,
        })
    }

    /// Installs a hook called at each [`Failpoint`] (crash tests only).
    #[doc(hidden)]
    pub fn set_failpoint_hook(&mut self, hook: impl Fn(Failpoint) + Send + Sync + 'static) {
        self.failpoint = Some(Box::new(hook));
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stats(&self) -> Arc<GuardStats> {
        self.stats.clone()
    }

    fn with_lock<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, GuardError>,
    ) -> Result<T, GuardError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let lock_path = self.dir.join(LOCK_FILE);
        let _l = Flock::exclusive(&self.lock, &lock_path)?;
        let log_path = self.dir.join(LOG_FILE);
        // Another process may have compacted (replaced) the log: start over from the new file.
        let ino = std::fs::metadata(&log_path)
            .map_err(|e| io_err(&log_path, e))?
            .ino();
        if ino != inner.ino {
            inner.log = open_log(&log_path)?;
            inner.ino = ino;
            inner.read_to = 0;
            inner.state = State::default();
        }
        catch_up(&mut inner, &log_path)?;
        f(&mut inner)
    }

    /// Whether `pk` has a history (possibly empty) in this guard.
    pub fn has_history(&self, pk: &PublicKey) -> Result<bool, GuardError> {
        let pk = pk.to_bytes();
        self.with_lock(|inner| Ok(inner.state.index.contains_key(&pk)))
    }

    /// Starts an (empty) history for keys that have none. Only for keys that never signed
    /// anywhere else: a key moving from another machine brings its history with
    /// [`Guard::import`].
    pub fn register(&self, pks: &[PublicKey]) -> Result<(), GuardError> {
        self.with_lock(|inner| {
            let mut buf = Vec::new();
            for pk in pks {
                let b = pk.to_bytes();
                if !inner.state.index.contains_key(&b) {
                    frame(&key_body(&b), &mut buf);
                }
            }
            if !buf.is_empty() {
                self.append(inner, &buf, false)?;
            }
            Ok(())
        })
    }

    /// Checks `req` for every key in `pks` and makes it durable before returning `Ok`.
    /// Refuses the whole message if any key would double-sign.
    pub fn check_and_record(
        &self,
        pks: &[PublicKey],
        req: &SignRequest,
    ) -> Result<Decision, GuardError> {
        let hash = payload_hash(req);
        let pk_bytes: Vec<[u8; 48]> = pks.iter().map(|p| p.to_bytes()).collect();
        self.with_lock(|inner| {
            let mut idx = Vec::with_capacity(pks.len());
            let mut fresh = false;
            for pk in &pk_bytes {
                let i = *inner
                    .state
                    .index
                    .get(pk)
                    .ok_or_else(|| GuardError::NoHistory(format!("0x{}", hex::encode(pk))))?;
                idx.push(i);
                match inner.state.marks.get(&(i, req.shard, req.kind)) {
                    None => fresh = true,
                    Some(m) => {
                        let at = (req.number, req.view);
                        let w = (m.number, m.view);
                        if at > w {
                            fresh = true;
                        } else if at == w && m.hash == hash {
                        } else if at == w {
                            self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                            return Err(GuardError::Conflict {
                                key: short(pk),
                                kind: req.kind,
                                shard: req.shard,
                                number: req.number,
                                view: req.view,
                            });
                        } else {
                            self.stats.below_watermark.fetch_add(1, Ordering::Relaxed);
                            return Err(GuardError::BelowWatermark {
                                key: short(pk),
                                kind: req.kind,
                                shard: req.shard,
                                number: req.number,
                                view: req.view,
                                w_number: m.number,
                                w_view: m.view,
                            });
                        }
                    }
                }
            }
            if !fresh {
                self.stats.repeats.fetch_add(1, Ordering::Relaxed);
                return Ok(Decision::Repeat);
            }
            let mark = Mark {
                chain_id: req.chain_id,
                number: req.number,
                view: req.view,
                hash,
            };
            let mut buf = Vec::new();
            frame(&sign_body(req.kind, req.shard, &mark, &idx), &mut buf);
            self.append(inner, &buf, true)?;
            self.stats.records.fetch_add(1, Ordering::Relaxed);
            Ok(Decision::Recorded)
        })
    }

    /// Appends framed records, fsyncs the file and the directory, and applies them.
    fn append(&self, inner: &mut Inner, buf: &[u8], hooks: bool) -> Result<(), GuardError> {
        let path = self.dir.join(LOG_FILE);
        let hit = |p| {
            if hooks {
                if let Some(h) = &self.failpoint {
                    h(p)
                }
            }
        };
        inner
            .log
            .seek(SeekFrom::Start(inner.read_to))
            .map_err(|e| io_err(&path, e))?;
        inner.log.write_all(buf).map_err(|e| io_err(&path, e))?;
        hit(Failpoint::AfterWrite);
        inner.log.sync_data().map_err(|e| io_err(&path, e))?;
        hit(Failpoint::AfterFileSync);
        fsync_dir(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        hit(Failpoint::AfterDirSync);
        // Apply what we wrote (it parses: we framed it).
        let mut off = 0;
        while off < buf.len() {
            let len = u32::from_be_bytes(buf[off..off + 4].try_into().expect("4")) as usize;
            inner
                .state
                .apply(&buf[off + 4..off + 4 + len])
                .map_err(|m| GuardError::Corrupt {
                    path: path.display().to_string(),
                    offset: inner.read_to + off as u64,
                    message: m,
                })?;
            off += len + 12;
        }
        inner.read_to += buf.len() as u64;
        hit(Failpoint::BeforeReturn);
        Ok(())
    }

    /// The whole history, for moving a validator to another machine.
    pub fn export(&self) -> Result<Interchange, GuardError> {
        self.with_lock(|inner| {
            let st = &inner.state;
            let mut keys: Vec<InterchangeKey> = st
                .keys
                .iter()
                .map(|pk| InterchangeKey {
                    public_key: format!("0x{}", hex::encode(pk)),
                    watermarks: Vec::new(),
                })
                .collect();
            let mut marks: Vec<_> = st.marks.iter().collect();
            marks.sort_by_key(|((k, s, kind), _)| (*k, *s, *kind));
            for ((k, shard, kind), m) in marks {
                keys[*k as usize].watermarks.push(InterchangeMark {
                    chain_id: m.chain_id,
                    shard: *shard,
                    kind: kind_name(*kind).into(),
                    number: m.number,
                    view: m.view,
                    payload_hash: format!("0x{}", hex::encode(m.hash)),
                });
            }
            Ok(Interchange {
                format: INTERCHANGE_FORMAT.into(),
                version: 1,
                keys,
            })
        })
    }

    /// Merges an exported history: keys are registered, and each watermark is raised to the
    /// imported one where that is higher. Never lowers a watermark.
    pub fn import(&self, ic: &Interchange) -> Result<usize, GuardError> {
        if ic.format != INTERCHANGE_FORMAT || ic.version != 1 {
            return Err(GuardError::Interchange(format!(
                "format `{}` version {} is not `{INTERCHANGE_FORMAT}` version 1",
                ic.format, ic.version
            )));
        }
        let mut parsed = Vec::new();
        for k in &ic.keys {
            let pk = decode_hex::<48>(&k.public_key)
                .map_err(|e| GuardError::Interchange(format!("public_key: {e}")))?;
            let mut ms = Vec::new();
            for w in &k.watermarks {
                let kind = kind_from_name(&w.kind).ok_or_else(|| {
                    GuardError::Interchange(format!(
                        "kind `{}` is not prepare, commit, viewchange or newview",
                        w.kind
                    ))
                })?;
                let hash = decode_hex::<32>(&w.payload_hash)
                    .map_err(|e| GuardError::Interchange(format!("payload_hash: {e}")))?;
                ms.push((
                    w.shard,
                    kind,
                    Mark {
                        chain_id: w.chain_id,
                        number: w.number,
                        view: w.view,
                        hash,
                    },
                ));
            }
            parsed.push((pk, ms));
        }
        self.with_lock(|inner| {
            let mut buf = Vec::new();
            let mut next = inner.state.keys.len();
            let mut new_index = HashMap::new();
            for (pk, _) in &parsed {
                if !inner.state.index.contains_key(pk) && !new_index.contains_key(pk) {
                    frame(&key_body(pk), &mut buf);
                    new_index.insert(*pk, next as u16);
                    next += 1;
                }
            }
            let mut raised = 0;
            for (pk, ms) in &parsed {
                let i = inner
                    .state
                    .index
                    .get(pk)
                    .or_else(|| new_index.get(pk))
                    .copied()
                    .expect("registered above");
                for (shard, kind, m) in ms {
                    let cur = inner.state.marks.get(&(i, *shard, *kind));
                    if cur.is_none_or(|c| (m.number, m.view) > (c.number, c.view)) {
                        frame(&sign_body(*kind, *shard, m, &[i]), &mut buf);
                        raised += 1;
                    }
                }
            }
            if !buf.is_empty() {
                self.append(inner, &buf, false)?;
            }
            Ok(raised)
        })
    }
}

fn short(pk: &[u8; 48]) -> String {
    format!("0x{}…", hex::encode(&pk[..8]))
}

fn open_log(path: &Path) -> Result<File, GuardError> {
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
fn catch_up(inner: &mut Inner, path: &Path) -> Result<(), GuardError> {
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
fn compact(inner: &mut Inner, dir: &Path) -> Result<(), GuardError> {
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

pub const INTERCHANGE_FORMAT: &str = "harmony-appliance/guard-interchange";

/// Exported guard history (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interchange {
    pub format: String,
    pub version: u32,
    pub keys: Vec<InterchangeKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterchangeKey {
    /// 0x-prefixed compressed BLS public key.
    pub public_key: String,
    pub watermarks: Vec<InterchangeMark>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterchangeMark {
    pub chain_id: u64,
    pub shard: u32,
    /// `prepare`, `commit`, `viewchange` or `newview`.
    pub kind: String,
    pub number: u64,
    pub view: u64,
    /// 0x-prefixed SHA-256 of the signed payload.
    pub payload_hash: String,
}

impl Interchange {
    pub fn from_json(text: &str) -> Result<Self, GuardError> {
        serde_json::from_str(text).map_err(|e| GuardError::Interchange(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializes")
    }
}

fn kind_name(k: MsgKind) -> &'static str {
    match k {
        MsgKind::Prepare => "prepare",
        MsgKind::Commit => "commit",
        MsgKind::ViewChange => "viewchange",
        MsgKind::NewView => "newview",
    }
}

fn kind_from_name(s: &str) -> Option<MsgKind> {
    [
        MsgKind::Prepare,
        MsgKind::Commit,
        MsgKind::ViewChange,
        MsgKind::NewView,
    ]
    .into_iter()
    .find(|k| kind_name(*k) == s)
}

pub(crate) fn decode_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let v = hex::decode(s.trim_start_matches("0x")).map_err(|_| format!("`{s}` is not hex"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| format!("{} bytes where {N} were expected", v.len()))
}
