//! The `ffi_overhead` suite: what one operator call costs by call path.
//!
//! Operations (all from `waf-ffi-target`): an empty call, `@beginsWith`, an `@rx` match
//! (regex crate) and a `t:urlDecodeUni`-like decode, on a 100-byte and a 4 KB input. Paths:
//! - `rust_direct`: the rlib function, statically linked (the baseline);
//! - `rust_dlopen`: a function pointer from `dlsym` into the cdylib (libloading) - the
//!   indirect call a C caller makes through a shared object;
//! - `lua_mlua`: a Lua loop calling an mlua `create_function` (a `lua_CFunction`);
//! - `luajit_ffi` / `luajit_ffi_jit_off`: a Lua loop calling the cdylib export through
//!   `ffi.load` + `ffi.cdef`, with the JIT on, and off (`jit.off()`, separate state);
//! - `lua_pure`: plain Lua where natural (`string.sub(s,1,#p) == p`, `string.find`, `gsub`).
//!
//! Lua paths are timed as one Lua loop of `iters` calls, entered once from Rust, so the
//! Rust->Lua entry (~80 ns) is not charged to every call; the loop sums the answers and the
//! sum is checked against `iters x answer` after every timed run.

use super::{Bench, Case, Unit, fn_case};
use mlua::{Function, Lua, LuaOptions, StdLib};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};
use waf_ffi_target as t;

/// File name of the cdylib.
pub const CDYLIB: &str = "libwaf_ffi_target.so";

/// Finds the cdylib: `$WAF_FFI_TARGET_SO`, else next to the running executable (cargo puts
/// it in `target/<profile>/deps`, where bench executables also live).
pub fn locate_cdylib() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("WAF_FFI_TARGET_SO") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe.parent().ok_or("executable has no directory")?;
    let candidates = [dir.join(CDYLIB), dir.join("deps").join(CDYLIB), dir.join("..").join(CDYLIB)];
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        format!(
            "{CDYLIB} not found next to {} (build the workspace, or set WAF_FFI_TARGET_SO)",
            exe.display()
        )
    })
}

/// Test inputs: realistic query text with escapes, ending in an SQL injection probe so the
/// `@rx` answer is a match that needs the whole input scanned.
pub fn input(len: usize) -> Vec<u8> {
    let tail = b"&q=1 UNION SELECT 1";
    let base = b"id=42&name=John+Smith&q=caf%C3%A9+au+lait&next=%2Fhome%3Fx%3D1&t=%u0041%uFF01&";
    let mut v: Vec<u8> = base.iter().copied().cycle().take(len - tail.len()).collect();
    v.extend_from_slice(tail);
    v
}

/// The prefix `@beginsWith` looks for.
pub const PREFIX: &[u8] = b"id=42&name=";

type EmptyFn = unsafe extern "C" fn() -> i32;
type BeginsFn = unsafe extern "C" fn(*const u8, usize, *const u8, usize) -> i32;
type RxFn = unsafe extern "C" fn(*const u8, usize) -> i32;
type DecodeFn = unsafe extern "C" fn(*const u8, usize, *mut u8, usize) -> isize;

/// The cdylib's exports as raw function pointers (the library stays loaded for the process).
struct Exports {
    empty: EmptyFn,
    begins_with: BeginsFn,
    rx: RxFn,
    decode: DecodeFn,
}

fn load_exports(path: &PathBuf) -> Result<Exports, String> {
    // SAFETY: loading our own cdylib, whose initialisers are Rust's (none that misbehave).
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("dlopen {}: {e}", path.display()))?;
    // Leak the handle: the pointers below must stay valid for every bench in the process.
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    // SAFETY: the symbol types match the `extern "C"` signatures in waf-ffi-target.
    unsafe {
        let sym = |name: &[u8]| -> Result<*const (), String> {
            lib.get::<*const ()>(name)
                .map(|s| *s)
                .map_err(|e| format!("dlsym {}: {e}", String::from_utf8_lossy(name)))
        };
        Ok(Exports {
            empty: std::mem::transmute::<*const (), EmptyFn>(sym(b"waf_ffi_empty")?),
            begins_with: std::mem::transmute::<*const (), BeginsFn>(sym(b"waf_ffi_begins_with")?),
            rx: std::mem::transmute::<*const (), RxFn>(sym(b"waf_ffi_rx_match")?),
            decode: std::mem::transmute::<*const (), DecodeFn>(sym(b"waf_ffi_url_decode_uni")?),
        })
    }
}

/// A Lua loop `f(n)` returning the sum of `n` answers.
struct LuaLoop {
    f: Function,
    expected_per_call: i64,
    _lua: Rc<Lua>,
}

impl Case for LuaLoop {
    fn check(&mut self) -> Result<(), String> {
        let got: i64 = self.f.call(1).map_err(|e| format!("lua: {e}"))?;
        if got == self.expected_per_call {
            Ok(())
        } else {
            Err(format!("expected {}, got {got}", self.expected_per_call))
        }
    }

    fn run(&mut self, iters: u64) -> Duration {
        let t = Instant::now();
        let got: Result<i64, _> = self.f.call(iters);
        let took = t.elapsed();
        match got {
            Ok(sum) if sum == self.expected_per_call * iters as i64 => took,
            other => {
                panic!("lua loop answered {other:?}, expected {} x {iters}", self.expected_per_call)
            }
        }
    }
}

const LUA_PRELUDE: &str = r#"
local ffi = require("ffi")
ffi.cdef[[
int waf_ffi_empty(void);
int waf_ffi_begins_with(const char *hay, size_t hay_len, const char *prefix, size_t prefix_len);
int waf_ffi_rx_match(const char *hay, size_t hay_len);
intptr_t waf_ffi_url_decode_uni(const char *input, size_t len, char *out, size_t out_cap);
]]
FFI = ffi
L = ffi.load(SO_PATH)
local function esc(c)
  local b = c:byte(1)
  if b == 117 or b == 85 then
    if #c == 5 then
      local u = tonumber(c:sub(2), 16)
      if u >= 0xff01 and u <= 0xff5e then return string.char(u - 0xff01 + 0x21) end
      return string.char(u % 256)
    end
    return "%" .. c
  end
  return string.char(tonumber(c:sub(1, 2), 16)) .. c:sub(3)
end
function lua_one() return 1 end
function lua_url_decode(s)
  s = s:gsub("%+", " ")
  return (s:gsub("%%([uU]?%x%x%x?%x?)", esc))
end
"#;

fn new_lua(so: &str, jit: bool) -> Result<Rc<Lua>, String> {
    // SAFETY: the FFI library is needed on purpose; the state only runs our own chunks.
    let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::new()) };
    let g = lua.globals();
    g.set("SO_PATH", so).map_err(|e| e.to_string())?;
    lua.load(LUA_PRELUDE)
        .set_name("ffi_prelude")
        .exec()
        .map_err(|e| format!("lua prelude: {e}"))?;
    if !jit {
        lua.load("jit.off(); jit.flush()").exec().map_err(|e| e.to_string())?;
    }
    let reg = |name: &str, f: Function| g.set(name, f).map_err(|e| e.to_string());
    reg("rs_empty", lua.create_function(|_, ()| Ok(1i64)).map_err(|e| e.to_string())?)?;
    reg(
        "rs_begins_with",
        lua.create_function(|_, (s, p): (mlua::String, mlua::String)| {
            Ok(i64::from(t::begins_with(&s.as_bytes(), &p.as_bytes())))
        })
        .map_err(|e| e.to_string())?,
    )?;
    reg(
        "rs_rx",
        lua.create_function(|_, s: mlua::String| Ok(i64::from(t::rx_match(&s.as_bytes()))))
            .map_err(|e| e.to_string())?,
    )?;
    reg(
        "rs_url_decode",
        lua.create_function(|lua, s: mlua::String| {
            let mut out = Vec::new();
            t::url_decode_uni(&s.as_bytes(), &mut out);
            lua.create_string(&out)
        })
        .map_err(|e| e.to_string())?,
    )?;
    Ok(Rc::new(lua))
}

/// `body` is a Lua expression using locals `s`, `p`, `out` (an FFI buffer of `#s` bytes).
fn lua_case(
    lua: &Rc<Lua>,
    input: &[u8],
    body: &str,
    expected: i64,
) -> Result<Box<dyn Case>, String> {
    let src = format!(
        "return function(n)\n  local s, p, one = S, P, lua_one\n  local out = FFI.new('char[?]', #s + 1)\n  local acc = 0\n  for i = 1, n do acc = acc + ({body}) end\n  return acc\nend"
    );
    // Each case gets its own environment so `S`/`P` (read once per run) are its inputs.
    let e = |r: mlua::Error| r.to_string();
    let env = lua.create_table().map_err(e)?;
    let mt = lua.create_table().map_err(e)?;
    mt.set("__index", lua.globals()).map_err(e)?;
    env.set_metatable(Some(mt));
    env.set("S", lua.create_string(input).map_err(e)?).map_err(e)?;
    env.set("P", lua.create_string(PREFIX).map_err(e)?).map_err(e)?;
    let f: Function = lua
        .load(&src)
        .set_name("bench_loop")
        .set_environment(env)
        .eval()
        .map_err(|e| format!("lua chunk {body}: {e}"))?;
    Ok(Box::new(LuaLoop { f, expected_per_call: expected, _lua: Rc::clone(lua) }))
}

/// Every FFI-overhead bench: 4 operations x 2 inputs x up to 6 paths.
pub fn suite() -> Result<Vec<Bench>, String> {
    let so = locate_cdylib()?;
    let so_str = so.to_str().ok_or("cdylib path is not UTF-8")?.to_string();
    let x = load_exports(&so)?;
    let jit_on = new_lua(&so_str, true)?;
    let jit_off = new_lua(&so_str, false)?;
    let mut out = Vec::new();
    let calls = Unit::Calls(1);

    // Empty call.
    let g = "ffi_overhead/empty";
    out.push(Bench::new(g, "rust_direct", "-", calls, fn_case(1, || t::waf_ffi_empty())));
    let empty = x.empty;
    // SAFETY: matches the export's signature.
    out.push(Bench::new(g, "rust_dlopen", "-", calls, fn_case(1, move || unsafe { empty() })));
    out.push(Bench::new(g, "lua_mlua", "-", calls, lua_case(&jit_on, b"", "rs_empty()", 1)?));
    out.push(Bench::new(
        g,
        "luajit_ffi",
        "-",
        calls,
        lua_case(&jit_on, b"", "L.waf_ffi_empty()", 1)?,
    ));
    out.push(Bench::new(
        g,
        "luajit_ffi_jit_off",
        "-",
        calls,
        lua_case(&jit_off, b"", "L.waf_ffi_empty()", 1)?,
    ));
    out.push(Bench::new(g, "lua_pure", "-", calls, lua_case(&jit_on, b"", "one()", 1)?));

    for (label, len) in [("100B", 100usize), ("4KB", 4096)] {
        let inp = input(len);
        let n = inp.len() as i64;

        let g = "ffi_overhead/begins_with";
        let i2 = inp.clone();
        out.push(Bench::new(
            g,
            "rust_direct",
            label,
            calls,
            fn_case(true, move || t::begins_with(std::hint::black_box(&i2), PREFIX)),
        ));
        let (f, i2) = (x.begins_with, inp.clone());
        // SAFETY: valid slices for the stated lengths.
        out.push(Bench::new(
            g,
            "rust_dlopen",
            label,
            calls,
            fn_case(1, move || unsafe { f(i2.as_ptr(), i2.len(), PREFIX.as_ptr(), PREFIX.len()) }),
        ));
        out.push(Bench::new(
            g,
            "lua_mlua",
            label,
            calls,
            lua_case(&jit_on, &inp, "rs_begins_with(s, p)", 1)?,
        ));
        let ffi = "L.waf_ffi_begins_with(s, #s, p, #p)";
        out.push(Bench::new(g, "luajit_ffi", label, calls, lua_case(&jit_on, &inp, ffi, 1)?));
        out.push(Bench::new(
            g,
            "luajit_ffi_jit_off",
            label,
            calls,
            lua_case(&jit_off, &inp, ffi, 1)?,
        ));
        out.push(Bench::new(
            g,
            "lua_pure",
            label,
            calls,
            lua_case(&jit_on, &inp, "(s:sub(1, #p) == p) and 1 or 0", 1)?,
        ));
        out.push(Bench::new(
            g,
            "lua_pure_find",
            label,
            calls,
            lua_case(&jit_on, &inp, "(s:find(p, 1, true) == 1) and 1 or 0", 1)?,
        ));

        let g = "ffi_overhead/rx";
        let i2 = inp.clone();
        out.push(Bench::new(
            g,
            "rust_direct",
            label,
            calls,
            fn_case(true, move || t::rx_match(std::hint::black_box(&i2))),
        ));
        let (f, i2) = (x.rx, inp.clone());
        // SAFETY: valid slice.
        out.push(Bench::new(
            g,
            "rust_dlopen",
            label,
            calls,
            fn_case(1, move || unsafe { f(i2.as_ptr(), i2.len()) }),
        ));
        out.push(Bench::new(g, "lua_mlua", label, calls, lua_case(&jit_on, &inp, "rs_rx(s)", 1)?));
        out.push(Bench::new(
            g,
            "luajit_ffi",
            label,
            calls,
            lua_case(&jit_on, &inp, "L.waf_ffi_rx_match(s, #s)", 1)?,
        ));
        out.push(Bench::new(
            g,
            "luajit_ffi_jit_off",
            label,
            calls,
            lua_case(&jit_off, &inp, "L.waf_ffi_rx_match(s, #s)", 1)?,
        ));

        let g = "ffi_overhead/url_decode";
        let mut want = Vec::new();
        t::url_decode_uni(&inp, &mut want);
        let dn = want.len() as i64;
        if dn >= n {
            return Err("url_decode input has no escapes".into());
        }
        verify_lua_decoders(&jit_on, &inp, &want)?;
        let (i2, mut buf) = (inp.clone(), vec![0u8; inp.len()]);
        out.push(Bench::new(
            g,
            "rust_direct",
            label,
            calls,
            fn_case(dn as usize, move || t::decode_into(std::hint::black_box(&i2), &mut buf)),
        ));
        let (f, i2, mut buf) = (x.decode, inp.clone(), vec![0u8; inp.len()]);
        // SAFETY: `buf` is writable for `len` bytes.
        out.push(Bench::new(
            g,
            "rust_dlopen",
            label,
            calls,
            fn_case(dn as isize, move || unsafe {
                f(i2.as_ptr(), i2.len(), buf.as_mut_ptr(), buf.len())
            }),
        ));
        out.push(Bench::new(
            g,
            "lua_mlua",
            label,
            calls,
            lua_case(&jit_on, &inp, "#rs_url_decode(s)", dn)?,
        ));
        let ffi = "tonumber(L.waf_ffi_url_decode_uni(s, #s, out, #s + 1))";
        out.push(Bench::new(g, "luajit_ffi", label, calls, lua_case(&jit_on, &inp, ffi, dn)?));
        out.push(Bench::new(
            g,
            "luajit_ffi_jit_off",
            label,
            calls,
            lua_case(&jit_off, &inp, ffi, dn)?,
        ));
        out.push(Bench::new(
            g,
            "lua_pure",
            label,
            calls,
            lua_case(&jit_on, &inp, "#lua_url_decode(s)", dn)?,
        ));
    }
    Ok(out)
}

/// The Lua decode paths are checked by length in the loop; here once by content.
fn verify_lua_decoders(lua: &Lua, input: &[u8], want: &[u8]) -> Result<(), String> {
    let e = |r: mlua::Error| r.to_string();
    let f: Function = lua
        .load(
            "return function(s) local out = FFI.new('char[?]', #s + 1) \
             local n = tonumber(L.waf_ffi_url_decode_uni(s, #s, out, #s + 1)) \
             return lua_url_decode(s), rs_url_decode(s), FFI.string(out, n) end",
        )
        .eval()
        .map_err(e)?;
    let (a, b, c): (mlua::String, mlua::String, mlua::String) =
        f.call(lua.create_string(input).map_err(e)?).map_err(e)?;
    for (name, got) in [("lua_pure", a), ("lua_mlua", b), ("luajit_ffi", c)] {
        if *got.as_bytes() != *want {
            return Err(format!("url_decode via {name} differs from the reference"));
        }
    }
    Ok(())
}
