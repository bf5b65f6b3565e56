//! Sampling profiler for generated Lua with the JIT on: LuaJIT's own `jit.profile`.
//!
//! Flow: [`sample`] starts `jit.profile` in line mode with a Lua callback that records, per
//! sample, the VM state (N compiled, I interpreted, C in C code, G garbage collector, J JIT
//! compiler) and the stack (`profile.dumpstack`, root first, `chunk:line` frames) into a Lua
//! table; after the caller's closure returns, the profiler stops, reads the table and maps
//! every frame of the profiled chunk to `rule_<id>` through a [`LineMap`] (frames outside any
//! rule keep `chunk:line`). Result: [`Folded`] stacks `vm_N;rule_100;rule_200 count`.
//!
//! `jit.profile` arms SIGPROF, as pprof-rs does: both take [`crate::SIGPROF_LOCK`]. LuaJIT
//! allows one profiled VM per process at a time.

use crate::{Folded, LineMap, ProfileError, SIGPROF_LOCK};
use mlua::Lua;
use serde::Serialize;

/// A sampling profile.
#[derive(Debug, Clone)]
pub struct SampleProfile {
    pub folded: Folded,
    pub samples: u64,
    pub interval_ms: u32,
    /// Samples per VM state letter (`N`, `I`, `C`, `G`, `J`).
    pub vm_states: Vec<(String, u64)>,
}

/// Summary for reports.
#[derive(Debug, Clone, Serialize)]
pub struct SampleSummary {
    pub samples: u64,
    pub interval_ms: u32,
    pub vm_states: Vec<(String, u64)>,
}

impl SampleProfile {
    pub fn summary(&self) -> SampleSummary {
        SampleSummary {
            samples: self.samples,
            interval_ms: self.interval_ms,
            vm_states: self.vm_states.clone(),
        }
    }
}

/// The sampling interval `profile` and `report` use, in ms (LuaJIT allows 1 ms): a few
/// hundred samples per second of sampling, a quarter of the callbacks (and of their cost).
pub const SAMPLE_INTERVAL_MS: u32 = 4;

/// Keeps LuaJIT's SIGPROF sampler from wedging the VM.
///
/// The sampler's signal handler rewrites the VM's dispatch table (`lj_dispatch_update`). When
/// the signal lands while the VM thread is itself inside `lj_dispatch_update` (which it runs
/// around every sample callback), the interrupted update finishes with its stale view: the
/// table stays full of profiler hooks while the VM believes none is installed, and every
/// instruction re-enters the hook forever (LuaJIT issue #1460, fixed upstream after the
/// LuaJIT that mlua vendors). Our tests hung there in about one run in three.
///
/// The same happens when the signal is delivered to another thread of the process (the
/// timer's signal goes to any thread): its handler then rewrites the table concurrently
/// with the VM thread. A test run hung that way with the fix below limited to the first
/// case (the VM thread stuck in the callback, the other threads idle).
///
/// Once `jit.profile` has installed its handler, [`install`] puts a wrapper in front of it:
/// a signal on another thread than the VM's, or that interrupted code inside
/// `lj_dispatch_update`, is dropped (one sample fewer); any other is passed on unchanged. `profile.stop()` restores the handler LuaJIT saved, so
/// the wrapper goes with it.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod sigprof_guard {
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::{AtomicUsize, Ordering};

    unsafe extern "C" {
        // LuaJIT's (hidden) dispatch-table update, linked in statically by mlua's `vendored`.
        fn lj_dispatch_update(g: *mut c_void);
    }

    /// Bytes from the start of `lj_dispatch_update` treated as inside it: the function is
    /// 809 bytes in the vendored LuaJIT, makes no calls, and the few bytes after it belong to
    /// other dispatch hooks, where dropping a sample costs nothing.
    const WINDOW: usize = 1024;

    /// LuaJIT's handler (`void (*)(int)`), 0 when none is wrapped.
    static LUAJIT_HANDLER: AtomicUsize = AtomicUsize::new(0);

    /// Kernel id of the thread that runs the sampled VM.
    static VM_THREAD: AtomicUsize = AtomicUsize::new(0);

    fn gettid() -> usize {
        // SAFETY: a plain system call, async-signal-safe.
        unsafe { libc::syscall(libc::SYS_gettid) as usize }
    }

    extern "C" fn on_sigprof(sig: c_int, _info: *mut libc::siginfo_t, ctx: *mut c_void) {
        // ITIMER_PROF's signal goes to any thread of the process. On another thread, LuaJIT's
        // handler would rewrite the VM's dispatch table while the VM thread may be rewriting
        // it too, with no signal boundary between them: the same stale table as below. Such
        // a signal is dropped (the time it stands for was not spent in the VM).
        if gettid() != VM_THREAD.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: the kernel passes a `ucontext_t` to an SA_SIGINFO handler.
        let rip = unsafe {
            (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize]
        };
        let start = lj_dispatch_update as *const () as usize;
        if (rip as usize).wrapping_sub(start) < WINDOW {
            return;
        }
        let h = LUAJIT_HANDLER.load(Ordering::Relaxed);
        if h != 0 {
            // SAFETY: `h` is the plain handler LuaJIT installed (see `install`).
            let f: extern "C" fn(c_int) =
                unsafe { std::mem::transmute::<usize, extern "C" fn(c_int)>(h) };
            f(sig);
        }
    }

    /// Wraps the SIGPROF handler `jit.profile` just installed; the calling thread must be
    /// the one that runs the sampled VM. Returns false (and changes nothing) when the current
    /// handler is not a plain one.
    pub(super) fn install() -> bool {
        // SAFETY: reading and replacing a signal action with zeroed, then filled, structs.
        unsafe {
            let mut cur: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGPROF, std::ptr::null(), &mut cur) != 0 {
                return false;
            }
            let h = cur.sa_sigaction;
            if cur.sa_flags & libc::SA_SIGINFO != 0 || h == libc::SIG_DFL || h == libc::SIG_IGN {
                return false;
            }
            LUAJIT_HANDLER.store(h, Ordering::Relaxed);
            VM_THREAD.store(gettid(), Ordering::Relaxed);
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_sigprof as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            act.sa_mask = cur.sa_mask;
            libc::sigaction(libc::SIGPROF, &act, std::ptr::null_mut()) == 0
        }
    }

    /// Whether the wrapper is the current SIGPROF handler.
    #[cfg(test)]
    pub(super) fn installed() -> bool {
        // SAFETY: reads the current action only.
        unsafe {
            let mut cur: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGPROF, std::ptr::null(), &mut cur) == 0
                && cur.sa_sigaction == on_sigprof as *const () as usize
        }
    }
}

/// Deepest stack recorded per sample.
const MAX_DEPTH: u32 = 64;

/// Starts the sampler; takes the `jit.profile` module and the interval, returns the function
/// that stops it and hands back the stacks. Everything stays in locals: nothing is put into
/// the globals the rule code sees.
const START: &str = r#"
local profile, interval = ...
local dumpstack = profile.dumpstack
local stacks = {}
profile.start("li" .. interval, function(thread, samples, vmstate)
  local key = vmstate .. "\t" .. dumpstack(thread, "pl;", -64)
  stacks[key] = (stacks[key] or 0) + samples
end)
return function()
  profile.stop()
  return stacks
end
"#;

/// LuaJIT's `jit.profile` module: from `_LOADED` when something required it, else built by
/// the loader `luaopen_jit` registered in `_PRELOAD` (a state without the `package` library,
/// such as the Lua backend's sandbox, has no `require`, and its globals hold no `jit`).
fn jit_profile_module(lua: &Lua) -> Result<Option<mlua::Table>, ProfileError> {
    if let Some(loaded) = lua.named_registry_value::<Option<mlua::Table>>("_LOADED")? {
        if let Some(m) = loaded.raw_get::<Option<mlua::Table>>("jit.profile")? {
            return Ok(Some(m));
        }
    }
    let Some(preload) = lua.named_registry_value::<Option<mlua::Table>>("_PRELOAD")? else {
        return Ok(None);
    };
    let Some(open) = preload.raw_get::<Option<mlua::Function>>("jit.profile")? else {
        return Ok(None);
    };
    Ok(open.call::<Option<mlua::Table>>("jit.profile")?)
}

/// Samples `run` every `interval_ms` (LuaJIT's minimum is 1 ms) and folds the stacks of the
/// chunk `chunk_name` (as given to `Chunk::set_name`) into rules with `map`.
pub fn sample<R>(
    lua: &Lua,
    chunk_name: &str,
    interval_ms: u32,
    map: &dyn LineMap,
    run: impl FnOnce(&Lua) -> mlua::Result<R>,
) -> Result<(R, SampleProfile), ProfileError> {
    let name = |_state: &str, line: u32| map.rule_of(line).map(|r| format!("rule_{}", r.id));
    sample_named(lua, chunk_name, interval_ms, &name, run)
}

/// [`sample`] with the caller naming the chunk's frames: `name(vm_state, line)` gives the
/// frame name for a line of the chunk (`None` keeps `chunk:line`).
pub fn sample_named<R>(
    lua: &Lua,
    chunk_name: &str,
    interval_ms: u32,
    name: &dyn Fn(&str, u32) -> Option<String>,
    run: impl FnOnce(&Lua) -> mlua::Result<R>,
) -> Result<(R, SampleProfile), ProfileError> {
    let Some(profile) = jit_profile_module(lua)? else {
        return Err(ProfileError::Unavailable(
            "jit.profile is not available in this Lua state (needs LuaJIT with its jit library)"
                .into(),
        ));
    };
    let interval_ms = interval_ms.max(1);
    let _guard = SIGPROF_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let stop: mlua::Function =
        lua.load(START).set_name("=wafprof_sample").call((profile, interval_ms))?;
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    sigprof_guard::install();
    let result = run(lua);
    let stacks: mlua::Table = stop.call(())?;
    let value = result?;
    let short = chunk_name.trim_start_matches(['=', '@']);
    let mut folded = Folded::new();
    let mut samples = 0u64;
    let mut states: std::collections::BTreeMap<String, u64> = Default::default();
    for pair in stacks.pairs::<String, u64>() {
        let (key, count) = pair?;
        let (state, stack) = key.split_once('\t').unwrap_or(("?", key.as_str()));
        samples += count;
        *states.entry(state.to_string()).or_insert(0) += count;
        let mut frames = vec![format!("vm_{state}")];
        for frame in stack.split(';').filter(|f| !f.is_empty()).take(MAX_DEPTH as usize) {
            let named = frame
                .rsplit_once(':')
                .filter(|(file, _)| *file == short)
                .and_then(|(_, line)| line.parse::<u32>().ok())
                .and_then(|line| name(state, line));
            let frame = named.unwrap_or_else(|| frame.to_string());
            // A rule spanning several frames (helper calls inside it) reads as one frame.
            if frames.last() != Some(&frame) {
                frames.push(frame);
            }
        }
        folded.add(&frames, count);
    }
    Ok((
        value,
        SampleProfile { folded, samples, interval_ms, vm_states: states.into_iter().collect() },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua_lines::tests::{CHUNK, map};

    #[test]
    fn samples_fold_into_rules() {
        let lua = Lua::new();
        let run: mlua::Function = lua.load(CHUNK).set_name("=rules").eval().unwrap();
        let s = "a".repeat(400);
        let (hits, p) = sample(&lua, "=rules", SAMPLE_INTERVAL_MS, &map(), |_| {
            // Long enough for a hundred samples.
            let t = std::time::Instant::now();
            let mut hits = 0;
            while t.elapsed() < std::time::Duration::from_millis(400) {
                hits += run.call::<i64>((s.as_str(), 2000))?;
            }
            Ok(hits)
        })
        .unwrap();
        assert!(hits > 0);
        assert!(p.samples >= 20, "{} samples", p.samples);
        let text = p.folded.to_text();
        let in_rule = |id: &str| -> u64 {
            p.folded.iter().filter(|(k, _)| k.contains(&format!("rule_{id}"))).map(|x| x.1).sum()
        };
        // Rule 200 loops over 400 bytes, rule 100 compares once: 200 dominates.
        assert!(in_rule("200") > in_rule("100"), "{text}");
        assert!(in_rule("200") * 2 > p.samples, "{text}");
        assert!(text.lines().all(|l| l.starts_with("vm_")), "{text}");
        assert!(p.vm_states.iter().map(|s| s.1).sum::<u64>() == p.samples);
    }

    #[test]
    fn refuses_a_state_without_jit_profile() {
        let lua = Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::default()).unwrap();
        let r = sample(&lua, "=x", 1, &map(), |_| Ok(()));
        assert!(matches!(r, Err(ProfileError::Unavailable(_))), "{r:?}");
    }
}

#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod guard_tests {
    use super::*;

    /// While sampling, the wrapper is the SIGPROF handler; LuaJIT's own handler still runs
    /// behind it (samples arrive).
    #[test]
    fn the_wrapper_sits_in_front_of_luajits_handler() {
        let lua = Lua::new();
        let spin: mlua::Function = lua
            .load("return function(n) local x = 0 for i = 1, n do x = (x * 31 + i) % 1000003 end return x end")
            .set_name("=spin")
            .eval()
            .unwrap();
        let (seen, p) = sample_named(&lua, "=spin", SAMPLE_INTERVAL_MS, &|_, _| None, |_| {
            let seen = sigprof_guard::installed();
            let t = std::time::Instant::now();
            while t.elapsed() < std::time::Duration::from_millis(200) {
                spin.call::<i64>(200_000)?;
            }
            Ok(seen)
        })
        .unwrap();
        assert!(seen, "the wrapper is installed while sampling");
        assert!(p.samples > 0, "LuaJIT's handler still counts samples");
    }
}
