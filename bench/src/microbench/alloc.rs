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

/// Alignment every mimalloc block has, whatever its size: its size classes are multiples of
/// a pointer's size (blocks of 8 or 24 bytes are not 16-aligned, which the test below found
/// when this was `MI_MAX_ALIGN_SIZE`). Layouts that ask no more (byte buffers, strings, most
/// structs) take `mi_malloc`/`mi_zalloc`/`mi_realloc`, not the `_aligned` entry points
/// `MiMalloc` always calls, whose extra checks were about 0.6% of a native decision's
/// instructions (a few hundred allocations a request).
const PLAIN_ALIGN: usize = std::mem::size_of::<usize>();

// SAFETY: every call forwards to mimalloc (through `MiMalloc`, or directly for alignments
// mimalloc always gives); the counter has no effect on memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: non-zero size (GlobalAlloc contract); every mimalloc block is
            // PLAIN_ALIGN-aligned.
            return unsafe { libmimalloc_sys::mi_malloc(layout.size()) }.cast();
        }
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
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: as in `alloc`.
            return unsafe { libmimalloc_sys::mi_zalloc(layout.size()) }.cast();
        }
        // SAFETY: forwarded contract.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        if layout.align() <= PLAIN_ALIGN {
            // SAFETY: `ptr` came from mimalloc with this layout; the new block keeps
            // mimalloc's PLAIN_ALIGN alignment.
            return unsafe { libmimalloc_sys::mi_realloc(ptr.cast(), new_size) }.cast();
        }
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

#[cfg(test)]
mod tests {
    use super::CountingAlloc;
    use std::alloc::{GlobalAlloc, Layout};

    /// Whatever entry point serves a layout, the block has the alignment asked for, keeps its
    /// bytes through `realloc` and comes zeroed from `alloc_zeroed`.
    #[test]
    fn blocks_have_the_alignment_asked_for() {
        let a = CountingAlloc;
        for size in [1usize, 7, 16, 24, 100, 4096, 70_000] {
            for align in [1usize, 8, 16, 32, 4096] {
                let l = Layout::from_size_align(size, align).unwrap();
                let grown = Layout::from_size_align(size * 3, align).unwrap();
                // SAFETY: non-zero sizes; every block is freed with the layout it has.
                unsafe {
                    let p = a.alloc(l);
                    assert!(!p.is_null() && p as usize % align == 0, "alloc {size}/{align}");
                    p.write_bytes(0xab, size);
                    let q = a.realloc(p, l, size * 3);
                    assert!(!q.is_null() && q as usize % align == 0, "realloc {size}/{align}");
                    assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xab));
                    a.dealloc(q, grown);
                    let z = a.alloc_zeroed(l);
                    assert!(!z.is_null() && z as usize % align == 0, "zeroed {size}/{align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, l);
                }
            }
        }
    }
}
