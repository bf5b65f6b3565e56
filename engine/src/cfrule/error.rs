//! Errors of the Cloudflare-style front-end: [`ParseError`] for text -> IR, [`PrintError`]
//! for IR -> text.
//!
//! A parse error carries the byte offset where it was found; [`ParseError::new`] turns it into
//! a file, 1-based line and column (in characters) and keeps the source line, so that the
//! `Display` form points at the mistake with a caret, like a compiler does.

use std::fmt;

/// The deepest nesting of `(` and `not` the parser accepts. Deeper input is refused with
/// [`ParseErrorKind::TooDeep`] instead of overflowing the stack.
pub const MAX_DEPTH: usize = 64;

/// What went wrong while parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("unknown variable `{0}`")]
    UnknownVariable(String),
    #[error("`{0}` is not a collection: it takes no `:key` selector")]
    NotACollection(String),
    #[error(
        "unknown operator `{0}` (expected is, is-not, has-prefix, has-suffix, contains, contains-word, contains-any, matches, in, eq, gt, ge, lt or le)"
    )]
    UnknownOperator(String),
    #[error("unknown transformation `{0}`")]
    UnknownTransformation(String),
    #[error("transformation `none` is implied: every rule starts from the raw value")]
    NoneTransformation,
    #[error(
        "unknown action `{0}` (expected deny, block, allow, allow-request, allow-phase, pass, log, nolog, score or phase)"
    )]
    UnknownAction(String),
    #[error("unbalanced parentheses: `)` without a matching `(`")]
    UnmatchedCloseParen,
    #[error("unbalanced parentheses: this `(` is never closed")]
    UnclosedParen,
    #[error("unterminated quoted string: missing closing `\"`")]
    UnterminatedString,
    #[error("unterminated regex selector: missing closing `/`")]
    UnterminatedSelector,
    #[error("unterminated list: missing closing `}}`")]
    UnterminatedList,
    #[error("empty list: `{{ }}` would never match")]
    EmptyList,
    #[error(
        "phrase `{0}` contains white space: `contains-any` phrases are single words, as ModSecurity's @pm splits its argument on white space"
    )]
    SpaceInPhrase(String),
    #[error(
        "invalid regex: {0} (Rust `regex` syntax; lookaround and backreferences are accepted through fancy-regex)"
    )]
    BadRegex(String),
    #[error("missing rule id after `rule`")]
    MissingId,
    #[error("invalid rule id `{0}`: expected an integer from 1 to 18446744073709551615")]
    BadId(String),
    #[error("duplicate rule id {id} (first used on line {first_line})")]
    DuplicateId { id: u64, first_line: u32 },
    #[error("nesting deeper than {0} levels of `(` and `not`")]
    TooDeep(usize),
    #[error("expected {expected}, found {found}")]
    Expected { expected: &'static str, found: String },
    #[error("invalid integer `{0}`")]
    BadNumber(String),
    #[error("invalid IP address or network `{0}` (quote the entries to compare them as strings)")]
    BadIp(String),
    #[error("invalid status `{0}`: expected 100-599")]
    BadStatus(String),
    #[error("invalid phase `{0}`: expected 1-5")]
    BadPhase(String),
    #[error("conflicting actions `{0}` and `{1}`")]
    ConflictingActions(String, String),
    #[error("action `{0}` given twice")]
    DuplicateAction(String),
    #[error("rule has no action: add deny, block, allow, pass, log or score")]
    MissingAction,
}

/// A parse error with its place in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// The whole source line, for the caret display.
    pub text: String,
    /// The id of the rule being parsed, when it was already read.
    pub rule: Option<u64>,
}

impl ParseError {
    /// Locates byte `offset` of `src` (clamped to the source and to a character boundary).
    pub fn new(kind: ParseErrorKind, src: &str, file: &str, offset: usize) -> ParseError {
        let mut offset = offset.min(src.len());
        while !src.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &src[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[offset..].find('\n').map_or(src.len(), |i| offset + i);
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let col = src[line_start..offset].chars().count() + 1;
        ParseError {
            kind,
            file: file.to_string(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
            text: src[line_start..line_end].trim_end_matches('\r').to_string(),
            rule: None,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: error: {}", self.file, self.line, self.col, self.kind)?;
        if let Some(id) = self.rule {
            write!(f, " (in rule {id})")?;
        }
        writeln!(f)?;
        writeln!(f, "  {}", self.text)?;
        // Tabs are kept so the caret lines up with the source line as a terminal shows it.
        let pad: String = self
            .text
            .chars()
            .take(self.col.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "  {pad}^")
    }
}

impl std::error::Error for ParseError {}

/// Why an IR rule set could not be printed in the Cloudflare-style language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrintErrorKind {
    #[error("directive `{0}` has no equivalent (only rules can be printed)")]
    Directive(String),
    #[error("the rule has no id")]
    MissingId,
    #[error("{0} has no equivalent")]
    Unsupported(String),
    #[error("condition nested deeper than {0} levels")]
    TooDeep(usize),
}

/// A printing error, naming the rule when it has an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", rule.map(|id| format!("rule {id}: ")).unwrap_or_default())]
pub struct PrintError {
    pub rule: Option<u64>,
    pub kind: PrintErrorKind,
}
