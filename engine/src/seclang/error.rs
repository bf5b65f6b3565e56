//! Errors of the SecLang front-end.
//!
//! Every stage (lexer, variable list, operator, actions, directives) reports a
//! [`ParseErrorKind`] at a byte offset of the logical line it works on; the parser maps that
//! offset back to the physical file, line and column and attaches the source line, so the
//! message can show a caret under the offending character.

use std::fmt;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("unknown directive `{0}`")]
    UnknownDirective(String),
    #[error("unknown variable `{0}`")]
    UnknownVariable(String),
    #[error("unknown operator `{0}`")]
    UnknownOperator(String),
    #[error("operator `{0}` is not supported by this engine")]
    UnsupportedOperator(String),
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    #[error("unknown transformation `{0}`")]
    UnknownTransformation(String),
    #[error("unterminated quoted string")]
    UnbalancedQuote,
    #[error("unterminated macro `%{{`: missing `}}`")]
    UnterminatedMacro,
    #[error("invalid regular expression: {0}")]
    BadRegex(String),
    #[error("cannot read data file `{path}`: {reason}")]
    MissingDataFile { path: String, reason: String },
    #[error("cannot include `{path}`: {reason}")]
    MissingInclude { path: String, reason: String },
    #[error("include cycle: `{0}` includes itself")]
    IncludeCycle(String),
    #[error("includes nested deeper than {0} levels")]
    IncludeDepth(usize),
    #[error("rule has no `id` action")]
    MissingId,
    #[error("rule has `chain` but no rule follows it")]
    DanglingChain,
    #[error("disruptive action `{0}` in a chained rule: only the chain starter may have one")]
    ChainedDisruptive(&'static str),
    #[error("SecDefaultAction cannot hold `{0}`")]
    DefaultActionUnsuitable(String),
    #[error("SecDefaultAction must have a disruptive action (other than `block`)")]
    DefaultActionNotDisruptive,
    #[error("a second SecDefaultAction for phase {0}: one per phase")]
    DefaultActionTwice(u8),
    #[error("`{0}` needs an argument")]
    MissingOperatorArgument(String),
    #[error("rule id {0} is used by an earlier SecRule")]
    DuplicateId(u64),
    #[error("a chained rule must be followed by SecRule or SecAction, found `{0}`")]
    ChainInterrupted(String),
    #[error("`{directive}` expects {expected}")]
    BadArguments { directive: String, expected: String },
    #[error("bad value for `{name}`: {reason}")]
    BadValue { name: String, reason: String },
    #[error("expected {expected}, found `{found}`")]
    Unexpected { expected: String, found: String },
    #[error("too many errors, stopped")]
    TooManyErrors,
}

/// One error with its position. `Display` shows `file:line:col: error: message`, the source
/// line and a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub file: String,
    /// 1-based line in `file`.
    pub line: u32,
    /// 1-based column (in characters) in that line.
    pub col: u32,
    /// The `id` of the rule the error is in, when it could be found.
    pub rule_id: Option<u64>,
    /// The physical source line.
    pub text: String,
}

impl std::error::Error for ParseError {}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: error: {}", self.file, self.line, self.col, self.kind)?;
        if let Some(id) = self.rule_id {
            write!(f, " (rule id {id})")?;
        }
        // Long lines (a 1 MB regex) are cut around the column so the message stays readable.
        let chars: Vec<char> = self.text.chars().collect();
        let col = (self.col as usize).saturating_sub(1).min(chars.len());
        let (from, to) = window(chars.len(), col, 160);
        let shown: String =
            chars[from..to].iter().map(|&c| if c == '\t' { ' ' } else { c }).collect();
        let lead = if from > 0 { "..." } else { "" };
        let tail = if to < chars.len() { "..." } else { "" };
        write!(f, "\n  {lead}{shown}{tail}\n  {}^", " ".repeat(lead.len() + col - from))
    }
}

fn window(len: usize, at: usize, width: usize) -> (usize, usize) {
    if len <= width {
        return (0, len);
    }
    let from = at.saturating_sub(width / 2);
    let to = (from + width).min(len);
    (to.saturating_sub(width).min(from), to)
}

/// All errors of one parse, in source order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParseErrors(pub Vec<ParseError>);

impl ParseErrors {
    pub fn iter(&self) -> impl Iterator<Item = &ParseError> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseErrors {}

/// An error at a byte offset of the text a sub-parser was given; the parser adds the offset
/// of that text in the logical line and turns it into a [`ParseError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spanned {
    pub kind: ParseErrorKind,
    pub at: usize,
}

impl Spanned {
    pub fn new(kind: ParseErrorKind, at: usize) -> Self {
        Spanned { kind, at }
    }
    pub fn shift(mut self, by: usize) -> Self {
        self.at += by;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_position_id_line_and_caret() {
        let e = ParseError {
            kind: ParseErrorKind::UnknownAction("foo".into()),
            file: "a.conf".into(),
            line: 3,
            col: 5,
            rule_id: Some(12),
            text: "abc\tdefg".into(),
        };
        assert_eq!(
            e.to_string(),
            "a.conf:3:5: error: unknown action `foo` (rule id 12)\n  abc defg\n      ^"
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let text = "x".repeat(10_000);
        let e = ParseError {
            kind: ParseErrorKind::UnbalancedQuote,
            file: "f".into(),
            line: 1,
            col: 5000,
            rule_id: None,
            text,
        };
        let s = e.to_string();
        assert!(s.len() < 500, "{}", s.len());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[1].find("x...").map(|_| ()), Some(()));
        // The caret sits under the same character index in the shown window.
        assert_eq!(lines[2].len(), 2 + 3 + 80 + 1);
    }
}
