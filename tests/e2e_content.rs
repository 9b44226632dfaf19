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
