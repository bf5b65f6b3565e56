//! The real `wafbench coldstart` binary: one row per engine and gap with the documented
//! fields (the memory probe's rows after the engines'), back-to-back as the unit of the ratio, bad gaps and `modsec` as an engine refused
//! with exit 2.

use std::process::Command;

fn wafbench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wafbench")).args(args).output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/mixed.jsonl");

#[test]
fn json_has_a_row_per_engine_and_gap() {
    let (code, out, err) = wafbench(&[
        "coldstart",
        "--rules",
        "default",
        "--corpus",
        CORPUS,
        "--limit",
        "8",
        "--engines",
        "native,lua-ffi",
        "--gaps",
        "none,spin:200us,sleep:100us,touch:256KiB,warm,twin",
        "--probe",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["requests"], 8);
    assert!(v["corpus_sha256"].as_str().is_some_and(|s| s.len() == 64));
    let rows = v["rows"].as_array().expect("rows");
    let keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["engine"].as_str().unwrap().into(), r["gap"].as_str().unwrap().into()))
        .collect();
    let mut want = Vec::new();
    for e in ["native", "lua-ffi", "probe:chase-256KiB"] {
        for g in ["none", "spin:200us", "sleep:100us", "touch:256KiB", "warm", "twin"] {
            want.push((e.to_string(), g.to_string()));
        }
    }
    assert_eq!(keys, want);
    for r in rows {
        assert_eq!(r["count"], 8, "{r}");
        let (p50, p90) = (r["p50_ns"].as_u64().unwrap(), r["p90_ns"].as_u64().unwrap());
        assert!(p50 > 0 && p90 >= p50, "{r}");
        let ratio = r["p50_vs_none"].as_f64().expect("ratio to back-to-back");
        if r["gap"] == "none" {
            assert_eq!(ratio, 1.0);
        }
        assert!(ratio > 0.0);
    }
}

#[test]
fn bad_gaps_and_the_peer_as_an_engine_exit_2() {
    let cases = [
        (["--gaps", "none,nap:5ms"], "bad gap `nap:5ms`"),
        (["--engines", "native,modsec"], "can only be a gap"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["coldstart", "--rules", "default", "--corpus", CORPUS];
        args.extend(extra);
        let (code, _, err) = wafbench(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(message), "{err}");
    }
}
