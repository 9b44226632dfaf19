//! External platforms (`from = "docker://REF"`) against the stand-in podman and skopeo
//! (tests/fake): the tag is resolved once, the image's config must name the override's
//! platform, the list holds that digest, and a moved tag makes a new list. tests/e2e_external.rs
//! does it on the real registry.

use crate::common;

use std::path::Path;

use common::Outcome;
use common::Project;
use common::fake::run;

/// `app` builds linux/amd64 and takes linux/arm64 from `reg.test/acme/app-arm64:1`.
fn project() -> Project {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"reg.test/acme\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n\
         [images.app]\ncontext = \"app\"\n\n[images.app.platform.\"linux/arm64\"]\nfrom = \"docker://reg.test/acme/app-arm64:1\"\n",
    );
    // Not `.`: the stand-in registry and the report are written there.
    p.file("app/Dockerfile", "FROM scratch\n");
    p
}

/// Puts an image of `os/arch` in the stand-in registry under `reference` (`REPO:TAG`), with
/// `seed` making its manifest unique; returns its digest.
fn publish_image(p: &Project, reference: &str, os: &str, arch: &str, seed: &str) -> String {
    let registry = p.path().join("fake-state/registry");
    std::fs::create_dir_all(&registry).unwrap();
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2,\"digest\":\"sha256:{seed}\"}},\"layers\":[]}}"
    );
    let digest = format!("sha256:{}", sha256_hex(manifest.as_bytes()));
    let file = |r: &str| registry.join(r.replace('/', "_"));
    std::fs::write(file(reference), &manifest).unwrap();
    let repo = reference.rsplit_once(':').unwrap().0;
    std::fs::write(file(&format!("{repo}@{digest}")), &manifest).unwrap();
    std::fs::write(
        file(&format!("{repo}@{digest}.config")),
        format!("{{\"os\":\"{os}\",\"architecture\":\"{arch}\"}}"),
    )
    .unwrap();
    digest
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// The entries of the index tag `reference` holds in the stand-in registry, as
/// `PLATFORM DIGEST`.
fn entries(state: &Path, reference: &str) -> Vec<String> {
    let raw = std::fs::read(state.join("registry").join(reference.replace('/', "_"))).unwrap();
    crate::common::index_entries(&serde_json::from_slice(&raw).unwrap())
        .into_iter()
        .map(|(platform, digest)| format!("{platform} {digest}"))
        .collect()
}

fn report(p: &Project, r: &Outcome) -> serde_json::Value {
    assert!(r.out.status.success(), "{}", r.text());
    serde_json::from_slice(&std::fs::read(p.path().join("report.json")).unwrap()).unwrap()
}

const ARGS: [&str; 2] = ["--report", "report.json"];

#[test]
fn the_list_holds_the_digest_the_tag_resolved_to_and_a_moved_tag_makes_a_new_list() {
    let p = project();
    let arm64 = publish_image(&p, "reg.test/acme/app-arm64:1", "linux", "arm64", "a");
    let first = run(&p, &ARGS, &[]);
    let json = report(&p, &first);
    assert!(
        first.has("start localhost/mab/app:linux-amd64"),
        "{}",
        first.log
    );
    assert!(
        !first.log.contains("linux-arm64"),
        "arm64 is not built:\n{}",
        first.log
    );
    let external = &json["manifests"][0]["external"][0];
    assert_eq!(external["from"], "reg.test/acme/app-arm64:1");
    assert_eq!(external["digest"], arm64.as_str());
    let listed = entries(&first.state(), "reg.test/acme/app:1");
    assert!(
        listed.contains(&format!("linux/arm64 {arm64}")),
        "{listed:?}"
    );

    // Nothing changed: nothing is built or pushed.
    let second = run(&p, &ARGS, &[]);
    report(&p, &second);
    assert!(
        !second.log.contains(" start "),
        "{}\n{}",
        second.log,
        second.text()
    );
    assert!(!second.log.contains(" push "), "{}", second.log);
    assert_eq!(entries(&second.state(), "reg.test/acme/app:1"), listed);

    // The other job pushed a new arm64 image under the same tag: a new list holds it.
    let moved = publish_image(&p, "reg.test/acme/app-arm64:1", "linux", "arm64", "b");
    let third = run(&p, &ARGS, &[]);
    let json = report(&p, &third);
    assert_eq!(
        json["manifests"][0]["external"][0]["digest"],
        moved.as_str()
    );
    let now = entries(&third.state(), "reg.test/acme/app:1");
    assert!(now.contains(&format!("linux/arm64 {moved}")), "{now:?}");
}

#[test]
fn an_image_of_another_platform_is_a_config_error_before_anything_is_built() {
    let p = project();
    publish_image(&p, "reg.test/acme/app-arm64:1", "linux", "amd64", "a");
    let r = run(&p, &[], &[]);
    assert_eq!(r.out.status.code(), Some(2), "{}", r.text());
    // As one line: the message wraps at the terminal width.
    let text = r.text().replace('│', " ");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("multiarch.toml:10:8"), "{text}");
    assert!(
        text.contains("is a linux/amd64 image, but it is taken for linux/arm64"),
        "{text}"
    );
    assert!(!r.log.contains(" start "), "nothing is built:\n{}", r.log);
    assert!(
        r.pushed()
            .iter()
            .all(|t| !t.starts_with("reg.test/acme/app:")),
        "{:?}",
        r.pushed()
    );
}

#[test]
fn a_tag_that_is_not_in_the_registry_is_a_config_error() {
    let p = project();
    let r = run(&p, &[], &[]);
    assert_eq!(r.out.status.code(), Some(2), "{}", r.text());
    assert!(
        r.text()
            .contains("`reg.test/acme/app-arm64:1` is not in its registry"),
        "{}",
        r.text()
    );
    assert!(!r.log.contains(" start "), "{}", r.log);
}

#[test]
fn plan_check_registry_shows_the_resolved_digest() {
    let p = project();
    let arm64 = publish_image(&p, "reg.test/acme/app-arm64:1", "linux", "arm64", "a");
    let out = common::fake::stand_ins(
        &mut p.mab(&["plan", "--check-registry"]),
        &p,
        &p.path().join("fake-state"),
        &p.path().join("plan.log"),
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "docker://reg.test/acme/app-arm64@{arm64}  # linux/arm64: reg.test/acme/app-arm64:1 resolved to {arm64}"
        )),
        "{text}"
    );
}
