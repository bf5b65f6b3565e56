//! `wafbench report`: the whole picture in one directory: engines compared (latency
//! percentiles, ratios, disagreements), the native per-rule profile, the Lua line profile
//! and per-rule table, flamegraphs, quick
//! microbenches -> `index.html` (one self-contained page), `report.md`, `report.json`.
//! Progress on stderr; the path of `index.html` on stdout.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Rules: `crs`, `default` or a path; default `crs` when CRS is installed, else `default`.
    #[arg(long)]
    rules: Option<String>,
    /// Paranoia level (1-4) for `crs` (default 1).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    paranoia: Option<u8>,
    /// Corpus file in JSON Lines.
    #[arg(long, default_value = "corpora/mixed.jsonl")]
    corpus: PathBuf,
    /// One timing round and quick microbenches.
    #[arg(long)]
    quick: bool,
    /// Only the first N requests of the corpus.
    #[arg(long)]
    limit: Option<usize>,
    /// Engines to compare, comma-separated; the first is the baseline of the ratios.
    #[arg(long, default_value = "native,modsec", value_delimiter = ',')]
    engines: Vec<String>,
    /// Lua engine for the line profile, the Lua per-rule table and flame-lua.svg: `lua`
    /// (default), `lua-ffi` or `none`. Default `lua` because the per-rule table comes from
    /// the line pass, which runs with the JIT off, where an FFI call takes the interpreter's
    /// slow path (~103 ns against ~56 ns for an mlua function, measured here): with
    /// `lua-ffi` every rule is charged more call overhead that native does not have, and the
    /// two engines run the same chunk and the same Rust primitives otherwise.
    #[arg(long, default_value = "lua", value_parser = ["lua", "lua-ffi", "none"])]
    lua_engine: String,
    /// Skip the microbenches.
    #[arg(long)]
    no_microbench: bool,
    /// Rows of the per-rule table in the page.
    #[arg(long, default_value_t = 30)]
    top: usize,
    /// Output directory.
    #[arg(long, default_value = "reports/latest")]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let rules = a.rules.unwrap_or_else(|| wafbench::report::default_rules_spec().to_string());
    let paranoia = a.paranoia.or_else(|| wafbench::report::default_paranoia(&rules));
    let cfg = wafbench::report::ReportConfig {
        rules,
        paranoia,
        corpus: a.corpus,
        quick: a.quick,
        limit: a.limit,
        engines: a.engines,
        microbench: !a.no_microbench,
        lua_engine: (a.lua_engine != "none").then_some(a.lua_engine),
        top: a.top,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    wafbench::report::run_report(&cfg, &a.out)?;
    println!("{}", a.out.join("index.html").display());
    Ok(ExitCode::SUCCESS)
}
