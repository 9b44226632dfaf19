//! The wiring of one build: which images of the run it reads and how podman is pointed at
//! each (a build context, a build arg), and what it reads from outside the run. Pure: the
//! podman command is written from it by [`super::build_command`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::matrix::NamedContext;
use crate::platform::Platform;

use super::command::{Arg, Hole, ImageForm};
use super::deps::Redirect;
use super::graph::Graph;
use super::{build_id, local_image};

/// What one build reads and how: the inputs of its `podman build`.
pub(super) struct Wiring {
    /// `--build-arg`s: the config's, the automatic ones the Dockerfile names, and those that
    /// point a reference at a dependency's image.
    pub args: BTreeMap<String, Arg>,
    /// `--build-context`s: dependencies' images, and the config's named contexts.
    pub contexts: BTreeMap<String, Arg>,
    /// Builds that must finish first (sorted).
    pub depends_on: Vec<String>,
    /// Images read from outside the run, with the platform each is read on (sorted, unique).
    pub bases: Vec<(String, Platform)>,
    /// Named contexts that are directories.
    pub dirs: Vec<PathBuf>,
    /// A dependency built on another node is read from an insecure registry.
    pub cross_node_insecure: bool,
}

/// Where a dependency's image of this run is read. Either way the argument names the build
/// whose image it is, so that a run can point it at the registry's image of an unchanged list
/// (`exec::published::apply`, by [`Arg::published`]).
enum DepImage {
    /// On the same node: the local image.
    Local { image: String, build: String },
    /// From another node: the registry, by the digest its node pushed.
    Pushed { repository: String, build: String },
}

impl DepImage {
    /// The image as `form` says: a reference (for a build arg) or a build context.
    fn arg(&self, form: ImageForm) -> Arg {
        match self {
            Self::Local { image, build } => Arg::local(build, image, form),
            Self::Pushed { repository, build } => {
                let reference =
                    Arg::holed(format!("{repository}@"), Hole::DigestOf(build.clone()), "");
                match form {
                    ImageForm::Context => reference.prefixed("docker-image://"),
                    ImageForm::Reference | ImageForm::Storage => reference,
                }
            }
        }
    }
}

impl Graph<'_> {
    /// The wiring of build `b` of instance `i`: a dependency left out of the selection is read
    /// from the registry, as the Dockerfile says, not from a local build.
    pub(super) fn wire(
        &self,
        i: usize,
        b: usize,
        selected: &[bool],
        assignment: &HashMap<String, usize>,
    ) -> Wiring {
        let inst = &self.instances[i];
        let spec = &inst.builds[b];
        let needs = &self.needs[i][b];
        let node_of = |id: &str| assignment.get(id).copied();
        let own_node = node_of(&build_id(&inst.name, &spec.platform));
        let mut args: BTreeMap<String, Arg> = spec
            .args
            .iter()
            .chain(needs.added_args.iter().map(|(k, v)| (k, v)))
            .map(|(k, v)| (k.clone(), Arg::Lit(v.clone())))
            .collect();
        let mut contexts = BTreeMap::new();
        let mut depends_on = Vec::new();
        let mut bases: Vec<(String, Platform)> = needs.bases.clone();
        let mut cross_node_insecure = false;
        for edge in &needs.edges {
            let dep = &self.instances[edge.dep];
            let dep_platform = &dep.builds[edge.dep_build].platform;
            // The dependency's image: local on the same node, else by the digest its node
            // pushes, or none when it is not built in this run.
            let image = selected[edge.dep].then(|| {
                let dep_id = build_id(&dep.name, dep_platform);
                let image = if node_of(&dep_id) == own_node {
                    DepImage::Local {
                        image: local_image(&dep.name, dep_platform),
                        build: dep_id.clone(),
                    }
                } else {
                    cross_node_insecure |= self.config.insecure(dep.repository.registry());
                    DepImage::Pushed {
                        repository: dep.repository.to_string(),
                        build: dep_id.clone(),
                    }
                };
                depends_on.push(dep_id);
                image
            });
            // Left out of the selection, it is read from the registry: a literal reference as
            // written, a named context or its arg by the image's first tag.
            let published = || dep.tags.first().map(ToString::to_string);
            if image.is_none() {
                // As much an input as any base image.
                for r in &edge.redirects {
                    let read = match r {
                        Redirect::Reference(reference) => Some(reference.clone()),
                        Redirect::Named(_) | Redirect::Arg { .. } => published(),
                    };
                    bases.extend(read.map(|r| (r, dep_platform.clone())));
                }
            }
            for r in &edge.redirects {
                match r {
                    Redirect::Reference(reference) => {
                        if let Some(image) = &image {
                            contexts.insert(reference.clone(), image.arg(ImageForm::Context));
                        }
                    }
                    Redirect::Named(name) => {
                        let to = match &image {
                            Some(image) => Some(image.arg(ImageForm::Context)),
                            None => published().map(|t| Arg::Lit(format!("docker-image://{t}"))),
                        };
                        contexts.extend(to.map(|to| (name.clone(), to)));
                    }
                    Redirect::Arg { name, named } => {
                        let to = match &image {
                            Some(image) => Some(image.arg(ImageForm::Reference)),
                            None => named.then(published).flatten().map(Arg::Lit),
                        };
                        args.extend(to.map(|to| (name.clone(), to)));
                    }
                }
            }
        }
        // A dependency's platform taken `from` a registry image: read there, as written.
        for (r, from, platform) in &needs.external {
            bases.push((from.clone(), platform.clone()));
            let context = || Arg::Lit(format!("docker-image://{from}"));
            match r {
                Redirect::Reference(name) | Redirect::Named(name) => {
                    contexts.insert(name.clone(), context());
                }
                Redirect::Arg { name, .. } => {
                    args.insert(name.clone(), Arg::Lit(from.clone()));
                }
            }
        }
        let mut dirs = Vec::new();
        for (name, context) in &spec.contexts {
            let to = match context {
                NamedContext::Image { .. } => continue,
                NamedContext::Remote { value, image } => {
                    bases.extend(image.iter().map(|r| (r.clone(), spec.platform.clone())));
                    value.clone()
                }
                NamedContext::Dir(dir) => {
                    dirs.push(dir.clone());
                    dir.display().to_string()
                }
            };
            contexts.insert(name.clone(), Arg::Lit(to));
        }
        bases.sort();
        bases.dedup();
        depends_on.sort();
        Wiring {
            args,
            contexts,
            depends_on,
            bases,
            dirs,
            cross_node_insecure,
        }
    }
}
