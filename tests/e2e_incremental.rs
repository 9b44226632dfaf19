//! Incremental runs end to end, with the real podman and a real registry on 127.0.0.1: what a
//! rerun builds and pushes when nothing, one image, a chain's root, a tag or a base image
//! changed. Needs what scripts/test-env.sh sets up and `MAB_E2E=1` (see tests/e2e.rs).

use crate::common;

use common::BASE;

use std::collections::BTreeMap;

use common::Project;
use common::registry::Registry;
use mab::exec::{Report, Status};

/// `mab run ARGS` in `p` with a report, which it returns; the run must succeed.
fn run(p: &Project, args: &[&str]) -> Report {
    run_with(p, args, &[])
}

fn run_with(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Report {
    p.test()
        .real_podman()
        .args(["run", "--progress", "plain"])
        .report()
        .args(args)
        .envs(env.iter().copied())
        .status(0)
        .run()
        .report()
}

/// `build id -> status` and `image -> status` of a report.
fn statuses(report: &Report) -> (BTreeMap<&str, &Status>, BTreeMap<&str, &Status>) {
    (
        report
            .builds
            .iter()
            .map(|b| (b.id.as_str(), &b.status))
            .collect(),
        report
            .manifests
            .iter()
            .map(|m| (m.image.as_str(), &m.status))
            .collect(),
    )
}

/// The images whose builds ran, sorted.
fn built(report: &Report) -> Vec<&str> {
    let mut images: Vec<&str> = report
        .builds
        .iter()
        .filter(|b| b.status == Status::Built)
        .map(|b| b.image.as_str())
        .collect();
    images.sort();
    images.dedup();
    images
}

/// The digest each `IMAGE:TAG` has in the registry.
fn digests(registry: &Registry, repo: &str, refs: &[&str]) -> BTreeMap<String, String> {
    refs.iter()
        .map(|r| {
            let raw = registry
                .raw(&format!("{repo}/{r}"))
                .unwrap_or_else(|| panic!("{r} is not in the registry"));
            (r.to_string(), serde_json::to_string(&raw).unwrap())
        })
        .collect()
}

fn project(registry: &Registry, tags: &str) -> Project {
    // Two chains: root-a -> leaf-a, root-b -> leaf-b.
    common::registry::chained_project(
        registry,
        "inc",
        tags,
        &[
            ("root-a", None),
            ("leaf-a", Some("root-a")),
            ("root-b", None),
            ("leaf-b", Some("root-b")),
        ],
    )
}

const TAGS: [&str; 4] = ["root-a:1", "leaf-a:1", "root-b:1", "leaf-b:1"];

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn reruns_build_only_what_changed() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let repo = format!("{}/inc", registry.host());
    let p = project(&registry, "[\"1\"]");
    let cold = run(&p, &["--jobs", "2"]);
    assert_eq!(built(&cold), ["leaf-a", "leaf-b", "root-a", "root-b"]);
    let first = digests(&registry, &repo, &TAGS);

    // A new commit changes mab's revision label, not an input: nothing is built or pushed.
    p.git_commit("nothing changed");
    let noop = run(&p, &[]);
    let (builds, lists) = statuses(&noop);
    assert!(
        builds.values().all(|s| **s == Status::Unchanged),
        "{builds:?}"
    );
    assert!(
        lists.values().all(|s| **s == Status::Unchanged),
        "{lists:?}"
    );
    assert_eq!(digests(&registry, &repo, &TAGS), first);

    // One leaf changes: it alone is built, on its dependency's published image, and only its
    // index moves.
    p.file("leaf-a/file", "changed");
    let leaf = run(&p, &[]);
    assert_eq!(built(&leaf), ["leaf-a"]);
    let after_leaf = digests(&registry, &repo, &TAGS);
    for tag in TAGS {
        assert_eq!(
            after_leaf[tag] != first[tag],
            tag == "leaf-a:1",
            "{tag} moved or did not"
        );
    }
    let arm = ("linux", "arm64", None);
    let read = |image: &str, path: &str| registry.read_file(&format!("{repo}/{image}"), arm, path);
    assert_eq!(read("leaf-a:1", "/leaf-a").as_deref(), Some("changed"));
    assert_eq!(read("leaf-a:1", "/root-a-arch").as_deref(), Some("aarch64"));

    // The root of a chain changes: that chain is built, the other is not.
    p.file("root-b/Dockerfile", "FROM localhost/mab-test/busybox:latest\nCOPY file /root-b\nRUN uname -m > /root-b-arch && echo 2 > /root-b-v\n");
    let root = run(&p, &[]);
    assert_eq!(built(&root), ["leaf-b", "root-b"]);
    let after_root = digests(&registry, &repo, &TAGS);
    for tag in TAGS {
        assert_eq!(
            after_root[tag] != after_leaf[tag],
            tag.ends_with("-b:1"),
            "{tag} moved or did not"
        );
    }
    assert_eq!(read("leaf-b:1", "/root-b-v").as_deref(), Some("2"));

    // A new tag on unchanged inputs: nothing is built, the tag names the same index.
    let toml = std::fs::read_to_string(p.path().join("multiarch.toml")).unwrap();
    p.file(
        "multiarch.toml",
        &toml.replace("tags = [\"1\"]", "tags = [\"1\", \"2\"]"),
    );
    let tagged = run(&p, &[]);
    assert!(built(&tagged).is_empty(), "{tagged:?}");
    for image in ["root-a", "leaf-a", "root-b", "leaf-b"] {
        let one = registry.raw(&format!("{repo}/{image}:1")).unwrap();
        let two = registry.raw(&format!("{repo}/{image}:2")).unwrap();
        assert_eq!(one, two, "{image}:2 names the index of {image}:1");
    }

    // --rebuild builds everything again.
    let rebuilt = run(&p, &["--rebuild", "--jobs", "2"]);
    assert_eq!(built(&rebuilt), ["leaf-a", "leaf-b", "root-a", "root-b"]);
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_base_image_that_moved_in_the_registry_rebuilds_its_dependents() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let host = registry.host();
    // The upstream: another project that publishes the base image.
    let upstream = Project::new();
    let upstream_config = |version: &str| {
        upstream.file(
            "multiarch.toml",
            &format!(
                "[defaults]\nregistry = \"{host}/up\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[images.base]\ncontext = \".\"\nargs = {{ V = \"{version}\" }}\n"
            ),
        );
    };
    upstream.file(
        "Dockerfile",
        &format!("FROM {BASE}\nARG V\nRUN echo $V > /v\n"),
    );
    upstream_config("v1");
    run(&upstream, &[]);

    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nregistry = \"{host}/down\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[images.app]\ncontext = \".\"\n"
        ),
    );
    p.file(
        "Dockerfile",
        &format!("FROM {host}/up/base:1\nRUN cp /v /app-v\n"),
    );
    assert_eq!(built(&run(&p, &[])), ["app"]);
    assert!(built(&run(&p, &[])).is_empty(), "nothing moved yet");

    // The base moves under the same tag: the app is built again, on the new base.
    upstream_config("v2");
    assert_eq!(built(&run(&upstream, &[])), ["base"]);
    assert_eq!(built(&run(&p, &[])), ["app"]);
    let got = registry.read_file(
        &format!("{host}/down/app:1"),
        ("linux", "arm64", None),
        "/app-v",
    );
    assert_eq!(got.as_deref(), Some("v2"));
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn the_registry_cache_serves_a_build_after_the_local_storage_is_gone() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let host = registry.host();
    // A fresh storage has no local base image: it comes from the registry too, published by
    // mab from the local one.
    let lib = Project::new();
    lib.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nregistry = \"{host}/lib\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[images.busybox]\ncontext = \".\"\n"
        ),
    );
    lib.file("Dockerfile", &format!("FROM {BASE}\nLABEL layer=base\n"));
    run(&lib, &[]);
    let storage = tempfile::tempdir().unwrap();
    let p = Project::new();
    let config = |n: u32| {
        let root = storage.path().join(format!("root-{n}"));
        let runroot = storage.path().join(format!("runroot-{n}"));
        p.file(
            "multiarch.toml",
            &format!(
                "[defaults]\nregistry = \"{host}/cached\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\ncache = \"registry\"\n\n\
                 [registries.\"{host}\"]\ninsecure = true\n\n\
                 [images.app]\ncontext = \".\"\n"
            ),
        );
        format!(
            "podman --root {} --runroot {}",
            root.display(),
            runroot.display()
        )
    };
    // No ARG before the RUN steps: buildah 1.28 does not look an ARG step up in a registry
    // cache (buildah#4315), so every step after one would run again.
    p.file(
        "Dockerfile",
        &format!("FROM {host}/lib/busybox:1\nRUN echo slow > /slow\nRUN uname -m > /arch\n"),
    );
    let podman = config(1);
    let cold = run_with(&p, &[], &[("MAB_PODMAN", &podman)]);
    assert_eq!(built(&cold), ["app"]);
    let logs = |report: &Report| -> Vec<String> {
        report
            .builds
            .iter()
            .map(|b| std::fs::read_to_string(&b.log).unwrap())
            .collect()
    };
    for log in logs(&cold) {
        assert!(log.contains("Pushing cache"), "{log}");
    }

    // A new, empty storage, as on a fresh CI machine: each RUN step comes from the cache.
    let podman = config(2);
    let warm = run_with(&p, &["--rebuild"], &[("MAB_PODMAN", &podman)]);
    assert_eq!(built(&warm), ["app"]);
    for log in logs(&warm) {
        let lines: Vec<&str> = log.lines().collect();
        let runs: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("STEP") && lines[i].contains(": RUN "))
            .collect();
        assert_eq!(runs.len(), 2, "{log}");
        for i in runs {
            assert!(
                lines
                    .get(i + 1)
                    .is_some_and(|l| l.starts_with("--> Cache pulled from remote")),
                "{} did not come from the cache:\n{log}",
                lines[i]
            );
        }
    }
    let got = registry.read_file(
        &format!("{host}/cached/app:1"),
        ("linux", "arm64", None),
        "/arch",
    );
    assert_eq!(got.as_deref(), Some("aarch64"));
}

/// A platform's own Dockerfile is an input of that platform's build: a rerun with nothing
/// changed builds nothing and leaves every digest where it was; a change to
/// `Dockerfile.aarch64` alone rebuilds the image, and its arm64 image shows the change.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_platform_dockerfile_is_an_input_of_its_build() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let host = registry.host();
    let repo = format!("{host}/inc");
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nregistry = \"{repo}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[images.lsio]\ncontext = \"{{{{ vars.dir }}}}\"\n\n[images.lsio.platform.\"linux/arm64\"]\ndockerfile = \"Dockerfile.aarch64\"\n\n[vars]\ndir = \"lsio\"\n"
        ),
    );
    p.file(
        "lsio/Dockerfile",
        &format!("FROM {BASE}\nCOPY which /which\n"),
    );
    p.file(
        "lsio/Dockerfile.aarch64",
        &format!("FROM {BASE}\nCOPY which.aarch64 /which\n"),
    );
    p.file("lsio/which", "Dockerfile");
    p.file("lsio/which.aarch64", "Dockerfile.aarch64");
    p.git_commit("fixture");
    let cold = run(&p, &[]);
    assert_eq!(built(&cold), ["lsio"]);
    let first = digests(&registry, &repo, &["lsio:1"]);

    let noop = run(&p, &[]);
    let (builds, lists) = statuses(&noop);
    assert!(
        builds.values().all(|s| **s == Status::Unchanged),
        "{builds:?}"
    );
    assert!(
        lists.values().all(|s| **s == Status::Unchanged),
        "{lists:?}"
    );
    assert_eq!(digests(&registry, &repo, &["lsio:1"]), first);

    p.file(
        "lsio/Dockerfile.aarch64",
        &format!("FROM {BASE}\nCOPY which.aarch64 /which\nCOPY which /also\n"),
    );
    let changed = run(&p, &[]);
    assert_eq!(built(&changed), ["lsio"]);
    assert_ne!(digests(&registry, &repo, &["lsio:1"]), first);
    let read =
        |arch, path| registry.read_file(&format!("{repo}/lsio:1"), ("linux", arch, None), path);
    assert_eq!(read("arm64", "/also").as_deref(), Some("Dockerfile"));
    assert_eq!(read("amd64", "/which").as_deref(), Some("Dockerfile"));
    assert_eq!(read("amd64", "/also"), None);
}
