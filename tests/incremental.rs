//! Incremental runs against the stand-in podman and skopeo (tests/fake): what a rerun builds,
//! pushes and reports when nothing, one image or one tag changed. tests/e2e.rs does the same on
//! a real registry.

use crate::common;

use common::Outcome;
use common::SpawnCaptured;
use common::fake::{project, run};
use mab::exec::Status;

fn report(p: &common::Project, r: &Outcome) -> serde_json::Value {
    assert!(r.out.status.success(), "{}", r.text());
    serde_json::from_slice(&std::fs::read(p.path().join("report.json")).unwrap()).unwrap()
}

fn statuses(json: &serde_json::Value, key: &str) -> Vec<String> {
    json[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e[if key == "builds" { "id" } else { "image" }]
                    .as_str()
                    .unwrap(),
                e["status"].as_str().unwrap()
            )
        })
        .collect()
}

const ARGS: [&str; 2] = ["--report", "report.json"];

#[test]
fn a_rerun_with_nothing_changed_builds_and_pushes_nothing() {
    let p = project();
    let first = run(&p, &ARGS, &[]);
    assert!(first.has("start localhost/mab/app:linux-arm64"));
    // Each list is also pushed under a marker tag that names its inputs.
    let markers: Vec<String> = first
        .tags()
        .into_iter()
        .filter(|t| t.contains(":mab-inputs-"))
        .collect();
    assert_eq!(markers.len(), 3, "{markers:?}");

    let second = p
        .test()
        .fake_podman()
        .args(["run", "--progress", "plain"])
        .report()
        .status(0)
        .run();
    let json = second.report_json();
    assert!(
        !second.log.contains(" start "),
        "nothing is built:\n{}",
        second.log
    );
    assert!(
        !second.log.contains(" push "),
        "nothing is pushed:\n{}",
        second.log
    );
    let typed = second.report();
    assert!(
        typed.builds.iter().all(|b| b.status == Status::Unchanged),
        "{typed:?}"
    );
    assert!(
        typed
            .manifests
            .iter()
            .all(|m| m.status == Status::Unchanged),
        "{typed:?}"
    );
    // The report still says where each tag points, and what each build's image is.
    let app = &json["manifests"][0];
    assert_eq!(app["tags"].as_array().unwrap().len(), 2, "{app:#}");
    assert!(
        json["builds"][0]["published"]
            .as_str()
            .unwrap()
            .contains("@sha256:")
    );
    let text = second.text();
    assert!(
        text.contains("unchanged 3 of 3 image(s), 6 of 6 build(s)"),
        "{text}"
    );
    assert!(text.contains("0/6 builds (6 unchanged)"), "{text}");
}

#[test]
fn a_changed_file_rebuilds_its_image_only_on_the_published_dependency() {
    let p = project();
    run(&p, &ARGS, &[]);
    p.file("app/new-file", "x");
    let r = run(&p, &ARGS, &[]);
    let json = report(&p, &r);
    assert!(r.has("start localhost/mab/app:linux-amd64"), "{}", r.log);
    assert!(!r.has("start localhost/mab/base:linux-amd64"), "{}", r.log);
    assert!(!r.has("start localhost/mab/other:linux-amd64"), "{}", r.log);
    assert!(r.has("push reg.test/acme/app:1"));
    assert!(!r.has("push reg.test/acme/base:1"));
    // app reads base's published image by digest, per platform, not a local build.
    let base_arm = json["builds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "base@linux-arm64")
        .unwrap()["published"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        base_arm.starts_with("reg.test/acme/base@sha256:"),
        "{base_arm}"
    );
    assert!(
        r.log
            .contains(&format!("reg.test/acme/base:1=docker-image://{base_arm}")),
        "{}",
        r.log
    );
    assert_eq!(
        statuses(&json, "manifests"),
        ["app pushed", "base unchanged", "other unchanged"]
    );
}

#[test]
fn a_change_at_the_root_rebuilds_its_dependents() {
    let p = project();
    run(&p, &ARGS, &[]);
    p.file("base/Dockerfile", "FROM scratch\nLABEL changed=1\n");
    let r = run(&p, &ARGS, &[]);
    let json = report(&p, &r);
    assert_eq!(
        statuses(&json, "manifests"),
        ["app pushed", "base pushed", "other unchanged"]
    );
    // app waits for the new base and reads the local build.
    assert!(
        r.at("start localhost/mab/app:linux-arm64") >= r.at("end localhost/mab/base:linux-arm64")
    );
    assert!(
        r.log
            .contains("=container-image://localhost/mab/base:linux-arm64")
    );
}

#[test]
fn a_new_tag_on_unchanged_inputs_points_at_the_same_index() {
    let p = project();
    run(&p, &ARGS, &[]);
    let toml = std::fs::read_to_string(p.path().join("multiarch.toml")).unwrap();
    p.file(
        "multiarch.toml",
        &toml.replace(
            "tags = [\"1\", \"latest\"]",
            "tags = [\"1\", \"latest\", \"2\"]",
        ),
    );
    let r = run(&p, &ARGS, &[]);
    let json = report(&p, &r);
    assert!(!r.log.contains(" start "), "{}", r.log);
    assert!(r.has("push reg.test/acme/app:2"), "{}", r.log);
    let state = r.state().join("registry");
    let read = |tag: &str| std::fs::read(state.join(tag)).unwrap();
    assert_eq!(read("reg.test_acme_app:2"), read("reg.test_acme_app:1"));
    assert!(
        statuses(&json, "manifests")
            .iter()
            .all(|s| s.ends_with(" unchanged"))
    );
    assert_eq!(json["manifests"][0]["tags"].as_array().unwrap().len(), 3);
}

#[test]
fn rebuild_builds_everything() {
    let p = project();
    run(&p, &ARGS, &[]);
    let r = run(&p, &["--rebuild", "--report", "report.json"], &[]);
    let json = report(&p, &r);
    assert!(
        statuses(&json, "builds")
            .iter()
            .all(|s| s.ends_with(" built")),
        "{json:#}"
    );
    assert!(r.has("push reg.test/acme/base:1"));
}

#[test]
fn a_new_commit_alone_changes_no_input() {
    // mab's revision and created labels follow the commit: not inputs.
    let p = project();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(p.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q", "."]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "one"]);
    let first = run(&p, &ARGS, &[]);
    assert!(first.has("start localhost/mab/base:linux-amd64"));
    // The builds carry the commit in a label...
    let copy = std::fs::read_to_string(p.path().join(".mab/dockerfiles/base@linux-amd64")).unwrap();
    assert!(copy.contains("org.opencontainers.image.revision"), "{copy}");
    git(&["commit", "-q", "--allow-empty", "-m", "two"]);
    // ...yet the next commit, with no file changed, builds nothing.
    let r = run(&p, &ARGS, &[]);
    report(&p, &r);
    assert!(!r.log.contains(" start "), "{}", r.log);
}

#[test]
fn with_no_push_everything_is_built() {
    let p = project();
    run(&p, &ARGS, &[]);
    let r = run(&p, &["--no-push"], &[]);
    assert!(r.out.status.success(), "{}", r.text());
    assert!(r.has("start localhost/mab/base:linux-amd64"));
}

#[test]
fn plan_check_registry_leaves_out_what_a_run_would_not_build() {
    let p = project();
    let first = run(&p, &ARGS, &[]);
    p.file("app/new-file", "x");
    let plan = |args: &[&str]| {
        let out = common::fake::stand_ins(
            &mut p.mab(&[&["plan"], args].concat()),
            &p,
            &first.state(),
            &p.path().join("plan.log"),
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // Offline, the plan builds everything and reads no registry.
    let offline: serde_json::Value = serde_json::from_str(&plan(&["--format", "json"])).unwrap();
    assert_eq!(offline["builds"].as_array().unwrap().len(), 6);
    assert!(offline.get("unchanged").is_none());
    assert!(
        !p.path().join("plan.log").exists(),
        "the offline plan ran a command"
    );

    let checked: serde_json::Value =
        serde_json::from_str(&plan(&["--check-registry", "--format", "json"])).unwrap();
    let ids: Vec<&str> = checked["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["app@linux-amd64", "app@linux-arm64"]);
    let unchanged: Vec<&str> = checked["unchanged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["image"].as_str().unwrap())
        .collect();
    assert_eq!(unchanged, ["base", "other"]);
    // Exactly what the run would execute: app's builds read base's published images.
    let argv = checked["builds"][1]["argv"].to_string();
    assert!(
        argv.contains("=docker-image://reg.test/acme/base@sha256:"),
        "{argv}"
    );
    let text = plan(&["--check-registry"]);
    assert!(
        text.contains("Unchanged (the registry holds their inputs; not built):"),
        "{text}"
    );
}

/// The project of [`project`] with no retries (a 503 fails at once) and `tags` for every image.
fn failing_project(tags: &str) -> common::Project {
    let p = project();
    let toml = std::fs::read_to_string(p.path().join("multiarch.toml")).unwrap();
    p.file(
        "multiarch.toml",
        &format!(
            "{}\n[builder]\nretries = 0\n",
            toml.replace("tags = [\"1\", \"latest\"]", &format!("tags = {tags}"))
        ),
    );
    p
}

/// The tag reports of image `image`'s list, by tag: `status before digest`.
fn tags_of(json: &serde_json::Value, image: &str) -> Vec<(String, String, String, String)> {
    let list = json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["image"] == image)
        .unwrap();
    list["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap_or("null").to_string();
            (s("reference"), s("status"), s("before"), s("digest"))
        })
        .collect()
}

fn digest_in(r: &Outcome, tag: &str) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(r.state().join("registry").join(tag.replace('/', "_"))).unwrap();
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

#[test]
fn a_tag_that_fails_to_move_is_reported_with_the_ones_that_moved() {
    let p = failing_project("[\"1\", \"latest\"]");
    let first = run(&p, &ARGS, &[]);
    report(&p, &first);
    let old = digest_in(&first, "reg.test/acme/app:1");
    assert_eq!(digest_in(&first, "reg.test/acme/app:latest"), old);

    p.file("app/new-file", "x");
    let r = run(
        &p,
        &ARGS,
        &[("FAKE_REGISTRY_FAIL", "reg.test/acme/app:latest")],
    );
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path().join("report.json")).unwrap()).unwrap();
    let new = digest_in(&r, "reg.test/acme/app:1");
    assert_ne!(new, old);
    // `1` moved, `latest` did not: the report says both, with both digests.
    assert_eq!(
        tags_of(&json, "app"),
        [
            (
                "reg.test/acme/app:1".into(),
                "moved".into(),
                old.clone(),
                new.clone()
            ),
            (
                "reg.test/acme/app:latest".into(),
                "failed".into(),
                old.clone(),
                new.clone()
            ),
        ]
    );
    assert_eq!(digest_in(&r, "reg.test/acme/app:latest"), old);
    let text = r.text();
    let short = |d: &str| d["sha256:".len()..][..12].to_string();
    assert!(
        text.contains(&format!("moved         {} -> {}", short(&old), short(&new))),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "FAILED        still {}, not {}",
            short(&old),
            short(&new)
        )),
        "{text}"
    );

    // The next run finds the index under its marker: it builds nothing and moves the tag left.
    let again = run(&p, &ARGS, &[]);
    let json = report(&p, &again);
    assert!(!again.log.contains(" start "), "{}", again.log);
    assert_eq!(
        tags_of(&json, "app"),
        [
            (
                "reg.test/acme/app:1".into(),
                "unchanged".into(),
                new.clone(),
                new.clone()
            ),
            (
                "reg.test/acme/app:latest".into(),
                "moved".into(),
                old,
                new.clone()
            ),
        ]
    );
    assert_eq!(digest_in(&again, "reg.test/acme/app:latest"), new);
}

#[test]
fn atomic_puts_back_the_tags_that_moved() {
    let p = failing_project("[\"1\", \"latest\"]");
    let first = run(&p, &ARGS, &[]);
    report(&p, &first);
    let old = digest_in(&first, "reg.test/acme/app:1");
    // A new tag first: it moves, and cannot be put back, as it held nothing.
    let toml = std::fs::read_to_string(p.path().join("multiarch.toml")).unwrap();
    p.file(
        "multiarch.toml",
        &toml.replace(
            "tags = [\"1\", \"latest\"]",
            "tags = [\"new\", \"1\", \"latest\"]",
        ),
    );
    p.file("app/new-file", "x");
    let r = run(
        &p,
        &["--atomic", "--report", "report.json"],
        &[("FAKE_REGISTRY_FAIL", "reg.test/acme/app:latest")],
    );
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path().join("report.json")).unwrap()).unwrap();
    let new = digest_in(&r, "reg.test/acme/app:new");
    assert_ne!(new, old);
    assert_eq!(
        tags_of(&json, "app"),
        [
            (
                "reg.test/acme/app:new".into(),
                "not_restored".into(),
                "null".into(),
                new.clone()
            ),
            (
                "reg.test/acme/app:1".into(),
                "restored".into(),
                old.clone(),
                new.clone()
            ),
            (
                "reg.test/acme/app:latest".into(),
                "failed".into(),
                old.clone(),
                new.clone()
            ),
        ]
    );
    assert_eq!(digest_in(&r, "reg.test/acme/app:1"), old);
    assert_eq!(digest_in(&r, "reg.test/acme/app:latest"), old);
    let text = r.text();
    assert!(text.contains("it did not exist before the run"), "{text}");
}

#[test]
fn atomic_puts_back_every_list_of_the_run_when_one_fails() {
    let p = failing_project("[\"1\", \"latest\"]");
    let first = run(&p, &ARGS, &[]);
    report(&p, &first);
    let old_other = digest_in(&first, "reg.test/acme/other:1");
    p.file("app/new-file", "x");
    p.file("other/new-file", "x");
    // Two list slots: both pushes start once every build is done, before either ends.
    let r = run(
        &p,
        &["--atomic", "--jobs", "2", "--report", "report.json"],
        &[("FAKE_REGISTRY_FAIL", "reg.test/acme/app:latest")],
    );
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path().join("report.json")).unwrap()).unwrap();
    // other was published whole, then put back: the run is all or nothing.
    for (tag, status, before, _) in tags_of(&json, "other") {
        assert_eq!(
            (status.as_str(), &before),
            ("restored", &old_other),
            "{tag}"
        );
    }
    assert_eq!(statuses_of(&json, "other"), "restored");
    assert_eq!(digest_in(&r, "reg.test/acme/other:1"), old_other);
    assert_eq!(digest_in(&r, "reg.test/acme/other:latest"), old_other);
}

fn statuses_of(json: &serde_json::Value, image: &str) -> String {
    json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["image"] == image)
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn atomic_puts_back_what_moved_when_the_run_is_interrupted() {
    let p = failing_project("[\"1\", \"latest\"]");
    let first = run(&p, &ARGS, &[]);
    report(&p, &first);
    let old = digest_in(&first, "reg.test/acme/app:1");
    p.file("app/new-file", "x");
    let log = p.path().join("podman.log");
    let _ = std::fs::remove_file(&log);
    let child = common::fake::stand_ins(
        &mut p.mab(&[
            "run",
            "--progress",
            "plain",
            "--atomic",
            "--report",
            "report.json",
        ]),
        &p,
        &first.state(),
        &log,
    )
    .env("FAKE_REGISTRY_HANG", "reg.test/acme/app:latest")
    .spawn_captured();
    // `1` has moved, and the copy to `latest` hangs: the run is interrupted there.
    common::wait_at_most(
        std::time::Duration::from_secs(60),
        "the copy to latest hangs",
        || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("hang reg.test/acme/app:latest")),
    );
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let out = child.wait_with_output().unwrap();
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(130), "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path().join("report.json")).unwrap()).unwrap();
    let tags: Vec<(String, String)> = tags_of(&json, "app")
        .into_iter()
        .map(|(tag, status, before, _)| {
            assert_eq!(before, old, "{tag}");
            (tag, status)
        })
        .collect();
    assert_eq!(
        tags,
        [
            ("reg.test/acme/app:1".into(), "restored".into()),
            ("reg.test/acme/app:latest".into(), "failed".into()),
        ]
    );
    assert_eq!(digest_in(&first, "reg.test/acme/app:1"), old);
    assert_eq!(digest_in(&first, "reg.test/acme/app:latest"), old);
}
