//! The podman commands of a plan: each build's `podman build`, each manifest list's assembly,
//! push and verification.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Component, Path};

use crate::config::Cache;
use crate::matrix::{BuildSpec, Instance};
use crate::platform::Platform;
use crate::reference::{ImageRef, Repository};

use super::build_command::{BuildCommand, CacheRefs};
use super::command::{Arg, Command, CommandKind, Hole};
use super::graph::Graph;
use super::nodes;
use super::wiring::Wiring;
use super::{
    Add, Assembly, Base, Build, ExternalEntry, IgnoreFile, Inputs, Insertion, LOCAL_PREFIX,
    LabeledDockerfile, Manifest, PlatformTag, Publish, Reach, STATE_DIR, Step, build_id,
    local_image,
};

/// The registry part of an image reference as a `FROM` line writes it (`docker.io` for
/// `debian:12`, `localhost` for `localhost/x`).
pub fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// `skopeo inspect --raw` of `reference`, the way pushes reach its registry.
pub fn inspect_command(
    reference: impl Into<Arg>,
    insecure: bool,
    registries_conf: Option<&OsStr>,
) -> Command {
    let mut c = Command::new(CommandKind::Inspect, ["skopeo"], ["inspect", "--raw"]);
    if insecure {
        c.arg("--tls-verify=false");
    }
    pass_registries_conf(&mut c, registries_conf);
    c.arg(reference.into().prefixed("docker://"));
    c
}

/// skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF, which podman honours: pass it on.
fn pass_registries_conf(c: &mut Command, registries_conf: Option<&OsStr>) {
    if let Some(conf) = registries_conf {
        c.args([
            "--registries-conf".into(),
            conf.to_string_lossy().into_owned(),
        ]);
    }
}

/// `skopeo copy` of the index `from` (`REPO@DIGEST`) to tag `to`, byte for byte, so that the
/// tag names the same digest; writes the digest to `digestfile`. `to` may be in another
/// repository or registry than `from` (skopeo then copies the blobs it lacks); `insecure` says
/// how each end is reached.
pub fn copy_command(
    from: Arg,
    to: &ImageRef,
    insecure: [bool; 2],
    registries_conf: Option<&OsStr>,
    digestfile: &str,
) -> Command {
    let mut c = Command::new(
        CommandKind::Copy,
        ["skopeo"],
        [
            "copy",
            "--all",
            "--preserve-digests",
            "--digestfile",
            digestfile,
        ],
    );
    let [src, dest] = insecure;
    if src {
        c.arg("--src-tls-verify=false");
    }
    if dest {
        c.arg("--dest-tls-verify=false");
    }
    pass_registries_conf(&mut c, registries_conf);
    c.args([
        from.prefixed("docker://"),
        Arg::Lit(format!("docker://{to}")),
    ]);
    c
}

/// Where a list's step for `reference` (a tag or the marker) has skopeo or podman write the
/// digest, relative to the workdir: named by the tag in the list's own repository, by the
/// whole reference (`/` as `+`, which no reference holds) in another.
fn digestfile(image: &str, reach: Reach, reference: &ImageRef) -> String {
    if reference.repository == *reach.repository {
        format!("{STATE_DIR}/digest/{image}@{}", reference.tag)
    } else {
        let flat = reference.to_string().replace('/', "+");
        format!("{STATE_DIR}/digest/{image}@{flat}")
    }
}

/// Pointing `tag` at the index of list `image` by a copy in the registry, read back after,
/// with the restore that `--atomic` runs after a failure. The index is in repository `from`:
/// `index` when the registry holds it already, else the one the list's push makes.
pub fn copy_step(
    image: &str,
    (from, index): (&Repository, Option<&str>),
    (tag, platform): (&ImageRef, Option<&Platform>),
    reach: Reach,
    registries_conf: Option<&OsStr>,
) -> Step {
    let file = digestfile(image, reach, tag);
    let source = match (index, platform) {
        (Some(digest), _) => Arg::Lit(format!("{from}@{digest}")),
        (None, Some(p)) => Arg::holed(format!("{from}@"), Hole::ImageOf(p.clone()), ""),
        (None, None) => Arg::holed(format!("{from}@"), Hole::PushedIndex, ""),
    };
    let insecure = [reach.insecure(from), reach.insecure(&tag.repository)];
    Step::Copy {
        argv: copy_command(source, tag, insecure, registries_conf, &file),
        index: index.map(String::from),
        verify: inspect_command(tag.to_string(), insecure[1], registries_conf),
        restore: restore_command(image, tag, reach, registries_conf),
        tag: tag.clone(),
        platform: platform.cloned(),
        digestfile: file,
    }
}

fn restore_command(
    image: &str,
    tag: &ImageRef,
    reach: Reach,
    registries_conf: Option<&OsStr>,
) -> Command {
    let held = Arg::holed(format!("{}@", tag.repository), Hole::Held, "");
    let file = digestfile(image, reach, tag);
    let insecure = reach.insecure(&tag.repository);
    copy_command(held, tag, [insecure; 2], registries_conf, &file)
}

/// What a list's publication needs to know of it.
pub struct ToPublish<'a> {
    /// The podman program and its global options.
    pub podman: &'a [String],
    /// The instance name.
    pub image: &'a str,
    /// The local manifest list.
    pub list: &'a str,
    pub tags: &'a [ImageRef],
    pub platform_tags: &'a [PlatformTag],
    pub reach: Reach<'a>,
    pub registries_conf: Option<&'a OsStr>,
}

/// The publication of a list: what each tag holds is recorded, the index is pushed once (to
/// `marker`, else to the first tag) and read back, then every other tag is pointed at it by a
/// copy in the registry (from the repository it was pushed to, to each tag's, which may be in
/// another registry). No tag gets an index of its own push, so all hold the same bytes.
pub fn publication(list: &ToPublish, marker: Option<ImageRef>) -> Vec<Step> {
    let Some(first) = list.tags.first() else {
        return Vec::new();
    };
    let conf = list.registries_conf;
    let reach = list.reach;
    let own = list.platform_tags.iter().map(|p| &p.tag);
    let mut steps: Vec<Step> = list
        .tags
        .iter()
        .chain(own)
        .map(|tag| Step::Record {
            tag: tag.clone(),
            argv: inspect_command(tag.to_string(), reach.insecure(&tag.repository), conf),
        })
        .collect();
    let to = marker.clone().unwrap_or_else(|| first.clone());
    let file = match &marker {
        Some(_) => format!("{STATE_DIR}/digest/{}@marker", list.image),
        None => digestfile(list.image, reach, &to),
    };
    let insecure = reach.insecure(&to.repository);
    let mut argv = Command::new(
        CommandKind::ManifestPush,
        list.podman,
        ["manifest", "push", "--all", "--digestfile", &file],
    );
    if insecure {
        argv.arg("--tls-verify=false");
    }
    argv.args([list.list.to_string(), format!("docker://{to}")]);
    steps.push(Step::Push {
        verify: inspect_command(to.to_string(), insecure, conf),
        restore: marker
            .is_none()
            .then(|| restore_command(list.image, &to, reach, conf)),
        marker: marker.is_some(),
        digestfile: file,
        argv,
        to: to.clone(),
    });
    let copied = if marker.is_some() {
        list.tags
    } else {
        &list.tags[1..]
    };
    let from = (&to.repository, None);
    steps.extend(
        copied
            .iter()
            .map(|tag| copy_step(list.image, from, (tag, None), reach, conf)),
    );
    // Each platform's tags get its image, read from the index pushed.
    steps.extend(
        list.platform_tags
            .iter()
            .map(|p| copy_step(list.image, from, (&p.tag, Some(&p.platform)), reach, conf)),
    );
    steps
}

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
            let source = if nodes::is_local(node) {
                Arg::Lit(format!("containers-storage:{}", local_image(&inst.name, p)))
            } else {
                if self.config.insecure(inst.repository.registry()) {
                    add.arg("--tls-verify=false");
                }
                Arg::holed(
                    format!("docker://{}@", inst.repository),
                    Hole::DigestOf(id.clone()),
                    "",
                )
            };
            add.args([Arg::Lit(list.clone()), source]);
            adds.push(Add {
                build: id,
                command: add,
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
            None,
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
        add.args([list.to_string(), format!("docker://{}", e.from)]);
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
        let reference = Arg::holed(format!("{}:mab-image-", inst.repository), Hole::ImageId, "");
        let insecure = self.config.insecure(inst.repository.registry());
        let mut push = Command::new(CommandKind::PushImage, &self.podman, node_args);
        push.arg("push");
        if insecure {
            push.arg("--tls-verify=false");
        }
        push.args([Arg::from(local), reference.clone().prefixed("docker://")]);
        Publish {
            verify: inspect_command(
                reference.clone(),
                insecure,
                self.config.env.registries_conf.as_deref(),
            ),
            reference,
            push,
        }
    }
}
