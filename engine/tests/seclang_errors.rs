//! Malformed SecLang: every kind of bad input gives an error with the right message and
//! position (file:line:col, rule id, source line, caret), never a panic, and stays fast.

use std::time::{Duration, Instant};
use waf_engine::seclang::{ParseErrorKind, ParseErrors, parse_file, parse_str};

fn errors(src: &str) -> ParseErrors {
    match parse_str(src, "t.conf") {
        Ok(set) => panic!("expected an error for {src:?}, got {set:?}"),
        Err(e) => e,
    }
}

#[test]
fn each_bad_input_is_reported_where_it_is() {
    // (source, line, col, rule id, message fragment)
    let cases: &[(&str, u32, u32, Option<u64>, &str)] = &[
        ("SecRul ARGS \"x\" \"id:1\"", 1, 1, Some(1), "unknown directive `SecRul`"),
        ("SecRule ARGZ \"@rx x\" \"id:2\"", 1, 9, Some(2), "unknown variable `ARGZ`"),
        ("SecRule ARGS|REQUEST_HEADERZ:x \"@rx x\" \"id:2\"", 1, 14, Some(2), "unknown variable"),
        ("SecRule ARGS \"@rxx x\" \"id:3\"", 1, 15, Some(3), "unknown operator `@rxx`"),
        ("SecRule ARGS \"@rx x\" \"id:4,phase:2,blok\"", 1, 36, Some(4), "unknown action `blok`"),
        (
            "SecRule ARGS \"@rx x\" \"id:5,t:lowercas\"",
            1,
            30,
            Some(5),
            "unknown transformation `lowercas`",
        ),
        ("SecRule ARGS \"@rx x\" \"id:6,msg:'oops\"", 1, 32, Some(6), "unterminated quoted string"),
        ("SecRule ARGS \"@rx x", 1, 14, None, "unterminated quoted string"),
        ("SecRule ARGS \"@rx a(b\" \"id:7\"", 1, 20, Some(7), "invalid regular expression"),
        ("SecRule ARGS \"@rx [a-\" \"id:8\"", 1, 19, Some(8), "invalid regular expression"),
        (
            "SecRule ARGS \"@pmFromFile no-such-file.data\" \"id:9\"",
            1,
            27,
            Some(9),
            "cannot read data file",
        ),
        ("Include /nonexistent/wafbench/x.conf", 1, 9, None, "cannot include"),
        (
            "SecRule ARGS \"@rx x\" \"id:10,chain\"",
            1,
            29,
            Some(10),
            "rule has `chain` but no rule follows",
        ),
        (
            "SecRule ARGS \"@rx x\" \"id:11,chain\"\nSecMarker X",
            1,
            29,
            Some(11),
            "must be followed by SecRule or SecAction, found `SecMarker`",
        ),
        (
            "SecRule ARGS \"@rx x\" \\\n    \"id:12,\\\n    phase:7\"",
            3,
            11,
            Some(12),
            "bad value for `phase`",
        ),
        ("SecRuleEngine Maybe", 1, 15, None, "not On, Off or DetectionOnly"),
        ("SecRequestBodyLimit lots", 1, 21, None, "not a number"),
        (
            "SecRule ARGS \"@validateByteRange 1-256\" \"id:13\"",
            1,
            34,
            Some(13),
            "not a byte value",
        ),
        ("SecRule ARGS \"@rx %{tx.a\" \"id:14\"", 1, 19, Some(14), "unterminated macro"),
        ("SecRule ARGS \"@rx x\" \"id:15\" extra", 1, 30, Some(15), "expects"),
        ("SecRule ARGS \"@rx x\" \"phase:1,pass\"", 1, 9, None, "rule has no `id`"),
        ("SecAction \"phase:1,pass\"", 1, 11, None, "rule has no `id`"),
        // libmodsecurity3 refuses the file: "Disruptive actions can only be specified by
        // chain starter rules." (`block` is accepted: `block_in_a_chained_rule_is_accepted`.)
        (
            "SecRule ARGS \"@rx x\" \"id:16,phase:1,chain\"\nSecRule ARGS \"@rx y\" \"t:none,deny\"",
            2,
            30,
            None,
            "disruptive action `deny` in a chained rule",
        ),
        (
            "SecRule ARGS \"@rx x\" \"id:17,chain\"\nSecRule ARGS \"@rx y\" \"chain\"\n\
             SecRule ARGS \"@rx z\" \"Pass\"",
            3,
            23,
            None,
            "disruptive action `pass`",
        ),
        // libmodsecurity3's grammar has no operator without its parameter, nor an empty one.
        ("SecRule ARGS \"@pm\" \"id:21\"", 1, 15, Some(21), "`@pm` needs an argument"),
        ("SecRule ARGS \"@eq \" \"id:22\"", 1, 15, Some(22), "`@eq` needs an argument"),
        ("SecRule ARGS \"!\" \"id:23\"", 1, 16, Some(23), "`@rx` needs an argument"),
        // Action lists in double quotes, as v3's grammar wants (a SecRule may have one bare
        // action).
        ("SecAction id:27,phase:1,pass", 1, 11, Some(27), "expects a quoted action list"),
        ("SecDefaultAction phase:1,log,deny", 1, 18, None, "expects a quoted action list"),
        (
            "SecRule ARGS \"@rx a\" id:28,phase:1,deny",
            1,
            22,
            Some(28),
            "its actions in double quotes when there are several",
        ),
        // libmodsecurity3's parser refuses these too (seclang-parser.yy, driver.cc).
        ("SecDefaultAction \"phase:1,log,deny,t:none\"", 1, 36, None, "cannot hold `t:none`"),
        ("SecDefaultAction \"phase:2,rev:3,deny\"", 1, 27, None, "cannot hold `rev`"),
        ("SecDefaultAction \"phase:2,log,block\"", 1, 19, None, "must have a disruptive action"),
        (
            "SecDefaultAction \"log,pass\"\nSecDefaultAction \"phase:1,log,deny\"",
            2,
            19,
            None,
            "a second SecDefaultAction for phase 1",
        ),
        (
            "SecRule ARGS \"@rx x\" \"id:19,phase:1,pass\"\nSecRule ARGS \"@rx y\" \"phase:2,id:19\"",
            2,
            31,
            Some(19),
            "rule id 19 is used by an earlier SecRule",
        ),
    ];
    for (src, line, col, id, msg) in cases {
        let errs = errors(src);
        assert_eq!(errs.len(), 1, "{src:?}: {errs}");
        let e = &errs.0[0];
        assert_eq!((e.line, e.col, e.rule_id), (*line, *col, *id), "{src:?}: {e}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("t.conf:{line}:{col}: error: ")), "{text}");
        assert!(text.contains(msg), "{src:?}: {text}");
        // The caret sits under the reported column of the shown source line.
        let shown: Vec<&str> = text.lines().collect();
        assert_eq!(shown.len(), 3, "{text}");
        assert_eq!(shown[2].find('^'), Some(2 + *col as usize - 1), "{text}");
    }
}

#[test]
fn one_typo_among_many_rules_is_reported_alone() {
    let mut src = String::new();
    for i in 1..=600 {
        let action = if i == 345 { "pas" } else { "pass" };
        src.push_str(&format!(
            "SecRule ARGS:a{i} \"@rx ^x{i}$\" \\\n    \"id:{i},phase:2,{action},t:none\"\n\n"
        ));
    }
    let errs = errors(&src);
    assert_eq!(errs.len(), 1, "{errs}");
    let e = &errs.0[0];
    assert_eq!((e.line, e.rule_id), (345 * 3 - 1, Some(345)));
    assert!(matches!(&e.kind, ParseErrorKind::UnknownAction(a) if a == "pas"));
}

#[test]
fn all_errors_of_a_file_are_collected() {
    let errs = errors(
        "SecRule A \"x\" \"id:1\"\nSecMarker ok\nSecFoo bar\nSecRule ARGS \"@rx (\" \"id:2,t:x,nolog,blok\"\n",
    );
    let at: Vec<(u32, u32)> = errs.iter().map(|e| (e.line, e.col)).collect();
    // Every bad piece of the last rule is reported: the regex, then both bad actions.
    assert_eq!(at, [(1, 9), (3, 1), (4, 19), (4, 30), (4, 38)]);
}

#[test]
fn includes_are_relative_capped_and_cycle_checked() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir(p.join("sub")).unwrap();
    std::fs::write(p.join("sub/a.conf"), "SecMarker A\n").unwrap();
    std::fs::write(p.join("sub/b.conf"), "SecMarker B\n").unwrap();
    std::fs::write(p.join("sub/words.data"), "one\ntwo\n").unwrap();
    std::fs::write(p.join("sub/rules.conf"), "SecRule ARGS \"@pmFromFile words.data\" \"id:1\"\n")
        .unwrap();
    std::fs::write(
        p.join("main.conf"),
        "Include sub/[ab].conf\nInclude \"sub/rules.conf\"\nIncludeOptional sub/none-*.conf\n",
    )
    .unwrap();
    let set = parse_file(&p.join("main.conf")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.directives.len(), 3);
    let loc = set.rules().next().unwrap().loc.clone().unwrap();
    assert!(loc.file.ends_with("sub/rules.conf"), "{loc}");

    std::fs::write(p.join("loop.conf"), "SecMarker L\nInclude loop.conf\n").unwrap();
    let errs = parse_file(&p.join("loop.conf")).unwrap_err();
    assert!(matches!(errs.0[0].kind, ParseErrorKind::IncludeCycle(_)), "{errs}");
    assert_eq!((errs.0[0].line, errs.0[0].col), (2, 9));

    // Two files including each other through different names still end: cycle or depth.
    std::fs::write(p.join("x.conf"), "Include ./y.conf\n").unwrap();
    std::fs::write(p.join("y.conf"), "Include ./sub/../x.conf\n").unwrap();
    let errs = parse_file(&p.join("x.conf")).unwrap_err();
    assert!(
        errs.iter().any(|e| matches!(
            e.kind,
            ParseErrorKind::IncludeCycle(_) | ParseErrorKind::IncludeDepth(_)
        )),
        "{errs}"
    );
}

#[test]
fn a_one_megabyte_rule_line_is_fast() {
    let big = "a".repeat(1 << 20);
    let ok = format!("SecRule ARGS \"@rx {big}\" \"id:1,msg:'{big}',tag:'{big}'\"");
    let t = Instant::now();
    let set = parse_str(&ok, "big.conf").unwrap();
    assert_eq!(set.rules().count(), 1);
    let bad = format!("SecRule ARGS \"@rx {big}(\" \"id:2,msg:'{big}\"");
    let errs = errors(&bad);
    assert!(matches!(errs.0[0].kind, ParseErrorKind::BadRegex(_)), "{}", errs.0[0].kind);
    assert!(errs.to_string().len() < 1000, "message stays short");
    let unbalanced = format!("SecRule ARGS \"@rx {}", "\\\"".repeat(1 << 19));
    assert!(matches!(errors(&unbalanced).0[0].kind, ParseErrorKind::UnbalancedQuote));
    let many_quotes = format!("SecRule ARGS:{} \"@rx x\" \"id:3\"", "'".repeat(1 << 20));
    let _ = parse_str(&many_quotes, "q.conf");
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
}

/// `block` in a later chain link is no disruptive action to v3's parser (it resolves to the
/// phase default at run time): libmodsecurity3 loads such a file, and so do we.
#[test]
fn block_in_a_chained_rule_is_accepted() {
    // A SecAction may reuse a SecRule's id and the other way round: v3 compares SecRules only.
    let ids = "SecAction \"id:20,phase:1,pass\"\nSecRule ARGS \"@rx y\" \"id:20,phase:1,pass\"\n\
        SecAction \"id:20,phase:2,pass\"";
    assert!(parse_str(ids, "t.conf").is_ok());
    // Operators without a parameter take none; `@rx  ` is a one-space pattern.
    let bare = "SecRule ARGS \"@detectSQLi\" \"id:24,phase:1,pass\"\n\
        SecRule ARGS \"@unconditionalMatch\" \"id:25,phase:1,pass\"\n\
        SecRule ARGS \"@rx  \" \"id:26,phase:1,pass\"";
    assert!(parse_str(bare, "t.conf").is_ok());
    // A `#` where an argument would start begins a comment, as in v3; one inside quotes
    // does not. A single bare action is an action list.
    let commented = "SecRuleEngine On # why\n\
        SecRule ARGS \"@rx a#b\" \"id:29,phase:1,pass,msg:#1\" # why\n\
        SecAction \"id:30,phase:1,pass\"#why\n\
        SecMarker M # why\n\
        SecRule ARGS \"@rx a\" id:31";
    let set = parse_str(commented, "t.conf").expect("comments after arguments");
    assert_eq!(set.directives.len(), 5, "{set:?}");
    let src =
        "SecRule ARGS \"@rx x\" \"id:18,phase:1,deny,chain\"\nSecRule ARGS \"@rx y\" \"block\"";
    assert!(parse_str(src, "t.conf").is_ok());
}
