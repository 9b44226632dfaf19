//! Helpers shared by the CLI tests: scratch projects in temporary directories and the real
//! `mab` binary run inside them.

pub mod fake;
pub mod procs;
pub mod proxy;
pub mod registry;
mod test;

pub use test::{Outcome, Test};

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The local base image scripts/test-env.sh makes: a manifest list of linux/amd64, linux/arm64
/// and linux/arm/v7 busybox images.
pub const BASE: &str = "localhost/mab-test/busybox:latest";

/// The end-to-end lock held: a helper that runs real podman takes `&Serial`, so that a test
/// cannot call it without the lock.
pub type Serial = std::sync::MutexGuard<'static, ()>;

/// Holds the one end-to-end test that may run: they share podman's storage, its local tag names
/// and the machine's cores. One lock for every module, as they were one binary each and those
/// ran one after another; a test that panicked leaves the lock usable.
pub fn e2e_serial() -> Serial {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A finished command's stdout then stderr, for assertion messages.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch project: a temporary directory with the files a test writes into it.
pub struct Project {
    pub dir: TempDir,
    /// `XDG_RUNTIME_DIR` of its runs (mode 0700), which holds their process ledger: tests
    /// side by side must not stop each other's leftovers. Podman run as root (the test
    /// machines) does not read it.
    pub runtime: TempDir,
}

impl Project {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            runtime: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A project holding a copy of `examples/<name>`.
    pub fn example(name: &str) -> Self {
        let p = Self::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        copy_dir(&src, p.path());
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The log of job `job` (`NAME@SLUG`, `NAME@manifest`) in the newest run that has one.
    pub fn job_log(&self, job: &str) -> Option<String> {
        let mut runs: Vec<_> = std::fs::read_dir(self.path().join(".mab/runs"))
            .ok()?
            .flatten()
            .map(|run| run.path())
            .collect();
        // Run ids start with their time: the newest sorts last.
        runs.sort();
        runs.iter()
            .rev()
            .find_map(|run| std::fs::read_to_string(run.join(format!("{job}.log"))).ok())
    }

    pub fn file(&self, rel: &str, text: &str) -> &Self {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
        self
    }

    /// Commits everything with fixed names and dates, so `git.sha` is the same on every run.
    pub fn git_commit(&self, message: &str) -> &Self {
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .args(args)
                .current_dir(self.path())
                .env("GIT_AUTHOR_NAME", "mab tests")
                .env("GIT_AUTHOR_EMAIL", "tests@mab.invalid")
                .env("GIT_COMMITTER_NAME", "mab tests")
                .env("GIT_COMMITTER_EMAIL", "tests@mab.invalid")
                .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
                .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .status()
                .expect("git runs");
            assert!(status.success(), "git {args:?} failed");
        };
        if !self.path().join(".git").exists() {
            git(&["init", "-q", "-b", "main"]);
        }
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", message]);
        self
    }

    /// `mab ARGS` with this project as the working directory, and the build isolation this
    /// machine kind needs (DEVELOPERS.md), which `mab run` checks before it starts.
    pub fn mab(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mab"));
        cmd.args(args)
            .current_dir(self.path())
            .env_remove("NO_COLOR")
            .env("BUILDAH_ISOLATION", "chroot")
            .env("XDG_RUNTIME_DIR", self.runtime.path());
        cmd
    }

    /// Insta settings that hide this project's temporary path.
    pub fn settings(&self) -> insta::Settings {
        let mut s = insta::Settings::clone_current();
        let real = std::fs::canonicalize(self.path()).expect("canonical path");
        for p in [real.as_path(), self.path()] {
            s.add_filter(&regex_escape(&p.display().to_string()), "[PROJECT]");
        }
        s.set_prepend_module_to_snapshot(false);
        s
    }
}

/// `mab run --progress plain ARGS` in `p` with the real podman: the output and the report as
/// JSON, for the tests that read what the report's type does not keep apart (a tag's `before`
/// that was `null` or left out).
pub fn reported(p: &Project, args: &[&str]) -> (std::process::Output, serde_json::Value) {
    reported_with(p, args, &[])
}

/// [`reported`] with `env` added.
pub fn reported_with(
    p: &Project,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Output, serde_json::Value) {
    let run = p
        .test()
        .real_podman()
        .args(["run", "--progress", "plain"])
        .report()
        .args(args)
        .envs(env.iter().copied())
        .run();
    let json = run.report_json();
    (run.out, json)
}

/// The entries of an image index: `(os/architecture, digest)` of each manifest it lists, in
/// its order.
pub fn index_entries(index: &serde_json::Value) -> Vec<(String, String)> {
    index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .map(|m| {
            let p = &m["platform"];
            (
                format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A JSON array of strings (an argv, a list of tags).
pub fn strings(array: &serde_json::Value) -> Vec<String> {
    array
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// The `key` field of each object of a JSON array: the ids of a plan's builds, the images of
/// its manifests.
pub fn each(array: &serde_json::Value, key: &str) -> Vec<String> {
    array
        .as_array()
        .expect("an array")
        .iter()
        .map(|o| o[key].as_str().expect("a string field").to_string())
        .collect()
}

/// The object of a JSON array whose `key` field is `value`.
pub fn find<'a>(array: &'a serde_json::Value, key: &str, value: &str) -> &'a serde_json::Value {
    array
        .as_array()
        .expect("an array")
        .iter()
        .find(|o| o[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {array:#}"))
}

/// Starts a command without waiting for it, its output captured for `wait_with_output`.
pub trait SpawnCaptured {
    fn spawn_captured(&mut self) -> std::process::Child;
}

impl SpawnCaptured for Command {
    fn spawn_captured(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the command starts")
    }
}

fn regex_escape(s: &str) -> String {
    s.chars().fold(String::new(), |mut out, c| {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let rel = entry.path().strip_prefix(from).expect("below root");
        let dest: PathBuf = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// Polls `done` every 50 ms until it holds; after `limit` the test fails, saying `what` it
/// waited for. The limit only turns a hang into a failure: tests wait on events, not time.
pub fn wait_at_most(limit: std::time::Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits for `child` (spawned with piped output) to end and returns its output; after `limit`
/// it is killed and the test fails, saying `what` should have ended it: a hang is the failure,
/// however slow the machine. Polls; the runs it is for print little, so no pipe fills.
pub fn output_of_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::Output {
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let said = child
                .wait_with_output()
                .map(|o| text(&o))
                .unwrap_or_default();
            panic!("not ended within {limit:?}: {what}\n{said}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Runs `cmd` to its end, its output captured; after `limit` it is killed and the test fails:
/// for runs that must end by themselves (a hang is the failure).
pub fn output_within(cmd: &mut Command, limit: std::time::Duration) -> std::process::Output {
    let out = tempfile::tempdir().expect("temp dir");
    let file = |name: &str| std::fs::File::create(out.path().join(name)).expect("output file");
    let mut child = cmd
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .spawn()
        .expect("the command starts");
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}, killed: {cmd:?}\n{}",
                std::fs::read_to_string(out.path().join("stderr")).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let read = |name: &str| std::fs::read(out.path().join(name)).expect("output");
    std::process::Output {
        status,
        stdout: read("stdout"),
        stderr: read("stderr"),
    }
}
