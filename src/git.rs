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
    /// The `origin` remote's URL, credentials removed.
    pub remote: Option<String>,
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
            remote: nonempty(git(dir, &["remote", "get-url", "origin"]))
                .map(|u| without_credentials(&u)),
        })
    }
}

/// `https://user:token@host/x` → `https://host/x`: a remote URL may carry a secret, and it ends
/// up in an image label.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if path.is_empty() {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_are_removed() {
        assert_eq!(
            super::without_credentials("https://u:t0ken@github.com/acme/x.git"),
            "https://github.com/acme/x.git"
        );
        assert_eq!(
            super::without_credentials("https://github.com/acme/x"),
            "https://github.com/acme/x"
        );
        assert_eq!(
            super::without_credentials("git@github.com:acme/x.git"),
            "git@github.com:acme/x.git"
        );
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
