//! Cheap stand-ins in front of an `@rx` regex, chosen at compile time by [`crate::opt`].
//!
//! Data flow: `CompiledOperator::compile` (literal `@rx`) -> [`FastRx::build`] (runs the
//! backend-neutral classifier [`crate::opt::rxclass::classify`] and the prefilter planner
//! [`crate::opt::prefilter::plan`]) -> per value, [`FastRx::matches`] answers with
//! - the literal search when the pattern *is* a literal, prefix, suffix, whole line or
//!   literal set (memmem / aho-corasick leftmost-first, so the span, and with it TX.0, is the
//!   regex's), falling back to the regex where the literal form cannot decide (a line anchor
//!   on a subject holding `\n`; captures of groups inside the literal);
//! - "match, the whole subject" when the pattern is `^.*$` or kin (CRS 920450 runs it with
//!   `capture` on every request header name);
//! - or the prefilter (minimum length, required literals), then the regex.
//!
//! Each of the two is switched on or off per operator ([`RxOptimisations`]), so the Lua
//! compiler's `operator-replacement` and `regex-prefilter` passes (and a native build) can
//! choose, and an ablation can measure each. Both backends call this through
//! `CompiledOperator::matches`; the Lua backend never sees values (they are collected and
//! transformed in Rust), so "emitting the cheap string op" means calling this fast path.

use super::MatchLimitExceeded;
use super::rx::RxMatcher;
use crate::opt::prefilter::{self, PrefilterPlan};
use crate::opt::rxclass::{self, Anchor, LiteralPlan, RxClass};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::sync::atomic::{AtomicU8, Ordering};

/// Which stand-ins run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxOptimisations {
    pub replace: bool,
    pub prefilter: bool,
}

impl RxOptimisations {
    pub const NONE: RxOptimisations = RxOptimisations { replace: false, prefilter: false };
    pub const ALL: RxOptimisations = RxOptimisations { replace: true, prefilter: true };
    /// What `CompiledOperator::compile` sets, so what the native evaluator runs: see the
    /// measurements in the module docs of [`crate::opt`].
    pub const DEFAULT: RxOptimisations = RxOptimisations { replace: true, prefilter: false };

    fn bits(self) -> u8 {
        u8::from(self.replace) | (u8::from(self.prefilter) << 1)
    }
}

const REPLACE: u8 = 1;
const PREFILTER: u8 = 2;

/// A literal search equal to a regex.
#[derive(Debug)]
pub struct LiteralSearch {
    plan: LiteralPlan,
    /// Unanchored search (leftmost-first over the strings in priority order).
    searcher: Option<AhoCorasick>,
    one: Option<memchr::memmem::Finder<'static>>,
}

/// What the literal search says.
enum Answer {
    Match(std::ops::Range<usize>),
    NoMatch,
    /// The regex must decide.
    Ask,
}

fn eq_bytes(a: &[u8], b: &[u8], ci: bool) -> bool {
    if ci { a.eq_ignore_ascii_case(b) } else { a == b }
}

impl LiteralSearch {
    fn new(plan: LiteralPlan) -> Option<LiteralSearch> {
        let (mut searcher, mut one) = (None, None);
        if plan.anchor == Anchor::None {
            match plan.strings.as_slice() {
                [s] if !plan.ci => one = Some(memchr::memmem::Finder::new(s).into_owned()),
                strings => {
                    searcher = Some(
                        AhoCorasickBuilder::new()
                            .match_kind(MatchKind::LeftmostFirst)
                            .ascii_case_insensitive(plan.ci)
                            .build(strings)
                            .ok()?,
                    )
                }
            }
        }
        Some(LiteralSearch { plan, searcher, one })
    }

    pub fn plan(&self) -> &LiteralPlan {
        &self.plan
    }

    fn find(&self, input: &[u8]) -> Answer {
        let p = &self.plan;
        if p.anchor == Anchor::None {
            let found = match (&self.one, &self.searcher) {
                (Some(f), _) => f.find(input).map(|i| i..i + f.needle().len()),
                (None, Some(ac)) => ac.find(input).map(|m| m.range()),
                (None, None) => return Answer::Ask,
            };
            return found.map_or(Answer::NoMatch, Answer::Match);
        }
        // Line anchors equal the subject's edges only without `\n` (and PCRE2's `^` after
        // a final newline is a case of its own, see rx.rs): otherwise the regex decides.
        if memchr::memchr(b'\n', input).is_some() {
            return Answer::Ask;
        }
        let n = input.len();
        let hit = match p.anchor {
            // Leftmost is position 0; the first string in priority order that fits wins.
            Anchor::Start => p
                .strings
                .iter()
                .find(|s| input.len() >= s.len() && eq_bytes(&input[..s.len()], s, p.ci))
                .map(|s| 0..s.len()),
            // Leftmost start = the longest string that ends the subject.
            Anchor::End => p
                .strings
                .iter()
                .filter(|s| n >= s.len() && eq_bytes(&input[n - s.len()..], s, p.ci))
                .map(Vec::len)
                .max()
                .map(|l| n - l..n),
            Anchor::Both => p.strings.iter().any(|s| eq_bytes(input, s, p.ci)).then_some(0..n),
            Anchor::None => None,
        };
        hit.map_or(Answer::NoMatch, Answer::Match)
    }
}

/// A compiled prefilter.
#[derive(Debug)]
pub struct Prefilter {
    plan: PrefilterPlan,
    searcher: Option<AhoCorasick>,
    /// The only required string, when case does not matter for it (the plan is exact, or the
    /// string has no ASCII letter, like CRS 930110's `..`): `memmem` finds it with less
    /// set-up and code than the automaton (callgrind, 200 benign GETs, native, where the
    /// `multiMatch` filter of 930110 uses it: 0.6k instructions and 26 cache lines fewer a
    /// decision than the automaton).
    one: Option<memchr::memmem::Finder<'static>>,
}

impl Prefilter {
    pub(crate) fn new(plan: PrefilterPlan) -> Option<Prefilter> {
        let (searcher, one) = match plan.strings.as_slice() {
            [] => (None, None),
            [s] if !plan.ci || !s.iter().any(u8::is_ascii_alphabetic) => {
                (None, Some(memchr::memmem::Finder::new(s).into_owned()))
            }
            strings => (
                Some(
                    AhoCorasickBuilder::new()
                        .ascii_case_insensitive(plan.ci)
                        .build(strings)
                        .ok()?,
                ),
                None,
            ),
        };
        Some(Prefilter { plan, searcher, one })
    }

    pub fn plan(&self) -> &PrefilterPlan {
        &self.plan
    }

    /// False only when no match is possible.
    pub fn may_match(&self, input: &[u8]) -> bool {
        input.len() >= self.plan.min_len
            && match (&self.one, &self.searcher) {
                (Some(f), _) => f.find(input).is_some(),
                (None, Some(s)) => s.is_match(input),
                (None, None) => true,
            }
    }
}

/// The stand-ins of one `@rx`.
#[derive(Debug)]
pub struct FastRx {
    /// The pattern matches every subject whole ([`rxclass::whole_subject`]): its number of
    /// capture groups.
    whole: Option<usize>,
    /// The pattern is a delimiter and the captured rest of the line
    /// ([`rxclass::delimiter_suffix`]): the delimiter.
    delimiter: Option<u8>,
    literal: Option<LiteralSearch>,
    prefilter: Option<Prefilter>,
    on: AtomicU8,
}

impl FastRx {
    /// Analyses a pattern; `None` when nothing cheaper exists.
    pub fn build(pattern: &str, opts: RxOptimisations) -> Option<FastRx> {
        let whole = rxclass::whole_subject(pattern);
        let delimiter = whole.is_none().then(|| rxclass::delimiter_suffix(pattern)).flatten();
        let literal = match (whole, delimiter) {
            (None, None) => rxclass::classify(pattern).ok().and_then(LiteralSearch::new),
            _ => None,
        };
        let prefilter = if whole.is_some() || delimiter.is_some() || literal.is_some() {
            None
        } else {
            // A minimum length alone is checked by the regex crate itself before it searches
            // (measured: the extra check only cost time), so only plans with required
            // literals are kept.
            prefilter::plan(pattern).filter(|p| !p.strings.is_empty()).and_then(Prefilter::new)
        };
        if whole.is_none() && delimiter.is_none() && literal.is_none() && prefilter.is_none() {
            return None;
        }
        Some(FastRx { whole, delimiter, literal, prefilter, on: AtomicU8::new(opts.bits()) })
    }

    pub fn set(&self, opts: RxOptimisations) {
        self.on.store(opts.bits(), Ordering::Relaxed);
    }

    /// The class this pattern was put in.
    pub fn class(&self) -> RxClass {
        if self.whole.is_some() {
            return RxClass::Whole;
        }
        if self.delimiter.is_some() {
            return RxClass::DelimiterSuffix;
        }
        self.literal.as_ref().map_or(RxClass::Keep, |l| l.plan.class())
    }

    pub fn literal(&self) -> Option<&LiteralSearch> {
        self.literal.as_ref()
    }

    pub fn prefilter(&self) -> Option<&Prefilter> {
        self.prefilter.as_ref()
    }

    /// `RxMatcher::matches`, answered by the cheapest means switched on.
    pub fn matches(
        &self,
        re: &RxMatcher,
        input: &[u8],
        captures: Option<&mut crate::operator::Captures>,
    ) -> Result<bool, MatchLimitExceeded> {
        let on = self.on.load(Ordering::Relaxed);
        if on & REPLACE != 0 {
            if let Some(groups) = self.whole {
                if let Some(c) = captures {
                    c.clear();
                    for _ in 0..=groups {
                        c.push(input);
                    }
                }
                return Ok(true);
            }
            if let Some(d) = self.delimiter {
                let Some(m) = rxclass::delimiter_suffix_match(input, d) else { return Ok(false) };
                if let Some(c) = captures {
                    c.clear();
                    c.push(&input[m.clone()]);
                    c.push(&input[m.start + 1..m.end]);
                }
                return Ok(true);
            }
            if let Some(lit) = &self.literal {
                match lit.find(input) {
                    Answer::NoMatch => return Ok(false),
                    Answer::Match(r) => {
                        if let Some(c) = captures {
                            if lit.plan.inner_groups {
                                return re.matches(input, Some(c));
                            }
                            // Group 0 and every group around the whole literal.
                            c.clear();
                            for _ in 0..=lit.plan.whole_groups {
                                c.push(&input[r.clone()]);
                            }
                        }
                        return Ok(true);
                    }
                    Answer::Ask => return re.matches(input, captures),
                }
            }
        }
        if on & PREFILTER != 0 {
            if let Some(p) = &self.prefilter {
                if !p.may_match(input) {
                    return Ok(false);
                }
            }
        }
        re.matches(input, captures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::Captures;

    /// Fast path and regex agree, with and without captures.
    fn agree(pattern: &str, inputs: &[&[u8]]) {
        let re = RxMatcher::new(pattern).unwrap();
        let fast = FastRx::build(pattern, RxOptimisations::ALL)
            .unwrap_or_else(|| panic!("{pattern}: no fast path"));
        for input in inputs {
            let want = re.matches(input, None).unwrap();
            assert_eq!(fast.matches(&re, input, None).unwrap(), want, "{pattern} on {input:?}");
            let (mut a, mut b) = (Captures::new(), Captures::new());
            a.set_one(b"old");
            b.set_one(b"old");
            re.matches(input, Some(&mut a)).unwrap();
            fast.matches(&re, input, Some(&mut b)).unwrap();
            assert_eq!(a.groups(), b.groups(), "captures of {pattern} on {input:?}");
        }
    }

    #[test]
    fn literal_forms_agree_with_the_regex() {
        let inputs: &[&[u8]] = &[
            b"",
            b"foo",
            b"xFOOx",
            b"GET",
            b"get",
            b"GET\n",
            b"a\nGET",
            b"\nGET\n",
            b"HEADGET",
            b"x.php",
            b"x.php\ny",
            b"abcd",
            b"ab",
            b"\xff\xfe\x00foo",
            b"AbC",
            b"zabcab",
        ];
        for p in [
            r"foo",
            r"(?i)foo",
            r"(foo)",
            r"^GET",
            r"(?i)^get",
            r"^(GET|HEAD)$",
            r"\.php$",
            r"(?:ab|abc)",
            r"(?:abc|ab)$",
            r"(?i)(a)(b)c",
            r"^(?:GET|HEADGET)",
            r"\xff\xfe",
            r"^$",
            r"^(|x)$",
        ] {
            agree(p, inputs);
        }
        // `^$` (CRS's empty-header checks): the empty subject, and under the multi-line
        // anchors any empty line, which the regex decides.
        agree(r"^$", &[b"", b"x", b"\n", b"x\n", b"\nx", b"a\n\nb", b"\n\n", b" "]);
    }

    /// `\.([^.]+)$` (CRS 920440) and its kin: the scan for the delimiter gives the regex's
    /// match and captures under the line anchors, dots and newlines anywhere; near misses
    /// stay regexes.
    #[test]
    fn delimiter_suffix_forms_agree_with_the_regex() {
        let mut inputs: Vec<Vec<u8>> = [
            "",
            ".",
            "..",
            "a.",
            ".a",
            "index.html",
            "a.b.c",
            "x.tar.gz",
            "noext",
            "a.\n",
            "a.b\n",
            "a.b\nc",
            "a.b\nc.d",
            "a.\nb.",
            ".\n.",
            "a.b\n\n",
            "a\n.b",
            "a.b.\nc",
            "a..",
            "a.\n\nb.",
            ".\n",
            "\n.x\n.",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        // Every string of up to five bytes over `.`, `\n` and `a`.
        for n in 0..=5u32 {
            for k in 0..3usize.pow(n) {
                let mut v = Vec::new();
                let mut x = k;
                for _ in 0..n {
                    v.push([b'.', b'\n', b'a'][x % 3]);
                    x /= 3;
                }
                inputs.push(v);
            }
        }
        let inputs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        for p in [r"\.([^.]+)$", r"/([^/]+)$", r"-([^-]+)$"] {
            let fast = FastRx::build(p, RxOptimisations::ALL).unwrap();
            assert_eq!(fast.class(), RxClass::DelimiterSuffix, "{p}");
            agree(p, &inputs);
        }
        for p in [
            r"\.([^.]*)$",
            r"\.([^.]+?)$",
            r"\.([^./]+)$",
            r"\.[^.]+$",
            r"\.([^.]+)",
            r"^\.([^.]+)$",
        ] {
            let class = FastRx::build(p, RxOptimisations::ALL).map(|f| f.class());
            assert_ne!(class, Some(RxClass::DelimiterSuffix), "{p}");
        }
    }

    /// `^.*$` and kin match every subject whole, with or without `\n` anywhere; near
    /// misses (lazy, one-or-more, `.` short of a byte) stay regexes.
    #[test]
    fn whole_subject_forms_agree_with_the_regex() {
        let inputs: &[&[u8]] =
            &[b"", b"a", b"User-Agent", b"a\nb", b"a\n", b"\n", b"\n\nx\n", b"\xff\x00\r\n"];
        for p in [r"^.*$", r".*", r"^.*", r".*$", r"^(.*)$", r"(^.*$)", r"^(?:(.*))$"] {
            let fast = FastRx::build(p, RxOptimisations::ALL).unwrap();
            assert_eq!(fast.class(), RxClass::Whole, "{p}");
            agree(p, inputs);
            // And against PCRE's own engine, not only the linear one.
            let exact = RxMatcher::new_backtracking(p).unwrap();
            for input in inputs {
                let (mut a, mut b) = (Captures::new(), Captures::new());
                let want = exact.matches(input, Some(&mut a)).unwrap();
                let re = RxMatcher::new(p).unwrap();
                assert_eq!(fast.matches(&re, input, Some(&mut b)).unwrap(), want, "{p} {input:?}");
                assert_eq!(a.groups(), b.groups(), "captures of {p} on {input:?}");
            }
        }
        for p in [r"^.*?$", r"^.+$", r"^[^\n]*$", r"^.*x$", r"\b.*$"] {
            assert_ne!(
                FastRx::build(p, RxOptimisations::ALL).map(|f| f.class()),
                Some(RxClass::Whole),
                "{p}"
            );
        }
    }

    #[test]
    fn prefilter_and_switches() {
        let re = RxMatcher::new(r"[a-z]+select\d").unwrap();
        let fast = FastRx::build(r"[a-z]+select\d", RxOptimisations::ALL).unwrap();
        assert_eq!(fast.class(), RxClass::Keep);
        let p = fast.prefilter().unwrap();
        assert!(!p.may_match(b"xselec1"));
        assert!(!p.may_match(b"short"));
        assert!(p.may_match(b"aselect1"));
        assert!(fast.matches(&re, b"aselect1", None).unwrap());
        assert!(!fast.matches(&re, b"a select1", None).unwrap());
        // Switched off, the regex alone answers (same answers).
        fast.set(RxOptimisations::NONE);
        assert!(fast.matches(&re, b"aselect1", None).unwrap());
        assert!(FastRx::build(r"a+", RxOptimisations::ALL).is_none(), "min length alone");
        assert!(FastRx::build(r"\d+union\s", RxOptimisations::ALL).unwrap().prefilter().is_some());
        assert!(FastRx::build(r"a*", RxOptimisations::ALL).is_none());
    }
}
