//! The `wafbench` command line. The binary is thin: each subcommand lives in
//! `cmd/<name>.rs` and calls into the library crates. Machine output goes to stdout, human
//! diagnostics to stderr; exit code 2 means an error (bad rules, bad arguments, a missing
//! peer), 1 a failed check (the p50 gate), 0 success.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cmd;

/// Counts heap bytes for `wafbench microbench`'s memory figures; off (one relaxed load per
/// allocation) until that subcommand builds its first structure.
#[global_allocator]
static ALLOC: wafbench::microbench::alloc::CountingAlloc =
    wafbench::microbench::alloc::CountingAlloc;

#[derive(Parser)]
#[command(
    name = "wafbench",
    version,
    about = "Check, convert, evaluate, measure, profile and gate WAF rule engines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand; its arguments and `run` live in `cmd/<name>.rs`.
#[derive(Subcommand)]
enum Command {
    /// Print the SecLang text the rule set `crs` is loaded from (base config, paranoia, CRS files).
    CrsConfig(cmd::crs_config::Args),
    /// Generate seeded request corpora (`gen`) and describe corpus files (`stats`).
    Corpus(cmd::corpus::Args),
    /// Run a corpus through an engine; one JSON decision per request on stdout.
    Eval(cmd::eval::Args),
    /// Run go-ftw YAML regression tests in-process against an engine.
    Ftw(cmd::ftw::Args),
    /// Load a rule set and print what it holds, or every error with its position.
    Check(cmd::check::Args),
    /// Convert a rule set to JSON IR or SecLang.
    Convert(cmd::convert::Args),
    /// Microbenchmarks: FFI call paths, @ipMatch structures, @pm engines -> reports/microbench.*
    Microbench(cmd::microbench::Args),
    /// Per-rule profile and flamegraphs of an engine over a corpus -> DIR/rules.{txt,json}, flame-*.svg
    Profile(cmd::profile::Args),
    /// Differential flamegraph of two folded-stack files.
    FlameDiff(cmd::flame_diff::Args),
    /// The full report: engines, latency plot, per-rule cost, flamegraphs, microbenches -> index.html
    Report(cmd::report::Args),
    /// Per-request decision latency of several engines, interleaved, after a differential check.
    Latency(cmd::latency::Args),
    /// p50 regression gate against a committed baseline (exit 1 on regression).
    Gate(cmd::gate::Args),
    /// Decision latency after gaps between decisions: nothing, a busy loop, a sleep, a cache-evicting write, the peer, the engine or its twin deciding the previous request.
    Coldstart(cmd::coldstart::Args),
    /// The gate's instruction-counting child, run under callgrind by `gate --gauge instructions`.
    #[command(hide = true)]
    GateCount(cmd::gate::CountArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CrsConfig(a) => cmd::crs_config::run(a),
        Command::Corpus(a) => cmd::corpus::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Ftw(a) => cmd::ftw::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::Microbench(a) => cmd::microbench::run(a),
        Command::Profile(a) => cmd::profile::run(a),
        Command::FlameDiff(a) => cmd::flame_diff::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Latency(a) => cmd::latency::run(a),
        Command::Gate(a) => cmd::gate::run(a),
        Command::Coldstart(a) => cmd::coldstart::run(a),
        Command::GateCount(a) => cmd::gate::run_count(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wafbench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
