//! The build graph: which builds the selection keeps, the checks on it, and their order.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use rayon::iter::{IntoParallelRefIterator, ParallelIterator};

use crate::changes::Changes;
use crate::config::{BuildPaths, Config, SecretSource};
use crate::error::{ConfigError, ErrorKind, suggest};
use crate::matrix::{Instance, qualified};
use crate::platform::Platform;

use super::deps::{Edge, Index, Needs};
use super::{Build, ChangedSince, FORMAT_VERSION, Plan, Reason, Selected, Warning, podman_prefix};

/// Build nodes are numbered in (instance, build) order: node `offsets[i] + b` is build `b` of
/// instance `i`. Taking the smallest ready number first gives a deterministic order.
pub(super) struct Graph<'a> {
    pub config: &'a Config,
    pub instances: &'a [Instance],
    /// Per instance, per build spec (same order as `Instance::builds`): what it needs.
    pub needs: Vec<Vec<Needs>>,
    /// Per instance: the warnings about it.
    warnings: Vec<Vec<Warning>>,
    offsets: Vec<usize>,
    /// Node number → (instance, build).
    nodes: Vec<(usize, usize)>,
    /// The podman program and global options that start every command.
    pub podman: Vec<String>,
}

impl<'a> Graph<'a> {
    pub fn new(config: &'a Config, instances: &'a [Instance]) -> Result<Self, ConfigError> {
        let index = Index::new(config, instances)?;
        let (needs, warnings) = crate::par::try_map(0..instances.len(), |i| index.needs_of(i))?
            .into_iter()
            .unzip();
        let mut offsets = Vec::with_capacity(instances.len());
        let mut nodes = Vec::new();
        for (i, inst) in instances.iter().enumerate() {
            offsets.push(nodes.len());
            nodes.extend((0..inst.builds.len()).map(|b| (i, b)));
        }
        Ok(Self {
            config,
            instances,
            needs,
            warnings,
            offsets,
            nodes,
            podman: podman_prefix(config),
        })
    }

    /// The nodes build `node` waits for.
    pub fn deps(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        let (i, b) = self.nodes[node];
        self.needs[i][b]
            .edges
            .iter()
            .map(|e| self.offsets[e.dep] + e.dep_build)
    }

    /// The instances selected by the patterns, plus everything they depend on.
    pub fn select(&self, patterns: &[String]) -> Result<Vec<bool>, ConfigError> {
        let mut selected = self.named(patterns)?;
        let mut stack: Vec<usize> = (0..selected.len()).filter(|&i| selected[i]).collect();
        while let Some(i) = stack.pop() {
            for edge in self.edges(i) {
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
    pub fn select_changed(
        &self,
        changes: &Changes,
        patterns: &[String],
    ) -> Result<(Vec<bool>, ChangedSince), ConfigError> {
        let config = self.config;
        // Per instance: its builds may read different paths (templated, or per platform).
        let mut reasons: Vec<Option<Reason>> = self
            .instances
            .par_iter()
            .map(|inst| {
                let mut paths: Vec<&BuildPaths> = Vec::with_capacity(inst.builds.len());
                for b in &inst.builds {
                    if !paths.iter().any(|p| std::ptr::eq(*p, &*b.paths)) {
                        paths.push(&b.paths);
                    }
                }
                let def = &config.images[inst.image];
                let touched = changes.touching(def, &paths, &config.root);
                touched.map(|p| Reason::Changed(changes.show(p)))
            })
            .collect();
        let n = self.instances.len();
        let mut dependents: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        for i in 0..n {
            for e in self.edges(i) {
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
        // A pattern keeps what it names, without the dependencies `select` would add...
        let named = self.named(patterns)?;
        let mut selected: Vec<bool> = (0..n).map(|i| named[i] && reasons[i].is_some()).collect();
        // ...except those no registry holds: they are built again.
        let mut stack: Vec<usize> = (0..n).filter(|&i| selected[i]).collect();
        while let Some(i) = stack.pop() {
            for e in self.edges(i) {
                let dep = &self.instances[e.dep];
                if !selected[e.dep] && !dep.push {
                    selected[e.dep] = true;
                    reasons[e.dep] = Some(Reason::NotPushed(self.instances[i].name.clone()));
                    stack.push(e.dep);
                }
            }
        }
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

    pub fn check_platforms(
        &self,
        selected: &[bool],
        platforms: &[Platform],
    ) -> Result<(), ConfigError> {
        for p in platforms {
            // An external platform counts: its list is assembled and pushed.
            let built = (0..self.instances.len()).any(|i| {
                let inst = &self.instances[i];
                selected[i]
                    && (inst.builds.iter().any(|b| b.platform == *p)
                        || inst.external.iter().any(|e| e.platform == *p))
            });
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
    pub fn check_cycles(&self) -> Result<(), ConfigError> {
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

    pub fn into_plan(self, selected: &[bool], platforms: &[Platform], push: bool) -> Plan {
        let keep = |p: &Platform| platforms.is_empty() || platforms.contains(p);
        let mut kept: Vec<bool> = self
            .nodes
            .iter()
            .map(|&(i, b)| selected[i] && keep(&self.instances[i].builds[b].platform))
            .collect();
        // A kept build may read a selected image on another platform (the build platform):
        // that build is kept too.
        let mut stack: Vec<usize> = (0..self.nodes.len()).filter(|&n| kept[n]).collect();
        while let Some(node) = stack.pop() {
            for d in self.deps(node).collect::<Vec<_>>() {
                if selected[self.nodes[d].0] && !std::mem::replace(&mut kept[d], true) {
                    stack.push(d);
                }
            }
        }
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

        let assignment = super::nodes::assign(
            self.config,
            order.iter().map(|&(i, b)| {
                let p = &self.instances[i].builds[b].platform;
                (super::build_id(&self.instances[i].name, p), p)
            }),
        );
        let builds: Vec<Build> = order
            .par_iter()
            .map(|&(i, b)| self.build(i, b, selected, &assignment, push))
            .collect();
        let mut manifests: Vec<super::Manifest> = self
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
                let external = inst.external.iter().any(|e| keep(&e.platform));
                (!platforms.is_empty() || external)
                    .then(|| self.manifest(inst, platforms, keep, &assignment))
            })
            .collect();
        if self.config.signing.is_some() {
            let conf = self.config.env.registries_conf.as_deref();
            let attachments = crate::sign::steps::attachments(&self.config.content);
            for m in manifests.iter_mut().filter(|m| m.push) {
                crate::sign::steps::add(m, None, &attachments, conf);
            }
        }
        Plan {
            version: FORMAT_VERSION,
            podman: self.podman.clone(),
            registries_conf: self.config.env.registries_conf.clone(),
            files: self
                .config
                .files
                .iter()
                .map(|f| f.source.name().to_string())
                .collect(),
            workdir: self.config.root.clone(),
            changed_since: None,
            unchanged: None,
            signing: self.config.signing.clone(),
            nodes: self
                .config
                .nodes
                .iter()
                .map(|n| super::PlanNode {
                    name: n.name.clone(),
                    address: match &n.address {
                        crate::config::Address::Local => "local".into(),
                        crate::config::Address::Url(u) => u.clone(),
                        crate::config::Address::Connection(c) => format!("connection {c}"),
                    },
                    platforms: n.platforms.clone(),
                    emulates: n.emulates.clone(),
                    jobs: n.jobs,
                    podman_args: n.podman_args(),
                })
                .collect(),
            warnings: self.warnings(selected),
            secrets: self.secrets(selected),
            builds,
            manifests,
            content: Default::default(),
        }
    }

    /// The warnings about the selected images, once each.
    fn warnings(&self, selected: &[bool]) -> Vec<Warning> {
        let all: BTreeSet<&Warning> = (0..self.instances.len())
            .filter(|&i| selected[i])
            .flat_map(|i| &self.warnings[i])
            .collect();
        all.into_iter().cloned().collect()
    }

    /// The edges of every build of instance `i`.
    fn edges(&self, i: usize) -> impl Iterator<Item = &Edge> {
        self.needs[i].iter().flat_map(|n| &n.edges)
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
}
