//! `wafbench ftw` through the binary on a small hand-written suite and rule file: verdict
//! lines, the totals line last, `--json`, and exit codes.

use std::io::Write;
use std::process::Command;

const RULES: &str = r#"SecRuleEngine On
SecRequestBodyAccess On
SecRule ARGS "@contains evil" "id:100,phase:2,deny,status:403,log,msg:'evil'"
"#;

const SUITE: &str = r#"
meta: {author: t, enabled: true, name: t.yaml, description: d}
tests:
  - test_title: t-1
    stages:
      - stage:
          input: {uri: "/?a=evil", headers: {Host: localhost}}
          output: {log_contains: id "100", status: [403]}
  - test_title: t-2
    stages:
      - stage:
          input: {method: POST, headers: {Host: localhost}, data: "a=fine"}
          output: {no_log_contains: id "100"}
  - test_title: t-3
    stages:
      - stage:
          input: {uri: "/?a=fine"}
          output: {log_contains: id "100"}
  - test_title: t-4
    stages:
      - stage:
          input: {uri: "/"}
          output: {expect_error: true}
"#;

#[test]
fn prints_verdicts_and_totals_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.conf");
    std::fs::write(&rules, RULES).unwrap();
    let yaml = dir.path().join("suite").join("t.yaml");
    std::fs::create_dir(yaml.parent().unwrap()).unwrap();
    std::fs::File::create(&yaml).unwrap().write_all(SUITE.as_bytes()).unwrap();
    let run = |json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wafbench"));
        c.arg("ftw").arg(dir.path().join("suite")).arg("--rules").arg(&rules);
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    let out = run(false);
    assert_eq!(out.status.code(), Some(1), "one stage fails");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "PASS t-1#1");
    assert_eq!(lines[1], "PASS t-2#1");
    assert!(lines[2].starts_with("FAIL t-3#1"), "{}", lines[2]);
    assert!(lines[3].starts_with("SKIP t-4#1: expect_error"), "{}", lines[3]);
    assert_eq!(*lines.last().unwrap(), "2 passed, 1 failed, 1 skipped");

    let out = run(true);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["totals"], serde_json::json!({"passed": 2, "failed": 1, "skipped": 1}));
    assert_eq!(v["results"][2]["id"], "t-3#1");
    assert_eq!(v["results"][2]["verdict"], "fail");
    assert_eq!(v["results"][3]["verdict"], "skip");
}
