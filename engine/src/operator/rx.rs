//! `@rx`: PCRE patterns run on Rust's linear-time `regex` crate, with `fancy-regex` as the
//! fallback for what only a backtracking engine can do.
//!
//! Data flow: rule argument (PCRE2 syntax, as libmodsecurity3 hands it to `pcre2_compile`)
//! -> [`translate_pcre`] (one pass, no recursion) -> Rust syntax text -> [`RxMatcher`], which
//! holds either a `regex::bytes::Regex` (the common case) or a `fancy_regex::Regex`.
//!
//! What libmodsecurity3 3.0.9 does (src/utils/regex.cc, `Regex::Regex`): it compiles with
//! `PCRE2_DOTALL | PCRE2_MULTILINE` and nothing else, no UTF mode, no caseless (CRS writes
//! `(?i)` itself). An empty pattern is replaced by `.*`. So: `.` matches every byte, `^`/`$`
//! match at line boundaries (`\n`), `\w`/`\d`/`\s`/`\b` are ASCII, and the subject is a byte
//! string. The translation below keeps exactly that:
//! - the linear engine runs with Unicode off, so every class and `.` is byte-based;
//! - the fallback engine only has a `&str` API, so input bytes are mapped one-to-one onto the
//!   code points U+0000..U+00FF (Latin-1) and the pattern's `\xHH` means that code point; the
//!   ASCII classes are spelled out so Unicode never widens them.
//!
//! Known residual differences (documented, not fixed): under `(?i)` the fallback engine also
//! folds Latin-1 letters (bytes 0xC0-0xDE with 0xE0-0xFE), which PCRE's C locale does not.
//!
//! One multiline difference is repaired at match time: Rust's `(?m)^` also matches after a
//! newline that ends the subject, PCRE2's does not (CRS's `^$` on `"foo\n"`). Patterns with
//! `^` keep an exact variant on the backtracking engine, used only for subjects ending in
//! `\n`; the PCRE2 differential test in `engine/tests/operator_crs_rx.rs` caught this.

use super::MatchLimitExceeded;
use std::fmt::Write as _;

/// Backtracking budget of the fallback engine. PCRE2's own default match limit is 10,000,000
/// and libmodsecurity3 3.0.9 does not lower it (it has no `SecPcreMatchLimit` wiring). fancy-regex
/// counts differently (one unit per backtrack push), so we keep its default of one million:
/// every CRS 3.3.4 fallback pattern (920120, 920600, 922110, 942130, 942260, 953120) runs the
/// whole regression corpus far below it, and a hostile input stops in milliseconds.
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// Deepest group nesting accepted; regex-syntax refuses deeper patterns too (its default nest
/// limit is 250) and fancy-regex's parser recurses.
const MAX_NESTING: usize = 250;

/// Compiled-program size cap for the linear engine (bytes). Keeps hostile repetition counts
/// such as `((a{1000}){1000}){100}` from eating memory.
const SIZE_LIMIT: usize = 32 << 20;

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxError {
    /// Byte offset in the PCRE pattern, when the problem is at one place.
    pub offset: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for RxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at offset {o}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Which engine's syntax [`translate_pcre`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `regex::bytes` with Unicode off: `\xHH` is a byte.
    Bytes,
    /// `fancy-regex` on Latin-1 mapped text: `\xHH` is the code point U+00HH.
    Latin1,
    /// A linear-engine *superset* of a backtracking pattern, used as a prefilter: lookaround
    /// and `\Z` are dropped, backreferences become `(?s:.*)`, atomic groups and possessive
    /// quantifiers become ordinary ones. Each change only adds matches, so when the relaxed
    /// pattern does not match, the real one cannot.
    Relaxed,
}

/// The result of translating a PCRE pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// The pattern in Rust syntax, flags included.
    pub text: String,
    /// The pattern uses lookaround, backreferences, atomic groups or possessive quantifiers:
    /// only a backtracking engine can run it.
    pub backtracking: bool,
    /// The pattern has a `^`. In PCRE2's multiline mode `^` does not match after a newline
    /// that ends the subject; Rust's `(?m)^` does. The Latin-1 dialect writes the exact PCRE
    /// assertion (lookaround), and [`RxMatcher`] uses that variant for subjects ending in `\n`.
    pub has_caret: bool,
}

const WORD: &str = "0-9A-Za-z_";
const SPACE: &str = r"\t\n\x0B\x0C\r ";
const HSPACE: &str = r"\t \xA0";
const VSPACE: &str = r"\n\x0B\x0C\r\x85";

/// Translates a PCRE2 pattern (as libmodsecurity3 compiles it: DOTALL | MULTILINE, no UTF)
/// into Rust regex syntax for `dialect`.
///
/// This is the single place where PCRE tolerance is repaired: literal `{`/`}` that do not form a
/// quantifier, escaped punctuation anywhere (`\/`, `\-`, `\<`), `[` and set operators inside
/// classes, `\Q...\E`, octal and control escapes, `(?#...)` comments, `(?'name'...)`. Every
/// literal byte that is not plain ASCII is written as `\xHH` so that non-UTF-8 bytes and
/// Latin-1 text survive.
pub fn translate_pcre(pattern: &str, dialect: Dialect) -> Result<Translation, RxError> {
    let pattern = if pattern.is_empty() { ".*" } else { pattern };
    let mut t = Translator {
        p: pattern.as_bytes(),
        i: 0,
        out: String::with_capacity(pattern.len() + 16),
        backtracking: false,
        dialect,
        groups: 0,
        depth: 0,
        has_caret: false,
        open: Vec::new(),
        // `(?-m)` would turn `^` into `\A`; patterns that touch the m flag keep the plain `^`.
        exact_caret: dialect == Dialect::Latin1 && !touches_multiline_flag(pattern.as_bytes()),
    };
    t.out.push_str("(?sm)");
    t.run()?;
    Ok(Translation { text: t.out, backtracking: t.backtracking, has_caret: t.has_caret })
}

/// Whether an inline flag group such as `(?m)`, `(?-m)` or `(?im:` appears.
fn touches_multiline_flag(p: &[u8]) -> bool {
    p.windows(2).enumerate().filter(|(_, w)| w == b"(?").any(|(i, _)| {
        let flags: Vec<u8> = p[i + 2..]
            .iter()
            .copied()
            .take_while(|b| b.is_ascii_alphabetic() || *b == b'-')
            .collect();
        flags.contains(&b'm') && matches!(p.get(i + 2 + flags.len()), Some(b')' | b':'))
    })
}

struct Translator<'a> {
    has_caret: bool,
    /// One entry per open group: where its text starts in `out` when the Relaxed dialect
    /// drops it (a lookaround), else None.
    open: Vec<Option<usize>>,
    exact_caret: bool,
    p: &'a [u8],
    i: usize,
    out: String,
    backtracking: bool,
    dialect: Dialect,
    groups: usize,
    depth: usize,
}

/// One element of a character class.
enum ClassItem {
    Byte(u8),
    /// Already in Rust class syntax (a nested class or a POSIX class).
    Set(String),
}

fn err(offset: usize, message: impl Into<String>) -> RxError {
    RxError { offset: Some(offset), message: message.into() }
}

impl Translator<'_> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.p.get(self.i + k).copied()
    }

    fn run(&mut self) -> Result<(), RxError> {
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => self.escape()?,
                b'[' => self.class()?,
                b'(' => self.group()?,
                b')' => {
                    self.depth = self.depth.saturating_sub(1);
                    match self.open.pop().flatten() {
                        Some(start) => {
                            // Relaxed: the lookaround asserts nothing; an empty group keeps
                            // any quantifier after it well-formed.
                            self.out.truncate(start);
                            self.out.push_str("(?:)");
                        }
                        None => self.out.push(')'),
                    }
                    self.i += 1;
                }
                b'*' | b'+' | b'?' => {
                    self.out.push(c as char);
                    self.i += 1;
                    self.quantifier_suffix();
                }
                b'{' => match self.brace_quantifier_len() {
                    Some(n) => {
                        let q = &self.p[self.i..self.i + n];
                        // The quantifier is ASCII digits, commas and braces.
                        self.out.extend(q.iter().map(|&b| b as char));
                        self.i += n;
                        self.quantifier_suffix();
                    }
                    None => {
                        // PCRE: a `{` that does not start `{n}`, `{n,}` or `{n,m}` is literal.
                        self.out.push_str(r"\{");
                        self.i += 1;
                    }
                },
                b'}' => {
                    self.out.push_str(r"\}");
                    self.i += 1;
                }
                b'^' => {
                    self.has_caret = true;
                    if self.exact_caret {
                        self.out.push_str(r"(?:\A|(?<=\n)(?!\z))");
                    } else {
                        self.out.push('^');
                    }
                    self.i += 1;
                }
                b'.' | b'$' | b'|' => {
                    self.out.push(c as char);
                    self.i += 1;
                }
                _ => {
                    self.literal(c);
                    self.i += 1;
                }
            }
        }
        Ok(())
    }

    /// After `*`, `+`, `?` or `{..}`: a lazy `?` or possessive `+` suffix.
    fn quantifier_suffix(&mut self) {
        match self.peek(0) {
            Some(b'?') => {
                self.out.push('?');
                self.i += 1;
            }
            Some(b'+') => {
                self.backtracking = true;
                if self.dialect != Dialect::Relaxed {
                    self.out.push('+');
                }
                self.i += 1;
            }
            _ => {}
        }
    }

    /// Length of `{n}`, `{n,}` or `{n,m}` at the cursor (PCRE2 10.42 syntax: digits only, no
    /// spaces, `{,m}` is literal).
    fn brace_quantifier_len(&self) -> Option<usize> {
        let rest = &self.p[self.i + 1..];
        let d1 = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if d1 == 0 {
            return None;
        }
        match rest.get(d1)? {
            b'}' => Some(d1 + 2),
            b',' => {
                let d2 = rest[d1 + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                (rest.get(d1 + 1 + d2)? == &b'}').then_some(d1 + d2 + 3)
            }
            _ => None,
        }
    }

    /// A literal byte outside a class.
    fn literal(&mut self, b: u8) {
        match b {
            b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'_' | b' ' => self.out.push(b as char),
            b'\\' | b'.' | b'+' | b'*' | b'?' | b'(' | b')' | b'|' | b'[' | b']' | b'{' | b'}'
            | b'^' | b'$' | b'#' | b'&' | b'-' | b'~' => {
                self.out.push('\\');
                self.out.push(b as char);
            }
            0x21..=0x7e => self.out.push(b as char),
            _ => {
                let _ = write!(self.out, "\\x{b:02X}");
            }
        }
    }

    fn set(&mut self, body: &str, negated: bool) {
        self.out.push('[');
        if negated {
            self.out.push('^');
        }
        self.out.push_str(body);
        self.out.push(']');
    }

    /// ASCII word boundary. The Latin-1 engine cannot switch Unicode off, so spell it with
    /// lookaround (that pattern runs on the backtracking engine anyway).
    fn word_boundary(&mut self, negated: bool) {
        match (self.dialect, negated) {
            (Dialect::Bytes | Dialect::Relaxed, false) => self.out.push_str(r"\b"),
            (Dialect::Bytes | Dialect::Relaxed, true) => self.out.push_str(r"\B"),
            (Dialect::Latin1, false) => {
                let _ = write!(self.out, "(?:(?<=[{WORD}])(?![{WORD}])|(?<![{WORD}])(?=[{WORD}]))");
            }
            (Dialect::Latin1, true) => {
                let _ = write!(self.out, "(?:(?<=[{WORD}])(?=[{WORD}])|(?<![{WORD}])(?![{WORD}]))");
            }
        }
    }

    /// Escapes common to both contexts that denote one byte: `\n`, `\x..`, `\0..`, `\c.`.
    /// The cursor is on the letter after `\`. Returns None when `e` is not such an escape.
    fn byte_escape(&mut self, e: u8) -> Result<Option<u8>, RxError> {
        let start = self.i - 1;
        let b = match e {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'f' => 0x0c,
            b'e' => 0x1b,
            b'a' => 0x07,
            b'0' => {
                self.i += 1;
                return Ok(Some(self.octal_digits(0, 2)?));
            }
            b'x' => {
                self.i += 1;
                if self.peek(0) == Some(b'{') {
                    let close = self.p[self.i..]
                        .iter()
                        .position(|&b| b == b'}')
                        .ok_or_else(|| err(start, r"missing } after \x{"))?;
                    let hex = &self.p[self.i + 1..self.i + close];
                    let v = parse_radix(hex, 16).ok_or_else(|| err(start, r"bad \x{...}"))?;
                    self.i += close + 1;
                    return byte_or_err(v, start).map(Some);
                }
                let n =
                    self.p[self.i..].iter().take(2).take_while(|b| b.is_ascii_hexdigit()).count();
                let v = parse_radix(&self.p[self.i..self.i + n], 16).unwrap_or(0);
                self.i += n;
                return byte_or_err(v, start).map(Some);
            }
            b'o' => {
                self.i += 1;
                if self.peek(0) != Some(b'{') {
                    return Err(err(start, r"\o must be followed by {"));
                }
                let close = self.p[self.i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or_else(|| err(start, r"missing } after \o{"))?;
                let v = parse_radix(&self.p[self.i + 1..self.i + close], 8)
                    .ok_or_else(|| err(start, r"bad \o{...}"))?;
                self.i += close + 1;
                return byte_or_err(v, start).map(Some);
            }
            b'c' => {
                let c = self.peek(1).ok_or_else(|| err(start, r"\c at end of pattern"))?;
                if !(0x20..0x7f).contains(&c) {
                    return Err(err(start, r"\c must be followed by a printable ASCII character"));
                }
                self.i += 2;
                return Ok(Some(c.to_ascii_uppercase() ^ 0x40));
            }
            _ => return Ok(None),
        };
        self.i += 1;
        Ok(Some(b))
    }

    /// Up to `max` further octal digits after an already read value.
    fn octal_digits(&mut self, mut v: u32, max: usize) -> Result<u8, RxError> {
        let start = self.i;
        for _ in 0..max {
            match self.peek(0) {
                Some(d @ b'0'..=b'7') => {
                    v = v * 8 + u32::from(d - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        byte_or_err(v, start)
    }

    /// An escape outside a class; the cursor is on `\`.
    fn escape(&mut self) -> Result<(), RxError> {
        let start = self.i;
        self.i += 1;
        let Some(e) = self.peek(0) else {
            return Err(err(start, r"\ at end of pattern"));
        };
        if let Some(b) = self.byte_escape(e)? {
            self.literal(b);
            return Ok(());
        }
        self.i += 1;
        match e {
            b'd' | b'D' => self.set("0-9", e == b'D'),
            b'w' | b'W' => self.set(WORD, e == b'W'),
            b's' | b'S' => self.set(SPACE, e == b'S'),
            b'h' | b'H' => self.set(HSPACE, e == b'H'),
            b'v' | b'V' => self.set(VSPACE, e == b'V'),
            b'N' => self.set(r"\n", true),
            b'R' => {
                let _ = write!(self.out, r"(?:\r\n|[{VSPACE}])");
            }
            b'b' => self.word_boundary(false),
            b'B' => self.word_boundary(true),
            // Single search from offset 0: \G is the start of the subject.
            b'A' | b'G' => self.out.push_str(r"\A"),
            b'z' => self.out.push_str(r"\z"),
            b'Z' => {
                self.backtracking = true;
                if self.dialect == Dialect::Relaxed {
                    self.out.push_str("(?:)");
                } else {
                    self.out.push_str(r"(?=\n?\z)");
                }
            }
            b'Q' => {
                while self.i < self.p.len() {
                    if self.p[self.i] == b'\\' && self.peek(1) == Some(b'E') {
                        self.i += 2;
                        break;
                    }
                    let b = self.p[self.i];
                    self.literal(b);
                    self.i += 1;
                }
            }
            b'E' => {}
            b'1'..=b'9' => {
                // PCRE2: a decimal number below 10, or not above the groups seen so far, is a
                // back reference; otherwise up to three octal digits.
                let digits_start = self.i - 1;
                let n = self.p[digits_start..].iter().take_while(|b| b.is_ascii_digit()).count();
                let num: usize = std::str::from_utf8(&self.p[digits_start..digits_start + n])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(usize::MAX);
                if num < 10 || e >= b'8' || num <= self.groups {
                    self.i = digits_start + n;
                    self.backreference(&num.to_string());
                } else {
                    self.i = digits_start + 1;
                    let b = self.octal_digits(u32::from(e - b'0'), 2)?;
                    self.literal(b);
                }
            }
            b'g' => {
                let (num, len) =
                    self.group_reference().ok_or_else(|| err(start, r"unsupported \g form"))?;
                self.i += len;
                self.backreference(&num.to_string());
            }
            b'k' => {
                let (open, close) = match self.peek(0) {
                    Some(b'<') => (b'<', b'>'),
                    Some(b'\'') => (b'\'', b'\''),
                    Some(b'{') => (b'{', b'}'),
                    _ => return Err(err(start, r"\k must be followed by a group name")),
                };
                let _ = open;
                let name = self.name_until(close, start)?;
                self.backreference(&format!("k<{name}>"));
            }
            c if c.is_ascii_alphanumeric() => {
                // PCRE2 refuses unknown letter escapes (\K, \X, \C, \p, \u ...); so do we,
                // rather than silently matching something else.
                return Err(err(start, format!(r"unsupported escape \{}", c as char)));
            }
            c => self.literal(c),
        }
        Ok(())
    }

    /// A back reference, `\{what}` (`\3`, `\k<name>`).
    fn backreference(&mut self, what: &str) {
        self.backtracking = true;
        if self.dialect == Dialect::Relaxed {
            self.out.push_str("(?s:.*)");
        } else {
            let _ = write!(self.out, r"\{what}");
        }
    }

    /// `\gN`, `\g{N}`, `\g{-N}` (relative). Cursor after `g`. Returns (group, consumed).
    fn group_reference(&self) -> Option<(usize, usize)> {
        let rest = &self.p[self.i..];
        let (body, consumed) = if rest.first() == Some(&b'{') {
            let close = rest.iter().position(|&b| b == b'}')?;
            (&rest[1..close], close + 1)
        } else {
            let n = rest.iter().take_while(|b| b.is_ascii_digit() || **b == b'-').count();
            (&rest[..n], n)
        };
        let s = std::str::from_utf8(body).ok()?;
        let num: isize = s.parse().ok()?;
        let abs = if num < 0 {
            (self.groups as isize + 1 + num).try_into().ok()?
        } else {
            num.try_into().ok()?
        };
        (abs > 0).then_some((abs, consumed))
    }

    /// Reads a group name up to `close` (cursor on the opening delimiter) and checks it.
    fn name_until(&mut self, close: u8, start: usize) -> Result<String, RxError> {
        let rest = &self.p[self.i + 1..];
        let end =
            rest.iter().position(|&b| b == close).ok_or_else(|| err(start, "unterminated name"))?;
        let name = &rest[..end];
        if name.is_empty()
            || name[0].is_ascii_digit()
            || !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            return Err(err(start, "bad group name"));
        }
        self.i += end + 2;
        Ok(String::from_utf8_lossy(name).into_owned())
    }

    /// `(`: a group of some kind; the cursor is on `(`.
    fn group(&mut self) -> Result<(), RxError> {
        let start = self.i;
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(err(start, "groups nested too deeply"));
        }
        self.i += 1;
        match (self.peek(0), self.peek(1), self.peek(2)) {
            (Some(b'*'), _, _) => Err(err(start, "PCRE verbs (*...) are not supported")),
            (Some(b'?'), Some(b':'), _) => {
                self.i += 2;
                self.open.push(None);
                self.out.push_str("(?:");
                Ok(())
            }
            (Some(b'?'), Some(b'>'), _) => {
                self.i += 2;
                self.backtracking = true;
                self.open.push(None);
                self.out.push_str(if self.dialect == Dialect::Relaxed { "(?:" } else { "(?>" });
                Ok(())
            }
            (Some(b'?'), Some(c @ (b'=' | b'!')), _) => {
                self.i += 2;
                self.lookaround(&format!("(?{}", c as char));
                Ok(())
            }
            (Some(b'?'), Some(b'<'), Some(c @ (b'=' | b'!'))) => {
                self.i += 3;
                self.lookaround(&format!("(?<{}", c as char));
                Ok(())
            }
            (Some(b'?'), Some(b'#'), _) => {
                // Comment: dropped. PCRE ends it at the first `)`, escapes included.
                let close = self.p[self.i..]
                    .iter()
                    .position(|&b| b == b')')
                    .ok_or_else(|| err(start, "unterminated (?# comment"))?;
                self.i += close + 1;
                self.depth -= 1;
                Ok(())
            }
            (Some(b'?'), Some(b'<'), _) | (Some(b'?'), Some(b'\''), _) => {
                self.i += 1;
                let close = if self.peek(0) == Some(b'<') { b'>' } else { b'\'' };
                let name = self.name_until(close, start)?;
                self.groups += 1;
                self.open.push(None);
                let _ = write!(self.out, "(?P<{name}>");
                Ok(())
            }
            (Some(b'?'), Some(b'P'), Some(b'<')) => {
                self.i += 2;
                let name = self.name_until(b'>', start)?;
                self.groups += 1;
                self.open.push(None);
                let _ = write!(self.out, "(?P<{name}>");
                Ok(())
            }
            (Some(b'?'), Some(b'P'), Some(b'=')) => {
                self.i += 2;
                let name = self.name_until(b')', start)?;
                self.depth -= 1;
                self.out.push_str("(?:");
                self.backreference(&format!("k<{name}>"));
                self.out.push(')');
                Ok(())
            }
            (Some(b'?'), _, _) => self.inline_flags(start),
            _ => {
                self.groups += 1;
                self.open.push(None);
                self.out.push('(');
                Ok(())
            }
        }
    }

    /// Opens a lookaround group (dropped by the Relaxed dialect when it closes).
    fn lookaround(&mut self, opening: &str) {
        self.backtracking = true;
        let start = self.out.len();
        self.open.push((self.dialect == Dialect::Relaxed).then_some(start));
        self.out.push_str(opening);
    }

    /// `(?imsU-imsU)` or `(?imsU-imsU:`; the cursor is on `?`.
    fn inline_flags(&mut self, start: usize) -> Result<(), RxError> {
        let rest = &self.p[self.i + 1..];
        let n = rest.iter().take_while(|b| b.is_ascii_alphabetic() || **b == b'-').count();
        let flags = &rest[..n];
        let term = rest.get(n).copied();
        if !matches!(term, Some(b')' | b':')) {
            return Err(err(start, "unsupported group syntax"));
        }
        if let Some(&bad) = flags.iter().find(|b| !matches!(b, b'i' | b'm' | b's' | b'U' | b'-')) {
            // `x` would change how the rest of the pattern is read (and Rust's x mode also
            // ignores spaces inside classes, PCRE's does not); `n`, `J`, `X` have no match.
            return Err(err(start, format!("unsupported inline flag {}", bad as char)));
        }
        self.out.push_str("(?");
        self.out.extend(flags.iter().map(|&b| b as char));
        if term == Some(b')') {
            // A flag-only group does not nest.
            self.depth -= 1;
            self.out.push(')');
        } else {
            self.open.push(None);
            self.out.push(':');
        }
        self.i += n + 2;
        Ok(())
    }

    /// A character class; the cursor is on `[`. PCRE treats `[` inside a class literally
    /// (except `[:name:]`), has no set operators, takes `]` first as a literal and `-` next to
    /// a class escape as a literal. Rust differs on all of these, so every byte is re-emitted
    /// as `\xHH` and every shorthand as a nested class.
    fn class(&mut self) -> Result<(), RxError> {
        let start = self.i;
        if self.p[self.i..].starts_with(b"[[:<:]]") || self.p[self.i..].starts_with(b"[[:>:]]") {
            return Err(err(start, "[[:<:]] word boundaries are not supported"));
        }
        self.i += 1;
        let negated = self.peek(0) == Some(b'^');
        if negated {
            self.i += 1;
        }
        let mut body = String::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(err(start, "missing terminating ] for character class"));
            };
            if c == b']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            let item = self.class_item(start)?;
            let Some(item) = item else { continue };
            match item {
                ClassItem::Set(s) => body.push_str(&s),
                ClassItem::Byte(lo) => {
                    // A range needs `-` followed by something other than the closing `]`.
                    if self.peek(0) == Some(b'-') && matches!(self.peek(1), Some(c) if c != b']') {
                        let save = self.i;
                        self.i += 1;
                        match self.class_item(start)? {
                            Some(ClassItem::Byte(hi)) => {
                                if hi < lo {
                                    return Err(err(save, "range out of order in character class"));
                                }
                                let _ = write!(body, "\\x{lo:02X}-\\x{hi:02X}");
                            }
                            Some(ClassItem::Set(s)) => {
                                let _ = write!(body, "\\x{lo:02X}\\x2D{s}");
                            }
                            None => {
                                // `\E` or an empty `\Q\E` after `-`: PCRE reads `-` literally.
                                let _ = write!(body, "\\x{lo:02X}\\x2D");
                            }
                        }
                    } else {
                        let _ = write!(body, "\\x{lo:02X}");
                    }
                }
            }
        }
        self.out.push('[');
        if negated {
            self.out.push('^');
        }
        self.out.push_str(&body);
        self.out.push(']');
        Ok(())
    }

    /// One item of a class. `None` for things that produce nothing (`\E`).
    fn class_item(&mut self, class_start: usize) -> Result<Option<ClassItem>, RxError> {
        let Some(c) = self.peek(0) else {
            return Err(err(class_start, "missing terminating ] for character class"));
        };
        if c == b'[' && self.peek(1) == Some(b':') {
            if let Some(len) = self.p[self.i + 2..].windows(2).position(|w| w == b":]") {
                let name = &self.p[self.i + 2..self.i + 2 + len];
                let (neg, bare) = match name.split_first() {
                    Some((b'^', rest)) => (true, rest),
                    _ => (false, name),
                };
                const POSIX: &[&[u8]] = &[
                    b"alnum", b"alpha", b"ascii", b"blank", b"cntrl", b"digit", b"graph", b"lower",
                    b"print", b"punct", b"space", b"upper", b"word", b"xdigit",
                ];
                if !POSIX.contains(&bare) {
                    return Err(err(self.i, "unknown POSIX class name"));
                }
                self.i += len + 4;
                let bare = String::from_utf8_lossy(bare);
                return Ok(Some(ClassItem::Set(format!(
                    "[[:{}{bare}:]]",
                    if neg { "^" } else { "" }
                ))));
            }
        }
        if c != b'\\' {
            self.i += 1;
            return Ok(Some(ClassItem::Byte(c)));
        }
        let start = self.i;
        self.i += 1;
        let Some(e) = self.peek(0) else {
            return Err(err(start, r"\ at end of pattern"));
        };
        if let Some(b) = self.byte_escape(e)? {
            return Ok(Some(ClassItem::Byte(b)));
        }
        self.i += 1;
        let set = |body: &str, neg: bool| {
            Some(ClassItem::Set(format!("[{}{body}]", if neg { "^" } else { "" })))
        };
        Ok(match e {
            b'd' | b'D' => set("0-9", e == b'D'),
            b'w' | b'W' => set(WORD, e == b'W'),
            b's' | b'S' => set(SPACE, e == b'S'),
            b'h' | b'H' => set(HSPACE, e == b'H'),
            b'v' | b'V' => set(VSPACE, e == b'V'),
            b'b' => Some(ClassItem::Byte(0x08)),
            // In a class, \1..\7 start an octal number; \8 and \9 are the digits.
            b'1'..=b'7' => Some(ClassItem::Byte(self.octal_digits(u32::from(e - b'0'), 2)?)),
            b'8' | b'9' => Some(ClassItem::Byte(e)),
            b'E' => None,
            b'Q' => {
                // Quoted bytes inside a class: each one a literal member.
                let mut body = String::new();
                while self.i < self.p.len() {
                    if self.p[self.i] == b'\\' && self.peek(1) == Some(b'E') {
                        self.i += 2;
                        break;
                    }
                    let _ = write!(body, "\\x{:02X}", self.p[self.i]);
                    self.i += 1;
                }
                if body.is_empty() { None } else { Some(ClassItem::Set(format!("[{body}]"))) }
            }
            c if c.is_ascii_alphanumeric() => {
                return Err(err(start, format!(r"unsupported escape \{} in class", c as char)));
            }
            c => Some(ClassItem::Byte(c)),
        })
    }
}

fn parse_radix(digits: &[u8], radix: u32) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, radix).ok()
}

/// Without UTF mode PCRE2 refuses code points above 0xFF.
fn byte_or_err(v: u32, offset: usize) -> Result<u8, RxError> {
    u8::try_from(v).map_err(|_| err(offset, "character code point above 0xff in non-UTF mode"))
}

/// Maps bytes one-to-one onto U+0000..U+00FF for the `&str`-only fallback engine.
fn to_latin1(input: &[u8]) -> String {
    input.iter().map(|&b| char::from(b)).collect()
}

/// Whether `regex_syntax` may compile `text` (linear-engine syntax) to a regex whose
/// leftmost-first match extents differ from PCRE's. When every branch of an alternation
/// starts with the same items, `Hir::alternation` lifts them out: `PX|PY` becomes `P(?:X|Y)`.
/// That keeps the set of subjects that match, but when `P` can match more than one way at a
/// position (a repetition, an alternation) it changes which match is found first: on `bbb`,
/// `\bb*?b$|\bb*?\b` is `0..3` in PCRE and `0..0` in the lifted form. Compared item by item
/// on their printed syntax, conservatively: a false positive only costs a slower engine for
/// groups and positions.
fn lift_may_reorder(text: &str) -> bool {
    use regex_syntax::ast::{self, Ast};
    fn items(ast: &Ast) -> Vec<&Ast> {
        match ast {
            Ast::Concat(c) => c.asts.iter().flat_map(items).collect(),
            Ast::Group(g) if is_plain_group(g) => items(&g.ast),
            Ast::Empty(_) => Vec::new(),
            other => vec![other],
        }
    }
    fn is_plain_group(g: &ast::Group) -> bool {
        matches!(&g.kind, ast::GroupKind::NonCapturing(f) if f.items.is_empty())
    }
    fn several_ways(ast: &Ast) -> bool {
        match ast {
            Ast::Repetition(r) => {
                !matches!(r.op.kind, ast::RepetitionKind::Range(ast::RepetitionRange::Exactly(_)))
                    && !matches!(
                        r.op.kind,
                        ast::RepetitionKind::Range(ast::RepetitionRange::Bounded(m, n)) if m == n
                    )
                    || several_ways(&r.ast)
            }
            Ast::Alternation(a) => a.asts.len() > 1,
            Ast::Group(g) => several_ways(&g.ast),
            Ast::Concat(c) => c.asts.iter().any(several_ways),
            _ => false,
        }
    }
    fn printed(ast: &Ast) -> String {
        let mut out = String::new();
        // Printing into a String cannot fail.
        let _ = ast::print::Printer::new().print(ast, &mut out);
        out
    }
    fn visit(ast: &Ast) -> bool {
        match ast {
            Ast::Alternation(a) => {
                let branches: Vec<Vec<String>> =
                    a.asts.iter().map(|b| items(b).into_iter().map(printed).collect()).collect();
                let common = (0..)
                    .take_while(|&k| {
                        branches[0].get(k).is_some_and(|first| {
                            branches[1..].iter().all(|b| b.get(k) == Some(first))
                        })
                    })
                    .count();
                let first = items(&a.asts[0]);
                a.asts.len() > 1 && first[..common].iter().any(|i| several_ways(i))
                    || a.asts.iter().any(visit)
            }
            Ast::Concat(c) => c.asts.iter().any(visit),
            Ast::Group(g) => visit(&g.ast),
            Ast::Repetition(r) => visit(&r.ast),
            _ => false,
        }
    }
    // Unparsable text is refused later by the builder itself.
    ast::parse::Parser::new().parse(text).is_ok_and(|ast| visit(&ast))
}

enum Engine {
    /// The regex, and the same regex built for verdicts only ([`verdict_regex`]).
    Linear(regex::bytes::Regex, Verdict),
    /// The backtracking engine, with a linear superset prefilter ([`Dialect::Relaxed`]) when
    /// one compiles: most inputs are rejected at linear speed, without the Latin-1 copy.
    Backtracking(Box<fancy_regex::Regex>, Option<regex::bytes::Regex>),
}

/// A compiled `@rx` pattern.
pub struct RxMatcher {
    engine: Engine,
    /// For linear patterns with `^`: subjects that end in `\n` (the one case where Rust's
    /// `(?m)^` differs) go to `exact`.
    needs_eol_variant: bool,
    /// For linear patterns whose match extents the linear engine may get wrong (see
    /// [`lift_may_reorder`]): capture groups and match positions come from `exact`. Verdicts
    /// do not, as the lift keeps the set of matching subjects.
    inexact_extents: bool,
    /// The exact-PCRE variant on the backtracking engine, built on first use: most subjects
    /// never need it.
    exact: std::sync::OnceLock<Option<Engine>>,
    pattern: String,
    translated: String,
    /// Recent verdicts of the backtracking engine (see [`Memo`]).
    memo: std::sync::Mutex<Memo>,
}

/// The last few verdicts of a backtracking pattern on short subjects. The backtracking
/// engine costs tens of thousands of instructions per subject (CRS 920600 runs it on every
/// `Accept` header), while the subjects it sees repeat: browsers send a handful of fixed
/// `Accept` strings. A verdict depends on the subject alone, so a hit is exact; memory is
/// bounded by `MEMO_SLOTS` subjects of at most `MEMO_MAX_LEN` bytes.
#[derive(Debug, Default)]
struct Memo {
    slots: Vec<(Box<[u8]>, bool)>,
    next: usize,
}

const MEMO_SLOTS: usize = 32;
const MEMO_MAX_LEN: usize = 512;

impl Memo {
    fn get(&self, input: &[u8]) -> Option<bool> {
        self.slots.iter().find(|(k, _)| k.as_ref() == input).map(|&(_, v)| v)
    }
    fn put(&mut self, input: &[u8], verdict: bool) {
        let e = (Box::from(input), verdict);
        if self.slots.len() < MEMO_SLOTS {
            self.slots.push(e);
        } else {
            self.slots[self.next] = e;
            self.next = (self.next + 1) % MEMO_SLOTS;
        }
    }
}

impl std::fmt::Debug for RxMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxMatcher")
            .field("pattern", &self.pattern)
            .field("engine", &self.engine_name())
            .finish()
    }
}

type Verdict = Box<regex_automata::meta::Regex>;

/// `text` (a translated pattern) built for yes/no answers alone, on one search path: no
/// capture groups, and no literal prefilter (the meta engine's own, which picks a different
/// search strategy, and so different code, per pattern). A decision answers a few dozen `@rx`
/// on caches another process has evicted, where each strategy's code and tables are cache
/// misses of their own; and the shared prefilter (`crate::eval::sources`) has already turned
/// away the values that lack a pattern's required literals. Same syntax as the `regex::bytes`
/// build beside it (no Unicode classes, any bytes).
fn verdict_regex(text: &str) -> Result<Verdict, RxError> {
    use regex_automata::meta;
    use regex_automata::nfa::thompson::WhichCaptures;
    use regex_automata::util::syntax;
    let re = meta::Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            meta::Regex::config()
                .utf8_empty(false)
                .auto_prefilter(false)
                .which_captures(WhichCaptures::None)
                .nfa_size_limit(Some(SIZE_LIMIT)),
        )
        .build(text)
        .map_err(|e| RxError { offset: None, message: e.to_string() })?;
    Ok(Box::new(re))
}

fn build_fancy(pattern: &str) -> Result<(Engine, String), RxError> {
    let t = translate_pcre(pattern, Dialect::Latin1)?;
    let re = fancy_regex::RegexBuilder::new(&t.text)
        .backtrack_limit(BACKTRACK_LIMIT)
        .delegate_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| RxError { offset: None, message: e.to_string() })?;
    let prefilter = translate_pcre(pattern, Dialect::Relaxed).ok().and_then(|r| {
        regex::bytes::RegexBuilder::new(&r.text).unicode(false).size_limit(SIZE_LIMIT).build().ok()
    });
    Ok((Engine::Backtracking(Box::new(re), prefilter), t.text))
}

/// The backtracking engine on the Latin-1 text of `input`.
fn backtrack_is_match(re: &fancy_regex::Regex, input: &[u8]) -> Result<bool, MatchLimitExceeded> {
    re.is_match(&to_latin1(input)).map_err(|_| MatchLimitExceeded)
}

/// Byte offset in the Latin-1 text of input byte `k`: one extra byte per earlier byte >= 0x80.
fn latin1_pos(input: &[u8], k: usize) -> usize {
    k + input[..k].iter().filter(|&&b| b >= 0x80).count()
}

/// Input byte offset of a Latin-1 text offset.
fn input_pos(text: &str, pos: usize) -> usize {
    text[..pos].chars().count()
}

type Groups = Vec<Option<std::ops::Range<usize>>>;

impl Engine {
    /// All groups of the leftmost match at or after `start`, up to the last that took part.
    fn groups_at(&self, input: &[u8], start: usize) -> Result<Option<Groups>, MatchLimitExceeded> {
        if start > input.len() {
            return Ok(None);
        }
        match self {
            Engine::Linear(re, _) => {
                let mut locs = re.capture_locations();
                if re.captures_read_at(&mut locs, input, start).is_none() {
                    return Ok(None);
                }
                let last = (0..locs.len()).rev().find(|&g| locs.get(g).is_some()).unwrap_or(0);
                Ok(Some((0..=last).map(|g| locs.get(g).map(|(s, e)| s..e)).collect()))
            }
            Engine::Backtracking(re, prefilter) => {
                if prefilter.as_ref().is_some_and(|p| p.find_at(input, start).is_none()) {
                    return Ok(None);
                }
                let text = to_latin1(input);
                let Some(caps) = re
                    .captures_from_pos(&text, latin1_pos(input, start))
                    .map_err(|_| MatchLimitExceeded)?
                else {
                    return Ok(None);
                };
                let last = (0..caps.len()).rev().find(|&g| caps.get(g).is_some()).unwrap_or(0);
                Ok(Some(
                    (0..=last)
                        .map(|g| {
                            caps.get(g)
                                .map(|m| input_pos(&text, m.start())..input_pos(&text, m.end()))
                        })
                        .collect(),
                ))
            }
        }
    }

    fn is_match(&self, input: &[u8]) -> Result<bool, MatchLimitExceeded> {
        self.is_match_with(input, backtrack_is_match)
    }

    /// `is_match`, with the backtracking engine reached (after its prefilter passed) only
    /// through `backtrack`, so a caller can answer some subjects without running it.
    fn is_match_with(
        &self,
        input: &[u8],
        backtrack: impl FnOnce(&fancy_regex::Regex, &[u8]) -> Result<bool, MatchLimitExceeded>,
    ) -> Result<bool, MatchLimitExceeded> {
        match self {
            Engine::Linear(_, v) => Ok(v.is_match(input)),
            Engine::Backtracking(re, prefilter) => {
                if prefilter.as_ref().is_some_and(|p| !p.is_match(input)) {
                    return Ok(false);
                }
                backtrack(re, input)
            }
        }
    }

    fn find_at(
        &self,
        input: &[u8],
        start: usize,
    ) -> Result<Option<std::ops::Range<usize>>, MatchLimitExceeded> {
        match self {
            Engine::Linear(re, _) if start <= input.len() => {
                Ok(re.find_at(input, start).map(|m| m.range()))
            }
            _ => Ok(self.groups_at(input, start)?.and_then(|g| g.into_iter().next().flatten())),
        }
    }
}

impl RxMatcher {
    /// Compiles a PCRE pattern, on the linear engine whenever it can express it.
    pub fn new(pattern: &str) -> Result<RxMatcher, RxError> {
        let t = translate_pcre(pattern, Dialect::Bytes)?;
        if t.backtracking {
            let (engine, translated) = build_fancy(pattern)?;
            return Ok(RxMatcher {
                engine,
                needs_eol_variant: false,
                inexact_extents: false,
                exact: std::sync::OnceLock::new(),
                memo: Default::default(),
                pattern: pattern.to_string(),
                translated,
            });
        }
        let re = regex::bytes::RegexBuilder::new(&t.text)
            .unicode(false)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| RxError { offset: None, message: e.to_string() })?;
        let verdict = verdict_regex(&t.text)?;
        Ok(RxMatcher {
            engine: Engine::Linear(re, verdict),
            needs_eol_variant: t.has_caret,
            inexact_extents: lift_may_reorder(&t.text),
            exact: std::sync::OnceLock::new(),
            memo: Default::default(),
            pattern: pattern.to_string(),
            translated: t.text,
        })
    }

    /// Compiles on the backtracking engine even when the linear one could run the pattern
    /// (to compare the two engines, and for benchmarks).
    pub fn new_backtracking(pattern: &str) -> Result<RxMatcher, RxError> {
        let (engine, translated) = build_fancy(pattern)?;
        Ok(RxMatcher {
            engine,
            needs_eol_variant: false,
            inexact_extents: false,
            exact: std::sync::OnceLock::new(),
            memo: Default::default(),
            pattern: pattern.to_string(),
            translated,
        })
    }

    /// The engine for this subject's verdict (see `needs_eol_variant`).
    fn engine_for(&self, input: &[u8]) -> &Engine {
        if !self.needs_eol_variant || input.last() != Some(&b'\n') {
            return &self.engine;
        }
        self.exact_engine()
    }

    /// The engine for this subject's groups and match positions (see `inexact_extents`).
    fn extents_engine_for(&self, input: &[u8]) -> &Engine {
        if self.inexact_extents {
            return self.exact_engine();
        }
        self.engine_for(input)
    }

    /// The backtracking variant. A pattern the linear engine took but the backtracking one
    /// refuses (size limits) keeps the linear engine.
    fn exact_engine(&self) -> &Engine {
        self.exact
            .get_or_init(|| build_fancy(&self.pattern).ok().map(|(e, _)| e))
            .as_ref()
            .unwrap_or(&self.engine)
    }

    /// The pattern as written in the rule.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The pattern as given to the engine.
    pub fn translated(&self) -> &str {
        &self.translated
    }

    /// `"regex"` or `"fancy-regex"`.
    pub fn engine_name(&self) -> &'static str {
        match self.engine {
            Engine::Linear(..) => "regex",
            Engine::Backtracking(..) => "fancy-regex",
        }
    }

    /// Whether groups and match positions come from the backtracking engine while verdicts
    /// stay linear (see [`lift_may_reorder`]).
    pub fn extents_on_backtracking(&self) -> bool {
        self.inexact_extents
    }

    pub fn is_backtracking(&self) -> bool {
        matches!(self.engine, Engine::Backtracking(..))
    }

    /// One search from the start, as `Regex::searchOneMatch` does. With `captures`, on a
    /// match the vector is replaced by groups 0..=n, n being the last group that took part
    /// (PCRE2 returns that many pairs); groups before n that did not take part are empty
    /// (ModSecurity skips them and leaves the old TX value). v3 stores every group, not only
    /// TX.0-TX.9.
    pub fn matches(
        &self,
        input: &[u8],
        captures: Option<&mut crate::operator::Captures>,
    ) -> Result<bool, MatchLimitExceeded> {
        let engine = self.engine_for(input);
        let Some(out) = captures else { return self.is_match_on(engine, input) };
        // Most subjects do not match: answer those on the DFA path, and build capture groups
        // (a slower engine and an allocation) only for the ones that do.
        if !self.is_match_on(engine, input)? {
            return Ok(false);
        }
        let Some(groups) = self.extents_engine_for(input).groups_at(input, 0)? else {
            return Ok(false);
        };
        out.clear();
        for g in groups {
            out.push(g.map_or(&[][..], |r| &input[r]));
        }
        Ok(true)
    }

    /// `engine.is_match`, through the memo when it is the backtracking engine.
    fn is_match_on(&self, engine: &Engine, input: &[u8]) -> Result<bool, MatchLimitExceeded> {
        // Verdicts of the EOL variant and of the main engine differ: memoize only the main.
        if !std::ptr::eq(engine, &self.engine) || input.len() > MEMO_MAX_LEN {
            return engine.is_match(input);
        }
        // The linear prefilter alone answers most subjects; the memo is for the rest.
        engine.is_match_with(input, |re, input| {
            if let Some(v) = self.memo.try_lock().ok().and_then(|m| m.get(input)) {
                return Ok(v);
            }
            let v = backtrack_is_match(re, input)?;
            if let Ok(mut m) = self.memo.try_lock() {
                m.put(input, v);
            }
            Ok(v)
        })
    }

    /// The leftmost match starting at or after byte `start`, with the whole subject as
    /// context (like `pcre2_match` with a start offset). Returns the byte range of group 0.
    pub fn find_at(
        &self,
        input: &[u8],
        start: usize,
    ) -> Result<Option<std::ops::Range<usize>>, MatchLimitExceeded> {
        self.extents_engine_for(input).find_at(input, start)
    }

    /// Every match from `start` on with all its groups, in the order `Regex::searchAll` of
    /// libmodsecurity3 returns them (used by `@verifyCPF` / `@verifySSN`): it pushes each group
    /// to the front of its list, continues after the last group pushed, and stops at an empty
    /// group or a group that did not take part.
    pub fn search_all(&self, input: &[u8]) -> Result<Vec<Vec<u8>>, MatchLimitExceeded> {
        let engine = self.extents_engine_for(input);
        let mut found: Vec<Vec<u8>> = Vec::new();
        let mut offset = 0usize;
        'search: while let Some(groups) = engine.groups_at(input, offset)? {
            let before = offset;
            for g in groups {
                // A group that did not take part ends the search (ModSecurity sees an
                // offset past the subject).
                let Some(r) = g else { break 'search };
                let empty = r.is_empty();
                offset = r.end;
                found.push(input[r].to_vec());
                if empty {
                    break 'search;
                }
            }
            // ModSecurity would search again from the same place forever; we stop.
            if offset <= before {
                break;
            }
        }
        found.reverse();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The verdict build of a linear pattern (no captures, no literal prefilter) answers
        /// every subject as the `regex::bytes` build beside it does: CRS-like shapes with
        /// case folding, anchors, classes, counted repeats and bytes past ASCII.
        #[test]
        fn verdict_build_answers_as_the_full_build(
            input in proptest::collection::vec(
                proptest::sample::select(b"aAbBsS01 <>=;\n\xc3\xa9-".to_vec()), 0..48),
        ) {
            let patterns = [
                r"(?i)<s[^>]*>",
                r"^\d+$",
                r"(?i)(?:ab|ba)\s*=",
                r"a.{5}b",
                r"(?m)^s",
                r"[\x80-\xff]{2}",
                r"(?i:a)b|;-",
            ];
            for p in patterns {
                let m = RxMatcher::new(p).expect("compiles");
                let Engine::Linear(re, v) = &m.engine else { panic!("{p} is linear") };
                proptest::prop_assert_eq!(v.is_match(&input), re.is_match(&input), "{}", p);
            }
        }
    }

    #[test]
    fn lifted_prefixes_keep_pcre_extents() {
        // regex_syntax lifts `\bb*?` out of both branches; PCRE tries the first branch with
        // every length of `b*?` before the second.
        let re = RxMatcher::new(r"(?:\b[^a]*?[^a]{1,2}$|\b[^a]*?\b)(a)?").unwrap();
        assert!(!re.is_backtracking() && re.extents_on_backtracking());
        let mut caps = crate::operator::Captures::new();
        assert!(re.matches(b"bbb", Some(&mut caps)).unwrap());
        assert_eq!(caps.groups(), vec![b"bbb".to_vec()]);
        assert_eq!(re.find_at(b"bbb", 0).unwrap(), Some(0..3));
        let re = RxMatcher::new(r"a*ab|a*").unwrap();
        assert_eq!(re.find_at(b"aab", 0).unwrap(), Some(0..3));
        assert!(re.matches(b"xyz", None).unwrap());
        // Deterministic or differing prefixes are not lifted in a way that matters.
        for p in [r"ab|ac", r"a*b|c*d", r"\bx*y|z", r"(?i)abc|abd", r"a{2}b|a{2}c"] {
            assert!(!lift_may_reorder(p), "{p}");
        }
        for p in [r"x(?:\s*a|\s*b)", r"(?:a|b)+c|(?:a|b)+d", r"a{1,2}b|a{1,2}c", r"(?i:a+b|a+c)"] {
            assert!(lift_may_reorder(p), "{p}");
        }
    }

    fn engine(p: &str) -> &'static str {
        RxMatcher::new(p).unwrap_or_else(|e| panic!("{p}: {e}")).engine_name()
    }

    fn is_match(p: &str, input: &[u8]) -> bool {
        RxMatcher::new(p).unwrap_or_else(|e| panic!("{p}: {e}")).matches(input, None).unwrap()
    }

    #[test]
    fn pcre_tolerances_are_repaired() {
        // (pattern, input, expected)
        let cases: &[(&str, &[u8], bool)] = &[
            (r"a{", b"a{", true),
            (r"a{,3}", b"a{,3}", true),
            (r"a{2}", b"aa", true),
            (r"a{2,}", b"a", false),
            (r"x}", b"x}", true),
            (r"\/etc\/passwd", b"/etc/passwd", true),
            (r"[\/\-\.]", b"-", true),
            (r"[a-]", b"-", true),
            (r"[\w-.]", b"-", true),
            (r"[]a]", b"]", true),
            (r"[^]a]", b"]", false),
            (r"[[a]", b"[", true),
            (r"[a&&b]", b"&", true),
            (r"[--/]", b".", true),
            (r"[~~]", b"~", true),
            (r"\<script", b"<script", true),
            (r"\Qa.b\E", b"a.b", true),
            (r"\Qa.b\E", b"axb", false),
            (r"a(?#comment)b", b"ab", true),
            (r"(?'n'a)b", b"ab", true),
            (r"\x41\x{42}\101", b"ABA", true),
            (r"\cA", b"\x01", true),
            (r"[\x80-\xff]", b"\xe9", true),
            (r"[[:alpha:]]+$", b"abc", true),
            (r"[[:^digit:]]", b"1", false),
            (r"\e\a", b"\x1b\x07", true),
            (r"[\b]", b"\x08", true),
        ];
        for (p, input, want) in cases {
            assert_eq!(is_match(p, input), *want, "{p} on {input:?}");
        }
    }

    #[test]
    fn modsecurity_flags_dotall_multiline_bytes() {
        let cases: &[(&str, &[u8], bool)] = &[
            // DOTALL: `.` crosses newlines.
            (r"a.b", b"a\nb", true),
            // MULTILINE: `^`/`$` at line boundaries.
            (r"^b$", b"a\nb\nc", true),
            // No caseless unless the pattern asks.
            (r"abc", b"ABC", false),
            (r"(?i)abc", b"ABC", true),
            // ASCII classes: a Latin-1 or UTF-8 letter is not \w.
            (r"^\w$", b"\xe9", false),
            (r"^\W$", b"\xe9", true),
            (r"^.$", b"\xff", true),
            (r"^\s$", b"\x0b", true),
            (r"\bx\b", b"\xe9x\xe9", true),
            // Empty pattern is `.*`.
            (r"", b"anything", true),
            // PCRE2 multiline `^` does not match after the subject's final newline.
            (r"^$", b"foo\n", false),
            (r"^$", b"\n", true),
            (r"^$", b"a\n\nb", true),
            (r"^b", b"a\nb\n", true),
            (r"(?-m)^b", b"a\nb\n", false),
            (r"\x00", b"a\0b", true),
        ];
        for (p, input, want) in cases {
            assert_eq!(is_match(p, input), *want, "{p} on {input:?}");
        }
    }

    #[test]
    fn backtracking_features_use_the_fallback() {
        let cases: &[(&str, &[u8], bool)] = &[
            (r"(?<!a)b", b"ab", false),
            (r"(?<!a)b", b"cb", true),
            (r"(a)\1", b"aa", true),
            (r"<\?(?!xml)", b"<?xml", false),
            (r"<\?(?!xml)", b"<?php", true),
            (r"a*+a", b"aaa", false),
            (r"(?>a*)b", b"aab", true),
            (r"a\Z", b"a\n", true),
            (r"(?P<w>x)(?P=w)", b"xx", true),
            // ASCII \b in the Latin-1 fallback: é is not a word character.
            (r"(?<!q)\bx\b", b"\xe9x\xe9", true),
            (r"(?<!q)\w", b"\xe9", false),
            (r"(?<!q)[\x80-\xff]{2}", b"\xc3\xa9", true),
        ];
        for (p, input, want) in cases {
            assert_eq!(engine(p), "fancy-regex", "{p}");
            assert_eq!(is_match(p, input), *want, "{p} on {input:?}");
        }
        assert_eq!(engine(r"\?+$"), "regex", "escaped ? then + is not possessive");
        assert_eq!(engine(r"a{2}b"), "regex");
    }

    #[test]
    fn relaxed_dialect_is_a_linear_superset() {
        let cases: &[(&str, &str)] = &[
            (r"(?<!a)b", r"(?sm)(?:)b"),
            (r"<\?(?!xml)", r"(?sm)<\?(?:)"),
            (r"(a)\1", r"(?sm)(a)(?s:.*)"),
            (r"a*+b", r"(?sm)a*b"),
            (r"(?>a(?=b))c", r"(?sm)(?:a(?:))c"),
            (r"a\Z", r"(?sm)a(?:)"),
        ];
        for (p, want) in cases {
            let t = translate_pcre(p, Dialect::Relaxed).unwrap();
            assert_eq!(t.text, *want, "{p}");
            assert!(regex::bytes::Regex::new(&t.text).is_ok(), "{p}");
        }
    }

    #[test]
    fn refused_patterns() {
        for p in
            [r"(", r"[abc", r"\", r"\p{L}", r"\K", r"(?x)a b", r"(*UTF)a", r"[z-a]", r"\x{100}"]
        {
            assert!(RxMatcher::new(p).is_err(), "{p} should be refused");
        }
        let deep = "(".repeat(300) + &")".repeat(300);
        assert!(RxMatcher::new(&deep).is_err());
        assert!(RxMatcher::new("((a{1000}){1000}){100}").is_err(), "size limit");
    }

    #[test]
    fn captures_follow_pcre_group_numbering() {
        let re = RxMatcher::new(r"(a)(x)?(b)").unwrap();
        let mut caps = crate::operator::Captures::new();
        caps.set_one(b"stale");
        assert!(re.matches(b"zab", Some(&mut caps)).unwrap());
        assert_eq!(caps.groups(), vec![b"ab".to_vec(), b"a".to_vec(), Vec::new(), b"b".to_vec()]);
        // Trailing groups that did not take part are not reported (PCRE2's rc).
        let re = RxMatcher::new(r"(a)|(b)").unwrap();
        assert!(re.matches(b"a", Some(&mut caps)).unwrap());
        assert_eq!(caps.groups(), vec![b"a".to_vec(), b"a".to_vec()]);
        // No match leaves the vector alone.
        assert!(!re.matches(b"z", Some(&mut caps)).unwrap());
        assert_eq!(caps.len(), 2);
        // Fallback engine: bytes come back unchanged.
        let re = RxMatcher::new(r"(?<!q)([\x80-\xff]+)").unwrap();
        assert!(re.matches(b"a\xc3\xa9\xffz", Some(&mut caps)).unwrap());
        assert_eq!(caps.groups()[1], b"\xc3\xa9\xff".to_vec());
    }

    #[test]
    fn find_at_keeps_context() {
        let re = RxMatcher::new(r"\bab").unwrap();
        assert_eq!(re.find_at(b"xab ab", 1).unwrap(), Some(4..6));
        let re = RxMatcher::new(r"(?<!x)ab").unwrap();
        assert_eq!(re.find_at(b"\xe9xab ab", 2).unwrap(), Some(5..7));
        assert_eq!(re.find_at(b"ab", 3).unwrap(), None);
    }

    #[test]
    fn backtrack_limit_is_an_error_not_a_hang() {
        // The relaxed prefilter `(a+)+b` matches, so the backtracking engine runs and
        // explodes on the lookahead failing at the end.
        let re = RxMatcher::new(r"(?:(a+)+b(?!c))").unwrap();
        assert!(re.is_backtracking());
        let mut input = vec![b'a'; 40];
        input.extend_from_slice(b"bc");
        let t = std::time::Instant::now();
        assert_eq!(re.matches(&input, None), Err(MatchLimitExceeded));
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        // The prefilter alone answers when even the superset cannot match.
        let re = RxMatcher::new(r"(?<!q)(a+)+$").unwrap();
        input.truncate(40);
        input.push(b'!');
        assert_eq!(re.matches(&input, None), Ok(false));
    }
}

#[cfg(test)]
mod memo_tests {
    use super::*;

    /// Memoized verdicts of a backtracking pattern equal fresh ones, across more subjects
    /// than the memo holds, both verdicts, subjects too long to memoize, and captures.
    #[test]
    fn memo_is_exact() {
        // CRS 920600's shape: a possessive quantifier forces the backtracking engine, and
        // greedy and possessive verdicts differ on `a/b; =y`.
        let p = r"^[a-z]+/[a-z]+(?:\s*+;\s*+(?:[^c=;]\S*=\S+|;?))*$";
        let m = RxMatcher::new(p).unwrap();
        assert!(m.is_backtracking());
        let mut subjects: Vec<Vec<u8>> = (0..80)
            .map(|i| if i % 3 == 0 { format!("a/b; =y{i}") } else { format!("text/html; q{i}=1") })
            .map(String::into_bytes)
            .collect();
        subjects.push(format!("a/b; {}=1", "x".repeat(MEMO_MAX_LEN)).into_bytes());
        for round in 0..3 {
            for s in &subjects {
                let fresh = RxMatcher::new(p).unwrap().matches(s, None).unwrap();
                assert_eq!(m.matches(s, None).unwrap(), fresh, "round {round} {s:?}");
                let mut caps = crate::operator::Captures::new();
                assert_eq!(m.matches(s, Some(&mut caps)).unwrap(), fresh);
                assert_eq!(!caps.is_empty(), fresh);
            }
        }
        assert!(!m.matches(b"a/b; =y", None).unwrap(), "possessive: no match");
        assert!(m.matches(b"text/html; q=1", None).unwrap());
    }
}
