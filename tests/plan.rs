//! `mab plan` run as a user runs it: the real binary on the shipped examples and scratch projects,
//! with its output snapshotted in all three formats.

use crate::common;

use common::{Project, Test, each, find, strings};
use insta_cmd::assert_cmd_snapshot;

/// `mab ARGS` in `p`, which must succeed, printing JSON: that JSON.
fn json(p: &Project, args: &[&str]) -> serde_json::Value {
    p.test().args(args).status(0).run().json()
}

/// examples/monorepo, committed.
fn example_monorepo() -> Project {
    let p = Project::example("monorepo");
    p.git_commit("fixture");
    p
}

#[test]
fn monorepo_text() {
    Test::example("monorepo")
        .commit("fixture")
        .args(["plan"])
        .snapshot("monorepo_text")
        .run();
}

#[test]
fn monorepo_json() {
    Test::example("monorepo")
        .commit("fixture")
        .args(["plan", "--format", "json"])
        .snapshot("monorepo_json")
        .run();
}

#[test]
fn monorepo_dot() {
    Test::example("monorepo")
        .commit("fixture")
        .args(["plan", "--format", "dot"])
        .snapshot("monorepo_dot")
        .run();
}

#[test]
fn simple_text_uses_git_sha() {
    Test::example("simple")
        .commit("fixture")
        .arg("plan")
        .snapshot("simple_text")
        .run();
}

/// The JSON is the contract with tools: check its structure, not only its snapshot.
#[test]
fn json_edges_are_per_platform_and_ordered() {
    let p = example_monorepo();
    let plan = json(&p, &["plan", "--format", "json"]);
    let builds = plan["builds"].as_array().unwrap();
    let position = |id: &str| {
        builds
            .iter()
            .position(|b| b["id"] == id)
            .unwrap_or_else(|| panic!("no build {id}"))
    };
    for b in builds {
        let platform = b["platform"].as_str().unwrap();
        for dep in b["depends_on"].as_array().unwrap() {
            let dep = dep.as_str().unwrap();
            assert!(
                position(dep) < position(b["id"].as_str().unwrap()),
                "{dep} must come before {}",
                b["id"]
            );
            let dep_platform = &builds[position(dep)]["platform"];
            assert_eq!(
                dep_platform, platform,
                "{} waits only for builds of its own platform",
                b["id"]
            );
        }
        assert_eq!(b["argv"][0], "podman");
    }
    assert_eq!(
        builds[position("runtime@linux-arm64")]["depends_on"],
        serde_json::json!(["base@linux-arm64"])
    );
    let api = find(&plan["manifests"], "image", "api-go1.22");
    assert_eq!(
        api["tags"],
        serde_json::json!(["ghcr.io/acme/api:1.4.2-go1.22"])
    );
    assert_eq!(
        api["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
}

#[test]
fn selection_pulls_in_dependencies_and_platform_filter() {
    let p = example_monorepo();
    let plan = json(
        &p,
        &[
            "plan",
            "api-go1.23",
            "--platform",
            "aarch64",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        each(&plan["builds"], "id"),
        [
            "base@linux-arm64",
            "runtime@linux-arm64",
            "api-go1.23@linux-arm64"
        ]
    );
}

#[test]
fn glob_selects_matrix_instances() {
    let p = example_monorepo();
    p.settings().bind(|| {
        assert_cmd_snapshot!(
            "glob_api",
            p.mab(&["plan", "api-*", "--platform", "linux/amd64"])
        )
    });
}

#[test]
fn image_key_selects_all_instances_and_var_overrides() {
    let p = example_monorepo();
    let plan = json(
        &p,
        &["plan", "api", "--var", "version=2.0.0", "--format", "json"],
    );
    assert_eq!(
        each(&plan["manifests"], "image"),
        ["api-go1.22", "api-go1.23", "base", "runtime"]
    );
    assert_eq!(
        plan["manifests"][0]["tags"][0],
        "ghcr.io/acme/api:2.0.0-go1.22"
    );
}

#[test]
fn config_is_found_in_a_parent_directory() {
    let p = example_monorepo();
    let plan: serde_json::Value = p
        .test()
        .args(["plan", "--format", "json"])
        .current_dir("services/api")
        .status(0)
        .run()
        .json();
    // The example's root defines no image: api is planned as a member of the whole, with the
    // images it depends on (runtime, base) from their own files.
    assert_eq!(plan["builds"].as_array().unwrap().len(), 8);
    assert_eq!(plan["manifests"].as_array().unwrap().len(), 4);
    assert_eq!(plan["files"][3], "multiarch.toml");
    assert_eq!(plan["files"][1], "../../multiarch.toml");
}

#[test]
fn output_is_deterministic() {
    let p = example_monorepo();
    let run = || {
        p.mab(&["plan", "--format", "json"])
            .output()
            .unwrap()
            .stdout
    };
    let first = run();
    for _ in 0..3 {
        assert_eq!(run(), first);
    }
}

#[test]
fn dot_output_is_valid_graphviz() {
    let p = example_monorepo();
    let dot = p.mab(&["plan", "--format", "dot"]).output().unwrap().stdout;
    let Ok(mut child) = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        // `.ci/run` installs graphviz; a developer machine may not have it.
        assert!(
            std::env::var_os("CI").is_none(),
            "graphviz `dot` must be installed in CI"
        );
        return;
    };
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&dot).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dot rejected the output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

fn argv_of(p: &Project, env: &[(&str, &str)]) -> serde_json::Value {
    p.test()
        .args(["plan", "--format", "json"])
        .envs(env.iter().copied())
        .status(0)
        .run()
        .json()
}

const ONE_IMAGE: &str = "[defaults]\nregistry = \"127.0.0.1:5000/x\"\nplatforms = [\"linux/amd64\"]\ntags = [\"v1\"]\n\n[images.app]\n";

/// A project of one image, `ONE_IMAGE` followed by `more` config.
fn one_image(more: &str) -> Project {
    let p = Project::new();
    p.file("Dockerfile", "FROM scratch\n");
    p.file("multiarch.toml", &format!("{ONE_IMAGE}{more}"));
    p
}

#[test]
fn builder_options_reach_the_commands() {
    let p = one_image(
        "\n[builder]\nreproducible = true\n\n[registries.\"127.0.0.1:5000\"]\ninsecure = true\n",
    );
    p.git_commit("fixture");
    let plan = argv_of(&p, &[("MAB_PODMAN", "/opt/podman --root /srv/s")]);
    let argv = strings(&plan["builds"][0]["argv"]);
    assert_eq!(argv[..4], ["/opt/podman", "--root", "/srv/s", "build"]);
    // The fixture commit's time, for a reproducible image.
    let ts = argv
        .iter()
        .position(|a| *a == "--timestamp")
        .expect("--timestamp");
    assert_eq!(argv[ts + 1], "1767323045");
    let labels = plan["builds"][0]["dockerfile"]["instruction"]
        .as_str()
        .unwrap()
        .to_string();
    for label in [
        r#""org.opencontainers.image.created"="2026-01-02T03:04:05Z""#,
        r#""org.opencontainers.image.version"="v1""#,
        r#""org.opencontainers.image.revision"=""#,
    ] {
        assert!(labels.contains(label), "{labels}");
    }
    let push = find(&plan["manifests"][0]["publish"], "step", "push");
    assert!(
        push["argv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--tls-verify=false"),
        "{push}"
    );
    assert!(
        push["verify"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--tls-verify=false"),
        "{push}"
    );

    // SOURCE_DATE_EPOCH wins over the commit time.
    let plan = argv_of(&p, &[("SOURCE_DATE_EPOCH", "1700000000")]);
    let argv = plan["builds"][0]["argv"].as_array().unwrap();
    let ts = argv.iter().position(|a| a == "--timestamp").unwrap();
    assert_eq!(argv[ts + 1], "1700000000");
}

#[test]
fn oci_labels_can_be_turned_off_and_lose_to_the_config() {
    let p = one_image("labels = { \"org.opencontainers.image.version\" = \"mine\" }\n");
    let plan = argv_of(&p, &[]);
    // All labels in one LABEL instruction of a Dockerfile copy, none as --label.
    let build = &plan["builds"][0];
    let labels = build["dockerfile"]["instruction"].as_str().unwrap();
    assert!(
        labels.contains(r#""org.opencontainers.image.version"="mine""#),
        "{labels}"
    );
    assert!(!labels.contains("=\"v1\""), "{labels}");
    assert!(!strings(&build["argv"]).contains(&"--label".to_string()));
    p.file(
        "multiarch.toml",
        &format!("{ONE_IMAGE}\n[builder]\noci_labels = false\n"),
    );
    let plan = argv_of(&p, &[]);
    // No labels at all: the Dockerfile as it is.
    assert!(plan["builds"][0]["dockerfile"].is_null());
    let argv = plan["builds"][0]["argv"].as_array().unwrap();
    assert!(
        !argv
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("org.opencontainers")),
        "{argv:?}"
    );
    // Not in git, no registries entry: no revision, and TLS is verified.
    assert!(
        !find(&plan["manifests"][0]["publish"], "step", "push")["argv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--tls-verify=false")
    );
}

#[test]
fn reproducible_outside_git_is_a_config_error() {
    let p = one_image("\n[builder]\nreproducible = true\n");
    p.test()
        .arg("plan")
        .env_remove("SOURCE_DATE_EPOCH")
        .status(2)
        .stderr_has("reproducible = true")
        .run();
}

#[test]
fn secrets_reach_podman_as_references_never_as_values() {
    let p = one_image(
        "secrets = { npmrc = { file = \"npmrc\" }, token = { env = \"MAB_TEST_TOKEN\" } }\n",
    );
    p.file(
        "npmrc",
        "//registry.npmjs.org/:_authToken=file-secret-value-1234\n",
    );
    let mut cmd = p.mab(&["plan", "--format", "json"]);
    cmd.env("MAB_TEST_TOKEN", "env-secret-value-5678");
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        !text.contains("secret-value"),
        "a secret value is in the plan: {text}"
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let argv = strings(&plan["builds"][0]["argv"]);
    let npmrc = argv
        .iter()
        .position(|a| a.starts_with("id=npmrc,src="))
        .expect("the file secret");
    assert_eq!(argv[npmrc - 1], "--secret");
    assert!(
        argv[npmrc].ends_with("/npmrc") && argv[npmrc].contains(&*p.path().to_string_lossy()),
        "{argv:?}"
    );
    assert!(
        argv.windows(2)
            .any(|w| w == ["--secret", "id=token,env=MAB_TEST_TOKEN"]),
        "{argv:?}"
    );
}

/// A cross-compiled image: its build-platform stage reads the toolchain, built for the machine
/// that builds only, whatever the target; `--platform` keeps that toolchain build.
#[test]
fn build_platform_stages_wait_for_the_host_build() {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"r.test\"\ntags = [\"1\"]\n[builder]\noci_labels = false\n\n[images.tool]\ncontext = \"tool\"\nplatforms = [\"linux/amd64\"]\n\n[images.app]\ncontext = \"app\"\nplatforms = [\"linux/amd64\", \"linux/arm64\", \"linux/s390x\"]\n",
    )
    .file("tool/Dockerfile", "FROM scratch\n")
    .file(
        "app/Dockerfile",
        "FROM --platform=$BUILDPLATFORM r.test/tool:1 AS build\nARG TARGETARCH\nRUN make ARCH=$TARGETARCH\nFROM scratch\nCOPY --from=build /out /app\n",
    );
    let plan = json(&p, &["plan", "--format", "json"]);
    for arch in ["amd64", "arm64", "s390x"] {
        let b = find(&plan["builds"], "id", &format!("app@linux-{arch}"));
        assert_eq!(strings(&b["depends_on"]), ["tool@linux-amd64"]);
        assert_eq!(strings(&b["run_platforms"]), ["linux/amd64"]);
        let argv = strings(&b["argv"]);
        assert!(
            argv.contains(&"BUILDPLATFORM=linux/amd64".to_string()),
            "{argv:?}"
        );
        assert!(
            argv.contains(
                &"r.test/tool:1=container-image://localhost/mab/tool:linux-amd64".to_string()
            ),
            "{argv:?}"
        );
    }
    let plan = json(
        &p,
        &["plan", "--format", "json", "--platform", "linux/s390x"],
    );
    assert_eq!(
        each(&plan["builds"], "id"),
        ["tool@linux-amd64", "app@linux-s390x"]
    );
    assert_eq!(each(&plan["manifests"], "image"), ["app"]);
}

/// A `depends_on` that the Dockerfile never reads still orders the builds, and the plan says
/// so on stderr and in the JSON.
#[test]
fn unused_depends_on_is_a_warning() {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"r.test\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n\n[images.base]\ncontext = \"base\"\n\n[images.app]\ncontext = \"app\"\ndepends_on = [\"base\"]\n",
    )
    .file("base/Dockerfile", "FROM scratch\n")
    .file("app/Dockerfile", "FROM base_image\n");
    let out = p.mab(&["plan"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: `app` depends on `base`, but its Dockerfile reads none of base's images"
        ) && stderr.contains("contexts = { NAME = \"target:base\" }"),
        "{stderr}"
    );
    let plan = json(&p, &["plan", "--format", "json"]);
    let app = find(&plan["builds"], "id", "app@linux-amd64");
    assert_eq!(strings(&app["depends_on"]), ["base@linux-amd64"]);
    assert!(!strings(&app["argv"]).contains(&"--build-context".to_string()));
    assert_eq!(plan["warnings"][0]["image"], "app");
    // Said as a named context, it is read and redirected.
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"r.test\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n\n[images.base]\ncontext = \"base\"\n\n[images.app]\ncontext = \"app\"\ncontexts = { base_image = \"target:base\" }\n",
    );
    let plan = json(&p, &["plan", "--format", "json"]);
    assert!(plan["warnings"].as_array().unwrap().is_empty());
    let app = find(&plan["builds"], "id", "app@linux-amd64");
    assert!(
        strings(&app["argv"])
            .contains(&"base_image=container-image://localhost/mab/base:linux-amd64".to_string())
    );
}

/// Named contexts come from `[defaults]`, the image and its platform overrides, the nearer
/// winning, and render with the platform.
#[test]
fn named_contexts_merge_and_render_per_platform() {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"r.test\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\ncontexts = { src = \"src\", base_image = \"docker-image://docker.io/library/busybox:1.36\" }\n\n[images.base]\ncontext = \"base\"\n\n[images.app]\ncontext = \"app\"\ncontexts = { assets = \"docker-image://r.test/assets:{{ platform.arch }}\" }\n\n[images.app.platform.\"linux/arm64\"]\ncontexts = { base_image = \"target:base\" }\n",
    )
    .file("src/README", "sources\n")
    .file("base/Dockerfile", "FROM scratch\n")
    .file("app/Dockerfile", "FROM base_image\nCOPY --from=src / /src\nCOPY --from=assets / /assets\n");
    let plan = json(&p, &["plan", "--format", "json", "app"]);
    let contexts = |id: &str| {
        let argv = strings(&find(&plan["builds"], "id", id)["argv"]);
        argv.windows(2)
            .filter(|w| w[0] == "--build-context")
            .map(|w| w[1].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        contexts("app@linux-amd64"),
        [
            "assets=docker-image://r.test/assets:amd64",
            "base_image=docker-image://docker.io/library/busybox:1.36",
            "src=src"
        ]
    );
    assert_eq!(
        contexts("app@linux-arm64"),
        [
            "assets=docker-image://r.test/assets:arm64",
            "base_image=container-image://localhost/mab/base:linux-arm64",
            "src=src"
        ]
    );
    assert_eq!(
        strings(&find(&plan["builds"], "id", "app@linux-arm64")["depends_on"]),
        ["base@linux-arm64"]
    );
    assert!(strings(&find(&plan["builds"], "id", "app@linux-amd64")["depends_on"]).is_empty());
}

/// Labels stay `--label` flags where a copy of the Dockerfile would change what the build
/// reads (an ignore file of the Dockerfile's own) or cannot say them (a line break).
#[test]
fn labels_stay_flags_where_a_copy_cannot_carry_them() {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"r.test\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n[builder]\noci_labels = false\n\n[images.own]\ncontext = \"own\"\nlabels = { a = \"b\" }\n\n[images.multi]\ncontext = \"multi\"\nlabels = { a = \"two\\nlines\" }\n\n[images.plain]\ncontext = \"plain\"\nlabels = { a = \"b\" }\n",
    )
    .file("own/Dockerfile", "FROM scratch\n")
    .file("own/Dockerfile.dockerignore", "secret\n")
    .file("multi/Dockerfile", "FROM scratch\n")
    .file("plain/Dockerfile", "FROM scratch\n");
    let plan = json(&p, &["plan", "--format", "json"]);
    for (id, flags) in [
        ("own@linux-amd64", true),
        ("multi@linux-amd64", true),
        ("plain@linux-amd64", false),
    ] {
        let b = find(&plan["builds"], "id", id);
        let argv = strings(&b["argv"]);
        assert_eq!(
            argv.contains(&"--label".to_string()),
            flags,
            "{id}: {argv:?}"
        );
        assert_eq!(b["dockerfile"].is_null(), flags, "{id}");
    }
}

/// podman 4.3.1 leaves `$TARGETOS` empty in a `FROM` line without a global `ARG TARGETOS`
/// ("invalid reference format"): the copy of the Dockerfile declares the ones `FROM` lines read,
/// after the parser directives and comments, and the plan says so.
#[test]
fn from_lines_reading_platform_args_get_them_declared_in_the_copy() {
    let p = Project::new();
    p.file(
        "Dockerfile",
        "# syntax=docker/dockerfile:1\n# the binary per OS\nARG TARGETARCH\nFROM --platform=$BUILDPLATFORM busybox AS build\nRUN echo hi > /x\nFROM binary-$TARGETOS:${TARGETARCH}\nCOPY --from=build /x /x\n",
    );
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"r.io/x\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n[images.app]\n",
    );
    let out = p.mab(&["plan"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // TARGETARCH has its global ARG already; TARGETOS gets one.
    assert!(
        text.contains("  # .mab/dockerfiles/app@linux-arm64 is Dockerfile with, after line 2: ARG TARGETOS  # FROM lines read them"),
        "{text}"
    );
    let plan = json(&p, &["plan", "--format", "json"]);
    let build = find(&plan["builds"], "id", "app@linux-arm64");
    assert_eq!(
        build["dockerfile"]["declare"]["instruction"],
        "ARG TARGETOS"
    );
    assert_eq!(build["dockerfile"]["declare"]["after_line"], 2);
}

/// A Dockerfile that declares the automatic args its `FROM` lines read gets no declaration.
#[test]
fn declared_platform_args_are_not_declared_again() {
    let p = Project::new();
    p.file("Dockerfile", "ARG TARGETOS\nFROM binary-$TARGETOS\n");
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"r.io/x\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n[images.app]\n",
    );
    let plan = json(&p, &["plan", "--format", "json"]);
    let build = find(&plan["builds"], "id", "app@linux-amd64");
    assert!(build["dockerfile"]["declare"].is_null(), "{build}");
}
