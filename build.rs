//! The end-to-end tests (tests/e2e.rs) need a real podman, skopeo, a registry and the local base
//! images that scripts/test-env.sh sets up. They are compiled in only when asked for with
//! `MAB_E2E=1` (scripts/test.sh sets it), and then the environment must be there; elsewhere
//! `cargo test` reports them ignored, with the reason, never passed.

use std::process::Command;

const BASE: &str = "localhost/mab-test/busybox:latest";
/// A registry with the OCI 1.1 referrers API (tests/referrers-registry, built by
/// scripts/test-env.sh): tests/e2e_referrers.rs needs it.
const REFERRERS_REGISTRY: &str = "/var/cache/mab/referrers-registry/bin/mab-referrers-registry";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(e2e)");
    println!("cargo::rustc-check-cfg=cfg(py_cryptography)");
    println!("cargo::rustc-check-cfg=cfg(cosign)");
    println!("cargo::rustc-check-cfg=cfg(oras)");
    println!("cargo::rustc-check-cfg=cfg(referrers_registry)");
    println!("cargo::rerun-if-env-changed=MAB_E2E");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={REFERRERS_REGISTRY}");
    if std::env::var("MAB_E2E").map_or(true, |v| v.is_empty() || v == "0") {
        return;
    }
    let runs = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let checks = [
        (
            "podman with the base image",
            runs("podman", &["image", "exists", BASE]),
        ),
        ("skopeo", runs("skopeo", &["--version"])),
        (
            "docker-registry",
            Command::new("docker-registry")
                .arg("--version")
                .output()
                .is_ok(),
        ),
    ];
    let missing: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| *what)
        .collect();
    assert!(
        missing.is_empty(),
        "MAB_E2E=1, but the end-to-end environment lacks {}: run scripts/test-env.sh as root",
        missing.join(", ")
    );
    println!("cargo::rustc-cfg=e2e");
    // The signatures are checked by an implementation that is not mab's (tests/e2e_sign.rs):
    // without Python's `cryptography` those tests show as ignored.
    if runs("python3", &["-c", "import cryptography"]) {
        println!("cargo::rustc-cfg=py_cryptography");
    }
    // Consumers' own tools check what mab publishes (tests/e2e_consumer.rs): without them (Debian
    // 13's packages, scripts/trixie-tools.sh) those tests show as ignored.
    if runs("cosign", &["version"]) {
        println!("cargo::rustc-cfg=cosign");
    }
    if runs("oras", &["version"]) {
        println!("cargo::rustc-cfg=oras");
    }
    // The referrers API path (tests/e2e_referrers.rs) needs a registry that has the API.
    if std::path::Path::new(REFERRERS_REGISTRY).is_file() {
        println!("cargo::rustc-cfg=referrers_registry");
    }
}
