//! `wafbench profile`: where an engine spends its time on a corpus.
//!
//! `--engine native`: the per-rule table (`DIR/rules.txt`, `DIR/rules.json`), a flamegraph
//! whose frames are rules (`DIR/flame-native.{svg,folded}`, drawn from the per-rule times)
//! and, unless `--no-pprof`, one of the real Rust stacks (`DIR/flame-native-pprof.{svg,folded}`,
//! a separate pprof pass).
//!
//! `--engine lua|lua-ffi`: `--mode lines` runs the corpus once under a line hook with the JIT
//! off (`DIR/lines.txt` lulip table, `DIR/lines.json`) and sums it per rule through the
//! compiler's source map into the same table as native's (`DIR/rules.txt`, `rules.json`);
//! `--mode sample` repeats the corpus under `jit.profile` with the JIT on (`DIR/lua.folded`
//! with rule ids in the frames, `DIR/flame-lua.svg`, `DIR/sample.json`) and says whether its
//! top rules agree with the line mode's (this run's, or a `rules.json` already in DIR).
//! Without `--mode`, both. Tables go to stdout; progress and the agreement line to stderr.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    set: super::RuleSetArgs,
    /// Corpus file in JSON Lines.
    #[arg(long)]
    corpus: PathBuf,
    /// Engine to profile: `native`, `lua` or `lua-ffi`.
    #[arg(long, default_value = "native")]
    engine: String,
    /// What to measure for a Lua engine: `lines` (line hook, JIT off) or `sample`
    /// (jit.profile, JIT on); both when not given.
    #[arg(long, value_parser = ["lines", "sample"])]
    mode: Option<String>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Rows in rules.txt, lines.txt and on stdout (the JSON files have all).
    #[arg(long, default_value_t = 40)]
    top: usize,
    /// Only the first N requests of the corpus.
    #[arg(long)]
    limit: Option<usize>,
    /// Skip the pprof pass (no flame-native-pprof.svg).
    #[arg(long)]
    no_pprof: bool,
    /// Sampling mode: repeat the corpus for at least this many seconds (a sample every 4 ms).
    #[arg(long, default_value_t = 2.0)]
    sample_secs: f64,
    #[command(flatten)]
    opt: super::lua_opts::OptArgs,
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.engine.as_str() {
        "native" => run_native(a),
        "lua" | "lua-ffi" => run_lua(a),
        other => bail!("engine {other} cannot be profiled (available: native, lua, lua-ffi)"),
    }
}

fn run_native(a: Args) -> Result<ExitCode> {
    if a.mode.is_some() {
        bail!("--mode is for the Lua engines; native has one mode (per-rule timers)");
    }
    let (requests, _) = wafbench::report::load_corpus(&a.corpus, a.limit)?;
    let set = wafbench::load_rule_set(&a.set.rules, a.set.paranoia).context("loading rules")?;
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

fn run_lua(a: Args) -> Result<ExitCode> {
    if !(a.sample_secs.is_finite() && (0.0..=3600.0).contains(&a.sample_secs)) {
        bail!("--sample-secs must be between 0 and 3600");
    }
    let (requests, _) = wafbench::report::load_corpus(&a.corpus, a.limit)?;
    let set = wafbench::load_rule_set(&a.set.rules, a.set.paranoia).context("loading rules")?;
    let mut engine = wafbench::report::build_lua_profile_engine(&a.engine, &set, a.opt.passes())
        .context("building the Lua engine")?;
    let cfg = wafbench::report::LuaProfileConfig {
        lines: a.mode.as_deref() != Some("sample"),
        sample: a.mode.as_deref() != Some("lines"),
        sample_time: std::time::Duration::from_secs_f64(a.sample_secs),
        rules_stem: "rules".into(),
        top: Some(a.top),
        warmup: false,
    };
    eprintln!(
        "profile: {} requests, engine {}, {}",
        requests.len(),
        a.engine,
        match (cfg.lines, cfg.sample) {
            (true, true) => "line pass (JIT off) then sampling pass (JIT on)",
            (true, false) => "line pass (JIT off)",
            _ => "sampling pass (JIT on)",
        }
    );
    let p = wafbench::report::write_lua_engine_profiles(
        &mut engine,
        &a.engine,
        &requests,
        &a.out,
        &cfg,
    )?;
    for (what, stats) in [("line", &p.line_pass), ("sampling", &p.sample_pass)] {
        if let Some(s) = stats {
            eprintln!(
                "{what} pass: {} round(s), {} requests, {:.3} s{}",
                s.rounds,
                s.requests,
                s.wall_ns as f64 / 1e9,
                s.first_error
                    .as_ref()
                    .map_or(String::new(), |e| format!(", {} failed (first: {e})", s.failed))
            );
        }
    }
    if let (Some(lines), Some(rules)) = (&p.lines, &p.rules) {
        print!("{}", lines.to_text(Some(a.top.min(20))));
        println!();
        print!("{}", rules.to_text(Some(a.top)));
        eprintln!(
            "wrote {}, {}, {} and {}",
            a.out.join("lines.txt").display(),
            a.out.join("lines.json").display(),
            a.out.join("rules.txt").display(),
            a.out.join("rules.json").display()
        );
    }
    if let Some(s) = &p.sample {
        let states: Vec<String> = s.vm_states.iter().map(|(k, v)| format!("{k} {v}")).collect();
        eprintln!(
            "sample: {} samples every {} ms (VM states: {})",
            s.samples,
            s.interval_ms,
            states.join(", ")
        );
        match &p.flamegraph {
            Some(f) => eprintln!(
                "wrote {} and {}",
                a.out.join(&f.folded).display(),
                a.out.join(&f.svg).display()
            ),
            None => eprintln!("no samples were taken: no flamegraph (try a larger --sample-secs)"),
        }
        match &p.agreement {
            Some(ag) => eprintln!("agreement: {}", ag.summary()),
            None => eprintln!(
                "agreement: no line profile to compare with (run --mode lines into the same \
                 --out first, or leave out --mode)"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
