//! Attachments an unchanged list's images lack. A list whose inputs are unchanged is not
//! rebuilt, so its images never pass through the attachment step after a push; when the
//! config asks for an SBOM they do not have (`[sbom]` added since they were published), a step
//! per platform image makes it from the image in the registry and attaches it, before the
//! list's signing steps sign it and before any tag moves.
//!
//! Provenance is not added that way: a statement made by a later run would name this run's
//! podman, argv and base images, which need not be those of the build that made the image.
//! The run reports it as not added, and why ([`NOT_PROVENANCE`]).

use serde::Serialize;

use crate::config::{Content, ProvenanceMode};
use crate::plan::{Manifest, Step};
use crate::platform::Platform;

/// Why an unchanged image gets no provenance statement.
pub const NOT_PROVENANCE: &str = "the image was built by an earlier run: a provenance statement made now would describe this run (its podman, argv and base images), not the build that made it; rebuild it (--rebuild) to have one";

/// Makes sure one platform image of an unchanged list has what the config attaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachStep {
    pub platform: Platform,
    /// The image's digest, as the registry check read it from the list's index.
    pub digest: String,
}

/// Adds an [`AttachStep`] to unchanged list `man` for each of its built platforms' `images`
/// (`(platform, digest)` of the index the registry holds) when `content` attaches anything;
/// before its signing steps and tag moves, after what records the tags.
pub fn add(man: &mut Manifest, images: &[(Platform, String)], content: &Content) {
    if content.sbom.is_none() && content.provenance == ProvenanceMode::None {
        return;
    }
    // External platforms are not built here: nothing is attached to them.
    let steps: Vec<Step> = images
        .iter()
        .filter(|(p, _)| !man.external.iter().any(|e| &e.platform == p))
        .map(|(platform, digest)| {
            Step::Attach(AttachStep {
                platform: platform.clone(),
                digest: digest.clone(),
            })
        })
        .collect();
    let at = man
        .publish
        .iter()
        .position(|s| !matches!(s, Step::Record { .. } | Step::Held { .. }))
        .unwrap_or(man.publish.len());
    man.publish.splice(at..at, steps);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Sbom, SbomFormat, SbomGenerator};

    /// A two-platform list with two tags, as an unchanged list's publication has it: the
    /// tags' records, then the copies (here of the one tag the plan would not push to).
    fn unchanged_list() -> Manifest {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/Dockerfile"), "FROM busybox\n").unwrap();
        let path = dir.path().join("multiarch.toml");
        std::fs::write(
            &path,
            "[defaults]\nregistry = \"r.io/a\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\", \"latest\"]\n\n[images.app]\ncontext = \"a\"\n",
        )
        .unwrap();
        let plan = crate::plan_file(&path, &[], &Default::default()).unwrap();
        let mut m = plan.manifests[0].clone();
        m.publish
            .retain(|s| matches!(s, Step::Record { .. } | Step::Copy { .. }));
        m
    }

    fn kinds(m: &Manifest) -> Vec<String> {
        m.publish
            .iter()
            .map(|s| match s {
                Step::Record { tag, .. } => format!("record {}", tag.tag),
                Step::Copy { tag, .. } => format!("copy {}", tag.tag),
                Step::Attach(a) => format!("attach {} {}", a.platform, a.digest),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn images() -> Vec<(Platform, String)> {
        vec![
            ("linux/amd64".parse().unwrap(), "sha256:a".into()),
            ("linux/arm64".parse().unwrap(), "sha256:b".into()),
        ]
    }

    #[test]
    fn each_image_is_seen_to_after_the_records_and_before_any_tag_moves() {
        let mut m = unchanged_list();
        let content = Content {
            sbom: Some(Sbom {
                generator: SbomGenerator::Builtin,
                format: SbomFormat::SpdxJson,
            }),
            ..Content::default()
        };
        add(&mut m, &images(), &content);
        assert_eq!(
            kinds(&m),
            [
                "record 1",
                "record latest",
                "attach linux/amd64 sha256:a",
                "attach linux/arm64 sha256:b",
                "copy latest"
            ]
        );
    }

    #[test]
    fn nothing_is_added_when_the_config_attaches_nothing() {
        let mut m = unchanged_list();
        let before = kinds(&m);
        add(&mut m, &images(), &Content::default());
        assert_eq!(kinds(&m), before);
    }
}
