//! What mab publishes, checked by the tools its consumers run (issue 21), exactly as
//! docs/supply-chain.md tells them to: cosign 2.5.0 (`cosign verify --key cosign.pub
//! --insecure-ignore-tlog`), oras 1.2.0 (`oras discover`, `oras manifest fetch`, `oras blob
//! fetch`) and a containers `policy.json` with `sigstoreSigned` read by skopeo 1.18 (Debian
//! 13's, in scripts/podman5-root.sh's root: Debian 12's skopeo and podman have sigstore disabled).
//! The registry is docker-registry 2.8.2, which has no referrers API: oras reads the fallback tag.
//! cosign and oras come from Debian 13's packages (scripts/trixie-tools.sh); without them (build.rs
//! looks) these tests show as ignored.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::registry::{Registry, raw_bytes};
use crate::common::{BASE, Project, text};
use crate::e2e_sign::{delete, digest, keygen, run, verify};

pub(crate) const SPDX: &str = "application/spdx+json";
pub(crate) const INTOTO: &str = "application/vnd.in-toto+json";

/// A project publishing image `name` for amd64 and arm64 to `registry` at tag 1.0, signed with
/// `cosign.key` beside its config (written by the test); with `attachments`, each platform image
/// also gets a builtin SPDX SBOM and `min` provenance.
pub(crate) fn project(registry: &Registry, name: &str, attachments: bool) -> Project {
    let host = registry.host();
    let attach = if attachments {
        "[sbom]\ngenerator = \"builtin\"\nformat = \"spdx-json\"\n\n[provenance]\nmode = \"min\"\n\n"
    } else {
        ""
    };
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[signing]\nkey = \"cosign.key\"\n\n{attach}[images.{name}]\ncontext = \"app\"\nrepository = \"{host}/acme/{name}\"\ntags = [\"1.0\"]\n"
        ),
    );
    // No RUN step: nothing is emulated, each build is a COPY.
    p.file("app/Dockerfile", &format!("FROM {BASE}\nCOPY file /file\n"));
    p.file("app/file", name);
    p
}

/// The local images a run of [`project`]'s image `name` leaves in podman's storage (the list and
/// its two platform images), removed when it goes: podman's storage is the machine's.
pub(crate) struct Leftovers(pub(crate) &'static str);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let local = format!("localhost/mab/{}", self.0);
        // `manifest rm` for the list: `rmi` of a list can remove an image it refers to.
        let _ = Command::new("podman")
            .args(["manifest", "rm", &format!("{local}:manifest")])
            .output();
        let _ = Command::new("podman")
            .args([
                "rmi",
                &format!("{local}:linux-amd64"),
                &format!("{local}:linux-arm64"),
            ])
            .output();
    }
}

/// The published list: its index's digest and `(platform, digest)` of each image it lists.
pub(crate) fn published(reference: &str) -> (String, Vec<(String, String)>) {
    let index = raw_bytes(reference);
    let images = crate::common::index_entries(&serde_json::from_slice(&index).unwrap());
    (digest(&index), images)
}

/// `cosign ARGS` in `dir`.
fn cosign(dir: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut cmd = Command::new("cosign");
    cmd.args(args).current_dir(dir);
    if let Some(password) = password {
        cmd.env("COSIGN_PASSWORD", password);
    }
    cmd.output().expect("cosign runs (scripts/trixie-tools.sh)")
}

/// `cosign verify --key PUBLIC --insecure-ignore-tlog REFERENCE` run in `dir`, the documented
/// command: the payloads it accepted, or what it said when it refused.
fn cosign_verify(
    dir: &Path,
    public: &str,
    reference: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let out = cosign(
        dir,
        &[
            "verify",
            "--key",
            public,
            "--insecure-ignore-tlog",
            reference,
        ],
        None,
    );
    if !out.status.success() {
        return Err(text(&out));
    }
    Ok(serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("cosign printed no JSON payloads ({e}): {}", text(&out))))
}

/// Asserts that cosign accepts `reference` with `public` and that a payload it accepted names
/// `signed` in `repository`.
fn assert_cosign_accepts(
    dir: &Path,
    public: &str,
    reference: &str,
    repository: &str,
    signed: &str,
) {
    let payloads = cosign_verify(dir, public, reference)
        .unwrap_or_else(|said| panic!("cosign refused {reference}: {said}"));
    assert!(
        payloads.iter().any(|p| {
            p["critical"]["image"]["docker-manifest-digest"] == signed
                && p["critical"]["identity"]["docker-reference"] == repository
        }),
        "{reference}: no accepted payload names {repository}@{signed}: {payloads:#?}"
    );
}

/// `cosign generate-key-pair` in `dir` with `password`: cosign.key and cosign.pub.
fn cosign_key_pair(dir: &Path, password: &str) {
    let out = cosign(dir, &["generate-key-pair"], Some(password));
    assert!(out.status.success(), "{}", text(&out));
}

/// `(platform, artifact type, image digest, artifact digest)` of each attachment the report lists.
pub(crate) fn attachments(report: &serde_json::Value) -> Vec<[String; 4]> {
    let mut all = Vec::new();
    for image in report["manifests"][0]["attached"]
        .as_array()
        .unwrap_or_else(|| panic!("nothing attached: {report:#}"))
    {
        for r in image["referrers"].as_array().unwrap() {
            all.push([
                image["platform"].as_str().unwrap().to_string(),
                r["artifact_type"].as_str().unwrap().to_string(),
                image["digest"].as_str().unwrap().to_string(),
                r["digest"].as_str().unwrap().to_string(),
            ]);
        }
    }
    all
}

#[test]
#[cfg_attr(
    not(all(e2e, cosign)),
    ignore = "needs MAB_E2E=1, scripts/test-env.sh and cosign (scripts/trixie-tools.sh): run scripts/test.sh"
)]
fn cosign_accepts_the_list_its_images_and_attachments_and_nothing_else() {
    let _serial = crate::common::e2e_serial();
    let registry = Registry::start();
    let name = "consumer-cosign";
    let _leftovers = Leftovers(name);
    let p = project(&registry, name, true);
    let repository = format!("{}/acme/{name}", registry.host());
    keygen(&p, "s3cret");
    let (out, report) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    let tag = format!("{repository}:1.0");
    let (index, images) = published(&tag);
    assert_eq!(images.len(), 2, "{images:?}");

    // The documented command, by tag; then each platform image and each attachment by digest.
    assert_cosign_accepts(p.path(), "cosign.pub", &tag, &repository, &index);
    for (platform, image) in &images {
        let by_digest = format!("{repository}@{image}");
        assert_cosign_accepts(p.path(), "cosign.pub", &by_digest, &repository, image);
        let kinds: Vec<&str> = attachments(&report)
            .iter()
            .filter(|a| &a[0] == platform)
            .map(|a| {
                let artifact = format!("{repository}@{}", a[3]);
                assert_cosign_accepts(p.path(), "cosign.pub", &artifact, &repository, &a[3]);
                if a[1] == SPDX { "sbom" } else { "provenance" }
            })
            .collect();
        assert_eq!(kinds, ["sbom", "provenance"], "{platform}: {report:#}");
    }

    // A key cosign made itself: every signature refused.
    let other = tempfile::tempdir().unwrap();
    cosign_key_pair(other.path(), "other");
    let foreign = other.path().join("cosign.pub");
    let foreign = foreign.to_str().unwrap();
    let said = cosign_verify(p.path(), foreign, &tag).expect_err("another key's check passed");
    assert!(said.contains("no matching signatures"), "{said}");
    let (_, amd64) = &images[0];
    assert!(cosign_verify(p.path(), foreign, &format!("{repository}@{amd64}")).is_err());

    // The index's signature tag deleted: cosign finds no signature, whatever the key.
    let sig = format!("{repository}:{}.sig", index.replace(':', "-"));
    delete(&registry, &format!("acme/{name}"), &raw_bytes(&sig));
    let said = cosign_verify(p.path(), "cosign.pub", &tag).expect_err("an unsigned index passed");
    assert!(said.contains("no signatures found"), "{said}");
    // The platform images keep theirs.
    assert_cosign_accepts(
        p.path(),
        "cosign.pub",
        &format!("{repository}@{amd64}"),
        &repository,
        amd64,
    );
}

#[test]
#[cfg_attr(
    not(all(e2e, cosign)),
    ignore = "needs MAB_E2E=1, scripts/test-env.sh and cosign (scripts/trixie-tools.sh): run scripts/test.sh"
)]
fn a_key_cosign_made_signs_with_mab_and_mab_verify_accepts_what_cosign_signed() {
    let _serial = crate::common::e2e_serial();
    let registry = Registry::start();
    let name = "consumer-cosign-key";
    let _leftovers = Leftovers(name);
    let p = project(&registry, name, false);
    let repository = format!("{}/acme/{name}", registry.host());
    // The key made elsewhere, by the real tool: mab opens it with COSIGN_PASSWORD and signs.
    cosign_key_pair(p.path(), "made by cosign");
    p.git_commit("fixture");
    let (out, _) = run(&p, "made by cosign");
    assert!(out.status.success(), "{}", text(&out));
    let tag = format!("{repository}:1.0");
    let (index, images) = published(&tag);
    assert_cosign_accepts(p.path(), "cosign.pub", &tag, &repository, &index);
    for (_, image) in &images {
        assert_cosign_accepts(
            p.path(),
            "cosign.pub",
            &format!("{repository}@{image}"),
            &repository,
            image,
        );
    }
    let out = verify(&p, "cosign.pub");
    assert!(out.status.success(), "{}", text(&out));

    // The other way round: cosign signs with a second key of its own (offline, as mab does), and
    // `mab verify` with that key accepts the list once cosign signed the index and both images.
    let second = tempfile::tempdir().unwrap();
    cosign_key_pair(second.path(), "second");
    let public = second.path().join("cosign.pub");
    let public = public.to_str().unwrap();
    let out = verify(&p, public);
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing is signed with it yet: {}",
        text(&out)
    );
    let signed: Vec<String> = std::iter::once(index.clone())
        .chain(images.iter().map(|(_, d)| d.clone()))
        .collect();
    for d in &signed {
        let out = cosign(
            second.path(),
            &[
                "sign",
                "--key",
                "cosign.key",
                "--tlog-upload=false",
                "--yes",
                &format!("{repository}@{d}"),
            ],
            Some("second"),
        );
        assert!(out.status.success(), "cosign sign {d}: {}", text(&out));
    }
    let out = verify(&p, public);
    assert!(out.status.success(), "{}", text(&out));
    // mab's own signatures are still there beside cosign's.
    let out = verify(&p, "cosign.pub");
    assert!(out.status.success(), "{}", text(&out));
}

/// `oras ARGS` against the plain-HTTP test registry.
pub(crate) fn oras(args: &[&str]) -> Output {
    Command::new("oras")
        .args(args)
        .arg("--plain-http")
        .output()
        .expect("oras runs (scripts/trixie-tools.sh)")
}

/// `oras ARGS`, which must succeed: its stdout.
pub(crate) fn oras_ok(args: &[&str]) -> Vec<u8> {
    let out = oras(args);
    assert!(out.status.success(), "oras {args:?}: {}", text(&out));
    out.stdout
}

/// The one document the artifact at `artifact` carries, through oras: its manifest, then the blob
/// of its one layer.
fn oras_document(repository: &str, artifact: &str, artifact_type: &str) -> serde_json::Value {
    let manifest: serde_json::Value = serde_json::from_slice(&oras_ok(&[
        "manifest",
        "fetch",
        &format!("{repository}@{artifact}"),
    ]))
    .unwrap();
    assert_eq!(manifest["artifactType"], artifact_type, "{manifest:#}");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest:#}");
    assert_eq!(layers[0]["mediaType"], artifact_type);
    let blob = layers[0]["digest"].as_str().unwrap();
    let bytes = oras_ok(&[
        "blob",
        "fetch",
        "--output",
        "-",
        &format!("{repository}@{blob}"),
    ]);
    assert_eq!(digest(&bytes), blob);
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{artifact}: not JSON: {e}"))
}

#[test]
#[cfg_attr(
    not(all(e2e, oras)),
    ignore = "needs MAB_E2E=1, scripts/test-env.sh and oras (scripts/trixie-tools.sh): run scripts/test.sh"
)]
fn oras_discovers_each_image_s_sbom_and_provenance_through_the_fallback_tag() {
    let _serial = crate::common::e2e_serial();
    let registry = Registry::start();
    let name = "consumer-oras";
    let _leftovers = Leftovers(name);
    let p = project(&registry, name, true);
    let repository = format!("{}/acme/{name}", registry.host());
    keygen(&p, "s3cret");
    let (out, report) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    let (_, images) = published(&format!("{repository}:1.0"));
    let attached = attachments(&report);

    for (platform, image) in &images {
        let subject = format!("{repository}@{image}");
        // docker-registry 2.8.2 has no referrers API: asked for it alone, oras fails ...
        let out = oras(&[
            "discover",
            "--distribution-spec",
            "v1.1-referrers-api",
            "--format",
            "json",
            &subject,
        ]);
        assert!(
            !out.status.success(),
            "the registry answered the referrers API: {}",
            text(&out)
        );
        // ... and reads the fallback tag when told to, as it does by itself after the API's 404.
        for spec in [&["--distribution-spec", "v1.1-referrers-tag"][..], &[]] {
            let mut args = vec!["discover", "--format", "json"];
            args.extend_from_slice(spec);
            args.push(&subject);
            let listed: serde_json::Value = serde_json::from_slice(&oras_ok(&args)).unwrap();
            let mut found: Vec<&str> = listed["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["digest"].as_str().unwrap())
                .collect();
            found.sort_unstable();
            let mut expected: Vec<&str> = attached
                .iter()
                .filter(|a| &a[0] == platform && &a[2] == image)
                .map(|a| a[3].as_str())
                .collect();
            expected.sort_unstable();
            assert_eq!(expected.len(), 2, "{platform}: {report:#}");
            assert_eq!(found, expected, "{platform} {spec:?}");
        }
        for [_, kind, _, artifact] in attached.iter().filter(|a| &a[0] == platform) {
            let document = oras_document(&repository, artifact, kind);
            match kind.as_str() {
                SPDX => assert_eq!(document["spdxVersion"], "SPDX-2.3", "{document:#}"),
                INTOTO => {
                    assert_eq!(document["_type"], "https://in-toto.io/Statement/v1");
                    assert_eq!(document["predicateType"], "https://slsa.dev/provenance/v1");
                    let subject = &document["subject"][0]["digest"]["sha256"];
                    assert_eq!(subject, image.trim_start_matches("sha256:"), "{document:#}");
                }
                other => panic!("an attachment of type {other}"),
            }
        }
    }
}

/// A containers policy set-up in a directory: policy.json and registries.d/, the latter where
/// containers/image looks first for a user's (`$HOME/.config/containers/registries.d`), so that
/// podman, which has no flag for it, reads it with `HOME` set to the directory.
struct Policy {
    dir: tempfile::TempDir,
}

impl Policy {
    /// Every repository of `trusted` must be signed (`sigstoreSigned`, `matchRepository`) with
    /// `public`, anything else is refused; sigstore signatures are read from `host`'s `.sig` tags.
    fn new(host: &str, trusted: &[&str], public: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rule = serde_json::json!([{
            "type": "sigstoreSigned",
            "keyPath": public,
            "signedIdentity": {"type": "matchRepository"},
        }]);
        let docker: serde_json::Map<String, serde_json::Value> = trusted
            .iter()
            .map(|r| (r.to_string(), rule.clone()))
            .collect();
        let policy = serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": docker},
        });
        std::fs::write(dir.path().join("policy.json"), policy.to_string()).unwrap();
        let registries_d = dir.path().join(".config/containers/registries.d");
        std::fs::create_dir_all(&registries_d).unwrap();
        std::fs::write(
            registries_d.join("mab.yaml"),
            format!("docker:\n  {host}:\n    use-sigstore-attachments: true\n"),
        )
        .unwrap();
        Self { dir }
    }

    /// `skopeo --policy ... copy [--all] docker://REFERENCE oci:...`, a consumer's pull under
    /// the policy: the output. An OCI layout stores no signatures, hence `--remove-signatures`
    /// (after the check: skopeo checks the source before it copies anything).
    fn pull(&self, reference: &str, all: bool) -> Output {
        let out = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("skopeo");
        cmd.arg("--policy")
            .arg(self.dir.path().join("policy.json"))
            .arg("--registries.d")
            .arg(self.dir.path().join(".config/containers/registries.d"))
            .args(["copy", "--remove-signatures", "--src-tls-verify=false"]);
        if all {
            cmd.arg("--all");
        }
        let out = cmd
            .arg(format!("docker://{reference}"))
            .arg(format!("oci:{}", out.path().join("image").display()))
            .output()
            .expect("skopeo runs");
        sigstore_enabled(&out);
        out
    }

    /// `podman pull --signature-policy ... REFERENCE` (this machine's image of it) under the
    /// policy: the output. A pulled image is untagged again.
    fn podman_pull(&self, reference: &str) -> Output {
        let out = Command::new("podman")
            .arg("pull")
            .arg("--signature-policy")
            .arg(self.dir.path().join("policy.json"))
            .args(["--tls-verify=false", "-q", reference])
            .env("HOME", self.dir.path())
            .output()
            .expect("podman runs");
        sigstore_enabled(&out);
        if out.status.success() {
            let _ = Command::new("podman").args(["rmi", reference]).output();
        }
        out
    }
}

/// Fails the test when the tool that said `out` has sigstore disabled: then it cannot check.
fn sigstore_enabled(out: &Output) {
    let said = text(out);
    assert!(
        !said.contains("sigstore disabled"),
        "this skopeo / podman has sigstore disabled (Debian 12's): the test runs in scripts/podman5-root.sh's root: {said}"
    );
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
#[cfg_attr(
    e2e,
    ignore = "needs skopeo and podman with sigstore, which Debian 12's have disabled: scripts/podman5-root.sh runs it (--ignored) with Debian 13's"
)]
fn sigstore_policy_accepts_mab_s_signatures_and_refuses_another_key_and_an_unsigned_image() {
    let _serial = crate::common::e2e_serial();
    let registry = Registry::start();
    let name = "consumer-policy";
    let _leftovers = Leftovers(name);
    let p = project(&registry, name, false);
    let host = registry.host();
    let repository = format!("{host}/acme/{name}");
    keygen(&p, "s3cret");
    let (out, _) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    let tag = format!("{repository}:1.0");

    // The same list copied to another repository without its signatures.
    let unsigned = format!("{host}/acme/{name}-unsigned");
    let anything = tempfile::tempdir().unwrap();
    let accept = anything.path().join("policy.json");
    std::fs::write(
        &accept,
        r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(&accept)
        .args([
            "copy",
            "--all",
            "--remove-signatures",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{tag}"))
        .arg(format!("docker://{unsigned}:1.0"))
        .output()
        .expect("skopeo runs");
    assert!(out.status.success(), "{}", text(&out));

    let mab_key = Policy::new(
        &host,
        &[&repository, &unsigned],
        &p.path().join("cosign.pub"),
    );
    // This machine's image of the list (its amd64 image's signature), then the whole list (the
    // index's).
    for all in [false, true] {
        let out = mab_key.pull(&tag, all);
        assert!(out.status.success(), "--all {all}: {}", text(&out));
    }
    let out = mab_key.podman_pull(&tag);
    assert!(out.status.success(), "podman pull: {}", text(&out));
    let out = mab_key.podman_pull(&format!("{unsigned}:1.0"));
    assert!(
        !out.status.success(),
        "podman pulled an unsigned image: {}",
        text(&out)
    );
    let out = mab_key.pull(&format!("{unsigned}:1.0"), false);
    assert!(
        !out.status.success(),
        "an unsigned image passed: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("A signature was required, but no signature exists"),
        "{}",
        text(&out)
    );

    let other = tempfile::tempdir().unwrap();
    let prefix = other.path().join("other");
    let out = p
        .mab(&["keygen", "--output-key-prefix"])
        .arg(&prefix)
        .env("COSIGN_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let other_key = Policy::new(&host, &[&repository], &other.path().join("other.pub"));
    for all in [false, true] {
        let out = other_key.pull(&tag, all);
        assert!(
            !out.status.success(),
            "another key passed (--all {all}): {}",
            text(&out)
        );
        assert!(
            text(&out).contains("cryptographic signature verification failed"),
            "{}",
            text(&out)
        );
    }
    let out = other_key.podman_pull(&tag);
    assert!(
        !out.status.success(),
        "podman: another key passed: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("cryptographic signature verification failed"),
        "{}",
        text(&out)
    );
}
