//! `multiarch.toml`: the serde types that read it (and from which the JSON schema is generated),
//! and [`load`], which turns a file into a validated [`Config`]: defaults merged, platforms
//! parsed, paths checked. Templates stay unrendered here; `matrix` renders them.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{ConfigError, ErrorKind, Source, join, suggest};
use crate::platform::Platform;

/// The file name mab looks for.
pub const FILE_NAME: &str = "multiarch.toml";

type Text = Spanned<String>;
type TextMap = BTreeMap<String, Text>;

/// A `multiarch.toml` file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "multiarch.toml",
    description = "Multi-arch image builds with mab: images, platforms, tags and their templates"
)]
pub struct RawConfig {
    /// Settings that apply to every image unless the image sets its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// User variables, available to templates as `vars.NAME`; `--var NAME=VALUE` overrides them.
    #[serde(default)]
    pub vars: BTreeMap<String, Scalar>,
    /// The images to build, by name. The name is used in `depends_on`, on the command line,
    /// and for the default repository `<registry>/<name>`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawImage>")]
    pub images: BTreeMap<Spanned<String>, Spanned<RawImage>>,
    /// How podman is called.
    #[serde(default)]
    pub builder: RawBuilder,
    /// Per-registry settings, keyed by `host[:port]` (`[registries."127.0.0.1:5000"]`).
    #[serde(default)]
    pub registries: BTreeMap<String, RawRegistry>,
}

/// `[builder]`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBuilder {
    /// The podman program (default `podman`). `MAB_PODMAN` in the environment overrides it and
    /// may add global options: `MAB_PODMAN="podman --remote --connection ci"`.
    pub podman: Option<String>,
    /// Global options put before every podman subcommand, e.g. `["--root", "/srv/storage"]`.
    #[serde(default)]
    pub global_args: Vec<String>,
    /// Add the standard `org.opencontainers.image.*` labels (source, revision, created,
    /// version) to every image (default true). Labels set in the config win.
    pub oci_labels: Option<bool>,
    /// Build with `--timestamp` set to the commit time, for reproducible images (default false).
    pub reproducible: Option<bool>,
    /// A build running longer fails, e.g. `"30m"` or `"1h 30m"` (default: no limit).
    /// `mab run --timeout` overrides it.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// Retries of a push or registry read after a transient failure such as a refused
    /// connection or a 503, with exponential backoff from 1 s (default 3).
    pub retries: Option<u32>,
}

/// `[registries."host[:port]"]`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    /// Plain HTTP or an unverified certificate: push and read with `--tls-verify=false`.
    #[serde(default)]
    pub insecure: bool,
}

/// `[defaults]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Repository prefix: an image's repository defaults to `<registry>/<name>`. Template.
    #[schemars(with = "Option<String>")]
    pub registry: Option<Text>,
    /// Platforms to build, such as `linux/amd64` or `linux/arm/v7`.
    #[schemars(with = "Option<Vec<String>>")]
    pub platforms: Option<Vec<Text>>,
    /// Tags each manifest list is pushed to. Templates; they cannot use `platform`.
    #[schemars(with = "Option<Vec<String>>")]
    pub tags: Option<Vec<Text>>,
    /// Whether manifest lists are pushed to the registry (default true).
    pub push: Option<bool>,
    /// Build arguments for every image (an image's own win). Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub args: TextMap,
    /// Labels for every image (an image's own win). Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: TextMap,
    /// Annotations for every image (an image's own win). Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub annotations: TextMap,
    /// Build secrets for every image (an image's own win), by id.
    #[serde(default)]
    pub secrets: BTreeMap<String, RawSecret>,
    /// Named build contexts for every image (an image's own win). See `images.NAME.contexts`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub contexts: TextMap,
}

/// A build secret, read by podman (`--secret`), never by mab's plan or logs: `{ file = "~/.npmrc" }`
/// or `{ env = "GH_TOKEN" }`. A Dockerfile uses it with `RUN --mount=type=secret,id=ID`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    /// A file (`~/` is the home directory; relative paths are relative to this file).
    #[schemars(with = "Option<String>")]
    pub file: Option<Text>,
    /// An environment variable of the `mab run` process.
    #[schemars(with = "Option<String>")]
    pub env: Option<Text>,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// `[images.NAME]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    /// Build context directory, relative to this file (default `.`).
    #[schemars(with = "Option<String>")]
    pub context: Option<Text>,
    /// Dockerfile, relative to the context (default `Dockerfile`).
    #[schemars(with = "Option<String>")]
    pub dockerfile: Option<Text>,
    /// Repository to push to (default `<registry>/<name>`). Template.
    #[schemars(with = "Option<String>")]
    pub repository: Option<Text>,
    /// Instance name template for matrix images (default `<name>-<value>-...`). Template.
    #[schemars(with = "Option<String>")]
    pub name: Option<Text>,
    /// Images (names, or instance names of matrix images) built before this one, on each platform.
    /// Optional when a `FROM` line names the dependency's repository and tag.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub depends_on: Vec<Text>,
    /// Build arguments. Templates; they may use `platform`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub args: TextMap,
    /// Image labels. Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: TextMap,
    /// Image annotations. Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub annotations: TextMap,
    /// Build secrets by id, on top of `defaults.secrets`.
    #[serde(default)]
    pub secrets: BTreeMap<String, RawSecret>,
    /// Build stage to stop at (`--target`); it must name a stage of the Dockerfile. Template.
    #[schemars(with = "Option<String>")]
    pub target: Option<Text>,
    /// Named build contexts, as in `docker buildx bake`: a `FROM NAME`, `COPY --from=NAME` or
    /// `RUN --mount=from=NAME` reads NAME from here, before stages and images. Values:
    /// `"target:IMAGE"` (an image of this config, built first, for the platform the stage
    /// needs), `"docker-image://REF"` (an image from a registry), `"https://..."` (a tarball),
    /// or a directory relative to this file. Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub contexts: TextMap,
    /// Platforms to build (default: `defaults.platforms`).
    #[schemars(with = "Option<Vec<String>>")]
    pub platforms: Option<Vec<Text>>,
    /// Tags (default: `defaults.tags`). Templates; they cannot use `platform`.
    #[schemars(with = "Option<Vec<String>>")]
    pub tags: Option<Vec<Text>>,
    /// Whether to push (default: `defaults.push`, else true).
    pub push: Option<bool>,
    /// One image instance per combination of these values (strings, or tables read as
    /// `matrix.KEY.FIELD`). An empty list yields no instance.
    #[schemars(with = "Option<BTreeMap<String, Vec<MatrixValue>>>")]
    pub matrix: Option<Spanned<BTreeMap<String, Vec<MatrixValue>>>>,
    /// Combinations to leave out; a key may be `platform`.
    #[serde(default)]
    #[schemars(with = "Vec<BTreeMap<String, MatrixValue>>")]
    pub exclude: Vec<Spanned<BTreeMap<String, MatrixValue>>>,
    /// Extra combinations to build; `platform` restricts one to that platform.
    #[serde(default)]
    #[schemars(with = "Vec<BTreeMap<String, MatrixValue>>")]
    pub include: Vec<Spanned<BTreeMap<String, MatrixValue>>>,
    /// Paths outside the context whose changes also select this image for `mab plan
    /// --changed-since`, relative to this file; globs (`../../libs/common/**`) or directories.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub watch: Vec<Text>,
    /// Per-platform overrides, keyed by platform (`[images.NAME.platform."linux/arm64"]`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawPlatformOverride>")]
    pub platform: BTreeMap<Spanned<String>, RawPlatformOverride>,
}

/// `[images.NAME.platform."os/arch"]`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPlatformOverride {
    /// Build arguments for this platform only, on top of the image's. Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub args: TextMap,
    /// Build stage to stop at on this platform. Template.
    #[schemars(with = "Option<String>")]
    pub target: Option<Text>,
    /// Named build contexts for this platform only, on top of the image's. Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub contexts: TextMap,
}

/// A variable's value: TOML strings, integers, floats and booleans keep their type in templates.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Integer(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Boolean(b) => write!(f, "{b}"),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::String(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Boolean(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// One value of a matrix key: a string, or a table of strings (`{ name = "x", arg = "y" }`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MatrixValue {
    String(String),
    Table(BTreeMap<String, String>),
}

impl MatrixValue {
    /// The short form used in default instance names and to match `exclude` strings:
    /// the string itself, or a table's `name` field.
    pub fn short_name(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            Self::Table(t) => t.get("name").map(String::as_str),
        }
    }

    /// Whether an `exclude`/`include` value selects this value: equal, or a string naming a table.
    pub fn matches(&self, pattern: &MatrixValue) -> bool {
        self == pattern
            || matches!(pattern, Self::String(s) if self.short_name() == Some(s.as_str()))
    }
}

impl fmt::Display for MatrixValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Table(t) => {
                let fields: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
                write!(f, "{{ {} }}", fields.join(", "))
            }
        }
    }
}

impl<'de> Deserialize<'de> for MatrixValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatrixValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                // Numbers are refused on purpose: `1.20` would silently become `1.2`.
                f.write_str("a string or a table of strings (quote numbers: \"1.22\")")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MatrixValue, E> {
                Ok(MatrixValue::String(v.into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MatrixValue, A::Error> {
                let mut table = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    table.insert(k, v);
                }
                Ok(MatrixValue::Table(table))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<MatrixValue, A::Error> {
                Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
            }
        }
        d.deserialize_any(V)
    }
}

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
    /// What the environment says (set by the caller, never read here).
    pub env: crate::settings::Environment,
}

/// Retries of a push or registry read after a transient failure, unless the config says.
pub const DEFAULT_RETRIES: u32 = 3;

/// `[builder]` of every file, checked and with its defaults filled in.
#[derive(Debug, Clone)]
pub struct Builder {
    pub podman: String,
    pub global_args: Vec<String>,
    pub oci_labels: bool,
    pub reproducible: bool,
    pub timeout_secs: Option<u64>,
    pub retries: u32,
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

/// `[images.NAME.platform."os/arch"]`, checked.
#[derive(Debug, Clone)]
pub struct PlatformOverride {
    pub args: SourcedMap,
    pub target: Option<Text>,
    pub contexts: SourcedMap,
}

/// One `[images.NAME]` table with `[defaults]` merged in.
#[derive(Debug)]
pub struct ImageDef {
    /// The file it is defined in: spans without a source of their own point into it.
    pub file: Arc<File>,
    pub key: String,
    pub key_span: Range<usize>,
    /// Relative to [`Config::root`].
    pub context: PathBuf,
    /// Relative to [`Config::root`].
    pub dockerfile: PathBuf,
    /// The Dockerfile's text.
    pub dockerfile_source: Source,
    pub repository: Option<Text>,
    pub name: Option<Text>,
    pub depends_on: Vec<Text>,
    pub args: SourcedMap,
    pub labels: SourcedMap,
    pub annotations: SourcedMap,
    pub target: Option<Text>,
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
    /// `watch`: absolute path patterns whose changes select the image for `--changed-since`.
    pub watch: Vec<glob::Pattern>,
}

/// Finds `multiarch.toml` in `start` or the nearest parent that has one, as cargo finds Cargo.toml.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// Directories discovery never enters, ignored or not: VCS data and build output.
const SKIPPED_DIRS: [&str; 3] = [".git", "target", "node_modules"];

/// Every `multiarch.toml` under `root`, sorted by path, skipping `.git`, `target`, `node_modules`, hidden
/// directories and whatever `.gitignore`, `.ignore` and git's excludes leave out.
pub fn discover(root: &Path) -> Vec<PathBuf> {
    let found = std::sync::Mutex::new(Vec::new());
    ignore::WalkBuilder::new(root)
        // A monorepo copied out of git (a CI artifact, a tarball) keeps its .gitignore rules.
        .require_git(false)
        .filter_entry(|e| {
            !(e.file_type().is_some_and(|t| t.is_dir())
                && SKIPPED_DIRS.iter().any(|s| e.file_name() == *s))
        })
        // On threads: a monorepo of a thousand services is a thousand directories to read.
        .build_parallel()
        .run(|| {
            Box::new(|entry| {
                if let Ok(e) = entry
                    && e.file_name() == FILE_NAME
                    && e.file_type().is_some_and(|t| t.is_file())
                {
                    found.lock().expect("no panic holds it").push(e.into_path());
                }
                ignore::WalkState::Continue
            })
        });
    let mut found = found.into_inner().expect("no panic holds it");
    found.sort();
    found
}

/// Where a config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file: itself, or, when it is a monorepo's root or member, that monorepo ([`load`]).
    File(PathBuf),
    /// Every file found under a directory ([`discover`]).
    Tree(PathBuf),
}

/// The top-most directory above `dir`, up to `top`, that `is_root` says holds a monorepo's
/// root (a `multiarch.toml` that defines no image).
fn topmost_root<'a>(
    dir: &'a Path,
    top: &Path,
    is_root: impl Fn(&Path) -> bool,
) -> Option<&'a Path> {
    dir.ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(top))
        .filter(|a| is_root(a))
        .last()
}

/// The directory of the top-most monorepo root above `dir` in its git work tree, if any.
pub fn monorepo_root(dir: &Path) -> Option<PathBuf> {
    let is_root = |a: &Path| {
        let path = a.join(FILE_NAME);
        path.is_file() && parse(&path).is_ok_and(|p| p.raw.images.is_empty())
    };
    topmost_root(dir, work_tree_top(dir)?, is_root).map(Path::to_path_buf)
}

impl Location {
    /// What `mab plan` works on in `cwd`: with `all`, every file under `cwd`; else `file`, or
    /// the nearest `multiarch.toml` here or above; else, in a git work tree, every file below
    /// (a monorepo's root need not have a file of its own).
    pub fn find(cwd: &Path, file: Option<&Path>, all: bool) -> Result<Self, ConfigError> {
        if all {
            return Ok(Self::Tree(cwd.to_path_buf()));
        }
        if let Some(path) = file.map(Path::to_path_buf).or_else(|| find(cwd)) {
            return Ok(Self::File(path));
        }
        if work_tree_top(cwd).is_some() && !discover(cwd).is_empty() {
            return Ok(Self::Tree(cwd.to_path_buf()));
        }
        Err(ConfigError::new(
            ErrorKind::Io,
            format!(
                "no {FILE_NAME} in {} or any parent directory",
                cwd.display()
            ),
        )
        .with_help("run mab where your multiarch.toml is, or pass it with -f/--file"))
    }

    /// A directory in the config's git work tree, if it has one.
    pub fn dir(&self) -> &Path {
        match self {
            Self::File(f) => f.parent().unwrap_or(Path::new(".")),
            Self::Tree(root) => root,
        }
    }

    pub fn load(&self, vars: &[(String, String)]) -> Result<Config, ConfigError> {
        match self {
            Self::File(f) => load(f, vars),
            Self::Tree(root) => load_all(root, vars),
        }
    }
}

/// How a path is shown in messages: relative to the working directory (`../multiarch.toml`).
pub fn display_path(path: &Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|cwd| pathdiff::diff_paths(path, cwd));
    match rel {
        Some(rel) if rel.as_os_str().is_empty() => ".".into(),
        Some(rel) => rel.display().to_string(),
        None => path.display().to_string(),
    }
}

/// The path without symbolic links where it exists (git reports such paths, and changes are
/// matched against them), else made absolute as written.
fn absolute(path: &Path) -> Result<PathBuf, ConfigError> {
    if let Ok(canonical) = path.canonicalize() {
        return Ok(canonical);
    }
    std::path::absolute(path).map_err(|e| {
        ConfigError::new(
            ErrorKind::Io,
            format!("cannot resolve {}: {e}", path.display()),
        )
    })
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Reads, parses and checks a config file. `vars` (from `--var`) override the file's `[vars]`.
/// Files named `multiarch.toml` in the directories above it, up to the top of its git work
/// tree, lend it their `[defaults]`, `[vars]` and `[builder]`.
///
/// A file that defines no image is a monorepo's root: every file under its directory is
/// loaded. A file below the top-most root of its git work tree is a member of it: the root's
/// files are loaded, and [`Config::member`] says which are its, as cargo treats a package
/// inside a workspace. Each file is parsed once, whichever it turns out to be.
pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Config, ConfigError> {
    let path = absolute(path)?;
    let dir = dir_of(&path);
    let file = parse(&path)?;
    let defines_none = |p: &Parsed| p.raw.images.is_empty();
    if defines_none(&file) {
        return load_tree(dir.clone(), overrides, BTreeMap::from([(dir, file)]));
    }
    let mut parsed = BTreeMap::from([(dir.clone(), file)]);
    let top = work_tree_top(&dir).unwrap_or(&dir).to_path_buf();
    parse_above(&mut parsed, std::slice::from_ref(&path), &top)?;
    let root = topmost_root(&dir, &top, |a| parsed.get(a).is_some_and(defines_none));
    match root.map(Path::to_path_buf) {
        Some(root) => {
            let member = normalize_relative(dir.strip_prefix(&root).unwrap_or(&dir));
            let config = load_tree(root, overrides, parsed)?;
            Ok(Config {
                member: Some(member),
                ..config
            })
        }
        None => load_files(&[path], dir, overrides, parsed),
    }
}

/// Loads every `multiarch.toml` under `root` ([`discover`]) as one config.
pub fn load_all(root: &Path, overrides: &[(String, String)]) -> Result<Config, ConfigError> {
    load_tree(absolute(root)?, overrides, BTreeMap::new())
}

/// [`load_all`] of an absolute `root`, with the files already `parsed` (keyed by directory).
fn load_tree(
    root: PathBuf,
    overrides: &[(String, String)],
    parsed: BTreeMap<PathBuf, Parsed>,
) -> Result<Config, ConfigError> {
    let paths = discover(&root);
    if paths.is_empty() {
        return Err(ConfigError::new(
            ErrorKind::Io,
            format!("no {FILE_NAME} under {}", display_path(&root)),
        )
        .with_help("discovery skips .git, target, node_modules, hidden directories and what .gitignore/.ignore exclude"));
    }
    load_files(&paths, root, overrides, parsed)
}

/// A parsed file, before its images are resolved.
struct Parsed {
    source: Source,
    raw: RawConfig,
}

fn parse(path: &Path) -> Result<Parsed, ConfigError> {
    let source = Source::read(path, display_path(path))?;
    let raw: RawConfig = toml::from_str(source.text()).map_err(|e| toml_error(&source, &e))?;
    Ok(Parsed { source, raw })
}

/// The directory the git work tree holding `dir` starts at, if any.
fn work_tree_top(dir: &Path) -> Option<&Path> {
    dir.ancestors().find(|a| a.join(".git").exists())
}

/// Parses the `multiarch.toml` files in the directories above `paths`, up to `top`, that
/// `parsed` does not hold yet.
fn parse_above(
    parsed: &mut BTreeMap<PathBuf, Parsed>,
    paths: &[PathBuf],
    top: &Path,
) -> Result<(), ConfigError> {
    let mut looked = std::collections::HashSet::new();
    for path in paths {
        let above = path.ancestors().skip(2).take_while(|a| a.starts_with(top));
        for dir in above {
            if !looked.insert(dir) {
                // Seen from a sibling: so are the directories above it.
                break;
            }
            let candidate = dir.join(FILE_NAME);
            if !parsed.contains_key(dir) && candidate.is_file() {
                parsed.insert(dir.to_path_buf(), parse(&candidate)?);
            }
        }
    }
    Ok(())
}

/// The config of the files at `paths`, rooted at `root`; `parsed` holds files already read,
/// keyed by directory (Path's order puts a directory before everything below it, so a file's
/// ancestors are settled before it).
fn load_files(
    paths: &[PathBuf],
    root: PathBuf,
    overrides: &[(String, String)],
    mut parsed: BTreeMap<PathBuf, Parsed>,
) -> Result<Config, ConfigError> {
    let top = work_tree_top(&root).unwrap_or(&root).to_path_buf();
    // Parsed in parallel: a monorepo may hold a file per image.
    let unread: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| !parsed.contains_key(&dir_of(p)))
        .collect();
    let read = crate::par::try_map(unread.clone(), |p| parse(p))?;
    parsed.extend(unread.into_iter().map(|p| dir_of(p)).zip(read));
    parse_above(&mut parsed, paths, &top)?;

    let mut inherited: BTreeMap<PathBuf, Inherited> = BTreeMap::new();
    for (dir, file) in &parsed {
        let parent = dir
            .ancestors()
            .skip(1)
            .find_map(|a| inherited.get(a))
            .cloned()
            .unwrap_or_default();
        inherited.insert(dir.clone(), parent.under(file, dir)?);
    }
    let (builder, registries) = run_settings(parsed.values())?;

    let mut files = Vec::with_capacity(paths.len());
    let mut raw_images = Vec::new();
    for path in paths {
        let dir = dir_of(path);
        let inh = &inherited[dir.as_path()];
        let mut vars = inh.vars.clone();
        for (k, v) in overrides {
            vars.insert(k.clone(), Scalar::String(v.clone()));
        }
        let chain = dir
            .ancestors()
            .filter(|a| parsed.contains_key(*a))
            .map(|a| a.join(FILE_NAME))
            .collect();
        let rel_dir = pathdiff::diff_paths(&dir, &root)
            .map(|p| normalize_relative(&p))
            .unwrap_or_else(|| dir.clone());
        let parsed_file = parsed.get_mut(&dir).expect("parsed above");
        let file = Arc::new(File {
            index: files.len(),
            source: parsed_file.source.clone(),
            dir,
            rel_dir,
            vars,
            registry: inh.registry.clone(),
            chain,
        });
        let own = std::mem::take(&mut parsed_file.raw.images);
        raw_images.extend(
            own.into_iter()
                .map(|(key, image)| (file.clone(), inh, key, image)),
        );
        files.push(file);
    }
    // Each image's paths are checked on disk: in parallel, for monorepos of many images.
    let mut images = crate::par::try_map(raw_images, |(file, inh, key, image)| {
        resolve_image(&file, inh, key, image)
    })?;
    images.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(pair) = images.windows(2).find(|w| w[0].key == w[1].key) {
        let (a, b) = (&pair[0], &pair[1]);
        return Err(ConfigError::new(
            ErrorKind::Duplicate,
            format!(
                "image `{}` is defined in both {} and {}",
                a.key,
                a.file.source.name(),
                b.file.source.name()
            ),
        )
        .at(&a.file.source, a.key_span.clone(), Some("defined here"))
        .at(&b.file.source, b.key_span.clone(), Some("and here"))
        .with_help("image names are unique across the repository: rename one of them"));
    }
    Ok(Config {
        root,
        member: None,
        files,
        images,
        builder,
        registries,
        env: Default::default(),
    })
}

/// `platforms` of a `[defaults]`: parsed, where it is written, and in which file.
#[derive(Debug, Clone)]
struct PlatformList {
    platforms: Vec<Platform>,
    span: Option<Range<usize>>,
    source: Source,
}

/// What the images of a directory inherit: the `[defaults]` and `[vars]` of its file over those
/// of the files above it. Lists (platforms, tags) replace; tables merge key by key.
#[derive(Debug, Clone, Default)]
struct Inherited {
    registry: Option<Sourced>,
    platforms: Option<PlatformList>,
    tags: Option<Vec<Sourced>>,
    push: Option<bool>,
    args: SourcedMap,
    labels: SourcedMap,
    annotations: SourcedMap,
    contexts: SourcedMap,
    /// Each with the file (and its directory) it is written in.
    secrets: BTreeMap<String, (RawSecret, Source, PathBuf)>,
    vars: BTreeMap<String, Scalar>,
}

impl Inherited {
    /// The settings of `file` (in `dir`) over these.
    fn under(mut self, file: &Parsed, dir: &Path) -> Result<Self, ConfigError> {
        let (d, source) = (&file.raw.defaults, &file.source);
        if let Some(r) = &d.registry {
            self.registry = Some(Sourced::new(r, source));
        }
        if let Some(list) = &d.platforms {
            let parsed = parse_platforms(source, list)?;
            self.platforms = Some(PlatformList {
                platforms: parsed.into_iter().map(|(p, _)| p).collect(),
                span: list_span(list),
                source: source.clone(),
            });
        }
        if let Some(tags) = &d.tags {
            self.tags = Some(tags.iter().map(|t| Sourced::new(t, source)).collect());
        }
        self.push = d.push.or(self.push);
        self.args.extend(sourced_map(&d.args, source));
        self.labels.extend(sourced_map(&d.labels, source));
        self.annotations.extend(sourced_map(&d.annotations, source));
        self.contexts.extend(sourced_map(&d.contexts, source));
        for (id, s) in &d.secrets {
            self.secrets
                .insert(id.clone(), (s.clone(), source.clone(), dir.to_path_buf()));
        }
        self.vars
            .extend(file.raw.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(self)
    }
}

/// `[builder]` and `[registries]` of every file, merged: they set up the one run, so files may
/// repeat a setting but not disagree on it.
fn run_settings<'a>(
    files: impl Iterator<Item = &'a Parsed>,
) -> Result<(Builder, BTreeMap<String, RawRegistry>), ConfigError> {
    fn agree<T: PartialEq + Clone + fmt::Debug>(
        what: &str,
        seen: &mut Option<(T, Source)>,
        value: Option<T>,
        source: &Source,
    ) -> Result<(), ConfigError> {
        match (seen.as_ref(), value) {
            (_, None) => Ok(()),
            (None, Some(v)) => {
                *seen = Some((v, source.clone()));
                Ok(())
            }
            (Some((first, _)), Some(v)) if *first == v => Ok(()),
            (Some((first, first_source)), Some(v)) => Err(ConfigError::new(
                ErrorKind::Duplicate,
                format!(
                    "`{what}` is {first:?} in {} but {v:?} in {}",
                    first_source.name(),
                    source.name()
                ),
            )
            .with_help("[builder] and [registries] set up the whole run: set each once, in the top-most multiarch.toml")),
        }
    }
    let mut podman = None;
    let mut global_args = None;
    let mut oci_labels = None;
    let mut reproducible = None;
    let mut timeout: Option<(String, Source)> = None;
    let mut timeout_span = 0..0;
    let mut retries = None;
    let mut insecure: BTreeMap<String, Option<(bool, Source)>> = BTreeMap::new();
    for file in files {
        let (b, s) = (&file.raw.builder, &file.source);
        agree("[builder] podman", &mut podman, b.podman.clone(), s)?;
        let args = (!b.global_args.is_empty()).then(|| b.global_args.clone());
        agree("[builder] global_args", &mut global_args, args, s)?;
        agree("[builder] oci_labels", &mut oci_labels, b.oci_labels, s)?;
        agree(
            "[builder] reproducible",
            &mut reproducible,
            b.reproducible,
            s,
        )?;
        agree("[builder] retries", &mut retries, b.retries, s)?;
        if let Some(t) = &b.timeout {
            if timeout.is_none() {
                timeout_span = t.span();
            }
            agree(
                "[builder] timeout",
                &mut timeout,
                Some(t.get_ref().clone()),
                s,
            )?;
        }
        for (host, r) in &file.raw.registries {
            let seen = insecure.entry(host.clone()).or_default();
            agree(
                &format!("[registries.\"{host}\"] insecure"),
                seen,
                Some(r.insecure),
                s,
            )?;
        }
    }
    let timeout_secs = timeout
        .map(|(t, source)| {
            humantime::parse_duration(&t)
                .map(|d| d.as_secs())
                .map_err(|e| {
                    source
                        .error(
                            ErrorKind::Type,
                            timeout_span,
                            format!("invalid timeout `{t}`: {e}"),
                        )
                        .with_help("write a duration such as \"30m\" or \"1h 30m\"")
                })
        })
        .transpose()?;
    fn first<T>(seen: Option<(T, Source)>) -> Option<T> {
        seen.map(|(v, _)| v)
    }
    let builder = Builder {
        podman: first(podman).unwrap_or_else(|| "podman".into()),
        global_args: first(global_args).unwrap_or_default(),
        oci_labels: first(oci_labels).unwrap_or(true),
        reproducible: first(reproducible).unwrap_or(false),
        timeout_secs,
        retries: first(retries).unwrap_or(DEFAULT_RETRIES),
    };
    let registries = insecure
        .into_iter()
        .map(|(host, v)| {
            (
                host,
                RawRegistry {
                    insecure: first(v).unwrap_or(false),
                },
            )
        })
        .collect();
    Ok((builder, registries))
}

/// Sorts a TOML error into syntax, unknown key or type, and adds a did-you-mean to unknown keys.
fn toml_error(source: &Source, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end().to_string();
    let (kind, help) = if let Some(rest) = message.strip_prefix("unknown field `") {
        // serde's wording: unknown field `x`, expected one of `a`, `b`
        let word = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        (ErrorKind::UnknownKey, suggest(word, expected))
    } else if [
        "invalid type",
        "missing field",
        "invalid value",
        "invalid length",
        "unknown variant",
    ]
    .iter()
    .any(|p| message.starts_with(p))
    {
        (ErrorKind::Type, None)
    } else {
        (ErrorKind::Syntax, None)
    };
    let err = ConfigError::new(kind, message).with_help_opt(help);
    match e.span() {
        Some(span) => err.at(source, span, None::<String>),
        None => err,
    }
}

fn parse_platforms(
    source: &Source,
    list: &[Text],
) -> Result<Vec<(Platform, Range<usize>)>, ConfigError> {
    let mut out: Vec<(Platform, Range<usize>)> = Vec::with_capacity(list.len());
    for item in list {
        let platform = parse_platform(source, item)?;
        if let Some((_, first)) = out.iter().find(|(p, _)| *p == platform) {
            return Err(ConfigError::new(
                ErrorKind::Duplicate,
                format!("platform `{platform}` is listed twice"),
            )
            .at(source, first.clone(), Some("first here"))
            .at(source, item.span(), Some("again here, after normalisation")));
        }
        out.push((platform, item.span()));
    }
    Ok(out)
}

pub(crate) fn parse_platform(source: &Source, item: &Text) -> Result<Platform, ConfigError> {
    item.get_ref().parse::<Platform>().map_err(|e| {
        source
            .error(ErrorKind::Platform, item.span(), format!("invalid platform `{}`: {e}", item.get_ref()))
            .with_help(match e.suggestion() {
                Some(s) => format!("did you mean `{s}`? Platforms are written `os/arch[/variant]`, e.g. `linux/arm/v7`"),
                None => "platforms are written `os/arch[/variant]`, e.g. `linux/amd64` or `linux/arm/v7`".into(),
            })
    })
}

/// `a/./b/../c` → `a/c`, without touching the file system, so plans show tidy relative paths.
pub fn normalize_relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if out
                    .components()
                    .next_back()
                    .is_some_and(|l| matches!(l, Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

fn resolve_image(
    file: &Arc<File>,
    inh: &Inherited,
    key: Spanned<String>,
    image: Spanned<RawImage>,
) -> Result<ImageDef, ConfigError> {
    let (source, dir) = (&file.source, file.dir.as_path());
    let (key_span, image_span) = (key.span(), image.span());
    let (key, raw) = (key.into_inner(), image.into_inner());
    let context_rel =
        normalize_relative(Path::new(raw.context.as_ref().map_or(".", |c| c.get_ref())));
    let context_span = raw.context.as_ref().map_or(key_span.clone(), Spanned::span);
    if !dir.join(&context_rel).is_dir() {
        return Err(source
            .error(
                ErrorKind::Path,
                context_span,
                format!(
                    "context directory `{}` of image `{key}` does not exist",
                    context_rel.display()
                ),
            )
            .with_help(format!(
                "paths are relative to the directory of {}",
                source.name()
            )));
    }
    let dockerfile_rel = normalize_relative(
        &context_rel.join(
            raw.dockerfile
                .as_ref()
                .map_or("Dockerfile", |d| d.get_ref()),
        ),
    );
    // Read now, once: the planner parses it for FROM lines, and errors quote it.
    let Ok(dockerfile_text) = std::fs::read_to_string(dir.join(&dockerfile_rel)) else {
        let span = raw.dockerfile.as_ref().map_or(context_span, Spanned::span);
        return Err(source
            .error(
                ErrorKind::Path,
                span,
                format!(
                    "Dockerfile `{}` of image `{key}` does not exist",
                    dockerfile_rel.display()
                ),
            )
            .with_help(
                "`dockerfile` is relative to the image's `context` and defaults to `Dockerfile`",
            ));
    };
    // Paths in the plan are relative to the root podman runs in.
    let from_root = |p: &Path| normalize_relative(&file.rel_dir.join(p));
    let dockerfile = from_root(&dockerfile_rel);

    let mut secrets = BTreeMap::new();
    let inherited = inh
        .secrets
        .iter()
        .map(|(id, (s, src, d))| (id, s, src, d.as_path()));
    let own = raw.secrets.iter().map(|(id, s)| (id, s, source, dir));
    for (id, secret, secret_file, secret_dir) in inherited.chain(own) {
        let at = (secret_file, secret_dir);
        let resolved = secret_source(at, (source, image_span.clone()), &key, id, secret)?;
        secrets.insert(id.clone(), resolved);
    }
    let mut args = inh.args.clone();
    args.extend(sourced_map(&raw.args, source));
    check_no_secret_args(&key, &args)?;

    let (platforms, platforms_source, platforms_span) = match (&raw.platforms, &inh.platforms) {
        (Some(list), _) => {
            let parsed = parse_platforms(source, list)?;
            let span = list_span(list).unwrap_or_else(|| key_span.clone());
            let platforms = parsed.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
            (platforms, source.clone(), span)
        }
        (None, Some(inherited)) => {
            let platforms = inherited.platforms.clone();
            match &inherited.span {
                Some(span) => (platforms, inherited.source.clone(), span.clone()),
                None => (platforms, source.clone(), key_span.clone()),
            }
        }
        (None, None) => {
            return Err(source
                .error(ErrorKind::Type, image_span, format!("image `{key}` has no platforms"))
                .with_help("set `platforms` in [defaults] or in the image, e.g. platforms = [\"linux/amd64\", \"linux/arm64\"]"));
        }
    };

    let mut overrides = BTreeMap::new();
    for (platform_key, o) in raw.platform {
        let platform = parse_platform(source, &platform_key)?;
        if !platforms.contains(&platform) {
            return Err(source
                .error(
                    ErrorKind::Platform,
                    platform_key.span(),
                    format!(
                        "image `{key}` has overrides for `{platform}`, which it does not build"
                    ),
                )
                .with_help(format!("it builds: {}", join(&platforms))));
        }
        let args = sourced_map(&o.args, source);
        check_no_secret_args(&key, &args)?;
        overrides.insert(
            platform,
            PlatformOverride {
                args,
                target: o.target,
                contexts: sourced_map(&o.contexts, source),
            },
        );
    }

    let merge = |own: &TextMap, inherited: &SourcedMap| {
        let mut merged = inherited.clone();
        merged.extend(sourced_map(own, source));
        merged
    };
    let tags = match (&raw.tags, &inh.tags) {
        (Some(own), _) => own.iter().map(|t| Sourced::new(t, source)).collect(),
        (None, Some(inherited)) => inherited.clone(),
        (None, None) => {
            return Err(source
                .error(ErrorKind::Type, image_span, format!("image `{key}` has no tags"))
                .with_help("set `tags` in [defaults] or in the image, e.g. tags = [\"{{ git.short_sha }}\", \"latest\"]"));
        }
    };
    let watch = raw
        .watch
        .iter()
        .map(|w| watch_pattern(source, dir, &key, w))
        .collect::<Result<_, _>>()?;
    Ok(ImageDef {
        file: file.clone(),
        key,
        key_span: key_span.clone(),
        context: from_root(&context_rel),
        dockerfile_source: Source::new(
            dir.join(&dockerfile_rel),
            dockerfile.display().to_string(),
            dockerfile_text,
        ),
        dockerfile,
        repository: raw.repository,
        name: raw.name,
        depends_on: raw.depends_on,
        secrets,
        args,
        labels: merge(&raw.labels, &inh.labels),
        annotations: merge(&raw.annotations, &inh.annotations),
        target: raw.target,
        contexts: merge(&raw.contexts, &inh.contexts),
        platforms,
        platforms_source,
        platforms_span,
        tags,
        push: raw.push.or(inh.push).unwrap_or(true),
        matrix_span: raw.matrix.as_ref().map_or(key_span, Spanned::span),
        matrix: raw.matrix.map(Spanned::into_inner).unwrap_or_default(),
        exclude: raw.exclude,
        include: raw.include,
        overrides,
        watch,
    })
}

/// A `watch` entry as an absolute pattern: relative to the file's directory, and a directory
/// stands for everything below it.
fn watch_pattern(
    source: &Source,
    dir: &Path,
    key: &str,
    written: &Text,
) -> Result<glob::Pattern, ConfigError> {
    let text = written.get_ref();
    let rel = normalize_relative(Path::new(text.trim_end_matches('/')));
    // The directory part is a path, not a pattern: `[` or `*` in it must match themselves.
    let ups = rel
        .components()
        .take_while(|c| matches!(c, Component::ParentDir))
        .count();
    let base = dir.ancestors().nth(ups).unwrap_or(Path::new("/"));
    let rest: PathBuf = rel
        .components()
        .skip(ups)
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let base = glob::Pattern::escape(&base.to_string_lossy());
    let pattern = if rel.is_absolute() {
        rel.to_string_lossy().into_owned()
    } else if rest.as_os_str().is_empty() {
        base
    } else {
        format!("{}/{}", base.trim_end_matches('/'), rest.display())
    };
    glob::Pattern::new(&pattern).map_err(|e| {
        source
            .error(
                ErrorKind::Path,
                written.span(),
                format!("`watch` pattern `{text}` of image `{key}` is not a valid glob: {e}"),
            )
            .with_help("write paths relative to this file, e.g. watch = [\"../../libs/common\", \"../proto/**/*.proto\"]")
    })
}

impl ImageDef {
    /// Every template of the image, for compiling them once up front.
    pub fn templates(&self) -> impl Iterator<Item = &Text> {
        let maps = [&self.args, &self.labels, &self.annotations]
            .into_iter()
            .flat_map(|m| m.values());
        let maps = maps.chain(self.contexts.values());
        let overrides = self
            .overrides
            .values()
            .flat_map(|o| o.args.values().chain(o.contexts.values()));
        let sourced = self.tags.iter().chain(maps).chain(overrides);
        let targets = self.overrides.values().filter_map(|o| o.target.as_ref());
        self.name
            .iter()
            .chain(&self.repository)
            .chain(&self.target)
            .chain(targets)
            .chain(sourced.map(|s| &s.text))
    }
}

/// Where secret `id` comes from. `at` is the file it is written in; `image` is the image's own
/// file and table, for an entry that says neither where nor what.
fn secret_source(
    (source, dir): (&Source, &Path),
    image: (&Source, Range<usize>),
    key: &str,
    id: &str,
    s: &RawSecret,
) -> Result<SecretSource, ConfigError> {
    match (&s.file, &s.env) {
        (Some(file), None) => {
            let written = file.get_ref();
            let path = match written.strip_prefix("~/") {
                Some(rest) => std::env::home_dir().unwrap_or_default().join(rest),
                None => dir.join(written),
            };
            if !path.is_file() {
                return Err(source.error(
                    ErrorKind::Path,
                    file.span(),
                    format!("secret `{id}` of image `{key}`: no file `{written}`"),
                ));
            }
            Ok(SecretSource::File(path))
        }
        (None, Some(env)) => Ok(SecretSource::Env(env.get_ref().clone())),
        (file, env) => {
            let message =
                format!("secret `{id}` of image `{key}` needs exactly one of `file` and `env`");
            let err = match file.as_ref().or(env.as_ref()) {
                Some(t) => source.error(ErrorKind::Type, t.span(), message),
                None => image.0.error(ErrorKind::Type, image.1, message),
            };
            Err(err.with_help("e.g. secrets = { npmrc = { file = \"~/.npmrc\" }, token = { env = \"GH_TOKEN\" } }"))
        }
    }
}

/// Build args end up in the image's history for anyone to read: a value that looks like a
/// credential must travel as a secret instead.
fn check_no_secret_args(key: &str, args: &SourcedMap) -> Result<(), ConfigError> {
    const MARKERS: [&str; 8] = [
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ];
    for (name, value) in args {
        let upper = name.to_ascii_uppercase();
        if MARKERS.iter().any(|m| upper.contains(m)) {
            return Err(value.source
                .error(ErrorKind::Secret, value.text.span(), format!("build arg `{name}` of image `{key}` looks like a secret; build args are stored in the image's history"))
                .with_help(format!(
                    "pass it as a secret: secrets = {{ {id} = {{ env = \"{name}\" }} }}, and in the Dockerfile `RUN --mount=type=secret,id={id} ...` (the value is in /run/secrets/{id})",
                    id = name.to_ascii_lowercase()
                )));
        }
    }
    Ok(())
}

fn list_span(list: &[Text]) -> Option<Range<usize>> {
    Some(list.first()?.span().start..list.last()?.span().end)
}

/// The JSON schema of `multiarch.toml`, generated from the types above.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawConfig)).expect("a schema serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(dir: &str, written: &str) -> glob::Pattern {
        let source = Source::new("m.toml".into(), "m.toml".into(), String::new());
        watch_pattern(
            &source,
            Path::new(dir),
            "api",
            &Spanned::new(0..0, written.into()),
        )
        .unwrap()
    }

    #[test]
    fn watch_patterns_are_relative_to_the_file_and_its_directory_is_literal() {
        let dir = "/w/x[1]/svc";
        assert!(watch(dir, "proto").matches_path(Path::new("/w/x[1]/svc/proto")));
        assert!(!watch(dir, "proto").matches_path(Path::new("/w/x1/svc/proto")));
        assert!(watch(dir, "../../libs/**/*.rs").matches_path(Path::new("/w/libs/a/b.rs")));
        assert!(watch(dir, "..").matches_path(Path::new("/w/x[1]")));
        assert!(watch(dir, "./gen/").matches_path(Path::new("/w/x[1]/svc/gen")));
        assert!(watch(dir, "/etc/mab").matches_path(Path::new("/etc/mab")));
    }
}
