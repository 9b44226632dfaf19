//! External platforms end to end, with the real podman and a real registry on 127.0.0.1: a
//! split pipeline where one job pushes the arm64 image and another builds amd64 and publishes
//! the list, its arm64 entry taken `from` the first job's tag. Needs what scripts/test-env.sh
//! sets up and `MAB_E2E=1` (see tests/e2e.rs).

use crate::common;

use common::BASE;

use common::Project;
use common::registry::Registry;

/// `mab run` in `p`, which must succeed: its report, as JSON (the report's type does not read
/// its lists' `external` entries back).
fn run(p: &Project) -> serde_json::Value {
    p.test()
        .real_podman()
        .args(["run", "--progress", "plain"])
        .report()
        .status(0)
        .run()
        .report_json()
}

fn head(registry: &Registry) -> String {
    let host = registry.host();
    format!(
        "[defaults]\nregistry = \"{host}/ext\"\ntags = [\"1\"]\n\n[registries.\"{host}\"]\ninsecure = true\n"
    )
}

/// The job that builds arm64 alone and pushes it as `ext/arm-job:1`; `content` goes into it.
fn arm_job(registry: &Registry) -> Project {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "{}\n[images.arm-job]\ncontext = \"arm\"\nplatforms = [\"linux/arm64\"]\n",
            head(registry)
        ),
    );
    p.file("arm/Dockerfile", &format!("FROM {BASE}\nCOPY file /job\n"));
    p.file("arm/file", "arm job 1");
    p
}

/// The job that builds amd64 and publishes `ext/app:1` with arm64 taken from the other job.
fn app(registry: &Registry) -> Project {
    let host = registry.host();
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "{}\n[images.app]\ncontext = \"app\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[images.app.platform.\"linux/arm64\"]\nfrom = \"docker://{host}/ext/arm-job:1\"\n",
            head(registry)
        ),
    );
    p.file("app/Dockerfile", &format!("FROM {BASE}\nCOPY file /app\n"));
    p.file("app/file", "app");
    p
}

/// The digest of `platform`'s entry in the index `reference` holds.
fn entry(registry: &Registry, reference: &str, arch: &str) -> String {
    let index = registry
        .raw(reference)
        .unwrap_or_else(|| panic!("{reference} is not in the registry"));
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("{reference} has no {arch} entry: {index:#}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_list_takes_one_platform_from_a_registry_image() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let host = registry.host();
    let (arm_ref, app_ref) = (format!("{host}/ext/arm-job:1"), format!("{host}/ext/app:1"));
    let job = arm_job(&registry);
    run(&job);
    let arm64 = entry(&registry, &arm_ref, "arm64");

    let p = app(&registry);
    let first = run(&p);
    let builds: Vec<&str> = first["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(builds, ["app@linux-amd64"], "arm64 is not built");
    let external = &first["manifests"][0]["external"][0];
    assert_eq!(external["from"], arm_ref.as_str());
    assert_eq!(
        external["digest"],
        arm64.as_str(),
        "the tag resolved to the arm64 image"
    );
    assert_eq!(
        entry(&registry, &app_ref, "arm64"),
        arm64,
        "the list holds that exact image"
    );
    let arm = ("linux", "arm64", None);
    assert_eq!(
        registry.read_file(&app_ref, arm, "/job").as_deref(),
        Some("arm job 1")
    );
    let index = registry.raw(&app_ref).unwrap();

    // Nothing changed: nothing is built, every digest stays where it was.
    let second = run(&p);
    let statuses: Vec<&str> = second["builds"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["manifests"].as_array().unwrap())
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == "unchanged"), "{second:#}");
    assert_eq!(registry.raw(&app_ref).unwrap(), index);
    assert_eq!(entry(&registry, &arm_ref, "arm64"), arm64);

    // The other job pushes a new arm64 image under its tag: the next run publishes a new list
    // that holds it.
    job.file("arm/file", "arm job 2");
    run(&job);
    let moved = entry(&registry, &arm_ref, "arm64");
    assert_ne!(moved, arm64);
    let third = run(&p);
    assert_eq!(
        third["manifests"][0]["external"][0]["digest"],
        moved.as_str()
    );
    assert_eq!(entry(&registry, &app_ref, "arm64"), moved);
    assert_eq!(
        registry.read_file(&app_ref, arm, "/job").as_deref(),
        Some("arm job 2")
    );
}
