//! `wafbench flame-diff A.folded B.folded --out diff.svg`: a differential flamegraph with
//! inferno: B's shape, red where B spends more than A, blue where less.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use waf_profiler::Folded;

#[derive(clap::Args)]
pub struct Args {
    /// The baseline folded stacks.
    before: PathBuf,
    /// The folded stacks to compare with it.
    after: PathBuf,
    /// Output SVG.
    #[arg(long)]
    out: PathBuf,
    /// Compare absolute counts instead of scaling `before` to `after`'s total.
    #[arg(long)]
    no_normalize: bool,
    /// Title of the picture.
    #[arg(long, default_value = "differential flamegraph")]
    title: String,
}

/// Largest folded file read (a profile of a whole CRS run is a few MiB).
const MAX_FOLDED_BYTES: u64 = 256 << 20;

fn read(p: &PathBuf) -> Result<Folded> {
    let len = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?.len();
    if len > MAX_FOLDED_BYTES {
        anyhow::bail!(
            "{}: {len} bytes, more than the {MAX_FOLDED_BYTES} a folded file may have",
            p.display()
        );
    }
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    Folded::parse(&text).with_context(|| format!("parsing {}", p.display()))
}

pub fn run(a: Args) -> Result<ExitCode> {
    let before = read(&a.before)?;
    let after = read(&a.after)?;
    let svg = waf_profiler::folded::diff_svg(&before, &after, &a.title, !a.no_normalize)?;
    std::fs::write(&a.out, svg).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!("wrote {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
