//! Each build's dependencies: what its Dockerfile reads from the stages its target reaches,
//! matched against the config's images, each on the platform it is read on; its named contexts;
//! and `depends_on`. [`reads`] finds what a Dockerfile reads, [`resolve`] what a name stands
//! for, [`edges`] joins each to the build of its platform; [`dockerfiles`] parses each once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use crate::config::Config;
use crate::dockerfile::{self, Read};
use crate::error::ConfigError;
use crate::matrix::{Instance, Labels};
use crate::platform::Platform;

use super::Warning;

mod dockerfiles;
mod edges;
mod reads;
mod resolve;

use dockerfiles::{Parsed, parse_dockerfiles};

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
                warnings.push(reads::unread(inst, &self.instances[j]));
            }
        }
        Ok((out, warnings))
    }
}
