//! `--ci github` on a real run (podman, a registry on 127.0.0.1): the job summary, and the
//! step outputs parsed as JSON and checked against what the registry serves. Needs what
//! scripts/test-env.sh sets up and `MAB_E2E=1` (see tests/e2e.rs).

use crate::common;

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
    let _serial = common::e2e_serial();
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
    let trace = p.path().join("trace.json");
    let (out, report) = common::reported_with(
        &p,
        &["--ci", "github", "--trace", trace.to_str().unwrap()],
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
    // The summary ends with where the time went.
    assert!(
        md.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("makespan "),
        "{md}"
    );

    // Every job of the report is one complete event of the trace, as long as the report says.
    let jobs: Vec<(String, u64, u64)> = ["builds", "manifests"]
        .iter()
        .flat_map(|k| report[*k].as_array().unwrap())
        .flat_map(|e| {
            let name = e
                .get("id")
                .unwrap_or(&e["image"])
                .as_str()
                .unwrap()
                .to_string();
            e["jobs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |j| {
                    (
                        name.clone(),
                        j["start_ms"].as_u64().unwrap(),
                        j["end_ms"].as_u64().unwrap(),
                    )
                })
        })
        .collect();
    assert!(
        jobs.len() >= 4,
        "two builds, an assembly and a push at least: {jobs:?}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    let mut complete: Vec<(String, u64, u64)> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] != "critical")
        .map(|e| {
            let ts = e["ts"].as_u64().unwrap();
            let dur = e["dur"].as_u64().unwrap();
            (
                e["name"].as_str().unwrap().to_string(),
                ts / 1000,
                (ts + dur) / 1000,
            )
        })
        .collect();
    let mut want = jobs.clone();
    complete.sort();
    want.sort();
    assert_eq!(complete, want);
    // Each build's image joins the list: a flow from each build to an assembly job.
    let flows = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
    assert!(flows("s") >= 3 && flows("s") == flows("f"), "{doc}");
    // timeline.svg in the run's directory is well-formed, one bar per job.
    let svg = std::path::Path::new(report["run_dir"].as_str().unwrap()).join("timeline.svg");
    let parsed = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E\nr = E.parse(sys.argv[1]).getroot()\nprint(sum(1 for e in r.iter('{http://www.w3.org/2000/svg}rect') if e.get('class', '').startswith('bar ')))",
        ])
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "not well-formed: {}",
        text(&parsed)
    );
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout).trim(),
        jobs.len().to_string()
    );
}
