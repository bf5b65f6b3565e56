//! Hostile input for the SecLang parser: arbitrary strings and mutated CRS lines never make
//! it panic, and whatever parses survives print -> parse unchanged.

use proptest::prelude::*;
use std::sync::OnceLock;
use waf_engine::crs::CrsLayout;
use waf_engine::seclang::{parse_str, print};

/// Parses; when that works and the result prints, the printed text must parse back to the
/// same rule set.
fn check(src: &str, name: &str) -> Result<(), TestCaseError> {
    let Ok(mut set) = parse_str(src, name) else { return Ok(()) };
    let Ok(text) = print(&set) else { return Ok(()) };
    let back = parse_str(&text, name);
    prop_assert!(
        back.is_ok(),
        "printed text does not parse: {:?}\nsource: {src:?}\nprinted: {text}",
        back.err().map(|e| e.to_string())
    );
    let mut back = back.expect("checked");
    set.strip_locations();
    back.strip_locations();
    prop_assert_eq!(set, back, "source: {:?}\nprinted: {}", src, text);
    Ok(())
}

/// Directive texts (continuations joined) of the CRS rule files, read at run time.
fn crs_lines() -> &'static (String, Vec<String>) {
    static LINES: OnceLock<(String, Vec<String>)> = OnceLock::new();
    LINES.get_or_init(|| {
        let Ok(layout) = CrsLayout::locate() else { return (String::new(), Vec::new()) };
        let mut out = Vec::new();
        for f in &layout.rules {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let mut cur = String::new();
            for line in text.lines() {
                if cur.is_empty() && line.trim_start().starts_with('#') {
                    continue;
                }
                match line.strip_suffix('\\') {
                    Some(l) => cur.push_str(l),
                    None => {
                        cur.push_str(line);
                        if !cur.trim().is_empty() {
                            out.push(std::mem::take(&mut cur));
                        }
                        cur.clear();
                    }
                }
            }
        }
        let name = layout.rules.first().map(|p| p.display().to_string()).unwrap_or_default();
        (name, out)
    })
}

const SPICY: &[char] = &[
    '"', '\'', '\\', '\n', '%', '{', '}', '|', ',', ':', '!', '@', '&', ' ', '/', '=', '#', '+',
    '-', ';', '\r',
];

fn mutate(line: &str, ops: &[(u8, usize, usize)]) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    for &(op, at, n) in ops {
        if chars.is_empty() {
            break;
        }
        let at = at % chars.len();
        match op % 4 {
            0 => {
                let end = (at + n % 8 + 1).min(chars.len());
                chars.drain(at..end);
            }
            1 => chars.insert(at, SPICY[n % SPICY.len()]),
            2 => {
                let end = (at + n % 16 + 1).min(chars.len());
                let piece: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, piece);
            }
            _ => chars[at] = SPICY[n % SPICY.len()],
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        check(&s, "fuzz.conf")?;
    }

    #[test]
    fn seclang_shaped_text_never_panics(
        s in "(SecRule|SecAction|SecMarker|secrule|Include) [A-Z_:!&|'\"/@a-z0-9 %{}.,=\\\\+-]{0,80}"
    ) {
        check(&s, "fuzz.conf")?;
    }

    #[test]
    fn mutated_crs_lines_never_panic_and_round_trip(
        pick in any::<usize>(),
        ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 0..4),
    ) {
        let (name, lines) = crs_lines();
        prop_assume!(!lines.is_empty());
        let line = &lines[pick % lines.len()];
        check(&mutate(line, &ops), name)?;
    }
}
