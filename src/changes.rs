//! `--changed-since REV`: the files that differ between a git revision and the working tree,
//! and which images they touch.

use std::path::{Path, PathBuf};
use std::process::Command;

use glob::MatchOptions;

use crate::config::{BuildPaths, ImageDef};
use crate::dockerfile::context_ignore_file;
use crate::error::{ConfigError, Error, ErrorKind};
use crate::inputs::patterns::Patterns;

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

    /// The first change that touches an instance of the image whose builds use `paths`: its
    /// config file or one it inherits from, the Dockerfile of a build, a file of a build's
    /// context that the context's ignore file does not exclude, or a path it watches. `root` is
    /// the config's root, which the paths are relative to.
    pub fn touching(&self, def: &ImageDef, paths: &[&BuildPaths], root: &Path) -> Option<&Path> {
        let builds: Vec<(PathBuf, PathBuf, Option<Patterns>)> = paths
            .iter()
            .map(|b| {
                let context = root.join(&b.context);
                let ignore = context_ignore_file(&context)
                    .and_then(|f| std::fs::read_to_string(f).ok())
                    .map(|text| Patterns::parse(&text));
                (context, root.join(&b.dockerfile), ignore)
            })
            .collect();
        let in_context = |p: &Path, context: &Path, ignore: &Option<Patterns>| {
            p.strip_prefix(context).is_ok_and(|rel| {
                !ignore
                    .as_ref()
                    .is_some_and(|i| i.excluded(&rel.to_string_lossy()))
            })
        };
        let hit = |p: &PathBuf| {
            def.file.chain.contains(p)
                || def.inherited_files.contains(p)
                || builds.iter().any(|(c, d, i)| p == d || in_context(p, c, i))
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

/// `*` and `?` stop at `/` in `watch` patterns, as in docker's; `**` crosses directories.
const LITERAL: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};
