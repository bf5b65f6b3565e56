//! Property tests for `waf_engine::transform`: hostile bytes never panic, output sizes stay
//! bounded, `apply` borrows whenever the value is unchanged, idempotent transformations are
//! idempotent, and `apply_chain` is the fold of `apply`.

use std::borrow::Cow;

use proptest::prelude::*;
use waf_engine::ir::Transformation;
use waf_engine::transform::{apply, apply_chain};

/// Largest output a transformation may produce for `n` input bytes.
fn max_len(t: Transformation, n: usize) -> usize {
    use Transformation as T;
    match t {
        T::Sha1 => 20,
        T::Md5 => 16,
        T::Length => 20,
        T::HexEncode => 2 * n,
        T::UrlEncode => 3 * n,
        T::Base64Encode => n.div_ceil(3) * 4,
        // A 2-byte overlong sequence becomes `%u00xx` plus its lead byte: 7 bytes for 2.
        T::Utf8ToUnicode => n * 7 / 2 + 1,
        // Everything else only removes or shrinks.
        _ => n,
    }
}

/// Bytes that the decoders care about, mixed with arbitrary bytes.
fn hostile() -> impl Strategy<Value = Vec<u8>> {
    let special = prop::sample::select(
        b"%uU+&#;xX0123456789abcdefABCDEF\\/.*-<!>=' \"^,\t\n\r\x0b\x00\xc2\xa0\xc3\xe2\x82\xf0\x9f\xff\x80"
            .to_vec(),
    );
    prop::collection::vec(prop_oneof![3 => special, 1 => any::<u8>()], 0..256)
}

fn transformation() -> impl Strategy<Value = Transformation> {
    prop::sample::select(Transformation::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_stays_bounded(t in transformation(), input in hostile()) {
        let out = apply(t, &input);
        prop_assert!(out.len() <= max_len(t, input.len()), "{t:?}: {} bytes from {}", out.len(), input.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(t in transformation(), input in prop::collection::vec(any::<u8>(), 0..512)) {
        let out = apply(t, &input);
        prop_assert!(out.len() <= max_len(t, input.len()));
    }

    #[test]
    fn borrowed_when_unchanged(t in transformation(), input in hostile()) {
        use Transformation as T;
        // Digests and `length` compute a new value even when it happens to equal the input
        // (`length` of "1" is "1").
        prop_assume!(!matches!(t, T::Sha1 | T::Md5 | T::Length));
        let out = apply(t, &input);
        if *out == input[..] {
            prop_assert!(matches!(out, Cow::Borrowed(_)), "{t:?} allocated for an unchanged value");
        }
    }

    #[test]
    fn idempotent_where_modsecurity_is(input in hostile()) {
        use Transformation as T;
        for t in [
            T::Lowercase, T::Uppercase, T::Trim, T::TrimLeft, T::TrimRight, T::RemoveNulls,
            T::ReplaceNulls, T::RemoveWhitespace, T::CompressWhitespace, T::ParityZero7bit,
            T::CmdLine, T::None,
        ] {
            let once = apply(t, &input).into_owned();
            let twice = apply(t, &once);
            prop_assert_eq!(&*twice, &once[..], "{:?} is not idempotent", t);
            prop_assert!(matches!(twice, Cow::Borrowed(_)));
        }
    }

    #[test]
    fn chain_is_fold_of_apply(ts in prop::collection::vec(transformation(), 0..5), input in hostile()) {
        let mut want = input.clone();
        for &t in &ts {
            want = apply(t, &want).into_owned();
        }
        prop_assert_eq!(&*apply_chain(&ts, &input), &want[..]);
    }
}

/// Linear time on large pathological inputs: 64 KiB of each pattern through every
/// transformation must finish quickly (a quadratic step would take minutes).
#[test]
fn large_hostile_inputs_are_linear() {
    let patterns: &[&[u8]] = &[
        b"%",
        b"%u",
        b"%uff",
        b"&#",
        b"&#x",
        b"&",
        b"\\",
        b"\\0",
        b"/../",
        b"./",
        b"//",
        b"/*",
        b"*/",
        b"<!--",
        b"--",
        b"\xc3",
        b"\xe2\x82",
        b"\x00",
        b" \t",
        b"0x",
        b"0x41",
        b"=",
        b"^ ",
    ];
    let start = std::time::Instant::now();
    for p in patterns {
        let input: Vec<u8> = p.iter().copied().cycle().take(1 << 16).collect();
        for &t in Transformation::ALL {
            let out = apply(t, &input);
            assert!(out.len() <= max_len(t, input.len()));
        }
    }
    // Generous even for a debug build on a loaded 2-core VM.
    assert!(start.elapsed().as_secs() < 120, "took {:?}", start.elapsed());
}
