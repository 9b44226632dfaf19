//! Expansion of images into instances: matrix combinations × platforms, less `exclude`, plus
//! `include`; then every template rendered and every name checked against the reference grammar.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use rayon::iter::{IndexedParallelIterator, IntoParallelRefIterator};

use crate::config::{Config, File, ImageDef, MatrixValue};
use crate::error::{ConfigError, join};
use crate::git::LazyGit;
use crate::platform::Platform;
use crate::reference::{ImageRef, Repository};
use crate::template::Templates;

mod combinations;
mod globals;
mod instantiate;
mod metadata;
mod named_context;
mod paths;
mod scope;
mod unique;
pub use combinations::combinations;
pub use metadata::Labels;
pub use named_context::NamedContext;

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
    let globals = globals::globals(config, &templates)?;
    let per_image = crate::par::try_map(config.images.par_iter().enumerate(), |(index, def)| {
        combinations(def)?
            .into_iter()
            .map(|c| instantiate::instantiate(config, &templates, &globals, index, def, c))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let instances: Vec<Instance> = per_image.into_iter().flatten().collect();
    unique::check_unique(config, &instances)?;
    Ok(instances)
}

/// The platforms of an instance, for messages.
pub fn platforms_of(inst: &Instance) -> String {
    join(inst.builds.iter().map(|b| &b.platform))
}
