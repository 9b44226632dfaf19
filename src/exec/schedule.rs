//! The scheduler of a run, as a state machine with no processes in it: which job starts next,
//! what a finished job makes ready, what a failure skips, and when `--atomic` pushes. The
//! runner asks it for jobs, runs them, and tells it how they ended.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::ops::Range;

use super::Status;
use crate::plan::BuildIx;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    Build(BuildIx),
    Assemble(usize),
    Push(usize),
}

/// What happened besides the job itself, for the progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A build that will not run, and why.
    SkippedBuild(BuildIx, String),
    /// A manifest list that will not be assembled or pushed, and why.
    SkippedManifest(usize, String),
}

/// What follows an assembly job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assembled {
    /// Some of its images are in the list; the others follow as they are built.
    Partial,
    /// It stays local (`--no-push`, `push = false`).
    Local,
    /// Pushed once every build of the run succeeded (`--atomic`).
    Deferred,
    /// Its push is queued.
    Push,
}

/// What one assembly job of a list does: create the list (its first job), then add the
/// images at these positions of its builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub create: bool,
    pub entries: Range<usize>,
}

/// A list is assembled while its builds run: created when the first of them is built, each
/// image added as soon as it and the ones before it are built. In platform order, so that the
/// index is the same whichever build ends first; one job of a list at a time, as `manifest
/// add` rewrites the list.
#[derive(Debug, Clone, Default)]
struct ListState {
    /// Per position in the list's builds: built.
    built: Vec<bool>,
    /// Images in the list: the first `added` positions.
    added: usize,
    /// An assembly job has started: there may be a list to remove if it is never completed.
    touched: bool,
    /// A job of this list is queued or running.
    busy: bool,
    /// What the running job does.
    batch: Option<Batch>,
}

impl ListState {
    fn complete(&self) -> bool {
        self.added == self.built.len()
    }

    /// Whether a job would do something now: create the list, or add the next image.
    fn has_work(&self) -> bool {
        !self.touched || self.built.get(self.added) == Some(&true)
    }
}

const ATOMIC_SKIP: &str = "--atomic: a build of this run failed, so nothing is pushed";

pub struct Scheduler {
    /// Per build: how many of its dependencies are not built yet.
    waiting: Vec<usize>,
    dependents: Vec<Vec<BuildIx>>,
    priority: Vec<u64>,
    lists: Vec<ListState>,
    /// Per build: the lists that hold it, and its position in each.
    manifests_of: Vec<Vec<(usize, usize)>>,
    /// Per list: whether it is pushed once assembled.
    pushes: Vec<bool>,
    ids: Vec<String>,
    pub builds: Vec<Status>,
    pub manifests: Vec<Status>,
    /// Per node: its ready builds, highest priority first.
    ready: Vec<BinaryHeap<(u64, Reverse<BuildIx>)>>,
    /// Per build: its node; per node: its slots and its builds running.
    node: Vec<usize>,
    node_slots: Vec<usize>,
    running_on: Vec<usize>,
    manifest_jobs: VecDeque<Job>,
    deferred: Vec<usize>,
    /// Builds running, and list jobs (assembly, pushes) running: each kind has its own
    /// slots, as list jobs mostly wait on the registry and would leave a core idle.
    running: usize,
    running_lists: usize,
    stopping: bool,
    failed: bool,
    keep_going: bool,
    atomic: bool,
    notes: Vec<Note>,
}

/// cargo's job-queue priority: a build's own cost plus the cost of everything that depends on
/// it, directly or not. The build that unblocks the most work starts first.
pub fn priorities(costs: &[u64], dependents: &[Vec<BuildIx>]) -> Vec<u64> {
    let mut seen: Vec<Option<BuildIx>> = vec![None; costs.len()];
    BuildIx::all(costs.len())
        .map(|root| {
            let mut total = 0;
            let mut stack = vec![root];
            seen[root] = Some(root);
            while let Some(n) = stack.pop() {
                total += costs[n];
                for &d in &dependents[n] {
                    if seen[d] != Some(root) {
                        seen[d] = Some(root);
                        stack.push(d);
                    }
                }
            }
            total
        })
        .collect()
}

/// The shape of a run: per build its id, cost and dependencies (indexes of builds), per
/// manifest list its builds and whether it is pushed.
pub struct Shape {
    pub ids: Vec<String>,
    pub costs: Vec<u64>,
    pub depends_on: Vec<Vec<BuildIx>>,
    pub manifest_builds: Vec<Vec<BuildIx>>,
    pub pushes: Vec<bool>,
    /// Per build: the node it runs on (an index into `node_slots`).
    pub node: Vec<usize>,
    /// Per node: builds at once.
    pub node_slots: Vec<usize>,
}

impl Scheduler {
    pub fn new(shape: Shape, keep_going: bool, atomic: bool) -> Self {
        let n = shape.ids.len();
        let mut dependents = vec![Vec::new(); n];
        for (i, deps) in BuildIx::all(n).zip(&shape.depends_on) {
            for &d in deps {
                dependents[d].push(i);
            }
        }
        let mut manifests_of = vec![Vec::new(); n];
        for (m, builds) in shape.manifest_builds.iter().enumerate() {
            for (k, &b) in builds.iter().enumerate() {
                manifests_of[b].push((m, k));
            }
        }
        let priority = priorities(&shape.costs, &dependents);
        let waiting: Vec<usize> = shape.depends_on.iter().map(Vec::len).collect();
        // A list with no builds of this run (an unchanged one that gets new tags) goes first.
        let manifest_jobs = (0..shape.manifest_builds.len())
            .filter(|&m| shape.manifest_builds[m].is_empty())
            .map(Job::Assemble)
            .collect();
        let lists = shape
            .manifest_builds
            .iter()
            .map(|builds| ListState {
                built: vec![false; builds.len()],
                busy: builds.is_empty(),
                ..ListState::default()
            })
            .collect();
        let mut ready = vec![BinaryHeap::new(); shape.node_slots.len()];
        for i in BuildIx::all(n).filter(|&i| waiting[i] == 0) {
            ready[shape.node[i]].push((priority[i], Reverse(i)));
        }
        Self {
            waiting,
            dependents,
            priority,
            lists,
            manifests_of,
            manifests: vec![Status::NotStarted; shape.pushes.len()],
            pushes: shape.pushes,
            builds: vec![Status::NotStarted; n],
            ids: shape.ids,
            ready,
            running_on: vec![0; shape.node_slots.len()],
            node: shape.node,
            node_slots: shape.node_slots,
            manifest_jobs,
            deferred: Vec::new(),
            running: 0,
            running_lists: 0,
            stopping: false,
            failed: false,
            keep_going,
            atomic,
            notes: Vec::new(),
        }
    }

    /// The next job to start while fewer than `slots` builds (and fewer than `slots` list
    /// jobs) run, if any may start now. List jobs go first (they are short and publish what is
    /// done), then the ready build of highest priority.
    pub fn next(&mut self, slots: usize) -> Option<Job> {
        if self.stopping {
            return None;
        }
        if self.running() == 0
            && self.ready.iter().all(BinaryHeap::is_empty)
            && self.manifest_jobs.is_empty()
            && !self.deferred.is_empty()
        {
            // --atomic: every build is done; push now, or not at all.
            if self.failed {
                for m in std::mem::take(&mut self.deferred) {
                    self.skip_manifest(m, ATOMIC_SKIP.into());
                }
            } else {
                let pushes = std::mem::take(&mut self.deferred);
                self.manifest_jobs.extend(pushes.into_iter().map(Job::Push));
            }
        }
        while self.running_lists < slots
            && let Some(job) = self.manifest_jobs.pop_front()
        {
            if let Job::Assemble(m) = job {
                // A build of the list failed since the job was queued.
                if self.manifests[m] != Status::NotStarted {
                    self.lists[m].busy = false;
                    continue;
                }
                let list = &mut self.lists[m];
                let ready = list.built[list.added..].iter().take_while(|b| **b).count();
                list.batch = Some(Batch {
                    create: !list.touched,
                    entries: list.added..list.added + ready,
                });
                list.touched = true;
            }
            self.running_lists += 1;
            return Some(job);
        }
        // The ready build of highest priority among the nodes with a free slot: the rule of
        // one machine, across nodes.
        let n = (0..self.ready.len())
            .filter(|&n| self.running_on[n] < self.node_slots[n])
            .filter_map(|n| self.ready[n].peek().map(|top| (*top, n)))
            .max()?
            .1;
        let i = self.ready[n].pop().expect("peeked").1.0;
        self.running_on[n] += 1;
        self.running += 1;
        Some(Job::Build(i))
    }

    /// What the running assembly job of list `m` does.
    pub fn batch(&self, m: usize) -> Option<&Batch> {
        self.lists[m].batch.as_ref()
    }

    /// How many images list `m` holds: the first ones of its builds.
    pub fn added(&self, m: usize) -> usize {
        self.lists[m].added
    }

    /// The lists an assembly job started on that never got all their images: a local list
    /// that nothing may use, to be removed.
    pub fn partial_lists(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.lists.len()).filter(|&m| self.lists[m].touched && !self.lists[m].complete())
    }

    /// Queues list `m`'s next assembly job, if it has work and none is queued or running.
    fn queue_list(&mut self, m: usize) {
        let list = &mut self.lists[m];
        if self.manifests[m] == Status::NotStarted && !list.busy && list.has_work() {
            list.busy = true;
            self.manifest_jobs.push_back(Job::Assemble(m));
        }
    }

    /// Jobs running, of both kinds.
    pub fn running(&self) -> usize {
        self.running + self.running_lists
    }

    /// Whether the run is over: nothing runs and nothing will start.
    pub fn done(&self) -> bool {
        self.running() == 0
            && (self.stopping
                || (self.ready.iter().all(BinaryHeap::is_empty)
                    && self.manifest_jobs.is_empty()
                    && self.deferred.is_empty()))
    }

    /// An interrupt: nothing new starts.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// What happened besides the jobs since the last call.
    pub fn notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    fn skip_manifest(&mut self, m: usize, reason: String) {
        self.notes.push(Note::SkippedManifest(m, reason.clone()));
        self.manifests[m] = Status::Skipped { reason };
    }

    /// A build ended.
    pub fn built(&mut self, i: BuildIx, result: Result<(), String>) {
        self.running -= 1;
        self.running_on[self.node[i]] -= 1;
        match result {
            Ok(()) => {
                self.builds[i] = Status::Built;
                for d in self.dependents[i].clone() {
                    self.waiting[d] -= 1;
                    if self.waiting[d] == 0
                        && self.builds[d] == Status::NotStarted
                        && !self.stopping
                    {
                        self.ready[self.node[d]].push((self.priority[d], Reverse(d)));
                    }
                }
                for (m, k) in self.manifests_of[i].clone() {
                    self.lists[m].built[k] = true;
                    self.queue_list(m);
                }
            }
            Err(reason) => {
                self.builds[i] = Status::Failed { reason };
                self.fail();
                self.skip_dependents(i);
            }
        }
    }

    /// An assembly job of list `m` ended; says what follows (nothing for a list that failed,
    /// or that a failed build skipped meanwhile).
    pub fn assembled(&mut self, m: usize, result: Result<(), String>) -> Option<Assembled> {
        self.running_lists -= 1;
        let list = &mut self.lists[m];
        list.busy = false;
        let batch = list.batch.take().expect("a job of this list ran");
        if let Err(reason) = result {
            self.manifests[m] = Status::Failed { reason };
            self.fail();
            return None;
        }
        list.added = batch.entries.end;
        if self.manifests[m] != Status::NotStarted {
            return None;
        }
        if !list.complete() {
            self.queue_list(m);
            return Some(Assembled::Partial);
        }
        Some(if !self.pushes[m] {
            self.manifests[m] = Status::Assembled;
            Assembled::Local
        } else if self.atomic {
            self.deferred.push(m);
            Assembled::Deferred
        } else {
            self.manifest_jobs.push_back(Job::Push(m));
            Assembled::Push
        })
    }

    /// A list's pushes ended.
    pub fn pushed(&mut self, m: usize, result: Result<(), String>) {
        self.running_lists -= 1;
        self.manifests[m] = match result {
            Ok(()) => Status::Pushed,
            Err(reason) => {
                self.fail();
                Status::Failed { reason }
            }
        };
    }

    fn fail(&mut self) {
        self.failed = true;
        self.stopping |= !self.keep_going;
    }

    /// After build `failed` failed: every build that depends on it, directly or not, is
    /// skipped, and so is every list that would hold one of them.
    fn skip_dependents(&mut self, failed: BuildIx) {
        let failed_id = self.ids[failed].clone();
        let mut stack = vec![failed];
        while let Some(n) = stack.pop() {
            for (m, _) in self.manifests_of[n].clone() {
                if self.manifests[m] == Status::NotStarted {
                    let reason = format!("its build {} failed", self.ids[n]);
                    let reason = if n == failed {
                        reason
                    } else {
                        format!("{reason} (it depends on {failed_id})")
                    };
                    self.skip_manifest(m, reason);
                }
            }
            for d in self.dependents[n].clone() {
                if self.builds[d] == Status::NotStarted {
                    let reason = format!("depends on {failed_id}, which failed");
                    self.notes.push(Note::SkippedBuild(d, reason.clone()));
                    self.builds[d] = Status::Skipped { reason };
                    stack.push(d);
                }
            }
        }
        let builds = &self.builds;
        for heap in &mut self.ready {
            heap.retain(|(_, Reverse(i))| builds[*i] == Status::NotStarted);
        }
    }

    /// The statuses at the end: lists still deferred when the run stopped are skipped.
    pub fn finish(mut self) -> (Vec<Status>, Vec<Status>, bool) {
        if self.stopping {
            for m in std::mem::take(&mut self.deferred) {
                self.manifests[m] = Status::Skipped {
                    reason: ATOMIC_SKIP.into(),
                };
            }
        }
        let success = !self.failed
            && self.builds.iter().all(Status::finished)
            && self.manifests.iter().all(Status::finished);
        (self.builds, self.manifests, success)
    }
}

#[cfg(test)]
mod tests;
