//! `t:cmdLine` (src/actions/transformations/cmd_line.cc): normalises shell command lines so that
//! `c^md`, `"c"md` and `C M D` obfuscations collapse.
//!
//! Single pass over the bytes; borrowed when no byte would change.

use std::borrow::Cow;

/// The rules, in cmd_line.cc's order:
/// - `"` `'` `\` `^` are deleted;
/// - each run of ` ` `,` `;` `\t` `\r` `\n` becomes one space (deleted bytes inside the run do
///   not end it: `a ^ b` gives `a b`);
/// - a space directly before `/` or `(` is removed (`cmd /c` gives `cmd/c`);
/// - every other byte is lower-cased (ASCII only: C-locale `tolower`).
///
/// Note `\v` and `\f` are not in the separator list and stay as they are.
pub fn cmd_line(input: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = input.iter().enumerate().position(|(i, &b)| changes_here(input, i, b)) else {
        return Cow::Borrowed(input);
    };
    // Output never outgrows the input: compact a copy in place behind the read index.
    let mut out = input.to_vec();
    let mut w = first;
    // The prefix never contains a separator that would need rewriting, but it may end with a
    // single space that the next `/` or `(` must remove.
    let mut space = first > 0 && input[first - 1] == b' ';
    for &b in &input[first..] {
        match b {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !space {
                    out[w] = b' ';
                    w += 1;
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    w -= 1;
                }
                space = false;
                out[w] = b;
                w += 1;
            }
            _ => {
                out[w] = b.to_ascii_lowercase();
                w += 1;
                space = false;
            }
        }
    }
    out.truncate(w);
    Cow::Owned(out)
}

/// Whether byte `i` is the first place where the output differs from the input.
fn changes_here(input: &[u8], i: usize, b: u8) -> bool {
    match b {
        b'"' | b'\'' | b'\\' | b'^' | b',' | b';' | b'\t' | b'\r' | b'\n' => true,
        b' ' => i > 0 && input[i - 1] == b' ',
        b'/' | b'(' => i > 0 && input[i - 1] == b' ',
        _ => b.is_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values obtained from libmodsecurity3 3.0.9.
    #[test]
    fn table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"cmd", b"cmd"),
            (b"C^M\"D'", b"cmd"),
            (b"c\\md", b"cmd"),
            (b"a  b", b"a b"),
            (b"a,;\t\r\nb", b"a b"),
            (b"cmd /c dir", b"cmd/c dir"),
            (b"cmd  /c", b"cmd/c"),
            (b"echo (1)", b"echo(1)"),
            (b" /x", b"/x"),
            (b"a ^ b", b"a b"),
            (b"a \"/b", b"a/b"),
            (b"a\x0bb", b"a\x0bb"),
            (b"\xc3\x89A", b"\xc3\x89a"),
            (b"x ", b"x "),
            (b"a, b", b"a b"),
        ];
        for (i, o) in cases {
            assert_eq!(&*cmd_line(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn borrowed_when_unchanged() {
        assert!(matches!(cmd_line(b"ls -la x/y"), Cow::Borrowed(_)));
        assert!(matches!(cmd_line(b"a b c"), Cow::Borrowed(_)));
    }
}
