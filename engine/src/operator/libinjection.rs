//! `@detectSQLi` and `@detectXSS` on libinjection.
//!
//! libmodsecurity3 calls C libinjection (`libinjection_sqli`, `libinjection_xss`, compiled into
//! libmodsecurity.so.3). Two backends, chosen once per process:
//! - **C** (default when present): the very functions libmodsecurity.so.3 exports, loaded with
//!   `dlopen`. Exact by construction.
//! - **Rust**: the `libinjectionrs` 0.1.1 port. `engine/tests/operator_libinjection.rs`
//!   measured it against the C library on 100,000 inputs (CRS regression payloads + seeded
//!   mutations): 13 SQLi (0.013%) and 40 XSS (0.040%) disagreements. The XSS ones come from a
//!   libinjection version change: the C copy in ModSecurity 3.0.9 calls every attribute of 5+
//!   bytes starting with `on` an event handler (`onerr_or=`), the port only known event names;
//!   the SQLi ones are `into outfile '\\...` forms the port does not flag. Neither is a local
//!   bug a wrapper could patch, hence the C backend.
//!
//! `WAF_LIBINJECTION=rust` forces the port, `WAF_LIBINJECTION=c` requires the C library (the
//! port is used, with a message on stderr, when it cannot be loaded), anything else = auto.
//!
//! Capture (detect_sqli.cc / detect_xss.cc): on a SQLi match TX.0 is the fingerprint
//! (e.g. `s&sos`); on an XSS match TX.0 is the whole input.

use std::sync::OnceLock;

/// Where libmodsecurity3 lives on Debian/Ubuntu x86-64; the soname is tried next.
const LIBMODSECURITY: &[&str] =
    &["/usr/lib/x86_64-linux-gnu/libmodsecurity.so.3", "libmodsecurity.so.3"];

type SqliFn = unsafe extern "C" fn(*const u8, usize, *mut u8) -> i32;
type XssFn = unsafe extern "C" fn(*const u8, usize) -> i32;

enum Backend {
    C {
        sqli: SqliFn,
        xss: XssFn,
        /// Keeps the library mapped for the life of the process.
        _lib: libloading::Library,
    },
    Rust,
}

static BACKEND: OnceLock<Backend> = OnceLock::new();

fn load_c() -> Option<Backend> {
    for path in LIBMODSECURITY {
        // SAFETY: loading libmodsecurity3 runs its C++ static initialisers, which only set up
        // the library's own globals; the two symbols are libinjection's public C API
        // (libinjection.h): `int libinjection_sqli(const char*, size_t, char fp[8])` and
        // `int libinjection_xss(const char*, size_t)`, both pure functions of their input.
        unsafe {
            let Ok(lib) = libloading::Library::new(path) else { continue };
            let sqli = lib.get::<SqliFn>(b"libinjection_sqli\0").ok().map(|s| *s);
            let xss = lib.get::<XssFn>(b"libinjection_xss\0").ok().map(|s| *s);
            if let (Some(sqli), Some(xss)) = (sqli, xss) {
                return Some(Backend::C { sqli, xss, _lib: lib });
            }
        }
    }
    None
}

fn backend() -> &'static Backend {
    BACKEND.get_or_init(|| match std::env::var("WAF_LIBINJECTION").as_deref() {
        Ok("rust") => Backend::Rust,
        Ok("c") => load_c().unwrap_or_else(|| {
            eprintln!(
                "WAF_LIBINJECTION=c but libmodsecurity.so.3 cannot be loaded; using libinjectionrs"
            );
            Backend::Rust
        }),
        _ => load_c().unwrap_or(Backend::Rust),
    })
}

/// `"c"` (libmodsecurity.so.3's libinjection) or `"rust"` (libinjectionrs).
pub fn backend_name() -> &'static str {
    match backend() {
        Backend::C { .. } => "c",
        Backend::Rust => "rust",
    }
}

/// Whether the backend was chosen (and, for C, the library loaded) in this process.
pub fn backend_loaded() -> bool {
    BACKEND.get().is_some()
}

/// The SQLi fingerprint when the input is SQL injection, `None` otherwise.
///
/// A single word (letters, digits and `_`, not starting with a digit) or a run of digits is
/// never flagged, and is not handed to the detector; see [`one_sqli_token`]. About half of
/// what CRS hands `@detectSQLi` in benign traffic is such a word: argument names, numeric ids,
/// session tokens.
pub fn detect_sqli(input: &[u8]) -> Option<Vec<u8>> {
    if one_sqli_token(input) {
        return None;
    }
    SQLI_MEMO.with(|m| match m.try_borrow_mut() {
        Ok(mut m) => m.detect(input),
        Err(_) => detect_sqli_full(input),
    })
}

thread_local! {
    static SQLI_MEMO: std::cell::RefCell<SqliMemo> = std::cell::RefCell::new(SqliMemo::default());
}

/// The SQLi detector's answers for inputs met before on this thread, by their exact bytes
/// ([`crate::memo::InputMemo`]).
///
/// What reaches the detector in benign traffic is mostly the `User-Agent` and `Referer`
/// headers, and a site sees a few dozen of those over and over; one detection of such a
/// value costs about 5,900 instructions (callgrind, CRS PL1, bodiless GETs) and reads some
/// hundred lines of the detector's code and keyword table, which a decision starts without.
/// The answer is a function of the bytes alone, so a value met again is answered from here.
/// A fingerprint is kept with its length: libinjection's have at most five characters.
struct SqliMemo(crate::memo::InputMemo<Option<([u8; 8], u8)>>);

impl Default for SqliMemo {
    fn default() -> Self {
        SqliMemo(crate::memo::InputMemo::new(Self::SLOTS, Self::MAX))
    }
}

impl SqliMemo {
    const SLOTS: usize = 256;
    const MAX: usize = 512;

    fn detect(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        let kept = self.0.get(input, |input| {
            detect_sqli_full(input).map(|fp| {
                let mut b = [0u8; 8];
                let n = fp.len().min(8);
                b[..n].copy_from_slice(&fp[..n]);
                (b, n as u8)
            })
        });
        kept.map(|(fp, n)| fp[..usize::from(n)].to_vec())
    }
}

/// True when libinjection's SQLi tokenizer reads `input` as one token whose fingerprint is no
/// SQLi: a non-empty word of ASCII letters, digits and `_` that starts with a letter or `_`
/// (one bareword or keyword), or a non-empty run of ASCII digits (one number).
///
/// The argument, from libinjection's source (the copy in ModSecurity 3.0.9 and today's):
/// - Without `'` or `"` only the as-is reading runs, and without `-` or `#` (comments) the
///   MySQL re-reading does not; every other byte of such an input is a word byte.
/// - A letter or `_` starts `parse_word` (the `b e n q u x` string forms need a `'` or `&`
///   right after, and fall back to it), which takes every byte up to a delimiter: there is
///   none, so the word is the whole input, and its type is that of a keyword or a bareword.
///   Digits alone are one number (`0x`/`0b` need an `x` or `b`, exponents an `e`).
/// - Folding one token leaves one (or none, for a leading SQL type or unary operator), so
///   the fingerprint has at most one byte. The only one-byte fingerprint on the list is `X`
///   (input the parser gave up on), and no keyword has that type: not SQLi.
///
/// `single_words_and_numbers_are_never_sqli` holds both backends to it, keywords included;
/// a digit followed by letters (`1union`, two tokens) is left to the detector.
fn one_sqli_token(input: &[u8]) -> bool {
    let Some(&first) = input.first() else { return false };
    if first.is_ascii_digit() {
        input.iter().all(u8::is_ascii_digit)
    } else {
        input.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
    }
}

/// libinjection's SQLi detector itself, on the loaded backend.
fn detect_sqli_full(input: &[u8]) -> Option<Vec<u8>> {
    match backend() {
        Backend::C { sqli, .. } => {
            let mut fp = [0u8; 8];
            // SAFETY: pointer and length describe `input` (libinjection reads exactly that
            // many bytes, NULs included); `fp` is the 8-byte buffer the API fills.
            let hit = unsafe { sqli(input.as_ptr(), input.len(), fp.as_mut_ptr()) } != 0;
            hit.then(|| fp.iter().take_while(|&&b| b != 0).copied().collect())
        }
        Backend::Rust => detect_sqli_port(input),
    }
}

/// True when libinjection's XSS detector flags the input.
///
/// An input without `<` and without `=` is never flagged, and is not handed to the
/// detector: every token it reports on (a tag, a comment, a doctype) opens with `<`, and an
/// attribute value it checks must follow an attribute name and `=` (the value an attribute
/// context starts with has no name before it). `no_lt_or_eq_is_never_xss` holds both
/// backends to it. Most benign cookies, user agents and referers take this path.
pub fn detect_xss(input: &[u8]) -> bool {
    memchr::memchr2(b'<', b'=', input).is_some() && detect_xss_full(input)
}

/// [`detect_xss`] without the shortcut.
fn detect_xss_full(input: &[u8]) -> bool {
    match backend() {
        // SAFETY: pointer and length describe `input`.
        Backend::C { xss, .. } => (unsafe { xss(input.as_ptr(), input.len()) }) != 0,
        Backend::Rust => detect_xss_port(input),
    }
}

/// `@detectSQLi` on the libinjectionrs port only.
pub fn detect_sqli_port(input: &[u8]) -> Option<Vec<u8>> {
    let r = libinjectionrs::detect_sqli(input);
    if !r.is_injection() {
        return None;
    }
    Some(r.fingerprint.map(|f| f.as_str().as_bytes().to_vec()).unwrap_or_default())
}

/// `@detectXSS` on the libinjectionrs port only.
pub fn detect_xss_port(input: &[u8]) -> bool {
    libinjectionrs::detect_xss(input).is_injection()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_payloads_on_both_backends() {
        // Fingerprints as C libinjection in libmodsecurity3 3.0.9 gives them.
        let sqli: &[(&[u8], Option<&[u8]>)] = &[
            (b"1' OR '1'='1", Some(b"s&sos")),
            (b"1 UNION SELECT password FROM users--", Some(b"1UEnk")),
            (b"hello world", None),
            (b"", None),
            (b"\xff\x00\xfe", None),
        ];
        let xss: &[(&[u8], bool)] = &[
            (b"<script>alert(1)</script>", true),
            (b"<img src=x onerror=alert(1)>", true),
            (b"just text", false),
            (b"", false),
        ];
        for (input, want) in sqli {
            assert_eq!(detect_sqli(input).as_deref(), *want, "{} {input:?}", backend_name());
            assert_eq!(detect_sqli_port(input).as_deref(), *want, "port {input:?}");
        }
        for (input, want) in xss {
            assert_eq!(detect_xss(input), *want, "{} {input:?}", backend_name());
            assert_eq!(detect_xss_port(input), *want, "port {input:?}");
        }
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// The shortcut of [`detect_xss`]: without `<` and `=`, neither backend flags the
        /// input, however it strings together event handlers, URL schemes, quotes and
        /// entities.
        #[test]
        fn no_lt_or_eq_is_never_xss(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "on", "onerror", "ONLOAD", "onclick", "javascript:", "vbscript:",
                        "data:", "style", "xmlns", "xlink:href", "src", "href", "formaction",
                        "attributename", " ", "\t", "\n", "\x0c", "/", ">", "\"", "'", "`",
                        "&#", "&#x3c;", "&lt;", "!", "-", "--", "?", "[if", "xml", "import",
                        "entity", "alert(1)", "a", "x", "\0", ";", ":", "\\", "%3C", "&",
                        "(", ")", "script", "svg", "iframe",
                    ])
                    .prop_map(|t| t.as_bytes().to_vec()),
                    proptest::collection::vec(
                        proptest::num::u8::ANY.prop_filter("no < or =", |b| *b != b'<' && *b != b'='),
                        1..4,
                    ),
                ],
                0..14,
            )
        ) {
            let input = parts.concat();
            proptest::prop_assert!(!detect_xss_full(&input), "{} {:?}", backend_name(), input);
            proptest::prop_assert!(!detect_xss_port(&input), "port {:?}", input);
        }
    }

    /// SQL words of every keyword type libinjection knows (logic, number-likes, collation,
    /// grouping, expressions, T-SQL, unions, functions, keywords, operators, types,
    /// variables), and forms that sit near its word rules (`b e n q u x` string prefixes,
    /// `0x`/`0b`, exponents, the float suffixes).
    const SQL_WORDS: &[&str] = &[
        "and",
        "or",
        "xor",
        "not",
        "null",
        "true",
        "false",
        "collate",
        "group",
        "limit",
        "having",
        "order",
        "select",
        "insert",
        "update",
        "delete",
        "exec",
        "execute",
        "declare",
        "waitfor",
        "union",
        "except",
        "intersect",
        "sleep",
        "benchmark",
        "char",
        "concat",
        "substring",
        "ascii",
        "load_file",
        "pg_sleep",
        "version",
        "if",
        "ifnull",
        "from",
        "where",
        "into",
        "outfile",
        "dumpfile",
        "case",
        "when",
        "then",
        "else",
        "end",
        "like",
        "rlike",
        "regexp",
        "mod",
        "div",
        "is",
        "in",
        "between",
        "int",
        "varchar",
        "binary",
        "current_user",
        "user",
        "sysdate",
        "sp_password",
        "xp_cmdshell",
        "information_schema",
        "b",
        "e",
        "n",
        "nq",
        "q",
        "u",
        "x",
        "x0",
        "b01",
        "e5",
        "f",
        "d",
        "0x",
        "0b",
        "0x41",
        "1e1",
        "1e",
        "1f",
        "1d",
        "0",
        "1",
        "00",
        "_",
    ];

    /// Pieces that are not word bytes: quotes, comments, operators, spaces.
    const NOT_WORD: &[&str] = &[
        "'", "\"", "`", "-", "--", "#", "/*", "*/", " ", "(", ")", ";", "=", "@", "@@", ".", "$",
        "!", "|", "&", "\0", "\u{a0}", "\u{e9}", "+",
    ];

    #[test]
    fn one_sqli_token_takes_words_and_digit_runs_only() {
        for yes in ["a", "abc", "_", "_a1", "UNION", "Select_1", "x0", "123", "0", "007"] {
            assert!(one_sqli_token(yes.as_bytes()), "{yes:?}");
        }
        for no in ["", "1union", "0x41", "1e1", "a b", "a-b", "a.b", "a'b", "a#", "\u{e9}", "a\0"] {
            assert!(!one_sqli_token(no.as_bytes()), "{no:?}");
        }
        // Words joined by one kind of non-word byte can be SQLi: none may take the short path.
        for sqli in ["a'or'b", "x'or'1", "sleep(5)", "x'or(1)", "1 union select 1"] {
            assert!(detect_sqli(sqli.as_bytes()).is_some(), "{} {sqli:?}", backend_name());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(6000))]

        /// What `detect_sqli` answers itself is what the detector answers: inputs made of SQL
        /// words, digits and other pieces in both cases; the word-only ones take the short
        /// path (and the detector, on both backends, must say they are no SQLi), the rest
        /// must be told apart by `one_sqli_token` correctly (any that it takes is checked too).
        #[test]
        fn single_words_and_numbers_are_never_sqli(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::sample::select(SQL_WORDS.to_vec()).prop_map(str::to_string),
                    1 => proptest::sample::select(NOT_WORD.to_vec()).prop_map(str::to_string),
                    1 => "[0-9]{1,3}",
                    1 => "[A-Za-z_]{1,3}",
                ],
                1..6,
            ),
            upper in proptest::collection::vec(proptest::bool::ANY, 64),
        ) {
            let input: Vec<u8> = parts
                .concat()
                .bytes()
                .zip(upper.iter().cycle())
                .map(|(b, &u)| if u { b.to_ascii_uppercase() } else { b })
                .collect();
            if one_sqli_token(&input) {
                proptest::prop_assert_eq!(detect_sqli(&input), None);
                proptest::prop_assert_eq!(detect_sqli_full(&input), None, "{} {:?}", backend_name(), String::from_utf8_lossy(&input));
                proptest::prop_assert_eq!(detect_sqli_port(&input), None, "port {:?}", String::from_utf8_lossy(&input));
            } else {
                proptest::prop_assert_eq!(detect_sqli(&input), detect_sqli_full(&input));
            }
        }
    }

    /// Every SQL word alone, in three cases and with `_` or digits around it, takes the short
    /// path or goes to the detector as `one_sqli_token` says, and none is SQLi.
    #[test]
    fn sql_words_alone_are_no_sqli() {
        let mut taken = 0;
        for w in SQL_WORDS {
            let mixed: String = w
                .chars()
                .enumerate()
                .map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c })
                .collect();
            for v in [
                w.to_string(),
                w.to_uppercase(),
                mixed,
                format!("{w}_1"),
                format!("_{w}"),
                w.repeat(12),
            ] {
                taken += usize::from(one_sqli_token(v.as_bytes()));
                assert_eq!(detect_sqli_full(v.as_bytes()), None, "{} {v:?}", backend_name());
                assert_eq!(detect_sqli_port(v.as_bytes()), None, "port {v:?}");
            }
        }
        assert!(taken > 400, "only {taken} of the words took the short path");
    }

    #[test]
    fn c_backend_has_the_old_event_handler_rule() {
        if backend_name() != "c" {
            eprintln!("NOTICE: C libinjection not loaded; skipped");
            return;
        }
        // ModSecurity 3.0.9's libinjection: any `on...` attribute of 5+ bytes is a handler.
        assert!(detect_xss(b"<a onerr_or=1>"));
    }

    #[test]
    fn the_sqli_memo_answers_as_the_detector_does() {
        // Inputs that reach the detector (two tokens or more), SQLi or not, in both cases of
        // ASCII (the memo hashes ignoring case but compares exactly), twice each, and more of
        // them than the memo has slots, so slots are taken over and read again.
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for i in 0..(3 * SqliMemo::SLOTS) {
            inputs
                .push(format!("Mozilla/5.0 (X11; Linux x86_64; rv:{i}.0) Gecko/{i}").into_bytes());
            inputs.push(format!("1' OR '{i}'='{i}").into_bytes());
            inputs.push(format!("{i} UNION SELECT password FROM users--").into_bytes());
            inputs.push(format!("{i} union select password from users--").into_bytes());
        }
        inputs.push(vec![b'a'; SqliMemo::MAX + 1]);
        let mut memo = SqliMemo::default();
        let mut hits = 0;
        for round in 0..2 {
            for input in &inputs {
                let want = detect_sqli_full(input);
                assert_eq!(
                    memo.detect(input),
                    want,
                    "round {round} {:?}",
                    String::from_utf8_lossy(input)
                );
                hits += usize::from(want.is_some());
            }
            // The last inputs are still in their slots: asked again, each is answered from
            // there, as the detector answers it.
            for input in inputs.iter().rev().take(SqliMemo::SLOTS / 4) {
                assert_eq!(memo.detect(input), detect_sqli_full(input));
            }
        }
        assert!(hits > 0 && hits < 2 * inputs.len(), "the inputs mix SQLi and not ({hits})");
        assert_eq!(detect_sqli(b"1' OR '1'='1").as_deref(), Some(&b"s&sos"[..]));
        assert_eq!(detect_sqli(b"1' OR '1'='1").as_deref(), Some(&b"s&sos"[..]));
    }
}
