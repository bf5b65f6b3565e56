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

use crate::eval::sources::fold_hash;
use crate::ir::{ConfigDirective, LimitAction, Selector, Variable};
use crate::request::Request;
use std::borrow::Cow;

/// Default `SecRequestBodyJsonDepthLimit` in v3.0.9 (json.cc).
pub const DEFAULT_JSON_DEPTH_LIMIT: u64 = 10_000;

/// The configuration the request view depends on; the evaluator fills it from the rule
/// set's [`ConfigDirective`]s with [`TxnConfig::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `SecRequestBodyAccess`. Unset counts as On: v3.0.9's `processRequestBody` skips the
    /// request body phase only on an explicit `Off` (without `ctl:requestBodyAccess=on`), and
    /// runs it when the directive is absent unless a `ctl` turned it off.
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
    /// The `XML:` expressions the rule set's targets name (besides `/*` and `//@*`), all
    /// evaluated on the one parse of the body ([`xml::parse_xml`]). Shared: the request
    /// view copies this configuration per transaction.
    pub xml_paths: std::sync::Arc<[String]>,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            request_body_access: true,
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
            xml_paths: Default::default(),
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
            xml_paths: std::sync::Arc::clone(&self.xml_paths),
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

impl CompiledSelector {
    /// The case-blind hash of a literal key; `None` for a regex.
    fn literal_key_hash(&self) -> Option<u64> {
        match self.kind {
            SelectorKind::Key(_, h) => Some(h),
            SelectorKind::Regex(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
enum SelectorKind {
    /// Compared ASCII case-insensitively (v3's `MyEqual`); for XML, the XPath expression.
    /// With the key's case-blind hash ([`crate::eval::sources::fold_hash`]), which an element
    /// must share to be compared at all ([`Elem::key_hash`]).
    Key(String, u64),
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
            Selector::Key(k) => SelectorKind::Key(k.clone(), fold_hash(k.as_bytes())),
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
            SelectorKind::Key(k, _) => k.as_bytes().eq_ignore_ascii_case(key),
            SelectorKind::Regex(KeyRegex::Bytes(re)) => re.is_match(key),
            SelectorKind::Regex(KeyRegex::Fancy(re)) => {
                re.is_match(&String::from_utf8_lossy(key)).unwrap_or(false)
            }
        }
    }
}

/// A range of bytes in a buffer: the request view keeps every value in one arena and hands
/// out these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The bytes of `buf` this span covers (a span made from `buf` always fits).
    #[inline]
    pub fn of(self, buf: &[u8]) -> &[u8] {
        &buf[self.start..self.end]
    }

    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Appends `b` to `buf` and returns where it went.
    pub fn push(buf: &mut Vec<u8>, b: &[u8]) -> Span {
        let start = buf.len();
        buf.extend_from_slice(b);
        Span::new(start, buf.len())
    }
}

/// One element of a collection: key and value in the byte arena, its MATCHED_VAR_NAME
/// (`ARGS:q`) followed by its name under the collection's `*_NAMES` variable
/// (`ARGS_NAMES:q`, empty when there is none) in the name arena, built once here rather than
/// by every rule that reads them. `names.0..names.1` is the first, `names.1..names.2` the
/// second. The ARGS and ARGS_GET (or ARGS_POST) elements of one argument share its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Elem {
    key: Span,
    value: Span,
    names: (usize, usize, usize),
    /// The key's case-blind hash: a literal key selector compares it first, so most keys
    /// are passed over without reading their bytes.
    key_hash: u64,
}

impl Elem {
    fn name(self, names: &str) -> &str {
        &names[self.names.0..self.names.1]
    }
    fn names_name(self, names: &str) -> &str {
        &names[self.names.1..self.names.2]
    }
}

/// The request view's collections, as indexes into `RequestData::colls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CollId {
    Args,
    ArgsGet,
    ArgsPost,
    Headers,
    Cookies,
    Files,
    FilesNames,
    FilesSizes,
    FilesTmpContent,
    FilesTmpNames,
    PartHeaders,
    MpNames,
    MpFilenames,
}

const COLLS: usize = 13;

impl CollId {
    fn var(self) -> Variable {
        use Variable::*;
        match self {
            CollId::Args => Args,
            CollId::ArgsGet => ArgsGet,
            CollId::ArgsPost => ArgsPost,
            CollId::Headers => RequestHeaders,
            CollId::Cookies => RequestCookies,
            CollId::Files => Files,
            CollId::FilesNames => FilesNames,
            CollId::FilesSizes => FilesSizes,
            CollId::FilesTmpContent => FilesTmpContent,
            CollId::FilesTmpNames => FilesTmpNames,
            CollId::PartHeaders => MultipartPartHeaders,
            CollId::MpNames => MultipartName,
            CollId::MpFilenames => MultipartFilename,
        }
    }
}

/// `String::from_utf8_lossy`, with faster tests first: most keys are ASCII, for which
/// `Utf8Chunks` costs about 200 instructions on a 20-byte key and `from_utf8`'s call and
/// set-up about 70 more than the inlined ASCII test (28 keys a bodiless GET, from the
/// request's elements and `setvar` keys).
#[inline]
pub(crate) fn utf8_lossy(b: &[u8]) -> Cow<'_, str> {
    if b.is_ascii() {
        // SAFETY: ASCII bytes are UTF-8.
        return Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(b) });
    }
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// `n` in decimal, written at the end of `buf` (20 bytes hold every `i64`).
pub(crate) fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// `format!("{:.6}", n as f64)`, as v3's `std::to_string` of a double prints a whole number,
/// without the formatting machinery for the sizes a request has.
fn write_fixed6(out: &mut Vec<u8>, n: u64) {
    match i64::try_from(n) {
        Ok(i) if n < 1 << 53 => {
            let mut buf = [0u8; 20];
            out.extend_from_slice(decimal(i, &mut buf));
            out.extend_from_slice(b".000000");
        }
        _ => out.extend_from_slice(format!("{:.6}", n as f64).as_bytes()),
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
    /// Every value and key, one after another: the request line's variables, headers,
    /// arguments, cookies, body. A value set again is appended again (a few
    /// body-processing flags are).
    bytes: Vec<u8>,
    /// The elements' names (see [`Elem`]).
    names: String,
    /// Per [`Variable`]: 1 + its index in `scalars` once set, else 0.
    scalar_slot: [u8; VARIABLES],
    /// Where each scalar set so far sits in `bytes` (at most one entry a variable).
    scalars: Vec<Span>,
    colls: [Vec<Elem>; COLLS],
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

const VARIABLES: usize = Variable::ALL.len();

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
    fn empty(cfg: &TxnConfig, bytes: usize, names: usize) -> Self {
        RequestData {
            cfg: cfg.request_side(),
            bytes: Vec::with_capacity(bytes),
            names: String::with_capacity(names),
            scalar_slot: [0; VARIABLES],
            // Phase 1 sets 15 to 18, a body a few more.
            scalars: Vec::with_capacity(24),
            colls: Default::default(),
            xml: None,
            combined_size: 0,
            body_type: None,
            body_processor: None,
            body_access_override: None,
            body_limit: None,
        }
    }

    /// Points `v` at `span` of the byte arena. Not inlined: its 20-odd callers in
    /// [`RequestData::new`] would each carry a copy, code a cold decision has to fetch.
    #[inline(never)]
    fn set_span(&mut self, v: Variable, span: Span) {
        let Some(slot) = self.scalar_slot.get_mut(v as usize) else { return };
        match *slot {
            0 => {
                // At most one entry a variable, so fewer than VARIABLES (< 255) in all.
                self.scalars.push(span);
                *slot = self.scalars.len() as u8;
            }
            i => self.scalars[usize::from(i) - 1] = span,
        }
    }

    fn set(&mut self, v: Variable, value: impl AsRef<[u8]>) {
        self.set_bytes(v, value.as_ref());
    }

    /// [`RequestData::set`] out of line, one copy for every caller (as `set_span`).
    #[inline(never)]
    fn set_bytes(&mut self, v: Variable, value: &[u8]) {
        let span = Span::push(&mut self.bytes, value);
        self.set_span(v, span);
    }

    /// Sets `v` to `n` in decimal (a length or a port: a `usize` always fits an `i64`, as no
    /// allocation holds more than `isize::MAX` bytes).
    fn set_decimal(&mut self, v: Variable, n: usize) {
        let mut digits = [0u8; 20];
        self.set(v, decimal(n as i64, &mut digits));
    }

    /// A scalar's value, if set.
    pub fn scalar(&self, v: Variable) -> Option<&[u8]> {
        let i = usize::from(*self.scalar_slot.get(v as usize)?).checked_sub(1)?;
        Some(self.scalars.get(i)?.of(&self.bytes))
    }

    /// Adds an element to a collection, its key and value already in the byte arena.
    fn push_elem(&mut self, c: CollId, key: Span, value: Span) {
        let k = utf8_lossy(key.of(&self.bytes));
        let var = c.var();
        let names = &mut self.names;
        let start = names.len();
        names.push_str(var.name());
        names.push(':');
        names.push_str(&k);
        let split = names.len();
        if let Some(nv) = names_variable(var) {
            names.push_str(nv);
            names.push(':');
            names.push_str(&k);
        }
        let names = (start, split, names.len());
        let key_hash = fold_hash(key.of(&self.bytes));
        self.colls[c as usize].push(Elem { key, value, names, key_hash });
    }

    /// Adds an element to a collection, copying its key and value into the arena.
    fn push(&mut self, c: CollId, key: &[u8], value: &[u8]) {
        let key = Span::push(&mut self.bytes, key);
        let value = Span::push(&mut self.bytes, value);
        self.push_elem(c, key, value);
    }

    /// The names of every element, one after another: [`VarValue::name`] borrows from
    /// here for collection elements.
    pub(crate) fn names_arena(&self) -> &str {
        &self.names
    }

    /// Room for what phase 1 usually writes, so the arenas are not grown and copied on the
    /// way: the request line's variables hold the URI about four times, each header its
    /// name and value once; a header's two element names take its name twice and 38 bytes,
    /// an argument's four take about its name four times. (bytes, names)
    fn room(req: &Request) -> (usize, usize) {
        let (mut header_bytes, mut name_bytes) = (0, 0);
        for (k, v) in &req.headers {
            header_bytes += k.len() + v.len();
            name_bytes += 2 * k.len() + 38;
        }
        (4 * req.uri.len() + header_bytes + req.id.len() + 128, name_bytes + 4 * req.uri.len() + 64)
    }

    /// Builds the phase-1 variables (connection, request line, ARGS_GET, headers, cookies).
    pub fn new(req: &Request, cfg: &TxnConfig) -> RequestData {
        let (bytes, names) = RequestData::room(req);
        let mut d = RequestData::empty(cfg, bytes, names);
        d.load(req);
        d
    }

    /// [`RequestData::new`] in the buffers of a view an earlier transaction used: every
    /// field starts over (the destructuring names each one, so a new field cannot be
    /// missed), the allocations stay. The evaluator keeps one view a thread
    /// ([`Self::worth_keeping`]): making and dropping one on every transaction cost code
    /// lines a cold decision had to fetch.
    pub(crate) fn refill(&mut self, req: &Request, cfg: &TxnConfig) {
        let RequestData {
            cfg: c,
            bytes,
            names,
            scalar_slot,
            scalars,
            colls,
            xml,
            combined_size,
            body_type,
            body_processor,
            body_access_override,
            body_limit,
        } = self;
        *c = cfg.request_side();
        let (want_bytes, want_names) = RequestData::room(req);
        bytes.clear();
        bytes.reserve(want_bytes);
        names.clear();
        names.reserve(want_names);
        *scalar_slot = [0; VARIABLES];
        scalars.clear();
        colls.iter_mut().for_each(Vec::clear);
        *xml = None;
        *combined_size = 0;
        *body_type = None;
        *body_processor = None;
        *body_access_override = None;
        *body_limit = None;
        self.load(req);
    }

    /// Whether this view's buffers are small enough to keep for the next transaction (a
    /// huge request's are let go).
    pub(crate) fn worth_keeping(&self) -> bool {
        const KEEP: usize = 1 << 20;
        self.bytes.capacity() <= KEEP
            && self.names.capacity() <= KEEP
            && self.colls.iter().all(|c| c.capacity() <= 4096)
    }

    /// The phase-1 variables of `req`, into an empty view.
    fn load(&mut self, req: &Request) {
        use Variable::*;
        let d = self;
        d.colls[CollId::Headers as usize].reserve_exact(req.headers.len());
        d.set(RemoteAddr, req.client_ip.as_bytes());
        d.set_decimal(RemotePort, req.client_port.into());
        d.set(ServerAddr, req.server_ip.as_bytes());
        d.set_decimal(ServerPort, req.server_port.into());
        // The peer creates its transaction with the corpus id, so UNIQUE_ID is that id.
        if req.id.is_empty() {
            let h = crate::transform::hash::sha1_digest(&req.uri);
            let id = h.iter().take(10).map(|b| format!("{b:02x}")).collect::<String>();
            d.set(UniqueId, id);
        } else {
            d.set(UniqueId, &req.id);
        }
        // Set by the Transaction constructor.
        d.set(UrlencodedError, "0");

        d.set(RequestMethod, uri::c_str(req.method.as_bytes()));
        let p =
            uri::parse_request_line(req.method.as_bytes(), &req.uri, &req.version, &mut d.bytes);
        d.set_span(RequestLine, p.request_line);
        d.set_span(RequestProtocol, p.protocol);
        d.set_span(PathInfo, p.filename);
        d.set_span(RequestFilename, p.filename);
        if let Some(b) = p.basename {
            d.set_span(RequestBasename, b);
        }
        d.set_span(RequestUri, p.uri);
        d.set_span(RequestUriRaw, p.uri_raw);
        if let Some(q) = p.query {
            if !q.is_empty() {
                d.extract_urlencoded(q, ArgOrigin::Get);
            }
            d.set(QueryString, q);
        }

        for (k, v) in &req.headers {
            d.add_header(k, v);
        }
    }

    /// `Transaction::addRequestHeader`: every occurrence is kept, in order.
    fn add_header(&mut self, k: &str, v: &str) {
        use Variable::*;
        self.push(CollId::Headers, k.as_bytes(), v.as_bytes());
        if k.eq_ignore_ascii_case("authorization") {
            let t = v.split(' ').next().unwrap_or("");
            self.set(AuthType, t);
        } else if k.eq_ignore_ascii_case("cookie") {
            cookies::parse_cookies(v.as_bytes(), |ck, cv| self.push(CollId::Cookies, ck, cv));
        } else if k.eq_ignore_ascii_case("content-type") {
            // A prefix test on the lower-cased value; a later Content-Type that matches
            // neither leaves the earlier choice in place.
            let v = v.as_bytes();
            let starts =
                |p: &str| v.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes()));
            if starts("multipart/form-data") {
                self.body_type = Some(BodyProcessor::Multipart);
                self.set(ReqbodyProcessor, "MULTIPART");
            }
            if starts("application/x-www-form-urlencoded") {
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

    /// `Transaction::addArgument`: refuses beyond SecArgumentsLimit. The key and value are
    /// already in the byte arena.
    fn add_argument(&mut self, origin: ArgOrigin, key: Span, value: Span) -> bool {
        if let Some(limit) = self.cfg.arguments_limit {
            if self.colls[CollId::Args as usize].len() as u64 >= limit {
                return false;
            }
        }
        self.combined_size += (key.len() + value.len()) as u64;
        match origin {
            ArgOrigin::Get => self.push_elem(CollId::ArgsGet, key, value),
            ArgOrigin::Post => self.push_elem(CollId::ArgsPost, key, value),
            ArgOrigin::Json => {}
        }
        self.push_elem(CollId::Args, key, value);
        // v3 keeps the size in a double and prints it with std::to_string: "60.000000"
        // (observed with libmodsecurity3 3.0.9).
        let start = self.bytes.len();
        write_fixed6(&mut self.bytes, self.combined_size);
        let span = Span::new(start, self.bytes.len());
        self.set_span(Variable::ArgsCombinedSize, span);
        true
    }

    fn extract_urlencoded(&mut self, buf: &[u8], origin: ArgOrigin) {
        let mut invalid = false;
        for field in urlencoded::split_fields(buf, self.cfg.argument_separator) {
            let (name, value, bad) = urlencoded::decode_field(field, &mut self.bytes);
            invalid |= bad;
            // v3 keeps calling addArgument after the limit; each call is refused.
            self.add_argument(origin, name, value);
        }
        if invalid {
            self.set(Variable::UrlencodedError, "1");
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
                match xml::parse_xml(body, &self.cfg.xml_paths) {
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
                    let k = Span::push(&mut self.bytes, &k);
                    let v = Span::push(&mut self.bytes, &v);
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
            // Written straight into the arena (it holds the body).
            let full = &mut self.bytes;
            let start = full.len();
            for e in &self.colls[CollId::Headers as usize] {
                full.extend_from_within(e.key.start..e.key.end);
                full.extend_from_slice(b": ");
                full.extend_from_within(e.value.start..e.value.end);
                full.push(b'\n');
            }
            full.extend_from_slice(b"\n\n");
            full.extend_from_slice(body);
            let end = full.len();
            self.set_span(FullRequest, Span::new(start, end));
            self.set_decimal(FullRequestLength, end - start);
            if !body.is_empty() {
                self.set(RequestBody, body);
                self.set_decimal(RequestBodyLength, body.len());
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
        for (name, line) in &out.part_headers {
            self.push(CollId::PartHeaders, name, line);
        }
        for n in &out.names {
            let n = Span::push(&mut self.bytes, n);
            self.push_elem(CollId::MpNames, n, n);
        }
        for n in &out.filenames {
            let n = Span::push(&mut self.bytes, n);
            self.push_elem(CollId::MpFilenames, n, n);
        }
        let mut combined = 0u64;
        let mut any_file = false;
        for p in out.parts {
            match p.kind {
                // Multipart fields bypass addArgument: no SecArgumentsLimit, no
                // ARGS_COMBINED_SIZE (multipart.cc sets ARGS/ARGS_POST directly).
                multipart::PartKind::Field { value } => {
                    let name = Span::push(&mut self.bytes, &p.name);
                    let value = Span::push(&mut self.bytes, &value);
                    self.push_elem(CollId::Args, name, value);
                    self.push_elem(CollId::ArgsPost, name, value);
                }
                multipart::PartKind::File { filename, size } => {
                    any_file = true;
                    combined += size;
                    let name = Span::push(&mut self.bytes, &p.name);
                    let filename = Span::push(&mut self.bytes, &filename);
                    self.push_elem(CollId::Files, name, filename);
                    self.push_elem(CollId::FilesNames, name, name);
                    let mut digits = [0u8; 20];
                    let size = Span::push(&mut self.bytes, decimal(size as i64, &mut digits));
                    self.push_elem(CollId::FilesSizes, name, size);
                    let empty = Span::new(self.bytes.len(), self.bytes.len());
                    self.push_elem(CollId::FilesTmpContent, name, empty);
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

    fn coll(&self, var: Variable) -> Option<(CollId, Option<&'static str>)> {
        use Variable::*;
        Some(match var {
            Args => (CollId::Args, None),
            ArgsGet => (CollId::ArgsGet, None),
            ArgsPost => (CollId::ArgsPost, None),
            ArgsNames => (CollId::Args, Some("ARGS_NAMES")),
            ArgsGetNames => (CollId::ArgsGet, Some("ARGS_GET_NAMES")),
            ArgsPostNames => (CollId::ArgsPost, Some("ARGS_POST_NAMES")),
            RequestHeaders => (CollId::Headers, None),
            RequestHeadersNames => (CollId::Headers, Some("REQUEST_HEADERS_NAMES")),
            RequestCookies => (CollId::Cookies, None),
            RequestCookiesNames => (CollId::Cookies, Some("REQUEST_COOKIES_NAMES")),
            Files => (CollId::Files, None),
            FilesNames => (CollId::FilesNames, None),
            FilesSizes => (CollId::FilesSizes, None),
            FilesTmpContent => (CollId::FilesTmpContent, None),
            FilesTmpNames => (CollId::FilesTmpNames, None),
            MultipartPartHeaders => (CollId::PartHeaders, None),
            MultipartName => (CollId::MpNames, None),
            MultipartFilename => (CollId::MpFilenames, None),
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
            let (bytes, names) = (&self.bytes[..], &self.names[..]);
            // v3 keeps these collections in an `unordered_multimap` and reads a literal key
            // through `equal_range`, which yields equal keys newest first: `ARGS:x` on
            // `?x=1&x=2` reads 2 then 1 (observed with libmodsecurity3, for ARGS, ARGS_GET,
            // ARGS_POST, REQUEST_HEADERS and REQUEST_COOKIES). The whole collection and a
            // regex selector read in arrival order.
            let elems = &self.colls[c as usize];
            let emit = |e: &Elem, out: &mut dyn FnMut(VarValue<'a>)| {
                let key = e.key.of(bytes);
                match names_var {
                    None => out(VarValue {
                        name: Cow::Borrowed(e.name(names)),
                        value: Cow::Borrowed(e.value.of(bytes)),
                    }),
                    Some(nv) => out(VarValue {
                        name: match e.names_name(names) {
                            n if n.starts_with(nv) && n.len() > nv.len() => Cow::Borrowed(n),
                            _ => Cow::Owned(format!("{nv}:{}", String::from_utf8_lossy(key))),
                        },
                        value: Cow::Borrowed(key),
                    }),
                }
            };
            match selector.and_then(|s| Some((s, s.literal_key_hash()?))) {
                None => {
                    for e in elems {
                        if selector.is_some_and(|s| !s.matches_key(e.key.of(bytes))) {
                            continue;
                        }
                        emit(e, out);
                    }
                }
                // Most literal keys match once: one pass finds it, and only a repeated key
                // takes the second, backwards.
                Some((s, h)) => {
                    let selected = |e: &Elem| e.key_hash == h && s.matches_key(e.key.of(bytes));
                    let (mut hits, mut at) = (0usize, 0usize);
                    for (i, e) in elems.iter().enumerate() {
                        if selected(e) {
                            hits += 1;
                            at = i;
                        }
                    }
                    match hits {
                        0 => {}
                        1 => emit(&elems[at], out),
                        _ => elems.iter().rev().filter(|e| selected(e)).for_each(|e| emit(e, out)),
                    }
                }
            }
            return true;
        }
        if var == Variable::Xml {
            match selector.map(|s| &s.kind) {
                Some(SelectorKind::Key(expr, _)) => {
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

#[cfg(test)]
mod decimal_tests {
    proptest::proptest! {
        /// The digits a setvar's `+=`/`-=` writes are `to_string`'s, for every `i64`.
        #[test]
        fn decimal_is_to_string(n in proptest::num::i64::ANY) {
            let mut buf = [0u8; 20];
            let want = n.to_string();
            proptest::prop_assert_eq!(super::decimal(n, &mut buf), want.as_bytes());
        }

        /// ARGS_COMBINED_SIZE is printed as `std::to_string` of a double prints it.
        #[test]
        fn fixed6_is_format_of_the_double(n in proptest::num::u64::ANY) {
            let mut out = Vec::new();
            super::write_fixed6(&mut out, n);
            proptest::prop_assert_eq!(out, format!("{:.6}", n as f64).into_bytes());
        }
    }

    #[test]
    fn fixed6_is_format() {
        for n in [0u64, 1, 60, 999_999, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, u64::MAX] {
            let mut out = b"x".to_vec();
            super::write_fixed6(&mut out, n);
            assert_eq!(out[1..], *format!("{:.6}", n as f64).as_bytes(), "{n}");
        }
    }

    #[test]
    fn decimal_at_the_edges() {
        for n in [0, 1, -1, 9, 10, -10, i64::MAX, i64::MIN, i64::MIN + 1] {
            let mut buf = [0u8; 20];
            assert_eq!(super::decimal(n, &mut buf), n.to_string().as_bytes(), "{n}");
        }
    }
}

#[cfg(test)]
mod refill_tests {
    use super::{BodyProcessor, RequestData, TxnConfig};
    use crate::request::Request;

    fn req(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            id: format!("r-{uri}"),
            method: method.into(),
            uri: uri.as_bytes().to_vec(),
            headers: headers.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            body: body.as_bytes().to_vec(),
            client_ip: "1.2.3.4".into(),
            client_port: 1234,
            server_ip: "5.6.7.8".into(),
            server_port: 80,
            ..Default::default()
        }
    }

    /// A view refilled after any other request, through its body phase and the `ctl`
    /// switches, holds what a new view of the request holds, field by field.
    #[test]
    fn a_refilled_view_is_a_new_one() {
        let cfg = TxnConfig { request_body_access: true, ..Default::default() };
        let form = ("Content-Type", "application/x-www-form-urlencoded");
        let xml = ("Content-Type", "text/xml");
        let json = ("Content-Type", "application/json");
        let requests = [
            req("GET", "/a/b.php?x=1&y=%3Cz%3E", &[("Host", "h"), ("Cookie", "s=1; t=2")], ""),
            req("POST", "/f", &[("Host", "h"), form], "a=1&b=2&a=3"),
            req("POST", "/x", &[xml], "<a><b>t</b></a>"),
            req("POST", "/j?q", &[json], r#"{"k":[1,{"m":"v"}]}"#),
            req("POST", "/big", &[form], &"v=".repeat(3000)),
            req("GET", "/", &[], ""),
        ];
        for (i, first) in requests.iter().enumerate() {
            for (j, next) in requests.iter().enumerate() {
                let mut used = RequestData::new(first, &cfg);
                used.process_body(first, (i == 3).then_some(BodyProcessor::Json));
                used.set_request_body_access(i % 2 == 0);
                used.refill(next, &cfg);
                let mut fresh = RequestData::new(next, &cfg);
                assert_eq!(format!("{used:?}"), format!("{fresh:?}"), "{i} then {j}");
                let p = (j == 3).then_some(BodyProcessor::Json);
                used.process_body(next, p);
                fresh.process_body(next, p);
                assert_eq!(format!("{used:?}"), format!("{fresh:?}"), "{i} then {j}, body");
            }
        }
    }
}
