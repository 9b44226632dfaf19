//! The dependencies found in a build as edges to the dependency's build of the platform each is
//! read on, and the errors when that build does not exist or one name is read on two platforms.

use std::collections::BTreeSet;

use crate::dockerfile::Read;
use crate::error::{ConfigError, ErrorKind};
use crate::matrix::{BuildSpec, Instance, platforms_of};
use crate::platform::Platform;

use super::{Edge, Found, Index, Origin, Redirect};

impl<'a> Index<'a> {
    /// Found dependencies as edges: each to the dependency's build of the platform it is read
    /// on, one redirect per name.
    pub(super) fn edges(
        &self,
        inst: &Instance,
        spec: &BuildSpec,
        mut found: Vec<Found>,
        external: &mut Vec<(Redirect, String, Platform)>,
    ) -> Result<Vec<Edge>, ConfigError> {
        // A redirect maps one name to one image: every read of a name must be on one platform.
        for (k, f) in found.iter().enumerate() {
            let first = found[..k]
                .iter()
                .find(|o| o.redirect.is_some() && o.redirect == f.redirect);
            if let Some(other) = first.filter(|o| o.platform != f.platform) {
                return Err(self.two_platforms(inst, spec, other, f));
            }
        }
        let mut edges: Vec<Edge> = Vec::with_capacity(found.len());
        for f in &mut found {
            let dep = &self.instances[f.dep];
            let Some(dep_build) = dep.builds.iter().position(|b| b.platform == f.platform) else {
                // Its image of that platform is a registry image already: no edge, read it.
                if let Some(e) = dep.external.iter().find(|e| e.platform == f.platform) {
                    let from = e.from.to_string();
                    external.extend(f.redirect.take().map(|r| (r, from, f.platform.clone())));
                    continue;
                }
                return Err(self.platform_mismatch(inst, spec, dep, f));
            };
            let at = match edges
                .iter()
                .position(|e| e.dep == f.dep && e.dep_build == dep_build)
            {
                Some(at) => at,
                None => {
                    edges.push(Edge {
                        dep: f.dep,
                        dep_build,
                        redirects: BTreeSet::new(),
                    });
                    edges.len() - 1
                }
            };
            edges[at].redirects.extend(f.redirect.take());
        }
        edges.sort_by_key(|e| (e.dep, e.dep_build));
        Ok(edges)
    }

    fn platform_mismatch(
        &self,
        inst: &Instance,
        spec: &BuildSpec,
        dep: &Instance,
        f: &Found,
    ) -> ConfigError {
        let def = &self.config.images[inst.image];
        let needed = &f.platform;
        let message = if *needed == spec.platform {
            format!(
                "image `{}` is built for {needed}, but its dependency `{}` is not (it builds {})",
                inst.name,
                dep.name,
                platforms_of(dep)
            )
        } else {
            format!(
                "image `{}` reads `{}` on {needed} in its {} build, but `{}` is not built for {needed} (it builds {})",
                inst.name,
                dep.name,
                spec.platform,
                dep.name,
                platforms_of(dep)
            )
        };
        let err = ConfigError::new(ErrorKind::PlatformMismatch, message);
        let err = match &f.origin {
            Origin::Dockerfile(read) => err.at(
                &spec.paths.dockerfile_source,
                read.span.clone(),
                Some(format!("reads `{}` on {needed}", read.resolved)),
            ),
            Origin::DependsOn(span) => err.at(
                &def.file.source,
                span.clone(),
                Some("dependency declared here"),
            ),
        };
        err.at(
            &def.platforms_source,
            def.platforms_span.clone(),
            Some(format!("`{}` builds these platforms", inst.key)),
        )
        .with_help(match &f.origin {
            Origin::Dockerfile(Read {
                platform_flag: Some(flag),
                ..
            }) => format!(
                "its stage reads it on {needed} for every platform (`--platform={flag}`): add {needed} to the platforms of `{}`",
                dep.key
            ),
            _ => format!(
                "add {needed} to the platforms of `{}`, or drop {} from `{}` (it builds {})",
                dep.key,
                spec.platform,
                inst.key,
                platforms_of(inst)
            ),
        })
    }

    /// One name read on two platforms by one build: podman maps a name to one image.
    fn two_platforms(
        &self,
        inst: &Instance,
        spec: &BuildSpec,
        a: &Found,
        b: &Found,
    ) -> ConfigError {
        let (Origin::Dockerfile(ra), Origin::Dockerfile(rb)) = (&a.origin, &b.origin) else {
            unreachable!("redirects come from reads");
        };
        ConfigError::new(
            ErrorKind::PlatformMismatch,
            format!(
                "the {} build of image `{}` reads `{}` on two platforms, {} and {}: podman maps one name to one image per build",
                spec.platform, inst.name, ra.resolved, a.platform, b.platform
            ),
        )
        .at(&spec.paths.dockerfile_source, ra.span.clone(), Some(format!("on {}", a.platform)))
        .at(&spec.paths.dockerfile_source, rb.span.clone(), Some(format!("on {}", b.platform)))
        .with_help(format!(
            "read one of them under a name of its own: contexts = {{ {}-build = \"target:{}\" }} in the image, and `FROM --platform=$BUILDPLATFORM {}-build` in the Dockerfile",
            self.instances[a.dep].key, self.instances[a.dep].name, self.instances[a.dep].key
        ))
    }
}
