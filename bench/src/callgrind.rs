//! Instruction counts per decision, measured by Valgrind's callgrind: the gate's noise-free
//! gauges (`wafbench gate --gauge instructions`, and with the cache simulator
//! `--gauge cold-lines`, see [`crate::gate`]).
//!
//! The measuring process is `wafbench` itself, started under
//! `valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no --combine-dumps=yes`.
//! Compiling the rules runs uninstrumented (callgrind's instrumentation makes CRS's compile
//! take 40 s instead of 8 s). After the warm-up passes the child asks callgrind, through
//! client requests, to start instrumenting; then around each decision it switches collection
//! on, decides, switches it off and asks for a dump labelled with the engine and the request.
//! Every dump holds only what was collected since the previous one, so its `totals:` line is
//! that one decision's instruction count. The parent parses the combined dump file.
//!
//! Client requests are Valgrind's documented calling convention: a magic no-op instruction
//! sequence that the emulator recognises and a real CPU executes as four rotations of `rdi`
//! that add up to a full turn. Outside Valgrind they cost a few cycles and do nothing.

use crate::latency::Slowdown;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use waf_engine::{Engine, Request};

/// `VG_USERREQ_TOOL_BASE('C', 'T')`: callgrind's request numbers start here.
const CT_BASE: u64 = ((b'C' as u64) << 24) | ((b'T' as u64) << 16);
const DUMP_STATS_AT: u64 = CT_BASE + 3;
const ZERO_STATS: u64 = CT_BASE + 1;
const TOGGLE_COLLECT: u64 = CT_BASE + 2;
const START_INSTRUMENTATION: u64 = CT_BASE + 4;
/// Core request: returns how many Valgrinds the program runs under (0 on a real CPU).
const RUNNING_ON_VALGRIND: u64 = 0x1001;

/// One Valgrind client request; returns `default` when not running under Valgrind.
#[cfg(target_arch = "x86_64")]
fn client_request(default: u64, request: u64, arg1: u64) -> u64 {
    let args: [u64; 6] = [request, arg1, 0, 0, 0, 0];
    let mut result = default;
    // SAFETY: the sequence only rotates rdi by 3+13+61+51 = 128 bits (a no-op, rdi is
    // declared clobbered anyway) and exchanges rbx with itself; Valgrind reads the six
    // words at `args`, which live until the asm block ends, and writes rdx.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            out("rdi") _,
            options(nostack),
        );
    }
    std::hint::black_box(&args);
    result
}

#[cfg(not(target_arch = "x86_64"))]
fn client_request(default: u64, _request: u64, _arg1: u64) -> u64 {
    default
}

/// True when this process runs under Valgrind.
pub fn running_on_valgrind() -> bool {
    client_request(0, RUNNING_ON_VALGRIND, 0) > 0
}

/// Why instruction counts could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CountError {
    #[error(
        "valgrind not found ({0}); the instruction gauge needs it: apt-get install -y valgrind (or measure time: --gauge time)"
    )]
    NoValgrind(String),
    #[error("the instruction gauge needs an x86-64 machine (Valgrind client requests)")]
    Arch,
    #[error("the measuring run under valgrind failed ({status}):\n{stderr}")]
    Child { status: String, stderr: String },
    #[error("callgrind output {path}: {message}")]
    Output { path: String, message: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One counted decision: which engine, which request (index in the corpus slice), how many
/// instructions, and with the cache simulator on ([`ColdCache`]), how many cache lines it
/// fetched from memory (last-level misses: instruction reads, data reads and data writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub engine: String,
    pub request: usize,
    pub instructions: u64,
    pub lines: Option<u64>,
}

/// The cold-cache setting of the cold-lines gauge: callgrind simulates a machine with 32 KiB
/// first-level caches and an 8 MiB last-level cache (fixed, so that counts do not depend on
/// the host), and the child writes 12 MiB before each decision, outside the counted region,
/// so that every decision starts with nothing of its own cached, as it does after another
/// engine ran in `wafbench latency` (the measured state of this project's VMs:
/// `wafbench coldstart`). A decision touches a few hundred KiB, which the simulated cache
/// holds, so the count is the lines it touches, each fetched once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdCache;

impl ColdCache {
    pub const LL_BYTES: usize = 8 << 20;
    pub const POLLUTE_BYTES: usize = 12 << 20;

    fn valgrind_args() -> [String; 4] {
        [
            "--cache-sim=yes".into(),
            "--I1=32768,8,64".into(),
            "--D1=32768,8,64".into(),
            format!("--LL={},16,64", Self::LL_BYTES),
        ]
    }
}

/// The label a dump carries; [`parse_counts`] reads it back.
fn label(engine: &str, request: usize) -> String {
    format!("wafbench-decision engine={engine} request={request}")
}

/// Writes one byte per cache line of `junk`: afterwards nothing else is in a cache of that
/// size or smaller.
fn evict(junk: &mut [u8]) {
    for i in (0..junk.len()).step_by(64) {
        junk[i] = junk[i].wrapping_add(1);
    }
    std::hint::black_box(&junk);
}

/// The child's side: `warmup` untimed passes, then one instrumented pass that collects and
/// dumps each decision on its own. The slowdown knob busy-waits inside the collected region,
/// as it does inside the timed region of [`crate::latency`]. With `cold`, the caches are
/// evicted before each decision, outside the collected region ([`ColdCache`]).
pub fn count_decisions(
    engines: &mut [Box<dyn Engine>],
    reqs: &[Request],
    warmup: u32,
    slowdown: Option<&Slowdown>,
    cold: Option<ColdCache>,
) -> Result<(), CountError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(CountError::Arch);
    }
    for _ in 0..warmup {
        for req in reqs {
            for e in engines.iter_mut() {
                std::hint::black_box(e.decide(req));
            }
        }
    }
    client_request(0, START_INSTRUMENTATION, 0);
    if std::env::var_os("WAFBENCH_CALLGRIND_WHOLE").is_some() {
        // Profiling by hand (`valgrind --tool=callgrind --instr-atstart=no
        // --collect-atstart=no wafbench gate-count ...`, then `callgrind_annotate`): one
        // collected region over the whole pass, dumped at exit, instead of a dump a decision.
        // `WAFBENCH_CALLGRIND_POLLUTE=MiB`: touch that much memory before each decision,
        // uncollected, so that `--cache-sim=yes` shows which code misses a cold cache.
        let pollute: usize = std::env::var("WAFBENCH_CALLGRIND_POLLUTE")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(0, |m: usize| m << 20);
        let mut junk = vec![0u8; pollute];
        for req in reqs {
            for e in engines.iter_mut() {
                evict(&mut junk);
                client_request(0, TOGGLE_COLLECT, 0);
                counted_decision(e.as_mut(), req, 0.0);
                client_request(0, TOGGLE_COLLECT, 0);
            }
        }
        return Ok(());
    }
    let mut name = String::new();
    let mut junk = vec![0u8; if cold.is_some() { ColdCache::POLLUTE_BYTES } else { 0 }];
    for (ri, req) in reqs.iter().enumerate() {
        for e in engines.iter_mut() {
            let slow = slowdown.filter(|s| s.engine == e.name()).map_or(0.0, |s| s.fraction);
            name.clear();
            let _ = write!(name, "{}\0", label(e.name(), ri));
            evict(&mut junk);
            client_request(0, ZERO_STATS, 0);
            client_request(0, TOGGLE_COLLECT, 0);
            counted_decision(e.as_mut(), req, slow);
            client_request(0, TOGGLE_COLLECT, 0);
            client_request(0, DUMP_STATS_AT, name.as_ptr() as u64);
        }
    }
    Ok(())
}

#[inline(never)]
fn counted_decision(e: &mut dyn Engine, req: &Request, slow: f64) {
    let t0 = Instant::now();
    std::hint::black_box(e.decide(std::hint::black_box(req)));
    if slow > 0.0 {
        let target = t0.elapsed().as_nanos() as f64 * (1.0 + slow);
        while (t0.elapsed().as_nanos() as f64) < target {
            std::hint::spin_loop();
        }
    }
}

/// Reads the `(label, totals)` pairs of a combined callgrind dump file, in order, keeping
/// the parts written by [`count_decisions`]. The `events:` line before a `totals:` line names
/// its columns: `Ir` first, and with the cache simulator `ILmr`, `DLmr` and `DLmw`.
pub fn parse_counts(text: &str) -> Result<Vec<Count>, String> {
    let mut out = Vec::new();
    let mut current: Option<(String, usize)> = None;
    // Column positions of ILmr, DLmr, DLmw in the current `events:` line.
    let mut miss_cols: Option<[usize; 3]> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some(names) = line.strip_prefix("events:") {
            let names: Vec<&str> = names.split_whitespace().collect();
            let at = |e: &str| names.iter().position(|x| *x == e);
            miss_cols = match (at("ILmr"), at("DLmr"), at("DLmw")) {
                (Some(a), Some(b), Some(c)) => Some([a, b, c]),
                _ => None,
            };
        } else if let Some(desc) = line.strip_prefix("desc: Trigger: Client Request: ") {
            current = desc.strip_prefix("wafbench-decision ").and_then(|rest| {
                let mut engine = None;
                let mut request = None;
                for kv in rest.split(' ') {
                    match kv.split_once('=') {
                        Some(("engine", v)) => engine = Some(v.to_string()),
                        Some(("request", v)) => request = v.parse().ok(),
                        _ => {}
                    }
                }
                engine.zip(request)
            });
        } else if let Some(total) = line.strip_prefix("totals:") {
            if let Some((engine, request)) = current.take() {
                let bad = || format!("line {}: bad totals `{line}`", n + 1);
                let cols: Vec<u64> = total
                    .split_whitespace()
                    .map(|t| t.parse::<u64>().map_err(|_| bad()))
                    .collect::<Result<_, _>>()?;
                let instructions = *cols.first().ok_or_else(bad)?;
                // callgrind leaves out trailing zero columns.
                let lines = miss_cols.map(|c| c.iter().map(|&i| cols.get(i).unwrap_or(&0)).sum());
                out.push(Count { engine, request, instructions, lines });
            }
        }
    }
    Ok(out)
}

/// What the parent passes to the child (`wafbench gate-count`).
#[derive(Debug, Clone)]
pub struct ChildArgs {
    pub rules: String,
    pub paranoia: Option<u8>,
    pub corpus: String,
    pub limit: usize,
    pub engines: Vec<String>,
    pub warmup: u32,
    /// Simulate the caches and start each decision cold (the cold-lines gauge).
    pub cold: Option<ColdCache>,
}

/// Runs `wafbench gate-count` under callgrind and returns every counted decision.
/// The slowdown knob reaches the child through the inherited environment.
pub fn run_child(exe: &Path, a: &ChildArgs) -> Result<Vec<Count>, CountError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(CountError::Arch);
    }
    let valgrind = find_valgrind()?;
    let dir = tempdir()?;
    let out_file = dir.join("callgrind.out");
    let mut cmd = std::process::Command::new(&valgrind);
    cmd.args([
        "--tool=callgrind",
        "--instr-atstart=no",
        "--collect-atstart=no",
        "--combine-dumps=yes",
        // Only the parts' descriptions and totals are read: no per-line costs, and function
        // names compressed (the default), which keeps the file near 150 KB per decision.
        "--dump-line=no",
    ])
    .arg(format!("--callgrind-out-file={}", out_file.display()));
    if a.cold.is_some() {
        cmd.args(ColdCache::valgrind_args());
    }
    cmd.arg(exe)
        .args(["gate-count", "--rules", &a.rules, "--corpus", &a.corpus])
        .args(["--limit", &a.limit.to_string(), "--warmup", &a.warmup.to_string()])
        .args(["--engines", &a.engines.join(",")]);
    if let Some(p) = a.paranoia {
        cmd.args(["--paranoia", &p.to_string()]);
    }
    if a.cold.is_some() {
        cmd.arg("--cold");
    }
    let out = cmd.output()?;
    let result = if out.status.success() {
        std::fs::read_to_string(&out_file)
            .map_err(|e| CountError::Output {
                path: out_file.display().to_string(),
                message: e.to_string(),
            })
            .and_then(|text| {
                parse_counts(&text).map_err(|message| CountError::Output {
                    path: out_file.display().to_string(),
                    message,
                })
            })
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Valgrind's own banner lines start with ==PID==; keep the tail, which says why.
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        Err(CountError::Child {
            status: out.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        })
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn find_valgrind() -> Result<PathBuf, CountError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("valgrind"))
        .find(|p| p.is_file())
        .ok_or_else(|| CountError::NoValgrind("not on PATH".into()))
}

fn tempdir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let d = base.join(format!("wafbench-callgrind-{}-{i}", std::process::id()));
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary directory name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_under_valgrind_here() {
        // `cargo test` does not run under Valgrind: the request returns its default.
        assert!(!running_on_valgrind());
        assert_eq!(client_request(7, ZERO_STATS, 0), 7);
    }

    #[test]
    fn counts_are_read_from_a_combined_dump() {
        let text = "\
version: 1
creator: callgrind
cmd: wafbench gate-count
part: 1
desc: Trigger: Program termination
events: Ir
summary: 99
totals: 5
part: 2
desc: Trigger: Client Request: wafbench-decision engine=native request=0
events: Ir
fn=(1) main
16 1200
totals: 1200
part: 3
desc: Trigger: Client Request: wafbench-decision engine=native request=1
events: Ir
totals: 3400
part: 4
desc: Trigger: Client Request: something else
totals: 77
";
        let got = parse_counts(text).unwrap();
        assert_eq!(
            got,
            vec![
                Count { engine: "native".into(), request: 0, instructions: 1200, lines: None },
                Count { engine: "native".into(), request: 1, instructions: 3400, lines: None },
            ]
        );
        let bad =
            "desc: Trigger: Client Request: wafbench-decision engine=native request=0\ntotals: x\n";
        assert!(parse_counts(bad).unwrap_err().contains("line 2"));
    }

    #[test]
    fn cold_lines_are_the_last_level_misses_of_a_part() {
        // With --cache-sim=yes: the columns named by `events:`; trailing zeros are left out.
        let text = "\
events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
part: 2
desc: Trigger: Client Request: wafbench-decision engine=lua-ffi request=4
events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
totals: 90000 30000 12000 900 2500 600 800 2100 500
part: 3
desc: Trigger: Client Request: wafbench-decision engine=native request=5
events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
totals: 70000 20000 9000 700 1900 400 650 1800
";
        let got = parse_counts(text).unwrap();
        assert_eq!(got[0].instructions, 90000);
        assert_eq!(got[0].lines, Some(800 + 2100 + 500));
        assert_eq!(
            (got[1].engine.as_str(), got[1].request, got[1].lines),
            ("native", 5, Some(2450))
        );
    }
}
