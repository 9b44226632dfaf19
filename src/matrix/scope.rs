//! What a template sees, by where it is written: one [`Scope`] of four layers, each adding
//! what is known once the templates before it are rendered.
//!
//! | layer    | adds                                   | seen by                                   |
//! |----------|----------------------------------------|-------------------------------------------|
//! | file     | `vars`, `git`, `registry`, `images`    | every template of the file (its `registry` sees `vars` and `git`; `images` is not known while repositories render for it) |
//! | matrix   | `matrix`                               | `name`, and every template below          |
//! | image    | `image.name`; then `image.key`, `image.repository` | `repository` (`image.name` only); tags, labels, annotations |
//! | platform | `platform`                             | build args, `target`, `contexts`, `context`, `dockerfile`, and the labels, annotations and tags of a platform |
//!
//! A name a layer does not hold is undefined, which strict rendering turns into an error
//! ([`crate::template`] says which layer would have it, for `platform`).

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::context;
use minijinja::value::{Enumerator, Object, Serde, Value};

use crate::config::{MatrixValue, Scalar};
use crate::platform::Platform;
use crate::reference::Repository;
use crate::template::PlatformValue;

/// The file layer: what every template of one config file sees, whatever the image.
#[derive(Debug)]
pub(super) struct FileScope {
    vars: Value,
    git: Value,
    /// The file's `registry`, rendered (none without one); undefined while it renders.
    registry: Value,
    /// `images.NAME.repository`; absent while the repositories it holds render.
    images: Option<Value>,
}

impl FileScope {
    /// The layer a file's `registry` renders in: its `vars` and `git`.
    pub fn new(vars: &BTreeMap<String, Scalar>, git: Value) -> Self {
        Self {
            vars: Value::from(Serde(vars)),
            git,
            registry: Value::UNDEFINED,
            images: None,
        }
    }

    /// The layer with the file's rendered `registry`, in which each image's repository is
    /// rendered for the `images` map.
    pub fn with_registry(&self, registry: Option<&str>) -> Self {
        Self {
            vars: self.vars.clone(),
            git: self.git.clone(),
            registry: Value::from(registry),
            images: None,
        }
    }

    /// The whole file layer.
    pub fn with_images(&self, images: Value) -> Self {
        Self {
            vars: self.vars.clone(),
            git: self.git.clone(),
            registry: self.registry.clone(),
            images: Some(images),
        }
    }
}

/// What one template sees: a file layer, and the layers its position adds (see the module).
#[derive(Debug, Clone)]
pub(super) struct Scope {
    file: Arc<FileScope>,
    matrix: Option<Value>,
    image: Option<Value>,
    platform: Option<Value>,
}

impl Scope {
    /// The file layer alone.
    pub fn file(file: Arc<FileScope>) -> Self {
        Self {
            file,
            matrix: None,
            image: None,
            platform: None,
        }
    }

    /// Adds the matrix layer: one combination's values.
    pub fn matrix(&self, values: &BTreeMap<String, MatrixValue>) -> Self {
        Self {
            matrix: Some(Value::from(Serde(values))),
            ..self.clone()
        }
    }

    /// Adds the image layer as `repository` sees it: the image's name only.
    pub fn named(&self, name: &str) -> Self {
        Self {
            image: Some(context! { name => name }),
            ..self.clone()
        }
    }

    /// Adds the whole image layer: its name, key and (first) repository.
    pub fn image(&self, name: &str, key: &str, repository: &Repository) -> Self {
        Self {
            image: Some(context! { name => name, key => key, repository => repository.as_str() }),
            ..self.clone()
        }
    }

    /// Adds the platform layer.
    pub fn platform(&self, platform: &Platform) -> Self {
        Self {
            platform: Some(Value::from_object(PlatformValue(platform.clone()))),
            ..self.clone()
        }
    }

    /// What templates are rendered with.
    pub fn value(self) -> Value {
        Value::from_object(self)
    }

    /// The names this scope holds, for did-you-mean help; `registry` even while undefined.
    fn names(&self) -> Vec<&'static str> {
        let layers = [
            ("images", self.file.images.is_some()),
            ("matrix", self.matrix.is_some()),
            ("image", self.image.is_some()),
            ("platform", self.platform.is_some()),
        ];
        let file = ["vars", "git", "registry"];
        let added = layers.into_iter().filter(|(_, on)| *on).map(|(k, _)| k);
        file.into_iter().chain(added).collect()
    }
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let value = match key.as_str()? {
            "vars" => &self.file.vars,
            "git" => &self.file.git,
            "registry" => &self.file.registry,
            "images" => self.file.images.as_ref()?,
            "matrix" => self.matrix.as_ref()?,
            "image" => self.image.as_ref()?,
            "platform" => self.platform.as_ref()?,
            _ => return None,
        };
        (!value.is_undefined()).then(|| value.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.names().into_iter().map(Value::from).collect())
    }
}
