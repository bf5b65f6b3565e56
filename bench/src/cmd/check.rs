//! `wafbench check <PATH|crs>... [--paranoia N] [--from LANG]`: loads a rule set and prints
//! what it holds (rules, chain links, markers, configuration, rules by operator) on stdout,
//! or every error (`file:line:col: error: ...`, the source line and a caret) on stderr with
//! exit code 2.

use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use waf_engine::ir::{Condition, Directive, Operator, OperatorKind, RuleSet};
use waf_engine::load::{Language, LoadError, RuleSpec, load_rules};

#[derive(clap::Args)]
pub struct Args {
    /// Rule files, directories (their *.conf files) or `crs`.
    #[arg(required = true, value_name = "PATH|crs")]
    inputs: Vec<String>,
    /// Paranoia level (1-4) for `crs`.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    paranoia: Option<u8>,
    /// Language of the paths, instead of guessing it from the extension.
    #[arg(long, value_name = "seclang|cfrule|json")]
    from: Option<Language>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let spec = RuleSpec::from_args(&a.inputs, a.paranoia, a.from);
    match load(&spec)? {
        Some(set) => {
            print!("{}", Counts::of(&set).render());
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(2)),
    }
}

/// Loads a rule set; parse errors are printed to stderr (all of them) and give `None`.
pub(crate) fn load(spec: &RuleSpec) -> Result<Option<RuleSet>> {
    match load_rules(spec) {
        Ok(set) => Ok(Some(set)),
        Err(LoadError::Parse(errs)) => {
            for e in errs.iter() {
                eprintln!("{e}");
            }
            let n = errs.len();
            eprintln!("wafbench: {n} error{} in the rule set", if n == 1 { "" } else { "s" });
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// What a rule set holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Top-level rules (a chain counts once).
    pub rules: usize,
    /// `SecRule` directives, chain links included.
    pub sec_rule: usize,
    /// `SecAction` directives.
    pub sec_action: usize,
    /// Links after the first of every chain.
    pub chain_links: usize,
    pub markers: usize,
    pub default_actions: usize,
    /// Engine settings and kept settings (`SecRuleEngine`, `SecAuditLog`, ...).
    pub config: usize,
    /// `SecRuleRemove*` and `SecRuleUpdate*`.
    pub rule_edits: usize,
    /// Operators of every rule link (and condition clause), by SecLang name.
    pub operators: BTreeMap<String, usize>,
}

impl Counts {
    pub fn of(set: &RuleSet) -> Counts {
        let mut c = Counts::default();
        for d in &set.directives {
            match d {
                Directive::Rule(r) => {
                    c.rules += 1;
                    for (i, link) in r.links().enumerate() {
                        if i > 0 {
                            c.chain_links += 1;
                        }
                        if link.operator.is_none() && link.condition.is_none() {
                            c.sec_action += 1;
                        } else {
                            c.sec_rule += 1;
                        }
                        if let Some(op) = &link.operator {
                            *c.operators.entry(op_name(op)).or_default() += 1;
                        }
                        if let Some(cond) = &link.condition {
                            count_condition(cond, &mut c.operators);
                        }
                    }
                }
                Directive::Marker(_) => c.markers += 1,
                Directive::DefaultAction(_) => c.default_actions += 1,
                Directive::Config(_) | Directive::Setting { .. } => c.config += 1,
                _ => c.rule_edits += 1,
            }
        }
        c
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: usize| writeln!(s, "{k:<26}{v}").expect("string");
        line("rules", self.rules);
        line("  SecRule", self.sec_rule);
        line("  SecAction", self.sec_action);
        line("  chain links", self.chain_links);
        line("markers", self.markers);
        line("default actions", self.default_actions);
        line("config directives", self.config);
        line("rule edits", self.rule_edits);
        writeln!(s, "rules by operator").expect("string");
        let mut ops: Vec<(&String, &usize)> = self.operators.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (name, n) in ops {
            writeln!(s, "  {name:<24}{n}").expect("string");
        }
        s
    }
}

fn count_condition(c: &Condition, ops: &mut BTreeMap<String, usize>) {
    match c {
        Condition::Clause(cl) => *ops.entry(op_name(&cl.operator)).or_default() += 1,
        Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| count_condition(c, ops)),
        Condition::Not(c) => count_condition(c, ops),
    }
}

/// `@rx`, `!@rx` counts as `@rx`; the Cloudflare-style `in { ... }` as `in`.
fn op_name(op: &Operator) -> String {
    match op.kind {
        OperatorKind::InList(_) => "in".into(),
        _ => format!("@{}", waf_engine::seclang::operator_name(&op.kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_links_markers_and_operators() {
        let set = waf_engine::seclang::parse_str(
            "SecRuleEngine On\nSecDefaultAction \"phase:1,pass\"\n\
             SecRule ARGS \"@rx a\" \"id:1,chain\"\nSecRule ARGS \"!@rx b\" \"chain\"\nSecRule ARGS \"@pm c\" \"t:none\"\n\
             SecAction \"id:2,pass\"\nSecMarker M\nSecRuleRemoveById 1\nSecAuditEngine On\n",
            "t.conf",
        )
        .unwrap();
        let c = Counts::of(&set);
        assert_eq!(
            (
                c.rules,
                c.sec_rule,
                c.sec_action,
                c.chain_links,
                c.markers,
                c.default_actions,
                c.config,
                c.rule_edits
            ),
            (2, 3, 1, 2, 1, 1, 2, 1)
        );
        assert_eq!(c.operators.get("@rx"), Some(&2));
        assert_eq!(c.operators.get("@pm"), Some(&1));
        let text = c.render();
        assert!(text.contains(&format!("{:<26}2\n", "  chain links")), "{text}");
        assert!(text.find("@rx").unwrap() < text.find("@pm").unwrap(), "{text}");
    }
}
