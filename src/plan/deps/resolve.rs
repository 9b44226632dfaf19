//! The instances a name in `depends_on` or a `target:IMAGE` context stands for.

use std::ops::Range;
use std::path::Path;

use crate::error::{ConfigError, ErrorKind, Source, join, suggest};
use crate::matrix::{Instance, qualified};

use super::Index;

impl<'a> Index<'a> {
    /// The one instance a `target:IMAGE` context names.
    pub(super) fn context_image(
        &self,
        inst: &Instance,
        context: &str,
        written: &str,
        source: &Source,
        span: &Range<usize>,
    ) -> Result<usize, ConfigError> {
        let all = self.resolve_dependency(written, span.clone(), inst)?;
        match all[..] {
            [one] => Ok(one),
            _ => Err(source
                .error(
                    ErrorKind::UnknownDependency,
                    span.clone(),
                    format!(
                        "named context `{context}` of image `{}` must name one image, but `{written}` is {} instances",
                        inst.name,
                        all.len()
                    ),
                )
                .with_help(format!(
                    "name one instance: {}",
                    join(all.iter().map(|&j| &self.instances[j].name))
                ))),
        }
    }

    /// The instances a `depends_on` entry names: an instance name, or every instance of an image,
    /// either of them qualified by its file's directory (`services/base:base`) or not.
    pub(super) fn resolve_dependency(
        &self,
        written: &str,
        span: Range<usize>,
        from: &Instance,
    ) -> Result<Vec<usize>, ConfigError> {
        let config = self.config;
        let source = &config.images[from.image].file.source;
        let (dir, wanted) = match written.rsplit_once(':') {
            Some((dir, name)) => (Some(Path::new(dir)), name),
            None => (None, written),
        };
        let in_dir = |image: usize| dir.is_none_or(|d| config.images[image].file.rel_dir == d);
        if let Some(&i) = self
            .by_name
            .get(wanted)
            .filter(|&&i| in_dir(self.instances[i].image))
        {
            return Ok(vec![i]);
        }
        if wanted == from.key && in_dir(from.image) {
            // A matrix image naming itself: each instance would wait for all the others.
            return Err(source.error(
                ErrorKind::Cycle,
                span,
                format!("dependency cycle: {wanted} -> {wanted}"),
            ));
        }
        if let Some(all) = self
            .by_key
            .get(wanted)
            .filter(|all| all.iter().all(|&i| in_dir(self.instances[i].image)))
        {
            return Ok(all.clone());
        }
        if let Some(image) = config.images.iter().position(|d| d.key == wanted)
            && in_dir(image)
        {
            // An image whose matrix yields no instance: nothing to wait for.
            return Ok(Vec::new());
        }
        let known = config
            .images
            .iter()
            .flat_map(|d| [d.key.clone(), qualified(&d.file, &d.key)])
            .chain(self.by_name.keys().map(|k| k.to_string()))
            .collect::<Vec<_>>();
        let images: Vec<&str> = config.images.iter().map(|d| d.key.as_str()).collect();
        // Qualified by the wrong directory: say where the name is.
        let elsewhere = dir.and_then(|_| {
            let image = match self.by_name.get(wanted) {
                Some(&i) => self.instances[i].image,
                None => config.images.iter().position(|d| d.key == wanted)?,
            };
            let file = &config.images[image].file;
            Some(format!(
                "`{wanted}` is defined in {}: write `{}`, or just `{wanted}`",
                file.source.name(),
                qualified(file, wanted)
            ))
        });
        let suggestion = || suggest(written, known.iter().map(String::as_str));
        let help = elsewhere.or_else(suggestion).unwrap_or_else(|| {
            let hint = if config.files.len() > 1 {
                ""
            } else {
                "; an image of another multiarch.toml is seen with `--all`"
            };
            format!("images: {}{hint}", images.join(", "))
        });
        Err(source
            .error(
                ErrorKind::UnknownDependency,
                span,
                format!(
                    "image `{}` depends on `{written}`, which is not an image of this config",
                    from.name
                ),
            )
            .with_help(help))
    }
}
