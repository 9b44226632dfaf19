//! What podman 4.3.1 builds once mab knows what it does (issue 20), end to end with the real
//! podman and a registry on 127.0.0.1 (see tests/e2e.rs for the environment).

use crate::common;

use common::{BASE, text};

use std::path::Path;
use std::process::Output;

use common::Project;
use common::registry::Registry;

/// scripts/test-env.sh imports it from Debian's busybox-static:i386.
const BASE_386: &str = "localhost/mab-test/busybox:i386";

fn scratch(registry: &Registry, platforms: &str, images: &str) -> Project {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nregistry = \"{host}/e2e\"\nplatforms = [{platforms}]\ntags = [\"1\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n{images}",
            host = registry.host()
        ),
    );
    p
}

fn run(p: &Project) -> Output {
    p.mab(&["run", "--progress", "plain"])
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .output()
        .expect("mab runs")
}

/// An amd64 kernel runs i386 code: a linux/386 `RUN` builds with no handler registered, and
/// doctor (which `mab run` asks first) lets it.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "i386 is native on amd64 machines only"
)]
fn a_386_run_step_builds_with_no_handler() {
    assert!(
        !Path::new("/proc/sys/fs/binfmt_misc/qemu-i386").exists(),
        "an i386 handler is registered here: this test would not show that none is needed"
    );
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let p = scratch(&registry, "\"linux/386\"", "[images.e2e-i386]\n");
    p.file(
        "Dockerfile",
        &format!("FROM {BASE_386}\nRUN echo ran > /out\n"),
    );
    let doctor = p
        .mab(&["doctor"])
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .output()
        .expect("mab runs");
    assert!(doctor.status.success(), "{}", text(&doctor));
    assert!(
        text(&doctor).contains("ok   linux/386: runs natively here"),
        "{}",
        text(&doctor)
    );
    let out = run(&p);
    assert!(out.status.success(), "{}", text(&out));
    let reference = format!("{}/e2e/e2e-i386:1", registry.host());
    assert_eq!(
        registry
            .read_file(&reference, ("linux", "386", None), "/out")
            .as_deref()
            .map(str::trim),
        Some("ran")
    );
}

/// docker/compose's `FROM binary-$TARGETOS` with no `ARG TARGETOS`: podman 4.3.1 reads it as
/// `FROM binary-` ("invalid reference format") unless the copy of the Dockerfile declares it;
/// with mab it builds for two platforms, each from its own stage.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn from_a_stage_named_by_targetos_builds_for_two_platforms() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let p = scratch(
        &registry,
        "\"linux/amd64\", \"linux/arm64\"",
        "[images.e2e-targetos]\n",
    );
    p.file(
        "Dockerfile",
        &format!(
            "FROM {BASE} AS binary-linux\nRUN echo \"linux-$(uname -m)\" > /os\nFROM {BASE} AS binary-windows\nRUN echo windows > /os\nFROM binary-$TARGETOS\nRUN cp /os /out\n"
        ),
    );
    let out = run(&p);
    assert!(out.status.success(), "{}", text(&out));
    let copy = std::fs::read_to_string(p.path().join(".mab/dockerfiles/e2e-targetos@linux-arm64"))
        .expect("the copy of the Dockerfile is written");
    assert!(copy.starts_with("ARG TARGETOS\nFROM "), "{copy}");
    let reference = format!("{}/e2e/e2e-targetos:1", registry.host());
    for (arch, uname) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        assert_eq!(
            registry
                .read_file(&reference, ("linux", arch, None), "/out")
                .as_deref()
                .map(str::trim),
            Some(format!("linux-{uname}").as_str()),
            "{arch}"
        );
    }
}
