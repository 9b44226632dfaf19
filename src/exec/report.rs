//! What a run reports: each build's and list's status, duration, ids, digests and log.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{Build, Manifest};
use crate::platform::Platform;

use super::events::{Place, Span};
use super::schedule::Job;

/// How a build or a manifest list ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Built,
    /// The registry holds an image or list with the same inputs: nothing was built.
    Unchanged,
    /// Assembled locally and not pushed (`--no-push` or `push = false`).
    Assembled,
    Pushed,
    /// Pushed, then its tags were put back to what they held, as the run failed (`--atomic`).
    Restored,
    Failed {
        reason: String,
    },
    Skipped {
        reason: String,
    },
    /// The run stopped (after a failure) before this started.
    NotStarted,
}

impl Status {
    pub fn word(&self) -> &'static str {
        match self {
            Self::Built => "built",
            Self::Unchanged => "unchanged",
            Self::Assembled => "local",
            Self::Pushed => "pushed",
            Self::Restored => "restored",
            Self::Failed { .. } => "FAILED",
            Self::Skipped { .. } => "skipped",
            Self::NotStarted => "not run",
        }
    }

    pub(super) fn finished(&self) -> bool {
        !matches!(self, Self::NotStarted)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildReport {
    pub id: String,
    pub image: String,
    pub platform: Platform,
    #[serde(flatten)]
    pub status: Status,
    pub duration_ms: u64,
    /// The id podman gave the built image.
    pub image_id: Option<String>,
    /// The input digest ([`crate::inputs`]), when the run computed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
    /// An unchanged build's image in the registry, `REPO@DIGEST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<crate::reference::Pinned>,
    pub log: PathBuf,
    /// The end of the log of a failed build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    /// When and where its job ran; empty when it did not run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobTiming>,
    /// The content check's counts and the SBOM made (issue 21).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<super::content::BuildContent>,
}

/// Which kind of job of a build or list ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Build,
    Assemble,
    Push,
}

impl From<Job> for JobKind {
    fn from(job: Job) -> Self {
        match job {
            Job::Build(_) => Self::Build,
            Job::Assemble(_) => Self::Assemble,
            Job::Push(_) => Self::Push,
        }
    }
}

/// When one job ran, in milliseconds from the start of the run, and where: its node and slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTiming {
    pub job: JobKind,
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(flatten)]
    pub place: Place,
}

impl JobTiming {
    pub(super) fn new(job: Job, span: &Span) -> Self {
        Self {
            job: job.into(),
            start_ms: span.start.as_millis() as u64,
            end_ms: span.end.as_millis() as u64,
            place: span.place.clone(),
        }
    }
}

/// One tag of a list: what it held before the run, what it was to get, and how that went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagReport {
    pub reference: String,
    #[serde(flatten)]
    pub status: TagStatus,
    /// The list's index (for a platform's tag, that platform's image in it), as the registry
    /// serves it: what the tag holds once moved. Left out when the publication stopped before
    /// it was known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// What the tag held before the run; left out when the run could not read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Held>,
}

/// What a tag held before the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Held {
    /// It did not exist (`null` in the report).
    Nothing,
    /// This digest.
    Digest(String),
}

impl Held {
    pub fn digest(&self) -> Option<&str> {
        match self {
            Self::Nothing => None,
            Self::Digest(d) => Some(d),
        }
    }
}

/// How a tag of a list ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TagStatus {
    /// It points at the list's index now, and held something else before.
    Moved,
    /// It already held the list's index.
    Unchanged,
    /// It was not moved (as far as the registry said): it holds what it held.
    Failed { reason: String },
    /// `--atomic`: it had moved, and was put back to what it held.
    Restored,
    /// `--atomic`: it had moved and could not be put back: it points at the list's index.
    NotRestored { reason: String },
}

impl TagStatus {
    pub fn word(&self) -> &'static str {
        match self {
            Self::Moved => "moved",
            Self::Unchanged => "unchanged",
            Self::Failed { .. } => "FAILED",
            Self::Restored => "restored",
            Self::NotRestored { .. } => "NOT RESTORED",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestReport {
    pub image: String,
    pub list: String,
    #[serde(flatten)]
    pub status: Status,
    pub duration_ms: u64,
    /// Its tags, each with what it held, what it was to get and how that went; empty when the
    /// list was not pushed (or no publication step ran).
    pub tags: Vec<TagReport>,
    /// The marker tag the list was also pushed to, which names its inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<TagReport>,
    /// The image of each platform in the index its tags hold, as the registry serves it (empty
    /// when it was not pushed).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty", default)]
    pub images: std::collections::BTreeMap<Platform, String>,
    /// Each signature its publication made sure of (`[signing]`): its tag, and whether it
    /// was added or kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<crate::sign::ensure::SignatureReport>,
    /// Its platforms taken `from` a registry image, each with the digest its tag resolved to.
    #[serde(default, skip_serializing_if = "Vec::is_empty", skip_deserializing)]
    pub external: Vec<crate::plan::ExternalEntry>,
    pub log: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    /// When and where each of its jobs (assembly, push) ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobTiming>,
    /// The SBOMs and provenance attached to its platform images (issue 21).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<super::attachments::AttachedImage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub run_id: String,
    pub run_dir: PathBuf,
    /// The signal that interrupted the run (2: SIGINT, 15: SIGTERM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<i32>,
    pub success: bool,
    pub builds: Vec<BuildReport>,
    pub manifests: Vec<ManifestReport>,
}

/// The log of build `b`'s job in `run_dir`.
pub(super) fn build_log(run_dir: &Path, b: &Build) -> PathBuf {
    run_dir.join(format!("{}.log", b.id))
}

/// The log of list `m`'s jobs in `run_dir`.
pub(super) fn list_log(run_dir: &Path, m: &Manifest) -> PathBuf {
    run_dir.join(format!("{}@manifest.log", m.image))
}

impl BuildReport {
    /// Build `b`, not started, its log in `run_dir`.
    pub(super) fn new(b: &Build, run_dir: &Path) -> Self {
        Self {
            id: b.id.clone(),
            image: b.image.clone(),
            platform: b.platform.clone(),
            status: Status::NotStarted,
            duration_ms: 0,
            image_id: None,
            inputs: None,
            published: None,
            log: build_log(run_dir, b),
            log_tail: None,
            jobs: Vec::new(),
            content: None,
        }
    }
}

impl ManifestReport {
    /// List `m`, not started, its log in `run_dir`.
    pub(super) fn new(m: &Manifest, run_dir: &Path) -> Self {
        Self {
            image: m.image.clone(),
            list: m.list.clone(),
            status: Status::NotStarted,
            duration_ms: 0,
            tags: Vec::new(),
            marker: None,
            images: std::collections::BTreeMap::new(),
            signatures: Vec::new(),
            external: m.external.clone(),
            log: list_log(run_dir, m),
            log_tail: None,
            jobs: Vec::new(),
            attached: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_that_did_not_exist_held_null_and_one_not_read_has_no_before() {
        let tag = |before| TagReport {
            reference: "r.io/a/app:1".into(),
            status: TagStatus::Failed { reason: "x".into() },
            digest: None,
            before,
        };
        let json = |t: TagReport| serde_json::to_value(t).unwrap();
        let new = json(tag(Some(Held::Nothing)));
        assert!(
            new["before"].is_null() && new.get("before").is_some(),
            "{new}"
        );
        assert_eq!(new["status"], "failed");
        assert_eq!(new["reason"], "x");
        assert!(json(tag(None)).get("before").is_none());
        let held = json(tag(Some(Held::Digest("sha256:1".into()))));
        assert_eq!(held["before"], "sha256:1");
    }
}
