//! go-ftw / FTW YAML regression tests (the CRS regression suite format), run in-process.
//!
//! Data flow: YAML file -> [`FtwFile`] (serde_yaml) -> per stage, the request FTW 1.3.0 would
//! put on the wire ([`stage_request`]: FTW's "magic", `raw_request`, `encoded_request`) ->
//! what the web server hands the WAF (bodies de-chunked and cut to `Content-Length`) ->
//! [`Request`] -> an [`Engine`] -> [`Decision`] -> [`judge`] against the stage's `output`.
//!
//! The format and FTW's magic are documented in `crs-tests/v3.3.4/README.md` (shared); the
//! behaviour here follows FTW 1.3.0's `ruleset.py` (`Input`) and `http.py` (`build_request`).
//! In-process there is no server and no error log, so:
//! - `log_contains` / `no_log_contains` are judged on the decision's `matched_ids`: the
//!   regex `id "N"` (also `id "N` and a bare `N`) means "rule N logged". A regex that can
//!   never match a ModSecurity log line (e.g. `id:921140`) is judged as FTW would: never
//!   matches. Any other regex cannot be judged and the stage is skipped with a reason.
//! - `expect_error` needs a real server refusing the request: skipped with a reason.
//! - `response_contains` needs a response body: skipped with a reason.

use base64::Engine as _;
use serde::Deserialize;
use serde_yaml::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use waf_engine::{Decision, Engine, Request};

/// Largest YAML file read; the biggest file of the CRS suite is well under 1 MiB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// One YAML test file.
#[derive(Debug, Clone, Deserialize)]
pub struct FtwFile {
    pub meta: Meta,
    #[serde(default)]
    pub tests: Vec<FtwTest>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub author: Option<Value>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub description: Option<Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct FtwTest {
    pub test_title: Value,
    #[serde(default)]
    pub desc: Option<Value>,
    #[serde(default)]
    pub enabled: Option<bool>,
    pub stages: Vec<StageWrapper>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StageWrapper {
    pub stage: Stage,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Stage {
    pub input: StageInput,
    pub output: StageOutput,
}

/// `stage.input`; defaults are FTW's.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StageInput {
    #[serde(default)]
    pub dest_addr: Option<Value>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub method: Option<Value>,
    #[serde(default)]
    pub uri: Option<Value>,
    #[serde(default)]
    pub version: Option<Value>,
    #[serde(default)]
    pub headers: Option<serde_yaml::Mapping>,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub stop_magic: bool,
    #[serde(default)]
    pub raw_request: Option<String>,
    #[serde(default)]
    pub encoded_request: Option<String>,
    #[serde(default)]
    pub save_cookie: bool,
}

/// `stage.output`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StageOutput {
    #[serde(default)]
    pub log_contains: Option<String>,
    #[serde(default)]
    pub no_log_contains: Option<String>,
    #[serde(default)]
    pub status: Option<StatusSpec>,
    #[serde(default)]
    pub expect_error: Option<bool>,
    #[serde(default)]
    pub response_contains: Option<String>,
}

/// `status`: one code or a list of acceptable codes.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    Any(Vec<u16>),
}

impl StatusSpec {
    pub fn codes(&self) -> Vec<u16> {
        match self {
            StatusSpec::One(c) => vec![*c],
            StatusSpec::Any(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FtwErrorKind {
    Io(String),
    TooLarge(u64),
    Yaml(String),
    /// A stage whose request cannot be built (bad base64, bad `data`, ...).
    Stage(String),
}

/// A file or stage that could not be read; `file` and `test` say where.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}{}: {}", test.as_ref().map(|t| format!(" ({t})")).unwrap_or_default(), describe(kind))]
pub struct FtwError {
    pub kind: FtwErrorKind,
    pub file: String,
    pub test: Option<String>,
}

fn describe(k: &FtwErrorKind) -> String {
    match k {
        FtwErrorKind::Io(m) => format!("reading: {m}"),
        FtwErrorKind::TooLarge(n) => format!("file of {n} bytes is larger than {MAX_FILE_BYTES}"),
        FtwErrorKind::Yaml(m) => format!("YAML: {m}"),
        FtwErrorKind::Stage(m) => format!("stage: {m}"),
    }
}

/// Reads and parses one YAML file.
pub fn load_file(path: &Path) -> Result<FtwFile, FtwError> {
    let err = |kind| FtwError { kind, file: path.display().to_string(), test: None };
    let len = std::fs::metadata(path).map_err(|e| err(FtwErrorKind::Io(e.to_string())))?.len();
    if len > MAX_FILE_BYTES {
        return Err(err(FtwErrorKind::TooLarge(len)));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(FtwErrorKind::Io(e.to_string())))?;
    parse_file(&text).map_err(|m| err(FtwErrorKind::Yaml(m)))
}

/// Parses the text of one YAML file.
pub fn parse_file(text: &str) -> Result<FtwFile, String> {
    serde_yaml::from_str(text).map_err(|e| e.to_string())
}

/// Every test file under the given files and directories, parsed, named by its path: what
/// [`plan`] takes.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<(String, FtwFile)>, FtwError> {
    collect_files(paths)?.iter().map(|f| Ok((f.display().to_string(), load_file(f)?))).collect()
}

/// Every `*.yaml` / `*.yml` under the given files and directories, each directory walked
/// recursively, sorted by path within it.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FtwError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found, 0)?;
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(FtwError {
                kind: FtwErrorKind::Io("no such file or directory".into()),
                file: p.display().to_string(),
                test: None,
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), FtwError> {
    // Symlink loops would otherwise recurse forever.
    if depth > 32 {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| FtwError {
        kind: FtwErrorKind::Io(e.to_string()),
        file: dir.display().to_string(),
        test: None,
    })?;
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out, depth + 1)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// Python's `str()` of a YAML scalar, which is what FTW writes on the wire.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        // Not used by the suite; a stable rendering beats an error.
        other => serde_yaml::to_string(other).unwrap_or_default().trim_end().to_string(),
    }
}

/// Builds the request the engine sees for one stage: what FTW 1.3.0 sends, after the web
/// server's de-chunking and `Content-Length` cut. `id` becomes the request id.
pub fn stage_request(input: &StageInput, id: &str) -> Result<Request, String> {
    let server_port = input.port.unwrap_or(80);
    let dest = input.dest_addr.as_ref().map(py_str).unwrap_or_else(|| "localhost".into());
    // The suite always targets the local server; `localhost` resolves to 127.0.0.1.
    let server_ip =
        if dest.parse::<std::net::IpAddr>().is_ok() { dest } else { "127.0.0.1".into() };
    let mut req = if let Some(b64) = &input.encoded_request {
        let wire = base64::engine::general_purpose::STANDARD
            .decode(b64.trim().as_bytes())
            .map_err(|e| format!("encoded_request: {e}"))?;
        parse_wire(&wire)?
    } else if let Some(raw) = &input.raw_request {
        parse_wire(&unicode_escape(raw).into_bytes())?
    } else {
        structured_request(input)?
    };
    req.id = id.to_string();
    req.server_ip = server_ip;
    req.server_port = server_port;
    req.client_ip = "127.0.0.1".into();
    req.client_port = 40000;
    server_body(&mut req);
    Ok(req)
}

/// The request from `method`/`uri`/`version`/`headers`/`data` with FTW's magic
/// (`ruleset.py` `Input.__init__`): a missing `Content-Type` becomes
/// `application/x-www-form-urlencoded`; such form data with no `%XX` in it is re-encoded
/// through `parse_qsl` + `urlencode`; a missing `Content-Length` becomes `len(data)` in
/// characters. Key lookups are case-sensitive, as in the Python dict. The data is sent as
/// UTF-8: FTW would use the `charset=` of `Content-Type`, which only differs for non-ASCII
/// data (no such stage in CRS 3.3.4).
fn structured_request(input: &StageInput) -> Result<Request, String> {
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(map) = &input.headers {
        for (k, v) in map {
            headers.push((py_str(k), py_str(v)));
        }
    }
    let mut data = match &input.data {
        None | Some(Value::Null) => String::new(),
        Some(Value::Sequence(items)) => items.iter().map(py_str).collect::<Vec<_>>().join("\r\n"),
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => py_str(v),
        Some(_) => return Err("`data` must be a string or a list of strings".into()),
    };
    let has = |h: &[(String, String)], name: &str| h.iter().any(|(k, _)| k == name);
    if !data.is_empty() && !input.stop_magic {
        if !has(&headers, "Content-Type") {
            headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
        }
        let form = headers
            .iter()
            .any(|(k, v)| k == "Content-Type" && v == "application/x-www-form-urlencoded");
        if form && !has_percent_escape(&data) {
            let pairs = parse_qsl(&data);
            if !pairs.is_empty() {
                data = urlencode(&pairs);
            }
        }
        if !has(&headers, "Content-Length") {
            headers.push(("Content-Length".into(), data.chars().count().to_string()));
        }
    }
    Ok(Request {
        id: String::new(),
        method: input.method.as_ref().map(py_str).unwrap_or_else(|| "GET".into()),
        uri: input.uri.as_ref().map(py_str).unwrap_or_else(|| "/".into()).into_bytes(),
        version: input.version.as_ref().map(py_str).unwrap_or_else(|| "HTTP/1.1".into()),
        headers,
        body: data.into_bytes(),
        ..Request::default()
    })
}

/// `urllib.parse.unquote(s) != s` exactly when `s` holds a `%` followed by two hex digits.
fn has_percent_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// Python 3.11's `parse_qsl(s)` with its defaults, for input without `%XX` escapes: split on
/// `&`, drop empty pieces, pieces without `=` and pairs whose value is empty
/// (`keep_blank_values=False`), and turn `+` into a space.
fn parse_qsl(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter_map(|piece| {
            let (k, v) = piece.split_once('=')?;
            (!v.is_empty()).then(|| (k.replace('+', " "), v.replace('+', " ")))
        })
        .collect()
}

/// Python's `urlencode(pairs)`: `quote_plus(k)=quote_plus(v)` joined with `&`.
fn urlencode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Python's `quote_plus(s)`: unreserved bytes kept, space as `+`, the rest `%XX` of UTF-8.
fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// FTW's `raw_request` handling: `raw.encode('utf-8').decode('unicode_escape')`, then UTF-8
/// again on the wire. Bytes stand for themselves (as Latin-1 characters) and backslash escapes
/// are Python's: `\\ \' \" \a \b \f \n \r \t \v \ooo \xHH \uXXXX \UXXXXXXXX`, backslash-newline
/// dropped; an unknown escape is kept as written.
pub fn unicode_escape(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    let hex = |s: &[u8]| -> Option<u32> {
        std::str::from_utf8(s).ok().and_then(|t| u32::from_str_radix(t, 16).ok())
    };
    while i < b.len() {
        let c = b[i];
        if c != b'\\' || i + 1 >= b.len() {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let e = b[i + 1];
        let simple = match e {
            b'\\' => Some('\\'),
            b'\'' => Some('\''),
            b'"' => Some('"'),
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            i += 2;
            continue;
        }
        if e == b'\n' {
            i += 2;
            continue;
        }
        if (b'0'..=b'7').contains(&e) {
            let mut j = i + 1;
            let mut v = 0u32;
            while j < b.len() && j < i + 4 && (b'0'..=b'7').contains(&b[j]) {
                v = v * 8 + u32::from(b[j] - b'0');
                j += 1;
            }
            out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            i = j;
            continue;
        }
        let width = match e {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => 0,
        };
        if width > 0 && i + 2 + width <= b.len() {
            if let Some(ch) = hex(&b[i + 2..i + 2 + width]).and_then(char::from_u32) {
                out.push(ch);
                i += 2 + width;
                continue;
            }
        }
        // Unknown or malformed escape (Python raises on a malformed \x; keeping the text
        // is the useful answer for a test runner).
        out.push('\\');
        i += 1;
    }
    out
}

/// Splits a whole HTTP request as a server reads it: request line, header lines up to the
/// first empty line (CRLF or bare LF), the rest is the body.
fn parse_wire(wire: &[u8]) -> Result<Request, String> {
    let text_end = |from: usize| -> (usize, usize) {
        match wire[from..].iter().position(|&c| c == b'\n') {
            Some(p) => {
                let end = from + p;
                let line_end = if end > from && wire[end - 1] == b'\r' { end - 1 } else { end };
                (line_end, end + 1)
            }
            None => (wire.len(), wire.len()),
        }
    };
    let (line_end, mut pos) = text_end(0);
    let line = String::from_utf8_lossy(&wire[..line_end]).into_owned();
    let mut parts: Vec<&str> = line.split(' ').collect();
    if parts.len() < 2 {
        return Err(format!("request line {line:?} has no target"));
    }
    let method = parts.remove(0).to_string();
    let version =
        if parts.len() >= 2 { parts.pop().unwrap_or_default().to_string() } else { String::new() };
    let uri = parts.join(" ");
    let mut headers = Vec::new();
    while pos < wire.len() {
        let (end, next) = text_end(pos);
        let h = &wire[pos..end];
        pos = next;
        if h.is_empty() {
            break;
        }
        let h = String::from_utf8_lossy(h);
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.to_string(), v.trim_matches([' ', '\t']).to_string()));
        }
    }
    Ok(Request {
        id: String::new(),
        method,
        uri: uri.into_bytes(),
        version,
        headers,
        body: wire[pos.min(wire.len())..].to_vec(),
        ..Request::default()
    })
}

/// What the web server does to the body before the WAF sees it: a `chunked` body is
/// de-chunked, and a body longer than a numeric `Content-Length` is cut to it (the rest
/// would be the next request on the connection).
fn server_body(req: &mut Request) {
    let chunked = req.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("Transfer-Encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        if let Some(b) = dechunk(&req.body) {
            req.body = b;
            return;
        }
    }
    if let Some(len) = req.header("Content-Length").and_then(|v| v.trim().parse::<usize>().ok()) {
        req.body.truncate(len);
    }
}

/// Decodes a chunked body; `None` when it is not well-formed.
fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let nl = body[pos..].iter().position(|&c| c == b'\n')? + pos;
        let line = std::str::from_utf8(&body[pos..nl]).ok()?.trim_end_matches('\r');
        let size_text = line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        pos = nl + 1;
        if size == 0 {
            return Some(out);
        }
        let end = pos.checked_add(size)?;
        out.extend_from_slice(body.get(pos..end)?);
        pos = end;
        if body.get(pos..pos + 2) == Some(b"\r\n") {
            pos += 2;
        } else if body.get(pos) == Some(&b'\n') {
            pos += 1;
        }
    }
}

/// What one log regex asks, as far as it can be answered from matched rule ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogCheck {
    /// "rule N wrote a log line".
    Id(String),
    /// A regex no ModSecurity log line can match (e.g. `id:921140`).
    NeverMatches,
    /// Anything else: needs the real log text.
    Unjudgeable(String),
}

/// Reads a `log_contains` / `no_log_contains` regex.
pub fn log_check(regex: &str) -> LogCheck {
    let r = regex.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = r.strip_prefix("id \"") {
        let id = rest.strip_suffix('"').unwrap_or(rest);
        if digits(id) {
            return LogCheck::Id(id.to_string());
        }
    }
    if digits(r) {
        return LogCheck::Id(r.to_string());
    }
    // ModSecurity writes `[id "N"]`; the `id:N` form only exists in rule source.
    if let Some(id) = r.strip_prefix("id:") {
        if digits(id) {
            return LogCheck::NeverMatches;
        }
    }
    LogCheck::Unjudgeable(regex.to_string())
}

/// The verdict on one stage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail(String),
    Skip(String),
}

/// Judges a decision against a stage's `output`. Every judgeable check must hold; a stage
/// with a check that cannot be judged in-process is skipped.
pub fn judge(out: &StageOutput, d: &Decision) -> Verdict {
    if out.expect_error == Some(true) {
        return Verdict::Skip("expect_error needs a real server refusing the request".into());
    }
    if out.response_contains.is_some() {
        return Verdict::Skip("response_contains needs a response body".into());
    }
    let mut failures = Vec::new();
    let mut judged = false;
    let logged = |id: &str| d.matched_ids.iter().any(|m| m == id);
    for (regex, want) in [(&out.log_contains, true), (&out.no_log_contains, false)] {
        let Some(regex) = regex else { continue };
        let matched = match log_check(regex) {
            LogCheck::Id(id) => logged(&id),
            LogCheck::NeverMatches => false,
            LogCheck::Unjudgeable(r) => {
                return Verdict::Skip(format!("log regex {r:?} is not a rule id"));
            }
        };
        judged = true;
        if matched != want {
            let which = if want { "log_contains" } else { "no_log_contains" };
            failures.push(format!("{which} {regex:?} (matched ids {:?})", d.matched_ids));
        }
    }
    if let Some(s) = &out.status {
        judged = true;
        let codes = s.codes();
        if !codes.contains(&d.status) {
            failures.push(format!("status {} not in {codes:?}", d.status));
        }
    }
    if !judged {
        return Verdict::Skip("no check to judge".into());
    }
    if failures.is_empty() { Verdict::Pass } else { Verdict::Fail(failures.join("; ")) }
}

/// One stage's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageResult {
    /// `<test_title>#<stage>`; a title seen before in the run gets `@N` (`941160-10@2#1`).
    pub id: String,
    pub file: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Totals over stages.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Totals {
    pub fn add(&mut self, v: &Verdict) {
        match v {
            Verdict::Pass => self.passed += 1,
            Verdict::Fail(_) => self.failed += 1,
            Verdict::Skip(_) => self.skipped += 1,
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub results: Vec<StageResult>,
    pub totals: Totals,
}

/// A stage as it will run: its id, file, request (or why it has none) and output.
#[derive(Debug, Clone)]
pub struct PlannedStage {
    pub id: String,
    pub file: String,
    /// False when the file or the test is disabled: the stage is skipped.
    pub enabled: bool,
    pub request: Result<Request, String>,
    pub output: StageOutput,
}

/// Turns parsed files into the list of stages, with ids (`title#n`, repeats of a title
/// numbered `title@2#n`, ...). `file` names are as given.
pub fn plan(files: &[(String, FtwFile)]) -> Vec<PlannedStage> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (name, f) in files {
        for t in &f.tests {
            let title = py_str(&t.test_title);
            let n = seen.entry(title.clone()).or_insert(0);
            *n += 1;
            let base = if *n == 1 { title } else { format!("{title}@{n}") };
            let enabled = f.meta.enabled && t.enabled.unwrap_or(true);
            for (i, s) in t.stages.iter().enumerate() {
                let id = format!("{base}#{}", i + 1);
                let request = stage_request(&s.stage.input, &id);
                out.push(PlannedStage {
                    id,
                    file: name.clone(),
                    enabled,
                    request,
                    output: s.stage.output.clone(),
                });
            }
        }
    }
    out
}

/// Runs planned stages through an engine.
pub fn run(stages: &[PlannedStage], engine: &mut dyn Engine) -> Report {
    let mut report = Report::default();
    for s in stages {
        let verdict = match &s.request {
            _ if !s.enabled => Verdict::Skip("disabled".into()),
            Err(e) => Verdict::Fail(format!("request could not be built: {e}")),
            Ok(req) => judge(&s.output, &engine.decide(req)),
        };
        report.totals.add(&verdict);
        report.results.push(StageResult { id: s.id.clone(), file: s.file.clone(), verdict });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(yaml: &str) -> StageInput {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn magic_adds_content_type_and_length_and_reencodes_forms() {
        // (stage input, headers built, body the engine sees)
        type Case = (&'static str, &'static [(&'static str, &'static str)], &'static str);
        let cases: &[Case] = &[
            // data without Content-Type: both headers appended, re-encoded.
            (
                "data: 'a=b c&d=&e'",
                &[("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "5")],
                "a=b+c",
            ),
            // %XX present: not re-encoded; length counts characters.
            (
                "data: 'x=%41é'",
                &[("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "6")],
                "x=%41é",
            ),
            // Another Content-Type: no re-encoding, still a length.
            (
                "headers: {Content-Type: text/plain}\ndata: 'a b'",
                &[("Content-Type", "text/plain"), ("Content-Length", "3")],
                "a b",
            ),
            // Lowercase key: FTW's lookup is case-sensitive, so it adds its own.
            (
                "headers: {content-type: text/plain}\ndata: 'q=<x>'",
                &[
                    ("content-type", "text/plain"),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Content-Length", "9"),
                ],
                "q=%3Cx%3E",
            ),
            // stop_magic: nothing added.
            ("stop_magic: true\ndata: 'a=b c'", &[], "a=b c"),
            // A list is joined with CRLF; ints are written as digits.
            (
                "headers: {Content-Type: text/plain, X-N: 7}\ndata: [a, b]",
                &[("Content-Type", "text/plain"), ("X-N", "7"), ("Content-Length", "4")],
                "a\r\nb",
            ),
            // No data: no headers.
            ("method: GET", &[], ""),
        ];
        for (yaml, headers, body) in cases {
            let r = stage_request(&input(yaml), "t").unwrap();
            let got: Vec<(&str, &str)> =
                r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(&got, headers, "{yaml}");
            // The server cuts the body to Content-Length (characters, not bytes).
            let want: &[u8] = body.as_bytes();
            let cl = r.header("Content-Length").and_then(|v| v.parse::<usize>().ok());
            assert_eq!(r.body, &want[..cl.unwrap_or(want.len()).min(want.len())], "{yaml}");
        }
    }

    #[test]
    fn raw_and_encoded_requests_are_parsed_as_a_server_would() {
        let raw = input(
            "raw_request: \"POST /a?b=1 HTTP/1.0\\\\r\\\\nHost: h\\\\r\\\\nContent-Length: 3\\\\r\\\\n\\\\r\\\\nabcdef\"",
        );
        let r = stage_request(&raw, "t").unwrap();
        assert_eq!(
            (r.method.as_str(), r.uri.as_slice(), r.version.as_str()),
            ("POST", &b"/a?b=1"[..], "HTTP/1.0")
        );
        assert_eq!(
            r.headers,
            [("Host".to_string(), "h".to_string()), ("Content-Length".into(), "3".into())]
        );
        assert_eq!(r.body, b"abc");
        let b64 = base64::engine::general_purpose::STANDARD.encode("GET / HTTP/1.1\nHost: x\n\n");
        let r = stage_request(&input(&format!("encoded_request: {b64}")), "t").unwrap();
        assert_eq!(r.headers, [("Host".to_string(), "x".to_string())]);
        assert!(r.body.is_empty());
        assert!(stage_request(&input("encoded_request: '!!'"), "t").is_err());
    }

    #[test]
    fn unicode_escape_follows_python() {
        let cases = [
            (r"a\r\nb", "a\r\nb"),
            (r"\x41\101\u00e9", "AAé"),
            (r"\q\\", "\\q\\"),
            ("é", "\u{c3}\u{a9}"),
            (r"\x4", "\\x4"),
        ];
        for (i, o) in cases {
            assert_eq!(unicode_escape(i), o, "{i}");
        }
    }

    #[test]
    fn chunked_bodies_are_dechunked() {
        assert_eq!(dechunk(b"7\r\nfoo=bar\r\n0\r\n\r\n").as_deref(), Some(&b"foo=bar"[..]));
        assert_eq!(dechunk(b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n").as_deref(), Some(&b"abcde"[..]));
        assert_eq!(dechunk(b"zz\r\nabc"), None);
        assert_eq!(dechunk(b"ffffffffffffffff\r\nabc"), None);
    }

    #[test]
    fn log_regexes_are_read_as_rule_ids() {
        assert_eq!(log_check(r#"id "942100""#), LogCheck::Id("942100".into()));
        assert_eq!(log_check(r#"id "942480"#), LogCheck::Id("942480".into()));
        assert_eq!(log_check("930120"), LogCheck::Id("930120".into()));
        assert_eq!(log_check("id:921140"), LogCheck::NeverMatches);
        assert!(matches!(log_check("Access denied"), LogCheck::Unjudgeable(_)));
    }

    fn decision(status: u16, ids: &[&str]) -> Decision {
        Decision {
            id: "t".into(),
            status,
            disruptive: status != 200,
            matched_ids: ids.iter().map(|s| s.to_string()).collect(),
            anomaly_score: 0,
        }
    }

    #[test]
    fn judging_covers_every_check() {
        let out = |y: &str| -> StageOutput { serde_yaml::from_str(y).unwrap() };
        let d = decision(403, &["920100", "949110"]);
        let cases = [
            ("log_contains: id \"920100\"", "pass"),
            ("log_contains: id \"1\"", "fail"),
            ("no_log_contains: id \"949110\"", "fail"),
            ("no_log_contains: id:949110", "pass"),
            ("log_contains: id:949110", "fail"),
            ("status: 403", "pass"),
            ("status: [400, 403]", "pass"),
            ("status: [200]", "fail"),
            ("status: 403\nno_log_contains: id \"1\"", "pass"),
            ("expect_error: true", "skip"),
            ("log_contains: 'Access.*denied'", "skip"),
            ("{}", "skip"),
        ];
        for (y, want) in cases {
            let got = match judge(&out(y), &d) {
                Verdict::Pass => "pass",
                Verdict::Fail(_) => "fail",
                Verdict::Skip(_) => "skip",
            };
            assert_eq!(got, want, "{y}");
        }
    }

    #[test]
    fn repeated_titles_get_numbered_ids_and_disabled_files_no_request() {
        let f = parse_file(
            "meta: {enabled: false}\ntests:\n - test_title: a\n   stages: [{stage: {input: {}, output: {status: 200}}}]\n - test_title: a\n   stages: [{stage: {input: {}, output: {status: 200}}}]\n",
        )
        .unwrap();
        let p = plan(&[("f".into(), f)]);
        let ids: Vec<_> = p.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a#1", "a@2#1"]);
        assert!(p.iter().all(|s| !s.enabled && s.request.is_ok()));
    }
}
