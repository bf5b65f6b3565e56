//! Printer: exact output for the reference rule, cfrule -> IR -> cfrule -> IR identity for
//! hand-written and generated rules (the default rule set included), and clear refusals
//! for IR that has no Cloudflare-style equivalent.

use proptest::prelude::*;
use waf_engine::cfrule::{PrintErrorKind, parse, print};
use waf_engine::default_rules;
use waf_engine::ir::{
    Action, Condition, Ctl, Directive, MacroPart, MacroString, Marker, Operator, OperatorKind,
    Rule, RuleSet, Selector, Target, Variable,
};

fn stripped(mut set: RuleSet) -> RuleSet {
    set.strip_locations();
    set
}

/// Parses, prints, parses again: both IRs must be equal, and printing is a fixed point.
fn assert_round_trip(src: &str) -> String {
    let first = parse(src, "a.rules").unwrap_or_else(|e| panic!("{e}\n{src}"));
    let printed = print(&first).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let second =
        parse(&printed, "b.rules").unwrap_or_else(|e| panic!("{e}\n--- printed:\n{printed}"));
    assert_eq!(
        stripped(first),
        stripped(second.clone()),
        "--- source:\n{src}\n--- printed:\n{printed}"
    );
    assert_eq!(print(&second).unwrap(), printed, "printing is a fixed point");
    printed
}

#[test]
fn datastore_prints_as_written() {
    let src = "rule 100000 DataStore Attack\n   REQUEST_HEADERS:User-Agent has-prefix DataStore/ and\n   REQUEST_METHOD is GET and\n   REQUEST_URI matches \\/\\?-?\\d+=-?\\d+\n     deny\n";
    assert_eq!(
        assert_round_trip(src),
        "rule 100000 DataStore Attack\n    REQUEST_HEADERS:User-Agent has-prefix DataStore/\n    and REQUEST_METHOD is GET\n    and REQUEST_URI matches \\/\\?-?\\d+=-?\\d+\n    deny\n"
    );
}

#[test]
fn hand_written_rules_round_trip() {
    let cases = [
        "rule 1 m\n REQUEST_METHOD is-not GET\n deny 405",
        "rule 2\n not ARGS|lowercase contains x\n block score 4",
        "rule 3 m\n ARGS matches ^a\n and ARGS_NAMES matches b$\n or REQUEST_URI matches \"c d \"\n pass log",
        "rule 4 m\n (ARGS matches ^x\n or ARGS is y) and not (REQUEST_URI is a or REQUEST_URI is b)\n deny",
        "rule 5 m\n REMOTE_ADDR in { 10.0.0.0/8 ::1 } and ARGS in { \"1.1\" x \"a b\" }\n allow",
        "rule 6 m\n REQUEST_HEADERS:\"X A\",ARGS:/^p\\/q$/,&ARGS|urlDecodeUni|trim gt 3\n allow-phase nolog",
        "rule 7 m\n ARGS contains-any { a \"b(c)\" \"\\\"q\\\"\" }\n allow-request log",
        "rule 8 Response check\n RESPONSE_STATUS ge 500\n pass log phase 5",
        "rule 9 m\n REQUEST_URI is \"#hash\" and ARGS is \"\" and ARGS is \"f(x)\" and ARGS is a\\b\n deny nolog",
        "rule 10 m\n not not (ARGS is a or ARGS is b)\n deny",
        "rule 11 m\n ARGS matches (?<=a)b\n deny phase 1",
        "rule 12 m\n REQUEST_URI is a\n deny\nrule 13 n\n REQUEST_URI is b\n pass",
    ];
    for src in cases {
        assert_round_trip(src);
    }
}

#[test]
fn default_cfrule_rules_round_trip() {
    let printed = assert_round_trip(default_rules::CFRULE);
    assert!(printed.contains("rule 100000 DataStore Attack"));
}

fn rule_with(targets: Vec<Target>, kind: OperatorKind, actions: Vec<Action>) -> RuleSet {
    let mut all = vec![Action::Id(942100), Action::Phase(2)];
    all.extend(actions);
    RuleSet {
        directives: vec![Directive::Rule(Rule {
            targets,
            operator: Some(Operator { negated: false, kind }),
            condition: None,
            actions: all,
            chain: None,
            loc: None,
        })],
        ..RuleSet::default()
    }
}

#[test]
fn inexpressible_ir_is_refused_by_name() {
    let args = || vec![Target::whole(Variable::Args)];
    let lit = |s: &str| MacroString::literal(s);
    let cases: Vec<(RuleSet, &str)> = vec![
        (
            rule_with(args(), OperatorKind::DetectSqli, vec![Action::Block]),
            "rule 942100: operator @detectSQLi has no equivalent",
        ),
        (
            rule_with(
                vec![
                    Target::whole(Variable::Args),
                    Target { exclude: true, ..Target::key(Variable::Args, "q") },
                ],
                OperatorKind::Rx(lit("x")),
                vec![Action::Block],
            ),
            "rule 942100: target exclusion `!ARGS:q` has no equivalent",
        ),
        (
            rule_with(args(), OperatorKind::Rx(lit("x")), vec![Action::SkipAfter("END".into())]),
            "action `skip_after`",
        ),
        (
            rule_with(
                args(),
                OperatorKind::Rx(lit("x")),
                vec![Action::Ctl(Ctl::RuleRemoveById(vec![]))],
            ),
            "action `ctl`",
        ),
        (
            rule_with(args(), OperatorKind::Rx(lit("x")), vec![Action::Tag(lit("t"))]),
            "action `tag`",
        ),
        (
            rule_with(
                args(),
                OperatorKind::StrEq(MacroString {
                    parts: vec![MacroPart::Var { var: Variable::Tx, key: Some("x".into()) }],
                }),
                vec![Action::Deny],
            ),
            "macro expansion `%{TX.x}`",
        ),
        (
            rule_with(args(), OperatorKind::Rx(lit("x")), vec![Action::Status(500), Action::Block]),
            "`status` without `deny`",
        ),
        (
            rule_with(args(), OperatorKind::Rx(lit("x")), vec![Action::Chain]),
            "`chain` on the last link",
        ),
        (
            RuleSet {
                directives: vec![Directive::Marker(Marker { name: "END".into(), loc: None })],
                ..RuleSet::default()
            },
            "directive `SecMarker` has no equivalent",
        ),
        (
            {
                let mut s = rule_with(args(), OperatorKind::Rx(lit("x")), vec![Action::Deny]);
                if let Directive::Rule(r) = &mut s.directives[0] {
                    r.actions.retain(|a| !matches!(a, Action::Id(_)));
                }
                s
            },
            "the rule has no id",
        ),
        (
            {
                let mut s = rule_with(vec![], OperatorKind::Rx(lit("x")), vec![Action::Pass]);
                if let Directive::Rule(r) = &mut s.directives[0] {
                    r.operator = None;
                }
                s
            },
            "SecAction",
        ),
        (
            {
                let mut s = rule_with(vec![], OperatorKind::Rx(lit("x")), vec![Action::Deny]);
                if let Directive::Rule(r) = &mut s.directives[0] {
                    r.operator = None;
                    r.condition =
                        Some(Condition::Not(Box::new(Condition::Clause(waf_engine::ir::Clause {
                            targets: args(),
                            transformations: vec![],
                            operator: Operator {
                                negated: false,
                                kind: OperatorKind::Contains(lit("a")),
                            },
                        }))));
                }
                s
            },
            "a boolean `not` over a single clause",
        ),
        (
            rule_with(
                vec![Target {
                    selector: Some(Selector::Regex("a/b".into())),
                    ..Target::whole(Variable::Args)
                }],
                OperatorKind::Rx(lit("x")),
                vec![Action::Deny],
            ),
            "regex selector `a/b`",
        ),
    ];
    for (set, want) in cases {
        let e = print(&set).expect_err(want);
        let text = e.to_string();
        assert!(text.contains(want), "want {want:?}, got {text:?}");
        assert!(!matches!(e.kind, PrintErrorKind::TooDeep(_)));
    }
}

#[test]
fn deep_conditions_from_json_are_refused() {
    let mut c = Condition::Clause(waf_engine::ir::Clause {
        targets: vec![Target::whole(Variable::Args)],
        transformations: vec![],
        operator: Operator {
            negated: false,
            kind: OperatorKind::Contains(MacroString::literal("a")),
        },
    });
    // Linear nesting (each level adds one group), deeper than the printer's cap.
    for i in 0..200 {
        let leaf = Condition::Clause(waf_engine::ir::Clause {
            targets: vec![Target::whole(Variable::Args)],
            transformations: vec![],
            operator: Operator {
                negated: false,
                kind: OperatorKind::Contains(MacroString::literal("b")),
            },
        });
        c = if i % 2 == 0 { Condition::Any(vec![c, leaf]) } else { Condition::All(vec![c, leaf]) };
    }
    let set = RuleSet {
        directives: vec![Directive::Rule(Rule {
            targets: vec![],
            operator: None,
            condition: Some(c),
            actions: vec![Action::Id(1), Action::Deny],
            chain: None,
            loc: None,
        })],
        ..RuleSet::default()
    };
    let e = print(&set).unwrap_err();
    assert!(matches!(e.kind, PrintErrorKind::TooDeep(_)), "{e}");
}

// ---- property tests --------------------------------------------------------------------

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn target() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "ARGS",
        "ARGS_NAMES",
        "REQUEST_URI",
        "REQUEST_HEADERS:User-Agent",
        "REQUEST_HEADERS:\"X y\"",
        "ARGS:/^a\\d/",
        "&ARGS",
        "TX:score",
        "RESPONSE_STATUS",
        "REQUEST_BODY",
        "request_method",
    ])
    .prop_map(str::to_string)
}

fn targets() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(target(), 1..3),
        prop::collection::vec(
            prop::sample::select(vec![
                "lowercase",
                "urlDecodeUni",
                "htmlEntityDecode",
                "trim",
                "normalisePath",
                "LENGTH",
            ]),
            0..3,
        ),
    )
        .prop_map(|(ts, tr)| {
            let mut s = ts.join(",");
            for t in tr {
                s.push('|');
                s.push_str(t);
            }
            s
        })
}

fn value() -> impl Strategy<Value = String> {
    "[ -~\t]{0,10}".prop_map(|v| quote(&v))
}

fn ipv4() -> impl Strategy<Value = String> {
    (any::<[u8; 4]>(), prop::option::of(0u8..=32)).prop_map(|(a, p)| {
        let ip = std::net::Ipv4Addr::from(a).to_string();
        p.map_or(ip.clone(), |p| format!("{ip}/{p}"))
    })
}

fn clause() -> impl Strategy<Value = String> {
    let op = prop_oneof![
        (
            prop::sample::select(vec![
                "is",
                "is-not",
                "has-prefix",
                "has-suffix",
                "contains",
                "contains-word"
            ]),
            value()
        )
            .prop_map(|(o, v)| format!("{o} {v}")),
        (prop::sample::select(vec!["eq", "gt", "ge", "lt", "le"]), -1000i64..1000)
            .prop_map(|(o, n)| format!("{o} {n}")),
        "[ -~]{0,8}".prop_map(|s| format!("matches {}", quote(&regex::escape(&s)))),
        prop::sample::select(vec!["^a+$", "(?i)sel\\s+ect", "[0-9]{2,}", "(?<!x)y"])
            .prop_map(|r| format!("matches {}", quote(r))),
        prop::collection::vec(value(), 1..4).prop_map(|v| format!("in {{ {} }}", v.join(" "))),
        prop::collection::vec(ipv4(), 1..4).prop_map(|v| format!("in {{ {} }}", v.join(" "))),
        prop::collection::vec("[!-~]{1,10}".prop_map(|v| quote(&v)), 1..4)
            .prop_map(|v| format!("contains-any {{ {} }}", v.join(" "))),
    ];
    (any::<bool>(), targets(), op)
        .prop_map(|(not, t, o)| format!("{}{t} {o}", if not { "not " } else { "" }))
}

fn expr() -> impl Strategy<Value = String> {
    clause().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| format!("({})", v.join("\n and "))),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|v| format!("({})", v.join(" or\n "))),
            inner.prop_map(|e| format!("not {e}")),
        ]
    })
}

fn actions() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "deny",
            "deny 404",
            "block",
            "pass",
            "allow",
            "allow-request",
            "allow-phase",
            "",
        ]),
        prop::sample::select(vec!["", "log", "nolog"]),
        prop::option::of(0u32..20),
        prop::option::of(1u8..=5),
    )
        .prop_map(|(d, l, s, p)| {
            let mut v: Vec<String> =
                [d, l].iter().filter(|x| !x.is_empty()).map(|x| x.to_string()).collect();
            if let Some(s) = s {
                v.push(format!("score {s}"));
            }
            if let Some(p) = p {
                v.push(format!("phase {p}"));
            }
            if v.is_empty() {
                v.push("pass".into());
            }
            v.join(" ")
        })
}

fn rules() -> impl Strategy<Value = String> {
    prop::collection::vec(("[A-Za-z]([A-Za-z0-9 #]{0,15}[a-z])?", expr(), actions()), 1..4)
        .prop_map(|rs| {
            rs.iter()
                .enumerate()
                .map(|(i, (m, e, a))| format!("rule {} {m}\n  {e}\n  {a}\n", i + 1))
                .collect::<Vec<_>>()
                .join("\n")
        })
}

/// Words of the language, to build hostile input that gets past the first token.
fn hostile() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "rule",
            "1",
            "42",
            "m",
            "ARGS",
            "&ARGS",
            "ARGS:/x/",
            "ARGS:",
            ":",
            "/",
            "is",
            "in",
            "matches",
            "(",
            ")",
            "{",
            "}",
            "\"",
            "\\",
            "not",
            "and",
            "or",
            "deny",
            "404",
            "log",
            "score",
            "phase",
            "|lowercase",
            "|",
            ",",
            "#",
            "\n",
            "10.0.0.1/8",
            "::",
            "é",
            "\t",
            "\r\n",
            "",
        ]),
        0..40,
    )
    .prop_map(|v| v.join(" "))
}

/// Whatever parses also prints and parses back to the same IR.
fn check_any(src: &str) {
    if let Ok(set) = parse(src, "p.rules") {
        let printed = print(&set).unwrap_or_else(|e| panic!("{e}\n{src:?}"));
        let again = parse(&printed, "p.rules").unwrap_or_else(|e| panic!("{e}\n{printed}"));
        assert_eq!(stripped(set), stripped(again), "{src:?}\n{printed}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_rules_round_trip(src in rules()) {
        let first = parse(&src, "g.rules").map_err(|e| TestCaseError::fail(format!("{e}\n{src}")))?;
        let printed = print(&first).map_err(|e| TestCaseError::fail(format!("{e}\n{src}")))?;
        let second = parse(&printed, "g.rules").map_err(|e| TestCaseError::fail(format!("{e}\n{printed}")))?;
        prop_assert_eq!(stripped(first), stripped(second), "{}\n---\n{}", src, printed);
    }

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,200}") {
        check_any(&src);
    }

    #[test]
    fn token_soup_never_panics(src in hostile()) {
        check_any(&src);
    }
}

#[test]
fn or_and_not_groups_print_with_connectives_leading() {
    let src = "rule 100010 POST with neither Content-Type nor Transfer-Encoding\n   REQUEST_METHOD is POST and\n   not (&REQUEST_HEADERS:Content-Type gt 0 or &REQUEST_HEADERS:Transfer-Encoding gt 0)\n   block score 3\n";
    assert_eq!(
        assert_round_trip(src),
        "rule 100010 POST with neither Content-Type nor Transfer-Encoding\n    REQUEST_METHOD is POST\n    and not (&REQUEST_HEADERS:Content-Type gt 0\n    or &REQUEST_HEADERS:Transfer-Encoding gt 0)\n    block score 3\n"
    );
}

/// A SecLang rule without `phase:` runs in phase 1 (libmodsecurity3's default); printed as a
/// Cloudflare-style rule over a phase 2 variable, it must say `phase 1` rather than let the
/// parser infer phase 2.
#[test]
fn seclang_rule_without_a_phase_keeps_phase_1() {
    let set =
        waf_engine::seclang::parse_str("SecRule ARGS_POST \"@rx x\" \"id:7,deny\"\n", "t.conf")
            .expect("parses");
    let printed = print(&set).expect("prints");
    assert!(printed.contains("phase 1"), "{printed}");
    let back = parse(&printed, "b.rules").expect("parses back");
    let phases: Vec<Option<u8>> = back
        .directives
        .iter()
        .filter_map(|d| match d {
            Directive::Rule(r) => Some(r.phase()),
            _ => None,
        })
        .collect();
    assert_eq!(phases, vec![Some(1)]);
}
