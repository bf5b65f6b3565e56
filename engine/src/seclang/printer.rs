//! IR -> SecLang text.
//!
//! The law this module keeps: for every rule set the SecLang front-end produces,
//! `parse(print(set)) == set` (locations aside). Each piece is printed in the plainest
//! spelling that reads back to the same IR; every rule line is checked by re-parsing its
//! pieces, so a value that SecLang cannot spell (a `@pm` phrase with a space, a `setvar`
//! value starting with `+`) is an error naming the rule, never a silently different rule.
//!
//! IR that only the Cloudflare-style front-end produces is translated when SecLang has an
//! equivalent: `InList` becomes an anchored, escaped `@rx` alternation; a `condition` that is
//! one clause or an `all` of clauses becomes a rule and its chain (each link with
//! `t:none` and the clause's transformations). `any` and `not` have no SecLang equivalent.

use super::actions::parse_actions;
use super::lexer::{fits_in_double_quotes, tokenize};
use super::operators::parse_operator;
use super::variables::parse_targets;
use crate::ir::{
    Action, AllowScope, Condition, ConfigDirective, Ctl, Directive, EngineMode, IdRange,
    LimitAction, Loc, MacroString, Operator, OperatorKind, Rule, RuleSet, Selector, SetVarOp,
    Target, Transformation,
};
use std::fmt::Write as _;

/// Why a rule set could not be printed as SecLang.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", context(.rule_id, .loc))]
pub struct PrintError {
    pub kind: PrintErrorKind,
    pub rule_id: Option<u64>,
    pub loc: Option<Loc>,
}

fn context(id: &Option<u64>, loc: &Option<Loc>) -> String {
    match (id, loc) {
        (Some(id), Some(l)) => format!("rule {id} ({l}): "),
        (Some(id), None) => format!("rule {id}: "),
        (None, Some(l)) => format!("{l}: "),
        (None, None) => String::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrintErrorKind {
    /// A construct SecLang has no equivalent for.
    #[error("SecLang cannot express {0}")]
    Unsupported(String),
    /// A value that no SecLang quoting reads back unchanged.
    #[error("cannot write {what} `{text}` in SecLang so that it reads back unchanged")]
    Unprintable { what: String, text: String },
}

type Res<T> = Result<T, PrintErrorKind>;

fn unprintable(what: &str, text: &str) -> PrintErrorKind {
    PrintErrorKind::Unprintable { what: what.into(), text: text.chars().take(80).collect() }
}

/// Prints a rule set as SecLang.
pub fn print(set: &RuleSet) -> Result<String, PrintError> {
    let mut out = String::new();
    for d in &set.directives {
        let (rule_id, loc) = match d {
            Directive::Rule(r) => (r.id(), r.loc.clone()),
            Directive::Marker(m) => (None, m.loc.clone()),
            Directive::DefaultAction(d) => (None, d.loc.clone()),
            _ => (None, None),
        };
        directive(d, &mut out).map_err(|kind| PrintError { kind, rule_id, loc })?;
    }
    Ok(out)
}

fn directive(d: &Directive, out: &mut String) -> Res<()> {
    match d {
        Directive::Rule(r) => rule(r, out)?,
        Directive::Marker(m) => {
            writeln!(out, "SecMarker {}", word(&m.name, "marker name")?).expect("string")
        }
        Directive::DefaultAction(d) => {
            writeln!(out, "SecDefaultAction \"{}\"", actions(&d.actions)?).expect("string")
        }
        Directive::Config(c) => writeln!(out, "{}", config(c)?).expect("string"),
        Directive::Setting { name, args } => {
            let mut line = name.clone();
            for a in args {
                line.push(' ');
                line.push_str(&word(a, "argument")?);
            }
            writeln!(out, "{line}").expect("string");
        }
        Directive::RemoveById(ids) => {
            writeln!(out, "SecRuleRemoveById {}", id_list(ids, " ")).expect("string")
        }
        Directive::RemoveByTag(t) => {
            writeln!(out, "SecRuleRemoveByTag {}", quoted(t, "tag")?).expect("string")
        }
        Directive::RemoveByMsg(m) => {
            writeln!(out, "SecRuleRemoveByMsg {}", quoted(m, "message")?).expect("string")
        }
        Directive::UpdateTargetById { ids, targets, replaced } => {
            let sel = word(&id_list(ids, " "), "rule ids")?;
            update_target(out, "SecRuleUpdateTargetById", &sel, targets, replaced.as_deref())?
        }
        Directive::UpdateTargetByTag { tag, targets, replaced } => update_target(
            out,
            "SecRuleUpdateTargetByTag",
            &quoted(tag, "tag")?,
            targets,
            replaced.as_deref(),
        )?,
        Directive::UpdateTargetByMsg { msg, targets, replaced } => update_target(
            out,
            "SecRuleUpdateTargetByMsg",
            &quoted(msg, "message")?,
            targets,
            replaced.as_deref(),
        )?,
        Directive::UpdateActionById { id, actions: a } => {
            writeln!(out, "SecRuleUpdateActionById {id} \"{}\"", actions(a)?).expect("string")
        }
    }
    Ok(())
}

fn update_target(
    out: &mut String,
    name: &str,
    sel: &str,
    targets: &[Target],
    replaced: Option<&[Target]>,
) -> Res<()> {
    write!(out, "{name} {sel} \"{}\"", target_list(targets)?).expect("string");
    if let Some(r) = replaced {
        write!(out, " \"{}\"", target_list(r)?).expect("string");
    }
    out.push('\n');
    Ok(())
}

fn id_list(ids: &[IdRange], sep: &str) -> String {
    ids.iter().map(IdRange::to_string).collect::<Vec<_>>().join(sep)
}

/// A bare word when the tokenizer reads it back as one token, else a quoted string.
fn word(s: &str, what: &str) -> Res<String> {
    let bare_ok = !s.is_empty()
        && !s.starts_with(['"', '#'])
        && !s.ends_with('\\')
        && !s.contains(['\'', ' ', '\t', '\r', '\n']);
    if bare_ok {
        return Ok(s.to_string());
    }
    quoted(s, what)
}

fn quoted(s: &str, what: &str) -> Res<String> {
    if fits_in_double_quotes(s) { Ok(format!("\"{s}\"")) } else { Err(unprintable(what, s)) }
}

fn on_off(b: bool) -> &'static str {
    if b { "On" } else { "Off" }
}

fn mode(m: EngineMode) -> &'static str {
    match m {
        EngineMode::On => "On",
        EngineMode::Off => "Off",
        EngineMode::DetectionOnly => "DetectionOnly",
    }
}

fn limit(a: LimitAction) -> &'static str {
    match a {
        LimitAction::Reject => "Reject",
        LimitAction::ProcessPartial => "ProcessPartial",
    }
}

fn config(c: &ConfigDirective) -> Res<String> {
    use ConfigDirective as C;
    Ok(match c {
        C::RuleEngine(m) => format!("SecRuleEngine {}", mode(*m)),
        C::RequestBodyAccess(b) => format!("SecRequestBodyAccess {}", on_off(*b)),
        C::ResponseBodyAccess(b) => format!("SecResponseBodyAccess {}", on_off(*b)),
        C::RequestBodyLimit(n) => format!("SecRequestBodyLimit {n}"),
        C::RequestBodyNoFilesLimit(n) => format!("SecRequestBodyNoFilesLimit {n}"),
        C::RequestBodyInMemoryLimit(n) => format!("SecRequestBodyInMemoryLimit {n}"),
        C::RequestBodyLimitAction(a) => format!("SecRequestBodyLimitAction {}", limit(*a)),
        C::ResponseBodyLimit(n) => format!("SecResponseBodyLimit {n}"),
        C::ResponseBodyLimitAction(a) => format!("SecResponseBodyLimitAction {}", limit(*a)),
        C::RequestBodyJsonDepthLimit(n) => format!("SecRequestBodyJsonDepthLimit {n}"),
        C::ArgumentsLimit(n) => format!("SecArgumentsLimit {n}"),
        C::ResponseBodyMimeType(types) => {
            if types.is_empty()
                || types
                    .iter()
                    .any(|t| t.is_empty() || t.contains(char::is_whitespace) || t.contains('"'))
            {
                return Err(unprintable("MIME type list", &types.join(" ")));
            }
            format!("SecResponseBodyMimeType {}", types.join(" "))
        }
        C::ResponseBodyMimeTypesClear => "SecResponseBodyMimeTypesClear".to_string(),
        C::PcreMatchLimit(n) => format!("SecPcreMatchLimit {n}"),
        C::PcreMatchLimitRecursion(n) => format!("SecPcreMatchLimitRecursion {n}"),
        C::ArgumentSeparator(s) => format!("SecArgumentSeparator {}", word(s, "separator")?),
        C::CookieFormat(n) => format!("SecCookieFormat {n}"),
        C::UnicodeMapFile { path, code_point } => {
            format!("SecUnicodeMapFile {} {code_point}", word(path, "path")?)
        }
        C::CollectionTimeout(n) => format!("SecCollectionTimeout {n}"),
        C::ComponentSignature(s) => format!("SecComponentSignature {}", quoted(s, "signature")?),
    })
}

/// One SecRule/SecAction line to print, with what reading it back must give.
struct Link<'a> {
    targets: Vec<Target>,
    operator: Option<Operator>,
    /// Actions printed in front of the rule's own (a condition's transformations).
    pre: Vec<Action>,
    actions: &'a [Action],
    /// The `chain` action must be added (the IR nests a link but lacks the action).
    add_chain: bool,
}

fn rule(r: &Rule, out: &mut String) -> Res<()> {
    let mut links: Vec<Link<'_>> = Vec::new();
    for link in r.links() {
        let has_chain = link.has_action(|a| matches!(a, Action::Chain));
        if has_chain && link.chain.is_none() {
            return Err(PrintErrorKind::Unsupported(
                "a `chain` action on the last link of a chain".into(),
            ));
        }
        match &link.condition {
            None => links.push(Link {
                targets: link.targets.clone(),
                operator: link.operator.clone(),
                pre: Vec::new(),
                actions: &link.actions,
                add_chain: link.chain.is_some() && !has_chain,
            }),
            Some(cond) => {
                if link.operator.is_some() || !link.targets.is_empty() {
                    return Err(PrintErrorKind::Unsupported(
                        "a rule with both a condition and an operator".into(),
                    ));
                }
                let mut clauses = Vec::new();
                flatten_all(cond, &mut clauses)?;
                let last = clauses.len() - 1;
                for (i, c) in clauses.into_iter().enumerate() {
                    let mut pre = vec![Action::T(Transformation::None)];
                    pre.extend(c.transformations.iter().map(|t| Action::T(*t)));
                    let is_last = i == last;
                    links.push(Link {
                        targets: c.targets.clone(),
                        operator: Some(c.operator.clone()),
                        pre,
                        // The rule's own actions go on the first link (where ModSecurity
                        // reads id, phase and disruptive actions).
                        actions: if i == 0 { &link.actions } else { &[] },
                        add_chain: if is_last {
                            link.chain.is_some() && !has_chain
                        } else {
                            !(i == 0 && has_chain)
                        },
                    });
                }
            }
        }
    }
    for (i, l) in links.iter().enumerate() {
        let indent = if i == 0 { "" } else { "    " };
        let extra: Vec<Action> = if l.add_chain { vec![Action::Chain] } else { Vec::new() };
        let mut all: Vec<Action> = l.pre.clone();
        all.extend(l.actions.iter().cloned());
        all.extend(extra);
        let acts = actions(&all)?;
        match &l.operator {
            None => {
                if !l.targets.is_empty() {
                    return Err(PrintErrorKind::Unsupported(
                        "variables without an operator".into(),
                    ));
                }
                writeln!(out, "{indent}SecAction \\\n{indent}    \"{acts}\"").expect("string");
            }
            Some(op) => {
                if l.targets.is_empty() {
                    return Err(PrintErrorKind::Unsupported(
                        "an operator without variables".into(),
                    ));
                }
                let vars = target_list(&l.targets)?;
                // A `'` the list holds unclosed reads as itself on its own, but on the
                // directive's line a later `'` (in the actions) would close it: quoted then.
                let vars = if !vars.contains('\'')
                    && tokenize(&vars)
                        .is_ok_and(|t| t.len() == 1 && t[0].text == vars && !t[0].quoted)
                {
                    vars
                } else {
                    quoted(&vars, "variable list")?
                };
                let op = operator(op)?;
                if acts.is_empty() {
                    writeln!(out, "{indent}SecRule {vars} \"{op}\"").expect("string");
                } else {
                    writeln!(out, "{indent}SecRule {vars} \"{op}\" \\\n{indent}    \"{acts}\"")
                        .expect("string");
                }
            }
        }
    }
    out.push('\n');
    Ok(())
}

fn flatten_all<'c>(c: &'c Condition, out: &mut Vec<&'c crate::ir::Clause>) -> Res<()> {
    match c {
        Condition::Clause(cl) => out.push(cl),
        Condition::All(v) if !v.is_empty() => {
            for c in v {
                flatten_all(c, out)?;
            }
        }
        Condition::All(_) => {
            return Err(PrintErrorKind::Unsupported("an empty `all` condition".into()));
        }
        Condition::Any(_) => {
            return Err(PrintErrorKind::Unsupported("an `or` (any) condition".into()));
        }
        Condition::Not(_) => return Err(PrintErrorKind::Unsupported("a `not` condition".into())),
    }
    Ok(())
}

/// Targets joined by `|`, each checked to read back as itself.
fn target_list(ts: &[Target]) -> Res<String> {
    let parts: Vec<String> = ts.iter().map(target).collect::<Res<_>>()?;
    let s = parts.join("|");
    if parse_targets(&s).as_deref() != Ok(ts) {
        return Err(unprintable("variable list", &s));
    }
    Ok(s)
}

fn target(t: &Target) -> Res<String> {
    let mut head = String::new();
    if t.exclude {
        head.push('!');
    }
    if t.count {
        head.push('&');
    }
    head.push_str(t.variable.name());
    let candidates: Vec<String> = match &t.selector {
        None => vec![head.clone()],
        Some(Selector::Regex(r)) => vec![format!("{head}:/{r}/"), format!("{head}:'/{r}/'")],
        Some(Selector::Key(k)) => {
            let esc = k.replace('\\', "\\\\").replace('\'', "\\'");
            vec![format!("{head}:{k}"), format!("{head}:'{esc}'")]
        }
    };
    candidates
        .into_iter()
        .find(|c| parse_targets(c).is_ok_and(|v| v.len() == 1 && v[0] == *t))
        .ok_or_else(|| unprintable("variable", &t.to_string()))
}

/// Literal text for a macro-expanded value: `%{` that is not a macro must stay escaped.
fn macro_text(m: &MacroString) -> String {
    m.to_string()
}

/// The SecLang name of an operator, without `@` (`InList` prints as `rx`).
pub fn operator_name(k: &OperatorKind) -> &'static str {
    use OperatorKind as O;
    match k {
        O::Rx(_) | O::InList(_) => "rx",
        O::Pm(_) => "pm",
        O::PmFromFile(_) => "pmFromFile",
        O::IpMatch(_) => "ipMatch",
        O::IpMatchFromFile(_) => "ipMatchFromFile",
        O::Eq(_) => "eq",
        O::Ge(_) => "ge",
        O::Gt(_) => "gt",
        O::Le(_) => "le",
        O::Lt(_) => "lt",
        O::StrEq(_) => "streq",
        O::StrMatch(_) => "strmatch",
        O::BeginsWith(_) => "beginsWith",
        O::EndsWith(_) => "endsWith",
        O::Contains(_) => "contains",
        O::ContainsWord(_) => "containsWord",
        O::Within(_) => "within",
        O::DetectSqli => "detectSQLi",
        O::DetectXss => "detectXSS",
        O::ValidateByteRange(_) => "validateByteRange",
        O::ValidateUrlEncoding => "validateUrlEncoding",
        O::ValidateUtf8Encoding => "validateUtf8Encoding",
        O::ValidateDtd(_) => "validateDTD",
        O::ValidateSchema(_) => "validateSchema",
        O::ValidateHash(_) => "validateHash",
        O::VerifyCc(_) => "verifyCC",
        O::VerifyCpf(_) => "verifyCPF",
        O::VerifySsn(_) => "verifySSN",
        O::Rbl(_) => "rbl",
        O::GeoLookup => "geoLookup",
        O::GsbLookup(_) => "gsbLookup",
        O::InspectFile(_) => "inspectFile",
        O::FuzzyHash(_) => "fuzzyHash",
        O::UnconditionalMatch => "unconditionalMatch",
        O::NoMatch => "noMatch",
    }
}

/// Escapes a string so PCRE matches it literally, including `"` and `%` so that the text
/// also survives SecLang's double quotes and macro syntax.
fn pcre_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in regex_syntax::escape(s).chars() {
        if c == '"' || c == '%' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The operator text (between the quotes) and the operator that text reads back as.
fn operator(op: &Operator) -> Res<String> {
    use OperatorKind as O;
    let (arg, expected): (Option<String>, Operator) = match &op.kind {
        O::InList(items) => {
            if items.is_empty() {
                return Err(PrintErrorKind::Unsupported("an empty `in` list".into()));
            }
            let alts: Vec<String> = items.iter().map(|i| pcre_literal(i)).collect();
            let p = format!("^(?:{})$", alts.join("|"));
            (
                Some(p.clone()),
                Operator { negated: op.negated, kind: O::Rx(MacroString::literal(p)) },
            )
        }
        O::Rx(m)
        | O::Eq(m)
        | O::Ge(m)
        | O::Gt(m)
        | O::Le(m)
        | O::Lt(m)
        | O::StrEq(m)
        | O::StrMatch(m)
        | O::BeginsWith(m)
        | O::EndsWith(m)
        | O::Contains(m)
        | O::ContainsWord(m)
        | O::Within(m) => (Some(macro_text(m)), op.clone()),
        O::Pm(words) => (Some(words.join(" ")), op.clone()),
        O::PmFromFile(f) | O::IpMatchFromFile(f) => (Some(f.path.clone()), op.clone()),
        O::IpMatch(list) => (Some(list.join(",")), op.clone()),
        O::ValidateByteRange(r) => (
            Some(
                r.iter()
                    .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            op.clone(),
        ),
        O::ValidateDtd(s)
        | O::ValidateSchema(s)
        | O::ValidateHash(s)
        | O::VerifyCc(s)
        | O::VerifyCpf(s)
        | O::VerifySsn(s)
        | O::Rbl(s)
        | O::GsbLookup(s)
        | O::InspectFile(s)
        | O::FuzzyHash(s) => (Some(s.clone()), op.clone()),
        O::DetectSqli
        | O::DetectXss
        | O::ValidateUrlEncoding
        | O::ValidateUtf8Encoding
        | O::GeoLookup
        | O::UnconditionalMatch
        | O::NoMatch => (None, op.clone()),
    };
    let neg = if op.negated { "!" } else { "" };
    let text = match arg {
        Some(a) => format!("{neg}@{} {a}", operator_name(&op.kind)),
        None => format!("{neg}@{}", operator_name(&op.kind)),
    };
    if !fits_in_double_quotes(&text) {
        return Err(unprintable("operator", &text));
    }
    // Data files are read again on parse; compare their paths only, the disk may differ.
    let back = parse_operator(&text, None);
    let same = match (&back, &expected.kind) {
        (Ok(b), O::PmFromFile(f)) => {
            matches!(&b.kind, O::PmFromFile(g) if g.path == f.path) && b.negated == expected.negated
        }
        (Ok(b), O::IpMatchFromFile(f)) => {
            matches!(&b.kind, O::IpMatchFromFile(g) if g.path == f.path)
                && b.negated == expected.negated
        }
        (Err(e), O::PmFromFile(_) | O::IpMatchFromFile(_)) => {
            matches!(e.kind, super::error::ParseErrorKind::MissingDataFile { .. })
        }
        (Ok(b), _) => *b == expected,
        (Err(_), _) => false,
    };
    if !same {
        return Err(unprintable("operator", &text));
    }
    Ok(text)
}

fn setvar_text(sv: &crate::ir::SetVar) -> String {
    let key = macro_text(&sv.key);
    let val = macro_text(&sv.value);
    match sv.op {
        SetVarOp::Set => format!("{}.{key}={val}", sv.collection),
        SetVarOp::Add => format!("{}.{key}=+{val}", sv.collection),
        SetVarOp::Sub => format!("{}.{key}=-{val}", sv.collection),
        SetVarOp::Delete => format!("!{}.{key}", sv.collection),
        SetVarOp::Create => format!("{}.{key}", sv.collection),
    }
}

fn ctl_text(c: &Ctl) -> Res<String> {
    Ok(match c {
        Ctl::RuleEngine(m) => format!("ruleEngine={}", mode(*m)),
        Ctl::RequestBodyAccess(b) => format!("requestBodyAccess={}", on_off(*b)),
        Ctl::ResponseBodyAccess(b) => format!("responseBodyAccess={}", on_off(*b)),
        Ctl::RequestBodyProcessor(p) => format!("requestBodyProcessor={p}"),
        Ctl::ForceRequestBodyVariable(b) => format!("forceRequestBodyVariable={}", on_off(*b)),
        Ctl::RequestBodyLimit(n) => format!("requestBodyLimit={n}"),
        Ctl::RuleRemoveById(ids) => format!("ruleRemoveById={}", id_list(ids, " ")),
        Ctl::RuleRemoveByTag(t) => format!("ruleRemoveByTag={t}"),
        Ctl::RuleRemoveByMsg(m) => format!("ruleRemoveByMsg={m}"),
        Ctl::RuleRemoveTargetById { ids, target: t } => {
            format!("ruleRemoveTargetById={};{}", id_list(ids, " "), target(t)?)
        }
        Ctl::RuleRemoveTargetByTag { tag, target: t } => {
            format!("ruleRemoveTargetByTag={tag};{}", target(t)?)
        }
        Ctl::RuleRemoveTargetByMsg { msg, target: t } => {
            format!("ruleRemoveTargetByMsg={msg};{}", target(t)?)
        }
        Ctl::AuditEngine(s) => format!("auditEngine={s}"),
        Ctl::AuditLogParts(s) => format!("auditLogParts={s}"),
        Ctl::DebugLogLevel(n) => format!("debugLogLevel={n}"),
        Ctl::HashEngine(s) => format!("hashEngine={s}"),
        Ctl::HashEnforcement(s) => format!("hashEnforcement={s}"),
    })
}

/// `name` and the value text, `None` for actions without a value.
fn action_parts(a: &Action) -> Res<(&'static str, Option<String>)> {
    let m = |s: &MacroString| Some(macro_text(s));
    Ok(match a {
        Action::Id(n) => ("id", Some(n.to_string())),
        Action::Phase(p) => ("phase", Some(p.to_string())),
        Action::Msg(s) => ("msg", m(s)),
        Action::LogData(s) => ("logdata", m(s)),
        Action::Tag(s) => ("tag", m(s)),
        Action::Severity(s) => ("severity", Some(s.name().to_string())),
        Action::Ver(s) => ("ver", Some(s.clone())),
        Action::Rev(s) => ("rev", Some(s.clone())),
        Action::Maturity(n) => ("maturity", Some(n.to_string())),
        Action::Accuracy(n) => ("accuracy", Some(n.to_string())),
        Action::Deny => ("deny", None),
        Action::Block => ("block", None),
        Action::Drop => ("drop", None),
        Action::Pass => ("pass", None),
        Action::Allow(AllowScope::All) => ("allow", None),
        Action::Allow(AllowScope::Phase) => ("allow", Some("phase".into())),
        Action::Allow(AllowScope::Request) => ("allow", Some("request".into())),
        Action::Redirect(s) => ("redirect", m(s)),
        Action::Proxy(s) => ("proxy", m(s)),
        Action::Pause(n) => ("pause", Some(n.to_string())),
        Action::Status(n) => ("status", Some(n.to_string())),
        Action::Chain => ("chain", None),
        Action::SkipAfter(s) => ("skipAfter", Some(s.clone())),
        Action::Skip(n) => ("skip", Some(n.to_string())),
        Action::SetVar(sv) => ("setvar", Some(setvar_text(sv))),
        Action::SetEnv { name, value } => {
            ("setenv", Some(format!("{}={}", macro_text(name), macro_text(value))))
        }
        Action::SetUid(s) => ("setuid", m(s)),
        Action::SetSid(s) => ("setsid", m(s)),
        Action::SetRsc(s) => ("setrsc", m(s)),
        Action::InitCol { collection, key } => {
            ("initcol", Some(format!("{collection}={}", macro_text(key))))
        }
        Action::ExpireVar { collection, key, seconds } => {
            ("expirevar", Some(format!("{collection}.{}={}", macro_text(key), macro_text(seconds))))
        }
        Action::DeprecateVar { collection, key, value } => (
            "deprecatevar",
            Some(format!("{collection}.{}={}", macro_text(key), macro_text(value))),
        ),
        Action::Ctl(c) => ("ctl", Some(ctl_text(c)?)),
        Action::T(t) => ("t", Some(t.name().to_string())),
        Action::Capture => ("capture", None),
        Action::MultiMatch => ("multiMatch", None),
        Action::Log => ("log", None),
        Action::NoLog => ("nolog", None),
        Action::AuditLog => ("auditlog", None),
        Action::NoAuditLog => ("noauditlog", None),
        Action::SanitiseArg(s) => ("sanitiseArg", Some(s.clone())),
        Action::SanitiseMatched => ("sanitiseMatched", None),
        Action::SanitiseMatchedBytes(v) => ("sanitiseMatchedBytes", v.clone()),
        Action::SanitiseRequestHeader(s) => ("sanitiseRequestHeader", Some(s.clone())),
        Action::SanitiseResponseHeader(s) => ("sanitiseResponseHeader", Some(s.clone())),
        Action::Exec(s) => ("exec", Some(s.clone())),
        Action::Append(s) => ("append", m(s)),
        Action::Prepend(s) => ("prepend", m(s)),
        Action::Xmlns { prefix, uri } => ("xmlns", Some(format!("{prefix}={uri}"))),
    })
}

/// An action list (without the surrounding double quotes), checked to read back as `acts`.
fn actions(acts: &[Action]) -> Res<String> {
    let mut parts = Vec::with_capacity(acts.len());
    for a in acts {
        let (name, value) = action_parts(a)?;
        let text = match value {
            None => name.to_string(),
            Some(v) => {
                let bare = format!("{name}:{v}");
                let quoted = format!("{name}:'{v}'");
                let plain = !v.contains([',', ' ', '\t']) && !v.starts_with('\'') && !v.is_empty();
                let first = if plain { [bare, quoted] } else { [quoted, bare] };
                first
                    .into_iter()
                    .find(|c| parse_actions(c).is_ok_and(|back| back.len() == 1 && back[0] == *a))
                    .ok_or_else(|| unprintable("action", &format!("{name}:{v}")))?
            }
        };
        parts.push((text, matches!(a, Action::ExpireVar { .. })));
    }
    // A space after an `expirevar`'s comma: without one, libmodsecurity3's lexer (and our
    // parser, which follows it) reads the actions after it into the `expirevar`.
    let mut s = String::new();
    for (k, (text, _)) in parts.iter().enumerate() {
        if k > 0 {
            s.push_str(if parts[k - 1].1 { ", " } else { "," });
        }
        s.push_str(text);
    }
    if !fits_in_double_quotes(&s) || parse_actions(&s).as_deref() != Ok(acts) {
        return Err(unprintable("action list", &s));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Clause, Variable};
    use crate::seclang::parse_str;

    fn round_trip(src: &str) -> String {
        let mut a = parse_str(src, "a.conf").unwrap_or_else(|e| panic!("{e}"));
        let printed = print(&a).unwrap_or_else(|e| panic!("{e}"));
        let mut b = parse_str(&printed, "b.conf").unwrap_or_else(|e| panic!("{e}\n{printed}"));
        a.strip_locations();
        b.strip_locations();
        assert_eq!(a, b, "{printed}");
        printed
    }

    #[test]
    fn round_trips() {
        for src in [
            r#"SecRule ARGS|!ARGS:'a b'|&TX:x "!@rx a\"b\\c %{tx.y}" "id:1,phase:2,msg:'x, y',t:none,setvar:'tx.s=+%{tx.c}',chain"
               SecRule REQUEST_COOKIES:/^__utm/|XML://@* "@pm a b" "t:lowercase""#,
            r#"SecAction "id:2,nolog,pass,setvar:tx.a=1,ctl:ruleRemoveTargetById=3;ARGS:x""#,
            "SecMarker END\nSecDefaultAction \"phase:1,log,pass\"\nSecRuleEngine DetectionOnly",
            "SecAuditLogRelevantStatus \"^(?:5|4(?!04))\"\nSecRuleRemoveById 1 5-9\nSecRuleRemoveByTag 'a b'",
            "SecRuleUpdateTargetById 942100 \"!ARGS:foo\"\nSecRuleUpdateActionById 5 \"t:none,pass\"",
            "SecResponseBodyMimeType text/plain text/html\nSecComponentSignature \"OWASP_CRS/3.3.4\"",
            r#"SecRule ARGS "@validateByteRange 1-9,12" "id:3""#,
            // An unclosed `'` in a variable name, and a `'` later on the line (the printer
            // quotes `skipAfter`'s leading space): found by `seclang_proptest`.
            r#"SecRule TX:E'ECUTING_PARANOIA_LEVEL "@lt 1" "id:4,phase:1,pass,skipAfter: END""#,
        ] {
            round_trip(src);
        }
    }

    #[test]
    fn in_list_prints_as_an_anchored_escaped_regex() {
        let rule = Rule {
            targets: vec![Target::whole(Variable::RequestMethod)],
            operator: Some(Operator {
                negated: false,
                kind: OperatorKind::InList(vec!["GET".into(), "a.b\"c".into()]),
            }),
            condition: None,
            actions: vec![Action::Id(7)],
            chain: None,
            loc: None,
        };
        let set = RuleSet { directives: vec![Directive::Rule(rule)], ..RuleSet::default() };
        let out = print(&set).unwrap();
        assert!(out.contains(r#""@rx ^(?:GET|a\.b\"c)$""#), "{out}");
        let back = parse_str(&out, "x").unwrap();
        let Some(OperatorKind::Rx(m)) =
            back.rules().next().and_then(|r| r.operator.as_ref()).map(|o| &o.kind)
        else {
            panic!()
        };
        let re = regex::Regex::new(m.as_literal().unwrap()).unwrap();
        assert!(re.is_match("a.b\"c") && re.is_match("GET") && !re.is_match("axb\"c"));
    }

    #[test]
    fn conditions_become_chains_or_errors() {
        let clause = |v: Variable, s: &str| {
            Condition::Clause(Clause {
                targets: vec![Target::whole(v)],
                transformations: vec![Transformation::Lowercase],
                operator: Operator {
                    negated: false,
                    kind: OperatorKind::StrEq(MacroString::literal(s)),
                },
            })
        };
        let mk = |c: Condition| RuleSet {
            directives: vec![Directive::Rule(Rule {
                targets: vec![],
                operator: None,
                condition: Some(c),
                actions: vec![Action::Id(9), Action::Deny],
                chain: None,
                loc: None,
            })],
            ..RuleSet::default()
        };
        let out = print(&mk(Condition::All(vec![
            clause(Variable::RequestMethod, "get"),
            clause(Variable::RequestUri, "/"),
        ])))
        .unwrap();
        let back = parse_str(&out, "x").unwrap();
        let r = back.rules().next().unwrap();
        assert_eq!(r.links().count(), 2, "{out}");
        assert_eq!(r.id(), Some(9));
        let e =
            print(&mk(Condition::Any(vec![clause(Variable::RequestMethod, "get")]))).unwrap_err();
        assert_eq!(e.rule_id, Some(9));
        assert!(e.to_string().contains("`or`"), "{e}");
    }

    #[test]
    fn unprintable_values_are_errors() {
        let mut set = parse_str(r#"SecRule ARGS "@pm a" "id:4""#, "x").unwrap();
        let Directive::Rule(r) = &mut set.directives[0] else { panic!() };
        r.operator = Some(Operator { negated: false, kind: OperatorKind::Pm(vec!["a b".into()]) });
        let e = print(&set).unwrap_err();
        assert_eq!(e.rule_id, Some(4));
        assert!(matches!(e.kind, PrintErrorKind::Unprintable { .. }), "{e}");
    }
}
