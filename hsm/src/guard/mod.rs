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
//!
//! By concern: [`decide`] (the pure watermark rule, no I/O), `log` (the fsync'd record log,
//! its lock, catch-up and compaction) and [`interchange`] (export and import of the history).

mod decide;
pub mod interchange;
mod log;

pub use interchange::{Interchange, InterchangeKey, InterchangeMark, INTERCHANGE_FORMAT};

use crate::request::{payload, MsgKind, SignRequest};
use accel::PublicKey;
use decide::{Mark, State, Verdict};
use log::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
            let idx = match decide::decide(&inner.state, &pk_bytes, req, hash) {
                Ok(Verdict::Repeat) => {
                    self.stats.repeats.fetch_add(1, Ordering::Relaxed);
                    return Ok(Decision::Repeat);
                }
                Ok(Verdict::Fresh(idx)) => idx,
                Err(e) => {
                    match &e {
                        GuardError::Conflict { .. } => &self.stats.conflicts,
                        _ => &self.stats.below_watermark,
                    }
                    .fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            };
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
}

fn short(pk: &[u8; 48]) -> String {
    format!("0x{}…", hex::encode(&pk[..8]))
}
