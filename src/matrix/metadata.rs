//! What an instance says about its images besides how to build them: its tags (empty ones
//! dropped), and each build's labels and annotations (per platform when they name `platform`
//! or the platform override has its own).

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::Value;

use super::globals::{Globals, PER_RUN_LABELS};
use crate::config::{Config, ImageDef, Sourced, SourcedMap};
use crate::error::{ConfigError, ErrorKind};
use crate::reference::{ImageRef, Repository, Tag};
use crate::template::{Field, Templates};

/// A build's labels, rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub map: BTreeMap<String, String>,
    /// The labels of `map` that mab filled in from the commit and the tags (revision,
    /// created, version): they change with every commit, so they are not inputs of the image.
    pub per_run: Vec<String>,
}

/// Whether a table's templates may render differently per platform: rendered once per
/// instance when none names `platform` (a plan of 1,000 images renders fewer).
pub(super) fn uses_platform(map: &SourcedMap) -> bool {
    map.values().any(|v| v.text.get_ref().contains("platform"))
}

/// A build's labels or annotations: the image's table (`tables[0]`) and its platform
/// override's (`tables[1]`) merged key by key, or `shared`, the instance's one rendering, when
/// they cannot differ from it.
pub(super) fn per_build<T>(
    shared: &Option<Arc<T>>,
    tables: [Option<&SourcedMap>; 2],
    render: impl Fn(&SourcedMap) -> Result<BTreeMap<String, String>, ConfigError>,
    finish: impl Fn(BTreeMap<String, String>) -> Arc<T>,
) -> Result<Arc<T>, ConfigError> {
    let [image, own] = tables;
    let own = own.filter(|m| !m.is_empty());
    if let (Some(shared), None) = (shared, own) {
        return Ok(shared.clone());
    }
    let mut map = BTreeMap::new();
    for table in [image, own].into_iter().flatten() {
        map.extend(render(table)?);
    }
    Ok(finish(map))
}

/// `map` with the standard labels filling in what the config leaves unset.
pub(super) fn with_oci_labels(
    config: &Config,
    globals: &Globals,
    tags: &[ImageRef],
    mut map: BTreeMap<String, String>,
) -> Arc<Labels> {
    let mut per_run = Vec::new();
    if config.builder.oci_labels {
        let version = tags.first().map(|t| {
            (
                "org.opencontainers.image.version".to_string(),
                t.tag.to_string(),
            )
        });
        for (k, v) in globals
            .oci_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(version)
        {
            if let std::collections::btree_map::Entry::Vacant(e) = map.entry(k) {
                if PER_RUN_LABELS.contains(&e.key().as_str()) {
                    per_run.push(e.key().clone());
                }
                e.insert(v);
            }
        }
    }
    Arc::new(Labels { map, per_run })
}

/// The instance's tags, rendered. As docker/metadata-action does, a tag that renders empty
/// (`{% if matrix.alpine == vars.latest %}latest{% endif %}`) is dropped, and one rendered twice
/// is pushed once; an image that is pushed must be left with a tag. A short tag goes to every
/// repository (the first's, then the next's), a full reference (`ghcr.io/acme/api:1`) exactly
/// where it says, after them.
pub(super) fn tags(
    templates: &Templates,
    def: &ImageDef,
    ctx: &Value,
    name: &str,
    repositories: &[Repository],
) -> Result<Vec<ImageRef>, ConfigError> {
    let tags = rendered_tags(templates, &def.tags, ctx, name, repositories)?;
    if let (true, true, Some(first)) = (tags.is_empty(), def.push, def.tags.first()) {
        let last = def.tags.last().unwrap_or(first);
        let span = if first.source.path() == last.source.path() {
            first.text.span().start..last.text.span().end
        } else {
            first.text.span()
        };
        return Err(first
            .source
            .error(
                ErrorKind::Reference,
                span,
                format!("every tag of image `{name}` renders empty: it would be pushed to no tag"),
            )
            .with_help("add a tag that always renders (e.g. \"{{ git.short_sha }}\"), or set `push = false` for an image that is only built"));
    }
    Ok(tags)
}

/// `list` rendered in `ctx`: empty ones dropped, each short tag in every repository, whole
/// references as written, each reference once.
pub(super) fn rendered_tags(
    templates: &Templates,
    list: &[Sourced],
    ctx: &Value,
    name: &str,
    repositories: &[Repository],
) -> Result<Vec<ImageRef>, ConfigError> {
    let mut short: Vec<Tag> = Vec::with_capacity(list.len());
    let mut full: Vec<ImageRef> = Vec::new();
    for t in list {
        let rendered = templates.render(&t.source, &t.text, ctx, name, Field::Tag)?;
        let rendered = rendered.trim();
        if rendered.is_empty() {
            continue;
        }
        let invalid = |e: crate::reference::ReferenceError| {
            t.source.error(
                ErrorKind::Reference,
                t.text.span(),
                format!("tag of image `{name}` renders to an invalid tag: {e}"),
            )
        };
        // A tag never holds `/`: with one, it is a whole reference.
        if rendered.contains('/') {
            full.push(rendered.parse().map_err(invalid)?);
        } else {
            short.push(rendered.parse().map_err(invalid)?);
        }
    }
    let mut tags: Vec<ImageRef> = Vec::with_capacity(short.len() * repositories.len() + full.len());
    let every = repositories.iter().flat_map(|repository| {
        short.iter().map(|tag| ImageRef {
            repository: repository.clone(),
            tag: tag.clone(),
        })
    });
    for r in every.chain(full) {
        let same =
            |t: &ImageRef| t.tag == r.tag && t.repository.qualified() == r.repository.qualified();
        if !tags.iter().any(same) {
            tags.push(r);
        }
    }
    Ok(tags)
}
