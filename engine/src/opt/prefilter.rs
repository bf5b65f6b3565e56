//! Required literals and minimum length of an `@rx` that stays a regex.
//!
//! Data flow: pattern -> HIR (the linear translation; for a pattern that needs the
//! backtracking engine, its linear *superset*, `Dialect::Relaxed`, whose every match
//! contains a match of the original) -> [`plan`]: a [`PrefilterPlan`] with
//! - `min_len`: no match is shorter (`regex_syntax`'s own property);
//! - `strings`: every match contains at least one of them (our own walk of the HIR).
//!
//! So "input shorter than `min_len`, or containing none of `strings`" proves "no match":
//! a prefilter that says no is never wrong. The walk: a literal requires itself; a concat
//! requires whichever part (or run of adjacent finite parts) gives the longest shortest
//! string; an alternation requires the union of what each branch requires (nothing if one
//! branch requires nothing); a repetition with `min >= 1` requires what its body requires.
//! Letters that fold case are searched case-insensitively (that only widens the check).

use super::rxclass::{Unit, lang, parse_hir};
use regex_syntax::hir::{Hir, HirKind};

/// Most strings in a required set.
const MAX_SET: usize = 64;
/// A required set whose shortest string is shorter than this is not worth searching for.
pub const MIN_USEFUL_LEN: usize = 3;

/// The cheap checks in front of one regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefilterPlan {
    /// No match is shorter than this.
    pub min_len: usize,
    /// Every match contains one of these (lower-cased when `ci`); empty: no literal check.
    pub strings: Vec<Vec<u8>>,
    pub ci: bool,
    /// Built from the linear superset of a backtracking pattern.
    pub from_superset: bool,
}

impl PrefilterPlan {
    /// Whether the plan can reject anything at all.
    pub fn is_useful(&self) -> bool {
        self.min_len > 0 || !self.strings.is_empty()
    }
}

/// The prefilter of a pattern (`None` when it does not parse).
pub fn plan(pattern: &str) -> Option<PrefilterPlan> {
    let (hir, from_superset) = parse_hir(pattern, true)?;
    Some(plan_hir(&hir, from_superset))
}

pub(crate) fn plan_hir(hir: &Hir, from_superset: bool) -> PrefilterPlan {
    let min_len = hir.properties().minimum_len().unwrap_or(0);
    let (strings, ci) = match required(hir) {
        Some(set) if shortest(&set) >= MIN_USEFUL_LEN => normalise(set),
        _ => (Vec::new(), false),
    };
    PrefilterPlan { min_len, strings, ci, from_superset }
}

type Set = Vec<Vec<Unit>>;

fn shortest(s: &Set) -> usize {
    s.iter().map(Vec::len).min().unwrap_or(0)
}

/// Better required set: longer shortest string, then fewer strings.
fn better(a: Option<Set>, b: Option<Set>) -> Option<Set> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (la, lb) = (shortest(&a), shortest(&b));
            if lb > la || (lb == la && b.len() < a.len()) { Some(b) } else { Some(a) }
        }
        (a, None) => a,
        (None, b) => b,
    }
}

/// A set of strings one of which every match of `h` contains (`None`: nothing known).
fn required(h: &Hir) -> Option<Set> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => None,
        HirKind::Literal(_) | HirKind::Class(_) => finite(h),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => {
            // `x{n}` with a finite `x` is itself finite and longer than `x`.
            better(required(&r.sub), finite(h))
        }
        HirKind::Repetition(_) => None,
        HirKind::Alternation(alts) => {
            let mut all: Set = Vec::new();
            for a in alts {
                let s = better(required(a), finite(a))?;
                all.extend(s);
                if all.len() > MAX_SET {
                    return None;
                }
            }
            Some(all)
        }
        HirKind::Concat(parts) => {
            let mut best: Option<Set> = None;
            // Runs of adjacent parts that match finite sets: their product is required.
            let mut run: Option<Set> = None;
            for p in parts {
                if matches!(p.kind(), HirKind::Look(_)) {
                    // Zero-width: the literals on both sides are adjacent in every match.
                    continue;
                }
                match finite(p) {
                    // Only single strings extend a run: a class or alternation would
                    // multiply the set; it is a candidate of its own below.
                    Some(s) if s.len() == 1 => {
                        run = Some(match run.take() {
                            None => s,
                            Some(r) => match product(&r, &s) {
                                Some(x) => x,
                                None => {
                                    best = better(best, Some(r));
                                    s
                                }
                            },
                        });
                    }
                    _ => {
                        best = better(best, run.take());
                        best = better(best, required(p));
                    }
                }
            }
            better(best, run)
        }
    }
}

/// The exact strings `h` matches, when few.
fn finite(h: &Hir) -> Option<Set> {
    let mut groups = false;
    lang(h, &mut groups, MAX_SET).ok()
}

fn product(a: &Set, b: &Set) -> Option<Set> {
    if a.len().saturating_mul(b.len()) > MAX_SET {
        return None;
    }
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.push(s);
        }
    }
    Some(out)
}

/// Units -> byte strings: any folded letter makes the whole search case-insensitive.
fn normalise(set: Set) -> (Vec<Vec<u8>>, bool) {
    let ci = set.iter().flatten().any(|u| matches!(u, Unit::Fold(_)));
    let mut out: Vec<Vec<u8>> = Vec::new();
    for s in set {
        let bytes: Vec<u8> = s
            .into_iter()
            .map(|u| match u {
                Unit::Fold(l) => l,
                Unit::Byte(b) if ci => b.to_ascii_lowercase(),
                Unit::Byte(b) => b,
            })
            .collect();
        if !out.contains(&bytes) {
            out.push(bytes);
        }
    }
    (out, ci)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_literals() {
        // (pattern, min_len, strings, ci)
        let cases: &[(&str, usize, &[&str], bool)] = &[
            (r"[a-z]+foo\d", 5, &["foo"], false),
            (r"foo\bbar", 6, &["foobar"], false),
            (r"(?i)\bunion\s+select", 12, &["select"], true),
            (r"(?:abc|xyz)\d*", 3, &["abc", "xyz"], false),
            (r"a+", 1, &[], false),
            (r"(?:abc|x+)", 1, &[], false),
            (r"<script", 7, &["<script"], false),
            (r"(?i)on(?:load|error)\s*=", 7, &["load", "error"], true),
            (r"x?", 0, &[], false),
        ];
        for (p, min, strings, ci) in cases {
            let pl = plan(p).unwrap();
            assert_eq!(pl.min_len, *min, "{p}");
            let want: Vec<Vec<u8>> = strings.iter().map(|s| s.as_bytes().to_vec()).collect();
            assert_eq!(pl.strings, want, "{p}");
            if !strings.is_empty() {
                assert_eq!(pl.ci, *ci, "{p}");
            }
        }
        // A backtracking pattern is planned from its linear superset.
        let pl = plan(r"(?<!a)foobar").unwrap();
        assert!(pl.from_superset);
        assert_eq!(pl.strings, vec![b"foobar".to_vec()]);
    }
}
