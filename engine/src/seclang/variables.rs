//! Variable lists (`ARGS|!ARGS:foo|&TX:x|REQUEST_COOKIES:/^__utm/|XML:/*`) and macros
//! (`%{tx.anomaly_score}`).
//!
//! Rules taken from v3's scanner (EXPECTING_VARIABLE / EXPECTING_VAR_PARAMETER states):
//! elements are separated by `|` or `,`; `!` excludes, `&` counts; the key follows `:` or `.`;
//! `/.../` selects keys by regex (the regex may not contain `|` or white space unless written
//! `'/.../'`); `'...'` quotes a key (`\'` and `\\` escape). `XML`'s key is an XPath
//! expression, never a regex, so `XML:/*` and `XML://@*` are keys.

use super::error::{ParseErrorKind, Spanned};
use super::lexer::closing_single_quote;
use crate::ir::{MacroPart, MacroString, Selector, Target, Variable};

/// Parses a variable list. Offsets in errors are relative to `s`.
pub(crate) fn parse_targets(s: &str) -> Result<Vec<Target>, Spanned> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        let (t, next) = parse_one(s, i)?;
        out.push(t);
        i = next;
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        match b.get(i) {
            None => return Ok(out),
            Some(b'|' | b',') => i += 1,
            Some(_) => {
                return Err(Spanned::new(
                    ParseErrorKind::Unexpected {
                        expected: "`|` between variables".into(),
                        found: excerpt(&s[i..]),
                    },
                    i,
                ));
            }
        }
    }
}

pub(crate) fn excerpt(s: &str) -> String {
    s.chars().take(40).collect()
}

fn parse_one(s: &str, mut i: usize) -> Result<(Target, usize), Spanned> {
    let b = s.as_bytes();
    let mut exclude = false;
    let mut count = false;
    if b.get(i) == Some(&b'!') {
        exclude = true;
        i += 1;
    }
    if b.get(i) == Some(&b'&') {
        count = true;
        i += 1;
    }
    let name_start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    let name = &s[name_start..i];
    if name.is_empty() {
        let found = excerpt(&s[i..]);
        return Err(Spanned::new(
            ParseErrorKind::Unexpected { expected: "a variable".into(), found },
            i,
        ));
    }
    let variable = Variable::from_name(name)
        .ok_or_else(|| Spanned::new(ParseErrorKind::UnknownVariable(name.into()), name_start))?;
    let mut selector = None;
    if matches!(b.get(i), Some(b':' | b'.')) {
        i += 1;
        let (sel, next) = parse_selector(s, i, variable)?;
        selector = Some(sel);
        i = next;
    }
    Ok((Target { variable, selector, exclude, count }, i))
}

fn is_delim(b: Option<&u8>) -> bool {
    matches!(b, None | Some(b'|' | b',' | b' ' | b'\t'))
}

/// The regex of a key written `/.../` (a quoted target key, or a macro's key), `None` for a
/// plain key. `XML`'s keys are XPath expressions, never regexes.
pub(crate) fn regex_key(variable: Variable, key: &str) -> Option<&str> {
    (variable != Variable::Xml && key.len() >= 2 && key.starts_with('/') && key.ends_with('/'))
        .then(|| &key[1..key.len() - 1])
}

fn parse_selector(s: &str, start: usize, variable: Variable) -> Result<(Selector, usize), Spanned> {
    let b = s.as_bytes();
    if b.get(start) == Some(&b'\'') {
        let close = closing_single_quote(b, start + 1)
            .ok_or_else(|| Spanned::new(ParseErrorKind::UnbalancedQuote, start))?;
        let inner = &s[start + 1..close];
        let sel = match regex_key(variable, inner) {
            Some(re) => Selector::Regex(re.to_string()),
            None => Selector::Key(unescape_single(inner)),
        };
        return Ok((sel, close + 1));
    }
    if variable != Variable::Xml && b.get(start) == Some(&b'/') {
        // The regex ends at the first `/` that is followed by the end of the element.
        let mut j = start + 1;
        while j < b.len() && !matches!(b[j], b'|' | b' ' | b'\t') {
            if b[j] == b'/' && j > start + 1 && is_delim(b.get(j + 1)) {
                return Ok((Selector::Regex(s[start + 1..j].to_string()), j + 1));
            }
            j += 1;
        }
    }
    let mut j = start;
    while !is_delim(b.get(j)) {
        j += 1;
    }
    if j == start {
        return Err(Spanned::new(
            ParseErrorKind::Unexpected {
                expected: "a key after `:`".into(),
                found: excerpt(&s[j..]),
            },
            j,
        ));
    }
    Ok((Selector::Key(s[start..j].to_string()), j))
}

fn unescape_single(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some(n @ ('\'' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses `%{VAR}` / `%{VAR.key}` / `%{VAR:key}` macros; the rest is literal text, kept
/// verbatim (`\%{` is not a macro, as in v3's FREE_TEXT_*_MACRO_EXPANSION patterns).
pub(crate) fn parse_macro_string(s: &str) -> Result<MacroString, Spanned> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b'%' && b.get(i + 1) == Some(&b'{') {
            let close = s[i + 2..]
                .find('}')
                .map(|p| p + i + 2)
                .ok_or_else(|| Spanned::new(ParseErrorKind::UnterminatedMacro, i))?;
            let inner = &s[i + 2..close];
            let (name, key) = match inner.find(['.', ':']) {
                Some(p) => (&inner[..p], Some(inner[p + 1..].to_string())),
                None => (inner, None),
            };
            let var = Variable::from_name(name.trim())
                .ok_or_else(|| Spanned::new(ParseErrorKind::UnknownVariable(name.into()), i + 2))?;
            if i > lit_start {
                parts.push(MacroPart::Lit(s[lit_start..i].to_string()));
            }
            parts.push(MacroPart::Var { var, key });
            i = close + 1;
            lit_start = i;
            continue;
        }
        i += 1;
    }
    if lit_start < b.len() {
        parts.push(MacroPart::Lit(s[lit_start..].to_string()));
    }
    Ok(MacroString { parts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: Variable, sel: Option<Selector>, exclude: bool, count: bool) -> Target {
        Target { variable: v, selector: sel, exclude, count }
    }
    fn key(k: &str) -> Option<Selector> {
        Some(Selector::Key(k.into()))
    }
    fn rx(k: &str) -> Option<Selector> {
        Some(Selector::Regex(k.into()))
    }

    #[test]
    fn target_lists() {
        use Variable::*;
        let cases: Vec<(&str, Vec<Target>)> = vec![
            ("ARGS", vec![t(Args, None, false, false)]),
            (
                "args_names|ARGS",
                vec![t(ArgsNames, None, false, false), t(Args, None, false, false)],
            ),
            ("&TX:x", vec![t(Tx, key("x"), false, true)]),
            (
                "TX.x,!ARGS:foo",
                vec![t(Tx, key("x"), false, false), t(Args, key("foo"), true, false)],
            ),
            ("!REQUEST_COOKIES:/__utm/", vec![t(RequestCookies, rx("__utm"), true, false)]),
            (
                "ARGS:/^a{1,2}$/|X",
                vec![t(Args, rx("^a{1,2}$"), false, false), t(Xml, None, false, false)],
            ),
            ("ARGS:'/a|b/'", vec![t(Args, rx("a|b"), false, false)]),
            ("ARGS:'a b\\'c'", vec![t(Args, key("a b'c"), false, false)]),
            ("XML:/*", vec![t(Xml, key("/*"), false, false)]),
            ("XML://@*", vec![t(Xml, key("//@*"), false, false)]),
            ("XML:/a/", vec![t(Xml, key("/a/"), false, false)]),
            ("ARGS:/foo", vec![t(Args, key("/foo"), false, false)]),
        ];
        for (src, want) in cases {
            // `X` is not a variable: make the second case use XML instead.
            let src = src.replace("|X", "|XML");
            assert_eq!(parse_targets(&src).unwrap(), want, "{src}");
        }
    }

    #[test]
    fn target_errors() {
        let cases: &[(&str, usize)] =
            &[("ARGS|NOPE", 5), ("ARGS:'x", 5), ("ARGS|", 5), ("ARGS:", 5)];
        for (src, at) in cases {
            assert_eq!(parse_targets(src).unwrap_err().at, *at, "{src}");
        }
        assert!(matches!(
            parse_targets("ARGS|NOPE").unwrap_err().kind,
            ParseErrorKind::UnknownVariable(n) if n == "NOPE"
        ));
    }

    #[test]
    fn macros() {
        let m = parse_macro_string("a %{tx.x}%{MATCHED_VAR} %{rule.id}\\%{no}").unwrap();
        assert_eq!(
            m.parts,
            vec![
                MacroPart::Lit("a ".into()),
                MacroPart::Var { var: Variable::Tx, key: Some("x".into()) },
                MacroPart::Var { var: Variable::MatchedVar, key: None },
                MacroPart::Lit(" ".into()),
                MacroPart::Var { var: Variable::Rule, key: Some("id".into()) },
                MacroPart::Lit("\\%{no}".into()),
            ]
        );
        assert_eq!(parse_macro_string("x%{tx.a").unwrap_err().at, 1);
        assert_eq!(parse_macro_string("%{bogus}").unwrap_err().at, 2);
        assert_eq!(parse_macro_string("").unwrap(), MacroString::default());
    }
}
