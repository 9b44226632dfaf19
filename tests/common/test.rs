//! `mab` run in a scratch project, set up and checked call by call (just's `Test`): the files
//! and git history, which podman, the environment and arguments, then the exit status and
//! output expected; the report comes back as mab's own types.
//!
//! ```ignore
//! let run = Test::new()
//!     .file("multiarch.toml", CONFIG)
//!     .file("Dockerfile", "FROM scratch\n")
//!     .commit("fixture")
//!     .fake_podman()
//!     .args(["run", "--progress", "plain"])
//!     .report()
//!     .status(0)
//!     .stderr_has("pushed")
//!     .run();
//! assert!(run.report().success);
//! ```

use std::ffi::{OsStr, OsString};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use mab::exec::Report;

use super::{Project, fake, text};

/// The project a test runs in: its own, or one the caller keeps for several runs.
enum Owner<'p> {
    Owned(Project),
    Borrowed(&'p Project),
}

impl Deref for Owner<'_> {
    type Target = Project;

    fn deref(&self) -> &Project {
        match self {
            Self::Owned(p) => p,
            Self::Borrowed(p) => p,
        }
    }
}

/// Which podman the run finds.
#[derive(Clone, Copy, PartialEq)]
enum Podman {
    /// The environment's, untouched: for commands that never call podman (`plan`, `init`).
    Untouched,
    /// The real podman, with the machine's `CONTAINERS_REGISTRIES_CONF` left out: e2e configs
    /// mark their registries themselves.
    Real,
    /// The stand-ins of tests/fake first on `PATH`, their state and log in the project.
    Fake,
}

#[must_use = "a Test does nothing until `run`"]
pub struct Test<'p> {
    project: Owner<'p>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    podman: Podman,
    dir: Option<PathBuf>,
    status: Option<i32>,
    stdout: Option<String>,
    stdout_has: Vec<String>,
    stderr_has: Vec<String>,
    report: bool,
    snapshot: Option<String>,
    within: Option<Duration>,
}

impl Test<'static> {
    /// In a new, empty project.
    pub fn new() -> Self {
        Self::of(Owner::Owned(Project::new()))
    }

    /// In a copy of `examples/<name>`.
    pub fn example(name: &str) -> Self {
        Self::of(Owner::Owned(Project::example(name)))
    }
}

impl Project {
    /// A run of mab in this project, which the caller keeps for the next one.
    pub fn test(&self) -> Test<'_> {
        Test::of(Owner::Borrowed(self))
    }
}

impl<'p> Test<'p> {
    fn of(project: Owner<'p>) -> Self {
        Self {
            project,
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            podman: Podman::Untouched,
            dir: None,
            status: None,
            stdout: None,
            stdout_has: Vec::new(),
            stderr_has: Vec::new(),
            report: false,
            snapshot: None,
            within: None,
        }
    }

    /// Writes `text` to `rel` in the project (now, not at `run`).
    pub fn file(self, rel: &str, text: &str) -> Self {
        self.project.file(rel, text);
        self
    }

    /// Commits everything so far ([`Project::git_commit`]).
    pub fn commit(self, message: &str) -> Self {
        self.project.git_commit(message);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env_remove.push(key.as_ref().to_owned());
        self
    }

    /// The stand-in podman and skopeo (tests/fake), their state in `fake-state/` and their log
    /// of this run in `podman.log` of the project.
    pub fn fake_podman(mut self) -> Self {
        self.podman = Podman::Fake;
        self
    }

    /// The machine's podman, without the machine's registries.conf.
    pub fn real_podman(mut self) -> Self {
        self.podman = Podman::Real;
        self
    }

    /// Runs in `rel` below the project root.
    pub fn current_dir(mut self, rel: &str) -> Self {
        self.dir = Some(rel.into());
        self
    }

    /// The exit code the run must end with.
    pub fn status(mut self, code: i32) -> Self {
        self.status = Some(code);
        self
    }

    /// The whole of stdout.
    pub fn stdout(mut self, text: &str) -> Self {
        self.stdout = Some(text.into());
        self
    }

    pub fn stdout_has(mut self, text: &str) -> Self {
        self.stdout_has.push(text.into());
        self
    }

    pub fn stderr_has(mut self, text: &str) -> Self {
        self.stderr_has.push(text.into());
        self
    }

    /// `--report FILE` after the subcommand; the run must write it, and `Outcome::report`
    /// reads it back.
    pub fn report(mut self) -> Self {
        self.report = true;
        self
    }

    /// Snapshots the output as `name` (insta-cmd's format), with the project's path hidden:
    /// the run that the other expectations check, not a second one.
    pub fn snapshot(mut self, name: &str) -> Self {
        self.snapshot = Some(name.into());
        self
    }

    /// Kills the run and fails the test if it has not ended after `limit`: for runs whose
    /// hang is the failure. Not with `snapshot`.
    pub fn within(mut self, limit: Duration) -> Self {
        self.within = Some(limit);
        self
    }

    fn report_path(&self) -> PathBuf {
        self.project.path().join("report.json")
    }

    /// The command `run` would start, for a test that drives the process itself (signals,
    /// deadlines).
    pub fn command(&self) -> Command {
        let mut args = self.args.clone();
        if self.report {
            let at = 1.min(args.len());
            args.splice(at..at, ["--report".into(), self.report_path().into()]);
        }
        let mut cmd = self.project.mab(&[]);
        cmd.args(args);
        if let Some(dir) = &self.dir {
            cmd.current_dir(self.project.path().join(dir));
        }
        match self.podman {
            Podman::Untouched => {}
            Podman::Real => {
                cmd.env_remove("CONTAINERS_REGISTRIES_CONF");
            }
            Podman::Fake => {
                let state = self.project.path().join("fake-state");
                fake::stand_ins(&mut cmd, &self.project, &state, &self.fake_log());
            }
        }
        for key in &self.env_remove {
            cmd.env_remove(key);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn fake_log(&self) -> PathBuf {
        self.project.path().join("podman.log")
    }

    /// Runs mab once, checks what was asked for, and hands back what it did.
    pub fn run(self) -> Outcome<'p> {
        // Each run's own podman calls and report only.
        let _ = std::fs::remove_file(self.fake_log());
        if self.report {
            let _ = std::fs::remove_file(self.report_path());
        }
        let mut cmd = self.command();
        let (info, out) = match self.within {
            Some(limit) => (None, super::output_within(&mut cmd, limit)),
            None => {
                let (info, out) = insta_cmd::Spawn::spawn_with_info(&mut cmd, None);
                (Some(info), out)
            }
        };
        let all = text(&out);
        if let Some(code) = self.status {
            assert_eq!(
                out.status.code(),
                Some(code),
                "exit code of {cmd:?}:\n{all}"
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        if let Some(want) = &self.stdout {
            assert_eq!(stdout, want.as_str(), "stdout of {cmd:?}:\n{all}");
        }
        for want in &self.stdout_has {
            assert!(
                stdout.contains(want.as_str()),
                "no {want:?} on stdout:\n{all}"
            );
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        for want in &self.stderr_has {
            assert!(
                stderr.contains(want.as_str()),
                "no {want:?} on stderr:\n{all}"
            );
        }
        if let Some(name) = &self.snapshot {
            let mut settings = self.project.settings();
            settings.set_info(&info.expect("a snapshot is of a run without `within`"));
            settings.set_omit_expression(true);
            // Where the tests' snapshots are, not beside this file (insta's default).
            settings
                .set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"));
            settings.bind(|| {
                insta::assert_snapshot!(
                    name.as_str(),
                    format!(
                        "success: {:?}\nexit_code: {}\n----- stdout -----\n{stdout}\n----- stderr -----\n{stderr}",
                        out.status.success(),
                        out.status.code().unwrap_or(!0),
                    )
                )
            });
        }
        let report = self.report.then(|| {
            std::fs::read(self.report_path()).unwrap_or_else(|e| panic!("no report ({e}):\n{all}"))
        });
        let log = match self.podman {
            Podman::Fake => std::fs::read_to_string(self.fake_log()).unwrap_or_default(),
            _ => String::new(),
        };
        Outcome {
            project: self.project,
            out,
            report,
            log,
        }
    }
}

/// What a run did: its output, its report, and (with the stand-in podman) the podman calls it
/// made and what the stand-in registry holds.
pub struct Outcome<'p> {
    project: Owner<'p>,
    pub out: Output,
    report: Option<Vec<u8>>,
    /// The stand-in podman's log of this run: a line `SECONDS EVENT` per call.
    pub log: String,
}

impl Outcome<'_> {
    /// stdout then stderr, for assertion messages.
    pub fn text(&self) -> String {
        text(&self.out)
    }

    /// stdout as JSON, read into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not the JSON expected ({e}):\n{}", self.text()))
    }

    /// The report, as mab's own type.
    pub fn report(&self) -> Report {
        serde_json::from_slice(self.report_bytes())
            .unwrap_or_else(|e| panic!("the report does not read back ({e}):\n{}", self.text()))
    }

    /// The report as JSON, for what its type does not read back (see `Report`'s derives).
    pub fn report_json(&self) -> serde_json::Value {
        serde_json::from_slice(self.report_bytes()).expect("the report is JSON")
    }

    fn report_bytes(&self) -> &[u8] {
        self.report
            .as_deref()
            .expect("the Test asked for no report: call .report()")
    }

    /// The stand-in podman's state directory.
    pub fn state(&self) -> PathBuf {
        self.project.path().join("fake-state")
    }

    /// When the stand-in podman logged `event` (e.g. `start localhost/mab/app:linux-arm64`).
    pub fn at(&self, event: &str) -> f64 {
        self.log
            .lines()
            .find_map(|l| {
                l.split_once(' ')
                    .filter(|(_, e)| *e == event)
                    .map(|(t, _)| t.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no `{event}` in the podman log:\n{}", self.log))
    }

    pub fn has(&self, event: &str) -> bool {
        self.count(event) > 0
    }

    /// How many times the stand-in podman logged `event`.
    pub fn count(&self, event: &str) -> usize {
        self.log
            .lines()
            .filter(|l| l.split_once(' ').is_some_and(|(_, e)| e == event))
            .count()
    }

    /// The tags in the stand-in registry, less the marker tags (`mab-inputs-HEX`).
    pub fn pushed(&self) -> Vec<String> {
        self.tags()
            .into_iter()
            .filter(|t| !t.contains(":mab-inputs-"))
            .collect()
    }

    /// Every tag in the stand-in registry.
    pub fn tags(&self) -> Vec<String> {
        tags_in(&self.state())
    }
}

/// The tags the stand-in registry of state directory `state` holds, sorted.
pub fn tags_in(state: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(state.join("registry"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().replace('_', "/"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
