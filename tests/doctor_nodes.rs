//! `mab doctor` judges the Dockerfile features of each build by the podman it runs on: a build
//! on a remote node by that node's version (issue 20), with the stand-in podman (tests/fake),
//! which claims FAKE_VERSION here and FAKE_NODE_VERSION on every node.

use crate::common::text;

use std::path::Path;

use crate::common::Project;

/// A heredoc in the stage every build reaches; amd64 builds here, arm64 on the node `arm`.
fn project() -> Project {
    let p = Project::new();
    p.file(
        "Dockerfile",
        "FROM busybox\nRUN <<EOF\necho built > /out\nEOF\n",
    );
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"127.0.0.1:9/x\"\ntags = [\"1\"]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\
         [nodes.local]\nplatforms = [\"linux/amd64\"]\n\
         [nodes.arm]\nurl = \"unix:///run/arm.sock\"\nplatforms = [\"linux/arm64\"]\n\
         [images.app]\n",
    );
    p
}

/// `mab doctor` with this machine's podman at `local` and the node's at `node`.
fn doctor(p: &Project, local: &str, node: &str) -> (Option<i32>, String) {
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake");
    let out = p
        .mab(&["doctor"])
        .env(
            "PATH",
            format!("{}:{}", fake.display(), std::env::var("PATH").unwrap()),
        )
        .env("FAKE_STATE", p.path().join("fake-state"))
        .env("FAKE_LOG", p.path().join("podman.log"))
        .env_remove("MAB_PODMAN")
        .env("FAKE_VERSION", local)
        .env("FAKE_NODE_VERSION", node)
        .output()
        .unwrap();
    (out.status.code(), text(&out))
}

#[test]
fn a_node_on_podman_5_builds_the_heredoc_that_podman_4_here_cannot() {
    let p = project();
    let (code, all) = doctor(&p, "4.3.1", "5.4.2");
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains("ok   node arm (unix:///run/arm.sock): podman 5.4.2-stand-in"),
        "{all}"
    );
    // The amd64 build here fails; the arm64 one on the node does not count against it.
    assert!(
        all.contains("FAIL Dockerfile:2:1: a heredoc (`RUN <<EOF`, `COPY <<EOF`), which podman 4.3.1 cannot build"),
        "{all}"
    );
    assert_eq!(all.matches("FAIL Dockerfile:2:1").count(), 1, "{all}");
    assert!(!all.contains("(node arm) cannot build"), "{all}");
    // Everything on podman 5: nothing fails.
    let (code, all) = doctor(&p, "5.4.2", "5.4.2");
    assert!(!all.contains("heredoc"), "{all}");
    assert_ne!(code, Some(3), "{all}");
}

#[test]
fn a_node_on_podman_4_fails_the_heredoc_by_its_name() {
    let p = project();
    let (code, all) = doctor(&p, "5.4.2", "4.3.1");
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains("FAIL Dockerfile:2:1: a heredoc (`RUN <<EOF`, `COPY <<EOF`), which podman 4.3.1 (node arm) cannot build (measured on 4.3.1: \"Unknown instruction\")"),
        "{all}"
    );
    assert!(all.contains("fix: use podman 5.4.2 or later"), "{all}");
    assert_eq!(all.matches("FAIL Dockerfile:2:1").count(), 1, "{all}");
}
