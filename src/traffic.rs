//! How many bytes a process group moves: the `rchar` and `wchar` of `/proc/<pid>/io` of each of
//! its processes, which count every `read`/`write` (and `sendfile`), sockets included, and what
//! the peers of its TCP sockets acknowledged (`tx_queue` of `/proc/<pid>/net/tcp` going down).
//! podman and skopeo print no byte progress when their output is not a terminal, so this is the
//! one way to see that a push is still moving data, and to tell a stalled upload from a slow one.
//!
//! Measured on podman 4.3.1 (a 64 MiB layer pushed through a proxy that stops reading after
//! 1 MB): while the upload hangs, the counters still grow by 8–20 bytes a second (the Go
//! runtime's one-byte wake-ups on its netpoll pipe), so "no change" never happens; hence a
//! floor: a group makes progress when it has moved [`PROGRESS_FLOOR`] bytes since it last did,
//! which the runtime's noise takes about an hour to add up to. Through a proxy throttled to
//! 150 kB/s, a push wrote its 3 MB layer into the socket's buffers at once and then made no
//! system call for longer than a 5 s stall period: the I/O counters alone called a slow push
//! stalled. The acknowledged bytes keep counting while the buffers drain.

use std::collections::HashMap;

/// Bytes a group must move to count as making progress (see the module's comment).
pub const PROGRESS_FLOOR: u64 = 64 * 1024;

/// The process group `group`'s I/O, read again at each [`Meter::sample`].
pub struct Meter {
    group: i32,
    /// Per process of the group seen so far: its `rchar + wchar` when last read.
    seen: HashMap<i32, u64>,
    /// Per TCP socket of the group (by inode): the bytes sent and not yet acknowledged.
    unacked: HashMap<u64, u64>,
    /// Bytes moved since the meter started: the sum of every process's growth (a process that
    /// exits takes its counters with it; what it moved stays counted), and of what the peers
    /// acknowledged.
    moved: u64,
}

impl Meter {
    pub fn new(group: i32) -> Self {
        Self {
            group,
            seen: HashMap::new(),
            unacked: HashMap::new(),
            moved: 0,
        }
    }

    /// Bytes the group has moved since the meter started, or `None` when no process of the group
    /// lets its counters be read (then nothing can be said about progress).
    pub fn sample(&mut self) -> Option<u64> {
        let mut readable = false;
        let members = members(self.group);
        for &pid in &members {
            let Some(io) = io_bytes(pid) else { continue };
            readable = true;
            // A process seen for the first time counts with all it has moved: starting one
            // is activity too.
            let before = self.seen.insert(pid, io).unwrap_or(0);
            self.moved += io.saturating_sub(before);
        }
        // A write returns once the data is in the socket's send buffer (up to 4 MiB by
        // default): on a slow link a push then makes no system call for as long as the buffer
        // takes to drain. The peer's acknowledgements show that it drains.
        let unacked = unacked_bytes(&members);
        for (inode, now) in &unacked {
            if let Some(before) = self.unacked.get(inode) {
                self.moved += before.saturating_sub(*now);
            }
        }
        self.unacked = unacked;
        readable.then_some(self.moved)
    }
}

/// Per TCP socket the processes `pids` hold (by inode): its `tx_queue` in `/proc/PID/net/tcp`
/// and `tcp6`, the bytes sent and not yet acknowledged by the peer.
fn unacked_bytes(pids: &[i32]) -> HashMap<u64, u64> {
    let mut inodes = std::collections::HashSet::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse::<u64>().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    let Some(pid) = pids.first().filter(|_| !inodes.is_empty()) else {
        return HashMap::new();
    };
    // The group's network namespace: one table for every process of it.
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    // sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let inode: u64 = fields.get(9)?.parse().ok()?;
                    let (tx, _) = fields.get(4)?.split_once(':')?;
                    Some((inode, u64::from_str_radix(tx, 16).ok()?))
                })
                .collect::<Vec<_>>()
        })
        .filter(|(inode, _)| inodes.contains(inode))
        .collect()
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

    /// A writer on a slow link: it fills the socket's buffers at once, then waits for them to
    /// drain, making no system call for seconds; the peer's acknowledgements are its progress.
    #[test]
    fn a_writer_on_a_slow_link_keeps_making_progress() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut writer = Command::new("bash")
            .args([
                "-c",
                &format!("head -c 100000000 /dev/zero > /dev/tcp/127.0.0.1/{port}"),
            ])
            .process_group(0)
            .spawn()
            .unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // 200 kB/s: 20 kB every 100 ms.
        let reader = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 20_000];
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = conn.read_exact(&mut buf);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            })
        };
        let mut meter = Meter::new(writer.id() as i32);
        let (mut last, mut last_at) = (0, std::time::Instant::now());
        let started = last_at;
        let mut longest = std::time::Duration::ZERO;
        while started.elapsed() < std::time::Duration::from_secs(8) {
            let moved = meter.sample().unwrap();
            let now = std::time::Instant::now();
            if moved >= last + PROGRESS_FLOOR {
                longest = longest.max(now - last_at);
                (last, last_at) = (moved, now);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        longest = longest.max(last_at.elapsed());
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_raw(writer.id() as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        let _ = writer.wait();
        reader.join().unwrap();
        assert!(
            longest < std::time::Duration::from_secs(2),
            "no progress for {longest:?}"
        );
    }
}
