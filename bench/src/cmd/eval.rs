//! `wafbench eval`: run a corpus through one engine and write one decision per request as
//! JSON Lines on stdout (`{"id","status","disruptive","matched_ids","anomaly_score"}`).
//! Bad corpus lines go to stderr with their line number; the run goes on unless `--strict`.

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use waf_engine::Request;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    set: super::RuleSetArgs,
    /// Engine to run (see `wafbench::ENGINE_NAMES`).
    #[arg(long, default_value = "native")]
    engine: String,
    /// Corpus file in JSON Lines; `-` reads stdin.
    #[arg(long)]
    corpus: String,
    /// Stop at the first bad corpus line (exit 2).
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    opt: super::lua_opts::OptArgs,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let mut engine = wafbench::build_engine_with(
        &a.engine,
        &a.set.rules,
        a.set.paranoia,
        &a.opt.engine_options(),
    )?;
    let reader: Box<dyn BufRead> = if a.corpus == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let f = std::fs::File::open(&a.corpus).with_context(|| format!("opening {}", a.corpus))?;
        Box::new(BufReader::new(f))
    };
    let source = if a.corpus == "-" { "<stdin>" } else { a.corpus.as_str() };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut bad = 0usize;
    // Streamed line by line rather than through `read_corpus`, so a long corpus on stdin
    // yields decisions as it arrives and memory stays flat.
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = line.with_context(|| format!("{source}:{line_no}: reading"))?;
        if line.trim().is_empty() {
            continue;
        }
        let req = match Request::from_json_line(&line) {
            Ok(r) => r,
            Err(e) => {
                bad += 1;
                out.flush()?;
                eprintln!("wafbench eval: {source}:{line_no}: {e}");
                if a.strict {
                    return Ok(ExitCode::from(2));
                }
                continue;
            }
        };
        let d = engine.decide(&req);
        serde_json::to_writer(&mut out, &d)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if bad > 0 {
        eprintln!("wafbench eval: {bad} bad corpus line(s) skipped");
    }
    Ok(ExitCode::SUCCESS)
}
