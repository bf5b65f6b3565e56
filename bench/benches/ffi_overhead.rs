//! Criterion bench: the cost of one operator call by call path (native Rust, dlopen'ed
//! function pointer, mlua function, LuaJIT FFI with the JIT on and off, pure Lua).
//! The workloads and their answer checks live in `wafbench::microbench::ffi`.
//! `cargo bench -p wafbench --bench ffi_overhead -- --test` runs each once, checked.

use criterion::{Criterion, criterion_group, criterion_main};
use wafbench::microbench::{criterion_run, ffi};

fn benches(c: &mut Criterion) {
    let suite = ffi::suite().unwrap_or_else(|e| panic!("ffi_overhead: {e}"));
    criterion_run(c, suite);
}

criterion_group!(ffi_overhead, benches);
criterion_main!(ffi_overhead);
