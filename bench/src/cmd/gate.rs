//! `wafbench gate`: measure the current build on a small fixed workload and exit 1 when an
//! engine's p50, relative to a yardstick measured in the same run, regressed by more than the
//! threshold against the committed baseline (`--write-baseline` writes that baseline
//! instead). The method and why it is robust on noisy machines: `wafbench::gate`.

use super::latency::{build_engines, command_line, read_corpus_file};
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;
use wafbench::gate::{self, Baseline, EngineBaseline, Plan, Reference, Workload};
use wafbench::latency::{self, Slowdown};

#[derive(clap::Args)]
pub struct Args {
    /// Baseline file to compare with (or to write, with --write-baseline).
    #[arg(long, default_value = "reports/baseline.json")]
    baseline: PathBuf,
    /// Largest tolerated p50 slowdown relative to the yardstick, e.g. `25%` or `0.25`.
    #[arg(long, default_value = "25%")]
    threshold: String,
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
    /// Engines to gate, comma-separated.
    #[arg(long, default_value = "native", value_delimiter = ',')]
    engines: Vec<String>,
    /// Yardstick: `calibration` (the fixed workload; always measured) or `modsec` (added to
    /// the engines; noisier under load, see `wafbench::gate`).
    #[arg(long, default_value = "calibration", value_parser = ["modsec", "calibration"])]
    reference: String,
    /// Repeated interleaved runs; the gate compares the median ratio.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Timed passes over the corpus per run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// Untimed passes before the runs.
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
    let threshold = gate::parse_threshold(&a.threshold)?;
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
    let baseline = if a.write_baseline {
        None
    } else {
        let b = Baseline::load(&a.baseline)?;
        gate::check_workload(&b.workload, &workload)?;
        let cpu = latency::Machine::current().cpu_model;
        if b.machine.cpu_model != cpu {
            eprintln!(
                "wafbench gate: warning: baseline written on `{}`, this is `{cpu}`: ratios differ between CPU models",
                b.machine.cpu_model
            );
        }
        Some(b)
    };

    let names: Vec<String> =
        a.engines.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
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
            let b = Baseline {
                schema: gate::SCHEMA,
                method: gate::METHOD.into(),
                workload,
                runs: a.runs,
                warmup: a.warmup,
                repeat: a.repeat,
                engines: measured
                    .iter()
                    .map(|(n, r)| (n.clone(), EngineBaseline::from_runs(r)))
                    .collect(),
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
                    println!(
                        "{n}: p50 {:.1} µs, vs modsec {}, vs calibration {:.4}",
                        e.p50_ns as f64 / 1e3,
                        e.p50_vs_modsec.map_or("n/a".into(), |r| format!("{r:.4}")),
                        e.p50_vs_calibration
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(b) => {
            let prefer = if a.reference == "calibration" {
                Reference::Calibration
            } else {
                Reference::Modsec
            };
            let verdict = gate::compare(&b, &measured, prefer, threshold)?;
            if a.json {
                println!("{}", serde_json::to_string(&verdict)?);
            } else {
                print!("{}", verdict.render());
            }
            Ok(if verdict.pass() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}
