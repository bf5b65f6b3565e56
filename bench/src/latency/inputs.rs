//! Inputs shared by the criterion benches `decision` and `compile`: which engines, which rule
//! set, which corpora. Engines are asked for by name through [`crate::build_engine`], so a
//! backend joins the benches by being added there (`lua` and `lua-ffi` are listed already and
//! skipped, with a message, while `build_engine` does not know them).

use crate::BuildEngineError;
use std::path::PathBuf;
use waf_engine::{Engine, Request};

/// Engines the benches try, in this order.
pub const BENCH_ENGINES: &[&str] = &["native", "lua", "lua-ffi", "modsec"];

/// Environment variable naming the CRS regression-suite directory.
pub const CRS_TESTS_ENV: &str = "WAF_CRS_TESTS";

/// The regression corpus's file name inside the suite directory.
pub const REGRESSION_JSONL: &str = "crs-3.3.4-regression.jsonl";

/// The CRS regression-suite directory: `WAF_CRS_TESTS`, else `<workspace>/../shared/crs-tests`,
/// else `/work/shared/crs-tests`; the first that exists (the last as a fallback).
pub fn crs_tests_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(CRS_TESTS_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let ws = workspace_dir().join("../shared/crs-tests");
    if ws.is_dir() {
        return ws;
    }
    PathBuf::from("/work/shared/crs-tests")
}

/// The workspace root (this crate's parent directory).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The rule set the benches run: CRS at paranoia 1 when installed, else the embedded
/// `default` set. The third field says which, for the bench's output.
pub fn bench_rules() -> (&'static str, Option<u8>, &'static str) {
    if waf_engine::crs::CrsLayout::locate().is_ok() {
        ("crs", Some(1), "CRS 3.3.4 at paranoia 1")
    } else {
        ("default", None, "CRS not found: the embedded `default` rule set")
    }
}

/// A named corpus for the benches.
pub struct BenchCorpus {
    pub name: String,
    pub requests: Vec<Request>,
}

/// `benign` (corpora/benign.jsonl) and `regression` (the CRS suite), each cut to `limit`
/// requests when given. A corpus that cannot be read is left out with a message on stderr;
/// a bad line in it is an error (a bench on a corpus nobody checked is worth nothing).
pub fn bench_corpora(limit: Option<usize>) -> Result<Vec<BenchCorpus>, String> {
    let sources = [
        ("benign", workspace_dir().join("corpora/benign.jsonl")),
        ("regression", crs_tests_dir().join(REGRESSION_JSONL)),
    ];
    let mut out = Vec::new();
    for (name, path) in sources {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("bench corpus {name}: {} not readable ({e}); left out", path.display());
                continue;
            }
        };
        let (mut requests, errors) = waf_engine::request::read_corpus(
            std::io::BufReader::new(file),
            &path.display().to_string(),
        );
        if let Some(e) = errors.first() {
            return Err(e.to_string());
        }
        if let Some(n) = limit {
            requests.truncate(n);
        }
        out.push(BenchCorpus { name: name.into(), requests });
    }
    Ok(out)
}

/// Builds every engine of [`BENCH_ENGINES`] that this build and machine have; the ones that
/// are not available are reported on stderr and skipped. Other build errors are returned.
pub fn bench_engines(
    rules: &str,
    paranoia: Option<u8>,
) -> Result<Vec<Box<dyn Engine>>, BuildEngineError> {
    let mut out = Vec::new();
    for name in BENCH_ENGINES {
        match crate::build_engine(name, rules, paranoia) {
            Ok(e) => out.push(e),
            Err(e @ BuildEngineError::UnknownEngine { .. }) => {
                eprintln!("bench: engine {name} skipped: {e}");
            }
            Err(BuildEngineError::Peer(e @ crate::modsec::PeerError::NotFound { .. })) => {
                eprintln!("bench: engine {name} skipped: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
