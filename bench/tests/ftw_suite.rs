//! The FTW runner against the shared CRS 3.3.4 regression suite: every YAML file parses, and
//! the request built for every stage equals the converted corpus line with the same id
//! (`crs-tests/crs-3.3.4-regression.jsonl`, made by an independent converter).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use waf_engine::Request;
use wafbench::ftw;

/// The suite is not in the repository (it is upstream CRS data): see
/// `waf_engine::crs::regression_suite_dir` (`WAF_CRS_TESTS` or the shared copy).
fn suite_dir() -> Option<PathBuf> {
    waf_engine::crs::regression_suite_for_test().map(|d| d.join("v3.3.4"))
}

fn load_suite(dir: &Path) -> Vec<(String, ftw::FtwFile)> {
    let files = ftw::collect_files(&[dir.to_path_buf()]).expect("suite directory");
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(dir).unwrap_or(f).display().to_string();
            (rel, ftw::load_file(f).unwrap_or_else(|e| panic!("{e}")))
        })
        .collect()
}

#[test]
fn every_suite_file_parses_with_the_published_counts() {
    let Some(dir) = suite_dir() else { return };
    let files = load_suite(&dir);
    assert_eq!(files.len(), 178);
    let disabled = files.iter().filter(|(_, f)| !f.meta.enabled).count();
    assert_eq!(disabled, 5);
    let stages = ftw::plan(&files);
    assert_eq!(stages.len(), 2403);
    assert_eq!(stages.iter().filter(|s| !s.enabled).count(), 7);
    let expect_error = stages.iter().filter(|s| s.output.expect_error == Some(true)).count();
    assert_eq!(expect_error, 3);
    assert!(stages.iter().any(|s| s.id == "941160-10@2#1"));
}

#[test]
fn stage_requests_equal_the_converted_corpus() {
    let Some(dir) = suite_dir() else { return };
    let jsonl_path = dir.parent().map(|p| p.join("crs-3.3.4-regression.jsonl"));
    let jsonl_path = jsonl_path.expect("suite has a parent directory");
    let text = std::fs::read_to_string(Path::new(&jsonl_path)).expect("converted corpus");
    let mut want: HashMap<String, Request> = HashMap::new();
    for line in text.lines() {
        let r = Request::from_json_line(line).expect("corpus line");
        want.insert(r.id.clone(), r);
    }
    let files = load_suite(&dir);
    let mut compared = 0;
    let mut diffs = Vec::new();
    // Disabled stages are converted too, so every stage is compared.
    for s in ftw::plan(&files) {
        let built = s.request.unwrap_or_else(|e| panic!("{}: {e}", s.id));
        let Some(w) = want.get(&s.id) else {
            diffs.push(format!("{}: not in the converted corpus", s.id));
            continue;
        };
        compared += 1;
        if &built != w {
            diffs.push(format!("{}:\n  built {:?}\n  want  {:?}", s.id, built, w));
        }
    }
    assert_eq!(compared, 2403);
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs[..diffs.len().min(8)].join("\n")
    );
}
