//! Checks on a real report, built once by the `wafbench` binary (embedded `default` rules,
//! 40 requests of `corpora/mixed.jsonl`, quick, no microbenches):
//! - every SVG parses as XML and the rule flamegraphs have frames naming rules;
//! - `index.html` is well-formed, self-contained (no reference to any file, no script, no
//!   stylesheet link), and its engines and per-rule tables have rows;
//! - `report.json`, `report.md` and `rules.txt` carry the stamp and the data;
//! - the Lua sections (lua per-rule table, line table, `flame-lua.svg` inlined) are there
//!   with rows and rule frames;
//! - `flame-diff` and `profile` work from the command line;
//! - headless Chromium renders the page (skipped with a notice when chromium is absent,
//!   unless `CI=true`, where its absence fails).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_wafbench");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ has a parent").to_path_buf()
}

fn opts() -> roxmltree::ParsingOptions {
    roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() }
}

/// The report directory, built on first use and shared by every test in this file.
fn report_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(BIN)
            .current_dir(repo_root())
            .args(["report", "--rules", "default", "--corpus", "corpora/mixed.jsonl"])
            .args(["--limit", "40", "--quick", "--no-microbench", "--engines", "native", "--out"])
            .arg(dir.path())
            .output()
            .expect("running wafbench report");
        assert!(
            out.status.success(),
            "wafbench report failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.trim().ends_with("index.html"), "{stdout}");
        dir
    })
    .path()
}

/// Texts of every `<title>` in an SVG (inferno puts each frame's name and count there).
fn frame_titles(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text().map(String::from))
        .collect()
}

#[test]
fn every_svg_parses_and_rule_flamegraphs_name_rules() {
    let dir = report_dir();
    let mut svgs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "svg") {
            continue;
        }
        svgs += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        let doc = roxmltree::Document::parse_with_options(&text, opts())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let titles = frame_titles(&doc);
        assert!(titles.len() > 2, "{}: no frames", p.display());
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.contains("pprof") {
            // Real Rust stacks: frames are functions; the evaluator must be among them.
            assert!(titles.iter().any(|t| t.contains("waf_engine")), "{name}: {titles:?}");
        } else {
            assert!(titles.iter().any(|t| t.starts_with("rule_")), "{name}: {titles:?}");
        }
    }
    assert!(svgs >= 3, "expected flame-native.svg, flame-native-pprof.svg and flame-lua.svg");
    assert!(dir.join("flame-lua.svg").exists());
    let lua = std::fs::read_to_string(dir.join("lua.folded")).unwrap();
    assert!(lua.lines().all(|l| l.starts_with("vm_")), "{lua}");
    assert!(lua.lines().any(|l| l.contains(";rule_")), "{lua}");
    let folded = std::fs::read_to_string(dir.join("flame-native.folded")).unwrap();
    assert!(folded.lines().all(|l| l.starts_with("native;phase_")), "{folded}");
}

#[test]
fn html_is_self_contained_and_has_tables() {
    let dir = report_dir();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let doc = roxmltree::Document::parse_with_options(&html, opts()).expect("index.html is XML");
    for node in doc.descendants().filter(|n| n.is_element()) {
        let tag = node.tag_name().name();
        assert!(!matches!(tag, "script" | "link" | "iframe" | "img"), "<{tag}> in the page");
        for attr in ["src", "href", "xlink:href"] {
            if let Some(v) = node.attribute(attr) {
                let local = v.starts_with('#') || v.starts_with("data:");
                assert!(
                    local || dir.join(v).exists(),
                    "<{tag} {attr}={v:?}> points to a missing file"
                );
                assert!(local, "<{tag} {attr}={v:?}>: the page should not need other files");
            }
        }
    }
    let rows = |id: &str| -> Vec<String> {
        let table = doc
            .descendants()
            .find(|n| n.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no #{id}"));
        table
            .descendants()
            .filter(|n| n.has_tag_name("tr") && n.parent().is_some_and(|p| p.has_tag_name("tbody")))
            .map(|tr| {
                tr.descendants()
                    .filter(|t| t.is_text())
                    .filter_map(|t| t.text())
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    };
    let engines = rows("engines-table");
    assert!(engines.iter().any(|r| r.starts_with("native|40|")), "{engines:?}");
    let rules = rows("rules-table");
    assert!(!rules.is_empty() && rules.len() <= 30, "{rules:?}");
    // The inline flamegraph has rule frames; the latency plot has a line per engine.
    let flame_titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("flame"))
        .flat_map(|d| d.descendants().filter(|n| n.has_tag_name("title")))
        .filter_map(|n| n.text())
        .collect();
    assert!(flame_titles.iter().any(|t| t.starts_with("rule_")), "{flame_titles:?}");
    assert!(doc.descendants().any(|n| n.has_tag_name("polyline")), "no latency curve");
    // The Lua sections: the per-rule table of lua next to native's, the line table, and
    // the jit.profile flamegraph inlined with rule frames.
    let lua_rules = rows("lua-rules-table");
    assert!(!lua_rules.is_empty() && lua_rules.len() <= 30, "{lua_rules:?}");
    let lines = rows("lines-table");
    assert!(!lines.is_empty(), "no line rows");
    assert!(lines.iter().all(|r| r.starts_with("wafbench-rules.lua:")), "{lines:?}");
    assert!(html.contains("Per-rule cost (lua)") && html.contains("Against the native table"));
    assert!(html.contains("generated Lua (lua): jit.profile samples by rule"));
    let lua_flame_frames = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("flame"))
        .filter(|d| d.descendants().any(|t| t.text().is_some_and(|x| x.contains("vm_"))))
        .flat_map(|d| d.descendants().filter(|n| n.has_tag_name("title")))
        .filter_map(|n| n.text())
        .filter(|t| t.starts_with("rule_"))
        .count();
    assert!(lua_flame_frames > 0, "the inline Lua flamegraph has no rule frames");
}

#[test]
fn json_markdown_and_text_carry_stamp_and_data() {
    let dir = report_dir();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let stamp = &json["stamp"];
    for key in ["command", "git_rev", "build", "cpu", "date", "corpus_sha256"] {
        let v = stamp[key].as_str().unwrap_or("");
        assert!(!v.is_empty() && v != "unknown", "stamp.{key} = {v:?}");
    }
    assert!(stamp["cores"].as_u64().unwrap_or(0) >= 1);
    assert_eq!(stamp["requests"], 40);
    assert!(json["latency"]["engines"]["native"]["p50_ns"].as_u64().unwrap_or(0) > 0);
    assert_eq!(json["latency"]["disagreement_count"], 0);
    assert!(!json["rules"]["rows"].as_array().unwrap().is_empty());
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| native |") && md.contains("git rev:"), "{md}");
    let txt = std::fs::read_to_string(dir.join("rules.txt")).unwrap();
    assert!(txt.starts_with("# per-rule profile") && txt.contains("subtracted"), "{txt}");
    assert!(txt.lines().filter(|l| !l.starts_with('#')).count() >= 2, "{txt}");
    // The Lua sections in JSON, Markdown and the text files next to native's.
    let lua = &json["lua"];
    assert_eq!(lua["engine"], "lua");
    assert!(!lua["rules"]["rows"].as_array().unwrap().is_empty());
    assert!(!lua["lines"]["rows"].as_array().unwrap().is_empty());
    assert_eq!(lua["lines"]["jit_off"], true);
    assert!(lua["lines"]["hook"]["per_event_ns"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(lua["sample"]["samples"].as_u64().unwrap_or(0) > 0);
    assert_eq!(json["native_vs_lua"]["n"], 10);
    assert!(md.contains("## Per-rule cost (lua,") && md.contains("wafbench-rules.lua:"), "{md}");
    let lua_txt = std::fs::read_to_string(dir.join("rules-lua.txt")).unwrap();
    assert!(lua_txt.contains("engine lua,") && lua_txt.contains("JIT off"), "{lua_txt}");
    let lines_txt = std::fs::read_to_string(dir.join("lines.txt")).unwrap();
    assert!(lines_txt.contains("JIT off") && lines_txt.contains("hook overhead"), "{lines_txt}");
}

#[test]
fn flame_diff_writes_a_differential_svg() {
    let dir = report_dir();
    let tmp = tempfile::tempdir().unwrap();
    let a = dir.join("flame-native.folded");
    // B: the same stacks with the first one doubled, so the diff has a red frame.
    let text = std::fs::read_to_string(&a).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let (stack, n) = lines[0].rsplit_once(' ').unwrap();
    lines[0] = format!("{stack} {}", n.parse::<u64>().unwrap() * 2 + 1000);
    let b = tmp.path().join("b.folded");
    std::fs::write(&b, lines.join("\n")).unwrap();
    let out = tmp.path().join("diff.svg");
    let st = Command::new(BIN).arg("flame-diff").arg(&a).arg(&b).arg("--out").arg(&out).status();
    assert!(st.unwrap().success());
    let svg = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse_with_options(&svg, opts()).unwrap();
    assert!(frame_titles(&doc).iter().any(|t| t.starts_with("rule_")));
    // A bad folded file is refused with its line number and exit code 2.
    let bad = tmp.path().join("bad.folded");
    std::fs::write(&bad, "a;b 1\nno-count\n").unwrap();
    let o = Command::new(BIN)
        .arg("flame-diff")
        .arg(&a)
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2"), "{o:?}");
}

#[test]
fn profile_command_writes_tables_and_refuses_a_mode_for_native() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .current_dir(repo_root())
        .args(["profile", "--rules", "default", "--corpus", "corpora/attack.jsonl"])
        .args(["--limit", "30", "--engine", "native", "--no-pprof", "--top", "5", "--out"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().filter(|l| !l.starts_with('#')).count(), 6, "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("rules.json")).unwrap())
            .unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["evaluated"].as_u64().unwrap() > 0));
    assert!(rows.windows(2).all(|w| w[0]["total_ns"].as_u64() >= w[1]["total_ns"].as_u64()));
    assert!(tmp.path().join("flame-native.svg").exists());
    assert!(!tmp.path().join("flame-native-pprof.svg").exists());
    // --mode is for the Lua engines only.
    let o = Command::new(BIN)
        .current_dir(repo_root())
        .args(["profile", "--rules", "default", "--corpus", "corpora/attack.jsonl"])
        .args(["--engine", "native", "--mode", "lines", "--out"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--mode is for the Lua engines"));
}

fn find_chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(o) = Command::new("which").arg(name).output() {
            if o.status.success() {
                let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
                if !p.is_empty() {
                    return Some(PathBuf::from(p));
                }
            }
        }
    }
    None
}

#[test]
fn headless_chromium_renders_the_page() {
    let Some(chromium) = find_chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but chromium is not installed");
        }
        eprintln!("NOTICE: chromium not found; skipping the browser test (install `chromium`)");
        return;
    };
    let dir = report_dir();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.join("index.html").display());
    let shot = profile.path().join("shot.png");
    let mut base = Command::new("timeout");
    base.arg("120").arg(&chromium).args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1300,1800",
    ]);
    base.arg(format!("--user-data-dir={}", profile.path().display()));
    let dom = { base }.arg("--dump-dom").arg(&url).output().expect("running chromium");
    assert!(dom.status.success(), "chromium: {}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    // The DOM after rendering: the engines table with the native row, the rule table, and
    // the inline flamegraph's rule frames.
    assert!(dom.contains("id=\"engines-table\""), "{}", &dom[..dom.len().min(2000)]);
    assert!(dom.contains("<b>native</b>"));
    assert!(dom.contains("id=\"rules-table\"") && dom.contains("rule_"));
    assert!(dom.contains("id=\"lua-rules-table\"") && dom.contains("id=\"lines-table\""));
    let profile2 = tempfile::tempdir().unwrap();
    let st = Command::new("timeout")
        .arg("120")
        .arg(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg("--window-size=1300,1800")
        .arg(format!("--user-data-dir={}", profile2.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("running chromium");
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
}
