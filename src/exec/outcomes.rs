//! What each build and list of a run came to, folded from the run's events: the report's
//! builds and lists as they fill in. Their statuses are the scheduler's, set when the run ends.

use std::path::Path;

use crate::plan::Plan;

use super::events::{RunEvent, Span, Subject};
use super::report::{BuildReport, JobTiming, ManifestReport};
use super::schedule::Job;

pub(super) struct Outcomes {
    pub(super) builds: Vec<BuildReport>,
    pub(super) manifests: Vec<ManifestReport>,
}

impl Outcomes {
    /// Every build and list of `plan`, not started, their logs in `run_dir`.
    pub(super) fn new(plan: &Plan, run_dir: &Path) -> Self {
        Self {
            builds: plan
                .builds
                .iter()
                .map(|b| BuildReport::new(b, run_dir))
                .collect(),
            manifests: plan
                .manifests
                .iter()
                .map(|m| ManifestReport::new(m, run_dir))
                .collect(),
        }
    }

    /// Takes in what `event` says.
    pub(super) fn record(&mut self, event: &RunEvent) {
        match event {
            RunEvent::Built {
                build,
                span,
                image_id,
                published,
            } => {
                self.ended(Job::Build(*build), span);
                let report = &mut self.builds[*build];
                report.image_id = Some(image_id.clone());
                report.published.clone_from(published);
            }
            RunEvent::Added { list, span, .. } | RunEvent::ListReady { list, span, .. } => {
                self.ended(Job::Assemble(*list), span);
            }
            RunEvent::Pushed { list, span, .. } => self.ended(Job::Push(*list), span),
            RunEvent::Tag { list, tag } => self.manifests[*list].tags.push(tag.clone()),
            RunEvent::Marker { list, tag } => self.manifests[*list].marker = Some(tag.clone()),
            RunEvent::Index { list, images } => {
                self.manifests[*list].images = images.iter().cloned().collect();
            }
            RunEvent::Signature { list, signature } => {
                self.manifests[*list].signatures.push(signature.clone());
            }
            RunEvent::Failed {
                job, span, tail, ..
            } => {
                self.ended(*job, span);
                match job.subject() {
                    Subject::Build(i) => self.builds[i].log_tail.clone_from(tail),
                    Subject::List(m) => self.manifests[m].log_tail.clone_from(tail),
                }
            }
            RunEvent::Content { build, content } => {
                self.builds[*build].content = Some(content.clone());
            }
            RunEvent::Attached { list, attached } => {
                self.manifests[*list]
                    .attached
                    .extend(attached.iter().cloned());
            }
            RunEvent::Checked(_)
            | RunEvent::Started { .. }
            | RunEvent::Skipped { .. }
            | RunEvent::Interrupted { .. }
            | RunEvent::Killing => {}
        }
    }

    /// Job `job` ran during `span`: a build's time is its job's, a list's the sum of its jobs'.
    fn ended(&mut self, job: Job, span: &Span) {
        let timing = JobTiming::new(job, span);
        // In whole milliseconds of the report's own times, so that they add up there.
        let ms = timing.end_ms - timing.start_ms;
        match job.subject() {
            Subject::Build(i) => {
                self.builds[i].duration_ms = ms;
                self.builds[i].jobs.push(timing);
            }
            Subject::List(m) => {
                self.manifests[m].duration_ms += ms;
                self.manifests[m].jobs.push(timing);
            }
        }
    }
}
