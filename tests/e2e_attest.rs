//! Signed attachments end to end (issue 21): a two-platform image published with `[signing]`,
//! a builtin SBOM and provenance; each SBOM and provenance artifact signed in cosign's format,
//! checked by an implementation that is not mab's (Python's `cryptography`,
//! tests/fixtures/cosign_check.py); the registry (docker-registry 2.8.2) has no referrers API,
//! so the fallback tag is what the run writes and `mab verify` reads; `mab verify` green, then
//! red once an attachment's signature, its artifact or the fallback index is deleted; a second
//! run re-signs nothing.

use std::path::Path;

use crate::common::registry::{Registry, raw_bytes};
use crate::common::{BASE, Project, text};
use crate::e2e_sign::{
    COSIGN_MADE_PUB, delete, digest, fetch, keygen, python_accepts, run, verify,
};

fn project(registry: &Registry, name: &str) -> Project {
    let host = registry.host();
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[signing]\nkey = \"cosign.key\"\n\n[sbom]\ngenerator = \"builtin\"\nformat = \"spdx-json\"\n\n[provenance]\nmode = \"min\"\n\n[images.{name}]\ncontext = \"app\"\nrepository = \"{host}/acme/{name}\"\ntags = [\"1.0\"]\n"
        ),
    );
    p.file("app/Dockerfile", &format!("FROM {BASE}\nCOPY file /file\n"));
    p.file("app/file", name);
    p
}

/// `(platform, attachment type, signature tag, signed digest, status)` of each attachment
/// signature the report lists.
fn attachment_signatures(report: &serde_json::Value) -> Vec<[String; 5]> {
    report["manifests"][0]["signatures"]
        .as_array()
        .unwrap_or_else(|| panic!("no signatures: {report:#}"))
        .iter()
        .filter(|s| s.get("attachment").is_some())
        .map(|s| {
            ["platform", "attachment", "reference", "digest", "status"]
                .map(|k| s[k].as_str().unwrap().to_string())
        })
        .collect()
}

/// The digest of the artifact of `kind` the report says was attached to `platform`'s image.
fn attached(report: &serde_json::Value, platform: &str, kind: &str) -> (String, String) {
    let images = report["manifests"][0]["attached"].as_array().unwrap();
    let image = images.iter().find(|i| i["platform"] == platform).unwrap();
    let r = image["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["artifact_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind}: {image:#}"));
    (
        image["digest"].as_str().unwrap().to_string(),
        r["digest"].as_str().unwrap().to_string(),
    )
}

#[test]
#[cfg_attr(
    not(all(e2e, py_cryptography)),
    ignore = "needs MAB_E2E=1, scripts/test-env.sh and Python's cryptography: run scripts/test.sh"
)]
fn attachments_are_signed_once_and_verify_sees_each_one_go() {
    let _serial = crate::common::e2e_serial();
    let registry = Registry::start();
    let name = "attest-app";
    let p = project(&registry, name);
    let repository = format!("{}/acme/{name}", registry.host());
    keygen(&p, "s3cret");

    let (out, first) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    let sigs = attachment_signatures(&first);
    const SPDX: &str = "application/spdx+json";
    const INTOTO: &str = "application/vnd.in-toto+json";
    let kinds: Vec<(&str, &str)> = sigs
        .iter()
        .map(|s| (s[0].as_str(), s[1].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("linux/amd64", SPDX),
            ("linux/amd64", INTOTO),
            ("linux/arm64", SPDX),
            ("linux/arm64", INTOTO)
        ]
    );
    let public = p.path().join("cosign.pub");
    for [platform, kind, reference, signed, status] in &sigs {
        assert_eq!(status, "added");
        // What is signed is the artifact the run attached to that platform's image.
        let (image, artifact) = attached(&first, platform, kind);
        assert_eq!(signed, &artifact, "{reference}");
        assert_eq!(
            reference,
            &format!("{repository}:{}.sig", artifact.replace(':', "-"))
        );
        // docker-registry 2.8.2 has no referrers API: the probe says 404, and the artifact is
        // listed in the fallback index at `sha256-<hex of the image>`.
        let access = mab::attach::Access {
            insecure: true,
            registries_conf: None,
            limits: Default::default(),
        };
        let subject = mab::attach::Subject::named(repository.parse().unwrap(), &image);
        match mab::attach::api::probe(&access, &subject) {
            mab::attach::api::Answer::Absent(why) => assert!(why.contains("404"), "{why}"),
            other => panic!("docker-registry 2.8.2 answered the referrers API: {other:?}"),
        }
        let fallback = raw_bytes(&subject.fallback_reference());
        assert!(
            String::from_utf8_lossy(&fallback).contains(&artifact),
            "{platform} {kind}"
        );
        // Python checks the signature: accepted with the key, refused with another.
        let dir = tempfile::tempdir().unwrap();
        fetch(reference, dir.path());
        assert!(
            python_accepts(&public, dir.path(), &repository, signed),
            "{reference}"
        );
        assert!(
            !python_accepts(Path::new(COSIGN_MADE_PUB), dir.path(), &repository, signed),
            "{reference} passed with another key"
        );
    }

    let out = verify(&p, "cosign.pub");
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for what in [
        "ok    the SBOM (application/spdx+json) of its linux/arm64 image",
        "ok    the provenance (application/vnd.in-toto+json) of its linux/amd64 image",
        "ok    signature of the SBOM (application/spdx+json) of its linux/amd64 image",
        "SLSA provenance v1 of sha256:",
        "SPDX-2.3, ",
    ] {
        assert!(said.contains(what), "{what}: {said}");
    }

    // A second run re-signs nothing: every attachment signature is kept, byte for byte.
    let held: Vec<Vec<u8>> = sigs.iter().map(|s| raw_bytes(&s[2])).collect();
    let (out, again) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    let kept = attachment_signatures(&again);
    assert_eq!(kept.len(), 4, "{again:#}");
    assert!(kept.iter().all(|s| s[4] == "kept"), "{kept:?}");
    for (s, before) in sigs.iter().zip(&held) {
        assert_eq!(&raw_bytes(&s[2]), before, "{} was re-signed", s[2]);
    }

    let path = format!("acme/{name}");
    // The arm64 SBOM's signature deleted: verify names it.
    delete(&registry, &path, &held[2]);
    let out = verify(&p, "cosign.pub");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "MISS  signature of the SBOM (application/spdx+json) of its linux/arm64 image {}",
            sigs[2][3]
        )),
        "{said}"
    );

    // The amd64 provenance artifact deleted (its fallback entry stays): its document is gone.
    let (amd64, provenance) = attached(&first, "linux/amd64", INTOTO);
    let manifest = raw_bytes(&format!("{repository}@{provenance}"));
    assert_eq!(digest(&manifest), provenance);
    delete(&registry, &path, &manifest);
    let out = verify(&p, "cosign.pub");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "MISS  the provenance (application/vnd.in-toto+json) of its linux/amd64 image {amd64}"
        )),
        "{said}"
    );

    // The arm64 image's fallback index deleted: nothing is attached to it any more.
    let (arm64, _) = attached(&first, "linux/arm64", SPDX);
    let index = raw_bytes(&format!("{repository}:{}", arm64.replace(':', "-")));
    delete(&registry, &path, &index);
    let out = verify(&p, "cosign.pub");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "MISS  the SBOM (application/spdx+json) of its linux/arm64 image {arm64}: none is attached"
        )),
        "{said}"
    );
}

/// The referrers of `platform`'s image the report lists for list 0: (type, new).
fn referrers_of(report: &serde_json::Value, platform: &str) -> Vec<(String, bool)> {
    let images = report["manifests"][0]["attached"]
        .as_array()
        .unwrap_or_else(|| panic!("nothing attached: {report:#}"));
    let image = images
        .iter()
        .find(|i| i["platform"] == platform)
        .unwrap_or_else(|| panic!("no {platform}: {report:#}"));
    image["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["artifact_type"].as_str().unwrap().to_string(),
                r["new"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// `[sbom]` and `[provenance]` added to the config of a published list whose inputs did not
/// change: the list is not rebuilt, each platform image gets its SBOM (mab's own, from the
/// image in the registry), signed; provenance is reported as not added, with why; a second
/// run adds and signs nothing.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn an_unchanged_list_gets_the_sboms_it_lacks_signed_and_once() {
    let _serial = crate::common::e2e_serial();
    let registry = Registry::start();
    let name = "attest-late";
    let p = project(&registry, name);
    let repository = format!("{}/acme/{name}", registry.host());
    let with_tables = std::fs::read_to_string(p.path().join("multiarch.toml")).unwrap();
    let without = with_tables
        .replace(
            "[sbom]\ngenerator = \"builtin\"\nformat = \"spdx-json\"\n\n",
            "",
        )
        .replace("[provenance]\nmode = \"min\"\n\n", "");
    assert_ne!(without, with_tables);
    p.file("multiarch.toml", &without);
    keygen(&p, "s3cret");

    let (out, first) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    assert!(attachment_signatures(&first).is_empty(), "{first:#}");

    p.file("multiarch.toml", &with_tables);
    p.git_commit("sbom and provenance");
    let (out, second) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(second["manifests"][0]["status"], "unchanged", "{second:#}");
    for b in second["builds"].as_array().unwrap() {
        assert_eq!(b["status"], "unchanged", "{b:#}");
    }
    const SPDX: &str = "application/spdx+json";
    const INTOTO: &str = "application/vnd.in-toto+json";
    let index = raw_bytes(&format!("{repository}:1.0"));
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    for entry in index["manifests"].as_array().unwrap() {
        let platform = format!(
            "linux/{}",
            entry["platform"]["architecture"].as_str().unwrap()
        );
        let image = entry["digest"].as_str().unwrap();
        assert_eq!(
            referrers_of(&second, &platform),
            [(SPDX.to_string(), true)],
            "{second:#}"
        );
        // Attached to that image's digest: its fallback index lists an SPDX document, which
        // describes the image's files.
        let fallback = raw_bytes(&format!("{repository}:{}", image.replace(':', "-")));
        assert!(
            String::from_utf8_lossy(&fallback).contains(SPDX),
            "{platform}"
        );
        let (attached_to, sbom) = attached(&second, &platform, SPDX);
        assert_eq!(attached_to, image);
        let dir = tempfile::tempdir().unwrap();
        fetch(&format!("{repository}@{sbom}"), dir.path());
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap())
                .unwrap();
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let doc: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(layer.trim_start_matches("sha256:"))).unwrap(),
        )
        .unwrap();
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        // The layer is named (`org.opencontainers.image.title`): `oras pull` writes it.
        #[cfg(oras)]
        {
            let pulled = tempfile::tempdir().unwrap();
            let out = std::process::Command::new("oras")
                .args(["pull", "--plain-http", "-o"])
                .arg(pulled.path())
                .arg(format!("{repository}@{sbom}"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out));
            let written = std::fs::read(pulled.path().join("spdx.json")).unwrap();
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&written).unwrap(),
                doc
            );
        }
        let files: Vec<&str> = doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["fileName"].as_str())
            .collect();
        assert!(files.contains(&"./file"), "{platform}: {files:?}");
        assert!(files.contains(&"./bin/busybox"), "{platform}: {files:?}");
        // Provenance: not added, and the report says why.
        let images = second["manifests"][0]["attached"].as_array().unwrap();
        let reported = images.iter().find(|i| i["platform"] == platform).unwrap();
        assert_eq!(
            reported["not_added"][0]["artifact_type"], INTOTO,
            "{reported:#}"
        );
        assert!(
            reported["not_added"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("earlier run"),
            "{reported:#}"
        );
    }
    // Each new SBOM is signed: its signature added now.
    let sigs = attachment_signatures(&second);
    let spdx: Vec<&[String; 5]> = sigs.iter().filter(|s| s[1] == SPDX).collect();
    assert_eq!(spdx.len(), 2, "{sigs:?}");
    assert!(spdx.iter().all(|s| s[4] == "added"), "{sigs:?}");

    // Once: a third run makes, attaches and signs nothing.
    let (out, third) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    for platform in ["linux/amd64", "linux/arm64"] {
        assert_eq!(
            referrers_of(&third, platform),
            [(SPDX.to_string(), false)],
            "{third:#}"
        );
    }
    let sigs = attachment_signatures(&third);
    assert!(
        sigs.iter().all(|s| s[4] == "kept") && sigs.len() == 2,
        "{sigs:?}"
    );
}
