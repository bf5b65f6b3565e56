//! Directives: logical lines -> [`Directive`]s, with `Include` expanded inline and chains
//! nested.
//!
//! A [`Parser`] may be fed several sources in a row (the base configuration, the paranoia
//! `SecAction`, every CRS file): errors accumulate, each directive that fails is skipped and
//! parsing goes on, so one typo among 600 rules is reported alone and with its position.
//! [`Parser::finish`] returns the rule set or every error.

use super::actions::{engine_mode, id_ranges, parse_actions, parse_actions_all};
use super::error::{ParseError, ParseErrorKind, ParseErrors, Spanned};
use super::lexer::{LogicalLine, Token, logical_lines, physical_lines, tokenize};
use super::operators::parse_operator;
use super::variables::{excerpt, parse_targets};
use crate::ir::{
    Action, ConfigDirective, DefaultAction, Directive, LimitAction, Loc, Marker,
    PASSTHROUGH_DIRECTIVES, Rule, RuleSet, Transformation,
};
use std::path::{Path, PathBuf};

/// Includes nested deeper than this are refused (a cycle through symlinks or globs that
/// `canonicalize` cannot see still ends here).
pub const MAX_INCLUDE_DEPTH: usize = 32;
/// Parsing stops after this many errors.
pub const MAX_ERRORS: usize = 1000;

/// Accumulates directives and errors over several sources.
#[derive(Debug, Default)]
pub struct Parser {
    directives: Vec<Directive>,
    errors: Vec<ParseError>,
    /// The head of a chain still waiting for its next link, with where it was written.
    open_chain: Option<(Rule, ParseError)>,
    /// Canonical paths of the files being read, innermost last.
    include_stack: Vec<PathBuf>,
    /// Bit `p`: phase `p` has its `SecDefaultAction`.
    default_phases: u8,
    /// Ids of the `SecRule`s read so far (chain starters).
    rule_ids: std::collections::HashSet<u64>,
}

/// Where a logical line came from, for error positions.
struct Source<'a> {
    name: &'a str,
    lines: &'a [&'a str],
    dir: Option<&'a Path>,
}

impl Parser {
    pub fn new() -> Self {
        Parser::default()
    }

    /// Parses SecLang text. `name` is used in locations and errors; relative `Include`s and
    /// data files are resolved against `base_dir` (the current directory when `None`).
    pub fn parse_text(&mut self, text: &str, name: &str, base_dir: Option<&Path>) {
        let lines = physical_lines(text);
        let src = Source { name, lines: &lines, dir: base_dir };
        for ll in logical_lines(&lines) {
            if self.errors.len() >= MAX_ERRORS {
                let (line, col, _) = ll.position(0, &lines);
                self.errors.push(ParseError {
                    kind: ParseErrorKind::TooManyErrors,
                    file: name.to_string(),
                    line,
                    col,
                    rule_id: None,
                    text: String::new(),
                });
                return;
            }
            if let Err(e) = self.directive(&ll, &src) {
                let err = self.error_at(&ll, &src, e);
                self.errors.push(err);
            }
        }
    }

    /// Parses a file; its directory resolves relative paths inside it.
    pub fn parse_file(&mut self, path: &Path) {
        let name = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => {
                let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
                self.include_stack.push(canon);
                let text = String::from_utf8_lossy(&bytes);
                let dir = path
                    .parent()
                    .map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d });
                self.parse_text(&text, &name, dir);
                self.include_stack.pop();
            }
            Err(e) => self.errors.push(ParseError {
                kind: ParseErrorKind::MissingInclude { path: name.clone(), reason: e.to_string() },
                file: name,
                line: 0,
                col: 0,
                rule_id: None,
                text: String::new(),
            }),
        }
    }

    /// Appends directives that come from elsewhere (an IR file).
    pub fn extend(&mut self, directives: Vec<Directive>) {
        self.close_dangling_chain();
        self.directives.extend(directives);
    }

    /// The rule set, or every error found.
    pub fn finish(mut self) -> Result<RuleSet, ParseErrors> {
        self.close_dangling_chain();
        if self.errors.is_empty() {
            Ok(RuleSet { directives: self.directives, ..RuleSet::default() })
        } else {
            Err(ParseErrors(self.errors))
        }
    }

    fn close_dangling_chain(&mut self) {
        if let Some((_, err)) = self.open_chain.take() {
            self.errors.push(err);
        }
    }

    fn error_at(&self, ll: &LogicalLine, src: &Source<'_>, e: Spanned) -> ParseError {
        let (line, col, idx) = ll.position(e.at, src.lines);
        ParseError {
            kind: e.kind,
            file: src.name.to_string(),
            line,
            col,
            rule_id: find_rule_id(&ll.text),
            text: src.lines.get(idx).copied().unwrap_or("").to_string(),
        }
    }

    fn directive(&mut self, ll: &LogicalLine, src: &Source<'_>) -> Result<(), Spanned> {
        let tokens = tokenize(&ll.text)?;
        let Some(first) = tokens.first() else { return Ok(()) };
        let name = first.text.as_str();
        let args = &tokens[1..];
        let lname = name.to_ascii_lowercase();
        let loc = || Some(Loc { file: src.name.to_string(), line: ll.first_line() });
        // A chain expects its next link right away.
        if self.open_chain.is_some() && !matches!(lname.as_str(), "secrule" | "secaction") {
            let (_, mut err) = self.open_chain.take().expect("checked above");
            err.kind = ParseErrorKind::ChainInterrupted(name.to_string());
            self.errors.push(err);
        }
        let d = match lname.as_str() {
            "secrule" => {
                return match sec_rule(args, first, src.dir, loc()) {
                    Ok(rule) => self.push_rule(rule, ll, src),
                    // Report every bad piece of the rule, not only the first.
                    Err(mut errs) => {
                        let last = errs.pop().expect("sec_rule reports at least one error");
                        for e in errs {
                            let err = self.error_at(ll, src, e);
                            self.errors.push(err);
                        }
                        Err(last)
                    }
                };
            }
            "secaction" => {
                let rule = sec_action(args, first, loc())?;
                return self.push_rule(rule, ll, src);
            }
            "include" | "includeoptional" => {
                let arg = one_arg(name, args, first, "a file path or glob")?;
                return self.include(arg, lname == "includeoptional", src);
            }
            "secmarker" => {
                let arg = one_arg(name, args, first, "a marker name")?;
                Directive::Marker(Marker { name: arg.text.clone(), loc: loc() })
            }
            "secdefaultaction" => {
                let arg = one_arg(name, args, first, "a quoted action list")?;
                if !arg.quoted {
                    return Err(bad_args(name, "a quoted action list", arg));
                }
                let actions = parse_actions(&arg.text).map_err(|e| e.shift(arg.start))?;
                self.check_default_action(&actions, ll, arg.start)?;
                Directive::DefaultAction(DefaultAction { actions, loc: loc() })
            }
            "secruleremovebyid" => {
                if args.is_empty() {
                    return Err(bad_args(name, "rule ids or ranges", first));
                }
                let mut ids = Vec::new();
                for a in args {
                    ids.extend(id_ranges(name, &a.text, a.start)?);
                }
                Directive::RemoveById(ids)
            }
            "secruleremovebytag" => Directive::RemoveByTag(rest_of_line(name, ll, args, first)?),
            "secruleremovebymsg" => Directive::RemoveByMsg(rest_of_line(name, ll, args, first)?),
            "secruleupdatetargetbyid" | "secruleupdatetargetbytag" | "secruleupdatetargetbymsg" => {
                if !(2..=3).contains(&args.len()) {
                    return Err(bad_args(
                        name,
                        "a rule selector, a variable list and an optional replaced variable",
                        first,
                    ));
                }
                let targets = parse_targets(&args[1].text).map_err(|e| e.shift(args[1].start))?;
                let replaced = match args.get(2) {
                    Some(r) => Some(parse_targets(&r.text).map_err(|e| e.shift(r.start))?),
                    None => None,
                };
                match lname.as_str() {
                    "secruleupdatetargetbyid" => Directive::UpdateTargetById {
                        ids: id_ranges(name, &args[0].text, args[0].start)?,
                        targets,
                        replaced,
                    },
                    "secruleupdatetargetbytag" => Directive::UpdateTargetByTag {
                        tag: args[0].text.clone(),
                        targets,
                        replaced,
                    },
                    _ => Directive::UpdateTargetByMsg {
                        msg: args[0].text.clone(),
                        targets,
                        replaced,
                    },
                }
            }
            "secruleupdateactionbyid" => {
                if args.len() != 2 {
                    return Err(bad_args(name, "a rule id and a quoted action list", first));
                }
                let id = args[0].text.parse::<u64>().map_err(|_| {
                    Spanned::new(
                        ParseErrorKind::BadValue {
                            name: name.into(),
                            reason: format!("`{}` is not a rule id", excerpt(&args[0].text)),
                        },
                        args[0].start,
                    )
                })?;
                let actions = parse_actions(&args[1].text).map_err(|e| e.shift(args[1].start))?;
                Directive::UpdateActionById { id, actions }
            }
            _ => Directive::Config(match config(&lname, name, args, first)? {
                Some(c) => c,
                None => {
                    match PASSTHROUGH_DIRECTIVES.iter().find(|d| d.eq_ignore_ascii_case(name)) {
                        Some(canon) => {
                            self.directives.push(Directive::Setting {
                                name: (*canon).to_string(),
                                args: args.iter().map(|a| a.text.clone()).collect(),
                            });
                            return Ok(());
                        }
                        None => {
                            return Err(Spanned::new(
                                ParseErrorKind::UnknownDirective(name.into()),
                                first.start,
                            ));
                        }
                    }
                }
            }),
        };
        self.directives.push(d);
        Ok(())
    }

    /// What libmodsecurity3's parser refuses in a `SecDefaultAction` (seclang-parser.yy):
    /// `t:none`, the configuration-only actions (`id`, `rev`, `ver`, `maturity`, `accuracy`,
    /// `chain`), an action list without a disruptive action other than `block`, and a second
    /// default for the same phase (phase 1 when none is given, as for rules).
    fn check_default_action(
        &mut self,
        actions: &[Action],
        ll: &LogicalLine,
        at: usize,
    ) -> Result<(), Spanned> {
        let mut phase = crate::eval::compile::DEFAULT_PHASE;
        let mut disruptive = false;
        for a in actions {
            let unsuitable = match a {
                Action::Phase(p) => {
                    phase = *p;
                    None
                }
                Action::T(Transformation::None) => Some("t:none"),
                a => a.configuration_name().or_else(|| {
                    disruptive |= a.is_disruptive() && !matches!(a, Action::Block);
                    None
                }),
            };
            if let Some(name) = unsuitable {
                let off = ll.text[at..].to_ascii_lowercase().find(name).map_or(at, |o| at + o);
                return Err(Spanned::new(
                    ParseErrorKind::DefaultActionUnsuitable(name.into()),
                    off,
                ));
            }
        }
        if !disruptive {
            return Err(Spanned::new(ParseErrorKind::DefaultActionNotDisruptive, at));
        }
        let bit = 1u8 << phase.min(7);
        if self.default_phases & bit != 0 {
            return Err(Spanned::new(ParseErrorKind::DefaultActionTwice(phase), at));
        }
        self.default_phases |= bit;
        Ok(())
    }

    fn push_rule(&mut self, rule: Rule, ll: &LogicalLine, src: &Source<'_>) -> Result<(), Spanned> {
        let chained = rule.has_action(|a| matches!(a, Action::Chain));
        // v3 refuses a rule without an id ("Rules must have an ID", rules_set.cc); only
        // the first link of a chain carries one.
        if self.open_chain.is_none() && rule.id().is_none() {
            let at = ll.text.find([' ', '\t']).unwrap_or(0);
            let at = at + ll.text[at..].len() - ll.text[at..].trim_start().len();
            return Err(Spanned::new(ParseErrorKind::MissingId, at));
        }
        // v3 refuses a chain link after the first with a disruptive action (driver.cc,
        // "Disruptive actions can only be specified by chain starter rules"); `block` is not
        // one there (it picks the phase default's at run time).
        if self.open_chain.is_some() {
            let disruptive = rule.actions.iter().find_map(|a| match a {
                Action::Deny => Some("deny"),
                Action::Drop => Some("drop"),
                Action::Pass => Some("pass"),
                Action::Allow(_) => Some("allow"),
                Action::Redirect(_) => Some("redirect"),
                _ => None,
            });
            if let Some(name) = disruptive {
                // The chain goes with its refused link: one error, not a second one for a
                // chain left open.
                self.open_chain = None;
                return Err(Spanned::new(
                    ParseErrorKind::ChainedDisruptive(name),
                    word_offset(&ll.text, name),
                ));
            }
        }
        let rule = match self.open_chain.take() {
            Some((mut head, err)) => {
                let mut link = &mut head;
                while link.chain.is_some() {
                    link = link.chain.as_deref_mut().expect("checked");
                }
                link.chain = Some(Box::new(rule));
                if chained {
                    self.open_chain = Some((head, err));
                    return Ok(());
                }
                head
            }
            // v3 (driver.cc) refuses a `SecRule` whose id an earlier `SecRule` has; a
            // `SecAction`'s id is not looked at, nor compared with.
            None if rule.operator.is_some()
                && rule.id().is_some_and(|id| !self.rule_ids.insert(id)) =>
            {
                let id = rule.id().unwrap_or_default();
                return Err(Spanned::new(
                    ParseErrorKind::DuplicateId(id),
                    word_offset(&ll.text, "id"),
                ));
            }
            None if chained => {
                let err = self.error_at(
                    ll,
                    src,
                    Spanned::new(ParseErrorKind::DanglingChain, chain_offset(&ll.text)),
                );
                self.open_chain = Some((rule, err));
                return Ok(());
            }
            None => rule,
        };
        self.directives.push(Directive::Rule(rule));
        Ok(())
    }

    fn include(&mut self, arg: &Token, optional: bool, src: &Source<'_>) -> Result<(), Spanned> {
        if self.include_stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(Spanned::new(ParseErrorKind::IncludeDepth(MAX_INCLUDE_DEPTH), arg.start));
        }
        let p = Path::new(&arg.text);
        let full = match src.dir {
            Some(d) if p.is_relative() => d.join(p),
            _ => p.to_path_buf(),
        };
        let pattern = full.display().to_string();
        let missing = |reason: String| {
            Spanned::new(
                ParseErrorKind::MissingInclude { path: pattern.clone(), reason },
                arg.start,
            )
        };
        let mut files: Vec<PathBuf> = if pattern.contains(['*', '?', '[']) {
            glob::glob(&pattern)
                .map_err(|e| missing(e.to_string()))?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect()
        } else {
            vec![full.clone()]
        };
        files.sort();
        if files.is_empty() || (files.len() == 1 && !files[0].is_file()) {
            if optional {
                return Ok(());
            }
            return Err(missing("no such file".into()));
        }
        for f in files {
            let canon = f.canonicalize().unwrap_or_else(|_| f.clone());
            if self.include_stack.contains(&canon) {
                return Err(Spanned::new(
                    ParseErrorKind::IncludeCycle(f.display().to_string()),
                    arg.start,
                ));
            }
            self.parse_file(&f);
        }
        Ok(())
    }
}

fn sec_rule(
    args: &[Token],
    first: &Token,
    dir: Option<&Path>,
    loc: Option<Loc>,
) -> Result<Rule, Vec<Spanned>> {
    let mut args = args.to_vec();
    // `SecRule ARGS @rx foo "..."`: an unquoted operator ends at the space after its
    // argument (v3's EXPECTING_OPERATOR_ENDS_WITH_SPACE), so join name and argument.
    if args.len() == 4
        && !args[1].quoted
        && !args[2].quoted
        && args[1].text.trim_start_matches('!').starts_with('@')
    {
        let joined = Token {
            text: format!("{} {}", args[1].text, args[2].text),
            start: args[1].start,
            quoted: false,
        };
        args.splice(1..3, [joined]);
    }
    if !(2..=3).contains(&args.len()) {
        return Err(vec![bad_args(
            "SecRule",
            "VARIABLES \"OPERATOR\" [\"ACTIONS\"]",
            args.get(3).unwrap_or(first),
        )]);
    }
    let mut errs = Vec::new();
    let targets = parse_targets(&args[0].text).map_err(|e| errs.push(e.shift(args[0].start))).ok();
    let operator =
        parse_operator(&args[1].text, dir).map_err(|e| errs.push(e.shift(args[1].start))).ok();
    let actions = match args.get(2) {
        // Unquoted, v3 reads one action and refuses a comma after it.
        Some(a) if !a.quoted && a.text.contains(',') => {
            errs.push(bad_args(
                "SecRule",
                "its actions in double quotes when there are several",
                a,
            ));
            None
        }
        Some(a) => parse_actions_all(&a.text)
            .map_err(|v| errs.extend(v.into_iter().map(|e| e.shift(a.start))))
            .ok(),
        None => Some(Vec::new()),
    };
    match (targets, operator, actions) {
        (Some(targets), Some(operator), Some(actions)) if errs.is_empty() => Ok(Rule {
            targets,
            operator: Some(operator),
            condition: None,
            actions,
            chain: None,
            loc,
        }),
        _ => Err(errs),
    }
}

fn sec_action(args: &[Token], first: &Token, loc: Option<Loc>) -> Result<Rule, Spanned> {
    let arg = one_arg("SecAction", args, first, "a quoted action list")?;
    // v3's grammar wants the double quotes (an unquoted list is a syntax error there).
    if !arg.quoted {
        return Err(bad_args("SecAction", "a quoted action list", arg));
    }
    let actions = parse_actions(&arg.text).map_err(|e| e.shift(arg.start))?;
    Ok(Rule { targets: Vec::new(), operator: None, condition: None, actions, chain: None, loc })
}

fn bad_args(name: &str, expected: &str, at: &Token) -> Spanned {
    Spanned::new(
        ParseErrorKind::BadArguments { directive: name.into(), expected: expected.into() },
        at.start,
    )
}

fn one_arg<'t>(
    name: &str,
    args: &'t [Token],
    first: &Token,
    expected: &str,
) -> Result<&'t Token, Spanned> {
    match args {
        [a] => Ok(a),
        [] => Err(bad_args(name, expected, first)),
        [_, extra, ..] => Err(bad_args(name, expected, extra)),
    }
}

/// One quoted argument, or everything after the directive name.
fn rest_of_line(
    name: &str,
    ll: &LogicalLine,
    args: &[Token],
    first: &Token,
) -> Result<String, Spanned> {
    match args {
        [] => Err(bad_args(name, "an argument", first)),
        [a] => Ok(a.text.clone()),
        [a, ..] => Ok(ll.text[a.start..].trim_end().to_string()),
    }
}

fn chain_offset(text: &str) -> usize {
    word_offset(text, "chain")
}

/// The offset of the last `word` (ASCII case-insensitive) standing alone in the action list
/// of `text`: after a quote, comma or white space, and before one, a `:` or the end.
fn word_offset(text: &str, word: &str) -> usize {
    let lower = text.to_ascii_lowercase();
    lower
        .rmatch_indices(word)
        .find(|(i, _)| {
            let before = lower.as_bytes().get(i.wrapping_sub(1)).copied();
            let after = lower.as_bytes().get(i + word.len()).copied();
            matches!(before, Some(b'"' | b'\'' | b',' | b' ' | b'\t'))
                && matches!(after, None | Some(b'"' | b'\'' | b',' | b' ' | b'\t' | b':'))
        })
        .map_or(0, |(i, _)| i)
}

/// The rule id in a directive's text, for error messages: `id:N` or `id:'N'` after a
/// quote, comma or white space.
pub(crate) fn find_rule_id(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(p) = text[from..].find("id:").map(|p| p + from) {
        from = p + 3;
        if p > 0 && !matches!(b[p - 1], b'"' | b',' | b' ' | b'\t') {
            continue;
        }
        let rest = text[p + 3..].trim_start_matches('\'');
        let digits: String = rest.chars().take_while(char::is_ascii_digit).take(20).collect();
        if let Ok(id) = digits.parse() {
            return Some(id);
        }
    }
    None
}

fn config(
    lname: &str,
    name: &str,
    args: &[Token],
    first: &Token,
) -> Result<Option<ConfigDirective>, Spanned> {
    let num = |expected: &str| -> Result<u64, Spanned> {
        let a = one_arg(name, args, first, expected)?;
        a.text.parse::<u64>().map_err(|_| {
            Spanned::new(
                ParseErrorKind::BadValue {
                    name: name.into(),
                    reason: format!("`{}` is not a number", excerpt(&a.text)),
                },
                a.start,
            )
        })
    };
    let on_off = || -> Result<bool, Spanned> {
        let a = one_arg(name, args, first, "On or Off")?;
        match a.text.to_ascii_lowercase().as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(Spanned::new(
                ParseErrorKind::BadValue {
                    name: name.into(),
                    reason: format!("`{}` is not On or Off", excerpt(&a.text)),
                },
                a.start,
            )),
        }
    };
    let limit_action = || -> Result<LimitAction, Spanned> {
        let a = one_arg(name, args, first, "Reject or ProcessPartial")?;
        match a.text.to_ascii_lowercase().as_str() {
            "reject" => Ok(LimitAction::Reject),
            "processpartial" => Ok(LimitAction::ProcessPartial),
            _ => Err(Spanned::new(
                ParseErrorKind::BadValue {
                    name: name.into(),
                    reason: format!("`{}` is not Reject or ProcessPartial", excerpt(&a.text)),
                },
                a.start,
            )),
        }
    };
    use ConfigDirective as C;
    Ok(Some(match lname {
        "secruleengine" => {
            let a = one_arg(name, args, first, "On, Off or DetectionOnly")?;
            C::RuleEngine(engine_mode(name, &a.text, a.start)?)
        }
        "secrequestbodyaccess" => C::RequestBodyAccess(on_off()?),
        "secresponsebodyaccess" => C::ResponseBodyAccess(on_off()?),
        "secrequestbodylimit" => C::RequestBodyLimit(num("a size in bytes")?),
        "secrequestbodynofileslimit" => C::RequestBodyNoFilesLimit(num("a size in bytes")?),
        "secrequestbodyinmemorylimit" => C::RequestBodyInMemoryLimit(num("a size in bytes")?),
        "secrequestbodylimitaction" => C::RequestBodyLimitAction(limit_action()?),
        "secresponsebodylimit" => C::ResponseBodyLimit(num("a size in bytes")?),
        "secresponsebodylimitaction" => C::ResponseBodyLimitAction(limit_action()?),
        "secrequestbodyjsondepthlimit" => C::RequestBodyJsonDepthLimit(num("a depth")?),
        "secargumentslimit" => C::ArgumentsLimit(num("a count")?),
        "secresponsebodymimetype" => {
            if args.is_empty() {
                return Err(bad_args(name, "MIME types", first));
            }
            C::ResponseBodyMimeType(
                args.iter().flat_map(|a| a.text.split_whitespace()).map(str::to_string).collect(),
            )
        }
        "secresponsebodymimetypesclear" => {
            if let Some(a) = args.first() {
                return Err(bad_args(name, "no arguments", a));
            }
            C::ResponseBodyMimeTypesClear
        }
        "secpcrematchlimit" => C::PcreMatchLimit(num("a number")?),
        "secpcrematchlimitrecursion" => C::PcreMatchLimitRecursion(num("a number")?),
        "secargumentseparator" => {
            C::ArgumentSeparator(one_arg(name, args, first, "a character")?.text.clone())
        }
        "seccookieformat" => {
            let n = num("0 or 1")?;
            if n > 1 {
                return Err(Spanned::new(
                    ParseErrorKind::BadValue {
                        name: name.into(),
                        reason: "expected 0 or 1".into(),
                    },
                    args[0].start,
                ));
            }
            C::CookieFormat(n as u8)
        }
        "secunicodemapfile" => {
            if args.len() != 2 {
                return Err(bad_args(name, "a file and a code point", first));
            }
            let code_point = args[1].text.parse().map_err(|_| {
                Spanned::new(
                    ParseErrorKind::BadValue {
                        name: name.into(),
                        reason: "code point is not a number".into(),
                    },
                    args[1].start,
                )
            })?;
            C::UnicodeMapFile { path: args[0].text.clone(), code_point }
        }
        "seccollectiontimeout" => C::CollectionTimeout(num("seconds")?),
        "seccomponentsignature" => {
            C::ComponentSignature(one_arg(name, args, first, "a quoted signature")?.text.clone())
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_found_for_messages() {
        assert_eq!(find_rule_id(r#"SecRule A "x" "id:12,phase:1""#), Some(12));
        assert_eq!(find_rule_id(r#"SecRule A "x" "phase:1, id:'99'""#), Some(99));
        assert_eq!(find_rule_id(r#"SecRule A "x" "phase:1,xid:5""#), None);
    }

    #[test]
    fn chain_keyword_is_located() {
        let t = r#"SecRule A "@rx chain" "id:1,chain""#;
        assert_eq!(chain_offset(t), t.rfind("chain").unwrap());
    }
}
