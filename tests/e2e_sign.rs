//! Signing end to end (issue 21): a two-platform image published with `[signing]`, its
//! index and both platform images signed in cosign's format, the signatures checked by an
//! implementation that is not mab's (Python's `cryptography`, tests/fixtures/cosign_check.py),
//! which refuses a tampered payload and another key; `mab verify` green on what was published
//! and red once a signature tag is deleted or a platform image replaced; a second run signs
//! nothing. Once with a key from `mab keygen`, once with a key cosign made
//! (tests/fixtures/cosign-made.key). Needs what scripts/test-env.sh sets up and `MAB_E2E=1`
//! (see tests/e2e.rs); without Python's `cryptography` (build.rs looks) they show as ignored.

use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::common::registry::Registry;
use crate::common::{BASE, Project, text};

pub(crate) const CHECKER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cosign_check.py"
);
const COSIGN_MADE_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cosign-made.key"
);
pub(crate) const COSIGN_MADE_PUB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cosign-made.pub"
);

pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A project publishing image `name` for amd64 and arm64 to `registry`, signed with the key
/// file `cosign.key` beside its config.
fn project(registry: &Registry, name: &str) -> Project {
    let host = registry.host();
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[signing]\nkey = \"cosign.key\"\n\n[images.{name}]\ncontext = \"app\"\nrepository = \"{host}/acme/{name}\"\ntags = [\"1.0\", \"latest\"]\n"
        ),
    );
    // No RUN step: nothing is emulated, each build is a COPY.
    p.file("app/Dockerfile", &format!("FROM {BASE}\nCOPY file /file\n"));
    p.file("app/file", name);
    p
}

pub(crate) fn run(p: &Project, password: &str) -> (Output, serde_json::Value) {
    crate::common::reported_with(p, &[], &[("COSIGN_PASSWORD", password)])
}

/// `mab keygen` in `p` with `password`, its pair committed with the project.
pub(crate) fn keygen(p: &Project, password: &str) {
    let out = p
        .mab(&["keygen"])
        .env("COSIGN_PASSWORD", password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    p.git_commit("fixture");
}

/// `(reference, digest, status)` of each signature the report lists.
fn signatures(report: &serde_json::Value) -> Vec<(String, String, String)> {
    let list = &report["manifests"][0];
    list["signatures"]
        .as_array()
        .unwrap_or_else(|| panic!("no signatures in the report: {list:#}"))
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap().to_string();
            (f("reference"), f("digest"), f("status"))
        })
        .collect()
}

/// Copies a signature tag out of the registry into `dir` (manifest.json, blobs by hex).
pub(crate) fn fetch(reference: &str, dir: &Path) {
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", dir.display()))
        .output()
        .expect("skopeo runs");
    assert!(out.status.success(), "{}", text(&out));
}

/// Python's verdict on the signature in `dir` of `digest` in `repository` with key `public`.
pub(crate) fn python_accepts(public: &Path, dir: &Path, repository: &str, digest: &str) -> bool {
    let out = Command::new("python3")
        .arg(CHECKER)
        .arg(public)
        .arg(dir)
        .args([repository, digest])
        .output()
        .expect("python3 runs");
    let said = text(&out);
    assert!(
        out.status.success() || said.contains("refused"),
        "the checker failed: {said}"
    );
    out.status.success()
}

/// Every signature of the report checked by Python: accepted with `public`, refused with
/// another key and once its payload names another image.
fn check_with_python(report: &serde_json::Value, repository: &str, public: &Path, other: &Path) {
    let sigs = signatures(report);
    assert_eq!(sigs.len(), 3, "the index and two platform images: {sigs:?}");
    for (reference, signed, _) in &sigs {
        let dir = tempfile::tempdir().unwrap();
        fetch(reference, dir.path());
        assert!(
            python_accepts(public, dir.path(), repository, signed),
            "{reference}"
        );
        assert!(
            !python_accepts(other, dir.path(), repository, signed),
            "{reference} passed with another key"
        );
        // The payload rewritten to name another image: its signature no longer covers it.
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap())
                .unwrap();
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let payload = dir.path().join(layer.trim_start_matches("sha256:"));
        let original = std::fs::read_to_string(&payload).unwrap();
        let forged = original.replace(signed.as_str(), &digest(b"another image"));
        assert_ne!(forged, original);
        std::fs::write(&payload, forged).unwrap();
        assert!(
            !python_accepts(public, dir.path(), repository, &digest(b"another image")),
            "{reference}: a tampered payload passed"
        );
    }
}

pub(crate) fn verify(p: &Project, key: &str) -> Output {
    p.mab(&["verify", "--key", key])
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .output()
        .expect("mab runs")
}

/// Deletes `reference`'s manifest through the registry API (tests/common enables deletes).
pub(crate) fn delete(registry: &Registry, repository_path: &str, manifest: &[u8]) {
    let url = format!(
        "http://{}/v2/{repository_path}/manifests/{}",
        registry.host(),
        digest(manifest)
    );
    let out = Command::new("curl")
        .args(["-sf", "-X", "DELETE", &url])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "DELETE {url}: {}", text(&out));
}

/// Puts `bytes` at `reference` (a tag or digest) through the registry API.
fn put(
    registry: &Registry,
    repository_path: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) {
    let url = format!(
        "http://{}/v2/{repository_path}/manifests/{reference}",
        registry.host()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {media_type}"))
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(&url)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "PUT {url}: {}", text(&out));
}

#[test]
#[cfg_attr(
    not(all(e2e, py_cryptography)),
    ignore = "needs MAB_E2E=1, scripts/test-env.sh and Python's cryptography: run scripts/test.sh"
)]
fn a_keygen_key_signs_everything_once_and_verify_sees_what_is_missing() {
    let _serial = crate::common::e2e_serial();
    let registry = Registry::start();
    let name = "sign-keygen";
    let p = project(&registry, name);
    let repository = format!("{}/acme/{name}", registry.host());
    keygen(&p, "s3cret");

    let (out, first) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    let sigs = signatures(&first);
    assert!(sigs.iter().all(|(_, _, s)| s == "added"), "{sigs:?}");
    let index = crate::common::registry::raw_bytes(&format!("{repository}:1.0"));
    assert_eq!(sigs[0].1, digest(&index), "the index is signed first");
    let public = p.path().join("cosign.pub");
    check_with_python(&first, &repository, &public, Path::new(COSIGN_MADE_PUB));

    let out = verify(&p, "cosign.pub");
    assert!(out.status.success(), "{}", text(&out));
    // With the other key, every signature is a miss.
    let out = verify(&p, COSIGN_MADE_PUB);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // A second run signs nothing: every signature tag keeps its bytes.
    let held: Vec<Vec<u8>> = sigs
        .iter()
        .map(|(r, _, _)| crate::common::registry::raw_bytes(r))
        .collect();
    let (out, again) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    let kept = signatures(&again);
    assert!(kept.iter().all(|(_, _, s)| s == "kept"), "{kept:?}");
    for ((r, _, _), before) in sigs.iter().zip(&held) {
        assert_eq!(
            &crate::common::registry::raw_bytes(r),
            before,
            "{r} was re-signed"
        );
    }

    // A signature tag deleted: verify says which; the next run adds it back, alone.
    let (arm64_sig, arm64, _) = &sigs[2];
    delete(&registry, &format!("acme/{name}"), &held[2]);
    let out = verify(&p, "cosign.pub");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("MISS") && said.contains(arm64.as_str()),
        "{said}"
    );
    let (out, healed) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    let statuses: Vec<String> = signatures(&healed).into_iter().map(|s| s.2).collect();
    assert_eq!(statuses, ["kept", "kept", "added"]);
    assert!(registry.raw(arm64_sig).is_some());
    let out = verify(&p, "cosign.pub");
    assert!(out.status.success(), "{}", text(&out));

    // A platform image replaced: an index whose arm64 entry is another (unsigned) manifest.
    let arm64_manifest = crate::common::registry::raw_bytes(&format!("{repository}@{arm64}"));
    let mut changed: serde_json::Value = serde_json::from_slice(&arm64_manifest).unwrap();
    changed["annotations"] = serde_json::json!({"replaced": "yes"});
    let changed = serde_json::to_vec(&changed).unwrap();
    let media_type = |raw: &[u8]| -> String {
        let v: serde_json::Value = serde_json::from_slice(raw).unwrap();
        v["mediaType"].as_str().unwrap().to_string()
    };
    put(
        &registry,
        &format!("acme/{name}"),
        &digest(&changed),
        &media_type(&arm64_manifest),
        &changed,
    );
    let mut replaced: serde_json::Value = serde_json::from_slice(&index).unwrap();
    for entry in replaced["manifests"].as_array_mut().unwrap() {
        if entry["digest"] == arm64.as_str() {
            entry["digest"] = digest(&changed).into();
            entry["size"] = changed.len().into();
        }
    }
    let replaced = serde_json::to_vec(&replaced).unwrap();
    put(
        &registry,
        &format!("acme/{name}"),
        "latest",
        &media_type(&index),
        &replaced,
    );
    let out = verify(&p, "cosign.pub");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("{repository}:latest FAILED")) && said.contains(&digest(&changed)),
        "{said}"
    );
    assert!(said.contains(&format!("{repository}:1.0 ok")), "{said}");
}

#[test]
#[cfg_attr(
    not(all(e2e, py_cryptography)),
    ignore = "needs MAB_E2E=1, scripts/test-env.sh and Python's cryptography: run scripts/test.sh"
)]
fn a_key_cosign_made_signs_and_a_wrong_password_pushes_nothing() {
    let _serial = crate::common::e2e_serial();
    let registry = Registry::start();
    let name = "sign-cosign-made";
    let p = project(&registry, name);
    std::fs::copy(COSIGN_MADE_KEY, p.path().join("cosign.key")).unwrap();
    p.git_commit("fixture");
    let repository = format!("{}/acme/{name}", registry.host());

    // The key does not open: the config's error (exit 2) before anything is built or pushed.
    let out = p
        .mab(&["run", "--progress", "plain"])
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .env("COSIGN_PASSWORD", "not hello")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("multiarch.toml") && said.contains("password"),
        "{said}"
    );
    assert!(registry.raw(&format!("{repository}:1.0")).is_none());

    // cosign's own test key's password.
    let (out, report) = run(&p, "hello");
    assert!(out.status.success(), "{}", text(&out));
    let other = tempfile::tempdir().unwrap();
    let out = p
        .mab(&["keygen", "--output-key-prefix"])
        .arg(other.path().join("other"))
        .env("COSIGN_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    check_with_python(
        &report,
        &repository,
        Path::new(COSIGN_MADE_PUB),
        &other.path().join("other.pub"),
    );
    let out = verify(&p, COSIGN_MADE_PUB);
    assert!(out.status.success(), "{}", text(&out));
}
