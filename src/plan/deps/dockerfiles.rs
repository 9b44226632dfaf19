//! Every Dockerfile the builds use, parsed once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rayon::iter::{IntoParallelRefIterator, ParallelIterator};

use crate::config::{BuildPaths, Config};
use crate::dockerfile::Dockerfile;
use crate::error::{ConfigError, ErrorKind};
use crate::matrix::Instance;

/// A Dockerfile, parsed.
pub(super) struct Parsed {
    pub dockerfile: Dockerfile,
    /// It has an ignore file of its own (`Dockerfile.dockerignore`), which a copy under another
    /// name would lose.
    pub own_ignore: bool,
}

/// Parses each Dockerfile the builds of `instances` use once, however many builds (of however
/// many images) use it; and says which one each build of each instance uses.
pub(super) fn parse_dockerfiles(
    config: &Config,
    instances: &[Instance],
) -> Result<(Vec<Parsed>, Vec<Vec<usize>>), ConfigError> {
    // By the path's bytes: `Path` hashes component by component, which costs more than the
    // rest of this function on a plan of 1,000 images.
    let mut at: HashMap<&std::ffi::OsStr, usize> = HashMap::with_capacity(instances.len());
    let mut to_parse: Vec<(&BuildPaths, &str)> = Vec::new();
    let mut dockerfile_of = Vec::with_capacity(instances.len());
    for inst in instances {
        // The builds of an instance mostly share their paths: looked up once.
        let mut last: Option<(&Arc<BuildPaths>, usize)> = None;
        let mut of = Vec::with_capacity(inst.builds.len());
        for spec in &inst.builds {
            let index = match last {
                Some((paths, index)) if Arc::ptr_eq(paths, &spec.paths) => index,
                _ => {
                    let next = to_parse.len();
                    let path = spec.paths.dockerfile_source.path().as_os_str();
                    let index = *at.entry(path).or_insert(next);
                    if index == next {
                        to_parse.push((&spec.paths, &config.images[inst.image].key));
                    }
                    index
                }
            };
            last = Some((&spec.paths, index));
            of.push(index);
        }
        dockerfile_of.push(of);
    }
    let parsed = to_parse
        .par_iter()
        .map(|(paths, key)| {
            let source = &paths.dockerfile_source;
            let own_ignore = [".dockerignore", ".containerignore"].iter().any(|ext| {
                let mut p = source.path().as_os_str().to_owned();
                p.push(ext);
                Path::new(&p).exists()
            });
            let dockerfile = Dockerfile::parse(source.text()).map_err(|e| {
                source
                    .error(
                        ErrorKind::Dockerfile,
                        e.span,
                        format!("cannot read the Dockerfile of image `{key}`: {}", e.message),
                    )
                    .with_help(e.help.unwrap_or_else(|| {
                        "podman would refuse it too: fix the instruction here".into()
                    }))
            })?;
            Ok(Parsed {
                dockerfile,
                own_ignore,
            })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    Ok((parsed, dockerfile_of))
}
