//! Instruction counts per decision, measured by Valgrind's callgrind: the gate's noise-free
//! gauge (`wafbench gate --gauge instructions`, see [`crate::gate`]).
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
/// instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub engine: String,
    pub request: usize,
    pub instructions: u64,
}

/// The label a dump carries; [`parse_counts`] reads it back.
fn label(engine: &str, request: usize) -> String {
    format!("wafbench-decision engine={engine} request={request}")
}

/// The child's side: `warmup` untimed passes, then one instrumented pass that collects and
/// dumps each decision on its own. The slowdown knob busy-waits inside the collected region,
/// as it does inside the timed region of [`crate::latency`].
pub fn count_decisions(
    engines: &mut [Box<dyn Engine>],
    reqs: &[Request],
    warmup: u32,
    slowdown: Option<&Slowdown>,
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
                for i in (0..junk.len()).step_by(64) {
                    junk[i] = junk[i].wrapping_add(1);
                }
                std::hint::black_box(&junk);
                client_request(0, TOGGLE_COLLECT, 0);
                counted_decision(e.as_mut(), req, 0.0);
                client_request(0, TOGGLE_COLLECT, 0);
            }
        }
        return Ok(());
    }
    let mut name = String::new();
    for (ri, req) in reqs.iter().enumerate() {
        for e in engines.iter_mut() {
            let slow = slowdown.filter(|s| s.engine == e.name()).map_or(0.0, |s| s.fraction);
            name.clear();
            let _ = write!(name, "{}\0", label(e.name(), ri));
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
/// the parts written by [`count_decisions`].
pub fn parse_counts(text: &str) -> Result<Vec<Count>, String> {
    let mut out = Vec::new();
    let mut current: Option<(String, usize)> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some(desc) = line.strip_prefix("desc: Trigger: Client Request: ") {
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
                let instructions = total
                    .split_whitespace()
                    .next()
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(|| format!("line {}: bad totals `{line}`", n + 1))?;
                out.push(Count { engine, request, instructions });
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
    .arg(format!("--callgrind-out-file={}", out_file.display()))
    .arg(exe)
    .args(["gate-count", "--rules", &a.rules, "--corpus", &a.corpus])
    .args(["--limit", &a.limit.to_string(), "--warmup", &a.warmup.to_string()])
    .args(["--engines", &a.engines.join(",")]);
    if let Some(p) = a.paranoia {
        cmd.args(["--paranoia", &p.to_string()]);
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
                Count { engine: "native".into(), request: 0, instructions: 1200 },
                Count { engine: "native".into(), request: 1, instructions: 3400 },
            ]
        );
        let bad =
            "desc: Trigger: Client Request: wafbench-decision engine=native request=0\ntotals: x\n";
        assert!(parse_counts(bad).unwrap_err().contains("line 2"));
    }
}
