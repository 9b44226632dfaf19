//! `mab init`, `mab completions`, `mab man`: run as a user would.

use crate::common;

use common::Project;

/// `mab init DIR/Dockerfile` in `p`, which must succeed; then `mab plan` of what it wrote,
/// which must succeed too. Returns the file's text and the JSON plan.
fn init_and_plan(p: &Project, dir: &str) -> (String, serde_json::Value) {
    p.file(&format!("{dir}/Dockerfile"), "FROM scratch\n");
    let out = p
        .mab(&["init", &format!("{dir}/Dockerfile")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = format!("{dir}/multiarch.toml");
    let text = std::fs::read_to_string(p.path().join(&file)).unwrap();
    let plan = p
        .mab(&["plan", "-f", &file, "--format", "json"])
        .output()
        .unwrap();
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    (text, serde_json::from_slice(&plan.stdout).unwrap())
}

#[test]
fn init_writes_a_config_that_plans() {
    let p = Project::new();
    let (text, _) = init_and_plan(&p, "web");
    assert!(
        text.starts_with("#:schema ./multiarch.schema.json\n"),
        "{text}"
    );
    assert!(
        text.contains("\"linux/amd64\"") && text.contains("\"linux/arm64\""),
        "{text}"
    );
    assert!(text.contains("[images.web]"), "{text}");
    assert!(p.path().join("web/multiarch.schema.json").is_file());
    // Not in git: no git tag template (and the config planned as written).
    assert!(text.contains("tags      = [\"latest\"]"), "{text}");

    // Never over an existing file.
    let again = p.mab(&["init", "web/Dockerfile"]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(p.path().join("web/multiarch.toml")).unwrap(),
        text
    );
}

#[test]
fn init_in_git_uses_the_commit_for_tags_and_the_remote_for_the_registry() {
    let p = Project::new();
    p.file("Dockerfile", "FROM scratch\n");
    p.git_commit("fixture");
    let status = std::process::Command::new("git")
        .args([
            "remote",
            "add",
            "origin",
            "https://github.com/Acme/shop.git",
        ])
        .current_dir(p.path())
        .status()
        .unwrap();
    assert!(status.success());
    let out = p.mab(&["init"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(p.path().join("multiarch.toml")).unwrap();
    assert!(text.contains("registry  = \"ghcr.io/acme\""), "{text}");
    assert!(text.contains("{{ git.short_sha }}"), "{text}");
    let plan = p.mab(&["plan", "--format", "json"]).output().unwrap();
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
}

/// A directory name with a dot is one image, not a table in a table.
#[test]
fn init_in_a_dotted_directory_plans() {
    let p = Project::new();
    let (text, plan) = init_and_plan(&p, "my.app");
    assert!(text.contains("[images.\"my.app\"]"), "{text}");
    assert_eq!(plan["manifests"][0]["image"], "my.app");
}

#[test]
fn init_without_a_dockerfile_says_so() {
    let p = Project::new();
    p.test()
        .arg("init")
        .status(2)
        .stderr_has("no Dockerfile at Dockerfile")
        .run();
    assert!(!p.path().join("multiarch.toml").exists());
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let p = Project::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = p.mab(&["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("keep-going") && script.contains("plan"),
            "{shell}: {script}"
        );
    }
    let out = p.mab(&["man"]).output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        page.starts_with(".ie") || page.contains(".TH mab"),
        "{page}"
    );
    assert!(page.contains("plan") && page.contains("run"), "{page}");
}

#[test]
fn init_in_a_monorepo_writes_just_the_image_and_plans_as_a_member() {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "#:schema ./multiarch.schema.json\n[defaults]\nregistry = \"r.example/acme\"\nplatforms = [\"linux/arm64\"]\ntags = [\"7\"]\n",
    )
    .file("multiarch.schema.json", "{}\n")
    .file("services/web/Dockerfile", "FROM scratch\n");
    p.git_commit("root");
    let out = p
        .mab(&["init", "services/web/Dockerfile"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(p.path().join("services/web/multiarch.toml")).unwrap();
    assert!(
        text.starts_with("#:schema ../../multiarch.schema.json\n"),
        "{text}"
    );
    assert!(!text.contains("[defaults]"), "{text}");
    assert!(text.contains("[images.web]"), "{text}");
    assert!(!p.path().join("services/web/multiarch.schema.json").exists());
    // Planned from its directory: the root's platform, registry and tag.
    let mut cmd = p.mab(&["plan", "--format", "json"]);
    cmd.current_dir(p.path().join("services/web"));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["builds"][0]["id"], "web@linux-arm64");
    assert_eq!(plan["manifests"][0]["tags"][0], "r.example/acme/web:7");
}
