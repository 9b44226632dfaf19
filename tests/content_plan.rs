//! Issue 21, the content lane, without podman: what the plan shows of `[check]`, `[sbom]` and
//! `[provenance]`, and the config errors of those tables (exit 2, file:line:col).

use crate::common::{Project, text};

fn project(tables: &str) -> Project {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[images.app]\ncontext = \"app\"\nrepository = \"registry.example/app\"\ntags = [\"1\"]\n\n{tables}"
        ),
    );
    p.file("app/Dockerfile", "FROM scratch\nCOPY f /f\n");
    p.file("app/f", "x");
    p
}

fn plan_json(p: &Project) -> serde_json::Value {
    let out = p.mab(&["plan", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_config_without_the_tables_shows_no_content_steps() {
    let plan = plan_json(&project(""));
    assert!(plan.get("content").is_none(), "{plan:#}");
}

#[test]
fn the_plan_shows_each_check_sbom_and_attachment() {
    let p = project(
        "[sbom]\ngenerator = \"syft\"\nformat = \"spdx-json\"\n\n[provenance]\nmode = \"max\"\n\n[check]\nelf = \"warn\"\nallow = [\"/usr/bin/qemu-*-static\"]\n",
    );
    let plan = plan_json(&p);
    let content = &plan["content"];
    assert_eq!(content["check"]["elf"], "warn");
    assert_eq!(content["check"]["allow"][0], "/usr/bin/qemu-*-static");
    assert_eq!(content["sbom"]["generator"], "syft");
    assert_eq!(content["provenance"], "max");
    let builds = content["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 2);
    let steps = builds[0]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["step"], "check");
    assert_eq!(steps[1]["step"], "sbom");
    assert_eq!(steps[1]["argv"][0], "syft");
    assert_eq!(steps[1]["argv"][4], "spdx-json");
    let attach = content["lists"][0]["attach"].as_array().unwrap();
    assert_eq!(attach.len(), 2);
    assert_eq!(
        attach[0]["artifacts"],
        serde_json::json!(["application/spdx+json", "application/vnd.in-toto+json"])
    );
    assert!(
        attach[1]["index"]
            .as_str()
            .unwrap()
            .starts_with("registry.example/app:sha256-<hex of its linux/arm64 image")
    );
}

#[test]
fn a_relative_allow_glob_is_a_config_error_at_its_place() {
    let p = project("[check]\nallow = [\"usr/bin/*\"]\n");
    let out = p.mab(&["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("not an absolute path"), "{said}");
    assert!(said.contains("multiarch.toml:10:"), "{said}");
}

#[test]
fn an_unknown_generator_is_a_config_error() {
    let p = project("[sbom]\ngenerator = \"trivy\"\n");
    let out = p.mab(&["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("trivy"), "{said}");
    assert!(said.contains("multiarch.toml:10:"), "{said}");
}

/// A builtin SBOM of a build on another node is made from its registry copy's layers: the
/// plan shows its step as for a local build's, with syft's or mab's own generator alike.
#[test]
fn a_builtin_sbom_of_a_build_on_another_node_plans_like_a_local_one() {
    let nodes = "[nodes.x86]\nurl = \"ssh://ci@x86.test/run/podman/podman.sock\"\nplatforms = [\"linux/amd64\"]\n\n[nodes.arm]\nurl = \"ssh://ci@arm.test/run/podman/podman.sock\"\nplatforms = [\"linux/arm64\"]\n";
    let p = project(&format!("[sbom]\ngenerator = \"builtin\"\n\n{nodes}"));
    let plan = plan_json(&p);
    assert_eq!(plan["content"]["sbom"]["generator"], "builtin");
    let builds = plan["content"]["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 2, "{plan:#}");
    for b in builds {
        let steps = b["steps"].as_array().unwrap();
        let sbom = steps.iter().find(|s| s["step"] == "sbom").unwrap();
        assert!(sbom.get("argv").is_none(), "mab's own: no command {b:#}");
    }
    for b in plan["builds"].as_array().unwrap() {
        assert!(b["publish"].is_object(), "built on a node: {b:#}");
    }
    let syft = project(&format!("[sbom]\ngenerator = \"syft\"\n\n{nodes}"));
    assert_eq!(plan_json(&syft)["content"]["sbom"]["generator"], "syft");
}
