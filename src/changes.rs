//! `--changed-since REV`: the files that differ between a git revision and the working tree,
//! and which images they touch.

use std::path::{Path, PathBuf};
use std::process::Command;

use glob::MatchOptions;

use crate::config::ImageDef;
use crate::dockerfile::context_ignore_file;
use crate::error::{ConfigError, Error, ErrorKind};

/// The files changed since a revision: committed since it, staged, unstaged, and new files git
/// does not ignore; deleted and renamed files by their old and new paths.
#[derive(Debug, Clone)]
pub struct Changes {
    /// The revision as the user wrote it.
    pub since: String,
    /// The top of the git work tree; `paths` are below it.
    pub top: PathBuf,
    /// Absolute, sorted.
    pub paths: Vec<PathBuf>,
}

/// `git ARGS` in `dir`: a git that cannot run is this machine's problem; one that refuses (no
/// repository, no such revision) is the command line's.
fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| {
            Error::Environment(format!(
                "--changed-since needs git, which cannot run here: {e}"
            ))
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(ConfigError::new(
            ErrorKind::Selection,
            format!(
                "--changed-since: `git {}` failed: {}",
                args.join(" "),
                stderr.trim()
            ),
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Changes {
    /// What changed in the git work tree holding `dir` since `revision`.
    pub fn since(dir: &Path, revision: &str) -> Result<Self, Error> {
        if revision.starts_with('-') {
            return Err(ConfigError::new(
                ErrorKind::Selection,
                format!("--changed-since: `{revision}` is not a revision"),
            )
            .into());
        }
        let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?.trim_end());
        let commit = format!("{revision}^{{commit}}");
        git(&top, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|e| match e {
            Error::Environment(_) => e,
            _ => ConfigError::new(
                ErrorKind::Selection,
                format!("--changed-since: `{revision}` is not a commit of the repository at {}", top.display()),
            )
            .with_help("give a branch, tag or commit, e.g. --changed-since origin/main or --changed-since HEAD~1")
            .into(),
        })?;
        // Against the working tree, so uncommitted work counts; no rename detection, so a
        // move touches both the image it leaves and the one it joins.
        let diff = git(
            &top,
            &["diff", "--name-only", "--no-renames", "-z", revision, "--"],
        )?;
        let new = git(&top, &["ls-files", "--others", "--exclude-standard", "-z"])?;
        let mut paths: Vec<PathBuf> = diff
            .split('\0')
            .chain(new.split('\0'))
            .filter(|p| !p.is_empty())
            .map(|p| top.join(p))
            .collect();
        paths.sort();
        paths.dedup();
        Ok(Self {
            since: revision.to_string(),
            top,
            paths,
        })
    }

    /// The first change that touches the image: its config file or one it inherits from, its
    /// Dockerfile, a file of its context that the context's ignore file does not exclude, or a
    /// path it watches. `root` is the config's root, which the image's paths are relative to.
    pub fn touching(&self, def: &ImageDef, root: &Path) -> Option<&Path> {
        let context = root.join(&def.context);
        let dockerfile = root.join(&def.dockerfile);
        let ignore = ContextIgnore::read(&context);
        let in_context = |p: &Path| {
            p.strip_prefix(&context)
                .is_ok_and(|rel| !ignore.as_ref().is_some_and(|i| i.excludes(rel)))
        };
        let hit = |p: &PathBuf| {
            def.file.chain.contains(p)
                || *p == dockerfile
                || in_context(p)
                || def
                    .watch
                    .iter()
                    .any(|w| p.ancestors().any(|a| w.matches_path_with(a, LITERAL)))
        };
        self.paths.iter().find(|p| hit(p)).map(PathBuf::as_path)
    }

    /// `path` as git shows it: relative to the top of the work tree.
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.top)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// `*` and `?` stop at `/`, as in docker's patterns and `watch`; `**` crosses directories.
const LITERAL: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// A context's ignore file (`.containerignore`, else `.dockerignore`) read with docker's rules
/// (moby/patternmatcher, which podman uses): patterns are anchored at the context; a pattern
/// that matches a path or one of its parent directories decides, and the last that matches
/// wins, so `!dir/keep` brings back a file of an excluded directory.
struct ContextIgnore {
    /// Each pattern, and whether it is an exception (`!`).
    patterns: Vec<(glob::Pattern, bool)>,
}

impl ContextIgnore {
    fn read(context: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(context_ignore_file(context)?).ok()?;
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                let (exception, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
                let pattern = pattern.trim_end_matches('/');
                // A pattern that does not compile matches nothing, as podman would refuse it.
                Some((glob::Pattern::new(pattern).ok()?, exception))
            })
            .collect();
        Some(Self { patterns })
    }

    /// Whether `rel`, relative to the context, is left out of the build.
    fn excludes(&self, rel: &Path) -> bool {
        let mut excluded = false;
        for (pattern, exception) in &self.patterns {
            // Only a pattern that could change the verdict is tried, as docker does.
            if *exception != excluded {
                continue;
            }
            let mut paths = rel.ancestors().filter(|a| !a.as_os_str().is_empty());
            if paths.any(|a| pattern.matches_path_with(a, LITERAL)) {
                excluded = !exception;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `rel` (in a context whose `.dockerignore` is `ignore`) is excluded.
    fn excluded(ignore: &str, rel: &str) -> bool {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), ignore).unwrap();
        let i = ContextIgnore::read(dir.path()).expect("an ignore file");
        i.excludes(Path::new(rel))
    }

    #[test]
    fn dockerignore_patterns_are_anchored_at_the_context() {
        // `*.md` is the context's top level only, as in docker; `**/*.md` is any depth.
        assert!(excluded("*.md\n", "README.md"));
        assert!(!excluded("*.md\n", "docs/guide.md"));
        assert!(excluded("**/*.md\n", "docs/guide.md"));
        // A directory excludes what is below it; a leading `/` or `./` changes nothing.
        assert!(excluded("node_modules\n", "node_modules/x/index.js"));
        assert!(excluded("/build\n", "build/out.o"));
        assert!(excluded("./build\n", "build/out.o"));
        assert!(!excluded("build\n", "src/build/out.o"));
        // The last matching line wins; comments and blank lines are skipped.
        assert!(!excluded("# docs\n\n*.md\n!KEEP.md\n", "KEEP.md"));
        assert!(excluded("*.md\n!KEEP.md\n", "OTHER.md"));
        // Unlike gitignore, an exception brings back a file of an excluded directory.
        assert!(!excluded("docs\n!docs/keep.md\n", "docs/keep.md"));
        assert!(excluded("docs\n!docs/keep.md\n", "docs/other.md"));
        assert!(excluded("docs/\n", "docs/other.md"));
    }

    #[test]
    fn containerignore_is_read_before_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "a\n").unwrap();
        std::fs::write(dir.path().join(".containerignore"), "b\n").unwrap();
        let i = ContextIgnore::read(dir.path()).unwrap();
        assert!(i.excludes(Path::new("b")));
        assert!(!i.excludes(Path::new("a")));
        assert!(ContextIgnore::read(tempfile::tempdir().unwrap().path()).is_none());
    }
}
