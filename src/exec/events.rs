//! What a run tells whoever watches it, as typed events (nextest's `TestEventKind`): the
//! coordinator emits them, and the progress display, the report and (later) CI output consume
//! them. The words, colours and counting belong to the consumers; an event only says what
//! happened, to which job, when and where.

use std::time::Duration;

use serde::Serialize;

use super::report::TagReport;
use super::schedule::Job;
use crate::plan::BuildIx;
use crate::platform::Platform;

/// What an event is about that is not a running job: a build, or a manifest list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A build, by its position in the plan's builds.
    Build(BuildIx),
    /// A manifest list, by its index in the plan's manifests.
    List(usize),
}

impl Job {
    /// The build or list the job works on.
    pub fn subject(self) -> Subject {
        match self {
            Self::Build(i) => Subject::Build(i),
            Self::Assemble(m) | Self::Push(m) => Subject::List(m),
        }
    }
}

/// Which slots a job took: builds and list jobs have slots of their own, as list jobs mostly
/// wait on the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Builds,
    Lists,
}

/// Where a job ran: its build node (`None`: this machine, without `[nodes]` or for list jobs)
/// and which of that node's slots of its lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Place {
    pub node: Option<String>,
    pub lane: Lane,
    pub slot: usize,
}

/// When a job ran, from the start of the run, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: Duration,
    pub end: Duration,
    pub place: Place,
}

impl Span {
    pub fn elapsed(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// What follows a list that holds every image now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// It stays local (`--no-push`, `push = false`).
    Local,
    /// It is pushed once every build of the run has succeeded (`--atomic`).
    Deferred,
    /// Its push is queued.
    Push,
}

/// What the registry check found before anything ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCheck {
    /// Lists whose inputs the registry holds, of `lists`.
    pub unchanged_lists: usize,
    pub lists: usize,
    /// Builds left out, of `builds`.
    pub unchanged_builds: usize,
    pub builds: usize,
    /// Unchanged lists that get new tags.
    pub retagged: usize,
    /// Files hashed, and of them read (not taken from the hash cache).
    pub files: usize,
    pub files_read: usize,
    /// Lists built although the registry could not tell about them: image, why.
    pub unknown: Vec<(String, String)>,
}

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// The registry said what is left to build.
    Checked(RegistryCheck),
    /// A job started at `at` (from the start of the run); `command` is the first it runs.
    Started {
        job: Job,
        label: String,
        command: String,
        at: Duration,
        place: Place,
    },
    /// A build's content steps ended (the ELF check, the SBOM), before its `Built`.
    Content {
        build: BuildIx,
        content: super::content::BuildContent,
    },
    /// Artifacts were attached to a list's platform images (before its tags moved).
    Attached {
        list: usize,
        attached: Vec<super::attachments::AttachedImage>,
    },
    /// A build made its image (`published`: its node pushed it there, `REPO@DIGEST`).
    Built {
        build: BuildIx,
        span: Span,
        image_id: String,
        published: Option<crate::reference::Pinned>,
    },
    /// An assembly job ended with the list holding the first `holds` of its images; the
    /// others follow as they are built.
    Added {
        list: usize,
        span: Span,
        holds: usize,
    },
    /// An assembly job ended with the list holding every image.
    ListReady { list: usize, span: Span, next: Next },
    /// How one tag of a list ended in its publication, in the list's order.
    Tag { list: usize, tag: TagReport },
    /// The marker tag the list was also pushed to, which names its inputs.
    Marker { list: usize, tag: TagReport },
    /// The index a list's publication pushed (or found): each platform's image digest in it.
    Index {
        list: usize,
        images: Vec<(Platform, String)>,
    },
    /// A signature the list's publication made sure of (`[signing]`), in the order signed.
    Signature {
        list: usize,
        signature: crate::sign::ensure::SignatureReport,
    },
    /// A list's publication ended, every tag verified; `moved` of `tags` moved.
    Pushed {
        list: usize,
        span: Span,
        moved: usize,
        tags: usize,
    },
    /// A job failed: why, and the end of its log.
    Failed {
        job: Job,
        span: Span,
        reason: String,
        tail: Option<String>,
    },
    /// A build or list will not run, and why.
    Skipped { subject: Subject, reason: String },
    /// The first interrupt: nothing new starts, `stopping` commands are asked to stop.
    Interrupted { signal: i32, stopping: usize },
    /// A second interrupt: every running command is killed.
    Killing,
}
