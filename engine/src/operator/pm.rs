//! `@pm` / `@pmFromFile`: ASCII case-insensitive search for any of a list of phrases, with
//! exactly the answer libmodsecurity3 (v3.0.9) gives.
//!
//! Data flow: `PhraseMatcher::new(phrases)` builds two things from one phrase list:
//! 1. a fast `aho_corasick` automaton (the *prefilter*) that finds true occurrences, and
//! 2. `ModsecTrie`, a replica of ModSecurity's own keyword tree (`src/utils/acmp.cc`) whose
//!    fail links are built the way ModSecurity builds them.
//!
//! Why both: ModSecurity's automaton is not a textbook Aho-Corasick. In
//! `acmp_connect_fail_branches` a node's fail link is `child(parent.fail, letter)` or the root:
//! it never walks further up the parent's fail chain. So with phrases `abcd bq cz` the input
//! `abcz` does NOT match in ModSecurity (checked against libmodsecurity3 3.0.9), although `cz`
//! occurs. Every match ModSecurity reports is still a true occurrence (each trie state is a
//! suffix of the input read so far), so a prefilter miss proves a ModSecurity miss; that is the
//! common case for benign traffic and costs one pass of the fast automaton. When the phrase
//! list builds the same fail links as a textbook automaton (checked at build time; true for
//! most lists) the prefilter's answer *is* ModSecurity's answer and the replica only runs over
//! the last few bytes of a match to recover the reported text.
//!
//! What ModSecurity reports (`acmp_process_quick`, `Pm::evaluate`): it stops at the first
//! input position where a phrase *ends*, and reports the text of the trie node it stands on -
//! which may be longer than the phrase (phrases `xabcd abc`, input `yXaBc` gives TX.0 = `xabc`)
//! and is spelled as in the phrase that created the node (phrases `ABCD abc`, input `zzabc`
//! gives TX.0 = `ABC`). Case folding is C `tolower`, i.e. ASCII only.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use std::ops::Range;

/// Index of the root node in [`ModsecTrie::nodes`].
const ROOT: u32 = 0;

/// One ModSecurity match: where it is in the haystack and the text ModSecurity stores in
/// `TX.0` with `capture` (and in `MATCHED_VAR`'s log offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmMatch<'m> {
    /// Byte range in the haystack: ends where the first phrase ends, as long as the node text.
    pub range: Range<usize>,
    /// The node text, spelled as in the phrase that created the trie node.
    pub text: &'m [u8],
}

/// A compiled `@pm` phrase list. Cheap to share between threads (`Send + Sync`).
#[derive(Debug, Clone)]
pub struct PhraseMatcher {
    prefilter: AhoCorasick,
    trie: ModsecTrie,
    /// The phrases as given, in insertion order (node texts are prefixes of these).
    spelled: Vec<Vec<u8>>,
    /// Inputs shorter than the shortest phrase cannot match: skipped without a scan
    /// (Coraza measured 98 ns -> 2 ns for this check).
    min_len: usize,
    /// Longest phrase: a trie state is never deeper.
    max_len: usize,
    /// ModSecurity's fail links equal the textbook ones, so the prefilter's answer is exact.
    textbook: bool,
}

impl PhraseMatcher {
    /// Builds a matcher from phrases, matched ASCII case-insensitively. Empty phrases are
    /// dropped (ModSecurity adds nothing for them); an empty list never matches.
    pub fn new<S: AsRef<[u8]>>(phrases: &[S]) -> Result<PhraseMatcher, String> {
        let spelled: Vec<Vec<u8>> =
            phrases.iter().map(|p| p.as_ref().to_vec()).filter(|p| !p.is_empty()).collect();
        let prefilter = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(choose_kind(spelled.len()))
            .build(&spelled)
            .map_err(|e| format!("@pm: cannot build matcher for {} phrases: {e}", spelled.len()))?;
        let trie = ModsecTrie::build(&spelled);
        let textbook = trie.has_textbook_fail_links();
        let min_len = spelled.iter().map(Vec::len).min().unwrap_or(usize::MAX);
        let max_len = spelled.iter().map(Vec::len).max().unwrap_or(0);
        Ok(PhraseMatcher { prefilter, trie, spelled, min_len, max_len, textbook })
    }

    /// The phrases, as given (empty ones dropped): every match is an occurrence of one of
    /// them, ASCII case folded (see the module docs).
    pub fn phrases(&self) -> &[Vec<u8>] {
        &self.spelled
    }

    /// The match ModSecurity reports: it ends where the earliest-ending phrase ends and covers
    /// the text of the trie node reached there (see the module docs), or `None`.
    pub fn find(&self, haystack: &[u8]) -> Option<Range<usize>> {
        self.find_capture(haystack).map(|m| m.range)
    }

    /// Like [`find`](Self::find), also returning the text ModSecurity puts in `TX.0`.
    pub fn find_capture(&self, haystack: &[u8]) -> Option<PmMatch<'_>> {
        if haystack.len() < self.min_len {
            return None;
        }
        let (end, node) = if self.textbook {
            let first = self.prefilter.find(haystack)?;
            // With textbook fail links, the state at `end` is the longest suffix of
            // haystack[..end] that is a trie path, at most `max_len` long, so running the
            // replica over that window reaches the same state; and no phrase ends earlier.
            let start = first.end().saturating_sub(self.max_len);
            let (rel_end, node) = self.trie.first_report(&haystack[start..first.end()])?;
            (start + rel_end, node)
        } else if let Some(d) = &self.trie.dense {
            // One pass of the replica's table beats prefilter + replica on a match (2.5-5x
            // on attack haystacks) and runs at 0.85-1.0x aho-corasick's DFA on benign input.
            d.first_report(haystack)?
        } else {
            self.prefilter.find(haystack)?;
            self.trie.first_report(haystack)?
        };
        let n = &self.trie.nodes[node as usize];
        let depth = n.depth as usize;
        let text =
            self.spelled.get(n.creator as usize).and_then(|p| p.get(..depth)).unwrap_or_default();
        Some(PmMatch { range: end - depth..end, text })
    }

    /// Whether ModSecurity's `@pm` would match `haystack`.
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        if haystack.len() < self.min_len {
            return false;
        }
        if self.textbook {
            self.prefilter.is_match(haystack)
        } else if let Some(d) = &self.trie.dense {
            d.first_report(haystack).is_some()
        } else {
            self.prefilter.is_match(haystack) && self.trie.first_report(haystack).is_some()
        }
    }

    /// Number of (non-empty) phrases.
    pub fn len(&self) -> usize {
        self.spelled.len()
    }

    /// True when there are no phrases (the matcher never matches).
    pub fn is_empty(&self) -> bool {
        self.spelled.is_empty()
    }

    /// True when ModSecurity's simplified fail links differ from a textbook automaton for this
    /// list, so some occurrences are (faithfully) not reported.
    pub fn has_modsec_fail_quirk(&self) -> bool {
        !self.textbook
    }
}

/// The prefilter's automaton. `wafbench microbench` (CRS data files, synthetic 1k-100k lists,
/// 100 B-64 KB haystacks) found aho-corasick's DFA the fastest library engine up to 10k
/// phrases (0.25-0.45 GB/s, 3-4x its NFAs) but at 5 MB for 1k phrases and 46 MB for 10k;
/// the contiguous NFA is the compact choice beyond (daachorse is faster there, 0.13-0.5 GB/s,
/// but has no case-insensitive mode).
fn choose_kind(patterns: usize) -> Option<AhoCorasickKind> {
    if patterns <= 2_000 {
        Some(AhoCorasickKind::DFA)
    } else {
        Some(AhoCorasickKind::ContiguousNFA)
    }
}

#[derive(Debug, Clone)]
struct Node {
    /// Outgoing edges: `edges[first_edge..first_edge + edge_count]`, sorted by byte.
    first_edge: u32,
    edge_count: u32,
    /// ModSecurity's fail link (see module docs).
    fail: u32,
    /// A phrase ends here, or ModSecurity's `o_match` is set (a phrase ends on the fail chain).
    report: bool,
    /// Depth = length of the node text.
    depth: u32,
    /// The phrase whose insertion created the node: its prefix is the node text.
    creator: u32,
}

/// ModSecurity's keyword tree with its fail links, flattened for lookups.
#[derive(Debug, Clone)]
struct ModsecTrie {
    nodes: Vec<Node>,
    edges: Vec<(u8, u32)>,
    /// Dense transitions out of the root: the first step of every byte.
    root_next: Box<[u32; 256]>,
    /// Textbook fail links, kept only to decide whether the prefilter is exact.
    textbook_fail: Vec<u32>,
    /// The same automaton as a full transition table, when small enough.
    dense: Option<Dense>,
}

/// Cap on the dense table: 4M entries (16 MiB). CRS data files need at most a few hundred
/// thousand; a 100k-phrase list would need tens of millions and keeps the sparse walk.
const MAX_DENSE_ENTRIES: usize = 1 << 22;

/// Marks a table entry whose target state reports a match.
const REPORT_BIT: u32 = 1 << 31;

/// [`REPORT_BIT`] of a narrow table ([`Table::Narrow`]).
const NARROW_REPORT_BIT: u16 = 1 << 15;

/// ModSecurity's automaton with every fail walk precomputed: one table load per input byte.
/// Input bytes map to classes (the distinct case-folded bytes of the phrases, plus class 0
/// for bytes in no phrase, which always lead back to the root).
#[derive(Debug, Clone)]
struct Dense {
    class: [u8; 256],
    stride: usize,
    next: Table,
}

/// `next[node * stride + class]`: the target's row offset (`target * stride`, premultiplied
/// to save a multiply per byte), with the report bit when it reports.
#[derive(Debug, Clone)]
enum Table {
    /// Tables of at most 2^15 entries (17 of the 24 that CRS PL1 builds), in 16-bit
    /// entries: a row spans half the cache lines, and a decision on a cold cache reads
    /// the lines of the rows it walks.
    Narrow(Box<[u16]>),
    Wide(Box<[u32]>),
}

/// One table load per input byte, up to the first entry with `report` set: (bytes read,
/// node reached).
#[inline]
fn first_report_in<T: Copy + Into<u32>>(
    next: &[T],
    class: &[u8; 256],
    stride: usize,
    report: u32,
    haystack: &[u8],
) -> Option<(usize, u32)> {
    let mut row = ROOT as usize;
    for (i, &b) in haystack.iter().enumerate() {
        let e: u32 = next[row + class[b as usize] as usize].into();
        if e & report != 0 {
            return Some((i + 1, (e & !report) / stride as u32));
        }
        row = e as usize;
    }
    None
}

impl Dense {
    /// The table, narrow when it fits and `narrow` allows it.
    fn build(t: &ModsecTrie, bfs: &[u32], narrow: bool) -> Option<Dense> {
        let mut class = [0u8; 256];
        let mut used = [false; 256];
        for &(c, _) in &t.edges {
            used[c as usize] = true;
        }
        let mut stride = 1usize;
        for c in 0..256usize {
            if used[c] {
                class[c] = u8::try_from(stride).ok()?;
                stride += 1;
            }
        }
        // Input is folded with ASCII tolower before lookup, so fold the class map instead.
        for c in b'A'..=b'Z' {
            class[c as usize] = class[c.to_ascii_lowercase() as usize];
        }
        let entries = t.nodes.len().checked_mul(stride)?;
        if entries > MAX_DENSE_ENTRIES {
            return None;
        }
        let mut next = vec![ROOT; entries];
        // Breadth-first, so a node's fail state (shallower) is filled before the node:
        // delta(n, c) = child(n, c), else delta(fail(n), c), and the root's misses stay root.
        for &n in bfs {
            let node = &t.nodes[n as usize];
            for c in 0..256usize {
                if !used[c] {
                    continue;
                }
                let k = class[c] as usize;
                let target = match t.child(n, c as u8) {
                    Some(g) => g,
                    None if n == ROOT => ROOT,
                    None => (next[node.fail as usize * stride + k] & !REPORT_BIT) / stride as u32,
                };
                let flag = if t.nodes[target as usize].report { REPORT_BIT } else { 0 };
                next[n as usize * stride + k] = (target * stride as u32) | flag;
            }
        }
        // Row offsets are below `entries`, so they fit in 15 bits when it is at most 2^15.
        let next = if narrow && entries <= 1 << 15 {
            let narrow = |e: u32| {
                let flag = if e & REPORT_BIT != 0 { NARROW_REPORT_BIT } else { 0 };
                (e & !REPORT_BIT) as u16 | flag
            };
            Table::Narrow(next.into_iter().map(narrow).collect())
        } else {
            Table::Wide(next.into_boxed_slice())
        };
        Some(Dense { class, stride, next })
    }

    #[inline]
    fn first_report(&self, haystack: &[u8]) -> Option<(usize, u32)> {
        match &self.next {
            Table::Narrow(next) => first_report_in(
                next,
                &self.class,
                self.stride,
                u32::from(NARROW_REPORT_BIT),
                haystack,
            ),
            Table::Wide(next) => {
                first_report_in(next, &self.class, self.stride, REPORT_BIT, haystack)
            }
        }
    }
}

impl ModsecTrie {
    fn build(phrases: &[Vec<u8>]) -> ModsecTrie {
        Self::build_with(phrases, true)
    }

    /// [`ModsecTrie::build`], its dense table narrow when it fits and `narrow` allows it.
    fn build_with(phrases: &[Vec<u8>], narrow: bool) -> ModsecTrie {
        // Growing trie: children kept as small sorted vectors while inserting.
        let mut children: Vec<Vec<(u8, u32)>> = vec![Vec::new()];
        let mut depth = vec![0u32];
        let mut creator = vec![0u32];
        let mut is_last = vec![false];
        for (pi, phrase) in phrases.iter().enumerate() {
            let mut node = ROOT;
            for (i, &b) in phrase.iter().enumerate() {
                let c = b.to_ascii_lowercase();
                let kids = &children[node as usize];
                node = match kids.binary_search_by_key(&c, |&(k, _)| k) {
                    Ok(at) => kids[at].1,
                    Err(at) => {
                        let id = children.len() as u32;
                        children[node as usize].insert(at, (c, id));
                        children.push(Vec::new());
                        depth.push(i as u32 + 1);
                        creator.push(pi as u32);
                        is_last.push(false);
                        id
                    }
                };
            }
            is_last[node as usize] = true;
        }

        let child = |n: u32, c: u8| -> Option<u32> {
            let kids = &children[n as usize];
            kids.binary_search_by_key(&c, |&(k, _)| k).ok().map(|at| kids[at].1)
        };
        // Breadth-first: a node's fail depends only on its parent's.
        let n = children.len();
        let mut modsec_fail = vec![ROOT; n];
        let mut textbook_fail = vec![ROOT; n];
        let mut queue = std::collections::VecDeque::new();
        let mut bfs = vec![ROOT];
        for &(_, k) in &children[ROOT as usize] {
            queue.push_back(k);
        }
        while let Some(parent) = queue.pop_front() {
            bfs.push(parent);
            for &(c, k) in &children[parent as usize] {
                // acmp.cc: `acmp_child_for_code(node->parent->fail, node->letter)` or root.
                modsec_fail[k as usize] = child(modsec_fail[parent as usize], c).unwrap_or(ROOT);
                let mut f = textbook_fail[parent as usize];
                textbook_fail[k as usize] = loop {
                    if let Some(g) = child(f, c) {
                        break g;
                    }
                    if f == ROOT {
                        break ROOT;
                    }
                    f = textbook_fail[f as usize];
                };
                queue.push_back(k);
            }
        }
        // acmp_connect_other_matches: the first phrase end on the (ModSecurity) fail chain.
        let report: Vec<bool> = (0..n)
            .map(|i| {
                if is_last[i] {
                    return true;
                }
                let mut f = modsec_fail[i];
                while f != ROOT {
                    if is_last[f as usize] {
                        return true;
                    }
                    f = modsec_fail[f as usize];
                }
                false
            })
            .collect();

        let mut edges = Vec::with_capacity(n.saturating_sub(1));
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            nodes.push(Node {
                first_edge: edges.len() as u32,
                edge_count: children[i].len() as u32,
                fail: modsec_fail[i],
                report: report[i] && i != ROOT as usize,
                depth: depth[i],
                creator: creator[i],
            });
            edges.extend_from_slice(&children[i]);
        }
        let mut root_next = Box::new([ROOT; 256]);
        for &(c, k) in &children[ROOT as usize] {
            root_next[c as usize] = k;
            // Input is lowercased before lookup, so uppercase never needs an entry.
        }
        let mut trie = ModsecTrie { nodes, edges, root_next, textbook_fail, dense: None };
        trie.dense = Dense::build(&trie, &bfs, narrow);
        trie
    }

    fn has_textbook_fail_links(&self) -> bool {
        self.nodes.iter().zip(&self.textbook_fail).all(|(n, &t)| n.fail == t)
    }

    fn child(&self, node: u32, c: u8) -> Option<u32> {
        if node == ROOT {
            let k = self.root_next[c as usize];
            return (k != ROOT).then_some(k);
        }
        let n = &self.nodes[node as usize];
        let lo = n.first_edge as usize;
        let kids = &self.edges[lo..lo + n.edge_count as usize];
        kids.binary_search_by_key(&c, |&(k, _)| k).ok().map(|at| kids[at].1)
    }

    /// Runs `acmp_process_quick`: the first position (exclusive end) where the state reports,
    /// and that state.
    fn first_report(&self, haystack: &[u8]) -> Option<(usize, u32)> {
        if let Some(d) = &self.dense {
            return d.first_report(haystack);
        }
        self.first_report_sparse(haystack)
    }

    /// The walk `acmp_process_quick` does: children by binary search, fail links on a miss.
    fn first_report_sparse(&self, haystack: &[u8]) -> Option<(usize, u32)> {
        let mut node = ROOT;
        for (i, &b) in haystack.iter().enumerate() {
            let c = b.to_ascii_lowercase();
            node = loop {
                if let Some(g) = self.child(node, c) {
                    break g;
                }
                if node == ROOT {
                    break ROOT;
                }
                node = self.nodes[node as usize].fail;
            };
            if self.nodes[node as usize].report {
                return Some((i + 1, node));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (phrases, haystack, expected TX.0 text and range). Rows marked "libmodsecurity" were
    /// checked against libmodsecurity3 3.0.9 (`SecRule ARGS_GET "@pm ..." "capture,..."`).
    #[allow(clippy::type_complexity)]
    const CASES: &[(&[&str], &str, Option<(&str, Range<usize>)>)] = &[
        (&["abc"], "xxABCxx", Some(("abc", 2..5))),
        (&["abc"], "ab", None),
        (&["abc"], "", None),
        (&[], "anything", None),
        (&["", "b"], "abc", Some(("b", 1..2))),
        // libmodsecurity: earliest *end* wins, reported as the node text `abcd`.
        (&["abcdef", "cd"], "abcdef", Some(("abcd", 0..4))),
        (&["abcdef", "cd"], "xcdef", Some(("cd", 1..3))),
        // libmodsecurity: ModSecurity's fail links miss `cz` after `abc`.
        (&["abcd", "bq", "cz"], "abcz", None),
        (&["abcd", "bq", "cz"], "xcz", Some(("cz", 1..3))),
        (&["abcd", "bq", "cz"], "xxabcdz", Some(("abcd", 2..6))),
        // libmodsecurity: o_match reports the node text `xabc`, longer than the phrase.
        (&["xabcd", "abc"], "yXaBc", Some(("xabc", 1..5))),
        // libmodsecurity: text spelled as the phrase that created the node.
        (&["ABCD", "abc"], "zzabc", Some(("ABC", 2..5))),
        // Only ASCII is folded (C tolower in the "C" locale).
        (&["\u{e9}t\u{e9}"], "\u{c9}T\u{c9}", None),
        (&["select", "union"], "UniOn SeLeCt", Some(("union", 0..5))),
        (&["a"], "\0\0a", Some(("a", 2..3))),
    ];

    #[test]
    fn modsecurity_cases() {
        for (phrases, hay, want) in CASES {
            let m = PhraseMatcher::new(phrases).expect("build");
            let got = m.find_capture(hay.as_bytes());
            let got = got
                .as_ref()
                .map(|g| (String::from_utf8_lossy(g.text).into_owned(), g.range.clone()));
            let want = want.as_ref().map(|(t, r)| (t.to_string(), r.clone()));
            assert_eq!(got, want, "phrases {phrases:?} haystack {hay:?}");
            assert_eq!(m.is_match(hay.as_bytes()), want.is_some(), "{phrases:?} {hay:?}");
            assert_eq!(m.find(hay.as_bytes()), want.map(|w| w.1));
        }
    }

    #[test]
    fn fail_quirk_is_detected_only_when_present() {
        assert!(PhraseMatcher::new(&["abcd", "bq", "cz"]).unwrap().has_modsec_fail_quirk());
        assert!(!PhraseMatcher::new(&["abc", "bcd", "cde"]).unwrap().has_modsec_fail_quirk());
    }

    #[test]
    fn crs_data_files_agree_with_plain_replica() {
        // Whatever path `find` takes, it must equal a full run of the replica.
        let dir = std::path::Path::new("/usr/share/modsecurity-crs/rules");
        let Ok(entries) = std::fs::read_dir(dir) else {
            eprintln!("CRS not installed; skipped");
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "data") {
                continue;
            }
            let text = std::fs::read(&p).unwrap();
            let phrases: Vec<&[u8]> = text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
                .collect();
            let m = PhraseMatcher::new(&phrases).unwrap();
            for (i, ph) in phrases.iter().enumerate().step_by(7) {
                let mut hay = b"prefix ".to_vec();
                hay.extend_from_slice(ph);
                hay.extend_from_slice(b" and more");
                if i % 2 == 0 {
                    hay.make_ascii_uppercase();
                }
                let full = m.trie.first_report_sparse(&hay);
                assert_eq!(
                    m.find(&hay),
                    full.map(|(end, n)| end - m.trie.nodes[n as usize].depth as usize..end),
                    "{p:?} phrase {i}"
                );
                assert!(m.is_match(&hay) == full.is_some());
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn matches_replica_on_random_input(
            phrases in proptest::collection::vec("[abcAB]{1,4}", 1..8),
            hay in "[abcdABC]{0,40}",
        ) {
            let m = PhraseMatcher::new(&phrases).unwrap();
            let full = m.trie.first_report_sparse(hay.as_bytes());
            let narrow = matches!(m.trie.dense, Some(Dense { next: Table::Narrow(_), .. }));
            proptest::prop_assert!(narrow);
            proptest::prop_assert_eq!(m.trie.first_report(hay.as_bytes()), full);
            // The wide table, which lists of more than 2^15 entries take.
            let wide = ModsecTrie::build_with(&m.spelled, false).dense.unwrap();
            let is_wide = matches!(wide.next, Table::Wide(_));
            proptest::prop_assert!(is_wide);
            proptest::prop_assert_eq!(wide.first_report(hay.as_bytes()), full);
            let want = full.map(|(end, n)| end - m.trie.nodes[n as usize].depth as usize..end);
            proptest::prop_assert_eq!(m.find(hay.as_bytes()), want.clone());
            proptest::prop_assert_eq!(m.is_match(hay.as_bytes()), want.is_some());
            // The path taken by lists too large for the dense table.
            let mut sparse = m.clone();
            sparse.trie.dense = None;
            proptest::prop_assert_eq!(sparse.find(hay.as_bytes()), want.clone());
            proptest::prop_assert_eq!(sparse.is_match(hay.as_bytes()), want.is_some());
            // Every reported match is a real occurrence of some phrase ending at its end.
            if let Some(r) = want {
                let lower = hay.to_ascii_lowercase();
                proptest::prop_assert!(phrases.iter().any(|p| lower[..r.end]
                    .ends_with(&p.to_ascii_lowercase())));
            }
        }
    }
}
