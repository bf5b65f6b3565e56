//! Clause reordering: cheap, selective tests first, where the order cannot be observed.
//!
//! Data flow: a compiled rule set -> [`reorder_is_safe`] (may any order be observed?) and,
//! per `CCondition::All`/`Any`, [`condition_order`] (children sorted by [`condition_cost`],
//! stable) -> the Lua code generator emits the children in that order. `and`/`or` over
//! side-effect-free booleans give the same truth value in any order; what the order can
//! change is only *which* clause matched last: `Transaction::eval_clause` records its match
//! in MATCHED_VAR / MATCHED_VARS, which survive the rule. So reordering is allowed only when
//! nothing in the rule set reads MATCHED_VAR, MATCHED_VAR_NAME, MATCHED_VARS or
//! MATCHED_VARS_NAMES (as a target, or in any macro: msg, logdata, setvar, operator argument).
//!
//! SecLang chains are stricter: every link can write TX (setvar, capture), runs its actions
//! and writes the log's matched-data record in link order. [`chain_census`] checks every
//! chain against those conditions and counts what disqualifies it (in CRS 3.3.4, all of
//! them are disqualified: see the report in [`super`]), so chains are not reordered.

use crate::eval::compile::{CClause, CCondition, CRule, CTarget, CompiledRuleSet, Item};
use crate::ir::{Action, OperatorKind, Variable};
use std::collections::BTreeMap;

const MATCHED: &[Variable] = &[
    Variable::MatchedVar,
    Variable::MatchedVarName,
    Variable::MatchedVars,
    Variable::MatchedVarsNames,
];

/// Relative cost of one operator call (streq on a short value = 1).
pub fn operator_cost(op: &OperatorKind, literal_rx: bool) -> u32 {
    use OperatorKind as K;
    match op {
        K::StrEq(_) | K::Eq(_) | K::Ge(_) | K::Gt(_) | K::Le(_) | K::Lt(_) => 1,
        K::UnconditionalMatch | K::NoMatch => 1,
        K::BeginsWith(_) | K::EndsWith(_) | K::IpMatch(_) | K::IpMatchFromFile(_) => 2,
        K::Within(_) | K::InList(_) => 2,
        K::Contains(_) | K::ContainsWord(_) | K::StrMatch(_) => 3,
        K::Rx(_) if literal_rx => 3,
        K::Pm(_) | K::PmFromFile(_) => 5,
        K::ValidateByteRange(_) | K::ValidateUrlEncoding | K::ValidateUtf8Encoding => 5,
        K::Rx(_) => 10,
        K::DetectSqli | K::DetectXss => 30,
        _ => 20,
    }
}

/// Relative cost of reading one target: a scalar of the request line is one value, a
/// whole collection many values, a body a long one.
pub fn target_cost(t: &CTarget) -> u32 {
    use Variable as V;
    if t.target.count {
        return 1;
    }
    let keyed = t.target.selector.is_some();
    match t.target.variable {
        V::RequestMethod | V::RequestProtocol | V::RemoteAddr | V::RemotePort => 1,
        V::RequestFilename | V::RequestBasename | V::QueryString | V::RequestLine => 2,
        V::RequestUri | V::RequestUriRaw => 2,
        V::RequestBody | V::FullRequest => 16,
        _ if keyed => 2,
        _ => 8,
    }
}

/// Cost of a clause: operator cost per value read, plus its transformations.
pub fn clause_cost(cl: &CClause) -> u32 {
    let literal_rx =
        cl.op.rx_fast().is_some_and(|f| f.class() != crate::opt::rxclass::RxClass::Keep);
    let op = operator_cost(&cl.operator.kind, literal_rx);
    let reads: u32 = cl.targets.iter().map(target_cost).sum::<u32>().max(1);
    op.saturating_mul(reads).saturating_add(2 * cl.transformations.len() as u32)
}

pub fn condition_cost(c: &CCondition) -> u32 {
    match c {
        CCondition::Clause(cl) => clause_cost(cl),
        CCondition::Not(c) => condition_cost(c),
        CCondition::All(v) | CCondition::Any(v) => {
            v.iter().map(condition_cost).fold(0u32, u32::saturating_add)
        }
    }
}

/// The order to evaluate `children` in: cheapest first, ties in written order.
pub fn condition_order(children: &[CCondition]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..children.len()).collect();
    idx.sort_by_key(|&i| condition_cost(&children[i]));
    idx
}

/// Every link of a chain, first to last.
fn links(r: &CRule) -> impl Iterator<Item = &CRule> {
    std::iter::successors(Some(r), |l| l.chain.as_deref())
}

fn rules(rs: &CompiledRuleSet) -> impl Iterator<Item = &CRule> {
    rs.phases.iter().flatten().filter_map(|i| match i {
        Item::Rule(r) => Some(r.as_ref()),
        Item::Marker(_) => None,
    })
}

fn clauses<'c>(c: &'c CCondition, out: &mut Vec<&'c CClause>) {
    match c {
        CCondition::Clause(cl) => out.push(cl),
        CCondition::Not(c) => clauses(c, out),
        CCondition::All(v) | CCondition::Any(v) => v.iter().for_each(|c| clauses(c, out)),
    }
}

/// Whether the JSON of some IR value names one of `vars` (conservative: any mention).
fn json_mentions<T: serde::Serialize>(v: &T, vars: &[Variable]) -> bool {
    match serde_json::to_string(v) {
        Ok(s) => vars.iter().any(|var| s.contains(&format!("\"{}\"", var.name()))),
        // Cannot tell: assume it does.
        Err(_) => true,
    }
}

fn link_reads(l: &CRule, vars: &[Variable]) -> bool {
    let a = &l.actions;
    l.targets.iter().chain(&l.exclusions).any(|t| vars.contains(&t.target.variable))
        || l.operator.as_ref().is_some_and(|(_, _, op)| json_mentions(op, vars))
        || json_mentions(&(&a.msg, &a.logdata, &a.tags, &a.setvars, &a.runtime), vars)
        || l.condition.as_ref().is_some_and(|c| {
            let mut v = Vec::new();
            clauses(c, &mut v);
            v.iter().any(|cl| {
                cl.targets.iter().chain(&cl.exclusions).any(|t| vars.contains(&t.target.variable))
                    || json_mentions(&cl.operator, vars)
            })
        })
}

/// True when no rule reads what the order of clauses decides (MATCHED_VAR*).
pub fn reorder_is_safe(rs: &CompiledRuleSet) -> bool {
    let updates = rs.target_updates.iter().any(|u| MATCHED.contains(&u.target.target.variable));
    !updates && !rules(rs).any(|r| links(r).any(|l| link_reads(l, MATCHED)))
}

/// How many chains could be reordered, and why the others cannot.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChainCensus {
    pub chains: usize,
    pub qualifying: usize,
    /// Reason -> chains it disqualifies (a chain can have several).
    pub reasons: BTreeMap<&'static str, usize>,
}

/// Checks every SecLang chain against the conditions for order independence.
pub fn chain_census(rs: &CompiledRuleSet) -> ChainCensus {
    let mut c = ChainCensus::default();
    let set_safe = reorder_is_safe(rs);
    for r in rules(rs).filter(|r| r.chain.is_some()) {
        c.chains += 1;
        let mut why: Vec<&'static str> = Vec::new();
        let mut note = |w: &'static str| {
            if !why.contains(&w) {
                why.push(w);
            }
        };
        if !set_safe {
            note("rule set reads MATCHED_VAR*");
        }
        for l in links(r) {
            let a = &l.actions;
            if !a.setvars.is_empty() {
                note("setvar");
            }
            if a.capture {
                note("capture");
            }
            if a.multi_match {
                note("multiMatch");
            }
            if a.runtime.iter().any(|x| matches!(x, Action::Ctl(_))) {
                note("ctl");
            }
            if l.operator.as_ref().is_some_and(|(_, op, _)| op.needs_expansion()) {
                note("operator macro");
            }
            if l.targets.iter().any(|t| t.target.variable == Variable::Tx) {
                note("reads TX");
            }
            if link_reads(l, MATCHED) {
                note("reads MATCHED_VAR*");
            }
        }
        // v3 logs each link's matched data in chain order: a logging chain shows its order.
        let nolog = r.actions.runtime.iter().rev().find_map(|x| match x {
            Action::Log => Some(false),
            Action::NoLog => Some(true),
            _ => None,
        });
        let default_nolog = rs.defaults[usize::from(r.actions.phase.clamp(1, 5)) - 1]
            .runtime
            .iter()
            .rev()
            .find_map(|x| match x {
                Action::Log => Some(false),
                Action::NoLog => Some(true),
                _ => None,
            });
        if !nolog.or(default_nolog).unwrap_or(false) {
            note("logs");
        }
        if why.is_empty() {
            c.qualifying += 1;
        }
        for w in why {
            *c.reasons.entry(w).or_default() += 1;
        }
    }
    c
}
