//! `wafbench eval` end to end through the binary with the ModSecurity peer: output shape,
//! bad corpus lines reported with their line number, `--strict`, `--corpus -`.

use std::io::Write;
use std::process::{Command, Stdio};

fn eval(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wafbench"))
        .arg("eval")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const RULES: &str = r#"SecRuleEngine On
SecRule ARGS:q "@contains evil" "id:100,phase:1,deny,status:403,log,msg:'evil',setvar:tx.anomaly_score=+5"
"#;

const CORPUS: &str = concat!(
    r#"{"id":"bad","method":"GET","uri":"/?q=evil","headers":[["Host","h"]]}"#,
    "\nnot json\n",
    r#"{"id":"good","method":"GET","uri":"/?q=fine"}"#,
    "\n"
);

fn rules_file() -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".conf").tempfile().unwrap();
    f.write_all(RULES.as_bytes()).unwrap();
    f
}

#[test]
fn writes_one_decision_per_request_and_reports_bad_lines() {
    let f = rules_file();
    let (code, out, err) = eval(
        &["--rules", f.path().to_str().unwrap(), "--engine", "modsec", "--corpus", "-"],
        CORPUS,
    );
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        serde_json::json!({"id":"bad","status":403,"disruptive":true,"matched_ids":["100"],"anomaly_score":5})
    );
    assert_eq!(
        lines[1],
        serde_json::json!({"id":"good","status":200,"disruptive":false,"matched_ids":[],"anomaly_score":0})
    );
    assert!(err.contains("<stdin>:2:"), "{err}");
}

#[test]
fn strict_stops_at_the_first_bad_line_with_exit_2() {
    let f = rules_file();
    let (code, out, err) =
        eval(&["--rules", f.path().to_str().unwrap(), "--corpus", "-", "--strict"], CORPUS);
    assert_eq!(code, Some(2));
    assert_eq!(out.lines().count(), 1, "the line before the bad one is written");
    assert!(err.contains("<stdin>:2:"), "{err}");
}

#[test]
fn unknown_engines_and_rule_formats_are_errors() {
    let (code, _, err) = eval(&["--rules", "crs", "--engine", "nope", "--corpus", "-"], "");
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown engine `nope`"), "{err}");
    let (code, _, err) = eval(&["--rules", "/nonexistent/x.json", "--corpus", "-"], "");
    assert_eq!(code, Some(2));
    assert!(err.contains("reading /nonexistent/x.json"), "{err}");
    let d = tempfile::tempdir().unwrap();
    let odd = d.path().join("rules.txt");
    std::fs::write(&odd, "SecRuleEngine On\n").unwrap();
    let (code, _, err) = eval(&["--rules", odd.to_str().unwrap(), "--corpus", "-"], "");
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown rule language"), "{err}");
}
