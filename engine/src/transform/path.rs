//! `t:normalizePath` / `t:normalisePath` and `t:normalizePathWin`
//! (src/actions/transformations/normalise_path.cc, normalise_path_win.cc).
//!
//! Paths without `//`, without a `.` or `..` segment (and, for the Windows variant, without
//! `\`) come out unchanged and are returned borrowed after a memchr scan. Otherwise the value is copied once
//! and normalised in place by the same read-pointer / write-pointer walk ModSecurity uses: the
//! walk reads back what it has already written (to spot `..` and `/.`), so keeping one buffer
//! is what makes the edge cases come out identical.

use std::borrow::Cow;

use memchr::{memchr, memchr_iter};

use super::find_pair;

/// Removes `./`, `//` and resolves `..` like ModSecurity v3.
///
/// Quirks kept from normalise_path.cc (`normalize_path_inplace`):
/// - A relative path that climbs above its start keeps the `..` (`../a` stays `../a`,
///   `a/../../b` gives `../b`); an absolute one stops at the root (`/../a` gives `/a`).
/// - A leading `./` is dropped and a relative path never starts with `/` afterwards
///   (`.//a` gives `a`).
/// - A trailing slash is kept only if the input had one; `..` or `.` as last segment resolve
///   without adding one (`/a/b/..` gives `/a`).
/// - Only the last two bytes of a segment are looked at to spot a back-reference, so any
///   segment *ending* in `..` acts as one: `/a/b../c` and `/a/.../c` both give `/a/c`.
/// - Climbing back to the root of an absolute path without a trailing slash gives the empty
///   string (`/..` and `/a/..`): the walk keeps the root `/`, then the final step drops it
///   because the input did not end with a slash (`/a/../` gives `/`).
pub fn normalize_path(input: &[u8]) -> Cow<'_, [u8]> {
    normalize(input, false)
}

/// `normalizePath` after turning `\` into `/` (normalise_path_win.cc). The conversion is done
/// lazily by the walk, one byte ahead of the read pointer, exactly as the C code does: a `\`
/// that the slash-skipping loop jumps onto is copied unconverted (`a/\\b` gives `a\b`).
pub fn normalize_path_win(input: &[u8]) -> Cow<'_, [u8]> {
    normalize(input, true)
}

fn normalize(input: &[u8], win: bool) -> Cow<'_, [u8]> {
    if !may_change(input, win) {
        return Cow::Borrowed(input);
    }
    let mut buf = input.to_vec();
    let len = normalize_in_place(&mut buf, win);
    buf.truncate(len);
    if buf == input { Cow::Borrowed(input) } else { Cow::Owned(buf) }
}

/// Whether the walk could change anything. Until its first change the walk copies byte for
/// byte (write index == read index), and it only acts at a segment end on `//` or on a `.` that
/// follows the start, a `/` or another `.`. So a value with neither (nor `\` for the Windows
/// variant) is returned as is without copying - most real paths, and text that merely
/// contains a full stop.
fn may_change(input: &[u8], win: bool) -> bool {
    if win && memchr(b'\\', input).is_some() {
        return true;
    }
    if find_pair(input, b'/', b'/').is_some() {
        return true;
    }
    memchr_iter(b'.', input).any(|i| {
        let segment_end = i + 1 == input.len() || input[i + 1] == b'/';
        segment_end && (i == 0 || input[i - 1] == b'.' || input[i - 1] == b'/')
    })
}

/// What the walk does after looking at a segment end.
#[derive(PartialEq)]
enum Step {
    /// Copy the byte at the read position (after collapsing repeated slashes).
    Copy,
    /// Copy nothing this round.
    Skip,
}

/// Returns the normalised length; `b[..len]` is the result.
fn normalize_in_place(b: &mut [u8], win: bool) -> usize {
    let n = b.len();
    if n == 0 {
        return 0;
    }
    let sep = |c: u8| c == b'/' || (win && c == b'\\');
    // Signed indices: the back-reference step moves the write index up to three places back
    // and then clamps at the root, as the C pointer arithmetic does.
    let end = n as isize - 1;
    let at = |i: isize| i as usize;
    let relative = !sep(b[0]);
    let trailing = sep(b[n - 1]);
    let (mut src, mut dst): (isize, isize) = (0, 0);
    let mut hitroot = false;
    let mut done = false;

    while !done && src <= end && dst <= end {
        if win {
            if b[at(src)] == b'\\' {
                b[at(src)] = b'/';
            }
            if src < end && b[at(src + 1)] == b'\\' {
                b[at(src + 1)] = b'/';
            }
        }
        let mut step = Step::Copy;
        // Only the last byte of a segment (or of the input) triggers normalisation.
        let segment_end = if src == end {
            done = true;
            true
        } else {
            b[at(src + 1)] == b'/'
        };
        if segment_end {
            if src != end && b[at(src)] == b'/' {
                // Empty segment: the copy below collapses the slashes.
            } else if b[at(src)] == b'.' {
                if dst > 0 && b[at(dst - 1)] == b'.' {
                    // `..`
                    if relative && (hitroot || dst - 2 <= 0) {
                        hitroot = true;
                    } else {
                        dst -= 3;
                        while dst > 0 && b[at(dst)] != b'/' {
                            dst -= 1;
                        }
                        if dst <= 0 {
                            hitroot = true;
                            dst = 0;
                            if !relative && src == end {
                                dst += 1;
                            }
                        }
                        if done {
                            step = Step::Skip;
                        } else {
                            src += 1;
                        }
                    }
                } else if dst == 0 {
                    // Leading `.` of a relative path.
                    if done {
                        step = Step::Skip;
                    } else {
                        src += 1;
                    }
                } else if b[at(dst - 1)] == b'/' {
                    // `/.`
                    if done {
                        step = Step::Skip;
                    } else {
                        dst -= 1;
                        src += 1;
                    }
                }
            } else if dst > 0 {
                hitroot = false;
            }
        }
        if step == Step::Copy {
            if b[at(src)] == b'/' {
                while src < end && sep(b[at(src + 1)]) {
                    src += 1;
                }
                if relative && dst == 0 {
                    src += 1;
                    step = Step::Skip;
                }
            }
            if step == Step::Copy {
                b[at(dst)] = b[at(src)];
                dst += 1;
                src += 1;
            }
        }
    }
    if !trailing && dst > 0 && b[at(dst - 1)] == b'/' {
        dst -= 1;
    }
    at(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values obtained from libmodsecurity3 3.0.9.
    #[test]
    fn table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"/", b"/"),
            (b".", b""),
            (b"..", b".."),
            (b"/a/b/c", b"/a/b/c"),
            (b"/a/./b", b"/a/b"),
            (b"/a//b", b"/a/b"),
            (b"/a/b/../c", b"/a/c"),
            (b"/a/b/..", b"/a"),
            (b"/a/b/../", b"/a/"),
            (b"/../a", b"/a"),
            (b"/..", b""),
            (b"/a/..", b""),
            (b"/a/../", b"/"),
            (b"/..a", b"/..a"),
            (b"../a", b"../a"),
            (b"a/../../b", b"../b"),
            (b"./a", b"a"),
            (b".//a", b"a"),
            (b"a/.", b"a"),
            (b"a/./", b"a/"),
            (b"/a/b/c/../../d", b"/a/d"),
            (b"//a", b"/a"),
            (b"a//", b"a/"),
            (b"/etc/./passwd", b"/etc/passwd"),
            (b"/x/../../../etc/passwd", b"/etc/passwd"),
            (b"a\\b", b"a\\b"),
            (b"...", b"..."),
            (b"/a/.../b", b"/a/b"),
            (b"/a/b../c", b"/a/c"),
            (b"/a/.b/c", b"/a/.b/c"),
            (b"/a/b./c", b"/a/b./c"),
        ];
        for (i, o) in cases {
            assert_eq!(&*normalize_path(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn win_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"\\a\\b\\..\\c", b"/a/c"),
            (b"a\\b", b"a/b"),
            (b"c:\\windows\\..\\boot.ini", b"c:/boot.ini"),
            (b"\\..\\..\\x", b"/x"),
            (b"a/\\\\b", b"a\\b"),
        ];
        for (i, o) in cases {
            assert_eq!(&*normalize_path_win(i), *o, "input {:?}", String::from_utf8_lossy(i));
        }
    }

    #[test]
    fn borrowed_when_unchanged() {
        assert!(matches!(normalize_path(b"/a/b/c"), Cow::Borrowed(_)));
        assert!(matches!(normalize_path(b"/a/b.txt"), Cow::Borrowed(_)));
        assert!(matches!(normalize_path(b"A sentence. Another one."), Cow::Borrowed(_)));
        assert!(matches!(normalize_path(b"a/b./c"), Cow::Borrowed(_)));
        assert!(matches!(normalize_path_win(b"/a/b"), Cow::Borrowed(_)));
    }
}
