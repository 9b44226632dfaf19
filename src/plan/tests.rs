use super::*;
use crate::error::ErrorKind;
use crate::reference::ImageRef;

/// Plans a scratch config: `files` are (path, text) pairs beside multiarch.toml.
fn plan_of(
    config: &str,
    files: &[(&str, &str)],
    selection: &Selection,
) -> Result<Plan, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let path = dir.path().join("multiarch.toml");
    std::fs::write(&path, config).unwrap();
    // The nodes' ssh key (`NODES`) is outside the scratch repository, as keys usually are.
    let allowed =
        crate::confine::Allowed::resolve(&["fs.read=/keys".parse().unwrap()], dir.path(), None);
    let location = crate::config::Location::File(path);
    let env = crate::settings::Environment::default();
    crate::plan_in(&location, &[], selection, env, &allowed)
}

const HEAD: &str = "[defaults]\nregistry = \"r.io/a\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n[builder]\noci_labels = false\n";

fn chain() -> Vec<(&'static str, &'static str)> {
    vec![
        ("z/Dockerfile", "FROM busybox\n"),
        ("m/Dockerfile", "FROM r.io/a/zbase:1\n"),
        ("a/Dockerfile", "ARG B=r.io/a/mid:1\nFROM ${B}\n"),
    ]
}

const CHAIN: &str = "[images.zbase]\ncontext = \"z\"\n[images.mid]\ncontext = \"m\"\n[images.app]\ncontext = \"a\"\n";

#[test]
fn order_respects_dependencies_and_edges_are_per_platform() {
    let plan = plan_of(&format!("{HEAD}{CHAIN}"), &chain(), &Selection::default()).unwrap();
    let ids: Vec<&str> = plan.builds.iter().map(|b| b.id.as_str()).collect();
    // Names sort app < mid < zbase, yet every build comes after what it depends on; among
    // ready builds the smallest (instance, platform) goes first.
    assert_eq!(
        ids,
        [
            "zbase@linux-amd64",
            "mid@linux-amd64",
            "app@linux-amd64",
            "zbase@linux-arm64",
            "mid@linux-arm64",
            "app@linux-arm64"
        ]
    );
    let app_arm = plan
        .builds
        .iter()
        .find(|b| b.id == "app@linux-arm64")
        .unwrap();
    assert_eq!(app_arm.depends_on, ["mid@linux-arm64"]);
    // FROM ${B}: the arg is pointed at the local build; a literal FROM gets a build context.
    assert!(
        app_arm
            .argv
            .argv()
            .contains(&"B=localhost/mab/mid:linux-arm64".to_string()),
        "{:?}",
        app_arm.argv
    );
    let mid_arm = plan
        .builds
        .iter()
        .find(|b| b.id == "mid@linux-arm64")
        .unwrap();
    assert!(
        mid_arm.argv.argv().contains(
            &"r.io/a/zbase:1=container-image://localhost/mab/zbase:linux-arm64".to_string()
        )
    );
    let again = plan_of(&format!("{HEAD}{CHAIN}"), &chain(), &Selection::default()).unwrap();
    assert_eq!(
        serde_json::to_string(&again.builds).unwrap(),
        serde_json::to_string(&plan.builds).unwrap()
    );
}

#[test]
fn selection_pulls_dependencies_and_filters_platforms() {
    let sel = Selection {
        patterns: vec!["app".into()],
        platforms: vec!["linux/arm64".parse().unwrap()],
        changes: None,
        no_push: false,
    };
    let plan = plan_of(&format!("{HEAD}{CHAIN}"), &chain(), &sel).unwrap();
    let ids: Vec<&str> = plan.builds.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(
        ids,
        ["zbase@linux-arm64", "mid@linux-arm64", "app@linux-arm64"]
    );
    assert!(plan.manifests.iter().all(|m| m.platforms.len() == 1));
}

#[test]
fn cycles_are_reported_with_their_path() {
    let files = [
        ("x/Dockerfile", "FROM r.io/a/y:1\n"),
        ("y/Dockerfile", "FROM r.io/a/z:1\n"),
        ("z/Dockerfile", "FROM scratch\n"),
    ];
    let config = format!(
        "{HEAD}[images.x]\ncontext = \"x\"\n[images.y]\ncontext = \"y\"\n[images.z]\ncontext = \"z\"\ndepends_on = [\"x\"]\n"
    );
    let err = plan_of(&config, &files, &Selection::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cycle);
    assert_eq!(
        err.message(),
        "dependency cycle: z -> y -> x -> z (on linux/amd64)"
    );
    // Without the back edge it plans.
    let config = config.replace("depends_on = [\"x\"]\n", "");
    assert_eq!(
        plan_of(&config, &files, &Selection::default())
            .unwrap()
            .builds
            .len(),
        6
    );
}

#[test]
fn only_contexts_holding_the_workdir_get_an_ignore_file() {
    // The config is in `w/` of a git work tree: a context may be above it.
    let files = [
        ("../.git/HEAD", "ref: refs/heads/main\n"),
        ("Dockerfile", "FROM scratch\n"),
        (".dockerignore", "*.md"),
        ("z/Dockerfile", "FROM scratch\n"),
    ];
    let config = format!(
        "{HEAD}[images.dot]\n[images.sub]\ncontext = \"z\"\n[images.up]\ncontext = \"z/../..\"\ndockerfile = \"w/Dockerfile\"\n"
    );
    let top = tempfile::tempdir().unwrap();
    let w = top.path().join("w");
    for (path, text) in files {
        let p = w.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::write(w.join("multiarch.toml"), config).unwrap();
    let plan = crate::plan_file(&w.join("multiarch.toml"), &[], &Selection::default()).unwrap();
    // The parent of the project's directory holds it too: its name is in the exclusion.
    let dir = plan
        .workdir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let ignore = |id: &str| {
        let b = plan.builds.iter().find(|b| b.id == id).unwrap();
        b.ignorefile
            .as_ref()
            .map(|f| (f.exclude.clone(), f.base.is_some()))
    };
    assert_eq!(ignore("dot@linux-amd64"), Some((".mab".into(), true)));
    assert_eq!(ignore("sub@linux-amd64"), None);
    assert_eq!(
        ignore("up@linux-amd64"),
        Some((format!("{dir}/.mab"), false))
    );
    let f = plan.builds[0].ignorefile.as_ref().unwrap();
    assert_eq!(f.text("*.md"), "*.md\n.mab\n");
    assert_eq!(f.text(""), ".mab\n");
}

#[test]
fn a_dependency_missing_a_platform_is_an_error() {
    let config = format!("{HEAD}{CHAIN}").replace(
        "[images.mid]\n",
        "[images.mid]\nplatforms = [\"linux/amd64\"]\n",
    );
    let err = plan_of(&config, &chain(), &Selection::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PlatformMismatch);
    assert!(
        err.message()
            .starts_with("image `app` is built for linux/arm64, but its dependency `mid` is not"),
        "{}",
        err.message()
    );
}

#[test]
fn a_labeled_copy_puts_the_instruction_on_a_line_of_its_own() {
    let label = Insertion {
        offset: 7,
        after_line: 1,
        instruction: "LABEL \"a\"=\"b\"".into(),
    };
    let copy = LabeledDockerfile {
        path: ".mab/dockerfiles/x".into(),
        base: "Dockerfile".into(),
        label: Some(label.clone()),
        declare: None,
    };
    assert_eq!(
        copy.text("FROM a\nFROM b\n"),
        "FROM a\nLABEL \"a\"=\"b\"\nFROM b\n"
    );
    // At the end of a file without a last newline.
    let at_end = LabeledDockerfile {
        label: Some(Insertion {
            offset: 6,
            ..label.clone()
        }),
        ..copy.clone()
    };
    assert_eq!(at_end.text("FROM a"), "FROM a\nLABEL \"a\"=\"b\"\n");
    // The platform args declared after the parser directives, the label where it goes.
    let declared = LabeledDockerfile {
        declare: Some(Insertion {
            offset: 12,
            after_line: 2,
            instruction: "ARG TARGETOS".into(),
        }),
        label: Some(Insertion {
            offset: 19,
            ..label
        }),
        ..copy
    };
    assert_eq!(
        declared.text("# escape=`\n\nFROM a\nFROM b\n"),
        "# escape=`\n\nARG TARGETOS\nFROM a\nLABEL \"a\"=\"b\"\nFROM b\n"
    );
}

#[test]
fn a_registry_cache_is_read_and_written_per_image() {
    let config = format!(
        "{HEAD}[defaults.cache]\nfrom = \"r.io/shared/cache\"\n[registries.\"cache.test\"]\ninsecure = true\n\
         [images.app]\ncontext = \"a\"\ncache = \"registry\"\n\
         [images.tool]\ncontext = \"t\"\n\
         [images.own]\ncontext = \"o\"\ncache = {{ from = \"cache.test/own\", to = \"cache.test/own\" }}\n\
         [images.plain]\ncontext = \"p\"\ncache = \"none\"\n"
    );
    let files = [
        ("a/Dockerfile", "FROM busybox\n"),
        ("t/Dockerfile", "FROM busybox\n"),
        ("o/Dockerfile", "FROM busybox\n"),
        ("p/Dockerfile", "FROM busybox\n"),
    ];
    let plan = plan_of(&config, &files, &Selection::default()).unwrap();
    let argv = |id: &str| {
        let b = plan.builds.iter().find(|b| b.id == id).unwrap();
        b.argv.shell_line()
    };
    assert!(
        argv("app@linux-arm64")
            .contains("--layers --cache-from r.io/a/app/cache --cache-to r.io/a/app/cache"),
        "{}",
        argv("app@linux-arm64")
    );
    // Inherited from [defaults]: read only.
    let tool = argv("tool@linux-amd64");
    assert!(
        tool.contains("--layers --cache-from r.io/shared/cache"),
        "{tool}"
    );
    assert!(!tool.contains("--cache-to"), "{tool}");
    // An insecure cache registry is reached without TLS verification.
    let own = argv("own@linux-amd64");
    assert!(
        own.contains("--cache-to cache.test/own '--tls-verify=false'"),
        "{own}"
    );
    assert!(!argv("plain@linux-amd64").contains("--layers"));
}

#[test]
fn a_cache_setting_that_is_no_cache_is_an_error_at_its_place() {
    let config = format!("{HEAD}[images.app]\ncontext = \"a\"\ncache = \"regsitry\"\n");
    let err = plan_of(
        &config,
        &[("a/Dockerfile", "FROM busybox\n")],
        &Selection::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Type);
    assert!(
        err.to_string()
            .contains("`cache = \"regsitry\"` is neither"),
        "{err}"
    );
    let config =
        format!("{HEAD}[images.app]\ncontext = \"a\"\ncache = {{ from = \"r.io/x:1\" }}\n");
    let err = plan_of(
        &config,
        &[("a/Dockerfile", "FROM busybox\n")],
        &Selection::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("is not a repository"), "{err}");
}

const NODES: &str = "[nodes.local]\nplatforms = [\"linux/amd64\"]\n\
    [nodes.arm]\nurl = \"unix:///run/arm/podman.sock\"\nplatforms = [\"linux/arm64\"]\njobs = 2\n\
    [nodes.ssh]\nurl = \"ssh://ci@builder.test:2222/run/podman/podman.sock\"\nidentity = \"/keys/ci\"\nplatforms = [\"linux/arm64\"]\nemulates = [\"linux/arm/v7\"]\n";

#[test]
fn builds_go_to_nodes_of_their_platform_and_cross_nodes_by_digest() {
    let config = format!("{HEAD}{NODES}{CHAIN}");
    let plan = plan_of(&config, &chain(), &Selection::default()).unwrap();
    let node = |id: &str| {
        let b = plan.builds.iter().find(|b| b.id == id).unwrap();
        (b.node.clone().unwrap(), b.argv.shell_line(), b)
    };
    let (n, argv, b) = node("zbase@linux-amd64");
    assert_eq!(n, "local");
    assert!(argv.starts_with("podman build "), "{argv}");
    assert!(b.publish.is_none(), "this machine's images are local");
    // arm64 builds are spread over the two arm64 nodes, by slots (arm has 2, ssh 1).
    let arm: Vec<String> = ["zbase", "mid", "app"]
        .iter()
        .map(|i| node(&format!("{i}@linux-arm64")).0)
        .collect();
    assert_eq!(arm, ["arm", "arm", "ssh"], "zbase, mid, app in plan order");
    let (_, argv, b) = node("app@linux-arm64");
    assert!(
        argv.starts_with("podman --url ssh://ci@builder.test:2222/run/podman/podman.sock --identity /keys/ci build "),
        "{argv}"
    );
    // Its dependency was built on another node: read from the registry by the digest pushed.
    assert!(
        argv.contains("B=r.io/a/mid@<digest of mid@linux-arm64>"),
        "{argv}"
    );
    let publish = b.publish.as_ref().unwrap();
    assert_eq!(
        publish.reference.to_string(),
        "r.io/a/app:mab-image-<image id>"
    );
    // A dependency on the same node is its local image.
    let (_, argv, _) = node("mid@linux-arm64");
    assert!(
        argv.contains("container-image://localhost/mab/zbase:linux-arm64"),
        "{argv}"
    );
    // The list takes remote images by digest, local ones from storage.
    let m = plan.manifests.iter().find(|m| m.image == "app").unwrap();
    let adds: Vec<String> = m
        .assemble
        .adds
        .iter()
        .map(|a| a.command.argv().last().unwrap().clone())
        .collect();
    assert_eq!(
        adds,
        [
            "containers-storage:localhost/mab/app:linux-amd64",
            "docker://r.io/a/app@<digest of app@linux-arm64>"
        ]
    );
    assert_eq!(plan.nodes.len(), 3);
}

#[test]
fn the_build_platform_is_the_nodes_own() {
    // A cross-compiling stage on the arm64 node runs on arm64: BUILDPLATFORM says so.
    let config = format!(
        "{HEAD}{NODES}[images.app]\ncontext = \"a\"\nplatforms = [\"linux/arm64\", \"linux/arm/v7\"]\n"
    );
    let files = [(
        "a/Dockerfile",
        "FROM --platform=$BUILDPLATFORM busybox AS b\nRUN make\nFROM busybox\n",
    )];
    let plan = plan_of(&config, &files, &Selection::default()).unwrap();
    let argv = |id: &str| {
        plan.builds
            .iter()
            .find(|b| b.id == id)
            .unwrap()
            .argv
            .shell_line()
    };
    assert!(
        argv("app@linux-arm64").contains("BUILDPLATFORM=linux/arm64"),
        "{}",
        argv("app@linux-arm64")
    );
    // Emulated on the ssh node (arm64): its build platform is arm64 too.
    assert!(argv("app@linux-arm-v7").contains("BUILDPLATFORM=linux/arm64"));
}

#[test]
fn a_platform_no_node_builds_is_an_error_naming_the_nodes() {
    let config = format!(
        "{HEAD}{NODES}[images.app]\ncontext = \"a\"\nplatforms = [\"linux/amd64\", \"linux/s390x\"]\n"
    );
    let err = plan_of(
        &config,
        &[("a/Dockerfile", "FROM busybox\n")],
        &Selection::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Platform);
    let text = err.to_string();
    assert!(
        text.contains("no build node builds linux/s390x for image `app`"),
        "{text}"
    );
    assert!(text.contains("arm (linux/arm64)"), "{text}");
}

#[test]
fn node_settings_are_checked() {
    for (nodes, message) in [
        (
            "[nodes.far]\nplatforms = [\"linux/amd64\"]\n",
            "node `far` has no `url` or `connection`",
        ),
        (
            "[nodes.far]\nurl = \"http://x\"\nplatforms = [\"linux/amd64\"]\n",
            "not an ssh://, unix:// or tcp:// address",
        ),
        (
            "[nodes.far]\nconnection = \"c\"\nurl = \"unix:///s\"\nplatforms = [\"linux/amd64\"]\n",
            "has both `url` and `connection`",
        ),
        ("[nodes.local]\nplatforms = []\n", "builds no platform"),
        (
            "[nodes.local]\nplatforms = [\"linux/amd64\"]\njobs = 0\n",
            "`jobs = 0`",
        ),
    ] {
        let config =
            format!("{HEAD}{nodes}[images.app]\ncontext = \"a\"\nplatforms = [\"linux/amd64\"]\n");
        let err = plan_of(
            &config,
            &[("a/Dockerfile", "FROM busybox\n")],
            &Selection::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains(message), "{nodes}: {err}");
    }
    // An image not pushed cannot build on a remote node.
    let config = format!(
        "{HEAD}{NODES}[images.app]\ncontext = \"a\"\npush = false\nplatforms = [\"linux/arm64\"]\n"
    );
    let err = plan_of(
        &config,
        &[("a/Dockerfile", "FROM busybox\n")],
        &Selection::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("is not pushed (push = false)"),
        "{err}"
    );
}

#[test]
fn a_list_is_pushed_once_and_its_other_tags_are_copies_of_that_index() {
    let plan = plan_of(
        &format!(
            "{}[images.app]\ncontext = \"a\"\n",
            HEAD.replace("tags = [\"1\"]", "tags = [\"1\", \"latest\"]")
        ),
        &[("a/Dockerfile", "FROM busybox\n")],
        &Selection::default(),
    )
    .unwrap();
    let m = &plan.manifests[0];
    let kinds = |steps: &[Step]| -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Record { tag, .. } => format!("record {}", tag.tag),
                Step::Held { tag, .. } => format!("held {}", tag.tag),
                Step::Push { to, .. } => format!("push {}", to.tag),
                Step::Copy { tag, .. } => format!("copy {}", tag.tag),
                Step::Sign(s) => format!("sign {:?}", s.platform),
                Step::Attach(a) => format!("attach {}", a.platform),
            })
            .collect()
    };
    // Without a marker (a plan, or a run with --rebuild): the first tag gets the push.
    assert_eq!(
        kinds(&m.publish),
        ["record 1", "record latest", "push 1", "copy latest"]
    );
    let Step::Copy { argv, restore, .. } = &m.publish[3] else {
        unreachable!()
    };
    let (argv, restore) = (argv.argv(), restore.argv());
    assert_eq!(
        &argv[argv.len() - 2..],
        [
            "docker://r.io/a/app@<digest of the pushed index>",
            "docker://r.io/a/app:latest"
        ]
    );
    assert_eq!(
        restore[restore.len() - 2],
        "docker://r.io/a/app@<digest it held>"
    );
    // With one, every release tag is a copy of what the marker got.
    let marker = ImageRef {
        repository: m.repository.clone(),
        tag: "mab-inputs-0".parse().unwrap(),
    };
    let steps = publication(
        &ToPublish {
            podman: &plan.podman,
            image: &m.image,
            list: &m.list,
            tags: &m.tags,
            platform_tags: &m.platform_tags,
            reach: m.reach(),
            registries_conf: None,
        },
        Some(marker),
    );
    assert_eq!(
        kinds(&steps),
        [
            "record 1",
            "record latest",
            "push mab-inputs-0",
            "copy 1",
            "copy latest"
        ]
    );
    assert!(steps[2].restore().is_none(), "the marker is never put back");
}

/// A copy from a secure registry to an insecure one (a second repository, a platform's tag)
/// skips TLS verification at that end only, and reads it back the same way.
#[test]
fn a_copy_to_another_registry_chooses_tls_per_end() {
    let config = format!(
        "{HEAD}[registries.\"plain.test\"]\ninsecure = true\n\
         [images.app]\ncontext = \"a\"\nrepository = [\"r.io/a/app\", \"plain.test/a/app\"]\n\
         [images.app.platform.\"linux/arm64\"]\ntags = [\"arm64-1\"]\n"
    );
    let plan = plan_of(
        &config,
        &[("a/Dockerfile", "FROM busybox\n")],
        &Selection::default(),
    )
    .unwrap();
    let m = &plan.manifests[0];
    assert_eq!(m.insecure_elsewhere, ["plain.test"]);
    let copy_to = |to: &str| {
        m.publish
            .iter()
            .find_map(|s| match s {
                Step::Copy {
                    tag, argv, verify, ..
                } if tag.to_string() == to => Some((argv.argv(), verify.argv())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no copy to {to}"))
    };
    let (argv, verify) = copy_to("plain.test/a/app:1");
    assert!(
        argv.contains(&"--dest-tls-verify=false".to_string()),
        "{argv:?}"
    );
    assert!(
        !argv.contains(&"--src-tls-verify=false".to_string()),
        "{argv:?}"
    );
    assert!(
        verify.contains(&"--tls-verify=false".to_string()),
        "{verify:?}"
    );
    let (argv, _) = copy_to("r.io/a/app:arm64-1");
    assert!(!argv.iter().any(|a| a.contains("tls-verify")), "{argv:?}");
    assert_eq!(
        argv[argv.len() - 2],
        "docker://r.io/a/app@<digest of its linux/arm64 image>"
    );
    let (argv, _) = copy_to("plain.test/a/app:arm64-1");
    assert!(
        argv.contains(&"--dest-tls-verify=false".to_string()),
        "{argv:?}"
    );
}
