//! The Lua engines through the real binary: `eval --engine lua|lua-ffi` writes the same
//! decisions as `native`, `convert --to lua` prints the chunk, and pass flags are checked.

use std::process::Command;

fn wafbench(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_wafbench")).args(args).output().expect("run wafbench");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn eval_with_lua_engines_matches_native() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = dir.path().join("c.jsonl");
    let all =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/mixed.jsonl"))
            .expect("mixed corpus");
    let some: String = all.lines().take(40).map(|l| format!("{l}\n")).collect();
    std::fs::write(&corpus, some).expect("write corpus");
    let c = corpus.to_str().expect("utf-8 path");
    let run = |engine: &str, extra: &[&str]| {
        let mut args = vec!["eval", "--rules", "crs", "--paranoia", "2", "--engine", engine];
        args.extend_from_slice(&["--corpus", c]);
        args.extend_from_slice(extra);
        let (code, out, err) = wafbench(&args);
        assert_eq!(code, 0, "{engine}: {err}");
        out
    };
    let native = run("native", &[]);
    assert_eq!(native.lines().count(), 40);
    assert_eq!(run("lua", &[]), native);
    assert_eq!(run("lua-ffi", &[]), native);
    assert_eq!(run("lua-ffi", &["--opt-level", "0"]), native);
    assert_eq!(run("lua-ffi", &["--disable-pass", "structured-jumps"]), native);
}

#[test]
fn convert_to_lua_prints_the_chunk_and_bad_passes_are_refused() {
    let (code, out, err) = wafbench(&["convert", "--to", "lua", "default"]);
    assert_eq!(code, 0, "{err}");
    for f in ["local function phase1(ctx)", "local function phase2(ctx)", "return { phase1"] {
        assert!(out.contains(f), "missing {f}");
    }
    let (code, _, err) =
        wafbench(&["convert", "--to", "lua", "--disable-pass", "no-such-pass", "default"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown pass"), "{err}");
}
