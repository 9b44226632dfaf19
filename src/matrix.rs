//! Expansion of images into instances: matrix combinations × platforms, less `exclude`, plus
//! `include`; then every template rendered and every name checked against the reference grammar.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use minijinja::context;
use minijinja::value::{Serde, Value};
use rayon::iter::{IndexedParallelIterator, IntoParallelRefIterator};

use crate::config::{Config, File, ImageDef, MatrixValue, SourcedMap, parse_platform};
use crate::error::{ConfigError, ErrorKind, Source, join, suggest};
use crate::git::LazyGit;
use crate::platform::Platform;
use crate::reference::{ImageRef, Repository};
use crate::template::{Field, PlatformValue, Templates};

mod metadata;
mod paths;
pub use metadata::Labels;
use metadata::{per_build, tags, uses_platform, with_oci_labels};

/// One combination of matrix values and the platforms it is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combination {
    pub values: BTreeMap<String, MatrixValue>,
    pub platforms: Vec<Platform>,
}

/// One image to build: an image, or one matrix combination of it, with every template rendered.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Index of its image in [`Config::images`].
    pub image: usize,
    /// The image's key in the config (`[images.KEY]`).
    pub key: String,
    /// Unique across the config; used in build ids, local tags and selection.
    pub name: String,
    /// Where the name comes from (the `name` template or the image's key).
    pub name_span: Range<usize>,
    pub matrix: BTreeMap<String, MatrixValue>,
    pub repository: Repository,
    pub tags: Vec<ImageRef>,
    pub builds: Vec<BuildSpec>,
    /// Platforms whose entry of the list is a registry image (`from`), not built here.
    pub external: Vec<crate::external::External>,
    pub push: bool,
    /// `--timestamp` for reproducible builds (`[builder] reproducible`).
    pub source_date_epoch: Option<i64>,
}

/// What differs between the platforms of one instance.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub platform: Platform,
    /// Its context and Dockerfile; builds of the same ones share them.
    pub paths: Arc<crate::config::BuildPaths>,
    pub args: BTreeMap<String, String>,
    /// Rendered; the planner checks that it names a stage.
    pub target: Option<String>,
    pub contexts: BTreeMap<String, NamedContext>,
    /// Each platform's build is an image of its own, with its own labels; builds whose
    /// labels do not depend on the platform share them.
    pub labels: Arc<Labels>,
    /// Of the build's image manifest; shared like `labels`.
    pub annotations: Arc<BTreeMap<String, String>>,
    /// Where this platform's own image is pushed, beside the list (`tags` of its override).
    pub tags: Vec<ImageRef>,
}

/// A named build context (`contexts = { NAME = ... }`), rendered and checked.
#[derive(Debug, Clone)]
pub enum NamedContext {
    /// `target:IMAGE`: an image of the config, as written (a name or a qualified name), and
    /// where, for errors.
    Image {
        name: String,
        source: Source,
        span: Range<usize>,
    },
    /// Passed to podman as written: `docker-image://REF`, `container-image://REF`, a URL.
    Remote(String),
    /// A directory, relative to the root podman runs in.
    Dir(std::path::PathBuf),
}

impl NamedContext {
    /// What a rendered value names: written in `sourced`, whose file's directory a relative
    /// path is relative to.
    fn parse(
        config: &Config,
        sourced: &crate::config::Sourced,
        value: String,
        image: &str,
        name: &str,
    ) -> Result<Self, ConfigError> {
        let (source, span) = (&sourced.source, sourced.text.span());
        if let Some(target) = value.strip_prefix("target:") {
            if target.is_empty() {
                return Err(source
                    .error(
                        ErrorKind::Type,
                        span,
                        format!("named context `{name}` of image `{image}` names no image"),
                    )
                    .with_help("write `target:IMAGE` with an image of this config"));
            }
            return Ok(Self::Image {
                name: target.to_string(),
                source: source.clone(),
                span,
            });
        }
        const REMOTE: [&str; 5] = [
            "docker-image://",
            "docker://",
            "container-image://",
            "https://",
            "http://",
        ];
        if REMOTE.iter().any(|p| value.starts_with(p)) {
            return Ok(Self::Remote(value));
        }
        let dir = source.path().parent().unwrap_or(std::path::Path::new("."));
        let path = dir.join(&value);
        if !path.is_dir() {
            return Err(source
                .error(
                    ErrorKind::Path,
                    span,
                    format!("named context `{name}` of image `{image}`: directory `{value}` does not exist"),
                )
                .with_help(format!(
                    "a path is relative to the directory of {}; other values are `target:IMAGE`, `docker-image://REF` or a URL",
                    source.name()
                )));
        }
        let what = format!("directory `{value}` of named context `{name}` of image `{image}`");
        let confine = &config.confine;
        confine.check_from(dir, &path, (source, span.clone()), &what)?;
        // mab reads its ignore file to hash it.
        if let Some(ignore) = crate::dockerfile::context_ignore_file(&path) {
            let file = ignore.file_name().unwrap_or_default().to_string_lossy();
            let what = format_args!("`{file}` of the {what}");
            confine.check_from(dir, &ignore, (source, span), what)?;
        }
        let rel = pathdiff::diff_paths(&path, &config.root).unwrap_or(path);
        Ok(Self::Dir(crate::config::normalize_relative(&rel)))
    }
}

fn matrix_error(source: &Source, span: Range<usize>, message: String) -> ConfigError {
    source.error(ErrorKind::Matrix, span, message)
}

/// Checks the keys of an `exclude`/`include` entry; returns its platform, if it names one.
fn entry_platform(
    source: &Source,
    def: &ImageDef,
    entry: &toml::Spanned<BTreeMap<String, MatrixValue>>,
    what: &str,
) -> Result<Option<Platform>, ConfigError> {
    let keys: Vec<&str> = def
        .matrix
        .keys()
        .map(String::as_str)
        .chain(["platform"])
        .collect();
    for k in entry.get_ref().keys() {
        if !keys.contains(&k.as_str()) {
            return Err(source
                .error(
                    ErrorKind::UnknownKey,
                    entry.span(),
                    format!(
                        "{what} entry of image `{}` uses `{k}`, which is not a matrix key",
                        def.key
                    ),
                )
                .with_help(
                    suggest(k, keys.iter().copied())
                        .unwrap_or_else(|| format!("its keys are: {}", keys.join(", "))),
                ));
        }
    }
    match entry.get_ref().get("platform") {
        None => Ok(None),
        Some(MatrixValue::String(s)) => {
            let spanned = toml::Spanned::new(entry.span(), s.clone());
            parse_platform(source, &spanned).map(Some)
        }
        Some(other) => Err(matrix_error(
            source,
            entry.span(),
            format!("`platform` in {what} must be a string, not {other}"),
        )),
    }
}

/// The combinations of one image: the product of its matrix × its platforms, less `exclude`,
/// plus `include`. Combinations left with no platform are dropped.
pub fn combinations(def: &ImageDef) -> Result<Vec<Combination>, ConfigError> {
    let source = &def.file.source;
    let matrix = &def.matrix;
    if matrix.contains_key("platform") {
        return Err(matrix_error(
            source,
            def.matrix_span.clone(),
            format!(
                "image `{}`: `platform` is reserved; list platforms in `platforms`",
                def.key
            ),
        ));
    }
    let excludes = def
        .exclude
        .iter()
        .map(|e| Ok((e, entry_platform(source, def, e, "exclude")?)))
        .collect::<Result<Vec<_>, ConfigError>>()?;

    // The cartesian product, in key order then value order: deterministic.
    let mut product: Vec<BTreeMap<String, MatrixValue>> = vec![BTreeMap::new()];
    for (key, values) in matrix {
        product = product
            .into_iter()
            .flat_map(|partial| {
                values.iter().map(move |v| {
                    let mut next = partial.clone();
                    next.insert(key.clone(), v.clone());
                    next
                })
            })
            .collect();
    }

    let excluded = |values: &BTreeMap<String, MatrixValue>, platform: &Platform| {
        excludes.iter().any(|(entry, p)| {
            p.as_ref().is_none_or(|p| p == platform)
                && entry
                    .get_ref()
                    .iter()
                    .filter(|(k, _)| *k != "platform")
                    .all(|(k, pattern)| values[k].matches(pattern))
        })
    };
    let mut out: Vec<Combination> = product
        .into_iter()
        .map(|values| {
            let platforms = def
                .platforms
                .iter()
                .filter(|p| !excluded(&values, p))
                .cloned()
                .collect();
            Combination { values, platforms }
        })
        .collect();

    for entry in &def.include {
        let platform = entry_platform(source, def, entry, "include")?;
        let mut values = entry.get_ref().clone();
        values.remove("platform");
        if let Some(missing) = matrix.keys().find(|k| !values.contains_key(*k)) {
            return Err(matrix_error(
                source,
                entry.span(),
                format!(
                    "include entry of image `{}` does not set matrix key `{missing}`",
                    def.key
                ),
            )
            .with_help(
                "an include entry gives a value for every matrix key (and optionally `platform`)",
            ));
        }
        let platforms = platform.map_or_else(|| def.platforms.clone(), |p| vec![p]);
        let at = match out.iter().position(|c| c.values == values) {
            Some(i) => i,
            None => {
                out.push(Combination {
                    values,
                    platforms: Vec::new(),
                });
                out.len() - 1
            }
        };
        for p in platforms {
            if out[at].platforms.contains(&p) {
                return Err(matrix_error(
                    source,
                    entry.span(),
                    format!(
                        "include entry of image `{}` adds `{p}`, which the matrix already builds",
                        def.key
                    ),
                ));
            }
            out[at].platforms.push(p);
        }
    }
    out.retain(|c| !c.platforms.is_empty());
    Ok(out)
}

/// What the templates of one file see, whatever the image.
struct FileGlobals {
    base: Value,
    registry: Option<String>,
}

/// Everything templates see, whatever the image.
struct Globals {
    /// Per file of the config, in [`Config::files`] order.
    files: Vec<FileGlobals>,
    /// `org.opencontainers.image.*` labels every image gets (unless the config sets them).
    oci_labels: BTreeMap<String, String>,
    source_date_epoch: Option<i64>,
    /// Templated paths already rendered and read.
    paths: paths::Resolved,
}

/// `SOURCE_DATE_EPOCH` from the environment, else the commit time.
fn source_date_epoch(config: &Config, templates: &Templates) -> Result<Option<i64>, ConfigError> {
    if !config.builder.reproducible {
        return Ok(None);
    }
    if let Some(v) = &config.env.source_date_epoch {
        return v.trim().parse().map(Some).map_err(|_| {
            ConfigError::new(
                ErrorKind::Type,
                format!("SOURCE_DATE_EPOCH must be seconds since the epoch, not `{v}`"),
            )
        });
    }
    match templates.git_info() {
        Some(g) => Ok(Some(g.timestamp)),
        None => Err(ConfigError::new(
            ErrorKind::Type,
            "`[builder] reproducible = true` takes its timestamp from the last commit, but the config is not in a git repository with commits",
        )
        .with_help("commit the project, or set SOURCE_DATE_EPOCH")),
    }
}

/// The standard labels that follow the commit or the tags rather than the image's inputs.
const PER_RUN_LABELS: [&str; 3] = [
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
    "org.opencontainers.image.version",
];

fn oci_labels(config: &Config, templates: &Templates) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if !config.builder.oci_labels {
        return labels;
    }
    if let Some(g) = templates.git_info() {
        labels.insert("org.opencontainers.image.revision".into(), g.sha.clone());
        let created =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(g.timestamp.max(0) as u64);
        labels.insert(
            "org.opencontainers.image.created".into(),
            humantime::format_rfc3339_seconds(created).to_string(),
        );
        if let Some(remote) = &g.remote {
            labels.insert("org.opencontainers.image.source".into(), remote.clone());
        }
    }
    labels
}

fn globals(config: &Config, templates: &Templates) -> Result<Globals, ConfigError> {
    let git = templates.git();
    // Per file: its vars, rendered once, and its registry rendered with them.
    let mut registries = Vec::with_capacity(config.files.len());
    let mut contexts = Vec::with_capacity(config.files.len());
    for file in &config.files {
        let vars = Value::from(Serde(&file.vars));
        let plain =
            context! { vars => vars.clone(), git => git.clone(), registry => Value::UNDEFINED };
        let registry = file
            .registry
            .as_ref()
            .map(|r| templates.render(&r.source, &r.text, &plain, "(defaults)", Field::Registry))
            .transpose()?;
        contexts.push(context! { vars => vars, git => git.clone(), registry => registry.clone() });
        registries.push(registry);
    }
    // `images.NAME.repository` for each image whose repository does not depend on its matrix,
    // whichever file it is in; a qualified name (`services/base:base`) works too.
    let mut images = BTreeMap::new();
    for def in &config.images {
        let ctx = context! { image => context! { name => def.key.clone() }, ..contexts[def.file.index].clone() };
        let repository = match (def.repository.first(), &registries[def.file.index]) {
            (Some(t), _) => templates
                .render(&t.source, &t.text, &ctx, &def.key, Field::Repository)
                .ok(),
            (None, Some(r)) => Some(format!("{r}/{}", def.key)),
            (None, None) => None,
        };
        if let Some(repository) = repository {
            let value = context! { repository };
            if config.files.len() > 1 {
                images.insert(qualified(&def.file, &def.key), value.clone());
            }
            images.insert(def.key.clone(), value);
        }
    }
    let images = Value::from(Serde(&images));
    let files = contexts
        .into_iter()
        .zip(registries)
        .map(|(ctx, registry)| FileGlobals {
            base: context! { images => images.clone(), ..ctx },
            registry,
        })
        .collect();
    Ok(Globals {
        files,
        oci_labels: oci_labels(config, templates),
        source_date_epoch: source_date_epoch(config, templates)?,
        paths: paths::Resolved::default(),
    })
}

/// `dir:name`, the name of an image or instance qualified by its file's directory.
pub fn qualified(file: &File, name: &str) -> String {
    format!("{}:{name}", file.rel_dir.display())
}

/// Expands and renders every image of the config into instances, in config order (images by
/// name, then combinations in matrix order). Names and references are unique when this returns.
pub fn expand(config: &Config) -> Result<Vec<Instance>, ConfigError> {
    let texts = config
        .files
        .iter()
        .filter_map(|f| f.registry.as_ref().map(|r| &r.text))
        .chain(config.images.iter().flat_map(ImageDef::templates));
    let git = Arc::new(LazyGit::new(config.root.clone()));
    let templates = Templates::new(git, texts.map(|t| t.get_ref().as_str()));
    let globals = globals(config, &templates)?;
    let per_image = crate::par::try_map(config.images.par_iter().enumerate(), |(index, def)| {
        combinations(def)?
            .into_iter()
            .map(|c| instantiate(config, &templates, &globals, index, def, c))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let instances: Vec<Instance> = per_image.into_iter().flatten().collect();
    check_unique(config, &instances)?;
    Ok(instances)
}

fn instantiate(
    config: &Config,
    templates: &Templates,
    globals: &Globals,
    index: usize,
    def: &ImageDef,
    combination: Combination,
) -> Result<Instance, ConfigError> {
    let source = &def.file.source;
    let file_globals = &globals.files[def.file.index];
    let key = def.key.as_str();
    let matrix = Value::from(Serde(&combination.values));
    let ctx = context! { matrix => matrix.clone(), ..file_globals.base.clone() };

    let (name, name_span) = match &def.name {
        Some(t) => (
            templates.render(source, t, &ctx, key, Field::Name)?,
            t.span(),
        ),
        None => (
            default_name(source, def, &combination.values)?,
            def.key_span.clone(),
        ),
    };
    check_name(source, &name, name_span.clone(), key)?;

    let ictx = context! { image => context! { name => name.clone() }, ..ctx.clone() };
    let mut repositories: Vec<Repository> = Vec::with_capacity(def.repository.len().max(1));
    for t in &def.repository {
        let text = templates.render(&t.source, &t.text, &ictx, key, Field::Repository)?;
        let repository = parse_repository(key, &text, (&t.source, t.text.span()))?;
        if !repositories.contains(&repository) {
            repositories.push(repository);
        }
    }
    if repositories.is_empty() {
        let (Some(text), Some(r)) = (&file_globals.registry, &def.file.registry) else {
            return Err(source
                .error(ErrorKind::Type, def.key_span.clone(), format!("image `{key}` has no repository"))
                .with_help("set `registry` in [defaults] (the repository is then `<registry>/<name>`) or `repository` in the image"));
        };
        let text = format!("{text}/{key}");
        repositories.push(parse_repository(key, &text, (&r.source, r.text.span()))?);
    }
    let repository = repositories[0].clone();

    let image = context! { name => name.clone(), key => key, repository => repository.as_str() };
    let ctx = context! { image => image, ..ctx };

    let tags = tags(templates, def, &ctx, &name, &repositories)?;

    let render_map = |map: &SourcedMap, ctx: &Value, field: &dyn Fn(&str) -> Field<'_>| {
        map.iter()
            .map(|(k, v)| {
                let rendered = templates.render(&v.source, &v.text, ctx, &name, field(k))?;
                Ok((k.clone(), rendered))
            })
            .collect::<Result<BTreeMap<_, _>, ConfigError>>()
    };
    let with_oci = |map| with_oci_labels(config, globals, &tags, map);
    let shared_labels = (!uses_platform(&def.labels))
        .then(|| render_map(&def.labels, &ctx, &|k| Field::Label(k)).map(with_oci))
        .transpose()?;
    let shared_annotations = (!uses_platform(&def.annotations))
        .then(|| render_map(&def.annotations, &ctx, &|k| Field::Annotation(k)).map(Arc::new))
        .transpose()?;

    let mut builds = Vec::with_capacity(combination.platforms.len());
    let mut external = Vec::new();
    for platform in combination.platforms {
        if let Some((from, at)) = def.overrides.get(&platform).and_then(|o| o.from.as_ref()) {
            external.push(crate::external::External {
                platform,
                from: from.clone(),
                at: {
                    let (line, col) = at.source.line_col(at.text.span().start);
                    format!("{}:{line}:{col}", at.source.name())
                },
            });
            continue;
        }
        let pctx = context! { platform => Value::from_object(PlatformValue(platform.clone())), ..ctx.clone() };
        let mut args = render_map(&def.args, &pctx, &|k| Field::Arg(k))?;
        let over = def.overrides.get(&platform);
        if let Some(o) = over {
            args.extend(render_map(&o.args, &pctx, &|k| Field::Arg(k))?);
        }
        let target = over
            .and_then(|o| o.target.as_ref())
            .or(def.target.as_ref())
            .map(|t| templates.render(&t.source, &t.text, &pctx, &name, Field::Target))
            .transpose()?;
        let mut contexts = BTreeMap::new();
        let own = over.into_iter().flat_map(|o| &o.contexts);
        for (k, v) in def.contexts.iter().chain(own) {
            let rendered = templates.render(&v.source, &v.text, &pctx, &name, Field::Context(k))?;
            contexts.insert(
                k.clone(),
                NamedContext::parse(config, v, rendered, &name, k)?,
            );
        }
        let labels = per_build(
            &shared_labels,
            [Some(&def.labels), over.map(|o| &o.labels)],
            |m| render_map(m, &pctx, &|k| Field::Label(k)),
            with_oci,
        )?;
        let annotations = per_build(
            &shared_annotations,
            [Some(&def.annotations), over.map(|o| &o.annotations)],
            |m| render_map(m, &pctx, &|k| Field::Annotation(k)),
            Arc::new,
        )?;
        let paths = globals
            .paths
            .of(config, templates, (def, &name), &platform, &pctx)?;
        let own_tags = match over {
            Some(o) if def.push && !o.tags.is_empty() => {
                metadata::rendered_tags(templates, &o.tags, &pctx, &name, &repositories)?
            }
            _ => Vec::new(),
        };
        builds.push(BuildSpec {
            paths,
            platform,
            args,
            target,
            contexts,
            labels,
            annotations,
            tags: own_tags,
        });
    }

    Ok(Instance {
        image: index,
        key: key.to_string(),
        name,
        name_span,
        matrix: combination.values,
        repository,
        tags,
        builds,
        external,
        push: def.push,
        source_date_epoch: globals.source_date_epoch,
    })
}

/// A rendered `repository`, checked; `at` is where it is written.
fn parse_repository(
    key: &str,
    text: &str,
    (source, span): (&Source, Range<usize>),
) -> Result<Repository, ConfigError> {
    text.parse()
        .map_err(|e| source.error(ErrorKind::Reference, span, format!("image `{key}`: {e}")))
}

/// `<key>-<value>-...` with each value's short name, in matrix key order.
fn default_name(
    source: &Source,
    def: &ImageDef,
    values: &BTreeMap<String, MatrixValue>,
) -> Result<String, ConfigError> {
    let mut name = def.key.clone();
    for (k, v) in values {
        let Some(short) = v.short_name() else {
            return Err(matrix_error(source, def.matrix_span.clone(), format!("image `{}`: matrix value {v} of `{k}` has no `name` field to name the instance by", def.key))
                .with_help("give table values a `name` field, or set the image's `name` template"));
        };
        name.push('-');
        name.push_str(short);
    }
    Ok(name)
}

/// Instance names become path components of local image names and file names.
fn check_name(
    source: &Source,
    name: &str,
    span: Range<usize>,
    key: &str,
) -> Result<(), ConfigError> {
    let valid = !name.contains('/') && format!("localhost/{name}").parse::<Repository>().is_ok();
    if valid {
        return Ok(());
    }
    Err(source
        .error(ErrorKind::Reference, span, format!("image `{key}`: instance name `{name}` is not a valid name"))
        .with_help("names are lowercase letters and digits, separated by single `.`, `_` or `-`; set `name` to a template that renders one"))
}

fn check_unique(config: &Config, instances: &[Instance]) -> Result<(), ConfigError> {
    let source = |inst: &Instance| &config.images[inst.image].file.source;
    let mut names: HashMap<&str, &Instance> = HashMap::with_capacity(instances.len());
    let mut refs: HashMap<String, Pusher> = HashMap::new();
    for inst in instances {
        if let Some(first) = names.insert(&inst.name, inst) {
            return Err(ConfigError::new(
                ErrorKind::Duplicate,
                format!("two image instances are named `{}`", inst.name),
            )
            .at(
                source(first),
                first.name_span.clone(),
                Some(format!("`{}` from image `{}`", first.name, first.key)),
            )
            .at(
                source(inst),
                inst.name_span.clone(),
                Some(format!("`{}` again, from image `{}`", inst.name, inst.key)),
            )
            .with_help("give matrix images a `name` template that uses every matrix key"));
        }
        let own = inst
            .builds
            .iter()
            .flat_map(|b| b.tags.iter().map(move |r| (r, Some(&b.platform))));
        for (r, platform) in inst.tags.iter().map(|r| (r, None)).chain(own) {
            if let Some(first) = refs.insert(r.qualified(), (inst, platform)) {
                return Err(pushed_twice(config, r, first, (inst, platform)));
            }
        }
    }
    Ok(())
}

/// What pushes one reference: an instance's list, or one platform's image of it.
type Pusher<'a> = (&'a Instance, Option<&'a Platform>);

/// The error for `r` pushed by both `a` and `b`: at their names, or at the two platforms'
/// `tags` when one instance pushes it twice.
fn pushed_twice(config: &Config, r: &ImageRef, a: Pusher, b: Pusher) -> ConfigError {
    let def = |inst: &Instance| &config.images[inst.image];
    let what = |(inst, platform): Pusher| match platform {
        Some(p) => format!("the {p} image of `{}`", inst.name),
        None => format!("`{}`", inst.name),
    };
    let mut err = ConfigError::new(
        ErrorKind::Duplicate,
        format!("`{r}` is pushed by both {} and {}", what(a), what(b)),
    );
    // A platform's tags, where they are written.
    let own_tags = |(inst, platform): Pusher| {
        let tags = &def(inst).overrides.get(platform?)?.tags;
        let (first, last) = (tags.first()?, tags.last()?);
        let span = if first.source.path() == last.source.path() {
            first.text.span().start..last.text.span().end
        } else {
            first.text.span()
        };
        Some((first.source.clone(), span))
    };
    for pusher in [a, b] {
        let label = Some(what(pusher));
        err = match own_tags(pusher) {
            Some((source, span)) => err.at(&source, span, label),
            None => err.at(
                &def(pusher.0).file.source,
                pusher.0.name_span.clone(),
                label,
            ),
        };
    }
    err.with_help(if a.1.is_none() && b.1.is_none() {
        "one tag names one manifest list: make the tags differ, e.g. with a matrix value"
    } else {
        "one reference names one image: make the tags differ, e.g. with `{{ platform.arch }}` in a platform's tags"
    })
}

/// The platforms of an instance, for messages.
pub fn platforms_of(inst: &Instance) -> String {
    join(inst.builds.iter().map(|b| &b.platform))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(toml_text: &str) -> ImageDef {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let path = dir.path().join("multiarch.toml");
        std::fs::write(&path, toml_text).unwrap();
        let config = crate::config::load(&path, &[], &Default::default()).unwrap();
        config.images.into_iter().next().unwrap()
    }

    const HEAD: &str = "[defaults]\nregistry = \"r.io/a\"\ntags = [\"t\"]\nplatforms = [\"linux/amd64\", \"linux/arm64\", \"linux/arm/v7\"]\n[images.api]\n";

    fn count(c: &[Combination]) -> usize {
        c.iter().map(|c| c.platforms.len()).sum()
    }

    #[test]
    fn product_counts() {
        let d = def(&format!(
            "{HEAD}matrix = {{ go = [\"1.22\", \"1.23\"], os = [\"alpine\", \"debian\", \"ubi\"] }}\n"
        ));
        let c = combinations(&d).unwrap();
        assert_eq!(c.len(), 6);
        assert_eq!(count(&c), 18);
        assert_eq!(c[0].values["go"], MatrixValue::String("1.22".into()));
        assert_eq!(c[0].values["os"], MatrixValue::String("alpine".into()));
        assert_eq!(c[1].values["os"], MatrixValue::String("debian".into()));
    }

    #[test]
    fn no_matrix_is_one_instance_and_empty_list_is_none() {
        let d = def(HEAD);
        assert_eq!(combinations(&d).unwrap().len(), 1);
        let d = def(&format!("{HEAD}matrix = {{ go = [] }}\n"));
        assert!(combinations(&d).unwrap().is_empty());
    }

    #[test]
    fn exclude_and_include() {
        let d = def(&format!(
            "{HEAD}matrix = {{ go = [\"1.22\", \"1.23\"] }}\n\
             exclude = [{{ go = \"1.22\", platform = \"linux/arm/v7\" }}, {{ go = \"1.23\", platform = \"armhf\" }}]\n\
             include = [{{ go = \"1.24\" }}, {{ go = \"1.22\", platform = \"linux/s390x\" }}]\n"
        ));
        let c = combinations(&d).unwrap();
        // 2 × 3 − 2 excluded + 3 (1.24 on all) + 1 (s390x)
        assert_eq!(count(&c), 6 - 2 + 3 + 1);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0].platforms
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["linux/amd64", "linux/arm64", "linux/s390x"]
        );
    }

    #[test]
    fn exclude_whole_combination_and_table_values() {
        let d = def(&format!(
            "{HEAD}matrix = {{ base = [{{ name = \"alpine\", image = \"alpine:3\" }}, {{ name = \"deb\", image = \"debian:12\" }}] }}\n\
             exclude = [{{ base = \"deb\" }}]\n"
        ));
        let c = combinations(&d).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].values["base"].short_name(), Some("alpine"));
    }

    #[test]
    fn bad_entries() {
        let d = def(&format!(
            "{HEAD}matrix = {{ go = [\"1\"] }}\nexclude = [{{ og = \"1\" }}]\n"
        ));
        let e = combinations(&d).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownKey);
        let d = def(&format!(
            "{HEAD}matrix = {{ go = [\"1\"] }}\ninclude = [{{ go = \"1\" }}]\n"
        ));
        assert_eq!(combinations(&d).unwrap_err().kind(), ErrorKind::Matrix);
        let d = def(&format!(
            "{HEAD}matrix = {{ go = [\"1\"], x = [\"a\"] }}\ninclude = [{{ go = \"2\" }}]\n"
        ));
        assert!(
            combinations(&d)
                .unwrap_err()
                .message()
                .contains("does not set matrix key `x`")
        );
    }
}
