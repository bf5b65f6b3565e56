//! The operator argument of a `SecRule`: `"@rx foo"`, `"!@pm a b"`, `"foo"` (no `@` means
//! `@rx`), data files for `@pmFromFile` / `@ipMatchFromFile`.
//!
//! As in v3's scanner, exactly one space separates the operator name from its argument, and
//! the argument is kept verbatim (a quoted `\\` reaches PCRE as `\\`).

use super::error::{ParseErrorKind, Spanned};
use super::variables::{excerpt, parse_macro_string};
use crate::ir::{DataFile, Operator, OperatorKind};
use std::path::Path;

/// Parses an operator. `base_dir` resolves data files; offsets are relative to `s`.
pub(crate) fn parse_operator(s: &str, base_dir: Option<&Path>) -> Result<Operator, Spanned> {
    let lead = s.len() - s.trim_start_matches([' ', '\t']).len();
    let mut i = lead;
    let negated = s[i..].starts_with('!');
    if negated {
        i += 1;
        i += s[i..].len() - s[i..].trim_start_matches([' ', '\t']).len();
    }
    if !s[i..].starts_with('@') {
        let arg = &s[i..];
        // v3's grammar has no empty operator: `""` and `"!"` are syntax errors there.
        if arg.is_empty() {
            return Err(Spanned::new(ParseErrorKind::MissingOperatorArgument("@rx".into()), i));
        }
        return Ok(Operator { negated, kind: OperatorKind::Rx(rx_arg(arg, i)?) });
    }
    let name_at = i;
    let name_end =
        s[i + 1..].find(|c: char| !c.is_ascii_alphanumeric()).map_or(s.len(), |p| p + i + 1);
    let name = &s[i + 1..name_end];
    let (arg, arg_at) = match s[name_end..].strip_prefix(' ') {
        Some(rest) => (rest, name_end + 1),
        None => (&s[name_end..], name_end),
    };
    // v3's grammar wants a parameter after every operator but these (`@rx ` with nothing
    // after the space is a syntax error there; `@rx  `, a one-space pattern, is not).
    let bare = [
        "detectsqli",
        "detectxss",
        "validateurlencoding",
        "validateutf8encoding",
        "unconditionalmatch",
        "nomatch",
        "geolookup",
    ];
    if arg.is_empty() && !bare.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(Spanned::new(
            ParseErrorKind::MissingOperatorArgument(format!("@{name}")),
            name_at,
        ));
    }
    let ms = |a: &str| parse_macro_string(a).map_err(|e| e.shift(arg_at));
    let text = || arg.to_string();
    let kind = match name.to_ascii_lowercase().as_str() {
        "rx" => OperatorKind::Rx(rx_arg(arg, arg_at)?),
        "pm" => OperatorKind::Pm(arg.split_whitespace().map(str::to_string).collect()),
        "pmfromfile" | "pmf" => OperatorKind::PmFromFile(data_file(arg, arg_at, base_dir)?),
        "ipmatch" => OperatorKind::IpMatch(
            arg.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect(),
        ),
        "ipmatchfromfile" | "ipmatchf" => {
            OperatorKind::IpMatchFromFile(data_file(arg, arg_at, base_dir)?)
        }
        "eq" => OperatorKind::Eq(ms(arg)?),
        "ge" => OperatorKind::Ge(ms(arg)?),
        "gt" => OperatorKind::Gt(ms(arg)?),
        "le" => OperatorKind::Le(ms(arg)?),
        "lt" => OperatorKind::Lt(ms(arg)?),
        "streq" => OperatorKind::StrEq(ms(arg)?),
        "strmatch" => OperatorKind::StrMatch(ms(arg)?),
        "beginswith" => OperatorKind::BeginsWith(ms(arg)?),
        "endswith" => OperatorKind::EndsWith(ms(arg)?),
        "contains" => OperatorKind::Contains(ms(arg)?),
        "containsword" => OperatorKind::ContainsWord(ms(arg)?),
        "within" => OperatorKind::Within(ms(arg)?),
        "detectsqli" => OperatorKind::DetectSqli,
        "detectxss" => OperatorKind::DetectXss,
        "validatebyterange" => OperatorKind::ValidateByteRange(byte_ranges(arg, arg_at)?),
        "validateurlencoding" => OperatorKind::ValidateUrlEncoding,
        "validateutf8encoding" => OperatorKind::ValidateUtf8Encoding,
        "validatedtd" => OperatorKind::ValidateDtd(text()),
        "validateschema" => OperatorKind::ValidateSchema(text()),
        "validatehash" => OperatorKind::ValidateHash(text()),
        "verifycc" => OperatorKind::VerifyCc(text()),
        "verifycpf" => OperatorKind::VerifyCpf(text()),
        "verifyssn" => OperatorKind::VerifySsn(text()),
        "rbl" => OperatorKind::Rbl(text()),
        "geolookup" => OperatorKind::GeoLookup,
        "gsblookup" => OperatorKind::GsbLookup(text()),
        "inspectfile" => OperatorKind::InspectFile(text()),
        "fuzzyhash" => OperatorKind::FuzzyHash(text()),
        "unconditionalmatch" => OperatorKind::UnconditionalMatch,
        "nomatch" => OperatorKind::NoMatch,
        "rxglobal" | "rsub" | "verifysvnr" => {
            return Err(Spanned::new(
                ParseErrorKind::UnsupportedOperator(format!("@{name}")),
                name_at,
            ));
        }
        _ => {
            return Err(Spanned::new(ParseErrorKind::UnknownOperator(format!("@{name}")), name_at));
        }
    };
    Ok(Operator { negated, kind })
}

fn rx_arg(arg: &str, at: usize) -> Result<crate::ir::MacroString, Spanned> {
    let m = parse_macro_string(arg).map_err(|e| e.shift(at))?;
    // A pattern with macros is only known at run time; check the ones we can.
    if let Some(p) = m.as_literal() {
        check_regex(p).map_err(|e| e.shift(at))?;
    }
    Ok(m)
}

/// Refuses patterns PCRE could not compile either. regex-syntax checks most of them with a
/// precise position; what it refuses may still be PCRE (lookbehind, backreferences,
/// possessive quantifiers, all in CRS 3.3.4), so fancy-regex gets a second look, with
/// possessive `++`/`*+`/`?+` relaxed to greedy quantifiers (same structure, and fancy-regex
/// has no possessive syntax).
pub(crate) fn check_regex(p: &str) -> Result<(), Spanned> {
    let err = match syntax_check(p) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if let regex_syntax::Error::Parse(pe) = &*err {
        // Deep nesting: do not hand it to a recursive parser.
        if matches!(pe.kind(), regex_syntax::ast::ErrorKind::NestLimitExceeded(_)) {
            return Err(Spanned::new(
                ParseErrorKind::BadRegex(pe.kind().to_string()),
                pe.span().start.offset,
            ));
        }
    }
    let pcre = pcre_to_rust_syntax(p);
    if syntax_check(&pcre).is_ok() || fancy_regex::Regex::new(&pcre).is_ok() {
        return Ok(());
    }
    let (msg, at) = match &*err {
        regex_syntax::Error::Parse(e) => (e.kind().to_string(), e.span().start.offset),
        regex_syntax::Error::Translate(e) => (e.kind().to_string(), e.span().start.offset),
        _ => (err.to_string(), 0),
    };
    Err(Spanned::new(ParseErrorKind::BadRegex(msg), at))
}

fn syntax_check(p: &str) -> Result<(), Box<regex_syntax::Error>> {
    let ast = regex_syntax::ast::parse::ParserBuilder::new()
        .nest_limit(250)
        .build()
        .parse(p)
        .map_err(|e| Box::new(regex_syntax::Error::Parse(e)))?;
    regex_syntax::hir::translate::TranslatorBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .translate(p, &ast)
        .map_err(|e| Box::new(regex_syntax::Error::Translate(e)))?;
    Ok(())
}

/// Rewrites PCRE spellings that mean the same thing into ones regex-syntax reads, for
/// validation only: an escaped punctuation character becomes `\x{HH}` (PCRE allows `\'`,
/// regex-syntax does not), a `[` inside a class is literal in PCRE (regex-syntax would open a
/// nested class), and possessive `++`/`*+`/`?+`/`}+` lose their `+` (same structure; neither
/// regex-syntax nor fancy-regex has possessive syntax).
fn pcre_to_rust_syntax(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len() + 16);
    let mut in_class = false;
    let mut class_start = 0usize;
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' => {
                if let Some(&n) = b.get(i + 1) {
                    if n.is_ascii_punctuation() {
                        out.push_str(&p[last..i]);
                        out.push_str(&format!("\\x{{{n:02X}}}"));
                        last = i + 2;
                    }
                }
                i += 2;
                continue;
            }
            b'[' if !in_class => {
                in_class = true;
                class_start = i;
                // `[]...]` and `[^]...]`: a leading `]` is literal.
                let mut j = i + 1;
                if b.get(j) == Some(&b'^') {
                    j += 1;
                }
                if b.get(j) == Some(&b']') {
                    out.push_str(&p[last..j]);
                    out.push_str("\\x{5D}");
                    last = j + 1;
                    i = j + 1;
                    continue;
                }
            }
            b'[' if in_class && b.get(i + 1) != Some(&b':') => {
                out.push_str(&p[last..i]);
                out.push_str("\\x{5B}");
                last = i + 1;
            }
            b']' if in_class && i > class_start => in_class = false,
            b'+' if !in_class
                && i > 0
                && matches!(b[i - 1], b'+' | b'*' | b'?' | b'}')
                && !escaped(b, i - 1) =>
            {
                out.push_str(&p[last..i]);
                last = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&p[last.min(p.len())..]);
    out
}

fn escaped(b: &[u8], i: usize) -> bool {
    let n = b[..i].iter().rev().take_while(|&&c| c == b'\\').count();
    n % 2 == 1
}

fn byte_ranges(arg: &str, at: usize) -> Result<Vec<(u8, u8)>, Spanned> {
    let mut out = Vec::new();
    let mut off = 0;
    for part in arg.split(',') {
        let here = at + off + (part.len() - part.trim_start().len());
        off += part.len() + 1;
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let num = |s: &str| -> Result<u8, Spanned> {
            s.trim().parse::<u8>().map_err(|_| {
                Spanned::new(
                    ParseErrorKind::BadValue {
                        name: "@validateByteRange".into(),
                        reason: format!("`{}` is not a byte value 0-255", excerpt(s)),
                    },
                    here,
                )
            })
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(Spanned::new(
                ParseErrorKind::BadValue {
                    name: "@validateByteRange".into(),
                    reason: format!("range `{part}` is reversed"),
                },
                here,
            ));
        }
        out.push((lo, hi));
    }
    if out.is_empty() {
        return Err(Spanned::new(
            ParseErrorKind::BadValue {
                name: "@validateByteRange".into(),
                reason: "no ranges".into(),
            },
            at,
        ));
    }
    Ok(out)
}

/// Resolves and reads a data file: one entry a line; blank lines and `#` comments are
/// dropped and trailing white space (a Windows `\r` included) is trimmed, as v3's
/// `PmFromFile::init` and `IpMatchFromFile` do.
fn data_file(arg: &str, at: usize, base_dir: Option<&Path>) -> Result<DataFile, Spanned> {
    let name = arg.trim();
    if name.is_empty() {
        return Err(Spanned::new(
            ParseErrorKind::BadValue {
                name: "data file".into(),
                reason: "missing file name".into(),
            },
            at,
        ));
    }
    let p = Path::new(name);
    let path = match base_dir {
        Some(d) if p.is_relative() => d.join(p),
        _ => p.to_path_buf(),
    };
    let path = std::path::absolute(&path).unwrap_or(path);
    let text = std::fs::read(&path).map_err(|e| {
        Spanned::new(
            ParseErrorKind::MissingDataFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            },
            at,
        )
    })?;
    let text = String::from_utf8_lossy(&text);
    let entries = text
        .lines()
        .map(|l| l.trim_end_matches([' ', '\t', '\r', '\n']))
        .filter(|l| !l.is_empty() && !l.trim_start().starts_with('#'))
        .map(str::to_string)
        .collect();
    Ok(DataFile { path: path.display().to_string(), entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::MacroString;

    fn op(s: &str) -> Operator {
        parse_operator(s, None).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn operators() {
        let cases: Vec<(&str, Operator)> = vec![
            (
                "@rx ^a$",
                Operator { negated: false, kind: OperatorKind::Rx(MacroString::literal("^a$")) },
            ),
            (
                "foo",
                Operator { negated: false, kind: OperatorKind::Rx(MacroString::literal("foo")) },
            ),
            (
                "!@RX  x",
                Operator { negated: true, kind: OperatorKind::Rx(MacroString::literal(" x")) },
            ),
            (
                "!foo",
                Operator { negated: true, kind: OperatorKind::Rx(MacroString::literal("foo")) },
            ),
            (
                "@pm a  b c",
                Operator {
                    negated: false,
                    kind: OperatorKind::Pm(vec!["a".into(), "b".into(), "c".into()]),
                },
            ),
            (
                "@ipMatch 1.2.3.4, 10.0.0.0/8",
                Operator {
                    negated: false,
                    kind: OperatorKind::IpMatch(vec!["1.2.3.4".into(), "10.0.0.0/8".into()]),
                },
            ),
            (
                "@validateByteRange 1-255,9",
                Operator {
                    negated: false,
                    kind: OperatorKind::ValidateByteRange(vec![(1, 255), (9, 9)]),
                },
            ),
            ("@detectSQLi", Operator { negated: false, kind: OperatorKind::DetectSqli }),
            (
                "@eq 0",
                Operator { negated: false, kind: OperatorKind::Eq(MacroString::literal("0")) },
            ),
            // v3 keeps a quoted `\\` verbatim.
            (
                r"@rx a\\b",
                Operator { negated: false, kind: OperatorKind::Rx(MacroString::literal(r"a\\b")) },
            ),
        ];
        for (src, want) in cases {
            assert_eq!(op(src), want, "{src}");
        }
    }

    #[test]
    fn pcre_only_constructs_are_accepted() {
        for p in [
            r"(?<!a)b",
            r"(a)\1",
            r"(?!xml)",
            r"a++b",
            r"[a-z]*+x",
            r"\x5c\/",
            r"a{2,}+",
            r#"[\'\"]"#,
            r"[([]",
            r"[^a[\x5c\]{}]+",
            r"[]a]",
        ] {
            assert!(check_regex(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn broken_things_are_errors_with_positions() {
        let cases: &[(&str, usize)] = &[
            ("@rx a(b", 5),
            ("@nope x", 0),
            ("@validateByteRange 1-300", 19),
            ("@validateByteRange 9-1", 19),
            ("@rx %{tx.a", 4),
            ("@pmFromFile /nonexistent/wafbench.data", 12),
            ("@rsub x", 0),
        ];
        for (src, at) in cases {
            let e = parse_operator(src, None).unwrap_err();
            assert_eq!(e.at, *at, "{src}: {e:?}");
        }
        let deep = format!("@rx {}", "(".repeat(100_000));
        assert!(matches!(
            parse_operator(&deep, None).unwrap_err().kind,
            ParseErrorKind::BadRegex(_)
        ));
    }

    #[test]
    fn data_files_resolve_and_trim() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("x.data"), "# c\nfoo \r\n\n  bar\nbaz\t\n").unwrap();
        let o = parse_operator("@pmf x.data", Some(d.path())).unwrap();
        let OperatorKind::PmFromFile(df) = o.kind else { panic!() };
        assert_eq!(df.entries, ["foo", "  bar", "baz"]);
        assert!(Path::new(&df.path).is_absolute());
    }
}
