//! Issue 21, the content lane: OCI 1.1 artifacts attached to a pushed image through the
//! referrers fallback index, the ELF content check and SBOMs/provenance of a real run. Needs
//! what scripts/test-env.sh sets up and `MAB_E2E=1` (see tests/e2e.rs).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::registry::{Registry, raw_bytes};

use mab::attach::{self, Access, Artifact, Processes, Subject};

/// Pushes a tiny one-layer image of the test base to `reference` and returns its manifest.
fn push_base_image(reference: &str) -> Vec<u8> {
    let out = Command::new("podman")
        .args([
            "push",
            "--tls-verify=false",
            "localhost/mab-test/busybox:arm64",
            &format!("docker://{reference}"),
        ])
        .output()
        .expect("podman runs");
    assert!(out.status.success(), "{}", common::text(&out));
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
    let registry = Registry::start();
    let repo = format!("{}/content/attach", registry.host());
    let raw = push_base_image(&format!("{repo}:arm64"));
    let subject = Subject::of(repo.parse().unwrap(), &raw);
    let access = Access {
        insecure: true,
        registries_conf: None,
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

fn podman(args: &[&str]) -> Vec<u8> {
    let out = Command::new("podman")
        .args(args)
        .env("BUILDAH_ISOLATION", "chroot")
        .output()
        .expect("podman runs");
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        common::text(&out)
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
    for (tag, platform) in [
        ("amd64", "linux/amd64"),
        ("arm64", "linux/arm64"),
        ("armhf", "linux/arm/v7"),
        ("i386", "linux/386"),
    ] {
        let name = format!("localhost/mab-test/busybox:{tag}");
        let image = layers::parse_inspect(&podman(&["image", "inspect", &name]))
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
    podman(&[
        "build",
        "--platform",
        "linux/arm64",
        "-t",
        &name,
        dir.path().to_str().unwrap(),
    ]);
    let images = layers::parse_inspect(&podman(&[
        "image",
        "inspect",
        &name,
        "localhost/mab-test/busybox:arm64",
    ]))
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
    podman(&["rmi", &name]);
}
