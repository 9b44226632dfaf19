//! The planner on Dockerfiles with the shapes of real ones (tests/corpus: a directory per case,
//! its Dockerfile and, optionally, image.toml with the image's own keys). Every case is an image
//! of one config, next to the images its Dockerfile may read; for each case the snapshot holds
//! what each build waits for, what it is pointed at (build contexts, args, target) and the
//! platforms it runs steps on, and the warnings about it.

use crate::common;

use std::path::Path;

use common::{Project, each, strings};

/// The images the cases read, and their platforms: toolchains that run where the build runs
/// are built for the build machine only, as teams that cross-compile build them.
const IMAGES: &[(&str, &[&str])] = &[
    ("base", &["linux/amd64", "linux/arm64"]),
    ("distroless", &["linux/amd64", "linux/arm64"]),
    ("golang", &["linux/amd64", "linux/arm64"]),
    ("node", &["linux/amd64", "linux/arm64"]),
    ("rust", &["linux/amd64"]),
    ("tool", &["linux/amd64"]),
    ("xx", &["linux/amd64"]),
];

fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut cases: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

fn project(cases: &[String]) -> Project {
    let p = Project::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut toml = String::from(
        "[defaults]\nregistry = \"r.test\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n[vars]\nflavour = \"release\"\n\n[builder]\noci_labels = false\n",
    );
    let tags = |name: &str| match name {
        "golang" => "1.22",
        "node" => "20",
        _ => "1",
    };
    for (name, platforms) in IMAGES {
        p.file(&format!("images/{name}/Dockerfile"), "FROM scratch\n");
        toml.push_str(&format!(
            "\n[images.{name}]\ncontext = \"images/{name}\"\ntags = [\"{}\"]\nplatforms = {platforms:?}\n",
            tags(name)
        ));
    }
    for case in cases {
        let dir = src.join(case);
        p.file(
            &format!("cases/{case}/Dockerfile"),
            &std::fs::read_to_string(dir.join("Dockerfile")).unwrap(),
        );
        toml.push_str(&format!("\n[images.{case}]\ncontext = \"cases/{case}\"\n"));
        if let Ok(own) = std::fs::read_to_string(dir.join("image.toml")) {
            toml.push_str(&own);
        }
    }
    p.file(
        "cases/shared-src/README",
        "a directory passed as a named context\n",
    );
    p.file("multiarch.toml", &toml);
    p
}

/// One case's builds as the snapshot shows them.
fn summary(plan: &serde_json::Value, case: &str) -> String {
    let mut out = String::new();
    for b in plan["builds"].as_array().unwrap() {
        if b["image"] != case {
            continue;
        }
        let runs = strings(&b["run_platforms"]).join(", ");
        let after = strings(&b["depends_on"]).join(", ");
        out.push_str(&format!(
            "{} runs steps on [{runs}] after [{after}]\n",
            b["id"].as_str().unwrap()
        ));
        let argv = strings(&b["argv"]);
        for pair in argv.windows(2) {
            if ["--build-context", "--build-arg", "--target"].contains(&pair[0].as_str()) {
                out.push_str(&format!("  {} {}\n", pair[0], pair[1]));
            }
        }
    }
    for w in plan["warnings"].as_array().unwrap() {
        if w["image"] == case {
            out.push_str(&format!(
                "warning: {}\n  help: {}\n",
                w["message"].as_str().unwrap(),
                w["help"].as_str().unwrap()
            ));
        }
    }
    out
}

#[test]
fn every_case_plans_as_podman_reads_it() {
    let cases = corpus();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let p = project(&cases);
    let out = p.mab(&["plan", "--format", "json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let images = each(&plan["manifests"], "image");
    for case in &cases {
        assert!(images.contains(case), "no manifest for {case}");
        insta::with_settings!({ snapshot_path => "snapshots/corpus", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(case.as_str(), summary(&plan, case));
        });
    }
}
