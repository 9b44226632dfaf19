//! A monorepo of several `multiarch.toml` files, built by the tests in a temporary git
//! repository: discovery, inherited defaults, cross-file dependencies and `--changed-since`.

use crate::common;

use common::{Project, each, find, strings};
use serde_json::Value;

/// The root holds only defaults; `libs/base` is the base image, `services/api` builds FROM it
/// (found from the Dockerfile), `services/worker` names it in `depends_on` (qualified) and
/// watches `libs/proto`. `vendor/` is git-ignored and `node_modules/` never searched: their
/// files must not be found.
fn monorepo() -> Project {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        r#"
[defaults]
registry  = "r.example/acme"
platforms = ["linux/amd64", "linux/arm64"]
tags      = ["{{ vars.version }}"]
labels    = { team = "platform" }

[vars]
version = "1.0"
"#,
    )
    .file(".gitignore", "vendor/\n")
    .file(
        "libs/base/multiarch.toml",
        "[images.base]\nlabels = { team = \"core\" }\n",
    )
    .file("libs/base/Dockerfile", "FROM scratch\nCOPY base.txt /\n")
    .file("libs/base/base.txt", "base\n")
    .file("libs/proto/api.proto", "syntax = \"proto3\";\n")
    .file(
        "services/api/multiarch.toml",
        "[vars]\nversion = \"2.0\"\n\n[images.api]\n",
    )
    .file(
        "services/api/Dockerfile",
        "FROM r.example/acme/base:1.0\nCOPY main.go /\n",
    )
    .file("services/api/main.go", "package main\n")
    .file("services/api/README.md", "docs\n")
    .file("services/api/.dockerignore", "# docs are not sent\n*.md\n")
    .file(
        "services/worker/multiarch.toml",
        "[images.worker]\ndepends_on = [\"libs/base:base\"]\nwatch = [\"../../libs/proto\"]\n",
    )
    .file(
        "services/worker/Dockerfile",
        "ARG BASE=r.example/acme/base:1.0\nFROM ${BASE}\nCOPY app.sh /\n",
    )
    .file("services/worker/app.sh", "echo work\n")
    .file(
        "vendor/thing/multiarch.toml",
        "[images.vendored]\nplatforms = [\"linux/amd64\"]\n",
    )
    .file("vendor/thing/Dockerfile", "FROM scratch\n")
    .file(
        "node_modules/pkg/multiarch.toml",
        "[images.npm]\nplatforms = [\"linux/amd64\"]\n",
    )
    .file("node_modules/pkg/Dockerfile", "FROM scratch\n");
    p.git_commit("the monorepo");
    p
}

fn plan_json(p: &Project, dir: &str, args: &[&str]) -> Value {
    let mut cmd = p.mab(&[&["plan", "--format", "json"], args].concat());
    cmd.current_dir(p.path().join(dir));
    let out = cmd.output().expect("mab runs");
    assert!(
        out.status.success(),
        "mab plan {args:?} in {dir} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON plan")
}

/// `mab plan ARGS` at the root, as text.
fn plan_text(p: &Project, args: &[&str]) -> String {
    let out = p.mab(&[&["plan"], args].concat()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn manifests(plan: &Value) -> Vec<String> {
    each(&plan["manifests"], "image")
}

fn build<'a>(plan: &'a Value, id: &str) -> &'a Value {
    find(&plan["builds"], "id", id)
}

#[test]
fn discovery_finds_every_file_but_ignored_ones_and_links_them() {
    let p = monorepo();
    // At the root, whose file defines no image: every file below, as with --all.
    for args in [&[][..], &["--all"][..]] {
        let plan = plan_json(&p, ".", args);
        assert_eq!(
            strings(&plan["files"]),
            [
                "libs/base/multiarch.toml",
                "multiarch.toml",
                "services/api/multiarch.toml",
                "services/worker/multiarch.toml"
            ]
        );
        assert_eq!(manifests(&plan), ["api", "base", "worker"]);
        // Cross-file edges, per platform: from a FROM line and from a qualified depends_on.
        let api = build(&plan, "api@linux-arm64");
        assert_eq!(strings(&api["depends_on"]), ["base@linux-arm64"]);
        assert!(strings(&api["argv"]).contains(
            &"r.example/acme/base:1.0=container-image://localhost/mab/base:linux-arm64".into()
        ));
        let worker = build(&plan, "worker@linux-amd64");
        assert_eq!(strings(&worker["depends_on"]), ["base@linux-amd64"]);
        assert!(strings(&worker["argv"]).contains(&"BASE=localhost/mab/base:linux-amd64".into()));
        // Paths are relative to the root podman runs in.
        let argv = strings(&worker["argv"]);
        assert_eq!(argv.last().unwrap(), "services/worker");
        // Its labels are set in a copy of its Dockerfile, which --file names.
        assert_eq!(worker["dockerfile"]["base"], "services/worker/Dockerfile");
        assert!(argv.contains(&".mab/dockerfiles/worker@linux-amd64".into()));
    }
}

#[test]
fn defaults_are_inherited_nearest_first() {
    let p = monorepo();
    let plan = plan_json(&p, ".", &["--all"]);
    let tags = |image: &str| strings(&find(&plan["manifests"], "image", image)["tags"]);
    // registry and tags from the root; `version` from the root, but api's file overrides it.
    assert_eq!(tags("base"), ["r.example/acme/base:1.0"]);
    assert_eq!(tags("api"), ["r.example/acme/api:2.0"]);
    // Tables merge key by key; the image's own value wins.
    let labels = |id: &str| build(&plan, id)["dockerfile"]["instruction"].to_string();
    assert!(labels("base@linux-amd64").contains(r#"\"team\"=\"core\""#));
    assert!(labels("api@linux-amd64").contains(r#"\"team\"=\"platform\""#));

    // In a service's directory: the whole monorepo is loaded, as its root defines no image,
    // and the service's own images are selected, with what they depend on.
    let plan = plan_json(&p, "services/api", &[]);
    assert_eq!(plan["files"].as_array().unwrap().len(), 4);
    assert_eq!(
        plan["workdir"],
        p.path().canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(manifests(&plan), ["api", "base"]);
    let plan = plan_json(&p, ".", &["-f", "services/worker/multiarch.toml"]);
    assert_eq!(manifests(&plan), ["base", "worker"]);
}

#[test]
fn a_file_below_a_root_with_images_stands_alone_but_inherits() {
    let p = monorepo();
    // A root that builds an image of its own is a project, not a monorepo's root: a file
    // below it is planned alone, with the defaults of the files above it.
    p.file(
        "multiarch.toml",
        &(std::fs::read_to_string(p.path().join("multiarch.toml")).unwrap()
            + "\n[images.tools]\ncontext = \"libs/base\"\n"),
    );
    let plan = plan_json(&p, "services/api", &[]);
    assert_eq!(strings(&plan["files"]), ["multiarch.toml"]);
    assert_eq!(manifests(&plan), ["api"]);
    // base is not in the plan: api reads it from the registry.
    let api = build(&plan, "api@linux-arm64");
    assert!(api["depends_on"].as_array().unwrap().is_empty());
    assert_eq!(strings(&api["argv"]).last().unwrap(), ".");
    let labels = api["dockerfile"]["instruction"].as_str().unwrap();
    assert!(labels.contains(r#""team"="platform""#), "{labels}");
    assert_eq!(
        strings(&plan["manifests"][0]["tags"]),
        ["r.example/acme/api:2.0"]
    );
    // The whole tree is still one plan with --all.
    let plan = plan_json(&p, ".", &["--all"]);
    assert_eq!(manifests(&plan), ["api", "base", "tools", "worker"]);
}

#[test]
fn a_name_defined_in_two_files_is_an_error_naming_both() {
    let p = monorepo();
    p.file("services/other/multiarch.toml", "[images.base]\n")
        .file("services/other/Dockerfile", "FROM scratch\n");
    let out = p.mab(&["plan", "--all"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "image `base` is defined in both libs/base/multiarch.toml and services/other/multiarch.toml"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("╭─[libs/base/multiarch.toml:1:9]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("╭─[services/other/multiarch.toml:1:9]"),
        "{stderr}"
    );
}

#[test]
fn builder_settings_must_agree_across_files() {
    let p = monorepo();
    p.file(
        "services/api/multiarch.toml",
        "[builder]\nretries = 1\n[images.api]\n",
    )
    .file(
        "services/worker/multiarch.toml",
        "[builder]\nretries = 5\n[images.worker]\n",
    );
    let out = p.mab(&["plan", "--all"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "`[builder] retries` is 1 in services/api/multiarch.toml but 5 in services/worker/"
        ),
        "{stderr}"
    );
}

/// `--changed-since REV` at the root: the images it selects and why.
fn changed(p: &Project, rev: &str) -> Vec<(String, String)> {
    let plan = plan_json(p, ".", &["--changed-since", rev]);
    let selected = plan["changed_since"]["selected"].as_array().unwrap();
    let listed: Vec<(String, String)> = selected
        .iter()
        .map(|s| {
            let reason = match (&s["changed"], &s["depends_on"], &s["not_pushed"]) {
                (Value::String(path), _, _) => format!("changed: {path}"),
                (_, Value::String(image), _) => format!("depends on {image}"),
                (_, _, Value::String(image)) => format!("needed by {image}, not pushed"),
                _ => panic!("no reason in {s}"),
            };
            (s["image"].as_str().unwrap().to_string(), reason)
        })
        .collect();
    // The plan holds exactly the selected images.
    let mut images: Vec<String> = listed.iter().map(|(i, _)| i.clone()).collect();
    images.sort();
    assert_eq!(manifests(&plan), images);
    listed
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn changed_since_selects_the_changed_image_and_its_dependents_only() {
    let p = monorepo();
    p.file("libs/base/base.txt", "base v2\n").git_commit("base");
    p.file("services/api/main.go", "package main // v2\n")
        .git_commit("api");

    // The last commit touched api only: base, which api depends on, is not rebuilt.
    assert_eq!(
        changed(&p, "HEAD~1"),
        pairs(&[("api", "changed: services/api/main.go")])
    );
    let plan = plan_json(&p, ".", &["--changed-since", "HEAD~1"]);
    let api = build(&plan, "api@linux-amd64");
    assert!(api["depends_on"].as_array().unwrap().is_empty());
    assert!(!strings(&api["argv"]).contains(&"--build-context".into()));

    // Two commits back, base changed too: everything that depends on it comes along.
    assert_eq!(
        changed(&p, "HEAD~2"),
        pairs(&[
            ("api", "changed: services/api/main.go"),
            ("base", "changed: libs/base/base.txt"),
            ("worker", "depends on base"),
        ])
    );
    // Patterns narrow the selection without pulling dependencies in.
    let plan = plan_json(&p, ".", &["--changed-since", "HEAD~2", "worker"]);
    assert_eq!(manifests(&plan), ["worker"]);

    // Nothing since HEAD: nothing to build.
    assert_eq!(changed(&p, "HEAD"), pairs(&[]));
}

/// An unchanged dependency that is never pushed is in no registry: the changed image's build
/// needs it built, and the plan says why.
#[test]
fn changed_since_keeps_what_is_not_pushed() {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"r.test\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n\n[images.builder]\ncontext = \"builder\"\npush = false\n\n[images.base]\ncontext = \"base\"\n\n[images.app]\ncontext = \"app\"\n",
    )
    .file("builder/Dockerfile", "FROM r.test/base:1\nRUN make\n")
    .file("base/Dockerfile", "FROM scratch\n")
    .file(
        "app/Dockerfile",
        "FROM r.test/builder:1 AS build\nFROM r.test/base:1\nCOPY --from=build /out /out\n",
    )
    .git_commit("fixture");
    p.file("app/main.c", "int main;\n").git_commit("app");
    assert_eq!(
        changed(&p, "HEAD~1"),
        pairs(&[
            ("app", "changed: app/main.c"),
            ("builder", "needed by app, not pushed"),
        ])
    );
    // base is pushed: read from the registry; builder is built here.
    let plan = plan_json(&p, ".", &["--changed-since", "HEAD~1"]);
    assert_eq!(
        strings(&build(&plan, "app@linux-amd64")["depends_on"]),
        ["builder@linux-amd64"]
    );
    assert!(strings(&build(&plan, "builder@linux-amd64")["depends_on"]).is_empty());
    let text = plan_text(&p, &["--changed-since", "HEAD~1"]);
    assert!(
        text.contains("builder  needed by app, and not pushed (push = false)"),
        "{text}"
    );
}

#[test]
fn changed_since_counts_uncommitted_watched_and_config_changes() {
    let p = monorepo();
    // Uncommitted, and a new file git does not ignore.
    p.file("services/worker/app.sh", "echo more work\n");
    assert_eq!(
        changed(&p, "HEAD"),
        pairs(&[("worker", "changed: services/worker/app.sh")])
    );
    p.file("services/worker/app.sh", "echo work\n")
        .file("services/worker/new.sh", "echo new\n");
    assert_eq!(
        changed(&p, "HEAD"),
        pairs(&[("worker", "changed: services/worker/new.sh")])
    );
    std::fs::remove_file(p.path().join("services/worker/new.sh")).unwrap();

    // A watched path outside the context.
    p.file("libs/proto/api.proto", "syntax = \"proto3\"; // v2\n");
    assert_eq!(
        changed(&p, "HEAD"),
        pairs(&[("worker", "changed: libs/proto/api.proto")])
    );
    p.git_commit("proto");

    // The root's defaults are every image's config.
    p.file(
        "multiarch.toml",
        &std::fs::read_to_string(p.path().join("multiarch.toml"))
            .unwrap()
            .replace("1.0", "1.1"),
    );
    let all = changed(&p, "HEAD");
    assert_eq!(
        all.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
        ["api", "base", "worker"]
    );
    assert!(all.iter().all(|(_, why)| why == "changed: multiarch.toml"));
}

#[test]
fn changes_to_ignored_files_select_nothing() {
    let p = monorepo();
    // Excluded from api's build context by its .dockerignore.
    p.file("services/api/README.md", "more docs\n");
    // Ignored by git.
    p.file("vendor/thing/Dockerfile", "FROM scratch\nLABEL x=y\n");
    assert_eq!(changed(&p, "HEAD"), pairs(&[]));
    p.git_commit("docs");
    assert_eq!(changed(&p, "HEAD~1"), pairs(&[]));

    let stdout = plan_text(&p, &["--changed-since", "HEAD~1"]);
    assert!(
        stdout.contains("No image is touched by the changes since HEAD~1."),
        "{stdout}"
    );
}

#[test]
fn changed_since_text_says_why() {
    let p = monorepo();
    p.file("libs/base/base.txt", "base v2\n").git_commit("base");
    let stdout = plan_text(&p, &["--changed-since", "HEAD~1"]);
    let head: Vec<&str> = stdout.lines().take(6).collect();
    insta::assert_snapshot!(head.join("\n"), @r"
    Plan for 4 config files: 6 builds, 3 manifest lists (podman runs in .)

    Selected by the changes since HEAD~1:
      api     depends on base
      base    changed: libs/base/base.txt
      worker  depends on base
    ");
}

#[test]
fn a_bad_revision_is_a_config_error() {
    let p = monorepo();
    let out = p
        .mab(&["plan", "--changed-since", "no-such-branch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`no-such-branch` is not a commit of the repository"),
        "{stderr}"
    );
}

#[test]
fn an_error_in_an_inherited_default_points_into_the_file_that_holds_it() {
    let p = monorepo();
    let root = std::fs::read_to_string(p.path().join("multiarch.toml")).unwrap();
    p.file(
        "multiarch.toml",
        &root.replace("{{ vars.version }}", "{{ vars.verison }}"),
    );
    let out = p.mab(&["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("undefined variable `vars.verison` in a tag template of image `api`"),
        "{stderr}"
    );
    // The root's line 5, where the tags are written, not the service's file.
    assert!(stderr.contains("╭─[multiarch.toml:5:"), "{stderr}");
    assert!(stderr.contains("did you mean `version`?"), "{stderr}");
}

#[test]
fn qualified_names_select_on_the_command_line() {
    let p = monorepo();
    let plan = plan_json(&p, ".", &["services/worker:worker"]);
    assert_eq!(manifests(&plan), ["base", "worker"]);
    let plan = plan_json(&p, ".", &["services/*:*"]);
    assert_eq!(manifests(&plan), ["api", "base", "worker"]);
    // A qualifier that names the wrong directory finds nothing.
    p.test()
        .args(["plan", "libs/base:worker"])
        .status(2)
        .stderr_has("no image matches `libs/base:worker`")
        .run();
}

#[test]
fn a_dependency_qualified_by_the_wrong_directory_is_unknown() {
    let p = monorepo();
    p.file(
        "services/worker/multiarch.toml",
        "[images.worker]\ndepends_on = [\"services/api:base\"]\n",
    );
    let out = p.mab(&["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "image `worker` depends on `services/api:base`, which is not an image of this config"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "`base` is defined in libs/base/multiarch.toml: write `libs/base:base`, or just `base`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("╭─[services/worker/multiarch.toml:2:15]"),
        "{stderr}"
    );
}

#[test]
fn a_file_moved_between_images_touches_both_and_a_deleted_one_its_image() {
    let p = monorepo();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(p.path())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["mv", "services/worker/app.sh", "services/api/app.sh"]);
    p.git_commit("move");
    assert_eq!(
        changed(&p, "HEAD~1"),
        pairs(&[
            ("api", "changed: services/api/app.sh"),
            ("worker", "changed: services/worker/app.sh"),
        ])
    );
    std::fs::remove_file(p.path().join("libs/base/base.txt")).unwrap();
    assert_eq!(
        changed(&p, "HEAD"),
        pairs(&[
            ("api", "depends on base"),
            ("base", "changed: libs/base/base.txt"),
            ("worker", "depends on base"),
        ])
    );
}
