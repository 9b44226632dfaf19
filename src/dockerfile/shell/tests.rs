//! Ported from BuildKit's shell lexer tests (frontend/dockerfile/shell: the `envVarTest` table
//! and `TestProcessWithMatches`, Apache-2.0), for the Unix rows: `input => expected`, where
//! `error` means the word must not expand.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The environment of BuildKit's table: PWD, SHELL, KOREAN set, NULL set but empty.
const TABLE: &[(&str, &str)] = &[
    ("hello", "hello"),
    ("he'll'o", "hello"),
    ("he'llo", "error"),
    (r"he\'llo", "he'llo"),
    (r"he\\'llo", "error"),
    (r"abc\tdef", "abctdef"),
    (r#""abc\tdef""#, r"abc\tdef"),
    (r#""abc\\tdef""#, r"abc\tdef"),
    (r"'abc\tdef'", r"abc\tdef"),
    (r"hello\", "hello"),
    (r"hello\\", r"hello\"),
    (r#""hello"#, "error"),
    (r#""hello\""#, "error"),
    (r#""hel'lo""#, "hel'lo"),
    ("'hello", "error"),
    (r"'hello\'", r"hello\"),
    (r"'hello\there'", r"hello\there"),
    (r"'hello\\there'", r"hello\\there"),
    (r#""''""#, "''"),
    ("$.", "$."),
    ("he$1x", "hex"),
    ("he$.x", "he$.x"),
    ("he$pwd.", "he."),
    ("he$PWD", "he/home"),
    (r"he\$PWD", "he$PWD"),
    (r"he\\$PWD", r"he\/home"),
    (r#""he\$PWD""#, "he$PWD"),
    (r#""he\\$PWD""#, r"he\/home"),
    (r"\${}", "${}"),
    (r"\${}aaa", "${}aaa"),
    (r"he\${}", "he${}"),
    (r"he\${}xx", "he${}xx"),
    ("${}", "error"),
    ("${}aaa", "error"),
    ("he${}", "error"),
    ("he${}xx", "error"),
    ("he${hi}", "he"),
    ("he${hi}xx", "hexx"),
    ("he${PWD}", "he/home"),
    ("he${.}", "error"),
    ("he${XXX:-000}xx", "he000xx"),
    ("he${PWD:-000}xx", "he/homexx"),
    ("he${XXX:-$PWD}xx", "he/homexx"),
    ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
    ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
    ("he${XXX:YYY}", "error"),
    ("he${XXX?}", "error"),
    ("he${XXX:?}", "error"),
    ("he${PWD?}", "he/home"),
    ("he${PWD:?}", "he/home"),
    ("he${NULL?}", "he"),
    ("he${NULL:?}", "error"),
    ("he${XXX:+${PWD}}xx", "hexx"),
    ("he${PWD:+${XXX}}xx", "hexx"),
    ("he${PWD:+${SHELL}}xx", "hebashxx"),
    ("he${XXX:+000}xx", "hexx"),
    ("he${PWD:+000}xx", "he000xx"),
    ("'he${XX}'", "he${XX}"),
    (r#""he${PWD}""#, "he/home"),
    (r#""he'$PWD'""#, "he'/home'"),
    (r#""$PWD""#, "/home"),
    ("'$PWD'", "$PWD"),
    (r"'\$PWD'", r"\$PWD"),
    (r#"'"hello"'"#, r#""hello""#),
    (r"'he\$PWD'", r"he\$PWD"),
    ("he${PWD", "error"),
    ("he${PWD:=000}xx", "error"),
    ("he${PWD:+${PWD}:}xx", "he/home:xx"),
    (r"he${XXX:-\$PWD:}xx", "he$PWD:xx"),
    (r"he${XXX:-\${PWD}z}xx", "he${PWDz}xx"),
    ("안녕하세요", "안녕하세요"),
    ("안'녕'하세요", "안녕하세요"),
    ("안'녕하세요", "error"),
    (r"안녕\'하세요", "안녕'하세요"),
    ("안녕${XXX:-${YYY:-yyy}}xx", "안녕yyyxx"),
    ("$KOREAN", "한국어"),
    ("안녕$KOREAN", "안녕한국어"),
    ("${{aaa}", "error"),
    ("${aaa}}", "}"),
    ("${aaa", "error"),
    ("${{aaa:-bbb}", "error"),
    ("${aaa:-bbb}}", "bbb}"),
    ("${aaa:-bbb", "error"),
    ("${aaa:-bbb}", "bbb"),
    ("${aaa:-${bbb:-ccc}}", "ccc"),
    ("${aaa:-bbb ${foo}", "error"),
    ("${aaa:-bbb {foo}", "bbb {foo"),
    ("${:}", "error"),
    ("${:-bbb}", "error"),
    ("${:+bbb}", "error"),
    // Positional and special parameters are never set in a Dockerfile.
    ("$1", ""),
    ("${1}", ""),
    ("${1:+bbb}", ""),
    ("${1:-bbb}", "bbb"),
    ("$999aaa", "aaa"),
    ("${999}aaa", "aaa"),
    ("${999:+bbb}aaa", "aaa"),
    ("${999:-bbb}aaa", "bbbaaa"),
    ("$001aaa", "aaa"),
    ("${001:-bbb}", "bbb"),
    ("$@", ""),
    ("${@:-bbb}", "bbb"),
    ("$@@@", "@@"),
    ("$@aaa", "aaa"),
    ("${@:+bbb}aaa", "aaa"),
    ("$*", ""),
    ("${*:-bbb}", "bbb"),
    ("$#", ""),
    ("${#}", ""),
    ("${#:+bbb}", ""),
    ("${#:-bbb}", "bbb"),
    ("$?", ""),
    ("${?:-bbb}", "bbb"),
    ("$-", ""),
    ("${-:-bbb}", "bbb"),
    ("$$", ""),
    ("${$:+bbb}", ""),
    ("$!", ""),
    ("${!:-bbb}", "bbb"),
    ("$0", ""),
    ("${0:-bbb}", "bbb"),
];

#[test]
fn buildkit_env_var_table() {
    let env = vars(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    let mut failures = Vec::new();
    for (input, expected) in TABLE {
        let got = expand(input, '\\', &env);
        let ok = match (*expected, &got) {
            ("error", Err(_)) => true,
            (want, Ok(v)) => want == v,
            _ => false,
        };
        if !ok {
            failures.push(format!("{input:?}: want {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Input, variables, expected (None: an error).
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
);

/// `TestProcessWithMatches`.
#[test]
fn buildkit_modifier_cases() {
    let cases: &[Case] = &[
        ("x ${UNUSED}", &[], Some("x ")),
        (
            "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("xxx  ccc"),
        ),
        (
            "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("xxx bbb ccc"),
        ),
        ("${FOO:-}", &[], Some("")),
        (
            "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("aaa bbb "),
        ),
        (
            "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("aaa  "),
        ),
        ("${BAR?bbb}", &[("BAR", "")], Some("")),
        ("${BAZ?ccc}", &[], None),
        ("${BAR:?bbb}", &[("BAR", "")], None),
        ("${FOO=aaa}", &[("FOO", "xxx")], None),
        ("${FOO=}", &[], None),
        (
            r"${FOO#()[]{\}^$.\*\?|\\}",
            &[("FOO", r"()[]{}^$.*?|\x")],
            Some("x"),
        ),
        (r"${FOO%%\**}", &[("FOO", "xx**")], Some("xx")),
        ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y")),
        ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy")),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Some("xyy")),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Some("xxyy")),
        ("${FOO#}", &[("FOO", "xxyy")], Some("xxyy")),
        ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy")),
        ("${FOO##}", &[("FOO", "xxyy")], Some("xxyy")),
        (r"${FOO#?\?}", &[("FOO", "???y")], Some("?y")),
        (
            "${ABC:-.}${FOO%x}${ABC:-.}",
            &[("FOO", "xxyy")],
            Some(".xxyy."),
        ),
        (r"${FOO%%\**\*}", &[("FOO", "a***yy*")], Some("a")),
        ("${FOO%}", &[("FOO", "xxyy")], Some("xxyy")),
        (
            "${FOO%%$BAR}",
            &[("FOO", "xxyy"), ("BAR", "")],
            Some("xxyy"),
        ),
        ("${FOO:#}", &[], None),
        ("${FOO:##}", &[], None),
        ("${FOO:%}", &[], None),
        ("${FOO:%%}", &[], None),
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", r"\*/")],
            Some("/foo.*/*.txt - /foo..*.txt"),
        ),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
            Some("/tmp/bar.txt - /bar.txt"),
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
            &[
                ("FOO", "/a/foo/b/c.txt"),
                ("NEEDLE", "/?/"),
                ("REPLACEMENT", "/"),
            ],
            Some("/foo/b/c.txt - /foo/c.txt"),
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT}",
            &[
                ("FOO", "http://google.de"),
                ("NEEDLE", "http://"),
                ("REPLACEMENT", "https://"),
            ],
            Some("https://google.de"),
        ),
        (
            r"${FOO//\//\/}",
            &[("FOO", "/tmp/foo.txt")],
            Some(r"\/tmp\/foo.txt"),
        ),
        (
            "${FOO/$BAR/ww}",
            &[("FOO", "xxyy"), ("BAR", "")],
            Some("wwxxyy"),
        ),
        ("${FOO//ww}", &[("FOO", "xxyy")], None),
        ("${FOO//}", &[("FOO", "xxyy")], None),
        ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy")),
        ("${FOO///}", &[], Some("")),
    ];
    for (input, env, expected) in cases {
        let got = expand(input, '\\', &vars(env));
        match expected {
            Some(want) => assert_eq!(got.as_deref(), Ok(*want), "{input}"),
            None => assert!(got.is_err(), "{input}: want an error, got {got:?}"),
        }
    }
}

#[test]
fn mandatory_variables_carry_their_message() {
    let word = "${VAR:?message here$ARG}";
    let err = expand(word, '\\', &vars(&[("VAR", ""), ("ARG", "x")])).unwrap_err();
    assert!(err.contains("message herex"), "{err}");
    let ok = expand("${VAR?m}", '\\', &vars(&[("VAR", "")]));
    assert_eq!(ok.as_deref(), Ok(""));
}

#[test]
fn backtick_escape() {
    let env = vars(&[("A", "x")]);
    assert_eq!(expand("a`$A", '`', &env).as_deref(), Ok("a$A"));
    assert_eq!(expand(r"C:\dir\$A", '`', &env).as_deref(), Ok(r"C:\dir\x"));
}

#[test]
fn overriding_variables() {
    assert_eq!(overriding_variable("$BASE"), Some("BASE"));
    assert_eq!(overriding_variable("${BASE}"), Some("BASE"));
    assert_eq!(overriding_variable("${BASE:-r/b:1}"), Some("BASE"));
    assert_eq!(overriding_variable("${O:-${D}}"), Some("O"));
    assert_eq!(overriding_variable("${O-${D:-x}}"), Some("O"));
    assert_eq!(overriding_variable("${O:+x}"), None);
    assert_eq!(overriding_variable("${REG}/base:1"), None);
    assert_eq!(overriding_variable("$REG/base"), None);
    assert_eq!(overriding_variable("${A:-x}${B}"), None);
    assert_eq!(overriding_variable("${1}"), None);
    assert_eq!(overriding_variable("base"), None);
}

#[test]
fn nesting_is_bounded() {
    let nested =
        |n: usize, open: &str, close: &str| format!("{}x{}", open.repeat(n), close.repeat(n));
    let ok = nested(MAX_NESTING, "${A:-\"", "\"}");
    assert_eq!(expand(&ok, '\\', &vars(&[])).unwrap(), "x");
    assert!(!too_deep(&ok, '\\'));
    // One more level, or 20,000 in a 120 kB line, is an error, not a stack overflow.
    for n in [MAX_NESTING + 1, 20_000] {
        for (open, close) in [
            ("${A:-", "}"),
            ("${A/", "/}"),
            ("${A#", "}"),
            ("${A:+\"", "\"}"),
        ] {
            let word = nested(n, open, close);
            let err = expand(&word, '\\', &vars(&[("A", "a")])).unwrap_err();
            assert!(err.contains("nested more than 100 levels"), "{open}: {err}");
            assert!(too_deep(&word, '\\'), "{open}");
        }
    }
    // Whatever the values: an unset `${B:?}` before the nesting does not hide it.
    let word = format!("${{B:?}}{}", nested(MAX_NESTING + 1, "${A:-", "}"));
    assert!(too_deep(&word, '\\'));
    // Braces the lexer does not read as `${` (escaped, quoted) do not count.
    let word = nested(MAX_NESTING + 1, "\\${A:-", "}");
    assert!(!too_deep(&word, '\\'));
}

#[test]
fn many_stars_match_in_polynomial_time() {
    // Many stars against a text none of them fits: O(pattern × text), not exponential.
    let stars = Glob::parse(&format!("{}b", "*a".repeat(30))).unwrap();
    assert!(!stars.matches(&"a".repeat(200)));
    assert!(stars.matches(&format!("{}b", "a".repeat(200))));
    let glob = |p: &str, t: &str| Glob::parse(p).unwrap().matches(t);
    assert!(glob("a*b?d*", "axxbcd"));
    assert!(glob("*", ""));
    assert!(!glob("?", ""));
    assert!(glob("**a", "a"));
    assert!(!glob("a*b", "a"));
}

#[test]
fn long_patterns_match_without_recursion() {
    // A pattern as long as a Dockerfile line: one token per character.
    let long = "a".repeat(100_000);
    assert!(Glob::parse(&long).unwrap().matches(&long));
    assert!(!Glob::parse(&long).unwrap().matches(&long[1..]));
}
