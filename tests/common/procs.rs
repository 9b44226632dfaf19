//! Processes a test starts to stand for ones mab never started, and what `/proc` says of them.

use std::process::Command;

/// Fields of `/proc/PID/stat` after the command name: state, ppid, pgrp, ...
pub fn stat(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    Some(rest.split_whitespace().map(String::from).collect())
}

/// Whether process `pid` is alive (not a zombie).
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|f| f[0] != "Z")
}

pub fn kill_group(group: i32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .status();
}

/// A process group whose leader has exited while a member lives on until it is killed, as an
/// orphaned daemon's would: the member's pid and the group.
pub fn orphaned_group() -> (i32, i32) {
    use std::os::unix::process::CommandExt;
    // `sleep infinity`: it lives until the test kills the group, however long a run takes.
    let out = Command::new("sh")
        .args(["-c", "sleep infinity >/dev/null 2>&1 & echo $!"])
        .process_group(0)
        .output()
        .expect("sh runs");
    let member: i32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a pid");
    let group: i32 = stat(member).expect("the member lives")[2]
        .parse()
        .expect("a group");
    assert_ne!(member, group, "the group's leader has exited");
    (member, group)
}
