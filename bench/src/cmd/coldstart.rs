//! `wafbench coldstart`: each engine's decision latency after different gaps between
//! decisions (nothing, a busy loop, a sleep, a cache-evicting write, the ModSecurity peer,
//! the engine itself or a twin of it deciding the previous request).
//! Table (or `--json`) on stdout; progress on stderr. See `wafbench::coldstart`.

use anyhow::{Context, Result, bail};
use std::io::IsTerminal;
use std::process::ExitCode;
use wafbench::coldstart::{self, Gap};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    set: super::RuleSetArgs,
    /// Corpus file in JSON Lines.
    #[arg(long)]
    corpus: String,
    /// Engines to measure, comma-separated (not `modsec`: it is a gap here).
    #[arg(long, default_value = "native,lua-ffi", value_delimiter = ',')]
    engines: Vec<String>,
    /// Gaps run before each timed decision, comma-separated: `none`, `spin:<N>us|ms`,
    /// `sleep:<N>us|ms`, `touch:<N>KiB|MiB`, `modsec` (the peer decides the same request),
    /// `warm` (the engine decides the previous request again), `twin` (a second instance of
    /// the engine, same rules, decides it); `a+b` runs one after the other.
    #[arg(
        long,
        default_value = "none,spin:1ms,spin:5ms,sleep:5ms,touch:16MiB",
        value_delimiter = ','
    )]
    gaps: Vec<String>,
    /// Only the first N requests of the corpus.
    #[arg(long)]
    limit: Option<usize>,
    /// Also time a memory probe after each gap: a dependent walk over 4,096 lines of a 256
    /// KiB buffer (row `probe:chase-256KiB`), to tell the host's part from the engines'.
    #[arg(long)]
    probe: bool,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let gaps = a.gaps.iter().map(|g| Gap::parse(g)).collect::<Result<Vec<_>, _>>()?;
    if gaps.is_empty() {
        bail!("no gap given");
    }
    if a.engines.iter().any(|e| e.trim() == "modsec") {
        bail!(
            "`modsec` is measured by `wafbench latency`; here it can only be a gap (--gaps modsec)"
        );
    }
    let Some((mut reqs, _, corpus_sha256)) =
        super::latency::read_corpus_file(&a.corpus, None, false, "coldstart")?
    else {
        return Ok(ExitCode::from(2));
    };
    if let Some(n) = a.limit {
        reqs.truncate(n);
    }
    if reqs.is_empty() {
        bail!("corpus {} holds no request", a.corpus);
    }
    let mut engines = super::latency::build_engines(&a.engines, &a.set.rules, a.set.paranoia)?;
    let mut peer = if gaps.iter().any(Gap::uses_peer) {
        Some(
            wafbench::build_engine("modsec", &a.set.rules, a.set.paranoia)
                .context("building the ModSecurity peer for the `modsec` gap")?,
        )
    } else {
        None
    };
    let twins = if gaps.iter().any(Gap::uses_twin) {
        super::latency::build_engines(&a.engines, &a.set.rules, a.set.paranoia)
            .context("building a twin of each engine for the `twin` gap")?
    } else {
        Vec::new()
    };
    let tty = std::io::stderr().is_terminal();
    let rows =
        coldstart::measure(&mut engines, twins, peer.as_mut(), &reqs, &gaps, a.probe, |e, g| {
            if tty {
                eprintln!("wafbench coldstart: {e} after {}", g.label());
            }
        })?;
    if a.json {
        let out = serde_json::json!({
            "rows": rows,
            "requests": reqs.len(),
            "rules": a.set.rules,
            "paranoia": a.set.paranoia,
            "corpus": a.corpus,
            "corpus_sha256": corpus_sha256,
            "git_rev": wafbench::stamp::git_rev(),
            "command": super::latency::command_line(),
            "machine": wafbench::stamp::Machine::current(),
            "date": wafbench::stamp::utc_now(),
        });
        println!("{out}");
    } else {
        print!("{}", coldstart::render(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
