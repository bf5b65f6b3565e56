//! The transaction's view of the request: every request variable a rule can read, built the
//! way ModSecurity v3.0.9 builds it, independent of any web server.
//!
//! Data flow:
//! - phase 1: [`RequestData::new`] takes a [`Request`] and a [`TxnConfig`]: the request line
//!   ([`uri`]), ARGS_GET ([`urlencoded`]), the headers, cookies ([`cookies`]), the connection
//!   and the body type that the Content-Type header selects.
//! - phase 2: [`RequestData::process_body`] applies the body limits ([`limits`]) and runs the
//!   body processor: URLENCODED ([`urlencoded`]), MULTIPART ([`multipart`]), JSON ([`json`]) or
//!   XML ([`xml`]); it fills ARGS_POST, FILES*, MULTIPART_*, REQBODY_* and REQUEST_BODY.
//! - the evaluator reads values with [`RequestData::collect`], filtered by a
//!   [`CompiledSelector`], in insertion order, each with the name v3 shows in
//!   MATCHED_VAR_NAME (`ARGS:foo`, `REQUEST_HEADERS:Host`, `REQUEST_URI`, `XML:/*`).
//!
//! Persistent collections (TX, IP, ...), MATCHED_* and the time variables live in the
//! evaluator; [`RequestData::collect`] returns false for them.
//!
//! Order: v3 keeps collections in `std::unordered_multimap`s whose iteration order depends on
//! a hash; here elements come in insertion order (ARGS = query arguments, then body arguments).

pub mod cookies;
pub mod json;
pub mod limits;
pub mod multipart;
pub mod uri;
pub mod urlencoded;
pub mod xml;

use crate::ir::{ConfigDirective, LimitAction, Selector, Variable};
use crate::request::Request;
use std::borrow::Cow;

/// Default `SecRequestBodyJsonDepthLimit` in v3.0.9 (json.cc).
pub const DEFAULT_JSON_DEPTH_LIMIT: u64 = 10_000;

/// The configuration the request view depends on; the evaluator fills it from the rule
/// set's [`ConfigDirective`]s with [`TxnConfig::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `SecRequestBodyAccess` (v3 default Off).
    pub request_body_access: bool,
    /// `SecRequestBodyLimit`; `None` or 0 = unlimited.
    pub request_body_limit: Option<u64>,
    /// `SecRequestBodyNoFilesLimit`; only checked when set.
    pub request_body_no_files_limit: Option<u64>,
    /// `SecRequestBodyLimitAction`; unset drops an over-long body without intervening.
    pub request_body_limit_action: Option<LimitAction>,
    /// `SecArgumentsLimit`: arguments beyond it are skipped.
    pub arguments_limit: Option<u64>,
    /// `SecRequestBodyJsonDepthLimit`.
    pub json_depth_limit: u64,
    /// `SecArgumentSeparator` (v3 uses its first byte).
    pub argument_separator: u8,
    /// `SecCookieFormat`: kept for completeness; v3 ignores it.
    pub cookie_format: u8,
    pub response_body_access: bool,
    pub response_body_limit: Option<u64>,
    pub response_body_limit_action: Option<LimitAction>,
    pub response_body_mime_types: Vec<String>,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            request_body_access: false,
            request_body_limit: None,
            request_body_no_files_limit: None,
            request_body_limit_action: None,
            arguments_limit: None,
            json_depth_limit: DEFAULT_JSON_DEPTH_LIMIT,
            argument_separator: b'&',
            cookie_format: 0,
            response_body_access: false,
            response_body_limit: None,
            response_body_limit_action: None,
            response_body_mime_types: Vec::new(),
        }
    }
}

impl TxnConfig {
    /// What the request view reads: everything but the response MIME types, whose copy
    /// would cost each transaction a few allocations.
    fn request_side(&self) -> TxnConfig {
        TxnConfig {
            request_body_access: self.request_body_access,
            request_body_limit: self.request_body_limit,
            request_body_no_files_limit: self.request_body_no_files_limit,
            request_body_limit_action: self.request_body_limit_action,
            arguments_limit: self.arguments_limit,
            json_depth_limit: self.json_depth_limit,
            argument_separator: self.argument_separator,
            cookie_format: self.cookie_format,
            response_body_access: self.response_body_access,
            response_body_limit: self.response_body_limit,
            response_body_limit_action: self.response_body_limit_action,
            response_body_mime_types: Vec::new(),
        }
    }

    /// Applies one directive (a later one overrides an earlier one).
    pub fn apply(&mut self, d: &ConfigDirective) {
        match d {
            ConfigDirective::RequestBodyAccess(b) => self.request_body_access = *b,
            ConfigDirective::ResponseBodyAccess(b) => self.response_body_access = *b,
            ConfigDirective::RequestBodyLimit(n) => self.request_body_limit = Some(*n),
            ConfigDirective::RequestBodyNoFilesLimit(n) => {
                self.request_body_no_files_limit = Some(*n)
            }
            ConfigDirective::RequestBodyLimitAction(a) => self.request_body_limit_action = Some(*a),
            ConfigDirective::ResponseBodyLimit(n) => self.response_body_limit = Some(*n),
            ConfigDirective::ResponseBodyLimitAction(a) => {
                self.response_body_limit_action = Some(*a)
            }
            ConfigDirective::RequestBodyJsonDepthLimit(n) => self.json_depth_limit = *n,
            ConfigDirective::ArgumentsLimit(n) => self.arguments_limit = Some(*n),
            ConfigDirective::ResponseBodyMimeType(v) => {
                self.response_body_mime_types.extend(v.iter().cloned())
            }
            ConfigDirective::ResponseBodyMimeTypesClear => self.response_body_mime_types.clear(),
            ConfigDirective::ArgumentSeparator(s) => {
                if let Some(&b) = s.as_bytes().first() {
                    self.argument_separator = b;
                }
            }
            ConfigDirective::CookieFormat(f) => self.cookie_format = *f,
            _ => {}
        }
    }

    /// A configuration from directives in load order.
    pub fn from_directives<'a>(ds: impl IntoIterator<Item = &'a ConfigDirective>) -> Self {
        let mut c = TxnConfig::default();
        for d in ds {
            c.apply(d);
        }
        c
    }
}

/// The request body processors of v3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyProcessor {
    Urlencoded,
    Multipart,
    Xml,
    Json,
}

impl BodyProcessor {
    /// The REQBODY_PROCESSOR spelling (also the `ctl:requestBodyProcessor=` argument).
    pub fn name(self) -> &'static str {
        match self {
            BodyProcessor::Urlencoded => "URLENCODED",
            BodyProcessor::Multipart => "MULTIPART",
            BodyProcessor::Xml => "XML",
            BodyProcessor::Json => "JSON",
        }
    }

    /// Case-insensitive, as `ctl:requestBodyProcessor=` accepts it.
    pub fn from_name(s: &str) -> Option<Self> {
        [
            BodyProcessor::Urlencoded,
            BodyProcessor::Multipart,
            BodyProcessor::Xml,
            BodyProcessor::Json,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(s))
    }
}

/// One element of a variable: the name ModSecurity shows in MATCHED_VAR_NAME (e.g.
/// `ARGS:foo`, `REQUEST_HEADERS:User-Agent`, `REQUEST_URI`) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarValue<'a> {
    pub name: Cow<'a, str>,
    pub value: Cow<'a, [u8]>,
}

/// A target's selector, ready to test keys.
#[derive(Debug, Clone)]
pub struct CompiledSelector {
    kind: SelectorKind,
}

#[derive(Debug, Clone)]
enum SelectorKind {
    /// Compared ASCII case-insensitively (v3's `MyEqual`); for XML, the XPath expression.
    Key(String),
    Regex(KeyRegex),
}

#[derive(Debug, Clone)]
enum KeyRegex {
    Bytes(regex::bytes::Regex),
    Fancy(Box<fancy_regex::Regex>),
}

impl CompiledSelector {
    /// A `/regex/` selector is compiled the way v3's `VariableRegex` does: caseless, with
    /// DOTALL and MULTILINE, searched anywhere in the key. Patterns the linear-time engine
    /// refuses (lookaround, backreferences) go to fancy-regex.
    pub fn new(sel: &Selector) -> Result<Self, String> {
        let kind = match sel {
            Selector::Key(k) => SelectorKind::Key(k.clone()),
            Selector::Regex(r) => {
                let build = |unicode: bool| {
                    regex::bytes::RegexBuilder::new(r)
                        .case_insensitive(true)
                        .dot_matches_new_line(true)
                        .multi_line(true)
                        .unicode(unicode)
                        .build()
                };
                match build(false).or_else(|_| build(true)) {
                    Ok(re) => SelectorKind::Regex(KeyRegex::Bytes(re)),
                    Err(e1) => match fancy_regex::Regex::new(&format!("(?ism){r}")) {
                        Ok(re) => SelectorKind::Regex(KeyRegex::Fancy(Box::new(re))),
                        Err(e2) => return Err(format!("invalid selector regex /{r}/: {e1}; {e2}")),
                    },
                }
            }
        };
        Ok(CompiledSelector { kind })
    }

    /// Whether an element with this key is selected.
    pub fn matches_key(&self, key: &[u8]) -> bool {
        match &self.kind {
            SelectorKind::Key(k) => k.as_bytes().eq_ignore_ascii_case(key),
            SelectorKind::Regex(KeyRegex::Bytes(re)) => re.is_match(key),
            SelectorKind::Regex(KeyRegex::Fancy(re)) => {
                re.is_match(&String::from_utf8_lossy(key)).unwrap_or(false)
            }
        }
    }
}

/// One element of a collection, with its MATCHED_VAR_NAME precomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Elem {
    key: Vec<u8>,
    value: Vec<u8>,
    /// The element's name (`ARGS:q`) followed by its name under the collection's `*_NAMES`
    /// variable (`ARGS_NAMES:q`, empty when there is none), built once here rather than by
    /// every rule that reads them; `split` is where the first ends.
    names: String,
    split: usize,
}

impl Elem {
    fn name(&self) -> &str {
        &self.names[..self.split]
    }
    fn names_name(&self) -> &str {
        &self.names[self.split..]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Coll {
    var: Variable,
    elems: Vec<Elem>,
}

/// `String::from_utf8_lossy`, with the standard library's faster validation first: most
/// keys are ASCII, for which `Utf8Chunks` costs about 200 instructions on a 20-byte key.
pub(crate) fn utf8_lossy(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

impl Coll {
    fn new(var: Variable) -> Self {
        Coll { var, elems: Vec::new() }
    }
    fn push(&mut self, key: Vec<u8>, value: Vec<u8>) {
        let k = utf8_lossy(&key);
        let var = self.var.name();
        let nv = names_variable(self.var);
        let mut names =
            String::with_capacity(2 * (k.len() + 1) + var.len() + nv.map_or(0, str::len));
        names.push_str(var);
        names.push(':');
        names.push_str(&k);
        let split = names.len();
        if let Some(nv) = nv {
            names.push_str(nv);
            names.push(':');
            names.push_str(&k);
        }
        self.elems.push(Elem { key, value, names, split });
    }
}

/// The `*_NAMES` variable that lists the keys of a collection variable.
fn names_variable(var: Variable) -> Option<&'static str> {
    use Variable::*;
    Some(match var {
        Args => "ARGS_NAMES",
        ArgsGet => "ARGS_GET_NAMES",
        ArgsPost => "ARGS_POST_NAMES",
        RequestHeaders => "REQUEST_HEADERS_NAMES",
        RequestCookies => "REQUEST_COOKIES_NAMES",
        _ => return None,
    })
}

/// Where an argument came from (v3's `orig` of `addArgument`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ArgOrigin {
    Get,
    Post,
    /// JSON arguments go to ARGS only, not ARGS_POST: v3.0.9 json.cc calls
    /// `addArgument("JSON", ...)` and `addArgument` only files "GET" and "POST" origins.
    Json,
}

/// Every request variable of one transaction.
#[derive(Debug, Clone)]
pub struct RequestData {
    cfg: TxnConfig,
    /// Per [`Variable`]: where its value sits in `scalar_bytes`, once set. A value set
    /// again is appended again (a few body-processing flags are).
    scalars: Vec<Option<(usize, usize)>>,
    scalar_bytes: Vec<u8>,
    args: Coll,
    args_get: Coll,
    args_post: Coll,
    headers: Coll,
    cookies: Coll,
    files: Coll,
    files_names: Coll,
    files_sizes: Coll,
    files_tmp_content: Coll,
    files_tmp_names: Coll,
    part_headers: Coll,
    mp_names: Coll,
    mp_filenames: Coll,
    xml: Option<xml::XmlDoc>,
    combined_size: u64,
    /// From Content-Type (or `ctl:requestBodyProcessor=URLENCODED`): v3's `m_requestBodyType`.
    body_type: Option<BodyProcessor>,
    /// From `ctl:requestBodyProcessor=XML|JSON`: v3's `m_requestBodyProcessor`.
    body_processor: Option<BodyProcessor>,
    /// `ctl:requestBodyAccess`, overriding the configuration.
    body_access_override: Option<bool>,
    body_limit: Option<limits::BodyLimit>,
}

/// Variables this module owns that are plain values.
fn is_request_scalar(v: Variable) -> bool {
    use Variable::*;
    matches!(
        v,
        RequestMethod
            | RequestProtocol
            | RequestLine
            | RequestUri
            | RequestUriRaw
            | RequestFilename
            | RequestBasename
            | PathInfo
            | QueryString
            | RemoteAddr
            | RemotePort
            | ServerAddr
            | ServerPort
            | ServerName
            | UniqueId
            | AuthType
            | FullRequest
            | FullRequestLength
            | RequestBody
            | RequestBodyLength
            | ArgsCombinedSize
            | FilesCombinedSize
            | ReqbodyProcessor
            | ReqbodyError
            | ReqbodyErrorMsg
            | ReqbodyProcessorError
            | ReqbodyProcessorErrorMsg
            | UrlencodedError
            | InboundDataError
            | MultipartBoundaryQuoted
            | MultipartBoundaryWhitespace
            | MultipartCrlfLfLines
            | MultipartDataAfter
            | MultipartDataBefore
            | MultipartFileLimitExceeded
            | MultipartHeaderFolding
            | MultipartInvalidHeaderFolding
            | MultipartInvalidPart
            | MultipartInvalidQuoting
            | MultipartLfLine
            | MultipartMissingSemicolon
            | MultipartStrictError
            | MultipartUnmatchedBoundary
    )
}

impl RequestData {
    fn empty(cfg: &TxnConfig) -> Self {
        use Variable::*;
        RequestData {
            cfg: cfg.request_side(),
            scalars: vec![None; Variable::ALL.len()],
            scalar_bytes: Vec::with_capacity(512),
            args: Coll::new(Args),
            args_get: Coll::new(ArgsGet),
            args_post: Coll::new(ArgsPost),
            headers: Coll::new(RequestHeaders),
            cookies: Coll::new(RequestCookies),
            files: Coll::new(Files),
            files_names: Coll::new(FilesNames),
            files_sizes: Coll::new(FilesSizes),
            files_tmp_content: Coll::new(FilesTmpContent),
            files_tmp_names: Coll::new(FilesTmpNames),
            part_headers: Coll::new(MultipartPartHeaders),
            mp_names: Coll::new(MultipartName),
            mp_filenames: Coll::new(MultipartFilename),
            xml: None,
            combined_size: 0,
            body_type: None,
            body_processor: None,
            body_access_override: None,
            body_limit: None,
        }
    }

    fn set(&mut self, v: Variable, value: impl AsRef<[u8]>) {
        if let Some(slot) = self.scalars.get_mut(v as usize) {
            let start = self.scalar_bytes.len();
            self.scalar_bytes.extend_from_slice(value.as_ref());
            *slot = Some((start, self.scalar_bytes.len()));
        }
    }

    /// A scalar's value, if set.
    pub fn scalar(&self, v: Variable) -> Option<&[u8]> {
        let (a, b) = (*self.scalars.get(v as usize)?)?;
        self.scalar_bytes.get(a..b)
    }

    /// Builds the phase-1 variables (connection, request line, ARGS_GET, headers, cookies).
    pub fn new(req: &Request, cfg: &TxnConfig) -> RequestData {
        use Variable::*;
        let mut d = RequestData::empty(cfg);
        d.set(RemoteAddr, req.client_ip.as_bytes());
        d.set(RemotePort, req.client_port.to_string());
        d.set(ServerAddr, req.server_ip.as_bytes());
        d.set(ServerPort, req.server_port.to_string());
        // The peer creates its transaction with the corpus id, so UNIQUE_ID is that id.
        let id = if req.id.is_empty() {
            use sha1::Digest;
            let h = sha1::Sha1::digest(&req.uri);
            h.iter().take(10).map(|b| format!("{b:02x}")).collect::<String>()
        } else {
            req.id.clone()
        };
        d.set(UniqueId, id);
        // Set by the Transaction constructor.
        d.set(UrlencodedError, "0");

        let p = uri::parse_request_line(req.method.as_bytes(), &req.uri, &req.version);
        d.set(RequestMethod, uri::c_str(req.method.as_bytes()));
        d.set(RequestLine, p.request_line);
        d.set(RequestProtocol, p.protocol);
        d.set(PathInfo, p.filename.clone());
        d.set(RequestFilename, p.filename);
        if let Some(b) = p.basename {
            d.set(RequestBasename, b);
        }
        d.set(RequestUri, p.uri);
        d.set(RequestUriRaw, p.uri_raw);
        if let Some(q) = p.query {
            if !q.is_empty() {
                d.extract_urlencoded(&q, ArgOrigin::Get);
            }
            d.set(QueryString, q);
        }

        for (k, v) in &req.headers {
            d.add_header(k, v);
        }
        d
    }

    /// `Transaction::addRequestHeader`: every occurrence is kept, in order.
    fn add_header(&mut self, k: &str, v: &str) {
        use Variable::*;
        self.headers.push(k.as_bytes().to_vec(), v.as_bytes().to_vec());
        if k.eq_ignore_ascii_case("authorization") {
            let t = v.split(' ').next().unwrap_or("");
            self.set(AuthType, t);
        } else if k.eq_ignore_ascii_case("cookie") {
            for (ck, cv) in cookies::parse_cookies(v.as_bytes()) {
                self.cookies.push(ck, cv);
            }
        } else if k.eq_ignore_ascii_case("content-type") {
            // A prefix test on the lower-cased value; a later Content-Type that matches
            // neither leaves the earlier choice in place.
            let l = v.to_ascii_lowercase();
            if l.starts_with("multipart/form-data") {
                self.body_type = Some(BodyProcessor::Multipart);
                self.set(ReqbodyProcessor, "MULTIPART");
            }
            if l.starts_with("application/x-www-form-urlencoded") {
                self.body_type = Some(BodyProcessor::Urlencoded);
                self.set(ReqbodyProcessor, "URLENCODED");
            }
        } else if k.eq_ignore_ascii_case("host") {
            let host = v.split(':').next().unwrap_or("");
            self.set(ServerName, host);
        }
    }

    /// `ctl:requestBodyProcessor=...` in phase 1: takes effect in [`Self::process_body`] and
    /// shows in REQBODY_PROCESSOR at once.
    pub fn set_body_processor(&mut self, p: BodyProcessor) {
        match p {
            // v3's URLENCODED ctl changes the body *type*; XML and JSON set the processor,
            // which wins over any type.
            BodyProcessor::Urlencoded | BodyProcessor::Multipart => self.body_type = Some(p),
            BodyProcessor::Xml | BodyProcessor::Json => self.body_processor = Some(p),
        }
        self.set(Variable::ReqbodyProcessor, p.name());
    }

    /// `ctl:requestBodyAccess=on|off`.
    pub fn set_request_body_access(&mut self, on: bool) {
        self.body_access_override = Some(on);
    }

    /// Whether phase 2 rules run at all: v3 returns from `processRequestBody` before
    /// evaluating phase 2 when request body access is off (after running the body
    /// processor, so ARGS_POST is still filled for later phases).
    pub fn request_body_phase_runs(&self) -> bool {
        self.body_access_override.unwrap_or(self.cfg.request_body_access)
    }

    /// The body limit outcome, once [`Self::process_body`] ran.
    pub fn body_limit(&self) -> Option<limits::BodyLimit> {
        self.body_limit
    }

    /// The status v3 intervenes with because of `SecRequestBodyLimit` (403 in v3.0.9),
    /// when the action is Reject. The evaluator applies it only when the rule engine is On.
    pub fn body_limit_intervention(&self) -> Option<u16> {
        self.body_limit.and_then(|l| l.reject_status)
    }

    /// `Transaction::addArgument`: refuses beyond SecArgumentsLimit.
    fn add_argument(&mut self, origin: ArgOrigin, key: Vec<u8>, value: Vec<u8>) -> bool {
        if let Some(limit) = self.cfg.arguments_limit {
            if self.args.elems.len() as u64 >= limit {
                return false;
            }
        }
        self.combined_size += (key.len() + value.len()) as u64;
        match origin {
            ArgOrigin::Get => self.args_get.push(key.clone(), value.clone()),
            ArgOrigin::Post => self.args_post.push(key.clone(), value.clone()),
            ArgOrigin::Json => {}
        }
        self.args.push(key, value);
        // v3 keeps the size in a double and prints it with std::to_string: "60.000000"
        // (observed with libmodsecurity3 3.0.9).
        let s = format!("{:.6}", self.combined_size as f64);
        self.set(Variable::ArgsCombinedSize, s);
        true
    }

    fn extract_urlencoded(&mut self, buf: &[u8], origin: ArgOrigin) {
        let (pairs, invalid) = urlencoded::parse_urlencoded(buf, self.cfg.argument_separator);
        if invalid {
            self.set(Variable::UrlencodedError, "1");
        }
        for p in pairs {
            // v3 keeps calling addArgument after the limit; each call is refused.
            self.add_argument(origin, p.name, p.value);
        }
    }

    fn body_error(&mut self, msg: String, processor_too: bool) {
        use Variable::*;
        self.set(ReqbodyError, "1");
        self.set(ReqbodyErrorMsg, msg.clone());
        if processor_too {
            self.set(ReqbodyProcessorError, "1");
            self.set(ReqbodyProcessorErrorMsg, msg);
        }
    }

    fn body_ok(&mut self) {
        self.set(Variable::ReqbodyError, "0");
        self.set(Variable::ReqbodyProcessorError, "0");
    }

    /// Phase 2 (`Transaction::processRequestBody`): limits, then the body processor.
    /// `processor` is what `ctl:requestBodyProcessor` chose, if not already passed to
    /// [`Self::set_body_processor`].
    pub fn process_body(&mut self, req: &Request, processor: Option<BodyProcessor>) {
        use Variable::*;
        if let Some(p) = processor {
            self.set_body_processor(p);
        }
        let lim = limits::apply_body_limit(
            req.body.len(),
            self.cfg.request_body_limit,
            self.cfg.request_body_limit_action,
        );
        self.body_limit = Some(lim);
        self.set(InboundDataError, if lim.exceeded { "1" } else { "0" });
        let body = &req.body[..lim.kept];

        let mut no_files_exceeded = false;
        if self.body_type == Some(BodyProcessor::Urlencoded) || self.body_processor.is_some() {
            if let Some(l) = self.cfg.request_body_no_files_limit {
                if body.len() as u64 > l {
                    self.set(ReqbodyError, "1");
                    self.set(
                        ReqbodyErrorMsg,
                        "Request body excluding files is bigger than the maximum expected.",
                    );
                    self.set(InboundDataError, "1");
                    no_files_exceeded = true;
                }
            }
        }

        if self.body_processor == Some(BodyProcessor::Xml) {
            if !no_files_exceeded {
                match xml::parse_xml(body) {
                    Ok(doc) => {
                        self.xml = Some(doc);
                        self.body_ok();
                    }
                    Err(e) => self.body_error(format!("XML parsing error: {e}"), true),
                }
            }
        } else if self.body_processor == Some(BodyProcessor::Json) {
            if !no_files_exceeded {
                let depth = self.cfg.json_depth_limit;
                let r = json::parse_json(body, depth, &mut |k, v| {
                    self.add_argument(ArgOrigin::Json, k, v)
                });
                match r {
                    // An empty body is not an error (v3 tests the body size).
                    Err(e) if !body.is_empty() => {
                        self.body_error(format!("JSON parsing error: {}", e.message()), true)
                    }
                    _ => self.body_ok(),
                }
            }
        } else if self.body_type == Some(BodyProcessor::Multipart) {
            self.run_multipart(req, body);
        } else if self.body_type == Some(BodyProcessor::Urlencoded) {
            if !no_files_exceeded {
                self.extract_urlencoded(body, ArgOrigin::Post);
            }
        } else {
            self.body_ok();
        }

        let access = self.body_access_override.unwrap_or(self.cfg.request_body_access);
        if access {
            // Written straight into the scalar arena (it holds the body).
            let full = &mut self.scalar_bytes;
            let start = full.len();
            for e in &self.headers.elems {
                full.extend_from_slice(&e.key);
                full.extend_from_slice(b": ");
                full.extend_from_slice(&e.value);
                full.push(b'\n');
            }
            full.extend_from_slice(b"\n\n");
            full.extend_from_slice(body);
            let end = full.len();
            if let Some(slot) = self.scalars.get_mut(FullRequest as usize) {
                *slot = Some((start, end));
            }
            self.set(FullRequestLength, (end - start).to_string());
            if !body.is_empty() {
                self.set(RequestBody, body);
                self.set(RequestBodyLength, body.len().to_string());
            }
        }
    }

    fn run_multipart(&mut self, req: &Request, body: &[u8]) {
        use Variable::*;
        let Some(ct) = req.header("content-type") else {
            self.body_ok();
            return;
        };
        let out = multipart::process_multipart(ct.as_bytes(), body);
        for (v, val) in out.vars {
            self.set(v, val);
        }
        for (name, line) in out.part_headers {
            self.part_headers.push(name, line);
        }
        for n in out.names {
            self.mp_names.push(n.clone(), n);
        }
        for n in out.filenames {
            self.mp_filenames.push(n.clone(), n);
        }
        let mut combined = 0u64;
        let mut any_file = false;
        for p in out.parts {
            match p.kind {
                // Multipart fields bypass addArgument: no SecArgumentsLimit, no
                // ARGS_COMBINED_SIZE (multipart.cc sets ARGS/ARGS_POST directly).
                multipart::PartKind::Field { value } => {
                    self.args.push(p.name.clone(), value.clone());
                    self.args_post.push(p.name, value);
                }
                multipart::PartKind::File { filename, size } => {
                    any_file = true;
                    combined += size;
                    self.files.push(p.name.clone(), filename);
                    self.files_names.push(p.name.clone(), p.name.clone());
                    self.files_sizes.push(p.name.clone(), size.to_string().into_bytes());
                    self.files_tmp_content.push(p.name, Vec::new());
                }
            }
        }
        if any_file {
            self.set(FilesCombinedSize, combined.to_string());
        }
        if let Some(e) = out.error {
            self.body_error(format!("Multipart parsing error: {e}"), true);
        } else if self.cfg.request_body_no_files_limit.is_some_and(|l| out.no_files_length > l) {
            self.set(ReqbodyError, "1");
            self.set(
                ReqbodyErrorMsg,
                "Request body excluding files is bigger than the maximum expected.",
            );
            self.set(InboundDataError, "1");
        } else {
            self.body_ok();
        }
    }

    fn coll(&self, var: Variable) -> Option<(&Coll, Option<&'static str>)> {
        use Variable::*;
        Some(match var {
            Args => (&self.args, None),
            ArgsGet => (&self.args_get, None),
            ArgsPost => (&self.args_post, None),
            ArgsNames => (&self.args, Some("ARGS_NAMES")),
            ArgsGetNames => (&self.args_get, Some("ARGS_GET_NAMES")),
            ArgsPostNames => (&self.args_post, Some("ARGS_POST_NAMES")),
            RequestHeaders => (&self.headers, None),
            RequestHeadersNames => (&self.headers, Some("REQUEST_HEADERS_NAMES")),
            RequestCookies => (&self.cookies, None),
            RequestCookiesNames => (&self.cookies, Some("REQUEST_COOKIES_NAMES")),
            Files => (&self.files, None),
            FilesNames => (&self.files_names, None),
            FilesSizes => (&self.files_sizes, None),
            FilesTmpContent => (&self.files_tmp_content, None),
            FilesTmpNames => (&self.files_tmp_names, None),
            MultipartPartHeaders => (&self.part_headers, None),
            MultipartName => (&self.mp_names, None),
            MultipartFilename => (&self.mp_filenames, None),
            _ => return None,
        })
    }

    /// Appends the elements of `var` picked by `selector` (None = all; a key is compared
    /// case-insensitively; a regex searches the key case-insensitively), in insertion order.
    /// Returns false if `var` is not a request variable. Scalars ignore the selector.
    pub fn collect<'a>(
        &'a self,
        var: Variable,
        selector: Option<&CompiledSelector>,
        out: &mut Vec<VarValue<'a>>,
    ) -> bool {
        self.for_each(var, selector, &mut |v| out.push(v))
    }

    /// [`RequestData::collect`] without a list: each value goes to `out` in turn.
    pub fn for_each<'a>(
        &'a self,
        var: Variable,
        selector: Option<&CompiledSelector>,
        out: &mut dyn FnMut(VarValue<'a>),
    ) -> bool {
        if let Some((c, names_var)) = self.coll(var) {
            for e in &c.elems {
                if selector.is_some_and(|s| !s.matches_key(&e.key)) {
                    continue;
                }
                match names_var {
                    None => out(VarValue {
                        name: Cow::Borrowed(e.name()),
                        value: Cow::Borrowed(&e.value),
                    }),
                    Some(nv) => out(VarValue {
                        name: if e.names_name().starts_with(nv) && e.names_name().len() > nv.len() {
                            Cow::Borrowed(e.names_name())
                        } else {
                            Cow::Owned(format!("{nv}:{}", String::from_utf8_lossy(&e.key)))
                        },
                        value: Cow::Borrowed(&e.key),
                    }),
                }
            }
            return true;
        }
        if var == Variable::Xml {
            match selector.map(|s| &s.kind) {
                Some(SelectorKind::Key(expr)) => {
                    if let Some(doc) = &self.xml {
                        let name = format!("XML:{expr}");
                        for v in doc.xpath(expr) {
                            out(VarValue { name: Cow::Owned(name.clone()), value: v });
                        }
                    }
                }
                Some(SelectorKind::Regex(_)) => {}
                // v3's XML_NoDictElement: a fixed placeholder, document or not, under an
                // empty name (observed with libmodsecurity3 3.0.9).
                None => out(VarValue {
                    name: Cow::Borrowed(""),
                    value: Cow::Borrowed(b"[XML document tree]"),
                }),
            }
            return true;
        }
        if is_request_scalar(var) {
            // All of these are v3 `AnchoredVariable`s, which always yield one value: the
            // empty string until something sets them.
            let v = self.scalar(var).unwrap_or(b"");
            out(VarValue { name: Cow::Borrowed(var.name()), value: Cow::Borrowed(v) });
            return true;
        }
        false
    }

    /// Number of elements, for `&VAR` (after the selector).
    pub fn count(&self, var: Variable, selector: Option<&CompiledSelector>) -> Option<usize> {
        let mut n = 0;
        self.for_each(var, selector, &mut |_| n += 1).then_some(n)
    }
}
