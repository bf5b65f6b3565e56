//! `wafbench profile`: where an engine spends its time on a corpus. For `native`: the
//! per-rule table (`DIR/rules.txt`, `DIR/rules.json`), a flamegraph whose frames are rules
//! (`DIR/flame-native.{svg,folded}`, drawn from the per-rule times) and, unless
//! `--no-pprof`, one of the real Rust stacks (`DIR/flame-native-pprof.{svg,folded}`, a
//! separate pprof pass). The table goes to stdout too; progress to stderr.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Rules: `crs`, `default` (embedded rule set) or a path.
    #[arg(long)]
    rules: String,
    /// Paranoia level (1-4) for `crs`.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    paranoia: Option<u8>,
    /// Corpus file in JSON Lines.
    #[arg(long)]
    corpus: PathBuf,
    /// Engine to profile: `native` (`lua` comes with the Lua backend).
    #[arg(long, default_value = "native")]
    engine: String,
    /// What to measure for a Lua engine: `lines` (line hook, JIT off) or `sample`
    /// (jit.profile, JIT on).
    #[arg(long, default_value = "lines", value_parser = ["lines", "sample"])]
    mode: String,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Rows in rules.txt and on stdout (rules.json has all).
    #[arg(long, default_value_t = 40)]
    top: usize,
    /// Only the first N requests of the corpus.
    #[arg(long)]
    limit: Option<usize>,
    /// Skip the pprof pass (no flame-native-pprof.svg).
    #[arg(long)]
    no_pprof: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.engine.as_str() {
        "native" => {}
        // Wiring point for the Lua backend: build its Lua state, chunk name, source text and
        // SourceMap (implementing `waf_profiler::LineMap`) here, then call
        // `wafbench::report::write_lua_profiles` (both passes), or for one `--mode`:
        // `waf_profiler::lua_lines::profile_lines` (lines) / `lua_sample::sample` (sample).
        "lua" | "lua-ffi" => bail!("engine {} not available in this build", a.engine),
        other => bail!(
            "engine {other} cannot be profiled (available: native; lua, lua-ffi with the Lua backend)"
        ),
    }
    let _ = &a.mode;
    let (requests, _) = wafbench::report::load_corpus(&a.corpus, a.limit)?;
    let set = wafbench::load_rule_set(&a.rules, a.paranoia).context("loading rules")?;
    let engine = waf_engine::eval::NativeEngine::new(&set).context("compiling rules")?;
    eprintln!("profile: {} requests, native engine", requests.len());
    let p = wafbench::report::write_native_profile(
        &engine,
        &requests,
        &a.out,
        Some(a.top),
        !a.no_pprof,
    )?;
    print!("{}", p.rules.to_text(Some(a.top)));
    for f in &p.flamegraphs {
        eprintln!("wrote {}", a.out.join(&f.svg).display());
    }
    eprintln!(
        "wrote {} and {}",
        a.out.join("rules.txt").display(),
        a.out.join("rules.json").display()
    );
    Ok(ExitCode::SUCCESS)
}
