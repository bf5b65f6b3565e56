//! The Lua state the rules run in, and the limits that keep a hostile chunk from hanging or
//! exhausting the host.
//!
//! The state gets the base library and `jit` (loading `jit` is what switches the JIT
//! compiler on in LuaJIT), plus `ffi` for the FFI runtime; after set-up every way to reach
//! the outside is removed from the globals: `load*`, `dofile`, `require`, `module`,
//! `getfenv`/`setfenv`, `collectgarbage`, `ffi` and `jit` themselves. There is no `io`, `os`
//! or `debug` at all.
//!
//! Limits: a memory limit on the state's allocator, an instruction budget per request
//! enforced by a count hook, and a wall-clock limit checked by the hook and by the engine at
//! every phase boundary. LuaJIT checks hooks only in the interpreter: a loop compiled to a
//! trace never sees them (measured here: `while true do end` ran unstopped for minutes with
//! a 1M-instruction hook). So user-supplied code runs with the JIT switched off for its
//! functions (`jit.off(f, true)`), where the hook does fire; the generated rule chunk
//! keeps the JIT, which is safe because it has no backward jump (only forward `goto`s and
//! calls into Rust): its instruction count per phase is bounded by its length.

use mlua::{HookTriggers, Lua, LuaOptions, StdLib, VmState};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Resource limits of one Lua state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes the state may allocate in total (rules, JIT traces, per-request garbage).
    pub memory_bytes: usize,
    /// Lua VM instructions per request; `None` runs without the count hook.
    pub instructions_per_request: Option<u64>,
    /// How often the count hook runs, in instructions.
    pub hook_interval: u32,
    /// Wall-clock time per request.
    pub time_per_request: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            instructions_per_request: Some(50_000_000),
            hook_interval: 10_000,
            time_per_request: Duration::from_secs(10),
        }
    }
}

/// Why a sandboxed call stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitKind {
    Instructions,
    Time,
    Memory,
}

/// A marker the hook puts in its error, so callers can tell a limit from a Lua error.
pub(crate) const BUDGET_MSG: &str = "wafbench: instruction budget exhausted";
pub(crate) const TIME_MSG: &str = "wafbench: time limit exceeded";

/// LuaJIT's limit on the machine code of all traces (KiB), raised from its default 512. Over
/// CRS's rules the compiled traces outgrow 512 KiB, and LuaJIT then flushes every trace and
/// compiles them again: on the benign corpus at PL1, lua-ffi flushed in 9 of 16 passes of
/// 2,000 requests, each time recompiling 100-140 traces, with no end in sight. With 8 MiB it
/// did not flush in 24 passes and settled (120, 35, 30, 23, 18, 18 new traces a pass, then
/// single digits).
const JIT_MCODE_LIMIT: &str = "maxmcode=8192";

/// A sandboxed Lua state with its per-request budget.
pub struct Sandbox {
    lua: Lua,
    limits: Limits,
    remaining: Rc<Cell<u64>>,
    deadline: Rc<Cell<Option<Instant>>>,
    /// `jit.off`, kept out of the globals.
    jit_off: Option<mlua::Function>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A new state; `with_ffi` loads LuaJIT's FFI (handed to the runtime set-up through
    /// [`Sandbox::take_ffi`], never left reachable from the globals).
    pub fn new(limits: Limits, with_ffi: bool) -> mlua::Result<Sandbox> {
        let mut libs = StdLib::JIT;
        if with_ffi {
            libs |= StdLib::FFI;
        }
        // SAFETY: `ffi` is loaded only to build the primitive table; it is removed from the
        // globals by `take_ffi` before any rule or user code runs.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        lua.set_memory_limit(limits.memory_bytes)?;
        let g = lua.globals();
        let jit = g.raw_get::<Option<mlua::Table>>("jit")?;
        let jit_off = jit.as_ref().map(|j| j.raw_get::<mlua::Function>("off")).transpose()?;
        if let Some(j) = &jit {
            let start: mlua::Function = j.raw_get::<mlua::Table>("opt")?.raw_get("start")?;
            start.call::<()>(JIT_MCODE_LIMIT)?;
        }
        for name in [
            "dofile",
            "load",
            "loadfile",
            "loadstring",
            "require",
            "module",
            "getfenv",
            "setfenv",
            "collectgarbage",
            "gcinfo",
            "newproxy",
            "print",
            "jit",
            "package",
        ] {
            g.raw_set(name, mlua::Value::Nil)?;
        }
        let remaining = Rc::new(Cell::new(u64::MAX));
        let deadline: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
        if limits.instructions_per_request.is_some() {
            let (rem, dl) = (remaining.clone(), deadline.clone());
            let step = u64::from(limits.hook_interval.max(1));
            lua.set_hook(
                HookTriggers::new().every_nth_instruction(limits.hook_interval.max(1)),
                move |_, _| {
                    let left = rem.get();
                    if left <= step {
                        rem.set(0);
                        return Err(mlua::Error::RuntimeError(BUDGET_MSG.into()));
                    }
                    rem.set(left - step);
                    if dl.get().is_some_and(|d| Instant::now() > d) {
                        return Err(mlua::Error::RuntimeError(TIME_MSG.into()));
                    }
                    Ok(VmState::Continue)
                },
            );
        }
        Ok(Sandbox { lua, limits, remaining, deadline, jit_off })
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Removes `ffi` from the globals and returns it.
    pub(crate) fn take_ffi(&self) -> mlua::Result<mlua::Value> {
        let g = self.lua.globals();
        let ffi: mlua::Value = g.raw_get("ffi")?;
        g.raw_set("ffi", mlua::Value::Nil)?;
        Ok(ffi)
    }

    /// Starts a request: a full instruction budget and a new deadline.
    pub fn arm(&self) {
        self.remaining.set(self.limits.instructions_per_request.unwrap_or(u64::MAX));
        self.deadline.set(Some(Instant::now() + self.limits.time_per_request));
    }

    /// Whether the request ran out of time (checked between phases).
    pub fn past_deadline(&self) -> bool {
        self.deadline.get().is_some_and(|d| Instant::now() > d)
    }

    /// Runs a chunk under the limits (a fresh budget), interpreted so that the hook sees
    /// every instruction: for user-supplied Lua.
    pub fn exec_limited(&self, name: &str, code: &str) -> Result<(), SandboxError> {
        let f = self.lua.load(code).set_name(format!("={name}")).into_function()?;
        if let Some(off) = &self.jit_off {
            off.call::<()>((f.clone(), true))?;
        }
        self.arm();
        f.call::<()>(()).map_err(classify)
    }
}

/// A sandboxed call that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    #[error("Lua stopped: {kind:?} limit reached")]
    Limit { kind: LimitKind },
    /// Any other Lua error, as text (`mlua::Error` is not `Send`, and callers report it).
    #[error("Lua error: {0}")]
    Lua(String),
}

impl From<mlua::Error> for SandboxError {
    fn from(e: mlua::Error) -> SandboxError {
        classify(e)
    }
}

/// Tells limit errors (raised by the hook, possibly wrapped by mlua) from other errors.
pub(crate) fn classify(e: mlua::Error) -> SandboxError {
    let text = e.to_string();
    if text.contains(BUDGET_MSG) {
        SandboxError::Limit { kind: LimitKind::Instructions }
    } else if text.contains(TIME_MSG) {
        SandboxError::Limit { kind: LimitKind::Time }
    } else if matches!(e, mlua::Error::MemoryError(_)) {
        SandboxError::Limit { kind: LimitKind::Memory }
    } else {
        SandboxError::Lua(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globals_that_reach_outside_are_gone() {
        let sb = Sandbox::new(Limits::default(), true).expect("state");
        let _ffi = sb.take_ffi().expect("ffi");
        for name in ["io", "os", "debug", "load", "loadstring", "dofile", "require", "ffi", "jit"] {
            let v: mlua::Value = sb.lua().globals().get(name).expect("get");
            assert!(v.is_nil(), "{name} is reachable");
        }
        // Base functions the generated code may use are still there.
        sb.exec_limited("t", "assert(pairs ~= nil and type(1) == 'number')").expect("base");
    }

    #[test]
    fn runaway_loop_is_stopped_by_the_budget() {
        let limits = Limits { instructions_per_request: Some(1_000_000), ..Limits::default() };
        let sb = Sandbox::new(limits, false).expect("state");
        let t0 = Instant::now();
        let err = sb.exec_limited("user", "local i = 0 while true do i = i + 1 end");
        assert!(
            matches!(err, Err(SandboxError::Limit { kind: LimitKind::Instructions })),
            "{err:?}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5));
        // The budget is per request: the next run gets a full one again.
        sb.exec_limited("user", "local s = 0 for i = 1, 1000 do s = s + i end").expect("fresh");
    }

    #[test]
    fn runaway_loop_is_stopped_by_the_clock() {
        let limits = Limits {
            instructions_per_request: Some(u64::MAX),
            time_per_request: Duration::from_millis(50),
            ..Limits::default()
        };
        let sb = Sandbox::new(limits, false).expect("state");
        let err = sb.exec_limited("user", "while true do end");
        assert!(matches!(err, Err(SandboxError::Limit { kind: LimitKind::Time })), "{err:?}");
    }

    #[test]
    fn memory_limit_stops_allocation() {
        let limits = Limits { memory_bytes: 8 << 20, ..Limits::default() };
        let sb = Sandbox::new(limits, false).expect("state");
        let err = sb.exec_limited("user", "local t = {} for i = 1, 1e8 do t[i] = {i} end");
        assert!(matches!(err, Err(SandboxError::Limit { kind: LimitKind::Memory })), "{err:?}");
    }
}
