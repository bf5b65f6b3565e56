//! Operators: the test a rule applies to each (transformed) variable value.
//!
//! Data flow: `ir::OperatorKind` -> [`CompiledOperator::compile`] (regexes, phrase sets, IP
//! sets, byte tables and numbers are built once when the argument has no macros) ->
//! [`CompiledOperator::matches`] per value -> bool (+ TX.0.. captures). The evaluator applies
//! the rule's negation flag itself. Both the native evaluator and the Lua runtime call this
//! API, so every semantic decision lives here, one module per operator family:
//!
//! | module | operators |
//! |---|---|
//! | [`rx`] | `@rx` (PCRE -> `regex`, fallback `fancy-regex`) |
//! | [`fast`] | literal search and prefilter in front of an `@rx` regex ([`crate::opt`]) |
//! | [`pm`] | `@pm`, `@pmFromFile` |
//! | [`ipmatch`] | `@ipMatch`, `@ipMatchFromFile` |
//! | [`strings`] | `@streq @beginsWith @endsWith @contains @containsWord @within @strmatch` |
//! | [`numeric`] | `@eq @ge @gt @le @lt` |
//! | [`validate`] | `@validateByteRange @validateUrlEncoding @validateUtf8Encoding` |
//! | [`verify`] | `@verifyCC @verifyCPF @verifySSN` |
//! | [`libinjection`] | `@detectSQLi @detectXSS` |
//!
//! Offline operators (no network, no databases), with deterministic answers:
//! - `@rbl` never finds the address listed (v3 answers false when the DNS lookup fails);
//! - `@geoLookup` finds nothing (v3 answers false without `SecGeoLookupDb`);
//! - `@gsbLookup` and `@validateHash` match everything: v3.0.9 implements both as
//!   `return true` (gsblookup.cc, validate_hash.cc).
//!
//! Refused with [`OperatorErrorKind::Unsupported`], because ModSecurity itself needs external
//! resources for them: `@validateDTD`, `@validateSchema` (libxml2 and the schema file),
//! `@inspectFile` (runs an external script), `@fuzzyHash` (ssdeep and a hash file).

pub mod fast;
pub mod ipmatch;
pub mod libinjection;
pub mod numeric;
pub mod pm;
pub mod rx;
pub mod strings;
pub mod validate;
pub mod verify;

use crate::ir::{MacroString, OperatorKind};
use numeric::NumOp;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub use rx::RxMatcher;

/// TX.0, TX.1, ... of an operator's last match. A transaction keeps one across requests (in
/// its pooled scratch), and the group buffers stay with it: a capturing rule that matches on
/// every request, as CRS's initialisation rules do, refills them instead of allocating one
/// vector per group per match.
#[derive(Debug, Clone, Default)]
pub struct Captures {
    bufs: Vec<Vec<u8>>,
    len: usize,
}

impl Captures {
    /// A buffer grown past this by one large capture is not kept for the next.
    const KEEP_MAX: usize = 16 * 1024;

    pub fn new() -> Captures {
        Captures::default()
    }

    /// No groups (the buffers are kept).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends the next group.
    pub fn push(&mut self, bytes: &[u8]) {
        match self.bufs.get_mut(self.len) {
            Some(b) if b.capacity() <= Self::KEEP_MAX => {
                b.clear();
                b.extend_from_slice(bytes);
            }
            Some(b) => *b = bytes.to_vec(),
            None => self.bufs.push(bytes.to_vec()),
        }
        self.len += 1;
    }

    /// Lets go of the buffers one large capture grew past [`Captures::KEEP_MAX`], as a
    /// pooled scratch does with its other buffers before the next transaction.
    pub fn trim(&mut self) {
        self.bufs.retain(|b| b.capacity() <= Self::KEEP_MAX);
        self.len = 0;
    }

    /// Only `bytes`, as TX.0.
    pub fn set_one(&mut self, bytes: &[u8]) {
        self.clear();
        self.push(bytes);
    }

    /// The groups, TX.0 first.
    pub fn groups(&self) -> &[Vec<u8>] {
        &self.bufs[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A regex hit the backtracking limit (ModSecurity: PCRE's match limit; the operator then
/// does not match and MSC_PCRE_LIMITS_EXCEEDED is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("regex match limit exceeded")]
pub struct MatchLimitExceeded;

/// An operator that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("@{operator}: {kind}")]
pub struct OperatorError {
    /// Operator name as in SecLang (`rx`, `pm`, ...).
    pub operator: &'static str,
    pub kind: OperatorErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorErrorKind {
    /// The pattern is not valid PCRE, or uses a PCRE feature neither engine has.
    #[error("bad regular expression {pattern:?}: {error}")]
    Regex { pattern: String, error: String },
    /// A phrase list or IP list that cannot be built.
    #[error("{0}")]
    BadArgument(String),
    /// ModSecurity needs an external resource for this operator.
    #[error("unsupported operator {0} (needs external resources)")]
    Unsupported(&'static str),
}

/// Operators on a literal string argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrOp {
    StrEq,
    BeginsWith,
    EndsWith,
    Contains,
    ContainsWord,
    StrMatch,
}

#[derive(Debug)]
enum Op {
    /// `None`: the pattern holds macros and is compiled per call (the last expansion is kept:
    /// it is usually the same every time). A literal empty pattern is [`Op::RxEmpty`].
    Rx(Option<RxMatcher>),
    /// Literal empty `@rx`: v3 answers true before running PCRE, setting no capture.
    RxEmpty,
    Pm(pm::PhraseMatcher),
    Ip(ipmatch::IpSet),
    /// Literal argument (empty when it holds macros: then the expanded one is used).
    Str(StrOp, Vec<u8>),
    /// `@within`: the literal argument prepared, or (with macros) the last expanded argument
    /// of 64 bytes or more, prepared (CRS's lists come from TX variables set once, so the
    /// expansion is the same on every call).
    Within(Option<strings::Haystack>, Mutex<Option<strings::Haystack>>),
    /// Parsed literal argument, or `None` with macros.
    Num(NumOp, Option<i64>),
    Sqli,
    Xss,
    ByteRange(validate::ByteRanges),
    UrlEncoding,
    Utf8Encoding,
    VerifyCc(RxMatcher),
    VerifyCpf(RxMatcher),
    VerifySsn(RxMatcher),
    InList(HashSet<Vec<u8>>),
    Const(bool),
}

/// How many expanded `@rx` patterns an operator keeps compiled. A macro that reads the
/// request (`@rx %{REQUEST_HEADERS.host}`) expands differently from one request to the
/// next, but to a few values over and over (a site's host names); compiling a pattern takes
/// 150-350 µs here, against a few µs for PCRE in ModSecurity, so each one missed costs more
/// than a whole CRS decision.
pub const EXPANSIONS_KEPT: usize = 8;

/// Longer expansions are compiled for the call and not kept: the cache's memory stays
/// bounded whatever a request holds.
const EXPANDED_PATTERN_KEPT: usize = 4096;

/// An operator ready to run.
#[derive(Debug)]
pub struct CompiledOperator {
    op: Op,
    /// `@rx` with macros: the most recently used expanded patterns (at most
    /// [`EXPANSIONS_KEPT`], latest last) and their compiled forms.
    last_expansion: Mutex<Vec<(Vec<u8>, Arc<RxMatcher>)>>,
    name: &'static str,
    /// The argument as written, for reports.
    arg: Option<String>,
    needs_expansion: bool,
    /// Literal `@rx`: its literal search and prefilter ([`fast`]), when it has either.
    fast: Option<Box<fast::FastRx>>,
}

fn regex_err(name: &'static str, pattern: &str, e: rx::RxError) -> OperatorError {
    OperatorError {
        operator: name,
        kind: OperatorErrorKind::Regex { pattern: pattern.to_string(), error: e.to_string() },
    }
}

impl CompiledOperator {
    /// Compiles an operator (without its negation flag: the evaluator applies
    /// `Operator::negated`). Arguments without macros are compiled once here; arguments with
    /// macros (`MacroString::has_macros`) are compiled per call from the expanded text.
    pub fn compile(kind: &OperatorKind) -> Result<CompiledOperator, OperatorError> {
        let name = operator_name(kind);
        let simple = |op: Op| CompiledOperator {
            op,
            last_expansion: Mutex::new(Vec::new()),
            name,
            arg: None,
            needs_expansion: false,
            fast: None,
        };
        // An operator whose argument may hold macros (expanded per call when it does).
        let with_arg = |op: Op, m: &MacroString| CompiledOperator {
            last_expansion: Mutex::new(Vec::new()),
            op,
            name,
            arg: Some(m.to_string()),
            needs_expansion: m.has_macros(),
            fast: None,
        };
        let with_string = |op: StrOp, m: &MacroString| {
            let lit = m.as_literal().map(|s| s.as_bytes().to_vec()).unwrap_or_default();
            with_arg(Op::Str(op, lit), m)
        };
        let with_number = |op: NumOp, m: &MacroString| {
            with_arg(Op::Num(op, m.as_literal().map(|s| numeric::parse(op, s.as_bytes()))), m)
        };
        let with_regex = |make: fn(RxMatcher) -> Op, pattern: &str| {
            let re = RxMatcher::new(pattern).map_err(|e| regex_err(name, pattern, e))?;
            Ok::<_, OperatorError>(CompiledOperator {
                last_expansion: Mutex::new(Vec::new()),
                op: make(re),
                name,
                arg: Some(pattern.to_string()),
                needs_expansion: false,
                fast: None,
            })
        };
        let bad =
            |e: String| OperatorError { operator: name, kind: OperatorErrorKind::BadArgument(e) };
        Ok(match kind {
            OperatorKind::Rx(m) => match m.as_literal() {
                Some("") => CompiledOperator { arg: Some(String::new()), ..simple(Op::RxEmpty) },
                Some(p) => {
                    let re = RxMatcher::new(p).map_err(|e| regex_err(name, p, e))?;
                    CompiledOperator {
                        arg: Some(p.to_string()),
                        fast: fast::FastRx::build(p, fast::RxOptimisations::DEFAULT).map(Box::new),
                        ..simple(Op::Rx(Some(re)))
                    }
                }
                None => CompiledOperator {
                    last_expansion: Mutex::new(Vec::new()),
                    op: Op::Rx(None),
                    name,
                    arg: Some(m.to_string()),
                    needs_expansion: true,
                    fast: None,
                },
            },
            OperatorKind::Pm(phrases) => {
                simple(Op::Pm(pm::PhraseMatcher::new(phrases).map_err(bad)?))
            }
            OperatorKind::PmFromFile(f) => CompiledOperator {
                arg: Some(f.path.clone()),
                ..simple(Op::Pm(pm::PhraseMatcher::new(&f.entries).map_err(bad)?))
            },
            OperatorKind::IpMatch(items) => simple(Op::Ip(
                ipmatch::IpSet::parse(items.iter().map(String::as_str)).map_err(bad)?,
            )),
            OperatorKind::IpMatchFromFile(f) => CompiledOperator {
                arg: Some(f.path.clone()),
                ..simple(Op::Ip(
                    ipmatch::IpSet::parse(f.entries.iter().map(String::as_str)).map_err(bad)?,
                ))
            },
            OperatorKind::Eq(m) => with_number(NumOp::Eq, m),
            OperatorKind::Ge(m) => with_number(NumOp::Ge, m),
            OperatorKind::Gt(m) => with_number(NumOp::Gt, m),
            OperatorKind::Le(m) => with_number(NumOp::Le, m),
            OperatorKind::Lt(m) => with_number(NumOp::Lt, m),
            OperatorKind::StrEq(m) => with_string(StrOp::StrEq, m),
            OperatorKind::StrMatch(m) => with_string(StrOp::StrMatch, m),
            OperatorKind::BeginsWith(m) => with_string(StrOp::BeginsWith, m),
            OperatorKind::EndsWith(m) => with_string(StrOp::EndsWith, m),
            OperatorKind::Contains(m) => with_string(StrOp::Contains, m),
            OperatorKind::ContainsWord(m) => with_string(StrOp::ContainsWord, m),
            OperatorKind::Within(m) => with_arg(
                Op::Within(
                    m.as_literal().map(|s| strings::Haystack::new(s.as_bytes())),
                    Mutex::new(None),
                ),
                m,
            ),
            // The detector's library is loaded here, with the rule set, rather than by the
            // first request that reaches one of these rules: the load (libmodsecurity3's
            // dlopen and C++ initialisers, about 40 ms) would land in that request's time and
            // in that rule's row of a per-rule profile.
            OperatorKind::DetectSqli => {
                libinjection::backend_name();
                simple(Op::Sqli)
            }
            OperatorKind::DetectXss => {
                libinjection::backend_name();
                simple(Op::Xss)
            }
            OperatorKind::ValidateByteRange(r) => {
                simple(Op::ByteRange(validate::ByteRanges::new(r)))
            }
            OperatorKind::ValidateUrlEncoding => simple(Op::UrlEncoding),
            OperatorKind::ValidateUtf8Encoding => simple(Op::Utf8Encoding),
            OperatorKind::VerifyCc(p) => with_regex(Op::VerifyCc, p)?,
            // v3 (verify_cpf.cc, verify_ssn.cc): an empty parameter never matches.
            OperatorKind::VerifyCpf(p) if p.is_empty() => simple(Op::Const(false)),
            OperatorKind::VerifySsn(p) if p.is_empty() => simple(Op::Const(false)),
            OperatorKind::VerifyCpf(p) => with_regex(Op::VerifyCpf, p)?,
            OperatorKind::VerifySsn(p) => with_regex(Op::VerifySsn, p)?,
            OperatorKind::Rbl(_) | OperatorKind::GeoLookup | OperatorKind::NoMatch => {
                simple(Op::Const(false))
            }
            OperatorKind::GsbLookup(_) | OperatorKind::ValidateHash(_) => simple(Op::Const(true)),
            OperatorKind::UnconditionalMatch => simple(Op::Const(true)),
            OperatorKind::InList(items) => {
                simple(Op::InList(items.iter().map(|s| s.as_bytes().to_vec()).collect()))
            }
            OperatorKind::ValidateDtd(_)
            | OperatorKind::ValidateSchema(_)
            | OperatorKind::InspectFile(_)
            | OperatorKind::FuzzyHash(_) => {
                return Err(OperatorError {
                    operator: name,
                    kind: OperatorErrorKind::Unsupported(name),
                });
            }
        })
    }

    /// True when the argument holds macros and `matches` needs the expanded argument.
    pub fn needs_expansion(&self) -> bool {
        self.needs_expansion
    }

    /// Evaluates against one value. `expanded_arg` is the macro-expanded argument when
    /// `needs_expansion()` (an absent one counts as empty). `captures`, when given and the
    /// operator matches and v3 sets captures for it, is replaced by TX.0, TX.1, ... in order:
    /// `@rx` every group up to the last that took part (see [`RxMatcher::matches`]); `@pm`
    /// the matched phrase text; `@detectSQLi` the fingerprint; `@detectXSS` the input;
    /// `@verifyCC/CPF/SSN` the number found; `@within`, `@contains` and the others set none.
    /// Err only when a match limit was hit (then ModSecurity reports no match).
    pub fn matches(
        &self,
        input: &[u8],
        expanded_arg: Option<&[u8]>,
        captures: Option<&mut Captures>,
    ) -> Result<bool, MatchLimitExceeded> {
        let dynamic = || expanded_arg.unwrap_or_default();
        let set_one = |captures: Option<&mut Captures>, v: &[u8]| {
            if let Some(c) = captures {
                c.set_one(v);
            }
        };
        Ok(match &self.op {
            Op::Rx(Some(re)) => {
                return match &self.fast {
                    Some(f) => f.matches(re, input, captures),
                    None => re.matches(input, captures),
                };
            }
            Op::Rx(None) => {
                let expanded = dynamic();
                let cached = match self.last_expansion.lock() {
                    Ok(mut kept) => match kept.iter().position(|(p, _)| p.as_slice() == expanded) {
                        Some(i) => {
                            // Latest last: the least recently used is the first to go.
                            let hit = kept.remove(i);
                            let re = Arc::clone(&hit.1);
                            kept.push(hit);
                            Some(re)
                        }
                        None => None,
                    },
                    Err(_) => None,
                };
                let re = match cached {
                    Some(re) => re,
                    None => {
                        let Ok(pattern) = std::str::from_utf8(expanded) else {
                            // Macro values are text in the IR; a non-UTF-8 expansion cannot
                            // come from it, and v3 would hand PCRE bytes it may refuse.
                            return Ok(false);
                        };
                        // v3 (rx.cc): a pattern that does not compile fails quietly.
                        let Ok(re) = RxMatcher::new(pattern) else { return Ok(false) };
                        let re = Arc::new(re);
                        if expanded.len() <= EXPANDED_PATTERN_KEPT {
                            if let Ok(mut kept) = self.last_expansion.lock() {
                                // Another thread may have kept the same one meanwhile.
                                if !kept.iter().any(|(p, _)| p.as_slice() == expanded) {
                                    if kept.len() == EXPANSIONS_KEPT {
                                        kept.remove(0);
                                    }
                                    kept.push((expanded.to_vec(), Arc::clone(&re)));
                                }
                            }
                        }
                        re
                    }
                };
                return re.matches(input, captures);
            }
            Op::RxEmpty => true,
            Op::Pm(m) => match m.find_capture(input) {
                Some(found) => {
                    set_one(captures, found.text);
                    true
                }
                None => false,
            },
            Op::Ip(set) => {
                // C strings stop at NUL; non-UTF-8 bytes cannot be part of an address.
                let end = memchr::memchr(0, input).unwrap_or(input.len());
                std::str::from_utf8(&input[..end]).is_ok_and(|s| set.contains_str(s))
            }
            Op::Str(op, lit) => {
                let arg: &[u8] = if self.needs_expansion { dynamic() } else { lit };
                match op {
                    StrOp::StrEq => strings::str_eq(input, arg),
                    StrOp::BeginsWith => strings::begins_with(input, arg),
                    StrOp::EndsWith => strings::ends_with(input, arg),
                    StrOp::Contains | StrOp::StrMatch => strings::contains(input, arg),
                    StrOp::ContainsWord => strings::contains_word(input, arg),
                }
            }
            Op::Within(Some(h), _) => h.within(input),
            Op::Within(None, last) => {
                let arg = dynamic();
                // Below 64 bytes memmem searches without preparing the needle.
                if input.is_empty() || arg.len() < 64 {
                    return Ok(strings::within(input, arg));
                }
                // Never waits: another thread holding the cache means a plain search.
                let Ok(mut last) = last.try_lock() else {
                    return Ok(strings::within(input, arg));
                };
                match &*last {
                    Some(h) if h.bytes() == arg => h.within(input),
                    _ => {
                        let h = strings::Haystack::new(arg);
                        let hit = h.within(input);
                        *last = Some(h);
                        hit
                    }
                }
            }
            Op::Num(op, lit) => {
                let arg = lit.unwrap_or_else(|| numeric::parse(*op, dynamic()));
                numeric::compare(*op, numeric::parse(*op, input), arg)
            }
            Op::Sqli => match libinjection::detect_sqli(input) {
                Some(fp) => {
                    set_one(captures, &fp);
                    true
                }
                None => false,
            },
            Op::Xss => {
                let hit = libinjection::detect_xss(input);
                if hit {
                    set_one(captures, input);
                }
                hit
            }
            Op::ByteRange(r) => r.matches(input),
            Op::UrlEncoding => validate::invalid_url_encoding(input),
            Op::Utf8Encoding => validate::invalid_utf8(input),
            Op::VerifyCc(re) | Op::VerifyCpf(re) | Op::VerifySsn(re) => {
                let found = match &self.op {
                    Op::VerifyCc(_) => verify::verify_cc(re, input)?,
                    Op::VerifyCpf(_) => verify::verify_cpf(re, input)?,
                    _ => verify::verify_ssn(re, input)?,
                };
                match found {
                    Some(v) => {
                        set_one(captures, &v);
                        true
                    }
                    None => false,
                }
            }
            Op::InList(set) => {
                let hit = set.contains(input);
                if hit {
                    // Printed as an anchored @rx alternation, whose group 0 is the input.
                    set_one(captures, input);
                }
                hit
            }
            Op::Const(b) => *b,
        })
    }

    /// Name for reports: the SecLang operator name without `@` (`rx`, `pm`, ...).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The argument as written (pattern, literal, data file path), when there is one.
    pub fn argument(&self) -> Option<&str> {
        self.arg.as_deref()
    }

    /// The literal search / prefilter of a literal `@rx`, when it has one.
    pub fn rx_fast(&self) -> Option<&fast::FastRx> {
        self.fast.as_deref()
    }

    /// Switches the `@rx` stand-ins of this operator (no-op for other operators). Takes
    /// `&self`: compiled rule sets are shared behind `Arc`s.
    pub fn set_rx_optimisations(&self, opts: fast::RxOptimisations) {
        if let Some(f) = &self.fast {
            f.set(opts);
        }
    }

    /// The phrase list of a `@pm` / `@pmFromFile` (for the shared prefilter).
    pub fn phrases(&self) -> Option<&pm::PhraseMatcher> {
        match &self.op {
            Op::Pm(m) => Some(m),
            _ => None,
        }
    }

    /// `@detectSQLi` or `@detectXSS`: no argument, and an answer that is a function of the
    /// input's bytes alone (for the value memo, which keeps it as it keeps a regex's).
    pub fn is_libinjection(&self) -> bool {
        matches!(self.op, Op::Sqli | Op::Xss)
    }

    /// The compiled regex of an `@rx` with a literal pattern (for the optimiser: engine,
    /// translated pattern).
    pub fn regex(&self) -> Option<&RxMatcher> {
        match &self.op {
            Op::Rx(Some(re)) | Op::VerifyCc(re) | Op::VerifyCpf(re) | Op::VerifySsn(re) => Some(re),
            _ => None,
        }
    }
}

/// The SecLang name of an operator kind (`rx`, `pmFromFile`, ...).
pub fn operator_name(kind: &OperatorKind) -> &'static str {
    match kind {
        OperatorKind::Rx(_) => "rx",
        OperatorKind::Pm(_) => "pm",
        OperatorKind::PmFromFile(_) => "pmFromFile",
        OperatorKind::IpMatch(_) => "ipMatch",
        OperatorKind::IpMatchFromFile(_) => "ipMatchFromFile",
        OperatorKind::Eq(_) => "eq",
        OperatorKind::Ge(_) => "ge",
        OperatorKind::Gt(_) => "gt",
        OperatorKind::Le(_) => "le",
        OperatorKind::Lt(_) => "lt",
        OperatorKind::StrEq(_) => "streq",
        OperatorKind::StrMatch(_) => "strmatch",
        OperatorKind::BeginsWith(_) => "beginsWith",
        OperatorKind::EndsWith(_) => "endsWith",
        OperatorKind::Contains(_) => "contains",
        OperatorKind::ContainsWord(_) => "containsWord",
        OperatorKind::Within(_) => "within",
        OperatorKind::DetectSqli => "detectSQLi",
        OperatorKind::DetectXss => "detectXSS",
        OperatorKind::ValidateByteRange(_) => "validateByteRange",
        OperatorKind::ValidateUrlEncoding => "validateUrlEncoding",
        OperatorKind::ValidateUtf8Encoding => "validateUtf8Encoding",
        OperatorKind::ValidateDtd(_) => "validateDTD",
        OperatorKind::ValidateSchema(_) => "validateSchema",
        OperatorKind::ValidateHash(_) => "validateHash",
        OperatorKind::VerifyCc(_) => "verifyCC",
        OperatorKind::VerifyCpf(_) => "verifyCPF",
        OperatorKind::VerifySsn(_) => "verifySSN",
        OperatorKind::Rbl(_) => "rbl",
        OperatorKind::GeoLookup => "geoLookup",
        OperatorKind::GsbLookup(_) => "gsbLookup",
        OperatorKind::InspectFile(_) => "inspectFile",
        OperatorKind::FuzzyHash(_) => "fuzzyHash",
        OperatorKind::UnconditionalMatch => "unconditionalMatch",
        OperatorKind::NoMatch => "noMatch",
        OperatorKind::InList(_) => "inList",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DataFile, MacroPart, Variable};

    fn lit(s: &str) -> MacroString {
        MacroString::literal(s)
    }

    fn run(kind: OperatorKind, input: &[u8]) -> bool {
        CompiledOperator::compile(&kind).unwrap().matches(input, None, None).unwrap()
    }

    #[test]
    fn compiled_operators_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CompiledOperator>();
    }

    #[test]
    fn dispatch_table() {
        let cases: Vec<(OperatorKind, &[u8], bool)> = vec![
            (OperatorKind::Rx(lit("^GET$")), b"GET", true),
            (OperatorKind::Rx(lit("")), b"x", true),
            (OperatorKind::Pm(vec!["foo".into(), "bar".into()]), b"xBARx", true),
            (OperatorKind::Pm(vec!["foo".into()]), b"fo", false),
            (
                OperatorKind::PmFromFile(DataFile {
                    path: "x.data".into(),
                    entries: vec!["evil".into()],
                }),
                b"so EVIL",
                true,
            ),
            (OperatorKind::IpMatch(vec!["10.0.0.0/8".into()]), b"10.1.2.3", true),
            (OperatorKind::IpMatch(vec!["10.0.0.0/8".into()]), b"11.1.2.3", false),
            (OperatorKind::IpMatch(vec!["10.0.0.0/8".into()]), b"\xff", false),
            (OperatorKind::Eq(lit("0")), b"abc", true),
            (OperatorKind::Gt(lit("5")), b"6", true),
            (OperatorKind::Lt(lit("5")), b"6", false),
            (OperatorKind::StrEq(lit("a")), b"a", true),
            (OperatorKind::StrMatch(lit("b")), b"abc", true),
            (OperatorKind::BeginsWith(lit("a")), b"abc", true),
            (OperatorKind::EndsWith(lit("c")), b"abc", true),
            (OperatorKind::Contains(lit("x")), b"abc", false),
            (OperatorKind::ContainsWord(lit("b")), b"a b c", true),
            (OperatorKind::Within(lit("GET POST")), b"POST", true),
            (OperatorKind::DetectSqli, b"1' OR '1'='1", true),
            (OperatorKind::DetectXss, b"<script>alert(1)</script>", true),
            (OperatorKind::ValidateByteRange(vec![(32, 126)]), b"ok", false),
            (OperatorKind::ValidateByteRange(vec![(32, 126)]), b"\0", true),
            (OperatorKind::ValidateUrlEncoding, b"%zz", true),
            (OperatorKind::ValidateUtf8Encoding, b"\xc0\xaf", true),
            (OperatorKind::VerifyCc(r"\d{16}".into()), b"4111111111111111", true),
            (OperatorKind::VerifySsn(String::new()), b"078-05-1120", false),
            (OperatorKind::Rbl("sbl.spamhaus.org".into()), b"127.0.0.2", false),
            (OperatorKind::GeoLookup, b"8.8.8.8", false),
            (OperatorKind::GsbLookup("x".into()), b"", true),
            (OperatorKind::ValidateHash("x".into()), b"", true),
            (OperatorKind::UnconditionalMatch, b"", true),
            (OperatorKind::NoMatch, b"", false),
            (OperatorKind::InList(vec!["GET".into(), "HEAD".into()]), b"HEAD", true),
            (OperatorKind::InList(vec!["GET".into()]), b"get", false),
        ];
        for (kind, input, want) in cases {
            assert_eq!(run(kind.clone(), input), want, "{kind:?} on {input:?}");
        }
    }

    #[test]
    fn unsupported_and_bad_arguments() {
        for kind in [
            OperatorKind::ValidateDtd("a.dtd".into()),
            OperatorKind::ValidateSchema("a.xsd".into()),
            OperatorKind::InspectFile("a.lua".into()),
            OperatorKind::FuzzyHash("a.txt 10".into()),
        ] {
            let err = CompiledOperator::compile(&kind).unwrap_err();
            assert!(matches!(err.kind, OperatorErrorKind::Unsupported(_)), "{err}");
            assert!(err.to_string().contains("unsupported operator"), "{err}");
        }
        let err = CompiledOperator::compile(&OperatorKind::Rx(lit("(abc"))).unwrap_err();
        assert!(matches!(err.kind, OperatorErrorKind::Regex { .. }), "{err}");
        let err = CompiledOperator::compile(&OperatorKind::IpMatch(vec!["not-an-ip".into()]))
            .unwrap_err();
        assert!(matches!(err.kind, OperatorErrorKind::BadArgument(_)), "{err}");
    }

    /// An `@rx` whose macro takes turns between a few values compiles each once; past
    /// [`EXPANSIONS_KEPT`] values the least recently used goes; a long expansion is not kept.
    #[test]
    fn expanded_patterns_stay_compiled_for_the_last_few_values() {
        let m = MacroString {
            parts: vec![
                MacroPart::Lit("^".into()),
                MacroPart::Var { var: Variable::RequestHeaders, key: Some("host".into()) },
                MacroPart::Lit("$".into()),
            ],
        };
        let op = CompiledOperator::compile(&OperatorKind::Rx(m)).unwrap();
        let kept = |op: &CompiledOperator| -> Vec<String> {
            let k = op.last_expansion.lock().unwrap();
            k.iter().map(|(p, _)| String::from_utf8_lossy(p).into_owned()).collect()
        };
        let compiled = |op: &CompiledOperator, p: &str| {
            let k = op.last_expansion.lock().unwrap();
            k.iter().find(|(q, _)| q.as_slice() == p.as_bytes()).map(|(_, re)| Arc::as_ptr(re))
        };
        let (a, b) = ("^a.example$", "^b.example$");
        assert!(op.matches(b"a.example", Some(a.as_bytes()), None).unwrap());
        let first = compiled(&op, a).expect("kept");
        for _ in 0..3 {
            assert!(op.matches(b"bxexample", Some(b.as_bytes()), None).unwrap());
            assert!(!op.matches(b"b.example", Some(a.as_bytes()), None).unwrap());
        }
        assert_eq!(compiled(&op, a), Some(first), "the same compiled form is reused");
        assert_eq!(kept(&op), [b, a]);
        let others: Vec<String> = (0..EXPANSIONS_KEPT).map(|i| format!("^h{i}$")).collect();
        for p in &others {
            assert!(op.matches(&p.as_bytes()[1..p.len() - 1], Some(p.as_bytes()), None).unwrap());
        }
        assert_eq!(kept(&op), others, "the least recently used went first");
        let long = format!("^{}$", "x".repeat(EXPANDED_PATTERN_KEPT));
        assert!(
            op.matches(&long.as_bytes()[1..long.len() - 1], Some(long.as_bytes()), None).unwrap()
        );
        assert_eq!(kept(&op), others, "a long expansion is compiled for the call only");
    }

    #[test]
    fn macros_use_the_expanded_argument() {
        let m = MacroString {
            parts: vec![
                MacroPart::Lit("^".into()),
                MacroPart::Var { var: Variable::Tx, key: Some("m".into()) },
                MacroPart::Lit("$".into()),
            ],
        };
        let op = CompiledOperator::compile(&OperatorKind::Rx(m.clone())).unwrap();
        assert!(op.needs_expansion());
        assert!(op.matches(b"GET", Some(b"^GET$"), None).unwrap());
        assert!(!op.matches(b"PUT", Some(b"^GET$"), None).unwrap());
        // A bad expanded pattern fails quietly, as in v3.
        assert!(!op.matches(b"x", Some(b"(x"), None).unwrap());
        // A new expansion is compiled, an old one found again.
        assert!(op.matches(b"PUT", Some(b"^PUT$"), None).unwrap());
        assert!(!op.matches(b"GET", Some(b"^PUT$"), None).unwrap());
        assert!(op.matches(b"GET", Some(b"^GET$"), None).unwrap());
        let op = CompiledOperator::compile(&OperatorKind::Within(m.clone())).unwrap();
        assert!(op.matches(b"GET", Some(b"GET POST"), None).unwrap());
        // Arguments of 64 bytes or more are prepared once and kept while the expansion stays
        // the same: the one-entry cache follows the expansion.
        let a = b"/proxy/ /lock-token/ /content-range/ /if/ /x-forwarded-host/ /te/ /trailer/";
        let b = b"/accept/ /accept-encoding/ /connection/ /host/ /user-agent/ /referer/ /dnt/";
        assert!(a.len() >= 64 && b.len() >= 64);
        for (arg, yes, no) in [(a, "/if/", "/host/"), (b, "/host/", "/if/"), (a, "/te/", "/dnt/")] {
            assert!(op.matches(yes.as_bytes(), Some(arg), None).unwrap(), "{yes}");
            assert!(!op.matches(no.as_bytes(), Some(arg), None).unwrap(), "{no}");
            assert!(op.matches(b"", Some(arg), None).unwrap());
        }
        let lit_op = CompiledOperator::compile(&OperatorKind::Within(lit("GET HEAD"))).unwrap();
        assert!(lit_op.matches(b"HEAD", None, None).unwrap());
        assert!(!lit_op.matches(b"PUT", None, None).unwrap());
        let op = CompiledOperator::compile(&OperatorKind::Ge(m)).unwrap();
        assert!(op.matches(b"10", Some(b"5"), None).unwrap());
        assert!(!op.matches(b"1", Some(b"5"), None).unwrap());
        let op = CompiledOperator::compile(&OperatorKind::Eq(lit("5"))).unwrap();
        assert!(!op.needs_expansion());
    }

    #[test]
    fn captures_per_operator() {
        let mut caps = Captures::new();
        let op = CompiledOperator::compile(&OperatorKind::Rx(lit("(a)(b)"))).unwrap();
        assert!(op.matches(b"xab", None, Some(&mut caps)).unwrap());
        assert_eq!(caps.groups(), vec![b"ab".to_vec(), b"a".to_vec(), b"b".to_vec()]);
        let op = CompiledOperator::compile(&OperatorKind::DetectSqli).unwrap();
        assert!(op.matches(b"1' OR '1'='1", None, Some(&mut caps)).unwrap());
        assert_eq!(caps.groups(), vec![b"s&sos".to_vec()]);
        assert!(op.is_libinjection());
        assert!(CompiledOperator::compile(&OperatorKind::DetectXss).unwrap().is_libinjection());
        let op = CompiledOperator::compile(&OperatorKind::Pm(vec!["Evil".into()])).unwrap();
        assert!(!op.is_libinjection());
        assert!(op.matches(b"so EVIL", None, Some(&mut caps)).unwrap());
        assert_eq!(caps.groups(), vec![b"Evil".to_vec()]);
        // Operators without capture leave the vector alone.
        let op = CompiledOperator::compile(&OperatorKind::Contains(lit("x"))).unwrap();
        assert!(op.matches(b"x", None, Some(&mut caps)).unwrap());
        assert_eq!(caps.groups(), vec![b"Evil".to_vec()]);
        assert_eq!(op.name(), "contains");
    }

    /// A shorter or fewer-group match after a longer one leaves nothing of the old one, and
    /// the buffers are refilled, not reallocated, unless one large capture grew them.
    #[test]
    fn captures_reuse_their_buffers() {
        let mut caps = Captures::new();
        let op = CompiledOperator::compile(&OperatorKind::Rx(lit("(a+)(b+)(c*)"))).unwrap();
        assert!(op.matches(b"aaaabbbbcccc", None, Some(&mut caps)).unwrap());
        assert_eq!(
            caps.groups(),
            vec![b"aaaabbbbcccc".to_vec(), b"aaaa".to_vec(), b"bbbb".to_vec(), b"cccc".to_vec()]
        );
        let first = caps.groups()[1].as_ptr();
        assert!(op.matches(b"ab", None, Some(&mut caps)).unwrap());
        assert_eq!(caps.len(), 4);
        assert_eq!(caps.groups(), vec![b"ab".to_vec(), b"a".to_vec(), b"b".to_vec(), Vec::new()]);
        assert_eq!(caps.groups()[1].as_ptr(), first, "group 1's buffer was refilled");
        let sqli = CompiledOperator::compile(&OperatorKind::DetectSqli).unwrap();
        assert!(sqli.matches(b"1' OR '1'='1", None, Some(&mut caps)).unwrap());
        assert_eq!(caps.groups(), vec![b"s&sos".to_vec()]);
        assert!(!caps.is_empty());
        let big = vec![b'a'; Captures::KEEP_MAX * 2];
        caps.set_one(&big);
        assert_eq!(caps.groups()[0].len(), big.len());
        caps.set_one(b"x");
        assert_eq!(caps.groups(), vec![b"x".to_vec()]);
        assert!(caps.groups()[0].capacity() < Captures::KEEP_MAX, "the large buffer was let go");
        caps.clear();
        assert!(caps.is_empty() && caps.groups().is_empty());
        // Given back to the pool: a large buffer goes, the others stay for the next match.
        caps.set_one(b"y");
        caps.push(&big);
        caps.trim();
        assert!(caps.is_empty());
        assert!(caps.bufs.iter().all(|b| b.capacity() <= Captures::KEEP_MAX));
        assert_eq!(caps.bufs.len(), 3, "of the four buffers only the large one goes");
    }
}
