//! `mab merge FILE...`: joins the images split runners pushed by digest (`mab run --platform P
//! --digests-out FILE`) into the plan's manifest lists. Every platform of every list the
//! runners' selections hold must be in some file, else nothing is pushed; each list is then
//! assembled from the registry digests (as `[nodes]` lists are), annotated with its builds'
//! input digests, and published by the steps of a plain run (`publish.rs`): pushed once to its
//! marker, copied to every tag, each read back and checked to hold exactly the runners'
//! images. A list the registry holds with the same inputs and images keeps its index.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::digests_file::{DigestsFile, ImageDigest};
use crate::inputs::{self, Digests};
use crate::plan::{Arg, BuildIx, Hole, Manifest, Plan};
use crate::platform::Platform;
use crate::progress::{Labels, Progress};

use super::events::{Lane, Place, RunEvent, Span};
use super::outcomes::Outcomes;
use super::published::{self, Checked, Verdict};
use super::report::list_log;
use super::runner::Runner;
use super::schedule::{Batch, Job};
use super::{BuildReport, Options, Report, Status, TagStatus, external};

/// Why a merge pushed nothing.
#[derive(Debug)]
pub enum Refused {
    /// Platforms of lists that no file holds, as `IMAGE PLATFORM`.
    Missing(Vec<String>),
    /// The files contradict themselves or the config.
    Invalid(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(missing) => write!(
                f,
                "no list is pushed: no digests file holds {} (was every runner's file passed to mab merge?)",
                missing.join(", ")
            ),
            Self::Invalid(why) => write!(f, "no list is pushed: {why}"),
        }
    }
}

/// Each image of the files by build id, checked against `plan`: two files that give one
/// image different digests, a list no config image has, or a platform some list misses are
/// refused. `plan` is left with the lists the files name that are pushed.
fn index(
    plan: &mut Plan,
    files: &[(PathBuf, DigestsFile)],
) -> Result<HashMap<String, ImageDigest>, Refused> {
    let mut lists: BTreeSet<&str> = BTreeSet::new();
    let mut by_id: HashMap<String, (ImageDigest, &Path)> = HashMap::new();
    for (path, file) in files {
        lists.extend(file.lists.iter().map(String::as_str));
        for image in &file.images {
            let id = crate::plan::build_id(&image.image, &image.platform);
            match by_id.get(&id) {
                Some((other, at)) if other.digest != image.digest => {
                    return Err(Refused::Invalid(format!(
                        "{} and {} give {id} different digests ({} and {})",
                        at.display(),
                        path.display(),
                        other.digest,
                        image.digest
                    )));
                }
                _ => {
                    by_id.insert(id, (image.clone(), path));
                }
            }
        }
    }
    if let Some(unknown) = lists
        .iter()
        .find(|l| !plan.manifests.iter().any(|m| m.image == **l))
    {
        return Err(Refused::Invalid(format!(
            "the digests files name image `{unknown}`, which this config does not select (merge with the same config, commit and options as the runners)"
        )));
    }
    plan.manifests
        .retain(|m| m.push && lists.contains(m.image.as_str()));
    // A merge runs no build: only the lists' images are kept, with nothing to wait for.
    let listed: BTreeSet<String> = plan
        .manifests
        .iter()
        .flat_map(|m| m.depends_on.iter().cloned())
        .collect();
    plan.builds.retain(|b| listed.contains(&b.id));
    for b in &mut plan.builds {
        b.depends_on.clear();
    }
    let missing: Vec<String> = plan
        .manifests
        .iter()
        .flat_map(|m| m.depends_on.iter().zip(&m.platforms).map(move |p| (m, p)))
        .filter(|(_, (id, _))| !by_id.contains_key(id.as_str()))
        .map(|(m, (_, p))| format!("{} {p}", m.image))
        .collect();
    if !missing.is_empty() {
        return Err(Refused::Missing(missing));
    }
    Ok(by_id.into_iter().map(|(id, (i, _))| (id, i)).collect())
}

/// The input digests of `plan`'s builds and lists as the runners computed them.
fn digests(plan: &Plan, images: &HashMap<String, ImageDigest>) -> Digests {
    let builds: Vec<String> = plan
        .builds
        .iter()
        .map(|b| {
            images
                .get(&b.id)
                .map_or_else(String::new, |i| i.inputs.clone())
        })
        .collect();
    let index = plan.build_index();
    let manifests = plan
        .manifests
        .iter()
        .map(|m| inputs::list_digest(m, |id| &builds[index[id]]))
        .collect();
    Digests {
        builds,
        manifests,
        files: 0,
        files_read: 0,
    }
}

/// List `m` assembled from the registry: each image of this machine's storage read by the
/// digest its runner pushed instead (`docker://REPO@DIGEST`), as another node's is.
fn from_registry(m: &Manifest, images: &HashMap<String, ImageDigest>) -> Manifest {
    let mut m = m.clone();
    for add in &mut m.assemble.adds {
        let Some(image) = images.get(&add.build) else {
            continue;
        };
        let insecure = m.insecure;
        // The source is the last argument (after the list): the build's image in this
        // machine's storage, or another node's, a hole for the digest it pushes.
        match add.command.last() {
            Some(Arg::Holed(h)) if h.hole == Hole::DigestOf(add.build.clone()) => {
                add.command = add.command.fill(|h| match h {
                    Hole::DigestOf(b) if *b == add.build => Some(image.digest.clone()),
                    _ => None,
                });
            }
            Some(Arg::Local(local)) if local.build == add.build => {
                add.command
                    .set_last_registry(format!("{}@{}", image.repository, image.digest));
                // The plan gives a local source no TLS option: the registry's goes before the
                // list, which comes right before the source.
                if insecure {
                    add.command.insert_before_last(2, ["--tls-verify=false"]);
                }
            }
            _ => continue,
        }
    }
    m
}

/// Merges `files` into `plan`'s lists (`plan` planned for every platform). Nothing is pushed
/// unless every list is complete: `Err(Refused)` says why.
pub fn merge(
    plan: &Plan,
    files: &[(PathBuf, DigestsFile)],
    opts: &Options,
) -> std::io::Result<Result<Report, Refused>> {
    let super::setup::Started {
        run_id,
        run_dir,
        runner,
        turn: _turn,
        ..
    } = super::setup::start(plan, opts, None)?;
    let mut plan = external::resolve(plan, &runner, &run_dir)?;
    let images = match index(&mut plan, files) {
        Ok(images) => images,
        Err(refused) => return Ok(Err(refused)),
    };
    let plan = &plan;
    let digests = digests(plan, &images);
    let index = plan.build_index();
    let verdicts = plan
        .manifests
        .par_iter()
        .enumerate()
        .map(|(m, man)| {
            let builds: Vec<BuildIx> = man.depends_on.iter().map(|id| index[id.as_str()]).collect();
            let wanted: Vec<&str> = builds.iter().map(|&b| digests.builds[b].as_str()).collect();
            let log = run_dir.join(format!("{}@published.log", man.image));
            let found = published::lookup(
                plan,
                &runner,
                man,
                &digests.manifests[m],
                &builds,
                &wanted,
                &log,
            );
            match found {
                // The runners pushed other images (`--rebuild`): those are the list's now.
                Verdict::Unchanged(p)
                    if man
                        .depends_on
                        .iter()
                        .zip(&p.images)
                        .any(|(id, d)| images[id].digest != *d) =>
                {
                    Verdict::Build(None)
                }
                v => v,
            }
        })
        .collect();
    let checked = Checked { digests, verdicts };
    let applied = published::apply(plan, &checked);
    let work = &applied.plan;
    // A merge runs no build: the display counts its lists only.
    let lists_only = Plan {
        builds: Vec::new(),
        ..work.clone()
    };
    let progress = Progress::new(opts.progress, Labels::of(&lists_only), opts.verbose);
    progress.show(&RunEvent::Checked(published::summary(
        plan, &checked, &applied,
    )));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(std::io::Error::other)?;
    let origin = Instant::now();
    let ended: Vec<(Vec<RunEvent>, Status)> = pool.install(|| {
        work.manifests
            .par_iter()
            .enumerate()
            .map(|(i, m)| {
                let job = Publish {
                    plan: work,
                    runner: &runner,
                    images: &images,
                    run_dir: &run_dir,
                    origin,
                };
                job.run(i, m, &progress)
            })
            .collect()
    });
    progress.done();
    // The lists' reports, folded from their events as a run's are.
    let mut outcomes = Outcomes::new(work, &run_dir);
    for (events, _) in &ended {
        events.iter().for_each(|e| outcomes.record(e));
    }
    let mut manifests = outcomes.manifests;
    for (report, (_, status)) in manifests.iter_mut().zip(ended) {
        report.status = status;
    }
    let success = manifests.iter().all(|m| m.status == Status::Pushed);
    // What the runners built, as this run's report of the whole plan shows it.
    let builds = work
        .builds
        .iter()
        .map(|b| BuildReport {
            status: Status::Built,
            published: images.get(&b.id).and_then(|i| {
                // Checked a sha256 digest when the file was read.
                let digest = i.digest.parse().ok()?;
                Some(crate::reference::Pinned {
                    repository: i.repository.clone(),
                    digest,
                })
            }),
            ..BuildReport::new(b, &run_dir)
        })
        .collect();
    let report = Report {
        run_id,
        run_dir: run_dir.clone(),
        interrupted: None,
        success,
        builds,
        manifests,
    };
    let mut report = published::merge(plan, &checked, &applied, report);
    report.success = success;
    Ok(Ok(report))
}

/// What the publication of a merged list needs.
struct Publish<'a> {
    plan: &'a Plan,
    runner: &'a Runner<'a>,
    images: &'a HashMap<String, ImageDigest>,
    run_dir: &'a Path,
    /// The start of the merge, which events count from.
    origin: Instant,
}

impl Publish<'_> {
    /// Assembles list `m` (the `i`th of the merge) from the registry, unless only its tags
    /// move, and publishes it: the events it makes (shown as they come), and its status.
    fn run(&self, i: usize, m: &Manifest, progress: &Progress) -> (Vec<RunEvent>, Status) {
        let m = &from_registry(m, self.images);
        let log = list_log(self.run_dir, m);
        let place = Place {
            node: None,
            lane: Lane::Lists,
            slot: rayon::current_thread_index().unwrap_or(0),
        };
        // The first command it runs: `create`, or the first step of a list whose tags only move.
        let first = m
            .assemble
            .create
            .as_ref()
            .or_else(|| m.publish.iter().find_map(|s| s.argv()));
        let start = self.origin.elapsed();
        progress.show(&RunEvent::Started {
            job: Job::Push(i),
            label: m.image.clone(),
            command: first.map(|c| c.shell_line()).unwrap_or_default(),
            at: start,
            place: place.clone(),
        });
        let batch = Batch {
            create: true,
            entries: 0..m.assemble.adds.len(),
        };
        let assembled = self.runner.assemble(m, &batch, &log);
        // The list read back must hold exactly the images the runners pushed.
        let expected: Vec<(Platform, String)> = m
            .depends_on
            .iter()
            .zip(&m.platforms)
            .filter_map(|(id, p)| Some((p.clone(), self.images.get(id)?.digest.clone())))
            .chain(
                m.external
                    .iter()
                    .filter_map(|e| Some((e.platform.clone(), e.digest.clone()?))),
            )
            .collect();
        let mut events = Vec::new();
        let failure = match assembled {
            Err(f) => Some(f),
            Ok(()) => {
                // The runners' SBOMs stay with them: the merge attaches none it did not make.
                let sboms = super::attachments::Sboms::new();
                let publication = self.runner.publish(self.plan, m, &expected, &sboms, &log);
                let moved = publication
                    .tags
                    .iter()
                    .filter(|t| t.status == TagStatus::Moved)
                    .count();
                let tags = publication.tags.len();
                events.extend(
                    publication
                        .tags
                        .into_iter()
                        .map(|tag| RunEvent::Tag { list: i, tag }),
                );
                events.extend(
                    publication
                        .marker
                        .map(|tag| RunEvent::Marker { list: i, tag }),
                );
                events.push(RunEvent::Index {
                    list: i,
                    images: publication.images,
                });
                events.extend(
                    publication
                        .signatures
                        .into_iter()
                        .map(|signature| RunEvent::Signature { list: i, signature }),
                );
                if !publication.attached.is_empty() {
                    events.push(RunEvent::Attached {
                        list: i,
                        attached: publication.attached,
                    });
                }
                match publication.failure {
                    None => {
                        let span = Span {
                            start,
                            end: self.origin.elapsed(),
                            place: place.clone(),
                        };
                        events.push(RunEvent::Pushed {
                            list: i,
                            span,
                            moved,
                            tags,
                        });
                        None
                    }
                    failure => failure,
                }
            }
        };
        let status = match failure {
            None => Status::Pushed,
            Some(f) => {
                let span = Span {
                    start,
                    end: self.origin.elapsed(),
                    place,
                };
                events.push(RunEvent::Failed {
                    job: Job::Push(i),
                    span,
                    reason: f.reason.clone(),
                    tail: f.tail,
                });
                Status::Failed { reason: f.reason }
            }
        };
        events.iter().for_each(|e| progress.show(e));
        (events, status)
    }
}
