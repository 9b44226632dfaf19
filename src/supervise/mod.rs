//! Process supervision, in one place: every command `mab run` starts leads a process group of
//! its own; its output reaches the job's log only through a pipe, with secret values masked on
//! the way (so they never touch the disk); stopping it is always SIGTERM to the group, a grace
//! period, then SIGKILL, whether for a timeout, a stall, Ctrl-C or SIGTERM; a shared cancel
//! token keeps every job from starting another command or retry once the run stops; and nothing
//! outlives mab: a reaper process of its own learns each group as it starts and stops what is
//! left when mab dies, even by SIGKILL, and each group is recorded in the user's process ledger
//! ([`crate::process_ledger`], outside the repository) so that a later run stops the leftovers
//! of a run whose reaper died too.
//!
//! While mab runs, a group is signalled only while its leader is unreaped (running, or a zombie
//! that holds its pid), so a signal can never reach a process that reused the number. The
//! reaper, which hears of each group from mab itself, also stops a group whose leader exited
//! while others of it live (a group's number is not reused while any of it lives); the ledger
//! of a dead run, read from disk, is held to more: the leader itself must be alive.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

use crate::process_ledger::{Leader, Line, Record};

mod groups;
mod mask;

pub use groups::reap;
use groups::signal_group;
pub(crate) use groups::{start_time, stop_groups};
pub use mask::Masker;
use mask::copy_masked;

/// Opens `path` for appending, creating it readable by its owner only; never through a link
/// (logs are in a directory [`crate::state::StateDir`] made for the run).
pub fn private_append(path: &Path) -> std::io::Result<File> {
    File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// When a command may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Unless the run is stopping.
    Normal,
    /// Even then: clean-up after an interrupt.
    Cleanup,
}

/// What a command may take before it is stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// It must end within this.
    pub deadline: Option<Duration>,
    /// It must keep moving data: [`crate::traffic::PROGRESS_FLOOR`] bytes read or written (files
    /// and sockets alike) by its process group at least this often.
    pub stall: Option<Duration>,
}

/// Why the supervisor stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was still running at its deadline.
    Deadline(Duration),
    /// It moved no data for this long.
    Stalled(Duration),
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deadline(d) => write!(f, "timed out after {}", humantime::format_duration(*d)),
            Self::Stalled(d) => write!(
                f,
                "stalled: it moved no data for {}",
                humantime::format_duration(*d)
            ),
        }
    }
}

/// How a command ended.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    /// Its standard output, when captured.
    pub stdout: Vec<u8>,
    /// It passed one of its [`Limits`] and was stopped.
    pub stopped: Option<Stopped>,
    /// Where its own output starts in the log (earlier commands wrote before it).
    pub log_start: u64,
}

/// Why a command did not run to its end.
#[derive(Debug)]
pub enum Refused {
    /// The run is stopping: it did not start.
    Cancelled,
    Io(std::io::Error),
}

impl From<std::io::Error> for Refused {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// The running commands of one run.
pub struct Supervisor {
    /// Process groups whose leader is not reaped yet, with its start time (for the reaper and
    /// the ledger, which check it before signalling).
    live: Mutex<HashMap<i32, u64>>,
    cancelled: AtomicBool,
    grace: Duration,
    reaper: Option<Mutex<(Child, ChildStdin)>>,
    /// This run's record in the process ledger: its groups, for a later run.
    ledger: Option<Mutex<Record>>,
    secrets: Vec<String>,
}

impl Supervisor {
    /// A supervisor whose reaper is this program run as `mab __reap` (`reaper`: its argv), and
    /// whose record in the process ledger is `ledger` (none for both in tests that need
    /// neither).
    pub fn new(
        grace: Duration,
        reaper: Option<Vec<String>>,
        ledger: Option<Record>,
        secrets: Vec<String>,
    ) -> std::io::Result<Self> {
        let reaper = match reaper {
            Some(argv) => {
                let mut child = Command::new(&argv[0])
                    .args(&argv[1..])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    // Its own group: a Ctrl-C at the terminal is mab's to handle, not the reaper's.
                    .process_group(0)
                    .spawn()?;
                let stdin = child.stdin.take().expect("piped");
                Some(Mutex::new((child, stdin)))
            }
            None => None,
        };
        Ok(Self {
            live: Mutex::new(HashMap::new()),
            cancelled: AtomicBool::new(false),
            grace,
            reaper,
            ledger: ledger.map(Mutex::new),
            secrets,
        })
    }

    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Starts nothing more, and asks every running command to stop (SIGTERM to its group);
    /// returns how many were running.
    pub fn cancel(&self) -> usize {
        self.cancelled.store(true, Ordering::SeqCst);
        self.signal_all(Signal::TERM)
    }

    /// SIGKILL to every running command's group.
    pub fn kill_all(&self) {
        self.signal_all(Signal::KILL);
    }

    fn signal_all(&self, signal: Signal) -> usize {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        for &group in live.keys() {
            signal_group(group, signal);
        }
        live.len()
    }

    /// Tells the reaper and the ledger that a group started or ended.
    fn record(&self, line: Line) {
        if let Some(r) = &self.reaper {
            let mut r = r.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(r.1, "{line}");
        }
        if let Some(l) = &self.ledger {
            l.lock().unwrap_or_else(|e| e.into_inner()).append(line);
        }
    }

    /// Runs `cmd` as the leader of a new process group: its standard error (and standard
    /// output, unless `capture`) masked into `log`. Past its `limits` it is stopped (SIGTERM,
    /// grace, SIGKILL) and `stopped` says why.
    pub fn supervise(
        &self,
        mut cmd: Command,
        log: &Path,
        capture: bool,
        limits: Limits,
        when: When,
    ) -> Result<Outcome, Refused> {
        if when == When::Normal && self.cancelled() {
            return Err(Refused::Cancelled);
        }
        let log_start = std::fs::metadata(log).map_or(0, |m| m.len());
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let group = child.id() as i32;
        // It leads its own group (`process_group(0)` ran before it started). Start time 0, if
        // /proc cannot say, matches no process: such a group is only ever stopped by this run.
        let leader = Leader::of(group).unwrap_or(Leader {
            pid: group,
            pgid: group,
            start: 0,
        });
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group, leader.start);
        self.record(Line::Started(leader));
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let file = Mutex::new(private_append(log)?);
        let result = std::thread::scope(|s| {
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let copy = |from: Box<dyn Read + Send>| {
                let (file, done_tx, secrets) = (&file, done_tx.clone(), &self.secrets);
                s.spawn(move || {
                    let r = copy_masked(from, file, secrets);
                    let _ = done_tx.send(());
                    r
                })
            };
            let mut stdout = Some(stdout);
            let captured = capture.then(|| {
                let (done_tx, mut out) = (done_tx.clone(), stdout.take().expect("not taken"));
                s.spawn(move || {
                    let mut bytes = Vec::new();
                    let r = out.read_to_end(&mut bytes).map(|_| bytes);
                    let _ = done_tx.send(());
                    r
                })
            });
            let mut copies = vec![copy(Box::new(stderr))];
            if let Some(out) = stdout.take() {
                copies.push(copy(Box::new(out)));
            }
            let readers = copies.len() + usize::from(captured.is_some());
            let stopped = self.wait_exited(&child, group, limits)?;
            // Output pipes close when the group's last process exits. One that lingers after
            // its leader has exited (and is not reaped yet) is stopped.
            let mut finished = 0;
            let linger = Instant::now() + Duration::from_secs(2);
            while finished < readers {
                match done_rx.recv_timeout(linger.saturating_duration_since(Instant::now())) {
                    Ok(()) => finished += 1,
                    Err(_) => {
                        signal_group(group, Signal::KILL);
                        break;
                    }
                }
            }
            for c in copies {
                c.join().expect("log copy thread")?;
            }
            let stdout = match captured {
                Some(h) => h.join().expect("capture thread")?,
                None => Vec::new(),
            };
            Ok::<_, std::io::Error>((stopped, stdout))
        });
        // The leader is reaped only now, after it left the live set: until then its number
        // cannot be reused, so no signal above could reach another process.
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&group);
        let status = child.wait()?;
        self.record(Line::Ended(group));
        let (stopped, stdout) = result?;
        Ok(Outcome {
            status,
            stdout,
            stopped,
            log_start,
        })
    }

    /// Waits until `child` has exited, without reaping it; past `limits`, stops its group.
    fn wait_exited(
        &self,
        child: &Child,
        group: i32,
        limits: Limits,
    ) -> std::io::Result<Option<Stopped>> {
        let pid = Pid::from_raw(child.id() as i32).expect("a child has a pid");
        let started = Instant::now();
        let mut stall = limits.stall.map(|period| Stall::new(group, period));
        let mut stopped = None;
        let mut kill_at: Option<Instant> = None;
        loop {
            let exited = rustix::process::waitid(
                WaitId::Pid(pid),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
            )?;
            if exited.is_some() {
                return Ok(stopped);
            }
            let now = Instant::now();
            if stopped.is_none() {
                stopped = match (limits.deadline, &mut stall) {
                    (Some(d), _) if now >= started + d => Some(Stopped::Deadline(d)),
                    (_, Some(s)) => s.check(now).then_some(Stopped::Stalled(s.period)),
                    _ => None,
                };
                if stopped.is_some() {
                    signal_group(group, Signal::TERM);
                    kill_at = Some(now + self.grace);
                }
            }
            if kill_at.is_some_and(|k| now >= k) {
                signal_group(group, Signal::KILL);
                kill_at = None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The stall rule of one command: its group must move [`crate::traffic::PROGRESS_FLOOR`] bytes
/// within every `period`.
struct Stall {
    meter: crate::traffic::Meter,
    period: Duration,
    /// Bytes moved at the last progress, and when that was.
    moved: u64,
    progress_at: Instant,
    /// Reading `/proc` for every process is not free: once in a while is enough.
    next_sample: Instant,
}

impl Stall {
    fn new(group: i32, period: Duration) -> Self {
        let now = Instant::now();
        Self {
            meter: crate::traffic::Meter::new(group),
            period,
            moved: 0,
            progress_at: now,
            next_sample: now,
        }
    }

    /// Whether the group has stalled by `now`.
    fn check(&mut self, now: Instant) -> bool {
        if now < self.next_sample {
            return false;
        }
        self.next_sample =
            now + (self.period / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
        match self.meter.sample() {
            // Counters that cannot be read say nothing: no stall is ever declared on them.
            None => {
                self.progress_at = now;
                false
            }
            Some(moved) if moved >= self.moved + crate::traffic::PROGRESS_FLOOR => {
                (self.moved, self.progress_at) = (moved, now);
                false
            }
            Some(_) => now >= self.progress_at + self.period,
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // The run ended: the reaper has nothing to do; close its pipe and wait for it.
        if let Some(r) = self.reaper.take() {
            let (mut child, stdin) = r.into_inner().unwrap_or_else(|e| e.into_inner());
            drop(stdin);
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(script: &str, limits: Limits) -> (Outcome, Duration) {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = Supervisor::new(Duration::from_secs(1), None, None, Vec::new()).unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        let started = Instant::now();
        let outcome = supervisor
            .supervise(cmd, &dir.path().join("log"), false, limits, When::Normal)
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        (outcome, started.elapsed())
    }

    #[test]
    fn a_command_that_moves_no_data_is_stopped_as_stalled() {
        let stall = Duration::from_millis(500);
        let (outcome, took) = limited(
            "sleep 60",
            Limits {
                deadline: Some(Duration::from_secs(50)),
                stall: Some(stall),
            },
        );
        assert_eq!(outcome.stopped, Some(Stopped::Stalled(stall)));
        assert!(!outcome.status.success());
        assert!(took < Duration::from_secs(30), "{took:?}");
        // Its deadline comes first.
        let deadline = Duration::from_millis(300);
        let (outcome, _) = limited(
            "sleep 60",
            Limits {
                deadline: Some(deadline),
                stall: Some(Duration::from_secs(50)),
            },
        );
        assert_eq!(outcome.stopped, Some(Stopped::Deadline(deadline)));
    }

    #[test]
    fn a_command_that_keeps_moving_data_is_no_stall() {
        // Three seconds of copies, 400 kB every 100 ms, by short-lived children of the leader.
        let (outcome, took) = limited(
            "for i in $(seq 30); do head -c 200000 /dev/zero; sleep 0.1; done >/dev/null",
            Limits {
                deadline: None,
                stall: Some(Duration::from_secs(2)),
            },
        );
        assert_eq!(outcome.stopped, None);
        assert!(outcome.status.success());
        assert!(took > Duration::from_secs(2), "{took:?}");
    }
}
