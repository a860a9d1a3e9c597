//! The one way this crate takes a std mutex.
//!
//! A poisoned mutex means a thread panicked while holding it, so what it guards (the pool, peer
//! sets, counters) may be half-updated. All of it is rebuilt from the chain at restart, so the
//! panic is passed on, naming the call site, rather than running on inconsistent state.

use std::sync::{Mutex, MutexGuard};

pub trait LockExt<T> {
    /// Locks, panicking (with the caller's location) if a holder panicked.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> LockExt<T> for Mutex<T> {
    #[track_caller]
    fn locked(&self) -> MutexGuard<'_, T> {
        match self.lock() {
            Ok(g) => g,
            Err(_) => panic!(
                "a thread panicked while holding this lock; stopping rather than running on \
                 half-updated state (restart the node: pools and peer sets are rebuilt)"
            ),
        }
    }
}
