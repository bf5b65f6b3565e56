//! pprof over a closure names the closure's functions. In its own test binary: pprof's
//! signal handler unwinds whatever thread it lands on, and the crate's unit tests run LuaJIT
//! on other threads (see `waf_profiler::native_pprof`).

use waf_profiler::native_pprof::pprof_folded;

#[inline(never)]
fn spin_for_profile(ms: u64) -> u64 {
    let t = std::time::Instant::now();
    let mut x = 0u64;
    while t.elapsed() < std::time::Duration::from_millis(ms) {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    x
}

#[test]
fn samples_name_the_spinning_function() {
    let (_, f) = pprof_folded(499, || spin_for_profile(300)).unwrap();
    assert!(f.total() >= 20, "{} samples", f.total());
    assert!(f.to_text().contains("spin_for_profile"), "{}", f.to_text());
}
