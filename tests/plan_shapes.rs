//! Plans of the shapes real multi-arch repositories are written in (issue 18): a conditional
//! `latest`, per-platform labels (home-assistant), and bake's `inherits` chains (binfmt,
//! compose). Each is snapshotted, and what it is about is also asserted on the JSON.

use crate::common;

use common::{Project, each, find, strings};
use insta_cmd::assert_cmd_snapshot;

const HEAD: &str = "[defaults]\nregistry = \"ghcr.io/acme\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[builder]\noci_labels = false\n";

fn project(config: &str) -> Project {
    let p = Project::new();
    p.file("Dockerfile", "FROM scratch AS binaries\nCOPY . /\n");
    p.file("multiarch.toml", &format!("{HEAD}{config}"));
    p
}

fn json(p: &Project) -> serde_json::Value {
    let out = p.mab(&["plan", "--format", "json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The tags each manifest list is pushed to, by image.
fn tags(plan: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    let lists = plan["manifests"].as_array().unwrap();
    lists
        .iter()
        .map(|m| {
            (
                m["image"].as_str().unwrap().to_string(),
                strings(&m["tags"]),
            )
        })
        .collect()
}

/// The `LABEL` instruction each build's Dockerfile copy gets.
fn label_of(plan: &serde_json::Value, build: &str) -> String {
    find(&plan["builds"], "id", build)["dockerfile"]["instruction"]
        .as_str()
        .unwrap()
        .to_string()
}

/// linuxserver's `latest` on the newest alpine only: the tag renders empty elsewhere and is
/// dropped, as docker/metadata-action drops it.
#[test]
fn an_empty_conditional_tag_is_dropped() {
    let p = project(
        "[vars]\nlatest = \"3.23\"\n\n[images.base]\nplatforms = [\"linux/amd64\"]\nmatrix = { alpine = [\"3.21\", \"3.22\", \"3.23\"] }\ntags = [\"{{ matrix.alpine }}\", \"{% if matrix.alpine == vars.latest %}latest{% endif %}\"]\n",
    );
    let plan = json(&p);
    assert_eq!(
        tags(&plan),
        [
            ("base-3.21".into(), vec!["ghcr.io/acme/base:3.21".into()]),
            ("base-3.22".into(), vec!["ghcr.io/acme/base:3.22".into()]),
            (
                "base-3.23".into(),
                vec![
                    "ghcr.io/acme/base:3.23".into(),
                    "ghcr.io/acme/base:latest".into()
                ]
            ),
        ]
    );
    p.settings()
        .bind(|| assert_cmd_snapshot!("empty_conditional_tag", p.mab(&["plan"])));
}

/// The workaround users reached for before: the same tag twice in one image is pushed once,
/// not an error naming the instance twice.
#[test]
fn a_tag_listed_twice_is_pushed_once() {
    let p = project(
        "[vars]\nversion = \"1.4.2\"\n\n[images.app]\ntags = [\"{{ vars.version }}\", \"latest\", \"1.4.2\"]\n",
    );
    let plan = json(&p);
    assert_eq!(
        tags(&plan),
        [(
            "app".into(),
            vec![
                "ghcr.io/acme/app:1.4.2".into(),
                "ghcr.io/acme/app:latest".into()
            ]
        )]
    );
    p.settings()
        .bind(|| assert_cmd_snapshot!("tag_listed_twice", p.mab(&["plan"])));
}

/// home-assistant's docker-base: each platform's image says its arch.
#[test]
fn labels_may_use_the_platform() {
    let p = project(
        "[images.base]\ntags = [\"1\"]\nlabels = { \"io.hass.arch\" = \"{{ platform.arch }}\", \"io.hass.type\" = \"base\" }\nannotations = { \"org.example.platform\" = \"{{ platform }}\" }\n",
    );
    let plan = json(&p);
    let amd64 = label_of(&plan, "base@linux-amd64");
    let arm64 = label_of(&plan, "base@linux-arm64");
    assert!(amd64.contains(r#""io.hass.arch"="amd64""#), "{amd64}");
    assert!(arm64.contains(r#""io.hass.arch"="arm64""#), "{arm64}");
    assert!(arm64.contains(r#""io.hass.type"="base""#), "{arm64}");
    let argv = strings(&find(&plan["builds"], "id", "base@linux-arm64")["argv"]);
    assert!(
        argv.windows(2)
            .any(|w| w == ["--annotation", "org.example.platform=linux/arm64"]),
        "{argv:?}"
    );
    p.settings()
        .bind(|| assert_cmd_snapshot!("per_platform_labels", p.mab(&["plan"])));
}

/// The platform override's labels and annotations merge over the image's, key by key.
#[test]
fn a_platform_override_merges_labels_and_annotations() {
    let p = project(
        "[images.base]\ntags = [\"1\"]\nlabels = { \"io.hass.arch\" = \"{{ platform.arch }}\", \"io.hass.base.name\" = \"alpine\" }\nannotations = { a = \"image\" }\n\n[images.base.platform.\"linux/arm64\"]\nlabels = { \"io.hass.arch\" = \"aarch64\" }\nannotations = { b = \"arm\" }\n",
    );
    let plan = json(&p);
    let arm64 = label_of(&plan, "base@linux-arm64");
    assert!(arm64.contains(r#""io.hass.arch"="aarch64""#), "{arm64}");
    assert!(arm64.contains(r#""io.hass.base.name"="alpine""#), "{arm64}");
    let amd64 = label_of(&plan, "base@linux-amd64");
    assert!(amd64.contains(r#""io.hass.arch"="amd64""#), "{amd64}");
    let annotations = |id: &str| {
        let argv = strings(&find(&plan["builds"], "id", id)["argv"]);
        argv.windows(2)
            .filter(|w| w[0] == "--annotation")
            .map(|w| w[1].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(annotations("base@linux-arm64"), ["a=image", "b=arm"]);
    assert_eq!(annotations("base@linux-amd64"), ["a=image"]);
    p.settings()
        .bind(|| assert_cmd_snapshot!("platform_override_labels", p.mab(&["plan"])));
}

/// tonistiigi/binfmt's bake file: `buildkit` inherits `mainline`, which inherits the abstract
/// `_common`. Later keys win, tables and platform overrides merge key by key, the abstract
/// root is never built, and inheriting orders nothing.
#[test]
fn an_inherits_chain_three_deep_with_an_abstract_root() {
    let p = project(
        r#"
[vars]
version = "8.1.5"

[images._common]
abstract = true
args = { QEMU_REPO = "https://github.com/qemu/qemu", QEMU_VERSION = "v7.0.0" }
labels = { "org.opencontainers.image.vendor" = "tonistiigi" }
target = "binaries"

[images._common.platform."linux/arm64"]
args = { CFLAGS = "-O2" }

[images.mainline]
inherits = ["_common"]
args = { QEMU_VERSION = "v{{ vars.version }}", QEMU_PATCHES = "cpu-max" }
tags = ["{{ vars.version }}"]

[images.buildkit]
inherits = ["mainline"]
repository = "ghcr.io/acme/binfmt"
tags = ["buildkit-{{ vars.version }}"]
args = { BINARY_PREFIX = "buildkit-" }

[images.buildkit.platform."linux/arm64"]
args = { EXTRA = "1" }
"#,
    );
    let plan = json(&p);
    assert_eq!(
        each(&plan["builds"], "id"),
        [
            "buildkit@linux-amd64",
            "buildkit@linux-arm64",
            "mainline@linux-amd64",
            "mainline@linux-arm64"
        ]
    );
    let args = |id: &str| {
        let argv = strings(&find(&plan["builds"], "id", id)["argv"]);
        argv.windows(2)
            .filter(|w| w[0] == "--build-arg" || w[0] == "--target")
            .map(|w| w[1].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        args("buildkit@linux-arm64"),
        [
            "binaries",
            "BINARY_PREFIX=buildkit-",
            "CFLAGS=-O2",
            "EXTRA=1",
            "QEMU_PATCHES=cpu-max",
            "QEMU_REPO=https://github.com/qemu/qemu",
            "QEMU_VERSION=v8.1.5"
        ]
    );
    assert_eq!(
        args("mainline@linux-amd64"),
        [
            "binaries",
            "QEMU_PATCHES=cpu-max",
            "QEMU_REPO=https://github.com/qemu/qemu",
            "QEMU_VERSION=v8.1.5"
        ]
    );
    assert!(label_of(&plan, "buildkit@linux-amd64").contains("tonistiigi"));
    // Inheriting is not depending: buildkit's builds wait for nothing.
    for b in ["buildkit@linux-amd64", "buildkit@linux-arm64"] {
        assert_eq!(
            find(&plan["builds"], "id", b)["depends_on"],
            serde_json::json!([])
        );
    }
    p.settings()
        .bind(|| assert_cmd_snapshot!("inherits_chain", p.mab(&["plan"])));
}

/// Names resolve across the files of a monorepo, and each inherited key keeps the file it is
/// written in: a context inherited from the root is relative to the root.
#[test]
fn inherits_across_files_keeps_each_path_relative_to_its_file() {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"ghcr.io/acme\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n\n[images._go]\nabstract = true\ncontext = \"shared\"\nargs = { GO = \"1.22\" }\n",
    );
    p.file("shared/Dockerfile", "FROM scratch\n");
    p.file(
        "services/api/multiarch.toml",
        "[images.api]\ninherits = [\".:_go\"]\nargs = { SERVICE = \"api\" }\n",
    );
    p.git_commit("fixture");
    let out = p
        .mab(&["plan", "--all", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let build = find(&plan["builds"], "id", "api@linux-amd64");
    let argv = strings(&build["argv"]);
    assert_eq!(argv.last().map(String::as_str), Some("shared"), "{argv:?}");
    assert!(argv.contains(&"GO=1.22".to_string()), "{argv:?}");
    assert!(argv.contains(&"SERVICE=api".to_string()), "{argv:?}");
}

/// A change to the file of an image it inherits from selects an image for `--changed-since`,
/// even when that file is no parent directory's.
#[test]
fn a_change_to_an_inherited_image_selects_the_heir() {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"ghcr.io/acme\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n",
    );
    p.file(
        "common/multiarch.toml",
        "[images._svc]\nabstract = true\nargs = { GO = \"1.22\" }\n",
    );
    p.file("api/Dockerfile", "FROM scratch\n");
    p.file(
        "api/multiarch.toml",
        "[images.api]\ninherits = [\"common:_svc\"]\n",
    );
    p.file("web/Dockerfile", "FROM scratch\n");
    p.file("web/multiarch.toml", "[images.web]\n");
    p.git_commit("fixture");
    p.file(
        "common/multiarch.toml",
        "[images._svc]\nabstract = true\nargs = { GO = \"1.23\" }\n",
    );
    let out = p
        .mab(&[
            "plan",
            "--all",
            "--changed-since",
            "HEAD",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(each(&plan["builds"], "id"), ["api@linux-amd64"]);
}

/// The context and `--file` of each build, by build id.
fn paths(plan: &serde_json::Value) -> Vec<(String, String, String)> {
    let builds = plan["builds"].as_array().unwrap();
    builds
        .iter()
        .map(|b| {
            let argv = strings(&b["argv"]);
            let file = argv.iter().position(|a| a == "--file").unwrap() + 1;
            assert_eq!(
                argv.last(),
                b["inputs"]["context"].as_str().map(String::from).as_ref(),
                "the context built is the one hashed"
            );
            (
                b["id"].as_str().unwrap().to_string(),
                b["inputs"]["context"].as_str().unwrap().to_string(),
                argv[file].clone(),
            )
        })
        .collect()
}

fn owned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

/// linuxserver's base images: `Dockerfile` for amd64 and `Dockerfile.aarch64` for arm64. The
/// edges follow each build's own Dockerfile: only the arm64 one reads `base`.
#[test]
fn a_platform_has_a_dockerfile_of_its_own() {
    let p = project(
        "[images.base]\ntags = [\"1\"]\n\n[images.app]\ntags = [\"latest\"]\n\n[images.app.platform.\"linux/arm64\"]\ndockerfile = \"Dockerfile.aarch64\"\n",
    );
    p.file(
        "Dockerfile.aarch64",
        "FROM ghcr.io/acme/base:1\nRUN echo aarch64\n",
    );
    let plan = json(&p);
    assert_eq!(
        paths(&plan)
            .into_iter()
            .filter(|(id, ..)| id.starts_with("app"))
            .collect::<Vec<_>>(),
        owned(&[
            ("app@linux-amd64", ".", "Dockerfile"),
            ("app@linux-arm64", ".", "Dockerfile.aarch64"),
        ])
    );
    let arm = find(&plan["builds"], "id", "app@linux-arm64");
    assert_eq!(strings(&arm["depends_on"]), ["base@linux-arm64"]);
    assert_eq!(arm["inputs"]["dockerfile"], "Dockerfile.aarch64");
    let amd = find(&plan["builds"], "id", "app@linux-amd64");
    assert!(strings(&amd["depends_on"]).is_empty());
    assert_eq!(amd["inputs"]["dockerfile"], "Dockerfile");
    p.settings()
        .bind(|| assert_cmd_snapshot!("platform_dockerfile", p.mab(&["plan"])));
}

/// A TensorFlow repository that builds arm/v7 from `tf_armv7/` and the rest from `tf/`: the
/// platform's context, and the image's `dockerfile` relative to it.
#[test]
fn a_platform_has_a_context_of_its_own() {
    let p = project(
        "[images.tf]\nplatforms = [\"linux/amd64\", \"linux/arm64\", \"linux/arm/v7\"]\ncontext = \"tf\"\ndockerfile = \"Dockerfile.cpu\"\ntags = [\"2.16\"]\n\n[images.tf.platform.\"linux/arm/v7\"]\ncontext = \"tf_armv7\"\n",
    );
    p.file("tf/Dockerfile.cpu", "FROM scratch\nCOPY . /\n");
    p.file("tf_armv7/Dockerfile.cpu", "FROM scratch\nCOPY . /armv7\n");
    let plan = json(&p);
    assert_eq!(
        paths(&plan),
        owned(&[
            ("tf@linux-amd64", "tf", "tf/Dockerfile.cpu"),
            ("tf@linux-arm64", "tf", "tf/Dockerfile.cpu"),
            ("tf@linux-arm-v7", "tf_armv7", "tf_armv7/Dockerfile.cpu"),
        ])
    );
    p.settings()
        .bind(|| assert_cmd_snapshot!("platform_context", p.mab(&["plan"])));
}

/// home-assistant's docker-base: one image per Python version, each built from its own
/// directory (`python/{{ matrix.python }}`).
#[test]
fn a_matrix_over_directories() {
    let p = project(
        "[images.python]\nmatrix = { python = [\"3.12\", \"3.13\"] }\ncontext = \"python/{{ matrix.python }}\"\ntags = [\"{{ matrix.python }}\"]\n",
    );
    p.file("python/3.12/Dockerfile", "FROM scratch\nCOPY . /\n");
    p.file("python/3.13/Dockerfile", "FROM scratch\nCOPY . /\n");
    let plan = json(&p);
    assert_eq!(
        paths(&plan),
        owned(&[
            (
                "python-3.12@linux-amd64",
                "python/3.12",
                "python/3.12/Dockerfile"
            ),
            (
                "python-3.12@linux-arm64",
                "python/3.12",
                "python/3.12/Dockerfile"
            ),
            (
                "python-3.13@linux-amd64",
                "python/3.13",
                "python/3.13/Dockerfile"
            ),
            (
                "python-3.13@linux-arm64",
                "python/3.13",
                "python/3.13/Dockerfile"
            ),
        ])
    );
    p.settings()
        .bind(|| assert_cmd_snapshot!("matrix_over_directories", p.mab(&["plan"])));
    // `--changed-since` follows each instance's own context: a change in one directory
    // selects only the instance built from it.
    p.git_commit("fixture");
    p.file("python/3.13/requirements.txt", "wheel\n");
    let out = p
        .mab(&["plan", "--changed-since", "HEAD", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        each(&plan["builds"], "id"),
        ["python-3.13@linux-amd64", "python-3.13@linux-arm64"]
    );
}

/// cross-rs: `Dockerfile.{{ matrix.target }}`.
#[test]
fn a_dockerfile_per_matrix_value() {
    let p = project(
        "[images.cross]\nplatforms = [\"linux/amd64\"]\nmatrix = { target = [\"aarch64\", \"mips\"] }\ndockerfile = \"docker/Dockerfile.{{ matrix.target }}\"\ntags = [\"{{ matrix.target }}\"]\n",
    );
    p.file("docker/Dockerfile.aarch64", "FROM scratch\n");
    p.file("docker/Dockerfile.mips", "FROM scratch\n");
    let plan = json(&p);
    assert_eq!(
        paths(&plan),
        owned(&[
            (
                "cross-aarch64@linux-amd64",
                ".",
                "docker/Dockerfile.aarch64"
            ),
            ("cross-mips@linux-amd64", ".", "docker/Dockerfile.mips"),
        ])
    );
    p.settings()
        .bind(|| assert_cmd_snapshot!("dockerfile_per_matrix_value", p.mab(&["plan"])));
}

const WINDOWS_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// caddy-docker's shared tags: the Linux platforms built here, `windows/amd64` taken from an
/// image built elsewhere, by tag. Nothing is built for it; the list adds it by the tag, which
/// `mab plan` does not resolve (a run does, once).
#[test]
fn an_external_platform_by_tag() {
    let p = project(
        "[images.caddy]\nplatforms = [\"linux/amd64\", \"linux/arm64\", \"windows/amd64\"]\ntags = [\"2.8\"]\n\n[images.caddy.platform.\"windows/amd64\"]\nfrom = \"docker://ghcr.io/acme/caddy-windows:2.8-ltsc2022\"\n",
    );
    let plan = json(&p);
    let builds: Vec<&str> = plan["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(builds, ["caddy@linux-amd64", "caddy@linux-arm64"]);
    let list = &plan["manifests"][0];
    assert_eq!(
        strings(&list["platforms"]),
        ["linux/amd64", "linux/arm64", "windows/amd64"]
    );
    let external = &list["external"][0];
    assert_eq!(external["platform"], "windows/amd64");
    assert_eq!(external["from"], "ghcr.io/acme/caddy-windows:2.8-ltsc2022");
    assert!(external.get("digest").is_none(), "{external}");
    assert_eq!(
        strings(&external["add"]).last().unwrap(),
        "docker://ghcr.io/acme/caddy-windows:2.8-ltsc2022"
    );
    p.settings()
        .bind(|| assert_cmd_snapshot!("external_platform_by_tag", p.mab(&["plan"])));
}

/// A split CI pipeline: the arm64 image was pushed by another job, and is named by digest.
#[test]
fn an_external_platform_by_digest() {
    let p = project(&format!(
        "[images.app]\ntags = [\"1\"]\n\n[images.app.platform.\"linux/arm64\"]\nfrom = \"docker://ghcr.io/acme/app-arm64@{WINDOWS_DIGEST}\"\n"
    ));
    let plan = json(&p);
    assert_eq!(plan["builds"].as_array().unwrap().len(), 1);
    let external = &plan["manifests"][0]["external"][0];
    assert_eq!(external["digest"], WINDOWS_DIGEST);
    assert_eq!(
        strings(&external["add"]).last().unwrap(),
        &format!("docker://ghcr.io/acme/app-arm64@{WINDOWS_DIGEST}")
    );
    assert_eq!(
        strings(&plan["manifests"][0]["depends_on"]),
        ["app@linux-amd64"]
    );
    p.settings()
        .bind(|| assert_cmd_snapshot!("external_platform_by_digest", p.mab(&["plan"])));
}

/// `--platform` keeps or leaves out an external platform like a built one.
#[test]
fn platform_selection_keeps_or_drops_an_external_platform() {
    let p = project(
        "[images.app]\ntags = [\"1\"]\n\n[images.app.platform.\"linux/arm64\"]\nfrom = \"docker://ghcr.io/acme/app:1-arm64\"\n",
    );
    let plan = |platform: &str| -> serde_json::Value {
        let out = p
            .mab(&["plan", "--format", "json", "--platform", platform])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let amd64 = plan("linux/amd64");
    assert!(amd64["manifests"][0].get("external").is_none());
    let arm64 = plan("linux/arm64");
    assert!(arm64["builds"].as_array().unwrap().is_empty());
    assert_eq!(
        arm64["manifests"][0]["external"][0]["platform"],
        "linux/arm64"
    );
}

/// An image built on another's platform that is taken `from` a registry image reads that
/// image (an input, like any base), with no build to wait for.
#[test]
fn a_dependent_reads_an_external_platform_from_its_registry_image() {
    let p = project(
        "[images.base]\ntags = [\"1\"]\n\n[images.base.platform.\"linux/arm64\"]\nfrom = \"docker://ghcr.io/acme/base-arm64:1\"\n\n[images.app]\ncontext = \"app\"\ntags = [\"1\"]\n",
    );
    p.file("app/Dockerfile", "FROM ghcr.io/acme/base:1\n");
    let plan = json(&p);
    let arm64 = find(&plan["builds"], "id", "app@linux-arm64");
    assert!(
        arm64["depends_on"].as_array().unwrap().is_empty(),
        "{arm64}"
    );
    let argv = strings(&arm64["argv"]);
    assert!(
        argv.windows(2).any(|w| w[0] == "--build-context"
            && w[1] == "ghcr.io/acme/base:1=docker-image://ghcr.io/acme/base-arm64:1"),
        "{argv:?}"
    );
    assert_eq!(
        arm64["inputs"]["bases"][0]["reference"],
        "ghcr.io/acme/base-arm64:1"
    );
    let amd64 = find(&plan["builds"], "id", "app@linux-amd64");
    assert_eq!(strings(&amd64["depends_on"]), ["base@linux-amd64"]);
}

/// With `[nodes]`, an external platform needs no node that builds it: nothing is built.
#[test]
fn an_external_platform_needs_no_build_node() {
    let p = Project::new();
    p.file("Dockerfile", "FROM scratch\n");
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"ghcr.io/acme\"\nplatforms = [\"linux/amd64\", \"windows/amd64\"]\ntags = [\"1\"]\n\n\
         [nodes.x86]\nurl = \"ssh://ci@x86.test/run/podman/podman.sock\"\nplatforms = [\"linux/amd64\"]\n\n\
         [images.caddy]\n\n[images.caddy.platform.\"windows/amd64\"]\nfrom = \"docker://ghcr.io/acme/caddy:1-windows\"\n",
    );
    let plan = json(&p);
    assert_eq!(each(&plan["builds"], "id"), ["caddy@linux-amd64"]);
    assert_eq!(
        plan["manifests"][0]["external"][0]["platform"],
        "windows/amd64"
    );
}

/// argo-cd: one build per platform and one index, pushed to two repositories in two registries
/// (each short tag to each), plus a tag written as a whole reference, pushed exactly there.
/// The index is pushed once, to the first tag, and copied registry-side to every other one.
#[test]
fn two_repositories_and_a_full_reference_tag() {
    let p = project(
        "[vars]\nversion = \"3.1.0\"\n\n[images.argocd]\nrepository = [\"quay.io/argoproj/argocd\", \"ghcr.io/argoproj/argo-cd/argocd\"]\ntags = [\"v{{ vars.version }}\", \"quay.io/argoproj/argocd:latest\", \"ghcr.io/argoproj/argo-cd/argocd:v{{ vars.version }}\"]\n",
    );
    let plan = json(&p);
    assert_eq!(
        tags(&plan),
        [(
            "argocd".into(),
            vec![
                "quay.io/argoproj/argocd:v3.1.0".into(),
                "ghcr.io/argoproj/argo-cd/argocd:v3.1.0".into(),
                "quay.io/argoproj/argocd:latest".into(),
            ]
        )]
    );
    assert_eq!(
        each(&plan["builds"], "id").len(),
        2,
        "one build per platform"
    );
    let publish = plan["manifests"][0]["publish"].as_array().unwrap();
    let pushes: Vec<_> = publish.iter().filter(|s| s["step"] == "push").collect();
    assert_eq!(pushes.len(), 1, "the index is pushed once");
    assert_eq!(pushes[0]["to"], "quay.io/argoproj/argocd:v3.1.0");
    let copies: Vec<Vec<String>> = publish
        .iter()
        .filter(|s| s["step"] == "copy")
        .map(|s| strings(&s["argv"]))
        .collect();
    assert_eq!(copies.len(), 2);
    for argv in &copies {
        assert_eq!(
            argv[argv.len() - 2],
            "docker://quay.io/argoproj/argocd@<digest of the pushed index>",
            "every copy reads the index where it was pushed"
        );
    }
    assert_eq!(
        copies[0].last().unwrap(),
        "docker://ghcr.io/argoproj/argo-cd/argocd:v3.1.0"
    );
    p.settings()
        .bind(|| assert_cmd_snapshot!("two_repositories_full_reference", p.mab(&["plan"])));
}

/// linuxserver's `amd64-latest` and home-assistant's `ghcr.io/home-assistant/aarch64-base:TAG`:
/// a platform's own tags get its image manifest, copied from the index pushed; a short one in
/// every repository, a whole reference exactly there.
#[test]
fn per_platform_tags_short_and_full() {
    let p = project(
        "[vars]\nversion = \"3.21\"\n\n[images.base]\nrepository = [\"ghcr.io/linuxserver/baseimage-alpine\", \"lscr.io/linuxserver/baseimage-alpine\"]\ntags = [\"{{ vars.version }}\", \"latest\"]\n\n[images.base.platform.\"linux/amd64\"]\ntags = [\"amd64-latest\", \"amd64-{{ vars.version }}\"]\n\n[images.base.platform.\"linux/arm64\"]\ntags = [\"ghcr.io/home-assistant/aarch64-base:{{ vars.version }}\"]\n",
    );
    let plan = json(&p);
    let list = &plan["manifests"][0];
    let own: Vec<(String, String)> = list["platform_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["platform"].as_str().unwrap().to_string(),
                t["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let pair = |p: &str, t: &str| (p.to_string(), t.to_string());
    assert_eq!(
        own,
        [
            pair(
                "linux/amd64",
                "ghcr.io/linuxserver/baseimage-alpine:amd64-latest"
            ),
            pair(
                "linux/amd64",
                "ghcr.io/linuxserver/baseimage-alpine:amd64-3.21"
            ),
            pair(
                "linux/amd64",
                "lscr.io/linuxserver/baseimage-alpine:amd64-latest"
            ),
            pair(
                "linux/amd64",
                "lscr.io/linuxserver/baseimage-alpine:amd64-3.21"
            ),
            pair("linux/arm64", "ghcr.io/home-assistant/aarch64-base:3.21"),
        ]
    );
    assert_eq!(
        each(&plan["builds"], "id").len(),
        2,
        "each platform built once"
    );
    // Each is a copy of the platform's image in the index, not of the index.
    let copies: Vec<&serde_json::Value> = list["publish"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "copy" && s.get("platform").is_some())
        .collect();
    assert_eq!(copies.len(), 5);
    let argv = strings(&copies[4]["argv"]);
    assert_eq!(
        argv[argv.len() - 2],
        "docker://ghcr.io/linuxserver/baseimage-alpine@<digest of its linux/arm64 image>"
    );
    p.settings()
        .bind(|| assert_cmd_snapshot!("per_platform_tags", p.mab(&["plan"])));
}
