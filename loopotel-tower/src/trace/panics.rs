//! Callbacks run inside `catch_unwind`: a panicking callback is counted
//! ([`callback_panics`]) and skipped, never passed on to the caller.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};

static CALLBACK_PANICS: AtomicU64 = AtomicU64::new(0);

/// How many user callbacks panicked (caught and skipped) in this process.
pub fn callback_panics() -> u64 {
    CALLBACK_PANICS.load(Ordering::Relaxed)
}

/// Runs a user callback; a panic is caught and counted.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            CALLBACK_PANICS.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}
