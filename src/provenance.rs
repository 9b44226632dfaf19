//! How a platform image was made: an in-toto statement (v1) with the SLSA provenance v1
//! predicate, attached to the image as an OCI 1.1 artifact ([`crate::attach`]).
//!
//! `min` says what a consumer checks against policy (the image by digest, the base images by
//! digest, the git revision, the builder and podman version); `max` adds what reproduces the
//! build (the exact podman argv, the build args without secrets, mab's input digest). The
//! statement holds no time of the run, so the same build of the same inputs is the same
//! document, and a second run attaches nothing new.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::ProvenanceMode;

pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What `buildDefinition` describes: a `podman build` of one platform, driven by mab.
pub const BUILD_TYPE: &str = "urn:mab:podman-build:v1";

/// An image read from outside the run, by the digest podman used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// As the config or Dockerfile names it.
    pub reference: String,
    /// `sha256:...` of its manifest (or its local list's), as the run resolved it.
    pub digest: String,
}

/// What the run knows of one build, for its statement.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The repository the image is pushed to.
    pub repository: &'a str,
    /// The pushed image manifest's digest (`sha256:...`).
    pub digest: &'a str,
    pub platform: &'a str,
    pub bases: Vec<BaseImage>,
    /// HEAD of the config's git work tree, and its origin (credentials removed).
    pub git: Option<(&'a str, Option<&'a str>)>,
    pub mab_version: &'a str,
    pub podman_version: Option<&'a str>,
    /// For `max`.
    pub argv: &'a [String],
    /// For `max`: the build args as `NAME=VALUE`, secrets left out by the caller.
    pub build_args: BTreeMap<String, String>,
    /// For `max`: mab's digest of the build's inputs.
    pub input_digest: Option<&'a str>,
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    kind: &'static str,
    subject: [ResourceDescriptor; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: Predicate<'a>,
}

/// SLSA's `ResourceDescriptor`.
#[derive(Serialize)]
struct ResourceDescriptor {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
    digest: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Predicate<'a> {
    build_definition: BuildDefinition,
    run_details: RunDetails<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildDefinition {
    build_type: &'static str,
    external_parameters: BTreeMap<&'static str, serde_json::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    internal_parameters: BTreeMap<&'static str, serde_json::Value>,
    resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Serialize)]
struct RunDetails<'a> {
    builder: Builder<'a>,
}

#[derive(Serialize)]
struct Builder<'a> {
    id: &'static str,
    version: BTreeMap<&'static str, &'a str>,
}

/// `sha256:abc` as a digest set, `{"sha256": "abc"}`; another form stays whole.
fn digest_set(digest: &str) -> BTreeMap<&'static str, String> {
    match digest.split_once(':') {
        Some(("sha256", hex)) => BTreeMap::from([("sha256", hex.to_string())]),
        Some(("sha512", hex)) => BTreeMap::from([("sha512", hex.to_string())]),
        _ => BTreeMap::from([("mab-local", digest.to_string())]),
    }
}

/// The statement's JSON, or `None` for mode `none`.
pub fn statement(mode: ProvenanceMode, facts: &Facts) -> Option<Vec<u8>> {
    if mode == ProvenanceMode::None {
        return None;
    }
    let mut external = BTreeMap::from([("platform", facts.platform.into())]);
    let mut internal = BTreeMap::new();
    if mode == ProvenanceMode::Max {
        external.insert("argv", serde_json::json!(facts.argv));
        external.insert("buildArgs", serde_json::json!(facts.build_args));
        if let Some(d) = facts.input_digest {
            internal.insert("inputDigest", d.into());
        }
    }
    let mut deps: Vec<ResourceDescriptor> = facts
        .bases
        .iter()
        .map(|b| ResourceDescriptor {
            name: None,
            uri: Some(format!("pkg:docker/{}", b.reference)),
            digest: digest_set(&b.digest),
        })
        .collect();
    if let Some((rev, origin)) = facts.git {
        deps.insert(
            0,
            ResourceDescriptor {
                name: None,
                uri: Some(format!("git+{}", origin.unwrap_or("local"))),
                digest: BTreeMap::from([("gitCommit", rev.to_string())]),
            },
        );
    }
    let mut version = BTreeMap::from([("mab", facts.mab_version)]);
    if let Some(v) = facts.podman_version {
        version.insert("podman", v);
    }
    let statement = Statement {
        kind: STATEMENT_TYPE,
        subject: [ResourceDescriptor {
            name: Some(facts.repository.to_string()),
            uri: None,
            digest: digest_set(facts.digest),
        }],
        predicate_type: PREDICATE_TYPE,
        predicate: Predicate {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE,
                external_parameters: external,
                internal_parameters: internal,
                resolved_dependencies: deps,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: "urn:mab:builder",
                    version,
                },
            },
        },
    };
    Some(serde_json::to_vec_pretty(&statement).expect("a statement serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(argv: &[String]) -> Facts<'_> {
        Facts {
            repository: "127.0.0.1:5000/app",
            digest: "sha256:aaaa",
            platform: "linux/arm64",
            bases: vec![BaseImage {
                reference: "localhost/mab-test/busybox:latest".into(),
                digest: "sha256:bbbb".into(),
            }],
            git: Some(("0123abcd", Some("https://example.com/app.git"))),
            mab_version: "0.1.0",
            podman_version: Some("4.3.1"),
            argv,
            build_args: BTreeMap::from([("VERSION".into(), "1".into())]),
            input_digest: Some("sha256:cccc"),
        }
    }

    #[test]
    fn min_names_subject_bases_revision_and_builder_only() {
        let argv = vec!["podman".to_string(), "build".to_string()];
        let raw = statement(ProvenanceMode::Min, &facts(&argv)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        assert_eq!(v["subject"][0]["name"], "127.0.0.1:5000/app");
        assert_eq!(v["subject"][0]["digest"]["sha256"], "aaaa");
        let b = &v["predicate"]["buildDefinition"];
        assert_eq!(
            b["resolvedDependencies"][0]["digest"]["gitCommit"],
            "0123abcd"
        );
        assert_eq!(
            b["resolvedDependencies"][1]["uri"],
            "pkg:docker/localhost/mab-test/busybox:latest"
        );
        assert_eq!(b["resolvedDependencies"][1]["digest"]["sha256"], "bbbb");
        assert!(b["externalParameters"].get("argv").is_none());
        assert!(b.get("internalParameters").is_none());
        let builder = &v["predicate"]["runDetails"]["builder"];
        assert_eq!(builder["version"]["podman"], "4.3.1");
    }

    #[test]
    fn max_adds_argv_args_and_input_digest() {
        let argv = vec!["podman".to_string(), "build".to_string()];
        let raw = statement(ProvenanceMode::Max, &facts(&argv)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let b = &v["predicate"]["buildDefinition"];
        assert_eq!(b["externalParameters"]["argv"][1], "build");
        assert_eq!(b["externalParameters"]["buildArgs"]["VERSION"], "1");
        assert_eq!(b["internalParameters"]["inputDigest"], "sha256:cccc");
        assert_eq!(statement(ProvenanceMode::None, &facts(&argv)), None);
        assert_eq!(
            raw,
            statement(ProvenanceMode::Max, &facts(&argv)).unwrap(),
            "deterministic"
        );
    }
}
