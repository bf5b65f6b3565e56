//! `wafbench gate`: measure the current build on a small fixed workload and exit 1 when an
//! engine's p50, relative to a yardstick measured in the same run, regressed by more than the
//! threshold against the committed baseline (`--write-baseline` writes that baseline
//! instead). The method and why it is robust on noisy machines: `wafbench::gate`.

use super::latency::{build_engines, command_line, read_corpus_file};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use wafbench::callgrind::{ChildArgs, ColdCache};
use wafbench::gate::{self, Baseline, EngineBaseline, Gauge, Plan, Reference, Workload};
use wafbench::latency::{self, Slowdown};

#[derive(clap::Args)]
pub struct Args {
    /// Baseline file to compare with (or to write, with --write-baseline).
    #[arg(long, default_value = "reports/baseline.json")]
    baseline: PathBuf,
    /// Largest tolerated p50 regression, e.g. `10%` or `0.1`. Default: 10% with the
    /// instruction gauge, 25% with the time gauge (what each one's measured spread allows).
    #[arg(long)]
    threshold: Option<String>,
    /// What to measure: `instructions` (median instructions per decision, counted by
    /// callgrind; needs valgrind), `cold-lines` (median cache lines a decision fetches from
    /// memory when it starts with cold caches, from callgrind's cache simulator) or `time`
    /// (p50 latency over a yardstick timed in the same run). Comparing uses the baseline's
    /// gauge; writing defaults to `instructions`.
    #[arg(long, value_parser = ["instructions", "cold-lines", "time"])]
    gauge: Option<String>,
    /// Corpus file (JSON Lines); only its first --limit lines are used.
    #[arg(long, default_value = "corpora/mixed.jsonl")]
    corpus: String,
    /// Number of corpus lines used.
    #[arg(long, default_value_t = 300)]
    limit: usize,
    /// Rules: `crs`, `default` or a path; `auto` is `crs` when CRS is installed, else `default`.
    #[arg(long, default_value = "auto")]
    rules: String,
    /// Paranoia level for `crs`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
    paranoia: u8,
    /// Engines to gate, comma-separated. The default covers the native evaluator and the
    /// Lua backend users deploy (lua-ffi), whose counts are as repeatable as native's.
    #[arg(long, default_value = "native,lua-ffi", value_delimiter = ',')]
    engines: Vec<String>,
    /// Time gauge yardstick: `calibration` (the fixed workload; always measured) or `modsec`
    /// (added to the engines; noisier under load, see `wafbench::gate`).
    #[arg(long, default_value = "calibration", value_parser = ["modsec", "calibration"])]
    reference: String,
    /// Time gauge: repeated interleaved runs; the gate compares the median ratio.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Time gauge: timed passes over the corpus per run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// Untimed (or uncounted) passes before measuring.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=100))]
    warmup: u32,
    /// Measure and write the baseline instead of comparing.
    #[arg(long)]
    write_baseline: bool,
    /// Print the verdict (or the new baseline) as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let threshold = a.threshold.as_deref().map(gate::parse_threshold).transpose()?;
    let rules = if a.rules == "auto" {
        if waf_engine::crs::CrsLayout::locate().is_ok() {
            "crs".to_string()
        } else {
            eprintln!("wafbench gate: CRS not found, using the `default` rule set");
            "default".to_string()
        }
    } else {
        a.rules.clone()
    };
    let paranoia = (rules == "crs").then_some(a.paranoia);
    let Some((reqs, _bad, corpus_sha256)) =
        read_corpus_file(&a.corpus, Some(a.limit), true, "gate")?
    else {
        return Ok(ExitCode::from(2));
    };
    if reqs.is_empty() {
        bail!("corpus {} holds no request", a.corpus);
    }
    let workload = Workload {
        rules: rules.clone(),
        paranoia,
        corpus: a.corpus.clone(),
        limit: a.limit,
        requests: reqs.len(),
        corpus_sha256,
    };
    let asked = a.gauge.as_deref().and_then(Gauge::parse);
    let baseline = if a.write_baseline {
        None
    } else {
        let b = Baseline::load(&a.baseline)?;
        gate::check_workload(&b.workload, &workload)?;
        if let Some(g) = asked.filter(|g| *g != b.gauge) {
            bail!(
                "baseline {} was written with the {} gauge, not {}; rewrite it with --write-baseline --gauge {}",
                a.baseline.display(),
                b.gauge.name(),
                g.name(),
                g.name()
            );
        }
        let cpu = latency::Machine::current().cpu_model;
        if b.machine.cpu_model != cpu {
            eprintln!(
                "wafbench gate: warning: baseline written on `{}`, this is `{cpu}`: {}",
                b.machine.cpu_model,
                match b.gauge {
                    Gauge::Time => "ratios differ between CPU models",
                    Gauge::Instructions | Gauge::ColdLines =>
                        "libraries that pick SIMD code by CPU feature may count differently",
                }
            );
        }
        Some(b)
    };
    let gauge = baseline.as_ref().map_or(asked.unwrap_or(Gauge::Instructions), |b| b.gauge);
    let threshold = threshold.unwrap_or(gauge.default_threshold());
    let names: Vec<String> =
        a.engines.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();

    if let Some(reference) = gauge.count_reference() {
        let exe = std::env::current_exe()?;
        let cold = (gauge == Gauge::ColdLines).then_some(ColdCache);
        let child = ChildArgs {
            rules: rules.clone(),
            paranoia,
            corpus: a.corpus.clone(),
            limit: a.limit,
            engines: names.clone(),
            warmup: a.warmup.max(1),
            cold,
        };
        eprintln!(
            "wafbench gate: counting {} of {} decision(s) per engine under callgrind",
            if cold.is_some() { "cold cache lines" } else { "instructions" },
            reqs.len()
        );
        let counted = gate::measure_counts(&exe, &child, reqs.len())?;
        return match baseline {
            None => {
                let engines = counted
                    .into_iter()
                    .map(|(n, f)| (n, EngineBaseline::from_counts(gauge, f)))
                    .collect();
                write_baseline(&a, gauge, workload, 1, child.warmup, 1, engines)
            }
            Some(b) => verdict(&a, gate::compare_counts(&b, &counted, threshold, reference)?),
        };
    }

    let mut engines = build_engines(&names, &rules, paranoia)?;
    if a.reference == "modsec" && !names.iter().any(|n| n == "modsec") {
        // The yardstick. Without the library the calibration workload stands in.
        match wafbench::build_engine("modsec", &rules, paranoia) {
            Ok(e) => engines.push(e),
            Err(e) => eprintln!("wafbench gate: no modsec yardstick ({e}); using calibration"),
        }
    }
    let disagreements = latency::differential(&mut engines, &reqs);
    if !disagreements.is_empty() {
        eprintln!(
            "wafbench gate: warning: {} disagreement(s) with {} on the gate corpus",
            disagreements.len(),
            disagreements[0].reference
        );
    }
    let plan =
        Plan { runs: a.runs, warmup: a.warmup, repeat: a.repeat, slowdown: Slowdown::from_env()? };
    let measured = gate::measure(&mut engines, &reqs, &plan)?;

    match baseline {
        None => {
            let engines =
                measured.iter().map(|(n, r)| (n.clone(), EngineBaseline::from_runs(r))).collect();
            write_baseline(&a, gauge, workload, a.runs, a.warmup, a.repeat, engines)
        }
        Some(b) => {
            let prefer = if a.reference == "calibration" {
                Reference::Calibration
            } else {
                Reference::Modsec
            };
            verdict(&a, gate::compare(&b, &measured, prefer, threshold)?)
        }
    }
}

fn verdict(a: &Args, v: gate::Verdict) -> Result<ExitCode> {
    if a.json {
        println!("{}", serde_json::to_string(&v)?);
    } else {
        print!("{}", v.render());
    }
    Ok(if v.pass() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn write_baseline(
    a: &Args,
    gauge: Gauge,
    workload: Workload,
    runs: u32,
    warmup: u32,
    repeat: u32,
    engines: BTreeMap<String, EngineBaseline>,
) -> Result<ExitCode> {
    let b = Baseline {
        schema: gate::SCHEMA,
        gauge,
        method: gauge.method().into(),
        workload,
        runs,
        warmup,
        repeat,
        engines,
        git_rev: latency::git_rev(),
        command: command_line(),
        machine: latency::Machine::current(),
        date: latency::utc_now(),
    };
    let text = serde_json::to_string_pretty(&b)? + "\n";
    if let Some(dir) = a.baseline.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&a.baseline, &text)?;
    eprintln!("wafbench gate: wrote {}", a.baseline.display());
    if a.json {
        print!("{text}");
    } else {
        for (n, e) in &b.engines {
            let unit = if gauge == Gauge::ColdLines { "cold cache lines" } else { "instructions" };
            match e.counts(gauge) {
                Some(i) => println!(
                    "{n}: p50 {:.0} {unit} per decision (p90 {:.0}, mean {:.0})",
                    i.p50, i.p90, i.mean
                ),
                None => println!(
                    "{n}: p50 {:.1} µs, vs modsec {}, vs calibration {}",
                    e.p50_ns.unwrap_or(0) as f64 / 1e3,
                    e.p50_vs_modsec.map_or("n/a".into(), |r| format!("{r:.4}")),
                    e.p50_vs_calibration.map_or("n/a".into(), |r| format!("{r:.4}"))
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `wafbench gate-count`: the measuring child of the instruction gauge (hidden; it only
/// makes sense under callgrind, which `wafbench gate` starts).
#[derive(clap::Args)]
pub struct CountArgs {
    #[arg(long)]
    rules: String,
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    paranoia: Option<u8>,
    #[arg(long)]
    corpus: String,
    #[arg(long)]
    limit: usize,
    #[arg(long, value_delimiter = ',')]
    engines: Vec<String>,
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Evict the caches before each decision (the cold-lines gauge; valgrind simulates them).
    #[arg(long)]
    cold: bool,
}

pub fn run_count(a: CountArgs) -> Result<ExitCode> {
    if !wafbench::callgrind::running_on_valgrind() {
        bail!("gate-count only runs under callgrind; use `wafbench gate --gauge instructions`");
    }
    let Some((reqs, _bad, _sha)) = read_corpus_file(&a.corpus, Some(a.limit), true, "gate")? else {
        return Ok(ExitCode::from(2));
    };
    let mut engines = build_engines(&a.engines, &a.rules, a.paranoia)?;
    let slowdown = Slowdown::from_env()?;
    let cold = a.cold.then_some(ColdCache);
    wafbench::callgrind::count_decisions(&mut engines, &reqs, a.warmup, slowdown.as_ref(), cold)?;
    Ok(ExitCode::SUCCESS)
}
