//! `corpus stats`: what a corpus file holds. Lines are read one by one (as bytes, so a
//! line that is not UTF-8 is reported rather than ending the read), parsed as a corpus
//! line with its optional `kind`, and folded into counters; lines that do not parse are
//! listed with their line numbers and skipped. [`CorpusStats`] prints as a text report
//! (`Display`) or serialises to JSON.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::BufRead;
use waf_engine::request::{Request, RequestLine};

/// A line that could not be read as a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    pub line: usize,
    pub message: String,
}

/// Min, nearest-rank percentiles and max of a list of sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Distribution {
    pub min: usize,
    pub p50: usize,
    pub p90: usize,
    pub p99: usize,
    pub max: usize,
    pub total: usize,
}

impl Distribution {
    pub fn of(mut values: Vec<usize>) -> Distribution {
        if values.is_empty() {
            return Distribution::default();
        }
        values.sort_unstable();
        let rank = |p: usize| {
            // Nearest rank: the smallest value with at least p% of values at or below it.
            let r = (p * values.len()).div_ceil(100).max(1);
            values[r - 1]
        };
        Distribution {
            min: values[0],
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: values[values.len() - 1],
            total: values.iter().sum(),
        }
    }
}

/// What a corpus holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CorpusStats {
    pub requests: usize,
    pub methods: BTreeMap<String, usize>,
    /// Full kinds (`attack/sqli/query`); `(none)` for lines without one.
    pub kinds: BTreeMap<String, usize>,
    /// Kinds cut to their first two parts (`attack/sqli`, `benign/page`).
    pub kind_groups: BTreeMap<String, usize>,
    /// Body sizes in bytes.
    pub body_bytes: Distribution,
    /// Media type of `Content-Type` without parameters, lowercased; `(none)` when absent.
    pub content_types: BTreeMap<String, usize>,
    /// Headers per request.
    pub headers_per_request: Distribution,
    /// Distinct paths (the URI up to `?`).
    pub unique_paths: usize,
    pub bad_lines: Vec<BadLine>,
}

/// A corpus line as this reader sees it: the request plus the optional kind.
#[derive(Deserialize)]
struct KindedLine {
    #[serde(default)]
    kind: Option<String>,
    #[serde(flatten)]
    line: RequestLine,
}

fn parse_line(text: &str) -> Result<(Option<String>, Request), String> {
    let l: KindedLine = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok((l.kind, Request::try_from(l.line)?))
}

/// Reads a corpus and counts what is in it. An I/O error ends the read and is reported as
/// a bad line at the line where it happened.
pub fn corpus_stats(mut reader: impl BufRead) -> CorpusStats {
    let mut s = CorpusStats::default();
    let mut bodies = Vec::new();
    let mut header_counts = Vec::new();
    let mut paths = BTreeSet::new();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        line_no += 1;
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                s.bad_lines.push(BadLine { line: line_no, message: e.to_string() });
                break;
            }
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(e) => {
                s.bad_lines.push(BadLine { line: line_no, message: format!("not UTF-8: {e}") });
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let (kind, r) = match parse_line(text) {
            Ok(x) => x,
            Err(message) => {
                s.bad_lines.push(BadLine { line: line_no, message });
                continue;
            }
        };
        s.requests += 1;
        let method = if r.method.is_empty() { "(empty)".to_string() } else { r.method.clone() };
        *s.methods.entry(method).or_default() += 1;
        let kind = kind.unwrap_or_else(|| "(none)".into());
        let group = kind.split('/').take(2).collect::<Vec<_>>().join("/");
        *s.kind_groups.entry(group).or_default() += 1;
        *s.kinds.entry(kind).or_default() += 1;
        bodies.push(r.body.len());
        header_counts.push(r.headers.len());
        let ct = r
            .header("Content-Type")
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_else(|| "(none)".into());
        *s.content_types.entry(ct).or_default() += 1;
        let path_end = r.uri.iter().position(|&b| b == b'?').unwrap_or(r.uri.len());
        paths.insert(r.uri[..path_end].to_vec());
    }
    s.body_bytes = Distribution::of(bodies);
    s.headers_per_request = Distribution::of(header_counts);
    s.unique_paths = paths.len();
    s
}

fn write_counts(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    m: &BTreeMap<String, usize>,
) -> fmt::Result {
    writeln!(f, "{title}:")?;
    let mut v: Vec<_> = m.iter().collect();
    // Most frequent first; ties in name order so the report is stable.
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, n) in v {
        writeln!(f, "  {n:>7}  {k}")?;
    }
    Ok(())
}

fn write_dist(f: &mut fmt::Formatter<'_>, title: &str, d: &Distribution) -> fmt::Result {
    writeln!(
        f,
        "{title}: min {} p50 {} p90 {} p99 {} max {} (total {})",
        d.min, d.p50, d.p90, d.p99, d.max, d.total
    )
}

impl fmt::Display for CorpusStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "requests: {}", self.requests)?;
        writeln!(f, "unique paths: {}", self.unique_paths)?;
        write_dist(f, "body bytes", &self.body_bytes)?;
        write_dist(f, "headers per request", &self.headers_per_request)?;
        write_counts(f, "methods", &self.methods)?;
        write_counts(f, "content types", &self.content_types)?;
        write_counts(f, "kind groups", &self.kind_groups)?;
        write_counts(f, "kinds", &self.kinds)?;
        writeln!(f, "bad lines: {}", self.bad_lines.len())?;
        for b in &self.bad_lines {
            writeln!(f, "  line {}: {}", b.line, b.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_table() {
        let cases: &[(&[usize], Distribution)] = &[
            (&[], Distribution::default()),
            (&[7], Distribution { min: 7, p50: 7, p90: 7, p99: 7, max: 7, total: 7 }),
            (&[4, 1, 3, 2], Distribution { min: 1, p50: 2, p90: 4, p99: 4, max: 4, total: 10 }),
        ];
        for (input, want) in cases {
            assert_eq!(Distribution::of(input.to_vec()), *want, "{input:?}");
        }
        let hundred: Vec<usize> = (1..=100).collect();
        let d = Distribution::of(hundred);
        assert_eq!((d.p50, d.p90, d.p99), (50, 90, 99));
    }

    #[test]
    fn counts_and_bad_lines() {
        let input = b"{\"kind\":\"benign/page\",\"id\":\"a\",\"method\":\"GET\",\"uri\":\"/x?a=1\",\"headers\":[[\"Host\",\"h\"]]}\n\
not json\n\
\n\
{\"id\":\"b\",\"method\":\"POST\",\"uri\":\"/x\",\"headers\":[[\"Content-Type\",\"Application/JSON; charset=utf-8\"]],\"body\":\"{}\"}\n\
\xff\xfe\n\
{\"id\":\"c\",\"method\":\"GET\"}\n";
        let s = corpus_stats(&input[..]);
        assert_eq!(s.requests, 2);
        assert_eq!(s.methods.get("GET"), Some(&1));
        assert_eq!(s.kinds.get("benign/page"), Some(&1));
        assert_eq!(s.kinds.get("(none)"), Some(&1));
        assert_eq!(s.content_types.get("application/json"), Some(&1));
        assert_eq!(s.unique_paths, 1);
        assert_eq!(s.body_bytes.max, 2);
        let lines: Vec<usize> = s.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![2, 5, 6]);
        let text = s.to_string();
        assert!(text.contains("requests: 2") && text.contains("line 5: not UTF-8"), "{text}");
    }
}
