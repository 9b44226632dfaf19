//! A manifest list in the plan: its assembly (one `add` per build), the platforms taken from a
//! registry image, and the registry steps of its publication.

use serde::Serialize;

use crate::platform::Platform;
use crate::reference::{ImageRef, Repository};

use super::command::Command;

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub image: String,
    pub repository: Repository,
    /// Full references the manifest list is pushed to.
    pub tags: Vec<ImageRef>,
    pub platforms: Vec<Platform>,
    pub push: bool,
    /// The builds whose images the list holds.
    pub depends_on: Vec<String>,
    /// Its registry is reached over plain HTTP or with an unverified certificate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// The registries of its tags in other repositories that are reached so.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub insecure_elsewhere: Vec<String>,
    /// Where one platform's own image is pushed, beside the list (a platform's `tags`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platform_tags: Vec<PlatformTag>,
    /// The local manifest list that is assembled and pushed.
    pub list: String,
    /// Removes a list of the same name left by an earlier run; fails when there is none. None
    /// for a list that is not assembled (shown as `[]`).
    #[serde(serialize_with = "command_or_empty")]
    pub remove_stale: Option<Command>,
    /// Assembles `list` afresh: create, then add each image (shown as one list of commands).
    pub assemble: Assembly,
    /// Platforms taken `from` a registry image, added right after `create`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external: Vec<ExternalEntry>,
    /// How the list reaches its tags, in order: what each tag holds is recorded, the index is
    /// pushed once, then every tag is pointed at that exact index by a copy in the registry,
    /// so that all tags hold byte-identical indexes.
    pub publish: Vec<Step>,
}

/// A platform of a list whose entry is a registry image (`from`), not a build of this run.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalEntry {
    pub platform: Platform,
    /// As written: a tag is resolved to a digest once per run, and `add` then names the digest.
    pub from: crate::external::ExternalRef,
    /// Where `from` is written, for the errors of a run.
    #[serde(skip)]
    pub at: String,
    /// Its registry is reached over plain HTTP or with an unverified certificate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// The image's digest: as written, or what the run resolved the tag to (`mab plan` reads
    /// no registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Adds it to the list by digest (by tag until the tag is resolved).
    pub add: Command,
}

/// How a list is assembled: `create`, then one `add` per built platform, each with its build
/// (in `depends_on` order; external platforms join right after `create`, see `external`).
#[derive(Debug, Clone, Default)]
pub struct Assembly {
    /// None for a list that is not assembled (an unchanged list that only gets tags).
    pub create: Option<Command>,
    pub adds: Vec<Add>,
}

/// The `manifest add` of one build's image to its list.
#[derive(Debug, Clone)]
pub struct Add {
    /// The build whose image it adds.
    pub build: String,
    pub command: Command,
    /// The input digest its entry is annotated with (`--annotation`), once a run knows it.
    pub input_digest: Option<String>,
}

impl Serialize for Assembly {
    /// As the plan has always shown it: one list of commands, `create` first.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.create.iter().count() + self.adds.len()))?;
        for c in self
            .create
            .iter()
            .chain(self.adds.iter().map(|a| &a.command))
        {
            seq.serialize_element(c)?;
        }
        seq.end()
    }
}

/// A command that may be missing, shown as an empty argument vector then.
fn command_or_empty<S: serde::Serializer>(c: &Option<Command>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Some(c) => c.serialize(s),
        None => s.collect_seq(std::iter::empty::<&str>()),
    }
}

/// A reference that names one platform's image of a list (its image manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformTag {
    pub platform: Platform,
    pub tag: ImageRef,
}

impl Manifest {
    /// Every reference it is pushed to: its tags (the index), then its platforms' tags (each
    /// the platform's image).
    pub fn references(&self) -> impl Iterator<Item = (&ImageRef, Option<&Platform>)> {
        let own = self
            .platform_tags
            .iter()
            .map(|p| (&p.tag, Some(&p.platform)));
        self.tags.iter().map(|t| (t, None)).chain(own)
    }

    /// How its references' registries are reached.
    pub fn reach(&self) -> Reach<'_> {
        Reach {
            repository: &self.repository,
            insecure: self.insecure,
            elsewhere: &self.insecure_elsewhere,
        }
    }
}

/// Which registries of a list's references (its repository's, and those of tags in other
/// repositories) are reached over plain HTTP or with an unverified certificate.
#[derive(Debug, Clone, Copy)]
pub struct Reach<'a> {
    pub repository: &'a Repository,
    pub insecure: bool,
    pub elsewhere: &'a [String],
}

impl Reach<'_> {
    pub fn insecure(&self, repository: &Repository) -> bool {
        if repository.registry() == self.repository.registry() {
            self.insecure
        } else {
            self.elsewhere.iter().any(|r| r == repository.registry())
        }
    }
}

/// One registry step of a list's publication.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Reads what `tag` holds before anything moves, for the report and for `--atomic` to put
    /// back.
    Record { tag: ImageRef, argv: Command },
    /// What `tag` held when the registry check read it (`None`: it did not exist): no command.
    Held {
        tag: ImageRef,
        digest: Option<String>,
    },
    /// Pushes the assembled list, once, to `to`: the marker tag when the run knows its inputs,
    /// else the first tag. `verify` reads the index back: its digest is what the tags get.
    Push {
        to: ImageRef,
        argv: Command,
        /// Where `podman manifest push --digestfile` writes the pushed index's digest (a remote
        /// podman writes nothing: then the digest read back is the pushed one).
        digestfile: String,
        verify: Command,
        /// A marker tag (`mab-inputs-HEX`), not a release tag.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        marker: bool,
        /// Puts back what `to` held, if it is a release tag (`--atomic`, after a failure).
        #[serde(skip_serializing_if = "Option::is_none")]
        restore: Option<Command>,
    },
    /// Points `tag` at the pushed index (`REPO@<digest of the pushed index>`), or at its entry
    /// for `platform` (`REPO@<digest of its linux/amd64 image>`), by a copy in the registry,
    /// byte for byte; `verify` reads it back.
    Copy {
        tag: ImageRef,
        /// A platform's tag: it gets that platform's image manifest, not the index.
        #[serde(skip_serializing_if = "Option::is_none")]
        platform: Option<Platform>,
        argv: Command,
        /// The index (or the platform's image), when the registry held it before the run (an
        /// unchanged list's): else the one pushed.
        #[serde(skip_serializing_if = "Option::is_none")]
        index: Option<String>,
        verify: Command,
        /// Where skopeo writes the digest it copied (and its restore, the one it put back).
        digestfile: String,
        /// Puts back what `tag` held (`--atomic`, after a failure).
        restore: Command,
    },
    /// Signs one image of the list (the index, or a platform's image) in cosign's format,
    /// after the push and before any release tag moves (`[signing]` only).
    Sign(crate::sign::SignStep),
    /// Attaches what one platform image of an unchanged list lacks (its SBOM), before its
    /// signing steps; only in a run's plan, after the registry check.
    Attach(crate::attach::missing::AttachStep),
}

impl Step {
    /// The release tag the step moves, records or read: none for a push to the marker.
    pub fn tag(&self) -> Option<&ImageRef> {
        match self {
            Self::Record { tag, .. } | Self::Held { tag, .. } | Self::Copy { tag, .. } => Some(tag),
            Self::Push { to, marker, .. } => (!marker).then_some(to),
            Self::Sign(_) | Self::Attach(_) => None,
        }
    }

    /// The file the step's command writes a digest to, if it runs one that does.
    pub fn digestfile(&self) -> Option<&str> {
        match self {
            Self::Push { digestfile, .. } | Self::Copy { digestfile, .. } => Some(digestfile),
            Self::Record { .. } | Self::Held { .. } | Self::Sign(_) | Self::Attach(_) => None,
        }
    }

    /// The step's command, if it runs one.
    pub fn argv(&self) -> Option<&Command> {
        match self {
            Self::Record { argv, .. } | Self::Push { argv, .. } | Self::Copy { argv, .. } => {
                Some(argv)
            }
            // A signing step runs three commands (read, fetch, push), shown by its own
            // fields; it is not the one command of the step.
            Self::Held { .. } | Self::Sign(_) | Self::Attach(_) => None,
        }
    }

    /// The command that puts back what the step's tag held, with a [`Hole::Held`] in it.
    pub fn restore(&self) -> Option<&Command> {
        match self {
            Self::Push {
                restore: Some(r), ..
            }
            | Self::Copy { restore: r, .. } => Some(r),
            _ => None,
        }
    }
}
