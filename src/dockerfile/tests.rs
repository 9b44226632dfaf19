use super::*;
use crate::podman_features::Feature;

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct Build<'a> {
    args: &'a [(&'a str, &'a str)],
    platform: &'a str,
    contexts: &'a [&'a str],
    target: Option<&'a str>,
}

const ARM: Build = Build {
    args: &[],
    platform: "linux/arm64",
    contexts: &[],
    target: None,
};

/// What a build reads, owned: (reads, run platforms, target).
#[derive(Debug, PartialEq, Eq)]
struct Owned {
    reads: Vec<OwnedRead>,
    run_platforms: Vec<Platform>,
}

#[derive(Debug, PartialEq, Eq)]
struct OwnedRead {
    resolved: String,
    platform: Platform,
    via_arg: Option<String>,
    context: bool,
    composite: bool,
    span: std::ops::Range<usize>,
}

fn reads_of(text: &str, b: &Build) -> Result<Owned, EvalError> {
    let df = Dockerfile::parse(text).expect("parses");
    let args = args(b.args);
    let platform: Platform = b.platform.parse().unwrap();
    let host: Platform = "linux/amd64".parse().unwrap();
    let contexts = b.contexts;
    let is_context = |n: &str| contexts.contains(&n);
    let auto = platform_args(&platform, &host);
    let reads = df.reads(&Inputs {
        args: &args,
        platform: &platform,
        platform_args: &auto,
        is_context: &is_context,
        target: b.target,
    })?;
    Ok(Owned {
        reads: reads
            .reads
            .iter()
            .map(|r| OwnedRead {
                resolved: r.resolved.to_string(),
                platform: r.platform.clone(),
                via_arg: r.via_arg.map(str::to_string),
                context: r.context,
                composite: r.is_composite(),
                span: r.span.clone(),
            })
            .collect(),
        run_platforms: reads.run_platforms,
    })
}

/// Each read as `REF@PLATFORM`, in file order.
fn read(text: &str, b: &Build) -> Vec<String> {
    reads_of(text, b)
        .unwrap()
        .reads
        .into_iter()
        .map(|r| format!("{}@{}", r.resolved, r.platform))
        .collect()
}

fn runs(text: &str, b: &Build) -> Vec<String> {
    let r = reads_of(text, b).unwrap();
    r.run_platforms.iter().map(|p| p.to_string()).collect()
}

#[test]
fn literal_images_and_stages() {
    let df = "# syntax=docker/dockerfile:1\nFROM golang:1.22 AS build\nRUN make\nFROM build AS test\nFROM scratch\nCOPY --from=build /x /x\nCOPY --from=ghcr.io/acme/tools:1 /t /t\n";
    assert_eq!(
        read(df, &ARM),
        [
            "golang:1.22@linux/arm64",
            "ghcr.io/acme/tools:1@linux/arm64"
        ]
    );
}

#[test]
fn a_build_platform_stage_reads_on_the_host() {
    let df = "FROM --platform=$BUILDPLATFORM ghcr.io/acme/tool:1 AS build\nARG TARGETARCH\nRUN make ARCH=$TARGETARCH\nFROM build AS more\nRUN strip out\nFROM scratch\nCOPY --from=build /out /app\n";
    assert_eq!(read(df, &ARM), ["ghcr.io/acme/tool:1@linux/amd64"]);
    // Both RUN stages are on the build platform (`more` is unreached anyway).
    assert_eq!(runs(df, &ARM), ["linux/amd64"]);
    // A literal platform is read as written.
    let df = "FROM --platform=linux/arm/v7 base:1\nRUN x\n";
    assert_eq!(read(df, &ARM), ["base:1@linux/arm/v7"]);
}

#[test]
fn a_stage_based_on_a_stage_keeps_its_platform() {
    let df = "FROM --platform=$BUILDPLATFORM tool:1 AS b\nFROM b AS c\nCOPY --from=other:1 /x /x\nRUN x\nFROM c\n";
    assert_eq!(
        read(df, &ARM),
        ["tool:1@linux/amd64", "other:1@linux/amd64"]
    );
    assert_eq!(runs(df, &ARM), ["linux/amd64"]);
}

#[test]
fn only_stages_the_target_reaches_count() {
    let df = "FROM lint:1 AS lint\nRUN lint\nFROM base:1 AS build\nRUN make\nFROM build AS test\nCOPY --from=fixtures:1 / /\nFROM scratch AS final\nCOPY --from=build /out /\n";
    assert_eq!(read(df, &ARM), ["base:1@linux/arm64"]);
    let test = Build {
        target: Some("Test"),
        ..ARM
    };
    assert_eq!(
        read(df, &test),
        ["base:1@linux/arm64", "fixtures:1@linux/arm64"]
    );
    // By index too.
    let df = "FROM a:1\nFROM b:1\nFROM scratch\nCOPY --from=1 / /\n";
    assert_eq!(read(df, &ARM), ["b:1@linux/arm64"]);
}

#[test]
fn an_unknown_target_lists_the_stages() {
    let df = "FROM a AS build\nFROM b AS final\n";
    let t = Build {
        target: Some("buld"),
        ..ARM
    };
    assert_eq!(
        reads_of(df, &t).unwrap_err(),
        EvalError::UnknownTarget {
            target: "buld".into(),
            stages: vec!["build".into(), "final".into()]
        }
    );
}

#[test]
fn heredocs_are_not_instructions() {
    let df = "FROM base:1\nCOPY <<EOF /fixtures/Dockerfile\nFROM evil:1\nEOF\nRUN <<-'SCRIPT' bash\n\tFROM other:1\n\tSCRIPT\nRUN <<A cat > /a && <<B cat > /b\nFROM x\nA\nFROM y\nB\n";
    assert_eq!(read(df, &ARM), ["base:1@linux/arm64"]);
}

#[test]
fn mounts_from_images_and_stages() {
    let df = "FROM deps:1 AS deps\nFROM base:1\nRUN --mount=type=bind,from=tools:2,source=/bin,target=/t --mount=type=cache,from=deps,target=/c --mount=type=secret,id=x make\n";
    assert_eq!(
        read(df, &ARM),
        [
            "deps:1@linux/arm64",
            "base:1@linux/arm64",
            "tools:2@linux/arm64"
        ]
    );
}

#[test]
fn onbuild_is_not_this_builds() {
    let df = "FROM base:1\nONBUILD COPY --from=later:1 / /\nONBUILD RUN make\n";
    assert_eq!(read(df, &ARM), ["base:1@linux/arm64"]);
    assert!(runs(df, &ARM).is_empty());
}

#[test]
fn args_defaults_overrides_and_nesting() {
    let df = "ARG REGISTRY=ghcr.io/acme\nARG BASE=${REGISTRY}/base:1\nARG TAG\nARG OVERRIDE\nARG DEFAULT_BASE=r.io/d:1\nFROM ${BASE}\nFROM $REGISTRY/other:${TAG:-2}\nFROM x-${TARGETARCH}\nFROM ${OVERRIDE:-${DEFAULT_BASE}}\n";
    let all = |b: &Build| {
        let mut t = df.to_string();
        t.push_str("FROM scratch\n");
        for i in 0..4 {
            t.push_str(&format!("COPY --from={i} / /\n"));
        }
        read(&t, b)
    };
    assert_eq!(
        all(&ARM),
        [
            "ghcr.io/acme/base:1@linux/arm64",
            "ghcr.io/acme/other:2@linux/arm64",
            "x-arm64@linux/arm64",
            "r.io/d:1@linux/arm64"
        ]
    );
    let with = Build {
        args: &[("BASE", "local/base:9"), ("TAG", "3"), ("OVERRIDE", "o:1")],
        ..ARM
    };
    assert_eq!(
        all(&with),
        [
            "local/base:9@linux/arm64",
            "ghcr.io/acme/other:3@linux/arm64",
            "x-arm64@linux/arm64",
            "o:1@linux/arm64"
        ]
    );
    let refs = reads_of(df, &ARM).unwrap().reads;
    let last = refs.last().unwrap();
    assert_eq!(last.via_arg.as_deref(), Some("OVERRIDE"));
    assert_eq!(&df[last.span.clone()], "FROM ${OVERRIDE:-${DEFAULT_BASE}}");
    // A build arg the Dockerfile does not declare is not in scope.
    assert_eq!(read("FROM a:${TAG:-2}\n", &with), ["a:2@linux/arm64"]);
    let undeclared = reads_of("FROM ${X:-a}\n", &ARM).unwrap().reads;
    assert_eq!(undeclared[0].via_arg, None);
}

#[test]
fn composite_references_are_marked() {
    let df = "ARG REG=r.io\nFROM ${REG}/base:1\n";
    let r = &reads_of(df, &ARM).unwrap().reads[0];
    assert_eq!(r.resolved, "r.io/base:1");
    assert!(r.composite);
}

#[test]
fn copy_from_uses_the_stage_scope() {
    let df = "ARG TOOLS=tools:1\nFROM scratch\nARG TOOLS\nCOPY --from=$TOOLS / /\n";
    let r = &reads_of(df, &ARM).unwrap().reads[0];
    assert_eq!(
        (r.resolved.as_str(), r.via_arg.as_deref()),
        ("tools:1", Some("TOOLS"))
    );
    assert_eq!(&df[r.span.clone()], "--from=$TOOLS");
}

#[test]
fn named_contexts_win_over_stages_and_images() {
    let df = "FROM base_image AS base\nFROM base\nCOPY --from=src / /src\n";
    let b = Build {
        contexts: &["base_image", "src"],
        ..ARM
    };
    let reads = reads_of(df, &b).unwrap().reads;
    let named: Vec<(&str, bool)> = reads
        .iter()
        .map(|r| (r.resolved.as_str(), r.context))
        .collect();
    assert_eq!(named, [("base_image", true), ("src", true)]);
    // A context named like a stage replaces the stage, as podman does.
    let b = Build {
        contexts: &["base"],
        ..ARM
    };
    assert_eq!(read(df, &b), ["base@linux/arm64", "src@linux/arm64"]);
}

#[test]
fn continuations_comments_case_and_escape() {
    let df = "from \\\n  alpine:3.20 \\\n  as base\n# from nothing\n\nFrom base\n";
    assert_eq!(read(df, &ARM), ["alpine:3.20@linux/arm64"]);
    let df = "# escape=`\nFROM `\n  busybox\nRUN dir C:\\\n";
    assert_eq!(read(df, &ARM), ["busybox@linux/arm64"]);
    let df = "FROM a:1 \\\n# a comment inside\n\n  AS x\nFROM x\n";
    assert_eq!(read(df, &ARM), ["a:1@linux/arm64"]);
}

#[test]
fn arg_after_from_is_not_in_scope_of_from() {
    let df = "FROM a\nARG B=x\nFROM ${B}img\n";
    assert_eq!(read(df, &ARM), ["img@linux/arm64"]);
}

#[test]
fn errors_point_at_the_instruction() {
    let df = "ARG BASE\nFROM ${BASE}\n";
    let err = reads_of(df, &ARM).unwrap_err();
    let EvalError::At { span, message, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(&df[span], "FROM ${BASE}");
    assert!(message.contains("expands to nothing"), "{message}");
    let df = "FROM --platform=$NOPE a AS x\nFROM x\n";
    assert!(matches!(reads_of(df, &ARM), Err(EvalError::At { .. })));
    // An unreached stage may be broken.
    let df = "FROM --platform=$NOPE a AS x\nFROM b\n";
    assert_eq!(read(df, &ARM), ["b@linux/arm64"]);
    let err = Dockerfile::parse("FROM a\nRUN <<EOF\nnever closed\n").unwrap_err();
    assert!(err.span.start > 0, "{err:?}");
}

#[test]
fn build_platform_args_named() {
    let df = Dockerfile::parse("FROM --platform=$BUILDPLATFORM a\nARG BUILDARCH\n").unwrap();
    assert_eq!(df.names_build_args(), ["BUILDPLATFORM", "BUILDARCH"]);
}

#[test]
fn labels_go_at_the_end_of_the_built_stage() {
    let df = "# syntax=docker/dockerfile:1\nFROM a AS build\nRUN <<EOF\nFROM inside\nEOF\nONBUILD RUN x\n\nFROM build AS debug\nRUN debug\n";
    let parsed = Dockerfile::parse(df).unwrap();
    // After the heredoc body and the ONBUILD line of `build`: before line 8, `FROM build`.
    let (offset, line) = parsed.stage_end(Some("build")).unwrap();
    assert_eq!((&df[offset..offset + 10], line), ("\nFROM buil", 6));
    assert_eq!(parsed.stage_end(None), Some((df.len(), 9)));
    assert_eq!(parsed.stage_end(Some("nope")), None);
    let labels: BTreeMap<String, String> = [
        ("a.b".to_string(), "say \"hi\" $X \\ back".to_string()),
        ("c".to_string(), "d".to_string()),
    ]
    .into();
    assert_eq!(
        label_instruction(&labels, '\\').unwrap(),
        r#"LABEL "a.b"="say \"hi\" \$X \\ back" "c"="d""#
    );
    assert_eq!(
        label_instruction(&labels, '`').unwrap(),
        r#"LABEL "a.b"="say `"hi`" `$X \ back" "c"="d""#
    );
    let multiline: BTreeMap<String, String> = [("d".to_string(), "two\nlines".to_string())].into();
    assert_eq!(label_instruction(&multiline, '\\'), None);
}

#[test]
fn containerignore_is_read_before_dockerignore() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(context_ignore_file(dir.path()), None);
    std::fs::write(dir.path().join(".dockerignore"), "a\n").unwrap();
    assert_eq!(
        context_ignore_file(dir.path()),
        Some(dir.path().join(".dockerignore"))
    );
    std::fs::write(dir.path().join(".containerignore"), "b\n").unwrap();
    assert_eq!(
        context_ignore_file(dir.path()),
        Some(dir.path().join(".containerignore"))
    );
}

#[test]
fn what_buildkit_refuses_before_building() {
    let refused = |text: &str| Dockerfile::parse(text).err().map(|e| (e.message, e.span));
    // Accepted: only ARGs, comments and directives before the first FROM; any case; an
    // ONBUILD trigger is the child build's to check, as in BuildKit.
    for ok in [
        "# syntax=docker/dockerfile:1\n# hi\nARG A=1\narg B\nfrom scratch\nrun x\n",
        "FROM a\nONBUILD FOO bar\nhealthcheck NONE\nSTOPSIGNAL 9\nMAINTAINER me\n",
    ] {
        assert_eq!(refused(ok), None, "{ok}");
    }
    let cases = [
        ("", "it has no `FROM`", 0..0),
        ("# only a comment\n", "it has no `FROM`", 0..0),
        ("ARG A\n", "it has no `FROM`", 0..3),
        ("ARG A\nRUN x\n", "it has no `FROM`", 6..9),
        (
            "ONBUILD RUN x\nFROM a\n",
            "`ONBUILD` comes before the first `FROM`",
            0..7,
        ),
        (
            "ONBUILD ARG x\nFROM a\n",
            "`ONBUILD` comes before the first `FROM`",
            0..7,
        ),
        (
            "ARG A\n  env B=1\nFROM a\n",
            "`ENV` comes before the first `FROM`",
            8..11,
        ),
        ("FROM a\nRUNN x\n", "unknown instruction `RUNN`", 7..11),
        // The unknown instruction first: it is the more precise message.
        ("X\nFROM a\n", "unknown instruction `X`", 0..1),
    ];
    for (text, message, span) in cases {
        assert_eq!(refused(text), Some((message.to_string(), span)), "{text:?}");
    }
    let err = Dockerfile::parse("FROM a\nFORM b\n").unwrap_err();
    assert_eq!(err.help.as_deref(), Some("did you mean `FROM`?"));
}

#[test]
fn nesting_is_refused_where_it_is_written() {
    let deep = format!(
        "{}x{}",
        "${A:-".repeat(MAX_NESTING + 1),
        "}".repeat(MAX_NESTING + 1)
    );
    let ok = format!(
        "{}x{}",
        "${A:-".repeat(MAX_NESTING),
        "}".repeat(MAX_NESTING)
    );
    for (text, at) in [
        (format!("ARG A={deep}\nFROM a\n"), 0),
        (format!("FROM {deep}\n"), 0),
        (format!("FROM --platform={deep} a\n"), 0),
        (format!("FROM a\nARG B=1 C={deep}\n"), 7),
        (format!("FROM a\nCOPY --from={deep} / /\n"), 7),
        (format!("FROM a\nRUN --mount=from={deep} x\n"), 7),
    ] {
        let err = Dockerfile::parse(&text).unwrap_err();
        assert!(
            err.message.contains("more than 100 levels deep"),
            "{}",
            err.message
        );
        assert_eq!(err.span.start, at, "{}", &text[..20]);
        let text = text.replace(&deep, &ok);
        assert!(Dockerfile::parse(&text).is_ok(), "{}", &text[..20]);
    }
    // Words mab does not expand are podman's to read.
    assert!(Dockerfile::parse(&format!("FROM a\nRUN echo {deep}\n")).is_ok());
}

/// The features podman versions differ on, as the reached stages use them, with where.
fn uses(text: &str, b: &Build) -> Vec<(Feature, String)> {
    let df = Dockerfile::parse(text).expect("parses");
    let args = args(b.args);
    let platform: Platform = b.platform.parse().unwrap();
    let auto = platform_args(&platform, &platform);
    let is_context = |_: &str| false;
    let reads = df
        .reads(&Inputs {
            args: &args,
            platform: &platform,
            platform_args: &auto,
            is_context: &is_context,
            target: b.target,
        })
        .unwrap();
    reads
        .uses
        .into_iter()
        .map(|(f, at)| (f, text[at].to_string()))
        .collect()
}

#[test]
fn feature_uses_of_reached_stages() {
    let df = "# check=skip=all\nFROM a AS unreached\nRUN --network=none <<EOF\ntrue\nEOF\nFROM a\n\
              ADD --checksum=sha256:00 https://example.com/x.tgz /x\n\
              ADD https://github.com/moby/moby.git#v1 /src\nADD git@github.com:a/b.git /b\n\
              ADD https://example.com/plain.tar /p\n\
              RUN --mount=type=cache,target=/c --mount=type=ssh,id=default --security=insecure true\n\
              COPY --parents --link src/ /d/\nADD --unpack=true a.tar /x\n";
    assert_eq!(
        uses(df, &ARM),
        [
            (Feature::CheckDirective, "# check=skip=all".into()),
            (Feature::AddChecksum, "--checksum=sha256:00".into()),
            (Feature::AddGit, "ADD".into()),
            (Feature::AddGit, "ADD".into()),
            (Feature::RunMountSsh, "--mount=type=ssh,id=default".into()),
            (Feature::RunSecurity, "--security=insecure".into()),
            (Feature::CopyParents, "--parents".into()),
            (Feature::CopyLink, "--link".into()),
            (Feature::AddUnpack, "--unpack=true".into()),
        ]
    );
    let target = Build {
        target: Some("unreached"),
        ..ARM
    };
    assert_eq!(
        uses(df, &target),
        [
            (Feature::CheckDirective, "# check=skip=all".into()),
            (Feature::Heredoc, "RUN".into()),
            (Feature::RunNetwork, "--network=none".into()),
        ]
    );
}

#[test]
fn undeclared_platform_args_of_from_lines() {
    let df = Dockerfile::parse("# escape=`\n\nARG TARGETARCH\nFROM --platform=$TARGETPLATFORM a-${TARGETOS}-$TARGETARCH\nFROM b-$TARGETOSX\nRUN echo $TARGETVARIANT\n").unwrap();
    assert_eq!(
        df.undeclared_platform_args(),
        (&["TARGETPLATFORM", "TARGETOS"][..], 12)
    );
    let df = Dockerfile::parse("FROM a\n").unwrap();
    assert_eq!(df.undeclared_platform_args(), (&[][..], 0));
}
