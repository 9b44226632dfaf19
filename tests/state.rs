//! State that a repository cannot forge (issue 17), against the stand-in podman (tests/fake):
//! mab writes `.mab/` only through real directories of its own and never through a link; a
//! `.mab` tracked by git is refused; the process ledger lives outside the repository, and a
//! record there stops only a process that mab started.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::Project;
use common::fake::run;
use common::procs::{alive, kill_group, orphaned_group, stat};

/// One image whose run writes every kind of state file: a labeled Dockerfile copy, an ignore
/// file (its context holds the state directory), an image id, a pushed digest.
fn project() -> Project {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"reg.test/acme\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n\n\
         [images.app]\ncontext = \".\"\nlabels = { team = \"x\" }\n",
    );
    p.file("Dockerfile", "FROM scratch\n");
    p
}

/// Every file under `dir` with its content.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// A committed link in `.mab/` (a checkout without git, such as a source tarball: git itself
/// would be refused first, below) pointing at a file or directory outside the repository.
#[test]
fn a_link_in_the_state_directory_is_refused_and_never_written_through() {
    let links = [
        ".mab",
        ".mab/.gitignore",
        ".mab/dockerfiles/app@linux-amd64",
        ".mab/ignore/app",
        ".mab/iid/app@linux-amd64",
        ".mab/digest/app@1",
        ".mab/hash-cache",
        ".mab/runs",
    ];
    for link in links {
        let p = project();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("authorized_keys"), "precious\n").unwrap();
        std::fs::create_dir(outside.path().join("dir")).unwrap();
        std::fs::write(outside.path().join("dir/.gitignore"), "mine\n").unwrap();
        let before = contents(outside.path());
        let at = p.path().join(link);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        let target = if link == ".mab" || link == ".mab/runs" {
            outside.path().join("dir")
        } else {
            outside.path().join("authorized_keys")
        };
        std::os::unix::fs::symlink(&target, &at).unwrap();
        let r = run(&p, &[], &[]);
        let text = r.text();
        assert_eq!(r.out.status.code(), Some(2), "{link}: {text}");
        assert!(
            text.contains(&format!(
                "`{link}` is a symbolic link (to `{}`)",
                target.display()
            )),
            "{link}: the link is named: {text}"
        );
        assert!(text.contains("mab::state"), "{link}: {text}");
        assert_eq!(
            contents(outside.path()),
            before,
            "{link}: a file outside changed"
        );
        assert!(
            !r.log.contains(" start "),
            "{link}: something was built:\n{}",
            r.log
        );
    }
}

#[test]
fn a_state_directory_tracked_by_git_is_refused() {
    let p = project();
    p.file(".mab/iid/app@linux-amd64", "sha256:forged\n");
    p.git_commit("ship mab's state");
    let r = run(&p, &[], &[]);
    let text = r.text();
    assert_eq!(r.out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("`.mab` is tracked by git (1 file(s), such as `.mab/iid/app@linux-amd64`)"),
        "{text}"
    );
    assert!(text.contains("git rm -r --cached .mab"), "{text}");
    // `mab plan --check-registry` writes its logs there too: refused the same way.
    let out = p.mab(&["plan", "--check-registry"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !r.log.contains(" start "),
        "something was built:\n{}",
        r.log
    );
    // So is a tracked link.
    let p = project();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), p.path().join(".mab")).unwrap();
    p.git_commit("ship a link");
    let r = run(&p, &[], &[]);
    assert_eq!(r.out.status.code(), Some(2), "{}", r.text());
    assert!(
        r.text().contains("`.mab` is tracked by git"),
        "{}",
        r.text()
    );
    assert_eq!(contents(outside.path()), BTreeMap::new());
}

/// The attack: a committed `.mab/processes/<run-id>` naming a process group made the
/// next run stop it. Two groups mab never started: one whose leader exited while a member
/// lives on (an orphaned daemon: it passed the old start-time check), one whose leader lives.
/// Records for both, in the old place in the repository and in the new ledger with wrong
/// start times: after a run, both still live.
#[test]
fn a_forged_ledger_record_never_stops_a_process_mab_did_not_start() {
    let p = project();
    let (orphan, orphan_group) = orphaned_group();
    let mut leader = Command::new("sleep")
        .arg("infinity")
        .process_group(0)
        .spawn()
        .unwrap();
    let leader_pid = leader.id() as i32;
    let leader_start: u64 = stat(leader_pid).unwrap()[19].parse().unwrap();

    p.file(
        ".mab/processes/20260101-000000-4194001",
        &format!("+ {orphan_group} 0\n+ {leader_pid} 0\n"),
    );
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let ledger = p.runtime.path().join("mab/processes").join(boot.trim());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&ledger)
        .unwrap();
    let forged = ledger.join("20260101-000000-4194002");
    std::fs::write(
        &forged,
        format!(
            "run 4194000 1\n+ {orphan_group} {orphan_group} 12345\n+ {leader_pid} {leader_pid} {}\n",
            leader_start + 1
        ),
    )
    .unwrap();

    let r = run(&p, &[], &[]);
    let (orphan_alive, leader_alive) = (alive(orphan), leader.try_wait().unwrap().is_none());
    kill_group(orphan_group);
    let _ = leader.kill();
    let _ = leader.wait();
    assert!(r.out.status.success(), "{}", r.text());
    assert!(orphan_alive, "the orphaned group was stopped: {}", r.text());
    assert!(leader_alive, "the live leader was stopped: {}", r.text());
    assert!(!r.text().contains("stopped"), "{}", r.text());
    assert!(!forged.exists(), "a record of a dead run is dropped");
}

/// A link in the state directory is refused at once, before the run waits for its turn on the
/// per-user lock: while another run of the user holds it, the error comes all the same.
#[test]
fn a_link_is_refused_before_the_run_waits_for_its_turn() {
    let p = project();
    std::fs::create_dir_all(p.path().join(".mab/dockerfiles")).unwrap();
    std::os::unix::fs::symlink(
        "/nonexistent/target",
        p.path().join(".mab/dockerfiles/app@linux-amd64"),
    )
    .unwrap();
    // A lock of this test's own (mab takes `$TMPDIR/mab-<uid>.lock`), held as a run would.
    let tmp = tempfile::tempdir().unwrap();
    let uid = rustix::process::getuid().as_raw();
    let lock = std::fs::File::create(tmp.path().join(format!("mab-{uid}.lock"))).unwrap();
    lock.lock().unwrap();
    let out = common::output_within(
        p.mab(&["run", "--no-push"])
            .env("TMPDIR", tmp.path())
            .env("PATH", common::fake::path()),
        std::time::Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert!(!stderr.contains("waiting for another mab run"), "{stderr}");
}
