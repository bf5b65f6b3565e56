//! The real `wafbench` binary: `check crs` succeeds with the expected counts, a broken rule
//! file exits 2 with positioned errors on stderr, and `convert` writes IR and SecLang that
//! load back.

use std::process::Command;

fn wafbench(args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_wafbench")).args(args).output().expect("run wafbench");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn count(stdout: &str, key: &str) -> usize {
    stdout
        .lines()
        .find_map(|l| {
            let (k, v) = l.trim().rsplit_once(' ')?;
            (k.trim() == key).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no `{key}` in:\n{stdout}"))
}

#[test]
fn check_crs_succeeds_at_paranoia_1_and_4() {
    for p in ["1", "4"] {
        let (code, out, err) = wafbench(&["check", "crs", "--paranoia", p]);
        assert_eq!(code, 0, "{err}");
        assert!(err.is_empty(), "{err}");
        // CRS 3.3.4 plus the 6 SecRules of the base configuration and the paranoia SecAction.
        assert_eq!(count(&out, "SecRule"), 790 + 6);
        assert_eq!(count(&out, "SecAction"), 10 + 1);
        assert_eq!(count(&out, "markers"), 40);
        assert!(count(&out, "@rx") > 250, "{out}");
    }
}

#[test]
fn a_broken_file_exits_2_with_every_error_positioned() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bad.conf");
    std::fs::write(&f, "SecRule ARGS \"@rx ok\" \"id:1,pass\"\nSecRule ARGS \"@rx x\" \\\n  \"id:2,blok\"\nSecRul X\n").unwrap();
    let path = f.to_str().unwrap();
    let (code, out, err) = wafbench(&["check", path]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!("{path}:3:9: error: unknown action `blok` (rule id 2)\n")),
        "{err}"
    );
    assert!(err.contains("  \"id:2,blok\"\n          ^\n"), "{err}");
    assert!(err.contains(&format!("{path}:4:1: error: unknown directive `SecRul`")), "{err}");
    assert!(err.contains("2 errors"), "{err}");

    let (code, _, err) = wafbench(&["convert", "--to", "cfrule", path]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown action `blok`"), "{err}");
    let (code, _, err) = wafbench(&["check", "/nonexistent/x.conf"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/x.conf"), "{err}");
}

#[test]
fn convert_writes_ir_and_seclang_that_load_back() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("r.conf");
    std::fs::write(
        &src,
        "SecRule REQUEST_HEADERS:User-Agent \"@pm nikto sqlmap\" \"id:10,phase:1,deny,t:lowercase,chain\"\n\
         SecRule REMOTE_ADDR \"!@ipMatch 127.0.0.1\" \"setvar:tx.score=+5\"\nSecMarker END\n",
    )
    .unwrap();
    let (code, json, err) = wafbench(&["convert", "--to", "json", src.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let ir = d.path().join("r.json");
    std::fs::write(&ir, &json).unwrap();
    let (code, seclang, err) = wafbench(&["convert", "--to", "seclang", ir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        seclang.contains("SecRule REQUEST_HEADERS:User-Agent \"@pm nikto sqlmap\""),
        "{seclang}"
    );
    let back = d.path().join("back.conf");
    std::fs::write(&back, &seclang).unwrap();
    let (code, json2, err) = wafbench(&["convert", "--to", "json", back.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let strip = |s: &str| {
        let mut v: waf_engine::RuleSet = serde_json::from_str(s).unwrap();
        v.strip_locations();
        v
    };
    assert_eq!(strip(&json), strip(&json2));
}
