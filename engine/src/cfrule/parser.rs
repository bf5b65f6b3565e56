//! The parser: source text -> a small AST per rule -> IR rules.
//!
//! Each `rule` is read in three steps: the header (`rule ID message...`), the condition (a
//! recursive-descent parser over `or` / `and` / `not` / parentheses / clauses, depth-capped
//! at [`MAX_DEPTH`]), and the actions. [`lower`] then turns the AST into an [`ir::Rule`]: a
//! pure conjunction becomes a SecLang chain, anything else a [`ir::Condition`].

use super::error::{MAX_DEPTH, ParseError, ParseErrorKind};
use super::lexer::Cursor;
use crate::ir::{
    Action, AllowScope, Clause, Condition, Directive, Loc, MacroString, Operator, OperatorKind,
    Rule, RuleSet, Selector, SetVar, SetVarOp, Target, Transformation, Variable,
};
use std::collections::HashMap;
use std::net::IpAddr;

/// The TX variable `score N` adds to.
pub const SCORE_VARIABLE: &str = "anomaly_score";

/// The longest regex accepted. CRS 3.3.4's largest is 6.4 KB; hostile 100 KB patterns took
/// ~0.1 s each to refuse.
pub const MAX_REGEX_LEN: usize = 64 * 1024;

/// The words that start an action.
const ACTION_WORDS: &[&str] = &[
    "deny",
    "block",
    "pass",
    "allow",
    "allow-request",
    "allow-phase",
    "log",
    "nolog",
    "score",
    "phase",
];

type PResult<T> = Result<T, (ParseErrorKind, usize)>;

/// One clause as written: `TARGETS[|t...] OP VALUE`.
#[derive(Debug, Clone)]
pub(crate) struct ClauseAst {
    pub(crate) targets: Vec<Target>,
    pub(crate) transformations: Vec<Transformation>,
    pub(crate) operator: Operator,
    pub(crate) pos: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Clause(ClauseAst),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

/// The actions of a rule as written.
#[derive(Debug, Default)]
struct Actions {
    disruptive: Option<(Action, &'static str)>,
    status: Option<u16>,
    log: Option<bool>,
    score: Option<u32>,
    phase: Option<u8>,
}

/// Parses a whole file of Cloudflare-style rules.
pub fn parse(text: &str, file_name: &str) -> Result<RuleSet, ParseError> {
    let line_starts =
        std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect::<Vec<_>>();
    let mut p = Parser {
        cur: Cursor::new(text),
        src: text,
        file: file_name,
        line_starts,
        line_of_id: HashMap::new(),
    };
    let mut set = RuleSet::default();
    loop {
        p.cur.skip_trivia();
        if p.cur.at_eof() {
            return Ok(set);
        }
        let start = p.cur.pos();
        let mut id = None;
        match p.rule(start, &mut id) {
            Ok(rule) => set.directives.push(Directive::Rule(rule)),
            Err((kind, pos)) => {
                let mut e = ParseError::new(kind, text, file_name, pos.max(start));
                e.rule = id;
                return Err(e);
            }
        }
    }
}

/// The 1-based line of byte `pos`, by binary search over the line starts (a linear count
/// per clause made large files quadratic).
fn line_of(line_starts: &[usize], pos: usize) -> u32 {
    let n = line_starts.partition_point(|&s| s <= pos).max(1);
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn describe(word: &str) -> String {
    if word.is_empty() { "end of input".to_string() } else { format!("`{word}`") }
}

struct Parser<'a> {
    cur: Cursor<'a>,
    src: &'a str,
    file: &'a str,
    line_starts: Vec<usize>,
    line_of_id: HashMap<u64, u32>,
}

impl<'a> Parser<'a> {
    fn rule(&mut self, start: usize, id_out: &mut Option<u64>) -> PResult<Rule> {
        let (pos, kw) = self.word_after_trivia();
        if kw != "rule" {
            return Err((
                ParseErrorKind::Expected { expected: "`rule`", found: self.found(kw) },
                pos,
            ));
        }
        // The id must be on the `rule` line: a bare `rule` followed by a clause is a missing
        // id, not a clause misread as one.
        self.cur.skip_blanks();
        let (id_pos, id_text) = self.cur.word();
        if id_text.is_empty() {
            return Err((ParseErrorKind::MissingId, id_pos));
        }
        let id = match id_text.parse::<u64>() {
            Ok(id) if id > 0 => id,
            _ if !id_text.bytes().any(|b| b.is_ascii_digit()) => {
                return Err((ParseErrorKind::MissingId, id_pos));
            }
            _ => return Err((ParseErrorKind::BadId(id_text.to_string()), id_pos)),
        };
        *id_out = Some(id);
        let line = line_of(&self.line_starts, id_pos);
        if let Some(&first_line) = self.line_of_id.get(&id) {
            return Err((ParseErrorKind::DuplicateId { id, first_line }, id_pos));
        }
        self.line_of_id.insert(id, line);
        self.cur.skip_blanks();
        let (_, msg) = self.cur.rest_of_line();
        let msg = msg.to_string();

        let expr = self.or_expr(0)?;
        let actions = self.actions()?;
        let loc =
            |pos: usize| Loc { file: self.file.to_string(), line: line_of(&self.line_starts, pos) };
        Ok(lower(id, &msg, expr, &actions, &loc, start))
    }

    fn word_after_trivia(&mut self) -> (usize, &'a str) {
        self.cur.skip_trivia();
        let (pos, w) = self.cur.word();
        if w.is_empty() {
            // A lone punctuation character: report it rather than an empty word.
            let rest = &self.src[pos..];
            let n = rest.chars().next().map_or(0, char::len_utf8);
            return (pos, &self.src[pos..pos + n]);
        }
        (pos, w)
    }

    fn found(&self, w: &str) -> String {
        describe(w)
    }

    fn or_expr(&mut self, depth: usize) -> PResult<Expr> {
        let mut items = vec![self.and_expr(depth)?];
        while self.cur.peek_word().1 == "or" {
            self.cur.skip_trivia();
            self.cur.word();
            items.push(self.and_expr(depth)?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Or(items) })
    }

    fn and_expr(&mut self, depth: usize) -> PResult<Expr> {
        let mut items = vec![self.unary(depth)?];
        while self.cur.peek_word().1 == "and" {
            self.cur.skip_trivia();
            self.cur.word();
            items.push(self.unary(depth)?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
    }

    fn unary(&mut self, depth: usize) -> PResult<Expr> {
        self.cur.skip_trivia();
        let pos = self.cur.pos();
        if depth >= MAX_DEPTH {
            return Err((ParseErrorKind::TooDeep(MAX_DEPTH), pos));
        }
        match self.cur.peek() {
            Some('(') => {
                self.cur.bump();
                let inner = self.or_expr(depth + 1)?;
                self.cur.skip_trivia();
                if self.cur.peek() != Some(')') {
                    return Err((ParseErrorKind::UnclosedParen, pos));
                }
                self.cur.bump();
                Ok(inner)
            }
            Some(')') => Err((ParseErrorKind::UnmatchedCloseParen, pos)),
            None => Err((
                ParseErrorKind::Expected { expected: "a condition", found: describe("") },
                pos,
            )),
            Some(_) => {
                if self.cur.peek_word().1 == "not" {
                    self.cur.word();
                    let inner = self.unary(depth + 1)?;
                    return Ok(Expr::Not(Box::new(inner)));
                }
                Ok(Expr::Clause(self.clause()?))
            }
        }
    }

    fn clause(&mut self) -> PResult<ClauseAst> {
        let pos = self.cur.pos();
        let mut targets = vec![self.target()?];
        let mut transformations = Vec::new();
        loop {
            self.cur.skip_blanks();
            match self.cur.peek() {
                Some(',') if transformations.is_empty() => {
                    self.cur.bump();
                    self.cur.skip_blanks();
                    targets.push(self.target()?);
                }
                Some('|') => {
                    self.cur.bump();
                    self.cur.skip_blanks();
                    let (tpos, name) = self.cur.ident();
                    let t = Transformation::from_name(name).ok_or_else(|| {
                        (ParseErrorKind::UnknownTransformation(name.to_string()), tpos)
                    })?;
                    if t == Transformation::None {
                        return Err((ParseErrorKind::NoneTransformation, tpos));
                    }
                    transformations.push(t);
                }
                _ => break,
            }
        }
        self.cur.skip_trivia();
        let (op_pos, op) = self.cur.word();
        let negated = op == "is-not";
        let kind = match op {
            "is" | "is-not" => OperatorKind::StrEq(self.literal(op_pos)?),
            "has-prefix" => OperatorKind::BeginsWith(self.literal(op_pos)?),
            "has-suffix" => OperatorKind::EndsWith(self.literal(op_pos)?),
            "contains" => OperatorKind::Contains(self.literal(op_pos)?),
            "contains-word" => OperatorKind::ContainsWord(self.literal(op_pos)?),
            "eq" => OperatorKind::Eq(self.number(op_pos)?),
            "gt" => OperatorKind::Gt(self.number(op_pos)?),
            "ge" => OperatorKind::Ge(self.number(op_pos)?),
            "lt" => OperatorKind::Lt(self.number(op_pos)?),
            "le" => OperatorKind::Le(self.number(op_pos)?),
            "matches" => OperatorKind::Rx(MacroString::literal(self.regex(op_pos)?)),
            "contains-any" => {
                let list = self.list(op_pos)?;
                // libmodsecurity3 (src/operators/pm.cc) splits the @pm argument on white
                // space with no quoting, so a multi-word phrase could not reach the peer.
                if let Some((pos, s, _)) =
                    list.iter().find(|(_, s, _)| s.contains(char::is_whitespace))
                {
                    return Err((ParseErrorKind::SpaceInPhrase(s.clone()), *pos));
                }
                OperatorKind::Pm(list.into_iter().map(|(_, s, _)| s).collect())
            }
            "in" => in_list(self.list(op_pos)?)?,
            "" => {
                let (p, w) = self.word_after_trivia();
                return Err((
                    ParseErrorKind::Expected { expected: "an operator", found: describe(w) },
                    p,
                ));
            }
            other => return Err((ParseErrorKind::UnknownOperator(other.to_string()), op_pos)),
        };
        Ok(ClauseAst { targets, transformations, operator: Operator { negated, kind }, pos })
    }

    fn target(&mut self) -> PResult<Target> {
        let pos = self.cur.pos();
        let count = self.cur.peek() == Some('&');
        if count {
            self.cur.bump();
        }
        let (npos, name) = self.cur.ident();
        if name.is_empty() {
            let (p, w) = self.word_after_trivia();
            return Err((
                ParseErrorKind::Expected { expected: "a variable", found: describe(w) },
                p,
            ));
        }
        let Some(variable) = Variable::from_name(name) else {
            // A dangling `and`/`or` before the actions is the likeliest cause.
            let kind = if ACTION_WORDS.contains(&name) && !count {
                ParseErrorKind::Expected {
                    expected: "a condition",
                    found: format!("action `{name}`"),
                }
            } else {
                ParseErrorKind::UnknownVariable(name.to_string())
            };
            return Err((kind, npos));
        };
        let mut selector = None;
        if self.cur.peek() == Some(':') {
            if !variable.is_collection() {
                return Err((ParseErrorKind::NotACollection(variable.name().to_string()), npos));
            }
            self.cur.bump();
            let kpos = self.cur.pos();
            selector = Some(match self.cur.peek() {
                Some('/') => {
                    let re = self.cur.slash_regex()?;
                    check_regex(&re).map_err(|m| (ParseErrorKind::BadRegex(m), kpos + 1))?;
                    Selector::Regex(re)
                }
                Some('"') => Selector::Key(self.cur.quoted()?),
                _ => {
                    let (_, k) = self.cur.bare_key();
                    if k.is_empty() {
                        return Err((
                            ParseErrorKind::Expected {
                                expected: "a key after `:`",
                                found: describe(self.cur.peek_word().1),
                            },
                            kpos,
                        ));
                    }
                    Selector::Key(k.to_string())
                }
            });
        }
        let _ = pos;
        Ok(Target { variable, selector, exclude: false, count })
    }

    fn value(&mut self, op_pos: usize) -> PResult<(usize, String, bool)> {
        self.cur.skip_trivia();
        match self.cur.value()? {
            Some(v) => Ok(v),
            None => {
                let (p, w) = self.word_after_trivia();
                let _ = op_pos;
                Err((ParseErrorKind::Expected { expected: "a value", found: describe(w) }, p))
            }
        }
    }

    fn literal(&mut self, op_pos: usize) -> PResult<MacroString> {
        Ok(MacroString::literal(self.value(op_pos)?.1))
    }

    fn number(&mut self, op_pos: usize) -> PResult<MacroString> {
        let (pos, v, _) = self.value(op_pos)?;
        if v.parse::<i64>().is_err() {
            return Err((ParseErrorKind::BadNumber(v), pos));
        }
        Ok(MacroString::literal(v))
    }

    /// After `matches`: a quoted regex, or the rest of the line.
    fn regex(&mut self, op_pos: usize) -> PResult<String> {
        self.cur.skip_blanks();
        let pos = self.cur.pos();
        let re = match self.cur.peek() {
            Some('"') => self.cur.quoted()?,
            None | Some('\n') | Some('\r') => {
                let _ = op_pos;
                return Err((
                    ParseErrorKind::Expected {
                        expected: "a regex on the same line as `matches`",
                        found: "end of line".to_string(),
                    },
                    pos,
                ));
            }
            Some(_) => self.cur.rest_of_line().1.to_string(),
        };
        check_regex(&re).map_err(|m| (ParseErrorKind::BadRegex(m), pos))?;
        Ok(re)
    }

    /// `{ a b "c d" }`, possibly over several lines. Entries come back with their offset and
    /// whether they were quoted.
    fn list(&mut self, op_pos: usize) -> PResult<Vec<(usize, String, bool)>> {
        self.cur.skip_trivia();
        let open = self.cur.pos();
        if self.cur.peek() != Some('{') {
            let (p, w) = self.word_after_trivia();
            let _ = op_pos;
            return Err((ParseErrorKind::Expected { expected: "`{`", found: describe(w) }, p));
        }
        self.cur.bump();
        let mut items = Vec::new();
        loop {
            self.cur.skip_trivia();
            match self.cur.peek() {
                None => return Err((ParseErrorKind::UnterminatedList, open)),
                Some('}') => {
                    self.cur.bump();
                    break;
                }
                Some('(' | ')' | '{') => {
                    let p = self.cur.pos();
                    let c = self.cur.peek().map(String::from).unwrap_or_default();
                    return Err((
                        ParseErrorKind::Expected {
                            expected: "a list entry or `}`",
                            found: format!("`{c}`"),
                        },
                        p,
                    ));
                }
                Some(_) => match self.cur.value()? {
                    Some(v) => items.push(v),
                    None => return Err((ParseErrorKind::UnterminatedList, open)),
                },
            }
        }
        if items.is_empty() {
            return Err((ParseErrorKind::EmptyList, open));
        }
        Ok(items)
    }

    fn actions(&mut self) -> PResult<Actions> {
        let mut a = Actions::default();
        let mut any = false;
        loop {
            let (pos, w) = self.cur.peek_word();
            if w.is_empty() || w == "rule" {
                self.cur.skip_trivia();
                match self.cur.peek() {
                    Some(')') => return Err((ParseErrorKind::UnmatchedCloseParen, pos)),
                    Some(c) if w.is_empty() => {
                        return Err((
                            ParseErrorKind::Expected {
                                expected: "`and`, `or` or an action",
                                found: format!("`{c}`"),
                            },
                            pos,
                        ));
                    }
                    _ => {}
                }
                break;
            }
            self.cur.skip_trivia();
            self.cur.word();
            any = true;
            let disruptive = match w {
                "deny" => Some(Action::Deny),
                "block" => Some(Action::Block),
                "pass" => Some(Action::Pass),
                "allow" => Some(Action::Allow(AllowScope::All)),
                "allow-request" => Some(Action::Allow(AllowScope::Request)),
                "allow-phase" => Some(Action::Allow(AllowScope::Phase)),
                _ => None,
            };
            if let Some(d) = disruptive {
                if let Some((_, prev)) = a.disruptive {
                    let kind = if prev == w {
                        ParseErrorKind::DuplicateAction(w.to_string())
                    } else {
                        ParseErrorKind::ConflictingActions(prev.to_string(), w.to_string())
                    };
                    return Err((kind, pos));
                }
                let name: &'static str = match w {
                    "deny" => "deny",
                    "block" => "block",
                    "pass" => "pass",
                    "allow" => "allow",
                    "allow-request" => "allow-request",
                    _ => "allow-phase",
                };
                a.disruptive = Some((d, name));
                if w == "deny" {
                    let (spos, next) = self.cur.peek_word();
                    if next.bytes().all(|b| b.is_ascii_digit()) && !next.is_empty() {
                        self.cur.skip_trivia();
                        self.cur.word();
                        match next.parse::<u16>() {
                            Ok(s) if (100..=599).contains(&s) => a.status = Some(s),
                            _ => return Err((ParseErrorKind::BadStatus(next.to_string()), spos)),
                        }
                    }
                }
                continue;
            }
            match w {
                "log" | "nolog" => {
                    let want = w == "log";
                    match a.log {
                        Some(prev) if prev == want => {
                            return Err((ParseErrorKind::DuplicateAction(w.to_string()), pos));
                        }
                        Some(_) => {
                            return Err((
                                ParseErrorKind::ConflictingActions(
                                    "log".to_string(),
                                    "nolog".to_string(),
                                ),
                                pos,
                            ));
                        }
                        None => a.log = Some(want),
                    }
                }
                "score" => {
                    if a.score.is_some() {
                        return Err((ParseErrorKind::DuplicateAction(w.to_string()), pos));
                    }
                    self.cur.skip_trivia();
                    let (npos, n) = self.cur.word();
                    match n.parse::<u32>() {
                        Ok(v) => a.score = Some(v),
                        Err(_) => return Err((ParseErrorKind::BadNumber(n.to_string()), npos)),
                    }
                }
                "phase" => {
                    if a.phase.is_some() {
                        return Err((ParseErrorKind::DuplicateAction(w.to_string()), pos));
                    }
                    self.cur.skip_trivia();
                    let (npos, n) = self.cur.word();
                    match n.parse::<u8>() {
                        Ok(v) if (1..=5).contains(&v) => a.phase = Some(v),
                        _ => return Err((ParseErrorKind::BadPhase(n.to_string()), npos)),
                    }
                }
                other => {
                    // A forgotten `and` is the likeliest cause when a variable follows a clause.
                    let var = other.split([':', '|', ',']).next().unwrap_or(other);
                    let var = var.trim_start_matches('&');
                    if Variable::from_name(var).is_some() || other == "not" {
                        return Err((
                            ParseErrorKind::Expected {
                                expected: "`and` or `or` between clauses",
                                found: describe(other),
                            },
                            pos,
                        ));
                    }
                    return Err((ParseErrorKind::UnknownAction(other.to_string()), pos));
                }
            }
        }
        if !any {
            let pos = self.cur.pos();
            return Err((ParseErrorKind::MissingAction, pos));
        }
        Ok(a)
    }
}

/// `in { ... }`: addresses and networks become `@ipMatch`, anything else a string list.
/// A list is an address list when every entry is unquoted and looks like an address; then
/// every entry must be a valid one.
fn in_list(items: Vec<(usize, String, bool)>) -> PResult<OperatorKind> {
    let all_addresses = items.iter().all(|(_, s, quoted)| !quoted && looks_like_address(s));
    if !all_addresses {
        return Ok(OperatorKind::InList(items.into_iter().map(|(_, s, _)| s).collect()));
    }
    let mut out = Vec::with_capacity(items.len());
    for (pos, s, _) in items {
        if !is_address(&s) {
            return Err((ParseErrorKind::BadIp(s), pos));
        }
        out.push(s);
    }
    Ok(OperatorKind::IpMatch(out))
}

/// Hex digits, dots, colons and one optional `/`, with a dot or a colon: `10.0.0.0/8`,
/// `::1`. Version strings such as `1.1` also look like this; quote them.
pub(crate) fn looks_like_address(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b'/'))
        && s.bytes().any(|b| matches!(b, b'.' | b':'))
        && s.bytes().any(|b| b.is_ascii_digit() || b == b':')
}

/// An IPv4/IPv6 address, or a network with a prefix length that fits the family.
pub(crate) fn is_address(s: &str) -> bool {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else { return false };
    match prefix {
        None => true,
        Some(p) => {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u8>().is_ok_and(|n| n <= max)
        }
    }
}

/// Checks a regex's syntax with the `regex` crate's parser; patterns it refuses but
/// fancy-regex accepts (lookaround, backreferences) are allowed, as the backends run them
/// through fancy-regex. Only the syntax is checked: building the matcher here made parsing
/// ~10x slower, and the backends compile (and size-limit) every pattern anyway.
pub(crate) fn check_regex(pattern: &str) -> Result<(), String> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(format!("longer than {MAX_REGEX_LEN} bytes"));
    }
    // Parsing to the AST catches the syntax errors; translating `\w` or `\d` into Unicode
    // classes (which the full parse does) cost more than all the rest of rule parsing.
    let mut ast_parser = regex_syntax::ast::parse::ParserBuilder::new().build();
    let err = match ast_parser.parse(pattern) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    // fancy-regex parses groups recursively: only try it on patterns whose nesting the
    // `regex` crate's own limit (250) would also accept, so hostile input cannot overflow
    // the stack.
    if uses_fancy_syntax(pattern)
        && paren_depth(pattern) <= 200
        && fancy_regex::Regex::new(pattern).is_ok()
    {
        return Ok(());
    }
    Err(compact_regex_error(&err.to_string()))
}

/// Lookaround, atomic groups, backreferences or possessive quantifiers: the syntax only
/// fancy-regex knows. Other patterns the `regex` parser refuses are simply wrong, and
/// handing them to fancy-regex too only cost time (~0.3 s for a hostile 100 KB pattern).
fn uses_fancy_syntax(p: &str) -> bool {
    ["(?=", "(?!", "(?<=", "(?<!", "(?>", "\\k<", "++", "*+", "?+", "}+"]
        .iter()
        .any(|m| p.contains(m))
        || p.as_bytes().windows(2).any(|w| w[0] == b'\\' && (b'1'..=b'9').contains(&w[1]))
}

fn paren_depth(p: &str) -> usize {
    let (mut depth, mut max, mut escaped) = (0usize, 0usize, false);
    for b in p.bytes() {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'(') => {
                depth += 1;
                max = max.max(depth);
            }
            (false, b')') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The `regex` crate's syntax errors span several lines (pattern, caret, message); keep the
/// message only, since our own error display already points at the pattern.
fn compact_regex_error(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().last().unwrap_or("invalid pattern").trim().to_string())
}

/// Removes double negations and pushes `not` into single clauses (a negated operator);
/// flattens nested `and`/`or`.
fn normalize(e: Expr) -> Expr {
    match e {
        Expr::Clause(c) => Expr::Clause(c),
        Expr::Not(inner) => match normalize(*inner) {
            Expr::Clause(mut c) => {
                c.operator.negated = !c.operator.negated;
                Expr::Clause(c)
            }
            Expr::Not(x) => *x,
            other => Expr::Not(Box::new(other)),
        },
        Expr::And(items) => {
            let mut out = Vec::new();
            for i in items {
                match normalize(i) {
                    Expr::And(inner) => out.extend(inner),
                    x => out.push(x),
                }
            }
            Expr::And(out)
        }
        Expr::Or(items) => {
            let mut out = Vec::new();
            for i in items {
                match normalize(i) {
                    Expr::Or(inner) => out.extend(inner),
                    x => out.push(x),
                }
            }
            Expr::Or(out)
        }
    }
}

fn to_condition(e: Expr) -> Condition {
    match e {
        Expr::Clause(c) => Condition::Clause(Clause {
            targets: c.targets,
            transformations: c.transformations,
            operator: c.operator,
        }),
        Expr::And(items) => Condition::All(items.into_iter().map(to_condition).collect()),
        Expr::Or(items) => Condition::Any(items.into_iter().map(to_condition).collect()),
        Expr::Not(x) => Condition::Not(Box::new(to_condition(*x))),
    }
}

fn visit_targets(e: &Expr, f: &mut impl FnMut(&Target)) {
    match e {
        Expr::Clause(c) => c.targets.iter().for_each(&mut *f),
        Expr::And(items) | Expr::Or(items) => items.iter().for_each(|i| visit_targets(i, f)),
        Expr::Not(x) => visit_targets(x, f),
    }
}

/// The phase a rule runs in when none is given: the latest phase in which one of its
/// variables gets its final value.
pub(crate) fn inferred_phase<'t>(targets: impl IntoIterator<Item = &'t Target>) -> u8 {
    targets.into_iter().map(|t| t.variable.available_phase()).max().unwrap_or(1).max(1)
}

/// Whether a rule logs when it says neither `log` nor `nolog`: rules that deny, block or
/// score take part in a blocking decision and leave a trace; `allow`/`pass` rules do not.
pub(crate) fn default_log(disruptive: &Action, score: Option<u32>) -> bool {
    matches!(disruptive, Action::Deny | Action::Block) || score.is_some_and(|s| s > 0)
}

pub(crate) fn score_setvar(n: u32) -> SetVar {
    SetVar {
        collection: "tx".to_string(),
        key: MacroString::literal(SCORE_VARIABLE),
        op: SetVarOp::Add,
        value: MacroString::literal(n.to_string()),
    }
}

/// AST -> IR. See the module docs and `engine/docs/cfrule.md` for the mapping.
fn lower(
    id: u64,
    msg: &str,
    expr: Expr,
    a: &Actions,
    loc: &dyn Fn(usize) -> Loc,
    start: usize,
) -> Rule {
    let expr = normalize(expr);
    let mut all_targets = Vec::new();
    visit_targets(&expr, &mut |t| all_targets.push(t.clone()));
    let phase = a.phase.unwrap_or_else(|| inferred_phase(&all_targets));
    let disruptive = a.disruptive.as_ref().map_or(Action::Pass, |(d, _)| d.clone());
    let log = a.log.unwrap_or_else(|| default_log(&disruptive, a.score));

    let head = |transformations: &[Transformation], chained: bool| -> Vec<Action> {
        let mut v = vec![Action::Id(id), Action::Phase(phase)];
        if !msg.is_empty() {
            v.push(Action::Msg(MacroString::literal(msg)));
        }
        v.push(Action::T(Transformation::None));
        v.extend(transformations.iter().map(|t| Action::T(*t)));
        v.push(disruptive.clone());
        if disruptive == Action::Deny {
            v.push(Action::Status(a.status.unwrap_or(403)));
        }
        v.push(if log { Action::Log } else { Action::NoLog });
        if let Some(n) = a.score {
            v.push(Action::SetVar(score_setvar(n)));
        }
        if chained {
            v.push(Action::Chain);
        }
        v
    };

    let clauses: Result<Vec<ClauseAst>, Expr> = match expr {
        Expr::Clause(c) => Ok(vec![c]),
        Expr::And(items) if items.iter().all(|i| matches!(i, Expr::Clause(_))) => Ok(items
            .into_iter()
            .filter_map(|i| match i {
                Expr::Clause(c) => Some(c),
                _ => None,
            })
            .collect()),
        other => Err(other),
    };
    match clauses {
        Ok(clauses) => {
            // Build the chain from its last link backwards.
            let mut next: Option<Box<Rule>> = None;
            let n = clauses.len();
            for (i, c) in clauses.into_iter().enumerate().rev() {
                let chained = i + 1 < n;
                let actions = if i == 0 {
                    head(&c.transformations, chained)
                } else {
                    let mut v = vec![Action::T(Transformation::None)];
                    v.extend(c.transformations.iter().map(|t| Action::T(*t)));
                    if chained {
                        v.push(Action::Chain);
                    }
                    v
                };
                next = Some(Box::new(Rule {
                    targets: c.targets,
                    operator: Some(c.operator),
                    condition: None,
                    actions,
                    chain: next,
                    loc: Some(loc(if i == 0 { start } else { c.pos })),
                }));
            }
            // `next` is always set: a conjunction has at least one clause.
            next.map(|b| *b).unwrap_or_else(|| Rule {
                targets: Vec::new(),
                operator: None,
                condition: None,
                actions: head(&[], false),
                chain: None,
                loc: Some(loc(start)),
            })
        }
        Err(expr) => Rule {
            targets: Vec::new(),
            operator: None,
            condition: Some(to_condition(expr)),
            actions: head(&[], false),
            chain: None,
            loc: Some(loc(start)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let cases = [
            ("10.0.0.0/8", true, true),
            ("192.168.1.1", true, true),
            ("::1", true, true),
            ("2001:db8::/32", true, true),
            ("1.2.3.4/33", true, false),
            ("1.1", true, false),
            ("GET", false, false),
            ("ab.cd", false, false),
            ("1.2.3.4/", true, false),
        ];
        for (s, looks, valid) in cases {
            assert_eq!(looks_like_address(s), looks, "{s}");
            assert_eq!(is_address(s), valid, "{s}");
        }
    }

    #[test]
    fn regex_check() {
        assert!(check_regex(r"^\d+$").is_ok());
        assert!(check_regex(r"(?<=a)b").is_ok(), "lookbehind through fancy-regex");
        assert!(check_regex(r"(a)\1").is_ok(), "backreference through fancy-regex");
        assert!(check_regex(r"(?>ab)c").is_ok(), "atomic group through fancy-regex");
        assert!(check_regex(r"a++b").is_ok(), "possessive quantifier through fancy-regex");
        assert!(check_regex(r"(?=a").is_err());
        assert!(!uses_fancy_syntax(r"a+b(c)"));
        let e = check_regex("a(b").unwrap_err();
        assert!(e.contains("unclosed group"), "{e}");
        assert!(check_regex(&"(".repeat(100_000)).is_err());
    }

    #[test]
    fn phase_inference() {
        let t = |v| Target::whole(v);
        assert_eq!(inferred_phase(&[t(Variable::RequestUri)]), 1);
        assert_eq!(inferred_phase(&[t(Variable::RequestUri), t(Variable::Args)]), 2);
        assert_eq!(inferred_phase(&[t(Variable::ResponseBody)]), 4);
        assert_eq!(inferred_phase(&[]), 1);
    }
}
