//! Line profiler for generated Lua, after lulip: every line event of one named chunk is
//! counted and the time until the next line event is charged to it.
//!
//! Flow: [`profile_lines`] turns the JIT off (a line hook never fires inside compiled traces,
//! so with the JIT on most lines would go unseen), calibrates the hook on an empty loop,
//! installs a Rust line hook through mlua's `set_hook(EVERY_LINE)`, runs the caller's
//! closure, removes the hook, restores the JIT, and returns a [`LineProfile`]: rows
//! `file:line count elapsed(ms) text` sorted by elapsed. [`LineProfile::by_rule`] folds lines
//! into rules through a [`LineMap`] (the Lua backend's source map).
//!
//! Absolute times are interpreter times plus hook cost, not JIT times: rank lines with them.
//!
//! Why a Rust hook: measured on this 2-core VM (release, JIT off, `hook_costs_are_measured`),
//! the Rust hook costs ~800-890 ns per line event; a Lua-side `debug.sethook` doing the same
//! bookkeeping (clock, `debug.getinfo(2, "S")`, two table updates) ~2,400 ns, because
//! `getinfo` builds a table per call; an empty Lua-side hook is ~100-130 ns but measures
//! nothing. Of the Rust hook's cost ~340-400 ns lands between the timestamps and is charged
//! to lines; [`calibrate_hook`] measures it and [`profile_lines`] subtracts it.

use crate::ProfileError;
use mlua::{HookTriggers, Lua, VmState};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

/// The rule a line of generated code belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RuleRef {
    /// Rule id (`942100`), or whatever the backend names rules without one.
    pub id: String,
}

/// Maps a line of a generated chunk to its rule: the seam to the Lua backend's source map.
pub trait LineMap {
    fn rule_of(&self, line: u32) -> Option<RuleRef>;
}

impl<F: Fn(u32) -> Option<RuleRef>> LineMap for F {
    fn rule_of(&self, line: u32) -> Option<RuleRef> {
        self(line)
    }
}

/// A [`LineMap`] from inclusive line ranges, e.g. one per generated rule function.
#[derive(Debug, Clone, Default)]
pub struct RangeLineMap {
    /// Sorted by start line, not overlapping.
    ranges: Vec<(u32, u32, RuleRef)>,
}

impl RangeLineMap {
    /// Builds the map; overlapping ranges keep the one that starts first.
    pub fn new(mut ranges: Vec<(u32, u32, RuleRef)>) -> RangeLineMap {
        ranges.sort_by_key(|r| r.0);
        let mut kept: Vec<(u32, u32, RuleRef)> = Vec::with_capacity(ranges.len());
        for r in ranges {
            if r.0 > r.1 || kept.last().is_some_and(|k| r.0 <= k.1) {
                continue;
            }
            kept.push(r);
        }
        RangeLineMap { ranges: kept }
    }
}

impl LineMap for RangeLineMap {
    fn rule_of(&self, line: u32) -> Option<RuleRef> {
        let i = self.ranges.partition_point(|r| r.0 <= line).checked_sub(1)?;
        let (_, end, rule) = &self.ranges[i];
        (line <= *end).then(|| rule.clone())
    }
}

/// What the hook costs, measured on an empty loop in the same VM.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HookOverhead {
    /// Wall time the hook adds per line event (ns).
    pub per_event_ns: f64,
    /// Time the hook charges to lines beyond their real cost, per event (ns): subtracted
    /// from each line as `count * bias`.
    pub bias_ns: f64,
    /// Empty loop with no hook (ns per line event), the real cost being compared to.
    pub baseline_ns: f64,
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct LineRow {
    pub line: u32,
    pub count: u64,
    /// Charged time minus `count * bias_ns` when the overhead is subtracted (never below 0).
    pub elapsed_ns: u64,
    pub raw_ns: u64,
    pub text: String,
    pub rule: Option<String>,
}

/// A line profile of one chunk.
#[derive(Debug, Clone, Serialize)]
pub struct LineProfile {
    pub chunk: String,
    pub jit_off: bool,
    pub hook: HookOverhead,
    pub overhead_subtracted: bool,
    pub events: u64,
    /// Sorted by `elapsed_ns`, largest first; lines never reached are left out.
    pub rows: Vec<LineRow>,
}

/// Per-rule sums of a line profile.
#[derive(Debug, Clone, Serialize)]
pub struct RuleLines {
    pub rule: String,
    pub lines: usize,
    pub count: u64,
    pub elapsed_ns: u64,
    pub share: f64,
}

#[derive(Default)]
struct HookState {
    counts: Vec<u64>,
    nanos: Vec<u64>,
    last: Option<(usize, Instant)>,
    events: u64,
}

fn install_hook(lua: &Lua, chunk_name: &str, lines: usize) -> Rc<RefCell<HookState>> {
    let state = Rc::new(RefCell::new(HookState {
        counts: vec![0; lines + 1],
        nanos: vec![0; lines + 1],
        ..HookState::default()
    }));
    let st = Rc::clone(&state);
    let name = chunk_name.to_string();
    lua.set_hook(HookTriggers::EVERY_LINE, move |_lua, dbg| {
        let now = Instant::now();
        let Ok(mut s) = st.try_borrow_mut() else { return Ok(VmState::Continue) };
        if let Some((line, t)) = s.last.take() {
            s.nanos[line] += now.duration_since(t).as_nanos() as u64;
        }
        if dbg.source().source.as_deref() == Some(name.as_str()) {
            let line = usize::try_from(dbg.curr_line()).unwrap_or(0);
            // Lines past the text (a chunk that lies about its source) go to slot 0.
            let slot = if line < s.counts.len() { line } else { 0 };
            s.counts[slot] += 1;
            s.events += 1;
            s.last = Some((slot, Instant::now()));
        }
        Ok(VmState::Continue)
    });
    state
}

/// LuaJIT's `jit` library as loaded into the state, found in the registry (`_LOADED.jit`)
/// rather than the globals: a sandboxed state (the Lua backend's) removes `jit` from its
/// globals so rule code cannot reach it, and the profiler must not put it back there.
/// `None` when the state has no `jit` (plain Lua, or `StdLib::NONE`).
pub(crate) fn jit_library(lua: &Lua) -> Result<Option<mlua::Table>, ProfileError> {
    let Some(loaded) = lua.named_registry_value::<Option<mlua::Table>>("_LOADED")? else {
        return Ok(None);
    };
    Ok(loaded.raw_get::<Option<mlua::Table>>("jit")?)
}

/// Whether this VM has a JIT and it is on; `None` when `jit` is not loaded.
fn jit_status(lua: &Lua) -> Result<Option<bool>, ProfileError> {
    let Some(jit) = jit_library(lua)? else { return Ok(None) };
    let status: mlua::Function = jit.raw_get("status")?;
    let (on, _rest): (bool, mlua::MultiValue) = status.call(())?;
    Ok(Some(on))
}

fn set_jit(lua: &Lua, on: bool) -> Result<(), ProfileError> {
    let Some(jit) = jit_library(lua)? else { return Ok(()) };
    if on {
        jit.raw_get::<mlua::Function>("on")?.call::<()>(())?;
    } else {
        jit.raw_get::<mlua::Function>("off")?.call::<()>(())?;
        // flush too: traces compiled before `off` would otherwise keep running unhooked.
        jit.raw_get::<mlua::Function>("flush")?.call::<()>(())?;
    }
    Ok(())
}

const CALIBRATE: &str = "local n = ...\nlocal x = 0\nfor i = 1, n do\nx = x + i\nend\nreturn x";

/// Measures the hook on an empty loop (`x = x + i`, 200k iterations, best of 5) with the JIT
/// off, in `lua`.
pub fn calibrate_hook(lua: &Lua) -> Result<HookOverhead, ProfileError> {
    const N: u32 = 200_000;
    let was_on = jit_status(lua)?;
    set_jit(lua, false)?;
    let f = lua.load(CALIBRATE).set_name("=wafprof_calibrate").into_function()?;
    let mut best: Option<HookOverhead> = None;
    for _ in 0..5 {
        let t = Instant::now();
        f.call::<f64>(N)?;
        let plain = t.elapsed().as_nanos() as f64;
        let st = install_hook(lua, "=wafprof_calibrate", CALIBRATE.lines().count());
        let t = Instant::now();
        let r = f.call::<f64>(N);
        let hooked = t.elapsed().as_nanos() as f64;
        lua.remove_hook();
        r?;
        let s = st.borrow();
        let events = s.events.max(1) as f64;
        let charged: u64 = s.nanos.iter().sum();
        let o = HookOverhead {
            per_event_ns: ((hooked - plain) / events).max(0.0),
            bias_ns: ((charged as f64 - plain) / events).max(0.0),
            baseline_ns: plain / events,
        };
        if best.is_none_or(|b| o.per_event_ns < b.per_event_ns) {
            best = Some(o);
        }
    }
    if was_on == Some(true) {
        set_jit(lua, true)?;
    }
    best.ok_or_else(|| ProfileError::Unavailable("calibration ran no rounds".into()))
}

/// Per-event cost of Lua-side line hooks (`debug.sethook`), measured to compare with the
/// Rust hook: an empty one, and one doing the Rust hook's bookkeeping in Lua (clock read,
/// `debug.getinfo(2, "S")` to filter the chunk, count and time per line in tables).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LuaHookCost {
    pub empty_ns: f64,
    pub working_ns: f64,
}

const LUA_HOOKS: &str = r#"
local getinfo, clock, sethook = debug.getinfo, os.clock, debug.sethook
local empty = function() sethook(function() end, "l") end
local working = function()
  local counts, times, last_line, last_t = {}, {}, nil, 0
  sethook(function(_, line)
    local now = clock()
    if last_line then times[last_line] = (times[last_line] or 0) + (now - last_t) end
    if getinfo(2, "S").source == "=wafprof_calibrate" then
      counts[line] = (counts[line] or 0) + 1
      last_line, last_t = line, clock()
    else
      last_line = nil
    end
  end, "l")
end
return empty, working, function() sethook() end
"#;

/// Measures [`LuaHookCost`] (best of 5, 200k iterations of three line events, JIT off);
/// `None` when the VM has no `debug` library (mlua's `Lua::new` leaves it out).
pub fn lua_side_hook_cost(lua: &Lua) -> Result<Option<LuaHookCost>, ProfileError> {
    let has_debug: bool = lua.load("return type(debug) == 'table'").eval()?;
    if !has_debug {
        return Ok(None);
    }
    let was_on = jit_status(lua)?;
    set_jit(lua, false)?;
    let f = lua.load(CALIBRATE).set_name("=wafprof_calibrate").into_function()?;
    let (empty, working, off): (mlua::Function, mlua::Function, mlua::Function) =
        lua.load(LUA_HOOKS).set_name("=wafprof_hooks").eval()?;
    let cost = |install: &mlua::Function| -> Result<f64, ProfileError> {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            f.call::<f64>(200_000)?;
            let plain = t.elapsed().as_nanos() as f64;
            install.call::<()>(())?;
            let t = Instant::now();
            let r = f.call::<f64>(200_000);
            let hooked = t.elapsed().as_nanos() as f64;
            off.call::<()>(())?;
            r?;
            // Three line events per iteration (for, body, end) as the Rust hook counts them.
            best = best.min(((hooked - plain) / (3.0 * 200_000.0)).max(0.0));
        }
        Ok(best)
    };
    let c = LuaHookCost { empty_ns: cost(&empty)?, working_ns: cost(&working)? };
    if was_on == Some(true) {
        set_jit(lua, true)?;
    }
    Ok(Some(c))
}

/// Profiles every line of the chunk `chunk_name` (the exact name given to
/// `Chunk::set_name`, e.g. `=rules` or `@rules.lua`) while `run` executes. `source` is the
/// chunk's text, for the table's last column. The JIT is off for the run and restored after.
pub fn profile_lines<R>(
    lua: &Lua,
    chunk_name: &str,
    source: &str,
    run: impl FnOnce(&Lua) -> mlua::Result<R>,
) -> Result<(R, LineProfile), ProfileError> {
    let hook = calibrate_hook(lua)?;
    let was_on = jit_status(lua)?;
    set_jit(lua, false)?;
    let text: Vec<&str> = source.lines().collect();
    let st = install_hook(lua, chunk_name, text.len());
    let result = run(lua);
    lua.remove_hook();
    if was_on == Some(true) {
        set_jit(lua, true)?;
    }
    let value = result?;
    let s = st.borrow();
    let mut rows: Vec<LineRow> = (0..s.counts.len())
        .filter(|&i| s.counts[i] > 0)
        .map(|i| {
            let raw = s.nanos[i];
            let bias = (hook.bias_ns * s.counts[i] as f64) as u64;
            LineRow {
                line: i as u32,
                count: s.counts[i],
                elapsed_ns: raw.saturating_sub(bias),
                raw_ns: raw,
                text: i
                    .checked_sub(1)
                    .and_then(|j| text.get(j))
                    .map_or("<outside source>".into(), |t| t.trim().to_string()),
                rule: None,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.elapsed_ns.cmp(&a.elapsed_ns).then(a.line.cmp(&b.line)));
    Ok((
        value,
        LineProfile {
            chunk: chunk_name.trim_start_matches(['=', '@']).to_string(),
            jit_off: was_on.is_some(),
            hook,
            overhead_subtracted: true,
            events: s.events,
            rows,
        },
    ))
}

impl LineProfile {
    /// Fills each row's `rule` from the map.
    pub fn attach_rules(&mut self, map: &dyn LineMap) {
        for r in &mut self.rows {
            r.rule = map.rule_of(r.line).map(|r| r.id);
        }
    }

    /// Sums lines per rule (lines outside any rule under `-`), sorted by elapsed.
    pub fn by_rule(&self, map: &dyn LineMap) -> Vec<RuleLines> {
        let mut acc: std::collections::HashMap<String, RuleLines> = Default::default();
        for r in &self.rows {
            let id = map.rule_of(r.line).map_or_else(|| "-".to_string(), |r| r.id);
            let e = acc.entry(id.clone()).or_insert(RuleLines {
                rule: id,
                lines: 0,
                count: 0,
                elapsed_ns: 0,
                share: 0.0,
            });
            e.lines += 1;
            e.count += r.count;
            e.elapsed_ns += r.elapsed_ns;
        }
        let total: u64 = acc.values().map(|r| r.elapsed_ns).sum();
        let mut out: Vec<RuleLines> = acc.into_values().collect();
        for r in &mut out {
            r.share = if total > 0 { r.elapsed_ns as f64 / total as f64 } else { 0.0 };
        }
        out.sort_by(|a, b| b.elapsed_ns.cmp(&a.elapsed_ns).then(a.rule.cmp(&b.rule)));
        out
    }

    /// The lulip table, `lines.txt`.
    pub fn to_text(&self, top: Option<usize>) -> String {
        let mut s = format!(
            "# line profile of {}: JIT {} (line hooks do not fire in compiled traces)\n\
             # hook overhead {:.0} ns per line event (empty loop: {:.0} ns/event without hook); \
             {:.0} ns/event of it charged to lines, {}\n\
             # {} line events; times are interpreter times: rank lines, do not read them as JIT times\n",
            self.chunk,
            if self.jit_off { "off" } else { "absent" },
            self.hook.per_event_ns,
            self.hook.baseline_ns,
            self.hook.bias_ns,
            if self.overhead_subtracted { "subtracted" } else { "not subtracted" },
            self.events,
        );
        s.push_str(&format!(
            "{:<24} {:>10} {:>12}  {:<10} {}\n",
            "file:line", "count", "elapsed(ms)", "rule", "line"
        ));
        for r in self.rows.iter().take(top.unwrap_or(usize::MAX)) {
            s.push_str(&format!(
                "{:<24} {:>10} {:>12.3}  {:<10} {}\n",
                format!("{}:{}", self.chunk, r.line),
                r.count,
                r.elapsed_ns as f64 / 1e6,
                r.rule.as_deref().unwrap_or("-"),
                r.text
            ));
        }
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two "rules" as the Lua backend might generate them: a cheap one (lines 2-4) and one
    /// that loops (lines 6-12), called from a driver (lines 14-19).
    pub(crate) const CHUNK: &str = "\
-- generated
local function rule_100(s)
  return s == 'x'
end

local function rule_200(s)
  local n = 0
  for i = 1, #s do
    if s:byte(i) == 97 then n = n + 1 end
  end
  return n > 3
end

local function run(s, reps)
  local hits = 0
  for r = 1, reps do
    if rule_100(s) then hits = hits + 1 end
    if rule_200(s) then hits = hits + 1 end
  end
  return hits
end
return run";

    pub(crate) fn map() -> RangeLineMap {
        RangeLineMap::new(vec![
            (2, 4, RuleRef { id: "100".into() }),
            (6, 12, RuleRef { id: "200".into() }),
        ])
    }

    #[test]
    fn range_map_finds_rules() {
        let m = map();
        let cases = [(1, None), (2, Some("100")), (4, Some("100")), (5, None), (9, Some("200"))];
        for (line, want) in cases {
            assert_eq!(m.rule_of(line).map(|r| r.id), want.map(String::from), "line {line}");
        }
        let overlapping = RangeLineMap::new(vec![
            (5, 10, RuleRef { id: "b".into() }),
            (1, 6, RuleRef { id: "a".into() }),
            (9, 3, RuleRef { id: "bad".into() }),
        ]);
        assert_eq!(overlapping.rule_of(6).map(|r| r.id), Some("a".into()));
        assert_eq!(overlapping.rule_of(8), None);
    }

    #[test]
    fn counts_lines_and_ranks_the_loop_first() {
        let lua = Lua::new();
        let run: mlua::Function = lua.load(CHUNK).set_name("=rules").eval().unwrap();
        let (hits, mut p) = profile_lines(&lua, "=rules", CHUNK, |_| {
            run.call::<i64>(("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 2000))
        })
        .unwrap();
        assert_eq!(hits, 2000);
        assert!(p.jit_off);
        let count = |line: u32| p.rows.iter().find(|r| r.line == line).map_or(0, |r| r.count);
        // Line 3 runs once per call; line 9 (the loop body) 40 times per call. LuaJIT fires
        // a line event again when a Lua function called on a line returns to it
        // (`rule_100(s)`), so line 17 counts twice per iteration; `s:byte` is a fast
        // builtin and does not.
        assert_eq!(count(3), 2000);
        assert_eq!(count(9), 2000 * 40);
        assert_eq!(count(17), 2 * 2000);
        assert!(p.rows.iter().all(|r| r.line <= 21));
        p.attach_rules(&map());
        let top = &p.rows[0];
        assert_eq!(top.rule.as_deref(), Some("200"), "{}", p.to_text(Some(5)));
        let by = p.by_rule(&map());
        assert_eq!(by[0].rule, "200");
        let r100 = by.iter().find(|r| r.rule == "100").unwrap();
        // Only line 3 fires: the function returns there and never reaches `end`.
        assert_eq!(r100.count, 2000);
        assert!(by[0].elapsed_ns > r100.elapsed_ns);
        let text = p.to_text(Some(3));
        assert!(text.contains("JIT off") && text.contains("subtracted"), "{text}");
        assert!(text.contains("rules:9 "), "{text}");
        // The JIT is back on afterwards.
        assert_eq!(jit_status(&lua).unwrap(), Some(true));
    }

    #[test]
    fn errors_in_the_run_come_back_and_the_hook_is_removed() {
        let lua = Lua::new();
        let r = profile_lines(&lua, "=boom", "error('x')", |l| {
            l.load("error('x')").set_name("=boom").exec()
        });
        assert!(matches!(r, Err(ProfileError::Lua(_))));
        // No hook left behind: a long loop runs at full speed and the JIT is on.
        assert_eq!(jit_status(&lua).unwrap(), Some(true));
    }

    #[test]
    fn hook_costs_are_measured() {
        let lua = unsafe { Lua::unsafe_new() };
        let o = calibrate_hook(&lua).unwrap();
        assert!(o.per_event_ns > 0.0 && o.per_event_ns < 1e6, "{o:?}");
        let lua_side = lua_side_hook_cost(&lua).unwrap();
        let c = lua_side.unwrap();
        assert!(c.empty_ns < 1e6 && c.working_ns < 1e6, "{c:?}");
        eprintln!("rust hook {o:?}; lua-side hooks {c:?} ns/event");
        assert!(lua_side_hook_cost(&Lua::new()).unwrap().is_none());
    }
}
