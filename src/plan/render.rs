//! The podman commands of a plan: each build's `podman build` (from its [`super::wiring`]) and,
//! on another node, its push; each manifest list's assembly. Publication is [`super::publish`].

use std::collections::HashMap;
use std::path::{Component, Path};

use crate::config::Cache;
use crate::matrix::{BuildSpec, Instance};
use crate::platform::Platform;
use crate::reference::{Repository, registry_of};

use super::build_command::{BuildCommand, CacheRefs};
use super::command::{Arg, Command, CommandKind, Hole, ImageForm};
use super::graph::Graph;
use super::nodes;
use super::publish::{ToPublish, inspect_command, publication};
use super::wiring::Wiring;
use super::{
    Add, Assembly, Base, Build, ExternalEntry, IgnoreFile, Inputs, Insertion, LOCAL_PREFIX,
    LabeledDockerfile, Manifest, PlatformTag, Publish, Reach, STATE_DIR, build_id, local_image,
};

impl Graph<'_> {
    /// A podman command: the program and its global options, then `args`.
    fn podman_command(&self, kind: CommandKind, args: &[&str]) -> Command {
        Command::new(kind, &self.podman, args.iter().copied())
    }

    pub(super) fn manifest(
        &self,
        inst: &Instance,
        platforms: Vec<Platform>,
        keep: impl Fn(&Platform) -> bool,
        assignment: &HashMap<String, usize>,
    ) -> Manifest {
        let list = format!("{LOCAL_PREFIX}/{}:manifest", inst.name);
        // A list left by an earlier run would make `create` fail, and `build --manifest`
        // appends rather than replaces: always start from a fresh list. `manifest rm` (not
        // `rmi`, which on podman 4.3 can remove the images a list refers to) fails harmlessly
        // when there is no list.
        let remove_stale =
            self.podman_command(CommandKind::ManifestRemove, &["manifest", "rm", &list]);
        let create =
            self.podman_command(CommandKind::ManifestCreate, &["manifest", "create", &list]);
        let mut adds = Vec::with_capacity(platforms.len());
        for p in &platforms {
            let mut add = self.podman_command(
                CommandKind::ManifestAdd,
                &["manifest", "add", "--os", p.os(), "--arch", p.arch()],
            );
            if let Some(v) = p.variant() {
                add.args(["--variant", v]);
            }
            // An image built on another node reaches the list through the registry, by the
            // digest its node pushed, known once it is built.
            let id = build_id(&inst.name, p);
            let node = assignment.get(&id).map(|&n| &self.config.nodes[n]);
            if nodes::is_local(node) {
                add.arg(&list).arg(Arg::local(
                    &id,
                    local_image(&inst.name, p),
                    ImageForm::Storage,
                ));
            } else {
                if self.config.insecure(inst.repository.registry()) {
                    add.arg("--tls-verify=false");
                }
                add.arg(&list).registry(Arg::holed(
                    format!("{}@", inst.repository),
                    Hole::DigestOf(id.clone()),
                    "",
                ));
            }
            adds.push(Add {
                build: id,
                command: add,
                input_digest: None,
            });
        }
        let external: Vec<ExternalEntry> = inst
            .external
            .iter()
            .filter(|e| keep(&e.platform))
            .map(|e| self.external_entry(&list, e))
            .collect();
        let insecure = self.config.insecure(inst.repository.registry());
        let platform_tags: Vec<PlatformTag> = inst
            .builds
            .iter()
            .filter(|b| platforms.contains(&b.platform))
            .flat_map(|b| {
                b.tags.iter().map(|tag| PlatformTag {
                    platform: b.platform.clone(),
                    tag: tag.clone(),
                })
            })
            .collect();
        let mut insecure_elsewhere: Vec<String> = Vec::new();
        for tag in inst.tags.iter().chain(platform_tags.iter().map(|p| &p.tag)) {
            let registry = tag.repository.registry();
            if registry != inst.repository.registry()
                && self.config.insecure(registry)
                && !insecure_elsewhere.iter().any(|r| r == registry)
            {
                insecure_elsewhere.push(registry.to_string());
            }
        }
        let publish = publication(
            &ToPublish {
                podman: &self.podman,
                image: &inst.name,
                list: &list,
                tags: &inst.tags,
                platform_tags: &platform_tags,
                reach: Reach {
                    repository: &inst.repository,
                    insecure,
                    elsewhere: &insecure_elsewhere,
                },
                registries_conf: self.config.env.registries_conf.as_deref(),
            },
            // A signed index reaches its release tags only once signed.
            self.config
                .signing
                .as_ref()
                .map(|_| crate::sign::steps::staging_tag(&inst.repository, &inst.name)),
        );
        Manifest {
            image: inst.name.clone(),
            repository: inst.repository.clone(),
            tags: inst.tags.clone(),
            depends_on: platforms.iter().map(|p| build_id(&inst.name, p)).collect(),
            insecure,
            insecure_elsewhere,
            platform_tags,
            // The built platforms (in `depends_on` order), then the external ones.
            platforms: platforms
                .into_iter()
                .chain(external.iter().map(|e| e.platform.clone()))
                .collect(),
            push: inst.push,
            list,
            remove_stale: Some(remove_stale),
            assemble: Assembly {
                create: Some(create),
                adds,
            },
            external,
            publish,
        }
    }

    /// `manifest add` of an external platform: by its digest, or its tag until a run resolves it.
    fn external_entry(&self, list: &str, e: &crate::external::External) -> ExternalEntry {
        let p = &e.platform;
        let mut add = self.podman_command(
            CommandKind::ManifestAdd,
            &["manifest", "add", "--os", p.os(), "--arch", p.arch()],
        );
        if let Some(v) = p.variant() {
            add.args(["--variant", v]);
        }
        let insecure = self.config.insecure(e.from.repository.registry());
        if insecure {
            add.arg("--tls-verify=false");
        }
        add.arg(list).registry(e.from.to_string());
        ExternalEntry {
            platform: p.clone(),
            from: e.from.clone(),
            at: e.at.clone(),
            insecure,
            digest: e.from.digest().map(String::from),
            add,
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

    /// Build `b` of instance `i`: its wiring, then its `podman build`, its inputs and, on
    /// another node, the push that brings its image to the lists. With `push` false
    /// (`--no-push`) nothing leaves the machine: no cache layers are pushed either.
    pub(super) fn build(
        &self,
        i: usize,
        b: usize,
        selected: &[bool],
        assignment: &HashMap<String, usize>,
        push: bool,
    ) -> Build {
        let inst = &self.instances[i];
        let spec = &inst.builds[b];
        let def = &self.config.images[inst.image];
        let needs = &self.needs[i][b];
        let p = &spec.platform;
        let wiring = self.wire(i, b, selected, assignment);
        let local = local_image(&inst.name, p);
        let id = build_id(&inst.name, p);
        let iidfile = format!("{STATE_DIR}/iid/{id}");
        let node = assignment.get(&id).map(|&n| &self.config.nodes[n]);
        let node_args = node.map(|n| n.podman_args()).unwrap_or_default();
        let label = needs.label.as_ref().map(|at| Insertion {
            offset: at.offset,
            after_line: at.after_line,
            instruction: at.instruction.clone(),
        });
        let labeled = (label.is_some() || needs.declare.is_some()).then(|| LabeledDockerfile {
            path: format!("{STATE_DIR}/dockerfiles/{id}"),
            base: spec.paths.dockerfile.clone(),
            label,
            declare: needs.declare.clone(),
        });
        let cache = def.cache.as_ref().map(|cache| match cache {
            Cache::Registry => {
                let repo = format!("{}/cache", inst.repository);
                CacheRefs {
                    from: Some(repo.clone()),
                    to: Some(repo),
                }
            }
            Cache::Refs { from, to } => CacheRefs {
                from: from.clone(),
                to: to.clone(),
            },
        });
        let bases = &wiring.bases;
        let cache_insecure = cache.iter().any(|c| {
            [&c.from, &c.to]
                .into_iter()
                .flatten()
                .any(|repo| self.config.insecure(registry_of(repo)))
        });
        let insecure = wiring.cross_node_insecure
            || bases
                .iter()
                .any(|(r, _)| self.config.insecure(registry_of(r)))
            || cache_insecure;
        let ignorefile = self.ignorefile(&inst.name, &spec.paths.context);
        let argv = BuildCommand {
            podman: &self.podman,
            node_args: &node_args,
            platform: p,
            iidfile: &iidfile,
            file: match &labeled {
                Some(copy) => copy.path.clone(),
                None => spec.paths.dockerfile.display().to_string(),
            },
            tag: &local,
            // A base that moved in its registry is used, as its digest in the inputs says;
            // podman falls back to the local copy when the registry cannot be reached.
            pull_newer: bases
                .iter()
                .any(|(r, _)| registry_of(r) != "localhost" && !r.contains('@')),
            cache: cache.map(|c| CacheRefs {
                to: c.to.filter(|_| push),
                ..c
            }),
            insecure,
            timestamp: inst.source_date_epoch,
            target: needs.target.as_deref(),
            args: &wiring.args,
            labels: labeled.is_none().then_some(&spec.labels.map),
            per_run_labels: &spec.labels.per_run,
            annotations: &spec.annotations,
            contexts: &wiring.contexts,
            secrets: &def.secrets,
            ignorefile: ignorefile.as_ref().map(|f| f.path.as_str()),
            context: &spec.paths.context,
        }
        .command();
        let inputs = self.inputs(spec, &wiring, labeled.is_some(), &node_args);
        let publish = (!nodes::is_local(node)).then(|| self.publish(inst, &local, &node_args));
        Build {
            node: node.map(|n| n.name.clone()),
            publish,
            inputs,
            ignorefile,
            id,
            iidfile,
            image: inst.name.clone(),
            platform: p.clone(),
            depends_on: wiring.depends_on,
            local_image: local,
            argv,
            build_args: wiring.args,
            insecure,
            run_platforms: needs.run_platforms.clone(),
            features: needs.features.clone(),
            dockerfile: labeled,
        }
    }

    /// What decides a build's image besides its command line.
    fn inputs(
        &self,
        spec: &BuildSpec,
        wiring: &Wiring,
        labeled: bool,
        node_args: &[String],
    ) -> Inputs {
        Inputs {
            context: spec.paths.context.clone(),
            dockerfile: spec.paths.dockerfile.clone(),
            dirs: wiring.dirs.clone(),
            bases: wiring
                .bases
                .iter()
                .map(|(reference, platform)| Base {
                    insecure: self.config.insecure(registry_of(reference)),
                    reference: reference.clone(),
                    platform: platform.clone(),
                    node_args: node_args.to_vec(),
                })
                .collect(),
            per_run_labels: spec.labels.per_run.clone(),
            labels: if labeled {
                spec.labels
                    .map
                    .iter()
                    .filter(|(k, _)| !spec.labels.per_run.contains(k))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// From another node, the image goes to the registry under a tag named by its id, which
    /// no release tag can be; lists and other nodes read it by the digest pushed.
    fn publish(&self, inst: &Instance, local: &str, node_args: &[String]) -> Publish {
        let podman: Vec<String> = self.podman.iter().chain(node_args).cloned().collect();
        publish_by_digest(
            &podman,
            &inst.repository,
            self.config.insecure(inst.repository.registry()),
            self.config.env.registries_conf.as_deref(),
            local,
        )
    }
}

/// Pushing the local image `local` to `repository` under a tag named by its id, which no
/// release tag can be (`podman` is the program with the node's options, if any), and reading
/// its digest back: how an image built on another node, or by a split runner
/// (`mab run --digests-out`), reaches the lists, which read it by digest.
pub fn publish_by_digest(
    podman: &[String],
    repository: &Repository,
    insecure: bool,
    registries_conf: Option<&std::ffi::OsStr>,
    local: &str,
) -> Publish {
    let reference = Arg::holed(format!("{repository}:mab-image-"), Hole::ImageId, "");
    let mut push = Command::new(CommandKind::PushImage, podman, std::iter::empty::<Arg>());
    push.arg("push");
    if insecure {
        push.arg("--tls-verify=false");
    }
    push.arg(local).registry(reference.clone());
    Publish {
        repository: repository.clone(),
        verify: inspect_command(reference.clone(), insecure, registries_conf),
        reference,
        push,
        insecure,
    }
}
