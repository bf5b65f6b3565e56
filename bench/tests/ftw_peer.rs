//! Validation of the whole FTW harness: the CRS 3.3.4 regression suite through the
//! ModSecurity peer at paranoia 4 must reproduce the published reference for libmodsecurity3
//! 3.0.9 with Debian's CRS 3.3.4 (2,343 of 2,393 scored stages). It runs in about 5 s in
//! release mode on the 2-core VM, so the full suite is kept. Needs libmodsecurity3 and
//! modsecurity-crs (installed by .ci/run).

use wafbench::ftw::{self, Verdict};

#[test]
fn crs_suite_through_the_peer_matches_the_reference() {
    // The suite is upstream CRS data, not in the repository.
    let Some(dir) = waf_engine::crs::regression_suite_for_test() else { return };
    let dir = dir.join("v3.3.4");
    let stages = ftw::plan(&ftw::load_all(&[dir]).unwrap());
    let mut engine = wafbench::build_engine("modsec", "crs", Some(4)).unwrap();
    let report = ftw::run(&stages, engine.as_mut());
    let t = &report.totals;
    let failed: Vec<&str> = report
        .results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail(_)))
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!((t.passed, t.failed, t.skipped), (2343, 50, 10), "failed: {failed:?}");
    // The known reasons (shared/README.md): among them, 30 XML-body stages of 944xxx where v3
    // also fills REQUEST_BODY, and the three multipart stages ended early by the base
    // configuration's strict-multipart rule 200003.
    assert_eq!(failed.iter().filter(|id| id.starts_with("944")).count(), 30);
    for id in ["922100-1#1", "922110-1#1", "922120-1#1"] {
        assert!(failed.contains(&id), "{id}");
    }
}
