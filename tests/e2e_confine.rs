//! The repository's boundary end to end, with the real podman and a registry on 127.0.0.1 (see
//! tests/e2e.rs for the environment): the attacks push nothing, and what the person
//! running mab allows reaches the image.

use crate::common;

use common::{BASE, text};

use std::process::Output;

use common::Project;
use common::registry::Registry;

/// A project pushing `images` to `registry`, amd64 only.
fn scratch(registry: &Registry, images: &str) -> Project {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nregistry = \"{host}/confine\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n{images}",
            host = registry.host()
        ),
    );
    p
}

fn run(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut full = vec!["run", "--progress", "plain"];
    full.extend_from_slice(args);
    let mut cmd = p.mab(&full);
    cmd.env_remove("CONTAINERS_REGISTRIES_CONF");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("mab runs")
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn credentials_outside_the_repository_are_never_pushed_unless_allowed() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    // The runner's credentials, beside the checkout.
    let creds = tempfile::tempdir().unwrap();
    let canary = format!("auth-{}-canary", std::process::id());
    std::fs::write(creds.path().join("auth.json"), &canary).unwrap();
    let p = scratch(
        &registry,
        &format!(
            "[images.loot]\ncontexts = {{ loot = \"{}\" }}\n",
            creds.path().display()
        ),
    );
    p.file(
        "Dockerfile",
        &format!("FROM {BASE}\nCOPY --from=loot auth.json /\n"),
    );
    let reference = format!("{}/confine/loot:1", registry.host());

    let out = run(&p, &[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(registry.raw(&reference).is_none(), "nothing is pushed");

    // The person running mab may allow it: then it is what they asked for.
    let allow = format!("fs.read={}", creds.path().display());
    let out = run(&p, &["--allow", &allow], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let got = registry.read_file(&reference, ("linux", "amd64", None), "/auth.json");
    assert_eq!(got.as_deref(), Some(canary.as_str()));
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_credential_in_a_label_template_is_never_pushed() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let p = scratch(
        &registry,
        "[images.label]\nlabels = { x = \"{{ env('REGISTRY_PASSWORD') }}\" }\n",
    );
    p.file("Dockerfile", &format!("FROM {BASE}\n"));
    let password = format!("pw-{}-canary", std::process::id());
    let out = run(&p, &[], &[("REGISTRY_PASSWORD", &password)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains(&password), "{}", text(&out));
    let reference = format!("{}/confine/label:1", registry.host());
    assert!(registry.raw(&reference).is_none(), "nothing is pushed");
}
