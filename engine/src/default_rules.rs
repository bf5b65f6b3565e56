//! The embedded default rule set, used when CRS is not installed.
//!
//! Two halves written for this project: [`SECLANG`] (`engine/rules/default.conf`, ids
//! 300000-300999: base configuration, anomaly-scoring detection rules, the final blocking
//! rule) and [`CFRULE`] (`engine/rules/default.rules`, ids 100000-100999, Cloudflare-style).
//! [`default_rule_set_with`] parses both and inserts the Cloudflare-style rules at the
//! [`MERGE_MARKER`] of the SecLang half, so that their scores are in before the blocking
//! rule that follows the marker runs (ModSecurity runs a phase's rules in load order).

use crate::cfrule;
use crate::ir::{Directive, RuleSet};

/// `engine/rules/default.conf`.
pub const SECLANG: &str = include_str!("../rules/default.conf");
/// `engine/rules/default.rules`.
pub const CFRULE: &str = include_str!("../rules/default.rules");

/// Names of the two halves in error messages and source locations.
pub const SECLANG_NAME: &str = "<wafbench>/default.conf";
pub const CFRULE_NAME: &str = "<wafbench>/default.rules";

/// The `SecMarker` in [`SECLANG`] in front of which the Cloudflare-style rules go.
pub const MERGE_MARKER: &str = "DEFAULT-BLOCKING-EVALUATION";

/// The Cloudflare-style half, parsed.
pub fn cfrule_rule_set() -> RuleSet {
    // The text is compiled in and covered by a test, so a failure here is a build defect,
    // not bad user input.
    cfrule::parse(CFRULE, CFRULE_NAME).expect("engine/rules/default.rules parses")
}

/// Both halves merged. `parse_seclang(text, file_name)` is the SecLang front-end; it is a
/// parameter so this module does not depend on it.
pub fn default_rule_set_with<E>(
    parse_seclang: impl FnOnce(&str, &str) -> Result<RuleSet, E>,
) -> Result<RuleSet, E> {
    let seclang = parse_seclang(SECLANG, SECLANG_NAME)?;
    Ok(merge(seclang, cfrule_rule_set()))
}

/// Both halves merged, parsed with the SecLang front-end.
pub fn default_rule_set() -> Result<RuleSet, crate::seclang::ParseErrors> {
    default_rule_set_with(crate::seclang::parse_str)
}

/// Inserts `extra`'s directives in front of the [`MERGE_MARKER`] of `base`, or at its end
/// when the marker is absent.
pub fn merge(mut base: RuleSet, extra: RuleSet) -> RuleSet {
    let at = base
        .directives
        .iter()
        .position(|d| matches!(d, Directive::Marker(m) if m.name == MERGE_MARKER))
        .unwrap_or(base.directives.len());
    base.directives.splice(at..at, extra.directives);
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Action, Marker, Rule};

    fn rule(id: u64) -> Directive {
        Directive::Rule(Rule {
            targets: Vec::new(),
            operator: None,
            condition: None,
            actions: vec![Action::Id(id)],
            chain: None,
            loc: None,
        })
    }

    fn ids(set: &RuleSet) -> Vec<Option<u64>> {
        set.directives
            .iter()
            .map(|d| match d {
                Directive::Rule(r) => r.id(),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn cfrule_half_parses_with_its_id_range() {
        let set = cfrule_rule_set();
        let n = set.rules().count();
        assert!((10..=20).contains(&n), "{n} rules");
        assert!(set.rules().all(|r| r.id().is_some_and(|id| (100_000..101_000).contains(&id))));
    }

    #[test]
    fn merge_inserts_before_the_marker() {
        let marker = Directive::Marker(Marker { name: MERGE_MARKER.into(), loc: None });
        let base = RuleSet { directives: vec![rule(1), marker, rule(9)], ..RuleSet::default() };
        let extra = RuleSet { directives: vec![rule(5), rule(6)], ..RuleSet::default() };
        let merged = merge(base, extra.clone());
        assert_eq!(ids(&merged), vec![Some(1), Some(5), Some(6), None, Some(9)]);

        let base = RuleSet { directives: vec![rule(1)], ..RuleSet::default() };
        assert_eq!(ids(&merge(base, extra)), vec![Some(1), Some(5), Some(6)]);
    }

    #[test]
    fn default_rule_set_with_uses_the_given_seclang_parser() {
        let merged = default_rule_set_with(|text, name| {
            assert_eq!(name, SECLANG_NAME);
            assert!(text.contains("SecMarker DEFAULT-BLOCKING-EVALUATION"));
            let marker = Directive::Marker(Marker { name: MERGE_MARKER.into(), loc: None });
            Ok::<_, String>(RuleSet {
                directives: vec![rule(300_000), marker],
                ..RuleSet::default()
            })
        })
        .unwrap();
        let ids = ids(&merged);
        assert_eq!(ids.first(), Some(&Some(300_000)));
        assert_eq!(ids.last(), Some(&None), "the marker stays last");
        assert!(ids.contains(&Some(100_000)));
        assert!(default_rule_set_with(|_, _| Err::<RuleSet, _>("boom")).is_err());
    }
}
