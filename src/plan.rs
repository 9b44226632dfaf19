//! The plan: a DAG of per-platform build nodes and per-instance manifest nodes, in a
//! deterministic topological order, with the exact podman command line of every build.
//!
//! Edges are per platform: `api@linux-arm64` waits for `base@linux-arm64` only, never for
//! `base@linux-amd64`. Dependencies come from `depends_on` and from the images each Dockerfile
//! reads (`FROM`, `COPY --from`), matched against the tags of the config's instances.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use rayon::iter::{IntoParallelRefIterator, ParallelIterator};
use serde::Serialize;

use crate::changes::Changes;
use crate::config::{Config, SecretSource};
use crate::dockerfile::{BaseRef, Dockerfile};
use crate::error::{ConfigError, ErrorKind, Source, suggest};
use crate::matrix::{Instance, platforms_of, qualified};
use crate::platform::Platform;
use crate::reference::{ImageRef, Repository};

/// The JSON format version of [`Plan`]; bumped on any incompatible change.
/// 2: `config` became `files`, for configs of several files; `changed_since` added.
pub const FORMAT_VERSION: u32 = 2;

/// Where local per-platform images are tagged before they join a manifest list.
pub const LOCAL_PREFIX: &str = "localhost/mab";

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub version: u32,
    /// The podman program and its global options, as every command below starts.
    pub podman: Vec<String>,
    /// Seconds a build may run (`[builder] timeout`), if limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Retries of a push or registry read after a transient failure (`[builder] retries`).
    pub retries: u32,
    /// The config files, as shown to the user.
    pub files: Vec<String>,
    /// The directory podman runs in; paths in `argv` are relative to it.
    pub workdir: PathBuf,
    /// Where the builds' secrets come from (files and environment variables, never values).
    pub secrets: Vec<SecretSource>,
    /// With `--changed-since`: the revision, and why each image was selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_since: Option<ChangedSince>,
    /// In an order that respects `depends_on`.
    pub builds: Vec<Build>,
    pub manifests: Vec<Manifest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangedSince {
    pub revision: String,
    /// In instance order.
    pub selected: Vec<Selected>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Selected {
    pub image: String,
    #[serde(flatten)]
    pub reason: Reason,
}

/// Why `--changed-since` selected an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A file of it changed (relative to the top of the git work tree).
    Changed(String),
    /// It depends on this selected image.
    DependsOn(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Changed(path) => write!(f, "changed: {path}"),
            Self::DependsOn(image) => write!(f, "depends on {image}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Build {
    /// `<instance>@<os>-<arch>[-<variant>]`.
    pub id: String,
    /// Where podman writes the id of the built image (`--iidfile`), relative to the workdir.
    pub iidfile: String,
    /// The instance name.
    pub image: String,
    pub platform: Platform,
    /// Build ids that must finish first.
    pub depends_on: Vec<String>,
    /// The local image the build produces.
    pub local_image: String,
    /// The podman command, as an argument vector.
    pub argv: Vec<String>,
    /// For a context that holds the run's state directory: the ignore file `argv` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignorefile: Option<IgnoreFile>,
}

/// An ignore file written before the builds start: the context's own, if any, plus a line that
/// keeps the state directory (logs that change on every run) out of the image and its cache key.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoreFile {
    /// Relative to the workdir.
    pub path: String,
    /// The context's `.containerignore` or `.dockerignore`, copied first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
    /// The state directory, relative to the context.
    pub exclude: String,
}

impl IgnoreFile {
    /// The file's text, given the base's.
    pub fn text(&self, base: &str) -> String {
        let sep = if base.is_empty() || base.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        format!("{base}{sep}{}\n", self.exclude)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub image: String,
    pub repository: Repository,
    /// Full references the manifest list is pushed to.
    pub tags: Vec<ImageRef>,
    pub platforms: Vec<Platform>,
    pub push: bool,
    /// The builds whose images the list holds.
    pub depends_on: Vec<String>,
    /// The local manifest list that is assembled and pushed.
    pub list: String,
    /// Removes a list of the same name left by an earlier run; fails when there is none.
    pub remove_stale: Vec<String>,
    /// Commands that assemble `list` afresh: create, then add each image.
    pub assemble: Vec<Vec<String>>,
    /// One per tag: the push command and the file it writes the pushed digest to.
    pub pushes: Vec<Push>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Push {
    pub tag: ImageRef,
    pub argv: Vec<String>,
    /// Where `podman manifest push --digestfile` writes the digest of the pushed index.
    pub digestfile: String,
    /// Reads the index back from the registry, to check it.
    pub verify: Vec<String>,
}

/// Where a run keeps the files podman writes for it, relative to the workdir.
pub const STATE_DIR: &str = ".mab";

/// What the command line selects.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Image names, instance names, qualified names (`services/api:api`) or globs; empty
    /// selects [`Config::default_patterns`] (a monorepo member's images, else everything).
    pub patterns: Vec<String>,
    /// Platforms to keep; empty keeps all.
    pub platforms: Vec<Platform>,
    /// Only the images these changes touch and their dependents (of those `patterns` match);
    /// their dependencies are not rebuilt.
    pub changes: Option<Changes>,
}

/// How a dependent build gets its dependency's local image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Redirect {
    /// `--build-context REF=container-image://LOCAL`, for a literal reference.
    Context(String),
    /// `--build-arg NAME=LOCAL`, for `FROM ${NAME}`, which podman 4.3 does not redirect.
    Arg(String),
}

#[derive(Debug, Clone)]
struct Edge {
    /// The instance depended on.
    dep: usize,
    /// Its build of the same platform (an index into its `builds`).
    dep_build: usize,
    redirects: BTreeSet<Redirect>,
}

pub fn build_id(name: &str, platform: &Platform) -> String {
    format!("{name}@{}", platform.slug())
}

pub fn local_image(name: &str, platform: &Platform) -> String {
    format!("{LOCAL_PREFIX}/{name}:{}", platform.slug())
}

fn platform_args(p: &Platform) -> BTreeMap<String, String> {
    [
        ("TARGETPLATFORM", p.to_string()),
        ("TARGETOS", p.os().to_string()),
        ("TARGETARCH", p.arch().to_string()),
        ("TARGETVARIANT", p.variant().unwrap_or_default().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Build nodes are numbered in (instance, build) order: node `offsets[i] + b` is build `b` of
/// instance `i`. Taking the smallest ready number first gives a deterministic order.
struct Graph<'a> {
    config: &'a Config,
    instances: &'a [Instance],
    /// Per instance, per build spec (same order as `Instance::builds`): its dependencies.
    edges: Vec<Vec<Vec<Edge>>>,
    offsets: Vec<usize>,
    /// Node number → (instance, build).
    nodes: Vec<(usize, usize)>,
    /// The podman program and global options that start every command.
    podman: Vec<String>,
}

/// The podman command prefix: `MAB_PODMAN` (split like a shell would, so it can carry global
/// options such as `--remote --connection ci`), else `[builder] podman`, then `global_args`.
pub fn podman_prefix(config: &Config) -> Vec<String> {
    let from_env = podman_prefix_from_env();
    let mut prefix = from_env.unwrap_or_else(|| vec![config.builder.podman.clone()]);
    prefix.extend(config.builder.global_args.iter().cloned());
    prefix
}

/// `MAB_PODMAN`, split like a shell would, if set and not empty.
pub fn podman_prefix_from_env() -> Option<Vec<String>> {
    std::env::var("MAB_PODMAN")
        .ok()
        .and_then(|v| shlex::split(&v))
        .filter(|v| !v.is_empty())
}

/// `skopeo inspect --raw` of `reference`, the way pushes reach its registry.
fn verify_argv(reference: &ImageRef, insecure: bool) -> Vec<String> {
    let mut argv: Vec<String> = ["skopeo", "inspect", "--raw"].map(String::from).to_vec();
    if insecure {
        argv.push("--tls-verify=false".into());
    }
    // skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF, which podman honours: pass it on.
    if let Some(conf) = std::env::var_os("CONTAINERS_REGISTRIES_CONF") {
        argv.extend([
            "--registries-conf".into(),
            conf.to_string_lossy().into_owned(),
        ]);
    }
    argv.push(format!("docker://{reference}"));
    argv
}

/// Makes the plan of `instances` (from [`crate::matrix::expand`]) for `selection`.
pub fn plan(
    config: &Config,
    instances: &[Instance],
    selection: &Selection,
) -> Result<Plan, ConfigError> {
    let graph = Graph::new(config, instances)?;
    let patterns = if selection.patterns.is_empty() {
        config.default_patterns()
    } else {
        selection.patterns.clone()
    };
    let (selected, changed_since) = match &selection.changes {
        Some(changes) => {
            let (selected, reasons) = graph.select_changed(changes, &patterns)?;
            (selected, Some(reasons))
        }
        None => (graph.select(&patterns)?, None),
    };
    graph.check_platforms(&selected, &selection.platforms)?;
    graph.check_cycles()?;
    Ok(Plan {
        changed_since,
        ..graph.into_plan(&selected, &selection.platforms)
    })
}

/// Lookups shared by the per-instance dependency analysis.
struct Index<'a> {
    config: &'a Config,
    instances: &'a [Instance],
    /// Qualified `repository:tag` → the instance pushing it.
    by_ref: HashMap<String, usize>,
    by_name: HashMap<&'a str, usize>,
    by_key: HashMap<&'a str, Vec<usize>>,
    /// Per image of the config: its Dockerfile, parsed once.
    dockerfiles: Vec<Dockerfile>,
}

impl<'a> Index<'a> {
    fn new(config: &'a Config, instances: &'a [Instance]) -> Result<Self, ConfigError> {
        let mut by_ref = HashMap::new();
        let mut by_name = HashMap::with_capacity(instances.len());
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, inst) in instances.iter().enumerate() {
            by_ref.extend(inst.tags.iter().map(|r| (r.qualified(), i)));
            by_name.insert(inst.name.as_str(), i);
            by_key.entry(inst.key.as_str()).or_default().push(i);
        }
        let dockerfiles = config
            .images
            .par_iter()
            .map(|def| Dockerfile::parse(def.dockerfile_source.text()))
            .collect();
        Ok(Self {
            config,
            instances,
            by_ref,
            by_name,
            by_key,
            dockerfiles,
        })
    }

    /// The dependencies of instance `i`, per platform (in the order of its builds).
    fn edges_of(&self, i: usize) -> Result<Vec<Vec<Edge>>, ConfigError> {
        let (config, instances) = (self.config, self.instances);
        let inst = &instances[i];
        let def = &config.images[inst.image];
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
        let (dockerfile, parsed) = (&def.dockerfile_source, &self.dockerfiles[inst.image]);
        let mut per_platform = Vec::with_capacity(inst.builds.len());
        for spec in &inst.builds {
            let mut deps: BTreeMap<usize, (BTreeSet<Redirect>, Origin)> = BTreeMap::new();
            for base in parsed.base_images(&spec.args, &platform_args(&spec.platform)) {
                let qualified = ImageRef::qualify_written(&base.resolved);
                let Some(&j) = qualified.and_then(|q| self.by_ref.get(&q)) else {
                    continue;
                };
                if j == i {
                    // An image built FROM its own earlier release reads it from the registry.
                    continue;
                }
                let redirect = match &base.via_arg {
                    Some(arg) => Redirect::Arg(arg.clone()),
                    None => Redirect::Context(base.resolved.clone()),
                };
                deps.entry(j)
                    .or_insert_with(|| (BTreeSet::new(), Origin::Dockerfile(base.clone())))
                    .0
                    .insert(redirect);
            }
            for (targets, span) in &explicit {
                for &j in targets {
                    // A dependency named only in depends_on: redirect every tag it is pushed
                    // to, so whichever the Dockerfile reads resolves to the local build.
                    deps.entry(j).or_insert_with(|| {
                        let all = instances[j]
                            .tags
                            .iter()
                            .map(|t| Redirect::Context(t.to_string()));
                        (all.collect(), Origin::DependsOn(span.clone()))
                    });
                }
            }
            let mut list = Vec::with_capacity(deps.len());
            for (j, (redirects, origin)) in deps {
                let dep = &instances[j];
                let Some(dep_build) = dep.builds.iter().position(|b| b.platform == spec.platform)
                else {
                    let platform = &spec.platform;
                    return Err(platform_mismatch(
                        config, dockerfile, inst, dep, platform, &origin,
                    ));
                };
                list.push(Edge {
                    dep: j,
                    dep_build,
                    redirects,
                });
            }
            per_platform.push(list);
        }
        Ok(per_platform)
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

impl<'a> Graph<'a> {
    fn new(config: &'a Config, instances: &'a [Instance]) -> Result<Self, ConfigError> {
        let index = Index::new(config, instances)?;
        let edges = crate::par::try_map(0..instances.len(), |i| index.edges_of(i))?;
        let mut offsets = Vec::with_capacity(instances.len());
        let mut nodes = Vec::new();
        for (i, inst) in instances.iter().enumerate() {
            offsets.push(nodes.len());
            nodes.extend((0..inst.builds.len()).map(|b| (i, b)));
        }
        Ok(Self {
            config,
            instances,
            edges,
            offsets,
            nodes,
            podman: podman_prefix(config),
        })
    }

    /// The nodes build `node` waits for.
    fn deps(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        let (i, b) = self.nodes[node];
        self.edges[i][b]
            .iter()
            .map(|e| self.offsets[e.dep] + e.dep_build)
    }

    /// The instances selected by the patterns, plus everything they depend on.
    fn select(&self, patterns: &[String]) -> Result<Vec<bool>, ConfigError> {
        let mut selected = self.named(patterns)?;
        let mut stack: Vec<usize> = (0..selected.len()).filter(|&i| selected[i]).collect();
        while let Some(i) = stack.pop() {
            for edge in self.edges[i].iter().flatten() {
                if !selected[edge.dep] {
                    selected[edge.dep] = true;
                    stack.push(edge.dep);
                }
            }
        }
        Ok(selected)
    }

    /// The instances the patterns name (all of them without patterns); a pattern that names
    /// none is an error.
    fn named(&self, patterns: &[String]) -> Result<Vec<bool>, ConfigError> {
        let mut named = vec![patterns.is_empty(); self.instances.len()];
        for pattern in patterns {
            let glob = glob::Pattern::new(pattern).map_err(|e| {
                ConfigError::new(
                    ErrorKind::Selection,
                    format!("`{pattern}` is not a valid image pattern: {e}"),
                )
            })?;
            let mut any = false;
            for (i, inst) in self.instances.iter().enumerate() {
                if self.matches(inst, pattern, &glob) {
                    named[i] = true;
                    any = true;
                }
            }
            if !any {
                let names = self
                    .instances
                    .iter()
                    .flat_map(|i| [i.key.as_str(), i.name.as_str()]);
                return Err(ConfigError::new(
                    ErrorKind::Selection,
                    format!("no image matches `{pattern}`"),
                )
                .with_help_opt(
                    suggest(pattern, names)
                        .or_else(|| Some(format!("images: {}", self.names().join(", ")))),
                ));
            }
        }
        Ok(named)
    }

    /// Whether a command-line pattern names the instance: its image's name or its own, plain,
    /// qualified by the file's directory, or matched as a glob.
    fn matches(&self, inst: &Instance, pattern: &str, glob: &glob::Pattern) -> bool {
        let file = &self.config.images[inst.image].file;
        inst.key == pattern
            || [&inst.name, &inst.key]
                .into_iter()
                .any(|name| glob.matches(name) || glob.matches(&qualified(file, name)))
    }

    /// `--changed-since`: the instances the changes touch, and everything that depends on
    /// them, transitively; with patterns, only those of them the patterns name.
    fn select_changed(
        &self,
        changes: &Changes,
        patterns: &[String],
    ) -> Result<(Vec<bool>, ChangedSince), ConfigError> {
        let config = self.config;
        let touched: Vec<Option<String>> = config
            .images
            .par_iter()
            .map(|def| changes.touching(def, &config.root).map(|p| changes.show(p)))
            .collect();
        let n = self.instances.len();
        let mut reasons: Vec<Option<Reason>> = self
            .instances
            .iter()
            .map(|inst| touched[inst.image].clone().map(Reason::Changed))
            .collect();
        let mut dependents: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        for (i, edges) in self.edges.iter().enumerate() {
            for e in edges.iter().flatten() {
                dependents[e.dep].insert(i);
            }
        }
        let mut queue: std::collections::VecDeque<usize> =
            (0..n).filter(|&i| reasons[i].is_some()).collect();
        while let Some(i) = queue.pop_front() {
            for &d in &dependents[i] {
                if reasons[d].is_none() {
                    reasons[d] = Some(Reason::DependsOn(self.instances[i].name.clone()));
                    queue.push_back(d);
                }
            }
        }
        // A pattern keeps what it names, without the dependencies `select` would add.
        let named = self.named(patterns)?;
        let selected: Vec<bool> = (0..n).map(|i| named[i] && reasons[i].is_some()).collect();
        let listed = (0..n)
            .filter(|&i| selected[i])
            .map(|i| Selected {
                image: self.instances[i].name.clone(),
                reason: reasons[i].clone().expect("selected ones have a reason"),
            })
            .collect();
        let changed_since = ChangedSince {
            revision: changes.since.clone(),
            selected: listed,
        };
        Ok((selected, changed_since))
    }

    fn check_platforms(
        &self,
        selected: &[bool],
        platforms: &[Platform],
    ) -> Result<(), ConfigError> {
        for p in platforms {
            let built = (0..self.instances.len())
                .any(|i| selected[i] && self.instances[i].builds.iter().any(|b| b.platform == *p));
            if !built && selected.iter().any(|s| *s) {
                return Err(ConfigError::new(
                    ErrorKind::Selection,
                    format!("no selected image is built for `{p}`"),
                ));
            }
        }
        Ok(())
    }

    fn names(&self) -> Vec<&str> {
        self.instances.iter().map(|i| i.name.as_str()).collect()
    }

    /// Depth-first search over build nodes; a back edge is a cycle, reported with its path.
    fn check_cycles(&self) -> Result<(), ConfigError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut mark = vec![Mark::New; self.nodes.len()];
        for root in 0..self.nodes.len() {
            if mark[root] != Mark::New {
                continue;
            }
            // Iterative DFS: (node, its dependencies, next one to visit).
            let mut stack: Vec<(usize, Vec<usize>, usize)> =
                vec![(root, self.deps(root).collect(), 0)];
            mark[root] = Mark::Open;
            while let Some((node, succ, next)) = stack.last_mut() {
                let Some(&s) = succ.get(*next) else {
                    mark[*node] = Mark::Done;
                    stack.pop();
                    continue;
                };
                *next += 1;
                match mark[s] {
                    Mark::New => {
                        mark[s] = Mark::Open;
                        stack.push((s, self.deps(s).collect(), 0));
                    }
                    Mark::Open => {
                        let start = stack
                            .iter()
                            .position(|(n, _, _)| *n == s)
                            .expect("open nodes are on the stack");
                        let path: Vec<usize> = stack[start..]
                            .iter()
                            .map(|(n, _, _)| self.nodes[*n].0)
                            .collect();
                        let (i, b) = self.nodes[s];
                        return Err(self.cycle_error(&path, &self.instances[i].builds[b].platform));
                    }
                    Mark::Done => {}
                }
            }
        }
        Ok(())
    }

    /// `path` lists instances where each depends on the next and the last on the first.
    fn cycle_error(&self, path: &[usize], platform: &Platform) -> ConfigError {
        // Print in build order: the dependency first, as `base -> api -> base`.
        let mut names: Vec<&str> = path
            .iter()
            .rev()
            .map(|&i| self.instances[i].name.as_str())
            .collect();
        names.push(names[0]);
        let mut err = ConfigError::new(
            ErrorKind::Cycle,
            format!("dependency cycle: {} (on {platform})", names.join(" -> ")),
        );
        for (k, &i) in path.iter().enumerate() {
            let next = &self.instances[path[(k + 1) % path.len()]];
            let inst = &self.instances[i];
            err = err.at(
                &self.config.images[inst.image].file.source,
                inst.name_span.clone(),
                Some(format!("`{}` depends on `{}`", inst.name, next.name)),
            );
        }
        err.with_help("remove one of these dependencies (from `depends_on`, or the `FROM` line that names the other image)")
    }

    fn into_plan(self, selected: &[bool], platforms: &[Platform]) -> Plan {
        let keep = |p: &Platform| platforms.is_empty() || platforms.contains(p);
        let kept: Vec<bool> = self
            .nodes
            .iter()
            .map(|&(i, b)| selected[i] && keep(&self.instances[i].builds[b].platform))
            .collect();
        // Kahn's algorithm, always taking the smallest ready node: a deterministic order that
        // lists a base before everything built on it.
        let mut waiting = vec![0usize; self.nodes.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for node in (0..self.nodes.len()).filter(|&n| kept[n]) {
            for dep in self.deps(node).filter(|&d| kept[d]) {
                waiting[node] += 1;
                dependents[dep].push(node);
            }
        }
        let mut ready: BinaryHeap<Reverse<usize>> = (0..self.nodes.len())
            .filter(|&n| kept[n] && waiting[n] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(Reverse(node)) = ready.pop() {
            order.push(self.nodes[node]);
            for &d in &dependents[node] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(Reverse(d));
                }
            }
        }
        debug_assert_eq!(
            order.len(),
            kept.iter().filter(|k| **k).count(),
            "cycles are rejected before ordering"
        );

        let builds: Vec<Build> = order
            .par_iter()
            .map(|&(i, b)| self.build(i, b, selected))
            .collect();
        let manifests = self
            .instances
            .iter()
            .enumerate()
            .filter(|(i, _)| selected[*i])
            .filter_map(|(_, inst)| {
                let platforms: Vec<Platform> = inst
                    .builds
                    .iter()
                    .map(|b| b.platform.clone())
                    .filter(|p| keep(p))
                    .collect();
                (!platforms.is_empty()).then(|| self.manifest(inst, platforms))
            })
            .collect();
        Plan {
            version: FORMAT_VERSION,
            podman: self.podman.clone(),
            timeout_secs: self.config.builder.timeout_secs,
            retries: self.config.builder.retries,
            files: self
                .config
                .files
                .iter()
                .map(|f| f.source.name().to_string())
                .collect(),
            workdir: self.config.root.clone(),
            changed_since: None,
            secrets: self.secrets(selected),
            builds,
            manifests,
        }
    }

    /// The secrets the selected builds use, once each.
    fn secrets(&self, selected: &[bool]) -> Vec<SecretSource> {
        let used = self
            .instances
            .iter()
            .enumerate()
            .filter(|(i, _)| selected[*i]);
        let all: BTreeSet<SecretSource> = used
            .flat_map(|(_, inst)| self.config.images[inst.image].secrets.values().cloned())
            .collect();
        all.into_iter().collect()
    }

    /// A podman command: the program and its global options, then `args`.
    fn podman_argv(&self, args: &[&str]) -> Vec<String> {
        self.podman
            .iter()
            .cloned()
            .chain(args.iter().map(|a| a.to_string()))
            .collect()
    }

    fn manifest(&self, inst: &Instance, platforms: Vec<Platform>) -> Manifest {
        let list = format!("{LOCAL_PREFIX}/{}:manifest", inst.name);
        // A list left by an earlier run would make `create` fail, and `build --manifest`
        // appends rather than replaces: always start from a fresh list. `manifest rm` (not
        // `rmi`, which on podman 4.3 can remove the images a list refers to) fails harmlessly
        // when there is no list.
        let remove_stale = self.podman_argv(&["manifest", "rm", &list]);
        let mut assemble = vec![self.podman_argv(&["manifest", "create", &list])];
        for p in &platforms {
            let mut add =
                self.podman_argv(&["manifest", "add", "--os", p.os(), "--arch", p.arch()]);
            if let Some(v) = p.variant() {
                add.extend(["--variant".into(), v.into()]);
            }
            add.extend([
                list.clone(),
                format!("containers-storage:{}", local_image(&inst.name, p)),
            ]);
            assemble.push(add);
        }
        let insecure = self.config.insecure(inst.repository.registry());
        let pushes = inst
            .tags
            .iter()
            .map(|tag| {
                let digestfile = format!("{STATE_DIR}/digest/{}@{}", inst.name, tag.tag);
                let mut argv =
                    self.podman_argv(&["manifest", "push", "--all", "--digestfile", &digestfile]);
                if insecure {
                    argv.push("--tls-verify=false".into());
                }
                argv.extend([list.clone(), format!("docker://{tag}")]);
                Push {
                    tag: tag.clone(),
                    argv,
                    digestfile,
                    verify: verify_argv(tag, insecure),
                }
            })
            .collect();
        Manifest {
            image: inst.name.clone(),
            repository: inst.repository.clone(),
            tags: inst.tags.clone(),
            depends_on: platforms.iter().map(|p| build_id(&inst.name, p)).collect(),
            platforms,
            push: inst.push,
            list,
            remove_stale,
            assemble,
            pushes,
        }
    }

    /// Build `b` of instance `i`; dependencies left out of the selection are read from the
    /// registry, as the Dockerfile says, not from a local build.
    /// Whether the context holds the state directory, which is in the workdir, and if so the
    /// ignore file that leaves it out (podman reads `--ignorefile` instead of the context's).
    fn ignorefile(&self, name: &str, context: &Path) -> Option<IgnoreFile> {
        // Only `.`, `..`, `../..`, ... hold the workdir: decided from the path's words, as
        // this runs for every build and the root is already free of links.
        let ups = context.components().try_fold(0, |ups, c| match c {
            Component::CurDir => Some(ups),
            Component::ParentDir => Some(ups + 1),
            _ => None,
        })?;
        let root = &self.config.root;
        let context = root.ancestors().nth(ups)?;
        let exclude = root.strip_prefix(context).ok()?.join(STATE_DIR);
        Some(IgnoreFile {
            path: format!("{STATE_DIR}/ignore/{name}"),
            base: crate::dockerfile::context_ignore_file(context),
            exclude: exclude.display().to_string(),
        })
    }

    fn build(&self, i: usize, b: usize, selected: &[bool]) -> Build {
        let inst = &self.instances[i];
        let spec = &inst.builds[b];
        let def = &self.config.images[inst.image];
        let p = &spec.platform;
        let mut args = spec.args.clone();
        let mut contexts = BTreeMap::new();
        let mut depends_on = Vec::new();
        for edge in self.edges[i][b].iter().filter(|e| selected[e.dep]) {
            let dep = &self.instances[edge.dep];
            let local = local_image(&dep.name, p);
            depends_on.push(build_id(&dep.name, p));
            for r in &edge.redirects {
                match r {
                    Redirect::Context(reference) => {
                        contexts.insert(reference.clone(), local.clone())
                    }
                    Redirect::Arg(name) => args.insert(name.clone(), local.clone()),
                };
            }
        }
        depends_on.sort();
        let local = local_image(&inst.name, p);
        let id = build_id(&inst.name, p);
        let iidfile = format!("{STATE_DIR}/iid/{id}");
        let mut argv = self.podman_argv(&[
            "build",
            "--platform",
            &p.to_string(),
            "--iidfile",
            &iidfile,
            "--file",
        ]);
        argv.push(def.dockerfile.display().to_string());
        argv.extend(["--tag".into(), local.clone()]);
        if let Some(epoch) = inst.source_date_epoch {
            argv.extend(["--timestamp".into(), epoch.to_string()]);
        }
        if let Some(t) = &spec.target {
            argv.extend(["--target".into(), t.clone()]);
        }
        let mut flag = |name: &str, map: &BTreeMap<String, String>| {
            for (k, v) in map {
                argv.extend([name.to_string(), format!("{k}={v}")]);
            }
        };
        flag("--build-arg", &args);
        flag("--label", &inst.labels);
        flag("--annotation", &inst.annotations);
        let contexts: BTreeMap<String, String> = contexts
            .into_iter()
            .map(|(k, v)| (k, format!("container-image://{v}")))
            .collect();
        flag("--build-context", &contexts);
        // Where podman reads each secret from; mab never reads the value into the plan.
        for (id, source) in &def.secrets {
            let spec = match source {
                SecretSource::File(path) => format!("id={id},src={}", path.display()),
                SecretSource::Env(var) => format!("id={id},env={var}"),
            };
            argv.extend(["--secret".to_string(), spec]);
        }
        let ignorefile = self.ignorefile(&inst.name, &def.context);
        if let Some(f) = &ignorefile {
            argv.extend(["--ignorefile".into(), f.path.clone()]);
        }
        argv.push(def.context.display().to_string());
        Build {
            ignorefile,
            id,
            iidfile,
            image: inst.name.clone(),
            platform: p.clone(),
            depends_on,
            local_image: local,
            argv,
        }
    }
}

/// Where a dependency was declared, for errors about it.
#[derive(Debug, Clone)]
enum Origin {
    Dockerfile(BaseRef),
    DependsOn(Range<usize>),
}

fn platform_mismatch(
    config: &Config,
    dockerfile: &Source,
    inst: &Instance,
    dep: &Instance,
    platform: &Platform,
    origin: &Origin,
) -> ConfigError {
    let message = format!(
        "image `{}` is built for {platform}, but its dependency `{}` is not (it builds {})",
        inst.name,
        dep.name,
        platforms_of(dep)
    );
    let def = &config.images[inst.image];
    let err = match origin {
        Origin::Dockerfile(base) => ConfigError::new(ErrorKind::PlatformMismatch, message)
            .at(
                dockerfile,
                base.span.clone(),
                Some(format!("reads `{}`", base.resolved)),
            )
            .at(
                &def.platforms_source,
                def.platforms_span.clone(),
                Some(format!("`{}` builds these platforms", inst.key)),
            ),
        Origin::DependsOn(span) => ConfigError::new(ErrorKind::PlatformMismatch, message)
            .at(
                &def.file.source,
                span.clone(),
                Some("dependency declared here"),
            )
            .at(
                &def.platforms_source,
                def.platforms_span.clone(),
                Some(format!("`{}` builds these platforms", inst.key)),
            ),
    };
    err.with_help(format!(
        "add {platform} to the platforms of `{}`, or drop it from `{}` (it builds {})",
        dep.key,
        inst.key,
        platforms_of(inst)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plans a scratch config: `files` are (path, text) pairs beside multiarch.toml; `{DIR}`
    /// in `config` stands for the name of the directory that holds them.
    fn plan_of(
        config: &str,
        files: &[(&str, &str)],
        selection: &Selection,
    ) -> Result<Plan, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let name = dir.path().file_name().unwrap().to_string_lossy();
        let config = config.replace("{DIR}", &name);
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let path = dir.path().join("multiarch.toml");
        std::fs::write(&path, config).unwrap();
        crate::plan_file(&path, &[], selection)
    }

    const HEAD: &str = "[defaults]\nregistry = \"r.io/a\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n[builder]\noci_labels = false\n";

    fn chain() -> Vec<(&'static str, &'static str)> {
        vec![
            ("z/Dockerfile", "FROM busybox\n"),
            ("m/Dockerfile", "FROM r.io/a/zbase:1\n"),
            ("a/Dockerfile", "ARG B=r.io/a/mid:1\nFROM ${B}\n"),
        ]
    }

    const CHAIN: &str = "[images.zbase]\ncontext = \"z\"\n[images.mid]\ncontext = \"m\"\n[images.app]\ncontext = \"a\"\n";

    #[test]
    fn order_respects_dependencies_and_edges_are_per_platform() {
        let plan = plan_of(&format!("{HEAD}{CHAIN}"), &chain(), &Selection::default()).unwrap();
        let ids: Vec<&str> = plan.builds.iter().map(|b| b.id.as_str()).collect();
        // Names sort app < mid < zbase, yet every build comes after what it depends on; among
        // ready builds the smallest (instance, platform) goes first.
        assert_eq!(
            ids,
            [
                "zbase@linux-amd64",
                "mid@linux-amd64",
                "app@linux-amd64",
                "zbase@linux-arm64",
                "mid@linux-arm64",
                "app@linux-arm64"
            ]
        );
        let app_arm = plan
            .builds
            .iter()
            .find(|b| b.id == "app@linux-arm64")
            .unwrap();
        assert_eq!(app_arm.depends_on, ["mid@linux-arm64"]);
        // FROM ${B}: the arg is pointed at the local build; a literal FROM gets a build context.
        assert!(
            app_arm
                .argv
                .contains(&"B=localhost/mab/mid:linux-arm64".to_string()),
            "{:?}",
            app_arm.argv
        );
        let mid_arm = plan
            .builds
            .iter()
            .find(|b| b.id == "mid@linux-arm64")
            .unwrap();
        assert!(mid_arm.argv.contains(
            &"r.io/a/zbase:1=container-image://localhost/mab/zbase:linux-arm64".to_string()
        ));
        let again = plan_of(&format!("{HEAD}{CHAIN}"), &chain(), &Selection::default()).unwrap();
        assert_eq!(
            serde_json::to_string(&again.builds).unwrap(),
            serde_json::to_string(&plan.builds).unwrap()
        );
    }

    #[test]
    fn selection_pulls_dependencies_and_filters_platforms() {
        let sel = Selection {
            patterns: vec!["app".into()],
            platforms: vec!["linux/arm64".parse().unwrap()],
            changes: None,
        };
        let plan = plan_of(&format!("{HEAD}{CHAIN}"), &chain(), &sel).unwrap();
        let ids: Vec<&str> = plan.builds.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(
            ids,
            ["zbase@linux-arm64", "mid@linux-arm64", "app@linux-arm64"]
        );
        assert!(plan.manifests.iter().all(|m| m.platforms.len() == 1));
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let files = [
            ("x/Dockerfile", "FROM r.io/a/y:1\n"),
            ("y/Dockerfile", "FROM r.io/a/z:1\n"),
            ("z/Dockerfile", "FROM scratch\n"),
        ];
        let config = format!(
            "{HEAD}[images.x]\ncontext = \"x\"\n[images.y]\ncontext = \"y\"\n[images.z]\ncontext = \"z\"\ndepends_on = [\"x\"]\n"
        );
        let err = plan_of(&config, &files, &Selection::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cycle);
        assert_eq!(
            err.message(),
            "dependency cycle: z -> y -> x -> z (on linux/amd64)"
        );
        // Without the back edge it plans.
        let config = config.replace("depends_on = [\"x\"]\n", "");
        assert_eq!(
            plan_of(&config, &files, &Selection::default())
                .unwrap()
                .builds
                .len(),
            6
        );
    }

    #[test]
    fn only_contexts_holding_the_workdir_get_an_ignore_file() {
        let files = [
            ("Dockerfile", "FROM scratch\n"),
            (".dockerignore", "*.md"),
            ("z/Dockerfile", "FROM scratch\n"),
        ];
        let config = format!(
            "{HEAD}[images.dot]\n[images.sub]\ncontext = \"z\"\n[images.up]\ncontext = \"z/../..\"\ndockerfile = \"{{DIR}}/Dockerfile\"\n"
        );
        let plan = plan_of(&config, &files, &Selection::default()).unwrap();
        // The parent of the project's directory holds it too: its name is in the exclusion.
        let dir = plan
            .workdir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let ignore = |id: &str| {
            let b = plan.builds.iter().find(|b| b.id == id).unwrap();
            b.ignorefile
                .as_ref()
                .map(|f| (f.exclude.clone(), f.base.is_some()))
        };
        assert_eq!(ignore("dot@linux-amd64"), Some((".mab".into(), true)));
        assert_eq!(ignore("sub@linux-amd64"), None);
        assert_eq!(
            ignore("up@linux-amd64"),
            Some((format!("{dir}/.mab"), false))
        );
        let f = plan.builds[0].ignorefile.as_ref().unwrap();
        assert_eq!(f.text("*.md"), "*.md\n.mab\n");
        assert_eq!(f.text(""), ".mab\n");
    }

    #[test]
    fn a_dependency_missing_a_platform_is_an_error() {
        let config = format!("{HEAD}{CHAIN}").replace(
            "[images.mid]\n",
            "[images.mid]\nplatforms = [\"linux/amd64\"]\n",
        );
        let err = plan_of(&config, &chain(), &Selection::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PlatformMismatch);
        assert!(
            err.message().starts_with(
                "image `app` is built for linux/arm64, but its dependency `mid` is not"
            ),
            "{}",
            err.message()
        );
    }
}
