//! `multiarch.toml`: the serde types that read it (and from which the JSON schema is generated),
//! and [`load`], which turns a file into a validated [`Config`]: defaults merged, platforms
//! parsed, paths checked. Templates stay unrendered here; `matrix` renders them.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

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
    /// Build stage to stop at (`--target`).
    #[schemars(with = "Option<String>")]
    pub target: Option<Text>,
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
    /// Build stage to stop at on this platform.
    #[schemars(with = "Option<String>")]
    pub target: Option<Text>,
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

/// A config, loaded and checked: every image with defaults applied, platforms parsed and paths
/// found. Templates are still unrendered.
#[derive(Debug)]
pub struct Config {
    pub source: Source,
    /// The directory that holds the file: paths in it are relative to this.
    pub dir: PathBuf,
    pub vars: BTreeMap<String, Scalar>,
    pub registry: Option<Text>,
    /// Sorted by name.
    pub images: Vec<ImageDef>,
    pub builder: RawBuilder,
    pub registries: BTreeMap<String, RawRegistry>,
}

impl Config {
    /// Whether pushes to and reads from `registry` (`host[:port]`) skip TLS verification.
    pub fn insecure(&self, registry: &str) -> bool {
        self.registries.get(registry).is_some_and(|r| r.insecure)
    }
}

/// One `[images.NAME]` table with `[defaults]` merged in.
#[derive(Debug)]
pub struct ImageDef {
    pub key: String,
    pub key_span: Range<usize>,
    /// Relative to the config's directory.
    pub context: PathBuf,
    /// Relative to the config's directory.
    pub dockerfile: PathBuf,
    /// The Dockerfile's text.
    pub dockerfile_source: Source,
    pub repository: Option<Text>,
    pub name: Option<Text>,
    pub depends_on: Vec<Text>,
    pub args: TextMap,
    pub labels: TextMap,
    pub annotations: TextMap,
    pub target: Option<Text>,
    pub platforms: Vec<Platform>,
    /// Where the platform list is written, for errors about a platform.
    pub platforms_span: Range<usize>,
    pub tags: Vec<Text>,
    pub push: bool,
    pub matrix: BTreeMap<String, Vec<MatrixValue>>,
    /// Where the matrix is written (the image's key when it has none).
    pub matrix_span: Range<usize>,
    pub exclude: Vec<Spanned<BTreeMap<String, MatrixValue>>>,
    pub include: Vec<Spanned<BTreeMap<String, MatrixValue>>>,
    pub overrides: BTreeMap<Platform, RawPlatformOverride>,
    pub secrets: BTreeMap<String, SecretSource>,
}

/// Finds `multiarch.toml` in `start` or the nearest parent that has one, as cargo finds Cargo.toml.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|p| p.is_file())
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

/// Reads, parses and checks a config file. `vars` (from `--var`) override the file's `[vars]`.
pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Config, ConfigError> {
    let path = std::path::absolute(path).map_err(|e| {
        ConfigError::new(
            ErrorKind::Io,
            format!("cannot resolve {}: {e}", path.display()),
        )
    })?;
    let source = Source::read(&path, display_path(&path))?;
    let raw: RawConfig = toml::from_str(source.text()).map_err(|e| toml_error(&source, &e))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    resolve(source, dir, raw, overrides)
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

fn resolve(
    source: Source,
    dir: PathBuf,
    raw: RawConfig,
    overrides: &[(String, String)],
) -> Result<Config, ConfigError> {
    let mut vars = raw.vars;
    for (k, v) in overrides {
        vars.insert(k.clone(), Scalar::String(v.clone()));
    }
    let defaults = raw.defaults;
    let default_platforms = defaults
        .platforms
        .as_ref()
        .map(|p| parse_platforms(&source, p))
        .transpose()?;
    // Each image's paths are checked on disk: in parallel, for monorepos of many images.
    let raw_images: Vec<_> = raw.images.into_iter().collect();
    let images = crate::par::try_map(raw_images, |(key, image)| {
        let key_span = key.span();
        let image_span = image.span();
        resolve_image(
            &source,
            &dir,
            &defaults,
            default_platforms.as_deref(),
            key.into_inner(),
            key_span,
            image_span,
            image.into_inner(),
        )
    })?;
    Ok(Config {
        source,
        dir,
        vars,
        registry: defaults.registry,
        images,
        builder: raw.builder,
        registries: raw.registries,
    })
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
fn normalize_relative(path: &Path) -> PathBuf {
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

#[allow(clippy::too_many_arguments)]
fn resolve_image(
    source: &Source,
    dir: &Path,
    defaults: &RawDefaults,
    default_platforms: Option<&[(Platform, Range<usize>)]>,
    key: String,
    key_span: Range<usize>,
    image_span: Range<usize>,
    raw: RawImage,
) -> Result<ImageDef, ConfigError> {
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
    let name = dockerfile_rel.display().to_string();
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

    let mut secrets = BTreeMap::new();
    for (id, secret) in defaults.secrets.iter().chain(&raw.secrets) {
        secrets.insert(
            id.clone(),
            secret_source(source, dir, &key, id, secret, image_span.clone())?,
        );
    }
    check_no_secret_args(source, &key, raw.args.iter().chain(&defaults.args))?;

    let (platforms, platforms_span) = match (&raw.platforms, default_platforms) {
        (Some(list), _) => {
            let parsed = parse_platforms(source, list)?;
            let span = list_span(list).unwrap_or_else(|| key_span.clone());
            (parsed.into_iter().map(|(p, _)| p).collect::<Vec<_>>(), span)
        }
        (None, Some(list)) => {
            let span = defaults
                .platforms
                .as_deref()
                .and_then(list_span)
                .unwrap_or_else(|| key_span.clone());
            (list.iter().map(|(p, _)| p.clone()).collect(), span)
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
        overrides.insert(platform, o);
    }

    let merge = |own: TextMap, default: &TextMap| {
        let mut merged = default.clone();
        merged.extend(own);
        merged
    };
    let Some(tags) = raw.tags.or_else(|| defaults.tags.clone()) else {
        return Err(source
            .error(ErrorKind::Type, image_span, format!("image `{key}` has no tags"))
            .with_help("set `tags` in [defaults] or in the image, e.g. tags = [\"{{ git.short_sha }}\", \"latest\"]"));
    };
    Ok(ImageDef {
        key,
        key_span: key_span.clone(),
        context: context_rel,
        dockerfile_source: Source::new(dir.join(&dockerfile_rel), name, dockerfile_text),
        dockerfile: dockerfile_rel,
        repository: raw.repository,
        name: raw.name,
        depends_on: raw.depends_on,
        secrets,
        args: merge(raw.args, &defaults.args),
        labels: merge(raw.labels, &defaults.labels),
        annotations: merge(raw.annotations, &defaults.annotations),
        target: raw.target,
        platforms,
        platforms_span,
        tags,
        push: raw.push.or(defaults.push).unwrap_or(true),
        matrix_span: raw.matrix.as_ref().map_or(key_span.clone(), Spanned::span),
        matrix: raw.matrix.map(Spanned::into_inner).unwrap_or_default(),
        exclude: raw.exclude,
        include: raw.include,
        overrides,
    })
}

impl ImageDef {
    /// Every template of the image, for compiling them once up front.
    pub fn templates(&self) -> impl Iterator<Item = &Text> {
        let maps = [&self.args, &self.labels, &self.annotations]
            .into_iter()
            .flat_map(|m| m.values());
        let overrides = self.overrides.values().flat_map(|o| o.args.values());
        self.name
            .iter()
            .chain(&self.repository)
            .chain(&self.tags)
            .chain(maps)
            .chain(overrides)
    }
}

fn secret_source(
    source: &Source,
    dir: &Path,
    key: &str,
    id: &str,
    s: &RawSecret,
    image_span: Range<usize>,
) -> Result<SecretSource, ConfigError> {
    match (&s.file, &s.env) {
        (Some(file), None) => {
            let written = file.get_ref();
            let path = match written.strip_prefix("~/") {
                Some(rest) => std::env::home_dir().unwrap_or_default().join(rest),
                None => dir.join(written),
            };
            if !path.is_file() {
                return Err(source.error(ErrorKind::Path, file.span(), format!("secret `{id}` of image `{key}`: no file `{written}`")));
            }
            Ok(SecretSource::File(path))
        }
        (None, Some(env)) => Ok(SecretSource::Env(env.get_ref().clone())),
        _ => Err(source
            .error(ErrorKind::Type, image_span, format!("secret `{id}` of image `{key}` needs exactly one of `file` and `env`"))
            .with_help("e.g. secrets = { npmrc = { file = \"~/.npmrc\" }, token = { env = \"GH_TOKEN\" } }")),
    }
}

/// Build args end up in the image's history for anyone to read: a value that looks like a
/// credential must travel as a secret instead.
fn check_no_secret_args<'a>(
    source: &Source,
    key: &str,
    args: impl Iterator<Item = (&'a String, &'a Text)>,
) -> Result<(), ConfigError> {
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
            return Err(source
                .error(ErrorKind::Secret, value.span(), format!("build arg `{name}` of image `{key}` looks like a secret; build args are stored in the image's history"))
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
