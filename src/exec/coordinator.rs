//! The loop of a run (cargo's `drain_the_queue`, nextest's dispatcher): on the calling thread,
//! it starts every job the scheduler says is ready on the pool, waits for the next event (a
//! job's end, a signal, the end of the kill grace) and settles it. It owns the run's state;
//! jobs only send back what their end changes ([`jobs::Settle`]). What happened goes out as
//! [`RunEvent`]s, to the progress display and the report.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::plan::Plan;
use crate::progress::Progress;

use super::events::{Lane, Place, RunEvent, Span, Subject};
use super::interrupt::{Interrupt, Response};
use super::jobs::{self, Queue, Settle};
use super::outcomes::Outcomes;
use super::runner::Runner;
use super::schedule::{Job, Note, Scheduler};

/// What the coordinator waits for.
enum Event {
    /// A job ended; what its end changes.
    Done(Job, Settle),
    Signal(i32),
    /// The grace after the first signal is over.
    GraceOver,
}

/// A running job: when it started and where.
struct Running {
    at: Duration,
    place: Place,
    /// Its node's index among the plan's nodes (0 without nodes).
    node: usize,
}

/// Which slot of each lane is taken: builds per node, list jobs on this machine.
struct Slots {
    builds: Vec<Vec<bool>>,
    lists: Vec<bool>,
}

impl Slots {
    fn lane(&mut self, lane: Lane, node: usize) -> &mut Vec<bool> {
        match lane {
            Lane::Builds => &mut self.builds[node],
            Lane::Lists => &mut self.lists,
        }
    }

    /// The lowest free slot, taken. The scheduler keeps within the slots; should it not, the
    /// job gets a slot past them rather than share one.
    fn take(&mut self, lane: Lane, node: usize) -> usize {
        let slots = self.lane(lane, node);
        let slot = slots.iter().position(|taken| !taken).unwrap_or_else(|| {
            slots.push(false);
            slots.len() - 1
        });
        slots[slot] = true;
        slot
    }

    fn give_back(&mut self, lane: Lane, node: usize, slot: usize) {
        if let Some(taken) = self.lane(lane, node).get_mut(slot) {
            *taken = false;
        }
    }
}

/// How the jobs of a run ended.
pub(super) struct Drained {
    pub(super) scheduler: Scheduler,
    pub(super) outcomes: Outcomes,
    /// The signal that interrupted the run.
    pub(super) interrupted: Option<i32>,
}

struct Coordinator<'s> {
    plan: &'s Plan,
    run_dir: &'s Path,
    runner: &'s Runner<'s>,
    progress: &'s Progress,
    /// Builds at once (per node, the plan's slots), and as many list jobs.
    jobs: usize,
    queue: Queue,
    outcomes: Outcomes,
    running: HashMap<Job, Running>,
    slots: Slots,
    interrupt: Interrupt,
    /// The start of the run, which event times count from.
    origin: Instant,
    tx: Sender<Event>,
    rx: Receiver<Event>,
}

/// Runs every job of `plan` that `scheduler` hands out, `jobs` at once, on a pool, until all
/// have ended or the run stops. `first` are events from before the jobs (the registry check).
#[allow(clippy::too_many_arguments)]
pub(super) fn drain(
    plan: &Plan,
    run_dir: &Path,
    runner: &Runner,
    progress: &Progress,
    jobs: usize,
    scheduler: Scheduler,
    origin: Instant,
    first: Vec<RunEvent>,
) -> std::io::Result<Drained> {
    let jobs = jobs.max(1);
    let node_slots: Vec<usize> = if plan.nodes.is_empty() {
        vec![jobs]
    } else {
        plan.nodes.iter().map(|n| n.jobs).collect()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        // Builds (per node) and list jobs have slots of their own.
        .num_threads(jobs + node_slots.iter().sum::<usize>().max(jobs))
        .thread_name(|i| format!("mab-job-{i}"))
        .build()
        .map_err(std::io::Error::other)?;
    let (tx, rx) = mpsc::channel::<Event>();
    // Interrupts arrive as events, so the coordinator deals with them like with anything else.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let signal_handle = signals.handle();
    let signal_tx = tx.clone();
    let signal_thread = std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal_tx.send(Event::Signal(signal)).is_err() {
                break;
            }
        }
    });
    let mut coordinator = Coordinator {
        plan,
        run_dir,
        runner,
        progress,
        jobs,
        queue: Queue {
            scheduler,
            pushed: HashMap::new(),
            sboms: HashMap::new(),
        },
        outcomes: Outcomes::new(plan, run_dir),
        running: HashMap::new(),
        slots: Slots {
            builds: node_slots.iter().map(|&n| vec![false; n]).collect(),
            lists: vec![false; jobs],
        },
        interrupt: Interrupt::Running,
        origin,
        tx,
        rx,
    };
    coordinator.emit(first);
    // The coordinator runs here, on the calling thread; jobs run on the pool. A plain `scope`
    // would run this closure on a pool thread and could deadlock a pool of one.
    pool.in_place_scope(|scope| coordinator.drive(scope));
    signal_handle.close();
    let _ = signal_thread.join();
    Ok(Drained {
        interrupted: coordinator.interrupt.signal(),
        scheduler: coordinator.queue.scheduler,
        outcomes: coordinator.outcomes,
    })
}

impl<'s> Coordinator<'s> {
    fn drive(&mut self, scope: &rayon::Scope<'s>) {
        loop {
            self.start_ready(scope);
            if self.queue.scheduler.done() {
                break;
            }
            if self.queue.scheduler.running() == 0 {
                continue;
            }
            match self.next_event() {
                Some(Event::Done(job, settle)) => self.on_done(job, settle),
                Some(Event::Signal(signal)) => self.on_signal(signal),
                Some(Event::GraceOver) => self.on_grace_over(),
                None => break,
            }
        }
    }

    /// Starts every job the scheduler lets start now.
    fn start_ready(&mut self, scope: &rayon::Scope<'s>) {
        while let Some(job) = self.queue.scheduler.next(self.jobs) {
            self.tell_skips();
            let prepared = jobs::prepare(self.plan, self.run_dir, job, &self.queue);
            let (node, place) = self.place(job);
            let at = self.origin.elapsed();
            self.running.insert(
                job,
                Running {
                    at,
                    place: place.clone(),
                    node,
                },
            );
            self.emit([RunEvent::Started {
                job,
                label: prepared.label,
                command: prepared.command,
                at,
                place,
            }]);
            let (tx, runner, work) = (self.tx.clone(), self.runner, prepared.work);
            scope.spawn(move |_| {
                let settle = work(runner);
                let _ = tx.send(Event::Done(job, settle));
            });
        }
        self.tell_skips();
    }

    /// Where `job` runs: its node (index and place) and a free slot of its lane there.
    fn place(&mut self, job: Job) -> (usize, Place) {
        let (lane, node, name) = match job {
            Job::Build(i) => {
                let name = self.plan.builds[i].node.clone();
                let node = name
                    .as_ref()
                    .and_then(|n| self.plan.nodes.iter().position(|p| p.name == *n))
                    .unwrap_or(0);
                (Lane::Builds, node, name)
            }
            Job::Assemble(_) | Job::Push(_) => (Lane::Lists, 0, None),
        };
        let slot = self.slots.take(lane, node);
        (
            node,
            Place {
                node: name,
                lane,
                slot,
            },
        )
    }

    /// The next job's end or signal; the end of the kill grace if that comes first.
    fn next_event(&self) -> Option<Event> {
        match self.interrupt.deadline() {
            Some(at) => match self
                .rx
                .recv_timeout(at.saturating_duration_since(Instant::now()))
            {
                Ok(event) => Some(event),
                Err(RecvTimeoutError::Timeout) => Some(Event::GraceOver),
                Err(RecvTimeoutError::Disconnected) => None,
            },
            None => self.rx.recv().ok(),
        }
    }

    /// A job ended: its slot is free, its end settled, what it says told.
    fn on_done(&mut self, job: Job, settle: Settle) {
        let end = self.origin.elapsed();
        let span = match self.running.remove(&job) {
            Some(running) => {
                let lane = running.place.lane;
                self.slots.give_back(lane, running.node, running.place.slot);
                Span {
                    start: running.at,
                    end,
                    place: running.place,
                }
            }
            // Every job the coordinator hears of, it started: never here.
            None => Span {
                start: end,
                end,
                place: self.place(job).1,
            },
        };
        let events = settle(&mut self.queue, span);
        self.emit(events);
    }

    /// The first signal stops the run (nothing new starts, running commands are asked to
    /// stop); any later one kills what still runs.
    fn on_signal(&mut self, signal: i32) {
        match self.interrupt.on_signal(signal, Instant::now()) {
            Response::Stop => {
                self.queue.scheduler.stop();
                let stopping = self.runner.supervisor.cancel();
                self.emit([RunEvent::Interrupted { signal, stopping }]);
            }
            Response::Kill => {
                self.emit([RunEvent::Killing]);
                self.runner.supervisor.kill_all();
            }
        }
    }

    fn on_grace_over(&mut self) {
        self.runner.supervisor.kill_all();
        self.interrupt.grace_over();
    }

    /// What the scheduler skipped since it was last asked.
    fn tell_skips(&mut self) {
        let skips = self.queue.scheduler.notes().into_iter().map(|note| {
            let (subject, reason) = match note {
                Note::SkippedBuild(i, reason) => (Subject::Build(i), reason),
                Note::SkippedManifest(m, reason) => (Subject::List(m), reason),
            };
            RunEvent::Skipped { subject, reason }
        });
        let skips: Vec<RunEvent> = skips.collect();
        self.emit(skips);
    }

    /// Tells `events` to everyone who watches the run.
    fn emit(&mut self, events: impl IntoIterator<Item = RunEvent>) {
        for event in events {
            self.progress.show(&event);
            self.outcomes.record(&event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_takes_the_lowest_free_slot_of_its_lane_and_node() {
        let mut slots = Slots {
            builds: vec![vec![false; 2], vec![false; 1]],
            lists: vec![false; 2],
        };
        assert_eq!(slots.take(Lane::Builds, 0), 0);
        assert_eq!(slots.take(Lane::Builds, 0), 1);
        // Each node and the lists have slots of their own.
        assert_eq!(slots.take(Lane::Builds, 1), 0);
        assert_eq!(slots.take(Lane::Lists, 0), 0);
        slots.give_back(Lane::Builds, 0, 0);
        assert_eq!(slots.take(Lane::Builds, 0), 0);
        // Past its slots (the scheduler's bug), a job gets a slot of its own, never a shared one.
        assert_eq!(slots.take(Lane::Builds, 0), 2);
    }
}
