//! Comment transformations: `t:replaceComments`, `t:removeComments`, `t:removeCommentsChar`
//! (src/actions/transformations/replace_comments.cc, remove_comments.cc,
//! remove_comments_char.cc).
//!
//! Each starts with a memchr scan for the markers it knows and returns the input
//! borrowed when there is none.

use std::borrow::Cow;

use memchr::memchr;

use super::find_pair;

/// Replaces each C comment `/* ... */` with one space; an unterminated comment runs to the end
/// and is replaced by one space too. A lone `*/` is left alone.
pub fn replace_comments(input: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = find_pair(input, b'/', b'*') else {
        return Cow::Borrowed(input);
    };
    let n = input.len();
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    loop {
        // Here input[i..] starts with "/*".
        match find_pair(&input[i + 2..], b'*', b'/') {
            Some(rel) => {
                out.push(b' ');
                i += 2 + rel + 2;
            }
            None => {
                out.push(b' ');
                break;
            }
        }
        match find_pair(&input[i..], b'/', b'*') {
            Some(rel) => {
                out.extend_from_slice(&input[i..i + rel]);
                i += rel;
            }
            None => {
                out.extend_from_slice(&input[i..]);
                break;
            }
        }
    }
    Cow::Owned(out)
}

/// Removes `/* */` and `<!-- -->` comments and cuts the value at `--` or `#`.
///
/// Quirks kept from remove_comments.cc:
/// - Outside a comment, `--` or `#` ends the output right there (SQL line comments).
/// - When a comment closes, the byte right after `*/` or `-->` is copied without being
///   examined, even if it starts another comment, and even when there is none: at the end of
///   the value that is the C string's NUL terminator, so `/*x*/` gives a single 0x00 byte.
/// - An unterminated comment is replaced by one space.
pub fn remove_comments(input: &[u8]) -> Cow<'_, [u8]> {
    if memchr(b'#', input).is_none()
        && find_pair(input, b'/', b'*').is_none()
        && find_pair(input, b'-', b'-').is_none()
    {
        return Cow::Borrowed(input);
    }
    let n = input.len();
    let at = |i: usize| input.get(i).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    let mut in_comment = false;
    while i < n {
        let rest = &input[i..];
        if !in_comment {
            if rest.starts_with(b"/*") {
                in_comment = true;
                i += 2;
            } else if rest.starts_with(b"<!--") {
                in_comment = true;
                i += 4;
            } else if rest.starts_with(b"--") || rest[0] == b'#' {
                break;
            } else {
                out.push(rest[0]);
                i += 1;
            }
        } else if rest.starts_with(b"*/") {
            in_comment = false;
            out.push(at(i + 2));
            i += 3;
        } else if rest.starts_with(b"-->") {
            in_comment = false;
            out.push(at(i + 3));
            i += 4;
        } else {
            i += 1;
        }
    }
    if in_comment {
        out.push(b' ');
    }
    if out == input { Cow::Borrowed(input) } else { Cow::Owned(out) }
}

/// Deletes the comment markers themselves - `/*`, `*/`, `<!--`, `-->`, `--`, `#` - and keeps
/// the text between them (remove_comments_char.cc). Markers are matched left to right on the
/// remaining input, so deleting one never joins its neighbours into a new marker behind the
/// scan position.
pub fn remove_comments_char(input: &[u8]) -> Cow<'_, [u8]> {
    let marker_len = |rest: &[u8]| -> usize {
        if rest.starts_with(b"/*") || rest.starts_with(b"*/") {
            2
        } else if rest.starts_with(b"<!--") {
            4
        } else if rest.starts_with(b"-->") {
            3
        } else if rest.starts_with(b"--") {
            2
        } else if rest.first() == Some(&b'#') {
            1
        } else {
            0
        }
    };
    let Some(first) = (0..input.len()).find(|&i| marker_len(&input[i..]) > 0) else {
        return Cow::Borrowed(input);
    };
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..first]);
    let mut i = first;
    while i < input.len() {
        match marker_len(&input[i..]) {
            0 => {
                out.push(input[i]);
                i += 1;
            }
            k => i += k,
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values obtained from libmodsecurity3 3.0.9.
    #[test]
    fn replace_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"a/*b*/c", b"a c"),
            (b"a/*b", b"a "),
            (b"a*/b", b"a*/b"),
            (b"/**/", b" "),
            (b"/*/", b" "),
            (b"a/*x*/b/*y*/c", b"a b c"),
            (b"a/*x*//*y*/c", b"a  c"),
            (b"-- #", b"-- #"),
        ];
        for (i, o) in cases {
            assert_eq!(&*replace_comments(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn remove_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"abc", b"abc"),
            (b"a/*b*/c", b"ac"),
            (b"/*x*/", b"\x00"),
            (b"/*x*/a", b"a"),
            (b"a--b", b"a"),
            (b"a#b", b"a"),
            (b"a<!--x-->b", b"ab"),
            (b"<!--x-->", b"\x00"),
            (b"a/*b", b"a "),
            (b"a*/b", b"a*/b"),
            (b"/*x*//*y*/z", b"/*y*/z"),
            (b"a-->b", b"a"),
            (b"a-b", b"a-b"),
        ];
        for (i, o) in cases {
            assert_eq!(&*remove_comments(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn remove_char_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"abc", b"abc"),
            (b"a/*b*/c", b"abc"),
            (b"a<!--b-->c", b"abc"),
            (b"a--b#c", b"abc"),
            (b"-/*-", b"--"),
            (b"---", b"-"),
            (b"--->", b"->"),
        ];
        for (i, o) in cases {
            assert_eq!(&*remove_comments_char(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }
}
