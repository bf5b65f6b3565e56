//! The lexer: a cursor over the source that the parser drives token by token.
//!
//! The language is line-sensitive in two places (a rule's message and a bare regex after
//! `matches` run to the end of the line), so there is no separate token stream: the parser
//! asks for the kind of token its grammar position allows (a word, a quoted string, the rest
//! of the line, a target). Every token carries the byte offset where it starts, which the
//! parser turns into a line and column for errors.

use super::error::ParseErrorKind;

/// A lexing failure at a byte offset.
pub(crate) type LexResult<T> = Result<T, (ParseErrorKind, usize)>;

/// Characters that end a bare word (besides white space).
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '{' | '}' | '"')
}

/// Characters that end a bare `:key` selector.
fn ends_key(c: char) -> bool {
    ends_word(c) || matches!(c, '|' | ',')
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Cursor { src, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips white space (line breaks included) and `#` comments, which run to the end of
    /// the line. A `#` inside a word or a bare regex is not a comment.
    pub(crate) fn skip_trivia(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    let n = self.rest().find('\n').unwrap_or(self.rest().len());
                    self.pos += n;
                }
                _ => return,
            }
        }
    }

    /// Skips blanks but stops at a line break (or a comment, which runs to one).
    pub(crate) fn skip_blanks(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || !c.is_whitespace() {
                return;
            }
            self.bump();
        }
    }

    pub(crate) fn at_eof(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// A bare word at the cursor (no trivia skipped); empty when none.
    pub(crate) fn word(&mut self) -> (usize, &'a str) {
        let start = self.pos;
        let n = self.rest().find(ends_word).unwrap_or(self.rest().len());
        self.pos += n;
        (start, &self.src[start..self.pos])
    }

    /// The next word after trivia, without consuming it.
    pub(crate) fn peek_word(&self) -> (usize, &'a str) {
        let mut c = *self;
        c.skip_trivia();
        c.word()
    }

    /// The rest of the current line, trailing white space removed; the line break is not
    /// consumed.
    pub(crate) fn rest_of_line(&mut self) -> (usize, &'a str) {
        let start = self.pos;
        let n = self.rest().find('\n').unwrap_or(self.rest().len());
        self.pos += n;
        (start, self.src[start..self.pos].trim_end())
    }

    /// A `"..."` string at the cursor. Escapes: `\"`, `\\`, `\n`, `\r`, `\t`; any other
    /// backslash is kept with the character after it, so regexes can be quoted unchanged.
    pub(crate) fn quoted(&mut self) -> LexResult<String> {
        let start = self.pos;
        debug_assert_eq!(self.peek(), Some('"'));
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err((ParseErrorKind::UnterminatedString, start)),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    None => return Err((ParseErrorKind::UnterminatedString, start)),
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// A value: a quoted string or a bare word. `None` when neither is at the cursor.
    pub(crate) fn value(&mut self) -> LexResult<Option<(usize, String, bool)>> {
        let start = self.pos;
        if self.peek() == Some('"') {
            return Ok(Some((start, self.quoted()?, true)));
        }
        let (_, w) = self.word();
        Ok(if w.is_empty() { None } else { Some((start, w.to_string(), false)) })
    }

    /// A variable name: ASCII letters, digits and `_`.
    pub(crate) fn ident(&mut self) -> (usize, &'a str) {
        let start = self.pos;
        let n = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        self.pos += n;
        (start, &self.src[start..self.pos])
    }

    /// A bare `:key`: up to white space, `|`, `,`, parentheses, braces or a quote.
    pub(crate) fn bare_key(&mut self) -> (usize, &'a str) {
        let start = self.pos;
        let n = self.rest().find(ends_key).unwrap_or(self.rest().len());
        self.pos += n;
        (start, &self.src[start..self.pos])
    }

    /// A `/regex/` selector at the cursor. The text between the slashes is kept as written;
    /// `\/` stands for a slash and stays escaped (the regex engine reads it as `/`).
    pub(crate) fn slash_regex(&mut self) -> LexResult<String> {
        let start = self.pos;
        self.bump();
        let body_start = self.pos;
        loop {
            match self.bump() {
                None | Some('\n') => return Err((ParseErrorKind::UnterminatedSelector, start)),
                Some('\\') => {
                    if matches!(self.peek(), None | Some('\n')) {
                        return Err((ParseErrorKind::UnterminatedSelector, start));
                    }
                    self.bump();
                }
                Some('/') => return Ok(self.src[body_start..self.pos - 1].to_string()),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_escapes() {
        let cases: &[(&str, Result<&str, ParseErrorKind>)] = &[
            (r#""a b""#, Ok("a b")),
            (r#""a\"b""#, Ok("a\"b")),
            (r#""a\\b""#, Ok("a\\b")),
            (r#""\d+\n""#, Ok("\\d+\n")),
            (r#""open"#, Err(ParseErrorKind::UnterminatedString)),
            (r#""trailing\"#, Err(ParseErrorKind::UnterminatedString)),
        ];
        for (src, want) in cases {
            let got = Cursor::new(src).quoted().map_err(|(k, _)| k);
            assert_eq!(got.as_deref(), want.as_ref().map(|s| *s), "{src}");
        }
    }

    #[test]
    fn trivia_and_words() {
        let mut c = Cursor::new("  # comment\n  foo(bar) x#y");
        c.skip_trivia();
        assert_eq!(c.word(), (14, "foo"));
        assert_eq!(c.bump(), Some('('));
        assert_eq!(c.word().1, "bar");
        c.bump();
        c.skip_trivia();
        assert_eq!(c.word().1, "x#y");
        assert!(c.at_eof());
    }

    #[test]
    fn slash_regex_selector() {
        assert_eq!(Cursor::new(r"/^a\/b/ x").slash_regex().unwrap(), r"^a\/b");
        assert!(Cursor::new("/abc").slash_regex().is_err());
        assert!(Cursor::new("/ab\nc/").slash_regex().is_err());
        assert!(Cursor::new("/ab\\").slash_regex().is_err());
    }

    #[test]
    fn rest_of_line_stops_at_newline() {
        let mut c = Cursor::new("a b  \nc");
        assert_eq!(c.rest_of_line(), (0, "a b"));
        assert_eq!(c.peek(), Some('\n'));
    }
}
