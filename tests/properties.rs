//! Properties that must hold for every config, checked on generated ones (proptest).

use std::collections::BTreeSet;

use proptest::prelude::*;

const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

fn plan(config: &str, dockerfiles: &[String]) -> Result<mab::Plan, mab::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    for d in dockerfiles {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
        std::fs::write(dir.path().join(d).join("Dockerfile"), "FROM scratch\n").unwrap();
    }
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let path = dir.path().join("multiarch.toml");
    std::fs::write(&path, config).unwrap();
    mab::plan_file(&path, &[], &mab::Selection::default())
}

/// Sizes of the matrix keys, platform indexes, excludes (per-key value indexes, platform) and
/// includes (fresh value index, platform).
type MatrixCase = (
    Vec<usize>,
    Vec<usize>,
    Vec<(Vec<usize>, usize)>,
    Vec<(usize, Option<usize>)>,
);

/// A matrix (1 to 3 keys of 0 to 3 values), platforms, distinct fully-specified excludes and
/// includes of values the matrix does not have.
fn matrix_case() -> impl Strategy<Value = MatrixCase> {
    (
        prop::collection::vec(0usize..4, 1..4),
        prop::sample::subsequence(vec![0usize, 1, 2], 1..=3),
    )
        .prop_flat_map(|(sizes, platforms)| {
            let combos: usize = sizes.iter().product();
            let n_platforms = platforms.len();
            let excludes = prop::collection::btree_set(
                (0..combos.max(1), 0..n_platforms),
                0..=(combos * n_platforms).min(6),
            )
            .prop_map(move |set| {
                set.into_iter()
                    .filter(|(c, _)| *c < combos)
                    .collect::<Vec<_>>()
            });
            let includes =
                prop::collection::btree_set((0usize..3, prop::option::of(0..n_platforms)), 0..3)
                    .prop_map(|set| {
                        // One include per fresh value.
                        let mut seen = BTreeSet::new();
                        set.into_iter()
                            .filter(|(v, _)| seen.insert(*v))
                            .collect::<Vec<_>>()
                    });
            (Just(sizes), Just(platforms), excludes, includes)
        })
        .prop_map(|(sizes, platforms, excludes, includes)| {
            // Turn a combination index into its per-key value indexes.
            let decode = |mut c: usize| {
                sizes
                    .iter()
                    .map(|s| {
                        let v = c % s;
                        c /= s;
                        v
                    })
                    .collect::<Vec<_>>()
            };
            let excludes = excludes.into_iter().map(|(c, p)| (decode(c), p)).collect();
            (sizes, platforms, excludes, includes)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn matrix_yields_product_minus_excluded_plus_included((sizes, platforms, excludes, includes) in matrix_case()) {
        let keys: Vec<String> = (0..sizes.len()).map(|k| format!("k{k}")).collect();
        let value = |k: usize, v: usize| format!("v{k}x{v}");
        let platform_list: Vec<&str> = platforms.iter().map(|&p| PLATFORMS[p]).collect();
        let matrix: Vec<String> = sizes.iter().enumerate().map(|(k, &s)| {
            let vals: Vec<String> = (0..s).map(|v| format!("\"{}\"", value(k, v))).collect();
            format!("{} = [{}]", keys[k], vals.join(", "))
        }).collect();
        let exclude: Vec<String> = excludes.iter().map(|(vals, p)| {
            let mut fields: Vec<String> = vals.iter().enumerate().map(|(k, &v)| format!("{} = \"{}\"", keys[k], value(k, v))).collect();
            fields.push(format!("platform = \"{}\"", platform_list[*p]));
            format!("{{ {} }}", fields.join(", "))
        }).collect();
        // Fresh values (index 9+) so an include never repeats a matrix combination.
        let include: Vec<String> = includes.iter().map(|(v, p)| {
            let mut fields: Vec<String> = keys.iter().enumerate().map(|(k, key)| format!("{key} = \"{}\"", value(k, 9 + v))).collect();
            if let Some(p) = p {
                fields.push(format!("platform = \"{}\"", platform_list[*p]));
            }
            format!("{{ {} }}", fields.join(", "))
        }).collect();
        let name = keys.iter().map(|k| format!("{{{{ matrix.{k} }}}}")).collect::<Vec<_>>().join("-");
        let platforms_toml: Vec<String> = platform_list.iter().map(|p| format!("\"{p}\"")).collect();
        let config = format!(
            "[defaults]\nregistry = \"r.io/a\"\ntags = [\"{name}\"]\n[builder]\noci_labels = false\n[images.m]\nname = \"m-{name}\"\nplatforms = [{}]\nmatrix = {{ {} }}\nexclude = [{}]\ninclude = [{}]\n",
            platforms_toml.join(", "), matrix.join(", "), exclude.join(", "), include.join(", ")
        );
        let plan = plan(&config, &[]).map_err(|e| TestCaseError::fail(format!("{e}\n{config}")))?;
        let product: usize = sizes.iter().product::<usize>() * platform_list.len();
        let included: usize = includes.iter().map(|(_, p)| if p.is_some() { 1 } else { platform_list.len() }).sum();
        prop_assert_eq!(plan.builds.len(), product - excludes.len() + included, "{}", config);
        // One manifest list per instance that has a platform left.
        let instances: BTreeSet<&str> = plan.builds.iter().map(|b| b.image.as_str()).collect();
        prop_assert_eq!(plan.manifests.len(), instances.len());
    }

    #[test]
    fn plan_order_respects_every_dependency(
        deps in prop::collection::vec(prop::collection::btree_set(0usize..12, 0..4), 1..12),
        platform_set in prop::sample::subsequence(vec![0usize, 1, 2], 1..=3),
    ) {
        // Image i depends only on images before it, so the graph is acyclic; every image builds
        // the same platforms, so every dependency has the dependent's platforms.
        let n = deps.len();
        let platforms: Vec<&str> = platform_set.iter().map(|&p| PLATFORMS[p]).collect();
        let platforms_toml: Vec<String> = platforms.iter().map(|p| format!("\"{p}\"")).collect();
        let mut config = format!("[defaults]\nregistry = \"r.io/a\"\ntags = [\"1\"]\nplatforms = [{}]\n[builder]\noci_labels = false\n", platforms_toml.join(", "));
        let mut dirs = Vec::new();
        for (i, ds) in deps.iter().enumerate() {
            let on: Vec<String> = ds.iter().filter(|&&d| d < i).map(|d| format!("\"img{d}\"")).collect();
            config.push_str(&format!("[images.img{i}]\ncontext = \"img{i}\"\ndepends_on = [{}]\n", on.join(", ")));
            dirs.push(format!("img{i}"));
        }
        let plan = plan(&config, &dirs).map_err(|e| TestCaseError::fail(format!("{e}\n{config}")))?;
        prop_assert_eq!(plan.builds.len(), n * platforms.len());
        let mut done = BTreeSet::new();
        for b in &plan.builds {
            for d in &b.depends_on {
                prop_assert!(done.contains(d), "{} before its dependency {}", b.id, d);
                prop_assert!(d.ends_with(&b.platform.slug()), "{} waits for {} of another platform", b.id, d);
            }
            done.insert(b.id.clone());
        }
        for (i, ds) in deps.iter().enumerate() {
            let want: BTreeSet<String> = ds.iter().filter(|&&d| d < i).map(|d| format!("img{d}@{}", plan.builds[0].platform.slug())).collect();
            let b = plan.builds.iter().find(|b| b.id == format!("img{i}@{}", plan.builds[0].platform.slug())).unwrap();
            let got: BTreeSet<String> = b.depends_on.iter().cloned().collect();
            prop_assert_eq!(got, want);
        }
    }
}

/// Dockerfile-ish text: instructions, flags, heredocs, variables, quotes and escapes in any
/// order, so the parser and the lexer meet every odd shape.
fn dockerfile_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "FROM ",
        "from ",
        "ARG ",
        "COPY ",
        "RUN ",
        "ONBUILD ",
        "ADD ",
        "# escape=`\n",
        "# syntax=x\n",
        "--platform=",
        "--from=",
        "--mount=type=bind,from=",
        "$BUILDPLATFORM",
        "${A",
        "${A:-",
        "${A#",
        "${A%%",
        "${A/",
        "}",
        "$",
        "AS ",
        "stage",
        "0",
        "1",
        "r.io/b:1",
        "scratch",
        "<<EOF",
        "<<-'E'",
        "EOF",
        "\tE",
        "\\",
        "`",
        "\"",
        "'",
        " ",
        "\n",
        "\r\n",
        "=",
        ":",
        "é",
        "\u{feff}",
    ]);
    let anything = prop::collection::vec(pieces.clone(), 0..60).prop_map(|p| p.concat());
    // Lines that start with an instruction, so that most texts get past the parser's checks
    // and every build of them is followed.
    let keyword = prop::sample::select(vec!["FROM ", "ARG ", "COPY ", "RUN ", "ONBUILD ", "ADD "]);
    let line = (keyword, prop::collection::vec(pieces, 0..10));
    let lines = prop::collection::vec(line, 1..8).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(k, rest)| format!("{k}{}\n", rest.concat()))
            .collect::<String>()
    });
    prop_oneof![anything, lines]
}

/// A word of `${...}` nested around [`mab::dockerfile::MAX_NESTING`] levels, of the kinds the
/// lexer recurses into (defaults, patterns, replacements, double quotes), with at most one
/// level somewhere of a kind it does not (single quotes, an escaped `$`, a plain `$A`).
fn nested_word() -> impl Strategy<Value = String> {
    let nesting = prop::sample::select(vec![
        ("${A:-", "}"),
        ("${B:+", "}"),
        ("${A:?", "}"),
        ("${A#", "}"),
        ("${A%%*", "}"),
        ("${A/", "/r}"),
        ("${A//p/", "}"),
        ("\"${A-", "}\""),
    ]);
    let other = prop::option::of(prop::sample::select(vec![
        ("'${A:-", "}'"),
        ("\\${A:-", "}"),
        ("$A", ""),
    ]));
    let max = mab::dockerfile::MAX_NESTING;
    (
        prop::collection::vec(nesting, max - 5..max + 5),
        other,
        0..max,
    )
        .prop_map(|(mut pairs, other, at)| {
            if let Some(pair) = other {
                pairs.insert(at.min(pairs.len()), pair);
            }
            let open: String = pairs.iter().map(|(o, _)| *o).collect();
            let close: String = pairs.iter().rev().map(|(_, c)| *c).collect();
            format!("{open}x{close}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any text: parsed or refused with an offset inside it, and every build of it answered,
    /// never a panic.
    #[test]
    fn dockerfiles_never_panic(text in dockerfile_text(), target in prop::option::of("stage|x")) {
        use mab::dockerfile::{Dockerfile, Inputs, platform_args};
        match Dockerfile::parse(&text) {
            Err(e) => prop_assert!(e.span.start <= e.span.end && e.span.end <= text.len()),
            Ok(df) => {
                let args: std::collections::BTreeMap<String, String> =
                    [("A".to_string(), "stage".to_string())].into();
                for target_platform in ["linux/arm64", "linux/amd64"] {
                    let platform: mab::platform::Platform = target_platform.parse().unwrap();
                    let host: mab::platform::Platform = "linux/amd64".parse().unwrap();
                    let auto = platform_args(&platform, &host);
                    let is_context = |n: &str| n == "ctx";
                    let _ = df.reads(&Inputs {
                        args: &args,
                        platform: &platform,
                        platform_args: &auto,
                        is_context: &is_context,
                        target: target.as_deref(),
                    });
                }
            }
        }
        let vars: std::collections::BTreeMap<String, String> =
            [("A".to_string(), "xay".to_string())].into();
        let _ = mab::dockerfile::expand(&text, '\\', &vars);
        let _ = mab::dockerfile::expand(&text, '`', &vars);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// However deep a word nests, the Dockerfile is refused where it is parsed (with a place in
    /// it) or every build of it is followed; a build never meets a nesting that parsing let
    /// through, and nothing overflows the stack (this runs on a test thread's small stack).
    #[test]
    fn nesting_is_refused_when_parsed_or_never_met(word in nested_word(), set in any::<bool>()) {
        use mab::dockerfile::{Dockerfile, EvalError, Inputs, platform_args};
        let text = format!("ARG G={word}\nFROM {word} AS s\nARG V={word}\nCOPY --from={word} / /\nFROM s\n");
        match Dockerfile::parse(&text) {
            Err(e) => {
                prop_assert!(e.message.contains("levels deep"), "{}", e.message);
                prop_assert!(e.span.end <= text.len());
            }
            Ok(df) => {
                let mut args = std::collections::BTreeMap::new();
                if set {
                    args.insert("A".to_string(), "a*b".to_string());
                    args.insert("B".to_string(), String::new());
                }
                let platform: mab::platform::Platform = "linux/arm64".parse().unwrap();
                let auto = platform_args(&platform, &platform);
                let reads = df.reads(&Inputs {
                    args: &args,
                    platform: &platform,
                    platform_args: &auto,
                    is_context: &|_| false,
                    target: None,
                });
                if let Err(EvalError::At { message, .. }) = reads {
                    prop_assert!(!message.contains("levels deep"), "{message}");
                }
            }
        }
    }
}
