//! BLS secrets in locked memory: the key array is `mlock`ed (never swapped out) and each key is
//! zeroized when dropped (blst clears its scalar on drop).
// mlock/munlock of the pages holding secret keys (libc).
#![allow(unsafe_code)]

use accel::SecretKey;

/// Secret keys pinned in RAM for the life of the signer.
pub struct LockedKeys {
    keys: Box<[SecretKey]>,
    locked: bool,
}

impl LockedKeys {
    pub fn new(keys: Vec<SecretKey>) -> Self {
        let keys = keys.into_boxed_slice();
        let len = std::mem::size_of_val(&*keys);
        let locked = len == 0 || {
            // SAFETY: the range is the live allocation of `keys`, which is never moved while
            // this struct exists (a boxed slice does not reallocate).
            unsafe { libc::mlock(keys.as_ptr().cast(), len) == 0 }
        };
        Self { keys, locked }
    }

    pub fn keys(&self) -> &[SecretKey] {
        &self.keys
    }

    /// False when `mlock` failed (RLIMIT_MEMLOCK too low); the keys still work.
    pub fn is_locked(&self) -> bool {
        self.locked
    }
}

impl Drop for LockedKeys {
    fn drop(&mut self) {
        let len = std::mem::size_of_val(&*self.keys);
        let ptr = self.keys.as_ptr();
        // Zeroize the scalars before unlocking the pages.
        let keys = std::mem::take(&mut self.keys);
        drop(keys);
        if self.locked && len > 0 {
            // SAFETY: unlocking a range we locked; the memory is freed but munlock on a
            // freed range only fails with ENOMEM, which we ignore.
            unsafe {
                libc::munlock(ptr.cast(), len);
            }
        }
    }
}

impl std::fmt::Debug for LockedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LockedKeys({} keys, redacted)", self.keys.len())
    }
}
