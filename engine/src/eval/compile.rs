//! IR -> executable rule set for the native evaluator.
//!
//! Resolves what ModSecurity v3 resolves when it loads rules: configuration directives
//! (the last one of each kind wins, as in one `msc_rules_add` call), `SecDefaultAction` per
//! phase (v3 applies the *last* default of a phase to every rule of that phase, wherever the
//! rule stands: `RuleWithActions` reads `m_defaultActions[phase]` at run time),
//! `SecRuleRemoveBy*` and `SecRuleUpdateTargetBy*` (v3 keeps them as exceptions checked at run
//! time, so their position in the file does not matter), `SecRuleUpdateActionById` (applied to
//! the rules loaded before it). Rules are split by phase; markers go into every phase, as v3
//! inserts `SecMarker` into all of them.

use super::EvalError;
use crate::ir::{
    Action, Condition, ConfigDirective, Directive, EngineMode, IdRange, MacroString, Operator,
    Rule, RuleSet, Selector, SetVar, Severity, Target, Transformation, Variable,
};
use crate::operator::CompiledOperator;
use crate::txn::{CompiledSelector, TxnConfig};
use std::sync::Arc;

/// Engine-wide settings after all configuration directives.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub rule_engine: EngineMode,
    pub txn: TxnConfig,
}

/// A compiled target: what to read, with its selector compiled once.
#[derive(Debug)]
pub struct CTarget {
    pub target: Target,
    pub selector: Option<CompiledSelector>,
    /// `Target`'s SecLang spelling, compared with `ctl:ruleRemoveTargetById` strings.
    pub full_name: String,
    /// Compiled key regex for exclusions and selectors of evaluator-owned collections
    /// (TX, IP, ...): case-insensitive, as v3's `VariableRegex`.
    pub key_regex: Option<regex::Regex>,
}

/// What a rule does when it (or its chain) matched, split the way v3 runs them.
#[derive(Debug, Default)]
pub struct CActions {
    pub id: Option<u64>,
    pub phase: u8,
    pub msg: Option<MacroString>,
    pub logdata: Option<MacroString>,
    pub severity: Option<Severity>,
    pub tags: Vec<MacroString>,
    pub setvars: Vec<SetVar>,
    /// Non-disruptive actions run after a full match, in order (log/nolog/auditlog/
    /// noauditlog, status, ctl, skip, skipAfter, initcol, block, ...).
    pub runtime: Vec<Action>,
    /// The rule's own disruptive action (last one written wins, as in v3).
    pub disruptive: Option<Action>,
    pub contains_block: bool,
    pub capture: bool,
    pub multi_match: bool,
    pub transformations: Vec<Transformation>,
    pub has_none: bool,
    /// What runs on each value: the phase defaults (unless `t:none`) and the rule's own
    /// transformations after its last `t:none`, resolved once here instead of per value.
    pub chain: Vec<Transformation>,
    pub chained: bool,
}

#[derive(Debug)]
pub struct CRule {
    pub targets: Vec<CTarget>,
    pub exclusions: Vec<CTarget>,
    /// `None` for `SecAction` and for rules with a condition.
    pub operator: Option<(bool, CompiledOperator, Operator)>,
    /// A boolean condition (Cloudflare-style `or` / `not (...)`).
    pub condition: Option<CCondition>,
    pub actions: CActions,
    pub chain: Option<Box<CRule>>,
    /// Index in the whole rule set, for per-rule profiles.
    pub index: usize,
    pub loc: Option<crate::ir::Loc>,
}

impl CRule {
    pub fn id(&self) -> Option<u64> {
        self.actions.id
    }
    pub fn contains_tag(&self, tag: &str) -> bool {
        self.actions.tags.iter().any(|t| t.as_literal() == Some(tag))
    }
    pub fn contains_msg(&self, msg: &str) -> bool {
        self.actions.msg.as_ref().and_then(|m| m.as_literal()) == Some(msg)
    }
}

/// A compiled [`crate::ir::Condition`].
#[derive(Debug)]
pub enum CCondition {
    Clause(Box<CClause>),
    All(Vec<CCondition>),
    Any(Vec<CCondition>),
    Not(Box<CCondition>),
}

/// One clause: true when the operator matches any value of its targets.
#[derive(Debug)]
pub struct CClause {
    pub targets: Vec<CTarget>,
    pub exclusions: Vec<CTarget>,
    pub transformations: Vec<Transformation>,
    pub negated: bool,
    pub op: CompiledOperator,
    pub operator: Operator,
}

#[derive(Debug)]
pub enum Item {
    Rule(Arc<CRule>),
    Marker(String),
}

/// Default actions of one phase.
#[derive(Debug, Default, Clone)]
pub struct PhaseDefaults {
    /// Non-disruptive actions run after every full match (`log`, `auditlog`, ...).
    pub runtime: Vec<Action>,
    /// Disruptive action used by `block`.
    pub disruptive: Option<Action>,
    pub transformations: Vec<Transformation>,
}

/// A target added to or excluded from rules by `SecRuleUpdateTargetBy*`.
#[derive(Debug)]
pub enum Selection {
    Ids(Vec<IdRange>),
    Tag(String),
    Msg(String),
}

#[derive(Debug)]
pub struct TargetUpdate {
    pub selection: Selection,
    pub exclude: bool,
    pub target: Arc<CTarget>,
}

/// The executable rule set.
#[derive(Debug)]
pub struct CompiledRuleSet {
    pub config: EngineConfig,
    /// Index 0 is phase 1 (request headers), 4 is phase 5 (logging).
    pub phases: [Vec<Item>; 5],
    pub defaults: [PhaseDefaults; 5],
    pub removed_ids: Vec<IdRange>,
    pub removed_tags: Vec<String>,
    pub removed_msgs: Vec<String>,
    pub target_updates: Vec<TargetUpdate>,
    pub rule_count: usize,
}

impl CompiledRuleSet {
    pub fn compile(rs: &RuleSet) -> Result<CompiledRuleSet, EvalError> {
        // Without `SecRuleEngine`, v3.0.9 runs the rules but never disrupts
        // (`PropertyNotSetRuleEngine` is neither Disabled nor Enabled): DetectionOnly.
        let mut rule_engine = EngineMode::DetectionOnly;
        let mut txn = TxnConfig::default();
        let mut defaults: [PhaseDefaults; 5] = Default::default();
        let mut rules: Vec<Rule> = Vec::new();
        let mut order: Vec<Entry> = Vec::new();
        let mut removed_ids = Vec::new();
        let mut removed_tags = Vec::new();
        let mut removed_msgs = Vec::new();
        let mut target_updates = Vec::new();

        for d in &rs.directives {
            match d {
                Directive::Rule(r) => {
                    order.push(Entry::Rule(rules.len()));
                    rules.push(r.clone());
                }
                Directive::Marker(m) => order.push(Entry::Marker(m.name.clone())),
                Directive::DefaultAction(da) => {
                    let phase = da
                        .actions
                        .iter()
                        .find_map(|a| match a {
                            Action::Phase(p) => Some(*p),
                            _ => None,
                        })
                        .unwrap_or(2);
                    let idx = phase_index(phase)?;
                    let mut pd = PhaseDefaults::default();
                    for a in &da.actions {
                        match a {
                            Action::Phase(_) => {}
                            Action::T(t) => pd.transformations.push(*t),
                            a if a.is_disruptive() => pd.disruptive = Some(a.clone()),
                            a => pd.runtime.push(a.clone()),
                        }
                    }
                    defaults[idx] = pd;
                }
                Directive::Config(c) => apply_config(c, &mut rule_engine, &mut txn),
                Directive::Setting { .. } => {}
                Directive::RemoveById(ids) => removed_ids.extend(ids.iter().copied()),
                Directive::RemoveByTag(t) => removed_tags.push(t.clone()),
                Directive::RemoveByMsg(m) => removed_msgs.push(m.clone()),
                Directive::UpdateTargetById { ids, targets, .. } => {
                    push_updates(&mut target_updates, || Selection::Ids(ids.clone()), targets)?
                }
                Directive::UpdateTargetByTag { tag, targets, .. } => {
                    push_updates(&mut target_updates, || Selection::Tag(tag.clone()), targets)?
                }
                Directive::UpdateTargetByMsg { msg, targets, .. } => {
                    push_updates(&mut target_updates, || Selection::Msg(msg.clone()), targets)?
                }
                Directive::UpdateActionById { id, actions } => {
                    for r in rules.iter_mut().filter(|r| r.id() == Some(*id)) {
                        update_actions(r, actions);
                    }
                }
            }
        }

        let mut phases: [Vec<Item>; 5] = Default::default();
        let mut index = 0usize;
        for e in order {
            match e {
                Entry::Marker(name) => {
                    for p in phases.iter_mut() {
                        p.push(Item::Marker(name.clone()));
                    }
                }
                Entry::Rule(i) => {
                    let r = &rules[i];
                    let phase = r.phase().unwrap_or(2);
                    let idx = phase_index(phase)?;
                    let c = compile_rule(r, phase, &defaults, &mut index)?;
                    phases[idx].push(Item::Rule(Arc::new(c)));
                }
            }
        }
        Ok(CompiledRuleSet {
            config: EngineConfig { rule_engine, txn },
            phases,
            defaults,
            removed_ids,
            removed_tags,
            removed_msgs,
            target_updates,
            rule_count: index,
        })
    }

    /// Every compiled rule (first links), in phase order.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<CRule>> {
        self.phases.iter().flatten().filter_map(|i| match i {
            Item::Rule(r) => Some(r),
            Item::Marker(_) => None,
        })
    }
}

enum Entry {
    Rule(usize),
    Marker(String),
}

fn phase_index(phase: u8) -> Result<usize, EvalError> {
    match phase {
        1..=5 => Ok(phase as usize - 1),
        // v3 treats phase 0 (connection) like phase 1 for CRS purposes; nothing uses it.
        0 => Ok(0),
        p => Err(EvalError::Compile(format!("phase {p} is not 1-5"))),
    }
}

fn apply_config(c: &ConfigDirective, engine: &mut EngineMode, txn: &mut TxnConfig) {
    match c {
        ConfigDirective::RuleEngine(m) => *engine = *m,
        other => txn.apply(other),
    }
}

fn push_updates(
    out: &mut Vec<TargetUpdate>,
    sel: impl Fn() -> Selection,
    targets: &[Target],
) -> Result<(), EvalError> {
    for t in targets {
        out.push(TargetUpdate {
            selection: sel(),
            exclude: t.exclude,
            target: Arc::new(compile_target(t)?),
        });
    }
    Ok(())
}

/// `SecRuleUpdateActionById`: replaces the disruptive action and the listed meta-data,
/// appends the rest (v3 `RulesSetPhases`/`Driver` behaviour for CRS-style use).
fn update_actions(rule: &mut Rule, actions: &[Action]) {
    for a in actions {
        let same_kind = |b: &Action| {
            std::mem::discriminant(a) == std::mem::discriminant(b)
                || (a.is_disruptive() && b.is_disruptive())
        };
        let replace = a.is_disruptive()
            || matches!(
                a,
                Action::Msg(_)
                    | Action::LogData(_)
                    | Action::Severity(_)
                    | Action::Status(_)
                    | Action::Ver(_)
                    | Action::Rev(_)
            );
        if replace {
            rule.actions.retain(|b| !same_kind(b));
        }
        rule.actions.push(a.clone());
    }
}

pub(crate) fn compile_target(t: &Target) -> Result<CTarget, EvalError> {
    let selector = match &t.selector {
        Some(s) => Some(CompiledSelector::new(s).map_err(EvalError::Compile)?),
        None => None,
    };
    let key_regex = match &t.selector {
        Some(Selector::Regex(r)) => Some(
            regex::RegexBuilder::new(r)
                .case_insensitive(true)
                .dot_matches_new_line(true)
                .multi_line(true)
                .build()
                .map_err(|e| EvalError::Compile(format!("selector /{r}/: {e}")))?,
        ),
        _ => None,
    };
    let mut plain = t.clone();
    plain.exclude = false;
    Ok(CTarget { target: t.clone(), selector, full_name: plain.to_string(), key_regex })
}

fn compile_rule(
    r: &Rule,
    phase: u8,
    defaults: &[PhaseDefaults; 5],
    index: &mut usize,
) -> Result<CRule, EvalError> {
    let my_index = *index;
    *index += 1;
    let mut targets = Vec::new();
    let mut exclusions = Vec::new();
    for t in &r.targets {
        let c = compile_target(t)?;
        if t.exclude {
            exclusions.push(c);
        } else {
            targets.push(c);
        }
    }
    let condition = match &r.condition {
        Some(c) => Some(compile_condition(c, r.id())?),
        None => None,
    };
    let operator = match &r.operator {
        Some(op) => Some((op.negated, compile_operator(op, r.id())?, op.clone())),
        None => None,
    };
    let mut acts = CActions { phase, ..Default::default() };
    for a in &r.actions {
        match a {
            Action::Id(i) => acts.id = Some(*i),
            Action::Phase(_) => {}
            Action::Msg(m) => acts.msg = Some(m.clone()),
            Action::LogData(m) => acts.logdata = Some(m.clone()),
            Action::Severity(s) => acts.severity = Some(*s),
            Action::Tag(t) => acts.tags.push(t.clone()),
            Action::SetVar(s) => acts.setvars.push(s.clone()),
            Action::T(t) => {
                if *t == Transformation::None {
                    acts.has_none = true;
                }
                acts.transformations.push(*t);
            }
            Action::Capture => acts.capture = true,
            Action::MultiMatch => acts.multi_match = true,
            Action::Chain => acts.chained = true,
            Action::Block => {
                acts.contains_block = true;
                acts.runtime.push(Action::Block);
            }
            Action::Ver(_)
            | Action::Rev(_)
            | Action::Maturity(_)
            | Action::Accuracy(_)
            | Action::Xmlns { .. } => {}
            a if a.is_disruptive() => acts.disruptive = Some(a.clone()),
            a => acts.runtime.push(a.clone()),
        }
    }
    let idx = phase_index(phase)?;
    acts.chain =
        effective_chain(&defaults[idx].transformations, &acts.transformations, acts.has_none);
    let chain = match &r.chain {
        Some(c) => Some(Box::new(compile_rule(c, phase, defaults, index)?)),
        None => None,
    };
    Ok(CRule {
        targets,
        exclusions,
        operator,
        condition,
        actions: acts,
        chain,
        index: my_index,
        loc: r.loc.clone(),
    })
}

/// v3 `executeTransformations`: the phase's default transformations first unless the rule
/// has `t:none`; the rule's own ones after its last `t:none`.
fn effective_chain(
    defaults: &[Transformation],
    own: &[Transformation],
    has_none: bool,
) -> Vec<Transformation> {
    let mut out = Vec::with_capacity(defaults.len() + own.len());
    if !has_none {
        out.extend(defaults.iter().copied().filter(|t| *t != Transformation::None));
    }
    let start = own.iter().rposition(|t| *t == Transformation::None).map_or(0, |i| i + 1);
    out.extend(own[start..].iter().copied());
    out
}

fn compile_operator(op: &Operator, id: Option<u64>) -> Result<CompiledOperator, EvalError> {
    CompiledOperator::compile(&op.kind).map_err(|e| {
        EvalError::Compile(format!(
            "rule {}: {e}",
            id.map(|i| i.to_string()).unwrap_or_else(|| "?".into())
        ))
    })
}

fn compile_condition(c: &Condition, id: Option<u64>) -> Result<CCondition, EvalError> {
    Ok(match c {
        Condition::Clause(cl) => {
            let mut targets = Vec::new();
            let mut exclusions = Vec::new();
            for t in &cl.targets {
                let ct = compile_target(t)?;
                if t.exclude { exclusions.push(ct) } else { targets.push(ct) }
            }
            let start = cl
                .transformations
                .iter()
                .rposition(|t| *t == Transformation::None)
                .map_or(0, |i| i + 1);
            CCondition::Clause(Box::new(CClause {
                targets,
                exclusions,
                transformations: cl.transformations[start..].to_vec(),
                negated: cl.operator.negated,
                op: compile_operator(&cl.operator, id)?,
                operator: cl.operator.clone(),
            }))
        }
        Condition::All(v) => {
            CCondition::All(v.iter().map(|c| compile_condition(c, id)).collect::<Result<_, _>>()?)
        }
        Condition::Any(v) => {
            CCondition::Any(v.iter().map(|c| compile_condition(c, id)).collect::<Result<_, _>>()?)
        }
        Condition::Not(c) => CCondition::Not(Box::new(compile_condition(c, id)?)),
    })
}

pub(crate) fn is_collection_var(v: Variable) -> bool {
    matches!(
        v,
        Variable::Tx
            | Variable::Ip
            | Variable::Global
            | Variable::Session
            | Variable::User
            | Variable::Resource
    )
}
