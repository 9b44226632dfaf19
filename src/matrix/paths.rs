//! Each build's context and Dockerfile: the image's (or its platform override's) read at
//! load, or rendered from their templates, checked, and read once per file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use minijinja::value::Value;

use crate::config::{BuildPaths, Config, ImageDef, PathText, Paths};
use crate::error::ConfigError;
use crate::platform::Platform;
use crate::template::{Field, Templates};

/// Rendered paths already checked and read, by where the context and Dockerfile are: a
/// Dockerfile that many builds render to is read once (a matrix over directories reads each
/// directory's once, however many platforms build it).
#[derive(Default)]
pub(super) struct Resolved(Mutex<HashMap<(PathBuf, PathBuf), Arc<BuildPaths>>>);

impl Resolved {
    /// The paths of the build of `platform` of instance `name` of `def`; `ctx` is what its
    /// templates see.
    pub fn of(
        &self,
        config: &Config,
        templates: &Templates,
        (def, name): (&ImageDef, &str),
        platform: &Platform,
        ctx: &Value,
    ) -> Result<Arc<BuildPaths>, ConfigError> {
        let over = def.overrides.get(platform).and_then(|o| o.paths.as_ref());
        let (context, dockerfile) = match over.unwrap_or(&def.paths) {
            Paths::Read(read) => return Ok(read.clone()),
            Paths::Templated {
                context,
                dockerfile,
            } => (context.as_ref(), dockerfile.as_ref()),
        };
        let render = |t: Option<&PathText>, field| {
            t.map(|t| templates.render(&t.file.source, &t.text, ctx, name, field))
                .transpose()
        };
        let context_value = render(context, Field::BuildContext)?;
        let dockerfile_value = render(dockerfile, Field::Dockerfile)?;
        // Where they are, for the cache: the same rules as `resolve`, without the disk.
        let context_file = context.map_or(def.file.as_ref(), |t| t.file.as_ref());
        let context_dir = context_file
            .dir
            .join(context_value.as_deref().unwrap_or("."));
        let key = (
            crate::config::normalize_relative(&context_dir),
            crate::config::normalize_relative(
                &context_dir.join(dockerfile_value.as_deref().unwrap_or("Dockerfile")),
            ),
        );
        if let Some(done) = self.0.lock().expect("not poisoned").get(&key) {
            return Ok(done.clone());
        }
        let paths = crate::config::resolve_paths(
            (&def.file, def.key_span.clone()),
            &config.confine,
            crate::config::Whose {
                name,
                platform: over.map(|_| platform),
            },
            context.zip(context_value.as_deref()),
            dockerfile.zip(dockerfile_value.as_deref()),
        )?;
        let mut done = self.0.lock().expect("not poisoned");
        Ok(done.entry(key).or_insert_with(|| Arc::new(paths)).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expands a scratch config whose `files` are beside its multiarch.toml.
    fn expand(config: &str, files: &[&str]) -> Vec<crate::matrix::Instance> {
        let dir = tempfile::tempdir().unwrap();
        for path in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "FROM scratch\n").unwrap();
        }
        let path = dir.path().join("multiarch.toml");
        std::fs::write(&path, config).unwrap();
        let allowed = crate::confine::Allowed::resolve(&[], dir.path(), None);
        let config = crate::config::Location::File(path)
            .load(&[], &allowed)
            .unwrap();
        crate::matrix::expand(&config).unwrap()
    }

    const HEAD: &str = "[defaults]\nregistry = \"r.io/a\"\nplatforms = [\"linux/amd64\", \"linux/arm64\", \"linux/arm/v7\"]\n";

    #[test]
    fn builds_that_render_the_same_paths_share_one_reading() {
        let instances = expand(
            &format!(
                "{HEAD}[images.py]\nmatrix = {{ v = [\"3.12\", \"3.13\"] }}\ntags = [\"{{{{ matrix.v }}}}\"]\ncontext = \"python/{{{{ matrix.v }}}}\"\n"
            ),
            &["python/3.12/Dockerfile", "python/3.13/Dockerfile"],
        );
        for inst in &instances {
            let [a, rest @ ..] = &inst.builds[..] else {
                panic!("builds")
            };
            assert!(rest.iter().all(|b| Arc::ptr_eq(&a.paths, &b.paths)));
        }
        let (a, b) = (&instances[0].builds[0], &instances[1].builds[0]);
        assert!(!Arc::ptr_eq(&a.paths, &b.paths));
        assert_eq!(b.paths.context, std::path::Path::new("python/3.13"));
    }

    #[test]
    fn a_platform_template_and_a_literal_override_read_per_platform() {
        let instances = expand(
            &format!(
                "{HEAD}[images.x]\ntags = [\"1\"]\ndockerfile = \"Dockerfile.{{{{ platform.arch }}}}\"\n[images.x.platform.\"linux/arm/v7\"]\ndockerfile = \"Dockerfile.armhf\"\n"
            ),
            &["Dockerfile.amd64", "Dockerfile.arm64", "Dockerfile.armhf"],
        );
        let files: Vec<String> = instances[0]
            .builds
            .iter()
            .map(|b| b.paths.dockerfile.display().to_string())
            .collect();
        assert_eq!(
            files,
            ["Dockerfile.amd64", "Dockerfile.arm64", "Dockerfile.armhf"]
        );
    }
}
