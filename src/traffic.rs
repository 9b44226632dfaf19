//! How many bytes a process group moves: the `rchar` and `wchar` of `/proc/<pid>/io` of each of
//! its processes, which count every `read`/`write` (and `sendfile`), sockets included. podman and
//! skopeo print no byte progress when their output is not a terminal, so this is the one way to
//! see that a push is still moving data, and to tell a stalled upload from a slow one.
//!
//! Measured on podman 4.3.1 (a 64 MiB layer pushed through a proxy that stops reading after
//! 1 MB): while the upload hangs, the counters still grow by 8–20 bytes a second (the Go
//! runtime's one-byte wake-ups on its netpoll pipe), so "no change" never happens; through a
//! proxy throttled to 1 MB/s they grow by ~2.5 MB a second (the layer read, compressed and
//! written), with single seconds of no growth. Hence a floor: a group makes progress when it has
//! moved [`PROGRESS_FLOOR`] bytes since it last did, which a live transfer does within
//! milliseconds and the runtime's noise takes about an hour to add up to.

use std::collections::HashMap;

/// Bytes a group must move to count as making progress (see the module's comment).
pub const PROGRESS_FLOOR: u64 = 64 * 1024;

/// The process group `group`'s I/O, read again at each [`Meter::sample`].
pub struct Meter {
    group: i32,
    /// Per process of the group seen so far: its `rchar + wchar` when last read.
    seen: HashMap<i32, u64>,
    /// Bytes moved since the meter started: the sum of every process's growth (a process that
    /// exits takes its counters with it; what it moved stays counted).
    moved: u64,
}

impl Meter {
    pub fn new(group: i32) -> Self {
        Self {
            group,
            seen: HashMap::new(),
            moved: 0,
        }
    }

    /// Bytes the group has moved since the meter started, or `None` when no process of the group
    /// lets its counters be read (then nothing can be said about progress).
    pub fn sample(&mut self) -> Option<u64> {
        let mut readable = false;
        for pid in members(self.group) {
            let Some(io) = io_bytes(pid) else { continue };
            readable = true;
            // A process seen for the first time counts with all it has moved: starting one
            // is activity too.
            let before = self.seen.insert(pid, io).unwrap_or(0);
            self.moved += io.saturating_sub(before);
        }
        readable.then_some(self.moved)
    }
}

/// The processes whose process group is `group`.
fn members(group: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| process_group(pid) == Some(group))
        .collect()
}

/// Field 5 of `/proc/PID/stat`.
fn process_group(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// `rchar + wchar` of `/proc/PID/io`.
fn io_bytes(pid: i32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| -> Option<u64> {
        io.lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("rchar:")? + field("wchar:")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    #[test]
    fn a_group_that_copies_data_moves_bytes_and_a_sleeping_one_does_not() {
        let start = |script: &str| {
            Command::new("sh")
                .args(["-c", script])
                .stdout(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap()
        };
        // The copy runs in a child of the leader: the whole group counts.
        let mut busy = start("head -c 100000000 /dev/zero | cat; sleep 30");
        let mut idle = start("sleep 30");
        let (mut busy_meter, mut idle_meter) =
            (Meter::new(busy.id() as i32), Meter::new(idle.id() as i32));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while busy_meter.sample().unwrap() < 100_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the copy never counted"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(idle_meter.sample().unwrap() < PROGRESS_FLOOR);
        for child in [&mut busy, &mut idle] {
            let _ = rustix::process::kill_process_group(
                rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
                rustix::process::Signal::KILL,
            );
            let _ = child.wait();
        }
        assert_eq!(Meter::new(i32::MAX).sample(), None);
    }
}
