//! One combination of an image rendered into an [`Instance`]: its name, repositories, tags,
//! and per platform its build's args, target, contexts, labels, annotations and paths.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use minijinja::value::Value;

use crate::config::{Config, ImageDef, MatrixValue, SourcedMap};
use crate::error::{ConfigError, ErrorKind, Source};
use crate::platform::Platform;
use crate::reference::{ImageRef, Repository};
use crate::template::{Field, Templates};

use super::combinations::matrix_error;
use super::globals::Globals;
use super::metadata::{self, per_build, tags, uses_platform, with_oci_labels};
use super::scope::Scope;
use super::{BuildSpec, Combination, Instance, Labels, NamedContext};

pub(super) fn instantiate(
    config: &Config,
    templates: &Templates,
    globals: &Globals,
    index: usize,
    def: &ImageDef,
    combination: Combination,
) -> Result<Instance, ConfigError> {
    let source = &def.file.source;
    let file = &globals.files[def.file.index];
    let key = def.key.as_str();
    let matrix = Scope::file(file.scope.clone()).matrix(&combination.values);

    let (name, name_span) = match &def.name {
        Some(t) => {
            let ctx = matrix.clone().value();
            (
                templates.render(source, t, &ctx, key, Field::Name)?,
                t.span(),
            )
        }
        None => (
            default_name(source, def, &combination.values)?,
            def.key_span.clone(),
        ),
    };
    check_name(source, &name, name_span.clone(), key)?;

    let named = matrix.named(&name).value();
    let repositories = repositories(templates, def, file.registry.as_deref(), &named)?;
    let repository = repositories[0].clone();
    let scope = matrix.image(&name, key, &repository);
    let tags = tags(templates, def, &scope.clone().value(), &name, &repositories)?;
    let image = Image::new(
        (config, templates, globals),
        def,
        &name,
        &repositories,
        &tags,
        scope,
    )?;

    let mut builds = Vec::with_capacity(combination.platforms.len());
    let mut external = Vec::new();
    for platform in combination.platforms {
        match def.overrides.get(&platform).and_then(|o| o.from.as_ref()) {
            Some((from, at)) => external.push(crate::external::External {
                platform,
                from: from.clone(),
                at: {
                    let (line, col) = at.source.line_col(at.text.span().start);
                    format!("{}:{line}:{col}", at.source.name())
                },
            }),
            None => builds.push(image.build(platform)?),
        }
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

/// The image's repositories, each once: its `repository` templates rendered in `named` (the
/// image layer with its name only), else `<registry>/<key>`.
fn repositories(
    templates: &Templates,
    def: &ImageDef,
    registry: Option<&str>,
    named: &Value,
) -> Result<Vec<Repository>, ConfigError> {
    let key = def.key.as_str();
    let mut repositories: Vec<Repository> = Vec::with_capacity(def.repository.len().max(1));
    for t in &def.repository {
        let text = templates.render(&t.source, &t.text, named, key, Field::Repository)?;
        let repository = parse_repository(key, &text, (&t.source, t.text.span()))?;
        if !repositories.contains(&repository) {
            repositories.push(repository);
        }
    }
    if repositories.is_empty() {
        let (Some(text), Some(r)) = (registry, &def.file.registry) else {
            return Err(def.file.source
                .error(ErrorKind::Type, def.key_span.clone(), format!("image `{key}` has no repository"))
                .with_help("set `registry` in [defaults] (the repository is then `<registry>/<name>`) or `repository` in the image"));
        };
        let text = format!("{text}/{key}");
        repositories.push(parse_repository(key, &text, (&r.source, r.text.span()))?);
    }
    Ok(repositories)
}

/// One instance, named and tagged: what its builds share, to render each platform's.
struct Image<'a> {
    config: &'a Config,
    templates: &'a Templates,
    globals: &'a Globals,
    def: &'a ImageDef,
    name: &'a str,
    repositories: &'a [Repository],
    tags: &'a [ImageRef],
    /// Up to the image layer.
    scope: Scope,
    /// Labels and annotations rendered once for every build, when no template of theirs
    /// names `platform`.
    labels: Option<Arc<Labels>>,
    annotations: Option<Arc<BTreeMap<String, String>>>,
}

impl<'a> Image<'a> {
    fn new(
        (config, templates, globals): (&'a Config, &'a Templates, &'a Globals),
        def: &'a ImageDef,
        name: &'a str,
        repositories: &'a [Repository],
        tags: &'a [ImageRef],
        scope: Scope,
    ) -> Result<Self, ConfigError> {
        let mut image = Self {
            config,
            templates,
            globals,
            def,
            name,
            repositories,
            tags,
            scope,
            labels: None,
            annotations: None,
        };
        let ctx = image.scope.clone().value();
        if !uses_platform(&def.labels) {
            let labels = image.render_map(&def.labels, &ctx, |k| Field::Label(k))?;
            image.labels = Some(image.with_oci(labels));
        }
        if !uses_platform(&def.annotations) {
            let annotations = image.render_map(&def.annotations, &ctx, |k| Field::Annotation(k))?;
            image.annotations = Some(Arc::new(annotations));
        }
        Ok(image)
    }

    /// Each template of `map` rendered in `ctx`.
    fn render_map(
        &self,
        map: &SourcedMap,
        ctx: &Value,
        field: fn(&str) -> Field<'_>,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        map.iter()
            .map(|(k, v)| {
                let rendered =
                    self.templates
                        .render(&v.source, &v.text, ctx, self.name, field(k))?;
                Ok((k.clone(), rendered))
            })
            .collect()
    }

    fn with_oci(&self, map: BTreeMap<String, String>) -> Arc<Labels> {
        with_oci_labels(self.config, self.globals, self.tags, map)
    }

    /// The build of `platform`, its templates rendered with the platform layer.
    fn build(&self, platform: Platform) -> Result<BuildSpec, ConfigError> {
        let (config, templates, def, name) = (self.config, self.templates, self.def, self.name);
        let ctx = self.scope.platform(&platform).value();
        let over = def.overrides.get(&platform);
        let mut args = self.render_map(&def.args, &ctx, |k| Field::Arg(k))?;
        if let Some(o) = over {
            args.extend(self.render_map(&o.args, &ctx, |k| Field::Arg(k))?);
        }
        let target = over
            .and_then(|o| o.target.as_ref())
            .or(def.target.as_ref())
            .map(|t| templates.render(&t.source, &t.text, &ctx, name, Field::Target))
            .transpose()?;
        let mut contexts = BTreeMap::new();
        let own = over.into_iter().flat_map(|o| &o.contexts);
        for (k, v) in def.contexts.iter().chain(own) {
            let rendered = templates.render(&v.source, &v.text, &ctx, name, Field::Context(k))?;
            contexts.insert(
                k.clone(),
                NamedContext::parse(config, v, rendered, name, k)?,
            );
        }
        let labels = per_build(
            &self.labels,
            [Some(&def.labels), over.map(|o| &o.labels)],
            |m| self.render_map(m, &ctx, |k| Field::Label(k)),
            |m| self.with_oci(m),
        )?;
        let annotations = per_build(
            &self.annotations,
            [Some(&def.annotations), over.map(|o| &o.annotations)],
            |m| self.render_map(m, &ctx, |k| Field::Annotation(k)),
            Arc::new,
        )?;
        let paths = self
            .globals
            .paths
            .of(config, templates, (def, name), &platform, &ctx)?;
        let tags = match over {
            Some(o) if def.push && !o.tags.is_empty() => {
                metadata::rendered_tags(templates, &o.tags, &ctx, name, self.repositories)?
            }
            _ => Vec::new(),
        };
        Ok(BuildSpec {
            paths,
            platform,
            args,
            target,
            contexts,
            labels,
            annotations,
            tags,
        })
    }
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
