//! `wafbench microbench [--quick] [--json]`: runs the three microbench suites (FFI call
//! paths, `@ipMatch` structures, `@pm` engines) with the library's own timing loop (answers
//! checked first, medians of repeated batches) and writes `reports/microbench.json` and
//! `reports/microbench.md`. Progress goes to stderr; with `--json` the JSON document also
//! goes to stdout, otherwise the Markdown does.

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use wafbench::microbench::{self, Bench, Budget, Measurement, Scale, ffi, ip, pm};
use wafbench::stamp;

#[derive(clap::Args)]
pub struct Args {
    /// Small inputs and short batches (no 1M-prefix sets, no 10k/100k dictionaries).
    #[arg(long)]
    quick: bool,
    /// Print the JSON report on stdout instead of the Markdown.
    #[arg(long)]
    json: bool,
    /// Only the suites whose name contains this (ffi, ip, pm).
    #[arg(long)]
    only: Option<String>,
    /// Where the reports go.
    #[arg(long, default_value = "reports")]
    out_dir: PathBuf,
}

/// Who, where and when produced a report.
#[derive(Debug, Serialize)]
struct Stamp {
    command: String,
    git_rev: String,
    cpu: String,
    date: String,
    scale: &'static str,
}

#[derive(Debug, Serialize)]
struct Report {
    stamp: Stamp,
    measurements: Vec<Measurement>,
}

fn run_suite(
    name: &str,
    benches: Vec<Bench>,
    budget: Budget,
    out: &mut Vec<Measurement>,
) -> Result<()> {
    let total = benches.len();
    for (i, mut b) in benches.into_iter().enumerate() {
        let m = microbench::measure(&mut b, budget).map_err(|e| anyhow!(e))?;
        let (rate, unit) = m.rate();
        eprintln!(
            "[{name} {}/{total}] {}/{}/{}: {rate:.3} {unit}",
            i + 1,
            m.group,
            m.function,
            m.input
        );
        out.push(m);
    }
    Ok(())
}

pub fn run(a: Args) -> Result<ExitCode> {
    let (scale, budget) =
        if a.quick { (Scale::Quick, Budget::quick()) } else { (Scale::Full, Budget::normal()) };
    let want = |s: &str| a.only.as_deref().is_none_or(|o| s.contains(o));
    let mut ms = Vec::new();
    if want("ffi") {
        run_suite("ffi", ffi::suite().map_err(|e| anyhow!(e))?, budget, &mut ms)?;
    }
    if want("ip") {
        run_suite("ip", ip::suite(scale).map_err(|e| anyhow!(e))?, budget, &mut ms)?;
    }
    if want("pm") {
        run_suite("pm", pm::suite(scale).map_err(|e| anyhow!(e))?, budget, &mut ms)?;
    }
    let report = Report {
        stamp: Stamp {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            git_rev: stamp::git_rev(),
            cpu: stamp::cpu_model(),
            date: stamp::utc_now(),
            scale: if a.quick { "quick" } else { "full" },
        },
        measurements: ms,
    };
    let json = serde_json::to_string_pretty(&report)?;
    let md = markdown(&report);
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("creating {}", a.out_dir.display()))?;
    let jp = a.out_dir.join("microbench.json");
    let mp = a.out_dir.join("microbench.md");
    std::fs::write(&jp, &json).with_context(|| format!("writing {}", jp.display()))?;
    std::fs::write(&mp, &md).with_context(|| format!("writing {}", mp.display()))?;
    eprintln!("wrote {} and {}", jp.display(), mp.display());
    if a.json {
        println!("{json}");
    } else {
        print!("{md}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One table: rows (group suffix, input), one column per function in first-seen order, each
/// cell the rate and its ratio to `baseline`.
fn table(out: &mut String, ms: &[&Measurement], prefix: &str, baseline: &str) {
    let mut cols: Vec<&str> = Vec::new();
    let mut rows: Vec<(&str, &str)> = Vec::new();
    for m in ms {
        if !cols.contains(&m.function.as_str()) {
            cols.push(&m.function);
        }
        let key = (m.group.strip_prefix(prefix).unwrap_or(&m.group), m.input.as_str());
        if !rows.contains(&key) {
            rows.push(key);
        }
    }
    let unit = ms.first().map(|m| m.rate().1).unwrap_or("");
    let _ = writeln!(out, "| case | input | {} |", cols.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---:|".repeat(cols.len()));
    for (g, input) in rows {
        let find = |f: &str| {
            ms.iter()
                .find(|m| {
                    m.group.strip_prefix(prefix).unwrap_or(&m.group) == g
                        && m.input == input
                        && m.function == f
                })
                .map(|m| m.rate().0)
        };
        let base = find(baseline);
        let cells: Vec<String> = cols
            .iter()
            .map(|c| match (find(c), base) {
                (Some(v), Some(b)) if b > 0.0 && v > 0.0 => {
                    format!("{} ({:.2}x)", fmt_rate(v), v / b)
                }
                (Some(v), _) => fmt_rate(v),
                (None, _) => "-".into(),
            })
            .collect();
        let _ = writeln!(out, "| {g} | {input} | {} |", cells.join(" | "));
    }
    let _ = writeln!(out, "\nUnit: {unit}; ratios are to `{baseline}`.\n");
}

fn fmt_rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Build time and heap bytes per (group, function, input) from the notes, once per build.
fn build_table(out: &mut String, ms: &[&Measurement], prefix: &str) {
    let _ = writeln!(out, "| set | structure | build (ms) | heap (bytes) |\n|---|---|---:|---:|");
    let mut seen: Vec<(String, String)> = Vec::new();
    for m in ms {
        let g = m.group.strip_prefix(prefix).unwrap_or(&m.group);
        let set = if prefix.starts_with("ip") {
            format!("{}/{}", g.split('_').next().unwrap_or(g), m.input)
        } else {
            g.to_string()
        };
        let key = (set.clone(), m.function.clone());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let note = |k: &str| m.notes.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let heap = note("heap_bytes").map_or("-".into(), |h| format!("{h:.0}"));
        let build = note("build_ms").map_or("-".into(), |b| format!("{b:.3}"));
        let _ = writeln!(out, "| {set} | {} | {build} | {heap} |", m.function);
    }
    out.push('\n');
}

fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let s = &r.stamp;
    let _ = writeln!(
        out,
        "# Microbenchmarks\n\n- command: `{}`\n- git rev: {}\n- CPU: {}\n- date: {}\n- scale: {}\n- method: answers checked first; median of repeated batches\n",
        s.command, s.git_rev, s.cpu, s.date, s.scale
    );
    let pick = |p: &str| -> Vec<&Measurement> {
        r.measurements.iter().filter(|m| m.group.starts_with(p)).collect()
    };
    let ffi = pick("ffi_overhead/");
    if !ffi.is_empty() {
        let _ = writeln!(out, "## FFI call paths (ns per call, lower is better)\n");
        table(&mut out, &ffi, "ffi_overhead/", "rust_direct");
        let get = |f: &str| {
            ffi.iter()
                .find(|m| m.group == "ffi_overhead/empty" && m.function == f)
                .map(|m| m.rate().0)
        };
        if let (Some(lj), Some(dl)) = (get("luajit_ffi"), get("rust_dlopen")) {
            let _ = writeln!(
                out,
                "Claim \"LuaJIT calling C is faster than C calling C through the PLT\": empty call via LuaJIT FFI (JIT on) {lj:.2} ns vs Rust through a dlsym pointer {dl:.2} ns: **{}** here.\n",
                if lj < dl { "holds" } else { "does not hold" }
            );
        }
    }
    let ipm = pick("ip_trie/");
    if !ipm.is_empty() {
        let _ = writeln!(out, "## @ipMatch structures (M lookups/s, higher is better)\n");
        table(&mut out, &ipm, "ip_trie/", "ipset_ranges");
        let _ = writeln!(out, "### Build time and memory\n");
        build_table(&mut out, &ipm, "ip_trie/");
    }
    let pmm = pick("aho_corasick/");
    if !pmm.is_empty() {
        let _ = writeln!(out, "## @pm engines (GB/s, higher is better)\n");
        table(&mut out, &pmm, "aho_corasick/", "phrase_matcher");
        let _ = writeln!(out, "### Build time and memory\n");
        build_table(&mut out, &pmm, "aho_corasick/");
    }
    out
}
