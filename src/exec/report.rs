//! What a run reports: each build's and list's status, duration, ids, digests and log.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::plan::{Build, Manifest};
use crate::platform::Platform;

/// How a build or a manifest list ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Built,
    /// The registry holds an image or list with the same inputs: nothing was built.
    Unchanged,
    /// Assembled locally and not pushed (`--no-push` or `push = false`).
    Assembled,
    Pushed,
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
            Self::Failed { .. } => "FAILED",
            Self::Skipped { .. } => "skipped",
            Self::NotStarted => "not run",
        }
    }

    pub(super) fn finished(&self) -> bool {
        !matches!(self, Self::NotStarted)
    }
}

#[derive(Debug, Clone, Serialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
    /// An unchanged build's image in the registry, `REPO@DIGEST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    pub log: PathBuf,
    /// The end of the log of a failed build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagReport {
    pub reference: String,
    /// Digest of the pushed index, as the registry serves it.
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestReport {
    pub image: String,
    pub list: String,
    #[serde(flatten)]
    pub status: Status,
    pub duration_ms: u64,
    /// Tags pushed and verified.
    pub tags: Vec<TagReport>,
    /// The marker tag the list was also pushed to, which names its inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<TagReport>,
    pub log: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run_id: String,
    pub run_dir: PathBuf,
    /// The signal that interrupted the run (2: SIGINT, 15: SIGTERM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<i32>,
    pub success: bool,
    pub builds: Vec<BuildReport>,
    pub manifests: Vec<ManifestReport>,
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
            log: run_dir.join(format!("{}.log", b.id)),
            log_tail: None,
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
            log: run_dir.join(format!("{}@manifest.log", m.image)),
            log_tail: None,
        }
    }
}
