//! `wafbench ftw`: run go-ftw YAML regression files in-process against an engine and print a
//! verdict per stage with totals (`N passed, N failed, N skipped` as the last line), or with
//! `--json` one JSON object `{"results": [...], "totals": {...}}`. Exit 1 when a stage fails.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use wafbench::ftw::{self, Verdict};

#[derive(clap::Args)]
pub struct Args {
    /// YAML files or directories (walked recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Paranoia level (1-4) for `--rules crs`; the suite is written for 4.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=4))]
    paranoia: u8,
    /// Engine to run (see `wafbench::ENGINE_NAMES`).
    #[arg(long, default_value = "native")]
    engine: String,
    /// Rules: `crs` or a path.
    #[arg(long, default_value = "crs")]
    rules: String,
    /// One JSON object on stdout instead of text lines.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let stages = ftw::plan(&ftw::load_all(&a.paths)?);
    let mut engine = wafbench::build_engine(&a.engine, &a.rules, Some(a.paranoia))?;
    let report = ftw::run(&stages, engine.as_mut());
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for r in &report.results {
            match &r.verdict {
                Verdict::Pass => println!("PASS {}", r.id),
                Verdict::Fail(why) => println!("FAIL {} ({}): {why}", r.id, r.file),
                Verdict::Skip(why) => println!("SKIP {}: {why}", r.id),
            }
        }
        let t = &report.totals;
        println!("{} passed, {} failed, {} skipped", t.passed, t.failed, t.skipped);
    }
    Ok(if report.totals.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
