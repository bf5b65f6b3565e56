//! `wafbench profile --engine lua|lua-ffi` end to end, on the embedded default rule set (both
//! languages) and the first requests of `corpora/mixed.jsonl`:
//! - `--mode lines` writes the lulip table and the per-rule table, and the per-rule counts
//!   it derives from line counts through the source map equal the native engine's per-rule
//!   counters for the same requests (evaluated for every rule, matched wherever the line
//!   profile can see matches);
//! - `--mode sample` into the same directory writes folded stacks whose frames name rule
//!   ids the native engine knows, a flamegraph that parses, and compares its top rules with
//!   the `rules.json` of the line pass;
//! - without `--mode`, `lua-ffi` runs both passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_wafbench");
const LIMIT: &str = "60";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ has a parent").to_path_buf()
}

fn profile(extra: &[&str], out: &Path) -> Output {
    let o = Command::new(BIN)
        .current_dir(repo_root())
        .args(["profile", "--rules", "default", "--corpus", "corpora/mixed.jsonl"])
        .args(["--limit", LIMIT, "--top", "15"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .expect("running wafbench profile");
    assert!(
        o.status.success(),
        "wafbench profile {extra:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// id -> (evaluated, matched, matched_known) of a `rules.json`.
fn counts(rules: &serde_json::Value) -> BTreeMap<String, (u64, u64, bool)> {
    rules["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_string(),
                (
                    r["evaluated"].as_u64().expect("evaluated"),
                    r["matched"].as_u64().expect("matched"),
                    r["matched_known"].as_bool().expect("matched_known"),
                ),
            )
        })
        .collect()
}

#[test]
fn lua_line_and_sample_modes_agree_with_native_counts() {
    let native_dir = tempfile::tempdir().unwrap();
    profile(&["--engine", "native", "--no-pprof"], native_dir.path());
    let native = counts(&read_json(&native_dir.path().join("rules.json")));
    assert!(native.len() > 10, "{native:?}");

    let dir = tempfile::tempdir().unwrap();
    let o = profile(&["--engine", "lua", "--mode", "lines"], dir.path());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("file:line") && stdout.contains("per-rule profile"), "{stdout}");
    for f in ["lines.txt", "lines.json", "rules.txt", "rules.json"] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    assert!(!dir.path().join("lua.folded").exists(), "--mode lines ran the sampler too");

    // The lulip table: header says JIT off and the hook's cost, rows sorted by elapsed.
    let lines_txt = std::fs::read_to_string(dir.path().join("lines.txt")).unwrap();
    assert!(lines_txt.contains("JIT off") && lines_txt.contains("hook overhead"), "{lines_txt}");
    let lines = read_json(&dir.path().join("lines.json"));
    let rows = lines["rows"].as_array().unwrap();
    assert!(rows.len() > 20, "{} line rows", rows.len());
    assert!(rows.windows(2).all(|w| w[0]["elapsed_ns"].as_u64() >= w[1]["elapsed_ns"].as_u64()));
    assert!(rows.iter().any(|r| r["rule"].as_str().is_some_and(|id| native.contains_key(id))));
    assert!(lines["hook"]["per_event_ns"].as_f64().unwrap() > 0.0);

    // The per-rule table: the same rules, evaluated the same number of times, as native.
    let lua_rules = read_json(&dir.path().join("rules.json"));
    assert_eq!(lua_rules["engine"], "lua");
    let lua = counts(&lua_rules);
    assert_eq!(
        lua.keys().collect::<Vec<_>>(),
        native.keys().collect::<Vec<_>>(),
        "rules evaluated differ"
    );
    let mut matched_compared = 0;
    for (id, &(evaluated, matched, known)) in &lua {
        let (n_eval, n_matched, _) = native[id];
        assert_eq!(evaluated, n_eval, "rule {id}: evaluated lua {evaluated} native {n_eval}");
        if known {
            assert_eq!(matched, n_matched, "rule {id}: matched lua {matched} native {n_matched}");
            matched_compared += 1;
        }
    }
    assert!(matched_compared * 2 > lua.len(), "matches compared for {matched_compared} rules");
    assert!(lua.values().any(|c| c.1 > 0), "no rule matched in 60 mixed requests");
    let total: u64 =
        lua_rules["rows"].as_array().unwrap().iter().map(|r| r["total_ns"].as_u64().unwrap()).sum();
    assert!(total > 0);

    // Sampling into the same directory: rule ids in the frames, compared with rules.json.
    let o = profile(&["--engine", "lua", "--mode", "sample", "--sample-secs", "1"], dir.path());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("agreement: top 10 by rule:"), "{stderr}");
    assert!(stderr.contains("rules.json (lua) vs sample"), "{stderr}");
    let folded = std::fs::read_to_string(dir.path().join("lua.folded")).unwrap();
    assert!(folded.lines().all(|l| l.starts_with("vm_")), "{folded}");
    let rule_frames: Vec<&str> = folded
        .lines()
        .flat_map(|l| l.split(' ').next().unwrap_or("").split(';'))
        .filter_map(|f| f.strip_prefix("rule_"))
        .collect();
    assert!(!rule_frames.is_empty(), "no rule frame in {folded}");
    assert!(rule_frames.iter().all(|id| native.contains_key(*id)), "{rule_frames:?}");
    let svg = std::fs::read_to_string(dir.path().join("flame-lua.svg")).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &svg,
        roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
    )
    .expect("flame-lua.svg parses");
    assert!(
        doc.descendants()
            .filter(|n| n.has_tag_name("title"))
            .any(|n| n.text().is_some_and(|t| t.starts_with("rule_")))
    );
    let sample = read_json(&dir.path().join("sample.json"));
    assert!(sample["summary"]["samples"].as_u64().unwrap() > 0);
    assert_eq!(sample["agreement"]["n"], 10);
}

#[test]
fn lua_ffi_without_mode_runs_both_passes() {
    let dir = tempfile::tempdir().unwrap();
    let o = profile(&["--engine", "lua-ffi", "--sample-secs", "0.5"], dir.path());
    for f in ["lines.txt", "lines.json", "rules.txt", "rules.json", "lua.folded", "flame-lua.svg"] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("(lines vs sample)"), "{stderr}");
    assert_eq!(read_json(&dir.path().join("rules.json"))["engine"], "lua-ffi");
}

#[test]
fn bad_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for extra in [
        &["--engine", "lua", "--mode", "both"][..],
        &["--engine", "lua", "--sample-secs", "-1"][..],
        &["--engine", "modsec"][..],
    ] {
        let o = Command::new(BIN)
            .current_dir(repo_root())
            .args(["profile", "--rules", "default", "--corpus", "corpora/mixed.jsonl"])
            .args(["--limit", "2"])
            .args(extra)
            .arg("--out")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {o:?}");
    }
}
