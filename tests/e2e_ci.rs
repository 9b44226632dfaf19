//! `--ci github` on a real run (podman, a registry on 127.0.0.1): the job summary, and the
//! step outputs parsed as JSON and checked against what the registry serves. Needs what
//! scripts/test-env.sh sets up and `MAB_E2E=1` (see tests/e2e.rs).

mod common;

use common::{BASE, Project, text};

use std::collections::BTreeMap;

use common::registry::{Registry, raw_bytes};
use sha2::{Digest, Sha256};

/// The values of a `$GITHUB_OUTPUT` file: `KEY<<DELIM` ... `DELIM` blocks.
fn outputs(file: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = file.lines();
    while let Some(line) = lines.next() {
        let (key, delim) = line.split_once("<<").expect("a multiline value");
        let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delim).collect();
        out.insert(key.to_string(), value.join("\n"));
    }
    out
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_github_run_writes_its_summary_and_outputs() {
    let registry = Registry::start();
    let host = registry.host();
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nregistry = \"{host}/ci\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\", \"latest\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[images.app]\ncontext = \"app\"\n"
        ),
    );
    p.file("app/Dockerfile", &format!("FROM {BASE}\nCOPY file /file\n"));
    p.file("app/file", "x");
    p.git_commit("fixture");
    let summary = p.path().join("summary.md");
    let output = p.path().join("output");
    let (out, report) = p.run_reported(
        &["--ci", "github"],
        &[
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    let raw = raw_bytes(&format!("{host}/ci/app:1"));
    let index = format!("sha256:{:x}", Sha256::digest(&raw));
    let served: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## mab run succeeded\n"), "{md}");
    assert!(
        md.contains(&format!(
            "| app | `{host}/ci/app:1`<br>`{host}/ci/app:latest` | `{index}` | linux/amd64, linux/arm64 | pushed |"
        )),
        "{md}"
    );
    assert!(md.contains("| app | linux/arm64 | built |"), "{md}");
    assert!(
        md.contains("2 build(s): 2 built, 0 unchanged, 0 failed; 1 list(s), 1 pushed."),
        "{md}"
    );

    let values = outputs(&std::fs::read_to_string(&output).unwrap());
    let digests: serde_json::Value = serde_json::from_str(&values["digests"]).unwrap();
    for tag in ["1", "latest"] {
        let entry = &digests[format!("{host}/ci/app:{tag}")];
        assert_eq!(entry["digest"], index.as_str(), "{digests}");
        for m in served["manifests"].as_array().unwrap() {
            let platform = format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            );
            assert_eq!(entry["platforms"][&platform], m["digest"], "{digests}");
        }
    }
    // `report` names the report, which holds what the run did.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&values["report"]).unwrap()).unwrap();
    assert_eq!(written["run_id"], report["run_id"]);
}
