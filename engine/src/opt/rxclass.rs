//! Which `@rx` patterns are really literals, and which literals.
//!
//! Data flow: PCRE pattern -> [`translate_pcre`] in the `Bytes` dialect (the text the linear
//! engine compiles) -> `regex_syntax` HIR, parsed with the same settings `RxMatcher` builds
//! with (Unicode off, so `(?i)` folds ASCII only and `\xHH` is one byte) -> [`classify`]:
//! either a [`LiteralPlan`] (a finite, ordered set of byte strings plus line anchors) or the
//! reason the pattern stays a regex.
//!
//! Soundness rules, each tied to how libmodsecurity3 compiles (`PCRE2_DOTALL |
//! PCRE2_MULTILINE`, regex.cc):
//! - `^`/`$` are *line* anchors (`Look::StartLF`/`EndLF`); any other assertion (`\b`, `\A`,
//!   `(?-m)^`) keeps the regex. The run-time side answers anchored plans only for subjects
//!   without `\n`, where a line anchor is the subject's edge; with a `\n` it asks the regex.
//! - Strings are kept in the regex's priority order, so a leftmost-first literal search
//!   (memmem, aho-corasick `LeftmostFirst`) reports the same span the regex does: this is
//!   what `capture` copies into TX.0.
//! - Case-insensitive only when every letter is an ASCII case pair: mixed `(?i)a(?-i)b`
//!   keeps the regex, and a non-ASCII byte is never folded (PCRE's C-locale tables don't).
//! - An empty alternative, a repetition other than a small `{n}`, or too many strings keep
//!   the regex.

use crate::operator::rx::{Dialect, translate_pcre};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// Most strings a literal set may expand to; beyond that the regex is as good.
pub const MAX_STRINGS: usize = 256;
/// Most bytes over all strings of a set.
const MAX_BYTES: usize = 16 * 1024;
/// Largest class expanded byte by byte.
const MAX_CLASS: usize = 64;
/// Largest `{n}` expanded.
const MAX_EXACT_REPEAT: u32 = 8;

/// Where a literal must sit (line anchors, as PCRE's multiline mode has them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Anywhere.
    None,
    /// At the start of a line (`^lit`).
    Start,
    /// At the end of a line (`lit$`).
    End,
    /// A whole line (`^lit$`).
    Both,
}

/// A pattern proved equal to a literal search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralPlan {
    /// Non-empty strings in the regex's priority order, lower-cased when `ci`.
    pub strings: Vec<Vec<u8>>,
    /// Compare ASCII letters case-insensitively.
    pub ci: bool,
    pub anchor: Anchor,
    /// Capture groups that span the whole match (TX.1.. equal TX.0).
    pub whole_groups: usize,
    /// Capture groups inside the literal part: captures need the regex.
    pub inner_groups: bool,
}

/// The class of a pattern, as counted in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RxClass {
    /// `lit`: a substring search.
    Literal,
    /// `^lit`.
    Prefix,
    /// `lit$`.
    Suffix,
    /// `^lit$`.
    Exact,
    /// `a|b|c` (any anchoring): a literal-set search.
    LiteralSet,
    /// `^.*$` and its kin: every subject matches, whole (see [`whole_subject`]).
    Whole,
    /// `\.([^.]+)$` and its kin: what follows a delimiter up to a line end (see
    /// [`delimiter_suffix`]).
    DelimiterSuffix,
    /// Stays a regex.
    Keep,
}

impl RxClass {
    pub fn name(self) -> &'static str {
        match self {
            RxClass::Literal => "literal",
            RxClass::Prefix => "prefix",
            RxClass::Suffix => "suffix",
            RxClass::Exact => "exact",
            RxClass::LiteralSet => "literal-set",
            RxClass::Whole => "whole-subject",
            RxClass::DelimiterSuffix => "delimiter-suffix",
            RxClass::Keep => "keep-regex",
        }
    }
}

impl LiteralPlan {
    pub fn class(&self) -> RxClass {
        if self.strings.len() > 1 {
            return RxClass::LiteralSet;
        }
        match self.anchor {
            Anchor::None => RxClass::Literal,
            Anchor::Start => RxClass::Prefix,
            Anchor::End => RxClass::Suffix,
            Anchor::Both => RxClass::Exact,
        }
    }
}

/// Why a pattern stays a regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Needs the backtracking engine (lookaround, backreference, ...).
    Backtracking,
    /// Does not translate or parse (the operator reports that itself).
    Invalid,
    /// Has an assertion other than a line anchor at an end (`\b`, `\A`, `(?-m)^`).
    Assertion,
    /// Matches more than a finite small set of strings (classes, repetition, `.`).
    NotFinite,
    /// Some alternative is empty: it matches everywhere.
    EmptyString,
    /// Some letters fold case and others do not.
    MixedCase,
}

/// Parses a PCRE pattern into the HIR the linear engine runs (`None` when it does not
/// translate, or needs the backtracking engine and `relaxed` is false). With `relaxed`,
/// a backtracking pattern yields its linear superset ([`Dialect::Relaxed`]).
pub fn parse_hir(pattern: &str, relaxed: bool) -> Option<(Hir, bool)> {
    let t = translate_pcre(pattern, Dialect::Bytes).ok()?;
    let (text, backtracking) = if t.backtracking {
        if !relaxed {
            return None;
        }
        (translate_pcre(pattern, Dialect::Relaxed).ok()?.text, true)
    } else {
        (t.text, false)
    };
    let hir =
        regex_syntax::ParserBuilder::new().unicode(false).utf8(false).build().parse(&text).ok()?;
    Some((hir, backtracking))
}

/// Classifies one pattern as the operator compiles it.
pub fn classify(pattern: &str) -> Result<LiteralPlan, Keep> {
    let t = translate_pcre(pattern, Dialect::Bytes).map_err(|_| Keep::Invalid)?;
    if t.backtracking {
        return Err(Keep::Backtracking);
    }
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(&t.text)
        .map_err(|_| Keep::Invalid)?;
    classify_hir(&hir)
}

/// When the pattern matches every subject, its leftmost match being the whole subject: a
/// greedy `.*` (DOTALL: any byte), optionally between the line anchors `^` and `$`, in any
/// number of capture groups. Position 0 is a line start, the greedy repetition runs to the
/// end, and the end is a line end, whatever the subject holds. Returns how many capture
/// groups there are (each spans the whole match, like group 0).
pub fn whole_subject(pattern: &str) -> Option<usize> {
    let (hir, _) = parse_hir(pattern, false)?;
    let mut groups = 0usize;
    let h = strip_captures(&hir, &mut groups);
    let body = match h.kind() {
        HirKind::Concat(parts) => {
            let mut parts: &[Hir] = parts;
            if let [first, rest @ ..] = parts {
                if matches!(first.kind(), HirKind::Look(Look::StartLF)) {
                    parts = rest;
                }
            }
            if let [rest @ .., last] = parts {
                if matches!(last.kind(), HirKind::Look(Look::EndLF)) {
                    parts = rest;
                }
            }
            match parts {
                [one] => one,
                _ => return None,
            }
        }
        _ => h,
    };
    let body = strip_captures(body, &mut groups);
    let HirKind::Repetition(r) = body.kind() else { return None };
    let any_byte = match r.sub.kind() {
        HirKind::Class(c) => class_bytes(c, 257).is_some_and(|b| b.len() == 256),
        _ => false,
    };
    (r.min == 0 && r.max.is_none() && r.greedy && any_byte).then_some(groups)
}

/// When the pattern is a delimiter byte `d` (not `\n`), one capture group around a greedy
/// run of one or more bytes other than `d`, and the line-end anchor `$`: CRS 920440's
/// `\.([^.]+)$`, which captures a file name's extension on every request. Returns `d`.
/// [`crate::operator::fast`] answers it with a scan for `d` ([`delimiter_suffix_match`]).
pub fn delimiter_suffix(pattern: &str) -> Option<u8> {
    let (hir, _) = parse_hir(pattern, false)?;
    let HirKind::Concat(parts) = hir.kind() else { return None };
    let [delim, group, end] = parts.as_slice() else { return None };
    let d = match delim.kind() {
        HirKind::Literal(l) if l.0.len() == 1 && l.0[0] != b'\n' => l.0[0],
        _ => return None,
    };
    let HirKind::Capture(c) = group.kind() else { return None };
    let HirKind::Repetition(r) = c.sub.kind() else { return None };
    let others = match r.sub.kind() {
        HirKind::Class(c) => class_bytes(c, 257).is_some_and(|b| b.len() == 255 && !b.contains(&d)),
        _ => false,
    };
    let end = matches!(end.kind(), HirKind::Look(Look::EndLF));
    (others && end && r.min == 1 && r.max.is_none() && r.greedy).then_some(d)
}

/// The leftmost match of [`delimiter_suffix`]'s pattern for `d` in `input` under the
/// operator's line anchors (`$` before any `\n` and at the end), as `start..end`; group 1
/// is `start + 1..end`. At each `d` from the left, the greedy run takes every byte up to the
/// next `d` (or the end) and gives back bytes until `$` holds: at the end, when the run
/// reaches it, else before the run's last `\n`, leaving at least one byte.
pub fn delimiter_suffix_match(input: &[u8], d: u8) -> Option<std::ops::Range<usize>> {
    let mut at = memchr::memchr(d, input)?;
    loop {
        let run = at + 1;
        let next = memchr::memchr(d, &input[run..]).map_or(input.len(), |p| run + p);
        if next == input.len() && next > run {
            return Some(at..next);
        }
        if let Some(p) = memchr::memrchr(b'\n', &input[run..next]).filter(|&p| p > 0) {
            return Some(at..run + p);
        }
        if next == input.len() {
            return None;
        }
        at = next;
    }
}

fn classify_hir(hir: &Hir) -> Result<LiteralPlan, Keep> {
    let mut whole_groups = 0usize;
    let mut h = strip_captures(hir, &mut whole_groups);
    let mut anchor_start = false;
    let mut anchor_end = false;
    if let HirKind::Concat(parts) = h.kind() {
        let mut parts: &[Hir] = parts;
        if let Some((first, rest)) = parts.split_first() {
            if matches!(first.kind(), HirKind::Look(Look::StartLF)) {
                anchor_start = true;
                parts = rest;
            }
        }
        if let Some((last, rest)) = parts.split_last() {
            if matches!(last.kind(), HirKind::Look(Look::EndLF)) {
                anchor_end = true;
                parts = rest;
            }
        }
        let body = Hir::concat(parts.to_vec());
        let mut inner = whole_groups;
        let stripped = strip_captures(&body, &mut inner).clone();
        // Groups around the body between two zero-width anchors still span the match.
        whole_groups = inner;
        return finish(&stripped, whole_groups, anchor_start, anchor_end);
    }
    if let HirKind::Look(_) = h.kind() {
        return Err(Keep::Assertion);
    }
    h = strip_captures(h, &mut whole_groups);
    finish(h, whole_groups, false, false)
}

fn strip_captures<'h>(mut h: &'h Hir, n: &mut usize) -> &'h Hir {
    while let HirKind::Capture(c) = h.kind() {
        *n += 1;
        h = &c.sub;
    }
    h
}

fn finish(body: &Hir, whole_groups: usize, start: bool, end: bool) -> Result<LiteralPlan, Keep> {
    let mut inner_groups = false;
    let units = lang(body, &mut inner_groups, MAX_STRINGS)?;
    // Between both line anchors the empty string is a subject of its own (`^$`, CRS's
    // empty-header checks: 920290, 920310, 920330, ...), not "matches everywhere".
    let (strings, ci) = fold(units, start && end)?;
    let anchor = match (start, end) {
        (false, false) => Anchor::None,
        (true, false) => Anchor::Start,
        (false, true) => Anchor::End,
        (true, true) => Anchor::Both,
    };
    Ok(LiteralPlan { strings, ci, anchor, whole_groups, inner_groups })
}

/// One byte of a literal string: exact, or an ASCII letter either case (kept lower-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Byte(u8),
    Fold(u8),
}

/// The bytes of a class, when it has at most `max` of them.
pub(crate) fn class_bytes(c: &Class, max: usize) -> Option<Vec<u8>> {
    let ranges: Vec<(u32, u32)> = match c {
        Class::Bytes(b) => b.ranges().iter().map(|r| (r.start().into(), r.end().into())).collect(),
        Class::Unicode(u) => {
            u.ranges().iter().map(|r| (r.start().into(), r.end().into())).collect()
        }
    };
    let mut out = Vec::new();
    for (lo, hi) in ranges {
        if hi > 0xFF || (hi - lo) as usize + out.len() >= max {
            return None;
        }
        out.extend((lo..=hi).map(|b| b as u8));
    }
    Some(out)
}

/// A class that is exactly one ASCII letter in both cases.
pub(crate) fn case_pair(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [a, b] if a.is_ascii_uppercase() && *b == a.to_ascii_lowercase() => Some(*b),
        _ => None,
    }
}

/// The strings `h` matches, in priority order, when it matches a finite set of at most
/// `max` strings. Capture groups inside are allowed (and reported): they do not change
/// which strings match.
pub(crate) fn lang(h: &Hir, inner_groups: &mut bool, max: usize) -> Result<Vec<Vec<Unit>>, Keep> {
    Ok(match h.kind() {
        HirKind::Empty => vec![Vec::new()],
        HirKind::Literal(l) => vec![l.0.iter().map(|&b| Unit::Byte(b)).collect()],
        HirKind::Class(c) => {
            let bytes = class_bytes(c, MAX_CLASS).ok_or(Keep::NotFinite)?;
            if let Some(l) = case_pair(&bytes) {
                vec![vec![Unit::Fold(l)]]
            } else {
                if bytes.len() > max {
                    return Err(Keep::NotFinite);
                }
                // Single bytes are never prefixes of each other: their order is free.
                bytes.into_iter().map(|b| vec![Unit::Byte(b)]).collect()
            }
        }
        HirKind::Look(_) => return Err(Keep::Assertion),
        HirKind::Repetition(r) => {
            if Some(r.min) != r.max || r.min > MAX_EXACT_REPEAT {
                return Err(Keep::NotFinite);
            }
            let one = lang(&r.sub, inner_groups, max)?;
            let mut acc = vec![Vec::new()];
            for _ in 0..r.min {
                acc = product(&acc, &one, max)?;
            }
            acc
        }
        HirKind::Capture(c) => {
            *inner_groups = true;
            lang(&c.sub, inner_groups, max)?
        }
        HirKind::Concat(parts) => {
            let mut acc = vec![Vec::new()];
            for p in parts {
                let next = lang(p, inner_groups, max)?;
                acc = product(&acc, &next, max)?;
            }
            acc
        }
        HirKind::Alternation(alts) => {
            let mut acc = Vec::new();
            for a in alts {
                acc.extend(lang(a, inner_groups, max)?);
                if acc.len() > max {
                    return Err(Keep::NotFinite);
                }
            }
            acc
        }
    })
}

/// Every `a` followed by every `b`, in priority order (all continuations of the first
/// choice before the second choice, as a backtracking engine tries them).
fn product(a: &[Vec<Unit>], b: &[Vec<Unit>], max: usize) -> Result<Vec<Vec<Unit>>, Keep> {
    if a.len().saturating_mul(b.len()) > max {
        return Err(Keep::NotFinite);
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    let mut bytes = 0usize;
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            bytes += s.len();
            if bytes > MAX_BYTES {
                return Err(Keep::NotFinite);
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// Units -> byte strings and one case mode, deduplicated keeping the first.
fn fold(units: Vec<Vec<Unit>>, allow_empty: bool) -> Result<(Vec<Vec<u8>>, bool), Keep> {
    let any_fold = units.iter().flatten().any(|u| matches!(u, Unit::Fold(_)));
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(units.len());
    for s in units {
        if s.is_empty() && !allow_empty {
            return Err(Keep::EmptyString);
        }
        let mut bytes = Vec::with_capacity(s.len());
        for u in s {
            match u {
                Unit::Fold(l) => bytes.push(l),
                // In a case-insensitive set a case-sensitive letter would over-match.
                Unit::Byte(b) if any_fold && b.is_ascii_alphabetic() => {
                    return Err(Keep::MixedCase);
                }
                Unit::Byte(b) => bytes.push(b),
            }
        }
        if !out.contains(&bytes) {
            out.push(bytes);
        }
    }
    Ok((out, any_fold))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(p: &str) -> LiteralPlan {
        classify(p).unwrap_or_else(|k| panic!("{p} kept: {k:?}"))
    }

    #[test]
    fn classes() {
        // (pattern, class, strings, ci)
        let cases: &[(&str, RxClass, &[&str], bool)] = &[
            (r"foo", RxClass::Literal, &["foo"], false),
            (r"\/etc\/passwd", RxClass::Literal, &["/etc/passwd"], false),
            (r"(?i)SeLeCt", RxClass::Literal, &["select"], true),
            (r"(?i)a-1", RxClass::Literal, &["a-1"], true),
            (r"^GET", RxClass::Prefix, &["GET"], false),
            (r"\.php$", RxClass::Suffix, &[".php"], false),
            (r"^(?:GET|HEAD)$", RxClass::LiteralSet, &["GET", "HEAD"], false),
            (r"^0$", RxClass::Exact, &["0"], false),
            (r"^$", RxClass::Exact, &[""], false),
            (r"^(?:|-)$", RxClass::LiteralSet, &["", "-"], false),
            (r"(?:ab|abc|x)", RxClass::LiteralSet, &["ab", "abc", "x"], false),
            (r"ab(?:c|d)", RxClass::LiteralSet, &["abc", "abd"], false),
            (r"a{3}", RxClass::Literal, &["aaa"], false),
            (r"\x00", RxClass::Literal, &["\0"], false),
            (r"(?i)(?:foo|FOO|bar)", RxClass::LiteralSet, &["foo", "bar"], true),
        ];
        for (p, class, strings, ci) in cases {
            let lp = plan(p);
            assert_eq!(lp.class(), *class, "{p}");
            let want: Vec<Vec<u8>> = strings.iter().map(|s| s.as_bytes().to_vec()).collect();
            assert_eq!(lp.strings, want, "{p}");
            assert_eq!(lp.ci, *ci, "{p}");
        }
        // Non-UTF-8 bytes are literal bytes.
        assert_eq!(plan(r"\xff\xfe").strings, vec![vec![0xff, 0xfe]]);
        // A non-ASCII letter is not folded, even under (?i).
        let lp = plan("(?i)\u{e9}");
        assert_eq!(lp.strings, vec!["\u{e9}".as_bytes().to_vec()]);
        assert!(!lp.ci);
    }

    #[test]
    fn groups() {
        let lp = plan(r"(foo)");
        assert_eq!((lp.whole_groups, lp.inner_groups), (1, false));
        let lp = plan(r"^(GET|PUT)$");
        assert_eq!((lp.whole_groups, lp.inner_groups), (1, false));
        let lp = plan(r"a(b)c");
        assert!(lp.inner_groups);
    }

    #[test]
    fn kept() {
        let cases: &[(&str, Keep)] = &[
            (r"\bfoo\b", Keep::Assertion),
            (r"a.b", Keep::NotFinite),
            (r"a+", Keep::NotFinite),
            (r"(?-m)^foo", Keep::Assertion),
            (r"\Afoo", Keep::Assertion),
            (r"(?<!a)b", Keep::Backtracking),
            (r"foo|", Keep::EmptyString),
            (r"", Keep::NotFinite),
            (r"(?i)a(?-i)b", Keep::MixedCase),
            (r"[a-z]{20}", Keep::NotFinite),
            (r"(", Keep::Invalid),
            (r"^$x", Keep::Assertion),
            (r"^(?:|a)", Keep::EmptyString),
            (r"(?:|a)$", Keep::EmptyString),
            (r"foo^bar", Keep::Assertion),
        ];
        for (p, why) in cases {
            assert_eq!(classify(p).as_ref().err(), Some(why), "{p}");
        }
    }
}
