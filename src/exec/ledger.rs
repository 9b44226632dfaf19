//! What the coordinator of a run keeps while jobs run: the scheduler, and what each finished
//! job reported, shown on the progress display as it comes in.

use std::collections::HashMap;
use std::time::Duration;

use crate::plan::{Plan, digest_of_build};
use crate::progress::Progress;

use super::publish::Publication;
use super::runner::{Built, Failure};
use super::schedule::{Assembled, Job, Scheduler};
use super::{BuildReport, ManifestReport, TagStatus};

/// How a job ended.
pub(super) enum Done {
    Build(usize, Result<Built, Failure>),
    Assemble(usize, Result<(), Failure>),
    /// Boxed: a publication's report is large beside the other events.
    Push(usize, Box<Publication>),
}

impl Done {
    pub(super) fn job(&self) -> Job {
        match self {
            Self::Build(i, _) => Job::Build(*i),
            Self::Assemble(m, _) => Job::Assemble(*m),
            Self::Push(m, _) => Job::Push(*m),
        }
    }
}

pub(super) struct Ledger<'a> {
    pub(super) plan: &'a Plan,
    pub(super) progress: &'a Progress,
    pub(super) scheduler: Scheduler,
    pub(super) builds: Vec<BuildReport>,
    pub(super) manifests: Vec<ManifestReport>,
    /// `<digest of BUILD>` → the digest its node pushed its image under.
    pub(super) pushed: HashMap<String, String>,
}

impl Ledger<'_> {
    /// A job ended after `elapsed`: its report, the progress line, the scheduler told.
    pub(super) fn record(&mut self, done: Done, elapsed: Duration) {
        let ms = elapsed.as_millis() as u64;
        match done {
            Done::Build(i, result) => {
                self.builds[i].duration_ms = ms;
                match result {
                    Ok(built) => {
                        self.progress
                            .finish(&self.plan.builds[i].id, "built", elapsed, "");
                        self.builds[i].image_id = Some(built.image_id);
                        if let Some(image) = built.published {
                            let digest = image.rsplit_once('@').map_or("", |(_, d)| d);
                            self.pushed.insert(
                                digest_of_build(&self.plan.builds[i].id),
                                digest.to_string(),
                            );
                            self.builds[i].published = Some(image);
                        }
                        self.scheduler.built(i, Ok(()));
                    }
                    Err(f) => {
                        self.progress
                            .finish(&self.plan.builds[i].id, "FAILED", elapsed, &f.reason);
                        self.builds[i].log_tail = f.tail;
                        self.scheduler.built(i, Err(f.reason));
                    }
                }
            }
            Done::Assemble(m, result) => {
                let man = &self.plan.manifests[m];
                self.manifests[m].duration_ms += ms;
                let result = result.map_err(|f| {
                    self.progress
                        .finish(&man.image, "FAILED", elapsed, &f.reason);
                    self.manifests[m].log_tail = f.tail;
                    f.reason
                });
                match self.scheduler.assembled(m, result) {
                    Some(Assembled::Local) => self
                        .progress
                        .finish(&man.image, "local", elapsed, &man.list),
                    Some(Assembled::Deferred) => self.progress.finish(
                        &man.image,
                        "ready",
                        elapsed,
                        "pushed once every build has succeeded (--atomic)",
                    ),
                    Some(Assembled::Push) => self.progress.finish(&man.image, "ready", elapsed, ""),
                    Some(Assembled::Partial) => {
                        let detail = match &man.platforms[..self.scheduler.added(m)] {
                            [] => "created".to_string(),
                            held => {
                                let held: Vec<String> =
                                    held.iter().map(ToString::to_string).collect();
                                format!("holds {} of {}", held.join(", "), man.platforms.len())
                            }
                        };
                        self.progress.finish(&man.image, "added", elapsed, &detail);
                    }
                    None => {}
                }
            }
            Done::Push(m, published) => {
                self.manifests[m].duration_ms += ms;
                let image = &self.plan.manifests[m].image;
                let published = *published;
                self.manifests[m].tags = published.tags;
                self.manifests[m].marker = published.marker;
                self.manifests[m].images = published.images.into_iter().collect();
                let result = match published.failure {
                    None => {
                        let tags = &self.manifests[m].tags;
                        let moved = tags.iter().filter(|t| t.status == TagStatus::Moved).count();
                        let detail = format!(
                            "{moved} tag(s) moved, {} unchanged, verified",
                            tags.len() - moved
                        );
                        self.progress.finish(image, "pushed", elapsed, &detail);
                        Ok(())
                    }
                    Some(f) => {
                        self.progress.finish(image, "FAILED", elapsed, &f.reason);
                        self.manifests[m].log_tail = f.tail;
                        Err(f.reason)
                    }
                };
                self.scheduler.pushed(m, result);
            }
        }
    }
}
