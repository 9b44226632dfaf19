//! `--changed-since REV`: the files that differ between a git revision and the working tree,
//! and which images they touch.

use std::path::{Path, PathBuf};
use std::process::Command;

use glob::MatchOptions;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::config::ImageDef;
use crate::dockerfile::context_ignore_file;
use crate::error::{ConfigError, ErrorKind};

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

fn git(dir: &Path, args: &[&str]) -> Result<String, ConfigError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| ConfigError::new(ErrorKind::Selection, format!("cannot run git: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(ConfigError::new(
            ErrorKind::Selection,
            format!(
                "--changed-since: `git {}` failed: {}",
                args.join(" "),
                stderr.trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Changes {
    /// What changed in the git work tree holding `dir` since `revision`.
    pub fn since(dir: &Path, revision: &str) -> Result<Self, ConfigError> {
        if revision.starts_with('-') {
            return Err(ConfigError::new(
                ErrorKind::Selection,
                format!("--changed-since: `{revision}` is not a revision"),
            ));
        }
        let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?.trim_end());
        let commit = format!("{revision}^{{commit}}");
        git(&top, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|_| {
            ConfigError::new(
                ErrorKind::Selection,
                format!("--changed-since: `{revision}` is not a commit of the repository at {}", top.display()),
            )
            .with_help("give a branch, tag or commit, e.g. --changed-since origin/main or --changed-since HEAD~1")
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
        let ignored = context_ignore(&context);
        let literal = MatchOptions {
            require_literal_separator: true,
            ..MatchOptions::new()
        };
        let hit = |p: &PathBuf| {
            def.file.chain.contains(p)
                || *p == dockerfile
                || (p.starts_with(&context)
                    && !ignored
                        .as_ref()
                        .is_some_and(|g| g.matched_path_or_any_parents(p, false).is_ignore()))
                || def
                    .watch
                    .iter()
                    .any(|w| p.ancestors().any(|a| w.matches_path_with(a, literal)))
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

/// The context's ignore file (`.containerignore`, else `.dockerignore`), as a matcher.
/// Their patterns are anchored at the context, as gitignore's are only with a leading `/`.
fn context_ignore(context: &Path) -> Option<Gitignore> {
    let text = std::fs::read_to_string(context_ignore_file(context)?).ok()?;
    let mut builder = GitignoreBuilder::new(context);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negate, pattern) = match line.strip_prefix('!') {
            Some(rest) => ("!", rest.trim()),
            None => ("", line),
        };
        let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
        // A line gitignore cannot read excludes nothing, as podman skips what it cannot match.
        let _ = builder.add_line(None, &format!("{negate}/{pattern}"));
    }
    builder.build().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `rel` (in a context whose `.dockerignore` is `ignore`) is excluded.
    fn excluded(ignore: &str, rel: &str) -> bool {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), ignore).unwrap();
        let g = context_ignore(dir.path()).expect("an ignore file");
        g.matched_path_or_any_parents(dir.path().join(rel), false)
            .is_ignore()
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
    }

    #[test]
    fn containerignore_is_read_before_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "a\n").unwrap();
        std::fs::write(dir.path().join(".containerignore"), "b\n").unwrap();
        let g = context_ignore(dir.path()).unwrap();
        assert!(g.matched(dir.path().join("b"), false).is_ignore());
        assert!(!g.matched(dir.path().join("a"), false).is_ignore());
        assert!(context_ignore(tempfile::tempdir().unwrap().path()).is_none());
    }
}
