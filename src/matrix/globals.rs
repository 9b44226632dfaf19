//! What every image's templates see alike, worked out once per config: each file's `vars`,
//! `git`, rendered `registry` and the `images` map; the standard labels from the commit; the
//! reproducible builds' timestamp; the templated paths already read.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::context;
use minijinja::value::{Serde, Value};

use crate::config::Config;
use crate::error::{ConfigError, ErrorKind};
use crate::template::{Field, Templates};

use super::scope::{FileScope, Scope};
use super::{paths, qualified};

/// What the templates of one file see, whatever the image.
pub(super) struct FileGlobals {
    pub scope: Arc<FileScope>,
    /// Its `registry`, rendered.
    pub registry: Option<String>,
}

/// Everything templates see, whatever the image.
pub(super) struct Globals {
    /// Per file of the config, in [`Config::files`] order.
    pub files: Vec<FileGlobals>,
    /// `org.opencontainers.image.*` labels every image gets (unless the config sets them).
    pub oci_labels: BTreeMap<String, String>,
    pub source_date_epoch: Option<i64>,
    /// Templated paths already rendered and read.
    pub paths: paths::Resolved,
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
pub(super) const PER_RUN_LABELS: [&str; 3] = [
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

pub(super) fn globals(config: &Config, templates: &Templates) -> Result<Globals, ConfigError> {
    let git = templates.git();
    // Per file: its vars, and its registry rendered with them.
    let mut files = Vec::with_capacity(config.files.len());
    for file in &config.files {
        let scope = Arc::new(FileScope::new(&file.vars, git.clone()));
        let registry = file
            .registry
            .as_ref()
            .map(|r| {
                let ctx = Scope::file(scope.clone()).value();
                templates.render(&r.source, &r.text, &ctx, "(defaults)", Field::Registry)
            })
            .transpose()?;
        files.push((Arc::new(scope.with_registry(registry.as_deref())), registry));
    }
    // `images.NAME.repository` for each image whose repository does not depend on its matrix,
    // whichever file it is in; a qualified name (`services/base:base`) works too.
    let mut images = BTreeMap::new();
    for def in &config.images {
        let (scope, registry) = &files[def.file.index];
        let repository = match (def.repository.first(), registry) {
            (Some(t), _) => {
                let ctx = Scope::file(scope.clone()).named(&def.key).value();
                templates
                    .render(&t.source, &t.text, &ctx, &def.key, Field::Repository)
                    .ok()
            }
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
    let files = files
        .into_iter()
        .map(|(scope, registry)| FileGlobals {
            scope: Arc::new(scope.with_images(images.clone())),
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
