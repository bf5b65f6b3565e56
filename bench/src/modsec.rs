//! The ModSecurity peer: libmodsecurity3 (v3's C API) loaded at run time with `libloading`,
//! fed each [`Request`] the way a web-server connector (ModSecurity-nginx, -apache) does, so
//! every other engine can be compared against the reference implementation.
//!
//! Data flow: rules spec -> SecLang text ([`seclang_for_spec`]) -> `msc_rules_add` once per
//! process -> per request: `msc_new_transaction` -> connection -> URI -> headers (phase 1) ->
//! body (phase 2) -> empty `200` response (phases 3-4) -> logging (phase 5), with
//! `msc_intervention` after each step -> [`Decision`].
//!
//! The library is opened by name (`libmodsecurity.so.3`, found by the dynamic loader) or from
//! the path in `WAF_MODSEC_LIB`, so wafbench builds and runs where libmodsecurity3 is absent;
//! only asking for the peer then fails, with [`PeerError::NotFound`].

use libloading::Library;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use waf_engine::crs::{CrsLayout, crs_config_text};
use waf_engine::{Decision, Engine, Request};

/// Environment variable naming the library file to load instead of `libmodsecurity.so.3`.
pub const LIB_ENV: &str = "WAF_MODSEC_LIB";
/// The soname the Debian package `libmodsecurity3` installs.
pub const DEFAULT_LIB: &str = "libmodsecurity.so.3";

/// Id of the phase-5 rule the peer appends to read `TX:anomaly_score` (see [`PROBE_RULE`]).
pub const PROBE_ID: &str = "9999970";

/// libmodsecurity3 offers no C call to read a transaction variable, so the peer appends one
/// logging-phase rule whose message carries `%{tx.anomaly_score}` and reads it back from the
/// log callback. Phase 5 runs even after a disruption: `msc_intervention` resets the
/// transaction's intervention (src/transaction.cc, `Transaction::intervention`), and
/// `RulesSet::evaluate` only skips the rest of a phase while one is pending. The probe's
/// message is dropped from `matched_ids` and from the returned log lines. It is `pass`, so it
/// changes no decision. It cannot be `noauditlog`: in v3 a rule with `log` and `noauditlog`
/// never reaches the log callback (the flag clears the message's `m_saveMessage`), so its
/// message also joins an audit log entry when one is written for the transaction.
pub const PROBE_RULE: &str = "SecAction \"id:9999970,phase:5,pass,log,t:none,\
msg:'wafbench-probe anomaly_score=%{tx.anomaly_score}'\"\n";

/// Serialises rule loading across the process (see `ModSecPeer::with_api`).
static LOAD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Marker text of the probe's message (before the score).
const PROBE_MARK: &str = "wafbench-probe anomaly_score=";

/// Why the peer could not be built or could not run a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The shared library could not be opened.
    #[error(
        "libmodsecurity3 not found: apt-get install libmodsecurity3 (loading {path}: {reason})"
    )]
    NotFound { path: String, reason: String },
    /// The library lacks a symbol of the C API (not libmodsecurity3, or too old).
    #[error("{path} is not a usable libmodsecurity3: missing symbol {symbol}: {reason}")]
    MissingSymbol { path: String, symbol: &'static str, reason: String },
    /// A call returned NULL (allocation failure inside the library).
    #[error("libmodsecurity3: {call} returned NULL")]
    Null { call: &'static str },
    /// The rules were refused; `message` is ModSecurity's parser error.
    #[error("libmodsecurity3 refused the rules: {message}")]
    Rules { message: String },
    /// The rules spec names something the peer cannot load.
    #[error("rules {spec}: {message}")]
    Spec { spec: String, message: String },
}

type ModSecPtr = *mut c_void;
type RulesPtr = *mut c_void;
type TxPtr = *mut c_void;
type LogCb = extern "C" fn(*mut c_void, *const c_void);

/// `ModSecurityIntervention` from modsecurity/intervention.h.
#[repr(C)]
struct Intervention {
    status: c_int,
    pause: c_int,
    url: *mut c_char,
    log: *mut c_char,
    disruptive: c_int,
}

unsafe extern "C" {
    /// libc's `free`: `msc_intervention` and `msc_rules_add` hand out `strdup`ed strings.
    fn free(p: *mut c_void);
}

/// The C API entry points, resolved once.
struct Api {
    init: unsafe extern "C" fn() -> ModSecPtr,
    set_connector_info: unsafe extern "C" fn(ModSecPtr, *const c_char),
    set_log_cb: unsafe extern "C" fn(ModSecPtr, LogCb),
    cleanup: unsafe extern "C" fn(ModSecPtr),
    create_rules_set: unsafe extern "C" fn() -> RulesPtr,
    rules_add: unsafe extern "C" fn(RulesPtr, *const c_char, *mut *const c_char) -> c_int,
    rules_cleanup: unsafe extern "C" fn(RulesPtr) -> c_int,
    new_transaction: unsafe extern "C" fn(ModSecPtr, RulesPtr, *mut c_void) -> TxPtr,
    process_connection:
        unsafe extern "C" fn(TxPtr, *const c_char, c_int, *const c_char, c_int) -> c_int,
    process_uri: unsafe extern "C" fn(TxPtr, *const c_char, *const c_char, *const c_char) -> c_int,
    add_n_request_header: unsafe extern "C" fn(TxPtr, *const u8, usize, *const u8, usize) -> c_int,
    process_request_headers: unsafe extern "C" fn(TxPtr) -> c_int,
    append_request_body: unsafe extern "C" fn(TxPtr, *const u8, usize) -> c_int,
    process_request_body: unsafe extern "C" fn(TxPtr) -> c_int,
    process_response_headers: unsafe extern "C" fn(TxPtr, c_int, *const c_char) -> c_int,
    process_response_body: unsafe extern "C" fn(TxPtr) -> c_int,
    process_logging: unsafe extern "C" fn(TxPtr) -> c_int,
    intervention: unsafe extern "C" fn(TxPtr, *mut Intervention) -> c_int,
    transaction_cleanup: unsafe extern "C" fn(TxPtr),
    // Keeps the code above mapped; dropped last (fields drop in declaration order).
    _lib: Library,
}

impl Api {
    fn open(path: &str) -> Result<Api, PeerError> {
        // SAFETY: loading libmodsecurity3 runs its C++ static initialisers, which have no
        // preconditions on us.
        let lib = unsafe { Library::new(path) }
            .map_err(|e| PeerError::NotFound { path: path.into(), reason: e.to_string() })?;
        macro_rules! sym {
            ($name:literal) => {{
                // SAFETY: the type written at the use site is the prototype from
                // /usr/include/modsecurity/{modsecurity,rules_set,transaction}.h.
                let s = unsafe { lib.get(concat!($name, "\0").as_bytes()) }.map_err(|e| {
                    PeerError::MissingSymbol {
                        path: path.into(),
                        symbol: $name,
                        reason: e.to_string(),
                    }
                })?;
                *s
            }};
        }
        Ok(Api {
            init: sym!("msc_init"),
            set_connector_info: sym!("msc_set_connector_info"),
            set_log_cb: sym!("msc_set_log_cb"),
            cleanup: sym!("msc_cleanup"),
            create_rules_set: sym!("msc_create_rules_set"),
            rules_add: sym!("msc_rules_add"),
            rules_cleanup: sym!("msc_rules_cleanup"),
            new_transaction: sym!("msc_new_transaction"),
            process_connection: sym!("msc_process_connection"),
            process_uri: sym!("msc_process_uri"),
            add_n_request_header: sym!("msc_add_n_request_header"),
            process_request_headers: sym!("msc_process_request_headers"),
            append_request_body: sym!("msc_append_request_body"),
            process_request_body: sym!("msc_process_request_body"),
            process_response_headers: sym!("msc_process_response_headers"),
            process_response_body: sym!("msc_process_response_body"),
            process_logging: sym!("msc_process_logging"),
            intervention: sym!("msc_intervention"),
            transaction_cleanup: sym!("msc_transaction_cleanup"),
            _lib: lib,
        })
    }
}

/// The library path to open: `WAF_MODSEC_LIB` when set and not empty, else the soname.
pub fn library_path() -> String {
    match std::env::var(LIB_ENV) {
        Ok(p) if !p.is_empty() => p,
        _ => DEFAULT_LIB.into(),
    }
}

/// The SecLang text the peer loads for a rules spec: `crs` is the project's `crs` rule set
/// (base configuration, paranoia, CRS files: the list every engine loads), a `.conf` file is
/// included by absolute path; anything else is loaded by our front-ends and printed as SecLang.
pub fn seclang_for_spec(spec: &str, paranoia: Option<u8>) -> Result<String, PeerError> {
    let err = |message: String| PeerError::Spec { spec: spec.into(), message };
    if spec == "crs" {
        let layout = CrsLayout::locate().map_err(|e| err(e.to_string()))?;
        return Ok(crs_config_text(&layout, paranoia));
    }
    let path = Path::new(spec);
    match path.extension().and_then(|e| e.to_str()) {
        Some("conf") => {
            let abs = std::fs::canonicalize(path).map_err(|e| err(e.to_string()))?;
            let abs = abs.to_str().ok_or_else(|| err("path is not UTF-8".into()))?;
            if abs.contains('"') {
                return Err(err("path contains a double quote".into()));
            }
            Ok(format!("Include \"{abs}\"\n"))
        }
        // `default`, `.rules`, `.json`: load with our front-ends, print as SecLang. Rules
        // SecLang cannot express (Cloudflare-style `or`) are refused with the printer's error.
        _ => {
            let set = waf_engine::load::load_rules(&waf_engine::load::RuleSpec::from_args(
                &[spec],
                paranoia,
                None,
            ))
            .map_err(|e| err(e.to_string()))?;
            waf_engine::seclang::print(&set).map_err(|e| err(e.to_string()))
        }
    }
}

/// What one transaction produced: the decision and every error-log line a connector would
/// write (log-callback messages, then the intervention's log), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOutcome {
    pub decision: Decision,
    pub log_lines: Vec<String>,
}

/// libmodsecurity3 with one rule set, reused for every request of the process.
pub struct ModSecPeer {
    api: Api,
    msc: ModSecPtr,
    rules: RulesPtr,
}

/// Collects the log callback's lines for one transaction; a pointer to it is the
/// transaction's `logCbData`.
#[derive(Default)]
struct LogSink {
    lines: Vec<String>,
}

/// The log callback. With `msc_set_log_cb` the properties are `TextLogProperty`, so `msg` is
/// the NUL-terminated text line (src/modsecurity.cc, `ModSecurity::serverLog`). It must not
/// unwind into C++.
extern "C" fn log_cb(data: *mut c_void, msg: *const c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if data.is_null() || msg.is_null() {
            return;
        }
        // SAFETY: `data` is the `LogSink` passed to `msc_new_transaction` in `run`, alive
        // and not otherwise borrowed while the library runs; `msg` is a C string.
        let sink = unsafe { &mut *(data as *mut LogSink) };
        let text = unsafe { CStr::from_ptr(msg as *const c_char) };
        sink.lines.push(text.to_string_lossy().into_owned());
    }));
}

/// A C string from bytes that may hold NUL: the C API takes NUL-terminated strings, so the
/// library could never see past the first NUL anyway; cut there.
fn c_string(bytes: &[u8]) -> CString {
    let end = memchr_nul(bytes);
    // Cannot fail: no NUL before `end`.
    CString::new(&bytes[..end]).unwrap_or_default()
}

fn memchr_nul(bytes: &[u8]) -> usize {
    bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())
}

/// The `http_version` argument of `msc_process_uri`: v3 builds `REQUEST_PROTOCOL` and
/// `REQUEST_LINE` as `"HTTP/" + http_version` (src/transaction.cc, `processURI`), and
/// connectors pass the bare number (nginx: "1.0", "1.1", "2.0"; HTTP/0.9 gives "0.9"). So
/// `HTTP/x` becomes `x`; any other token (`JUNK/1.0`, empty) is passed verbatim: a web server
/// would have refused such a request before ModSecurity saw it.
pub fn http_version_arg(version: &str) -> &str {
    version.strip_prefix("HTTP/").unwrap_or(version)
}

/// The rule id in a ModSecurity log line: the text of the first `[id "N"]`.
pub fn rule_id_of(line: &str) -> Option<&str> {
    let start = line.find("[id \"")? + 5;
    let len = line[start..].find('"')?;
    let id = &line[start..start + len];
    (!id.is_empty()).then_some(id)
}

/// The score carried by the probe's message; an unset `tx.anomaly_score` expands to nothing.
fn probe_score(line: &str) -> Option<i64> {
    let at = line.find(PROBE_MARK)? + PROBE_MARK.len();
    let digits: String =
        line[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
    Some(digits.parse().unwrap_or(0))
}

impl ModSecPeer {
    /// Opens the library ([`library_path`]) and loads the rules of `spec` (see
    /// [`seclang_for_spec`]).
    pub fn from_spec(spec: &str, paranoia: Option<u8>) -> Result<ModSecPeer, PeerError> {
        let api = Api::open(&library_path())?;
        let text = seclang_for_spec(spec, paranoia)?;
        ModSecPeer::with_api(api, &text)
    }

    /// Opens the library ([`library_path`]) and loads SecLang `rules` text.
    pub fn from_seclang(rules: &str) -> Result<ModSecPeer, PeerError> {
        ModSecPeer::with_api(Api::open(&library_path())?, rules)
    }

    fn with_api(api: Api, rules_text: &str) -> Result<ModSecPeer, PeerError> {
        // v3's SecLang parser is a flex/bison scanner with process-wide state: two rule sets
        // loaded at once from two threads corrupt the heap (seen here as glibc's "unaligned
        // tcache chunk" abort). Transactions on separate peers are independent.
        let _guard = LOAD_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: plain constructor calls of the C API; results checked for NULL.
        let msc = unsafe { (api.init)() };
        if msc.is_null() {
            return Err(PeerError::Null { call: "msc_init" });
        }
        let rules = unsafe { (api.create_rules_set)() };
        // Built before any further fallible step so Drop frees what exists.
        let peer = ModSecPeer { api, msc, rules };
        if rules.is_null() {
            return Err(PeerError::Null { call: "msc_create_rules_set" });
        }
        let connector = c"wafbench peer";
        // SAFETY: `msc` is live; the strings outlive the calls (the library copies them).
        unsafe {
            (peer.api.set_connector_info)(peer.msc, connector.as_ptr());
            (peer.api.set_log_cb)(peer.msc, log_cb);
        }
        peer.add_rules(rules_text)?;
        peer.add_rules(PROBE_RULE)?;
        Ok(peer)
    }

    fn add_rules(&self, text: &str) -> Result<(), PeerError> {
        if text.as_bytes().contains(&0) {
            return Err(PeerError::Rules { message: "rules text contains a NUL byte".into() });
        }
        let c = c_string(text.as_bytes());
        let mut error: *const c_char = std::ptr::null();
        // SAFETY: `rules` is live, `c` NUL-terminated, `error` a valid out-pointer.
        let ret = unsafe { (self.api.rules_add)(self.rules, c.as_ptr(), &mut error) };
        if ret < 0 {
            let message = if error.is_null() {
                format!("msc_rules_add returned {ret}")
            } else {
                // SAFETY: on failure msc_rules_add stores a strdup'ed message we own.
                let m = unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned();
                unsafe { free(error as *mut c_void) };
                m
            };
            return Err(PeerError::Rules { message });
        }
        Ok(())
    }

    /// Runs one request through every phase; see the module docs for the order.
    pub fn run(&mut self, req: &Request) -> Result<PeerOutcome, PeerError> {
        let mut sink = Box::new(LogSink::default());
        let sink_ptr: *mut LogSink = &mut *sink;
        // SAFETY: `msc` and `rules` are live for `self`'s lifetime; `sink` outlives the
        // transaction, which is cleaned up below before `sink` is read.
        let tx =
            unsafe { (self.api.new_transaction)(self.msc, self.rules, sink_ptr as *mut c_void) };
        if tx.is_null() {
            return Err(PeerError::Null { call: "msc_new_transaction" });
        }
        // The disruption: status, its log line, and how many callback lines preceded it.
        let mut it: Option<(c_int, Option<String>, usize)> = None;
        // SAFETY: `tx` is live until `transaction_cleanup`; every pointer handed over is
        // valid for the duration of its call, and v3 copies what it keeps.
        unsafe {
            let a = &self.api;
            let client_ip = c_string(req.client_ip.as_bytes());
            let server_ip = c_string(req.server_ip.as_bytes());
            let uri = c_string(&req.uri);
            let method = c_string(req.method.as_bytes());
            let version = c_string(http_version_arg(&req.version).as_bytes());
            // Each step is followed by an intervention check; a connector stops at the first
            // disruption and goes straight to logging.
            let steps: [&dyn Fn(); 6] = [
                &|| {
                    (a.process_connection)(
                        tx,
                        client_ip.as_ptr(),
                        c_int::from(req.client_port),
                        server_ip.as_ptr(),
                        c_int::from(req.server_port),
                    );
                },
                &|| {
                    (a.process_uri)(tx, uri.as_ptr(), method.as_ptr(), version.as_ptr());
                },
                &|| {
                    for (k, v) in &req.headers {
                        (a.add_n_request_header)(tx, k.as_ptr(), k.len(), v.as_ptr(), v.len());
                    }
                    (a.process_request_headers)(tx);
                },
                &|| {
                    if !req.body.is_empty() {
                        (a.append_request_body)(tx, req.body.as_ptr(), req.body.len());
                    }
                    (a.process_request_body)(tx);
                },
                // The response: status 200, no headers, no body (the Engine contract).
                &|| {
                    (a.process_response_headers)(tx, 200, c"HTTP/1.1".as_ptr());
                },
                &|| {
                    (a.process_response_body)(tx);
                },
            ];
            for step in steps {
                step();
                if let Some((status, log)) = self.take_intervention(tx) {
                    it = Some((status, log, (*sink_ptr).lines.len()));
                    break;
                }
            }
            (a.process_logging)(tx);
            (a.transaction_cleanup)(tx);
        }
        let mut lines = std::mem::take(&mut sink.lines);
        let (status, disruptive) = match &it {
            Some((status, _, _)) => (u16::try_from(*status).unwrap_or(500), true),
            None => (200, false),
        };
        // The disruptive rule's message never reaches the log callback (src/rule_with_actions.cc,
        // `performLogging` skips `m_isDisruptive` messages); the connector writes the
        // intervention's log instead. It belongs after the messages of its phase and before
        // those of the logging phase.
        if let Some((_, Some(log), at)) = it {
            lines.insert(at.min(lines.len()), log);
        }
        let mut matched_ids: Vec<String> = Vec::new();
        let mut anomaly_score = 0;
        lines.retain(|l| {
            if let Some(score) = probe_score(l).filter(|_| rule_id_of(l) == Some(PROBE_ID)) {
                anomaly_score = score;
                return false;
            }
            if let Some(id) = rule_id_of(l) {
                if !matched_ids.iter().any(|m| m == id) {
                    matched_ids.push(id.to_string());
                }
            }
            true
        });
        Ok(PeerOutcome {
            decision: Decision {
                id: req.id.clone(),
                status,
                disruptive,
                matched_ids,
                anomaly_score,
            },
            log_lines: lines,
        })
    }

    /// `msc_intervention`, with the strings it `strdup`s freed. Returns the status and log.
    unsafe fn take_intervention(&self, tx: TxPtr) -> Option<(c_int, Option<String>)> {
        let mut it = Intervention {
            status: 200,
            pause: 0,
            url: std::ptr::null_mut(),
            log: std::ptr::null_mut(),
            disruptive: 0,
        };
        // SAFETY: `tx` is live (caller); `it` initialised as the header's `clean()` does.
        let ret = unsafe { (self.api.intervention)(tx, &mut it) };
        let log = (!it.log.is_null()).then(|| {
            // SAFETY: a strdup'ed C string we now own.
            let s = unsafe { CStr::from_ptr(it.log) }.to_string_lossy().into_owned();
            unsafe { free(it.log as *mut c_void) };
            s
        });
        if !it.url.is_null() {
            // SAFETY: as above.
            unsafe { free(it.url as *mut c_void) };
        }
        (ret != 0 && it.disruptive != 0).then_some((it.status, log))
    }
}

// SAFETY: the peer owns its `ModSecurity` and rule set exclusively and libmodsecurity3 ties
// neither to the thread that made them (connectors run transactions on worker threads), so
// moving a peer to another thread is sound. It is not `Sync`: `run` takes `&mut self`.
unsafe impl Send for ModSecPeer {}

impl Drop for ModSecPeer {
    fn drop(&mut self) {
        // SAFETY: created in `with_api`, freed once here; no transaction is live.
        unsafe {
            if !self.rules.is_null() {
                (self.api.rules_cleanup)(self.rules);
            }
            (self.api.cleanup)(self.msc);
        }
    }
}

impl Engine for ModSecPeer {
    fn name(&self) -> &str {
        "modsec"
    }

    /// A transaction that cannot even be created (allocation failure in the library) is
    /// reported on stderr and answered as a `500` disruption: the request was not let through.
    fn decide(&mut self, req: &Request) -> Decision {
        match self.run(req) {
            Ok(o) => o.decision,
            Err(e) => {
                eprintln!("modsec: {}: {e}", req.id);
                Decision {
                    id: req.id.clone(),
                    status: 500,
                    disruptive: true,
                    matched_ids: Vec::new(),
                    anomaly_score: 0,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_read_from_log_lines() {
        let cases = [
            (
                r#"ModSecurity: Warning. Matched "x" [file "a"] [line "3"] [id "942100"] [rev ""]"#,
                Some("942100"),
            ),
            (r#"[id "1"] [id "2"]"#, Some("1")),
            (r#"[id ""]"#, None),
            (r#"[id "12"#, None),
            ("no id here", None),
        ];
        for (line, want) in cases {
            assert_eq!(rule_id_of(line), want, "{line}");
        }
    }

    #[test]
    fn http_version_is_passed_as_connectors_do() {
        for (v, want) in
            [("HTTP/1.1", "1.1"), ("HTTP/0.9", "0.9"), ("JUNK/1.0", "JUNK/1.0"), ("", "")]
        {
            assert_eq!(http_version_arg(v), want);
        }
    }

    #[test]
    fn probe_scores_parse_and_default_to_zero() {
        assert_eq!(probe_score("[msg \"wafbench-probe anomaly_score=15\"]"), Some(15));
        assert_eq!(probe_score("[msg \"wafbench-probe anomaly_score=\"]"), Some(0));
        assert_eq!(probe_score("other"), None);
    }

    #[test]
    fn c_strings_stop_at_nul() {
        assert_eq!(c_string(b"/a\0b").as_bytes(), b"/a");
        assert_eq!(c_string(b"").as_bytes(), b"");
    }

    #[test]
    fn other_rule_formats_are_printed_as_seclang() {
        let e = seclang_for_spec("/nonexistent/rules.json", None).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/rules.json"), "{e}");
        let text = seclang_for_spec("default", None).unwrap();
        assert!(text.contains("id:300"), "the SecLang half of the default rule set");
        assert!(text.contains("id:100000"), "the Cloudflare-style half, printed as SecLang");
        let e = seclang_for_spec("/nonexistent/x.conf", None).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/x.conf"), "{e}");
    }
}
