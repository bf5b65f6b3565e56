//! `@detectSQLi` and `@detectXSS` on libinjection.
//!
//! libmodsecurity3 calls C libinjection (`libinjection_sqli`, `libinjection_xss`, embedded in
//! libmodsecurity.so.3). We use the `libinjectionrs` port, whose agreement with the C library
//! is measured by `engine/tests/operator_libinjection.rs` (it dlopens libmodsecurity.so.3 and
//! compares on ~100k inputs).
//!
//! Capture (detect_sqli.cc / detect_xss.cc): on a SQLi match TX.0 is the fingerprint
//! (e.g. `s&sos`); on an XSS match TX.0 is the whole input.

/// The SQLi fingerprint when the input is SQL injection, `None` otherwise.
pub fn detect_sqli(input: &[u8]) -> Option<Vec<u8>> {
    let r = libinjectionrs::detect_sqli(input);
    if !r.is_injection() {
        return None;
    }
    Some(r.fingerprint.map(|f| f.as_str().as_bytes().to_vec()).unwrap_or_default())
}

/// True when libinjection's XSS detector flags the input.
pub fn detect_xss(input: &[u8]) -> bool {
    libinjectionrs::detect_xss(input).is_injection()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_payloads() {
        let sqli: &[(&[u8], Option<&[u8]>)] = &[
            (b"1' OR '1'='1", Some(b"s&sos")),
            (b"1 UNION SELECT password FROM users--", Some(b"1UEnk")),
            (b"hello world", None),
            (b"", None),
            (b"\xff\x00\xfe", None),
        ];
        for (input, want) in sqli {
            assert_eq!(detect_sqli(input).as_deref(), *want, "{input:?}");
        }
        let xss: &[(&[u8], bool)] = &[
            (b"<script>alert(1)</script>", true),
            (b"<img src=x onerror=alert(1)>", true),
            (b"just text", false),
            (b"", false),
        ];
        for (input, want) in xss {
            assert_eq!(detect_xss(input), *want, "{input:?}");
        }
    }
}
