//! Attachments through the OCI 1.1 referrers API (issue 21), against a real registry that has it:
//! tests/referrers-registry (crates.io's ferro-oci-server, built by scripts/test-env.sh), since
//! docker-registry 2.8.2 has none. A signed two-platform list with a builtin SBOM and provenance:
//! the registry's `GET /v2/<repo>/referrers/<digest>` lists each image's two artifacts, no
//! fallback tag `sha256-<hex>` is written, `mab verify` is green, oras (when installed) discovers
//! them through the API alone; a second run attaches and signs nothing new; once an artifact is
//! deleted the API stops listing it and `mab verify` is red. Without the registry
//! binary (build.rs looks) the test shows as ignored.

use crate::common::registry::{Registry, raw_bytes};
use crate::common::text;
use crate::e2e_consumer::{INTOTO, Leftovers, attachments, project, published};
use crate::e2e_sign::{delete, keygen, run, verify};

/// What the registry's referrers API answers for `digest` in `repository_path`: the
/// `(artifactType, digest)` of each manifest listed, sorted. Asked over HTTP here, not through
/// mab's probe, so that the registry's own answer is what is checked.
fn referrers(registry: &Registry, repository_path: &str, digest: &str) -> Vec<(String, String)> {
    let url = format!(
        "http://{}/v2/{repository_path}/referrers/{digest}",
        registry.host()
    );
    let response = ureq::get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(
        response.content_type(),
        "application/vnd.oci.image.index.v1+json"
    );
    let index: serde_json::Value =
        serde_json::from_str(&response.into_string().unwrap()).expect("a JSON index");
    let mut listed: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index:#}"))
        .iter()
        .map(|m| {
            (
                m["artifactType"].as_str().unwrap_or_default().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    listed.sort();
    listed
}

/// The repository's tags, as the registry lists them.
fn tags(registry: &Registry, repository_path: &str) -> Vec<String> {
    let url = format!("http://{}/v2/{repository_path}/tags/list", registry.host());
    let body = ureq::get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_string()
        .unwrap();
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    list["tags"]
        .as_array()
        .map(|t| t.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
#[cfg_attr(
    not(all(e2e, referrers_registry)),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh (which builds tests/referrers-registry): run scripts/test.sh"
)]
fn attachments_go_through_the_referrers_api_when_the_registry_has_it() {
    let _serial = crate::common::e2e_serial();
    let registry = Registry::start_with_referrers();
    let name = "referrers-api";
    let _leftovers = Leftovers(name);
    let p = project(&registry, name, true);
    let path = format!("acme/{name}");
    let repository = format!("{}/{path}", registry.host());
    keygen(&p, "s3cret");
    let (out, report) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    let (_, images) = published(&format!("{repository}:1.0"));
    assert_eq!(images.len(), 2, "{images:?}");
    let attached = attachments(&report);

    for (platform, image) in &images {
        let mut expected: Vec<(String, String)> = attached
            .iter()
            .filter(|a| &a[0] == platform && &a[2] == image)
            .map(|a| (a[1].clone(), a[3].clone()))
            .collect();
        expected.sort();
        assert_eq!(expected.len(), 2, "{platform}: {report:#}");
        // The registry's API lists the SBOM and the provenance: their manifests carry `subject`.
        assert_eq!(referrers(&registry, &path, image), expected, "{platform}");
        #[cfg(oras)]
        {
            let listed: serde_json::Value =
                serde_json::from_slice(&crate::e2e_consumer::oras_ok(&[
                    "discover",
                    "--distribution-spec",
                    "v1.1-referrers-api",
                    "--format",
                    "json",
                    &format!("{repository}@{image}"),
                ]))
                .unwrap();
            let mut found: Vec<(String, String)> = listed["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["artifactType"].as_str().unwrap().to_string(),
                        m["digest"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            found.sort();
            assert_eq!(found, expected, "oras discover {platform}");
        }
    }
    // No fallback index: with the API there, the `sha256-<hex>` tag is not written (the
    // signatures' `sha256-<hex>.sig` tags are cosign's and are).
    let fallback: Vec<String> = tags(&registry, &path)
        .into_iter()
        .filter(|t| t.starts_with("sha256-") && !t.ends_with(".sig"))
        .collect();
    assert!(fallback.is_empty(), "fallback tags written: {fallback:?}");

    let out = verify(&p, "cosign.pub");
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for what in [
        "ok    the SBOM (application/spdx+json) of its linux/arm64 image",
        "ok    the provenance (application/vnd.in-toto+json) of its linux/amd64 image",
        "ok    signature of the SBOM (application/spdx+json) of its linux/amd64 image",
    ] {
        assert!(said.contains(what), "{what}: {said}");
    }

    // A second run attaches and signs nothing new: the API lists the same two per image.
    let (out, again) = run(&p, "s3cret");
    assert!(out.status.success(), "{}", text(&out));
    let images_again = again["manifests"][0]["attached"]
        .as_array()
        .unwrap_or_else(|| panic!("nothing attached: {again:#}"));
    for image in images_again {
        for r in image["referrers"].as_array().unwrap() {
            assert_eq!(r["new"], false, "{r:#}");
        }
    }
    for s in again["manifests"][0]["signatures"].as_array().unwrap() {
        assert_eq!(s["status"], "kept", "{s:#}");
    }
    for (platform, image) in &images {
        assert_eq!(referrers(&registry, &path, image).len(), 2, "{platform}");
    }

    // The amd64 provenance artifact deleted: the API no longer lists it, and verify says so.
    let [_, _, amd64, provenance] = attached
        .iter()
        .find(|a| a[0] == "linux/amd64" && a[1] == INTOTO)
        .unwrap_or_else(|| panic!("no amd64 provenance: {report:#}"))
        .clone();
    delete(
        &registry,
        &path,
        &raw_bytes(&format!("{repository}@{provenance}")),
    );
    assert_eq!(referrers(&registry, &path, &amd64).len(), 1);
    let out = verify(&p, "cosign.pub");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "MISS  the provenance ({INTOTO}) of its linux/amd64 image {amd64}"
        )),
        "{said}"
    );
}
