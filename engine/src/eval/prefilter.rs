//! Required literals of a regex: a sound, cheap "cannot match" test run before `@rx`.
//!
//! `required(pattern)` parses the pattern exactly as the `@rx` operator compiled it (the
//! translated text, bytes mode) and returns a set of literals such that every match of the
//! regex contains at least one of them, plus the minimum match length. Literals are folded to
//! ASCII lower case and searched case-insensitively: a superset of the exact test, so still
//! sound, and `(?i)` patterns (whose letters the parser turns into `[Aa]` classes) fold to
//! one literal each instead of a product of cases.
//!
//! The evaluator merges the literals of every `@rx` that runs after the same transformation
//! chain into one Aho-Corasick automaton per chain ([`super::sources`]): one scan per
//! transformed value says which of those regexes could match at all; on benign traffic most
//! cannot, and their regex is never run. A wrong "cannot match" would change decisions, so
//! the analysis only keeps what it can prove: anything it does not understand means "no
//! requirement" (the regex always runs).

use crate::operator::fast::Prefilter;
use crate::opt::prefilter::PrefilterPlan;
use regex_syntax::hir::{Class, Hir, HirKind};

/// At most this many literals in one set (products of small classes grow fast).
const MAX_SET: usize = 64;
/// Classes with more members than this are "anything" for the analysis.
const MAX_CLASS: usize = 10;

/// What every match of a regex must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Every match contains at least one of these (ASCII-lower-cased, non-empty).
    pub literals: Vec<Vec<u8>>,
    /// Length in bytes of the shortest possible match.
    pub min_len: usize,
}

/// The requirement of a pattern as the linear `@rx` engine runs it (`translated` text,
/// `unicode(false)`), or `None` when no useful literal set exists.
pub fn required(translated: &str) -> Option<Requirement> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(translated)
        .ok()?;
    let min_len = hir.properties().minimum_len().unwrap_or(0);
    let literals = req(&hir)?;
    if literals.is_empty() || literals.iter().any(|l| l.is_empty()) {
        return None;
    }
    // A literal containing another one adds nothing ("one of them occurs" holds exactly when
    // one of the minimal ones occurs) but would be reported by every scan that finds it.
    let minimal: Vec<Vec<u8>> = literals
        .iter()
        .filter(|l| {
            !literals.iter().any(|m| m.len() < l.len() && l.windows(m.len()).any(|w| w == &m[..]))
        })
        .cloned()
        .collect();
    let literals = minimal;
    Some(Requirement { literals, min_len })
}

impl Requirement {
    /// This requirement tested on one value at a time, by the check `FastRx` already puts
    /// in front of a regex ([`Prefilter`]: minimum length, then the literals, ASCII case
    /// ignored): the filter in front of a `multiMatch` `@rx`, whose values (each step's
    /// output) are not the shared source's records and so are never scanned by the shared
    /// automaton. On benign traffic CRS 930110 and 934100 ran their regex some 18 times a
    /// bodiless GET, mostly on names, empty values and base64-decoded bytes that hold none
    /// of its literals.
    pub fn value_filter(self) -> Option<Prefilter> {
        Prefilter::new(PrefilterPlan {
            min_len: self.min_len,
            strings: self.literals,
            ci: true,
            from_superset: false,
        })
    }
}

fn fold(mut v: Vec<u8>) -> Vec<u8> {
    v.make_ascii_lowercase();
    v
}

fn dedup(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v.dedup();
    v
}

/// Members of a small class, each as the bytes it matches.
fn class_members(c: &Class) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    match c {
        Class::Bytes(b) => {
            for r in b.ranges() {
                if out.len() + usize::from(r.end() - r.start()) + 1 > MAX_CLASS {
                    return None;
                }
                out.extend((r.start()..=r.end()).map(|x| vec![x]));
            }
        }
        Class::Unicode(u) => {
            for r in u.ranges() {
                let n = (r.end() as u32 - r.start() as u32) as usize + 1;
                if out.len() + n > MAX_CLASS {
                    return None;
                }
                for ch in r.start()..=r.end() {
                    let mut buf = [0u8; 4];
                    out.push(ch.encode_utf8(&mut buf).as_bytes().to_vec());
                }
            }
        }
    }
    Some(dedup(out.into_iter().map(fold).collect()))
}

/// The exact strings `h` can match (folded), when there are few of them.
fn exact(h: &Hir) -> Option<Vec<Vec<u8>>> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(vec![Vec::new()]),
        HirKind::Literal(l) => Some(vec![fold(l.0.to_vec())]),
        HirKind::Class(c) => class_members(c),
        HirKind::Capture(c) => exact(&c.sub),
        HirKind::Concat(subs) => {
            let mut acc = vec![Vec::new()];
            for s in subs {
                acc = product(&acc, &exact(s)?)?;
            }
            Some(acc)
        }
        HirKind::Alternation(subs) => {
            let mut out = Vec::new();
            for s in subs {
                out.extend(exact(s)?);
                if out.len() > MAX_SET {
                    return None;
                }
            }
            Some(dedup(out))
        }
        HirKind::Repetition(r) => {
            if r.max != Some(r.min) || r.min > 4 {
                return None;
            }
            let one = exact(&r.sub)?;
            let mut acc = vec![Vec::new()];
            for _ in 0..r.min {
                acc = product(&acc, &one)?;
            }
            Some(acc)
        }
    }
}

fn product(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len().saturating_mul(b.len()) > MAX_SET {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.push(s);
        }
    }
    Some(dedup(out))
}

/// Better of two candidate sets: the longer shortest literal, then the smaller set.
fn better(a: Option<Vec<Vec<u8>>>, b: Option<Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
    let score = |s: &Vec<Vec<u8>>| {
        let min = s.iter().map(Vec::len).min().unwrap_or(0);
        (min, std::cmp::Reverse(s.len()))
    };
    match (a, b) {
        (None, x) | (x, None) => x.filter(|s| score(s).0 > 0),
        (Some(a), Some(b)) => {
            let (sa, sb) = (score(&a), score(&b));
            if sa.0 == 0 && sb.0 == 0 {
                None
            } else if sb > sa {
                Some(b)
            } else {
                Some(a)
            }
        }
    }
}

/// A set of literals one of which every match of `h` contains; `None`: no requirement.
fn req(h: &Hir) -> Option<Vec<Vec<u8>>> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => None,
        HirKind::Literal(_) | HirKind::Class(_) => {
            exact(h).filter(|s| s.iter().all(|l| !l.is_empty()))
        }
        HirKind::Capture(c) => req(&c.sub),
        HirKind::Repetition(r) => {
            if r.min == 0 {
                None
            } else if let Some(e) = exact(h) {
                better(Some(e), req(&r.sub))
            } else {
                req(&r.sub)
            }
        }
        HirKind::Alternation(subs) => {
            let mut out = Vec::new();
            for s in subs {
                out.extend(req(s)?);
                if out.len() > MAX_SET {
                    return None;
                }
            }
            Some(dedup(out))
        }
        HirKind::Concat(subs) => {
            // Runs of consecutive exact parts are contiguous in every match: their product
            // is required. Each part's own requirement is a candidate too.
            let mut best: Option<Vec<Vec<u8>>> = None;
            let mut run: Vec<Vec<u8>> = vec![Vec::new()];
            for s in subs {
                match exact(s) {
                    Some(e) => match product(&run, &e) {
                        Some(p) => run = p,
                        None => {
                            best = better(best, Some(std::mem::take(&mut run)));
                            run = e;
                        }
                    },
                    None => {
                        best = better(best, Some(std::mem::replace(&mut run, vec![Vec::new()])));
                        // A repetition `x{n,}` starts with `x` and ends with it: the run
                        // before it may take one `x`, and the run after it starts with one.
                        if let HirKind::Repetition(r) = s.kind() {
                            if r.min >= 1 {
                                if let Some(one) = exact(&r.sub) {
                                    run = one;
                                }
                            }
                        }
                        best = better(best, req(s));
                    }
                }
            }
            better(best, Some(run))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(p: &str) -> Option<Vec<String>> {
        required(p).map(|r| {
            r.literals.into_iter().map(|l| String::from_utf8_lossy(&l).into_owned()).collect()
        })
    }

    #[test]
    fn literal_requirements_table() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("abc", Some(&["abc"])),
            ("(?i)SeLeCt", Some(&["select"])),
            ("a+b", Some(&["ab"])),
            ("x.*y", Some(&["x"])),
            ("foo|bar", Some(&["bar", "foo"])),
            ("(?:foo|ba)[0-9]+qux", Some(&["9qux"])),
            ("a?b?", None),
            (".*", None),
            ("^$", None),
            ("[a-z]+", None),
            ("<script", Some(&["<script"])),
            ("(?i)on[a-z]+=", Some(&["on"])),
            ("(foo|\\w+)", None),
            ("\\bunion\\b.{0,10}\\bselect", Some(&["select", "union"][..1])),
        ];
        for (p, want) in cases {
            let got = lits(p);
            match want {
                None => assert_eq!(got, None, "{p}"),
                Some(w) => {
                    let got = got.unwrap_or_else(|| panic!("{p}: no requirement"));
                    for x in *w {
                        assert!(got.iter().any(|g| g == x), "{p}: {got:?} lacks {x}");
                    }
                }
            }
        }
    }

    #[test]
    fn min_len_is_the_shortest_match() {
        assert_eq!(required("ab[0-9]{3}").map(|r| r.min_len), Some(5));
    }

    /// The filter says "cannot match" only where the regex does not match: one literal
    /// without letters, several (case ignored), and short subjects.
    #[test]
    fn value_filter_never_hides_a_match() {
        use proptest::prelude::*;
        let patterns = [
            "(?:^|[\\\\/])\\.\\.(?:[\\\\/]|$)",
            "(?:new\\s+Function|\\beval)\\s*\\(|String\\s*\\.\\s*fromCharCode|module\\.exports\\s*=",
            "(?i)<script[^>]*>",
        ];
        for p in patterns {
            let m = crate::operator::rx::RxMatcher::new(p).unwrap();
            let r = required(m.translated()).unwrap_or_else(|| panic!("{p}: no requirement"));
            let f = r.clone().value_filter().unwrap();
            for (s, want) in [
                (&b"../etc"[..], p.starts_with("(?:^")),
                (b"a/..\\b", p.starts_with("(?:^")),
                (b"eval (1)", p.starts_with("(?:new")),
                (b"EVAL (1)", false),
                (b"<SCRIPT>", p.starts_with("(?i)")),
            ] {
                assert_eq!(m.matches(s, None).unwrap(), want, "{p} on {s:?}");
                assert!(!want || f.may_match(s), "{p}: filter hides {s:?}");
            }
            assert!(!f.may_match(b""), "{p}: the empty value");
            let alphabet = b"./\\ ()=<>evalEVALnwsctipSCRIPTfunoFUNOmdxr";
            let strat =
                proptest::collection::vec(proptest::sample::select(alphabet.to_vec()), 0..24);
            proptest!(ProptestConfig::with_cases(3000), |(s in strat)| {
                if !f.may_match(&s) {
                    prop_assert!(!m.matches(&s, None).unwrap(),
                        "{} matches {:?}, which the filter rejected", p, String::from_utf8_lossy(&s));
                }
            });
        }
    }

    /// Soundness on random inputs: whenever the regex matches, one literal occurs
    /// (case-insensitively) and the subject is at least `min_len` long.
    #[test]
    fn requirement_holds_whenever_the_regex_matches() {
        use proptest::prelude::*;
        let patterns = [
            "(?i)(?:union|select)\\s+\\w",
            "a[bc]{2}d",
            "(?:x|yz)+w",
            "(?i)<script[^>]*>",
            "(?:\\.\\./|\\.\\.\\\\)",
            "[0-9]{2,}ab",
            "(ab|cd)(ef|gh)",
        ];
        for p in patterns {
            let r = required(p).unwrap_or_else(|| panic!("{p}: no requirement"));
            let re = regex::bytes::RegexBuilder::new(p).unicode(false).build().unwrap();
            let alphabet = b"abcdefghxyzwunioselct<>/\\. 0123456789ABCDUNIONSELECT";
            let strat =
                proptest::collection::vec(proptest::sample::select(alphabet.to_vec()), 0..24);
            proptest!(ProptestConfig::with_cases(2000), |(s in strat)| {
                if re.is_match(&s) {
                    let low = s.to_ascii_lowercase();
                    prop_assert!(s.len() >= r.min_len);
                    prop_assert!(r.literals.iter().any(|l| low.windows(l.len()).any(|w| w == &l[..])),
                        "{} matched {:?} without any of {:?}", p, String::from_utf8_lossy(&s), r.literals);
                }
            });
        }
    }
}
