//! The primitives as `extern "C"` functions, called from Lua through LuaJIT's FFI.
//!
//! No symbol is exported from the binary: at load time the function addresses are handed
//! to a small Lua prelude as light userdata, which `ffi.cast`s each one once to a C
//! function-pointer type; the generated chunk then calls the cdata like any function, and
//! the JIT compiles those calls to direct calls (about 2 ns, against about 56 ns for an
//! mlua function; see FACTS.md). Only `int64_t` and `int32_t` cross the boundary: no struct
//! by value, no varargs, which LuaJIT would not compile. The context travels as an
//! `int64_t` Lua number, not as a light userdata: LuaJIT 2.1 on 64-bit does not compile the
//! conversion of a light userdata to a C pointer (`NYI: unsupported C type conversion`,
//! `lj_crecord.c`), so every call taking one aborted its trace and the whole chunk ran in
//! the interpreter, at about 100 ns per call. Every export catches panics: an unwind must
//! never cross a JIT-compiled frame.

use super::runtime::{Prim, dispatch};
use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The C declarations the prelude gives to `ffi.cdef`.
pub(crate) const CDEF: &str = "typedef int32_t (*wafbench_fn1)(int64_t ctx, int32_t a);\n\
                               typedef int32_t (*wafbench_fn2)(int64_t ctx, int32_t a, int32_t b);";

/// Builds the `waf` table from (name -> address) and (name -> arity).
pub(crate) const PRELUDE: &str = r#"
local ffi, addrs, arity = ...
ffi.cdef(CDEF)
local waf = {}
for name, addr in pairs(addrs) do
  waf[name] = ffi.cast(arity[name] == 1 and "wafbench_fn1" or "wafbench_fn2", addr)
end
return waf
"#;

thread_local! {
    /// Set when an FFI call came with a pointer that is not the active context or panicked;
    /// an FFI function cannot raise a Lua error, so the engine checks this after the phase.
    static FAULT: Cell<bool> = const { Cell::new(false) };
}

/// Reads and clears the fault flag.
pub(crate) fn take_fault() -> bool {
    FAULT.with(|f| f.replace(false))
}

/// The Lua number the generated code passes as the context, for a context address.
pub(crate) fn ctx_number(ctx: *mut c_void) -> i64 {
    ctx as usize as i64
}

fn guarded(ctx: i64, p: Prim, a: i32, b: i32) -> i32 {
    // `dispatch` accepts only the active context's address, so a forged number is refused.
    let ctx = ctx as usize as *mut c_void;
    match catch_unwind(AssertUnwindSafe(|| dispatch(ctx, p, a, b))) {
        Ok(Some(r)) => r,
        Ok(None) | Err(_) => {
            FAULT.with(|f| f.set(true));
            0
        }
    }
}

extern "C" fn ffi_pre(ctx: i64, a: i32) -> i32 {
    guarded(ctx, Prim::Pre, a, 0)
}
extern "C" fn ffi_scan(ctx: i64, a: i32, b: i32) -> i32 {
    guarded(ctx, Prim::Scan, a, b)
}
extern "C" fn ffi_lbegin(ctx: i64, a: i32) -> i32 {
    guarded(ctx, Prim::LinkBegin, a, 0)
}
extern "C" fn ffi_tgt(ctx: i64, a: i32, b: i32) -> i32 {
    guarded(ctx, Prim::Target, a, b)
}
extern "C" fn ffi_tgt0(ctx: i64, a: i32, b: i32) -> i32 {
    guarded(ctx, Prim::Target0, a, b)
}
extern "C" fn ffi_lend(ctx: i64, a: i32, b: i32) -> i32 {
    guarded(ctx, Prim::LinkEnd, a, b)
}
extern "C" fn ffi_link(ctx: i64, a: i32) -> i32 {
    guarded(ctx, Prim::Link, a, 0)
}
extern "C" fn ffi_after(ctx: i64, a: i32) -> i32 {
    guarded(ctx, Prim::After, a, 0)
}
extern "C" fn ffi_done(ctx: i64, a: i32, b: i32) -> i32 {
    guarded(ctx, Prim::Done, a, b)
}
extern "C" fn ffi_uncond(ctx: i64, a: i32) -> i32 {
    guarded(ctx, Prim::Uncond, a, 0)
}
extern "C" fn ffi_clause(ctx: i64, a: i32) -> i32 {
    guarded(ctx, Prim::Clause, a, 0)
}
extern "C" fn ffi_cdone(ctx: i64, a: i32, b: i32) -> i32 {
    guarded(ctx, Prim::CondDone, a, b)
}
extern "C" fn ffi_marker(ctx: i64, a: i32) -> i32 {
    guarded(ctx, Prim::Marker, a, 0)
}
extern "C" fn ffi_init(ctx: i64, a: i32) -> i32 {
    guarded(ctx, Prim::Init, a, 0)
}

type Fn1 = extern "C" fn(i64, i32) -> i32;
type Fn2 = extern "C" fn(i64, i32, i32) -> i32;

/// (Lua name, arity, address) of every export.
pub(crate) fn exports() -> Vec<(&'static str, u8, *mut c_void)> {
    let one = |f: Fn1| f as *mut c_void;
    let two = |f: Fn2| f as *mut c_void;
    vec![
        ("pre", 1, one(ffi_pre)),
        ("scan", 2, two(ffi_scan)),
        ("lbegin", 1, one(ffi_lbegin)),
        ("tgt", 2, two(ffi_tgt)),
        ("tgt0", 2, two(ffi_tgt0)),
        ("lend", 2, two(ffi_lend)),
        ("link", 1, one(ffi_link)),
        ("after", 1, one(ffi_after)),
        ("done", 2, two(ffi_done)),
        ("uncond", 1, one(ffi_uncond)),
        ("clause", 1, one(ffi_clause)),
        ("cdone", 2, two(ffi_cdone)),
        ("marker", 1, one(ffi_marker)),
        ("init", 1, one(ffi_init)),
    ]
}

/// Builds the `waf` table of FFI function pointers in `lua` (which must have the `ffi`
/// library, passed in as `ffi`).
pub(crate) fn register_ffi(lua: &mlua::Lua, ffi: mlua::Value) -> mlua::Result<mlua::Table> {
    let addrs = lua.create_table()?;
    let arity = lua.create_table()?;
    for (name, n, addr) in exports() {
        addrs.set(name, mlua::LightUserData(addr))?;
        arity.set(name, n)?;
    }
    let src = PRELUDE.replace("ffi.cdef(CDEF)", &format!("ffi.cdef([[{CDEF}]])"));
    lua.load(src).set_name("=wafbench-ffi-prelude.lua").call((ffi, addrs, arity))
}
