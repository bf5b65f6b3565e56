//! Value sources: each (target, exclusions, transformation chain) read, filtered and
//! transformed once per request, shared by every rule that reads the same thing.
//!
//! CRS reads the same targets through the same chains in dozens of rules (every 941 XSS rule
//! reads `REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|...|ARGS|XML:/*` through
//! `t:utf8toUnicode,t:urlDecodeUni,t:htmlEntityDecode,...`). At compile time each link target
//! over request data gets a source id: equal ids mean equal (target, static exclusions,
//! chain), so equal value lists. Per request, [`SourceCache`] builds a source's list the first
//! time a rule reads it (names and transformed values in two arenas, no allocation per value)
//! and rebuilds it when the request data changed (body processed, `ctl` switched the body
//! processor or access): [`SourceCache::invalidate`].
//!
//! The required literals ([`super::prefilter`]) of every `@rx` sit in one case-insensitive
//! Aho-Corasick automaton ([`Prefilter`]): one scan of a value gives a bit per regex,
//! clear meaning that regex cannot match it. The bits belong to the bytes, not to the chain:
//! a value that a chain leaves unchanged (most benign values, under most chains) shares one
//! transformed-value record, hence one scan, with every other chain that leaves it unchanged.
//!
//! What is not a source (read per rule, as before): evaluator-owned collections (TX, IP, ...),
//! matched data and rule meta-data, `&COUNT` targets, targets added by
//! `SecRuleUpdateTargetBy*`, and `multiMatch` links (they see every intermediate value).

use super::compile::{CTarget, compile_target, excludes, is_collection_var};
use super::prefilter;
use crate::ir::{Transformation, Variable};
use crate::transform;
use crate::txn::RequestData;
use aho_corasick::automaton::Automaton;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Anchored, MatchKind, StartKind, dfa};
use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;

/// Where a link's `@rx` (or `@pm`) sits in the prefilter, and the shortest value it can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxSlot {
    /// A regex's slot, or [`PM_SLOT`] plus the bit of a phrase list in [`PhraseTable`]'s
    /// masks.
    pub slot: u32,
    pub min_len: u32,
}

/// Slots at or past this are `@pm` / `@pmFromFile` phrase lists ([`SourceBuilder::pm_slot`]).
pub const PM_SLOT: u32 = 1 << 31;

/// Phrase lists the prefilter covers: bits 0..62 of a value's mask; bit 63 marks a scanned
/// value (see [`SourceCache::pm_mask`]).
const PM_LISTS: usize = 63;
const PM_SCANNED: u64 = 1 << 63;

/// Bytes of values a transaction reads through the phrase table. Past it, values are taken to
/// hold every list (their `@pm` rules run, as without the table): on large bodies the table
/// finds phrases in most lists anyway, and its pass would come on top of the rules' own.
/// Measured on the 30 largest benign bodies (callgrind): without a budget, instructions
/// +6.0% (native, median); a GET reads a few hundred bytes to a few KB.
const PM_BUDGET: usize = 16 << 10;

impl RxSlot {
    fn pm_bit(self) -> Option<u64> {
        (self.slot & PM_SLOT != 0).then(|| 1u64 << (self.slot & !PM_SLOT))
    }
}

/// The required literals of every `@rx`, whatever its chain: the bits of a value depend on
/// its bytes alone (see the module docs).
#[derive(Debug, Default)]
pub struct Prefilter {
    ac: Option<Literals>,
    /// Per automaton pattern: the slots (regexes) it stands for.
    pattern_slots: Vec<Vec<u32>>,
    /// One-byte literals (ASCII-folded) and their slots: found through a byte-presence
    /// table rather than the automaton, where they would report every occurrence.
    byte_slots: Vec<(u8, Vec<u32>)>,
    /// With at most 64 one-byte literals (CRS has 57): per byte value, the bit of the literal
    /// it is (either ASCII case), 0 for none, so that a value's literals are one OR per byte;
    /// and per literal (bit `i`), its slots as `words` words to OR into the value's bits.
    /// Empty otherwise (`byte_slots` is then read instead).
    byte_bit: Vec<u64>,
    byte_masks: Vec<u64>,
    /// Words of 64 bits per value.
    words: usize,
    /// Words of a value memo's verdict bits (each of "ran and did not match" and "ran and
    /// matched"): the slots', then the regexes' with no slot ([`VERDICT_ONLY`]).
    verdict_words: usize,
    /// The `@pm` phrase lists (`None` when there are none, or too many states to number:
    /// every value may then match every list).
    phrases: Option<PhraseTable>,
    /// Names this prefilter for [`ValueMemo`] (unique in the process; 0 for none): what a
    /// memo holds is what this prefilter answered.
    id: u64,
}

/// Every `@pm` / `@pmFromFile` phrase list of the rule set in one ASCII case-insensitive
/// DFA whose states carry the lists they end a phrase of: one pass over a value gives the
/// lists that occur in it, one OR per byte, however many phrases occur. (Reporting each
/// occurrence, as the `@rx` literals do, made large bodies 6% slower: CRS's phrase files hold
/// thousands of short words.) A clear bit proves the list's `@pm` cannot match the value:
/// every match ModSecurity reports is an occurrence of a phrase ([`crate::operator::pm`]).
#[derive(Debug)]
struct PhraseTable {
    /// Class of each byte: one per phrase byte (both ASCII cases), 0 for bytes in no phrase.
    class: [u8; 256],
    stride: usize,
    /// `next[state * stride + class]`: the target state in breadth-first order (0 is the
    /// root), with [`LitTable::MATCH`] when its mask is not empty.
    next: Box<[u16]>,
    /// Per state: the lists with a phrase that ends there (output links included).
    masks: Box<[u64]>,
    /// The bits of the lists in the table: a value holding all of them needs no further
    /// bytes read.
    all: u64,
    /// The bits of the lists left out (see [`PhraseTable::build`]): set in every mask.
    left_out: u64,
}

impl PhraseTable {
    /// The table of as many lists as its 15-bit state numbers allow: the largest lists are
    /// left out, one at a time, until the trie fits. CRS PL1's 25 lists (3,732 phrases)
    /// do not all fit.
    fn build(lists: &[Vec<Vec<u8>>]) -> Option<PhraseTable> {
        let mut order: Vec<usize> = (0..lists.len()).collect();
        order.sort_by_key(|&i| (lists[i].iter().map(Vec::len).sum::<usize>(), i));
        // The table has one state per trie node: lists are dropped until the trie fits,
        // before any table is built.
        while !order.is_empty() && Self::trie_nodes(lists, &order) >= usize::from(LitTable::MATCH) {
            order.pop();
        }
        // The count above is of the folded phrases, which is what `build_of` inserts (its
        // classes fold case), so the trie it builds fits; it is `None` only for no lists.
        Self::build_of(lists, &order)
    }

    /// Nodes of the trie of the phrases of lists `take`, root included.
    fn trie_nodes(lists: &[Vec<Vec<u8>>], take: &[usize]) -> usize {
        let mut phrases: Vec<&[u8]> =
            take.iter().flat_map(|&i| lists[i].iter().map(Vec::as_slice)).collect();
        phrases.sort_unstable();
        phrases.dedup();
        let mut nodes = 1;
        for (i, p) in phrases.iter().enumerate() {
            let shared = i
                .checked_sub(1)
                .map_or(0, |j| phrases[j].iter().zip(p.iter()).take_while(|(a, b)| a == b).count());
            nodes += p.len() - shared;
        }
        nodes
    }

    /// The table of the lists `take`, or `None` when it has too many states. Built here
    /// rather than copied from the crate's DFA, whose 256-wide rows took tens of MB for a
    /// moment at load: a trie over byte classes, then its failure links breadth-first, each
    /// missing transition taken from the failure state's finished row.
    fn build_of(lists: &[Vec<Vec<u8>>], take: &[usize]) -> Option<PhraseTable> {
        const NONE: u16 = u16::MAX;
        let limit = usize::from(LitTable::MATCH);
        let mut class = [0u8; 256];
        let mut stride = 1usize;
        for &bit in take {
            for &b in lists[bit].iter().flatten() {
                let b = b.to_ascii_lowercase();
                if class[usize::from(b)] == 0 {
                    let c = u8::try_from(stride).ok()?;
                    class[usize::from(b)] = c;
                    class[usize::from(b.to_ascii_uppercase())] = c;
                    stride += 1;
                }
            }
        }
        // The trie, in insertion order; `NONE` where it has no child.
        let mut next: Vec<u16> = vec![NONE; stride];
        let mut mask: Vec<u64> = vec![0];
        for &bit in take {
            for p in &lists[bit] {
                let mut s = 0usize;
                for &b in p {
                    let at = s * stride + usize::from(class[usize::from(b)]);
                    s = match next[at] {
                        NONE => {
                            let n = mask.len();
                            if n >= limit {
                                return None;
                            }
                            next[at] = n as u16;
                            next.resize(next.len() + stride, NONE);
                            mask.push(0);
                            n
                        }
                        t => usize::from(t),
                    };
                }
                mask[s] |= 1 << bit;
            }
        }
        if mask.len() == 1 {
            return None;
        }
        // Breadth-first: a state's failure state is shallower, so its row and mask are final
        // when the state is reached.
        let mut fail = vec![0u16; mask.len()];
        let mut order: Vec<u16> = vec![0];
        for e in &mut next[..stride] {
            match *e {
                NONE => *e = 0,
                t => order.push(t),
            }
        }
        let mut at = 1;
        while at < order.len() {
            let s = usize::from(order[at]);
            let f = usize::from(fail[s]);
            for c in 0..stride {
                let via_fail = next[f * stride + c];
                match next[s * stride + c] {
                    NONE => next[s * stride + c] = via_fail,
                    t => {
                        fail[usize::from(t)] = via_fail;
                        mask[usize::from(t)] |= mask[usize::from(via_fail)];
                        order.push(t);
                    }
                }
            }
            at += 1;
        }
        let mut number = vec![0u16; mask.len()];
        for (n, &s) in order.iter().enumerate() {
            number[usize::from(s)] = n as u16;
        }
        let mut table = Vec::with_capacity(next.len());
        for &s in &order {
            let row = &next[usize::from(s) * stride..(usize::from(s) + 1) * stride];
            table.extend(row.iter().map(|&t| {
                let flag = if mask[usize::from(t)] != 0 { LitTable::MATCH } else { 0 };
                number[usize::from(t)] | flag
            }));
        }
        let masks = order.iter().map(|&s| mask[usize::from(s)]).collect();
        let all = take.iter().fold(0u64, |m, &bit| m | 1 << bit);
        let left_out = (0..lists.len()).fold(0u64, |m, bit| m | 1 << bit) & !all;
        Some(PhraseTable { class, stride, next: table.into_boxed_slice(), masks, all, left_out })
    }

    /// The lists with a phrase that occurs in `value`.
    fn mask_of(&self, value: &[u8]) -> u64 {
        let (mut s, mut m) = (0usize, self.left_out);
        for &b in value {
            let e = self.next[s * self.stride + usize::from(self.class[usize::from(b)])];
            s = usize::from(e & !LitTable::MATCH);
            if e & LitTable::MATCH != 0 {
                m |= self.masks[s];
                if m & self.all == self.all {
                    break;
                }
            }
        }
        m
    }
}

/// The prefilter's multi-byte literals, ASCII case-insensitive, reporting every occurrence.
///
/// Walked through `aho_corasick`'s DFA state by state ([`Automaton`]) rather than through its
/// overlapping iterator: the prefilter wants the pattern ids a value holds, not their spans,
/// and the iterator's per-match bookkeeping (a resumable state, a span per match) was about
/// 2% of a decision's instructions.
#[derive(Debug)]
// One per rule set, read on every scan: the DFA stays inline rather than behind a box.
#[allow(clippy::large_enum_variant)]
enum Literals {
    /// The crate's DFA copied into [`LitTable`].
    Table(LitTable),
    /// The crate's DFA walked as it is, when it has more states than [`LitTable`] numbers.
    Dfa(dfa::DFA),
    /// When the DFA cannot be built (too many states): the crate's own choice.
    Other(AhoCorasick),
}

impl Literals {
    fn build(patterns: &[&[u8]]) -> Result<Literals, String> {
        match Self::dfa(patterns) {
            Ok(d) => Ok(LitTable::copy(&d).map_or(Literals::Dfa(d), Literals::Table)),
            Err(_) => AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(patterns)
                .map(Literals::Other)
                .map_err(|e| format!("prefilter automaton: {e}")),
        }
    }

    /// The crate's DFA over `patterns`, as the prefilter walks it.
    fn dfa(patterns: &[&[u8]]) -> Result<dfa::DFA, aho_corasick::BuildError> {
        dfa::Builder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .prefilter(false)
            .build(patterns)
    }

    /// Calls `found` with the id of every pattern that occurs in `value` (once per
    /// occurrence).
    fn patterns_in(&self, value: &[u8], mut found: impl FnMut(usize)) {
        match self {
            Literals::Table(t) => t.patterns_in(value, found),
            Literals::Dfa(d) => {
                // Unanchored, so the start state exists; without a prefilter only the dead
                // state (unreachable here) and match states are special.
                let Ok(mut sid) = d.start_state(Anchored::No) else { return };
                for &b in value {
                    sid = d.next_state(Anchored::No, sid, b);
                    if d.is_special(sid) && d.is_match(sid) {
                        for i in 0..d.match_len(sid) {
                            found(d.match_pattern(sid, i).as_usize());
                        }
                    }
                }
            }
            Literals::Other(ac) => {
                ac.find_overlapping_iter(value).for_each(|m| found(m.pattern().as_usize()))
            }
        }
    }
}

/// A copy of the prefilter's DFA in fewer bytes: `aho_corasick`'s rows are 32-bit state
/// ids in rows padded to a power of two; here a row has one 16-bit entry per byte class.
/// Scanning a value on a cold cache reads one line per row and class group it walks (about
/// 270 lines a decision in the crate's layout, CRS PL1), so rows under a third the size
/// (156 bytes against 512 at CRS PL1) are fewer lines.
#[derive(Debug)]
struct LitTable {
    class: [u8; 256],
    stride: usize,
    /// `next[state * stride + class]`: the target state, with [`LitTable::MATCH`] when it
    /// matches. State 0 is the start.
    next: Box<[u16]>,
    /// Per state, the range of its patterns in `patterns` (empty unless it matches).
    matches: Box<[(u32, u32)]>,
    patterns: Box<[u32]>,
}

impl LitTable {
    const MATCH: u16 = 1 << 15;

    /// The table for `d`, or `None` when it has more states than 15 bits number. CRS PL1:
    /// 6,792 states, 78 classes (1 MiB against the crate's 3.4 MiB), copied in about 13 ms.
    fn copy(d: &dfa::DFA) -> Option<LitTable> {
        let start = d.start_state(Anchored::No).ok()?;
        // State ids index the crate's transition table, which `memory_usage` counts.
        let mut number = vec![u16::MAX; d.memory_usage() / 4 + 1];
        *number.get_mut(start.as_usize())? = 0;
        let mut states = vec![start];
        // Every state's 256 targets, as state numbers.
        let mut full: Vec<u16> = Vec::new();
        let mut at = 0;
        while at < states.len() {
            let sid = states[at];
            for b in 0..=255u8 {
                let t = d.next_state(Anchored::No, sid, b);
                let slot = number.get_mut(t.as_usize())?;
                if *slot == u16::MAX {
                    *slot = u16::try_from(states.len()).ok().filter(|&n| n < Self::MATCH)?;
                    states.push(t);
                }
                let n = *slot;
                full.push(n);
            }
            at += 1;
        }
        // Bytes whose columns are equal share a class.
        let mut class = [0u8; 256];
        let mut reps: Vec<u8> = Vec::new();
        // A hash of each column, taken row by row; bytes whose hashes agree are compared.
        let mut hash = [0u64; 256];
        for row in full.chunks_exact(256) {
            for (h, &t) in hash.iter_mut().zip(row) {
                *h = (*h ^ u64::from(t)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        let same_column = |a: usize, b: usize| full.chunks_exact(256).all(|r| r[a] == r[b]);
        for b in 0..256 {
            let c = reps
                .iter()
                .position(|&r| hash[r as usize] == hash[b] && same_column(r as usize, b));
            class[b] = match c {
                Some(c) => c as u8,
                None => {
                    reps.push(b as u8);
                    (reps.len() - 1) as u8
                }
            };
        }
        let stride = reps.len();
        let is_match: Vec<bool> = states.iter().map(|&s| d.is_match(s)).collect();
        let mut next = Vec::with_capacity(states.len() * stride);
        for s in 0..states.len() {
            for &r in &reps {
                let t = full[s * 256 + r as usize];
                next.push(if is_match[t as usize] { t | Self::MATCH } else { t });
            }
        }
        let (mut matches, mut patterns) = (Vec::with_capacity(states.len()), Vec::new());
        for (s, &sid) in states.iter().enumerate() {
            let a = patterns.len() as u32;
            if is_match[s] {
                patterns.extend((0..d.match_len(sid)).map(|i| d.match_pattern(sid, i).as_u32()));
            }
            matches.push((a, patterns.len() as u32));
        }
        Some(LitTable {
            class,
            stride,
            next: next.into_boxed_slice(),
            matches: matches.into_boxed_slice(),
            patterns: patterns.into_boxed_slice(),
        })
    }

    fn patterns_in(&self, value: &[u8], found: impl FnMut(usize)) {
        self.patterns_and_bytes(value, &[0; 256], found);
    }

    /// [`LitTable::patterns_in`], and in the same pass the OR of `byte_bit` over the bytes
    /// (the one-byte literals present, [`Prefilter::byte_bit`]).
    fn patterns_and_bytes(
        &self,
        value: &[u8],
        byte_bit: &[u64; 256],
        mut found: impl FnMut(usize),
    ) -> u64 {
        let (mut s, mut present) = (0usize, 0u64);
        for &b in value {
            present |= byte_bit[usize::from(b)];
            let e = self.next[s * self.stride + self.class[b as usize] as usize];
            s = usize::from(e & !Self::MATCH);
            if e & Self::MATCH != 0 {
                let (a, z) = self.matches[s];
                self.patterns[a as usize..z as usize].iter().for_each(|&p| found(p as usize));
            }
        }
        present
    }
}

impl Prefilter {
    fn new(
        ac: Option<Literals>,
        pattern_slots: Vec<Vec<u32>>,
        byte_slots: Vec<(u8, Vec<u32>)>,
        slot_count: usize,
    ) -> Prefilter {
        let words = slot_count.div_ceil(64);
        let (mut byte_bit, mut byte_masks) = (Vec::new(), Vec::new());
        if byte_slots.len() <= 64 {
            byte_bit = vec![0u64; 256];
            byte_masks = vec![0u64; byte_slots.len() * words];
            for (i, (c, slots)) in byte_slots.iter().enumerate() {
                // Literals come folded; either case of the byte is the literal.
                byte_bit[usize::from(c.to_ascii_lowercase())] |= 1 << i;
                byte_bit[usize::from(c.to_ascii_uppercase())] |= 1 << i;
                for &s in slots {
                    byte_masks[i * words + (s / 64) as usize] |= 1u64 << (s % 64);
                }
            }
        }
        Prefilter {
            ac,
            pattern_slots,
            byte_slots,
            byte_bit,
            byte_masks,
            words,
            verdict_words: words,
            phrases: None,
            id: 0,
        }
    }

    /// ORs into `bits` (`words` words) the slots of every literal `value` holds: the
    /// automaton's, and the one-byte ones, found in the same pass over the bytes when the
    /// automaton is a [`LitTable`] and [`Prefilter::byte_bit`] is in use.
    fn scan_into(&self, value: &[u8], bits: &mut [u64]) {
        let byte_bit: Option<&[u64; 256]> = self.byte_bit.as_slice().try_into().ok();
        match (&self.ac, byte_bit) {
            (Some(Literals::Table(t)), Some(byte_bit)) => {
                let present =
                    t.patterns_and_bytes(value, byte_bit, |p| self.or_pattern_slots(p, bits));
                self.or_byte_masks(present, bits);
            }
            (ac, _) => {
                if let Some(ac) = ac {
                    ac.patterns_in(value, |p| self.or_pattern_slots(p, bits));
                }
                self.or_byte_bits(value, bits);
            }
        }
    }

    /// ORs into `bits` the slots of automaton pattern `p`.
    fn or_pattern_slots(&self, p: usize, bits: &mut [u64]) {
        for &s in &self.pattern_slots[p] {
            bits[(s / 64) as usize] |= 1u64 << (s % 64);
        }
    }

    /// ORs into `bits` the slots of the one-byte literals whose bits are in `present`.
    fn or_byte_masks(&self, mut present: u64, bits: &mut [u64]) {
        while present != 0 {
            let i = present.trailing_zeros() as usize;
            present &= present - 1;
            let mask = &self.byte_masks[i * self.words..(i + 1) * self.words];
            bits.iter_mut().zip(mask).for_each(|(b, m)| *b |= m);
        }
    }

    /// ORs into `bits` (`words` words) the slots of the one-byte literals `value` holds.
    fn or_byte_bits(&self, value: &[u8], bits: &mut [u64]) {
        if !self.byte_bit.is_empty() {
            let mut present = 0u64;
            for &c in value {
                present |= self.byte_bit[usize::from(c)];
            }
            self.or_byte_masks(present, bits);
        } else if !self.byte_slots.is_empty() {
            let mut present = [false; 256];
            for &c in value {
                present[usize::from(c.to_ascii_lowercase())] = true;
            }
            for (c, slots) in &self.byte_slots {
                if present[usize::from(*c)] {
                    for &s in slots {
                        bits[(s / 64) as usize] |= 1u64 << (s % 64);
                    }
                }
            }
        }
    }
}

/// What a source reads: one target (its variable and compiled selector) and the exclusions
/// that filter it (its chain is in [`SourceHot`]). Held by the table (not borrowed from a
/// rule) so that a list can be built from its id alone, before any rule that reads it is
/// touched. Only what a raw list's read uses, in one cache line: the target whole (192
/// bytes, its variable and selector 50 to 96 bytes in) made a read of it two or three cold
/// lines, and at 72 bytes (exclusions in a `Vec`) every desc spanned two.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct SourceDesc {
    pub variable: Variable,
    pub exclusions: Box<[CTarget]>,
    pub selector: Option<crate::txn::CompiledSelector>,
}

/// Compile-time tables: source ids and the prefilter.
#[derive(Debug, Default)]
pub struct SourceTable {
    pub source_count: u32,
    /// Per source: what it reads.
    pub descs: Vec<SourceDesc>,
    /// Per source: what building its list reads every time ([`SourceHot`]).
    pub hot: Vec<SourceHot>,
    /// The distinct chains end to end, each at `chain_at[chain_id]` (start, length).
    pub chains: Vec<Transformation>,
    pub chain_at: Vec<(u32, u32)>,
    pub raw_count: u32,
    pub prefilter: Prefilter,
}

/// What [`SourceCache::list`] and every plan's check read of a source, packed: 16 bytes,
/// against a [`SourceDesc`] in a table of its own and a chain in a heap block of its own. The
/// target and exclusions are read only when the raw list is read from the request data, the
/// chain's place (`chain_at`) only when the list is built. The plans' checks read these rows
/// on every request: with the chain's place in the row (24 bytes) they were 69 cold lines of
/// a bodiless GET at CRS PL1 (callgrind), about 20 more than at 16.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceHot {
    /// The chain's steps as a set (`1 << t as u32` each), taken once here: a chain whose
    /// steps a value's record knows to be idle is not run.
    pub steps: u64,
    /// Its transformation chain's id.
    pub chain_id: u32,
    /// Its raw list, one per (target, exclusions) whatever the chain.
    pub raw: u32,
}

const _: () = assert!(std::mem::size_of::<SourceHot>() == 16);

/// Builds a [`SourceTable`] while rules compile.
#[derive(Debug, Default)]
pub struct SourceBuilder {
    sources: HashMap<String, u32>,
    raws: HashMap<String, u32>,
    hot: Vec<SourceHot>,
    flat_chains: Vec<Transformation>,
    /// Per chain id: its place in `flat_chains`.
    chain_at: Vec<(u32, u32)>,
    descs: Vec<SourceDesc>,
    chains: HashMap<Vec<Transformation>, u32>,
    /// Per slot: its regex's required literals.
    slot_literals: Vec<Vec<Vec<u8>>>,
    /// Verdict numbers given to regexes without a slot ([`SourceBuilder::verdict_slot`]).
    verdict_only: u32,
    /// Per `@pm` list bit: its phrases, folded to ASCII lower case.
    pm_lists: Vec<Vec<Vec<u8>>>,
    /// Switched off by [`super::compile::CompileOptions`]: no sources, no prefilter.
    disabled: bool,
    prefilter_disabled: bool,
}

/// Variables whose values the evaluator itself owns or that change inside a phase.
fn cacheable(var: Variable) -> bool {
    !is_collection_var(var)
        && !matches!(
            var,
            Variable::MatchedVar
                | Variable::MatchedVarName
                | Variable::MatchedVars
                | Variable::MatchedVarsNames
                | Variable::Rule
                | Variable::HighestSeverity
                | Variable::Env
                | Variable::ResponseStatus
                | Variable::ResponseProtocol
                | Variable::ResponseBody
                | Variable::ResponseContentType
                | Variable::ResponseContentLength
                | Variable::OutboundDataError
                | Variable::Duration
        )
}

impl SourceBuilder {
    pub fn new(disabled: bool, prefilter_disabled: bool) -> SourceBuilder {
        SourceBuilder { disabled, prefilter_disabled, ..Default::default() }
    }

    fn chain_id(&mut self, chain: &[Transformation]) -> u32 {
        let n = self.chains.len() as u32;
        let id = *self.chains.entry(chain.to_vec()).or_insert(n);
        if id == n {
            let at = self.flat_chains.len() as u32;
            self.flat_chains.extend_from_slice(chain);
            self.chain_at.push((at, chain.len() as u32));
        }
        id
    }

    /// The source id of `t` read by a link with these exclusions and chain, or `None` when
    /// it must be read per rule.
    pub fn source(
        &mut self,
        t: &CTarget,
        exclusions: &[&CTarget],
        chain: &[Transformation],
    ) -> Option<u32> {
        if self.disabled || t.target.count || !cacheable(t.target.variable) {
            return None;
        }
        // The table's own copies, compiled again from the IR targets (compiled selectors and
        // key regexes are not `Clone`); a target that compiled once compiles again.
        let desc = |t: &CTarget| compile_target(&t.target).ok();
        let chain_id = self.chain_id(chain);
        let mut raw_key = t.full_name.clone();
        for e in exclusions {
            raw_key.push('\u{1}');
            raw_key.push_str(&e.full_name);
        }
        let key = format!("{chain_id}\u{1}{raw_key}");
        if let Some(&id) = self.sources.get(&key) {
            return Some(id);
        }
        let d = SourceDesc {
            variable: t.target.variable,
            selector: desc(t)?.selector,
            exclusions: exclusions.iter().map(|e| desc(e)).collect::<Option<Box<[_]>>>()?,
        };
        let steps = chain.iter().fold(0u64, |m, &t| m | 1 << (t as u32));
        let r = self.raws.len() as u32;
        let raw = *self.raws.entry(raw_key).or_insert(r);
        let id = self.sources.len() as u32;
        self.sources.insert(key, id);
        self.hot.push(SourceHot { steps, chain_id, raw });
        self.descs.push(d);
        Some(id)
    }

    /// A prefilter slot for an `@rx` (translated pattern) run after `chain`.
    ///
    /// `@pm` / `@pmFromFile` phrases are not put into this automaton: CRS's phrase files hold
    /// thousands of short words, and its overlapping scan reports every occurrence in every
    /// value (measured: about 1% fewer instructions on GET requests, 6% more on the 30
    /// largest benign bodies). They get a table of their own ([`SourceBuilder::pm_slot`]).
    pub fn rx_slot(&mut self, translated: &str, chain: &[Transformation]) -> Option<RxSlot> {
        if !self.prefilters() {
            return None;
        }
        let req = prefilter::required(translated)?;
        // One automaton for every regex, whatever its chain: bits then depend on the bytes
        // alone (see module docs).
        let _ = chain;
        let slot = u32::try_from(self.slot_literals.len()).ok()?;
        self.slot_literals.push(req.literals);
        Some(RxSlot { slot, min_len: u32::try_from(req.min_len).unwrap_or(u32::MAX) })
    }

    /// The per-value filter of a `multiMatch` `@rx` (translated pattern): the requirement a
    /// prefilter slot would hold ([`SourceBuilder::rx_slot`]), on the same switches.
    pub fn value_filter(&self, translated: &str) -> Option<crate::operator::fast::Prefilter> {
        if !self.prefilters() {
            return None;
        }
        prefilter::required(translated)?.value_filter()
    }

    /// Prefilters are built (value sources on, `@rx` prefilter not switched off).
    fn prefilters(&self) -> bool {
        !(self.disabled || self.prefilter_disabled)
    }

    /// A verdict number for an `@rx` that has no prefilter slot (no literal every match
    /// holds), so that the value memo keeps its verdicts too: [`VERDICT_ONLY`] and a count.
    pub fn verdict_slot(&mut self) -> Option<u32> {
        if !self.prefilters() || self.verdict_only >= VERDICT_ONLY {
            return None;
        }
        self.verdict_only += 1;
        Some(VERDICT_ONLY | (self.verdict_only - 1))
    }

    /// A prefilter slot for a `@pm` / `@pmFromFile` phrase list: its phrases are exact
    /// literals (see [`PhraseTable`]). `None` for an empty list (nothing to skip on: it never
    /// matches) and past [`PM_LISTS`] lists.
    pub fn pm_slot(&mut self, phrases: &[Vec<u8>]) -> Option<RxSlot> {
        if !self.prefilters() || self.pm_lists.len() >= PM_LISTS {
            return None;
        }
        let min_len = phrases.iter().map(Vec::len).min()?;
        let bit = self.pm_lists.len() as u32;
        self.pm_lists.push(phrases.iter().map(|p| p.to_ascii_lowercase()).collect());
        Some(RxSlot { slot: PM_SLOT | bit, min_len: u32::try_from(min_len).unwrap_or(u32::MAX) })
    }

    pub fn finish(self) -> Result<SourceTable, String> {
        let slots = &self.slot_literals;
        let mut index: HashMap<&[u8], usize> = HashMap::new();
        let mut patterns: Vec<&[u8]> = Vec::new();
        let mut pattern_slots: Vec<Vec<u32>> = Vec::new();
        let mut byte_slots: Vec<(u8, Vec<u32>)> = Vec::new();
        for (s, lits) in slots.iter().enumerate() {
            for l in lits {
                if let [b] = l.as_slice() {
                    match byte_slots.iter_mut().find(|(x, _)| x == b) {
                        Some((_, v)) => v.push(s as u32),
                        None => byte_slots.push((*b, vec![s as u32])),
                    }
                    continue;
                }
                let i = *index.entry(l.as_slice()).or_insert_with(|| {
                    patterns.push(l.as_slice());
                    pattern_slots.push(Vec::new());
                    patterns.len() - 1
                });
                pattern_slots[i].push(s as u32);
            }
        }
        let ac = if patterns.is_empty() { None } else { Some(Literals::build(&patterns)?) };
        let mut prefilter = Prefilter::new(ac, pattern_slots, byte_slots, slots.len());
        prefilter.phrases = PhraseTable::build(&self.pm_lists);
        prefilter.verdict_words = (prefilter.words * 64 + self.verdict_only as usize).div_ceil(64);
        static PREFILTERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        prefilter.id = PREFILTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(SourceTable {
            source_count: self.sources.len() as u32,
            descs: self.descs,
            hot: self.hot,
            chains: self.flat_chains,
            chain_at: self.chain_at,
            raw_count: self.raws.len() as u32,
            prefilter,
        })
    }
}

/// A value of a raw list that the exclusions drop.
const EXCLUDED: (u32, u32) = (u32::MAX, u32::MAX);

/// Marks a name's start as an offset into the request view's names
/// ([`RequestData::names_arena`]), which hold most names already: those are not copied.
/// Offsets into the cache's own names stay far below it (no list is built past
/// [`MAX_ARENA`]).
const IN_REQUEST: u32 = 1 << 31;

/// The record of a raw value the exclusions drop: it has none (see [`SourceCache::raw_records`]).
const NO_RECORD: u32 = u32::MAX;

// One bit per transformation in `TVal::known`/`same`: the enum (last variant below) must
// stay under 64 variants.
const _: () = assert!((Transformation::Utf8ToUnicode as u32) < 64);

/// The shortest value whose scan is shared with the values equal to it up to ASCII case
/// ([`SourceCache::scanned`]): hashing, looking up and comparing a shorter one costs more
/// than scanning it again. Measured (callgrind, CRS PL1, native, instructions a decision;
/// 200 bodiless GETs / the first 200 benign requests): every value shared 415,851 /
/// 728,223; none 413,385 / 769,654; from 48 bytes 413,929 / 725,895; 128 413,408 /
/// 725,921; 256 413,218 / 725,765; 1024 413,218 / 726,888. Cold lines fall by 0.7-0.9%.
const SHARE_SCAN_MIN: usize = 256;

/// Bytes of names or values kept per request before sources stop caching.
const MAX_ARENA: usize = 32 << 20;

/// Marks a verdict number ([`super::compile::CRule::verdict`]) given to a regex without a
/// prefilter slot; its bit in a memo row comes after the slots' ones.
pub const VERDICT_ONLY: u32 = 1 << 31;

/// Slots of a [`ValueMemo`] (a power of two).
const MEMO_SLOTS: usize = 2048;
/// The shortest and longest values a [`ValueMemo`] keeps (longer ones share scans within a
/// request instead, [`SHARE_SCAN_MIN`]).
const MEMO_MIN: usize = 8;
const MEMO_MAX: usize = SHARE_SCAN_MIN - 1;
/// Words of a memo slot before its prefilter bits: hash, stamp (the transaction that last
/// used it, above [`MEMO_STAMP_SHIFT`]; [`MEMO_BITS`]; the value's length), `@pm` mask,
/// identity signature. Four, so that with up to four words of bits (256 prefilter slots;
/// CRS PL1 has 200-odd) a lookup's hash, stamp and length and the bits a scan then reads
/// are one cache line: slots are line-aligned ([`ValueMemo::start`]).
const MEMO_HEAD: usize = 4;
/// Set in a slot's stamp once its prefilter bits are in.
const MEMO_BITS: u64 = 1 << 8;
/// The transaction number's place in a slot's stamp; the length takes the low byte.
const MEMO_STAMP_SHIFT: u32 = 16;
/// A stamp's length byte, and everything below the transaction number (length and flags).
const MEMO_LEN: u64 = 0xff;
const MEMO_BELOW_TXN: u64 = (1 << MEMO_STAMP_SHIFT) - 1;
/// Transactions a memo counts before it empties itself and starts again from 1 (the stamp
/// holds 48 bits of the number).
const MEMO_TXN_MAX: u64 = 1 << 47;
/// Words of a slot's key: the longest value kept, packed.
const MEMO_KEY_WORDS: usize = MEMO_MAX.div_ceil(8);
const _: () = assert!(MEMO_MAX < 256, "a slot's length takes one byte of its stamp");

/// What the prefilter, [`transform::identity::proven`] and the planned regexes answered for
/// values of earlier transactions on this thread, by their exact bytes: the prefilter bits,
/// the `@pm` mask, the identity signature and a regex's verdict are functions of a value's
/// bytes alone, and the values a site sees repeat from one request to the next (a few user
/// agents, `Accept` and `Accept-Language` values, cookie and query parameters). A value met
/// again is looked up (a hash and a comparison of its words) instead of walked through the
/// automata, and a regex that ran on it without matching is not run again.
///
/// Direct-mapped and bounded ([`MEMO_SLOTS`] slots of values of [`MEMO_MIN`]..=[`MEMO_MAX`]
/// bytes): a slot goes to the next value that hashes to it, unless the current transaction
/// uses it (its records point at it). Keys are compared whole, so a collision costs a scan,
/// never a wrong answer. Filled for one prefilter ([`Prefilter::id`]); another one empties
/// it, which is why a rule set takes back its own scratch ([`super::run`]'s `Scratch::take`).
#[derive(Debug, Default)]
struct ValueMemo {
    prefilter: u64,
    /// Counts transactions: a slot stamped with the current one is not replaced.
    txn: u64,
    /// The transaction the memo was last emptied at: slots stamped before it are empty, so
    /// that another prefilter of the same width takes the memo over without rewriting it.
    floor: u64,
    /// Words of prefilter bits per slot.
    words: usize,
    /// Words of each of the two verdict bit sets per slot ([`Prefilter::verdict_words`]).
    vwords: usize,
    /// Words per slot, a multiple of eight: [`MEMO_HEAD`], the prefilter bits, the key's
    /// bytes packed into words, then one bit per verdict number for "its regex ran and did
    /// not match" and one for "ran and matched" (read only when a regex is about to run).
    stride: usize,
    /// The first slot's offset in `slots`: where the words start a cache line.
    base: usize,
    slots: Vec<u64>,
}

/// `v`'s bytes as little-endian words, the last one zero-padded. Whole words are loaded as
/// such, and so is the tail ([`tail_word`]): a copy of a chunk whose length the compiler does
/// not know is a `memcpy` call per word (some 300 a decision, from the prefilter's value
/// hashes), and a byte loop over the tail took some 2,000 instructions a bodiless GET.
fn packed_words(v: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let words = v.chunks_exact(8);
    let tail = (v.len() % 8 != 0).then(|| tail_word(v));
    words.map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).chain(tail)
}

/// The last `v.len() % 8` bytes of `v` (not zero of them) as a zero-padded little-endian
/// word, read with at most two loads: the word that ends `v`, shifted, when `v` has eight
/// bytes; otherwise two overlapping loads of four, two or one byte.
#[inline]
fn tail_word(v: &[u8]) -> u64 {
    let n = v.len();
    let r = n % 8;
    if n >= 8 {
        let last = u64::from_le_bytes(v[n - 8..].try_into().unwrap_or([0; 8]));
        return last >> ((8 - r) * 8);
    }
    if n >= 4 {
        let lo = u32::from_le_bytes(v[..4].try_into().unwrap_or([0; 4]));
        let hi = u32::from_le_bytes(v[n - 4..].try_into().unwrap_or([0; 4]));
        return u64::from(lo) | u64::from(hi) << ((n - 4) * 8);
    }
    if n >= 2 {
        let lo = u16::from_le_bytes(v[..2].try_into().unwrap_or([0; 2]));
        let hi = u16::from_le_bytes(v[n - 2..].try_into().unwrap_or([0; 2]));
        return u64::from(lo) | u64::from(hi) << ((n - 2) * 8);
    }
    v.first().map_or(0, |&b| u64::from(b))
}

impl ValueMemo {
    /// Ready for a transaction over `prefilter` (`words` words of bits per value).
    fn start(&mut self, prefilter: u64, words: usize, vwords: usize) {
        self.txn += 1;
        if self.txn >= MEMO_TXN_MAX {
            // Stamps would wrap: every slot is emptied, and counting starts again.
            self.slots.fill(0);
            (self.txn, self.floor) = (1, 1);
        }
        if self.prefilter == prefilter {
            return;
        }
        self.prefilter = prefilter;
        self.floor = self.txn;
        if prefilter == 0 {
            self.slots = Vec::new();
        } else if self.words != words || self.vwords != vwords || self.slots.is_empty() {
            self.words = words;
            self.vwords = vwords;
            self.stride = (self.verdicts_at() + 2 * vwords).next_multiple_of(8);
            self.slots = vec![0; MEMO_SLOTS * self.stride + 7];
            self.base = self.slots.as_ptr().align_offset(64).min(7);
        }
    }

    /// A slot's key, after its head and bits.
    fn key_at(&self) -> usize {
        MEMO_HEAD + self.words
    }

    /// A slot's verdict sets, after its key.
    fn verdicts_at(&self) -> usize {
        self.key_at() + MEMO_KEY_WORDS
    }

    /// The hash of `v`'s exact bytes, never 0 (an empty slot's).
    fn hash(v: &[u8]) -> u64 {
        words_hash(v.len(), packed_words(v)) | 1
    }

    /// The slot holding `v`, claimed for it when it holds another value not in use by this
    /// transaction; `None` when `v` is out of range or its slot is taken.
    fn slot(&mut self, v: &[u8]) -> Option<usize> {
        if !(MEMO_MIN..=MEMO_MAX).contains(&v.len()) || self.slots.is_empty() {
            return None;
        }
        let h = Self::hash(v);
        let slot = (h >> (64 - MEMO_SLOTS.trailing_zeros())) as usize;
        let (key_at, verdicts_at, txn, floor) =
            (self.key_at(), self.verdicts_at(), self.txn, self.floor);
        let row = self.row_mut(slot);
        let stamp = row[1];
        let len = v.len() as u64;
        if row[0] == h
            && stamp >> MEMO_STAMP_SHIFT >= floor
            && stamp & MEMO_LEN == len
            && packed_words(v).zip(&row[key_at..verdicts_at]).all(|(a, &b)| a == b)
        {
            row[1] = txn << MEMO_STAMP_SHIFT | (stamp & MEMO_BELOW_TXN);
            return Some(slot);
        }
        if stamp >> MEMO_STAMP_SHIFT == txn {
            return None;
        }
        row[key_at..verdicts_at].iter_mut().zip(packed_words(v)).for_each(|(k, w)| *k = w);
        row[..MEMO_HEAD].copy_from_slice(&[h, txn << MEMO_STAMP_SHIFT | len, 0, 0]);
        row[verdicts_at..].fill(0);
        Some(slot)
    }

    fn row(&self, slot: usize) -> &[u64] {
        let at = self.base + slot * self.stride;
        &self.slots[at..at + self.stride]
    }

    fn row_mut(&mut self, slot: usize) -> &mut [u64] {
        let at = self.base + slot * self.stride;
        &mut self.slots[at..at + self.stride]
    }

    /// The slot's prefilter bits, once they are in.
    fn bits(&self, slot: usize) -> Option<&[u64]> {
        let row = self.row(slot);
        (row[1] & MEMO_BITS != 0).then(|| &row[MEMO_HEAD..MEMO_HEAD + self.words])
    }

    fn set_bits(&mut self, slot: usize, bits: &[u64]) {
        let w = self.words;
        let row = self.row_mut(slot);
        row[MEMO_HEAD..MEMO_HEAD + w].copy_from_slice(bits);
        row[1] |= MEMO_BITS;
    }

    /// The bit of verdict number `v` ([`super::compile::CRule::verdict`]): its word in a
    /// verdict set, and its mask. `None` past the sets' width.
    fn verdict_bit(&self, v: u32) -> Option<(usize, u64)> {
        let i = match v & VERDICT_ONLY {
            0 => v as usize,
            _ => self.words * 64 + (v & !VERDICT_ONLY) as usize,
        };
        (i / 64 < self.vwords).then(|| (i / 64, 1u64 << (i % 64)))
    }

    /// Whether the regex of verdict number `v` ran on the value and matched (`hit`) or did
    /// not.
    fn known(&self, slot: usize, v: u32, hit: bool) -> bool {
        let Some((w, m)) = self.verdict_bit(v) else { return false };
        let at = self.verdicts_at() + if hit { self.vwords } else { 0 } + w;
        self.row(slot).get(at).is_some_and(|x| x & m != 0)
    }

    fn set_known(&mut self, slot: usize, v: u32, hit: bool) {
        let Some((w, m)) = self.verdict_bit(v) else { return };
        let at = self.verdicts_at() + if hit { self.vwords } else { 0 } + w;
        if let Some(x) = self.row_mut(slot).get_mut(at) {
            *x |= m;
        }
    }

    /// The slot's `@pm` mask (with [`PM_SCANNED`]), 0 until it is in.
    fn pm(&self, slot: usize) -> u64 {
        self.row(slot)[2]
    }

    fn set_pm(&mut self, slot: usize, pm: u64) {
        self.row_mut(slot)[2] = pm;
    }

    /// The slot's identity signature (with [`SIGNED`]), 0 until it is in.
    fn proven(&self, slot: usize) -> u64 {
        self.row(slot)[3]
    }

    fn set_proven(&mut self, slot: usize, proven: u64) {
        self.row_mut(slot)[3] = proven;
    }
}

/// One value of a source list: its name, and the transformed value it shares with every
/// other source reading the same request bytes through the same chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    name: (u32, u32),
    tval: u32,
}

/// A transformed value and its prefilter bits.
#[derive(Debug, Clone, Copy)]
struct TVal {
    value: (u32, u32),
    /// Offset of the prefilter bits, `u32::MAX` until first needed.
    bits: u32,
    /// For the record of raw request bytes: the transformations already tried on them
    /// (`known`, one bit per [`Transformation`]) and those that left them unchanged (`same`).
    /// A chain whose every step is in `same` leaves the bytes unchanged without running.
    known: u64,
    same: u64,
    /// For the record of raw request bytes: the first of its chain links (`u32::MAX` for
    /// none), see [`SourceCache::links`].
    chains: u32,
    /// The `@pm` lists that occur in the value, with [`PM_SCANNED`]; 0 until first needed.
    pm: u64,
    /// For the record of raw request bytes: what [`transform::identity::proven`] answered
    /// for them, with [`SIGNED`]; 0 until first asked.
    proven: u64,
    /// The record's [`ValueMemo`] slot plus 2; 1 for none, 0 until first asked.
    memo: u32,
}

/// A raw list (a target read with its exclusions, before any chain) in one generation, and
/// the prefilter's view of it through any chain of transformations that each change its
/// values in ASCII case at most ([`transform::identity::but_case`]): such a chain leaves
/// every value equal to its raw bytes up to case, and the prefilter's scans are ASCII
/// case-insensitive, so the list's union of bits and its longest value are the raw list's.
/// A plan over such a source is answered without building the source's list. The two
/// share a row because a plan reads both (40 bytes; aligning rows to a cache line each
/// measured 14 more lines a decision, not fewer).
#[derive(Debug, Clone, Copy, Default)]
struct RawList {
    generation: u64,
    /// Its values: `raw_names[first..end]` and `raw_records[first..end]`.
    first: u32,
    end: u32,
    /// The transformations that change every value of the list in case at most; 0 until a
    /// plan asked (never 0 once taken: the case mappings are always in).
    idle: u64,
    longest: u32,
    /// Offset of the union of the values' bits in `bits`, `u32::MAX` until a regex plan
    /// asked.
    bits: u32,
    /// The union of the values' `@pm` masks, 0 until a `@pm` plan asked.
    pm: u64,
}

/// Set in a record's `known` once its bytes were signed ([`transform::identity`]); no
/// transformation has this bit.
const SIGNED: u64 = 1 << 63;

/// FxHash-style hasher for small integer keys ([`SourceCache`], the collection index).
#[derive(Debug, Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

type KeyMap = HashMap<(usize, usize), u32, std::hash::BuildHasherDefault<KeyHasher>>;

/// Per-request lists of the sources read so far.
#[derive(Debug, Default)]
pub(crate) struct SourceCache {
    /// Never reused (a scratch cache serves many transactions): a list stamped with an
    /// older generation is stale.
    generation: u64,
    /// Per source: (generation it was built in, first entry, end).
    lists: Vec<(u64, u32, u32)>,
    /// Per source: (generation, offset in `bits`, longest value) of the union of its values'
    /// prefilter bits, once a plan asked (see [`SourceCache::no_match`]).
    unions: Vec<(u64, u32, u32)>,
    /// Per source: (generation, union of its values' `@pm` masks, longest value), once a
    /// `@pm` plan asked.
    pm_unions: Vec<(u64, u64, u32)>,
    /// What is left of [`PM_BUDGET`] in this transaction.
    pm_budget: usize,
    /// Per raw list: where its values are, and what plans know of it ([`RawList`]).
    raws: Vec<RawList>,
    /// Per value of `raw_names`: the record of its raw bytes ([`SourceCache::shared`] for
    /// bytes borrowed from the request data; a record of its own for a value built for the
    /// read), or [`NO_RECORD`] for an excluded one. Every source of the raw list is built
    /// from these records, without reading the request data again.
    raw_records: Vec<u32>,
    /// Per value the target yields, in order: its name in `names` (or, marked
    /// [`IN_REQUEST`], in the request view's own names), or [`EXCLUDED`]. Sources of the same
    /// raw list replay it instead of testing the exclusions again.
    raw_names: Vec<(u32, u32)>,
    entries: Vec<Entry>,
    tvals: Vec<TVal>,
    /// (address, length) of a request-data value borrowed in this generation -> the record
    /// of its raw bytes, from which its chains' outputs are linked (`links`). Addresses are
    /// stable while the request data is unchanged, which is what a generation means.
    shared: KeyMap,
    /// (chain, transformed value, next link) per chain already run over a raw record's
    /// bytes, listed from the record (`TVal::chains`): a value is read through a few chains,
    /// so a short walk replaces a second hash lookup and insert per entry.
    links: Vec<(u32, u32, u32)>,
    names: String,
    values: Vec<u8>,
    bits: Vec<u64>,
    /// Hash of a scanned value, ASCII case folded -> the record that holds its bits. The
    /// automaton and the one-byte table are ASCII case-insensitive, so a value that differs
    /// from a scanned one only in ASCII case (a `t:lowercase` chain's output) or equals one
    /// read through another chain has the same bits: one scan for all of them (values of
    /// [`SHARE_SCAN_MIN`] bytes or more; shorter ones are scanned again). Records
    /// outlive generations (only [`SourceCache::reset`] clears the arenas), so this does too.
    scanned: HashMap<u64, u32, std::hash::BuildHasherDefault<KeyHasher>>,
    /// Answers for values of earlier transactions ([`ValueMemo`]).
    memo: ValueMemo,
}

/// Where `name` lies in `arena`, marked [`IN_REQUEST`]: `None` when it lies elsewhere (a
/// static name), or past what the mark leaves room for.
fn request_name(arena: &str, name: &str) -> Option<(u32, u32)> {
    let off = (name.as_ptr() as usize).wrapping_sub(arena.as_ptr() as usize);
    let end = off.checked_add(name.len())?;
    (end <= arena.len() && end < IN_REQUEST as usize)
        .then_some((off as u32 | IN_REQUEST, end as u32))
}

/// `w` with its ASCII upper-case letters (bytes `A`..=`Z`) lower-cased, eight bytes at once.
pub(crate) fn fold_word(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = w & !HIGH;
    // Bit 7 of each byte: its low seven bits are >= 'A', resp. > 'Z' (no carry crosses
    // bytes: 0x7f + 0x3f < 0x100).
    let ge_a = low7 + (0x80 - u64::from(b'A')) * ONES;
    let gt_z = low7 + (0x80 - u64::from(b'Z') - 1) * ONES;
    let upper = ge_a & !gt_z & !w & HIGH;
    w | (upper >> 2)
}

/// The words of `v` folded to ASCII lower case; the last one zero-padded.
fn folded_words(v: &[u8]) -> impl Iterator<Item = u64> + '_ {
    packed_words(v).map(fold_word)
}

/// The hash of a value of `len` bytes given as words ([`packed_words`], [`folded_words`]).
fn words_hash(len: usize, words: impl Iterator<Item = u64>) -> u64 {
    use std::hash::Hasher;
    let mut h = KeyHasher(len as u64);
    words.for_each(|w| h.write_u64(w));
    h.finish()
}

/// A hash of `v` that ignores ASCII case, a word at a time (also the collections' key hash,
/// [`super::compile::ci_hash`]). Not inlined: one copy of its code serves every caller.
#[inline(never)]
pub(crate) fn fold_hash(v: &[u8]) -> u64 {
    words_hash(v.len(), folded_words(v))
}

/// `a.eq_ignore_ascii_case(b)`, a word at a time.
pub(crate) fn fold_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && folded_words(a).eq(folded_words(b))
}

impl SourceCache {
    /// Ready for a new transaction over a rule set with `source_count` sources.
    pub(crate) fn reset(&mut self, source_count: u32, raw_count: u32, g: &Prefilter) {
        self.invalidate();
        self.memo.start(g.id, g.words, g.verdict_words);
        self.lists.resize(source_count as usize, (0, 0, 0));
        self.unions.resize(source_count as usize, (0, 0, 0));
        self.pm_unions.resize(source_count as usize, (0, 0, 0));
        self.pm_budget = PM_BUDGET;
        self.raws.resize(raw_count as usize, RawList::default());
        self.raw_names.clear();
        self.raw_records.clear();
        self.entries.clear();
        self.tvals.clear();
        self.links.clear();
        self.names.clear();
        self.values.clear();
        self.bits.clear();
        self.scanned.clear();
    }

    /// Whether this cache's value memo was filled for prefilter `g`.
    pub(crate) fn memo_for(&self, g: &Prefilter) -> bool {
        self.memo.prefilter == g.id
    }

    /// Gives back memory a huge request made the arenas grow to.
    pub(crate) fn trim(&mut self) {
        const KEEP: usize = 1 << 20;
        if self.values.capacity() > KEEP {
            self.values = Vec::new();
        }
        if self.names.capacity() > KEEP {
            self.names = String::new();
        }
        if self.entries.capacity() > KEEP / 8 {
            self.entries = Vec::new();
            self.raw_names = Vec::new();
            self.raw_records = Vec::new();
            self.tvals = Vec::new();
            self.links = Vec::new();
            self.bits = Vec::new();
            self.shared = KeyMap::default();
            self.scanned = HashMap::default();
        }
    }

    /// The request data changed: every list is rebuilt on next use.
    pub(crate) fn invalidate(&mut self) {
        self.generation += 1;
        self.shared.clear();
    }

    /// The entries of source `id`, building them when missing or stale; `None` past the
    /// memory bound.
    pub(crate) fn list(
        &mut self,
        id: u32,
        table: &SourceTable,
        data: &RequestData,
    ) -> Option<std::ops::Range<usize>> {
        let &(g, s, e) = self.lists.get(id as usize)?;
        if g == self.generation {
            return Some(s as usize..e as usize);
        }
        // Past the memory bound no list is built, over a new raw list or an old one.
        if self.past_bound() {
            return None;
        }
        let SourceHot { steps, chain_id, raw } = *table.hot.get(id as usize)?;
        let (r0, r1) = self.raw_list(id, raw, table, data)?;
        let start = self.entries.len();
        if r0 < r1 {
            // The records of the raw bytes read through this chain, names from the raw list.
            let &(at, n) = table.chain_at.get(chain_id as usize)?;
            let chain = table.chains.get(at as usize..(at + n) as usize)?;
            for i in r0..r1 {
                let name = self.raw_names[i];
                if name != EXCLUDED {
                    self.push_recorded(chain_id, chain, steps, name, self.raw_records[i]);
                }
            }
        }
        let end = self.entries.len();
        self.lists[id as usize] = (self.generation, start as u32, end as u32);
        Some(start..end)
    }

    /// Bounded memory: past [`MAX_ARENA`] (huge bodies read through many chains) no list is
    /// built, and rules read their values themselves again, one rule at a time.
    fn past_bound(&self) -> bool {
        self.values.len() > MAX_ARENA || self.names.len() > MAX_ARENA
    }

    /// The raw list `raw` of source `id` (its target read with its exclusions): its range
    /// in `raw_names` and `raw_records`, read from the request data the first time in a
    /// generation; `None` past the memory bound.
    #[inline]
    fn raw_list(
        &mut self,
        id: u32,
        raw: u32,
        table: &SourceTable,
        data: &RequestData,
    ) -> Option<(usize, usize)> {
        let row = self.raws.get(raw as usize)?;
        if row.generation == self.generation {
            return Some((row.first as usize, row.end as usize));
        }
        self.read_raw_list(id, raw, table, data)
    }

    /// [`SourceCache::raw_list`] read from the request data: out of line, its callers ask
    /// about a raw list read already far more often.
    #[inline(never)]
    fn read_raw_list(
        &mut self,
        id: u32,
        raw: u32,
        table: &SourceTable,
        data: &RequestData,
    ) -> Option<(usize, usize)> {
        if self.past_bound() {
            return None;
        }
        // The source's description (in its own table, apart from the hot rows) is read only
        // here, once per raw list and generation.
        let SourceDesc { variable, exclusions, selector } = table.descs.get(id as usize)?;
        let excluded = |name: &str| exclusions.iter().any(|e| excludes(e, name));
        let r0 = self.raw_names.len();
        data.for_each(*variable, selector.as_ref(), &mut |v| {
            if excluded(&v.name) {
                self.raw_names.push(EXCLUDED);
                self.raw_records.push(NO_RECORD);
                return;
            }
            let name = match &v.name {
                Cow::Borrowed(n) => request_name(data.names_arena(), n),
                Cow::Owned(_) => None,
            };
            let name = name.unwrap_or_else(|| {
                let n0 = self.names.len();
                self.names.push_str(&v.name);
                (n0 as u32, self.names.len() as u32)
            });
            self.raw_names.push(name);
            let rec = self.record(v.value);
            self.raw_records.push(rec);
        });
        let r1 = self.raw_names.len();
        self.raws[raw as usize] = RawList {
            generation: self.generation,
            first: r0 as u32,
            end: r1 as u32,
            ..RawList::default()
        };
        Some((r0, r1))
    }

    /// The record of a value's raw bytes: shared by every raw list that borrows the same
    /// request bytes (and so by every chain that leaves them unchanged, and its prefilter
    /// scan with it); a record of its own for a value built for this read.
    fn record(&mut self, value: Cow<'_, [u8]>) -> u32 {
        match value {
            Cow::Borrowed(raw) => {
                // One probe: the record a new key gets is the next one.
                let next = self.tvals.len() as u32;
                match self.shared.entry((raw.as_ptr() as usize, raw.len())) {
                    MapEntry::Occupied(e) => *e.get(),
                    MapEntry::Vacant(e) => {
                        e.insert(next);
                        self.push_tval(raw)
                    }
                }
            }
            Cow::Owned(v) => self.push_tval(&v),
        }
    }

    /// The entry of record `id` read through `chain` (a value just recorded, or a replayed
    /// one), the chain run over the record's copy of the raw bytes the first time.
    fn push_recorded(
        &mut self,
        chain_id: u32,
        chain: &[Transformation],
        steps: u64,
        name: (u32, u32),
        id: u32,
    ) {
        let rec = &mut self.tvals[id as usize];
        if steps & !rec.same != 0 && rec.known & SIGNED == 0 {
            // The transformations the record's bytes prove idle, all at once, the first time
            // a chain needs more than is known: a chain of only those leaves the record as it
            // is without running. Short values only, unless a plan signed a long one already:
            // on a long one, each transformation's own memchr fast path reads the bytes
            // faster than this byte-at-a-time pass.
            let idle = self.proven(id, transform::identity::SIGN_MAX).unwrap_or(0);
            let rec = &mut self.tvals[id as usize];
            rec.known |= idle | SIGNED;
            rec.same |= idle;
        }
        if steps & !self.tvals[id as usize].same == 0 {
            // Every step leaves these bytes unchanged (proven from them, or seen before).
            self.entries.push(Entry { name, tval: id });
            return;
        }
        if self.push_linked(chain_id, name, id) {
            return;
        }
        let TVal { value: (a, b), proven, .. } = self.tvals[id as usize];
        if proven != 0 && steps & !transform::identity::exact_up_to_case(proven & !SIGNED) == 0 {
            // Every step but the case mappings is proven idle from bytes that are not
            // letters: the output is the record's bytes in the case of the last mapping,
            // written straight into the arena (no block of its own, no second copy).
            let v0 = self.values.len();
            self.values.extend_from_within(a as usize..b as usize);
            match transform::identity::last_case_map(chain) {
                Some(Transformation::Lowercase) => self.values[v0..].make_ascii_lowercase(),
                Some(_) => self.values[v0..].make_ascii_uppercase(),
                None => {}
            }
            let tval = if self.values[v0..] == self.values[a as usize..b as usize] {
                self.values.truncate(v0);
                id
            } else {
                self.record_arena_tail(v0)
            };
            self.link(id, chain_id, name, tval);
            return;
        }
        // The bytes are read from `values` while the chain's bookkeeping writes `tvals`:
        // `values` is set aside meanwhile (a move, not a copy).
        let values = std::mem::take(&mut self.values);
        let (a, b) = self.tvals[id as usize].value;
        let raw = &values[a as usize..b as usize];
        let out = self.run_chain(id, chain, raw).filter(|o| o.as_ref() != raw).map(Cow::into_owned);
        self.values = values;
        let tval = match out {
            Some(out) => self.push_tval(&out),
            None => id,
        };
        self.link(id, chain_id, name, tval);
    }

    /// Pushes the entry of record `id` through chain `chain_id` when that chain already ran
    /// over it; false when it did not.
    fn push_linked(&mut self, chain_id: u32, name: (u32, u32), id: u32) -> bool {
        let mut link = self.tvals[id as usize].chains;
        while let Some(&(c, tval, next)) = self.links.get(link as usize) {
            if c == chain_id {
                self.entries.push(Entry { name, tval });
                return true;
            }
            link = next;
        }
        false
    }

    /// Records that chain `chain_id` turns record `id` into `tval`, and pushes the entry.
    fn link(&mut self, id: u32, chain_id: u32, name: (u32, u32), tval: u32) {
        let rec = &mut self.tvals[id as usize];
        self.links.push((chain_id, tval, rec.chains));
        rec.chains = (self.links.len() - 1) as u32;
        self.entries.push(Entry { name, tval });
    }

    /// `chain` on the raw bytes of record `id`, skipping the steps already known to leave
    /// them unchanged: `None` when every step does, else the chain's output.
    fn run_chain<'v>(
        &mut self,
        id: u32,
        chain: &[Transformation],
        raw: &'v [u8],
    ) -> Option<Cow<'v, [u8]>> {
        for (i, &t) in chain.iter().enumerate() {
            let bit = 1u64 << (t as u32);
            let rec = &mut self.tvals[id as usize];
            if rec.known & bit != 0 {
                if rec.same & bit != 0 {
                    continue;
                }
                return Some(transform::apply_chain(&chain[i..], raw));
            }
            let out = transform::apply(t, raw);
            let rec = &mut self.tvals[id as usize];
            rec.known |= bit;
            if out.as_ref() == raw {
                rec.same |= bit;
                continue;
            }
            return Some(transform::continue_chain(&chain[i + 1..], out));
        }
        None
    }

    /// What [`transform::identity::proven`] answers for record `id`, asked once per record;
    /// `None` for a record longer than `max_len` not signed yet.
    fn proven(&mut self, id: u32, max_len: usize) -> Option<u64> {
        let rec = &self.tvals[id as usize];
        if rec.proven != 0 {
            return Some(rec.proven & !SIGNED);
        }
        let (a, b) = rec.value;
        if (b - a) as usize > max_len {
            return None;
        }
        let slot = self.memo_slot(id as usize);
        let memo = slot.map_or(0, |s| self.memo.proven(s));
        let p = if memo != 0 {
            memo & !SIGNED
        } else {
            let p = transform::identity::proven(&self.values[a as usize..b as usize]);
            if let Some(s) = slot {
                self.memo.set_proven(s, p | SIGNED);
            }
            p
        };
        self.tvals[id as usize].proven = p | SIGNED;
        Some(p)
    }

    /// The [`ValueMemo`] slot of record `tv`, looked up once per record.
    fn memo_slot(&mut self, tv: usize) -> Option<usize> {
        match self.tvals[tv].memo {
            0 => {}
            1 => return None,
            m => return Some(m as usize - 2),
        }
        let (a, b) = self.tvals[tv].value;
        let slot = self.memo.slot(&self.values[a as usize..b as usize]);
        self.tvals[tv].memo = slot.map_or(1, |s| s as u32 + 2);
        slot
    }

    fn push_tval(&mut self, bytes: &[u8]) -> u32 {
        let v0 = self.values.len();
        self.values.extend_from_slice(bytes);
        self.record_arena_tail(v0)
    }

    /// A record of the bytes `values[v0..]`, already in the arena.
    fn record_arena_tail(&mut self, v0: usize) -> u32 {
        let tv = self.tvals.len() as u32;
        self.tvals.push(TVal {
            value: (v0 as u32, self.values.len() as u32),
            bits: u32::MAX,
            known: 0,
            same: 0,
            chains: u32::MAX,
            pm: 0,
            proven: 0,
            memo: 0,
        });
        tv
    }

    /// The name of entry `i`, in this cache's names or in `data`'s.
    pub(crate) fn name<'a>(&'a self, i: usize, data: &'a RequestData) -> &'a str {
        match self.entries[i].name {
            (a, b) if a & IN_REQUEST != 0 => {
                data.names_arena().get((a & !IN_REQUEST) as usize..b as usize).unwrap_or("")
            }
            (a, b) => &self.names[a as usize..b as usize],
        }
    }

    pub(crate) fn value(&self, i: usize) -> &[u8] {
        let (a, b) = self.tvals[self.entries[i].tval as usize].value;
        &self.values[a as usize..b as usize]
    }

    /// True when the regex in `slot` provably matches no value of these sources: no value
    /// can match (too short, or a required literal missing). Lists not built yet are built
    /// and values not scanned yet are scanned now, as the rule itself would; a source whose
    /// chain changes its values in case at most is answered from its raw list instead
    /// ([`RawList`]). False means "run the rule" (a value that may match, or a list past the
    /// memory bound).
    pub(crate) fn no_match(
        &mut self,
        sids: &[u32],
        slot: RxSlot,
        table: &SourceTable,
        data: &RequestData,
    ) -> bool {
        sids.iter().all(|&sid| {
            if let Some(may) = self.raw_may_match(sid, slot, table, data) {
                return !may;
            }
            match self.list(sid, table, data) {
                Some(r) => !self.list_may_match(sid, r, slot, &table.prefilter),
                None => false,
            }
        })
    }

    /// Whether the regex in `slot` could match some value of source `sid`, answered from
    /// its raw list when its chain changes every value in case at most; `None` when it does
    /// not (its list is then built, and its own union taken), when its list was built before
    /// the raw list's view was taken, and past the memory bound.
    fn raw_may_match(
        &mut self,
        sid: u32,
        slot: RxSlot,
        table: &SourceTable,
        data: &RequestData,
    ) -> Option<bool> {
        let SourceHot { steps, raw, .. } = *table.hot.get(sid as usize)?;
        let (r0, r1) = self.raw_list(sid, raw, table, data)?;
        let raw = raw as usize;
        if self.raws[raw].idle == 0 {
            // Not taken yet: a source whose list a rule built already answers from its own.
            if self.lists.get(sid as usize)?.0 == self.generation {
                return None;
            }
            let (mut idle, mut longest) = (!0u64, 0u32);
            for i in r0..r1 {
                let Some((rec, len)) = self.record_at(i, true) else { continue };
                longest = longest.max(len);
                let proven = self.proven(rec as u32, transform::identity::FOLD_SIGN_MAX);
                idle &= transform::identity::but_case(proven);
            }
            let row = &mut self.raws[raw];
            (row.idle, row.longest, row.bits) = (idle, longest, u32::MAX);
        }
        let RawList { idle, longest, bits, pm, .. } = self.raws[raw];
        if steps & !idle != 0 {
            return None;
        }
        if longest < slot.min_len {
            return Some(false);
        }
        let g = &table.prefilter;
        if let Some(bit) = slot.pm_bit() {
            let mut pm = pm;
            if pm == 0 {
                pm = self.pm_union_of(r0..r1, true, g).0;
                self.raws[raw].pm = pm;
            }
            return Some(pm & bit != 0);
        }
        let mut off = bits as usize;
        if bits == u32::MAX {
            off = self.union_of(r0..r1, true, g).0;
            self.raws[raw].bits = off as u32;
        }
        Some(self.has_bit(off, slot))
    }

    /// The value record of the `i`th value of a raw list (`raw_records`) or of a source's
    /// list (`entries`), and its length; `None` for a raw value the exclusions drop.
    fn record_at(&self, i: usize, raw: bool) -> Option<(usize, u32)> {
        let rec = if raw { self.raw_records[i] } else { self.entries[i].tval };
        if rec == NO_RECORD {
            return None;
        }
        let (a, b) = self.tvals[rec as usize].value;
        Some((rec as usize, b - a))
    }

    /// The union of the prefilter bits of the records at `r` ([`SourceCache::record_at`]),
    /// scanning those not scanned yet: its offset in `bits`, and the longest value.
    fn union_of(&mut self, r: std::ops::Range<usize>, raw: bool, g: &Prefilter) -> (usize, u32) {
        let off = self.bits.len();
        self.bits.resize(off + g.words, 0);
        let mut longest = 0;
        for i in r {
            let Some((rec, len)) = self.record_at(i, raw) else { continue };
            longest = longest.max(len);
            let from = self.scan(rec, g);
            for w in 0..g.words {
                let x = self.bits[from + w];
                self.bits[off + w] |= x;
            }
        }
        (off, longest)
    }

    /// The union of the `@pm` masks of the records at `r` (with [`PM_SCANNED`], so never 0),
    /// and the longest value.
    fn pm_union_of(&mut self, r: std::ops::Range<usize>, raw: bool, g: &Prefilter) -> (u64, u32) {
        let (mut mask, mut longest) = (PM_SCANNED, 0);
        for i in r {
            let Some((rec, len)) = self.record_at(i, raw) else { continue };
            longest = longest.max(len);
            mask |= self.pm_mask(rec, g);
        }
        (mask, longest)
    }

    /// Whether the regex in `slot` could match some value of list `sid` (entries `r`): the
    /// list's union of bits has the slot's bit and its longest value is long enough. Coarser
    /// than asking each value (a long value without the literal and a short one with it pass
    /// together), so "may match" only sends the rule to its per-value checks; but each later
    /// plan over the same list is one bit test instead of one per value.
    fn list_may_match(
        &mut self,
        sid: u32,
        r: std::ops::Range<usize>,
        slot: RxSlot,
        g: &Prefilter,
    ) -> bool {
        if r.is_empty() {
            return false;
        }
        if let Some(bit) = slot.pm_bit() {
            let (ug, mut mask, mut longest) = self.pm_unions[sid as usize];
            if ug != self.generation {
                (mask, longest) = self.pm_union_of(r, false, g);
                self.pm_unions[sid as usize] = (self.generation, mask, longest);
            }
            return longest >= slot.min_len && mask & bit != 0;
        }
        let (ug, mut off, mut longest) = self.unions[sid as usize];
        if ug != self.generation {
            let (o, l) = self.union_of(r, false, g);
            (off, longest) = (o as u32, l);
            self.unions[sid as usize] = (self.generation, off, longest);
        }
        longest >= slot.min_len && self.has_bit(off as usize, slot)
    }

    /// Whether the bits at `off` (one value's, or a list's union) have `slot`'s bit.
    fn has_bit(&self, off: usize, slot: RxSlot) -> bool {
        self.bits[off + (slot.slot / 64) as usize] & (1u64 << (slot.slot % 64)) != 0
    }

    /// Whether the regex in `slot` could match entry `i` (which belongs to a source of the
    /// slot's chain).
    pub(crate) fn may_match(&mut self, i: usize, slot: RxSlot, g: &Prefilter) -> bool {
        let tv = self.entries[i].tval as usize;
        let (a, b) = self.tvals[tv].value;
        if (b - a) < slot.min_len {
            return false;
        }
        if let Some(bit) = slot.pm_bit() {
            return self.pm_mask(tv, g) & bit != 0;
        }
        let off = self.scan(tv, g);
        self.has_bit(off, slot)
            && !self.memo_slot(tv).is_some_and(|s| self.memo.known(s, slot.slot, false))
    }

    /// What the memo knows of the regex with verdict number `v` on entry `i`: it matched
    /// (`Some(true)`), it did not (`Some(false)`), or nothing.
    pub(crate) fn known_verdict(&mut self, i: usize, v: u32) -> Option<bool> {
        let s = self.memo_slot(self.entries[i].tval as usize)?;
        [false, true].into_iter().find(|&hit| self.memo.known(s, v, hit))
    }

    /// The regex with verdict number `v` ran on entry `i` and matched or not: its value's memo
    /// slot keeps that, for [`SourceCache::may_match`] and [`SourceCache::known_verdict`] in
    /// later transactions.
    pub(crate) fn note_verdict(&mut self, i: usize, v: u32, hit: bool) {
        if let Some(s) = self.memo_slot(self.entries[i].tval as usize) {
            self.memo.set_known(s, v, hit);
        }
    }

    /// The `@pm` lists that occur in value record `tv` (with [`PM_SCANNED`]), scanning it on
    /// first use; every list when the rule set has no phrase table or the value does not fit
    /// in what is left of [`PM_BUDGET`].
    fn pm_mask(&mut self, tv: usize, g: &Prefilter) -> u64 {
        let TVal { value: (a, b), pm, .. } = self.tvals[tv];
        if pm != 0 {
            return pm;
        }
        let len = (b - a) as usize;
        let slot = self.memo_slot(tv);
        if let Some(m) = slot.map(|s| self.memo.pm(s)).filter(|&m| m != 0) {
            self.tvals[tv].pm = m;
            return m;
        }
        let m = match &g.phrases {
            Some(t) if len <= self.pm_budget => {
                self.pm_budget -= len;
                let m = t.mask_of(&self.values[a as usize..b as usize]) | PM_SCANNED;
                if let Some(s) = slot {
                    self.memo.set_pm(s, m);
                }
                m
            }
            _ => !0,
        };
        self.tvals[tv].pm = m;
        m
    }

    /// The offset of the prefilter bits of value record `tv`, scanning it on first use.
    fn scan(&mut self, tv: usize, g: &Prefilter) -> usize {
        let TVal { value: (a, b), bits, .. } = self.tvals[tv];
        if bits == u32::MAX {
            let value = &self.values[a as usize..b as usize];
            if value.len() >= SHARE_SCAN_MIN {
                let h = fold_hash(value);
                if let Some(&o) = self.scanned.get(&h) {
                    let TVal { value: (oa, ob), bits: ob_bits, .. } = self.tvals[o as usize];
                    if fold_eq(value, &self.values[oa as usize..ob as usize]) {
                        self.tvals[tv].bits = ob_bits;
                        return ob_bits as usize;
                    }
                } else {
                    self.scanned.insert(h, tv as u32);
                }
            }
            let off = self.bits.len();
            let slot = self.memo_slot(tv);
            if let Some(bits) = slot.and_then(|s| self.memo.bits(s)) {
                self.bits.extend_from_slice(bits);
            } else {
                self.bits.resize(off + g.words, 0);
                g.scan_into(&self.values[a as usize..b as usize], &mut self.bits[off..]);
                if let Some(s) = slot {
                    self.memo.set_bits(s, &self.bits[off..]);
                }
            }
            self.tvals[tv].bits = off as u32;
            off
        } else {
            bits as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Literals, PhraseTable, Prefilter, fold_eq, fold_hash, fold_word};

    /// A value's answers come back in later transactions, for its exact bytes only; a slot a
    /// transaction uses is not taken from it; another prefilter empties the memo.
    #[test]
    fn the_value_memo_keeps_answers_by_exact_bytes() {
        use super::{MEMO_SLOTS, ValueMemo};
        let slot_of =
            |v: &[u8]| (ValueMemo::hash(v) >> (64 - MEMO_SLOTS.trailing_zeros())) as usize;
        let v1 = b"Mozilla/5.0 (X11; Linux x86_64)".as_slice();
        // Another value in the same slot, and v1 in another case.
        let v2 = (0..)
            .map(|i| format!("value number {i}").into_bytes())
            .find(|v| slot_of(v) == slot_of(v1))
            .unwrap();
        let upper = v1.to_ascii_uppercase();
        let mut m = ValueMemo::default();
        m.start(7, 2, 3);
        let s = m.slot(v1).unwrap();
        assert_eq!(m.bits(s), None);
        m.set_bits(s, &[1, 2]);
        m.set_pm(s, 3);
        m.set_proven(s, 4);
        m.set_known(s, 70, false);
        // A regex without a slot: its number comes after the slots' 128 bits.
        m.set_known(s, super::VERDICT_ONLY | 5, true);
        // Same transaction: v1's slot is in use, v2 gets none.
        assert_eq!(m.slot(&v2), None);
        m.start(7, 2, 3);
        let s = m.slot(v1).unwrap();
        assert_eq!((m.bits(s), m.pm(s), m.proven(s)), (Some(&[1u64, 2][..]), 3, 4));
        assert!(m.known(s, 70, false) && !m.known(s, 6, false) && !m.known(s, 69, false));
        assert!(!m.known(s, 70, true), "a miss is not a hit");
        let only = super::VERDICT_ONLY | 5;
        assert!(m.known(s, only, true) && !m.known(s, only, false) && !m.known(s, 5, true));
        if slot_of(&upper) == s {
            let u = m.slot(&upper);
            assert_eq!(u, None, "in use by v1 in this transaction");
        }
        m.start(7, 2, 3);
        let s2 = m.slot(&v2).unwrap();
        assert_eq!(s2, s);
        assert_eq!((m.bits(s2), m.pm(s2), m.proven(s2)), (None, 0, 0), "v2 took the slot empty");
        assert!(!m.known(s2, 70, false), "v2 took the slot empty");
        assert!(!m.known(s2, super::VERDICT_ONLY | 5, true), "v2 took the slot empty");
        m.start(7, 2, 3);
        let s = m.slot(v1).unwrap();
        assert_eq!(m.bits(s), None, "v1's answers went with its slot");
        m.set_bits(s, &[5, 6]);
        m.start(7, 2, 3);
        if let Some(u) = m.slot(&upper) {
            assert_eq!(m.bits(u), None, "another case is another key");
        }
        m.start(7, 2, 3);
        let s = m.slot(v1).unwrap();
        assert_eq!(m.bits(s), Some(&[5u64, 6][..]));
        m.start(8, 2, 3);
        let s = m.slot(v1).unwrap();
        assert_eq!(m.bits(s), None, "another prefilter empties the memo");
        m.set_bits(s, &[7, 8]);
        m.start(7, 3, 3);
        let s = m.slot(v1).unwrap();
        assert_eq!(m.bits(s), None, "so does one of another width");
        assert_eq!(m.slot(b"short"), None);
        assert_eq!(m.slot(&[b'a'; super::MEMO_MAX + 1]), None);
    }

    /// Memo slots start cache lines, so that a lookup's head and the bits a scan reads are
    /// one line; and when the transaction count nears the stamp's width the memo empties
    /// itself and goes on counting from 1.
    #[test]
    fn memo_slots_start_lines_and_outlive_the_stamp_width() {
        use super::{MEMO_SLOTS, MEMO_TXN_MAX, ValueMemo};
        let mut m = ValueMemo::default();
        m.start(7, 4, 5);
        assert_eq!(m.stride % 8, 0);
        for slot in [0, 1, 2, MEMO_SLOTS - 1] {
            assert_eq!(m.row(slot).as_ptr() as usize % 64, 0, "slot {slot}");
        }
        let v = b"Mozilla/5.0 (X11; Linux x86_64)".as_slice();
        let s = m.slot(v).unwrap();
        m.set_bits(s, &[1, 2, 3, 4]);
        m.set_known(s, 300, true);
        m.start(7, 4, 5);
        let s = m.slot(v).unwrap();
        assert_eq!(m.bits(s), Some(&[1u64, 2, 3, 4][..]));
        assert!(m.known(s, 300, true));
        m.txn = MEMO_TXN_MAX - 1;
        m.start(7, 4, 5);
        assert_eq!((m.txn, m.floor), (1, 1));
        let s = m.slot(v).unwrap();
        assert_eq!(m.bits(s), None, "emptied");
        assert!(!m.known(s, 300, true), "emptied");
        m.set_bits(s, &[5, 6, 7, 8]);
        m.start(7, 4, 5);
        let s = m.slot(v).unwrap();
        assert_eq!(m.bits(s), Some(&[5u64, 6, 7, 8][..]), "kept again after the restart");
    }

    /// A source's description is one cache line, and the table's are line-aligned.
    #[test]
    fn a_source_desc_is_one_line() {
        assert_eq!(std::mem::size_of::<super::SourceDesc>(), 64);
        assert_eq!(std::mem::align_of::<super::SourceDesc>(), 64);
    }

    /// The per-literal masks give the same bits as the slot lists they replace, in either
    /// ASCII case, for a literal in several slots and a slot past the first word.
    #[test]
    fn byte_masks_set_the_slots_of_the_literals_present() {
        let lits =
            vec![(b'<', vec![0, 70]), (b'a', vec![3]), (b'%', vec![64, 3]), (b'\0', vec![5])];
        let fast = Prefilter::new(None, Vec::new(), lits.clone(), 80);
        let mut slow = Prefilter::new(None, Vec::new(), lits, 80);
        slow.byte_bit.clear();
        slow.byte_masks.clear();
        let want = |set: &[u32]| {
            let mut w = vec![0u64; 2];
            set.iter().for_each(|&s| w[(s / 64) as usize] |= 1 << (s % 64));
            w
        };
        let cases: [(&[u8], &[u32]); 6] = [
            (b"", &[]),
            (b"xyz", &[]),
            (b"A", &[3]),
            (b"x<y", &[0, 70]),
            (b"<%A", &[0, 3, 64, 70]),
            (b"\0", &[5]),
        ];
        for (value, set) in cases {
            for p in [&fast, &slow] {
                let mut bits = vec![0u64; 2];
                p.or_byte_bits(value, &mut bits);
                assert_eq!(bits, want(set), "{value:?}");
            }
        }
    }

    /// The patterns as bytes, and their automaton, which must be a [`LitTable`].
    fn table_of(patterns: &[String]) -> (Vec<&[u8]>, Literals) {
        let pats: Vec<&[u8]> = patterns.iter().map(|p| p.as_bytes()).collect();
        let table = Literals::build(&pats).unwrap();
        assert!(matches!(table, Literals::Table(_)));
        (pats, table)
    }

    /// The lists of `lists` with a phrase that occurs in `value`, ASCII case folded.
    fn lists_in(lists: &[Vec<Vec<u8>>], value: &[u8]) -> u64 {
        let low = value.to_ascii_lowercase();
        lists.iter().enumerate().fold(0, |m, (bit, phrases)| {
            let hit = phrases.iter().any(|p| low.windows(p.len()).any(|w| w == p.as_slice()));
            if hit { m | 1 << bit } else { m }
        })
    }

    proptest::proptest! {
        /// A value's phrase mask has exactly the lists with a phrase in it (either ASCII
        /// case), plus every list left out of the table; so a clear bit proves the list
        /// absent.
        #[test]
        fn phrase_masks_are_the_lists_that_occur(
            lists in proptest::collection::vec(
                proptest::collection::vec("[ab;-]{1,4}", 1..5), 1..6),
            left_out in 0usize..3,
            value in "[abAB;c-]{0,40}",
        ) {
            let lists: Vec<Vec<Vec<u8>>> =
                lists.iter().map(|l| l.iter().map(|p| p.as_bytes().to_vec()).collect()).collect();
            let take: Vec<usize> = (0..lists.len()).filter(|&i| i != left_out).collect();
            let mut tables = vec![PhraseTable::build(&lists).expect("small lists fit")];
            if !take.is_empty() {
                tables.push(PhraseTable::build_of(&lists, &take).expect("small lists fit"));
            }
            for table in tables {
                let mut want = lists_in(&lists, value.as_bytes());
                if table.left_out != 0 {
                    proptest::prop_assert_eq!(table.left_out, 1 << left_out);
                    want |= table.left_out;
                }
                proptest::prop_assert_eq!(table.mask_of(value.as_bytes()), want);
            }
        }
    }

    /// Counts per pattern of its (overlapping, ASCII case-insensitive) occurrences.
    fn occurrences(lits: &Literals, value: &[u8], patterns: usize) -> Vec<usize> {
        let mut n = vec![0; patterns];
        lits.patterns_in(value, |p| n[p] += 1);
        n
    }

    proptest::proptest! {
        /// The table's walk and the DFA's report each occurrence of each pattern once, as the
        /// crate's own automaton (the fallback) and a plain search do.
        #[test]
        fn the_dfa_walk_finds_every_occurrence(
            patterns in proptest::collection::vec("[abAB\\-]{1,4}", 1..8),
            value in "[abcABC\\-]{0,40}",
        ) {
            let (pats, table) = table_of(&patterns);
            // The crate's DFA walked as is: the path of DFAs with more than 2^15 states.
            let dfa = Literals::Dfa(Literals::dfa(&pats).unwrap());
            let other = Literals::Other(
                aho_corasick::AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&pats)
                    .unwrap(),
            );
            let v = value.as_bytes();
            let want: Vec<usize> = pats
                .iter()
                .map(|p| v.windows(p.len()).filter(|w| w.eq_ignore_ascii_case(p)).count())
                .collect();
            proptest::prop_assert_eq!(occurrences(&table, v, pats.len()), want.clone());
            proptest::prop_assert_eq!(occurrences(&dfa, v, pats.len()), want.clone());
            proptest::prop_assert_eq!(occurrences(&other, v, pats.len()), want);
        }

        /// The fused pass (automaton and one-byte literals together) sets the bits of the
        /// two passes it replaces.
        #[test]
        fn one_pass_scans_as_two(
            patterns in proptest::collection::vec("[abAB<\\-]{2,4}", 1..6),
            value in "[abcABC<%\\-]{0,40}",
        ) {
            let (pats, ac) = table_of(&patterns);
            let slots: Vec<Vec<u32>> = (0..pats.len() as u32).map(|i| vec![i * 13 % 80]).collect();
            let bytes = vec![(b'<', vec![1, 70]), (b'a', vec![3]), (b'%', vec![64])];
            let p = Prefilter::new(Some(ac), slots.clone(), bytes, 80);
            let mut fused = vec![0u64; 2];
            p.scan_into(value.as_bytes(), &mut fused);
            let mut two = vec![0u64; 2];
            if let Some(ac) = &p.ac {
                ac.patterns_in(value.as_bytes(), |i| {
                    slots[i].iter().for_each(|&s| two[(s / 64) as usize] |= 1 << (s % 64))
                });
            }
            p.or_byte_bits(value.as_bytes(), &mut two);
            proptest::prop_assert_eq!(fused, two);
        }
    }

    /// Every byte value, in every position of the word, folds as `to_ascii_lowercase`.
    #[test]
    fn fold_word_lowers_ascii_letters_only() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = [b'%'; 8];
                bytes[pos] = b;
                let mut want = bytes;
                want.make_ascii_lowercase();
                assert_eq!(
                    fold_word(u64::from_le_bytes(bytes)).to_le_bytes(),
                    want,
                    "byte {b:#04x} at {pos}"
                );
            }
        }
    }

    #[test]
    fn fold_eq_is_eq_ignore_ascii_case() {
        let vals: [&[u8]; 9] = [
            b"",
            b"Mozilla/5.0 (X11; Linux x86_64)",
            b"mozilla/5.0 (x11; linux x86_64)",
            b"MOZILLA/5.0 (X11; LINUX X86_64)",
            b"mozilla/5.0 (x11; linux x86_64) ",
            b"\xc3\x89t\xc3\xa9",
            b"\xc3\xa9t\xc3\xa9",
            b"@[`{",
            b"`{@[",
        ];
        for a in vals {
            for b in vals {
                assert_eq!(fold_eq(a, b), a.eq_ignore_ascii_case(b), "{a:?} {b:?}");
                if a.eq_ignore_ascii_case(b) {
                    assert_eq!(fold_hash(a), fold_hash(b));
                }
            }
        }
        // Zero padding does not make a shorter value equal to one ending in NULs.
        assert!(!fold_eq(b"abc", b"abc\0"));
        assert_ne!(fold_hash(b"abc"), fold_hash(b"abc\0"));
    }

    /// The tail word is the last bytes zero-padded, for every length up to 40 bytes at eight
    /// offsets (so every alignment of the loads).
    #[test]
    fn tail_word_is_the_padded_tail() {
        let text: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37).wrapping_add(0xa5)).collect();
        for start in 0..8 {
            for n in 1..=text.len() - start {
                let v = &text[start..start + n];
                if n % 8 == 0 {
                    continue;
                }
                let mut b = [0u8; 8];
                b[..n % 8].copy_from_slice(&v[n - n % 8..]);
                assert_eq!(super::tail_word(v), u64::from_le_bytes(b), "{n} bytes from {start}");
            }
        }
    }

    /// The words are the value's zero-padded little-endian words, folded, whatever its
    /// length: the hash of compiled key selectors and of run-time keys agree.
    #[test]
    fn folded_words_are_padded_words() {
        use std::hash::Hasher;
        let text = b"Accept-Language: EN-us,en;q=0.9 \xff\x00Z";
        for n in 0..=text.len() {
            let v = &text[..n];
            let mut h = super::KeyHasher(n as u64);
            for c in v.chunks(8) {
                let mut b = [0u8; 8];
                b[..c.len()].copy_from_slice(c);
                h.write_u64(fold_word(u64::from_le_bytes(b)));
            }
            assert_eq!(fold_hash(v), h.finish(), "{n} bytes");
        }
    }
}
