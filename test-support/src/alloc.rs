//! Exact allocation counts for tests: a counting global allocator that counts the calling
//! thread's allocations (another thread's — an exporter's — are not the caller's cost).
//!
//! A test crate installs it and counts:
//!
//! ```text
//! use loopotel_test_support::alloc::{Counting, count};
//!
//! #[global_allocator]
//! static GLOBAL: Counting = Counting;
//!
//! let per_call = count(2_000, || { /* one call */ });
//! assert_eq!(per_call.median, 0);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts allocations (and reallocations) made by each thread; forwards to the system
/// allocator.
#[derive(Debug)]
pub struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to the system allocator unchanged; counting touches only a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations this thread made so far (0 unless [`Counting`] is the global allocator).
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// What one path allocated per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerCall {
    /// The median count over the counted calls.
    pub median: u64,
    /// The largest count (amortised growth shows here).
    pub max: u64,
}

/// Counts the allocations of each of `calls` calls of `f`, after as many warm-up calls.
pub fn count(calls: usize, mut f: impl FnMut()) -> PerCall {
    for _ in 0..calls {
        f();
    }
    let mut counts: Vec<u64> = Vec::with_capacity(calls.max(1));
    for _ in 0..calls {
        let before = allocations();
        f();
        counts.push(allocations() - before);
    }
    counts.sort_unstable();
    PerCall {
        median: counts.get(calls / 2).copied().unwrap_or(0),
        max: counts.last().copied().unwrap_or(0),
    }
}

/// Counts the bytes allocated and not yet freed, by every thread; forwards to the system
/// allocator. For tests of memory that must stay flat.
#[derive(Debug)]
pub struct LiveBytes;

static LIVE_BYTES: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged; counting touches only an
// atomic integer, which never allocates.
unsafe impl GlobalAlloc for LiveBytes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Bytes allocated and not freed, process-wide (0 unless [`LiveBytes`] is the global
/// allocator).
pub fn live_bytes() -> isize {
    LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}
