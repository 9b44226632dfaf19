//! What the registry already holds: before a run builds anything, each base image is resolved
//! to a digest, every build's input digest is computed ([`crate::inputs`]), and each pushed list
//! is looked up under its marker tag (`mab-inputs-HEX`). A list found there with the same input
//! digest on every platform is unchanged: its builds do not run, its tags that do not point at
//! it yet are added, and its dependents read its images from the registry by digest.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::inputs::{self, ANNOTATION, Digests, Resolved};
use crate::plan::{
    Base, BuildIx, Command, CommandKind, Manifest, Plan, Step, ToPublish, Unchanged, copy_step,
    inspect_command, publication, registry_of,
};
use crate::platform::Platform;
use crate::reference::{ImageRef, Pinned, Tag, pinned_digest};

use super::report::Held;
use super::runner::{Failure, Runner, error_line};
use super::verify::entries;

/// A list whose inputs the registry holds.
#[derive(Debug, Clone)]
pub struct Published {
    /// The digest of the index.
    pub index: String,
    /// Per build of the list (in its `depends_on` order): the image's digest in the index.
    pub images: Vec<String>,
    /// Per reference of the list ([`Manifest::references`]): what it holds (none: the
    /// registry could not say).
    pub held: Vec<Option<Held>>,
}

impl Published {
    /// What a reference of `man` is to hold: the index, or, for a platform's tag, that
    /// platform's image in it.
    pub fn wanted(&self, man: &Manifest, platform: Option<&Platform>) -> Option<&str> {
        match platform {
            None => Some(&self.index),
            Some(p) => {
                let i = man.platforms.iter().position(|q| q == p)?;
                self.images.get(i).map(String::as_str)
            }
        }
    }

    /// Per reference of `man`: whether it already holds what it is to.
    pub fn in_place<'a>(&'a self, man: &'a Manifest) -> impl Iterator<Item = bool> + 'a {
        man.references().zip(&self.held).map(|((_, platform), h)| {
            let wanted = self.wanted(man, platform);
            wanted.is_some() && h.as_ref().and_then(Held::digest) == wanted
        })
    }
}

/// What a run does with a list.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// It is built: nothing published has its inputs, or it is not pushed. The reason, when
    /// the registry could not tell.
    Build(Option<String>),
    Unchanged(Published),
}

/// Everything the registry said, with the input digests.
pub struct Checked {
    pub digests: Digests,
    pub verdicts: Vec<Verdict>,
}

/// Registry reads at once: they wait on the network, not on the CPU.
const READERS: usize = 8;

/// The digest podman builds on for `base` (its `--pull=newer`): the registry's, else the local
/// copy's; `localhost/` images and digests as they are.
fn resolve(plan: &Plan, runner: &Runner, base: &Base, log: &Path) -> Result<String, String> {
    if let Some(digest) = pinned_digest(&base.reference) {
        return Ok(digest.to_string());
    }
    // A local image is the storage's of the node that reads it.
    let podman = |kind: CommandKind, args: &[&str]| -> Command {
        Command::new(
            kind,
            plan.podman.iter().chain(&base.node_args),
            args.iter().copied(),
        )
    };
    let mut why = String::new();
    if registry_of(&base.reference) != "localhost" {
        let argv = inspect_command(
            base.reference.as_str(),
            base.insecure,
            plan.registries_conf.as_deref(),
        );
        match runner.read(&argv, log) {
            Ok(Some(raw)) => return Ok(inputs::digest_of(&raw)),
            Ok(None) => why = "not in its registry".into(),
            Err(f) => why = attempt_reason(&f),
        }
    }
    // A local list (all its platforms), else a local image.
    let list = podman(
        CommandKind::ManifestInspect,
        &["manifest", "inspect", &base.reference],
    );
    if let Ok(Some(raw)) = runner.read(&list, log) {
        return Ok(inputs::digest_of(&raw));
    }
    let image = podman(
        CommandKind::ImageInspect,
        &["image", "inspect", "--format", "{{.Id}}", &base.reference],
    );
    match runner.read(&image, log) {
        Ok(Some(id)) => Ok(format!("id:{}", String::from_utf8_lossy(&id).trim())),
        _ if why.is_empty() => Err("not in local storage".into()),
        _ => Err(format!("{why}, and not in local storage")),
    }
}

fn attempt_reason(f: &Failure) -> String {
    f.attempt
        .as_deref()
        .map(error_line)
        .filter(|l| !l.is_empty())
        .unwrap_or(&f.reason)
        .to_string()
}

/// Reads what the registry holds for each of the plan's lists, and the input digests.
pub(super) fn check(plan: &Plan, runner: &Runner, logs: &Path) -> std::io::Result<Checked> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(READERS)
        .build()
        .map_err(std::io::Error::other)?;
    let mut bases: Vec<&Base> = plan.builds.iter().flat_map(|b| &b.inputs.bases).collect();
    bases.sort();
    bases.dedup();
    // The files are hashed while the base images resolve: one waits on the disk, the other
    // on registries.
    let (resolved, hashed): (Resolved, _) = pool.install(|| {
        rayon::join(
            || {
                // A reference resolves to one digest (an index), whatever platform reads it.
                let mut refs: Vec<&Base> = bases.clone();
                refs.dedup_by(|a, b| {
                    a.reference == b.reference
                        && a.insecure == b.insecure
                        && a.node_args == b.node_args
                });
                let key = |b: &Base| (b.reference.clone(), b.insecure, b.node_args.clone());
                let digests: std::collections::HashMap<_, Result<String, String>> = refs
                    .par_iter()
                    .enumerate()
                    .map(|(n, base)| {
                        let log = logs.join(format!("base-{n}.log"));
                        (key(base), resolve(plan, runner, base, &log))
                    })
                    .collect();
                bases
                    .iter()
                    .map(|b| ((*b).clone(), digests[&key(b)].clone()))
                    .collect()
            },
            || inputs::hash_files(plan),
        )
    });
    let digests = inputs::digests(plan, &hashed?, &resolved);
    let index = plan.build_index();
    let verdicts = pool.install(|| {
        plan.manifests
            .par_iter()
            .enumerate()
            .map(|(m, man)| {
                let builds: Vec<BuildIx> =
                    man.depends_on.iter().map(|id| index[id.as_str()]).collect();
                let unresolved = builds.iter().find_map(|&b| {
                    plan.builds[b]
                        .inputs
                        .bases
                        .iter()
                        .find_map(|base| match &resolved[base] {
                            Err(e) => Some(format!(
                                "base image {} cannot be resolved: {e}",
                                base.reference
                            )),
                            Ok(_) => None,
                        })
                });
                if let Some(why) = unresolved {
                    return Verdict::Build(Some(why));
                }
                let log = logs.join(format!("{}@published.log", man.image));
                let wanted: Vec<&str> =
                    builds.iter().map(|&b| digests.builds[b].as_str()).collect();
                lookup(
                    plan,
                    runner,
                    man,
                    &digests.manifests[m],
                    &builds,
                    &wanted,
                    &log,
                )
            })
            .collect()
    });
    Ok(Checked { digests, verdicts })
}

/// Looks list `man` up under its marker tag; `wanted` are its builds' input digests.
pub(super) fn lookup(
    plan: &Plan,
    runner: &Runner,
    man: &Manifest,
    inputs_digest: &str,
    builds: &[BuildIx],
    wanted: &[&str],
    log: &Path,
) -> Verdict {
    let conf = plan.registries_conf.as_deref();
    let Ok(tag) = inputs::marker_tag(inputs_digest).parse::<Tag>() else {
        return Verdict::Build(None);
    };
    let marker = ImageRef {
        repository: man.repository.clone(),
        tag,
    };
    let raw = match runner.read(
        &inspect_command(marker.to_string(), man.insecure, conf),
        log,
    ) {
        Ok(Some(raw)) => raw,
        Ok(None) => return Verdict::Build(None),
        Err(f) => {
            return Verdict::Build(Some(format!(
                "cannot read {marker}: {}",
                attempt_reason(&f)
            )));
        }
    };
    let index = inputs::digest_of(&raw);
    let listed = match entries(&raw) {
        Ok(listed) => listed,
        Err(e) => return Verdict::Build(Some(format!("{marker}: {e}"))),
    };
    let mut images = Vec::with_capacity(builds.len());
    for (&b, want) in builds.iter().zip(wanted) {
        let platform = &plan.builds[b].platform;
        let found = listed.iter().find(|(p, d)| {
            p == platform
                && d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION))
                    .is_some_and(|v| v == want)
        });
        match found {
            Some((_, d)) => images.push(d.digest().to_string()),
            None => {
                return Verdict::Build(Some(format!(
                    "{marker} holds no {platform} image with these inputs"
                )));
            }
        }
    }
    // Read once: whether each tag is in place, and what a run that moves it records.
    let held = man
        .references()
        .map(|(t, _)| t)
        .map(|t| {
            match runner.read(
                &inspect_command(t.to_string(), man.reach().insecure(&t.repository), conf),
                log,
            ) {
                Ok(Some(raw)) => Some(Held::Digest(inputs::digest_of(&raw))),
                Ok(None) => Some(Held::Nothing),
                Err(_) => None,
            }
        })
        .collect();
    Verdict::Unchanged(Published {
        index,
        images,
        held,
    })
}

/// The plan a run executes after [`check`]: unchanged builds left out, their dependents
/// pointed at the published images by digest, each list annotated with its builds' input
/// digests and also pushed to its marker tag; an unchanged list only gets its missing tags.
pub struct Applied {
    pub plan: Plan,
    /// Per build of the original plan: its index in `plan`, or none when unchanged.
    pub builds: Vec<Option<BuildIx>>,
    /// Per list of the original plan: its index in `plan`, or none when there is nothing to do.
    pub manifests: Vec<Option<usize>>,
}

/// The images of the lists the registry holds unchanged, by build id: each `REPO@DIGEST` and
/// its list.
pub(super) fn unchanged_images<'p>(
    plan: &'p Plan,
    checked: &Checked,
) -> HashMap<&'p str, (Pinned, &'p Manifest)> {
    let mut images = HashMap::new();
    for (man, v) in plan.manifests.iter().zip(&checked.verdicts) {
        if let Verdict::Unchanged(p) = v {
            for (id, digest) in man.depends_on.iter().zip(&p.images) {
                // The registry named these digests in the index it served.
                let Ok(digest) = digest.parse() else { continue };
                let repository = man.repository.clone();
                images.insert(id.as_str(), (Pinned { repository, digest }, man));
            }
        }
    }
    images
}

pub fn apply(plan: &Plan, checked: &Checked) -> Applied {
    let index = plan.build_index();
    // Per build: the published image when its list is unchanged, and whether its registry is
    // insecure.
    let mut published: Vec<Option<(Pinned, bool)>> = vec![None; plan.builds.len()];
    for (id, (image, man)) in unchanged_images(plan, checked) {
        published[index[id]] = Some((image, man.insecure));
    }
    let mut builds = Vec::with_capacity(plan.builds.len());
    let mut kept = Vec::new();
    for (i, b) in plan.builds.iter().enumerate() {
        if published[i].is_some() {
            builds.push(None);
            continue;
        }
        let mut b = b.clone();
        for dep in std::mem::take(&mut b.depends_on) {
            let d = index[dep.as_str()];
            match &published[d] {
                None => b.depends_on.push(dep),
                Some((image, insecure)) => {
                    if *insecure && !b.insecure {
                        // Before the context directory, which ends the command.
                        b.argv.insert_before_last(1, ["--tls-verify=false"]);
                        b.insecure = true;
                    }
                    // Its image, local or to be read by the digest its node pushes, is the
                    // published one now: named by the build's id in the command, a build
                    // context read from the registry (`docker-image://`).
                    b.argv = b.argv.published(&dep, image);
                    for v in b.build_args.values_mut() {
                        *v = v.published(&dep, image);
                    }
                }
            }
        }
        builds.push(Some(BuildIx::new(kept.len())));
        kept.push(b);
    }
    let mut manifests = Vec::with_capacity(plan.manifests.len());
    let mut lists = Vec::new();
    for (m, (man, verdict)) in plan.manifests.iter().zip(&checked.verdicts).enumerate() {
        let list = match verdict {
            Verdict::Build(_) => Some(annotated(plan, man, &checked.digests, &index, m)),
            Verdict::Unchanged(p) => retagged(plan, man, p),
        };
        manifests.push(list.map(|l| {
            lists.push(l);
            lists.len() - 1
        }));
    }
    let unchanged = plan
        .manifests
        .iter()
        .zip(&checked.verdicts)
        .filter_map(|(man, v)| match v {
            Verdict::Build(_) => None,
            Verdict::Unchanged(p) => Some(Unchanged {
                image: man.image.clone(),
                index: format!("{}@{}", man.repository, p.index),
                builds: man.depends_on.clone(),
                new_tags: man
                    .references()
                    .zip(p.in_place(man))
                    .filter(|(_, ok)| !ok)
                    .map(|((t, _), _)| t.to_string())
                    .collect(),
            }),
        })
        .collect();
    Applied {
        plan: Plan {
            builds: kept,
            manifests: lists,
            unchanged: Some(unchanged),
            ..plan.clone()
        },
        builds,
        manifests,
    }
}

/// List `man` with each image annotated with its build's input digest, and pushed to its
/// marker tag (which names its inputs), from where every tag gets the index by a copy in the
/// registry. Pushed there first: a run that fails to move a tag leaves a marker that the next
/// run finds, and that run moves the tags left behind without building anything.
fn annotated(
    plan: &Plan,
    man: &Manifest,
    digests: &Digests,
    index: &std::collections::HashMap<&str, BuildIx>,
    m: usize,
) -> Manifest {
    let mut man = man.clone();
    for add in &mut man.assemble.adds {
        // Before the list and the image, which end the command.
        let digest = &digests.builds[index[add.build.as_str()]];
        let note = format!("{ANNOTATION}={digest}");
        add.command
            .insert_before_last(2, ["--annotation".to_string(), note]);
        add.input_digest = Some(digest.clone());
    }
    // A list that stays local is never published.
    if let (true, Ok(tag)) = (
        man.push,
        inputs::marker_tag(&digests.manifests[m]).parse::<Tag>(),
    ) {
        let marker = ImageRef {
            repository: man.repository.clone(),
            tag,
        };
        man.publish = publication(
            &ToPublish {
                podman: &plan.podman,
                image: &man.image,
                list: &man.list,
                tags: &man.tags,
                platform_tags: &man.platform_tags,
                reach: man.reach(),
                registries_conf: plan.registries_conf.as_deref(),
            },
            Some(marker),
        );
        if plan.signing.is_some() {
            let attachments = crate::sign::steps::attachments(&plan.content.settings);
            crate::sign::steps::add(
                &mut man,
                None,
                &attachments,
                plan.registries_conf.as_deref(),
            );
        }
    }
    man
}

/// A list's reference, and the platform whose image it names (none: the index).
type Reference<'a> = (&'a ImageRef, Option<&'a Platform>);

/// What is left to do for an unchanged list: its tags that do not point at the index yet, each
/// pointed at it by a copy in the registry. What they hold was read by the check: it is not
/// read again, unless the registry could not say then.
fn retagged(plan: &Plan, man: &Manifest, p: &Published) -> Option<Manifest> {
    let conf = plan.registries_conf.as_deref();
    let moving: Vec<(Reference, &Option<Held>)> = man
        .references()
        .zip(&p.held)
        .zip(p.in_place(man))
        .filter(|(_, in_place)| !in_place)
        .map(|(tag_held, _)| tag_held)
        .collect();
    let recorded = moving.iter().map(|((tag, _), held)| match held {
        Some(h) => Step::Held {
            tag: (*tag).clone(),
            digest: h.digest().map(String::from),
        },
        None => Step::Record {
            tag: (*tag).clone(),
            argv: inspect_command(tag.to_string(), man.reach().insecure(&tag.repository), conf),
        },
    });
    let copies = moving.iter().map(|((tag, platform), _)| {
        copy_step(
            &man.image,
            (&man.repository, p.wanted(man, *platform)),
            (tag, *platform),
            man.reach(),
            conf,
        )
    });
    let publish: Vec<Step> = recorded.chain(copies).collect();
    let mut left = Manifest {
        depends_on: Vec::new(),
        remove_stale: None,
        assemble: Default::default(),
        publish,
        ..man.clone()
    };
    let images: Vec<(Platform, String)> = man
        .platforms
        .iter()
        .filter_map(|pl| Some((pl.clone(), p.wanted(man, Some(pl))?.to_string())))
        .collect();
    // Signed or not, an unchanged list's images get the signatures they lack (checked before
    // any tag moves; a signature of the key already there is kept).
    if plan.signing.is_some() {
        let attachments = crate::sign::steps::attachments(&plan.content.settings);
        crate::sign::steps::add(&mut left, Some((&p.index, &images)), &attachments, conf);
    }
    // And the attachments they lack, before those are signed.
    crate::attach::missing::add(&mut left, &images, &plan.content.settings);
    (!left.publish.is_empty()).then_some(left)
}

/// What the registry check found, for whoever watches the run.
pub fn summary(plan: &Plan, checked: &Checked, applied: &Applied) -> super::events::RegistryCheck {
    let unchanged = |v: &Verdict| matches!(v, Verdict::Unchanged(_));
    super::events::RegistryCheck {
        unchanged_lists: checked.verdicts.iter().filter(|v| unchanged(v)).count(),
        lists: plan.manifests.len(),
        unchanged_builds: plan.builds.len() - applied.plan.builds.len(),
        builds: plan.builds.len(),
        retagged: applied
            .manifests
            .iter()
            .zip(&checked.verdicts)
            .filter(|(n, v)| n.is_some() && unchanged(v))
            .count(),
        files: checked.digests.files,
        files_read: checked.digests.files_read,
        unknown: plan
            .manifests
            .iter()
            .zip(&checked.verdicts)
            .filter_map(|(man, v)| match v {
                Verdict::Build(Some(why)) => Some((man.image.clone(), why.to_string())),
                _ => None,
            })
            .collect(),
    }
}

/// The report of a run of [`Applied::plan`] as a report of the whole plan: the builds and
/// lists left out are unchanged, with the registry's digests.
pub(super) fn merge(
    plan: &Plan,
    checked: &Checked,
    applied: &Applied,
    mut report: super::Report,
) -> super::Report {
    use super::{BuildReport, ManifestReport, Status, TagReport, TagStatus};
    let published = unchanged_images(plan, checked);
    let mut ran: Vec<Option<BuildReport>> = report.builds.into_iter().map(Some).collect();
    report.builds = plan
        .builds
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut r = match applied.builds[i] {
                Some(n) => ran[n].take().expect("each build reported once"),
                None => BuildReport {
                    status: Status::Unchanged,
                    published: published.get(b.id.as_str()).map(|(p, _)| p.clone()),
                    ..BuildReport::new(b, &report.run_dir)
                },
            };
            r.inputs = Some(checked.digests.builds[i].clone());
            r
        })
        .collect();
    let mut ran: Vec<Option<ManifestReport>> = report.manifests.into_iter().map(Some).collect();
    report.manifests = plan
        .manifests
        .iter()
        .enumerate()
        .map(|(m, man)| {
            let ran = applied.manifests[m].and_then(|n| ran[n].take());
            let Verdict::Unchanged(p) = &checked.verdicts[m] else {
                return ran.expect("a list that is built is reported");
            };
            let images = man.platforms.iter().cloned().zip(p.images.iter().cloned());
            let in_place = man
                .references()
                .zip(p.in_place(man))
                .filter(|(_, ok)| *ok)
                .map(|((t, platform), _)| {
                    let digest = p.wanted(man, platform).map(String::from);
                    TagReport {
                        reference: t.to_string(),
                        status: TagStatus::Unchanged,
                        before: digest.clone().map(Held::Digest),
                        digest,
                    }
                });
            match ran {
                // New tags: unchanged once they are all in place.
                Some(mut r) => {
                    if r.status == Status::Pushed {
                        r.status = Status::Unchanged;
                    }
                    // Every tag, in the list's order, whether or not the run moved it.
                    r.tags.extend(in_place);
                    let order = |t: &TagReport| {
                        man.references()
                            .position(|(tag, _)| tag.to_string() == t.reference)
                    };
                    r.tags.sort_by_key(order);
                    r.images.extend(images);
                    r
                }
                None => ManifestReport {
                    status: Status::Unchanged,
                    tags: in_place.collect(),
                    images: images.collect(),
                    ..ManifestReport::new(man, &report.run_dir)
                },
            }
        })
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// zbase <- mid <- app, app reading mid by a build arg (`ARG B=...; FROM ${B}`); zbase, mid
    /// <- lit, lit reading both by literal references (build contexts).
    fn chain() -> Plan {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("z/Dockerfile", "FROM busybox\n"),
            ("m/Dockerfile", "FROM r.io/a/zbase:1\n"),
            ("a/Dockerfile", "ARG B=r.io/a/mid:1\nFROM ${B}\n"),
            (
                "l/Dockerfile",
                "FROM r.io/a/zbase:1\nCOPY --from=r.io/a/mid:1 /a /a\n",
            ),
            (
                "multiarch.toml",
                "[defaults]\nregistry = \"r.io/a\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n[builder]\noci_labels = false\n[images.zbase]\ncontext = \"z\"\n[images.mid]\ncontext = \"m\"\n[images.app]\ncontext = \"a\"\n[images.lit]\ncontext = \"l\"\n",
            ),
        ];
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let location = crate::config::Location::File(dir.path().join("multiarch.toml"));
        let allowed = crate::confine::Allowed::resolve(&[], dir.path(), None);
        let env = crate::settings::Environment::default();
        crate::plan_in(&location, &[], &Default::default(), env, &allowed).unwrap()
    }

    #[test]
    fn an_unchanged_dependency_is_read_by_digest_in_the_command_and_the_typed_build_args() {
        let plan = chain();
        let [a, b] = [b"a", b"b"].map(|x| crate::reference::digest_of(x).to_string());
        let verdicts = plan
            .manifests
            .iter()
            .map(|m| match m.image.as_str() {
                "mid" => Verdict::Unchanged(Published {
                    index: "sha256:i".into(),
                    images: vec![a.clone(), b.clone()],
                    held: vec![None; m.references().count()],
                }),
                _ => Verdict::Build(None),
            })
            .collect();
        let digests = Digests {
            builds: vec!["sha256:0".into(); plan.builds.len()],
            manifests: vec!["sha256:1".into(); plan.manifests.len()],
            files: 0,
            files_read: 0,
        };
        let applied = apply(&plan, &Checked { digests, verdicts }).plan;
        let app = applied
            .builds
            .iter()
            .find(|b| b.id == "app@linux-amd64")
            .unwrap();
        assert_eq!(app.build_args["B"].to_string(), format!("r.io/a/mid@{a}"));
        assert!(app.argv.argv().contains(&format!("B=r.io/a/mid@{a}")));
        assert!(applied.builds.iter().all(|b| b.image != "mid"));
        // Read by a literal reference: a build context, now from the registry; zbase, whose
        // list is built, is still read from this machine's storage.
        let lit = applied
            .builds
            .iter()
            .find(|b| b.id == "lit@linux-arm64")
            .unwrap();
        let argv = lit.argv.argv();
        assert!(
            argv.contains(&format!("r.io/a/mid:1=docker-image://r.io/a/mid@{b}")),
            "{argv:?}"
        );
        assert!(
            argv.contains(
                &"r.io/a/zbase:1=container-image://localhost/mab/zbase:linux-arm64".to_string()
            ),
            "{argv:?}"
        );
        assert_eq!(lit.depends_on, ["zbase@linux-arm64"]);
        assert!(
            !argv.iter().any(|a| a.contains("localhost/mab/mid")),
            "{argv:?}"
        );
    }
}
