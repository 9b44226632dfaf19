//! Split runners joined, end to end on the real podman and a registry on 127.0.0.1: one
//! `mab run --platform P --digests-out FILE` per platform (as two CI runners would), then
//! `mab merge FILE...`. Needs what scripts/test-env.sh sets up and `MAB_E2E=1` (see
//! tests/e2e.rs).

use crate::common;

use common::text;

use std::collections::BTreeMap;

use common::Project;
use common::registry::Registry;

const PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];

/// base (from the test base) and app (from base, through the registry name), both on amd64
/// and arm64, each with two tags.
fn project(registry: &Registry) -> Project {
    common::registry::chained_project(
        registry,
        "split",
        "[\"1\", \"latest\"]",
        &[("base", None), ("app", Some("base"))],
    )
}

/// One runner: `mab run --platform P --digests-out FILE`, which must succeed; its report and
/// the file it wrote.
fn runner(p: &Project, platform: &str) -> (serde_json::Value, serde_json::Value) {
    let file = p
        .path()
        .join(format!("{}.json", platform.replace('/', "-")));
    let _ = std::fs::remove_file(&file);
    let (out, report) = common::reported_with(
        p,
        &[
            "--platform",
            platform,
            "--digests-out",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "the {platform} runner failed:\n{}",
        text(&out)
    );
    let digests = serde_json::from_slice(&std::fs::read(&file).expect("the digests file"))
        .expect("JSON digests");
    (report, digests)
}

fn merge(p: &Project, platforms: &[&str]) -> std::process::Output {
    let mut args = vec!["merge", "--progress", "plain"];
    let files: Vec<String> = platforms
        .iter()
        .map(|pl| format!("{}.json", pl.replace('/', "-")))
        .collect();
    args.extend(files.iter().map(String::as_str));
    p.mab(&args)
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .output()
        .expect("mab runs")
}

/// `(image, platform) -> digest` of a digests file.
fn pushed(files: &[&serde_json::Value]) -> BTreeMap<(String, String), String> {
    files
        .iter()
        .flat_map(|f| f["images"].as_array().unwrap())
        .map(|i| {
            (
                (
                    i["image"].as_str().unwrap().to_string(),
                    i["platform"].as_str().unwrap().to_string(),
                ),
                i["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `platform -> digest` of the index a tag holds.
fn entries(index: &serde_json::Value) -> BTreeMap<String, String> {
    crate::common::index_entries(index).into_iter().collect()
}

fn statuses(report: &serde_json::Value) -> Vec<(String, String)> {
    report["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap().to_string(),
                b["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn split_runners_join_into_complete_lists() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let repo = format!("{}/split", registry.host());
    let p = project(&registry);
    let tags = ["base:1", "base:latest", "app:1", "app:latest"];
    let no_tag = |when: &str| {
        for t in tags {
            assert!(
                registry.raw(&format!("{repo}/{t}")).is_none(),
                "{t} exists {when}"
            );
        }
    };

    let (amd_report, amd) = runner(&p, PLATFORMS[0]);
    assert_eq!(
        statuses(&amd_report),
        [
            ("base@linux-amd64".to_string(), "built".to_string()),
            ("app@linux-amd64".to_string(), "built".to_string())
        ]
    );
    let (_, arm) = runner(&p, PLATFORMS[1]);
    no_tag("before the merge");
    let images = pushed(&[&amd, &arm]);
    assert_eq!(images.len(), 4, "{images:?}");

    // A merge without the arm64 runner's file names what is missing and pushes nothing.
    let partial = merge(&p, &PLATFORMS[..1]);
    assert_eq!(partial.status.code(), Some(1), "{}", text(&partial));
    let said = text(&partial);
    assert!(
        said.contains("base linux/arm64") && said.contains("app linux/arm64"),
        "{said}"
    );
    no_tag("after a merge that missed a platform");

    let merged = merge(&p, &PLATFORMS);
    assert!(merged.status.success(), "{}", text(&merged));
    let mut indexes = BTreeMap::new();
    for t in tags {
        let index = registry
            .raw(&format!("{repo}/{t}"))
            .unwrap_or_else(|| panic!("{t} is not pushed"));
        let image = t.split(':').next().unwrap();
        let want: BTreeMap<String, String> = PLATFORMS
            .iter()
            .map(|pl| {
                let d = &images[&(image.to_string(), pl.to_string())];
                (pl.to_string(), d.clone())
            })
            .collect();
        assert_eq!(entries(&index), want, "{t} holds other images");
        indexes.insert(t, index);
    }
    // The arm64 app was built on the arm64 base, through the registry name.
    let arm64 = ("linux", "arm64", None);
    assert_eq!(
        registry
            .read_file(&format!("{repo}/app:1"), arm64, "/base-arch")
            .as_deref()
            .map(str::trim),
        Some("aarch64")
    );

    // Nothing changed: no runner builds anything, each writes the published digests, and the
    // merge keeps every list.
    for (platform, before) in PLATFORMS.iter().zip([&amd, &arm]) {
        let (report, again) = runner(&p, platform);
        let built: Vec<_> = statuses(&report)
            .into_iter()
            .filter(|(_, s)| s != "unchanged")
            .collect();
        assert!(built.is_empty(), "{platform} built {built:?}");
        assert_eq!(pushed(&[&again]), pushed(&[before]));
    }
    let again = merge(&p, &PLATFORMS);
    assert!(again.status.success(), "{}", text(&again));
    for t in tags {
        assert_eq!(
            registry.raw(&format!("{repo}/{t}")).as_ref(),
            Some(&indexes[t]),
            "{t} moved"
        );
    }
}
