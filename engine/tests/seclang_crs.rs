//! CRS 3.3.4 (Debian's `modsecurity-crs`) through the SecLang front-end: it loads clean at
//! paranoia 1 and 4, its directive counts match a count made without the parser, and
//! parse -> print -> parse and IR -> JSON -> IR are the identity.

use waf_engine::crs::{self, CrsLayout};
use waf_engine::ir::{Directive, RuleSet};
use waf_engine::load::{RuleSpec, load_rules};
use waf_engine::seclang;

fn crs(paranoia: u8) -> RuleSet {
    load_rules(&RuleSpec::from_args(&["crs"], Some(paranoia), None))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Counts `SecRule`, `SecAction` and `SecMarker` at the start of logical lines, with
/// continuation lines joined, comments skipped: independent of the parser.
fn keyword_counts(text: &str) -> [usize; 3] {
    let mut counts = [0; 3];
    let mut continuing = false;
    for line in text.lines() {
        let was_continuing = continuing;
        continuing = line.trim_end_matches('\r').ends_with('\\');
        if was_continuing {
            continue;
        }
        let word: String =
            line.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        match word.to_ascii_lowercase().as_str() {
            "secrule" => counts[0] += 1,
            "secaction" => counts[1] += 1,
            "secmarker" => counts[2] += 1,
            _ => {}
        }
    }
    counts
}

fn parsed_counts(set: &RuleSet) -> [usize; 3] {
    let mut counts = [0; 3];
    for d in &set.directives {
        match d {
            Directive::Rule(r) => {
                for link in r.links() {
                    if link.operator.is_some() {
                        counts[0] += 1;
                    } else {
                        counts[1] += 1;
                    }
                }
            }
            Directive::Marker(_) => counts[2] += 1,
            _ => {}
        }
    }
    counts
}

#[test]
fn crs_loads_and_counts_match_an_independent_count() {
    let layout = CrsLayout::locate().expect("Debian modsecurity-crs must be installed");
    for paranoia in [1u8, 4] {
        let set = crs(paranoia);
        let mut want = keyword_counts(crs::BASE_CONF);
        let extra = keyword_counts(&crs::paranoia_action(paranoia));
        for f in layout.files() {
            let text = std::fs::read_to_string(&f).unwrap();
            let c = keyword_counts(&text);
            for i in 0..3 {
                want[i] += c[i];
            }
        }
        for i in 0..3 {
            want[i] += extra[i];
        }
        assert_eq!(parsed_counts(&set), want, "paranoia {paranoia}");
        assert!(want[0] > 700, "{want:?}");
    }
}

#[test]
fn crs_round_trips_through_seclang_and_json() {
    for paranoia in [1u8, 4] {
        let mut set = crs(paranoia);
        let text = seclang::print(&set).unwrap_or_else(|e| panic!("{e}"));
        let mut back = seclang::parse_str(&text, "printed.conf").unwrap_or_else(|e| panic!("{e}"));
        set.strip_locations();
        back.strip_locations();
        for (i, (a, b)) in set.directives.iter().zip(&back.directives).enumerate() {
            assert_eq!(a, b, "directive {i}");
        }
        assert_eq!(set, back);
        let json = serde_json::to_string(&set).unwrap();
        let from_json: RuleSet = serde_json::from_str(&json).unwrap();
        assert_eq!(from_json, set);
    }
}
