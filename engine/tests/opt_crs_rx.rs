//! The `@rx` optimisations on the real CRS 3.3.4 (read from the Debian package at test time).
//!
//! - a census: how many `@rx` operators of PL1 and PL4 fall in each class, how many keep a
//!   prefilter, and how many SecLang chains could be reordered (printed; run with
//!   `--nocapture` to read it);
//! - a property test: for every CRS pattern with a literal stand-in or a prefilter, the fast
//!   path and the regex give the same verdict and the same captures on random inputs built
//!   from the patterns' own literals, random bytes (non-UTF-8 included), case changes and
//!   newlines.
//!
//! Without the CRS files the tests say so and pass, except under `CI=true`, where they fail.

use proptest::prelude::*;
use std::sync::OnceLock;
use waf_engine::eval::compile::CompiledRuleSet;
use waf_engine::load::{RuleSpec, load_rules};
use waf_engine::operator::RxMatcher;
use waf_engine::operator::fast::{FastRx, RxOptimisations};
use waf_engine::opt::{self, reorder, rxclass::RxClass};

mod common;
use common::crs_present;

fn compiled(paranoia: u8) -> CompiledRuleSet {
    let set = load_rules(&RuleSpec::from_args(&["crs"], Some(paranoia), None)).expect("CRS loads");
    CompiledRuleSet::compile(&set).expect("CRS compiles")
}

#[test]
fn crs_rx_census() {
    if !crs_present() {
        return;
    }
    let rs = compiled(4);
    for pl in [1u8, 4] {
        let c = opt::rx_census(&rs, Some(pl));
        let classes: Vec<String> =
            c.by_class.iter().map(|(k, n)| format!("{}={n}", k.name())).collect();
        eprintln!(
            "PL{pl}: {} @rx operators: {}; kept with prefilter {} (with required literals {}), \
             backtracking {}",
            c.total,
            classes.join(" "),
            c.prefiltered,
            c.with_literals,
            c.backtracking
        );
        assert_eq!(c.by_class.values().sum::<usize>(), c.total);
        assert!(c.total > 100, "CRS has hundreds of @rx operators");
        assert!(c.by_class.get(&RxClass::Keep).copied().unwrap_or(0) < c.total);
    }
    opt::for_each_operator(&rs, |root, op| {
        if let (Some(f), Some(re)) = (op.rx_fast(), op.regex()) {
            if f.class() != RxClass::Keep {
                let p: String = re.pattern().chars().take(90).collect();
                eprintln!("  {:>6} {:<11} {p}", root.id().unwrap_or(0), f.class().name());
            }
        }
    });
    let cc = reorder::chain_census(&rs);
    eprintln!(
        "chains: {} of which reorderable {}; reasons: {:?}",
        cc.chains, cc.qualifying, cc.reasons
    );
    assert!(cc.chains > 10);
    eprintln!("condition reordering safe for CRS: {}", reorder::reorder_is_safe(&rs));
}

/// Every distinct CRS pattern that has a stand-in, with its regex and fast path.
fn candidates() -> &'static [(String, RxMatcher, FastRx)] {
    static C: OnceLock<Vec<(String, RxMatcher, FastRx)>> = OnceLock::new();
    C.get_or_init(|| {
        let rs = compiled(4);
        let mut patterns: Vec<String> = Vec::new();
        opt::for_each_operator(&rs, |_, op| {
            if op.name() == "rx" && op.rx_fast().is_some() {
                if let Some(re) = op.regex() {
                    if !patterns.iter().any(|p| p == re.pattern()) {
                        patterns.push(re.pattern().to_string());
                    }
                }
            }
        });
        patterns
            .into_iter()
            .filter_map(|p| {
                let re = RxMatcher::new(&p).ok()?;
                let fast = FastRx::build(&p, RxOptimisations::ALL)?;
                Some((p, re, fast))
            })
            .collect()
    })
}

/// Literals the inputs are built from: every string of every plan.
fn pool() -> &'static [Vec<u8>] {
    static P: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    P.get_or_init(|| {
        let mut v: Vec<Vec<u8>> = Vec::new();
        for (_, _, f) in candidates() {
            if let Some(l) = f.literal() {
                v.extend(l.plan().strings.iter().cloned());
            }
            if let Some(p) = f.prefilter() {
                v.extend(p.plan().strings.iter().cloned());
            }
        }
        v.sort();
        v.dedup();
        v
    })
}

#[derive(Debug, Clone)]
enum Piece {
    Lit(usize, bool),
    Bytes(Vec<u8>),
    Newline,
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => (any::<usize>(), any::<bool>()).prop_map(|(i, up)| Piece::Lit(i, up)),
        3 => proptest::collection::vec(any::<u8>(), 0..6).prop_map(Piece::Bytes),
        1 => Just(Piece::Newline),
    ]
}

fn build(pieces: &[Piece]) -> Vec<u8> {
    let pool = pool();
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Lit(i, up) if !pool.is_empty() => {
                let s = &pool[i % pool.len()];
                if *up {
                    out.extend(s.iter().map(u8::to_ascii_uppercase));
                } else {
                    out.extend_from_slice(s);
                }
            }
            Piece::Lit(..) => {}
            Piece::Bytes(b) => out.extend_from_slice(b),
            Piece::Newline => out.push(b'\n'),
        }
    }
    out
}

#[test]
fn crs_stand_ins_agree_with_their_regexes() {
    if !crs_present() {
        return;
    }
    let cands = candidates();
    let replaced = cands.iter().filter(|(_, _, f)| f.literal().is_some()).count();
    eprintln!("{} CRS patterns with a stand-in ({replaced} replaced)", cands.len());
    assert!(replaced > 0);
    let cases = if cfg!(debug_assertions) { 24 } else { 256 };
    proptest!(ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }, |(pieces in proptest::collection::vec(piece(), 0..6), only in any::<usize>())| {
        let input = build(&pieces);
        // Every case checks one pattern on its own literals too, so every pattern is
        // checked on inputs that contain what it looks for.
        let (_, _, f0) = &cands[only % cands.len()];
        let mut own = input.clone();
        if let Some(s) = f0.literal().and_then(|l| l.plan().strings.first()) {
            own.extend_from_slice(s);
        }
        for (i, (p, re, fast)) in cands.iter().enumerate() {
            let subjects: &[&[u8]] = if i == only % cands.len() { &[&input, &own] } else { &[&input] };
            for s in subjects {
                let want = re.matches(s, None);
                prop_assert_eq!(fast.matches(re, s, None), want, "{} on {:?}", p, s);
                let mut a = waf_engine::operator::Captures::new();
                a.set_one(b"x");
                let mut b = a.clone();
                let ra = re.matches(s, Some(&mut a));
                let rb = fast.matches(re, s, Some(&mut b));
                prop_assert_eq!(ra, rb);
                prop_assert_eq!(a.groups(), b.groups(), "captures of {} on {:?}", p, s);
            }
        }
    });
}
