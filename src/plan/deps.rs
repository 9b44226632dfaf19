//! Each build's dependencies: what its Dockerfile reads from the stages its target reaches,
//! matched against the config's images, each on the platform it is read on; its named contexts;
//! and `depends_on`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use rayon::iter::{IntoParallelRefIterator, ParallelIterator};

use crate::config::{BuildPaths, Config};
use crate::dockerfile::{self, Dockerfile, EvalError, Inputs, Read};
use crate::error::{ConfigError, ErrorKind, Source, join, suggest};
use crate::matrix::{BuildSpec, Instance, Labels, NamedContext, platforms_of, qualified};
use crate::platform::Platform;
use crate::reference::ImageRef;

use super::Warning;

/// How a dependent build is pointed at its dependency's image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Redirect {
    /// `--build-context REF=container-image://LOCAL`, for a literal reference; without a local
    /// build the registry's REF is read, as written.
    Reference(String),
    /// `--build-context NAME=...` for a `target:IMAGE` named context: the local build, or
    /// without one the image's first tag in the registry.
    Named(String),
    /// `--build-arg NAME=...`, for a reference one build arg decides, which podman 4.3 does not
    /// redirect with `--build-context`. `named`: the arg names a named context, so without a
    /// local build it is pointed at the registry.
    Arg { name: String, named: bool },
}

#[derive(Debug, Clone)]
pub(super) struct Edge {
    /// The instance depended on.
    pub dep: usize,
    /// Its build of the platform it is read on (an index into its `builds`).
    pub dep_build: usize,
    pub redirects: BTreeSet<Redirect>,
}

/// What one build needs, found once while planning.
#[derive(Debug, Clone, Default)]
pub(super) struct Needs {
    pub edges: Vec<Edge>,
    /// The build args podman gets besides the config's: the `BUILD*` ones the Dockerfile names.
    pub added_args: Vec<(String, String)>,
    /// Platforms whose RUN steps the build executes.
    pub run_platforms: Vec<Platform>,
    /// The features podman versions differ on that the stages it reaches use.
    pub features: Vec<super::FeatureUse>,
    /// The global `ARG` its copy of the Dockerfile starts with, for the automatic platform
    /// args `FROM` lines read (podman 4.3 leaves them empty there otherwise).
    pub declare: Option<super::Insertion>,
    /// `--target`: the stage's name as the Dockerfile writes it.
    pub target: Option<String>,
    /// The build's labels as one instruction, and where it goes at the end of the built
    /// stage; none without labels, or when a copy of the Dockerfile cannot carry them.
    pub label: Option<LabelAt>,
    /// Images it reads from outside the config (`FROM debian:12`), with the platform each is
    /// read on: their digests are inputs of the build.
    pub bases: Vec<(String, Platform)>,
    /// Reads of a dependency's platform taken `from` a registry image (`REF` as written), which
    /// no build of the run makes: the build reads that image, an input like any base.
    pub external: Vec<(Redirect, String, Platform)>,
}

/// Where a `LABEL` instruction goes in a build's Dockerfile: a byte offset at a line's start,
/// after this many lines.
#[derive(Debug, Clone)]
pub(super) struct LabelAt {
    pub offset: usize,
    pub after_line: usize,
    pub instruction: String,
}

/// Lookups shared by the per-instance dependency analysis.
pub(super) struct Index<'a> {
    config: &'a Config,
    instances: &'a [Instance],
    /// Qualified `repository:tag` → the instance pushing it.
    by_ref: HashMap<String, usize>,
    by_name: HashMap<&'a str, usize>,
    by_key: HashMap<&'a str, Vec<usize>>,
    /// Every Dockerfile the builds use, parsed once.
    dockerfiles: Vec<Parsed>,
    /// Per instance, per build: its Dockerfile in `dockerfiles`.
    dockerfile_of: Vec<Vec<usize>>,
    /// The automatic platform args of each target platform, on the machine that builds
    /// (`--platform=$BUILDPLATFORM` stages run on it).
    platform_args: HashMap<Platform, BTreeMap<String, String>>,
}

/// Where a dependency was declared, for errors about it.
#[derive(Debug, Clone)]
enum Origin<'a> {
    Dockerfile(Read<'a>),
    DependsOn(Range<usize>),
}

/// A dependency found in one build, before it is checked against the dependency's platforms.
struct Found<'a> {
    dep: usize,
    platform: Platform,
    redirect: Option<Redirect>,
    origin: Origin<'a>,
}

/// A build's args: the config's, then those mab adds.
struct Args<'a> {
    config: &'a BTreeMap<String, String>,
    added: &'a [(String, String)],
}

impl dockerfile::Vars for Args<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        self.config.get(name).map(String::as_str).or_else(|| {
            self.added
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        })
    }
}

impl<'a> Index<'a> {
    pub fn new(config: &'a Config, instances: &'a [Instance]) -> Result<Self, ConfigError> {
        let mut by_ref = HashMap::new();
        let mut by_name = HashMap::with_capacity(instances.len());
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, inst) in instances.iter().enumerate() {
            by_ref.extend(inst.tags.iter().map(|r| (r.qualified(), i)));
            by_name.insert(inst.name.as_str(), i);
            by_key.entry(inst.key.as_str()).or_default().push(i);
        }
        let (dockerfiles, dockerfile_of) = parse_dockerfiles(config, instances)?;
        let platforms: BTreeSet<&Platform> = instances
            .iter()
            .flat_map(|inst| inst.builds.iter().map(|b| &b.platform))
            .collect();
        // The build platform is the machine's, or with build nodes the node's.
        let platform_args = platforms
            .into_iter()
            .map(|p| {
                let build = super::nodes::build_platform(config, p);
                (p.clone(), dockerfile::platform_args(p, &build))
            })
            .collect();
        Ok(Self {
            config,
            instances,
            by_ref,
            by_name,
            by_key,
            dockerfiles,
            dockerfile_of,
            platform_args,
        })
    }

    /// The Dockerfile of build `b` of instance `i`, parsed.
    fn dockerfile(&self, i: usize, b: usize) -> &Parsed {
        &self.dockerfiles[self.dockerfile_of[i][b]]
    }

    /// What each build of instance `i` needs (in the order of its builds), and the warnings
    /// about it.
    pub fn needs_of(&self, i: usize) -> Result<(Vec<Needs>, Vec<Warning>), ConfigError> {
        let inst = &self.instances[i];
        let def = &self.config.images[inst.image];
        let explicit = def
            .depends_on
            .iter()
            .map(|d| {
                Ok((
                    self.resolve_dependency(d.get_ref(), d.span(), inst)?,
                    d.span(),
                ))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let mut warnings = Vec::new();
        let mut read_deps = BTreeSet::new();
        let mut out = Vec::with_capacity(inst.builds.len());
        // Builds share their labels (unless a label depends on the platform) and their
        // Dockerfile (unless the platform has its own): quoted once for each pair.
        let mut quoted: Option<(&Arc<Labels>, &Parsed, Option<String>)> = None;
        for (b, spec) in inst.builds.iter().enumerate() {
            let parsed = self.dockerfile(i, b);
            if !quoted
                .as_ref()
                .is_some_and(|(l, p, _)| Arc::ptr_eq(l, &spec.labels) && std::ptr::eq(*p, parsed))
            {
                let labels = &spec.labels.map;
                let instruction = (!labels.is_empty() && !parsed.own_ignore)
                    .then(|| dockerfile::label_instruction(labels, parsed.dockerfile.escape()))
                    .flatten();
                quoted = Some((&spec.labels, parsed, instruction));
            }
            let labels = quoted.as_ref().and_then(|(_, _, q)| q.as_deref());
            let (mut found, mut needs) = self.reads_of(i, spec, parsed, labels, &mut warnings)?;
            read_deps.extend(found.iter().map(|f| f.dep));
            for (targets, span) in &explicit {
                for &j in targets {
                    if !found.iter().any(|f| f.dep == j) {
                        // Waited for, but read by nothing: the order holds, no redirect.
                        found.push(Found {
                            dep: j,
                            platform: spec.platform.clone(),
                            redirect: None,
                            origin: Origin::DependsOn(span.clone()),
                        });
                    }
                }
            }
            needs.edges = self.edges(inst, spec, found, &mut needs.external)?;
            out.push(needs);
        }
        for (targets, _) in &explicit {
            for &j in targets.iter().filter(|j| !read_deps.contains(j)) {
                let dep = &self.instances[j];
                warnings.push(Warning {
                    image: inst.name.clone(),
                    message: format!(
                        "`{}` depends on `{}`, but its Dockerfile reads none of {}'s images: the build waits for it and reads nothing of it",
                        inst.name,
                        dep.name,
                        dep.name
                    ),
                    help: format!(
                        "read it in a FROM, COPY --from or RUN --mount=from by one of its tags ({}), or through a named context: contexts = {{ NAME = \"target:{}\" }}",
                        join(&dep.tags),
                        dep.name
                    ),
                });
            }
        }
        Ok((out, warnings))
    }

    /// The dependencies the Dockerfile of build `spec` of instance `i` reads, and what else
    /// the build needs but its edges.
    fn reads_of(
        &'a self,
        i: usize,
        spec: &BuildSpec,
        parsed: &'a Parsed,
        labels: Option<&str>,
        warnings: &mut Vec<Warning>,
    ) -> Result<(Vec<Found<'a>>, Needs), ConfigError> {
        let inst = &self.instances[i];
        let parsed = &parsed.dockerfile;
        let auto = &self.platform_args[&spec.platform];
        let added_args: Vec<(String, String)> = parsed
            .names_build_args()
            .iter()
            .filter(|name| !spec.args.contains_key(**name))
            .map(|name| (name.to_string(), auto[*name].clone()))
            .collect();
        let is_context = |n: &str| spec.contexts.contains_key(n);
        let reads = parsed
            .reads(&Inputs {
                args: &Args {
                    config: &spec.args,
                    added: &added_args,
                },
                platform: &spec.platform,
                platform_args: auto,
                is_context: &is_context,
                target: spec.target.as_deref(),
            })
            .map_err(|e| self.eval_error(inst, spec, e))?;
        let mut found = Vec::new();
        let mut bases: Vec<(String, Platform)> = Vec::new();
        for read in reads.reads {
            let external =
                (!read.context).then(|| (read.resolved.to_string(), read.platform.clone()));
            match self.found_of(i, spec, read, warnings)? {
                Some(f) => found.push(f),
                None => bases.extend(external),
            }
        }
        bases.sort();
        bases.dedup();
        let needs = Needs {
            edges: Vec::new(),
            added_args,
            run_platforms: reads.run_platforms,
            features: reads
                .uses
                .iter()
                .map(|(feature, at)| {
                    let (line, column) = spec.paths.dockerfile_source.line_col(at.start);
                    super::FeatureUse {
                        feature: *feature,
                        line,
                        column,
                    }
                })
                .collect(),
            declare: match parsed.undeclared_platform_args() {
                ([], _) => None,
                (names, offset) => Some(super::Insertion {
                    offset,
                    after_line: spec.paths.dockerfile_source.line_col(offset).0 - 1,
                    instruction: format!("ARG {}", names.join(" ")),
                }),
            },
            target: reads.target.map(str::to_string),
            label: labels.and_then(|instruction| {
                let (offset, after_line) = parsed.stage_end(spec.target.as_deref())?;
                Some(LabelAt {
                    offset,
                    after_line,
                    instruction: instruction.to_string(),
                })
            }),
            bases,
            external: Vec::new(),
        };
        Ok((found, needs))
    }

    /// What one read of build `spec` of instance `i` depends on, if anything: a `target:`
    /// context, or an image of the config by one of its tags; and how it is redirected.
    fn found_of(
        &self,
        i: usize,
        spec: &BuildSpec,
        read: Read<'a>,
        warnings: &mut Vec<Warning>,
    ) -> Result<Option<Found<'a>>, ConfigError> {
        let inst = &self.instances[i];
        let (dep, redirect) = if read.context {
            match &spec.contexts[read.resolved.as_ref()] {
                NamedContext::Image { name, source, span } => {
                    let dep = self.context_image(inst, &read.resolved, name, source, span)?;
                    let redirect = match read.via_arg {
                        Some(a) => Redirect::Arg {
                            name: a.to_string(),
                            named: true,
                        },
                        None => Redirect::Named(read.resolved.to_string()),
                    };
                    (dep, Some(redirect))
                }
                NamedContext::Remote(_) | NamedContext::Dir(_) => {
                    if let Some(arg) = read.via_arg {
                        warnings.push(unredirected(inst, &read, arg));
                    }
                    return Ok(None);
                }
            }
        } else {
            let Some(&dep) =
                ImageRef::qualify_written(&read.resolved).and_then(|q| self.by_ref.get(&q))
            else {
                return Ok(None);
            };
            if dep == i {
                // An image built FROM its own earlier release reads it from the registry.
                return Ok(None);
            }
            let redirect = match read.via_arg {
                Some(a) => Some(Redirect::Arg {
                    name: a.to_string(),
                    named: false,
                }),
                None if read.is_composite() => {
                    // The order still holds; the image is read as written.
                    warnings.push(composite(inst, &self.instances[dep], &read));
                    None
                }
                None => Some(Redirect::Reference(read.resolved.to_string())),
            };
            (dep, redirect)
        };
        Ok(Some(Found {
            dep,
            platform: read.platform.clone(),
            redirect,
            origin: Origin::Dockerfile(read),
        }))
    }

    /// Found dependencies as edges: each to the dependency's build of the platform it is read
    /// on, one redirect per name.
    fn edges(
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

    /// The one instance a `target:IMAGE` context names.
    fn context_image(
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

    fn eval_error(&self, inst: &Instance, spec: &BuildSpec, e: EvalError) -> ConfigError {
        let def = &self.config.images[inst.image];
        match e {
            EvalError::UnknownTarget { target, stages } => {
                let written = def
                    .overrides
                    .get(&spec.platform)
                    .and_then(|o| o.target.as_ref())
                    .or(def.target.as_ref())
                    .expect("a target was given");
                let listed = if stages.is_empty() {
                    "it has no named stage".to_string()
                } else {
                    format!("its stages: {}", stages.join(", "))
                };
                let help = suggest(&target, stages.iter().map(String::as_str))
                    .map_or(listed.clone(), |s| format!("{s} ({listed})"));
                written
                    .source
                    .error(
                        ErrorKind::Target,
                        written.text.span(),
                        format!(
                            "target `{target}` of image `{}` is not a stage of {}",
                            inst.name,
                            spec.paths.dockerfile.display()
                        ),
                    )
                    .with_help(help)
            }
            EvalError::At {
                span,
                message,
                help,
            } => spec
                .paths
                .dockerfile_source
                .error(
                    ErrorKind::Dockerfile,
                    span,
                    format!("image `{}` ({}): {message}", inst.name, spec.platform),
                )
                .with_help_opt(help),
        }
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

    /// The instances a `depends_on` entry names: an instance name, or every instance of an image,
    /// either of them qualified by its file's directory (`services/base:base`) or not.
    fn resolve_dependency(
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

/// A Dockerfile, parsed.
pub(super) struct Parsed {
    dockerfile: Dockerfile,
    /// It has an ignore file of its own (`Dockerfile.dockerignore`), which a copy under another
    /// name would lose.
    own_ignore: bool,
}

/// Parses each Dockerfile the builds of `instances` use once, however many builds (of however
/// many images) use it; and says which one each build of each instance uses.
fn parse_dockerfiles(
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

/// A reference of variables and text, which podman reads as written.
fn composite(inst: &Instance, dep: &Instance, read: &Read) -> Warning {
    Warning {
        image: inst.name.clone(),
        message: format!(
            "`{}` reads `{}` as `{}`: podman 4.3 redirects only a literal reference or one build arg, so this build reads {} from the registry, not the {} this run builds",
            inst.name, read.resolved, read.written, read.resolved, dep.name
        ),
        help: format!(
            "make the whole reference one ARG (`ARG BASE={}` then `FROM ${{BASE}}`), or write it literally",
            read.written
        ),
    }
}

/// A build arg that names a directory or URL context, which an arg override cannot carry.
fn unredirected(inst: &Instance, read: &Read, arg: &str) -> Warning {
    Warning {
        image: inst.name.clone(),
        message: format!(
            "`{}` reads named context `{}` through build arg {arg}: podman 4.3 does not look a build arg's value up in the named contexts",
            inst.name, read.resolved
        ),
        help: format!("write `{} {}` literally", read.via, read.resolved),
    }
}
