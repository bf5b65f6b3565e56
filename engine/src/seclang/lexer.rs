//! Lexing: physical lines -> logical lines (continuations joined, comments dropped) ->
//! directive tokens.
//!
//! ModSecurity v3 reads configuration with a flex scanner (src/parser/seclang-scanner.ll).
//! The parts reproduced here:
//! - `[ \t]*\\\n[ \t]*` (a backslash right before the newline) continues a directive; between
//!   tokens it separates them, inside a double-quoted string it vanishes without a trace.
//! - `#` starts a comment only where a directive could start. A commented-out `SecRule` or
//!   `SecAction` whose line ends in a backslash comments out its continuation lines as well
//!   (the scanner's COMMENT state).
//! - Inside double quotes a backslash escapes the next character, which only matters for
//!   finding the closing quote: the text is kept verbatim, escapes included (v3 hands the
//!   quoted `\\` and `\"` of an operator straight to PCRE).
//!
//! Every logical line keeps a map from its byte offsets back to file positions, so errors
//! found anywhere later point at the right physical line and column.

use super::error::{ParseErrorKind, Spanned};

/// A directive with its continuation lines joined.
#[derive(Debug)]
pub(crate) struct LogicalLine {
    pub text: String,
    segs: Vec<Seg>,
}

#[derive(Debug, Clone, Copy)]
struct Seg {
    /// Offset in the logical text where this physical piece starts.
    start: usize,
    /// 0-based physical line index.
    line: usize,
    /// Byte offset in the physical line where the piece starts.
    col0: usize,
}

impl LogicalLine {
    /// 1-based line and 1-based character column of a logical offset, and the physical
    /// line index.
    pub fn position(&self, offset: usize, lines: &[&str]) -> (u32, u32, usize) {
        let i = match self.segs.binary_search_by(|s| s.start.cmp(&offset)) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        };
        let seg = self.segs[i];
        let phys = lines.get(seg.line).copied().unwrap_or("");
        let byte = (seg.col0 + offset.saturating_sub(seg.start)).min(phys.len());
        let byte = (0..=byte).rev().find(|&b| phys.is_char_boundary(b)).unwrap_or(0);
        let col = phys[..byte].chars().count() + 1;
        (
            u32::try_from(seg.line + 1).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
            seg.line,
        )
    }

    /// The 1-based physical line where the directive starts.
    pub fn first_line(&self) -> u32 {
        u32::try_from(self.segs.first().map_or(0, |s| s.line) + 1).unwrap_or(u32::MAX)
    }
}

/// Physical lines without their line terminators (`\n` or `\r\n`).
pub(crate) fn physical_lines(text: &str) -> Vec<&str> {
    text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect()
}

fn continues(line: &str) -> bool {
    line.ends_with('\\')
}

fn is_commented_directive(trimmed: &str) -> bool {
    let rest = trimmed.trim_start_matches('#').trim_start_matches([' ', '\t']);
    let starts = |w: &str| rest.get(..w.len()).is_some_and(|p| p.eq_ignore_ascii_case(w));
    starts("SecRule") || starts("SecAction")
}

/// Joins continuation lines and drops comments and blank lines.
pub(crate) fn logical_lines(lines: &[&str]) -> Vec<LogicalLine> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i];
        let trimmed = first.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            i += 1;
            continue;
        }
        if trimmed.starts_with('#') {
            i += 1;
            if is_commented_directive(trimmed) && continues(first) {
                while i < lines.len() {
                    let more = continues(lines[i]);
                    i += 1;
                    if !more {
                        break;
                    }
                }
            }
            continue;
        }
        let mut text = String::with_capacity(first.len());
        let mut segs = Vec::new();
        let mut in_quote = false;
        let mut is_first = true;
        loop {
            let raw = lines[i];
            let cont = continues(raw);
            let mut body = if cont { &raw[..raw.len() - 1] } else { raw };
            let mut col0 = 0;
            if !is_first {
                let t = body.trim_start_matches([' ', '\t']);
                col0 = body.len() - t.len();
                body = t;
            }
            if cont {
                body = body.trim_end_matches([' ', '\t']);
            }
            if !is_first && !in_quote && !text.is_empty() {
                text.push(' ');
            }
            segs.push(Seg { start: text.len(), line: i, col0 });
            text.push_str(body);
            in_quote = quote_state(body, in_quote);
            is_first = false;
            i += 1;
            if !cont || i >= lines.len() {
                break;
            }
        }
        out.push(LogicalLine { text, segs });
    }
    out
}

/// Whether a double-quoted string is still open after `s`.
fn quote_state(s: &str, mut in_quote: bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' => in_quote = !in_quote,
            _ => {}
        }
        i += 1;
    }
    in_quote
}

/// One argument of a directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The text, without the surrounding double quotes, escapes kept verbatim.
    pub text: String,
    /// Offset of `text` in the logical line.
    pub start: usize,
    pub quoted: bool,
}

/// Splits a logical line into whitespace-separated tokens; `"..."` is one token. In a bare
/// token a balanced `'...'` may hold white space (`ARGS:'a b'`).
pub(crate) fn tokenize(line: &str) -> Result<Vec<Token>, Spanned> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' || b[i] == b'\t' || b[i] == b'\r' {
            i += 1;
            continue;
        }
        // libmodsecurity3 reads a `#` where a directive's next argument would start (after
        // white space, or right after a closing quote) as a comment to the end of the line:
        // `SecRule ARGS "@rx x" "id:1,deny" # why` loads there.
        if b[i] == b'#' && !out.is_empty() {
            break;
        }
        if b[i] == b'"' {
            let open = i;
            i += 1;
            let start = i;
            loop {
                match b.get(i) {
                    None => return Err(Spanned::new(ParseErrorKind::UnbalancedQuote, open)),
                    Some(b'\\') => i += 2,
                    Some(b'"') => break,
                    Some(_) => i += 1,
                }
            }
            out.push(Token { text: line[start..i].to_string(), start, quoted: true });
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\r') {
            match b[i] {
                b'\\' => i += 2,
                b'\'' => i = closing_single_quote(b, i + 1).map_or(i + 1, |c| c + 1),
                _ => i += 1,
            }
        }
        let end = i.min(b.len());
        out.push(Token { text: line[start..end].to_string(), start, quoted: false });
    }
    Ok(out)
}

/// Index of the unescaped `'` closing a string whose content starts at `from`.
pub(crate) fn closing_single_quote(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'\'' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Whether `s` can be written between double quotes and read back unchanged: no
/// unescaped `"` and no trailing escaping backslash.
pub(crate) fn fits_in_double_quotes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                if i + 1 >= b.len() {
                    return false;
                }
                i += 2;
            }
            b'"' | b'\n' | b'\r' => return false,
            _ => i += 1,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logical(src: &str) -> Vec<String> {
        logical_lines(&physical_lines(src)).into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn continuation_comments_and_blank_lines() {
        let cases: &[(&str, &[&str])] = &[
            ("SecRule A \\\n    \"@rx x\" \\\n    \"id:1\"", &["SecRule A \"@rx x\" \"id:1\""]),
            // Inside quotes the continuation vanishes with the white space around it.
            ("SecRule A \"@rx a\\\n   b\" \"id:1\"", &["SecRule A \"@rx ab\" \"id:1\""]),
            ("# c\n\n  # d\nSecMarker X\r\n", &["SecMarker X"]),
            ("#SecRule A \\\n#  \"x\" \\\n  \"id:1\"\nSecMarker Y", &["SecMarker Y"]),
            ("# just a comment \\\nSecMarker Z", &["SecMarker Z"]),
            ("SecMarker A # not a comment", &["SecMarker A # not a comment"]),
        ];
        for (src, want) in cases {
            assert_eq!(logical(src), *want, "{src:?}");
        }
    }

    #[test]
    fn positions_map_back_to_physical_lines() {
        let src = "SecRule A \\\n    \"@rx x\" \\\n    \"id:1\"";
        let lines = physical_lines(src);
        let ll = logical_lines(&lines);
        let off = ll[0].text.find("id:1").unwrap();
        assert_eq!(ll[0].position(off, &lines), (3, 6, 2));
        assert_eq!(ll[0].position(0, &lines), (1, 1, 0));
        assert_eq!(ll[0].first_line(), 1);
    }

    #[test]
    fn tokens() {
        let t = tokenize(r#"SecRule ARGS:'a b'|X "@rx \"q\" \\" 'x"#).unwrap();
        let texts: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["SecRule", "ARGS:'a b'|X", r#"@rx \"q\" \\"#, "'x"]);
        assert!(t[2].quoted);
        assert_eq!(t[2].start, 22);
        let e = tokenize("SecRule A \"@rx").unwrap_err();
        assert_eq!(e, Spanned::new(ParseErrorKind::UnbalancedQuote, 10));
    }

    #[test]
    fn double_quote_fitness() {
        assert!(fits_in_double_quotes(r#"a\"b\\"#));
        assert!(!fits_in_double_quotes(r#"a"b"#));
        assert!(!fits_in_double_quotes(r"a\"));
    }
}
