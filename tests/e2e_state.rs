//! State that a repository cannot forge (issue 17), end to end with the real podman and a
//! real registry on 127.0.0.1: links committed where podman writes (`--iidfile`,
//! `--digestfile`) are refused before podman runs, and a forged record of the old process
//! ledger in the repository stops nothing. Needs what scripts/test-env.sh sets up and
//! `MAB_E2E=1` (see tests/e2e.rs).

use crate::common;

use common::{BASE, text};

use std::process::Output;

use common::Project;
use common::procs::{alive, kill_group, orphaned_group};
use common::registry::Registry;

fn mab(p: &Project, args: &[&str]) -> Output {
    p.mab(args)
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .output()
        .expect("mab runs")
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn links_where_podman_writes_are_refused_and_a_forged_ledger_stops_nothing() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nregistry = \"{host}/e2e\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[images.e2e-state]\n",
            host = registry.host()
        ),
    );
    p.file("Dockerfile", &format!("FROM {BASE}\nRUN echo built > /x\n"));
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("auth.json");
    std::fs::write(&victim, "{\"auths\": {}}\n").unwrap();
    for link in [".mab/iid/e2e-state@linux-amd64", ".mab/digest/e2e-state@1"] {
        let at = p.path().join(link);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &at).unwrap();
        let out = mab(&p, &["run", "--progress", "plain"]);
        assert_eq!(out.status.code(), Some(2), "{link}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("`{link}` is a symbolic link")),
            "{}",
            text(&out)
        );
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "{\"auths\": {}}\n"
        );
        std::fs::remove_file(&at).unwrap();
    }
    assert!(
        registry
            .raw(&format!("{}/e2e/e2e-state:1", registry.host()))
            .is_none(),
        "nothing was pushed"
    );

    // A group whose leader exited while a member lives on, as an orphaned daemon's would,
    // and the forged record of it in the repository's old ledger.
    let (orphan, group) = orphaned_group();
    p.file(
        ".mab/processes/20260101-000000-4194001",
        &format!("+ {group} 0\n"),
    );
    // A stale image id of an earlier run is no link: it is replaced.
    p.file(".mab/iid/e2e-state@linux-amd64", "sha256:stale\n");
    let out = mab(&p, &["run", "--progress", "plain"]);
    let survived = alive(orphan);
    kill_group(group);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        survived,
        "the forged record stopped a group: {}",
        text(&out)
    );
    assert!(!text(&out).contains("stopped"), "{}", text(&out));
    let iid = std::fs::read_to_string(p.path().join(".mab/iid/e2e-state@linux-amd64")).unwrap();
    assert!(
        iid.starts_with("sha256:") && iid.trim() != "sha256:stale",
        "{iid}"
    );
    assert!(
        registry
            .raw(&format!("{}/e2e/e2e-state:1", registry.host()))
            .is_some(),
        "pushed"
    );
}
