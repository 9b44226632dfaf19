//! `multiarch.toml`: the serde types that read it ([`raw`], from which the JSON schema is
//! generated), where the files are ([`location`]), and [`load`], which turns them into a
//! validated [`Config`] ([`image`] checks each image): defaults merged, platforms parsed, paths
//! checked. Templates stay unrendered here; `matrix` renders them.

mod content;
mod image;
mod inherit;
mod load;
mod location;
mod nodes;
mod paths;
mod raw;

pub use content::{
    Check, CheckMode, Content, ProvenanceMode, RawCheck, RawProvenance, RawSbom, Sbom, SbomFormat,
    SbomGenerator,
};
pub(crate) use image::pass_as_secret;
use image::*;
pub use load::*;
pub use location::*;
pub use nodes::{Address, Node};
pub use paths::{BuildPaths, PathText, Paths, Whose, resolve as resolve_paths};
pub use raw::*;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::confine::{Allowed, Confinement, check_config_file};
use crate::error::{ConfigError, ErrorKind, Source, join, suggest};
use crate::platform::Platform;
use crate::settings::Trusted;

/// The file name mab looks for.
pub const FILE_NAME: &str = "multiarch.toml";

type Text = Spanned<String>;
type TextMap = BTreeMap<String, Text>;

/// A template and the file it is written in: an image's default may come from a file above it.
#[derive(Debug, Clone)]
pub struct Sourced {
    pub text: Text,
    pub source: Source,
}

impl Sourced {
    fn new(text: &Text, source: &Source) -> Self {
        Self {
            text: text.clone(),
            source: source.clone(),
        }
    }
}

pub type SourcedMap = BTreeMap<String, Sourced>;

fn sourced_map(map: &TextMap, source: &Source) -> SourcedMap {
    map.iter()
        .map(|(k, v)| (k.clone(), Sourced::new(v, source)))
        .collect()
}

/// One `multiarch.toml` whose images are in the config, with what they inherit from the files
/// above it.
#[derive(Debug)]
pub struct File {
    /// Its position in [`Config::files`].
    pub index: usize,
    pub source: Source,
    /// The directory that holds it (absolute): paths in it are relative to this.
    pub dir: PathBuf,
    /// `dir` relative to [`Config::root`] (`.` for the root): qualifies the names of its images
    /// (`services/api:api`).
    pub rel_dir: PathBuf,
    /// Its `[vars]` over those of the files above it, under `--var`.
    pub vars: BTreeMap<String, Scalar>,
    /// `defaults.registry`, its own or inherited.
    pub registry: Option<Sourced>,
    /// The config files whose settings its images get: itself, then the files above, nearest
    /// first. A change to any of them changes its images.
    pub chain: Vec<PathBuf>,
}

/// A config, loaded and checked: one `multiarch.toml`, or every one found under a directory,
/// with every image's defaults applied, platforms parsed and paths found. Templates are still
/// unrendered.
#[derive(Debug)]
pub struct Config {
    /// The directory podman runs in and plan paths are relative to: the single file's
    /// directory, or the directory discovery started from.
    pub root: PathBuf,
    /// When a member of a monorepo was asked for: its directory, relative to `root`.
    pub member: Option<PathBuf>,
    pub files: Vec<Arc<File>>,
    /// Sorted by name; names are unique across files.
    pub images: Vec<ImageDef>,
    pub builder: Builder,
    pub registries: BTreeMap<String, RawRegistry>,
    /// `[nodes]`, sorted by name; empty: everything builds on this machine.
    pub nodes: Vec<Node>,
    /// `[sbom]`, `[provenance]` and `[check]`.
    pub content: Content,
    /// `[signing]`: the key that signs what a run pushes; none: nothing is signed.
    pub signing: Option<crate::sign::Signing>,
    /// What the environment says (set by the caller, never read here).
    pub env: crate::settings::Environment,
    /// Where the config's paths may lead: named contexts are checked when they are rendered.
    pub confine: Confinement,
}

/// Retries of a push or registry read after a transient failure, unless the config says.
pub const DEFAULT_RETRIES: u32 = 3;

/// How long one registry command may run, unless the config says: a large layer on a slow link
/// must fit (1 GiB at 2 MB/s is about 9 minutes), and a hung registry must not hold a run (and
/// the per-user lock) for much longer.
pub const DEFAULT_REGISTRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// How long a registry command may move no data, unless the config says: a registry that takes
/// a minute to answer a request is as good as down, and a retry may reach a healthier one.
pub const DEFAULT_REGISTRY_STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// `[builder]` of every file, checked and with its defaults filled in.
#[derive(Debug, Clone)]
pub struct Builder {
    pub oci_labels: bool,
    pub reproducible: bool,
    pub timeout_secs: Option<u64>,
    pub retries: u32,
    /// `[builder] registry_timeout` and `registry_stall`, if set.
    pub registry_timeout_secs: Option<u64>,
    pub registry_stall_secs: Option<u64>,
}

impl Config {
    /// What is selected when the command line names nothing: a member's own images, else all.
    pub fn default_patterns(&self) -> Vec<String> {
        self.member
            .iter()
            .map(|dir| format!("{}:*", glob::Pattern::escape(&dir.to_string_lossy())))
            .collect()
    }

    /// Whether pushes to and reads from `registry` (`host[:port]`) skip TLS verification.
    pub fn insecure(&self, registry: &str) -> bool {
        self.registries.get(registry).is_some_and(|r| r.insecure)
    }
}

/// A layer cache in a registry (`cache`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cache {
    /// `REPOSITORY/cache` of each image.
    Registry,
    /// Read from `from`, written to `to` (repositories).
    Refs {
        from: Option<String>,
        to: Option<String>,
    },
}

impl Cache {
    /// The checked setting written at `raw` in `source`; `None` for `"none"`.
    pub(crate) fn parse(
        raw: &Spanned<RawCache>,
        source: &Source,
    ) -> Result<Option<Self>, ConfigError> {
        let err = |message: String| {
            source
                .error(ErrorKind::Type, raw.span(), message)
                .with_help("write cache = \"registry\", cache = \"none\", or cache = { from = \"REGISTRY/REPO\", to = \"REGISTRY/REPO\" }")
        };
        match raw.get_ref() {
            RawCache::Mode(m) if m == "registry" => Ok(Some(Self::Registry)),
            RawCache::Mode(m) if m == "none" => Ok(None),
            RawCache::Mode(m) => Err(err(format!(
                "`cache = \"{m}\"` is neither \"registry\" nor \"none\""
            ))),
            RawCache::Refs(RawCacheRefs {
                from: None,
                to: None,
            }) => Err(err("`cache` names neither `from` nor `to`".into())),
            RawCache::Refs(RawCacheRefs { from, to }) => {
                for r in [from, to].into_iter().flatten() {
                    if r.parse::<crate::reference::Repository>().is_err() {
                        return Err(err(format!(
                            "`{r}` in `cache` is not a repository (REGISTRY/PATH, no tag)"
                        )));
                    }
                }
                Ok(Some(Self::Refs {
                    from: from.clone(),
                    to: to.clone(),
                }))
            }
        }
    }
}

/// `[images.NAME.platform."os/arch"]`, checked.
#[derive(Debug, Clone, Default)]
pub struct PlatformOverride {
    pub args: SourcedMap,
    pub target: Option<Sourced>,
    pub contexts: SourcedMap,
    pub labels: SourcedMap,
    pub annotations: SourcedMap,
    /// `context` and `dockerfile` as written here, if set.
    pub context: Option<PathText>,
    pub dockerfile: Option<PathText>,
    /// This platform's paths, when it sets either: the other is the image's.
    pub paths: Option<Paths>,
    /// `from`: the registry image that is this platform's entry, and where it is written.
    pub from: Option<(crate::external::ExternalRef, Sourced)>,
    /// Tags of the platform's own image; a later layer's list replaces an earlier's.
    pub tags: Vec<Sourced>,
}

/// One `[images.NAME]` table with `[defaults]` merged in.
#[derive(Debug)]
pub struct ImageDef {
    /// The file it is defined in: spans without a source of their own point into it.
    pub file: Arc<File>,
    pub key: String,
    pub key_span: Range<usize>,
    /// The context and Dockerfile of its builds (a platform override may have its own).
    pub paths: Paths,
    /// Where every tag is pushed; the first is where the images and the index go first.
    /// Empty: `<registry>/<name>`.
    pub repository: Vec<Sourced>,
    pub name: Option<Text>,
    pub depends_on: Vec<Text>,
    pub args: SourcedMap,
    pub labels: SourcedMap,
    pub annotations: SourcedMap,
    pub target: Option<Sourced>,
    /// Named build contexts by name, unrendered.
    pub contexts: SourcedMap,
    pub platforms: Vec<Platform>,
    /// Where the platform list is written, for errors about a platform.
    pub platforms_source: Source,
    pub platforms_span: Range<usize>,
    pub tags: Vec<Sourced>,
    pub push: bool,
    pub matrix: BTreeMap<String, Vec<MatrixValue>>,
    /// Where the matrix is written (the image's key when it has none).
    pub matrix_span: Range<usize>,
    pub exclude: Vec<Spanned<BTreeMap<String, MatrixValue>>>,
    pub include: Vec<Spanned<BTreeMap<String, MatrixValue>>>,
    pub overrides: BTreeMap<Platform, PlatformOverride>,
    pub secrets: BTreeMap<String, SecretSource>,
    /// Where the layer cache lives in a registry, if anywhere.
    pub cache: Option<Cache>,
    /// `watch`: absolute path patterns whose changes select the image for `--changed-since`.
    pub watch: Vec<glob::Pattern>,
    /// The config files of the images it inherits from (`inherits`), besides its own: a
    /// change to one changes it.
    pub inherited_files: Vec<PathBuf>,
}
