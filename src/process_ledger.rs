//! The process ledger: the process groups each `mab run` started, so that a later run stops
//! what one left running when it died together with its reaper (`mab __reap`, see
//! [`crate::supervise`]).
//!
//! It lives outside every repository, in `$XDG_RUNTIME_DIR/mab/` when that directory is
//! usable, else in the user's state directory (`$XDG_STATE_HOME/mab/`, by default
//! `~/.local/state/mab/`): directories of this user, mode 0700, that no one else can write, so
//! a repository cannot forge a record (a `.mab/processes/` left in one is never read). Records
//! are kept per boot (`processes/<boot id>/<run id>`): the numbers of another boot mean
//! nothing, and their records are dropped. Each record names a group's leader as mab started
//! it (pid, group, start time); a later run signals a group only while that very process is
//! alive and still leads it. Any other record is dropped, never signalled.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::supervise::{start_time, stop_groups};

/// The leader of a process group mab started, as the kernel knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leader {
    pub pid: i32,
    pub pgid: i32,
    /// Field 22 of `/proc/PID/stat`: tells the process from a later one of the same number.
    pub start: u64,
}

impl Leader {
    /// Process `pid` as it is now (none once it is gone and reaped).
    pub fn of(pid: i32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        let (_, rest) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some(Self {
            pid,
            pgid: fields.get(2)?.parse().ok()?,
            start: fields.get(19)?.parse().ok()?,
        })
    }

    /// Whether this very process is alive (or a zombie holding its number) and leads its
    /// group: the only case in which a record is acted on.
    pub fn is_live_leader(&self) -> bool {
        self.pid == self.pgid && Self::of(self.pid) == Some(*self)
    }
}

/// One line of a record, also what the reaper reads from its pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// `+ PID PGID START`
    Started(Leader),
    /// `- PGID`
    Ended(i32),
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Started(l) => write!(f, "+ {} {} {}", l.pid, l.pgid, l.start),
            Self::Ended(g) => write!(f, "- {g}"),
        }
    }
}

impl Line {
    pub fn parse(line: &str) -> Option<Self> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["+", pid, pgid, start] => Some(Self::Started(Leader {
                pid: pid.parse().ok()?,
                pgid: pgid.parse().ok()?,
                start: start.parse().ok()?,
            })),
            ["-", pgid] => Some(Self::Ended(pgid.parse().ok()?)),
            _ => None,
        }
    }
}

/// The leaders a record lists as started and not ended (by group).
pub fn live_in(lines: impl IntoIterator<Item = Line>) -> HashMap<i32, Leader> {
    let mut live = HashMap::new();
    for line in lines {
        match line {
            Line::Started(l) => {
                live.insert(l.pgid, l);
            }
            Line::Ended(g) => {
                live.remove(&g);
            }
        }
    }
    live
}

/// The ledger of this user and boot.
pub struct Ledger {
    /// `.../processes/<boot id>`
    dir: PathBuf,
}

/// The first line of a record: the mab that writes it, `run PID START`.
fn header_of(me: Leader) -> String {
    format!("run {} {}", me.pid, me.start)
}

/// Whether the mab a record's first line names is still running.
fn writer_running(text: &str) -> bool {
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (Some("run"), Some(pid), Some(start)) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>()) else {
        return false;
    };
    pid as u32 != std::process::id() && start_time(pid) == Some(start)
}

/// This machine's boot: `/proc/sys/kernel/random/boot_id`.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .unwrap_or_else(|| "unknown-boot".into())
}

/// `path` as a private directory of this user: made (mode 0700, parents too) when `create`,
/// then checked to be a real directory (not a link) of this user that no one else can write.
fn private_dir(path: &Path, create: bool) -> std::io::Result<()> {
    if create {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
    }
    let meta = std::fs::symlink_metadata(path)?;
    let me = rustix::process::geteuid().as_raw();
    let problem = if !meta.is_dir() {
        Some("is not a directory".to_string())
    } else if meta.uid() != me {
        Some(format!(
            "belongs to user {}, not to this user ({me})",
            meta.uid()
        ))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "can be written by other users (mode {:o})",
            meta.mode() & 0o7777
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(std::io::Error::other(format!(
            "refusing {} for the process ledger: it {p}",
            path.display()
        ))),
    }
}

/// Where the ledger is: `runtime/mab` (`$XDG_RUNTIME_DIR`) when `runtime` is a usable
/// directory, else `state/mab` (`$XDG_STATE_HOME`, or `~/.local/state`).
fn base(runtime: Option<&Path>, state: Option<&Path>) -> std::io::Result<PathBuf> {
    if let Some(rt) = runtime.filter(|p| p.is_absolute())
        && private_dir(rt, false).is_ok()
        && private_dir(&rt.join("mab"), true).is_ok()
    {
        return Ok(rt.join("mab"));
    }
    let state = state.filter(|p| p.is_absolute()).ok_or_else(|| {
        std::io::Error::other("no place for the process ledger: set XDG_RUNTIME_DIR or HOME")
    })?;
    let base = state.join("mab");
    private_dir(&base, true)?;
    Ok(base)
}

impl Ledger {
    /// The ledger of this user and boot, where this process's environment says.
    pub fn open() -> std::io::Result<Self> {
        let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")));
        Self::open_in(runtime.as_deref(), state.as_deref())
    }

    fn open_in(runtime: Option<&Path>, state: Option<&Path>) -> std::io::Result<Self> {
        let processes = base(runtime, state)?.join("processes");
        private_dir(&processes, true)?;
        let dir = processes.join(boot_id());
        private_dir(&dir, true)?;
        Ok(Self { dir })
    }

    /// A new record for the run `run_id`, headed by this process.
    pub fn record(&self, run_id: &str) -> std::io::Result<Record> {
        let path = self.dir.join(run_id);
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)?;
        let me = Leader::of(std::process::id() as i32).ok_or_else(|| {
            std::io::Error::other("cannot read this process's start time from /proc")
        })?;
        writeln!(file, "{}", header_of(me))?;
        Ok(Record { file, path })
    }

    /// Stops what dead runs of this user left running, and says so; drops every record of a
    /// dead run, and those of other boots. Returns how many groups were stopped.
    pub fn stop_leftovers(&self, grace: Duration) -> usize {
        if let Some(processes) = self.dir.parent()
            && let Ok(boots) = std::fs::read_dir(processes)
        {
            for boot in boots.flatten() {
                if boot.path() != self.dir {
                    let _ = std::fs::remove_dir_all(boot.path());
                }
            }
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut stopped = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if writer_running(&text) {
                continue; // a run still going
            }
            let groups: Vec<(i32, u64)> = live_in(text.lines().filter_map(Line::parse))
                .into_values()
                .filter(Leader::is_live_leader)
                .map(|l| (l.pgid, l.start))
                .collect();
            let n = stop_groups(&groups, grace);
            if n > 0 {
                eprintln!("stopped {n} command(s) left running by the dead run {name}");
            }
            stopped += n;
            let _ = std::fs::remove_file(&path);
        }
        stopped
    }
}

/// A run's own record, removed when the run ends.
pub struct Record {
    file: File,
    path: PathBuf,
}

impl Record {
    pub fn append(&mut self, line: Line) {
        let _ = writeln!(self.file, "{line}");
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(pid: i32, pgid: i32, start: u64) -> Line {
        Line::Started(Leader { pid, pgid, start })
    }

    #[test]
    fn lines_round_trip_and_old_ones_are_not_records() {
        for line in [leader(10, 10, 5), Line::Ended(10)] {
            assert_eq!(Line::parse(&line.to_string()), Some(line));
        }
        // The old format (`+ GROUP START`), and anything else, is no record.
        assert_eq!(Line::parse("+ 10 0"), None);
        assert_eq!(Line::parse("garbage"), None);
        let live = live_in([leader(10, 10, 5), leader(11, 11, 6), Line::Ended(10)]);
        assert_eq!(
            live.into_values().collect::<Vec<_>>(),
            [Leader {
                pid: 11,
                pgid: 11,
                start: 6
            }]
        );
    }

    #[test]
    fn only_the_very_process_that_leads_its_group_is_a_live_leader() {
        let me = Leader::of(std::process::id() as i32).unwrap();
        let other_start = Leader {
            start: me.start + 1,
            ..me
        };
        assert!(!other_start.is_live_leader());
        // A test process does not lead its own group as a rule; whether or not, the record of
        // it with another group never matches.
        let other_group = Leader {
            pgid: me.pgid + 1,
            ..me
        };
        assert!(!other_group.is_live_leader());
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let l = Leader::of(child.id() as i32).unwrap();
        assert!(l.is_live_leader());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!l.is_live_leader());
    }

    #[test]
    fn the_ledger_is_private_and_falls_back_from_an_unusable_runtime_dir() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let runtime = tmp.path().join("run");
        let state = tmp.path().join("state");
        std::fs::create_dir(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o777)).unwrap();
        let ledger = Ledger::open_in(Some(&runtime), Some(&state)).unwrap();
        assert!(
            ledger.dir.starts_with(state.join("mab/processes")),
            "{}",
            ledger.dir.display()
        );
        let mode = std::fs::metadata(state.join("mab"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let ledger = Ledger::open_in(Some(&runtime), Some(&state)).unwrap();
        assert!(ledger.dir.starts_with(runtime.join("mab/processes")));
        // A state directory others can write is refused, not used.
        let shared = tmp.path().join("shared");
        std::fs::create_dir_all(shared.join("mab")).unwrap();
        std::fs::set_permissions(shared.join("mab"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let err = Ledger::open_in(None, Some(&shared)).err().unwrap();
        assert!(
            err.to_string().contains("can be written by other users"),
            "{err}"
        );
        // So is a link.
        let linked = tmp.path().join("linked");
        std::fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(&state, linked.join("mab")).unwrap();
        let err = Ledger::open_in(None, Some(&linked)).err().unwrap();
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    #[test]
    fn records_of_another_boot_are_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let ledger = Ledger::open_in(None, Some(tmp.path())).unwrap();
        let old = ledger.dir.parent().unwrap().join("another-boot");
        std::fs::create_dir(&old).unwrap();
        // Never read: the numbers mean nothing on this boot.
        std::fs::write(
            old.join("20260101-000000-7"),
            "run 4194000 1\n+ 4194001 4194001 1\n",
        )
        .unwrap();
        assert_eq!(ledger.stop_leftovers(Duration::from_millis(10)), 0);
        assert!(!old.exists());
        assert!(ledger.dir.exists());
    }
}
