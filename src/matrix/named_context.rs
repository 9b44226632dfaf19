//! A named build context (`contexts = { NAME = ... }`) as rendered: an image of the config, a
//! remote image or URL, or a directory, checked against the confinement.

use std::ops::Range;

use crate::config::Config;
use crate::error::{ConfigError, ErrorKind, Source};

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
    Remote {
        value: String,
        /// The image it names (`docker-image://REF`, `container-image://REF`), which the build
        /// reads from outside the run: read here, once, so that nothing after the config
        /// reads the scheme back from the text.
        image: Option<String>,
    },
    /// A directory, relative to the root podman runs in.
    Dir(std::path::PathBuf),
}

impl NamedContext {
    /// What a rendered value names: written in `sourced`, whose file's directory a relative
    /// path is relative to.
    pub(super) fn parse(
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
            let image = ["docker-image://", "container-image://"]
                .iter()
                .find_map(|scheme| value.strip_prefix(scheme))
                .map(String::from);
            return Ok(Self::Remote { value, image });
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
