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
