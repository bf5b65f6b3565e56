//! A counting global allocator, so the benches can report how many heap bytes a structure
//! holds (build it inside [`build_measured`], which reads the live-byte count before and
//! after). Each binary that wants the figures installs it:
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc;`. Counting is off until the
//! first [`build_measured`], so a binary pays one relaxed load per allocation otherwise;
//! without the allocator installed, memory is reported as unknown.
//!
//! Underneath is mimalloc, not the C library's allocator: the native evaluator makes a few
//! hundred small allocations per request (TX variables, captures, request collections), and
//! glibc's malloc/free cost about 5% of its instructions (callgrind, 100 benign requests,
//! CRS PL1), its free-list consolidation also a share of its cache misses. The ModSecurity
//! peer, a C++ library, keeps using the C library's allocator.

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ENABLED: AtomicBool = AtomicBool::new(false);

/// mimalloc plus a live-bytes counter, active once enabled.
pub struct CountingAlloc;

#[inline]
fn count(delta: isize) {
    if ENABLED.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every call forwards to `MiMalloc` unchanged; the counter has no effect on memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: forwarded contract.
        unsafe { MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: forwarded contract.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: forwarded contract.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded contract.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// Heap bytes allocated through [`CountingAlloc`] since counting was enabled.
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Turns counting on and tells whether [`CountingAlloc`] is the global allocator.
pub fn enable() -> bool {
    ENABLED.store(true, Ordering::Relaxed);
    let before = live_bytes();
    let probe = std::hint::black_box(Box::new([0u8; 64]));
    let installed = live_bytes() != before;
    drop(probe);
    installed
}

/// Builds a value and returns it with the build time and the heap bytes it still holds
/// (`None` when the counting allocator is not installed). Single-threaded builds only.
pub fn build_measured<T>(f: impl FnOnce() -> T) -> (T, std::time::Duration, Option<usize>) {
    let installed = enable();
    let before = live_bytes();
    let t = std::time::Instant::now();
    let v = f();
    let took = t.elapsed();
    let after = live_bytes();
    (v, took, installed.then(|| (after - before).max(0) as usize))
}
