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
use super::sources::{PM_SLOT, RxSlot, SourceBuilder, SourceTable};
use crate::ir::{
    Action, Condition, ConfigDirective, Directive, EngineMode, IdRange, MacroString, Operator,
    Rule, RuleSet, Selector, SetVar, SetVarOp, Severity, Target, Transformation, Variable,
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
    pub key_regex: Option<KeyRegex>,
    /// [`KeyRegex::needs`] of `key_regex` (0 without one).
    pub key_needs: u64,
    /// Case-insensitive hash of a literal key selector on an evaluator-owned collection.
    pub key_hash: Option<u64>,
    /// Shared per-request value list (see [`super::sources`]), when this target of this
    /// link reads request data.
    pub source: Option<u32>,
    /// For a key regex on TX: the positions of the init snapshot's TX keys it selects,
    /// found on first use ([`super::run::InitSnapshot::key_hits`]). A target belongs to one
    /// compiled rule set, so to one snapshot.
    pub snapshot_hits: std::sync::OnceLock<Box<[u32]>>,
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
    /// Per setvar: [`ci_hash`] of its key when the key has no macro.
    pub setvar_key_hash: Vec<Option<u64>>,
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
#[repr(C, align(64))]
pub struct CRule {
    /// Read by every evaluation, match or not: first, so it shares the rule's first cache
    /// lines with the fields below it (the field order is fixed by `repr(C)`).
    pub hot: LinkHot,
    /// Removed by `SecRuleRemoveBy*` (position-independent in v3: resolved once here).
    pub removed: bool,
    /// Some `SecRuleUpdateTargetBy*` selects the rule (its lists come from `link_targets`).
    pub updated: bool,
    /// One of those adds a target (not only `!` ones, which its sources already leave out).
    pub update_adds: bool,
    /// [`CRule::verdict`], bits inverted.
    pub(crate) verdict_code: Option<std::num::NonZeroU32>,
    // A link over value sources that matches no value reads the first line only: the
    // fields above, its prefilter slot and its target list; not the exclusions or the
    // operator beyond them. The layout test (`eval::tests::a_failing_link_reads_one_line`)
    // holds these fields there.
    /// This link's `@rx` in the shared prefilter (see [`super::sources`]), [`CRule::rx_slot`]:
    /// `slot` is [`NO_RX`] for none (8 bytes, where an `Option` takes 12).
    pub(crate) rx: RxSlot,
    /// A boxed slice, not a `Vec`: 16 bytes, so that it ends the first line.
    pub targets: Box<[CTarget]>,
    pub exclusions: Vec<CTarget>,
    /// A `multiMatch` `@rx`'s required literals, tested on each value before the regex.
    pub value_filter: Option<Box<crate::operator::fast::Prefilter>>,
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

/// What evaluating a link reads when it does not match, copied out of the operator and the
/// actions (hundreds of bytes further on) so that a rule that fails touches few cache lines.
/// Set by [`set_hot`] once the rule is final.
///
/// 32 bytes, so that the rule's first line also holds its target list and prefilter slot
/// (see [`CRule`]): the flags are bits, and sources are 16-bit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkHot {
    /// The rule's id when [`LinkHot::HAS_ID`] is set.
    id: u64,
    /// Bit `i`: target `i` is named whole by one of the link's own exclusions (it reads
    /// nothing). Valid when [`LinkHot::mask_valid`] (at most 64 targets).
    pub excluded_targets: u64,
    /// The value sources ([`CTarget::source`], [`LinkHot::NO_SOURCE`] for none) of the first
    /// [`HOT_SOURCES`] targets, valid when [`LinkHot::SOURCES_VALID`] is set: reading a
    /// target's source would otherwise read a line of each target (they are a few hundred
    /// bytes apart).
    sources: [u16; HOT_SOURCES],
    flags: u16,
}

/// One `bool` getter per [`LinkHot`] flag.
macro_rules! flag_getters {
    ($($(#[$doc:meta])* $name:ident => $flag:ident;)*) => {
        $(
            $(#[$doc])*
            #[inline]
            pub fn $name(&self) -> bool {
                self.has(Self::$flag)
            }
        )*
    };
}

/// Targets whose value source [`LinkHot`] keeps: CRS links read up to six.
pub const HOT_SOURCES: usize = 6;

impl LinkHot {
    const HAS_ID: u16 = 1;
    const MASK_VALID: u16 = 1 << 1;
    const HAS_OPERATOR: u16 = 1 << 2;
    const NEGATED: u16 = 1 << 3;
    const NEEDS_EXPANSION: u16 = 1 << 4;
    const CAPTURE: u16 = 1 << 5;
    const MULTI_MATCH: u16 = 1 << 6;
    const HAS_CONDITION: u16 = 1 << 7;
    const SOURCES_VALID: u16 = 1 << 8;
    /// A target without a source (the link reads the target itself).
    const NO_SOURCE: u16 = u16::MAX;

    /// The hot copy of the first [`HOT_SOURCES`] of `sources` (each target's
    /// [`CTarget::source`]); `None` when one does not fit 16 bits beside
    /// [`LinkHot::NO_SOURCE`] (never at CRS's sizes): the copy is then not used, and every
    /// target's source is read from the target.
    pub(crate) fn sources_of(
        sources: impl Iterator<Item = Option<u32>>,
    ) -> Option<[u16; HOT_SOURCES]> {
        let mut out = [Self::NO_SOURCE; HOT_SOURCES];
        for (o, s) in out.iter_mut().zip(sources) {
            if let Some(s) = s {
                *o = u16::try_from(s).ok().filter(|&n| n != Self::NO_SOURCE)?;
            }
        }
        Some(out)
    }

    /// The value source of target `i` (`t`), from the hot copy when it has one.
    #[inline]
    pub fn source(&self, i: usize, t: &CTarget) -> Option<u32> {
        match self.sources.get(i) {
            Some(&s) if self.has(Self::SOURCES_VALID) => {
                (s != Self::NO_SOURCE).then_some(u32::from(s))
            }
            _ => t.source,
        }
    }

    #[inline]
    fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
    #[inline]
    pub fn id(&self) -> Option<u64> {
        self.has(Self::HAS_ID).then_some(self.id)
    }
    flag_getters! {
        /// [`LinkHot::excluded_targets`] is valid (at most 64 targets).
        mask_valid => MASK_VALID;
        has_operator => HAS_OPERATOR;
        negated => NEGATED;
        needs_expansion => NEEDS_EXPANSION;
        capture => CAPTURE;
        multi_match => MULTI_MATCH;
        has_condition => HAS_CONDITION;
    }
}

/// Bit `i`: target `i` is named whole by one of `exclusions` (it reads nothing); `None`
/// past 64 targets. [`LinkHot::excluded_targets`] for the native loop, a Lua link plan's
/// over the link's full exclusion list.
pub(crate) fn named_whole<'a, E: std::borrow::Borrow<CTarget>>(
    targets: impl ExactSizeIterator<Item = &'a CTarget>,
    exclusions: &[E],
) -> Option<u64> {
    if targets.len() > 64 {
        return None;
    }
    Some(targets.enumerate().fold(0u64, |m, (i, t)| {
        let whole = exclusions.iter().any(|e| e.borrow().full_name == t.full_name);
        if whole { m | 1 << i } else { m }
    }))
}

/// Fills [`CRule::hot`] of every link of a finished rule.
pub(crate) fn set_hot(rule: &mut CRule) {
    let mut link = Some(rule);
    while let Some(l) = link {
        let excluded = named_whole(l.targets.iter(), &l.exclusions);
        let sources = LinkHot::sources_of(l.targets.iter().map(|t| t.source));
        let flag = |on: bool, f: u16| if on { f } else { 0 };
        let op = l.operator.as_ref();
        l.hot = LinkHot {
            id: l.actions.id.unwrap_or(0),
            excluded_targets: excluded.unwrap_or(0),
            sources: sources.unwrap_or([LinkHot::NO_SOURCE; HOT_SOURCES]),
            flags: flag(l.actions.id.is_some(), LinkHot::HAS_ID)
                | flag(excluded.is_some(), LinkHot::MASK_VALID)
                | flag(op.is_some(), LinkHot::HAS_OPERATOR)
                | flag(op.is_some_and(|o| o.0), LinkHot::NEGATED)
                | flag(op.is_some_and(|o| o.1.needs_expansion()), LinkHot::NEEDS_EXPANSION)
                | flag(l.actions.capture, LinkHot::CAPTURE)
                | flag(l.actions.multi_match, LinkHot::MULTI_MATCH)
                | flag(l.condition.is_some(), LinkHot::HAS_CONDITION)
                | flag(sources.is_some(), LinkHot::SOURCES_VALID),
        };
        link = l.chain.as_deref_mut();
    }
}

/// [`CRule::rx`] of a link without a prefilter slot (no slot, `@pm` ones included, is
/// this high: [`super::sources::PM_SLOT`] plus at most 63).
const NO_RX: RxSlot = RxSlot { slot: u32::MAX, min_len: 0 };

/// [`CRule::rx`] for `s`.
fn rx_code(s: Option<RxSlot>) -> RxSlot {
    s.filter(|s| s.slot != NO_RX.slot).unwrap_or(NO_RX)
}

impl CRule {
    /// This link's `@rx` (or `@pm`) in the shared prefilter, if it has one.
    #[inline]
    pub fn rx_slot(&self) -> Option<RxSlot> {
        (self.rx.slot != NO_RX.slot).then_some(self.rx)
    }

    /// Where the value memo keeps this link's `@rx` verdicts on a value (matched or not):
    /// the prefilter slot's number, or for a regex with no required literal a number of
    /// its own ([`super::sources::VERDICT_ONLY`]). A `multiMatch` link (`@rx`, or a
    /// libinjection detector) keeps "no step matched" there, by the raw bytes.
    #[inline]
    pub fn verdict(&self) -> Option<u32> {
        self.verdict_code.map(|c| !c.get())
    }
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
    /// Value sources and the `@rx` prefilter.
    pub sources: SourceTable,
    /// Parallel to `phases`: for each rule that the shared prefilter alone can prove does
    /// not match, or that the init snapshot decides (see [`FastSkip`]), its plan; for each
    /// marker, [`SkipPlan::Marker`].
    pub fast: [Vec<Option<FastSkip>>; 5],
    /// The source ids the plans read (`FastSkip::start..start + len`).
    pub fast_sources: Vec<u32>,
    /// The outcome of the leading phase-1 rules that read nothing from the request, computed
    /// once (see [`super::run::InitSnapshot`]).
    pub init: Option<super::run::InitSnapshot>,
    /// The outcomes of the rules folded by [`SkipPlan::AfterInitMatch`] and
    /// [`SkipPlan::CleanTx`].
    pub folds: FoldTable,
    /// The positions, in the init snapshot's TX, of the keys [`SkipPlan::CleanTx`] plans
    /// check (`start..start + len`).
    pub clean_slots: Vec<u32>,
    /// Parallel to `phases`: for a rule whose every `skipAfter` (its links' and the phase
    /// defaults') names one marker, the position of the first marker item of that name after
    /// it; `u32::MAX` otherwise. When such a rule leaves its jump pending, the native loop
    /// goes straight there instead of past every item in between (see [`jump_targets`]).
    pub jumps: [Vec<u32>; 5],
    /// The targets of macros that select by regex (`%{ARGS:/^id/}`), compiled on first use.
    pub macro_targets: MacroTargets,
}

/// The compiled targets of `%{VAR:/regex/}` macros, by variable and regex. A macro is
/// expanded every time its rule matches, and compiling its selector took longer than the
/// rest of the decision (a rule setting `tx.first=%{ARGS:/^[a-z]+_?id$/}` ran at a p99 of
/// 2.5 times ModSecurity's). Filled lazily, so every place a macro can appear is covered; the
/// keys come from the rule set's own text, so it stays as small as that.
#[derive(Debug, Default)]
pub struct MacroTargets(std::sync::RwLock<Vec<(Variable, String, Arc<CTarget>)>>);

impl MacroTargets {
    /// The target of `%{var:/re/}`, compiled the first time it is asked for. A rule set names
    /// a handful of such macros: a scan finds one without building a key.
    pub(crate) fn get(&self, var: Variable, re: &str) -> Arc<CTarget> {
        let find = |kept: &[(Variable, String, Arc<CTarget>)]| {
            kept.iter().find(|(v, r, _)| *v == var && r == re).map(|(_, _, t)| Arc::clone(t))
        };
        let read = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = find(&read) {
            return t;
        }
        drop(read);
        let t = Arc::new(macro_target(var, Some(Selector::Regex(re.to_string()))));
        let mut write = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(other) = find(&write) {
            // Another thread compiled it meanwhile.
            return other;
        }
        write.push((var, re.to_string(), Arc::clone(&t)));
        t
    }

    /// How many macro targets were compiled so far.
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The target a macro `%{var}`, `%{var.key}` or `%{var:/re/}` reads, built as a rule's target
/// is: a key regex for the evaluator's own collections (case-insensitive, as v3's
/// `VariableRegex`).
pub(crate) fn macro_target(var: Variable, selector: Option<Selector>) -> CTarget {
    let key_regex = match &selector {
        Some(Selector::Regex(re)) if is_collection_var(var) => KeyRegex::new(re).ok(),
        _ => None,
    };
    CTarget {
        selector: selector.as_ref().and_then(|s| CompiledSelector::new(s).ok()),
        target: Target { variable: var, selector, exclude: false, count: false },
        full_name: String::new(),
        key_needs: key_regex.as_ref().map_or(0, KeyRegex::needs),
        key_regex,
        key_hash: None,
        source: None,
        snapshot_hits: std::sync::OnceLock::new(),
    }
}

/// How the evaluator can tell, without reading a rule, that it does not match. Either way
/// the rule is done at once, before its scattered structures are touched: on a cold cache
/// (another engine, or other work, ran in between) that saves their misses.
///
/// Eight bytes (checked below): the native phase loop reads one per rule it passes, most
/// of them rules it then skips, so the array is what a skipped rule costs in cache lines
/// (at sixteen bytes a CRS PL1 decision read 128 lines of it, 8% of the data lines a cold
/// bodiless GET reads). Hence 16-bit fields: a rule whose numbers do not fit gets no plan,
/// and is evaluated as any other. The rule's id is not kept here: it is read from the rule
/// in the rare transaction where `ctl:ruleRemoveById` removed something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastSkip {
    pub plan: SkipPlan,
}

const _: () = assert!(std::mem::size_of::<Option<FastSkip>>() == 8);

/// "No position" / "no fold" in a plan's 16-bit fields.
pub const PLAN_NONE: u16 = u16::MAX;

/// A [`RxSlot`] in four bytes, for [`SkipPlan::Prefilter`]: the slot's index (bit 15 set for
/// a phrase list's bit) and its shortest matching value, capped at `u16::MAX`. The cap only
/// lowers a lower bound, so the plan proves less, never something false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSlot {
    slot: u16,
    min_len: u16,
}

impl PlanSlot {
    const PM: u16 = 1 << 15;

    /// `None` when the slot's index needs more than 15 bits.
    pub fn pack(s: RxSlot) -> Option<PlanSlot> {
        let (index, pm) = match s.slot & PM_SLOT {
            0 => (s.slot, 0),
            _ => (s.slot & !PM_SLOT, PlanSlot::PM),
        };
        let index = u16::try_from(index).ok().filter(|&i| i < PlanSlot::PM)?;
        Some(PlanSlot { slot: index | pm, min_len: u16::try_from(s.min_len).unwrap_or(u16::MAX) })
    }

    pub fn rx_slot(self) -> RxSlot {
        let index = u32::from(self.slot & !PlanSlot::PM);
        let slot = if self.slot & PlanSlot::PM != 0 { PM_SLOT | index } else { index };
        RxSlot { slot, min_len: u32::from(self.min_len) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipPlan {
    /// The first link is a plain `@rx` with a prefilter slot over shared value sources only.
    /// When every value of those sources (`fast_sources[start..start + len]`) is already
    /// listed and scanned and no value can match (too short, or a required literal
    /// missing), the rule does not match.
    Prefilter { slot: PlanSlot, start: u16, len: u8 },
    /// The first link reads only TX keys that no rule writes once the init snapshot is
    /// taken, with an operator whose argument reads only such keys, and it does not match
    /// the snapshot's values ([`fold_after_init`]). In a transaction that applied the
    /// snapshot those keys keep the snapshot's values, so the rule cannot match. CRS: the
    /// paranoia-level gates (`TX:EXECUTING_PARANOIA_LEVEL "@lt 1"`) and the rules behind
    /// settings left unset in `crs-setup.conf`.
    AfterInit,
    /// As [`SkipPlan::AfterInit`], but the rule (every link reading only such keys) matches
    /// the snapshot's values and its whole effect is fixed: `folds[fold]` ([`FoldedMatch`]).
    /// CRS PL1: the gates `TX:EXECUTING_PARANOIA_LEVEL "@lt 2"`, the application-exclusion,
    /// DoS and IP-reputation gates, which jump.
    ///
    /// `past`: when that effect is a `skipAfter` (and no `skip`) whose marker comes later in
    /// the phase, the position right after that marker item, where the native loop goes on
    /// with nothing pending (reaching the marker would clear the jump); [`PLAN_NONE`]
    /// otherwise.
    /// The loop then reads neither the fold's entry nor the marker's name.
    AfterInitMatch { fold: u16, past: u16 },
    /// Every link of the rule reads and writes nothing but TX keys of the init snapshot
    /// (and keys no rule writes after it), and with those keys at the snapshot's values the
    /// whole rule fails, or matches with no effect but MATCHED_VARS (`folds[fold]`). In a
    /// transaction that applied the snapshot, while the keys `clean_slots[start..start +
    /// len]` still hold the snapshot's values, it does the same ([`fold_clean_tx`]). `fold`
    /// is [`PLAN_NONE`] for a rule that fails. CRS: the anomaly-score sums and checks of 949
    /// and the correlation rules of 980 on a request that matched nothing.
    CleanTx { start: u16, len: u8, fold: u16 },
    /// Not a rule: a `SecMarker` item. The native loop reads the item (the marker's name)
    /// only while a `skipAfter` is pending; otherwise the 8 bytes here are all a marker
    /// costs it (CRS lists each of its 40 markers in every phase).
    Marker,
}

/// The outcomes of folded rules ([`FoldedMatch`]), packed into flat buffers: applying the
/// couple of dozen folds of a CRS decision (about 90 MATCHED_VARS pairs) then reads a few
/// contiguous cache lines, instead of two heap blocks per pair and one per marker.
#[derive(Debug, Default)]
pub struct FoldTable {
    entries: Vec<FoldEntry>,
    /// Per pair (MATCHED_VARS pairs, then TX writes): the name's and the value's
    /// `start..end` in `names` and `values`.
    pairs: Vec<[u32; 4]>,
    /// Pair names and markers.
    names: String,
    values: Vec<u8>,
}

#[derive(Debug)]
struct FoldEntry {
    pairs: (u32, u32),
    writes: (u32, u32),
    marker: Option<(u32, u32)>,
    skip: u32,
}

/// `n` as a plan's 16-bit field, where [`PLAN_NONE`] means none: `None` when it does not fit.
fn plan_field(n: usize) -> Option<u16> {
    u16::try_from(n).ok().filter(|&v| v != PLAN_NONE)
}

impl FoldTable {
    /// Adds fold `f` and returns its index as a plan holds it; `None`, adding nothing, when
    /// the table is full for 16-bit indices (the rule then gets no plan).
    fn push(&mut self, f: &FoldedMatch) -> Option<u16> {
        let index = plan_field(self.entries.len())?;
        let name = |names: &mut String, s: &str| {
            let a = names.len() as u32;
            names.push_str(s);
            (a, names.len() as u32)
        };
        let mut push_pairs = |list: &[(String, Vec<u8>)]| {
            let p0 = self.pairs.len() as u32;
            for (n, v) in list {
                let (na, nb) = name(&mut self.names, n);
                let va = self.values.len() as u32;
                self.values.extend_from_slice(v);
                self.pairs.push([na, nb, va, self.values.len() as u32]);
            }
            (p0, self.pairs.len() as u32)
        };
        let pairs = push_pairs(&f.matched_vars);
        let writes = push_pairs(&f.tx);
        let marker = f.marker.as_deref().map(|m| name(&mut self.names, m));
        let entry = FoldEntry { pairs, writes, marker, skip: f.skip };
        self.entries.push(entry);
        Some(index)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Fold `i`'s MATCHED_VARS pairs, in order.
    pub fn pairs(&self, i: usize) -> impl Iterator<Item = (&str, &[u8])> {
        self.range(self.entries.get(i).map_or((0, 0), |e| e.pairs))
    }

    /// The TX keys fold `i` sets, in order, with their values.
    pub fn writes(&self, i: usize) -> impl Iterator<Item = (&str, &[u8])> {
        self.range(self.entries.get(i).map_or((0, 0), |e| e.writes))
    }

    fn range(&self, (a, b): (u32, u32)) -> impl Iterator<Item = (&str, &[u8])> {
        self.pairs[a as usize..b as usize].iter().map(|p| {
            (&self.names[p[0] as usize..p[1] as usize], &self.values[p[2] as usize..p[3] as usize])
        })
    }

    /// The `skipAfter` marker fold `i` leaves pending.
    pub fn marker(&self, i: usize) -> Option<&str> {
        let (a, b) = self.entries.get(i)?.marker?;
        Some(&self.names[a as usize..b as usize])
    }

    /// The `skip` count fold `i` sets.
    pub fn skip(&self, i: usize) -> u32 {
        self.entries.get(i).map_or(0, |e| e.skip)
    }
}

impl SkipPlan {
    pub fn is_folded_match(&self) -> bool {
        matches!(self, SkipPlan::AfterInitMatch { .. })
    }
}

/// What a rule folded by [`SkipPlan::AfterInitMatch`] or [`SkipPlan::CleanTx`] does,
/// whatever came before it: the pairs it appends to MATCHED_VARS, the `skipAfter` or `skip`
/// it sets, and the TX keys it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedMatch {
    pub matched_vars: Vec<(String, Vec<u8>)>,
    pub marker: Option<String>,
    pub skip: u32,
    /// TX keys it sets, in order, with their values ([`SkipPlan::CleanTx`] only).
    pub tx: Vec<(String, Vec<u8>)>,
}

/// The plan of `rule`, when it qualifies (see [`FastSkip`]).
/// Needs [`set_hot`] done.
fn fast_skip(rule: &CRule, flat: &mut Vec<u32>) -> Option<FastSkip> {
    let h = &rule.hot;
    // An update that only takes targets away (`SecRuleUpdateTargetById 942100 "!ARGS:pwd"`,
    // the usual way to exclude a field) is in the sources already: the plan holds.
    if rule.update_adds
        || rule.removed
        || h.has_condition()
        || h.multi_match()
        || !h.has_operator()
        || h.negated()
        || h.needs_expansion()
        || !h.mask_valid()
    {
        return None;
    }
    let slot = PlanSlot::pack(rule.rx_slot()?)?;
    let start = flat.len();
    for (i, t) in rule.targets.iter().enumerate() {
        // A target its own exclusions name entirely yields nothing (as in `eval_link`).
        if rule.hot.excluded_targets & (1 << i) != 0 {
            continue;
        }
        match t.source {
            Some(sid) => flat.push(sid),
            None => {
                flat.truncate(start);
                return None;
            }
        }
    }
    let (Ok(start16), Ok(len)) = (u16::try_from(start), u8::try_from(flat.len() - start)) else {
        flat.truncate(start);
        return None;
    };
    Some(FastSkip { plan: SkipPlan::Prefilter { slot, start: start16, len } })
}

/// [`CompiledRuleSet::jumps`] of one phase. Only rules run (or are folded) while no jump is
/// pending, so a jump pending after such a rule was set by it, to its one marker; the items
/// in between would each be passed over (a rule does not run, nor use up a `skip`, while a
/// jump is pending, and a marker of another name leaves it pending).
fn jump_targets(items: &[Item], defaults: &PhaseDefaults) -> Vec<u32> {
    items
        .iter()
        .enumerate()
        .map(|(k, item)| {
            let Item::Rule(rule) = item else { return u32::MAX };
            let mut actions: Vec<&Action> = defaults.runtime.iter().collect();
            let mut link = Some(rule.as_ref());
            while let Some(l) = link {
                actions.extend(&l.actions.runtime);
                link = l.chain.as_deref();
            }
            let mut name: Option<&str> = None;
            let mut single = true;
            for a in actions {
                if let Action::SkipAfter(m) = a {
                    match name {
                        None => name = Some(m),
                        Some(n) if n == m => {}
                        Some(_) => single = false,
                    }
                }
            }
            let (Some(name), true) = (name, single) else { return u32::MAX };
            items[k + 1..]
                .iter()
                .position(|i| matches!(i, Item::Marker(m) if m == name))
                .and_then(|d| u32::try_from(k + 1 + d).ok())
                .unwrap_or(u32::MAX)
        })
        .collect()
}

/// Switches for the backend-neutral optimisations of the native evaluator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// Read every target per rule (no shared value sources, hence no prefilter).
    pub no_value_sources: bool,
    /// Keep value sources but run every `@rx`.
    pub no_rx_prefilter: bool,
    /// Run the request-independent start of phase 1 on every request instead of restoring
    /// its outcome (see [`super::run::InitSnapshot`]).
    pub no_init_snapshot: bool,
}

impl CompiledRuleSet {
    pub fn compile(rs: &RuleSet) -> Result<CompiledRuleSet, EvalError> {
        Self::compile_with(rs, CompileOptions::default())
    }

    pub fn compile_with(rs: &RuleSet, opts: CompileOptions) -> Result<CompiledRuleSet, EvalError> {
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
                        .unwrap_or(DEFAULT_PHASE);
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
        let mut sources = SourceBuilder::new(opts.no_value_sources, opts.no_rx_prefilter);
        for e in order {
            match e {
                Entry::Marker(name) => {
                    for p in phases.iter_mut() {
                        p.push(Item::Marker(name.clone()));
                    }
                }
                Entry::Rule(i) => {
                    let r = &rules[i];
                    let phase = r.phase().unwrap_or(DEFAULT_PHASE);
                    let idx = phase_index(phase)?;
                    let mut c = compile_rule(r, phase, &defaults, &mut index)?;
                    assign_sources(&mut c, &target_updates, &mut sources);
                    c.removed = c
                        .id()
                        .is_some_and(|id| removed_ids.iter().any(|r: &IdRange| r.contains(id)))
                        || removed_msgs.iter().any(|m: &String| c.contains_msg(m))
                        || removed_tags.iter().any(|t: &String| c.contains_tag(t));
                    set_hot(&mut c);
                    phases[idx].push(Item::Rule(Arc::new(c)));
                }
            }
        }
        let mut fast_sources = Vec::new();
        let fast: [Vec<Option<FastSkip>>; 5] = std::array::from_fn(|p| {
            phases[p]
                .iter()
                .map(|item| match item {
                    Item::Rule(r) => fast_skip(r, &mut fast_sources),
                    Item::Marker(_) => Some(FastSkip { plan: SkipPlan::Marker }),
                })
                .collect()
        });
        let jumps = std::array::from_fn(|p| jump_targets(&phases[p], &defaults[p]));
        let mut compiled = CompiledRuleSet {
            jumps,
            config: EngineConfig { rule_engine, txn },
            fast,
            fast_sources,
            init: None,
            folds: FoldTable::default(),
            clean_slots: Vec::new(),
            phases,
            defaults,
            removed_ids,
            removed_tags,
            removed_msgs,
            target_updates,
            rule_count: index,
            sources: sources.finish().map_err(EvalError::Compile)?,
            macro_targets: MacroTargets::default(),
        };
        compiled.config.txn.xml_paths = xml_paths(&compiled).into();
        if !opts.no_init_snapshot {
            compiled.init = super::run::InitSnapshot::build(&compiled);
            if let Some(end) = compiled.init.as_ref().map(|s| s.run.end) {
                let writes = TxWrites::of(&compiled, end);
                fold_after_init(&mut compiled, &writes);
                fold_clean_tx(&mut compiled, &writes);
            }
        }
        Ok(compiled)
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

/// The phase of a rule, `SecAction` or `SecDefaultAction` without `phase:`. v3.0.9 starts
/// every rule at `RequestHeadersPhase` (rule.h) and gives a `SecDefaultAction` without a
/// phase the same one (seclang-parser.yy), which is SecLang's phase 1; ModSecurity v2 and its
/// reference manual say phase 2. Observed through the peer: a phase-less
/// `SecRule ARGS_POST "@rx ." "id:1,deny"` lets a urlencoded POST through, its body not parsed
/// yet.
pub const DEFAULT_PHASE: u8 = 1;

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
    // v3 (`RulesExceptions::loadUpdateActionById`) drops the configuration-only actions of
    // an update with a message on stdout, and runs the others after the rule matched, in
    // `executeActionsAfterFullMatch`: each one it runs there (a `setvar`, a `status`, even
    // `nolog`) marks the rule's disruptive action as done, so the rule's own `deny` or
    // `block` no longer runs unless the update brings its own. Observed through the peer:
    // `SecRuleUpdateActionById 1 "setvar:tx.a=1"` on a `deny` rule lets the request through.
    let configuration = |a: &Action| a.configuration_name().is_some();
    let after_match = actions.iter().any(|a| !configuration(a) && !matches!(a, Action::T(_)));
    if after_match && !actions.iter().any(Action::is_disruptive) {
        rule.actions.retain(|b| !b.is_disruptive());
    }
    for a in actions.iter().filter(|a| !configuration(a)) {
        let same_kind = |b: &Action| {
            std::mem::discriminant(a) == std::mem::discriminant(b)
                || (a.is_disruptive() && b.is_disruptive())
        };
        match a {
            // The rule's own message, data and severity are evaluated after the update's
            // actions, so they win; the update's count only where the rule has none.
            Action::Msg(_) | Action::LogData(_) | Action::Severity(_) => {
                if !rule.actions.iter().any(same_kind) {
                    rule.actions.push(a.clone());
                }
            }
            // So do its `log`/`nolog` and `status` (the last one run is the one the
            // intervention carries): the update's go first, where the rule's override them.
            Action::Log
            | Action::NoLog
            | Action::AuditLog
            | Action::NoAuditLog
            | Action::Status(_) => {
                rule.actions.insert(0, a.clone());
            }
            _ => {
                if a.is_disruptive() {
                    rule.actions.retain(|b| !same_kind(b));
                }
                rule.actions.push(a.clone());
            }
        }
    }
}

/// v3 `Variables::contains(VariableValue)`: a regex exclusion matches on the key alone,
/// whatever the collection; a literal one compares `COLLECTION:key` exactly. A
/// whole-collection exclusion drops no single value (the target it names reads nothing).
pub(crate) fn excludes(e: &CTarget, name: &str) -> bool {
    match (&e.key_regex, &e.target.selector) {
        (Some(re), _) => {
            // The key follows the first ':' (`VAR:key`). `memchr` rather than
            // `split_once(':')`, whose searcher cost about 185 instructions a name.
            let key = memchr::memchr(b':', name.as_bytes()).map_or("", |i| &name[i + 1..]);
            re.is_match(key)
        }
        (None, Some(Selector::Key(_))) => e.full_name == name,
        (None, _) => false,
    }
}

pub(crate) fn compile_target(t: &Target) -> Result<CTarget, EvalError> {
    let selector = match &t.selector {
        Some(s) => Some(CompiledSelector::new(s).map_err(EvalError::Compile)?),
        None => None,
    };
    let key_regex = match &t.selector {
        Some(Selector::Regex(r)) => Some(KeyRegex::new(r)?),
        _ => None,
    };
    let key_hash = match &t.selector {
        Some(Selector::Key(k)) if is_collection_var(t.variable) => Some(ci_hash(k)),
        _ => None,
    };
    let mut plain = t.clone();
    plain.exclude = false;
    Ok(CTarget {
        target: t.clone(),
        selector,
        full_name: plain.to_string(),
        key_needs: key_regex.as_ref().map_or(0, KeyRegex::needs),
        key_regex,
        key_hash,
        source: None,
        snapshot_hits: std::sync::OnceLock::new(),
    })
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
            Action::SetVar(s) => {
                acts.setvar_key_hash.push(s.key.as_literal().map(ci_hash));
                acts.setvars.push(s.clone());
            }
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
        hot: LinkHot::default(),
        targets: targets.into_boxed_slice(),
        exclusions,
        operator,
        condition,
        actions: acts,
        chain,
        index: my_index,
        rx: NO_RX,
        value_filter: None,
        verdict_code: None,
        updated: false,
        update_adds: false,
        removed: false,
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

/// Whether a `SecRuleUpdateTargetBy*` applies to the rule whose first link is `root`.
pub(crate) fn update_selects(u: &TargetUpdate, root: &CRule) -> bool {
    match &u.selection {
        Selection::Ids(ids) => root.id().is_some_and(|id| ids.iter().any(|r| r.contains(id))),
        Selection::Tag(t) => root.contains_tag(t),
        Selection::Msg(m) => root.contains_msg(m),
    }
}

/// [`CRule::verdict_code`] of a verdict number. `u32::MAX` has no code: a link numbered so
/// (the last of 2^31 regexes without a literal) keeps no verdicts, which costs it only the
/// memo, never a decision.
fn verdict_code(v: Option<u32>) -> Option<std::num::NonZeroU32> {
    v.and_then(|v| std::num::NonZeroU32::new(!v))
}

/// Gives each link target over request data its value source, and each `@rx` its prefilter
/// slot and verdict number ([`CRule::verdict`]); a `multiMatch` link's targets read the raw
/// values. The exclusions that decide a source are the link's own plus the `!` targets of
/// every `SecRuleUpdateTargetBy*` selecting the rule, exactly as `run::link_targets` lists
/// them; targets added by an update stay per-rule reads.
fn assign_sources(root: &mut CRule, updates: &[TargetUpdate], b: &mut SourceBuilder) {
    let updated = updates.iter().any(|u| update_selects(u, root));
    let update_adds = updates.iter().any(|u| !u.exclude && update_selects(u, root));
    let update_exclusions: Vec<Arc<CTarget>> = updates
        .iter()
        .filter(|u| u.exclude && update_selects(u, root))
        .map(|u| Arc::clone(&u.target))
        .collect();
    let mut link: &mut CRule = root;
    loop {
        link.updated = updated;
        link.update_adds = update_adds;
        // The link's targets read through `chain`, from sources.
        let read_sources = |link: &mut CRule, chain: &[Transformation], b: &mut SourceBuilder| {
            let srcs: Vec<Option<u32>> = {
                let excl: Vec<&CTarget> = link
                    .exclusions
                    .iter()
                    .chain(update_exclusions.iter().map(|a| a.as_ref()))
                    .collect();
                link.targets.iter().map(|t| b.source(t, &excl, chain)).collect()
            };
            for (t, s) in link.targets.iter_mut().zip(srcs) {
                t.source = s;
            }
        };
        if link.operator.is_some() && !link.actions.multi_match {
            let chain = link.actions.chain.clone();
            read_sources(link, &chain, b);
            if let Some((_, op, _)) = &link.operator {
                if op.name() == "rx" && !op.needs_expansion() {
                    if let Some(re) = op.regex() {
                        // The literal analysis reads the pattern as the linear engine does;
                        // a verdict is the bytes' alone on either engine (a run that stops
                        // at the match limit keeps none).
                        if !re.is_backtracking() {
                            link.rx = rx_code(b.rx_slot(re.translated(), &chain));
                        }
                        // A stand-in that is a literal search or no search at all
                        // (`^.*$`) costs less than a look in the memo.
                        let searches = op
                            .rx_fast()
                            .is_none_or(|f| f.class() == crate::opt::rxclass::RxClass::Keep);
                        link.verdict_code = verdict_code(match link.rx_slot() {
                            Some(s) => Some(s.slot),
                            None if searches => b.verdict_slot(),
                            None => None,
                        });
                    }
                } else if let Some(m) = op.phrases().filter(|_| !op.needs_expansion()) {
                    link.rx = rx_code(b.pm_slot(m.phrases()));
                }
            }
        } else if let Some((false, op, _)) = &link.operator {
            // `multiMatch` (CRS 930110, and 942100's `@detectSQLi`): the raw values from a
            // source, and a verdict number under which the value memo keeps "no step of the
            // chain matched" by the raw bytes, which alone decide it.
            let re = op.regex().filter(|_| op.name() == "rx" && !op.needs_expansion());
            // On the condition a shared prefilter slot has: the linear engine.
            link.value_filter = re
                .filter(|re| !re.is_backtracking())
                .and_then(|re| b.value_filter(re.translated()))
                .map(Box::new);
            if re.is_some() || op.is_libinjection() {
                read_sources(link, &[], b);
                link.verdict_code = verdict_code(b.verdict_slot());
            }
        }
        match link.chain.as_deref_mut() {
            Some(c) => link = c,
            None => break,
        }
    }
}

/// The `XML:` expressions the rule set's targets name, once each, in first-use order: the
/// body processor evaluates them all on its one parse of the document.
fn xml_paths(rs: &CompiledRuleSet) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |t: &CTarget| {
        if let (Variable::Xml, Some(Selector::Key(e))) = (t.target.variable, &t.target.selector) {
            if !out.contains(e) {
                out.push(e.clone());
            }
        }
    };
    for rule in rs.rules() {
        let mut link = Some(&**rule);
        while let Some(l) = link {
            l.targets.iter().for_each(&mut add);
            link = l.chain.as_deref();
        }
    }
    rs.target_updates.iter().for_each(|u| add(&u.target));
    out
}

/// The longest run of phase-1 items that read nothing from the request (by rules; the
/// first of equals), as `start..end`: every link reads TX only, with a pure operator, and
/// acts only on TX, the log or the disruptive outcome, and no macro reads anything but TX.
/// Reached with TX as the items before it leave it on an empty request (the evaluator
/// checks), such a run does the same thing in every transaction, so its outcome can be
/// computed once ([`super::run::InitSnapshot`]). CRS: crs-setup.conf's actions and its 901
/// initialisation, after the two body-processor rules of the base configuration; with a
/// rule of the user's in REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf (it reads the request),
/// the 901 initialisation after it.
pub(crate) fn request_independent_run(items: &[Item]) -> Option<std::ops::Range<usize>> {
    let mut best: Option<(usize, std::ops::Range<usize>)> = None;
    let mut k = 0;
    while k < items.len() {
        if !matches!(&items[k], Item::Rule(r) if request_independent(r)) {
            k += 1;
            continue;
        }
        let len = items[k..]
            .iter()
            .take_while(|it| match it {
                Item::Marker(_) => true,
                Item::Rule(r) => request_independent(r),
            })
            .count();
        let rules = items[k..k + len].iter().filter(|it| matches!(it, Item::Rule(_))).count();
        if best.as_ref().is_none_or(|(n, _)| rules > *n) {
            best = Some((rules, k..k + len));
        }
        k += len;
    }
    best.map(|(_, run)| run)
}

fn request_independent(rule: &CRule) -> bool {
    use crate::ir::{Action, OperatorKind as K};
    let tx_macro = |m: &MacroString| {
        m.parts.iter().all(|p| match p {
            crate::ir::MacroPart::Lit(_) => true,
            crate::ir::MacroPart::Var { var, .. } => *var == Variable::Tx,
        })
    };
    let mut link = Some(rule);
    while let Some(l) = link {
        if l.updated || l.condition.is_some() || l.actions.multi_match {
            return false;
        }
        if !l.targets.iter().chain(&l.exclusions).all(|t| t.target.variable == Variable::Tx) {
            return false;
        }
        if let Some((_, _, op)) = &l.operator {
            let pure = match &op.kind {
                K::Pm(_) | K::UnconditionalMatch | K::NoMatch => true,
                k => operator_macro(k).is_some_and(tx_macro),
            };
            if !pure {
                return false;
            }
        }
        let a = &l.actions;
        let macros_ok = a.msg.iter().chain(&a.logdata).chain(&a.tags).all(tx_macro)
            && a.setvars
                .iter()
                .all(|sv| sv.collection == "tx" && tx_macro(&sv.key) && tx_macro(&sv.value));
        let runtime_ok = a.runtime.iter().all(|x| {
            matches!(
                x,
                Action::Log
                    | Action::NoLog
                    | Action::AuditLog
                    | Action::NoAuditLog
                    | Action::Status(_)
                    | Action::Capture
                    | Action::Pass
                    | Action::Deny
                    | Action::Block
                    | Action::Drop
            )
        });
        let disruptive_ok = matches!(
            a.disruptive,
            None | Some(Action::Pass | Action::Deny | Action::Block | Action::Drop)
        );
        if !(macros_ok && runtime_ok && disruptive_ok) {
            return false;
        }
        link = l.chain.as_deref();
    }
    true
}

/// The TX keys that rules may write (`setvar`, `expirevar`, `deprecatevar` on `tx`, and
/// `capture` into TX:0-9), as the init-snapshot folding needs them: exact keys, and for a key
/// with a macro, its literal prefix (CRS: `tx.header_name_%{tx.0}`). Lower-case, as TX keys
/// compare without case.
#[derive(Debug, Default)]
pub(crate) struct TxWrites {
    /// A key with no literal prefix: any key may be written.
    any: bool,
    keys: std::collections::HashSet<String>,
    prefixes: Vec<String>,
}

impl TxWrites {
    pub(crate) fn may_write(&self, key: &str) -> bool {
        let k = key.to_ascii_lowercase();
        self.any
            || self.keys.contains(&k)
            || self.prefixes.iter().any(|p| k.starts_with(p.as_str()))
    }

    fn add_key(&mut self, collection: &str, key: &MacroString) {
        if !collection.eq_ignore_ascii_case("tx") {
            return;
        }
        let mut lit = String::new();
        let mut whole = true;
        for p in &key.parts {
            match p {
                crate::ir::MacroPart::Lit(s) => lit.push_str(s),
                crate::ir::MacroPart::Var { .. } => {
                    whole = false;
                    break;
                }
            }
        }
        lit.make_ascii_lowercase();
        if whole {
            self.keys.insert(lit);
        } else if lit.is_empty() {
            self.any = true;
        } else {
            self.prefixes.push(lit);
        }
    }

    fn add_action(&mut self, a: &Action) {
        match a {
            Action::SetVar(sv) => self.add_key(&sv.collection, &sv.key),
            Action::ExpireVar { collection, key, .. }
            | Action::DeprecateVar { collection, key, .. } => self.add_key(collection, key),
            _ => {}
        }
    }

    fn add_link(&mut self, link: &CRule) {
        let a = &link.actions;
        for sv in &a.setvars {
            self.add_key(&sv.collection, &sv.key);
        }
        a.runtime.iter().for_each(|x| self.add_action(x));
        if let Some(d) = &a.disruptive {
            self.add_action(d);
        }
        if a.capture {
            self.keys.extend((0..10).map(|i| i.to_string()));
        }
    }

    /// Every write of every rule outside phase 1's items `0..skip_to` (which run before the
    /// snapshot, or are the run it stands for), and of the phases' default actions.
    pub(crate) fn of(rs: &CompiledRuleSet, skip_to: usize) -> TxWrites {
        let mut w = TxWrites::default();
        for (p, items) in rs.phases.iter().enumerate() {
            for (k, it) in items.iter().enumerate() {
                if p == 0 && k < skip_to {
                    continue;
                }
                let mut link = match it {
                    Item::Rule(r) => Some(r.as_ref()),
                    Item::Marker(_) => None,
                };
                while let Some(l) = link {
                    w.add_link(l);
                    link = l.chain.as_deref();
                }
            }
        }
        for d in &rs.defaults {
            d.runtime.iter().chain(&d.disruptive).for_each(|a| w.add_action(a));
        }
        w
    }
}

/// Whether the first link of `rule` reads nothing but TX keys outside `w`: every target a
/// literal TX key (or its count), and an operator that is pure and whose argument's macros
/// read only such keys. Its verdict is then the same in every transaction that applied the
/// init snapshot.
pub(crate) fn reads_constant_tx(rule: &CRule, w: &TxWrites) -> bool {
    use crate::ir::OperatorKind as K;
    if rule.updated || rule.removed || rule.condition.is_some() || rule.targets.is_empty() {
        return false;
    }
    let Some((_, _, op)) = &rule.operator else {
        return false;
    };
    let constant_key = |t: &CTarget| {
        t.target.variable == Variable::Tx
            && matches!(&t.target.selector, Some(Selector::Key(k)) if !w.may_write(k))
    };
    if !rule.targets.iter().all(constant_key) {
        return false;
    }
    match &op.kind {
        K::Pm(_) | K::UnconditionalMatch | K::NoMatch => true,
        k => operator_macro(k)
            .and_then(tx_keys_read)
            .is_some_and(|keys| keys.iter().all(|k| !w.may_write(k))),
    }
}

/// The TX keys the macros of `m` read, when it reads nothing but literal TX keys.
fn tx_keys_read(m: &MacroString) -> Option<Vec<&str>> {
    use crate::ir::MacroPart;
    m.parts
        .iter()
        .filter_map(|p| match p {
            MacroPart::Lit(_) => None,
            MacroPart::Var { var: Variable::Tx, key: Some(k) } => Some(Some(k.as_str())),
            MacroPart::Var { .. } => Some(None),
        })
        .collect()
}

/// `log`, `nolog`, `auditlog`, `noauditlog` and `pass`: actions of a rule whose outcome can
/// be folded (logging shows as a matched id, which the probes compare).
fn logs_or_passes(a: &Action) -> bool {
    matches!(a, Action::Log | Action::NoLog | Action::AuditLog | Action::NoAuditLog | Action::Pass)
}

/// Whether a rule that matches does nothing but set MATCHED_VARS, log or not, and jump
/// (`skipAfter`, `skip`), and reads only constant TX through its whole chain: no `setvar`,
/// `capture`, `ctl` or other action on any link, none among its phase's default actions, and
/// every link after the first as [`reads_constant_tx`] (the caller checked the first). Its
/// outcome can then be recorded ([`FoldedMatch`]). CRS: the DoS and IP-reputation gates are
/// chains of `&TX:x "@eq 0"`.
fn only_jumps(rule: &CRule, defaults: &PhaseDefaults, writes: &TxWrites) -> bool {
    let plain =
        |a: &Action| logs_or_passes(a) || matches!(a, Action::Skip(_) | Action::SkipAfter(_));
    if !defaults.runtime.iter().all(plain) {
        return false;
    }
    let mut link = Some(rule);
    while let Some(l) = link {
        let a = &l.actions;
        let quiet = !a.capture
            && a.setvars.is_empty()
            && a.runtime.iter().all(plain)
            && matches!(a.disruptive, None | Some(Action::Pass));
        if !quiet || (!std::ptr::eq(l, rule) && !reads_constant_tx(l, writes)) {
            return false;
        }
        link = l.chain.as_deref();
    }
    true
}

/// Gives [`SkipPlan::AfterInit`] to every rule after the init snapshot whose first link
/// reads only constant TX ([`reads_constant_tx`]) and fails on the snapshot's values, and
/// [`SkipPlan::AfterInitMatch`] to those that match them and only jump ([`only_jumps`]).
fn fold_after_init(rs: &mut CompiledRuleSet, writes: &TxWrites) {
    let Some(init) = &rs.init else {
        return;
    };
    let mut plans = Vec::new();
    let mut folds = FoldTable::default();
    for (p, items) in rs.phases.iter().enumerate() {
        for (k, it) in items.iter().enumerate() {
            let Item::Rule(rule) = it else {
                continue;
            };
            if (p == 0 && k < init.run.end)
                || rs.fast[p][k].is_some()
                || !reads_constant_tx(rule, writes)
            {
                continue;
            }
            let phase = p as u8 + 1;
            if init.first_link_fails(rs, phase, rule) {
                plans.push((p, k, SkipPlan::AfterInit));
            } else if only_jumps(rule, &rs.defaults[p], writes) {
                if let Some(f) = init.fold_match(rs, phase, rule) {
                    let past = match (&f.marker, f.skip) {
                        (Some(m), 0) => items[k + 1..]
                            .iter()
                            .position(|i| matches!(i, Item::Marker(n) if n == m))
                            .and_then(|d| plan_field(k + 2 + d))
                            .unwrap_or(PLAN_NONE),
                        _ => PLAN_NONE,
                    };
                    if let Some(fold) = folds.push(&f) {
                        plans.push((p, k, SkipPlan::AfterInitMatch { fold, past }));
                    }
                }
            }
        }
    }
    for (p, k, plan) in plans {
        rs.fast[p][k] = Some(FastSkip { plan });
    }
    rs.folds = folds;
}

/// The TX keys (lower case) whose values `rule` reads through its whole chain (a key it adds
/// to or subtracts from included, unless it set it outright first), when TX is all it
/// touches: literal `TX:<key>` targets or counts, operators that are pure and
/// whose argument's macros read literal TX keys, `setvar`s on literal TX keys whose values
/// read literal TX keys, and no action but logging, `pass`, `status` and a disruptive one (the phase
/// defaults likewise). `None` for anything else: a request variable, a key regex, a macro
/// key, `capture`, a jump, a `ctl`, another collection.
fn clean_tx_touches(rule: &CRule, defaults: &PhaseDefaults) -> Option<Vec<String>> {
    use crate::ir::OperatorKind as K;
    let quiet = |a: &Action| logs_or_passes(a) || matches!(a, Action::Status(_));
    let disruptive_ok = |d: &Option<Action>| {
        matches!(d, None | Some(Action::Pass | Action::Deny | Action::Block | Action::Drop))
    };
    if !(defaults.runtime.iter().all(quiet) && disruptive_ok(&defaults.disruptive)) {
        return None;
    }
    let mut keys = Vec::new();
    let tx_reads = |m: &MacroString, keys: &mut Vec<String>| {
        tx_keys_read(m).map(|ks| keys.extend(ks.into_iter().map(str::to_ascii_lowercase)))
    };
    // Keys whose first write in the rule sets them outright: their value before it is not
    // read, so they need not be checked (the fold sets them).
    let mut set_first: Vec<String> = Vec::new();
    let mut written: Vec<String> = Vec::new();
    let mut link = Some(rule);
    while let Some(l) = link {
        if l.updated || l.removed || l.condition.is_some() {
            return None;
        }
        for t in &l.targets {
            match (&t.target.variable, &t.target.selector) {
                (Variable::Tx, Some(Selector::Key(k))) => keys.push(k.to_ascii_lowercase()),
                _ => return None,
            }
        }
        match &l.operator {
            Some((_, _, op)) => match &op.kind {
                K::Pm(_) | K::UnconditionalMatch | K::NoMatch => {}
                k => tx_reads(operator_macro(k)?, &mut keys)?,
            },
            // `SecAction`: only as the whole rule.
            None if std::ptr::eq(l, rule) && l.targets.is_empty() => {}
            None => return None,
        }
        let a = &l.actions;
        if a.capture || !a.runtime.iter().all(quiet) || !disruptive_ok(&a.disruptive) {
            return None;
        }
        for sv in &a.setvars {
            if !sv.collection.eq_ignore_ascii_case("tx") {
                return None;
            }
            let key = sv.key.as_literal()?.to_ascii_lowercase();
            tx_reads(&sv.value, &mut keys)?;
            match sv.op {
                SetVarOp::Set | SetVarOp::Create => {
                    if !written.contains(&key) {
                        set_first.push(key.clone());
                    }
                }
                SetVarOp::Add | SetVarOp::Sub => {
                    if !set_first.contains(&key) {
                        keys.push(key.clone());
                    }
                }
                SetVarOp::Delete => return None,
            }
            written.push(key);
        }
        link = l.chain.as_deref();
    }
    Some(keys)
}

/// Gives [`SkipPlan::CleanTx`] to every rule after the init snapshot without a plan that
/// touches only TX keys ([`clean_tx_touches`]) which the snapshot holds or no rule writes,
/// and whose whole run on the snapshot's values fails, or matches with no effect but
/// MATCHED_VARS, from any current rule and MATCHED_VARS ([`InitSnapshot::fold_whole`]).
/// Such a rule reads nothing else, so while those keys hold the snapshot's values it does
/// the same in any transaction that applied the snapshot.
///
/// [`InitSnapshot::fold_whole`]: super::run::InitSnapshot::fold_whole
fn fold_clean_tx(rs: &mut CompiledRuleSet, writes: &TxWrites) {
    let Some(init) = &rs.init else {
        return;
    };
    let mut plans = Vec::new();
    let mut slots = Vec::new();
    let mut folds = std::mem::take(&mut rs.folds);
    for (p, items) in rs.phases.iter().enumerate() {
        for (k, it) in items.iter().enumerate() {
            let Item::Rule(rule) = it else {
                continue;
            };
            if (p == 0 && k < init.run.end) || rs.fast[p][k].is_some() {
                continue;
            }
            let Some(keys) = clean_tx_touches(rule, &rs.defaults[p]) else {
                continue;
            };
            // The keys to check: those a rule may write, each held by the snapshot.
            let Some(mut check) = keys
                .iter()
                .filter(|k| writes.may_write(k))
                .map(|k| init.tx_position(k).and_then(|i| u32::try_from(i).ok()))
                .collect::<Option<Vec<u32>>>()
            else {
                continue;
            };
            check.sort_unstable();
            check.dedup();
            let (Ok(start), Ok(len)) = (u16::try_from(slots.len()), u8::try_from(check.len()))
            else {
                continue;
            };
            let fold = match init.fold_whole(rs, p as u8 + 1, rule) {
                Some(None) => PLAN_NONE,
                Some(Some(f)) => match folds.push(&f) {
                    Some(fold) => fold,
                    None => continue,
                },
                None => continue,
            };
            slots.extend_from_slice(&check);
            plans.push((p, k, SkipPlan::CleanTx { start, len, fold }));
        }
    }
    for (p, k, plan) in plans {
        rs.fast[p][k] = Some(FastSkip { plan });
    }
    rs.folds = folds;
    rs.clean_slots = slots;
}

/// The argument of an operator that takes a (possibly macro) string.
pub(crate) fn operator_macro(k: &crate::ir::OperatorKind) -> Option<&MacroString> {
    use crate::ir::OperatorKind as K;
    match k {
        K::Rx(m)
        | K::Eq(m)
        | K::Ge(m)
        | K::Gt(m)
        | K::Le(m)
        | K::Lt(m)
        | K::StrEq(m)
        | K::StrMatch(m)
        | K::BeginsWith(m)
        | K::EndsWith(m)
        | K::Contains(m)
        | K::ContainsWord(m)
        | K::Within(m) => Some(m),
        _ => None,
    }
}

/// Case-insensitive hash of a collection key (ASCII folding, as v3 compares keys): the
/// source cache's word-at-a-time [`super::sources::fold_hash`]. CRS looks up `TX:<key>` keys
/// of 20 to 36 bytes dozens of times per request; a byte at a time the hash was a quarter of
/// each lookup.
pub fn ci_hash(key: &str) -> u64 {
    super::sources::fold_hash(key.as_bytes())
}

/// A `VAR:/regex/` key selector, as v3's `VariableRegex` (case-insensitive, `.` matches
/// newlines, `^` after any newline). CRS writes these as a literal with an optional `^` and
/// a trailing `.*` or `x*` (`TX:/^header_name_/`, `TX:/paramcounter_.*/`): those are
/// answered by a byte comparison instead of a regex search per key.
#[derive(Debug)]
pub enum KeyRegex {
    /// Starts with the literal (ASCII lower case), at the start or after a newline.
    Prefix(Vec<u8>),
    /// Contains the literal (ASCII lower case).
    Contains(Vec<u8>),
    Regex(regex::Regex),
}

/// The bytes a regex fragment matches when it is a plain literal (letters, digits, `_`,
/// `-`, and punctuation escaped with `\`, as in CRS's `TX:/LEAKAGE\\\/ERRORS/`), ASCII
/// lower-cased; `None` otherwise.
fn literal(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut b = s.bytes();
    while let Some(c) = b.next() {
        match c {
            b'\\' => match b.next() {
                Some(e) if e.is_ascii_punctuation() => out.push(e),
                _ => return None,
            },
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                out.push(c.to_ascii_lowercase())
            }
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The bytes of `k` as a set of bits `(b | 0x20) % 64`, which puts both cases of a letter on
/// one bit: a key holds a literal, in any case and at any position, only when its set has
/// every bit of the literal's ([`KeyRegex::needs`]). Collections keep each key's set, so that
/// a key selector passes over most keys without reading them.
#[inline]
pub(crate) fn byte_set(k: &[u8]) -> u64 {
    // `(b | 0x20) & 63` is `32 + (b & 31)`: the low 32 bits stay clear, and the high ones are
    // OR-ed from a table (a shift per byte with a variable count, which the baseline x86-64
    // target lacks, took about 4.5 instructions a byte in the vectorised loop LLVM made).
    u64::from(k.iter().fold(0u32, |s, &b| s | LOW_BIT[usize::from(b)])) << 32
}

/// `1 << (b & 31)` for each byte value `b` ([`byte_set`]).
static LOW_BIT: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = 1 << (b & 31);
        b += 1;
    }
    t
};

/// `lit` (ASCII lower case) at `k[i..]`, ASCII case-insensitively, a word at a time (a byte
/// loop took some 2,000 instructions a bodiless GET, in 920450's `TX:/^HEADER_NAME_/`).
#[inline]
fn folded_at(k: &[u8], i: usize, lit: &[u8]) -> bool {
    k.get(i..i + lit.len()).is_some_and(|w| super::sources::fold_eq(w, lit))
}

/// Whether `k` contains `lit` (ASCII lower case, not empty), ASCII case-insensitively. Only
/// positions holding `lit`'s first byte in either case can start it: they are found eight
/// bytes at a time (a zero byte of the folded word XOR the first byte marks one; bytes
/// above a marked one may be false alarms, which the comparison rejects).
fn contains_folded(k: &[u8], lit: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let Some(&f) = lit.first() else { return true };
    let Some(last) = k.len().checked_sub(lit.len()) else { return false };
    let want = u64::from(f) * ONES;
    let mut base = 0;
    while base <= last {
        let mut b = [0u8; 8];
        let n = (k.len() - base).min(8);
        b[..n].copy_from_slice(&k[base..base + n]);
        let x = super::sources::fold_word(u64::from_le_bytes(b)) ^ want;
        let mut m = x.wrapping_sub(ONES) & !x & HIGH;
        while m != 0 {
            let i = base + m.trailing_zeros() as usize / 8;
            if i > last {
                break;
            }
            if folded_at(k, i, lit) {
                return true;
            }
            m &= m - 1;
        }
        base += 8;
    }
    false
}

impl KeyRegex {
    pub fn new(pattern: &str) -> Result<KeyRegex, EvalError> {
        let re = regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .dot_matches_new_line(true)
            .multi_line(true)
            .build()
            .map_err(|e| EvalError::Compile(format!("selector /{pattern}/: {e}")))?;
        let (anchored, rest) = match pattern.strip_prefix('^') {
            Some(r) => (true, r),
            None => (false, pattern),
        };
        let lit = match rest.strip_suffix(".*") {
            Some(l) => l,
            None => match rest.as_bytes() {
                [.., x, b'*'] if x.is_ascii_alphanumeric() || *x == b'_' => &rest[..rest.len() - 2],
                _ => rest,
            },
        };
        Ok(match (literal(lit), anchored) {
            (Some(l), true) => KeyRegex::Prefix(l),
            (Some(l), false) => KeyRegex::Contains(l),
            (None, _) => KeyRegex::Regex(re),
        })
    }

    pub fn is_match(&self, key: &str) -> bool {
        self.is_match_in(key, true)
    }

    /// The bits of [`byte_set`] that every key this selects has: its literal's (0 for a
    /// regex, which may select any key).
    pub fn needs(&self) -> u64 {
        match self {
            KeyRegex::Prefix(lit) | KeyRegex::Contains(lit) => byte_set(lit),
            KeyRegex::Regex(_) => 0,
        }
    }

    /// [`KeyRegex::is_match`] for a key that may hold a newline only when `lines` is true
    /// (a collection knows whether any of its keys does): most keys then fail at their first
    /// byte, with no search for a newline after which the literal could start.
    pub fn is_match_in(&self, key: &str, lines: bool) -> bool {
        let k = key.as_bytes();
        match self {
            KeyRegex::Prefix(lit) => {
                folded_at(k, 0, lit)
                    || (lines
                        && k.len() > lit.len()
                        && memchr::memchr_iter(b'\n', k).any(|i| folded_at(k, i + 1, lit)))
            }
            KeyRegex::Contains(lit) => contains_folded(k, lit),
            KeyRegex::Regex(re) => re.is_match(key),
        }
    }
}

#[cfg(test)]
mod key_regex_tests {
    /// The table puts each byte on bit `(b | 0x20) % 64`, the bit the selectors' sets are
    /// made with ([`super::KeyRegex::needs`]), and a key's set is the union of its bytes'.
    #[test]
    fn byte_sets_fold_case_onto_one_bit() {
        for b in 0..=255u8 {
            assert_eq!(super::byte_set(&[b]), 1u64 << ((b | 0x20) & 63), "byte {b:#04x}");
        }
        assert_eq!(super::byte_set(b"Ab"), super::byte_set(b"aB"));
        assert_eq!(super::byte_set(b""), 0);
        assert_eq!(super::byte_set(b"a\n"), super::byte_set(b"a") | super::byte_set(b"\n"));
    }

    /// The reference for `contains_folded`: every position, compared ASCII case-insensitively.
    fn plain_search(k: &[u8], lit: &[u8]) -> bool {
        k.len() >= lit.len()
            && (0..=k.len() - lit.len()).any(|i| k[i..i + lit.len()].eq_ignore_ascii_case(lit))
    }

    proptest::proptest! {
        /// Over keys of bytes that stress the word-at-a-time search (both cases of the first
        /// byte, NUL and 0x01 next to it, high bytes), the same answer as a plain search.
        #[test]
        fn contains_folded_is_a_case_insensitive_search(
            k in proptest::collection::vec(
                proptest::sample::select(b"pPaA_\x00\x01\xf0\xd0x".to_vec()), 0..40),
            lit in proptest::sample::select(vec![&b"p"[..], b"pa", b"pa_p", b"ap", b"p\x01"]),
        ) {
            proptest::prop_assert_eq!(super::contains_folded(&k, lit), plain_search(&k, lit));
        }
    }

    proptest::proptest! {
        /// A key a literal selector selects (in any case, after a newline too) has every
        /// bit the selector needs: passing over the others never drops a selected key.
        #[test]
        fn selected_keys_hold_the_needed_bytes(
            k in proptest::collection::vec(
                proptest::sample::select(b"aAzZ_-/\\\n@`[{09".to_vec()), 0..24),
            pattern in proptest::sample::select(
                vec!["^a_z", "z-", "A", "\\/Z", "_0", "^\\[", "`", "^za.*", "az*"]),
        ) {
            let key = String::from_utf8(k).expect("ASCII");
            let re = super::KeyRegex::new(pattern).expect("selector compiles");
            if re.is_match(&key) {
                let needs = re.needs();
                proptest::prop_assert_eq!(super::byte_set(key.as_bytes()) & needs, needs);
            }
        }
    }

    #[test]
    fn contains_folded_agrees_with_a_plain_search() {
        let lits: [&[u8]; 4] = [b"p", b"paramcounter_", b"pp", b"multipart_headers_content_types"];
        let keys: [&[u8]; 9] = [
            b"",
            b"p",
            b"xxPxxxxpxxxxxxxxPp",
            b"tx_PARAMCOUNTER_q",
            b"paramcounter",
            b"xxxxxxxparamcounter_",
            b"\x00\x70\xf0P",
            b"abcdefgh",
            b"MULTIPART_HEADERS_CONTENT_TYPES_x",
        ];
        for lit in lits {
            for k in keys {
                assert_eq!(super::contains_folded(k, lit), plain_search(k, lit), "{k:?} {lit:?}");
            }
        }
    }

    use super::KeyRegex;

    /// Keys equal but for ASCII case hash alike, whatever their length against the 8-byte
    /// words; the length and every byte take part otherwise.
    #[test]
    fn ci_hash_folds_ascii_case_only() {
        use super::ci_hash;
        for key in ["", "a", "anomaly_score", "Inbound_Anomaly_Score_Threshold", "x\u{e9}Y"] {
            assert_eq!(ci_hash(key), ci_hash(&key.to_ascii_uppercase()), "{key}");
            assert_eq!(ci_hash(key), ci_hash(&key.to_ascii_lowercase()), "{key}");
        }
        let distinct =
            ["", "a", "b", "a\0", "ab", "abcdefgh", "abcdefghi", "abcdefgi", "\u{e9}", "\u{c9}"];
        for (i, a) in distinct.iter().enumerate() {
            for b in &distinct[i + 1..] {
                assert_ne!(ci_hash(a), ci_hash(b), "{a:?} {b:?}");
            }
        }
    }

    /// The byte-comparison stand-ins decide exactly as the regex they replace.
    #[test]
    fn fast_paths_agree_with_the_regex() {
        let patterns = [
            "^header_name_",
            "__utm",
            "paramcounter_.*",
            "MULTIPART_HEADERS_CONTENT_TYPES_*",
            r"LEAKAGE\\\/ERRORS",
            r"^a\.b",
        ];
        let keys = [
            "",
            "_",
            "__utm",
            "__UTMz",
            "x__utma",
            "_pk_ref",
            "header_name_host",
            "HEADER_NAME_x",
            "xheader_name_",
            "a\nheader_name_b",
            "a\n",
            "paramcounter_",
            "ParamCounter_3",
            "multipart_headers_content_types_x",
            "MULTIPART_HEADERS_CONTENT_TYPES",
            "__ut\nm",
            "é__utm",
            "header_nam",
            "\nheader_name_",
            r"x_LEAKAGE\/ERRORS",
            "LEAKAGE/ERRORS",
            "leakage\\/errors",
            "a.b",
            "axb",
            "A.Bc",
        ];
        for p in patterns {
            let fast = KeyRegex::new(p).unwrap();
            assert!(!matches!(fast, KeyRegex::Regex(_)), "{p} should take a fast path");
            let re = regex::RegexBuilder::new(p)
                .case_insensitive(true)
                .dot_matches_new_line(true)
                .multi_line(true)
                .build()
                .unwrap();
            for k in keys {
                assert_eq!(fast.is_match(k), re.is_match(k), "pattern {p:?} key {k:?}");
            }
        }
    }
}

#[cfg(test)]
mod plan_slot_tests {
    use super::{PM_SLOT, PlanSlot, RxSlot};

    /// Regex and phrase-list slots keep their index and kind through the 4-byte form; a
    /// minimum length past 16 bits is capped (a lower bound, so the cap is safe); an index
    /// past 15 bits gets no packed slot (the rule then gets no plan).
    #[test]
    fn packed_slots_keep_what_the_prefilter_reads() {
        for slot in [0, 1, 300, 0x7fff, PM_SLOT, PM_SLOT | 5, PM_SLOT | 62] {
            for min_len in [0, 1, 40, 0xffff] {
                let s = RxSlot { slot, min_len };
                assert_eq!(PlanSlot::pack(s).map(PlanSlot::rx_slot), Some(s));
            }
        }
        let long = RxSlot { slot: 7, min_len: 70_000 };
        assert_eq!(
            PlanSlot::pack(long).map(PlanSlot::rx_slot),
            Some(RxSlot { slot: 7, min_len: 0xffff })
        );
        assert_eq!(PlanSlot::pack(RxSlot { slot: 0x8000, min_len: 1 }), None);
        assert_eq!(PlanSlot::pack(RxSlot { slot: PM_SLOT | 0x8000, min_len: 1 }), None);
    }
}
