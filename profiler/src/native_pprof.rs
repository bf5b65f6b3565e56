//! Real Rust stacks of a closure, sampled by pprof-rs (SIGPROF), as [`Folded`] stacks.
//!
//! Flow: take [`crate::SIGPROF_LOCK`], start a `ProfilerGuard` at `frequency` Hz, run the
//! closure, build the report and write each sampled stack root first (`thread;main;...;leaf
//! count`). These frames are functions, not rules: pprof cannot tell which rule an
//! `eval_rule` frame was evaluating; the rule-level picture comes from
//! [`crate::RuleProfile::folded`].
//!
//! pprof's handler unwinds the stack of whichever thread the signal lands on. A thread
//! running LuaJIT at that moment (compiled traces have no unwind tables) can crash the
//! unwinder: nothing else may run Lua in the process while this samples. The tool runs its
//! pprof pass on its own; the test lives in `tests/native_pprof.rs`, a process of its own,
//! since it crashed once (SIGSEGV) beside this crate's Lua tests.

use crate::{Folded, ProfileError, SIGPROF_LOCK};

/// Samples the stacks of `f` at `frequency` Hz (pprof's signal handler runs on the thread
/// that the signal lands on; the profiled work should run on the calling thread).
pub fn pprof_folded<R>(frequency: i32, f: impl FnOnce() -> R) -> Result<(R, Folded), ProfileError> {
    let _guard = SIGPROF_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(frequency)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| ProfileError::Pprof(e.to_string()))?;
    let value = f();
    let report = guard.report().build().map_err(|e| ProfileError::Pprof(e.to_string()))?;
    drop(guard);
    let mut folded = Folded::new();
    for (frames, count) in &report.data {
        let mut stack = vec![frames.thread_name_or_id()];
        for frame in frames.frames.iter().rev() {
            for sym in frame.iter().rev() {
                stack.push(sym.name());
            }
        }
        folded.add(&stack, u64::try_from(*count).unwrap_or(0));
    }
    Ok((value, folded))
}
