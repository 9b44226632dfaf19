//! The plan: a DAG of per-platform build nodes and per-instance manifest nodes, in a
//! deterministic topological order, with the exact podman command line of every build.
//!
//! Edges are per platform: `api@linux-arm64` waits for `base@linux-arm64` only, never for
//! `base@linux-amd64`, unless a stage reads base on the build platform (`FROM
//! --platform=$BUILDPLATFORM`). Dependencies come from `depends_on`, named contexts and the
//! images each Dockerfile reads in the stages its target reaches ([`crate::dockerfile`]),
//! matched against the tags of the config's instances.
//!
//! [`deps`] finds each build's dependencies, [`graph`] selects, checks and orders the builds,
//! [`render`] writes their podman commands.

mod build_command;
mod build_ix;
mod command;
mod deps;
mod graph;
mod list;
mod nodes;
mod publish;
mod render;
mod wiring;
pub use crate::reference::registry_of;
pub use build_ix::BuildIx;
pub use command::{Arg, Command, CommandKind, Hole, Holed, ImageForm, Local};
pub use list::{Add, Assembly, ExternalEntry, Manifest, PlatformTag, Reach, Step};
pub use publish::{
    ToPublish, copy_command, copy_step, inspect_command, inspect_config_command, publication,
};
pub use render::publish_by_digest;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde::Serialize;

use crate::changes::Changes;
use crate::config::{Config, SecretSource};
use crate::error::ConfigError;
use crate::matrix::Instance;
use crate::platform::Platform;

use graph::Graph;

/// The JSON format version of [`Plan`]; bumped on any incompatible change.
/// 2: `config` became `files`, for configs of several files; `changed_since` added.
/// 3: a list's `pushes` (a push per tag) became `publish`, its steps: the index is pushed once.
pub const FORMAT_VERSION: u32 = 3;

/// Where local per-platform images are tagged before they join a manifest list.
pub const LOCAL_PREFIX: &str = "localhost/mab";

/// What `mab plan` shows and `mab run` runs: the builds, not how a run runs (the config's
/// `[builder]` is `settings::BuilderSettings`). Its JSON is `output::json::PlanJson`, which
/// also shows those settings, where the format has always had them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub version: u32,
    /// The podman program and its global options, as every command below starts.
    pub podman: Vec<String>,
    /// The registries.conf that skopeo is told of (it ignores `CONTAINERS_REGISTRIES_CONF`).
    pub registries_conf: Option<std::ffi::OsString>,
    /// The config files, as shown to the user.
    pub files: Vec<String>,
    /// The directory podman runs in; paths in `argv` are relative to it.
    pub workdir: PathBuf,
    /// Where the builds' secrets come from (files and environment variables, never values).
    pub secrets: Vec<SecretSource>,
    /// With `--changed-since`: the revision, and why each image was selected.
    pub changed_since: Option<ChangedSince>,
    /// What the plan does that the config may not mean, once each.
    pub warnings: Vec<Warning>,
    /// `[nodes]`: the machines the builds run on; empty: this one.
    pub nodes: Vec<PlanNode>,
    /// With `mab plan --check-registry`: the lists whose inputs the registry already holds,
    /// which a run does not build (left out of `builds` and `manifests`, or only tagged there).
    pub unchanged: Option<Vec<Unchanged>>,
    /// `[signing]`: where the key that signs every pushed image and index comes from.
    pub signing: Option<crate::sign::Signing>,
    /// In an order that respects `depends_on`.
    pub builds: Vec<Build>,
    pub manifests: Vec<Manifest>,
    /// `[check]`, `[sbom]`, `[provenance]`: shown only when the config has one of them.
    pub content: crate::content::plan::ContentPlan,
}

/// A list the registry holds with the same input digest.
#[derive(Debug, Clone, Serialize)]
pub struct Unchanged {
    pub image: String,
    /// Its index, `REPOSITORY@DIGEST`.
    pub index: String,
    /// Its builds, not run.
    pub builds: Vec<String>,
    /// Its tags that do not point at the index yet, which a run adds.
    pub new_tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangedSince {
    pub revision: String,
    /// In instance order.
    pub selected: Vec<Selected>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Selected {
    pub image: String,
    #[serde(flatten)]
    pub reason: Reason,
}

/// Why `--changed-since` selected an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A file of it changed (relative to the top of the git work tree).
    Changed(String),
    /// It depends on this selected image.
    DependsOn(String),
    /// This selected image needs it, and it is not pushed (`push = false`), so no registry
    /// holds it: it is built.
    NotPushed(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Changed(path) => write!(f, "changed: {path}"),
            Self::DependsOn(image) => write!(f, "depends on {image}"),
            Self::NotPushed(image) => {
                write!(f, "needed by {image}, and not pushed (push = false)")
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Build {
    /// `<instance>@<os>-<arch>[-<variant>]`.
    pub id: String,
    /// Where podman writes the id of the built image (`--iidfile`), relative to the workdir.
    pub iidfile: String,
    /// The instance name.
    pub image: String,
    pub platform: Platform,
    /// Build ids that must finish first.
    pub depends_on: Vec<String>,
    /// The local image the build produces.
    pub local_image: String,
    /// The podman command.
    pub argv: Command,
    /// The `--build-arg`s `argv` gives, by name: what provenance records, read from here and
    /// not back from the command line.
    #[serde(skip)]
    pub build_args: std::collections::BTreeMap<String, Arg>,
    /// `argv` reaches registries without TLS verification (`--tls-verify=false`).
    #[serde(skip)]
    pub insecure: bool,
    /// The platforms whose RUN steps the build executes (from the stages its target reaches):
    /// one other than the machine's needs an emulator, none means a cross-compiled build.
    pub run_platforms: Vec<Platform>,
    /// The features podman versions differ on ([`crate::podman_features`]) that the stages
    /// its target reaches use: `mab doctor` judges them by the podman at hand.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<FeatureUse>,
    /// The copy of its Dockerfile that `--file` names, when the build has labels or `FROM`
    /// lines read automatic platform args no `ARG` declares: labels are set in one `LABEL`
    /// instruction there rather than by `--label` flags, each of which buildah 1.28 runs as a
    /// step and a commit of its own; the args are declared at its top.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<LabeledDockerfile>,
    /// For a context that holds the run's state directory: the ignore file `argv` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignorefile: Option<IgnoreFile>,
    /// What decides its image besides `argv`, hashed by `mab run` into its input digest.
    pub inputs: Inputs,
    /// The build node it runs on (`[nodes]`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// On a node other than this machine: how its image is pushed for the lists and other
    /// nodes to read by digest. `<image id>` in it stands for the id the build wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<Publish>,
}

/// Pushing a build's image from its node, and reading its digest back.
#[derive(Debug, Clone, Serialize)]
pub struct Publish {
    /// The repository it is pushed to (the plan shows it in `reference`).
    #[serde(skip)]
    pub repository: crate::reference::Repository,
    /// `REPOSITORY:mab-image-<image id>`.
    pub reference: Arg,
    pub push: Command,
    pub verify: Command,
    /// Its registry is reached over plain HTTP or without verifying its certificate: so is
    /// every read of the pushed image (the content check's and the SBOM's copy).
    #[serde(skip)]
    pub insecure: bool,
}

/// A build node, as the plan uses it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanNode {
    pub name: String,
    /// `local`, the url, or `connection NAME`.
    pub address: String,
    pub platforms: Vec<Platform>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emulates: Vec<Platform>,
    pub jobs: usize,
    /// The podman global options of its commands.
    pub podman_args: Vec<String>,
}

/// What a build's input digest is made of, besides its command line (less the per-run
/// `--timestamp` and labels): the files podman reads and the images from outside the run.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    /// The build context, relative to the workdir: every file its ignore file lets in (the
    /// one `argv` names, else the Dockerfile's own, else the context's).
    pub context: PathBuf,
    /// The Dockerfile as written (the labeled copy is made from it).
    pub dockerfile: PathBuf,
    /// Named contexts that are directories.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<PathBuf>,
    /// Images read from outside the run, by the digest podman would use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bases: Vec<Base>,
    /// Labels that change with every commit (mab's revision, created and version): not inputs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_run_labels: Vec<String>,
    /// The labels of the labeled copy that are inputs, as `KEY=VALUE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// An image a build reads from outside the run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Base {
    pub reference: String,
    pub platform: Platform,
    /// Its registry is reached over plain HTTP or with an unverified certificate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// The podman options of the node that reads it (a local image is the node's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_args: Vec<String>,
}

impl Build {
    /// The platforms this build runs steps on that `host` cannot run natively (linux/386 on
    /// amd64 it can: [`crate::native`]).
    pub fn emulated<'a>(&'a self, host: &'a Platform) -> impl Iterator<Item = &'a Platform> {
        self.run_platforms
            .iter()
            .filter(move |p| !crate::native::runs_natively(host, p))
    }
}

impl Plan {
    /// Each build's position in `builds`, by id.
    pub fn build_index(&self) -> std::collections::HashMap<&str, BuildIx> {
        self.builds
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.as_str(), BuildIx::new(i)))
            .collect()
    }
}

/// A build's Dockerfile with one `LABEL` instruction added at the end of the built stage, and
/// the automatic platform args `FROM` lines read declared at its top.
#[derive(Debug, Clone, Serialize)]
pub struct LabeledDockerfile {
    /// Where the copy is written, relative to the workdir.
    pub path: String,
    /// The Dockerfile it copies, relative to the workdir.
    pub base: PathBuf,
    /// The `LABEL` instruction, at the end of the built stage.
    #[serde(flatten)]
    pub label: Option<Insertion>,
    /// `ARG TARGETOS ...` before the first instruction, for `FROM` lines that read them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declare: Option<Insertion>,
}

/// A line the copy of a Dockerfile adds.
#[derive(Debug, Clone, Serialize)]
pub struct Insertion {
    /// Where in the base it goes: a byte offset at the start of a line...
    pub offset: usize,
    /// ...after this many lines.
    pub after_line: usize,
    pub instruction: String,
}

/// A use of a feature podman versions differ on, in a build's Dockerfile (ordered by place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FeatureUse {
    pub line: usize,
    pub column: usize,
    pub feature: crate::podman_features::Feature,
}

impl LabeledDockerfile {
    /// The copy's text, given the base's: each added instruction on a line of its own.
    pub fn text(&self, base: &str) -> String {
        let mut out = String::with_capacity(base.len() + 256);
        let mut at = 0;
        for line in [&self.declare, &self.label].into_iter().flatten() {
            let offset = line.offset.clamp(at, base.len());
            out.push_str(&base[at..offset]);
            if !(out.is_empty() || out.ends_with('\n')) {
                out.push('\n');
            }
            out.push_str(&line.instruction);
            out.push('\n');
            at = offset;
        }
        out.push_str(&base[at..]);
        out
    }
}

/// Something in the config that plans, but probably not as meant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Warning {
    pub image: String,
    pub message: String,
    /// How to say what was meant.
    pub help: String,
}

/// An ignore file written before the builds start: the context's own, if any, plus a line that
/// keeps the state directory (logs that change on every run) out of the image and its cache key.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoreFile {
    /// Relative to the workdir.
    pub path: String,
    /// The context's `.containerignore` or `.dockerignore`, copied first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
    /// The state directory, relative to the context.
    pub exclude: String,
}

impl IgnoreFile {
    /// The file's text, given the base's.
    pub fn text(&self, base: &str) -> String {
        let sep = if base.is_empty() || base.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        format!("{base}{sep}{}\n", self.exclude)
    }
}

/// Where a run keeps the files podman writes for it, relative to the workdir.
pub const STATE_DIR: &str = ".mab";

/// What the command line selects.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Image names, instance names, qualified names (`services/api:api`) or globs; empty
    /// selects [`Config::default_patterns`] (a monorepo member's images, else everything).
    pub patterns: Vec<String>,
    /// Platforms to keep; empty keeps all.
    pub platforms: Vec<Platform>,
    /// Only the images these changes touch and their dependents (of those `patterns` match);
    /// their dependencies are not rebuilt.
    pub changes: Option<Changes>,
    /// `mab run --no-push`: nothing leaves this machine, so no build pushes cache layers
    /// (`--cache-to`).
    pub no_push: bool,
}

/// A command line a person can paste into a POSIX shell: how every argv of a plan is shown.
pub fn shell_line(argv: &[String]) -> String {
    // try_join refuses only NUL bytes, which an argument vector cannot carry anyway.
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

pub fn build_id(name: &str, platform: &Platform) -> String {
    format!("{name}@{}", platform.slug())
}

pub fn local_image(name: &str, platform: &Platform) -> String {
    format!("{LOCAL_PREFIX}/{name}:{}", platform.slug())
}

/// The podman command prefix: `MAB_PODMAN` (split like a shell would, so it can carry global
/// options such as `--remote --connection ci`), else `podman`. Never the config's: see
/// `config::load::refuse_machine_settings`.
pub fn podman_prefix(config: &Config) -> Vec<String> {
    config
        .env
        .podman
        .clone()
        .unwrap_or_else(|| vec!["podman".into()])
}

/// Makes the plan of `instances` (from [`crate::matrix::expand`]) for `selection`.
pub fn plan(
    config: &Config,
    instances: &[Instance],
    selection: &Selection,
) -> Result<Plan, ConfigError> {
    let graph = Graph::new(config, instances)?;
    let patterns = if selection.patterns.is_empty() {
        config.default_patterns()
    } else {
        selection.patterns.clone()
    };
    let (selected, changed_since) = match &selection.changes {
        Some(changes) => {
            let (selected, reasons) = graph.select_changed(changes, &patterns)?;
            (selected, Some(reasons))
        }
        None => (graph.select(&patterns)?, None),
    };
    graph.check_platforms(&selected, &selection.platforms)?;
    nodes::check(config, instances, &selected)?;
    graph.check_cycles()?;
    let plan = graph.into_plan(&selected, &selection.platforms, !selection.no_push);
    Ok(Plan {
        changed_since,
        content: crate::content::plan::ContentPlan::new(
            &config.content,
            &plan.builds,
            &plan.manifests,
        ),
        ..plan
    })
}

impl Plan {
    /// Whether build `b` runs on another machine (a node that is not `local`): its image is
    /// there, and here only in the registry its node pushes it to. A split runner's builds
    /// push by digest too, but they run here.
    pub fn built_elsewhere(&self, b: &Build) -> bool {
        b.node.as_ref().is_some_and(|name| {
            self.nodes
                .iter()
                .any(|n| &n.name == name && n.address != "local")
        })
    }
}
