//! Being at home in CI (`--ci auto|github|gitlab|none`, `--junit FILE`): which CI a run is
//! in, read once from the environment, and the writing of what the renderers make
//! ([`github`], [`gitlab`], [`junit`]: pure functions of the report) to the places each CI
//! reads: GitHub's step summary and outputs files and workflow commands on stdout, GitLab's
//! log sections.

pub mod github;
pub mod gitlab;
pub mod junit;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::exec::{Report, Status};
use crate::plan::Plan;

/// `--ci`: which CI to speak to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CiArg {
    /// GitHub Actions when `GITHUB_ACTIONS=true`, GitLab CI when `GITLAB_CI=true`, else none.
    Auto,
    Github,
    Gitlab,
    None,
}

/// The CI a run is in, with the files it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ci {
    Github(Github),
    Gitlab,
    None,
}

/// Where GitHub Actions reads a step's summary and outputs, and the workspace annotations'
/// paths are relative to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Github {
    pub step_summary: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub workspace: Option<PathBuf>,
}

impl Ci {
    /// Decides from `--ci` and the environment (`var` reads one variable).
    pub fn resolve(arg: CiArg, var: impl Fn(&str) -> Option<OsString>) -> Self {
        let is_true = |name: &str| var(name).is_some_and(|v| v == "true");
        let github = || {
            Self::Github(Github {
                step_summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
                output: var("GITHUB_OUTPUT").map(PathBuf::from),
                // Config paths are canonical: so must the workspace be to strip it.
                workspace: var("GITHUB_WORKSPACE")
                    .map(PathBuf::from)
                    .map(|w| std::fs::canonicalize(&w).unwrap_or(w)),
            })
        };
        match arg {
            CiArg::Github => github(),
            CiArg::Gitlab => Self::Gitlab,
            CiArg::None => Self::None,
            CiArg::Auto if is_true("GITHUB_ACTIONS") => github(),
            CiArg::Auto if is_true("GITLAB_CI") => Self::Gitlab,
            CiArg::Auto => Self::None,
        }
    }

    pub fn from_process(arg: CiArg) -> Self {
        Self::resolve(arg, |name| std::env::var_os(name))
    }
}

/// Something a CI shows on a line of a file: a config error or a failed build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// `syntax`, `build`, ...: the title is `mab::KIND`.
    pub kind: String,
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl Annotation {
    pub fn of_config_error(err: &ConfigError) -> Self {
        let place = err.place();
        Self {
            kind: err.kind().code().trim_start_matches("mab::").to_string(),
            file: place.map(|p| p.path.clone()),
            line: place.map(|p| p.line),
            column: place.map(|p| p.column),
            message: err.message().to_string(),
        }
    }
}

/// Each failed build and list, at its Dockerfile (builds) or config (lists).
pub fn failures(report: &Report, plan: &Plan) -> Vec<Annotation> {
    let dockerfile = |id: &str| {
        plan.builds
            .iter()
            .find(|b| b.id == id)
            .map(|b| plan.workdir.join(&b.inputs.dockerfile))
    };
    let config = plan.files.first().map(|f| plan.workdir.join(f));
    let builds = report.builds.iter().filter_map(|b| match &b.status {
        Status::Failed { reason } => Some(Annotation {
            kind: "build".into(),
            file: dockerfile(&b.id),
            line: None,
            column: None,
            message: format!("{} failed: {reason}", b.id),
        }),
        _ => None,
    });
    let lists = report.manifests.iter().filter_map(|m| match &m.status {
        Status::Failed { reason } => Some(Annotation {
            kind: "publish".into(),
            file: config.clone(),
            line: None,
            column: None,
            message: format!("{}: {reason}", m.image),
        }),
        _ => None,
    });
    builds.chain(lists).collect()
}

/// The last `lines` lines of a log file (empty if it cannot be read).
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// Tells the CI how a run went: on GitHub, the summary and outputs appended to their files
/// and the annotations and failed builds' log tails printed; on GitLab, a section per build.
/// `tail` ends the summary (where the time went).
pub fn after_run(
    ci: &Ci,
    report: &Report,
    plan: &Plan,
    report_path: &Path,
    tail: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match ci {
        Ci::None => Ok(()),
        Ci::Github(gh) => {
            if let Some(path) = &gh.step_summary {
                append(path, &github::summary(report, plan, tail, report_path))?;
            }
            if let Some(path) = &gh.output {
                append(path, &github::outputs(report, report_path))?;
            }
            let annotations = failures(report, plan);
            out.write_all(github::annotations(&annotations, gh.workspace.as_deref()).as_bytes())?;
            for b in report
                .builds
                .iter()
                .filter(|b| matches!(b.status, Status::Failed { .. }))
            {
                let tail = b.log_tail.clone().unwrap_or_else(|| log_tail(&b.log, 30));
                out.write_all(github::group(&format!("{} log (end)", b.id), &tail).as_bytes())?;
            }
            Ok(())
        }
        Ci::Gitlab => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            // The run ended about now: its start is now less its last job's end.
            let last = report
                .builds
                .iter()
                .flat_map(|b| &b.jobs)
                .chain(report.manifests.iter().flat_map(|m| &m.jobs))
                .map(|j| j.end_ms)
                .max()
                .unwrap_or(0);
            let origin = now.saturating_sub(last);
            for b in &report.builds {
                let (start, end) = b
                    .jobs
                    .first()
                    .map_or((now, now), |j| (origin + j.start_ms, origin + j.end_ms));
                let section = gitlab::section(b, &log_tail(&b.log, 200), start / 1000, end / 1000);
                out.write_all(section.as_bytes())?;
            }
            Ok(())
        }
    }
}

/// A config error for the CI (GitHub: one annotation at its place; stdout, where the runner
/// reads workflow commands).
pub fn config_error(ci: &Ci, err: &ConfigError, out: &mut dyn Write) -> std::io::Result<()> {
    match ci {
        Ci::Github(gh) => {
            let a = Annotation::of_config_error(err);
            writeln!(out, "{}", github::annotation(&a, gh.workspace.as_deref()))
        }
        Ci::Gitlab | Ci::None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_ci_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert!(matches!(
            Ci::resolve(CiArg::Auto, env(&[("GITHUB_ACTIONS", "true")])),
            Ci::Github(_)
        ));
        assert_eq!(
            Ci::resolve(CiArg::Auto, env(&[("GITLAB_CI", "true")])),
            Ci::Gitlab
        );
        assert_eq!(
            Ci::resolve(CiArg::Auto, env(&[("GITHUB_ACTIONS", "false")])),
            Ci::None
        );
        assert_eq!(
            Ci::resolve(CiArg::None, env(&[("GITLAB_CI", "true")])),
            Ci::None
        );
    }
}
