//! Backend-neutral optimisations of a compiled rule set.
//!
//! | module | what |
//! |---|---|
//! | [`rxclass`] | `@rx` pattern -> literal / prefix / suffix / whole line / literal set, or keep |
//! | [`prefilter`] | `@rx` that stays a regex -> required literals and minimum length |
//! | [`reorder`] | cost model and safety check for evaluating cheap clauses first |
//!
//! The two `@rx` analyses run once per operator when `CompiledOperator::compile` builds
//! it (see `operator::fast`); [`set_rx_optimisations`] switches their use on a whole
//! compiled set, which is how the Lua compiler's `operator-replacement` and
//! `regex-prefilter` passes act. Clause reordering changes only the order the Lua code
//! generator emits a condition's children in.
//!
//! What they catch in CRS 3.3.4 (`engine/tests/opt_crs_rx.rs`, by `paranoia-level/N` tag):
//! PL1 200 `@rx` operators: literal 8, prefix 3, exact 9 (five of them `^$`, since
//! 2026-12-03), literal set 35, whole subject 2, kept 143 (89 of them with a
//! required-literal prefilter); PL4 266: literal 10, prefix 4, exact 11, literal set 42, whole
//! subject 2, kept 197 (105 prefiltered). No CRS chain qualifies for reordering (0 of 115), and
//! CRS reads MATCHED_VAR, so conditions are not reordered there either.
//!
//! Measured on the native path (`engine/tests/opt_measure.rs`, every CRS pattern with a
//! stand-in over 33,019 benign corpus values, ns per call, median of 5 rounds): replaced
//! patterns 98.8 (regex) -> 68.3 (literal search); kept linear patterns 128.1 (regex) ->
//! 143.4 (prefilter + regex), within this VM's noise (the "replace" column, which runs the
//! same code as "regex" for them, read 145.8). The Rust `regex` crate already extracts
//! literal prefilters (prefix and inner literals) and checks minimum lengths, so our
//! prefilter is redundant for it; for the backtracking patterns the existing linear
//! superset prefilter (`rx.rs`, `Dialect::Relaxed`) is strictly stronger than literals taken
//! from the same superset. Hence `RxOptimisations::DEFAULT`: replacement on, prefilter off.

pub mod prefilter;
pub mod reorder;
pub mod rxclass;

use crate::eval::compile::{CCondition, CRule, CompiledRuleSet, Item};
use crate::operator::CompiledOperator;
pub use crate::operator::fast::RxOptimisations;
use rxclass::RxClass;
use std::collections::BTreeMap;

/// Calls `f` for every compiled operator of the set (chain links and condition clauses).
pub fn for_each_operator(rs: &CompiledRuleSet, mut f: impl FnMut(&CRule, &CompiledOperator)) {
    fn cond<'a>(root: &CRule, c: &'a CCondition, f: &mut dyn FnMut(&CRule, &CompiledOperator)) {
        match c {
            CCondition::Clause(cl) => f(root, &cl.op),
            CCondition::Not(c) => cond(root, c, f),
            CCondition::All(v) | CCondition::Any(v) => v.iter().for_each(|c| cond(root, c, f)),
        }
    }
    for item in rs.phases.iter().flatten() {
        let Item::Rule(r) = item else { continue };
        let mut link = Some(r.as_ref());
        while let Some(l) = link {
            if let Some((_, op, _)) = &l.operator {
                f(r, op);
            }
            if let Some(c) = &l.condition {
                cond(r, c, &mut f);
            }
            link = l.chain.as_deref();
        }
    }
}

/// Switches the `@rx` stand-ins of every operator of the set.
pub fn set_rx_optimisations(rs: &CompiledRuleSet, opts: RxOptimisations) {
    for_each_operator(rs, |_, op| op.set_rx_optimisations(opts));
}

/// How many `@rx` operators fall into each class.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RxCensus {
    /// Literal `@rx` operators counted.
    pub total: usize,
    pub by_class: BTreeMap<RxClass, usize>,
    /// Of the kept ones: with a useful prefilter (minimum length or required literals).
    pub prefiltered: usize,
    /// Of those: with required literals.
    pub with_literals: usize,
    /// Of the kept ones: on the backtracking engine.
    pub backtracking: usize,
}

/// The highest `paranoia-level/N` tag of a rule (1 when it has none).
fn paranoia_of(r: &CRule) -> u8 {
    r.actions
        .tags
        .iter()
        .filter_map(|t| t.as_literal()?.strip_prefix("paranoia-level/")?.parse().ok())
        .max()
        .unwrap_or(1)
}

/// Counts the `@rx` operators (with a literal pattern) of rules up to `paranoia` (CRS's
/// `paranoia-level/N` tags; `None`: every rule).
pub fn rx_census(rs: &CompiledRuleSet, paranoia: Option<u8>) -> RxCensus {
    let mut c = RxCensus::default();
    for_each_operator(rs, |root, op| {
        if paranoia.is_some_and(|p| paranoia_of(root) > p) {
            return;
        }
        let Some(re) = op.regex() else { return };
        if op.name() != "rx" {
            return;
        }
        c.total += 1;
        let class = op.rx_fast().map_or(RxClass::Keep, |f| f.class());
        *c.by_class.entry(class).or_default() += 1;
        if class == RxClass::Keep {
            if re.is_backtracking() {
                c.backtracking += 1;
            }
            if let Some(p) = op.rx_fast().and_then(|f| f.prefilter()) {
                c.prefiltered += 1;
                if !p.plan().strings.is_empty() {
                    c.with_literals += 1;
                }
            }
        }
    });
    c
}
