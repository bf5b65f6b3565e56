//! `wafbench latency`: per-request decision latency of several engines on one corpus, after
//! checking that they decide alike. Table (or `--json`) on stdout; bad corpus lines and
//! progress (only on a terminal) on stderr. See `wafbench::latency` for the method.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::process::ExitCode;
use waf_engine::{Engine, Request};
use wafbench::latency::{self, Disagreements, LatencyReport, Options, Slowdown};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    set: super::RuleSetArgs,
    /// Corpus file in JSON Lines.
    #[arg(long)]
    corpus: String,
    /// Engines to compare, comma-separated (see `wafbench::ENGINE_NAMES`).
    #[arg(long, default_value = "native,modsec", value_delimiter = ',')]
    engines: Vec<String>,
    /// Timed passes over the corpus.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// Untimed passes before timing.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1000))]
    warmup: u32,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Stop at the first bad corpus line (exit 2).
    #[arg(long)]
    strict: bool,
    /// Also write every timed sample to FILE, one JSON object a line: `engine`, `pass`,
    /// `request` (corpus index), `id`, `after` (the participant that ran just before, or
    /// null) and `ns`, in the order taken.
    #[arg(long, value_name = "FILE")]
    samples: Option<String>,
    #[command(flatten)]
    opt: super::lua_opts::OptArgs,
}

/// Reads a corpus file, reporting bad lines on stderr. Returns the requests, the number of
/// bad lines and the SHA-256 of the bytes read; `None` when `strict` and a line was bad.
pub fn read_corpus_file(
    path: &str,
    limit: Option<usize>,
    strict: bool,
    who: &str,
) -> Result<Option<(Vec<Request>, usize, String)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading corpus {path}"))?;
    // The first `limit` lines only (blank ones included), so the hash names exactly what ran.
    let bytes = match limit {
        Some(n) => {
            let end = memchr::memchr_iter(b'\n', &bytes)
                .nth(n.saturating_sub(1))
                .map_or(bytes.len(), |i| i + 1);
            bytes[..if n == 0 { 0 } else { end }].to_vec()
        }
        None => bytes,
    };
    let sha = latency::sha256_hex(&bytes);
    let (reqs, errors) = waf_engine::request::read_corpus(&bytes[..], path);
    for e in &errors {
        eprintln!("wafbench {who}: {e}");
        if strict {
            return Ok(None);
        }
    }
    if !errors.is_empty() {
        eprintln!("wafbench {who}: {} bad corpus line(s) skipped", errors.len());
    }
    Ok(Some((reqs, errors.len(), sha)))
}

/// Builds the named engines; an unknown name or a missing peer is an error (exit 2).
pub fn build_engines(
    names: &[String],
    rules: &str,
    paranoia: Option<u8>,
) -> Result<Vec<Box<dyn Engine>>> {
    build_engines_with(names, rules, paranoia, &wafbench::EngineOptions::default())
}

/// [`build_engines`] with the Lua compiler's options (`--opt-level`, `--disable-pass`).
pub fn build_engines_with(
    names: &[String],
    rules: &str,
    paranoia: Option<u8>,
    opts: &wafbench::EngineOptions,
) -> Result<Vec<Box<dyn Engine>>> {
    let mut out: Vec<Box<dyn Engine>> = Vec::new();
    for name in names {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if out.iter().any(|e| e.name() == name) {
            bail!("engine `{name}` listed twice");
        }
        let e = wafbench::build_engine_with(name, rules, paranoia, opts)
            .with_context(|| format!("building engine `{name}`"))?;
        out.push(e);
    }
    if out.is_empty() {
        bail!("no engine given (available: {})", wafbench::ENGINE_NAMES.join(", "));
    }
    Ok(out)
}

/// The command line as typed, for reports.
pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

pub fn run(a: Args) -> Result<ExitCode> {
    let Some((reqs, bad_lines, corpus_sha256)) =
        read_corpus_file(&a.corpus, None, a.strict, "latency")?
    else {
        return Ok(ExitCode::from(2));
    };
    if reqs.is_empty() {
        bail!("corpus {} holds no request", a.corpus);
    }
    let mut engines =
        build_engines_with(&a.engines, &a.set.rules, a.set.paranoia, &a.opt.engine_options())?;
    let date = latency::utc_now();
    let machine = latency::Machine::current();
    let list = latency::differential(&mut engines, &reqs);
    if !list.is_empty() {
        eprintln!("wafbench latency: {} disagreement(s): timings compare unequal work", list.len());
    }
    let opts = Options {
        warmup: a.warmup,
        repeat: a.repeat,
        calibration: false,
        slowdown: Slowdown::from_env()?,
        progress: true,
        keep_samples: a.samples.is_some(),
    };
    let timings = latency::time_decisions(&mut engines, &reqs, &opts)?;
    if let Some(path) = &a.samples {
        write_samples(path, &timings, &reqs)
            .with_context(|| format!("writing samples to {path}"))?;
    }
    let stats: BTreeMap<_, _> = timings.iter().map(|t| (t.name.clone(), t.stats())).collect();
    let names: Vec<String> = timings.iter().map(|t| t.name.clone()).collect();
    let report = LatencyReport {
        after: timings.iter().map(|t| (t.name.clone(), t.after_stats(&names))).collect(),
        ratios: latency::ratios_vs_modsec(&stats),
        engines: stats,
        engine_order: names,
        disagreements: Disagreements { count: list.len(), list },
        requests: reqs.len(),
        bad_lines,
        warmup: a.warmup,
        repeat: a.repeat,
        rules: a.set.rules,
        paranoia: a.set.paranoia,
        corpus: a.corpus,
        corpus_sha256,
        git_rev: latency::git_rev(),
        build: wafbench::stamp::build().into(),
        command: command_line(),
        machine,
        date,
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `--samples`.
#[derive(serde::Serialize)]
struct SampleLine<'a> {
    engine: &'a str,
    pass: u32,
    request: u32,
    id: &'a str,
    after: Option<&'a str>,
    ns: u64,
}

/// Writes the samples of every participant as JSON Lines, in the order they were taken.
fn write_samples(path: &str, timings: &[latency::EngineTimings], reqs: &[Request]) -> Result<()> {
    let mut all: Vec<(usize, &latency::Sample)> = timings
        .iter()
        .enumerate()
        .flat_map(|(i, t)| t.samples.iter().map(move |s| (i, s)))
        .collect();
    all.sort_by_key(|(_, s)| (s.pass, s.request, s.slot));
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (i, s) in all {
        let line = SampleLine {
            engine: &timings[i].name,
            pass: s.pass,
            request: s.request,
            id: reqs.get(s.request as usize).map_or("", |r| r.id.as_str()),
            after: s.after.and_then(|q| timings.get(usize::from(q))).map(|t| t.name.as_str()),
            ns: s.ns,
        };
        serde_json::to_writer(&mut w, &line)?;
        std::io::Write::write_all(&mut w, b"\n")?;
    }
    std::io::Write::flush(&mut w)?;
    Ok(())
}
