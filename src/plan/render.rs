//! The podman commands of a plan: each build's `podman build`, each manifest list's assembly,
//! push and verification.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Component, Path};

use crate::config::{Cache, SecretSource};
use crate::matrix::{Instance, NamedContext};
use crate::platform::Platform;
use crate::reference::{ImageRef, Repository};

use super::deps::Redirect;
use super::graph::Graph;
use super::nodes;
use super::{
    Base, Build, ExternalEntry, IgnoreFile, Inputs, Insertion, LOCAL_PREFIX, LabeledDockerfile,
    Manifest, PlatformTag, Publish, Reach, STATE_DIR, Step, build_id, local_image,
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
pub fn verify_argv(
    reference: &dyn std::fmt::Display,
    insecure: bool,
    registries_conf: Option<&OsStr>,
) -> Vec<String> {
    let mut argv: Vec<String> = ["skopeo", "inspect", "--raw"].map(String::from).to_vec();
    if insecure {
        argv.push("--tls-verify=false".into());
    }
    pass_registries_conf(&mut argv, registries_conf);
    argv.push(format!("docker://{reference}"));
    argv
}

/// skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF, which podman honours: pass it on.
fn pass_registries_conf(argv: &mut Vec<String>, registries_conf: Option<&OsStr>) {
    if let Some(conf) = registries_conf {
        argv.extend([
            "--registries-conf".into(),
            conf.to_string_lossy().into_owned(),
        ]);
    }
}

/// `skopeo copy` of the index `from` (`REPO@DIGEST`) to tag `to`, byte for byte, so that the
/// tag names the same digest; writes the digest to `digestfile`. `to` may be in another
/// repository or registry than `from` (skopeo then copies the blobs it lacks); `insecure` says
/// how each end is reached.
pub fn retag_argv(
    from: &str,
    to: &ImageRef,
    insecure: [bool; 2],
    registries_conf: Option<&OsStr>,
    digestfile: &str,
) -> Vec<String> {
    let mut argv: Vec<String> = [
        "skopeo",
        "copy",
        "--all",
        "--preserve-digests",
        "--digestfile",
        digestfile,
    ]
    .map(String::from)
    .to_vec();
    let [src, dest] = insecure;
    if src {
        argv.push("--src-tls-verify=false".into());
    }
    if dest {
        argv.push("--dest-tls-verify=false".into());
    }
    pass_registries_conf(&mut argv, registries_conf);
    argv.extend([format!("docker://{from}"), format!("docker://{to}")]);
    argv
}

/// Stands in a list's copies to its tags for the digest of the index pushed, until it is.
pub const PUSHED_INDEX: &str = "<digest of the pushed index>";

/// Stands in a platform's copy for the digest of that platform's image in the pushed index.
pub fn image_of(platform: &Platform) -> String {
    format!("<digest of its {platform} image>")
}

/// Stands in an `--atomic` restore for the digest the tag held before the run.
pub const HELD: &str = "<digest it held>";

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
        (Some(digest), _) => format!("{from}@{digest}"),
        (None, Some(p)) => format!("{from}@{}", image_of(p)),
        (None, None) => format!("{from}@{PUSHED_INDEX}"),
    };
    let insecure = [reach.insecure(from), reach.insecure(&tag.repository)];
    Step::Copy {
        argv: retag_argv(&source, tag, insecure, registries_conf, &file),
        index: index.map(String::from),
        verify: verify_argv(tag, insecure[1], registries_conf),
        restore: restore_argv(image, tag, reach, registries_conf),
        tag: tag.clone(),
        platform: platform.cloned(),
        digestfile: file,
    }
}

fn restore_argv(
    image: &str,
    tag: &ImageRef,
    reach: Reach,
    registries_conf: Option<&OsStr>,
) -> Vec<String> {
    let held = format!("{}@{HELD}", tag.repository);
    let file = digestfile(image, reach, tag);
    let insecure = reach.insecure(&tag.repository);
    retag_argv(&held, tag, [insecure; 2], registries_conf, &file)
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
            argv: verify_argv(tag, reach.insecure(&tag.repository), conf),
        })
        .collect();
    let to = marker.clone().unwrap_or_else(|| first.clone());
    let file = match &marker {
        Some(_) => format!("{STATE_DIR}/digest/{}@marker", list.image),
        None => digestfile(list.image, reach, &to),
    };
    let insecure = reach.insecure(&to.repository);
    let mut argv: Vec<String> = list
        .podman
        .iter()
        .cloned()
        .chain(["manifest", "push", "--all", "--digestfile", &file].map(String::from))
        .collect();
    if insecure {
        argv.push("--tls-verify=false".into());
    }
    argv.extend([list.list.to_string(), format!("docker://{to}")]);
    steps.push(Step::Push {
        verify: verify_argv(&to, insecure, conf),
        restore: marker
            .is_none()
            .then(|| restore_argv(list.image, &to, reach, conf)),
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

/// Stands in a command for the id of the image a build makes, until it is made.
pub const IMAGE_ID: &str = "<image id>";

/// Stands in a command for the digest build `id`'s node pushed its image under, until it has.
pub fn digest_of_build(id: &str) -> String {
    format!("<digest of {id}>")
}

/// Pushing the local image `local` to `repository` under a tag named by its id, which no
/// release tag can be (`podman` with the node's options, if any), and reading its digest back:
/// how an image built on another node, or by a split runner (`mab run --digests-out`), reaches
/// the lists, which read it by digest.
pub fn publish_by_digest(
    podman: &[String],
    repository: &Repository,
    insecure: bool,
    registries_conf: Option<&OsStr>,
    local: &str,
) -> Publish {
    let reference = format!("{repository}:mab-image-{IMAGE_ID}");
    let mut push = podman.to_vec();
    push.push("push".into());
    if insecure {
        push.push("--tls-verify=false".into());
    }
    push.extend([local.to_string(), format!("docker://{reference}")]);
    Publish {
        verify: verify_argv(&reference, insecure, registries_conf),
        reference,
        push,
    }
}

impl Graph<'_> {
    /// A podman command: the program and its global options, then `args`.
    fn podman_argv(&self, args: &[&str]) -> Vec<String> {
        self.podman
            .iter()
            .cloned()
            .chain(args.iter().map(|a| a.to_string()))
            .collect()
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
        let remove_stale = self.podman_argv(&["manifest", "rm", &list]);
        let mut assemble = vec![self.podman_argv(&["manifest", "create", &list])];
        for p in &platforms {
            let mut add =
                self.podman_argv(&["manifest", "add", "--os", p.os(), "--arch", p.arch()]);
            if let Some(v) = p.variant() {
                add.extend(["--variant".into(), v.into()]);
            }
            // An image built on another node reaches the list through the registry, by the
            // digest its node pushed, known once it is built.
            let id = build_id(&inst.name, p);
            let node = assignment.get(&id).map(|&n| &self.config.nodes[n]);
            let source = if nodes::is_local(node) {
                format!("containers-storage:{}", local_image(&inst.name, p))
            } else {
                if self.config.insecure(inst.repository.registry()) {
                    add.push("--tls-verify=false".into());
                }
                format!("docker://{}@{}", inst.repository, digest_of_build(&id))
            };
            add.extend([list.clone(), source]);
            assemble.push(add);
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
            remove_stale,
            assemble,
            external,
            publish,
        }
    }

    /// `manifest add` of an external platform: by its digest, or its tag until a run resolves it.
    fn external_entry(&self, list: &str, e: &crate::external::External) -> ExternalEntry {
        let p = &e.platform;
        let mut add = self.podman_argv(&["manifest", "add", "--os", p.os(), "--arch", p.arch()]);
        if let Some(v) = p.variant() {
            add.extend(["--variant".into(), v.into()]);
        }
        let insecure = self.config.insecure(e.from.repository.registry());
        if insecure {
            add.push("--tls-verify=false".into());
        }
        add.extend([list.to_string(), format!("docker://{}", e.from)]);
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

    pub(super) fn build(
        &self,
        i: usize,
        b: usize,
        selected: &[bool],
        assignment: &HashMap<String, usize>,
    ) -> Build {
        let inst = &self.instances[i];
        let spec = &inst.builds[b];
        let def = &self.config.images[inst.image];
        let node_of = |id: &str| assignment.get(id).copied();
        let own_node = node_of(&build_id(&inst.name, &spec.platform));
        let needs = &self.needs[i][b];
        let p = &spec.platform;
        let mut args = spec.args.clone();
        args.extend(needs.added_args.iter().cloned());
        let mut contexts = BTreeMap::new();
        let mut depends_on = Vec::new();
        let mut bases: Vec<(String, Platform)> = needs.bases.clone();
        let mut cross_node_insecure = false;
        for edge in &needs.edges {
            let dep = &self.instances[edge.dep];
            let dep_platform = &dep.builds[edge.dep_build].platform;
            // A dependency left out of the selection is read from the registry: a literal
            // reference as written, a named context or its arg by the image's first tag.
            // The dependency's image: local on the same node, else by the digest its node
            // pushes (`docker-image://`), or none when it is not built in this run.
            let image = if selected[edge.dep] {
                let dep_id = build_id(&dep.name, dep_platform);
                let local = node_of(&dep_id) == own_node;
                cross_node_insecure |= !local && self.config.insecure(dep.repository.registry());
                let image = if local {
                    (local_image(&dep.name, dep_platform), "container-image://")
                } else {
                    (
                        format!("{}@{}", dep.repository, digest_of_build(&dep_id)),
                        "docker-image://",
                    )
                };
                depends_on.push(dep_id);
                Some(image)
            } else {
                None
            };
            let published = || dep.tags.first().map(ToString::to_string);
            if image.is_none() {
                // Read from the registry: as much an input as any base image.
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
                        if let Some((image, scheme)) = &image {
                            contexts.insert(reference.clone(), format!("{scheme}{image}"));
                        }
                    }
                    Redirect::Named(name) => {
                        let to = match &image {
                            Some((image, scheme)) => Some(format!("{scheme}{image}")),
                            None => published().map(|t| format!("docker-image://{t}")),
                        };
                        contexts.extend(to.map(|to| (name.clone(), to)));
                    }
                    Redirect::Arg { name, named } => {
                        let to = image
                            .as_ref()
                            .map(|(image, _)| image.clone())
                            .or_else(|| named.then(published).flatten());
                        args.extend(to.map(|to| (name.clone(), to)));
                    }
                }
            }
        }
        // A dependency's platform taken `from` a registry image: read there, as written.
        for (r, from, platform) in &needs.external {
            bases.push((from.clone(), platform.clone()));
            match r {
                Redirect::Reference(reference) => {
                    contexts.insert(reference.clone(), format!("docker-image://{from}"));
                }
                Redirect::Named(name) => {
                    contexts.insert(name.clone(), format!("docker-image://{from}"));
                }
                Redirect::Arg { name, .. } => {
                    args.insert(name.clone(), from.clone());
                }
            }
        }
        let mut dirs = Vec::new();
        for (name, context) in &spec.contexts {
            let to = match context {
                NamedContext::Image { .. } => continue,
                NamedContext::Remote(to) => {
                    let image = ["docker-image://", "container-image://"]
                        .iter()
                        .find_map(|scheme| to.strip_prefix(scheme));
                    bases.extend(image.map(|r| (r.to_string(), p.clone())));
                    to.clone()
                }
                NamedContext::Dir(dir) => {
                    dirs.push(dir.clone());
                    dir.display().to_string()
                }
            };
            contexts.insert(name.clone(), to);
        }
        bases.sort();
        bases.dedup();
        depends_on.sort();
        let local = local_image(&inst.name, p);
        let id = build_id(&inst.name, p);
        let iidfile = format!("{STATE_DIR}/iid/{id}");
        let node = own_node.map(|n| &self.config.nodes[n]);
        let node_args = node.map(|n| n.podman_args()).unwrap_or_default();
        let mut argv = self.podman.clone();
        argv.extend(node_args.iter().cloned());
        argv.extend(
            [
                "build",
                "--platform",
                &p.to_string(),
                "--iidfile",
                &iidfile,
                "--file",
            ]
            .map(String::from),
        );
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
        match &labeled {
            Some(copy) => argv.push(copy.path.clone()),
            None => argv.push(spec.paths.dockerfile.display().to_string()),
        }
        argv.extend(["--tag".into(), local.clone()]);
        // A base that moved in its registry is used, as its digest in the inputs says; podman
        // falls back to the local copy when the registry cannot be reached.
        if bases
            .iter()
            .any(|(r, _)| registry_of(r) != "localhost" && !r.contains('@'))
        {
            argv.push("--pull=newer".into());
        }
        let mut insecure = cross_node_insecure
            || bases
                .iter()
                .any(|(r, _)| self.config.insecure(registry_of(r)));
        if let Some(cache) = &def.cache {
            let (from, to) = match cache {
                Cache::Registry => {
                    let repo = format!("{}/cache", inst.repository);
                    (Some(repo.clone()), Some(repo))
                }
                Cache::Refs { from, to } => (from.clone(), to.clone()),
            };
            // The registry cache works on the steps of a layered build only.
            argv.push("--layers".into());
            for (flag, repo) in [("--cache-from", from), ("--cache-to", to)] {
                if let Some(repo) = repo {
                    insecure |= self.config.insecure(registry_of(&repo));
                    argv.extend([flag.to_string(), repo]);
                }
            }
        }
        if insecure {
            argv.push("--tls-verify=false".into());
        }
        if let Some(epoch) = inst.source_date_epoch {
            argv.extend(["--timestamp".into(), epoch.to_string()]);
        }
        if let Some(t) = &needs.target {
            argv.extend(["--target".into(), t.clone()]);
        }
        let mut flag = |name: &str, map: &BTreeMap<String, String>| {
            for (k, v) in map {
                argv.extend([name.to_string(), format!("{k}={v}")]);
            }
        };
        flag("--build-arg", &args);
        if labeled.is_none() {
            flag("--label", &spec.labels.map);
        }
        flag("--annotation", &spec.annotations);
        flag("--build-context", &contexts);
        // Where podman reads each secret from; mab never reads the value into the plan.
        for (id, source) in &def.secrets {
            let spec = match source {
                SecretSource::File(path) => format!("id={id},src={}", path.display()),
                SecretSource::Env(var) => format!("id={id},env={var}"),
            };
            argv.extend(["--secret".to_string(), spec]);
        }
        let ignorefile = self.ignorefile(&inst.name, &spec.paths.context);
        if let Some(f) = &ignorefile {
            argv.extend(["--ignorefile".into(), f.path.clone()]);
        }
        argv.push(spec.paths.context.display().to_string());
        let inputs = Inputs {
            context: spec.paths.context.clone(),
            dockerfile: spec.paths.dockerfile.clone(),
            dirs,
            bases: bases
                .into_iter()
                .map(|(reference, platform)| Base {
                    insecure: self.config.insecure(registry_of(&reference)),
                    reference,
                    platform,
                    node_args: node_args.clone(),
                })
                .collect(),
            per_run_labels: spec.labels.per_run.clone(),
            labels: match &labeled {
                Some(_) => spec
                    .labels
                    .map
                    .iter()
                    .filter(|(k, _)| !spec.labels.per_run.contains(k))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
                None => Vec::new(),
            },
        };
        // From another node, the image goes to the registry under a tag named by its id, which
        // no release tag can be; lists and other nodes read it by the digest pushed.
        let publish = (!nodes::is_local(node)).then(|| {
            let insecure = self.config.insecure(inst.repository.registry());
            let podman: Vec<String> = self.podman.iter().chain(&node_args).cloned().collect();
            publish_by_digest(
                &podman,
                &inst.repository,
                insecure,
                self.config.env.registries_conf.as_deref(),
                &local,
            )
        });
        Build {
            node: node.map(|n| n.name.clone()),
            publish,
            inputs,
            ignorefile,
            id,
            iidfile,
            image: inst.name.clone(),
            platform: p.clone(),
            depends_on,
            local_image: local,
            argv,
            run_platforms: needs.run_platforms.clone(),
            features: needs.features.clone(),
            dockerfile: labeled,
        }
    }
}
