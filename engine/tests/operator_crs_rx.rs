//! Compiles every `@rx` pattern of Debian's CRS 3.3.4 and reports which engine runs it.
//!
//! The patterns are pulled out of /usr/share/modsecurity-crs/rules/*.conf with a small scanner
//! (the SecLang parser lives elsewhere): continuation lines are joined, then the quoted
//! operator string after each `SecRule` targets is taken verbatim (libmodsecurity3 hands the
//! quoted text to PCRE as is; `\"` and `\\` mean the same to PCRE either way).
//! The only patterns allowed on the backtracking fallback are the PCRE-only ones.
//!
//! A second test runs every pattern through PCRE2 itself (libpcre2-8.so.0, loaded with
//! dlopen, compiled with `PCRE2_DOTALL | PCRE2_MULTILINE` as libmodsecurity3 does) and through
//! our engines on the CRS regression corpus values, and requires the same verdict and the same
//! capture groups.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};
use waf_engine::operator::RxMatcher;

const RULES_DIR: &str = "/usr/share/modsecurity-crs/rules";

/// Rules whose patterns need lookaround, backreferences or possessive quantifiers: 920120
/// (lookbehind), 920600 and 942260 (possessive), 942130 (backreference + lookahead), 953120
/// (`(?!xml)`). FACTS.md also lists 922110: Debian's 3.3.4 text of it has no possessive
/// quantifier (`[\s\x0b]*`), so it runs on the linear engine.
const PCRE_ONLY: &[u64] = &[920120, 920600, 942130, 942260, 953120];

struct Found {
    file: String,
    rule_id: u64,
    pattern: String,
}

/// Joins `\`-continued lines into logical lines.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if let Some(stripped) = line.strip_suffix('\\') {
            cur.push_str(stripped);
        } else {
            cur.push_str(line);
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The text of the double-quoted string starting at `s[0] == '"'`, escapes kept.
fn quoted(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(&s[1..i]),
            _ => i += 1,
        }
    }
    None
}

fn extract(dir: &Path) -> Vec<Found> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("rules dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort();
    let id_re = regex::Regex::new(r"\bid:(\d+)").unwrap();
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read rules file");
        let mut last_id = 0;
        for line in logical_lines(&text) {
            let t = line.trim_start();
            if !t.starts_with("SecRule") {
                continue;
            }
            // Next quoted string after the targets is the operator.
            let Some(q) = t.find('"') else { continue };
            let Some(op) = quoted(&t[q..]) else { continue };
            let op = op.trim_start_matches('!');
            let Some(pattern) = op.strip_prefix("@rx ") else { continue };
            let rule_id = id_re
                .captures(&t[q + op.len()..])
                .and_then(|c| c[1].parse().ok())
                .unwrap_or(last_id);
            last_id = rule_id;
            found.push(Found {
                file: f.file_name().unwrap().to_string_lossy().into_owned(),
                rule_id,
                pattern: pattern.to_string(),
            });
        }
    }
    found
}

#[test]
fn every_crs_rx_pattern_compiles_on_the_expected_engine() {
    let dir = Path::new(RULES_DIR);
    if !dir.is_dir() {
        eprintln!("NOTICE: {RULES_DIR} absent (package modsecurity-crs); test skipped");
        return;
    }
    let found = extract(dir);
    assert!(found.len() > 200, "only {} @rx patterns found: extraction broken?", found.len());
    let mut failures = Vec::new();
    let mut fallback_ids = BTreeSet::new();
    let mut linear = 0;
    for f in &found {
        match RxMatcher::new(&f.pattern) {
            Ok(re) if re.is_backtracking() => {
                eprintln!("fancy-regex  {} {} ({} bytes)", f.file, f.rule_id, f.pattern.len());
                fallback_ids.insert(f.rule_id);
            }
            Ok(_) => linear += 1,
            Err(e) => failures.push(format!("{} {}: {e}\n  {}", f.file, f.rule_id, f.pattern)),
        }
    }
    eprintln!(
        "{} @rx patterns: {linear} on regex, {} on fancy-regex (rules {:?})",
        found.len(),
        found.len() - linear,
        fallback_ids
    );
    assert!(failures.is_empty(), "patterns that do not compile:\n{}", failures.join("\n"));
    let expected: BTreeSet<u64> = PCRE_ONLY.iter().copied().collect();
    assert_eq!(fallback_ids, expected, "only the PCRE-only rules may use the fallback");
}

mod pcre2 {
    //! The few PCRE2 entry points the differential test needs.
    use std::ffi::c_void;

    pub const DOTALL: u32 = 0x0000_0020;
    pub const MULTILINE: u32 = 0x0000_0400;
    pub const UNSET: usize = usize::MAX;

    type Compile = unsafe extern "C" fn(
        *const u8,
        usize,
        u32,
        *mut i32,
        *mut usize,
        *mut c_void,
    ) -> *mut c_void;
    type MatchDataCreate = unsafe extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void;
    type Match = unsafe extern "C" fn(
        *mut c_void,
        *const u8,
        usize,
        usize,
        u32,
        *mut c_void,
        *mut c_void,
    ) -> i32;
    type Ovector = unsafe extern "C" fn(*mut c_void) -> *mut usize;
    type Free = unsafe extern "C" fn(*mut c_void);
    type JitCompile = unsafe extern "C" fn(*mut c_void, u32) -> i32;
    const JIT_COMPLETE: u32 = 1;

    pub struct Pcre2 {
        compile: Compile,
        md_create: MatchDataCreate,
        jit: JitCompile,
        exec: Match,
        ovector: Ovector,
        md_free: Free,
        code_free: Free,
        _lib: libloading::Library,
    }

    pub struct Code<'a> {
        lib: &'a Pcre2,
        code: *mut c_void,
        md: *mut c_void,
    }

    impl Pcre2 {
        pub fn load() -> Option<Pcre2> {
            // SAFETY: libpcre2-8 has no initialisers with side effects; the signatures are
            // the documented PCRE2 8-bit API (pcre2.h).
            unsafe {
                let lib = libloading::Library::new("libpcre2-8.so.0").ok()?;
                Some(Pcre2 {
                    compile: *lib.get(b"pcre2_compile_8\0").ok()?,
                    md_create: *lib.get(b"pcre2_match_data_create_from_pattern_8\0").ok()?,
                    jit: *lib.get(b"pcre2_jit_compile_8\0").ok()?,
                    exec: *lib.get(b"pcre2_match_8\0").ok()?,
                    ovector: *lib.get(b"pcre2_get_ovector_pointer_8\0").ok()?,
                    md_free: *lib.get(b"pcre2_match_data_free_8\0").ok()?,
                    code_free: *lib.get(b"pcre2_code_free_8\0").ok()?,
                    _lib: lib,
                })
            }
        }

        pub fn compile(&self, pattern: &str) -> Option<Code<'_>> {
            let (mut err, mut off) = (0i32, 0usize);
            // SAFETY: pattern pointer/length are valid; null contexts select the defaults.
            unsafe {
                let code = (self.compile)(
                    pattern.as_ptr(),
                    pattern.len(),
                    DOTALL | MULTILINE,
                    &mut err,
                    &mut off,
                    std::ptr::null_mut(),
                );
                if code.is_null() {
                    return None;
                }
                // As libmodsecurity3 does; pcre2_match then runs the JIT code.
                (self.jit)(code, JIT_COMPLETE);
                let md = (self.md_create)(code, std::ptr::null_mut());
                Some(Code { lib: self, code, md })
            }
        }
    }

    impl Code<'_> {
        /// Match or not, without reading groups (the timing loop).
        pub fn is_match(&self, subject: &[u8]) -> bool {
            // SAFETY: as in `exec`.
            unsafe {
                (self.lib.exec)(
                    self.code,
                    subject.as_ptr(),
                    subject.len(),
                    0,
                    0,
                    self.md,
                    std::ptr::null_mut(),
                ) > 0
            }
        }

        /// None: PCRE2 error (e.g. match limit); Some(None): no match; Some(Some(groups)).
        pub fn exec(&self, subject: &[u8]) -> Option<Option<Vec<Option<Vec<u8>>>>> {
            // SAFETY: code and match data come from this library; subject pointer/length valid.
            unsafe {
                let rc = (self.lib.exec)(
                    self.code,
                    subject.as_ptr(),
                    subject.len(),
                    0,
                    0,
                    self.md,
                    std::ptr::null_mut(),
                );
                if rc == -1 {
                    return Some(None);
                }
                if rc <= 0 {
                    return None;
                }
                let ov = (self.lib.ovector)(self.md);
                let groups = (0..rc as usize)
                    .map(|i| {
                        let (s, e) = (*ov.add(2 * i), *ov.add(2 * i + 1));
                        (s != UNSET && e <= subject.len() && s <= e).then(|| subject[s..e].to_vec())
                    })
                    .collect();
                Some(Some(groups))
            }
        }
    }

    impl Drop for Code<'_> {
        fn drop(&mut self) {
            // SAFETY: freed once, with the library's own free functions.
            unsafe {
                (self.lib.md_free)(self.md);
                (self.lib.code_free)(self.code);
            }
        }
    }
}

/// Values a CRS rule sees in the regression corpus: decoded argument names and values,
/// header values, URIs, bodies, and lower-cased copies (many CRS rules use t:lowercase).
fn corpus_values() -> Vec<Vec<u8>> {
    let Ok(text) = std::fs::read_to_string(
        waf_engine::crs::regression_suite_dir()
            .unwrap_or_default()
            .join("crs-3.3.4-regression.jsonl"),
    ) else {
        return Vec::new();
    };
    let decode = |s: &str| -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let hex = |k: usize| b.get(k).and_then(|c| (*c as char).to_digit(16));
            match (b[i], hex(i + 1), hex(i + 2)) {
                (b'%', Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                (b'+', _, _) => {
                    out.push(b' ');
                    i += 1;
                }
                (c, _, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        out
    };
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let uri = v["uri"].as_str().unwrap_or_default();
        let body = v["body"].as_str().unwrap_or_default();
        let mut vals = vec![uri.as_bytes().to_vec(), body.as_bytes().to_vec()];
        let query = uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
        for part in query.split('&').chain(body.split('&')) {
            let (n, val) = part.split_once('=').unwrap_or((part, ""));
            vals.push(decode(n));
            vals.push(decode(val));
        }
        for h in v["headers"].as_array().into_iter().flatten() {
            if let Some(s) = h.get(1).and_then(|x| x.as_str()) {
                vals.push(s.as_bytes().to_vec());
            }
        }
        for val in vals {
            seen.insert(val.to_ascii_lowercase());
            seen.insert(val);
        }
    }
    seen.into_iter().filter(|v| v.len() <= 4096).collect()
}

#[test]
fn crs_rx_patterns_agree_with_pcre2_on_the_regression_corpus() {
    let dir = Path::new(RULES_DIR);
    let Some(pcre) = pcre2::Pcre2::load() else {
        eprintln!("NOTICE: libpcre2-8.so.0 not loadable; test skipped");
        return;
    };
    if !dir.is_dir() {
        eprintln!("NOTICE: {RULES_DIR} absent; test skipped");
        return;
    }
    let values = corpus_values();
    assert!(values.len() > 1000, "only {} corpus values", values.len());
    let (mut runs, mut pcre_errors, mut limit_hits, mut hits) = (0usize, 0usize, 0usize, 0usize);
    let mut diffs = Vec::new();
    let mut n_diffs = 0usize;
    let mut slowest = Vec::new();
    let (mut ours_time, mut pcre_time) = (Duration::ZERO, Duration::ZERO);
    for f in extract(dir) {
        let ours = RxMatcher::new(&f.pattern).expect("compiles (checked by the other test)");
        let Some(theirs) = pcre.compile(&f.pattern) else {
            panic!("PCRE2 refuses {} {}", f.rule_id, f.pattern);
        };
        // Timing (printed, not asserted): every value through each engine, verdict only.
        let t = Instant::now();
        let ours_hits = values.iter().filter(|v| ours.matches(v, None).unwrap_or(false)).count();
        let ours_t = t.elapsed();
        ours_time += ours_t;
        let t = Instant::now();
        let pcre_hits = values.iter().filter(|v| theirs.is_match(v)).count();
        let pcre_t = t.elapsed();
        pcre_time += pcre_t;
        slowest.push((ours_t, pcre_t, f.rule_id, ours.engine_name()));
        std::hint::black_box((ours_hits, pcre_hits));
        for v in &values {
            runs += 1;
            let Some(want) = theirs.exec(v) else {
                pcre_errors += 1;
                continue;
            };
            let mut caps = waf_engine::operator::Captures::new();
            let got = match ours.matches(v, Some(&mut caps)) {
                Ok(true) => Some(caps.groups().to_vec()),
                Ok(false) => None,
                Err(_) => {
                    limit_hits += 1;
                    continue;
                }
            };
            hits += usize::from(want.is_some());
            // PCRE2 unset groups are None; ours are empty: compare as ModSecurity stores them.
            let want =
                want.map(|g| g.into_iter().map(Option::unwrap_or_default).collect::<Vec<_>>());
            n_diffs += usize::from(want != got);
            if want != got && diffs.len() < 20 {
                diffs.push(format!(
                    "{} {}: input {:?}\n  pcre2 {:?}\n  ours  {:?}",
                    f.file,
                    f.rule_id,
                    String::from_utf8_lossy(v),
                    want.map(|g| g
                        .iter()
                        .map(|x| String::from_utf8_lossy(x).into_owned())
                        .collect::<Vec<_>>()),
                    got.map(|g| g
                        .iter()
                        .map(|x| String::from_utf8_lossy(x).into_owned())
                        .collect::<Vec<_>>()),
                ));
            }
        }
    }
    eprintln!(
        "{runs} pattern x value runs over {} values: {hits} matches, {pcre_errors} PCRE2 errors, {limit_hits} fallback limit hits, {n_diffs} differences",
        values.len(),
    );
    eprintln!(
        "verdict-only time: ours {:.0} ns/run, PCRE2 JIT {:.0} ns/run (ratio {:.2})",
        ours_time.as_nanos() as f64 / runs as f64,
        pcre_time.as_nanos() as f64 / runs as f64,
        ours_time.as_secs_f64() / pcre_time.as_secs_f64()
    );
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (o, p, id, engine) in slowest.iter().take(8) {
        eprintln!("  slowest: rule {id} on {engine}: ours {o:?}, PCRE2 {p:?} for all values");
    }
    assert!(diffs.is_empty(), "differences from PCRE2:\n{}", diffs.join("\n"));
}
