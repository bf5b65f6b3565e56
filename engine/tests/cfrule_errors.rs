//! Malformed Cloudflare-style rules: each must fail with the right kind, at the right line
//! and column, and display as `file:line:col: error: ...` with the source line and a caret.

use waf_engine::cfrule::{MAX_DEPTH, MAX_REGEX_LEN, ParseErrorKind, parse};

/// (source, expected kind, line, column).
fn cases() -> Vec<(&'static str, ParseErrorKind, u32, u32)> {
    use ParseErrorKind::*;
    vec![
        ("rule 1 m\n  FOO is a\n  deny", UnknownVariable("FOO".into()), 2, 3),
        ("rule 1 m\n  ARGS equals a\n  deny", UnknownOperator("equals".into()), 2, 8),
        (
            "rule 1 m\n  ARGS|lowercas contains a\n  deny",
            UnknownTransformation("lowercas".into()),
            2,
            8,
        ),
        ("rule 1 m\n  ARGS|none contains a\n  deny", NoneTransformation, 2, 8),
        ("rule 1 m\n  ARGS is a\n  reject", UnknownAction("reject".into()), 3, 3),
        ("rule 1 m\n  ARGS is a)\n  deny", UnmatchedCloseParen, 2, 12),
        ("rule 1 m\n  (ARGS is a\n  deny", UnclosedParen, 2, 3),
        ("rule 1 m\n  ((ARGS is a)\n  deny", UnclosedParen, 2, 3),
        ("rule 1 m\n  ARGS is \"a b\n  deny", UnterminatedString, 2, 11),
        ("rule 1 m\n  ARGS:/abc is a\n  deny", UnterminatedSelector, 2, 8),
        ("rule 1 m\n  ARGS in { a b\n", UnterminatedList, 2, 11),
        ("rule 1 m\n  ARGS in { }\n  deny", EmptyList, 2, 11),
        ("rule 1 m\n  ARGS contains-any { a \"b c\" }\n  deny", SpaceInPhrase("b c".into()), 2, 25),
        ("rule 1 m\n  ARGS matches a(b\n  deny", BadRegex("unclosed group".into()), 2, 16),
        ("rule 1 m\n  ARGS:/a(/ is x\n  deny", BadRegex("unclosed group".into()), 2, 9),
        ("rule\n  ARGS is a\n  deny", MissingId, 1, 5),
        ("rule Attack\n  ARGS is a\n  deny", MissingId, 1, 6),
        ("rule 0 m\n  ARGS is a\n  deny", BadId("0".into()), 1, 6),
        ("rule 12x m\n  ARGS is a\n  deny", BadId("12x".into()), 1, 6),
        (
            "rule 5 a\n ARGS is a\n deny\nrule 5 b\n ARGS is b\n deny",
            DuplicateId { id: 5, first_line: 1 },
            4,
            6,
        ),
        ("rule 1 m\n  REQUEST_URI:x is a\n  deny", NotACollection("REQUEST_URI".into()), 2, 3),
        ("rule 1 m\n  &ARGS gt ten\n  deny", BadNumber("ten".into()), 2, 12),
        ("rule 1 m\n  REMOTE_ADDR in { 10.0.0.0/33 }\n  deny", BadIp("10.0.0.0/33".into()), 2, 20),
        ("rule 1 m\n  ARGS is a\n  deny 999", BadStatus("999".into()), 3, 8),
        ("rule 1 m\n  ARGS is a\n  deny phase 9", BadPhase("9".into()), 3, 14),
        (
            "rule 1 m\n  ARGS is a\n  deny allow",
            ConflictingActions("deny".into(), "allow".into()),
            3,
            8,
        ),
        (
            "rule 1 m\n  ARGS is a\n  log nolog deny",
            ConflictingActions("log".into(), "nolog".into()),
            3,
            7,
        ),
        ("rule 1 m\n  ARGS is a\n  score 1 score 2", DuplicateAction("score".into()), 3, 11),
        ("rule 1 m\n  ARGS is a\n", MissingAction, 3, 1),
        (
            "rule 1 m\n  ARGS is a\n  REQUEST_URI is b\n  deny",
            Expected { expected: "`and` or `or` between clauses", found: "`REQUEST_URI`".into() },
            3,
            3,
        ),
        (
            "rule 1 m\n  ARGS is\n",
            Expected { expected: "a value", found: "end of input".into() },
            3,
            1,
        ),
        (
            "rule 1 m\n  ARGS matches\n  deny",
            Expected {
                expected: "a regex on the same line as `matches`",
                found: "end of line".into(),
            },
            2,
            15,
        ),
        (
            "rule 1 m\n  ARGS is a and\n  deny",
            Expected { expected: "a condition", found: "action `deny`".into() },
            3,
            3,
        ),
        (
            "rule 1 m\n  ARGS is a and REQUEST_URI\n",
            Expected { expected: "an operator", found: "end of input".into() },
            3,
            1,
        ),
        ("deny\n", Expected { expected: "`rule`", found: "`deny`".into() }, 1, 1),
        (
            "rule 1 m\n  ARGS:\n",
            Expected { expected: "a key after `:`", found: "end of input".into() },
            2,
            8,
        ),
        (
            "rule 1 m\n  ARGS is a and\n",
            Expected { expected: "a condition", found: "end of input".into() },
            3,
            1,
        ),
    ]
}

#[test]
fn error_kind_and_position() {
    for (src, kind, line, col) in cases() {
        let e = parse(src, "bad.rules").expect_err(src);
        match (&e.kind, &kind) {
            // The regex crate's wording is long; the start is enough to know the cause.
            (ParseErrorKind::BadRegex(got), ParseErrorKind::BadRegex(want)) => {
                assert!(got.contains(want.as_str()), "{src:?}: {got}");
            }
            _ => assert_eq!(e.kind, kind, "{src:?}\n{e}"),
        }
        assert_eq!((e.line, e.col), (line, col), "{src:?}\n{e}");
        assert_eq!(e.file, "bad.rules");
    }
}

#[test]
fn display_has_location_source_line_and_caret() {
    let src = "rule 100 Probe\n  REQUEST_URI contains /x and\n  ARGS equals a\n  deny\n";
    let e = parse(src, "site.rules").unwrap_err();
    assert_eq!(e.rule, Some(100));
    assert_eq!(
        e.to_string(),
        "site.rules:3:8: error: unknown operator `equals` (expected is, is-not, has-prefix, \
         has-suffix, contains, contains-word, contains-any, matches, in, eq, gt, ge, lt or le) \
         (in rule 100)\n    ARGS equals a\n         ^"
    );
}

#[test]
fn caret_counts_characters_not_bytes() {
    let e = parse("rule 1 m\n  ARGS is é FOO\n", "u.rules").unwrap_err();
    assert_eq!((e.line, e.col), (2, 13));
    assert!(e.to_string().ends_with("  ARGS is é FOO\n              ^"), "{e}");
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for opener in ["(", "not ", "not ("] {
        let src = format!("rule 1 m\n{} ARGS is a\n deny", opener.repeat(100_000));
        let e = parse(&src, "deep.rules").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::TooDeep(MAX_DEPTH), "{opener}");
        assert_eq!(e.line, 2);
    }
    // Exactly at the limit is fine.
    let src = format!(
        "rule 1 m\n{}ARGS is a{}\n deny",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    parse(&src, "ok.rules").unwrap();
}

#[test]
fn hostile_regexes_are_refused_quickly() {
    let n = MAX_REGEX_LEN / 3 - 1;
    for pattern in [
        "[".repeat(n),
        "(?=".repeat(n),
        "\\".repeat(n | 1),
        "[[:".repeat(n),
        "a".repeat(MAX_REGEX_LEN + 1),
    ] {
        let src = format!("rule 1 m\n ARGS matches {pattern}\n deny");
        let e = parse(&src, "re.rules").unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::BadRegex(_)), "{}", e.kind);
        let src = format!("rule 1 m\n ARGS:/{}/ is a\n deny", pattern.replace('/', ""));
        assert!(parse(&src, "re.rules").is_err());
    }
}
