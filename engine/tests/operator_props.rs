//! Property tests for hostile input: no operator panics, hangs or errors on arbitrary bytes;
//! the PCRE translator refuses or accepts any pattern text without panicking; and the two regex
//! engines (linear `regex`, backtracking `fancy-regex`) agree on simple patterns both can run.

use proptest::prelude::*;
use waf_engine::ir::{DataFile, MacroPart, MacroString, OperatorKind, Variable};
use waf_engine::operator::{Captures, CompiledOperator, RxMatcher};

fn with_macro() -> MacroString {
    MacroString { parts: vec![MacroPart::Var { var: Variable::Tx, key: Some("x".into()) }] }
}

fn operators() -> Vec<CompiledOperator> {
    let lit = |s: &str| MacroString::literal(s);
    let kinds = vec![
        OperatorKind::Rx(lit(r"(?i)(?:union\s+select|<script\b)")),
        OperatorKind::Rx(lit(r"(?<!&(?:amp))\bfoo\b|(a)\1")),
        OperatorKind::Rx(with_macro()),
        OperatorKind::Pm(vec!["select".into(), "union".into(), "<".into()]),
        OperatorKind::PmFromFile(DataFile { path: "x".into(), entries: vec!["abc".into()] }),
        OperatorKind::IpMatch(vec!["10.0.0.0/8".into(), "::1".into()]),
        OperatorKind::Eq(lit("5")),
        OperatorKind::Ge(with_macro()),
        OperatorKind::Gt(lit("-1")),
        OperatorKind::Le(lit("99999999999999999999")),
        OperatorKind::Lt(lit("0")),
        OperatorKind::StrEq(lit("abc")),
        OperatorKind::StrMatch(lit("b")),
        OperatorKind::BeginsWith(with_macro()),
        OperatorKind::EndsWith(lit("z")),
        OperatorKind::Contains(lit("\0")),
        OperatorKind::ContainsWord(lit("or")),
        OperatorKind::ContainsWord(with_macro()),
        OperatorKind::Within(with_macro()),
        OperatorKind::DetectSqli,
        OperatorKind::DetectXss,
        OperatorKind::ValidateByteRange(vec![(1, 255)]),
        OperatorKind::ValidateUrlEncoding,
        OperatorKind::ValidateUtf8Encoding,
        OperatorKind::VerifyCc(r"\d{13,16}".into()),
        OperatorKind::VerifyCpf(r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}".into()),
        OperatorKind::VerifySsn(r"\d{3}-?\d{2}-?\d{4}".into()),
        OperatorKind::Rbl("x".into()),
        OperatorKind::GeoLookup,
        OperatorKind::UnconditionalMatch,
        OperatorKind::NoMatch,
        OperatorKind::InList(vec!["a".into()]),
    ];
    kinds.iter().map(|k| CompiledOperator::compile(k).expect("compiles")).collect()
}

/// Simple patterns in the common subset: literals, classes, shorthands, anchors,
/// quantifiers, groups and alternation.
fn simple_pattern() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        "[a-c]".prop_map(String::from),
        Just(".".to_string()),
        Just(r"\d".to_string()),
        Just(r"\w".to_string()),
        Just(r"\s".to_string()),
        Just(r"\W".to_string()),
        Just("[^a]".to_string()),
        Just("[a-c0-1]".to_string()),
        Just(r"\x80".to_string()),
        Just(r"\n".to_string()),
        Just("{".to_string()),
    ];
    let piece = (
        atom,
        prop_oneof![
            Just(""),
            Just("*"),
            Just("+"),
            Just("?"),
            Just("*?"),
            Just("{1,2}"),
            Just("{2}"),
        ],
    )
        .prop_map(|(a, q)| format!("{a}{q}"));
    let seq = prop::collection::vec(piece, 1..5).prop_map(|v| v.concat());
    let with_anchors = (
        prop_oneof![Just(""), Just("^"), Just(r"\b")],
        seq,
        prop_oneof![Just(""), Just("$"), Just(r"\b")],
    )
        .prop_map(|(a, s, b)| format!("{a}{s}{b}"));
    prop::collection::vec(with_anchors, 1..3).prop_map(|alts| {
        let body = alts.join("|");
        format!("(?:{body})(a)?")
    })
}

fn subject() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b'a'),
            Just(b'b'),
            Just(b'c'),
            Just(b'0'),
            Just(b' '),
            Just(b'\n'),
            Just(0x80u8),
            Just(0xe9u8),
            any::<u8>()
        ],
        0..24,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_operator_panics_on_arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..300),
                                            arg in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut caps = Captures::new();
        for op in operators() {
            let expanded = op.needs_expansion().then_some(&arg[..]);
            // Err is only allowed for a match limit, which these small inputs never reach.
            let r = op.matches(&input, expanded, Some(&mut caps));
            prop_assert!(r.is_ok(), "{} errored", op.name());
        }
    }

    #[test]
    fn translator_never_panics(pattern in "\\PC{0,40}") {
        // Accept or refuse, both fine; and an accepted pattern runs.
        if let Ok(re) = RxMatcher::new(&pattern) {
            let _ = re.matches(b"abc\n\xff", None);
        }
    }

    #[test]
    fn translator_never_panics_on_regex_alphabet(pattern in "[\\\\()\\[\\]{}^$.|*+?a-d0-9:=!<>#'PQEkgxc,-]{0,30}") {
        if let Ok(re) = RxMatcher::new(&pattern) {
            let mut caps = Captures::new();
            let _ = re.matches(b"ab{1}\n[x]", Some(&mut caps));
            let _ = re.find_at(b"ab{1}\n[x]", 2);
            let _ = re.search_all(b"ab{1}\n[x]");
        }
    }

    #[test]
    fn engines_agree_on_simple_patterns(pattern in simple_pattern(), input in subject()) {
        let linear = RxMatcher::new(&pattern).expect("simple patterns compile");
        prop_assert!(!linear.is_backtracking(), "{pattern}");
        let fancy = RxMatcher::new_backtracking(&pattern).expect("fallback compiles");
        let (mut a, mut b) = (Captures::new(), Captures::new());
        let ra = linear.matches(&input, Some(&mut a)).unwrap();
        let rb = fancy.matches(&input, Some(&mut b)).unwrap();
        prop_assert_eq!(ra, rb, "{} on {:?}", pattern, input);
        if ra {
            prop_assert_eq!(a.groups(), b.groups(), "{} on {:?}", pattern, input);
        }
        for start in [0, 1, 3] {
            prop_assert_eq!(linear.find_at(&input, start).unwrap(), fancy.find_at(&input, start).unwrap(), "{} at {}", pattern, start);
        }
    }
}
