//! The printer: IR -> Cloudflare-style text.
//!
//! Each rule is checked for constructs the language cannot say (an operator without an
//! equivalent, `ctl`, `skipAfter`, target exclusions, macros, ...) and refused with a
//! [`PrintError`] naming the rule and the construct. What it prints parses back to the same
//! IR when the IR came from [`super::parse`]: defaults the parser fills in (`status 403`,
//! the inferred phase, the implied `log`/`nolog`) are left out, everything else is written.

use super::error::{MAX_DEPTH, PrintError, PrintErrorKind};
use super::parser::{SCORE_VARIABLE, default_log, inferred_phase, is_address, looks_like_address};
use crate::ir::{
    Action, AllowScope, Clause, Condition, Directive, MacroString, Operator, OperatorKind, Rule,
    RuleSet, Selector, SetVarOp, Target, Transformation,
};
use std::fmt::Write as _;

/// Prints a whole rule set; fails on the first rule or directive that has no equivalent.
pub fn print(set: &RuleSet) -> Result<String, PrintError> {
    let mut out = String::new();
    for (i, d) in set.directives.iter().enumerate() {
        let Directive::Rule(rule) = d else {
            return Err(PrintError {
                rule: None,
                kind: PrintErrorKind::Directive(directive_name(d)),
            });
        };
        if i > 0 {
            out.push('\n');
        }
        let id = rule.id();
        print_rule(rule, &mut out).map_err(|kind| PrintError { rule: id, kind })?;
    }
    Ok(out)
}

fn directive_name(d: &Directive) -> String {
    match d {
        Directive::Rule(_) => "SecRule",
        Directive::Marker(_) => "SecMarker",
        Directive::DefaultAction(_) => "SecDefaultAction",
        Directive::Config(_) => "configuration",
        Directive::Setting { .. } => "setting",
        Directive::RemoveById(_) => "SecRuleRemoveById",
        Directive::RemoveByTag(_) => "SecRuleRemoveByTag",
        Directive::RemoveByMsg(_) => "SecRuleRemoveByMsg",
        Directive::UpdateTargetById { .. } => "SecRuleUpdateTargetById",
        Directive::UpdateTargetByTag { .. } => "SecRuleUpdateTargetByTag",
        Directive::UpdateTargetByMsg { .. } => "SecRuleUpdateTargetByMsg",
        Directive::UpdateActionById { .. } => "SecRuleUpdateActionById",
        // Keeps this compiling when the IR grows a directive.
        #[allow(unreachable_patterns)]
        _ => "directive",
    }
    .to_string()
}

fn unsupported(what: impl Into<String>) -> PrintErrorKind {
    PrintErrorKind::Unsupported(what.into())
}

/// The first link's actions, sorted into what the language can say.
struct Head {
    id: u64,
    phase: Option<u8>,
    msg: Option<String>,
    transformations: Vec<Transformation>,
    disruptive: Option<Action>,
    status: Option<u16>,
    log: Option<bool>,
    score: Option<u32>,
    chained: bool,
}

/// The transformations that apply: those after the last `t:none`.
fn effective(ts: &mut Vec<Transformation>, t: Transformation) {
    if t == Transformation::None {
        ts.clear();
    } else {
        ts.push(t);
    }
}

fn action_name(a: &Action) -> String {
    let json = serde_json::to_value(a).ok();
    let name = match &json {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Object(m)) => m.keys().next().cloned().unwrap_or_default(),
        _ => String::new(),
    };
    format!("action `{name}`")
}

fn literal(m: &MacroString, what: &str) -> Result<String, PrintErrorKind> {
    m.as_literal()
        .map(str::to_string)
        .ok_or_else(|| unsupported(format!("macro expansion `{m}` in {what}")))
}

fn head(rule: &Rule) -> Result<Head, PrintErrorKind> {
    let id = rule.id().ok_or(PrintErrorKind::MissingId)?;
    let mut h = Head {
        id,
        phase: None,
        msg: None,
        transformations: Vec::new(),
        disruptive: None,
        status: None,
        log: None,
        score: None,
        chained: false,
    };
    for a in &rule.actions {
        match a {
            Action::Id(_) => {}
            Action::Phase(p) => h.phase = Some(*p),
            Action::Msg(m) => {
                let m = literal(m, "msg")?;
                if m.contains(['\n', '\r']) || m.trim() != m {
                    return Err(unsupported(
                        "a message with line breaks or surrounding spaces".to_string(),
                    ));
                }
                h.msg = Some(m);
            }
            Action::T(t) => effective(&mut h.transformations, *t),
            Action::Deny | Action::Block | Action::Pass | Action::Allow(_) => {
                if h.disruptive.is_some() {
                    return Err(unsupported("more than one disruptive action"));
                }
                h.disruptive = Some(a.clone());
            }
            Action::Status(s) => h.status = Some(*s),
            Action::Log => h.log = Some(true),
            Action::NoLog => h.log = Some(false),
            Action::Chain => h.chained = true,
            Action::SetVar(sv)
                if sv.collection.eq_ignore_ascii_case("tx")
                    && sv.op == SetVarOp::Add
                    && sv.key.as_literal() == Some(SCORE_VARIABLE)
                    && h.score.is_none() =>
            {
                let n = sv.value.as_literal().and_then(|v| v.parse::<u32>().ok());
                match n {
                    Some(n) => h.score = Some(n),
                    None => return Err(unsupported(format!("setvar value `{}`", sv.value))),
                }
            }
            Action::SetVar(sv) => {
                return Err(unsupported(format!(
                    "setvar on `{}.{}` (only `score N`, adding to tx.{SCORE_VARIABLE})",
                    sv.collection, sv.key
                )));
            }
            other => return Err(unsupported(action_name(other))),
        }
    }
    if h.status.is_some() && h.disruptive != Some(Action::Deny) {
        return Err(unsupported("`status` without `deny`"));
    }
    Ok(h)
}

fn print_rule(rule: &Rule, out: &mut String) -> Result<(), PrintErrorKind> {
    let h = head(rule)?;
    let mut w = Writer { out: String::new(), pending_newline: false, at_line_start: true };
    let mut targets: Vec<&Target> = Vec::new();
    if let Some(cond) = &rule.condition {
        if !rule.targets.is_empty() || rule.operator.is_some() || rule.chain.is_some() {
            return Err(unsupported("a condition together with targets or a chain"));
        }
        if h.chained {
            return Err(unsupported("`chain` on a rule with a condition"));
        }
        if !h.transformations.is_empty() {
            return Err(unsupported("rule-level transformations on a rule with a condition"));
        }
        w.newline();
        condition(cond, &mut w, Ctx::Top, 0, &mut targets)?;
    } else {
        let Some(op) = &rule.operator else {
            return Err(unsupported("an unconditional rule (SecAction)"));
        };
        w.newline();
        clause(&rule.targets, &h.transformations, op, &mut w)?;
        targets.extend(rule.targets.iter());
        let mut chained = h.chained;
        let mut link = rule.chain.as_deref();
        while let Some(l) = link {
            if !chained {
                return Err(unsupported("a chained rule without `chain` on the link before it"));
            }
            if l.condition.is_some() {
                return Err(unsupported("a condition inside a chain"));
            }
            let Some(op) = &l.operator else {
                return Err(unsupported("a chain link without an operator"));
            };
            let mut ts = Vec::new();
            chained = false;
            for a in &l.actions {
                match a {
                    Action::T(t) => effective(&mut ts, *t),
                    Action::Chain => chained = true,
                    other => {
                        return Err(unsupported(format!("{} on a chain link", action_name(other))));
                    }
                }
            }
            w.newline();
            w.word("and");
            clause(&l.targets, &ts, op, &mut w)?;
            targets.extend(l.targets.iter());
            link = l.chain.as_deref();
        }
        if chained {
            return Err(unsupported("`chain` on the last link"));
        }
    }
    // Actions: the disruptive one, then only what differs from the parser's defaults.
    w.newline();
    let disruptive = h.disruptive.clone().unwrap_or(Action::Pass);
    match &disruptive {
        Action::Deny => {
            w.word("deny");
            if let Some(s) = h.status.filter(|&s| s != 403) {
                w.word(&s.to_string());
            }
        }
        Action::Block => w.word("block"),
        Action::Allow(AllowScope::All) => w.word("allow"),
        Action::Allow(AllowScope::Request) => w.word("allow-request"),
        Action::Allow(AllowScope::Phase) => w.word("allow-phase"),
        _ => w.word("pass"),
    }
    if let Some(log) = h.log {
        if log != default_log(&disruptive, h.score) {
            w.word(if log { "log" } else { "nolog" });
        }
    }
    if let Some(n) = h.score {
        w.word("score");
        w.word(&n.to_string());
    }
    // A rule without `phase:` (from SecLang) runs in v3's default phase, which the
    // Cloudflare-style rule must then say when it would infer another.
    let p = h.phase.unwrap_or(crate::eval::compile::DEFAULT_PHASE);
    if !(1..=5).contains(&p) {
        return Err(unsupported(format!("phase {p}")));
    }
    if p != inferred_phase(targets.iter().copied()) {
        w.word("phase");
        w.word(&p.to_string());
    }
    let _ = write!(out, "rule {}", h.id);
    if let Some(m) = &h.msg {
        if !m.is_empty() {
            let _ = write!(out, " {m}");
        }
    }
    out.push_str(&w.out);
    out.push('\n');
    Ok(())
}

/// Builds the text word by word. A bare regex runs to the end of its line, so whatever
/// follows it must start a new line.
struct Writer {
    out: String,
    pending_newline: bool,
    at_line_start: bool,
}

impl Writer {
    fn newline(&mut self) {
        self.pending_newline = true;
    }
    fn word(&mut self, s: &str) {
        if self.pending_newline {
            self.out.push_str("\n    ");
            self.pending_newline = false;
        } else if !self.at_line_start && !self.out.ends_with('(') {
            self.out.push(' ');
        }
        self.at_line_start = false;
        self.out.push_str(s);
    }
    /// Glued to the previous word (`)`), unless a line break is pending.
    fn glue(&mut self, s: &str) {
        if self.pending_newline {
            self.word(s);
        } else {
            self.out.push_str(s);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Top,
    InAll,
    InAny,
}

fn condition<'c>(
    c: &'c Condition,
    w: &mut Writer,
    ctx: Ctx,
    depth: usize,
    targets: &mut Vec<&'c Target>,
) -> Result<(), PrintErrorKind> {
    if depth > MAX_DEPTH {
        return Err(PrintErrorKind::TooDeep(MAX_DEPTH));
    }
    match c {
        Condition::Clause(Clause { targets: t, transformations, operator }) => {
            if transformations.contains(&Transformation::None) {
                return Err(unsupported("`t:none` inside a clause"));
            }
            targets.extend(t.iter());
            clause(t, transformations, operator, w)
        }
        Condition::All(items) | Condition::Any(items) => {
            let is_all = matches!(c, Condition::All(_));
            if items.is_empty() {
                return Err(unsupported("an empty condition group"));
            }
            // `and` binds tighter than `or`: only an `or` group inside an `and` group, or a
            // group of the same kind nested in itself, needs parentheses.
            let parens = match ctx {
                Ctx::Top => false,
                Ctx::InAll => true,
                Ctx::InAny => !is_all,
            } && items.len() > 1;
            if parens {
                w.word("(");
            }
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.newline();
                    w.word(if is_all { "and" } else { "or" });
                }
                let inner = if is_all { Ctx::InAll } else { Ctx::InAny };
                condition(item, w, inner, depth + 1, targets)?;
            }
            if parens {
                w.glue(")");
            }
            Ok(())
        }
        Condition::Not(inner) => {
            if matches!(**inner, Condition::Clause(_)) {
                // The language's `not CLAUSE` negates the operator (ModSecurity's `!@op`,
                // true when any value fails to match), which is not the boolean negation
                // of the clause.
                return Err(unsupported("a boolean `not` over a single clause"));
            }
            w.word("not");
            w.word("(");
            condition(inner, w, Ctx::Top, depth + 1, targets)?;
            w.glue(")");
            Ok(())
        }
    }
}

fn clause(
    targets: &[Target],
    transformations: &[Transformation],
    op: &Operator,
    w: &mut Writer,
) -> Result<(), PrintErrorKind> {
    if targets.is_empty() {
        return Err(unsupported("a clause without targets"));
    }
    let negate_with_not = op.negated && !matches!(op.kind, OperatorKind::StrEq(_));
    if negate_with_not {
        w.word("not");
    }
    let mut t = String::new();
    for (i, target) in targets.iter().enumerate() {
        if i > 0 {
            t.push(',');
        }
        t.push_str(&target_text(target)?);
    }
    for tr in transformations {
        if *tr == Transformation::None {
            continue;
        }
        t.push('|');
        t.push_str(tr.name());
    }
    w.word(&t);
    let value = |m: &MacroString| -> Result<String, PrintErrorKind> {
        Ok(value_text(&literal(m, "an operator argument")?))
    };
    let number = |m: &MacroString| -> Result<String, PrintErrorKind> {
        let v = literal(m, "an operator argument")?;
        if v.parse::<i64>().is_err() {
            return Err(unsupported(format!("non-integer argument `{v}` of a numeric operator")));
        }
        Ok(v)
    };
    let (name, arg) = match &op.kind {
        OperatorKind::StrEq(m) => (if op.negated { "is-not" } else { "is" }, value(m)?),
        OperatorKind::BeginsWith(m) => ("has-prefix", value(m)?),
        OperatorKind::EndsWith(m) => ("has-suffix", value(m)?),
        OperatorKind::Contains(m) => ("contains", value(m)?),
        OperatorKind::ContainsWord(m) => ("contains-word", value(m)?),
        OperatorKind::Eq(m) => ("eq", number(m)?),
        OperatorKind::Gt(m) => ("gt", number(m)?),
        OperatorKind::Ge(m) => ("ge", number(m)?),
        OperatorKind::Lt(m) => ("lt", number(m)?),
        OperatorKind::Le(m) => ("le", number(m)?),
        OperatorKind::Rx(m) => {
            let re = literal(m, "a regex")?;
            w.word("matches");
            if bare_regex_ok(&re) {
                w.word(&re);
                w.newline();
            } else {
                w.word(&quote(&re));
            }
            return Ok(());
        }
        OperatorKind::Pm(list) => {
            if let Some(p) = list.iter().find(|p| p.is_empty() || p.contains(char::is_whitespace)) {
                return Err(unsupported(format!("@pm phrase `{p}` with white space")));
            }
            ("contains-any", list_text(list, false)?)
        }
        OperatorKind::InList(list) => ("in", list_text(list, true)?),
        OperatorKind::IpMatch(list) => {
            if let Some(bad) = list.iter().find(|a| !is_address(a)) {
                return Err(unsupported(format!("@ipMatch entry `{bad}`")));
            }
            ("in", list_text(list, false)?)
        }
        other => return Err(unsupported(format!("operator {}", seclang_operator(other)))),
    };
    w.word(name);
    w.word(&arg);
    Ok(())
}

fn list_text(list: &[String], quote_addresses: bool) -> Result<String, PrintErrorKind> {
    if list.is_empty() {
        return Err(unsupported("an empty list"));
    }
    let mut s = String::from("{");
    for item in list {
        s.push(' ');
        if quote_addresses && looks_like_address(item) {
            // Unquoted, an all-address list would parse back as @ipMatch.
            s.push_str(&quote(item));
        } else {
            s.push_str(&value_text(item));
        }
    }
    s.push_str(" }");
    Ok(s)
}

fn target_text(t: &Target) -> Result<String, PrintErrorKind> {
    if t.exclude {
        return Err(unsupported(format!("target exclusion `{t}`")));
    }
    let mut s = String::new();
    if t.count {
        s.push('&');
    }
    s.push_str(t.variable.name());
    match &t.selector {
        None => {}
        Some(Selector::Key(k)) => {
            s.push(':');
            let bare = !k.is_empty()
                && !k.starts_with('/')
                && !k.starts_with('"')
                && !k.chars().any(|c| {
                    c.is_whitespace() || matches!(c, '|' | ',' | '(' | ')' | '{' | '}' | '"')
                });
            if bare { s.push_str(k) } else { s.push_str(&quote(k)) }
        }
        Some(Selector::Regex(r)) => {
            if !slash_regex_ok(r) {
                return Err(unsupported(format!(
                    "regex selector `{r}` (unescaped `/` or line break)"
                )));
            }
            let _ = write!(s, ":/{r}/");
        }
    }
    Ok(s)
}

/// Whether the text between `/.../` reads back unchanged: no line break, no unescaped `/`,
/// no dangling backslash.
fn slash_regex_ok(r: &str) -> bool {
    let mut escaped = false;
    for c in r.chars() {
        match (escaped, c) {
            (_, '\n') => return false,
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '/') => return false,
            _ => {}
        }
    }
    !escaped
}

/// A bare regex runs to the end of the line and loses trailing white space.
fn bare_regex_ok(re: &str) -> bool {
    !re.is_empty()
        && !re.starts_with('"')
        && !re.starts_with(char::is_whitespace)
        && !re.ends_with(char::is_whitespace)
        && !re.contains(['\n', '\r'])
}

fn value_text(v: &str) -> String {
    let bare = !v.is_empty()
        && !v.starts_with('#')
        && !v.chars().any(|c| c.is_whitespace() || matches!(c, '(' | ')' | '{' | '}' | '"'));
    if bare { v.to_string() } else { quote(v) }
}

fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The SecLang spelling of an operator, for error messages.
fn seclang_operator(k: &OperatorKind) -> &'static str {
    match k {
        OperatorKind::Rx(_) => "@rx",
        OperatorKind::Pm(_) => "@pm",
        OperatorKind::PmFromFile(_) => "@pmFromFile",
        OperatorKind::IpMatch(_) => "@ipMatch",
        OperatorKind::IpMatchFromFile(_) => "@ipMatchFromFile",
        OperatorKind::Eq(_) => "@eq",
        OperatorKind::Ge(_) => "@ge",
        OperatorKind::Gt(_) => "@gt",
        OperatorKind::Le(_) => "@le",
        OperatorKind::Lt(_) => "@lt",
        OperatorKind::StrEq(_) => "@streq",
        OperatorKind::StrMatch(_) => "@strmatch",
        OperatorKind::BeginsWith(_) => "@beginsWith",
        OperatorKind::EndsWith(_) => "@endsWith",
        OperatorKind::Contains(_) => "@contains",
        OperatorKind::ContainsWord(_) => "@containsWord",
        OperatorKind::Within(_) => "@within",
        OperatorKind::DetectSqli => "@detectSQLi",
        OperatorKind::DetectXss => "@detectXSS",
        OperatorKind::ValidateByteRange(_) => "@validateByteRange",
        OperatorKind::ValidateUrlEncoding => "@validateUrlEncoding",
        OperatorKind::ValidateUtf8Encoding => "@validateUtf8Encoding",
        OperatorKind::ValidateDtd(_) => "@validateDTD",
        OperatorKind::ValidateSchema(_) => "@validateSchema",
        OperatorKind::ValidateHash(_) => "@validateHash",
        OperatorKind::VerifyCc(_) => "@verifyCC",
        OperatorKind::VerifyCpf(_) => "@verifyCPF",
        OperatorKind::VerifySsn(_) => "@verifySSN",
        OperatorKind::Rbl(_) => "@rbl",
        OperatorKind::GeoLookup => "@geoLookup",
        OperatorKind::GsbLookup(_) => "@gsbLookup",
        OperatorKind::InspectFile(_) => "@inspectFile",
        OperatorKind::FuzzyHash(_) => "@fuzzyHash",
        OperatorKind::UnconditionalMatch => "@unconditionalMatch",
        OperatorKind::NoMatch => "@noMatch",
        OperatorKind::InList(_) => "in-list",
        #[allow(unreachable_patterns)]
        _ => "this operator",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_quote_when_needed() {
        let cases = [
            ("GET", "GET"),
            ("a b", "\"a b\""),
            ("", "\"\""),
            ("#x", "\"#x\""),
            ("f(x)", "\"f(x)\""),
            ("a\"b\\c", "\"a\\\"b\\\\c\""),
            ("a\\b", "a\\b"),
        ];
        for (v, want) in cases {
            assert_eq!(value_text(v), want, "{v}");
        }
    }

    #[test]
    fn regex_forms() {
        assert!(bare_regex_ok(r"^\d+$"));
        assert!(!bare_regex_ok(" x"));
        assert!(!bare_regex_ok("x "));
        assert!(!bare_regex_ok("\"x"));
        assert!(!bare_regex_ok(""));
        assert!(slash_regex_ok(r"^a\/b"));
        assert!(!slash_regex_ok("a/b"));
        assert!(!slash_regex_ok("a\\"));
    }
}
