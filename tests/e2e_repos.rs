//! One image pushed to several repositories, end to end (issue 18): two registries on
//! 127.0.0.1, a `repository` list, a conditional `latest` and a tag written as a whole
//! reference, and a platform's own tag `amd64-<version>`. Every list reference must hold the
//! very bytes of the one index pushed, the platform's tag the image manifest the index lists
//! for amd64, and a second run builds nothing and moves nothing. Needs what scripts/test-env.sh sets up and
//! `MAB_E2E=1` (see tests/e2e.rs).

use crate::common;

use common::{BASE, text};

use std::process::Output;

use sha2::{Digest, Sha256};

use common::registry::Registry;
use common::{Project, find, reported};

/// `mab run` in `p`: the output and the report.
fn run(p: &Project) -> (Output, serde_json::Value) {
    reported(p, &[])
}

fn raw(reference: &str) -> Vec<u8> {
    common::registry::raw_bytes(reference)
}

/// `(reference, status)` of each tag of the report's list.
fn statuses(report: &serde_json::Value) -> Vec<(String, String)> {
    find(&report["manifests"], "image", "app")["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap_or("null").to_string();
            (s("reference"), s("status"))
        })
        .collect()
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The digest of the image an index lists for `arch`.
fn entry(index: &[u8], arch: &str) -> String {
    let json: serde_json::Value = serde_json::from_slice(index).unwrap();
    let m = json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no {arch} entry: {json}"));
    m["digest"].as_str().unwrap().to_string()
}

fn built(report: &serde_json::Value) -> usize {
    report["builds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] == "built")
        .count()
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn one_index_reaches_every_repository_and_a_rerun_moves_nothing() {
    let _serial = common::e2e_serial();
    let (one, two) = (Registry::start(), Registry::start());
    let (a, b) = (one.host(), two.host());
    let p = Project::new();
    let config = |extra: &str, arm: &str| {
        format!(
            "[vars]\nversion = \"1.0\"\nlatest = \"1.0\"\n\n[defaults]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[registries.\"{a}\"]\ninsecure = true\n\n[registries.\"{b}\"]\ninsecure = true\n\n[images.app]\ncontext = \"app\"\nrepository = [\"{a}/acme/app\", \"{b}/mirror/app\"]\ntags = [\"{{{{ vars.version }}}}\", \"{{% if vars.version == vars.latest %}}latest{{% endif %}}\", \"{b}/other/app:{{{{ vars.version }}}}\"{extra}]\n\n[images.app.platform.\"linux/amd64\"]\ntags = [\"amd64-{{{{ vars.version }}}}\"]\n{arm}"
        )
    };
    p.file("multiarch.toml", &config("", ""));
    // No RUN step: nothing is emulated, each build is a COPY.
    p.file("app/Dockerfile", &format!("FROM {BASE}\nCOPY file /file\n"));
    p.file("app/file", "1");
    p.git_commit("fixture");

    let (out, first) = run(&p);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(built(&first), 2, "one build per platform");
    let references = [
        format!("{a}/acme/app:1.0"),
        format!("{a}/acme/app:latest"),
        format!("{b}/mirror/app:1.0"),
        format!("{b}/mirror/app:latest"),
        format!("{b}/other/app:1.0"),
        format!("{a}/acme/app:amd64-1.0"),
        format!("{b}/mirror/app:amd64-1.0"),
    ];
    let lists = &references[..5];
    assert_eq!(
        statuses(&first),
        references
            .iter()
            .map(|r| (r.clone(), "moved".to_string()))
            .collect::<Vec<_>>()
    );
    let index = raw(&references[0]);
    for r in &lists[1..] {
        assert_eq!(raw(r), index, "{r} holds other bytes than {}", lists[0]);
    }
    // The platform's tags hold its image manifest, the very one the index lists for amd64.
    let amd64 = entry(&index, "amd64");
    for r in &references[5..] {
        let own = raw(r);
        assert_eq!(digest(&own), amd64, "{r} is not the list's amd64 image");
        let json: serde_json::Value = serde_json::from_slice(&own).unwrap();
        assert!(json.get("manifests").is_none(), "{r} is a list: {json}");
    }
    let report = find(&first["manifests"], "image", "app");
    let own = find(&report["tags"], "reference", &references[5]);
    assert_eq!(own["digest"], amd64.as_str(), "{report:#}");
    // Nothing changed: nothing is built, every reference stays where it was.
    let (out, again) = run(&p);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(built(&again), 0, "{again:#}");
    assert!(
        statuses(&again).iter().all(|(_, s)| s == "unchanged"),
        "{again:#}"
    );
    for r in lists {
        assert_eq!(raw(r), index, "{r} moved");
    }
    for r in &references[5..] {
        assert_eq!(digest(&raw(r)), amd64, "{r} moved");
    }

    // A reference added to an unchanged image gets the index by a copy, across registries,
    // from the repository that holds the marker; a platform's tag added later gets the arm64
    // image the index lists. Nothing is built.
    p.file(
        "multiarch.toml",
        &config(
            &format!(", \"{b}/late/app:1.0\""),
            "\n[images.app.platform.\"linux/arm64\"]\ntags = [\"arm64v8-{{ vars.version }}\"]\n",
        ),
    );
    let (out, late) = run(&p);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(built(&late), 0, "{late:#}");
    assert_eq!(raw(&format!("{b}/late/app:1.0")), index);
    let arm64 = entry(&index, "arm64");
    assert_eq!(digest(&raw(&format!("{a}/acme/app:arm64v8-1.0"))), arm64);
    assert_eq!(digest(&raw(&format!("{b}/mirror/app:arm64v8-1.0"))), arm64);
}
