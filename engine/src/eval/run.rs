//! One transaction through the compiled rule set: phases, rules, chains, actions.
//!
//! Follows libmodsecurity 3.0.9 (`RulesSet::evaluate`, `RuleWithOperator::evaluate`,
//! `RuleWithActions::executeActions*`, `performLogging`), including the quirks that decide
//! which rules reach the error log:
//! - `setvar` runs once per matching value, as soon as that link matched, even when a later
//!   link of the chain fails (`executeActionsIndependentOfChainedRuleResult`).
//! - `log`/`nolog`/`auditlog`/`noauditlog` run after a full match, default actions first; the
//!   last one decides, so `nolog,auditlog` logs and `log,noauditlog` does not.
//! - `multiMatch` rules log on every matching value, before `nolog` could run.
//! - A `SecAction` logs only with a `msg` or `block`.
//! - `block` runs the phase's default disruptive action directly (no engine-mode check).
//! - After an interruption the phase stops; phases 3-4 are skipped, as a connector does, and
//!   the logging phase runs.
//! - Phase 2 rules do not run at all when request body access is off.

use super::compile::{
    CActions, CClause, CCondition, CRule, CTarget, CompiledRuleSet, FastSkip, FoldedMatch, Item,
    PLAN_NONE, SkipPlan, byte_set, ci_hash, excludes, is_collection_var, macro_target,
    operator_macro, update_selects,
};
use super::sources::{KeyHasher, SourceCache, SourceTable};
use crate::ir::{
    Action, AllowScope, Ctl, EngineMode, IdRange, MacroPart, MacroString, Selector, SetVarOp,
    Transformation, Variable,
};
use crate::request::{Decision, Request};
use crate::seclang::variables::regex_key;
use crate::transform;
use crate::txn::{BodyProcessor, RequestData, decimal};
use std::borrow::Cow;

/// A case-insensitively keyed collection (TX, IP, ...), in insertion order, with an index
/// by a case-insensitive hash of the key: CRS reads `TX:<key>` in most of its rules.
///
/// Keys and values live in two arenas. A value that grows is appended again; the bytes it
/// leaves behind are counted and reclaimed once they outweigh the live ones.
///
/// A transaction's TX starts from the init snapshot's 40-odd entries ([`InitSnapshot`])
/// without copying their bytes: it copies only the entry table, whose slots point into the
/// snapshot's arenas (`base`), and looks keys up in its own index first and then in the
/// snapshot's. Copying the arenas and the index as well read and wrote about 210 cache lines
/// a decision on a cold cache (callgrind, bodiless GETs); sharing them saves 70 of those by
/// the cold-lines gauge (the rules read many of the shared bytes anyway). A value the
/// transaction rewrites moves to its own arena; removing a key copies the shared bytes in
/// first (`own_everything`).
#[derive(Debug, Default)]
pub struct Collection<'b> {
    entries: Vec<Slot>,
    keys: String,
    values: Vec<u8>,
    /// Bytes of `keys` and `values` that no entry refers to any more.
    dead: usize,
    /// Whether a key ever stored since the last clear holds a newline (a `/^lit/` selector
    /// then also tests the positions after each newline, [`super::compile::KeyRegex::is_match_in`]).
    newline_keys: bool,
    /// How many leading entries hold, in order, the keys of the rule set's init snapshot's
    /// TX (set when a transaction takes the snapshot; 0 once a key is removed). A key
    /// selector's answers on those keys never change, so it tests only the entries after
    /// them ([`super::compile::CTarget::snapshot_hits`]).
    from_snapshot: usize,
    /// The collection whose arenas the slots marked [`SHARED`] point into, and whose index
    /// finds the keys of its entries, which lead this one's at the same positions. It has
    /// no base of its own.
    base: Option<&'b Collection<'static>>,
    /// Case-insensitive key hash -> the first entry stored with it, for keys whose hash
    /// `base`'s index does not hold. Keys whose hash is taken by another key are found by a
    /// scan (correct, only slower, for crafted keys).
    index: std::collections::HashMap<u64, usize, std::hash::BuildHasherDefault<KeyHasher>>,
}

/// Marks a [`Slot`] range as one in the base collection's arenas.
const SHARED: usize = 1 << (usize::BITS - 1);

/// `clone_from` reuses the target's buffers: the transaction's collections are kept in
/// [`Scratch`] from one transaction to the next.
impl Clone for Collection<'_> {
    fn clone(&self) -> Self {
        Collection {
            entries: self.entries.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            dead: self.dead,
            newline_keys: self.newline_keys,
            from_snapshot: self.from_snapshot,
            base: self.base,
            index: self.index.clone(),
        }
    }
    fn clone_from(&mut self, source: &Self) {
        self.entries.clone_from(&source.entries);
        self.keys.clone_from(&source.keys);
        self.values.clone_from(&source.values);
        self.dead = source.dead;
        self.newline_keys = source.newline_keys;
        self.from_snapshot = source.from_snapshot;
        self.base = source.base;
        self.index.clone_from(&source.index);
    }
}

/// An entry of a [`Collection`]: where its key and its value are in the arenas (in the base
/// collection's when the start carries [`SHARED`]).
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: (usize, usize),
    value: (usize, usize),
    /// The key's [`byte_set`]: a key selector whose literal needs a byte the key lacks
    /// passes over it without reading it.
    sig: u64,
}

/// Collections are equal when they hold the same keys (as stored) and values in the same
/// order, wherever the bytes sit in their arenas.
impl PartialEq for Collection<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len() && self.iter().eq(other.iter())
    }
}

impl<'b> Collection<'b> {
    #[inline]
    fn key(&self, i: usize) -> &str {
        match self.entries[i].key {
            (a, b) if a & SHARED != 0 => self.base_arenas().0.get(a & !SHARED..b).unwrap_or(""),
            (a, b) => &self.keys[a..b],
        }
    }
    #[inline]
    fn value(&self, i: usize) -> &[u8] {
        match self.entries[i].value {
            (a, b) if a & SHARED != 0 => self.base_arenas().1.get(a & !SHARED..b).unwrap_or(&[]),
            (a, b) => &self.values[a..b],
        }
    }
    #[inline]
    fn base_arenas(&self) -> (&'b str, &'b [u8]) {
        self.base.map_or(("", &[]), |b| (b.keys.as_str(), b.values.as_slice()))
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Empty, keeping the buffers (see [`Scratch`]); dropped instead past `bytes`.
    fn clear_within(&mut self, bytes: usize) {
        if self.keys.capacity() + self.values.capacity() > bytes || self.entries.capacity() > 1024 {
            *self = Collection::default();
            return;
        }
        self.entries.clear();
        self.keys.clear();
        self.values.clear();
        self.dead = 0;
        self.newline_keys = false;
        self.from_snapshot = 0;
        self.base = None;
        self.index.clear();
    }
    /// Emptied (as [`Collection::clear_within`]) and detached from any base, to be kept
    /// beyond the base's life.
    fn recycle(mut self, bytes: usize) -> Collection<'static> {
        self.clear_within(bytes);
        self.detached()
    }
    /// The same entries, holding all their bytes, so that it may outlive the base.
    fn detached(mut self) -> Collection<'static> {
        self.own_everything();
        Collection {
            entries: std::mem::take(&mut self.entries),
            keys: std::mem::take(&mut self.keys),
            values: std::mem::take(&mut self.values),
            dead: self.dead,
            newline_keys: self.newline_keys,
            from_snapshot: self.from_snapshot,
            base: None,
            index: std::mem::take(&mut self.index),
        }
    }
    /// Becomes `base`'s entries (as [`Collection::clone_from`] would make it), their bytes
    /// and index shared with `base`; `slots` are `base`'s entries marked [`SHARED`]
    /// ([`Collection::shared_slots`]).
    fn start_from(&mut self, base: &'b Collection<'static>, slots: &[Slot]) {
        debug_assert!(base.base.is_none() && slots.len() == base.entries.len());
        self.entries.clear();
        self.entries.extend_from_slice(slots);
        self.keys.clear();
        self.values.clear();
        self.dead = 0;
        self.newline_keys = base.newline_keys;
        self.from_snapshot = base.from_snapshot;
        self.base = Some(base);
        self.index.clear();
    }
    /// This collection's entries pointing into its arenas as a base ([`Collection::start_from`]).
    fn shared_slots(&self) -> Vec<Slot> {
        assert!(self.base.is_none(), "a base has no base");
        let mark = |(a, b): (usize, usize)| (a | SHARED, b);
        self.entries
            .iter()
            .map(|s| Slot { key: mark(s.key), value: mark(s.value), sig: s.sig })
            .collect()
    }
    fn position(&self, key: &str) -> Option<usize> {
        self.position_h(key, ci_hash(key))
    }
    /// `position` with the key's [`ci_hash`] computed beforehand.
    fn position_h(&self, key: &str, h: u64) -> Option<usize> {
        self.lookup_h(key, h).ok()
    }
    /// Where `key` (hashed beforehand) is, or whether its hash is taken by another key
    /// (in this collection's index or its base's): `push_new` then leaves the index alone.
    #[inline]
    fn lookup_h(&self, key: &str, h: u64) -> Result<usize, bool> {
        let i = match self.index.get(&h) {
            Some(&i) => i,
            None => match self.base.and_then(|b| b.index.get(&h)) {
                Some(&i) => i,
                None => return Err(false),
            },
        };
        if self.key(i).eq_ignore_ascii_case(key) {
            return Ok(i);
        }
        (0..self.entries.len()).find(|&j| self.key(j).eq_ignore_ascii_case(key)).ok_or(true)
    }
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.position(key).map(|i| self.value(i))
    }
    /// The entry under `key` (hashed beforehand): (key as first stored, value).
    fn get_entry_h(&self, key: &str, h: u64) -> Option<(&str, &[u8])> {
        self.position_h(key, h).map(|i| (self.key(i), self.value(i)))
    }
    /// v3 `storeOrUpdateFirst`.
    pub fn set(&mut self, key: &str, value: &[u8]) {
        self.set_bytes_h(key, ci_hash(key), value);
    }
    /// `set` with the key hashed beforehand.
    fn set_bytes_h(&mut self, key: &str, h: u64, value: &[u8]) {
        let i = match self.lookup_h(key, h) {
            Ok(i) => i,
            Err(taken) => {
                self.push_new(key, h, taken, value);
                return;
            }
        };
        let (a, b) = self.entries[i].value;
        if a & SHARED != 0 {
            // The base's bytes stay as they are; the new value goes to this one's arena.
            let start = self.values.len();
            self.values.extend_from_slice(value);
            self.entries[i].value = (start, self.values.len());
        } else if value.len() <= b - a {
            // In place; the tail it no longer uses is dead.
            self.values[a..a + value.len()].copy_from_slice(value);
            self.entries[i].value = (a, a + value.len());
            self.dead += b - a - value.len();
        } else {
            let start = self.values.len();
            self.values.extend_from_slice(value);
            self.entries[i].value = (start, self.values.len());
            self.dead += b - a;
        }
        self.compact_if_mostly_dead();
    }
    /// Appends a key not yet stored; `taken`: another key has its hash already (see
    /// `index`), and keeps it.
    fn push_new(&mut self, key: &str, h: u64, taken: bool, value: &[u8]) {
        if !taken {
            self.index.insert(h, self.entries.len());
        }
        let sig = byte_set(key.as_bytes());
        // A newline has the bit of `*`, `J` and `j` too: only a key with one of those is
        // searched.
        if sig & byte_set(b"\n") != 0 {
            self.newline_keys |= key.as_bytes().contains(&b'\n');
        }
        let (k0, v0) = (self.keys.len(), self.values.len());
        self.keys.push_str(key);
        self.values.extend_from_slice(value);
        self.entries.push(Slot { key: (k0, self.keys.len()), value: (v0, self.values.len()), sig });
    }
    pub fn remove(&mut self, key: &str) {
        if self.position(key).is_none() {
            return;
        }
        self.own_everything();
        self.from_snapshot = 0;
        let (keys, dead) = (&self.keys, &mut self.dead);
        self.entries.retain(|&Slot { key: (ka, kb), value: (va, vb), .. }| {
            let gone = keys[ka..kb].eq_ignore_ascii_case(key);
            if gone {
                *dead += (kb - ka) + (vb - va);
            }
            !gone
        });
        self.index.clear();
        for i in 0..self.entries.len() {
            let h = ci_hash(self.key(i));
            self.index.entry(h).or_insert(i);
        }
        self.compact_if_mostly_dead();
    }
    /// Copies the live bytes to fresh arenas once the dead ones outweigh them (and a page).
    fn compact_if_mostly_dead(&mut self) {
        let live = self.keys.len() + self.values.len() - self.dead;
        if self.dead <= live.max(4096) {
            return;
        }
        self.rewrite_arenas();
    }
    /// Detaches from the base: its bytes copied into this collection's arenas and its index
    /// merged into this one's.
    fn own_everything(&mut self) {
        if self.base.is_some() {
            self.rewrite_arenas();
        }
    }
    /// Copies every entry's bytes, in order, to fresh arenas of this collection's own; a
    /// base's index is merged into this one's, and the base let go.
    fn rewrite_arenas(&mut self) {
        let live = |f: fn(&Self, usize) -> usize| (0..self.entries.len()).map(|i| f(self, i)).sum();
        let mut keys = String::with_capacity(live(|c, i| c.key(i).len()));
        let mut values = Vec::with_capacity(live(|c, i| c.value(i).len()));
        for i in 0..self.entries.len() {
            let (k0, v0) = (keys.len(), values.len());
            keys.push_str(self.key(i));
            values.extend_from_slice(self.value(i));
            let sig = self.entries[i].sig;
            self.entries[i] = Slot { key: (k0, keys.len()), value: (v0, values.len()), sig };
        }
        if let Some(base) = self.base.take() {
            // Hashes in the base's index are absent from this one's (`push_new`).
            for (&h, &i) in &base.index {
                self.index.entry(h).or_insert(i);
            }
        }
        (self.keys, self.values, self.dead) = (keys, values, 0);
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.iter_holding(0, 0)
    }
    /// The entries from the `from`th on whose key's [`byte_set`] has every bit of `need`.
    fn iter_holding(&self, from: usize, need: u64) -> impl Iterator<Item = (&str, &[u8])> {
        (from..self.entries.len())
            .filter(move |&i| self.entries[i].sig & need == need)
            .map(|i| (self.key(i), self.value(i)))
    }
}

/// `key` lower-cased, borrowed when it already is.
fn lower(key: &str) -> Cow<'_, str> {
    if key.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(key.to_ascii_lowercase())
    } else {
        Cow::Borrowed(key)
    }
}

/// v3's `stoi` as used by `setvar` and the numeric operators: optional leading white space,
/// a sign, digits; anything else (or overflow) gives 0.
pub fn stoi(b: &[u8]) -> i64 {
    let s = std::str::from_utf8(b).unwrap_or("");
    let t = s.trim_start();
    let end = t
        .char_indices()
        .take_while(|&(i, c)| c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+')))
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    t[..end].parse::<i32>().map(i64::from).unwrap_or(0)
}

/// (MATCHED_VAR_NAME, value) pairs read per rule, with their buffers kept for the next
/// rule: `clear` forgets the pairs, not the allocations. Names follow one another in one
/// string and values in one byte buffer (two blocks to write, not two a pair); `ends` holds
/// where each pair's name and value end, so a pair starts where the one before it ends.
/// Equal when they hold the same pairs: the buffers hold nothing past the last pair.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ValueBuf {
    names: String,
    bytes: Vec<u8>,
    ends: Vec<(usize, usize)>,
}

impl ValueBuf {
    pub(crate) fn clear(&mut self) {
        self.names.clear();
        self.bytes.clear();
        self.ends.clear();
    }
    fn end_pair(&mut self) {
        self.ends.push((self.names.len(), self.bytes.len()));
    }
    fn push_pair(&mut self, name: &str, value: &[u8]) {
        self.names.push_str(name);
        self.bytes.extend_from_slice(value);
        self.end_pair();
    }
    /// A pair named `VAR:key`.
    fn push_var(&mut self, var: &str, key: &str, value: &[u8]) {
        self.names.push_str(var);
        self.names.push(':');
        self.names.push_str(key);
        self.bytes.extend_from_slice(value);
        self.end_pair();
    }
    fn truncate(&mut self, len: usize) {
        if len < self.ends.len() {
            self.ends.truncate(len);
            let (n, b) = self.ends.last().copied().unwrap_or_default();
            self.names.truncate(n);
            self.bytes.truncate(b);
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
    /// The `i`th pair (`i < len`).
    fn pair(&self, i: usize) -> (&str, &[u8]) {
        let (n0, b0) = if i == 0 { (0, 0) } else { self.ends[i - 1] };
        let (n1, b1) = self.ends[i];
        (&self.names[n0..n1], &self.bytes[b0..b1])
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut start = (0, 0);
        self.ends.iter().map(move |&(n, b)| {
            let (n0, b0) = std::mem::replace(&mut start, (n, b));
            (&self.names[n0..n], &self.bytes[b0..b])
        })
    }
    /// Becomes a copy of `other`, in its own buffers.
    fn copy_from(&mut self, other: &ValueBuf) {
        self.clear();
        self.names.push_str(&other.names);
        self.bytes.extend_from_slice(&other.bytes);
        self.ends.extend_from_slice(&other.ends);
    }
    pub(crate) fn last(&self) -> Option<(&str, &[u8])> {
        self.ends.len().checked_sub(1).map(|i| self.pair(i))
    }
    pub(crate) fn first(&self) -> Option<&[u8]> {
        (!self.ends.is_empty()).then(|| self.pair(0).1)
    }
    /// Too big to keep for the next transaction.
    fn oversized(&self) -> bool {
        self.ends.capacity() > 1024
            || self.names.capacity() > 1 << 16
            || self.bytes.capacity() > 1 << 20
    }
}

/// The outcome of the first run of phase-1 items that read nothing from the request
/// ([`super::compile::request_independent_run`]: CRS's 901 initialisation, about 25 rules and
/// 60 `setvar`s). Reached with TX empty, these rules do the same thing in every transaction:
/// they run once, when the rule set compiles, and each transaction takes their result.
///
/// Kept only when that is provably all they do: the run leaves no intervention, jump, skip,
/// `allow`, removal or environment behind, and run a second time from a different current
/// rule and MATCHED_VARS it ends in the same state (so nothing it leaves depends on what came
/// before it).
#[derive(Debug, Clone)]
pub struct InitSnapshot {
    /// The items of phase 1 it stands for.
    pub run: std::ops::Range<usize>,
    /// TX as the items before the run leave it on an empty request: a transaction that
    /// reaches the run with another TX runs it.
    start_tx: Collection<'static>,
    tx: Collection<'static>,
    /// `tx`'s entries as a transaction's TX holds them when it takes the snapshot
    /// ([`Collection::start_from`]).
    tx_slots: Vec<Slot>,
    matched_ids: Vec<u64>,
    highest_severity: u8,
    current_rule: Option<u64>,
    matched_vars: ValueBuf,
}

impl InitSnapshot {
    /// The positions of the snapshot's TX keys that `re` selects (see
    /// [`Collection::from_snapshot`]).
    pub(crate) fn key_hits(&self, re: &super::compile::KeyRegex) -> Box<[u32]> {
        let lines = self.tx.newline_keys;
        (0..self.tx.entries.len())
            .filter(|&i| re.is_match_in(self.tx.key(i), lines))
            .map(|i| i as u32)
            .collect()
    }

    pub(crate) fn build(rs: &CompiledRuleSet) -> Option<InitSnapshot> {
        let run = super::compile::request_independent_run(&rs.phases[0])?;
        if rs.config.rule_engine == EngineMode::Off {
            return None;
        }
        let a = Self::take(rs, run.clone(), false)?;
        let b = Self::take(rs, run, true)?;
        (a.tx == b.tx
            && a.start_tx == b.start_tx
            && a.matched_ids == b.matched_ids
            && a.highest_severity == b.highest_severity
            && a.current_rule == b.current_rule
            && a.matched_vars == b.matched_vars)
            .then_some(a)
    }

    /// Runs the items in `run` in a fresh transaction over an empty request; `primed` starts
    /// it with a current rule and a MATCHED_VARS pair that the real predecessors could leave.
    fn take(
        rs: &CompiledRuleSet,
        run: std::ops::Range<usize>,
        primed: bool,
    ) -> Option<InitSnapshot> {
        let req = Request::default();
        let mut t = Transaction::new(rs, &req);
        if !t.phase_prologue(1) {
            return None;
        }
        let fast = &rs.fast[0];
        let eval = |t: &mut Transaction<'_>, items: std::ops::Range<usize>| {
            for k in items {
                match &rs.phases[0][k] {
                    Item::Marker(name) => t.at_marker(name),
                    Item::Rule(rule) => {
                        if t.rule_should_run(rule, fast.get(k).and_then(Option::as_ref)) {
                            t.eval_rule(rule);
                        }
                    }
                }
            }
        };
        // The items before the run, on the empty request: the TX the run starts from. They
        // must leave nothing else behind (a log entry, a severity, a pending jump), which a
        // real request's run could not be told from, but removals that spare the run's rules
        // (an exclusion rule that matches any request), which are then dropped.
        eval(&mut t, 0..run.start);
        let idle = t.run_as_written(run.clone())
            && t.final_status.is_none()
            && t.persistent().env.is_empty();
        if !(idle && t.matched_ids.is_empty() && t.highest_severity == 255) {
            return None;
        }
        t.removals = None;
        let start_tx = t.tx.clone().detached();
        if primed {
            t.current_rule = Some(u64::MAX);
            t.bufs.matched_vars.push_pair("REQUEST_HEADERS:x-init-probe", b"x-init-probe");
        }
        eval(&mut t, run.clone());
        let clean = t.flow_idle() && t.final_status.is_none() && t.persistent().env.is_empty();
        let tx = t.tx.clone().detached();
        clean.then(|| InitSnapshot {
            run,
            start_tx,
            tx_slots: tx.shared_slots(),
            tx,
            matched_ids: t.matched_ids.clone(),
            highest_severity: t.highest_severity,
            current_rule: t.current_rule,
            matched_vars: t.bufs.matched_vars.clone(),
        })
    }
}

impl InitSnapshot {
    /// Whether the first link of `rule` (in `phase`) fails in a transaction that has just
    /// applied this snapshot. With the link's reads constant after the snapshot
    /// ([`super::compile::reads_constant_tx`]), it then fails in every such transaction.
    pub(crate) fn first_link_fails(&self, rs: &CompiledRuleSet, phase: u8, rule: &CRule) -> bool {
        self.probe(rs, phase, |t| {
            let mut msg = RuleMsg::new(rule.hot.id());
            t.current_rule = rule.hot.id();
            let hit = rule.hot.has_operator() && t.link_targets_match(rule, rule, &mut msg);
            (!hit && t.tx == self.tx && t.flow_idle()).then_some(())
        })
        .is_some()
    }

    /// `f` on a fresh transaction over an empty request, in `phase`, that has just applied
    /// this snapshot (`None` when it cannot).
    fn probe<R>(
        &self,
        rs: &CompiledRuleSet,
        phase: u8,
        f: impl FnOnce(&mut Transaction<'_>) -> Option<R>,
    ) -> Option<R> {
        let req = Request::default();
        let mut t = Transaction::new(rs, &req);
        t.tx.clone_from(&self.start_tx);
        if !t.phase_prologue(phase) || !t.apply_init(self) {
            return None;
        }
        f(&mut t)
    }

    /// The outcome of `rule` (in `phase`) in a transaction that has just applied this
    /// snapshot, when it matches and does the same whatever current rule and MATCHED_VARS
    /// came before it (it appends to MATCHED_VARS), having changed nothing but MATCHED_VARS
    /// and a pending jump (no TX, log, severity, intervention or other flow change). The caller checked
    /// that its reads are constant and its actions only jump
    /// ([`super::compile::reads_constant_tx`]).
    pub(crate) fn fold_match(
        &self,
        rs: &CompiledRuleSet,
        phase: u8,
        rule: &CRule,
    ) -> Option<FoldedMatch> {
        let run = |primed: bool| -> Option<FoldedMatch> {
            self.probe(rs, phase, |t| Self::fold_outcome(t, rule, primed))
        };
        let a = run(false)?;
        (run(true)? == a).then_some(a)
    }

    /// The position of `key` in the snapshot's TX.
    pub(crate) fn tx_position(&self, key: &str) -> Option<usize> {
        self.tx.position(key)
    }

    /// The outcome of the whole of `rule` (in `phase`) in a transaction that has just
    /// applied this snapshot, when it is the same whatever current rule and MATCHED_VARS
    /// came before it and leaves everything but MATCHED_VARS as it was (TX's values
    /// included): `Some(None)` when it fails (MATCHED_VARS then forgotten),
    /// `Some(Some(f))` when it matches and appends `f`'s pairs to MATCHED_VARS. No jump.
    /// For [`super::compile::SkipPlan::CleanTx`], whose rules read only TX keys that are
    /// checked to hold the snapshot's values.
    pub(crate) fn fold_whole(
        &self,
        rs: &CompiledRuleSet,
        phase: u8,
        rule: &CRule,
    ) -> Option<Option<FoldedMatch>> {
        let run = |primed: bool| -> Option<Option<FoldedMatch>> {
            self.probe(rs, phase, |t| Self::whole_outcome(t, rule, primed))
        };
        let a = run(false)?;
        (run(true)? == a).then_some(a)
    }

    /// [`InitSnapshot::fold_whole`]'s probe of `rule` in `t`.
    fn whole_outcome(
        t: &mut Transaction<'_>,
        rule: &CRule,
        primed: bool,
    ) -> Option<Option<FoldedMatch>> {
        let p = Self::run_probe(t, rule, primed);
        if !(p.quiet && t.flow_idle() && t.bufs.folds_pending.is_empty()) {
            return None;
        }
        match p.matched {
            false => (p.after.is_empty() && p.writes.is_empty()).then_some(None),
            true => p.after.starts_with(&p.before).then(|| {
                Some(FoldedMatch {
                    matched_vars: p.after[p.before.len()..].to_vec(),
                    marker: None,
                    skip: 0,
                    tx: p.writes,
                })
            }),
        }
    }

    /// [`InitSnapshot::fold_match`]'s probe of `rule` in `t`.
    fn fold_outcome(t: &mut Transaction<'_>, rule: &CRule, primed: bool) -> Option<FoldedMatch> {
        let p = Self::run_probe(t, rule, primed);
        let folds = p.matched
            && p.quiet
            && p.writes.is_empty()
            && t.flow_idle_but_jumps()
            && t.current_rule == rule.hot.id()
            && p.after.starts_with(&p.before);
        folds.then(|| FoldedMatch {
            matched_vars: p.after[p.before.len()..].to_vec(),
            marker: t.marker_pending.then(|| t.marker.clone()),
            skip: t.skip_next,
            tx: Vec::new(),
        })
    }

    /// Runs `rule` in the probe transaction `t`; `primed` starts it from a current rule and
    /// MATCHED_VARS pair that real predecessors could leave.
    fn run_probe(t: &mut Transaction<'_>, rule: &CRule, primed: bool) -> Probed {
        if primed {
            t.current_rule = Some(u64::MAX);
            t.bufs.matched_vars.push_pair("REQUEST_HEADERS:x-fold-probe", b"x-fold-probe");
        }
        let tx = t.tx.clone();
        let ids = t.matched_ids.clone();
        let severity = t.highest_severity;
        let pairs = |t: &Transaction<'_>| -> Vec<(String, Vec<u8>)> {
            t.bufs.matched_vars.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect()
        };
        let before = pairs(t);
        let matched = t.eval_rule(rule);
        let after = pairs(t);
        // The keys it set (changed or added, none removed), in the order TX holds them: set
        // in that order on `tx`, they must give what the rule left.
        let writes: Vec<(String, Vec<u8>)> =
            t.tx.iter()
                .filter(|&(k, v)| tx.get(k) != Some(v))
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect();
        let mut expect = tx;
        for (k, v) in &writes {
            expect.set(k, v);
        }
        let quiet = t.tx == expect
            && t.persistent().env.is_empty()
            && t.matched_ids == ids
            && t.highest_severity == severity
            && t.it.status == 200
            && t.final_status.is_none();
        Probed { matched, before, after, writes, quiet }
    }
}

/// What running a rule in a probe transaction did ([`InitSnapshot::run_probe`]).
struct Probed {
    matched: bool,
    /// MATCHED_VARS before and after.
    before: Vec<(String, Vec<u8>)>,
    after: Vec<(String, Vec<u8>)>,
    /// The TX keys it set, in order, with their values.
    writes: Vec<(String, Vec<u8>)>,
    /// Nothing else changed: no log, severity, intervention or environment.
    quiet: bool,
}

/// Buffers a transaction reuses from the previous one on the same thread, so a request
/// does not pay for growing them again.
#[derive(Debug, Default)]
struct Scratch {
    /// Boxed, as the transaction holds them: moved as a pointer.
    bufs: Box<TxBufs>,
    /// Boxed: 440 bytes moved in and out of the pool on every transaction were some 15 lines
    /// of code a cold decision fetched; a box moves as a pointer.
    sources: Box<SourceCache>,
    tx: Collection<'static>,
    /// The last transaction's request view, refilled by the next one
    /// ([`RequestData::refill`]); none before the first, or after a huge request.
    data: Option<Box<RequestData>>,
}

/// A transaction's buffers for values, matched variables, folds, captures, `multiMatch` and
/// setvar expansions, reused across rules and transactions. In one box that goes from the
/// pool to the transaction and back: held inline, their 300 bytes were copied out of the
/// pool, into the transaction, and back at its end (some 20 lines written, and the code
/// that copies them, per cold decision).
#[derive(Debug, Default)]
struct TxBufs {
    /// Scratch for a target's values.
    values: ValueBuf,
    /// MATCHED_VARS in order; MATCHED_VAR(_NAME) is the last one (both are set and
    /// cleared together). Followed by the pairs of `folds_pending`.
    matched_vars: ValueBuf,
    /// Rules folded as matched ([`SkipPlan::AfterInitMatch`]) since MATCHED_VARS was last
    /// settled, in order: their pairs belong at the end of `matched_vars`. They are added
    /// only when a rule runs ([`Transaction::settle_folds`]); CRS's paranoia gates fold as
    /// matched and the next file's first gate fails and clears them, so most never are, and
    /// their names and values (some 150 cache lines a decision) are not read.
    folds_pending: Vec<u32>,
    captures: crate::operator::Captures,
    multi: MultiBufs,
    /// A setvar's expanded key and value.
    setvar_bufs: (Vec<u8>, Vec<u8>),
}

/// A box a transaction holds for its whole life and gives back at its end ([`Scratch`]):
/// full from [`Transaction::new`] until `Drop`, so every access finds it.
#[derive(Debug)]
struct Held<T>(Option<Box<T>>);

impl<T> Held<T> {
    fn give_back(&mut self) -> Box<T> {
        self.0.take().expect("held until the transaction ends")
    }
}

impl<T> std::ops::Deref for Held<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_deref().expect("held until the transaction ends")
    }
}

impl<T> std::ops::DerefMut for Held<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_deref_mut().expect("held until the transaction ends")
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<Scratch>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Scratches a thread keeps: one per rule set it serves, up to this many.
const SCRATCH_POOL: usize = 4;

impl Scratch {
    /// The scratch last used with `table`'s prefilter; else a new one while the pool has room
    /// for one per rule set, else the least recently used (its value memo then starts empty).
    /// Not any other rule set's while there is room: two rule sets alternating on a thread
    /// (the engines of `wafbench latency`) would then empty each other's memo on every
    /// transaction, which measured slower than no memo at all.
    fn take(table: &SourceTable) -> Scratch {
        let mut s = SCRATCH
            .with(|p| {
                let mut p = p.borrow_mut();
                match p.iter().rposition(|s| s.sources.memo_for(&table.prefilter)) {
                    Some(i) => Some(p.remove(i)),
                    None if p.len() >= SCRATCH_POOL => Some(p.remove(0)),
                    None => None,
                }
            })
            .unwrap_or_default();
        s.sources.reset(table.source_count, table.raw_count, &table.prefilter);
        s
    }
    fn give_back(mut self) {
        self.sources.trim();
        let bufs = &mut *self.bufs;
        for b in [&mut bufs.setvar_bufs.0, &mut bufs.setvar_bufs.1] {
            if b.capacity() > 1 << 16 {
                *b = Vec::new();
            }
        }
        if bufs.multi.entries.capacity() > 1 << 16 {
            bufs.multi.entries = Vec::new();
        }
        bufs.captures.trim();
        bufs.folds_pending.clear();
        for b in [&mut bufs.values, &mut bufs.matched_vars] {
            b.clear();
            if b.oversized() {
                *b = ValueBuf::default();
            }
        }
        let _ = SCRATCH.try_with(|p| {
            let mut p = p.borrow_mut();
            // The one least recently given back goes first.
            if p.len() >= SCRATCH_POOL {
                p.remove(0);
            }
            p.push(self);
        });
    }
}

#[derive(Debug, Default)]
struct Intervention {
    disruptive: bool,
    status: u16,
}

/// The per-rule message v3 builds while a rule runs; only what decides logging is kept.
#[derive(Debug)]
pub(crate) struct RuleMsg {
    pub(crate) save: bool,
    pub(crate) disruptive: bool,
    pub(crate) root_id: Option<u64>,
}

impl RuleMsg {
    pub(crate) fn new(root_id: Option<u64>) -> RuleMsg {
        RuleMsg { save: true, disruptive: false, root_id }
    }
}

/// The collections a transaction makes only when a rule writes one
/// ([`Transaction::persistent`]). None of them has a base.
#[derive(Debug, Default)]
struct Persistent<'r> {
    ip: Collection<'r>,
    global: Collection<'r>,
    session: Collection<'r>,
    user: Collection<'r>,
    resource: Collection<'r>,
    env: Collection<'r>,
}

/// Per-request state.
pub struct Transaction<'r> {
    rs: &'r CompiledRuleSet,
    /// The request view, in a box kept from one transaction to the next ([`Scratch`]).
    data: Held<RequestData>,
    pub tx: Collection<'r>,
    /// IP, GLOBAL, SESSION, USER, RESOURCE and ENV: made on the first write. CRS writes them
    /// only in rules that are off by default, and six empty collections (816 bytes) made and
    /// dropped on every transaction cost code lines a cold decision has to fetch.
    persistent: Option<Box<Persistent<'r>>>,
    /// Buffers reused across rules (and across transactions, see [`Scratch`]): MATCHED_VARS,
    /// the pending folds, values, captures, `multiMatch` and setvar buffers ([`TxBufs`]).
    /// Not dropped with the transaction: `Drop` hands the box back to the pool.
    bufs: std::mem::ManuallyDrop<Box<TxBufs>>,
    engine: EngineMode,
    /// What this transaction's `ctl:ruleRemove*` actions removed: made by the first one.
    /// CRS runs them only in its application exclusion packages (off by default); four
    /// vectors made and dropped on every transaction were code lines a cold decision
    /// fetched for nothing.
    removals: Option<Box<Removals>>,
    skip_next: u32,
    /// Pending `skipAfter` target (valid while `marker_pending`; the buffer is reused).
    marker: String,
    marker_pending: bool,
    /// This transaction took the init snapshot ([`InitSnapshot`]): the TX keys that no rule
    /// writes after it still hold the snapshot's values ([`SkipPlan::AfterInit`]).
    init_applied: bool,
    allow: Option<AllowScope>,
    it: Intervention,
    final_status: Option<u16>,
    matched_ids: Vec<u64>,
    highest_severity: u8,
    current_rule: Option<u64>,
    phase: u8,
    response_status: u16,
    /// The response body phase ran (v3 `processResponseBody` past its checks).
    response_body_done: bool,
    /// Per-rule hook for the profiler: (rule index, evaluated, matched, nanoseconds).
    pub profile: Option<Vec<RuleStat>>,
    /// Per-request cache of transformed values (off unless a backend turns it on).
    pub(crate) transform_cache: Option<TransformCache>,
    /// Turns the [`FastSkip`] plans off, so every rule that may run is evaluated (as under
    /// `profile`): for a backend's own profiler, which counts evaluations.
    pub(crate) count_every_rule: bool,
    /// Value lists shared by the rules reading the same source.
    sources: Held<SourceCache>,
    /// While a link's setvars run right after its capture, until one of them writes a key
    /// the capture set: TX.0-TX.9 hold the groups' bytes ([`Transaction::captured_group`]).
    captured: bool,
}

/// The TX keys a capture sets, group by group.
const CAPTURE_KEYS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// [`ci_hash`] of `anomaly_score`, which every decision reports, found once.
fn anomaly_score_hash() -> u64 {
    static HASH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HASH.get_or_init(|| ci_hash("anomaly_score"))
}

/// [`ci_hash`] of each of [`CAPTURE_KEYS`], found once.
fn capture_key_hashes() -> &'static [u64; 10] {
    static HASHES: std::sync::OnceLock<[u64; 10]> = std::sync::OnceLock::new();
    HASHES.get_or_init(|| CAPTURE_KEYS.map(ci_hash))
}

/// One transformation per request of each (value, transformation chain) pair: CRS applies
/// the same chains (`t:urlDecodeUni,t:htmlEntityDecode,...`) to the same ARGS in dozens of
/// rules. Keyed by a hash of chain and value, checked against both on a hit; bounded so a
/// request with huge values cannot grow it without limit (past the bound, values are
/// transformed without caching).
/// (chain, input, output).
type CachedTransform = (Vec<Transformation>, Vec<u8>, Vec<u8>);

#[derive(Debug, Default)]
pub(crate) struct TransformCache {
    map: std::collections::HashMap<u64, Vec<CachedTransform>>,
    bytes: usize,
}

impl TransformCache {
    /// Cached bytes per request at most (input plus output).
    const MAX_BYTES: usize = 8 << 20;

    fn apply(&mut self, chain: &[Transformation], value: &[u8]) -> Vec<u8> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        chain.hash(&mut h);
        value.hash(&mut h);
        let key = h.finish();
        if let Some(bucket) = self.map.get(&key) {
            if let Some((_, _, out)) = bucket.iter().find(|(c, v, _)| c == chain && v == value) {
                return out.clone();
            }
        }
        let out = transform::apply_chain(chain, value).into_owned();
        let size = value.len() + out.len();
        if self.bytes + size <= Self::MAX_BYTES {
            self.bytes += size;
            self.map.entry(key).or_default().push((chain.to_vec(), value.to_vec(), out.clone()));
        }
        out
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        Scratch {
            // SAFETY: `drop` runs once, and `bufs` is not read after this: the box goes back
            // to the pool (leaving a box in its place would allocate one and free it).
            bufs: unsafe { std::mem::ManuallyDrop::take(&mut self.bufs) },
            sources: self.sources.give_back(),
            data: Some(self.data.give_back()).filter(|d| d.worth_keeping()),
            tx: std::mem::take(&mut self.tx).recycle(1 << 16),
        }
        .give_back();
    }
}

/// A `multiMatch` link's buffers, kept with the transaction's scratch: the variants of a
/// value (empty between uses: its borrows end with the link) and the source entries tried.
/// CRS's `multiMatch` rules run on every request; fresh vectors cost two allocations a link.
#[derive(Debug, Default)]
struct MultiBufs {
    variants: Vec<Cow<'static, [u8]>>,
    entries: Vec<usize>,
}

/// An empty vector of borrowed-or-owned values, on `v`'s allocation: the lifetime is only
/// the element type's, and an empty vector holds none (the in-place `collect` keeps the
/// allocation, its layout being the same).
fn recycle_cows<'a, 'b>(mut v: Vec<Cow<'a, [u8]>>) -> Vec<Cow<'b, [u8]>> {
    v.clear();
    v.into_iter().map(|_| Cow::Borrowed(&[][..])).collect()
}

/// The rules and targets a transaction's `ctl` actions removed ([`Transaction::removals`]).
#[derive(Debug, Default)]
struct Removals {
    ids: Vec<IdRange>,
    tags: Vec<String>,
    target_by_id: Vec<(IdRange, String)>,
    target_by_tag: Vec<(String, String)>,
}

/// Per-rule counters collected when profiling.
#[derive(Debug, Default, Clone, Copy)]
pub struct RuleStat {
    pub evaluated: u64,
    pub matched: u64,
    pub nanos: u64,
}

impl<'r> Transaction<'r> {
    pub fn new(rs: &'r CompiledRuleSet, req: &Request) -> Transaction<'r> {
        let scratch = Scratch::take(&rs.sources);
        Transaction {
            rs,
            data: Held(Some(match scratch.data {
                Some(mut d) => {
                    d.refill(req, &rs.config.txn);
                    d
                }
                None => Box::new(RequestData::new(req, &rs.config.txn)),
            })),
            tx: scratch.tx,
            persistent: None,
            bufs: std::mem::ManuallyDrop::new(scratch.bufs),
            engine: rs.config.rule_engine,
            removals: None,
            skip_next: 0,
            marker: String::new(),
            marker_pending: false,
            init_applied: false,
            allow: None,
            it: Intervention { disruptive: false, status: 200 },
            final_status: None,
            matched_ids: Vec::new(),
            highest_severity: 255,
            current_rule: None,
            phase: 1,
            response_status: 200,
            response_body_done: false,
            profile: None,
            transform_cache: None,
            count_every_rule: false,
            sources: Held(Some(scratch.sources)),
            captured: false,
        }
    }

    /// Whether this transaction applied the rule set's init snapshot.
    #[cfg(test)]
    pub(crate) fn init_applied(&self) -> bool {
        self.init_applied
    }

    /// Runs every phase and returns the decision.
    pub fn run(mut self, req: &Request) -> Decision {
        self.run_phases(req);
        self.decision(req)
    }

    pub(crate) fn run_phases(&mut self, req: &Request) {
        self.run_phases_with(req, &mut |t, phase| t.eval_phase(phase));
    }

    /// The phase sequence of a connector, with `eval_phase` supplied by the backend (the
    /// native loop below, or a compiled Lua phase function): everything between phases
    /// (body processing, interventions, which phases run) is shared.
    pub(crate) fn run_phases_with(
        &mut self,
        req: &Request,
        eval_phase: &mut dyn FnMut(&mut Self, u8),
    ) {
        if self.engine == EngineMode::Off {
            return;
        }
        let mut interrupted = false;
        // Phase 1: request headers.
        eval_phase(self, 1);
        if self.take_intervention() {
            interrupted = true;
        }
        // Phase 2: request body.
        if !interrupted && self.engine != EngineMode::Off {
            self.data.process_body(req, None);
            self.sources.invalidate();
            match self.data.body_limit_intervention() {
                // v3 `appendRequestBody`: a body over SecRequestBodyLimit with action Reject
                // is refused before phase 2 runs (only with the rule engine On).
                Some(status) if self.engine == EngineMode::On => {
                    self.it = Intervention { disruptive: true, status };
                    self.take_intervention();
                    interrupted = true;
                }
                _ => {
                    if self.data.request_body_phase_runs() {
                        eval_phase(self, 2);
                    }
                    if self.take_intervention() {
                        interrupted = true;
                    }
                }
            }
        }
        // Phases 3 and 4: an empty `200` response without headers. A connector skips them
        // once the request was interrupted.
        if !interrupted && self.engine != EngineMode::Off {
            eval_phase(self, 3);
            if self.take_intervention() {
                interrupted = true;
            }
        }
        if !interrupted && self.engine != EngineMode::Off && self.rs.config.txn.response_body_access
        {
            // v3 skips phase 4 when the response content type is not one to inspect; our
            // synthetic response has none, so phase 4 runs only without SecResponseBodyMimeType.
            if self.rs.config.txn.response_body_mime_types.is_empty() {
                self.response_body_done = true;
                eval_phase(self, 4);
                self.take_intervention();
            }
        }
        if self.engine != EngineMode::Off {
            eval_phase(self, 5);
        }
        let _ = interrupted;
    }

    /// Records an interruption once; `msc_intervention` resets it after reading it.
    fn take_intervention(&mut self) -> bool {
        if self.it.disruptive {
            self.final_status = Some(self.it.status);
            self.it = Intervention { disruptive: false, status: 200 };
            true
        } else {
            false
        }
    }

    pub(crate) fn decision(&self, req: &Request) -> Decision {
        let status = self.final_status.unwrap_or(200);
        Decision {
            id: req.id.clone(),
            status,
            disruptive: self.final_status.is_some(),
            matched_ids: self.matched_ids.iter().map(|i| i.to_string()).collect(),
            anomaly_score: self
                .tx
                .position_h("anomaly_score", anomaly_score_hash())
                .map_or(0, |i| stoi(self.tx.value(i))),
        }
    }
}

impl<'r> Transaction<'r> {
    /// `RulesSet::evaluate` for one phase.
    fn eval_phase(&mut self, phase: u8) {
        let rs = self.rs;
        if !self.phase_prologue(phase) {
            return;
        }
        // Profiles and the transformation cache run every rule: no plan is read. They are
        // set before the first phase, so this is asked once a phase, not once a plan.
        let fast: &[Option<FastSkip>] =
            if self.every_rule_runs() { &[] } else { &rs.fast[phase as usize - 1] };
        let items = &rs.phases[phase as usize - 1];
        let init = if phase == 1 { self.init_snapshot() } else { None };
        let jumps = &rs.jumps[phase as usize - 1];
        // The item just done, when no jump was pending before it: a jump pending now is its
        // own, and goes straight to its marker when the rule set knows where that is.
        let mut from: Option<usize> = None;
        let mut next = 0;
        while next < items.len() {
            if let Some(f) = from.take() {
                if self.marker_pending {
                    match jumps.get(f) {
                        Some(&t) if t != u32::MAX => next = t as usize,
                        _ => {}
                    }
                }
            }
            let k = next;
            next += 1;
            if !self.marker_pending {
                from = Some(k);
            }
            if let Some(s) = init {
                if k == s.run.start && self.apply_init(s) {
                    next = s.run.end;
                    continue;
                }
            }
            let rule = match fast.get(k).and_then(Option::as_ref) {
                // A rule its plan skips is not read: the loop then reads 8 bytes of `fast`
                // for it, not its item and the rule behind it; nor a marker, unless a jump
                // is pending.
                Some(FastSkip { plan: SkipPlan::Marker }) => {
                    if self.marker_pending {
                        if let Item::Marker(name) = &items[k] {
                            self.at_marker(name);
                        }
                    }
                    continue;
                }
                Some(f) => {
                    if !self.rule_turn() {
                        continue;
                    }
                    if let SkipPlan::AfterInitMatch { fold, past } = f.plan {
                        if past != PLAN_NONE && self.take_fold(u32::from(fold)) {
                            next = usize::from(past);
                            continue;
                        }
                    }
                    let rule = || match &items[k] {
                        Item::Rule(r) => Some(&**r),
                        Item::Marker(_) => None,
                    };
                    if self.planned_no_match(f, rule) {
                        continue;
                    }
                    match &items[k] {
                        Item::Rule(r) if !self.is_removed(r) => r,
                        _ => continue,
                    }
                }
                None => match &items[k] {
                    Item::Marker(name) => {
                        self.at_marker(name);
                        continue;
                    }
                    Item::Rule(r) => {
                        if !self.rule_should_run(r, None) {
                            continue;
                        }
                        r
                    }
                },
            };
            let started = self.profile.as_ref().map(|_| std::time::Instant::now());
            let matched = self.eval_rule(rule);
            if let (Some(t0), Some(p)) = (started, self.profile.as_mut()) {
                let s = &mut p[rule.index];
                s.evaluated += 1;
                s.matched += u64::from(matched);
                s.nanos += t0.elapsed().as_nanos() as u64;
            }
            if self.it.disruptive {
                break;
            }
        }
    }

    /// The rule set's [`InitSnapshot`], unless every rule must run (per-rule profiles count
    /// each evaluation).
    fn init_snapshot(&self) -> Option<&'r InitSnapshot> {
        let rs: &'r CompiledRuleSet = self.rs;
        if self.every_rule_runs() {
            return None;
        }
        rs.init.as_ref()
    }

    /// Profiles (native per-rule counters, a backend's `count_every_rule`) and the
    /// transformation cache need every rule that may run to be evaluated: no [`FastSkip`]
    /// plan, no [`InitSnapshot`].
    fn every_rule_runs(&self) -> bool {
        self.profile.is_some() || self.count_every_rule || self.transform_cache.is_some()
    }

    /// No intervention, `skipAfter`, `skip`, `allow`, engine change or run-time removal is
    /// pending: the rules ahead run exactly as written.
    fn flow_idle(&self) -> bool {
        !self.marker_pending && self.skip_next == 0 && self.flow_idle_but_jumps()
    }

    /// [`Transaction::flow_idle`] but for a pending `skipAfter` or `skip`.
    fn flow_idle_but_jumps(&self) -> bool {
        self.flow_idle_but_removals() && !self.removals_pending()
    }

    /// No intervention, `allow` or engine change is pending.
    fn flow_idle_but_removals(&self) -> bool {
        !self.it.disruptive && self.allow.is_none() && self.engine == self.rs.config.rule_engine
    }

    /// A `ctl:ruleRemoveById`, `ruleRemoveByTag`, `ruleRemoveTargetById` or
    /// `ruleRemoveTargetByTag` ran in this transaction.
    fn removals_pending(&self) -> bool {
        self.removals.as_ref().is_some_and(|r| {
            !(r.ids.is_empty()
                && r.tags.is_empty()
                && r.target_by_id.is_empty()
                && r.target_by_tag.is_empty())
        })
    }

    /// `rule` is removed by a `ctl` of this transaction (by id or tag).
    fn removed_at_run_time(&self, rule: &CRule) -> bool {
        let Some(r) = &self.removals else { return false };
        rule.hot.id().is_some_and(|id| r.ids.iter().any(|r| r.contains(id)))
            || r.tags.iter().any(|t| rule.contains_tag(t))
    }

    /// A `ctl` of this transaction removes targets from `rule` (by its id or a tag), or may:
    /// which targets is not looked at.
    fn targets_removed_at_run_time(&self, rule: &CRule) -> bool {
        let Some(r) = &self.removals else { return false };
        rule.hot.id().is_some_and(|id| r.target_by_id.iter().any(|(r, _)| r.contains(id)))
            || r.target_by_tag.iter().any(|(t, _)| rule.contains_tag(t))
    }

    /// Items `run` of phase 1, reached now, run as written: no jump, skip, intervention,
    /// `allow` or engine change is pending, and no removal touches their rules. Removals
    /// that leave them alone (CRS's exclusion rules, which come before the init run and aim
    /// at the detection rules) do not change their outcome.
    fn run_as_written(&self, run: std::ops::Range<usize>) -> bool {
        !self.marker_pending
            && self.skip_next == 0
            && self.flow_idle_but_removals()
            && (!self.removals_pending() || self.removals_spare(run))
    }

    /// The removals pending leave the rules of items `run` of phase 1 as written: none is
    /// removed, none loses a target.
    fn removals_spare(&self, run: std::ops::Range<usize>) -> bool {
        let items = self.rs.phases[0].get(run).unwrap_or_default();
        items.iter().all(|it| match it {
            Item::Rule(r) => !self.removed_at_run_time(r) && !self.targets_removed_at_run_time(r),
            Item::Marker(_) => true,
        })
    }

    /// For a backend at the first item of the snapshot's run (`rs.init`): applies the
    /// snapshot when this transaction may use it ([`Transaction::init_snapshot`]) and is in
    /// the state it was taken from. True when the run's items must be skipped.
    pub(crate) fn try_init_snapshot(&mut self) -> bool {
        match self.init_snapshot() {
            Some(s) => self.apply_init(s),
            None => false,
        }
    }

    /// At the first item of the snapshot's run: when the transaction is in the state the
    /// snapshot was taken from (TX as the snapshot started from, no jump, skip, `allow` or
    /// engine change pending, no removal that touches the run's rules, as earlier rules may
    /// have left it), the run's outcome instead of the run.
    fn apply_init(&mut self, s: &'r InitSnapshot) -> bool {
        if !(self.run_as_written(s.run.clone()) && self.tx == s.start_tx) {
            return false;
        }
        self.tx.start_from(&s.tx, &s.tx_slots);
        self.tx.from_snapshot = s.tx.entries.len();
        self.init_applied = true;
        for &id in &s.matched_ids {
            if !self.matched_ids.contains(&id) {
                self.matched_ids.push(id);
            }
        }
        self.highest_severity = self.highest_severity.min(s.highest_severity);
        self.current_rule = s.current_rule;
        self.bufs.folds_pending.clear();
        self.bufs.matched_vars.copy_from(&s.matched_vars);
        true
    }

    /// This transaction applied the init snapshot, removed none of its TX keys, and the keys
    /// at `slots` (positions in the snapshot's TX) hold the snapshot's values. A value never
    /// written still points into the snapshot's arena; one written since is compared.
    fn tx_clean(&self, slots: &[u32]) -> bool {
        let Some(s) = self.rs.init.as_ref().filter(|_| self.init_applied) else {
            return false;
        };
        if self.tx.from_snapshot != s.tx_slots.len() {
            return false;
        }
        slots.iter().all(|&i| {
            let i = i as usize;
            match (self.tx.entries.get(i), s.tx_slots.get(i)) {
                (Some(a), Some(b)) => a.value == b.value || self.tx.value(i) == s.tx.value(i),
                _ => false,
            }
        })
    }

    /// A rule with a [`FastSkip`] plan that provably does not match, as `eval_rule` would
    /// leave it: MATCHED_VAR(S) forgotten. False when the plan cannot decide (lists or scans
    /// missing, a value that may match, the rule removed at run time, profiling). `rule`
    /// reads the rule, needed only once a `ctl` removed something.
    ///
    /// A target removed at run time leaves a "cannot match" standing (it takes values
    /// away, and v3 runs the operator once per value, negated or not), but not a folded
    /// match, which may have come from that target. A rule removed at run time is not run,
    /// and so leaves MATCHED_VARS as it was: the caller's own removal check skips it.
    ///
    /// The current rule (`RULE:id`) is left as it was: only a rule reads it, and
    /// `eval_rule` (or the Lua `pre`) sets it before the rule does.
    fn fast_no_match<'a>(
        &mut self,
        f: &FastSkip,
        rule: impl FnOnce() -> Option<&'a CRule>,
    ) -> bool {
        !self.every_rule_runs() && self.planned_no_match(f, rule)
    }

    /// [`Transaction::fast_no_match`] once the caller knows that not every rule must run.
    fn planned_no_match<'a>(
        &mut self,
        f: &FastSkip,
        rule: impl FnOnce() -> Option<&'a CRule>,
    ) -> bool {
        if self.removals_pending() {
            let Some(rule) = rule() else { return false };
            if self.removed_at_run_time(rule)
                || (matches!(f.plan, SkipPlan::AfterInitMatch { .. } | SkipPlan::CleanTx { .. })
                    && self.targets_removed_at_run_time(rule))
            {
                return false;
            }
        }
        let proven = match f.plan {
            SkipPlan::Prefilter { slot, start, len } => {
                let start = usize::from(start);
                let sids = &self.rs.fast_sources[start..start + usize::from(len)];
                self.sources.no_match(sids, slot.rx_slot(), &self.rs.sources, &self.data)
            }
            SkipPlan::AfterInit => self.init_applied,
            SkipPlan::AfterInitMatch { fold, .. } if self.init_applied => {
                let rs: &'r CompiledRuleSet = self.rs;
                let (folds, i) = (&rs.folds, usize::from(fold));
                self.bufs.folds_pending.push(u32::from(fold));
                if let Some(marker) = folds.marker(i) {
                    self.marker.clear();
                    self.marker.push_str(marker);
                    self.marker_pending = true;
                }
                self.skip_next = folds.skip(i);
                return true;
            }
            SkipPlan::CleanTx { start, len, fold } => {
                let start = usize::from(start);
                let slots = self.rs.clean_slots.get(start..start + usize::from(len));
                if !slots.is_some_and(|s| self.tx_clean(s)) {
                    return false;
                }
                if fold != PLAN_NONE {
                    // Matched, as the fold says: it sets its TX keys, and its pairs join
                    // MATCHED_VARS when a rule next runs, as a folded match's do.
                    let rs: &'r CompiledRuleSet = self.rs;
                    for (k, v) in rs.folds.writes(usize::from(fold)) {
                        self.tx.set(k, v);
                    }
                    self.bufs.folds_pending.push(u32::from(fold));
                    return true;
                }
                true
            }
            SkipPlan::AfterInitMatch { .. } | SkipPlan::Marker => false,
        };
        if !proven {
            return false;
        }
        self.forget_matched();
        true
    }

    /// A link matched nothing: MATCHED_VAR(S) are forgotten, with the pairs of the folds
    /// pending.
    fn forget_matched(&mut self) {
        self.bufs.matched_vars.clear();
        self.bufs.folds_pending.clear();
    }

    /// Before a rule runs: appends the pairs of the rules folded as matched since MATCHED_VARS
    /// was last settled, in the order they were reached.
    pub(crate) fn settle_folds(&mut self) {
        if self.bufs.folds_pending.is_empty() {
            return;
        }
        let folds = &self.rs.folds;
        let bufs = &mut **self.bufs;
        for &i in &bufs.folds_pending {
            for (n, v) in folds.pairs(i as usize) {
                bufs.matched_vars.push_pair(n, v);
            }
        }
        bufs.folds_pending.clear();
    }

    /// Enters a phase; false when an earlier `allow` skips it.
    pub(crate) fn phase_prologue(&mut self, phase: u8) -> bool {
        self.phase = phase;
        match self.allow {
            Some(AllowScope::All) if phase != 5 => return false,
            Some(AllowScope::Request) if phase <= 2 => return false,
            _ => {}
        }
        self.allow = None;
        true
    }

    /// A marker item: clears a pending `skipAfter` aimed at it.
    pub(crate) fn at_marker(&mut self, name: &str) {
        if self.marker_pending && self.marker == name {
            self.marker_pending = false;
        }
    }

    /// The checks `RulesSet::evaluate` makes before a rule runs, in v3's order: a pending
    /// `skipAfter`, then `skip` (so rules jumped over by a marker do not use up a `skip`
    /// count), `allow`, and removal. With the rule's [`FastSkip`] plan, a rule the prefilter
    /// proves cannot match is done here, before the rule itself is read.
    pub(crate) fn rule_should_run(&mut self, rule: &CRule, fast: Option<&FastSkip>) -> bool {
        self.rule_turn()
            && !fast.is_some_and(|f| self.fast_no_match(f, || Some(rule)))
            && !self.is_removed(rule)
    }

    /// No `skipAfter`, `skip` or `allow` is pending: [`Transaction::rule_turn`] passes and
    /// uses nothing up.
    pub(crate) fn turn_idle(&self) -> bool {
        !self.marker_pending && self.skip_next == 0 && self.allow.is_none()
    }

    /// At a rule folded as matched ([`SkipPlan::AfterInitMatch`]) whose turn it is, when the
    /// caller takes its jump itself (to the item right after its marker, `past`): applies
    /// the fold (its MATCHED_VARS pairs, kept pending) and returns true when this transaction
    /// took the snapshot and no removal is pending; false sends the rule the usual way.
    pub(crate) fn take_fold(&mut self, fold: u32) -> bool {
        if self.init_applied && !self.removals_pending() {
            self.bufs.folds_pending.push(fold);
            true
        } else {
            false
        }
    }

    /// The checks of `rule_should_run` that do not read the rule (it uses up a `skip`).
    fn rule_turn(&mut self) -> bool {
        if self.marker_pending {
            return false;
        }
        if self.skip_next > 0 {
            self.skip_next -= 1;
            return false;
        }
        self.allow.is_none()
    }

    pub(crate) fn interrupted(&self) -> bool {
        self.it.disruptive
    }

    pub(crate) fn pending_marker(&self) -> Option<&str> {
        self.marker_pending.then_some(self.marker.as_str())
    }

    pub(crate) fn clear_marker(&mut self) {
        self.marker_pending = false;
    }

    pub(crate) fn set_current_rule(&mut self, id: Option<u64>) {
        self.current_rule = id;
    }

    fn is_removed(&self, rule: &CRule) -> bool {
        rule.removed || self.removed_at_run_time(rule)
    }

    /// One rule (all links of its chain). Returns whether it fully matched.
    fn eval_rule(&mut self, rule: &CRule) -> bool {
        self.settle_folds();
        self.current_rule = rule.hot.id();
        let mut msg = RuleMsg::new(rule.hot.id());
        if rule.hot.has_condition() {
            if let Some(cond) = &rule.condition {
                let m = self.eval_condition(cond);
                return self.finish_condition_rule(rule, m, &mut msg);
            }
        }
        if !rule.hot.has_operator() {
            self.eval_unconditional(rule, &mut msg);
            return true;
        }
        let matched = self.eval_link(rule, rule, &mut msg);
        self.finish_operator_rule(rule, matched, &msg);
        matched
    }

    /// Cloudflare-style boolean rule (no ModSecurity equivalent): the whole condition
    /// decides, then the rule acts once, like a chain whose last link matched.
    pub(crate) fn finish_condition_rule(
        &mut self,
        rule: &CRule,
        matched: bool,
        msg: &mut RuleMsg,
    ) -> bool {
        if !matched {
            self.forget_matched();
            return false;
        }
        self.run_setvars(&rule.actions);
        self.after_full_match(&rule.actions, msg);
        if msg.save {
            self.log(msg);
        }
        true
    }

    /// `RuleUnconditional::evaluate`.
    pub(crate) fn eval_unconditional(&mut self, rule: &CRule, msg: &mut RuleMsg) {
        self.run_setvars(&rule.actions);
        self.after_full_match(&rule.actions, msg);
        let has_msg = rule.actions.msg.is_some();
        if (rule.actions.contains_block || (msg.save && has_msg)) && !rule.actions.multi_match {
            self.log(msg);
        }
    }

    /// After the first link returned: a matched rule logs unless `nolog` won (multiMatch
    /// rules logged per value already).
    pub(crate) fn finish_operator_rule(&mut self, rule: &CRule, matched: bool, msg: &RuleMsg) {
        if matched && msg.save && !rule.actions.multi_match {
            self.log(msg);
        }
    }

    fn log(&mut self, msg: &RuleMsg) {
        if let Some(id) = msg.root_id {
            if !self.matched_ids.contains(&id) {
                self.matched_ids.push(id);
            }
        }
    }

    /// `RuleWithOperator::evaluate` for one link.
    fn eval_link(&mut self, root: &CRule, link: &CRule, msg: &mut RuleMsg) -> bool {
        if !link.hot.has_operator() {
            return true;
        }
        let global = self.link_targets_match(root, link, msg);
        self.link_finish(root, link, global, msg)
    }

    /// A link's operator over all its targets (with the per-value actions of a match);
    /// whether any value matched.
    #[inline]
    fn link_targets_match(&mut self, root: &CRule, link: &CRule, msg: &mut RuleMsg) -> bool {
        if !link.updated {
            // No `SecRuleUpdateTargetBy*` selects this rule: its own lists, no allocation.
            let expanded_arg =
                if link.hot.needs_expansion() { self.link_expansion(link) } else { None };
            let mut global = false;
            let mask = link.hot.mask_valid();
            for (i, t) in link.targets.iter().enumerate() {
                // A target the link's own exclusions name whole reads nothing.
                if mask && link.hot.excluded_targets & (1 << i) != 0 {
                    continue;
                }
                let ex = if mask {
                    Excl::OwnChecked(&link.exclusions)
                } else {
                    Excl::Own(&link.exclusions)
                };
                let sid = link.hot.source(i, t);
                if self.link_target_from(root, link, t, sid, ex, expanded_arg.as_deref(), msg) {
                    global = true;
                }
            }
            return global;
        }
        let (targets, exclusions) = link_targets(self.rs, root, link);
        let expanded_arg = self.link_expansion(link);
        let mut global = false;
        for t in targets {
            if self.link_target(
                root,
                link,
                t,
                Excl::Refs(&exclusions),
                expanded_arg.as_deref(),
                msg,
            ) {
                global = true;
            }
        }
        global
    }

    /// After a link's targets: its chain, then its actions after a full match.
    fn link_finish(&mut self, root: &CRule, link: &CRule, global: bool, msg: &mut RuleMsg) -> bool {
        if !self.link_end(link, global) {
            return false;
        }
        if link.actions.chained {
            if let Some(child) = &link.chain {
                if !self.eval_link(root, child, msg) {
                    return false;
                }
            }
        }
        self.after_full_match(&link.actions, msg);
        true
    }

    /// The operator argument after macro expansion, computed once per link before any
    /// target is read (as v3 does), or `None` when it has no macro.
    pub(crate) fn link_expansion(&self, link: &CRule) -> Option<Vec<u8>> {
        let (_, op, o) = link.operator.as_ref()?;
        if op.needs_expansion() { operator_macro(&o.kind).map(|m| self.expand(m)) } else { None }
    }

    /// A link's operator against every value of one target (after exclusions and
    /// transformations). Captures, MATCHED_VAR(S) and the link's setvars happen per matching
    /// value, as in v3. Returns whether any value matched.
    pub(crate) fn link_target(
        &mut self,
        root: &CRule,
        link: &CRule,
        t: &CTarget,
        exclusions: Excl<'_>,
        expanded_arg: Option<&[u8]>,
        msg: &mut RuleMsg,
    ) -> bool {
        self.link_target_from(root, link, t, t.source, exclusions, expanded_arg, msg)
    }

    /// [`Transaction::link_target`] with the target's value source given (`t.source`, or
    /// its copy in [`super::compile::LinkHot`]): over a source, the target itself (a few
    /// hundred bytes apart from the next) is not read unless a removal names targets.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn link_target_from(
        &mut self,
        root: &CRule,
        link: &CRule,
        t: &CTarget,
        source: Option<u32>,
        exclusions: Excl<'_>,
        expanded_arg: Option<&[u8]>,
        msg: &mut RuleMsg,
    ) -> bool {
        if !link.hot.has_operator() {
            return false;
        }
        let rule_id = root.hot.id();
        // `OwnChecked`: the caller already skipped targets the exclusions name whole.
        if !matches!(exclusions, Excl::OwnChecked(_) | Excl::RefsChecked(_))
            && exclusions.any(|e| e.full_name == t.full_name)
        {
            return false;
        }
        if self.targets_removed() && self.target_removed(rule_id, root, &t.full_name) {
            return false;
        }
        if let Some(sid) = source {
            let hit = if link.hot.multi_match() {
                self.link_target_source_multi(root, link, sid, expanded_arg, msg)
            } else {
                self.link_target_source(root, link, sid, expanded_arg)
            };
            if let Some(hit) = hit {
                return hit;
            }
        }
        if let Some(hit) = self.link_target_key(link, t, &exclusions, expanded_arg) {
            return hit;
        }
        if link.operator.is_none() {
            return false;
        }
        let mut any = false;
        let mut values = std::mem::take(&mut self.bufs.values);
        values.clear();
        self.collect_values(t, &mut values);
        let mut variants = recycle_cows(std::mem::take(&mut self.bufs.multi.variants));
        for (name, value) in values.iter() {
            if exclusions.any(|e| excludes(e, name)) {
                continue;
            }
            if self.target_removed(rule_id, root, name) {
                continue;
            }
            let single;
            let vs: &[Cow<'_, [u8]>] = if link.actions.multi_match {
                variants.clear();
                self.transform_variants(link, value, &mut variants);
                &variants
            } else {
                single = [self.transform_one(link, value)];
                &single
            };
            any |= self.try_values(link, name, vs, expanded_arg, msg).0;
        }
        self.bufs.multi.variants = recycle_cows(variants);
        self.bufs.values = values;
        any
    }

    /// The link's operator on each of `vs` (a value of `name`, or what a `multiMatch` chain's
    /// steps left of it), with the per-value actions of each match: whether any matched, and
    /// whether every run answered "no match" (none stopped at the match limit).
    fn try_values(
        &mut self,
        link: &CRule,
        name: &str,
        vs: &[Cow<'_, [u8]>],
        expanded_arg: Option<&[u8]>,
        msg: &mut RuleMsg,
    ) -> (bool, bool) {
        let Some((negated, op, _)) = &link.operator else {
            return (false, true);
        };
        let (mut any, mut missed) = (false, true);
        for v in vs {
            self.bufs.captures.clear();
            // A value without the regex's required literals: "no match" without the run. The
            // verdict is the one the run gives (a run stopped at the match limit is no match).
            if link.value_filter.as_ref().is_some_and(|f| !f.may_match(v)) {
                continue;
            }
            let caps = if link.actions.capture { Some(&mut self.bufs.captures) } else { None };
            let r = op.matches(v, expanded_arg, caps);
            missed &= matches!(r, Ok(false));
            if !verdict(r, *negated) {
                continue;
            }
            self.bufs.matched_vars.push_pair(name, v);
            self.after_value_match(link, *negated);
            if link.actions.multi_match && msg.save {
                self.log(msg);
            }
            any = true;
        }
        (any, missed)
    }

    /// `link_target` of a `multiMatch` link over the source of its raw values: each value's
    /// chain steps run and the operator tries every value they leave, as in the general path,
    /// except for a value whose bytes the memo knows no step matched ([`CRule::verdict`]).
    /// `None` when the source cannot be cached.
    fn link_target_source_multi(
        &mut self,
        root: &CRule,
        link: &CRule,
        sid: u32,
        expanded_arg: Option<&[u8]>,
        msg: &mut RuleMsg,
    ) -> Option<bool> {
        let rs = self.rs;
        let range = self.sources.list(sid, &rs.sources, &self.data)?;
        let rule_id = root.hot.id();
        let check_removed = self.targets_removed();
        // The values to try (copied out, as the general path copies them), with their
        // entries to note a verdict on.
        let mut values = std::mem::take(&mut self.bufs.values);
        values.clear();
        let mut entries = std::mem::take(&mut self.bufs.multi.entries);
        entries.clear();
        for i in range {
            if check_removed && self.target_removed(rule_id, root, self.sources.name(i, &self.data))
            {
                continue;
            }
            if link.verdict().is_some_and(|v| self.sources.known_verdict(i, v) == Some(false)) {
                continue;
            }
            values.push_pair(self.sources.name(i, &self.data), self.sources.value(i));
            entries.push(i);
        }
        let mut any = false;
        let mut variants = recycle_cows(std::mem::take(&mut self.bufs.multi.variants));
        for ((name, value), &i) in values.iter().zip(&entries) {
            variants.clear();
            self.transform_variants(link, value, &mut variants);
            let (hit, missed) = self.try_values(link, name, &variants, expanded_arg, msg);
            any |= hit;
            if let (true, Some(v)) = (missed, link.verdict()) {
                self.sources.note_verdict(i, v, false);
            }
        }
        self.bufs.multi.variants = recycle_cows(variants);
        self.bufs.multi.entries = entries;
        self.bufs.values = values;
        Some(any)
    }

    /// `link_target` over a shared value source: values read, filtered and transformed once
    /// per request; `@rx` skipped where the prefilter proves it cannot match. `None` when
    /// the source cannot be cached (memory bound): the caller reads the values itself.
    fn link_target_source(
        &mut self,
        root: &CRule,
        link: &CRule,
        sid: u32,
        expanded_arg: Option<&[u8]>,
    ) -> Option<bool> {
        let negated = link.hot.negated();
        let rs = self.rs;
        let range = self.sources.list(sid, &rs.sources, &self.data)?;
        let rule_id = root.hot.id();
        let check_removed = self.targets_removed();
        let want_captures = link.hot.capture();
        let verdict_no = link.verdict();
        let mut any = false;
        for i in range {
            if check_removed && self.target_removed(rule_id, root, self.sources.name(i, &self.data))
            {
                continue;
            }
            // What the value memo knows: the prefilter's answer and a verdict kept from an
            // earlier run on the same bytes (a match only when no captures are wanted).
            let (possible, known) = match (link.rx_slot(), verdict_no) {
                (Some(slot), v) => {
                    let p = self.sources.may_match(i, slot, &rs.sources.prefilter);
                    let hit = p && !want_captures;
                    (p, v.filter(|_| hit).and_then(|v| self.sources.known_verdict(i, v)))
                }
                (None, Some(v)) => match self.sources.known_verdict(i, v) {
                    Some(false) => (false, None),
                    Some(true) if want_captures => (true, None),
                    k => (true, k),
                },
                (None, None) => (true, None),
            };
            // The operator (lines further into the rule) is read only for a value it may
            // match and the memo does not know.
            let r = if let Some(k) = known {
                Ok(k)
            } else if !possible {
                Ok(false)
            } else if let Some((_, op, _)) = &link.operator {
                self.bufs.captures.clear();
                let caps = if want_captures { Some(&mut self.bufs.captures) } else { None };
                let r = op.matches(self.sources.value(i), expanded_arg, caps);
                if let (Some(v), Ok(hit)) = (verdict_no, &r) {
                    self.sources.note_verdict(i, v, *hit);
                }
                r
            } else {
                Ok(false)
            };
            if !verdict(r, negated) {
                continue;
            }
            self.bufs
                .matched_vars
                .push_pair(self.sources.name(i, &self.data), self.sources.value(i));
            self.after_value_match(link, negated);
            any = true;
        }
        Some(any)
    }

    /// `link_target` for one literal key of TX (or another persistent collection), the shape
    /// of CRS's paranoia-level gates and score checks: the value is tested where it lies
    /// and copied only when it matches. `None` where the general path is needed (exclusions,
    /// removed targets, captures, `multiMatch`, counts, a transformation cache).
    fn link_target_key(
        &mut self,
        link: &CRule,
        t: &CTarget,
        exclusions: &Excl<'_>,
        expanded_arg: Option<&[u8]>,
    ) -> Option<bool> {
        let Some(Selector::Key(key)) = &t.target.selector else { return None };
        if t.target.count
            || link.hot.multi_match()
            || link.hot.capture()
            || !exclusions.is_empty()
            || self.targets_removed()
            || self.transform_cache.is_some()
        {
            return None;
        }
        let (negated, op, _) = link.operator.as_ref()?;
        let var = t.target.variable;
        let h = t.key_hash.unwrap_or_else(|| ci_hash(key));
        // Taken out while the key is borrowed from the collection, put back below.
        let mut matched_vars = std::mem::take(&mut self.bufs.matched_vars);
        let hit = self.collection_of(var).map(|c| {
            let Some((k, v)) = c.get_entry_h(key, h) else { return false };
            let tv = transform::apply_chain(&link.actions.chain, v);
            let hit = verdict(op.matches(&tv, expanded_arg, None), *negated);
            if hit {
                matched_vars.push_var(var.name(), k, &tv);
            }
            hit
        });
        self.bufs.matched_vars = matched_vars;
        if hit == Some(true) {
            self.after_value_match(link, *negated);
        }
        hit
    }

    /// A value of a link matched (and is already in MATCHED_VARS): captures go to TX.0-9,
    /// then the link's setvars run, once per matching value as in v3.
    fn after_value_match(&mut self, link: &CRule, negated: bool) {
        if link.actions.capture && !negated {
            // TX.0-TX.9 exist after the first capture: their buffers are reused.
            let hashes = capture_key_hashes();
            let groups = self.bufs.captures.groups();
            for ((k, h), c) in CAPTURE_KEYS.iter().zip(hashes).zip(groups) {
                self.tx.set_bytes_h(k, *h, c);
            }
            // The setvars that follow read `%{tx.0}`.. from the groups themselves, which
            // hold the same bytes, until one of them may write such a key.
            self.captured = true;
            self.run_setvars(&link.actions);
            self.captured = false;
            return;
        }
        self.run_setvars(&link.actions);
    }

    /// `%{tx.<digit>}` while the link's captures are still what TX holds under that key
    /// ([`Transaction::captured`]): the group's bytes, without a lookup in TX.
    #[inline]
    fn captured_group(&self, var: Variable, key: &str) -> Option<&[u8]> {
        if !self.captured || var != Variable::Tx {
            return None;
        }
        match key.as_bytes() {
            // A group past the last one (or past TX.9) is not the capture's: TX is read.
            &[d] if d.is_ascii_digit() => {
                self.bufs.captures.groups().get(usize::from(d - b'0')).map(Vec::as_slice)
            }
            _ => None,
        }
    }

    /// After all targets of a link: whether to go on to its chain (or its actions).
    /// A link that matched nothing forgets MATCHED_VAR(S); a `chain` without a next rule
    /// never matches.
    pub(crate) fn link_end(&mut self, link: &CRule, matched: bool) -> bool {
        if !matched {
            self.forget_matched();
            return false;
        }
        !(link.actions.chained && link.chain.is_none())
    }

    fn eval_condition(&mut self, c: &CCondition) -> bool {
        match c {
            CCondition::All(v) => v.iter().all(|c| self.eval_condition(c)),
            CCondition::Any(v) => v.iter().any(|c| self.eval_condition(c)),
            CCondition::Not(c) => !self.eval_condition(c),
            CCondition::Clause(cl) => self.eval_clause(cl),
        }
    }

    /// A clause matches when its operator (negation applied per value, as `!@op` does)
    /// matches any value of its targets after the clause's transformations.
    pub(crate) fn eval_clause(&mut self, cl: &CClause) -> bool {
        let expanded_arg = if cl.op.needs_expansion() {
            operator_macro(&cl.operator.kind).map(|m| self.expand(m))
        } else {
            None
        };
        let mut values = ValueBuf::default();
        for t in &cl.targets {
            values.clear();
            self.collect_values(t, &mut values);
            for (name, value) in values.iter() {
                if cl.exclusions.iter().any(|e| excludes(e, name)) {
                    continue;
                }
                let v = transform::apply_chain(&cl.transformations, value);
                if verdict(cl.op.matches(&v, expanded_arg.as_deref(), None), cl.negated) {
                    self.bufs.matched_vars.push_pair(name, &v);
                    return true;
                }
            }
        }
        false
    }

    fn removals_mut(&mut self) -> &mut Removals {
        self.removals.get_or_insert_with(Box::default)
    }

    /// A `ctl:ruleRemoveTargetBy*` ran in this transaction.
    #[inline]
    fn targets_removed(&self) -> bool {
        self.removals
            .as_ref()
            .is_some_and(|r| !(r.target_by_id.is_empty() && r.target_by_tag.is_empty()))
    }

    #[inline]
    fn target_removed(&self, rule_id: Option<u64>, root: &CRule, name: &str) -> bool {
        let Some(r) = &self.removals else { return false };
        if let Some(id) = rule_id {
            if r.target_by_id.iter().any(|(r, n)| r.contains(id) && n == name) {
                return true;
            }
        }
        r.target_by_tag.iter().any(|(t, n)| n == name && root.contains_tag(t))
    }

    /// The value a (non-`multiMatch`) rule sees after its transformations.
    fn transform_one<'v>(&mut self, link: &CRule, value: &'v [u8]) -> Cow<'v, [u8]> {
        let chain = &link.actions.chain;
        if let Some(cache) = self.transform_cache.as_mut() {
            if !chain.is_empty() {
                return Cow::Owned(cache.apply(chain, value));
            }
        }
        transform::apply_chain(chain, value)
    }

    /// The values a `multiMatch` rule sees: the original and each different intermediate.
    fn transform_variants<'v>(
        &mut self,
        link: &CRule,
        value: &'v [u8],
        out: &mut Vec<Cow<'v, [u8]>>,
    ) {
        out.push(Cow::Borrowed(value));
        // The steps the last variant's bytes prove idle (`transform::identity`), found once
        // per variant when a covered step comes up.
        let mut idle: Option<u64> = None;
        for &t in &link.actions.chain {
            // Each step runs on the last variant (the value as the steps so far left it).
            // v3 compares a step's output with its input: a step that only cuts the value
            // down (a trim, a failed decode's empty output: borrowed sub-slices) changed it.
            let next = {
                let cur = out.last().map_or(value, |c| c.as_ref());
                let bit = 1u64 << (t as u32);
                if transform::identity::COVERED & bit != 0
                    && *idle.get_or_insert_with(|| transform::identity::unchanged(cur)) & bit != 0
                {
                    continue;
                }
                match transform::apply(t, cur) {
                    // Usually the input itself: the same bytes, no comparison needed.
                    Cow::Borrowed(b) if std::ptr::eq(b, cur) || b == cur => None,
                    Cow::Borrowed(b) => Some(b.to_vec()),
                    Cow::Owned(o) if o.as_slice() == cur => None,
                    Cow::Owned(o) => Some(o),
                }
            };
            if let Some(o) = next {
                out.push(Cow::Owned(o));
                idle = None;
            }
        }
    }

    fn run_setvars(&mut self, a: &CActions) {
        if a.setvars.is_empty() {
            return;
        }
        // Expanded into buffers kept across setvars (and transactions): no allocation per
        // macro.
        let (mut kbuf, mut vbuf) = std::mem::take(&mut self.bufs.setvar_bufs);
        for (k, sv) in a.setvars.iter().enumerate() {
            let key_bytes = self.expand_in(&sv.key, &mut kbuf);
            let key = crate::txn::utf8_lossy(key_bytes);
            let h = a.setvar_key_hash.get(k).copied().flatten().unwrap_or_else(|| ci_hash(&key));
            let coll = lower(&sv.collection);
            // This one writes (or deletes) a TX key a capture set: from here on `%{tx.<digit>}`
            // reads TX again, which until the write below holds the groups' bytes too.
            if self.captured && coll == "tx" && matches!(key.as_bytes(), [d] if d.is_ascii_digit())
            {
                self.captured = false;
            }
            let mut digits = [0u8; 20];
            let value: &[u8] = match sv.op {
                SetVarOp::Set => self.expand_in(&sv.value, &mut vbuf),
                SetVarOp::Create => b"1",
                SetVarOp::Delete => {
                    if let Some(c) = self.collection_mut(&coll) {
                        c.remove(&key);
                    }
                    continue;
                }
                SetVarOp::Add | SetVarOp::Sub => {
                    let pre = stoi(self.expand_in(&sv.value, &mut vbuf));
                    let cur = self
                        .collection(&coll)
                        .and_then(|c| c.position_h(&key, h).map(|i| stoi(c.value(i))))
                        .unwrap_or(0);
                    let n = if sv.op == SetVarOp::Add { cur + pre } else { cur - pre };
                    decimal(n, &mut digits)
                }
            };
            if let Some(c) = self.collection_mut(&coll) {
                c.set_bytes_h(&key, h, value);
            }
        }
        self.bufs.setvar_bufs = (kbuf, vbuf);
    }

    /// `executeActionsAfterFullMatch`.
    pub(crate) fn after_full_match(&mut self, a: &CActions, msg: &mut RuleMsg) {
        let defaults = &self.rs.defaults[a.phase as usize - 1];
        for d in &defaults.runtime {
            self.exec_action(d, a, msg);
        }
        if let Some(s) = a.severity {
            self.highest_severity = self.highest_severity.min(s as u8);
        }
        for r in &a.runtime {
            self.exec_action(r, a, msg);
        }
        if let Some(d) = &a.disruptive {
            if self.engine == EngineMode::On {
                self.exec_disruptive(d, msg);
            }
        }
    }

    fn exec_action(&mut self, action: &Action, a: &CActions, msg: &mut RuleMsg) {
        match action {
            Action::Log | Action::AuditLog => msg.save = true,
            Action::NoLog | Action::NoAuditLog => msg.save = false,
            Action::Status(s) => self.it.status = *s,
            Action::Skip(n) => self.skip_next = *n,
            Action::SkipAfter(m) => {
                self.marker.clear();
                self.marker.push_str(m);
                self.marker_pending = true;
            }
            Action::Ctl(c) => self.exec_ctl(c),
            Action::Block => {
                // Block::evaluate: the phase's default disruptive action, evaluated directly.
                if let Some(d) = self.rs.defaults[a.phase as usize - 1].disruptive.clone() {
                    self.exec_disruptive(&d, msg);
                }
            }
            Action::SetEnv { name, value } => {
                let n = String::from_utf8_lossy(&self.expand(name)).into_owned();
                let v = self.expand(value);
                self.persistent_mut().env.set(&n, &v);
            }
            // Persistent collections are per transaction here (see the module docs of
            // `eval`); initcol/expirevar/deprecatevar/setuid/setsid/setrsc need no work.
            _ => {}
        }
    }

    fn exec_disruptive(&mut self, d: &Action, msg: &mut RuleMsg) {
        match d {
            Action::Deny | Action::Drop => {
                if self.it.status == 200 {
                    self.it.status = 403;
                }
                self.it.disruptive = true;
                msg.disruptive = true;
                self.log(msg);
            }
            Action::Redirect(_) | Action::Proxy(_) => {
                if !(301..=307).contains(&self.it.status) {
                    self.it.status = 302;
                }
                self.it.disruptive = true;
                msg.disruptive = true;
                self.log(msg);
            }
            Action::Allow(scope) => self.allow = Some(*scope),
            _ => {}
        }
    }

    fn exec_ctl(&mut self, c: &Ctl) {
        match c {
            Ctl::RuleEngine(m) => self.engine = *m,
            Ctl::RequestBodyAccess(b) => {
                self.data.set_request_body_access(*b);
                self.sources.invalidate();
            }
            Ctl::RequestBodyProcessor(p) => {
                if let Some(p) = BodyProcessor::from_name(p) {
                    self.data.set_body_processor(p);
                    self.sources.invalidate();
                }
            }
            Ctl::RuleRemoveById(ids) => self.removals_mut().ids.extend(ids.iter().copied()),
            Ctl::RuleRemoveByTag(t) => self.removals_mut().tags.push(t.clone()),
            Ctl::RuleRemoveTargetById { ids, target } => {
                let r = self.removals_mut();
                for id in ids {
                    r.target_by_id.push((*id, target.to_string()));
                }
            }
            Ctl::RuleRemoveTargetByTag { tag, target } => {
                self.removals_mut().target_by_tag.push((tag.clone(), target.to_string()))
            }
            _ => {}
        }
    }
}

/// Whether an operator result counts as a hit. v3.0.9 treats a match-limit error as "no
/// match" (then negation applies) and does not set MSC_PCRE_LIMITS_EXCEEDED.
fn verdict(r: Result<bool, crate::operator::MatchLimitExceeded>, negated: bool) -> bool {
    match r {
        Ok(m) => m != negated,
        Err(_) => negated,
    }
}

/// A link's exclusions: its own, or a list that adds `SecRuleUpdateTargetBy*` removals.
///
/// A link's own list is held as the `Vec`, not a slice: making the slice reads the list's
/// header, on the rule's second cache line, which a link whose values all fail does not
/// otherwise read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Excl<'a> {
    Own(&'a Vec<CTarget>),
    /// `Own`, for a target already known not to be named whole by them
    /// (`LinkHot::excluded_targets`).
    OwnChecked(&'a Vec<CTarget>),
    Refs(&'a [&'a CTarget]),
    /// `Refs`, for a target already known not to be named whole by them (a Lua link plan's
    /// `named_whole`).
    RefsChecked(&'a [&'a CTarget]),
}

impl Excl<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Excl::Own(v) | Excl::OwnChecked(v) => v.is_empty(),
            Excl::Refs(v) | Excl::RefsChecked(v) => v.is_empty(),
        }
    }
    fn any(&self, f: impl Fn(&CTarget) -> bool) -> bool {
        match self {
            Excl::Own(v) | Excl::OwnChecked(v) => v.iter().any(f),
            Excl::Refs(v) | Excl::RefsChecked(v) => v.iter().any(|e| f(e)),
        }
    }
}

/// A link's targets (its own plus `SecRuleUpdateTargetBy*` additions) and exclusions
/// (its own plus `SecRuleUpdateTargetBy*` removals). Depends on the rule set alone.
pub(crate) fn link_targets<'a>(
    rs: &'a CompiledRuleSet,
    root: &CRule,
    link: &'a CRule,
) -> (Vec<&'a CTarget>, Vec<&'a CTarget>) {
    let updates: Vec<(bool, &CTarget)> = rs
        .target_updates
        .iter()
        .filter(|u| update_selects(u, root))
        .map(|u| (u.exclude, u.target.as_ref()))
        .collect();
    let exclusions: Vec<&CTarget> = link
        .exclusions
        .iter()
        .chain(updates.iter().filter(|(ex, _)| *ex).map(|(_, t)| *t))
        .collect();
    let targets: Vec<&CTarget> =
        link.targets.iter().chain(updates.iter().filter(|(ex, _)| !*ex).map(|(_, t)| *t)).collect();
    (targets, exclusions)
}

impl<'r> Transaction<'r> {
    fn collection(&self, name: &str) -> Option<&Collection<'r>> {
        Some(match name {
            "tx" => &self.tx,
            "ip" => &self.persistent().ip,
            "global" => &self.persistent().global,
            "session" => &self.persistent().session,
            "user" => &self.persistent().user,
            "resource" => &self.persistent().resource,
            _ => return None,
        })
    }
    /// The persistent collections, empty ones when none was written yet.
    fn persistent(&self) -> &Persistent<'r> {
        static NONE: std::sync::OnceLock<Persistent<'static>> = std::sync::OnceLock::new();
        self.persistent.as_deref().unwrap_or_else(|| NONE.get_or_init(Persistent::default))
    }
    fn persistent_mut(&mut self) -> &mut Persistent<'r> {
        self.persistent.get_or_insert_with(Box::default)
    }
    /// The collection behind a variable (TX, IP, ...), without building a name.
    fn collection_of(&self, var: Variable) -> Option<&Collection<'r>> {
        Some(match var {
            Variable::Tx => &self.tx,
            Variable::Ip => &self.persistent().ip,
            Variable::Global => &self.persistent().global,
            Variable::Session => &self.persistent().session,
            Variable::User => &self.persistent().user,
            Variable::Resource => &self.persistent().resource,
            _ => return None,
        })
    }
    fn collection_mut(&mut self, name: &str) -> Option<&mut Collection<'r>> {
        Some(match name {
            "tx" => &mut self.tx,
            "ip" => &mut self.persistent_mut().ip,
            "global" => &mut self.persistent_mut().global,
            "session" => &mut self.persistent_mut().session,
            "user" => &mut self.persistent_mut().user,
            "resource" => &mut self.persistent_mut().resource,
            _ => return None,
        })
    }

    /// All values of one target, as (MATCHED_VAR_NAME, value) pairs, appended to `out`.
    pub(crate) fn collect_values(&self, t: &CTarget, out: &mut ValueBuf) {
        let var = t.target.variable;
        let start = out.len();
        if is_collection_var(var) {
            if let (Some(c), Some(Selector::Key(key))) =
                (self.collection_of(var), &t.target.selector)
            {
                let h = t.key_hash.unwrap_or_else(|| ci_hash(key));
                if let Some((k, v)) = c.get_entry_h(key, h) {
                    out.push_var(var.name(), k, v);
                }
            } else if let Some(c) = self.collection_of(var) {
                let lines = c.newline_keys;
                let mut from = 0;
                if let (Some(snap), Some(re), Some(Selector::Regex(_)), Variable::Tx) =
                    (self.rs.init.as_ref(), &t.key_regex, &t.target.selector, var)
                {
                    if c.from_snapshot > 0 {
                        // The snapshot's keys lead, in order: their answers were found once.
                        let hits = t.snapshot_hits.get_or_init(|| snap.key_hits(re));
                        for &i in hits.iter() {
                            out.push_var(var.name(), c.key(i as usize), c.value(i as usize));
                        }
                        from = c.from_snapshot;
                    }
                }
                // A literal selector passes over the keys that lack one of its bytes.
                for (k, v) in c.iter_holding(from, t.key_needs) {
                    let keep = match (&t.target.selector, &t.key_regex) {
                        (None, _) => true,
                        (Some(Selector::Key(key)), _) => k.eq_ignore_ascii_case(key),
                        (Some(Selector::Regex(_)), Some(re)) => re.is_match_in(k, lines),
                        (Some(Selector::Regex(_)), None) => false,
                    };
                    if keep {
                        out.push_var(var.name(), k, v);
                    }
                }
            }
        } else if let Some(v) = self.scalar_var(var, t) {
            for (n, v) in v {
                out.push_pair(&n, &v);
            }
        } else {
            self.data.for_each(var, t.selector.as_ref(), &mut |v| out.push_pair(&v.name, &v.value));
        }
        if t.target.count {
            let n = out.len() - start;
            out.truncate(start);
            let mut digits = [0u8; 20];
            out.push_pair(var.name(), decimal(n as i64, &mut digits));
        }
    }

    /// Variables the evaluator owns (matched data, rule meta-data, response, environment).
    fn scalar_var(&self, var: Variable, t: &CTarget) -> Option<Vec<(String, Vec<u8>)>> {
        let one = |v: Vec<u8>| Some(vec![(var.name().to_string(), v)]);
        let key = match &t.target.selector {
            Some(Selector::Key(k)) => Some(k.as_str()),
            _ => None,
        };
        match var {
            Variable::MatchedVar => self
                .bufs
                .matched_vars
                .last()
                .map(|(_, v)| vec![(var.name().to_string(), v.to_vec())]),
            Variable::MatchedVarName => self
                .bufs
                .matched_vars
                .last()
                .map(|(n, _)| vec![(var.name().to_string(), n.as_bytes().to_vec())]),
            Variable::MatchedVars => Some(
                self.bufs
                    .matched_vars
                    .iter()
                    .filter(|(n, _)| key.is_none_or(|k| n.eq_ignore_ascii_case(k)))
                    .map(|(n, v)| (format!("MATCHED_VARS:{n}"), v.to_vec()))
                    .collect(),
            ),
            Variable::MatchedVarsNames => Some(
                self.bufs
                    .matched_vars
                    .iter()
                    .map(|(n, _)| (format!("MATCHED_VARS_NAMES:{n}"), n.as_bytes().to_vec()))
                    .collect(),
            ),
            Variable::Rule => {
                let k = key.unwrap_or("id").to_ascii_lowercase();
                match k.as_str() {
                    "id" => self
                        .current_rule
                        .map(|i| vec![("RULE:id".into(), i.to_string().into_bytes())]),
                    _ => Some(Vec::new()),
                }
            }
            Variable::HighestSeverity => one(self.highest_severity.to_string().into_bytes()),
            Variable::Env => Some(
                self.persistent()
                    .env
                    .iter()
                    .filter(|(k, _)| key.is_none_or(|x| k.eq_ignore_ascii_case(x)))
                    .map(|(k, v)| (format!("ENV:{k}"), v.to_vec()))
                    .collect(),
            ),
            // v3 `AnchoredVariable`s: one value in every phase, empty until the connector's
            // step sets it (observed with libmodsecurity3 for each, phases 1, 3, 4 and 5).
            // The response is an empty `200` without headers: status and protocol from
            // phase 3; length and OUTBOUND_DATA_ERROR `0` once the response body phase ran.
            Variable::ResponseStatus if self.phase >= 3 => {
                one(self.response_status.to_string().into_bytes())
            }
            Variable::ResponseProtocol if self.phase >= 3 => one(b"HTTP/1.1".to_vec()),
            Variable::ResponseContentLength | Variable::OutboundDataError
                if self.response_body_done =>
            {
                one(b"0".to_vec())
            }
            Variable::ResponseStatus
            | Variable::ResponseProtocol
            | Variable::ResponseBody
            | Variable::ResponseContentType
            | Variable::ResponseContentLength
            | Variable::OutboundDataError => one(Vec::new()),
            Variable::Duration => one(b"0".to_vec()),
            _ => None,
        }
    }

    /// `m` expanded: its literal when it has no macro, else the expansion written to `buf`.
    fn expand_in<'a>(&self, m: &'a MacroString, buf: &'a mut Vec<u8>) -> &'a [u8] {
        match m.parts.as_slice() {
            [] => b"",
            [MacroPart::Lit(s)] => s.as_bytes(),
            _ => {
                buf.clear();
                self.expand_into(m, buf);
                buf
            }
        }
    }

    pub(crate) fn expand(&self, m: &MacroString) -> Vec<u8> {
        // Room for the literals and a short value: one allocation for most expansions.
        let lits: usize =
            m.parts.iter().map(|p| if let MacroPart::Lit(s) = p { s.len() } else { 0 }).sum();
        let mut out = Vec::with_capacity(lits + 16);
        self.expand_into(m, &mut out);
        out
    }

    /// The first value `t` reads, appended to `out` (nothing when it reads none).
    fn first_value_into(&self, t: &CTarget, out: &mut Vec<u8>) {
        let mut v = ValueBuf::default();
        self.collect_values(t, &mut v);
        if let Some(first) = v.first() {
            out.extend_from_slice(first);
        }
    }

    /// Macro expansion (`RunTimeString::evaluate`), appended to `out`: the first value of each
    /// variable, or nothing when it has none.
    fn expand_into(&self, m: &MacroString, out: &mut Vec<u8>) {
        for p in &m.parts {
            match p {
                MacroPart::Lit(s) => out.extend_from_slice(s.as_bytes()),
                MacroPart::Var { var, key: Some(key) }
                    if is_collection_var(*var) && regex_key(*var, key).is_none() =>
                {
                    if let Some(g) = self.captured_group(*var, key) {
                        out.extend_from_slice(g);
                        continue;
                    }
                    // `%{tx.name}`: the first (only) value under that key, read directly.
                    if let Some(v) = self.collection_of(*var).and_then(|c| c.get(key)) {
                        out.extend_from_slice(v);
                    }
                }
                MacroPart::Var { var, key } => {
                    // `%{ARGS:/^x/}` and `%{TX:/^x/}` select by regex, as in a target (v3
                    // expands the macro to the first such value, in the order the values
                    // were added; for TX, case-insensitive like v3's `VariableRegex`). The
                    // regex is compiled once per rule set, not per expansion.
                    if let Some(re) = key.as_deref().and_then(|k| regex_key(*var, k)) {
                        let t = self.rs.macro_targets.get(*var, re);
                        self.first_value_into(&t, out);
                        continue;
                    }
                    if key.is_none() && self.first_plain_into(*var, out) {
                        continue;
                    }
                    let t = macro_target(*var, key.as_ref().map(|k| Selector::Key(k.clone())));
                    self.first_value_into(&t, out);
                }
            }
        }
    }

    /// `%{VAR}` for the variables CRS's setvars and `initcol`s name on every request
    /// (`MATCHED_VAR`, `REMOTE_ADDR`, ...), read straight into `out`: the general path builds
    /// a target and a value buffer for one value, some fifty lines of code a cold decision
    /// fetched. False for any other variable (the general path then runs); the request's
    /// variables here are those [`Transaction::scalar_var`] leaves to the request data.
    fn first_plain_into(&self, var: Variable, out: &mut Vec<u8>) -> bool {
        match var {
            Variable::MatchedVar => {
                if let Some((_, v)) = self.bufs.matched_vars.last() {
                    out.extend_from_slice(v);
                }
            }
            Variable::MatchedVarName => {
                if let Some((n, _)) = self.bufs.matched_vars.last() {
                    out.extend_from_slice(n.as_bytes());
                }
            }
            Variable::RemoteAddr
            | Variable::RemotePort
            | Variable::RemoteHost
            | Variable::RequestMethod
            | Variable::RequestUri
            | Variable::RequestUriRaw
            | Variable::RequestFilename
            | Variable::RequestBasename
            | Variable::RequestLine
            | Variable::RequestProtocol
            | Variable::QueryString
            | Variable::ServerAddr
            | Variable::ServerName
            | Variable::ServerPort => {
                let mut first = true;
                self.data.for_each(var, None, &mut |v| {
                    if std::mem::take(&mut first) {
                        out.extend_from_slice(&v.value);
                    }
                });
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod collection_tests {
    use super::Collection;

    fn pairs(c: &Collection<'_>) -> Vec<(String, Vec<u8>)> {
        c.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect()
    }

    /// A `/^lit/` selector must also try after each newline of a key: the collection says
    /// whether any key it holds has one, and forgets it when cleared.
    #[test]
    fn collections_know_whether_a_key_spans_lines() {
        use crate::eval::compile::KeyRegex;
        let re = KeyRegex::new("^header_name_").unwrap();
        let mut c = Collection::default();
        c.set("anomaly_score", b"0");
        assert!(!c.newline_keys);
        c.set("Jar*j", b"2");
        assert!(!c.newline_keys, "bytes that share the newline's bit are not one");
        c.set("x\nheader_name_host", b"1");
        assert!(c.newline_keys);
        let hits: Vec<&str> =
            c.iter().filter(|(k, _)| re.is_match_in(k, c.newline_keys)).map(|(k, _)| k).collect();
        assert_eq!(hits, ["x\nheader_name_host"]);
        let mut copy = Collection::default();
        copy.clone_from(&c);
        assert!(copy.newline_keys);
        c.clear_within(1 << 20);
        assert!(!c.newline_keys);
    }

    /// Values that shrink, grow and are removed keep insertion order and case-insensitive
    /// lookup, through compactions; equality ignores where the bytes sit.
    #[test]
    fn arenas_keep_order_and_values_through_rewrites() {
        let mut c = Collection::default();
        c.set("Anomaly_Score", b"0");
        c.set("allowed_methods", b"GET HEAD POST OPTIONS");
        c.set("x", b"1");
        c.set("ANOMALY_SCORE", b"5");
        c.set("allowed_methods", b"GET");
        assert_eq!(c.get("anomaly_score"), Some(&b"5"[..]));
        assert_eq!(c.get("ALLOWED_METHODS"), Some(&b"GET"[..]));
        // Grows past its old room 10,000 times: appended each time, compacted on the way.
        for n in 0..10_000u32 {
            c.set("x", n.to_string().repeat(4).as_bytes());
        }
        assert_eq!(c.get("x"), Some("9999".repeat(4).as_bytes()));
        assert!(c.values.len() + c.keys.len() < 3 * 4096 + 64, "dead bytes reclaimed");
        c.remove("ALLOWED_methods");
        assert_eq!(c.get("allowed_methods"), None);
        c.set("late", b"v");
        let want: Vec<(String, Vec<u8>)> = vec![
            ("Anomaly_Score".into(), b"5".to_vec()),
            ("x".into(), "9999".repeat(4).into_bytes()),
            ("late".into(), b"v".to_vec()),
        ];
        assert_eq!(pairs(&c), want);
        let mut fresh = Collection::default();
        for (k, v) in &want {
            fresh.set(k, v);
        }
        assert!(c == fresh);
        fresh.set("late", b"w");
        assert!(c != fresh);
        let mut copy = Collection::default();
        copy.clone_from(&c);
        assert!(copy == c);
        assert_eq!(copy.get("anomaly_score"), Some(&b"5"[..]));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(usize, Vec<u8>),
        Remove(usize),
    }

    /// Keys the operations draw from: the base's own, in other cases, and new ones.
    const KEYS: [&str; 8] =
        ["score", "SCORE", "allowed", "late", "x\nheader_name_a", "Late", "y", "z"];

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0..KEYS.len(), proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(k, v)| Op::Set(k, v)),
            // Long values, rewritten, leave enough dead bytes for a compaction.
            2 => (0..KEYS.len(), any::<u8>(), 1000..3000usize).prop_map(|(k, b, n)| Op::Set(k, vec![b; n])),
            1 => (0..KEYS.len()).prop_map(Op::Remove),
        ]
    }

    fn apply(c: &mut Collection<'_>, op: &Op) {
        match op {
            Op::Set(k, v) => c.set(KEYS[*k], v),
            Op::Remove(k) => c.remove(KEYS[*k]),
        }
    }

    proptest::proptest! {
        /// A collection started from a base (sharing its bytes and index) reads, writes and
        /// removes as a full copy of the base does, and leaves the base as it was.
        #[test]
        fn a_collection_on_a_base_acts_as_a_copy(
            base_values in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12), 3),
            ops in proptest::collection::vec(op(), 0..60),
        ) {
            let mut base: Collection<'static> = Collection::default();
            for (k, v) in ["score", "allowed", "x\nheader_name_a"].iter().zip(&base_values) {
                base.set(k, v);
            }
            base.from_snapshot = base.entries.len();
            let before = pairs(&base);
            let slots = base.shared_slots();
            let mut shared = Collection::default();
            shared.set("stale", b"left from an earlier transaction");
            shared.start_from(&base, &slots);
            let mut copy = base.clone();
            proptest::prop_assert!(shared == copy);
            proptest::prop_assert!(shared.newline_keys);
            for op in &ops {
                apply(&mut shared, op);
                apply(&mut copy, op);
                proptest::prop_assert_eq!(pairs(&shared), pairs(&copy));
                for k in KEYS {
                    proptest::prop_assert_eq!(shared.get(k), copy.get(k), "{}", k);
                }
                proptest::prop_assert_eq!(shared.from_snapshot, copy.from_snapshot);
            }
            proptest::prop_assert_eq!(pairs(&base), before);
            let own = shared.clone().detached();
            proptest::prop_assert!(own.base.is_none());
            proptest::prop_assert_eq!(pairs(&own), pairs(&copy));
            proptest::prop_assert_eq!(own.get("score"), copy.get("score"));
            let kept = shared.recycle(1 << 16);
            proptest::prop_assert!(kept.is_empty() && kept.base.is_none());
        }
    }
}

#[cfg(test)]
mod value_buf_tests {
    use super::ValueBuf;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Pair(String, Vec<u8>),
        Var(String, String, Vec<u8>),
        Truncate(usize),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => ("[a-zé:]{0,6}", prop::collection::vec(any::<u8>(), 0..6))
                .prop_map(|(n, v)| Op::Pair(n, v)),
            2 => ("[A-Z]{1,4}", "[a-z]{0,4}", prop::collection::vec(any::<u8>(), 0..6))
                .prop_map(|(a, k, v)| Op::Var(a, k, v)),
            2 => (0usize..8).prop_map(Op::Truncate),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        /// The buffer holds what a list of owned pairs would, through pushes, truncations
        /// and clears, and a copy holds the same.
        #[test]
        fn acts_as_a_list_of_pairs(ops in prop::collection::vec(op(), 0..40)) {
            let mut b = ValueBuf::default();
            let mut model: Vec<(String, Vec<u8>)> = Vec::new();
            for o in ops {
                match o {
                    Op::Pair(n, v) => {
                        b.push_pair(&n, &v);
                        model.push((n, v));
                    }
                    Op::Var(a, k, v) => {
                        b.push_var(&a, &k, &v);
                        model.push((format!("{a}:{k}"), v));
                    }
                    Op::Truncate(n) => {
                        b.truncate(n);
                        model.truncate(n);
                    }
                    Op::Clear => {
                        b.clear();
                        model.clear();
                    }
                }
                let got: Vec<(String, Vec<u8>)> =
                    b.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect();
                prop_assert_eq!(&got, &model);
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(b.last(), model.last().map(|(n, v)| (n.as_str(), v.as_slice())));
                prop_assert_eq!(b.first(), model.first().map(|(_, v)| v.as_slice()));
            }
            let mut c = ValueBuf::default();
            c.push_pair("stale", b"x");
            c.copy_from(&b);
            prop_assert_eq!(&c, &b);
        }
    }
}

#[cfg(test)]
mod multi_bufs_tests {
    use super::recycle_cows;
    use std::borrow::Cow;

    /// The pooled variants vector keeps its allocation through both lifetime changes, and
    /// comes back empty whatever it held.
    #[test]
    fn recycled_variants_keep_their_allocation() {
        let pooled: Vec<Cow<'static, [u8]>> = Vec::with_capacity(8);
        let at = pooled.as_ptr() as usize;
        let owned = b"abc".to_vec();
        let mut v: Vec<Cow<'_, [u8]>> = recycle_cows(pooled);
        assert_eq!(v.as_ptr() as usize, at);
        v.push(Cow::Borrowed(&owned));
        v.push(Cow::Owned(b"def".to_vec()));
        let back: Vec<Cow<'static, [u8]>> = recycle_cows(v);
        assert!(back.is_empty());
        assert_eq!(back.as_ptr() as usize, at);
        assert!(back.capacity() >= 8);
    }
}

#[cfg(test)]
mod plain_macro_tests {
    use super::{Transaction, macro_target};
    use crate::eval::compile::{CompileOptions, CompiledRuleSet};
    use crate::ir::Variable;
    use crate::request::Request;

    /// The direct `%{VAR}` reads give what the general path (a target, a value buffer) gives,
    /// before and after something matched, on a request with every part set.
    #[test]
    fn plain_macros_read_what_the_general_path_reads() {
        let set =
            crate::seclang::parse_str("SecRuleEngine On\nSecAction \"id:1,phase:1,pass\"\n", "t")
                .unwrap();
        let rs = CompiledRuleSet::compile_with(&set, CompileOptions::default()).unwrap();
        let r = Request {
            method: "PATCH".into(),
            uri: b"/shop/a%20b/item.php?x=1&y=%41".to_vec(),
            headers: vec![("Host".into(), "shop.example:8443".into())],
            client_ip: "203.0.113.9".into(),
            client_port: 40123,
            server_ip: "192.0.2.1".into(),
            server_port: 8443,
            ..Request::default()
        };
        let vars = [
            Variable::MatchedVar,
            Variable::MatchedVarName,
            Variable::RemoteAddr,
            Variable::RemotePort,
            Variable::RemoteHost,
            Variable::RequestMethod,
            Variable::RequestUri,
            Variable::RequestUriRaw,
            Variable::RequestFilename,
            Variable::RequestBasename,
            Variable::RequestLine,
            Variable::RequestProtocol,
            Variable::QueryString,
            Variable::ServerAddr,
            Variable::ServerName,
            Variable::ServerPort,
        ];
        let check = |t: &Transaction<'_>, what: &str| {
            let mut non_empty = 0;
            for var in vars {
                let (mut fast, mut general) = (b"<".to_vec(), b"<".to_vec());
                assert!(t.first_plain_into(var, &mut fast), "{var:?} has a direct read");
                t.first_value_into(&macro_target(var, None), &mut general);
                assert_eq!(fast, general, "{var:?} {what}");
                non_empty += usize::from(fast.len() > 1);
            }
            non_empty
        };
        let mut t = Transaction::new(&rs, &r);
        t.run_phases(&r);
        let before = check(&t, "before a match");
        t.bufs.matched_vars.push_pair("ARGS:y", b"A");
        assert_eq!(check(&t, "after a match"), before + 2, "MATCHED_VAR and its name are read");
        assert!(before >= 10, "the request's variables have values ({before})");
        let mut out = Vec::new();
        assert!(!t.first_plain_into(Variable::MatchedVars, &mut out), "left to the general path");
        assert!(!t.first_plain_into(Variable::HighestSeverity, &mut out));
    }
}
