//! `mab plan` run as a user runs it: the real binary on the shipped examples and scratch projects,
//! with its output snapshotted in all three formats.

mod common;

use common::Project;
use insta_cmd::assert_cmd_snapshot;

fn monorepo() -> Project {
    let p = Project::example("monorepo");
    p.git_commit("fixture");
    p
}

#[test]
fn monorepo_text() {
    let p = monorepo();
    p.settings()
        .bind(|| assert_cmd_snapshot!("monorepo_text", p.mab(&["plan"])));
}

#[test]
fn monorepo_json() {
    let p = monorepo();
    p.settings()
        .bind(|| assert_cmd_snapshot!("monorepo_json", p.mab(&["plan", "--format", "json"])));
}

#[test]
fn monorepo_dot() {
    let p = monorepo();
    p.settings()
        .bind(|| assert_cmd_snapshot!("monorepo_dot", p.mab(&["plan", "--format", "dot"])));
}

#[test]
fn simple_text_uses_git_sha() {
    let p = Project::example("simple");
    p.git_commit("fixture");
    p.settings()
        .bind(|| assert_cmd_snapshot!("simple_text", p.mab(&["plan"])));
}

/// The JSON is the contract with tools: check its structure, not only its snapshot.
#[test]
fn json_edges_are_per_platform_and_ordered() {
    let p = monorepo();
    let out = p.mab(&["plan", "--format", "json"]).output().unwrap();
    assert!(out.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let builds = plan["builds"].as_array().unwrap();
    let position = |id: &str| {
        builds
            .iter()
            .position(|b| b["id"] == id)
            .unwrap_or_else(|| panic!("no build {id}"))
    };
    for b in builds {
        let platform = b["platform"].as_str().unwrap();
        for dep in b["depends_on"].as_array().unwrap() {
            let dep = dep.as_str().unwrap();
            assert!(
                position(dep) < position(b["id"].as_str().unwrap()),
                "{dep} must come before {}",
                b["id"]
            );
            let dep_platform = &builds[position(dep)]["platform"];
            assert_eq!(
                dep_platform, platform,
                "{} waits only for builds of its own platform",
                b["id"]
            );
        }
        assert_eq!(b["argv"][0], "podman");
    }
    assert_eq!(
        builds[position("runtime@linux-arm64")]["depends_on"],
        serde_json::json!(["base@linux-arm64"])
    );
    let api = plan["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["image"] == "api-go1.22")
        .unwrap();
    assert_eq!(
        api["tags"],
        serde_json::json!(["ghcr.io/acme/api:1.4.2-go1.22"])
    );
    assert_eq!(
        api["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
}

#[test]
fn selection_pulls_in_dependencies_and_platform_filter() {
    let p = monorepo();
    let out = p
        .mab(&[
            "plan",
            "api-go1.23",
            "--platform",
            "aarch64",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = plan["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "base@linux-arm64",
            "runtime@linux-arm64",
            "api-go1.23@linux-arm64"
        ]
    );
}

#[test]
fn glob_selects_matrix_instances() {
    let p = monorepo();
    p.settings().bind(|| {
        assert_cmd_snapshot!(
            "glob_api",
            p.mab(&["plan", "api-*", "--platform", "linux/amd64"])
        )
    });
}

#[test]
fn image_key_selects_all_instances_and_var_overrides() {
    let p = monorepo();
    let out = p
        .mab(&["plan", "api", "--var", "version=2.0.0", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let images: Vec<&str> = plan["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["api-go1.22", "api-go1.23", "base", "runtime"]);
    assert_eq!(
        plan["manifests"][0]["tags"][0],
        "ghcr.io/acme/api:2.0.0-go1.22"
    );
}

#[test]
fn config_is_found_in_a_parent_directory() {
    let p = monorepo();
    let out = p
        .mab(&["plan", "--format", "json"])
        .current_dir(p.path().join("services/api"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["builds"].as_array().unwrap().len(), 10);
    assert_eq!(plan["config"], "../../multiarch.toml");
}

#[test]
fn output_is_deterministic() {
    let p = monorepo();
    let run = || {
        p.mab(&["plan", "--format", "json"])
            .output()
            .unwrap()
            .stdout
    };
    let first = run();
    for _ in 0..3 {
        assert_eq!(run(), first);
    }
}

#[test]
fn dot_output_is_valid_graphviz() {
    let p = monorepo();
    let dot = p.mab(&["plan", "--format", "dot"]).output().unwrap().stdout;
    let Ok(mut child) = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        // `.ci/run` installs graphviz; a developer machine may not have it.
        assert!(
            std::env::var_os("CI").is_none(),
            "graphviz `dot` must be installed in CI"
        );
        return;
    };
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&dot).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dot rejected the output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}
