//! The JSON request body processor (`ctl:requestBodyProcessor=JSON`).
//!
//! Data flow: body bytes -> an iterative tokenizer with yajl's rules (ModSecurity v3 links
//! yajl 2 with UTF-8 validation on, comments, partial values and trailing garbage off) ->
//! the naming scheme of src/request_body_processor/json.cc (v3.0.9) -> one argument per
//! scalar through a callback that may refuse it (SecArgumentsLimit).
//!
//! Naming (json.cc `addArgument` / `getCurrentKey`): the path is the concatenation, for
//! every open container, of its name followed by `.` (object) or `.array_N` (array, N its
//! element counter); a value inside an object appends its key. The top container is named
//! `json`, a container inside an array has an empty name, and an empty object key is
//! spelled `empty-key`. So `{"a":{"b":1},"c":[true,null]}` gives `json.a.b=1`,
//! `json.c.array_0=true`, `json.c.array_1=` (null is the empty string) and a top-level scalar
//! is named `json`. Numbers keep their source spelling.
//!
//! Nothing recurses: containers live on an explicit stack, so 10,000-deep input cannot
//! overflow the native stack.

/// What stopped the parser; [`JsonError::message`] renders it the way yajl's
/// `yajl_get_error(.., 0, ..)` does (`parse error: ...\n`), with v3's depth suffix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} at byte {offset}", self.message().trim_end())]
#[non_exhaustive]
pub struct JsonError {
    /// yajl's two classes: a lexical error (bad token) or a parse error (bad structure).
    pub lexical: bool,
    pub text: &'static str,
    pub depth_exceeded: bool,
    /// Byte offset of the token that failed.
    pub offset: usize,
}

impl JsonError {
    pub fn message(&self) -> String {
        let kind = if self.lexical { "lexical" } else { "parse" };
        let mut m = format!("{kind} error: {}\n", self.text);
        if self.depth_exceeded {
            m.push_str(". Parsing depth limit exceeded");
        }
        m
    }
}

const CANCELLED: &str = "client cancelled parse via callback return value";

/// Argument names repeat every open container's name, so `[[[...[1,1,1,...]]]]` makes
/// output quadratic in the input. v3 has no guard; we stop (as a cancelled parse) once names
/// and values exceed this many bytes per input byte, plus [`OUTPUT_BUDGET_BASE`]. Real
/// bodies stay far below it (an 8 KB CRS-style body produces well under 2x).
pub const OUTPUT_BUDGET_PER_BYTE: usize = 64;
pub const OUTPUT_BUDGET_BASE: usize = 1 << 20;

struct Container {
    name: Vec<u8>,
    array: Option<usize>,
}

struct Namer {
    stack: Vec<Container>,
    key: Vec<u8>,
    max_depth: u64,
    depth_exceeded: bool,
}

impl Namer {
    /// json.h `getCurrentKey`: takes the pending key.
    fn take_key(&mut self) -> Vec<u8> {
        if self.stack.is_empty() {
            return b"json".to_vec();
        }
        if self.key.is_empty() {
            if self.stack.last().is_some_and(|c| c.array.is_some()) {
                return Vec::new();
            }
            return b"empty-key".to_vec();
        }
        std::mem::take(&mut self.key)
    }

    fn name_for_value(&mut self) -> Vec<u8> {
        let mut path = Vec::new();
        for c in &self.stack {
            path.extend_from_slice(&c.name);
            match c.array {
                Some(n) => {
                    path.extend_from_slice(b".array_");
                    path.extend_from_slice(n.to_string().as_bytes());
                }
                None => path.push(b'.'),
            }
        }
        match self.stack.last_mut() {
            Some(Container { array: Some(n), .. }) => *n += 1,
            _ => {
                let k = self.take_key();
                path.extend_from_slice(&k);
            }
        }
        path
    }

    fn open(&mut self, array: bool) -> bool {
        let name = self.take_key();
        self.stack.push(Container { name, array: array.then_some(0) });
        if self.stack.len() as u64 > self.max_depth {
            self.depth_exceeded = true;
            return false;
        }
        true
    }

    fn close(&mut self) {
        self.stack.pop();
        if let Some(Container { array: Some(n), .. }) = self.stack.last_mut() {
            *n += 1;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (start, after `:`, after `,` in an array, or first in an array).
    Value {
        array_first: bool,
    },
    /// A key or `}` (first in an object) / a key only (after `,`).
    Key {
        first: bool,
    },
    Colon,
    /// `,` or the closing bracket of the innermost container.
    AfterValue,
    Done,
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Parses `body`, calling `add(name, value)` for each scalar. `add` returns false to stop
/// (argument limit reached), which yajl reports as a cancelled parse. Arguments added before
/// an error stay added, as in v3.
pub fn parse_json(
    body: &[u8],
    max_depth: u64,
    add: &mut dyn FnMut(Vec<u8>, Vec<u8>) -> bool,
) -> Result<(), JsonError> {
    let mut pos = 0;
    parse_inner(body, max_depth, add, &mut pos).map_err(|e| JsonError { offset: pos, ..e })
}

fn parse_inner(
    body: &[u8],
    max_depth: u64,
    add: &mut dyn FnMut(Vec<u8>, Vec<u8>) -> bool,
    pos: &mut usize,
) -> Result<(), JsonError> {
    let mut namer = Namer { stack: Vec::new(), key: Vec::new(), max_depth, depth_exceeded: false };
    let mut expect = Expect::Value { array_first: false };
    let mut i = 0;
    let mut budget =
        body.len().saturating_mul(OUTPUT_BUDGET_PER_BYTE).saturating_add(OUTPUT_BUDGET_BASE);
    let lex = |text| JsonError { lexical: true, text, depth_exceeded: false, offset: 0 };
    let parse = |text| JsonError { lexical: false, text, depth_exceeded: false, offset: 0 };
    loop {
        while i < body.len() && is_ws(body[i]) {
            i += 1;
        }
        *pos = i;
        if i >= body.len() {
            return if expect == Expect::Done { Ok(()) } else { Err(parse("premature EOF")) };
        }
        let c = body[i];
        match expect {
            Expect::Colon => {
                if c != b':' {
                    return Err(parse("object key and value must be separated by a colon (':')"));
                }
                i += 1;
                expect = Expect::Value { array_first: false };
            }
            Expect::AfterValue => {
                let in_array = namer.stack.last().is_some_and(|c| c.array.is_some());
                match c {
                    b',' => {
                        i += 1;
                        expect = if in_array {
                            Expect::Value { array_first: false }
                        } else {
                            Expect::Key { first: false }
                        };
                    }
                    b']' if in_array => {
                        i += 1;
                        namer.close();
                        expect = after_close(&namer);
                    }
                    b'}' if !in_array => {
                        i += 1;
                        namer.close();
                        expect = after_close(&namer);
                    }
                    _ => {
                        return Err(parse(if in_array {
                            "after array element, I expect ',' or ']'"
                        } else {
                            "after key and value, inside map, I expect ',' or '}'"
                        }));
                    }
                }
            }
            Expect::Key { first } => match c {
                b'"' => {
                    let (s, next) = lex_string(body, i).map_err(lex)?;
                    namer.key = s;
                    i = next;
                    expect = Expect::Colon;
                }
                b'}' if first => {
                    i += 1;
                    namer.close();
                    expect = after_close(&namer);
                }
                _ => {
                    // yajl lexes the token first: a bad byte is a lexical error.
                    if !is_token_start(c) {
                        return Err(lex("invalid char in json text."));
                    }
                    return Err(parse("invalid object key (must be a string)"));
                }
            },
            Expect::Value { array_first } => match c {
                b'{' | b'[' => {
                    i += 1;
                    if !namer.open(c == b'[') {
                        return Err(JsonError {
                            lexical: false,
                            text: CANCELLED,
                            depth_exceeded: true,
                            offset: 0,
                        });
                    }
                    expect = if c == b'[' {
                        Expect::Value { array_first: true }
                    } else {
                        Expect::Key { first: true }
                    };
                }
                b']' if array_first => {
                    i += 1;
                    namer.close();
                    expect = after_close(&namer);
                }
                _ => {
                    let (value, next) = lex_scalar(body, i).map_err(|e| match e {
                        ScalarErr::Lex(t) => lex(t),
                        ScalarErr::Unallowed => parse("unallowed token at this point in JSON text"),
                    })?;
                    i = next;
                    let name = namer.name_for_value();
                    let size = name.len() + value.len();
                    if size > budget {
                        return Err(parse(CANCELLED));
                    }
                    budget -= size;
                    if !add(name, value) {
                        return Err(parse(CANCELLED));
                    }
                    expect = after_close(&namer);
                }
            },
            Expect::Done => return Err(parse("trailing garbage")),
        }
    }
}

fn after_close(n: &Namer) -> Expect {
    if n.stack.is_empty() { Expect::Done } else { Expect::AfterValue }
}

fn is_token_start(c: u8) -> bool {
    matches!(
        c,
        b'{' | b'}' | b'[' | b']' | b',' | b':' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
    )
}

enum ScalarErr {
    Lex(&'static str),
    Unallowed,
}

fn lex_scalar(b: &[u8], i: usize) -> Result<(Vec<u8>, usize), ScalarErr> {
    match b[i] {
        b'"' => lex_string(b, i).map_err(ScalarErr::Lex),
        b't' => lex_lit(b, i, b"true"),
        b'f' => lex_lit(b, i, b"false"),
        // null is rendered as the empty string.
        b'n' => lex_lit(b, i, b"null").map(|(_, n)| (Vec::new(), n)),
        b'-' | b'0'..=b'9' => lex_number(b, i),
        b'}' | b']' | b',' | b':' => Err(ScalarErr::Unallowed),
        _ => Err(ScalarErr::Lex("invalid char in json text.")),
    }
}

fn lex_lit(b: &[u8], i: usize, lit: &[u8]) -> Result<(Vec<u8>, usize), ScalarErr> {
    for (k, &want) in lit.iter().enumerate() {
        match b.get(i + k) {
            Some(&c) if c == want => {}
            // Input ends inside the literal: yajl asks for more, then reports premature EOF.
            None => return Err(ScalarErr::Lex("premature EOF")),
            Some(_) => return Err(ScalarErr::Lex("invalid string in json text.")),
        }
    }
    Ok((lit.to_vec(), i + lit.len()))
}

fn lex_number(b: &[u8], start: usize) -> Result<(Vec<u8>, usize), ScalarErr> {
    let mut i = start;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if b[i] == b'-' {
        i += 1;
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return Err(ScalarErr::Lex(
                "malformed number, a digit is required after the minus sign.",
            ));
        }
    }
    if b[i] == b'0' {
        i += 1;
    } else {
        digits(&mut i);
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return Err(ScalarErr::Lex(
                "malformed number, a digit is required after the decimal point.",
            ));
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return Err(ScalarErr::Lex(
                "malformed number, a digit is required after the exponent.",
            ));
        }
    }
    Ok((b[start..i].to_vec(), i))
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i + 4)?;
    let mut v = 0u32;
    for &c in s {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

fn push_utf8(out: &mut Vec<u8>, cp: u32) {
    let ch = char::from_u32(cp).unwrap_or('?');
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

/// A string token starting at the `"` at `i`; returns the unescaped bytes and the index after
/// the closing quote.
fn lex_string(b: &[u8], i: usize) -> Result<(Vec<u8>, usize), &'static str> {
    let mut out = Vec::new();
    let mut j = i + 1;
    loop {
        let Some(&c) = b.get(j) else { return Err("premature EOF") };
        match c {
            b'"' => return Ok((out, j + 1)),
            b'\\' => {
                let Some(&e) = b.get(j + 1) else { return Err("premature EOF") };
                j += 2;
                match e {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let Some(mut cp) = hex4(b, j) else {
                            return Err(
                                "invalid (non-hex) character occurs after '\\u' inside string.",
                            );
                        };
                        j += 4;
                        // A high surrogate followed by `\uDC00..` forms one code point; a
                        // lone surrogate becomes '?' (yajl_string_decode).
                        if (0xD800..0xDC00).contains(&cp) && b.get(j..j + 2) == Some(b"\\u") {
                            if let Some(lo) = hex4(b, j + 2) {
                                if (0xDC00..0xE000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                    j += 6;
                                }
                            }
                        }
                        push_utf8(&mut out, cp);
                    }
                    _ => {
                        return Err(
                            "inside a JSON string, a backslash must be followed by a valid escape character",
                        );
                    }
                }
            }
            0..=0x1f => return Err("invalid character inside string."),
            0x80.. => {
                let len = utf8_len(&b[j..]).ok_or("invalid bytes in UTF8 string.")?;
                out.extend_from_slice(&b[j..j + len]);
                j += len;
            }
            _ => {
                out.push(c);
                j += 1;
            }
        }
    }
}

/// Length of the valid UTF-8 sequence at the start of `b`.
fn utf8_len(b: &[u8]) -> Option<usize> {
    let n = match b[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let s = b.get(..n)?;
    std::str::from_utf8(s).ok().map(|_| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, depth: u64) -> (Vec<(String, String)>, Option<String>) {
        let mut out = Vec::new();
        let r = parse_json(body.as_bytes(), depth, &mut |k, v| {
            out.push((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
            true
        });
        (out, r.err().map(|e| e.message()))
    }

    #[test]
    fn naming_table() {
        // Names as v3.0.9 json.cc builds them.
        let cases: &[(&str, &[(&str, &str)])] = &[
            (r#"{"a":"b"}"#, &[("json.a", "b")]),
            (r#"{"a":{"b":1,"c":-2.5e3}}"#, &[("json.a.b", "1"), ("json.a.c", "-2.5e3")]),
            (
                r#"{"c":[true,false,null]}"#,
                &[("json.c.array_0", "true"), ("json.c.array_1", "false"), ("json.c.array_2", "")],
            ),
            ("[1,2]", &[("json.array_0", "1"), ("json.array_1", "2")]),
            ("[[1],2]", &[("json.array_0.array_0", "1"), ("json.array_1", "2")]),
            (r#"[{"a":1},{"a":2}]"#, &[("json.array_0.a", "1"), ("json.array_1.a", "2")]),
            (r#"{"":1}"#, &[("json.empty-key", "1")]),
            ("42", &[("json", "42")]),
            (r#""s""#, &[("json", "s")]),
            (r#"{"k":"\u00e9\n\"\/"}"#, &[("json.k", "é\n\"/")]),
            (r#"{"k":"\ud83d\ude00"}"#, &[("json.k", "😀")]),
            ("{}", &[]),
            (" [ ] ", &[]),
        ];
        for (body, want) in cases {
            let (got, err) = run(body, 10_000);
            assert_eq!(err, None, "{body}");
            let want: Vec<(String, String)> =
                want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn errors_table() {
        let cases: &[(&str, &str)] = &[
            ("{", "parse error: premature EOF\n"),
            (r#"{"a":1} x"#, "parse error: trailing garbage\n"),
            ("{1:2}", "parse error: invalid object key (must be a string)\n"),
            (
                r#"{"a" 1}"#,
                "parse error: object key and value must be separated by a colon (':')\n",
            ),
            ("[1 2]", "parse error: after array element, I expect ',' or ']'\n"),
            ("[-]", "lexical error: malformed number, a digit is required after the minus sign.\n"),
            (
                "[1.]",
                "lexical error: malformed number, a digit is required after the decimal point.\n",
            ),
            ("[tru]", "lexical error: invalid string in json text.\n"),
            ("[x]", "lexical error: invalid char in json text.\n"),
            ("[\"a\u{1}\"]", "lexical error: invalid character inside string.\n"),
            ("[01]", "parse error: after array element, I expect ',' or ']'\n"),
            ("[1,]", "parse error: unallowed token at this point in JSON text\n"),
            ("  ", "parse error: premature EOF\n"),
        ];
        for (body, want) in cases {
            let (_, err) = run(body, 10_000);
            assert_eq!(err.as_deref(), Some(*want), "{body}");
        }
        // Invalid UTF-8 inside a string.
        let mut out = 0;
        let e = parse_json(b"[\"\xff\"]", 10, &mut |_, _| {
            out += 1;
            true
        })
        .unwrap_err();
        assert_eq!(e.message(), "lexical error: invalid bytes in UTF8 string.\n");
        assert_eq!(e.to_string(), "lexical error: invalid bytes in UTF8 string. at byte 1");
        assert_eq!(out, 0);
    }

    #[test]
    fn depth_limit_and_cancel() {
        let (got, err) = run(r#"{"a":{"b":{"c":1}}}"#, 2);
        assert!(got.is_empty());
        assert_eq!(
            err.as_deref(),
            Some(
                "parse error: client cancelled parse via callback return value\n. Parsing depth limit exceeded"
            )
        );
        let (got, err) = run(r#"{"a":{"b":1}}"#, 2);
        assert_eq!(got.len(), 1);
        assert_eq!(err, None);
        // 100,000 nested arrays: no stack overflow, error at the default 10,000.
        let deep = "[".repeat(100_000);
        let (_, err) = run(&deep, 10_000);
        assert!(err.unwrap().ends_with("Parsing depth limit exceeded"));
        // The callback refusing stops the parse with yajl's cancel message.
        let mut n = 0;
        let e = parse_json(b"[1,2,3]", 10, &mut |_, _| {
            n += 1;
            n < 2
        })
        .unwrap_err();
        assert_eq!(n, 2);
        assert_eq!(e.message(), "parse error: client cancelled parse via callback return value\n");
    }
}
