//! String comparison operators: `@streq`, `@beginsWith`, `@endsWith`, `@contains`,
//! `@containsWord`, `@within`, `@strmatch`.
//!
//! Each takes the input value and the (already macro-expanded) argument as bytes and answers
//! like its libmodsecurity3 3.0.9 counterpart in src/operators/*.cc. All comparisons are
//! case-sensitive and byte-wise (`std::string::compare` / `find`).

use memchr::memmem;

/// `@streq`: the whole input equals the argument.
pub fn str_eq(input: &[u8], arg: &[u8]) -> bool {
    input == arg
}

/// `@beginsWith`. An empty argument matches everything (`compare(0, 0, "")`).
pub fn begins_with(input: &[u8], arg: &[u8]) -> bool {
    input.starts_with(arg)
}

/// `@endsWith`.
pub fn ends_with(input: &[u8], arg: &[u8]) -> bool {
    input.ends_with(arg)
}

/// `@contains` and `@strmatch` (v3 implements both as `find`): the argument occurs in the
/// input. An empty argument is found at offset 0.
pub fn contains(input: &[u8], arg: &[u8]) -> bool {
    memmem::find(input, arg).is_some()
}

/// `@within`: the input occurs in the argument. v3 (within.cc) answers true for an empty
/// input before looking at the argument.
pub fn within(input: &[u8], arg: &[u8]) -> bool {
    input.is_empty() || memmem::find(arg, input).is_some()
}

/// A `@within` argument prepared for many inputs: its bytes and how often each byte value
/// occurs in it. An input is looked for only where its rarest byte (rarest in the argument)
/// occurs, and is known absent at once when one of its bytes never occurs there.
///
/// `memmem::find` prepares the needle (the input) on every call instead: about 580
/// instructions for an argument of 64 bytes or more (CRS's `restricted_headers`,
/// `restricted_extensions`, ...), more than the search itself.
#[derive(Debug)]
pub struct Haystack {
    bytes: Vec<u8>,
    counts: Box<[u32; 256]>,
}

impl Haystack {
    /// The longest input looked for by its rarest byte.
    pub const SHORT: usize = 64;

    pub fn new(bytes: &[u8]) -> Haystack {
        let mut counts = Box::new([0u32; 256]);
        for &b in bytes {
            counts[usize::from(b)] += 1;
        }
        Haystack { bytes: bytes.to_vec(), counts }
    }

    /// The argument.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `within(input, self.bytes())`.
    ///
    /// Inputs longer than [`Haystack::SHORT`] go to `memmem` (linear time whatever the
    /// bytes; its set-up is then small beside the input): comparing at every occurrence of
    /// the rarest byte costs up to the argument's length times the input's.
    pub fn within(&self, input: &[u8]) -> bool {
        let h = &self.bytes;
        if input.is_empty() {
            return true;
        }
        if input.len() > h.len() {
            return false;
        }
        if input.len() > Self::SHORT {
            return within(input, h);
        }
        // The rarest byte (the first of equals), or "no" at the first byte the argument lacks:
        // most inputs are not within, and most of those hold such a byte early.
        let (mut k, mut rarest) = (0, u32::MAX);
        for (i, &b) in input.iter().enumerate() {
            let c = self.counts[usize::from(b)];
            if c < rarest {
                if c == 0 {
                    return false;
                }
                (k, rarest) = (i, c);
            }
        }
        // Occurrences of input[k] at h[k + q] for every start q with room for the input.
        let last_start = h.len() - input.len();
        memchr::memchr_iter(input[k], &h[k..=k + last_start])
            .any(|q| &h[q..q + input.len()] == input)
    }
}

/// `@containsWord`: the argument occurs in the input delimited by non-letters.
///
/// Mirrors contains_word.cc exactly, quirks included: only ASCII letters count as word
/// characters (digits and `_` are boundaries), the end of the string is a boundary only
/// through the dedicated "ends at the end" test, an empty argument always matches and an
/// empty input never does.
pub fn contains_word(input: &[u8], arg: &[u8]) -> bool {
    if arg.is_empty() {
        return true;
    }
    if input.is_empty() {
        return false;
    }
    if input == arg {
        return true;
    }
    // `acceptableChar(a, pos)`: false past the end (and for pos = -1, which wraps), false
    // for a letter, true otherwise.
    let boundary = |pos: Option<usize>| match pos.and_then(|p| input.get(p)) {
        Some(b) => !b.is_ascii_alphabetic(),
        None => false,
    };
    let finder = memmem::Finder::new(arg);
    let mut from = 0;
    while let Some(rel) = finder.find(&input[from..]) {
        let pos = from + rel;
        let after = pos + arg.len();
        let before = pos.checked_sub(1);
        if pos == 0 && boundary(Some(arg.len())) {
            return true;
        }
        if after == input.len() && boundary(before) {
            return true;
        }
        if boundary(before) && boundary(Some(after)) {
            return true;
        }
        from = pos + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// The prepared argument answers as `within` (memmem) does, inputs drawn from the
        /// argument's own bytes and from bytes it lacks, at every length around its own.
        #[test]
        fn a_prepared_haystack_answers_as_within(
            hay in proptest::collection::vec(proptest::sample::select(b"ab/-.x".to_vec()), 0..160),
            cut in (0usize..160, 0usize..80),
            other in proptest::collection::vec(proptest::sample::select(b"ab/z".to_vec()), 0..8),
            take_cut in proptest::bool::ANY,
        ) {
            let h = super::Haystack::new(&hay);
            let input: Vec<u8> = if take_cut && !hay.is_empty() {
                let a = cut.0 % hay.len();
                hay[a..(a + cut.1).min(hay.len())].to_vec()
            } else {
                other
            };
            proptest::prop_assert_eq!(h.within(&input), super::within(&input, &hay), "{:?} in {:?}", input, hay);
        }
    }

    use super::*;

    #[test]
    fn table() {
        type F = fn(&[u8], &[u8]) -> bool;
        type Case<'a> = (&'a str, F, &'a [u8], &'a [u8], bool);
        // (name, operator, input, argument, expected)
        let cases: &[Case<'_>] = &[
            ("streq", str_eq, b"abc", b"abc", true),
            ("streq case", str_eq, b"abc", b"ABC", false),
            ("streq empty", str_eq, b"", b"", true),
            ("streq nul", str_eq, b"a\0b", b"a\0b", true),
            ("begins", begins_with, b"abc", b"ab", true),
            ("begins empty arg", begins_with, b"abc", b"", true),
            ("begins longer arg", begins_with, b"ab", b"abc", false),
            ("ends", ends_with, b"abc", b"bc", true),
            ("ends empty input", ends_with, b"", b"a", false),
            ("ends invalid utf8", ends_with, b"a\xff", b"\xff", true),
            ("contains", contains, b"xxabcxx", b"abc", true),
            ("contains empty arg", contains, b"", b"", true),
            ("contains no", contains, b"ab", b"abc", false),
            ("within", within, b"GET", b"GET POST", true),
            ("within no", within, b"PUT", b"GET POST", false),
            ("within empty input", within, b"", b"GET", true),
            ("within empty arg", within, b"x", b"", false),
            ("word alone", contains_word, b"select", b"select", true),
            ("word spaced", contains_word, b"a select b", b"select", true),
            ("word start", contains_word, b"select b", b"select", true),
            ("word end", contains_word, b"a select", b"select", true),
            ("word inside", contains_word, b"preselected", b"select", false),
            ("word digits bound", contains_word, b"1select2", b"select", true),
            ("word underscore bound", contains_word, b"_select_", b"select", true),
            ("word second hit", contains_word, b"selects select", b"select", true),
            ("word empty arg", contains_word, b"", b"", true),
            ("word empty input", contains_word, b"", b"x", false),
            ("word letter after", contains_word, b"selectx", b"select", false),
        ];
        for (name, f, input, arg, want) in cases {
            assert_eq!(f(input, arg), *want, "{name}");
        }
    }
}
