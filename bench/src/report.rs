//! `wafbench report` and `wafbench profile` as a library: measure, profile, and write the
//! report directory.
//!
//! Flow of [`run_report`]: load the corpus (and its SHA-256) -> build the engines (those that
//! cannot be built here, e.g. `modsec` without libmodsecurity3, are listed as skipped) ->
//! [`crate::report_latency::compare_engines`] -> [`write_native_profile`] (per-rule table,
//! rule-level flamegraph from the per-rule times, then a separate pprof pass for the Rust
//! stacks) -> quick microbenches -> [`crate::report_render`] writes `index.html`, `report.md`
//! and `report.json`, each stamped with command, git revision, machine and date.
//!
//! Then the Lua engine of `--lua-engine` (default `lua-ffi`) gets its own two passes
//! ([`write_lua_engine_profiles`]: line hook with the JIT off, then `jit.profile` with the
//! JIT on): `lines.txt`, the per-rule table `rules-lua.txt` next to native's `rules.txt`, and
//! `flame-lua.svg` with the other flamegraphs.

use crate::microbench::{self, Budget, Measurement, Scale};
use crate::report_latency::{LatencyComparison, compare_engines};
use crate::stamp;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use waf_engine::eval::NativeEngine;
use waf_engine::{Engine, Request};
use waf_profiler::{Folded, LineProfile, RuleProfile};

/// Why a report or profile could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("corpus {path}: {message}")]
    Corpus { path: PathBuf, message: String },
    #[error(transparent)]
    Build(#[from] crate::BuildEngineError),
    #[error(transparent)]
    Profile(#[from] waf_profiler::ProfileError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Unsupported(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `dir/name`.
pub fn write_file(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> Result<PathBuf, ReportError> {
    let p = dir.join(name);
    std::fs::write(&p, bytes).map_err(io_err(&p))?;
    Ok(p)
}

/// `crs` when the Debian CRS package is installed, else the embedded `default` rule set.
pub fn default_rules_spec() -> &'static str {
    if waf_engine::crs::CrsLayout::locate().is_ok() { "crs" } else { "default" }
}

/// Paranoia level for `crs` when none is given.
pub fn default_paranoia(rules: &str) -> Option<u8> {
    (rules == "crs").then_some(1)
}

/// Reads a corpus; every bad line is an error naming its line (a report on a silently
/// shortened corpus would mislead). `limit` keeps the first N requests.
pub fn load_corpus(
    path: &Path,
    limit: Option<usize>,
) -> Result<(Vec<Request>, String), ReportError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let sha = format!("{:x}", Sha256::digest(&bytes));
    let (mut reqs, errors) =
        waf_engine::request::read_corpus(&bytes[..], &path.display().to_string());
    if let Some(e) = errors.first() {
        return Err(ReportError::Corpus {
            path: path.into(),
            message: format!("{} bad line(s), first: {e}", errors.len()),
        });
    }
    if reqs.is_empty() {
        return Err(ReportError::Corpus { path: path.into(), message: "no requests".into() });
    }
    if let Some(n) = limit {
        reqs.truncate(n.max(1));
    }
    Ok((reqs, sha))
}

/// Who, where, when and on what a report was produced.
#[derive(Debug, Clone, Serialize)]
pub struct Stamp {
    pub command: String,
    pub git_rev: String,
    /// [`stamp::build`].
    pub build: String,
    pub cpu: String,
    pub cores: usize,
    pub date: String,
    pub rules: String,
    pub paranoia: Option<u8>,
    pub corpus: String,
    pub corpus_sha256: String,
    pub requests: usize,
    pub quick: bool,
}

impl Stamp {
    pub fn now(
        command: String,
        rules: &str,
        paranoia: Option<u8>,
        corpus: &Path,
        sha: &str,
        requests: usize,
        quick: bool,
    ) -> Stamp {
        Stamp {
            command,
            git_rev: stamp::git_rev(),
            build: stamp::build().into(),
            cpu: stamp::cpu_model(),
            cores: stamp::cores(),
            date: stamp::utc_now(),
            rules: rules.into(),
            paranoia,
            corpus: corpus.display().to_string(),
            corpus_sha256: sha.into(),
            requests,
            quick,
        }
    }
}

/// A flamegraph written to the report directory.
#[derive(Debug, Clone, Serialize)]
pub struct Flamegraph {
    pub name: String,
    pub title: String,
    pub svg: String,
    pub folded: String,
    /// How the stacks were made.
    pub method: String,
    pub total: u64,
    pub count_name: String,
    /// The picture without JavaScript, for inlining into `index.html`.
    #[serde(skip)]
    pub inline_svg: String,
}

/// Writes `name.folded`, `name.svg` (interactive) and returns the entry with an inline copy.
pub fn write_flamegraph(
    dir: &Path,
    name: &str,
    title: &str,
    count_name: &str,
    method: &str,
    folded: &Folded,
) -> Result<Flamegraph, ReportError> {
    write_flamegraph_as(dir, name, &format!("{name}.folded"), title, count_name, method, folded)
}

/// [`write_flamegraph`] with the stacks written to `folded_file` instead of `name.folded`.
pub fn write_flamegraph_as(
    dir: &Path,
    name: &str,
    folded_file: &str,
    title: &str,
    count_name: &str,
    method: &str,
    folded: &Folded,
) -> Result<Flamegraph, ReportError> {
    let svg = folded.flamegraph_svg(title, count_name)?;
    let inline =
        waf_profiler::folded::svg_for_inline(&folded.flamegraph_svg_static(title, count_name)?);
    write_file(dir, folded_file, folded.to_text())?;
    write_file(dir, &format!("{name}.svg"), svg)?;
    Ok(Flamegraph {
        name: name.into(),
        title: title.into(),
        svg: format!("{name}.svg"),
        folded: folded_file.into(),
        method: method.into(),
        total: folded.total(),
        count_name: count_name.into(),
        inline_svg: inline,
    })
}

/// What [`write_native_profile`] produced.
#[derive(Debug, Clone)]
pub struct NativeProfile {
    pub rules: RuleProfile,
    pub flamegraphs: Vec<Flamegraph>,
}

pub const NATIVE_RULES_METHOD: &str = "synthetic stacks native;phase_N;rule_<id>;<operator> weighted by the \
     per-rule nanoseconds of NativeEngine::evaluate_profiled (timer bias subtracted); pprof \
     samples cannot tell which rule a Rust frame serves";
pub const NATIVE_PPROF_METHOD: &str = "pprof-rs (SIGPROF, 999 Hz) over a separate unprofiled pass of the corpus \
     through NativeEngine::evaluate: real Rust stacks, no rule ids";

/// Per-rule profile of the native engine over `requests` into `dir`: `rules.txt`,
/// `rules.json`, `flame-native.{svg,folded}` (rule frames) and, when `pprof` is set,
/// `flame-native-pprof.{svg,folded}` from a second pass (the per-rule timers would otherwise
/// show up in the sampled stacks).
pub fn write_native_profile(
    engine: &NativeEngine,
    requests: &[Request],
    dir: &Path,
    top: Option<usize>,
    pprof: bool,
) -> Result<NativeProfile, ReportError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let rules = waf_profiler::rules::profile_native(engine, requests);
    write_file(dir, "rules.txt", rules.to_text(top))?;
    write_file(dir, "rules.json", serde_json::to_string_pretty(&rules)?)?;
    let mut flamegraphs = Vec::new();
    let folded = rules.folded();
    if !folded.is_empty() {
        flamegraphs.push(write_flamegraph(
            dir,
            "flame-native",
            "native engine: time per rule",
            "ns",
            NATIVE_RULES_METHOD,
            &folded,
        )?);
    }
    if pprof {
        // At least one pass, then more for about a second: pprof asks for 999 Hz but the
        // kernel's timer tick caps ITIMER_PROF (738 samples in ~3 s of CPU measured here,
        // about 250 Hz), so a small corpus needs repeating to get a readable picture.
        let (_, stacks) = waf_profiler::native_pprof::pprof_folded(999, || {
            let t = std::time::Instant::now();
            let mut n = 0usize;
            while n == 0 || (t.elapsed() < std::time::Duration::from_secs(1) && n < 1000) {
                for r in requests {
                    std::hint::black_box(engine.evaluate(r));
                }
                n += 1;
            }
        })?;
        if !stacks.is_empty() {
            flamegraphs.push(write_flamegraph(
                dir,
                "flame-native-pprof",
                "native engine: Rust stacks (pprof)",
                "samples",
                NATIVE_PPROF_METHOD,
                &stacks,
            )?);
        }
    }
    Ok(NativeProfile { rules, flamegraphs })
}

/// What [`write_lua_profiles`] produced.
#[derive(Debug, Clone)]
pub struct LuaProfiles {
    pub lines: LineProfile,
    pub by_rule: Vec<waf_profiler::lua_lines::RuleLines>,
    pub flamegraph: Option<Flamegraph>,
}

pub const LUA_SAMPLE_METHOD: &str = "LuaJIT jit.profile (JIT on, 1 ms, line mode), stacks from \
     profile.dumpstack with every frame of the generated chunk renamed rule_<id> through the \
     backend's source map; the root frame is the VM state (vm_N compiled, vm_I interpreted, \
     vm_C C code, vm_G GC, vm_J JIT compiler); ticks that land in Rust outside any Lua call \
     are delivered when the next phase function starts and are shown as \
     outside_lua_before_phase<N>, not as that phase's first rule";

/// The Lua side of `profile` and `report`, for the Lua backend to call with its own state:
/// pass 1 runs `run` under the line hook with the JIT off (`lines.txt`, `lines.json`, the
/// per-rule sums in `lines-by-rule.json`); pass 2 runs it again under `jit.profile` with the
/// JIT on (`flame-lua.{svg,folded}`). Two passes, never one: the hook needs the JIT off, the
/// sampler wants it on, and only one SIGPROF user may run at a time.
pub fn write_lua_profiles(
    lua: &mlua::Lua,
    chunk_name: &str,
    source: &str,
    map: &dyn waf_profiler::LineMap,
    mut run: impl FnMut(&mlua::Lua) -> mlua::Result<()>,
    dir: &Path,
    top: Option<usize>,
) -> Result<LuaProfiles, ReportError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let ((), mut lines) =
        waf_profiler::lua_lines::profile_lines(lua, chunk_name, source, &mut run)?;
    lines.attach_rules(map);
    let by_rule = lines.by_rule(map);
    write_file(dir, "lines.txt", lines.to_text(top))?;
    write_file(dir, "lines.json", serde_json::to_string_pretty(&lines)?)?;
    write_file(dir, "lines-by-rule.json", serde_json::to_string_pretty(&by_rule)?)?;
    let ((), sampled) = waf_profiler::lua_sample::sample(
        lua,
        chunk_name,
        waf_profiler::lua_sample::SAMPLE_INTERVAL_MS,
        map,
        &mut run,
    )?;
    let flamegraph = if sampled.folded.is_empty() {
        None
    } else {
        Some(write_flamegraph(
            dir,
            "flame-lua",
            "generated Lua: jit.profile samples by rule",
            "samples",
            LUA_SAMPLE_METHOD,
            &sampled.folded,
        )?)
    };
    Ok(LuaProfiles { lines, by_rule, flamegraph })
}

/// Which Lua passes to run and where their files go.
#[derive(Debug, Clone)]
pub struct LuaProfileConfig {
    /// The line pass (JIT off, line hook): `lines.txt`, `lines.json`, the per-rule table.
    pub lines: bool,
    /// The sampling pass (JIT on, `jit.profile`): `lua.folded`, `flame-lua.svg`, `sample.json`.
    pub sample: bool,
    /// The sampling pass repeats the corpus for at least this long (1 ms samples).
    pub sample_time: std::time::Duration,
    /// File stem of the per-rule table: `rules` in `wafbench profile` (the native table's
    /// name, so two output directories compare file by file), `rules-lua` in the report,
    /// whose directory holds the native table too.
    pub rules_stem: String,
    /// Rows in the text tables (the JSON files have all).
    pub top: Option<usize>,
    /// Run the corpus once, unprofiled, before the passes. The report sets it because its
    /// native profile runs after the latency comparison has warmed that engine (regex
    /// lazy-DFA caches are filled on first use: cold, the first pass over CRS PL1 charges
    /// their construction to the big `@rx` rules, e.g. 942360); `wafbench profile` leaves it
    /// off for every engine, so the native and Lua tables there are both first passes.
    pub warmup: bool,
}

/// What [`write_lua_engine_profiles`] produced.
#[derive(Debug, Clone, Serialize)]
pub struct LuaEngineProfiles {
    pub engine: String,
    /// The line profile (rows sorted by elapsed; `lines.json` has them all).
    pub lines: Option<LineProfile>,
    /// The per-rule table summed from the line profile through the source map.
    pub rules: Option<RuleProfile>,
    pub line_pass: Option<waf_profiler::lua_rules::PassStats>,
    pub sample: Option<waf_profiler::lua_sample::SampleSummary>,
    pub sample_pass: Option<waf_profiler::lua_rules::PassStats>,
    /// Samples per rule (inclusive), largest first.
    pub sample_by_rule: Vec<(String, u64)>,
    pub flamegraph: Option<Flamegraph>,
    /// Top 10 rules of the line mode against the sampler's.
    pub agreement: Option<waf_profiler::lua_rules::TopAgreement>,
}

pub const LUA_LINES_METHOD: &str = "line hook (mlua set_hook, every line of the generated chunk), \
     JIT off because compiled traces skip hooks; each line is charged the time until the next \
     line event, minus the hook's own share measured on an empty loop; rules are the source \
     map's blocks, evaluated/matched are the executions of each rule's end and action lines";

/// The Lua state a profile runs in: `name` (`lua` or `lua-ffi`) built without the
/// per-request instruction budget, because a Lua state has one hook and the line hook
/// takes its place (the wall-clock limit stays, checked between phases).
pub fn build_lua_profile_engine(
    name: &str,
    set: &waf_engine::RuleSet,
    passes: waf_engine::lua::PassSet,
) -> Result<waf_engine::lua::LuaEngine, ReportError> {
    use waf_engine::lua::{Backend, Limits, LuaEngine, LuaOptions};
    let backend = match name {
        "lua" => Backend::Mlua,
        "lua-ffi" => Backend::Ffi,
        other => return Err(ReportError::Unsupported(format!("{other} is not a Lua engine"))),
    };
    let limits = Limits { instructions_per_request: None, ..Limits::default() };
    let opts = LuaOptions { backend, passes, limits };
    LuaEngine::new(set, opts).map_err(|e| ReportError::Build(crate::BuildEngineError::Lua(e)))
}

/// Top rule ids of a `rules.json` written earlier into `dir` (by any engine), with the
/// engine's name: what a sample-only run compares its top rules with.
pub fn read_rules_json_top(dir: &Path, n: usize) -> Option<(String, Vec<String>)> {
    let text = std::fs::read_to_string(dir.join("rules.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let engine = v.get("engine")?.as_str()?.to_string();
    let ids = v
        .get("rows")?
        .as_array()?
        .iter()
        .filter_map(|r| r.get("id")?.as_str().map(String::from))
        .take(n)
        .collect();
    Some((engine, ids))
}

/// Runs the configured passes of `requests` through a Lua engine (built with
/// [`build_lua_profile_engine`]) and writes their files into `dir`. The line pass runs
/// first; the sampler's top rules are compared with its per-rule table, or, in a
/// sample-only run, with a `rules.json` already in `dir`.
pub fn write_lua_engine_profiles(
    engine: &mut waf_engine::lua::LuaEngine,
    engine_name: &str,
    requests: &[Request],
    dir: &Path,
    cfg: &LuaProfileConfig,
) -> Result<LuaEngineProfiles, ReportError> {
    use waf_profiler::lua_rules::{self, TopAgreement};
    const AGREE_N: usize = 10;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut out = LuaEngineProfiles {
        engine: engine_name.into(),
        lines: None,
        rules: None,
        line_pass: None,
        sample: None,
        sample_pass: None,
        sample_by_rule: Vec::new(),
        flamegraph: None,
        agreement: None,
    };
    if cfg.warmup {
        for r in requests {
            // Failures are counted by the profiled passes; this round only fills caches.
            let _ = engine.evaluate(r);
        }
    }
    if cfg.lines {
        let p = lua_rules::profile_engine_lines(engine, engine_name, requests)?;
        write_file(dir, "lines.txt", p.lines.to_text(cfg.top))?;
        write_file(dir, "lines.json", serde_json::to_string_pretty(&p.lines)?)?;
        let stem = &cfg.rules_stem;
        write_file(dir, &format!("{stem}.txt"), p.rules.to_text(cfg.top))?;
        write_file(dir, &format!("{stem}.json"), serde_json::to_string_pretty(&p.rules)?)?;
        out.lines = Some(p.lines);
        out.rules = Some(p.rules);
        out.line_pass = Some(p.stats);
    }
    if cfg.sample {
        let p = lua_rules::sample_engine(engine, requests, cfg.sample_time)?;
        let by_rule = lua_rules::samples_by_rule(&p.sample.folded);
        let sample_ids = by_rule.iter().map(|r| r.0.clone());
        let agreement = match &out.rules {
            Some(rules) => Some(TopAgreement::new(
                AGREE_N,
                "lines",
                rules.rows.iter().map(|r| r.rule.id.clone()),
                "sample",
                sample_ids,
            )),
            None => read_rules_json_top(dir, AGREE_N).map(|(engine, ids)| {
                TopAgreement::new(
                    AGREE_N,
                    &format!("rules.json ({engine})"),
                    ids,
                    "sample",
                    sample_ids,
                )
            }),
        };
        if !p.sample.folded.is_empty() {
            out.flamegraph = Some(write_flamegraph_as(
                dir,
                "flame-lua",
                "lua.folded",
                &format!("generated Lua ({engine_name}): jit.profile samples by rule"),
                "samples",
                LUA_SAMPLE_METHOD,
                &p.sample.folded,
            )?);
        }
        let summary = p.sample.summary();
        write_file(
            dir,
            "sample.json",
            serde_json::to_string_pretty(&serde_json::json!({
                "engine": engine_name,
                "summary": summary,
                "pass": p.stats,
                "by_rule": by_rule,
                "agreement": agreement,
            }))?,
        )?;
        out.sample = Some(summary);
        out.sample_pass = Some(p.stats);
        out.sample_by_rule = by_rule;
        out.agreement = agreement;
    }
    Ok(out)
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    pub rules: String,
    pub paranoia: Option<u8>,
    pub corpus: PathBuf,
    pub quick: bool,
    pub limit: Option<usize>,
    /// Engines to compare, the first being the baseline of the ratios.
    pub engines: Vec<String>,
    pub microbench: bool,
    /// The Lua engine profiled by line and by sample (`lua` or `lua-ffi`), `None` for none.
    pub lua_engine: Option<String>,
    /// Rows of the per-rule table shown in HTML and Markdown (the JSON has all).
    pub top: usize,
    pub command: String,
}

/// An engine that was asked for but could not be built here.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub engine: String,
    pub reason: String,
}

/// Rows of the line table kept in `report.json` (the page shows `top` of them).
pub const REPORT_LINE_ROWS: usize = 100;

/// Everything the report shows; `report.json` is this.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub stamp: Stamp,
    pub latency: LatencyComparison,
    pub skipped_engines: Vec<Skipped>,
    pub rules: RuleProfile,
    pub top: usize,
    /// The Lua passes (line profile, per-rule table from it, sampler, agreement); `None`
    /// when no Lua engine was profiled, with the reason in `lua_note`.
    pub lua: Option<LuaEngineProfiles>,
    /// Native against Lua per-rule tables: overlap of their top 10.
    pub native_vs_lua: Option<waf_profiler::lua_rules::TopAgreement>,
    pub lua_note: String,
    pub flamegraphs: Vec<Flamegraph>,
    pub microbench: Vec<Measurement>,
    pub microbench_notes: Vec<String>,
}

/// Runs everything and writes the report directory; returns the report.
pub fn run_report(cfg: &ReportConfig, dir: &Path) -> Result<Report, ReportError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (requests, sha) = load_corpus(&cfg.corpus, cfg.limit)?;
    eprintln!("report: {} requests from {}", requests.len(), cfg.corpus.display());
    let set =
        crate::load_rule_set(&cfg.rules, cfg.paranoia).map_err(crate::BuildEngineError::from)?;
    let native = NativeEngine::new(&set).map_err(crate::BuildEngineError::from)?;

    let mut engines: Vec<Box<dyn Engine>> = Vec::new();
    let mut skipped = Vec::new();
    for name in &cfg.engines {
        if name == "native" {
            engines.push(Box::new(native.clone()));
            continue;
        }
        match crate::build_engine(name, &cfg.rules, cfg.paranoia) {
            Ok(e) => engines.push(e),
            Err(e) => {
                eprintln!("report: engine {name} skipped: {e}");
                skipped.push(Skipped { engine: name.clone(), reason: e.to_string() });
            }
        }
    }
    if engines.is_empty() {
        return Err(ReportError::Unsupported("no engine could be built".into()));
    }
    let rounds = if cfg.quick { 1 } else { 3 };
    eprintln!("report: latency, {} engine(s), {rounds} round(s)", engines.len());
    let latency = compare_engines(&mut engines, &requests, rounds);
    drop(engines);

    eprintln!("report: per-rule profile and flamegraphs");
    let prof = write_native_profile(&native, &requests, dir, Some(cfg.top), true)?;

    let (lua, lua_note) = match &cfg.lua_engine {
        None => (None, "no Lua engine profiled (--lua-engine none)".to_string()),
        Some(name) => {
            eprintln!("report: {name} line pass (JIT off) and sampling pass (JIT on)");
            let mut engine = build_lua_profile_engine(name, &set, Default::default())?;
            let lcfg = LuaProfileConfig {
                lines: true,
                sample: true,
                sample_time: std::time::Duration::from_secs(if cfg.quick { 1 } else { 3 }),
                rules_stem: "rules-lua".into(),
                top: Some(cfg.top),
                warmup: true,
            };
            let mut p = write_lua_engine_profiles(&mut engine, name, &requests, dir, &lcfg)?;
            // report.json keeps the top rows of the line table; lines.json has every line.
            if let Some(l) = &mut p.lines {
                l.rows.truncate(REPORT_LINE_ROWS);
            }
            let note = format!(
                "engine {name}: {LUA_LINES_METHOD}. Flamegraph: {LUA_SAMPLE_METHOD}. Files: \
                 lines.txt, lines.json, rules-lua.txt, rules-lua.json, lua.folded, flame-lua.svg, \
                 sample.json"
            );
            (Some(p), note)
        }
    };
    let native_vs_lua = lua.as_ref().and_then(|l| l.rules.as_ref()).map(|lr| {
        waf_profiler::lua_rules::TopAgreement::new(
            10,
            "native",
            prof.rules.rows.iter().map(|r| r.rule.id.clone()),
            &lr.engine,
            lr.rows.iter().map(|r| r.rule.id.clone()),
        )
    });
    let mut flamegraphs = prof.flamegraphs;
    if let Some(f) = lua.as_ref().and_then(|l| l.flamegraph.clone()) {
        flamegraphs.push(f);
    }

    let mut microbench = Vec::new();
    let mut microbench_notes = Vec::new();
    if cfg.microbench {
        eprintln!("report: microbenches (quick)");
        run_microbenches(&mut microbench, &mut microbench_notes);
    } else {
        microbench_notes.push("microbenches not run (--no-microbench)".into());
    }

    let report = Report {
        stamp: Stamp::now(
            cfg.command.clone(),
            &cfg.rules,
            cfg.paranoia,
            &cfg.corpus,
            &sha,
            requests.len(),
            cfg.quick,
        ),
        latency,
        skipped_engines: skipped,
        rules: prof.rules,
        top: cfg.top,
        lua,
        native_vs_lua,
        lua_note,
        flamegraphs,
        microbench,
        microbench_notes,
    };
    write_file(dir, "report.json", serde_json::to_string_pretty(&report)?)?;
    write_file(dir, "report.md", crate::report_render::markdown(&report))?;
    write_file(dir, "index.html", crate::report_render::html(&report))?;
    Ok(report)
}

/// The three microbench suites in quick mode; a suite that cannot run here (no cdylib for
/// the FFI suite) becomes a note instead of failing the report.
fn run_microbenches(out: &mut Vec<Measurement>, notes: &mut Vec<String>) {
    type Suite = fn() -> Result<Vec<microbench::Bench>, String>;
    let suites: [(&str, Suite); 3] = [
        ("ffi", microbench::ffi::suite),
        ("ip", || microbench::ip::suite(Scale::Quick)),
        ("pm", || microbench::pm::suite(Scale::Quick)),
    ];
    for (name, suite) in suites {
        match suite() {
            Ok(benches) => {
                for mut b in benches {
                    match microbench::measure(&mut b, Budget::quick()) {
                        Ok(m) => out.push(m),
                        Err(e) => notes.push(format!("{name}: {e}")),
                    }
                }
            }
            Err(e) => notes.push(format!("suite {name} not run: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waf_profiler::{RangeLineMap, RuleRef};

    /// A hand-written stand-in for the Lua backend's output: two rule functions and a
    /// driver, with the line ranges its source map would give.
    const CHUNK: &str = "\
local function rule_920100(s)
  return s:find('%.%.') ~= nil
end
local function rule_942100(s)
  local n = 0
  for i = 1, #s do
    if s:byte(i) == 39 then n = n + 1 end
  end
  return n > 2
end
return function(s)
  local a = rule_920100(s)
  local b = rule_942100(s)
  return a or b
end";

    #[test]
    fn lua_profiles_write_lines_and_a_rule_flamegraph() {
        let lua = mlua::Lua::new();
        let f: mlua::Function = lua.load(CHUNK).set_name("=crs.lua").eval().unwrap();
        let map = RangeLineMap::new(vec![
            (1, 3, RuleRef { id: "920100".into() }),
            (4, 10, RuleRef { id: "942100".into() }),
        ]);
        let input = "x".repeat(300) + "'''";
        let dir = tempfile::tempdir().unwrap();
        let p = write_lua_profiles(
            &lua,
            "=crs.lua",
            CHUNK,
            &map,
            |_| {
                let t = std::time::Instant::now();
                while t.elapsed() < std::time::Duration::from_millis(250) {
                    assert!(f.call::<bool>(input.as_str())?);
                }
                Ok(())
            },
            dir.path(),
            Some(10),
        )
        .unwrap();
        assert_eq!(p.by_rule[0].rule, "942100", "{:?}", p.by_rule);
        assert!(p.lines.rows[0].rule.as_deref() == Some("942100"));
        let txt = std::fs::read_to_string(dir.path().join("lines.txt")).unwrap();
        assert!(txt.contains("crs.lua:7 ") && txt.contains("JIT off"), "{txt}");
        let fg = p.flamegraph.expect("samples were taken");
        let svg = std::fs::read_to_string(dir.path().join(&fg.svg)).unwrap();
        assert!(svg.contains("rule_942100"), "no rule frame in flame-lua.svg");
        let folded = std::fs::read_to_string(dir.path().join(&fg.folded)).unwrap();
        assert!(folded.lines().all(|l| l.starts_with("vm_")), "{folded}");
    }
}
