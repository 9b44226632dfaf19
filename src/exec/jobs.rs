//! Each kind of job, prepared once as it starts (cargo's `Work`): the label and command it
//! shows, the work a pool thread does, and what its end changes in the run's state and tells
//! as events. A new kind of job is one more `prepare_*` function here (and its events).

use std::collections::HashMap;
use std::path::Path;

use crate::plan::{BuildIx, Plan};
use crate::platform::Platform;

use super::events::{Next, RunEvent, Span};
use super::prepare::{filled_build, filled_list};
use super::report::{TagStatus, build_log, list_log};
use super::runner::Runner;
use super::schedule::{Assembled, Job, Scheduler};

/// The state of a run that jobs read when they are prepared and change when they end.
pub(super) struct Queue {
    pub(super) scheduler: Scheduler,
    /// Build id → the digest its node pushed its image under.
    pub(super) pushed: HashMap<String, String>,
    /// The SBOM made after each build, by build id, until its list attaches it.
    pub(super) sboms: super::attachments::Sboms,
}

/// What a job's end changes in the run's state, applied on the coordinator: the scheduler
/// told, the events that say how it went.
pub(super) type Settle = Box<dyn FnOnce(&mut Queue, Span) -> Vec<RunEvent> + Send>;

/// What a job does on a pool thread; it ends with what to settle on the coordinator.
pub(super) type Work<'s> = Box<dyn FnOnce(&Runner<'_>) -> Settle + Send + 's>;

/// A job ready to start.
pub(super) struct Prepared<'s> {
    /// What it works on: a build's id, a list's image.
    pub(super) label: String,
    /// The first command it runs, shown with `-v`.
    pub(super) command: String,
    pub(super) work: Work<'s>,
}

/// Prepares `job` of `plan`, its log in `run_dir`, with what the run knows now (`queue`).
pub(super) fn prepare<'s>(plan: &'s Plan, run_dir: &Path, job: Job, queue: &Queue) -> Prepared<'s> {
    match job {
        Job::Build(i) => prepare_build(plan, run_dir, i, queue),
        Job::Assemble(m) => prepare_assembly(plan, run_dir, m, queue),
        Job::Push(m) => prepare_push(plan, run_dir, m, queue),
    }
}

/// Build `i`: its command with what other nodes pushed filled in.
fn prepare_build<'s>(plan: &'s Plan, run_dir: &Path, i: BuildIx, queue: &Queue) -> Prepared<'s> {
    let planned = &plan.builds[i];
    let build = filled_build(planned, &queue.pushed);
    let log = build_log(run_dir, planned);
    // The digests its dependencies' nodes pushed: the content check finds its bases by them.
    let pushed: HashMap<String, String> = planned
        .depends_on
        .iter()
        .filter_map(|d| Some((d.clone(), queue.pushed.get(d)?.clone())))
        .collect();
    Prepared {
        label: planned.id.clone(),
        command: planned.argv.shell_line(),
        work: Box::new(move |runner| {
            let result = runner.build(&build, &log).and_then(|built| {
                let published = built.published.as_ref();
                let content = runner.content(plan, &build, published, &pushed, &log)?;
                Ok((built, content))
            });
            Box::new(move |queue, span| match result {
                Ok((built, mut content)) => {
                    if let Some(image) = &built.published {
                        queue
                            .pushed
                            .insert(build.id.clone(), image.digest.to_string());
                    }
                    queue.scheduler.built(i, Ok(()));
                    if let Some(sbom) = content.sbom.as_mut() {
                        let document = std::mem::take(&mut sbom.document);
                        queue.sboms.insert(build.id.clone(), document);
                    }
                    vec![
                        RunEvent::Content { build: i, content },
                        RunEvent::Built {
                            build: i,
                            span,
                            image_id: built.image_id,
                            published: built.published,
                        },
                    ]
                }
                Err(f) => {
                    queue.scheduler.built(i, Err(f.reason.clone()));
                    vec![RunEvent::Failed {
                        job: Job::Build(i),
                        span,
                        reason: f.reason,
                        tail: f.tail,
                    }]
                }
            })
        }),
    }
}

/// The next assembly job of list `m`: the batch the scheduler gave it.
fn prepare_assembly<'s>(plan: &'s Plan, run_dir: &Path, m: usize, queue: &Queue) -> Prepared<'s> {
    let planned = &plan.manifests[m];
    let log = list_log(run_dir, planned);
    let job = Job::Assemble(m);
    let batch = queue.scheduler.batch(m).cloned();
    // The first command the job runs: `create`, or the add of its first image.
    let assembly = &planned.assemble;
    let first = batch.as_ref().and_then(|b| {
        if b.create {
            assembly.create.as_ref()
        } else {
            assembly.adds.get(b.entries.start).map(|a| &a.command)
        }
    });
    let list = filled_list(planned, &queue.pushed);
    Prepared {
        label: planned.image.clone(),
        command: first.map(|c| c.shell_line()).unwrap_or_default(),
        work: Box::new(move |runner| {
            let result = match &batch {
                Some(batch) => runner.assemble(&list, batch, &log),
                // The scheduler gives every assembly job it starts a batch: this is its bug,
                // reported as the list's failure rather than a panic of the run.
                None => Err(super::runner::Failure::new(format!(
                    "mab's scheduler started an assembly of {} with nothing to do",
                    list.image
                ))),
            };
            Box::new(move |queue, span| {
                let mut events = Vec::new();
                let result = result.map_err(|f| {
                    events.push(RunEvent::Failed {
                        job,
                        span: span.clone(),
                        reason: f.reason.clone(),
                        tail: f.tail,
                    });
                    f.reason
                });
                let next = match queue.scheduler.assembled(m, result) {
                    Some(Assembled::Partial) => {
                        let holds = queue.scheduler.added(m);
                        events.push(RunEvent::Added {
                            list: m,
                            span,
                            holds,
                        });
                        return events;
                    }
                    Some(Assembled::Local) => Next::Local,
                    Some(Assembled::Deferred) => Next::Deferred,
                    Some(Assembled::Push) => Next::Push,
                    None => return events,
                };
                events.push(RunEvent::ListReady {
                    list: m,
                    span,
                    next,
                });
                events
            })
        }),
    }
}

/// The publication of list `m`, checked against the images other nodes pushed.
fn prepare_push<'s>(plan: &'s Plan, run_dir: &Path, m: usize, queue: &Queue) -> Prepared<'s> {
    let planned = &plan.manifests[m];
    let log = list_log(run_dir, planned);
    let expected = expected_images(plan, m, &queue.pushed);
    let sboms: super::attachments::Sboms = planned
        .depends_on
        .iter()
        .filter_map(|id| Some((id.clone(), queue.sboms.get(id)?.clone())))
        .collect();
    Prepared {
        label: planned.image.clone(),
        command: planned
            .publish
            .iter()
            .find_map(|s| s.argv())
            .map(|c| c.shell_line())
            .unwrap_or_default(),
        work: Box::new(move |runner| {
            let publication = runner.publish(plan, planned, &expected, &sboms, &log);
            Box::new(move |queue, span| {
                let moved = publication
                    .tags
                    .iter()
                    .filter(|t| t.status == TagStatus::Moved)
                    .count();
                let tags = publication.tags.len();
                let mut events: Vec<RunEvent> = publication
                    .tags
                    .into_iter()
                    .map(|tag| RunEvent::Tag { list: m, tag })
                    .chain(
                        publication
                            .marker
                            .map(|tag| RunEvent::Marker { list: m, tag }),
                    )
                    .chain(std::iter::once(RunEvent::Index {
                        list: m,
                        images: publication.images,
                    }))
                    .chain(
                        publication
                            .signatures
                            .into_iter()
                            .map(|signature| RunEvent::Signature { list: m, signature }),
                    )
                    .collect();
                if !publication.attached.is_empty() {
                    events.push(RunEvent::Attached {
                        list: m,
                        attached: publication.attached,
                    });
                }
                let result = match publication.failure {
                    None => {
                        events.push(RunEvent::Pushed {
                            list: m,
                            span,
                            moved,
                            tags,
                        });
                        Ok(())
                    }
                    Some(f) => {
                        events.push(RunEvent::Failed {
                            job: Job::Push(m),
                            span,
                            reason: f.reason.clone(),
                            tail: f.tail,
                        });
                        Err(f.reason)
                    }
                };
                queue.scheduler.pushed(m, result);
                events
            })
        }),
    }
}

/// Per platform of list `m` built on another node: the digest its node pushed; per external
/// platform: the digest its `from` resolved to.
fn expected_images(
    plan: &Plan,
    m: usize,
    pushed: &HashMap<String, String>,
) -> Vec<(Platform, String)> {
    // A list's builds are its platforms', in the same order.
    let man = &plan.manifests[m];
    man.platforms
        .iter()
        .zip(&man.depends_on)
        .filter_map(|(p, id)| {
            let digest = pushed.get(id)?;
            Some((p.clone(), digest.clone()))
        })
        .chain(
            man.external
                .iter()
                .filter_map(|e| Some((e.platform.clone(), e.digest.clone()?))),
        )
        .collect()
}
