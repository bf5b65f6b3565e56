//! The `aho_corasick` suite: `@pm` semantics (ASCII case-insensitive "does any phrase
//! occur") on CRS data files (read at run time from the Debian package) and synthetic
//! dictionaries of 1k, 10k and 100k phrases, over benign and attack haystacks of 100 B, 4 KB
//! and 64 KB.
//!
//! Engines: aho-corasick noncontiguous NFA / contiguous NFA / DFA, each with its prefilter on
//! and off; daachorse (no case-insensitive mode: phrases lowercased once, the haystack
//! lowercased into a reused buffer on every call - that cost is part of its time); one
//! alternation `regex`; `regex::RegexSet`; a naive memmem loop (lowercased haystack, one
//! `memmem` per phrase); and the engine's `PhraseMatcher`. Every engine's answer is checked
//! against the naive reference before timing. Build time and heap bytes go in the notes.

use super::alloc::build_measured;
use super::{Bench, Case, Scale, Unit};
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;
use waf_engine::operator::pm::PhraseMatcher;

/// Where the Debian package keeps the CRS data files.
pub const CRS_RULES: &str = "/usr/share/modsecurity-crs/rules";

/// A named phrase list.
pub struct Dictionary {
    pub name: String,
    pub phrases: Vec<Vec<u8>>,
}

/// `@pmFromFile` reading of a data file: one phrase a line, `#` comments and blank lines
/// dropped.
pub fn read_data_file(path: &Path) -> Result<Dictionary, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let phrases = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(<[u8]>::to_vec)
        .collect();
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Dictionary { name, phrases })
}

/// Random phrases of 6-16 letters and digits, consonant-heavy so benign English-like text
/// does not contain them.
pub fn synthetic(n: usize, seed: u64) -> Dictionary {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz0123456789_";
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let phrases = (0..n)
        .map(|_| {
            let len = rng.gen_range(6..=16);
            (0..len).map(|_| ALPHA[rng.gen_range(0..ALPHA.len())]).collect()
        })
        .collect();
    let name =
        if n >= 1000 { format!("synthetic_{}k", n / 1000) } else { format!("synthetic_{n}") };
    Dictionary { name, phrases }
}

/// Request-like benign text of `len` bytes.
pub fn benign(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "lazy",
        "dog",
        "name=alice",
        "page=2",
        "sort=asc",
        "hello",
        "world",
        "search",
        "results",
        "for",
        "coffee",
        "tea",
        "weather",
        "today",
        "news",
        "about",
        "music",
        "price=19.99",
        "lang=en",
        "user",
        "profile",
        "photo",
        "travel",
        "guide",
        "recipe",
        "with",
        "apples",
        "and",
        "pears",
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(len + 16);
    while v.len() < len {
        v.extend_from_slice(WORDS[rng.gen_range(0..WORDS.len())].as_bytes());
        v.push(if rng.gen_range(0..4) == 0 { b'&' } else { b' ' });
    }
    v.truncate(len);
    v
}

/// Benign text with one phrase (upper-cased, to exercise case folding) placed at 90%.
pub fn attack(len: usize, phrase: &[u8], seed: u64) -> Vec<u8> {
    let mut v = benign(len, seed);
    let at = (len * 9 / 10).min(len.saturating_sub(phrase.len()));
    let end = (at + phrase.len()).min(len);
    v[at..end].copy_from_slice(&phrase.to_ascii_uppercase()[..end - at]);
    v
}

/// The reference answer: naive search over the lowercased haystack.
pub fn naive(lower_phrases: &[Vec<u8>], haystack: &[u8], buf: &mut Vec<u8>) -> bool {
    buf.clear();
    buf.extend(haystack.iter().map(u8::to_ascii_lowercase));
    lower_phrases.iter().any(|p| memchr::memmem::find(buf, p).is_some())
}

/// An engine's `is_match`, boxed so every engine fits one bench case.
type Matcher = Box<dyn FnMut(&[u8]) -> bool>;

/// A built matcher: `is_match` plus its build figures.
struct Built {
    name: &'static str,
    build: Duration,
    heap: Option<usize>,
    m: Matcher,
}

fn ac(phrases: &[Vec<u8>], kind: AhoCorasickKind, prefilter: bool) -> Result<AhoCorasick, String> {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(kind))
        .prefilter(prefilter)
        .build(phrases)
        .map_err(|e| e.to_string())
}

fn alternation(phrases: &[Vec<u8>]) -> String {
    let alts: Vec<String> =
        phrases.iter().map(|p| regex::escape(&String::from_utf8_lossy(p))).collect();
    format!("(?i-u:{})", alts.join("|"))
}

fn lowercase_into(buf: &mut Vec<u8>, h: &[u8]) {
    buf.clear();
    buf.extend(h.iter().map(u8::to_ascii_lowercase));
}

/// Builds every engine that is practical for `d`; engines that fail to build (size limits)
/// or are skipped are reported on stderr and left out.
fn build_all(d: &Dictionary) -> Vec<Built> {
    let n = d.phrases.len();
    let p = &d.phrases;
    let mut out = Vec::new();
    let mut add = |name: &'static str, f: &mut dyn FnMut() -> Result<Matcher, String>| {
        let (r, build, heap) = build_measured(f);
        match r {
            Ok(m) => out.push(Built { name, build, heap, m }),
            Err(e) => eprintln!("aho_corasick: {name} on {}: not built: {e}", d.name),
        }
    };
    for (name, kind, pf) in [
        ("ac_nfa", AhoCorasickKind::NoncontiguousNFA, true),
        ("ac_nfa_nopf", AhoCorasickKind::NoncontiguousNFA, false),
        ("ac_cnfa", AhoCorasickKind::ContiguousNFA, true),
        ("ac_cnfa_nopf", AhoCorasickKind::ContiguousNFA, false),
        ("ac_dfa", AhoCorasickKind::DFA, true),
        ("ac_dfa_nopf", AhoCorasickKind::DFA, false),
    ] {
        // A DFA over 100k phrases takes seconds and hundreds of MB to build; the 10k case
        // already shows the trend.
        if kind == AhoCorasickKind::DFA && n > 10_000 {
            eprintln!("aho_corasick: {name} on {}: skipped (DFA over {n} phrases)", d.name);
            continue;
        }
        add(name, &mut || {
            let a = ac(p, kind, pf)?;
            Ok(Box::new(move |h: &[u8]| a.is_match(h)))
        });
    }
    add("daachorse", &mut || {
        let mut lower: Vec<Vec<u8>> = p.iter().map(|x| x.to_ascii_lowercase()).collect();
        lower.sort_unstable();
        lower.dedup();
        let da =
            daachorse::DoubleArrayAhoCorasick::<u32>::new(&lower).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        Ok(Box::new(move |h: &[u8]| {
            lowercase_into(&mut buf, h);
            da.find_iter(&buf).next().is_some()
        }))
    });
    if n <= 10_000 {
        add("regex_alternation", &mut || {
            let re = regex::bytes::RegexBuilder::new(&alternation(p))
                .size_limit(1 << 30)
                .dfa_size_limit(1 << 26)
                .build()
                .map_err(|e| e.to_string())?;
            Ok(Box::new(move |h: &[u8]| re.is_match(h)))
        });
    } else {
        eprintln!("aho_corasick: regex_alternation on {}: skipped ({n} phrases)", d.name);
    }
    if n <= 1_300 {
        add("regex_set", &mut || {
            let pats: Vec<String> = p
                .iter()
                .map(|x| format!("(?i-u:{})", regex::escape(&String::from_utf8_lossy(x))))
                .collect();
            let re = regex::bytes::RegexSetBuilder::new(&pats)
                .size_limit(1 << 30)
                .dfa_size_limit(1 << 26)
                .build()
                .map_err(|e| e.to_string())?;
            Ok(Box::new(move |h: &[u8]| re.is_match(h)))
        });
        // One memmem per phrase: 1k phrases x 64 KB is already ~64 MB scanned per call.
        add("naive_memmem", &mut || {
            let lower: Vec<Vec<u8>> = p.iter().map(|x| x.to_ascii_lowercase()).collect();
            let mut buf = Vec::new();
            Ok(Box::new(move |h: &[u8]| naive(&lower, h, &mut buf)))
        });
    } else {
        eprintln!("aho_corasick: regex_set, naive_memmem on {}: skipped ({n} phrases)", d.name);
    }
    add("phrase_matcher", &mut || {
        let m = PhraseMatcher::new(p)?;
        Ok(Box::new(move |h: &[u8]| m.is_match(h)))
    });
    out
}

/// One matcher shared by the six haystack benches of its dictionary.
struct Shared(std::rc::Rc<std::cell::RefCell<Matcher>>);

struct HayCase {
    m: Shared,
    hay: Vec<u8>,
    expected: bool,
}

impl Case for HayCase {
    fn check(&mut self) -> Result<(), String> {
        let got = (self.m.0.borrow_mut())(&self.hay);
        if got == self.expected {
            Ok(())
        } else {
            Err(format!("expected {}, got {got}", self.expected))
        }
    }
    fn run(&mut self, iters: u64) -> Duration {
        let mut m = self.m.0.borrow_mut();
        let t = std::time::Instant::now();
        for _ in 0..iters {
            black_box(m(black_box(&self.hay)));
        }
        t.elapsed()
    }
}

/// The dictionaries at `scale`: two CRS data files (the largest list and a typical one) and
/// synthetic lists.
pub fn dictionaries(scale: Scale) -> Result<Vec<Dictionary>, String> {
    let mut v = Vec::new();
    for f in ["php-function-names-933151.data", "unix-shell.data"] {
        v.push(read_data_file(&Path::new(CRS_RULES).join(f))?);
    }
    let sizes: &[usize] = match scale {
        Scale::Quick => &[1_000],
        Scale::Full => &[1_000, 10_000, 100_000],
    };
    for &n in sizes {
        v.push(synthetic(n, n as u64));
    }
    Ok(v)
}

/// Every `@pm` bench at `scale`.
pub fn suite(scale: Scale) -> Result<Vec<Bench>, String> {
    let mut out = Vec::new();
    for d in dictionaries(scale)? {
        let lower: Vec<Vec<u8>> = d.phrases.iter().map(|p| p.to_ascii_lowercase()).collect();
        // The attack phrase: a longish one from the middle of the list.
        let probe = d
            .phrases
            .iter()
            .skip(d.phrases.len() / 2)
            .max_by_key(|p| p.len().min(12))
            .cloned()
            .unwrap_or_default();
        let mut hays = Vec::new();
        let mut buf = Vec::new();
        for (label, len) in [("100B", 100usize), ("4KB", 4096), ("64KB", 65536)] {
            for (kind, hay) in
                [("benign", benign(len, len as u64)), ("attack", attack(len, &probe, len as u64))]
            {
                let want = naive(&lower, &hay, &mut buf);
                if want != (kind == "attack") {
                    return Err(format!("{}: {kind} {label} haystack answers {want}", d.name));
                }
                hays.push((format!("{kind}_{label}"), hay, want));
            }
        }
        for b in build_all(&d) {
            let shared = std::rc::Rc::new(std::cell::RefCell::new(b.m));
            for (input, hay, want) in &hays {
                let mut bench = Bench::new(
                    format!("aho_corasick/{}", d.name),
                    b.name,
                    input.clone(),
                    Unit::Bytes(hay.len() as u64),
                    Box::new(HayCase {
                        m: Shared(std::rc::Rc::clone(&shared)),
                        hay: hay.clone(),
                        expected: *want,
                    }),
                );
                bench = bench
                    .note("build_ms", b.build.as_secs_f64() * 1e3)
                    .note("phrases", d.phrases.len() as f64);
                if let Some(h) = b.heap {
                    bench = bench.note("heap_bytes", h as f64);
                }
                out.push(bench);
            }
        }
    }
    Ok(out)
}
