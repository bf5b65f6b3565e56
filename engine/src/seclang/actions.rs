//! Action lists: `"id:1,phase:2,t:none,msg:'a, b',setvar:'tx.x=+%{tx.y}',ctl:ruleEngine=Off"`.
//!
//! Actions are separated by commas (white space around them is allowed); a value follows
//! `:` and is either `'quoted'` (`\'` does not end it; the text is kept verbatim, as v3's
//! FREE_TEXT_QUOTE_MACRO_EXPANSION does) or runs up to the next comma. Names are
//! case-insensitive. Values that v3 expands at run time become [`MacroString`]s.

use super::error::{ParseErrorKind, Spanned};
use super::lexer::closing_single_quote;
use super::variables::{excerpt, parse_macro_string, parse_targets};
use crate::ir::{
    Action, AllowScope, Ctl, EngineMode, IdRange, MacroString, SetVar, SetVarOp, Severity,
    Transformation,
};

/// One `name[:value]` item with offsets into the action list text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawAction<'a> {
    pub name: &'a str,
    pub name_at: usize,
    pub value: Option<&'a str>,
    pub value_at: usize,
}

/// Splits an action list into its items.
pub(crate) fn split_actions(s: &str) -> Result<Vec<RawAction<'_>>, Spanned> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if i >= b.len() {
        return Ok(out);
    }
    loop {
        skip_ws(&mut i);
        let name_at = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let name = &s[name_at..i];
        if name.is_empty() {
            return Err(Spanned::new(
                ParseErrorKind::Unexpected {
                    expected: "an action".into(),
                    found: excerpt(&s[i..]),
                },
                i,
            ));
        }
        let mut value = None;
        let mut value_at = i;
        if b.get(i) == Some(&b':') {
            i += 1;
            if b.get(i) == Some(&b'\'') {
                let close = closing_single_quote(b, i + 1)
                    .ok_or_else(|| Spanned::new(ParseErrorKind::UnbalancedQuote, i))?;
                value_at = i + 1;
                value = Some(&s[i + 1..close]);
                i = close + 1;
            } else {
                value_at = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                value = Some(s[value_at..i].trim_end_matches([' ', '\t']));
            }
        }
        out.push(RawAction { name, name_at, value, value_at });
        if name.eq_ignore_ascii_case("expirevar") {
            i = i.max(expirevar_token_end(b, name_at + name.len() + 1));
        }
        skip_ws(&mut i);
        match b.get(i) {
            None => return Ok(out),
            Some(b',') => i += 1,
            Some(_) => {
                return Err(Spanned::new(
                    ParseErrorKind::Unexpected {
                        expected: "`,` between actions".into(),
                        found: excerpt(&s[i..]),
                    },
                    i,
                ));
            }
        }
    }
}

/// Where libmodsecurity3's lexer ends an `expirevar` token whose value starts at `start`.
/// One of its patterns is `expirevar:[^ \t"]+=[^, \t"]+`, whose first part crosses commas,
/// and flex takes the longest match: the token runs to the last `=` before white space or
/// a double quote, and on to the next comma. `expirevar:tx.a=10,setvar:tx.b=1` is one
/// action there (one v3 does not carry out), and the `setvar` is gone; observed through
/// the peer. CRS only writes `expirevar` last, or before another `expirevar`.
fn expirevar_token_end(b: &[u8], start: usize) -> usize {
    let stop = |c: &u8| matches!(c, b' ' | b'\t' | b'"');
    let run_end = b[start.min(b.len())..].iter().position(stop).map_or(b.len(), |p| start + p);
    let mut end = 0;
    for e in start + 1..run_end {
        if b[e] != b'=' {
            continue;
        }
        let tail = b[e + 1..run_end].iter().take_while(|&&c| c != b',').count();
        if tail > 0 {
            end = end.max(e + 1 + tail);
        }
    }
    end
}

/// Parses a whole action list. Offsets in errors are relative to `s`.
pub(crate) fn parse_actions(s: &str) -> Result<Vec<Action>, Spanned> {
    parse_actions_all(s).map_err(|mut v| v.swap_remove(0))
}

/// Like [`parse_actions`], but reports every bad action, not only the first.
pub(crate) fn parse_actions_all(s: &str) -> Result<Vec<Action>, Vec<Spanned>> {
    let raw = split_actions(s).map_err(|e| vec![e])?;
    let mut out = Vec::with_capacity(raw.len());
    let mut errs = Vec::new();
    for a in &raw {
        match parse_action(a) {
            Ok(a) => out.push(a),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

fn bad(name: &str, reason: impl Into<String>, at: usize) -> Spanned {
    Spanned::new(ParseErrorKind::BadValue { name: name.into(), reason: reason.into() }, at)
}

fn macro_at(v: &str, at: usize) -> Result<MacroString, Spanned> {
    parse_macro_string(v).map_err(|e| e.shift(at))
}

fn number<T: std::str::FromStr>(name: &str, v: &str, at: usize) -> Result<T, Spanned> {
    v.trim().parse().map_err(|_| bad(name, format!("`{}` is not a valid number", excerpt(v)), at))
}

/// Splits `collection.key` (or `collection:key`).
fn collection_key<'a>(
    name: &str,
    v: &'a str,
    at: usize,
) -> Result<(String, &'a str, usize), Spanned> {
    let p = v.find(['.', ':']).ok_or_else(|| bad(name, "expected COLLECTION.KEY", at))?;
    let col = &v[..p];
    if col.is_empty() || !col.bytes().all(|c| c.is_ascii_alphabetic()) {
        return Err(bad(name, format!("`{}` is not a collection name", excerpt(col)), at));
    }
    Ok((col.to_ascii_lowercase(), &v[p + 1..], at + p + 1))
}

fn parse_action(a: &RawAction<'_>) -> Result<Action, Spanned> {
    let lname = a.name.to_ascii_lowercase();
    let at = a.value_at;
    let need = |what: &str| -> Result<&str, Spanned> {
        a.value.ok_or_else(|| bad(a.name, format!("expected `{}:{what}`", a.name), a.name_at))
    };
    let no_value = |act: Action| -> Result<Action, Spanned> {
        match a.value {
            None => Ok(act),
            Some(_) => Err(bad(a.name, "takes no value", at)),
        }
    };
    Ok(match lname.as_str() {
        "id" => {
            let id: u64 = number("id", need("N")?, at)?;
            if id == 0 {
                return Err(bad("id", "rule ids start at 1", at));
            }
            Action::Id(id)
        }
        "phase" => {
            let v = need("N")?;
            Action::Phase(match v.to_ascii_lowercase().as_str() {
                "request" => 2,
                "response" => 4,
                "logging" => 5,
                _ => match v.parse::<u8>() {
                    Ok(p @ 1..=5) => p,
                    _ => return Err(bad("phase", format!("`{}` is not 1-5", excerpt(v)), at)),
                },
            })
        }
        "msg" => Action::Msg(macro_at(need("TEXT")?, at)?),
        "logdata" => Action::LogData(macro_at(need("TEXT")?, at)?),
        "tag" => Action::Tag(macro_at(need("TEXT")?, at)?),
        "severity" => {
            let v = need("LEVEL")?;
            Action::Severity(Severity::parse(v).ok_or_else(|| {
                bad("severity", format!("`{}` is not a severity", excerpt(v)), at)
            })?)
        }
        "ver" => Action::Ver(need("TEXT")?.to_string()),
        "rev" => Action::Rev(need("TEXT")?.to_string()),
        "maturity" => Action::Maturity(number("maturity", need("N")?, at)?),
        "accuracy" => Action::Accuracy(number("accuracy", need("N")?, at)?),
        "deny" => no_value(Action::Deny)?,
        "block" => no_value(Action::Block)?,
        "drop" => no_value(Action::Drop)?,
        "pass" => no_value(Action::Pass)?,
        "allow" => Action::Allow(match a.value.map(str::to_ascii_lowercase).as_deref() {
            None => AllowScope::All,
            Some("phase") => AllowScope::Phase,
            Some("request") => AllowScope::Request,
            Some(v) => {
                return Err(bad(
                    "allow",
                    format!("`{}` is not `phase` or `request`", excerpt(v)),
                    at,
                ));
            }
        }),
        "redirect" => Action::Redirect(macro_at(need("URL")?, at)?),
        "proxy" => Action::Proxy(macro_at(need("URL")?, at)?),
        "pause" => Action::Pause(number("pause", need("MS")?, at)?),
        "status" => Action::Status(number("status", need("CODE")?, at)?),
        "chain" => no_value(Action::Chain)?,
        "skipafter" => {
            let v = need("MARKER")?;
            if v.is_empty() {
                return Err(bad("skipAfter", "empty marker name", at));
            }
            Action::SkipAfter(v.to_string())
        }
        "skip" => Action::Skip(number("skip", need("N")?, at)?),
        "setvar" => Action::SetVar(parse_setvar(need("COLLECTION.KEY=VALUE")?, at)?),
        "setenv" => {
            let v = need("NAME=VALUE")?;
            let (n, val) = v.split_once('=').unwrap_or((v, ""));
            Action::SetEnv { name: macro_at(n, at)?, value: macro_at(val, at + n.len() + 1)? }
        }
        "setuid" => Action::SetUid(macro_at(need("VALUE")?, at)?),
        "setsid" => Action::SetSid(macro_at(need("VALUE")?, at)?),
        "setrsc" => Action::SetRsc(macro_at(need("VALUE")?, at)?),
        "initcol" => {
            let v = need("COLLECTION=KEY")?;
            let (c, k) =
                v.split_once('=').ok_or_else(|| bad("initcol", "expected COLLECTION=KEY", at))?;
            Action::InitCol {
                collection: c.to_ascii_lowercase(),
                key: macro_at(k, at + c.len() + 1)?,
            }
        }
        "expirevar" | "deprecatevar" => {
            let v = need("COLLECTION.KEY=VALUE")?;
            let (collection, rest, rest_at) = collection_key(a.name, v, at)?;
            let (k, val) = rest
                .split_once('=')
                .ok_or_else(|| bad(a.name, "expected COLLECTION.KEY=VALUE", at))?;
            let key = macro_at(k, rest_at)?;
            let value = macro_at(val, rest_at + k.len() + 1)?;
            if lname == "expirevar" {
                Action::ExpireVar { collection, key, seconds: value }
            } else {
                Action::DeprecateVar { collection, key, value }
            }
        }
        "ctl" => Action::Ctl(parse_ctl(need("NAME=VALUE")?, at)?),
        "t" => {
            let v = need("NAME")?;
            Action::T(
                Transformation::from_name(v).ok_or_else(|| {
                    Spanned::new(ParseErrorKind::UnknownTransformation(v.into()), at)
                })?,
            )
        }
        "capture" => no_value(Action::Capture)?,
        "multimatch" => no_value(Action::MultiMatch)?,
        "log" => no_value(Action::Log)?,
        "nolog" => no_value(Action::NoLog)?,
        "auditlog" => no_value(Action::AuditLog)?,
        "noauditlog" => no_value(Action::NoAuditLog)?,
        "sanitisearg" => Action::SanitiseArg(need("NAME")?.to_string()),
        "sanitisematched" => no_value(Action::SanitiseMatched)?,
        "sanitisematchedbytes" => Action::SanitiseMatchedBytes(a.value.map(str::to_string)),
        "sanitiserequestheader" => Action::SanitiseRequestHeader(need("NAME")?.to_string()),
        "sanitiseresponseheader" => Action::SanitiseResponseHeader(need("NAME")?.to_string()),
        "exec" => Action::Exec(need("PATH")?.to_string()),
        "append" => Action::Append(macro_at(need("TEXT")?, at)?),
        "prepend" => Action::Prepend(macro_at(need("TEXT")?, at)?),
        "xmlns" => {
            let v = need("PREFIX=URI")?;
            let (p, u) =
                v.split_once('=').ok_or_else(|| bad("xmlns", "expected PREFIX=URI", at))?;
            Action::Xmlns { prefix: p.to_string(), uri: u.to_string() }
        }
        _ => return Err(Spanned::new(ParseErrorKind::UnknownAction(a.name.into()), a.name_at)),
    })
}

/// `setvar`: `[!]COLLECTION.KEY[=VALUE|=+VALUE|=-VALUE]`. As in v3's scanner, `=-` is
/// always the subtraction operator, so `tx.x=-5` subtracts 5.
pub(crate) fn parse_setvar(v: &str, at: usize) -> Result<SetVar, Spanned> {
    let (delete, v, at) = match v.strip_prefix('!') {
        Some(rest) => (true, rest, at + 1),
        None => (false, v, at),
    };
    let (collection, rest, rest_at) = collection_key("setvar", v, at)?;
    // The key ends at the first `=` that is not inside a macro.
    let eq = find_outside_macros(rest, b'=');
    let (key_text, op, value_text, value_at) = match eq {
        None => (
            rest,
            if delete { SetVarOp::Delete } else { SetVarOp::Create },
            "",
            rest_at + rest.len(),
        ),
        Some(p) => {
            if delete {
                return Err(bad("setvar", "`!` deletes a variable and takes no value", at - 1));
            }
            let after = &rest[p + 1..];
            let (op, skip) = match after.as_bytes().first() {
                Some(b'+') => (SetVarOp::Add, 1),
                Some(b'-') => (SetVarOp::Sub, 1),
                _ => (SetVarOp::Set, 0),
            };
            (&rest[..p], op, &after[skip..], rest_at + p + 1 + skip)
        }
    };
    if key_text.is_empty() {
        return Err(bad("setvar", "empty variable name", rest_at));
    }
    Ok(SetVar {
        collection,
        key: macro_at(key_text, rest_at)?,
        op,
        value: macro_at(value_text, value_at)?,
    })
}

fn find_outside_macros(s: &str, needle: u8) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = false;
    for (i, &c) in b.iter().enumerate() {
        if c == b'{' && i > 0 && b[i - 1] == b'%' {
            depth = true;
        } else if c == b'}' {
            depth = false;
        } else if c == needle && !depth {
            return Some(i);
        }
    }
    None
}

fn on_off(name: &str, v: &str, at: usize) -> Result<bool, Spanned> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(bad(name, format!("`{}` is not On or Off", excerpt(v)), at)),
    }
}

pub(crate) fn engine_mode(name: &str, v: &str, at: usize) -> Result<EngineMode, Spanned> {
    match v.to_ascii_lowercase().as_str() {
        "on" => Ok(EngineMode::On),
        "off" => Ok(EngineMode::Off),
        "detectiononly" => Ok(EngineMode::DetectionOnly),
        _ => Err(bad(name, format!("`{}` is not On, Off or DetectionOnly", excerpt(v)), at)),
    }
}

/// `1`, `1-5`, several separated by white space.
pub(crate) fn id_ranges(name: &str, v: &str, at: usize) -> Result<Vec<IdRange>, Spanned> {
    let mut out = Vec::new();
    let mut offset = 0;
    for part in v.split([' ', '\t']) {
        let here = at + offset;
        offset += part.len() + 1;
        if part.is_empty() {
            continue;
        }
        let r = match part.split_once('-') {
            Some((a, b)) => IdRange { start: number(name, a, here)?, end: number(name, b, here)? },
            None => IdRange::single(number(name, part, here)?),
        };
        if r.start > r.end {
            return Err(bad(name, format!("range `{part}` ends before it starts"), here));
        }
        out.push(r);
    }
    if out.is_empty() {
        return Err(bad(name, "expected a rule id or range", at));
    }
    Ok(out)
}

fn parse_ctl(v: &str, at: usize) -> Result<Ctl, Spanned> {
    let (name, val) = v.split_once('=').ok_or_else(|| bad("ctl", "expected ctl:NAME=VALUE", at))?;
    let vat = at + name.len() + 1;
    let target_after_semicolon = |what: &str| -> Result<(&str, crate::ir::Target), Spanned> {
        let (head, t) = val
            .split_once(';')
            .ok_or_else(|| bad(name, format!("expected {what};VARIABLE"), vat))?;
        let mut ts = parse_targets(t).map_err(|e| e.shift(vat + head.len() + 1))?;
        if ts.len() != 1 {
            return Err(bad(name, "expected exactly one variable", vat + head.len() + 1));
        }
        Ok((head, ts.remove(0)))
    };
    Ok(match name.to_ascii_lowercase().as_str() {
        "ruleengine" => Ctl::RuleEngine(engine_mode(name, val, vat)?),
        "requestbodyaccess" => Ctl::RequestBodyAccess(on_off(name, val, vat)?),
        "responsebodyaccess" => Ctl::ResponseBodyAccess(on_off(name, val, vat)?),
        "requestbodyprocessor" => {
            let up = val.to_ascii_uppercase();
            if !matches!(up.as_str(), "URLENCODED" | "MULTIPART" | "XML" | "JSON") {
                return Err(bad(
                    name,
                    format!("`{}` is not URLENCODED, MULTIPART, XML or JSON", excerpt(val)),
                    vat,
                ));
            }
            Ctl::RequestBodyProcessor(up)
        }
        "forcerequestbodyvariable" => Ctl::ForceRequestBodyVariable(on_off(name, val, vat)?),
        "requestbodylimit" => Ctl::RequestBodyLimit(number(name, val, vat)?),
        "ruleremovebyid" => Ctl::RuleRemoveById(id_ranges(name, val, vat)?),
        "ruleremovebytag" => Ctl::RuleRemoveByTag(val.to_string()),
        "ruleremovebymsg" => Ctl::RuleRemoveByMsg(val.to_string()),
        "ruleremovetargetbyid" => {
            let (ids, target) = target_after_semicolon("ID")?;
            Ctl::RuleRemoveTargetById { ids: id_ranges(name, ids, vat)?, target }
        }
        "ruleremovetargetbytag" => {
            let (tag, target) = target_after_semicolon("TAG")?;
            Ctl::RuleRemoveTargetByTag { tag: tag.to_string(), target }
        }
        "ruleremovetargetbymsg" => {
            let (msg, target) = target_after_semicolon("MSG")?;
            Ctl::RuleRemoveTargetByMsg { msg: msg.to_string(), target }
        }
        "auditengine" => Ctl::AuditEngine(val.to_string()),
        "auditlogparts" => Ctl::AuditLogParts(val.to_string()),
        "debugloglevel" => Ctl::DebugLogLevel(number(name, val, vat)?),
        "hashengine" => Ctl::HashEngine(val.to_string()),
        "hashenforcement" => Ctl::HashEnforcement(val.to_string()),
        _ => return Err(Spanned::new(ParseErrorKind::UnknownAction(format!("ctl:{name}")), at)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{MacroPart, Selector, Target, Variable};

    #[test]
    fn splitting_respects_quotes() {
        let v = split_actions("id:1 , msg:'a, b\\'c',  nolog,tag:x").unwrap();
        let items: Vec<(&str, Option<&str>)> = v.iter().map(|a| (a.name, a.value)).collect();
        assert_eq!(
            items,
            [("id", Some("1")), ("msg", Some("a, b\\'c")), ("nolog", None), ("tag", Some("x"))]
        );
        assert_eq!(v[1].value_at, 12);
        assert!(split_actions("").unwrap().is_empty());
        assert_eq!(split_actions("msg:'abc").unwrap_err().at, 4);
        assert_eq!(split_actions("id:1,,").unwrap_err().at, 5);
        assert_eq!(split_actions("msg:'a' x").unwrap_err().at, 8);
    }

    #[test]
    fn typed_actions() {
        let tx = |k: &str, op, v: &str| {
            Action::SetVar(SetVar {
                collection: "tx".into(),
                key: MacroString::literal(k),
                op,
                value: MacroString::literal(v),
            })
        };
        let cases: Vec<(&str, Action)> = vec![
            ("id:'942100'", Action::Id(942100)),
            ("phase:request", Action::Phase(2)),
            ("PHASE:3", Action::Phase(3)),
            ("severity:2", Action::Severity(Severity::Critical)),
            ("severity:'WARNING'", Action::Severity(Severity::Warning)),
            ("t:base64decode", Action::T(Transformation::Base64Decode)),
            ("t:normalisePath", Action::T(Transformation::NormalizePath)),
            ("allow:phase", Action::Allow(AllowScope::Phase)),
            ("setvar:tx.a=b", tx("a", SetVarOp::Set, "b")),
            ("setvar:'tx.a=+5'", tx("a", SetVarOp::Add, "5")),
            ("setvar:tx.a=-5", tx("a", SetVarOp::Sub, "5")),
            ("setvar:!tx.a", tx("a", SetVarOp::Delete, "")),
            ("setvar:TX.a", tx("a", SetVarOp::Create, "")),
            (
                "ctl:ruleEngine=DetectionOnly",
                Action::Ctl(Ctl::RuleEngine(EngineMode::DetectionOnly)),
            ),
            (
                "ctl:requestBodyProcessor=json",
                Action::Ctl(Ctl::RequestBodyProcessor("JSON".into())),
            ),
            (
                "ctl:ruleRemoveById=1-5",
                Action::Ctl(Ctl::RuleRemoveById(vec![IdRange { start: 1, end: 5 }])),
            ),
            (
                "ctl:ruleRemoveTargetById=942100;ARGS:pwd",
                Action::Ctl(Ctl::RuleRemoveTargetById {
                    ids: vec![IdRange::single(942100)],
                    target: Target::key(Variable::Args, "pwd"),
                }),
            ),
            (
                "ctl:ruleRemoveTargetByTag=attack-sqli;REQUEST_COOKIES:/^x/",
                Action::Ctl(Ctl::RuleRemoveTargetByTag {
                    tag: "attack-sqli".into(),
                    target: Target {
                        variable: Variable::RequestCookies,
                        selector: Some(Selector::Regex("^x".into())),
                        exclude: false,
                        count: false,
                    },
                }),
            ),
            ("skipAfter:END-X", Action::SkipAfter("END-X".into())),
            ("multiMatch", Action::MultiMatch),
        ];
        for (src, want) in cases {
            assert_eq!(parse_actions(src).unwrap(), vec![want], "{src}");
        }
    }

    #[test]
    fn setvar_with_macros() {
        let a = parse_actions("setvar:'tx.%{rule.id}-X=%{tx.a}'").unwrap();
        let Action::SetVar(sv) = &a[0] else { panic!("{a:?}") };
        assert_eq!(
            sv.key.parts,
            [
                MacroPart::Var { var: Variable::Rule, key: Some("id".into()) },
                MacroPart::Lit("-X".into())
            ]
        );
        assert_eq!(sv.value.parts, [MacroPart::Var { var: Variable::Tx, key: Some("a".into()) }]);
    }

    #[test]
    fn action_errors_point_at_the_culprit() {
        let cases: &[(&str, usize)] = &[
            ("id:1,bogus", 5),
            ("id:1,t:nope", 7),
            ("phase:9", 6),
            ("severity:LOUD", 9),
            ("ctl:wat=1", 4),
            ("nolog:1", 6),
            ("setvar:x", 7),
            ("id:abc", 3),
        ];
        for (src, at) in cases {
            assert_eq!(parse_actions(src).unwrap_err().at, *at, "{src}");
        }
    }
}
