//! The `git` template variable. It is computed on first use only, so configs that never mention
//! `git` run no git process at all (planning 1,000 images must stay fast).

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use minijinja::value::{Enumerator, Object, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitInfo {
    pub sha: String,
    pub short_sha: String,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub dirty: bool,
    /// Committer time of HEAD, seconds since the epoch.
    pub timestamp: i64,
}

/// Runs git (an argument vector, never a shell) in `dir`; `None` when git fails.
fn git(dir: &PathBuf, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl GitInfo {
    /// Reads HEAD of the repository that holds `dir`; `None` outside a repository or before the
    /// first commit.
    pub fn read(dir: &PathBuf) -> Option<Self> {
        let head = git(dir, &["log", "-1", "--format=%H%n%h%n%ct"])?;
        let mut lines = head.lines();
        let sha = lines.next()?.to_string();
        let short_sha = lines.next()?.to_string();
        let timestamp = lines.next()?.parse().ok()?;
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Some(Self {
            sha,
            short_sha,
            branch: nonempty(git(dir, &["symbolic-ref", "-q", "--short", "HEAD"])),
            tag: nonempty(git(dir, &["describe", "--tags", "--exact-match", "HEAD"])),
            dirty: git(dir, &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty()),
            timestamp,
        })
    }
}

/// The lazily read `git` object handed to templates.
#[derive(Debug)]
pub struct LazyGit {
    dir: PathBuf,
    info: OnceLock<Option<GitInfo>>,
}

impl LazyGit {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            info: OnceLock::new(),
        }
    }

    pub fn info(&self) -> Option<&GitInfo> {
        self.info.get_or_init(|| GitInfo::read(&self.dir)).as_ref()
    }

    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }
}

impl Object for LazyGit {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let info = self.info()?;
        Some(match key.as_str()? {
            "sha" => Value::from(info.sha.clone()),
            "short_sha" => Value::from(info.short_sha.clone()),
            // Absent, not undefined: `{% if git.tag %}` must work on untagged commits.
            "branch" => Value::from(info.branch.clone()),
            "tag" => Value::from(info.tag.clone()),
            "dirty" => Value::from(info.dirty),
            "timestamp" => Value::from(info.timestamp),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.info() {
            Some(_) => {
                Enumerator::Str(&["sha", "short_sha", "branch", "tag", "dirty", "timestamp"])
            }
            None => Enumerator::Empty,
        }
    }
}
