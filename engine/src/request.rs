//! The request as wafbench sees it: one line of a corpus (JSON Lines), independent of any
//! web server. Every engine (native, Lua, the ModSecurity peer) takes a [`Request`] and
//! returns a [`Decision`].
//!
//! Corpus line format:
//! `{"id": str, "method": str, "uri": str | "uri_b64": str, "version": str,
//!   "headers": [[name, value], ...], "body": str | "body_b64": str,
//!   "client_ip": str, "client_port": int, "server_ip": str, "server_port": int}`.
//! Unknown fields (`expect`, `kind`, ...) are ignored.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::io::BufRead;

/// One HTTP request. `uri` and `body` are raw bytes as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub method: String,
    pub uri: Vec<u8>,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub client_ip: String,
    pub client_port: u16,
    pub server_ip: String,
    pub server_port: u16,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            id: String::new(),
            method: "GET".into(),
            uri: b"/".to_vec(),
            version: "HTTP/1.1".into(),
            headers: Vec::new(),
            body: Vec::new(),
            client_ip: "127.0.0.1".into(),
            client_port: 40000,
            server_ip: "127.0.0.1".into(),
            server_port: 80,
        }
    }
}

impl Request {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The JSON shape of a corpus line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestLine {
    pub id: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_b64: Option<String>,
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_b64: Option<String>,
    #[serde(default = "default_ip")]
    pub client_ip: String,
    #[serde(default = "default_client_port")]
    pub client_port: u16,
    #[serde(default = "default_ip")]
    pub server_ip: String,
    #[serde(default = "default_server_port")]
    pub server_port: u16,
}

fn default_version() -> String {
    "HTTP/1.1".into()
}
fn default_ip() -> String {
    "127.0.0.1".into()
}
fn default_client_port() -> u16 {
    40000
}
fn default_server_port() -> u16 {
    80
}

/// A corpus line that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}:{line}: {message}")]
pub struct CorpusError {
    pub source_name: String,
    pub line: usize,
    pub message: String,
}

impl TryFrom<RequestLine> for Request {
    type Error = String;
    fn try_from(l: RequestLine) -> Result<Self, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let uri = match (l.uri, l.uri_b64) {
            (_, Some(b)) => b64.decode(b.as_bytes()).map_err(|e| format!("uri_b64: {e}"))?,
            (Some(u), None) => u.into_bytes(),
            (None, None) => return Err("missing field `uri` (or `uri_b64`)".into()),
        };
        let body = match (l.body, l.body_b64) {
            (_, Some(b)) => b64.decode(b.as_bytes()).map_err(|e| format!("body_b64: {e}"))?,
            (Some(b), None) => b.into_bytes(),
            (None, None) => Vec::new(),
        };
        Ok(Request {
            id: l.id,
            method: l.method,
            uri,
            version: l.version,
            headers: l.headers,
            body,
            client_ip: l.client_ip,
            client_port: l.client_port,
            server_ip: l.server_ip,
            server_port: l.server_port,
        })
    }
}

impl From<&Request> for RequestLine {
    fn from(r: &Request) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        let (uri, uri_b64) = match std::str::from_utf8(&r.uri) {
            Ok(s) => (Some(s.to_string()), None),
            Err(_) => (None, Some(b64.encode(&r.uri))),
        };
        let (body, body_b64) = match std::str::from_utf8(&r.body) {
            Ok(s) => (Some(s.to_string()), None),
            Err(_) => (None, Some(b64.encode(&r.body))),
        };
        RequestLine {
            id: r.id.clone(),
            method: r.method.clone(),
            uri,
            uri_b64,
            version: r.version.clone(),
            headers: r.headers.clone(),
            body,
            body_b64,
            client_ip: r.client_ip.clone(),
            client_port: r.client_port,
            server_ip: r.server_ip.clone(),
            server_port: r.server_port,
        }
    }
}

impl Request {
    /// Parses one corpus line.
    pub fn from_json_line(line: &str) -> Result<Request, String> {
        let l: RequestLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
        Request::try_from(l)
    }
    /// Serialises to one corpus line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(&RequestLine::from(self)).expect("request lines always serialise")
    }
}

/// Reads a whole corpus. Bad lines are returned as errors beside the good requests, so a
/// caller can report them with their line numbers and go on (or stop, with `--strict`).
pub fn read_corpus(reader: impl BufRead, source_name: &str) -> (Vec<Request>, Vec<CorpusError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                errors.push(CorpusError {
                    source_name: source_name.into(),
                    line: line_no,
                    message: e.to_string(),
                });
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match Request::from_json_line(&line) {
            Ok(r) => out.push(r),
            Err(message) => {
                errors.push(CorpusError { source_name: source_name.into(), line: line_no, message })
            }
        }
    }
    (out, errors)
}

/// What an engine decided for one request: the `eval` output line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub id: String,
    /// The status ModSecurity would answer; 200 when not disrupted.
    pub status: u16,
    pub disruptive: bool,
    /// Ids of the rules that matched and logged, in evaluation order, without repeats
    /// (a chain counts under its first id).
    pub matched_ids: Vec<String>,
    pub anomaly_score: i64,
}

/// Anything that turns a request into a decision: the native evaluator, the Lua backends and
/// the ModSecurity peer all implement it, so harnesses (eval, ftw, latency) treat them alike.
pub trait Engine {
    /// Short name used on the command line and in reports (`native`, `lua`, `lua-ffi`, `modsec`).
    fn name(&self) -> &str;
    /// Runs every request phase (1-2, then 3-5 against an empty `200` response) and returns
    /// the decision.
    fn decide(&mut self, req: &Request) -> Decision;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_base64_lines() {
        let r = Request::from_json_line(
            r#"{"id":"a","method":"POST","uri":"/x?a=1","headers":[["Host","h"],["Host","h2"]],"body_b64":"/w==","expect":{}}"#,
        )
        .unwrap();
        assert_eq!(r.uri, b"/x?a=1");
        assert_eq!(r.body, vec![0xff]);
        assert_eq!(r.headers.len(), 2);
        assert_eq!(r.header("host"), Some("h"));
        let again = Request::from_json_line(&r.to_json_line()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn bad_lines_are_reported_with_line_numbers() {
        let input = "{\"id\":\"a\",\"method\":\"GET\",\"uri\":\"/\"}\nnot json\n\n{\"id\":\"b\",\"method\":\"GET\"}\n";
        let (reqs, errs) = read_corpus(input.as_bytes(), "c.jsonl");
        assert_eq!(reqs.len(), 1);
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].line, 2);
        assert_eq!(errs[1].line, 4);
        assert!(errs[1].to_string().contains("uri"), "{}", errs[1]);
    }
}
