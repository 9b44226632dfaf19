//! One combination of an image rendered into an [`Instance`]: its name, repositories, tags,
//! and per platform its build's args, target, contexts, labels, annotations and paths.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use minijinja::context;
use minijinja::value::{Serde, Value};

use crate::config::{Config, ImageDef, MatrixValue, SourcedMap};
use crate::error::{ConfigError, ErrorKind, Source};
use crate::reference::Repository;
use crate::template::{Field, PlatformValue, Templates};

use super::combinations::matrix_error;
use super::globals::Globals;
use super::metadata::{self, per_build, tags, uses_platform, with_oci_labels};
use super::{BuildSpec, Combination, Instance, NamedContext};

pub(super) fn instantiate(
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
