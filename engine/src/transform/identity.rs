//! Which transformations provably leave a value unchanged, found in one pass over its bytes.
//!
//! Most request values are read through several transformation chains, and most of those
//! chains leave them as they are (a benign GET at CRS PL1: about 210 chain runs, 16 that
//! change anything). Each transformation has its own borrowed fast path, but finding out
//! through it costs a call and a scan per value and transformation, and on a decision that
//! starts with cold caches the code of every transformation tried. [`unchanged`] answers for
//! all of them at once from the bytes (and the few byte pairs) that can make each one act.
//!
//! The answer is conservative: a clear bit says nothing, a set bit is a proof. The proof is
//! the implementations' own fast paths, read once per transformation below, and checked
//! against [`super::apply`] by a property test.

use crate::ir::Transformation as T;

const fn bit(t: T) -> u64 {
    1 << t as u32
}

/// The transformations [`unchanged`] can prove: those whose change needs a byte or a pair of
/// bytes from a short list. Decoders of whole values (base64, hex), digests, encoders and
/// `length` always change their input or depend on all of it, and are not covered.
pub(crate) const COVERED: u64 = bit(T::None)
    | bit(T::Lowercase)
    | bit(T::Uppercase)
    | bit(T::UrlDecode)
    | bit(T::UrlDecodeUni)
    | bit(T::HtmlEntityDecode)
    | bit(T::JsDecode)
    | bit(T::EscapeSeqDecode)
    | bit(T::CssDecode)
    | bit(T::RemoveNulls)
    | bit(T::ReplaceNulls)
    | bit(T::Utf8ToUnicode)
    | bit(T::RemoveWhitespace)
    | bit(T::CompressWhitespace)
    | bit(T::CmdLine)
    | bit(T::ReplaceComments)
    | bit(T::RemoveComments)
    | bit(T::RemoveCommentsChar)
    | bit(T::NormalizePath)
    | bit(T::NormalizePathWin)
    | bit(T::Trim)
    | bit(T::TrimLeft)
    | bit(T::TrimRight);

/// The longest value worth signing: the pass reads a byte at a time, where each
/// transformation's own fast path (a memchr) reads sixteen or more, so on a long value that
/// few transformations would read, signing costs more than it saves (the 30 largest benign
/// bodies: +2.5% instructions when every value was signed). Measured on the gate workload
/// (median instructions, native): 16 bytes 534,783; 32 522,463; 48 522,581; 64 522,893; 96
/// 524,642; 128 525,794; 256 527,502. Cold lines rise by about 0.2% from 256 to 64.
pub(crate) const SIGN_MAX: usize = 64;

/// Set on a byte that starts one of the pairs [`pair`] knows (no transformation has this bit).
const PAIR_START: u64 = 1 << 63;
const _: () = assert!(COVERED & PAIR_START == 0);

/// Per byte: the covered transformations that byte alone may make act, and [`PAIR_START`].
static SPOILS: [u64; 256] = spoils();

const fn spoils() -> [u64; 256] {
    let mut s = [0u64; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let mut m = 0;
        if c.is_ascii_uppercase() {
            m |= bit(T::Lowercase) | bit(T::CmdLine);
        }
        if c.is_ascii_lowercase() {
            m |= bit(T::Uppercase);
        }
        // C-locale isspace: trim* are decided from the ends instead (see `unchanged`).
        let space = c == b' ' || (c >= 0x09 && c <= 0x0d);
        if space {
            m |= bit(T::RemoveWhitespace);
        }
        // compressWhitespace: any whitespace but a single ' ' (pairs below).
        if space && c != b' ' {
            m |= bit(T::CompressWhitespace);
        }
        m |= match c {
            b'%' | b'+' => bit(T::UrlDecode) | bit(T::UrlDecodeUni),
            b'&' => bit(T::HtmlEntityDecode),
            b'\\' => {
                bit(T::JsDecode)
                    | bit(T::EscapeSeqDecode)
                    | bit(T::CssDecode)
                    | bit(T::CmdLine)
                    | bit(T::NormalizePathWin)
            }
            0 => {
                bit(T::CssDecode)
                    | bit(T::RemoveNulls)
                    | bit(T::ReplaceNulls)
                    | bit(T::Utf8ToUnicode)
            }
            // removeWhitespace also drops every 0xa0 and 0xc2 byte.
            0xa0 | 0xc2 => bit(T::Utf8ToUnicode) | bit(T::RemoveWhitespace),
            0x80..=0xff => bit(T::Utf8ToUnicode),
            b'"' | b'\'' | b'^' | b',' | b';' | b'\t' | b'\r' | b'\n' => bit(T::CmdLine),
            b'#' => bit(T::RemoveComments) | bit(T::RemoveCommentsChar),
            // A `.` segment, or `..`: conservatively any full stop.
            b'.' => bit(T::NormalizePath) | bit(T::NormalizePathWin),
            _ => 0,
        };
        if matches!(c, b' ' | b'/' | b'*' | b'-') {
            m |= PAIR_START;
        }
        s[b] = m;
        b += 1;
    }
    s
}

/// Every transformation [`pair`] may answer.
const PAIR_SPOILS: u64 = bit(T::CmdLine)
    | bit(T::CompressWhitespace)
    | bit(T::ReplaceComments)
    | bit(T::RemoveComments)
    | bit(T::RemoveCommentsChar)
    | bit(T::NormalizePath)
    | bit(T::NormalizePathWin);

/// The covered transformations the pair `a b` may make act (`a` has [`PAIR_START`]).
fn pair(a: u8, b: u8) -> u64 {
    match (a, b) {
        // cmdLine: a second separator in a run, a space before `/` or `(`;
        // compressWhitespace: a second whitespace byte in a row.
        (b' ', b' ') => bit(T::CmdLine) | bit(T::CompressWhitespace),
        (b' ', 0x09..=0x0d) => bit(T::CompressWhitespace),
        (b' ', b'/' | b'(') => bit(T::CmdLine),
        (b'/', b'*') => {
            bit(T::ReplaceComments) | bit(T::RemoveComments) | bit(T::RemoveCommentsChar)
        }
        (b'*', b'/') => bit(T::RemoveCommentsChar),
        // `--` (also inside `<!--` and `-->`).
        (b'-', b'-') => bit(T::RemoveComments) | bit(T::RemoveCommentsChar),
        (b'/', b'/') => bit(T::NormalizePath) | bit(T::NormalizePathWin),
        _ => 0,
    }
}

/// The transformations (bits `1 << t as u32`) proven to return `value` unchanged; a subset of
/// [`COVERED`]. Nothing is proven (0) for a value longer than [`SIGN_MAX`]: its
/// transformations' own fast paths decide.
pub(crate) fn unchanged(value: &[u8]) -> u64 {
    if value.len() > SIGN_MAX {
        return 0;
    }
    proven(value)
}

/// The longest value a plan signs for [`but_case`]: past it, only the case mappings are
/// answered for (they need no pass).
pub(crate) const FOLD_SIGN_MAX: usize = 4096;

/// The ASCII case mappings, which change a value in case only.
const CASE_MAPS: u64 = bit(T::Lowercase) | bit(T::Uppercase);

/// [`but_case`] of a value, signed whole up to [`FOLD_SIGN_MAX`] bytes.
#[cfg(test)]
pub(crate) fn unchanged_but_case(value: &[u8]) -> u64 {
    but_case((value.len() <= FOLD_SIGN_MAX).then(|| proven(value)))
}

/// The transformations that provably change `value` in ASCII case at most, in whatever order
/// and number a chain of them runs: the case mappings, and those [`unchanged`] proves idle
/// from bytes that are not letters (every covered one but `cmdLine`, which also lowers
/// case: it is proven only when no upper-case letter is there to lower, and then it, too,
/// lowers at most the upper case an earlier `t:uppercase` made). Such a chain's output
/// equals `value` up to ASCII case, which is all a case-insensitive scan of it can tell.
///
/// `proven` is what [`proven`] answered for the value, `None` when it was not asked (past
/// [`FOLD_SIGN_MAX`], only the case mappings are answered for).
pub(crate) fn but_case(proven: Option<u64>) -> u64 {
    proven.unwrap_or(0) | CASE_MAPS
}

/// The transformations whose chains [`last_case_map`] answers exactly for a value that
/// [`proven`] answered `proven` for: the case mappings, and the transformations proven idle
/// from bytes that are not letters, which stay idle whatever case the letters are in (all but
/// `cmdLine`, which also lowers case).
pub(crate) fn exact_up_to_case(proven: u64) -> u64 {
    (proven & !bit(T::CmdLine)) | CASE_MAPS
}

/// The output of a chain of transformations in [`exact_up_to_case`] over a value: the value
/// in the case of the chain's last case mapping (`Some(T::Lowercase)` or
/// `Some(T::Uppercase)`), or as it is (`None`: no case mapping).
pub(crate) fn last_case_map(chain: &[T]) -> Option<T> {
    chain.iter().rev().copied().find(|&t| CASE_MAPS & bit(t) != 0)
}

/// The transformations proven to return `value` unchanged, at any length (a subset of
/// [`COVERED`]; [`unchanged`] bounds the length this pass is worth).
pub(crate) fn proven(value: &[u8]) -> u64 {
    // The bytes alone, four lookups at a time (independent of each other).
    let mut m = 0u64;
    let quads = value.chunks_exact(4);
    for &b in quads.remainder() {
        m |= SPOILS[usize::from(b)];
    }
    for q in quads {
        let s = |i: usize| SPOILS[usize::from(q[i])];
        m |= s(0) | s(1) | s(2) | s(3);
    }
    // Then the pairs, only when one could spoil a transformation the bytes left proven.
    if m & PAIR_START != 0 && PAIR_SPOILS & !m != 0 {
        for w in value.windows(2) {
            if SPOILS[usize::from(w[0])] & PAIR_START != 0 {
                m |= pair(w[0], w[1]);
            }
        }
    }
    let space = |b: Option<&u8>| b.is_some_and(|&b| super::is_c_space(b));
    if space(value.first()) {
        m |= bit(T::Trim) | bit(T::TrimLeft);
    }
    if space(value.last()) {
        m |= bit(T::Trim) | bit(T::TrimRight);
    }
    COVERED & !m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Transformation;
    use proptest::strategy::Strategy;

    fn covered() -> Vec<Transformation> {
        crate::ir::Transformation::ALL.iter().copied().filter(|&t| COVERED & bit(t) != 0).collect()
    }

    #[test]
    fn benign_text_is_proven_unchanged_by_the_decoders() {
        let u = unchanged(b"gzip, deflate, br");
        for t in [T::UrlDecodeUni, T::HtmlEntityDecode, T::JsDecode, T::RemoveNulls, T::Lowercase] {
            assert!(u & bit(t) != 0, "{t:?}");
        }
        // A comma is a cmdLine separator; nothing is proven for what it rewrites.
        assert!(u & bit(T::CmdLine) == 0);
        let u = unchanged(b"Mozilla/5.0 (X11; Linux x86_64)");
        assert!(u & bit(T::Lowercase) == 0 && u & bit(T::CmdLine) == 0);
        assert!(u & bit(T::UrlDecodeUni) != 0 && u & bit(T::Utf8ToUnicode) != 0);
        assert!(unchanged(b" x") & bit(T::TrimLeft) == 0);
        assert!(unchanged(b"x ") & bit(T::TrimLeft) != 0);
        assert!(unchanged(b"a  b") & bit(T::CompressWhitespace) == 0);
        assert!(unchanged(b"a b") & bit(T::CompressWhitespace) != 0);
        assert_eq!(unchanged(b""), COVERED);
        assert_eq!(unchanged(&[b'a'; SIGN_MAX + 1]), 0, "past the limit nothing is proven");
    }

    /// Pieces the transformations act on: entities, escapes, comment markers, path segments,
    /// whitespace runs, and bytes around them.
    const PIECES: &[&[u8]] = &[
        b"&amp;",
        b"&#65;",
        b"&#x41;",
        b"&lt",
        b"&",
        b"%41",
        b"%u0041",
        b"%uff01",
        b"%",
        b"+",
        b"\\x41",
        b"\\u0041",
        b"\\n",
        b"\\0",
        b"\\",
        b"0x41",
        b"0X",
        b"/*",
        b"*/",
        b"--",
        b"<!--",
        b"-->",
        b"#",
        b"./",
        b"../",
        b"//",
        b"/",
        b".",
        b" ",
        b"  ",
        b"\t",
        b"\n",
        b"\x0b",
        b"\x0c",
        b"\r",
        b"\"",
        b"'",
        b"^",
        b",",
        b";",
        b"(",
        b"\0",
        b"\xa0",
        b"\xc2\xa0",
        b"\xc3\xa9",
        b"\xff",
        b"a",
        b"A",
        b"z",
        b"Z",
        b"9",
        b"_",
        b"=",
        b":",
    ];

    /// `pieces` drawn as [`PIECES`] and loose bytes.
    fn value_of() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            proptest::prop_oneof![
                3 => proptest::sample::select(PIECES).prop_map(|p| p.to_vec()),
                1 => proptest::num::u8::ANY.prop_map(|b| vec![b]),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    /// A chain of the covered transformations in `allowed` (never empty: the case mappings
    /// are in every mask drawn from), one per pick.
    fn chain_of(allowed: u64, picks: &[usize]) -> Vec<Transformation> {
        let allowed: Vec<Transformation> =
            covered().into_iter().filter(|&t| allowed & bit(t) != 0).collect();
        picks.iter().map(|&i| allowed[i % allowed.len()]).collect()
    }

    #[test]
    fn pairs_spoil_only_what_pair_spoils_lists() {
        for a in [b' ', b'/', b'*', b'-'] {
            assert!(SPOILS[usize::from(a)] & PAIR_START != 0);
            for b in 0..=255u8 {
                assert_eq!(pair(a, b) & !PAIR_SPOILS, 0, "{a} {b}");
            }
        }
        let starts = (0..=255u8).filter(|&a| SPOILS[usize::from(a)] & PAIR_START != 0).count();
        assert_eq!(starts, 4);
    }

    #[test]
    fn case_mappings_are_always_idle_up_to_case() {
        let long = vec![b'A'; FOLD_SIGN_MAX + 1];
        assert_eq!(unchanged_but_case(&long), CASE_MAPS);
        let u = unchanged_but_case(b"Mozilla/5.0 (X11; Linux x86_64)");
        assert!(u & bit(T::Lowercase) != 0 && u & bit(T::UrlDecodeUni) != 0);
        assert!(u & bit(T::CmdLine) == 0, "upper case and `;` for cmdLine");
        assert!(unchanged_but_case(b"a%41") & bit(T::UrlDecodeUni) == 0);
    }

    proptest::proptest! {
        /// A chain of transformations proven to change a value in case at most returns it
        /// equal up to ASCII case, in any order and with repeats.
        #[test]
        fn proven_up_to_case_means_equal_up_to_case(
            value in value_of(),
            picks in proptest::collection::vec(proptest::num::usize::ANY, 1..5),
        ) {
            let chain = chain_of(unchanged_but_case(&value), &picks);
            let out = crate::transform::apply_chain(&chain, &value);
            proptest::prop_assert!(out.eq_ignore_ascii_case(&value), "{:?}", chain);
        }

        /// A chain of case mappings and transformations proven idle from bytes that are not
        /// letters returns the value in the case of its last case mapping.
        #[test]
        fn exact_chains_are_their_last_case_map(
            value in value_of(),
            picks in proptest::collection::vec(proptest::num::usize::ANY, 1..5),
        ) {
            let chain = chain_of(exact_up_to_case(proven(&value)), &picks);
            let want = match last_case_map(&chain) {
                Some(T::Lowercase) => value.to_ascii_lowercase(),
                Some(_) => value.to_ascii_uppercase(),
                None => value.clone(),
            };
            let out = crate::transform::apply_chain(&chain, &value);
            proptest::prop_assert_eq!(out.as_ref(), want.as_slice(), "{:?}", chain);
        }

        /// A transformation proven to leave a value unchanged returns it unchanged.
        #[test]
        fn proven_unchanged_means_unchanged(value in value_of()) {
            let u = unchanged(&value);
            for t in covered() {
                if u & bit(t) != 0 {
                    let out = crate::transform::apply(t, &value);
                    proptest::prop_assert_eq!(out.as_ref(), value.as_slice(), "{:?}", t);
                }
            }
        }
    }
}
