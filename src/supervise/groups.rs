//! Process groups, told apart from later ones by their leader's start time: signalling and
//! stopping them, and the reaper (`mab __reap`) that stops what a dead mab left running.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::process_ledger::Line;

/// A process's start time (field 22 of `/proc/PID/stat`), to tell it from a later process of the
/// same number.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ...: comm may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub(super) fn signal_group(group: i32, signal: Signal) {
    // Group 1 would be `kill(-1)`: every process this user may signal.
    if let Some(pid) = Pid::from_raw(group).filter(|_| group > 1) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Whether any process of `group` is alive (a zombie leader counts: its group is not free).
fn group_alive(group: i32) -> bool {
    Pid::from_raw(group).is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok())
}

/// Stops `groups` (each with its leader's start time): SIGTERM, up to `grace` for them to end,
/// then SIGKILL. A group whose leader is now another process is left alone.
pub(crate) fn stop_groups(groups: &[(i32, u64)], grace: Duration) -> usize {
    let ours: Vec<i32> = groups
        .iter()
        .filter(|(g, started)| start_time(*g).is_none_or(|s| s == *started) && group_alive(*g))
        .map(|(g, _)| *g)
        .collect();
    for &g in &ours {
        signal_group(g, Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    while ours.iter().any(|&g| group_alive(g)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &g in ours.iter().filter(|&&g| group_alive(g)) {
        signal_group(g, Signal::KILL);
    }
    ours.len()
}

/// Applies one line mab sent (`+ PID PGID START` or `- PGID`) to `live`.
fn apply(live: &mut HashMap<i32, u64>, line: &str) {
    match Line::parse(line) {
        Some(Line::Started(l)) => {
            live.insert(l.pgid, l.start);
        }
        Some(Line::Ended(g)) => {
            live.remove(&g);
        }
        None => {}
    }
}

/// `mab __reap`: reads the records of the groups mab starts and ends from its standard input;
/// when mab's end of the pipe closes (it exited, or died), stops every group still listed.
pub fn reap(grace: Duration) -> std::io::Result<()> {
    let mut live = HashMap::new();
    for line in BufReader::new(std::io::stdin().lock()).lines() {
        apply(&mut live, &line?);
    }
    let groups: Vec<(i32, u64)> = live.into_iter().collect();
    stop_groups(&groups, grace);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reaper_follows_what_mab_says() {
        let mut live = HashMap::new();
        for line in ["+ 10 10 5", "+ 11 11 6", "- 10", "garbage", "+ 12 7"] {
            apply(&mut live, line);
        }
        assert_eq!(live, HashMap::from([(11, 6)]));
    }
}
