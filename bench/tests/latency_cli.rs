//! The real `wafbench latency` binary: the JSON report carries every documented field, bad
//! corpus lines are reported with their line numbers (and stop the run with `--strict`),
//! unknown engines and a missing libmodsecurity3 exit 2 with a clear message, and native and
//! modsec agree on a small corpus with the `default` rule set.

use std::io::Write;
use std::process::Command;

fn wafbench(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wafbench"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run wafbench");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first `n` lines of the standard mixed corpus plus, optionally, a broken line 3.
fn corpus(n: usize, broken: bool) -> tempfile::NamedTempFile {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/mixed.jsonl");
    let text = std::fs::read_to_string(path).expect("corpora/mixed.jsonl");
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    for (i, line) in text.lines().take(n).enumerate() {
        if broken && i == 2 {
            writeln!(f, "{{\"id\": \"broken\", \"method\": ").expect("write");
        }
        writeln!(f, "{line}").expect("write");
    }
    f
}

fn modsec_available() -> bool {
    wafbench::modsec::ModSecPeer::from_spec("default", None).is_ok()
}

#[test]
fn json_report_has_every_field() {
    let c = corpus(12, false);
    let p = c.path().to_str().expect("utf-8 path");
    let (code, out, err) = wafbench(
        &[
            "latency",
            "--rules",
            "default",
            "--corpus",
            p,
            "--engines",
            "native",
            "--repeat",
            "2",
            "--warmup",
            "0",
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let n = &v["engines"]["native"];
    for k in ["p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "count"] {
        assert!(n[k].as_u64().is_some(), "engines.native.{k} in {v}");
    }
    assert!(n["mean_ns"].as_f64().is_some_and(|m| m > 0.0));
    assert_eq!(n["count"], 24, "12 requests x 2 timed passes");
    assert!(n["p50_ns"].as_u64() <= n["p99_ns"].as_u64());
    assert_eq!(v["disagreements"]["count"], 0);
    assert_eq!(v["corpus_sha256"].as_str().map(str::len), Some(64));
    for k in ["git_rev", "command", "date"] {
        assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{k} in {v}");
    }
    // The test binaries are cargo's own builds, never bolt.sh's.
    assert!(matches!(v["build"].as_str(), Some("release" | "debug")), "build in {v}");
    assert!(v["command"].as_str().is_some_and(|c| c.contains("latency")));
    assert!(v["machine"]["cores"].as_u64().is_some_and(|c| c >= 1));
    assert!(v["machine"]["cpu_model"].is_string());
}

#[test]
fn samples_and_the_after_table_come_out() {
    let c = corpus(6, false);
    let p = c.path().to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("temp dir");
    let samples = dir.path().join("samples.jsonl");
    let s = samples.to_str().expect("utf-8 path");
    let args = [
        "latency",
        "--rules",
        "default",
        "--corpus",
        p,
        "--engines",
        "native,lua",
        "--repeat",
        "2",
        "--warmup",
        "1",
        "--samples",
        s,
    ];
    let (code, out, err) = wafbench(&args, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("| native | - | "), "native never runs after itself: {out}");
    assert!(out.contains(" after lua |"), "{out}");
    let text = std::fs::read_to_string(&samples).expect("samples written");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("one JSON object a line")).collect();
    assert_eq!(lines.len(), 2 * 2 * 6, "2 engines x 2 passes x 6 requests");
    for (i, pair) in lines.windows(2).enumerate() {
        assert_eq!(pair[1]["after"], pair[0]["engine"], "line {}", i + 2);
        assert_ne!(pair[1]["engine"], pair[0]["engine"], "two engines alternate");
    }
    assert!(lines.iter().all(|l| l["ns"].as_u64().is_some_and(|n| n > 0)));
    assert_eq!(lines[0]["pass"], 0);
    assert_eq!(lines[lines.len() - 1]["pass"], 1);
    assert_eq!(lines[0]["request"], 0);
    assert!(lines[0]["id"].as_str().is_some_and(|i| !i.is_empty()));
    let mut json = args.to_vec();
    json.truncate(json.len() - 2);
    json.push("--json");
    let (code, out, err) = wafbench(&json, &[]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let a = &v["after"]["native"]["lua"];
    assert_eq!(a["count"], 12, "{v}");
    assert!(a["p50_ns"].as_u64().is_some_and(|n| n > 0), "{v}");
    assert!(v["after"]["native"].get("native").is_none(), "{v}");
}

#[test]
fn bad_lines_are_reported_and_strict_stops() {
    let c = corpus(5, true);
    let p = c.path().to_str().expect("utf-8 path");
    let args =
        ["latency", "--rules", "default", "--corpus", p, "--engines", "native", "--repeat", "1"];
    let (code, out, err) = wafbench(&args, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(":3:"), "line number of the broken line in: {err}");
    assert!(out.contains("| native | 5 |"), "{out}");
    let mut strict = args.to_vec();
    strict.push("--strict");
    let (code, out, err) = wafbench(&strict, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains(":3:"), "{err}");
}

#[test]
fn unknown_engine_lists_the_known_ones() {
    let c = corpus(2, false);
    let p = c.path().to_str().expect("utf-8 path");
    let (code, _, err) = wafbench(
        &["latency", "--rules", "default", "--corpus", p, "--engines", "native,nope"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("unknown engine `nope`"), "{err}");
    for name in wafbench::ENGINE_NAMES {
        assert!(err.contains(name), "{name} in {err}");
    }
}

#[test]
fn missing_libmodsecurity_exits_2_with_a_clear_message() {
    let c = corpus(2, false);
    let p = c.path().to_str().expect("utf-8 path");
    let (code, _, err) = wafbench(
        &["latency", "--rules", "default", "--corpus", p, "--engines", "native,modsec"],
        &[("WAF_MODSEC_LIB", "/nonexistent/libmodsecurity.so.3")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("libmodsecurity3 not found"), "{err}");
}

#[test]
fn native_and_modsec_agree_and_ratios_are_reported() {
    if !modsec_available() {
        eprintln!("libmodsecurity3 not loadable: skipped");
        return;
    }
    let c = corpus(30, false);
    let p = c.path().to_str().expect("utf-8 path");
    let (code, out, err) = wafbench(
        &[
            "latency",
            "--rules",
            "default",
            "--corpus",
            p,
            "--engines",
            "native,modsec",
            "--repeat",
            "1",
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["disagreements"]["count"], 0, "{}", v["disagreements"]);
    let r = &v["ratios"]["native"];
    assert!(r["p50_vs_modsec"].as_f64().is_some_and(|x| x > 0.0), "{v}");
    assert!(r["p99_vs_modsec"].as_f64().is_some_and(|x| x > 0.0), "{v}");
    assert!(v["ratios"].get("modsec").is_none());
}
