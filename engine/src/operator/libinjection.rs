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

/// The SQLi fingerprint when the input is SQL injection, `None` otherwise.
pub fn detect_sqli(input: &[u8]) -> Option<Vec<u8>> {
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

    #[test]
    fn c_backend_has_the_old_event_handler_rule() {
        if backend_name() != "c" {
            eprintln!("NOTICE: C libinjection not loaded; skipped");
            return;
        }
        // ModSecurity 3.0.9's libinjection: any `on...` attribute of 5+ bytes is a handler.
        assert!(detect_xss(b"<a onerr_or=1>"));
    }
}
