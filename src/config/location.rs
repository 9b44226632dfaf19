//! Where the config files are: found upwards like Cargo.toml, discovered under a directory, a
//! monorepo's root and members.

use super::*;

/// Finds `multiarch.toml` in `start` or the nearest parent that has one, as cargo finds Cargo.toml.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// Directories discovery never enters, ignored or not: VCS data and build output.
pub(super) const SKIPPED_DIRS: [&str; 3] = [".git", "target", "node_modules"];

/// Every `multiarch.toml` under `root`, sorted by path, skipping `.git`, `target`, `node_modules`, hidden
/// directories and whatever `.gitignore`, `.ignore` and git's excludes leave out.
pub fn discover(root: &Path) -> Vec<PathBuf> {
    let found = std::sync::Mutex::new(Vec::new());
    ignore::WalkBuilder::new(root)
        // A monorepo copied out of git (a CI artifact, a tarball) keeps its .gitignore rules.
        .require_git(false)
        .filter_entry(|e| {
            !(e.file_type().is_some_and(|t| t.is_dir())
                && SKIPPED_DIRS.iter().any(|s| e.file_name() == *s))
        })
        // On threads: a monorepo of a thousand services is a thousand directories to read.
        .build_parallel()
        .run(|| {
            Box::new(|entry| {
                if let Ok(e) = entry
                    && e.file_name() == FILE_NAME
                    && e.file_type().is_some_and(|t| t.is_file())
                {
                    found.lock().expect("no panic holds it").push(e.into_path());
                }
                ignore::WalkState::Continue
            })
        });
    let mut found = found.into_inner().expect("no panic holds it");
    found.sort();
    found
}

/// Where a config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file: itself, or, when it is a monorepo's root or member, that monorepo ([`load`]).
    File(PathBuf),
    /// Every file found under a directory ([`discover`]).
    Tree(PathBuf),
}

/// The top-most directory above `dir`, up to `top`, that `is_root` says holds a monorepo's
/// root (a `multiarch.toml` that defines no image).
pub(super) fn topmost_root<'a>(
    dir: &'a Path,
    top: &Path,
    is_root: impl Fn(&Path) -> bool,
) -> Option<&'a Path> {
    dir.ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(top))
        .filter(|a| is_root(a))
        .last()
}

/// The directory of the top-most monorepo root above `dir` in its git work tree, if any.
pub fn monorepo_root(dir: &Path) -> Option<PathBuf> {
    let is_root = |a: &Path| {
        let path = a.join(FILE_NAME);
        path.is_file() && parse(&path).is_ok_and(|p| p.raw.images.is_empty())
    };
    topmost_root(dir, work_tree_top(dir)?, is_root).map(Path::to_path_buf)
}

impl Location {
    /// What `mab plan` works on in `cwd`: with `all`, every file under `cwd`; else `file`, or
    /// the nearest `multiarch.toml` here or above; else, in a git work tree, every file below
    /// (a monorepo's root need not have a file of its own).
    pub fn find(cwd: &Path, file: Option<&Path>, all: bool) -> Result<Self, ConfigError> {
        if all {
            return Ok(Self::Tree(cwd.to_path_buf()));
        }
        if let Some(path) = file.map(Path::to_path_buf).or_else(|| find(cwd)) {
            return Ok(Self::File(path));
        }
        if work_tree_top(cwd).is_some() && !discover(cwd).is_empty() {
            return Ok(Self::Tree(cwd.to_path_buf()));
        }
        Err(ConfigError::new(
            ErrorKind::Io,
            format!(
                "no {FILE_NAME} in {} or any parent directory",
                cwd.display()
            ),
        )
        .with_help("run mab where your multiarch.toml is, or pass it with -f/--file"))
    }

    /// A directory in the config's git work tree, if it has one.
    pub fn dir(&self) -> &Path {
        match self {
            Self::File(f) => f.parent().unwrap_or(Path::new(".")),
            Self::Tree(root) => root,
        }
    }

    /// The config, its paths confined to its repository and what `allowed` names, with no
    /// environment (a library caller's, a test's).
    pub fn load(
        &self,
        vars: &[(String, String)],
        allowed: &Allowed,
    ) -> Result<Config, ConfigError> {
        let trusted = Trusted {
            allowed: allowed.clone(),
            env: Default::default(),
        };
        self.load_in(vars, &trusted)
    }

    /// The config, its paths confined to its repository and what `trusted` allows, in
    /// `trusted`'s environment.
    pub fn load_in(
        &self,
        vars: &[(String, String)],
        trusted: &Trusted,
    ) -> Result<Config, ConfigError> {
        match self {
            Self::File(f) => load(f, vars, trusted),
            Self::Tree(root) => load_all(root, vars, trusted),
        }
    }
}

/// How a path is shown in messages: relative to the working directory (`../multiarch.toml`).
pub fn display_path(path: &Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|cwd| pathdiff::diff_paths(path, cwd));
    match rel {
        Some(rel) if rel.as_os_str().is_empty() => ".".into(),
        Some(rel) => rel.display().to_string(),
        None => path.display().to_string(),
    }
}

/// The path without symbolic links where it exists (git reports such paths, and changes are
/// matched against them), else made absolute as written.
pub(super) fn absolute(path: &Path) -> Result<PathBuf, ConfigError> {
    if let Ok(canonical) = path.canonicalize() {
        return Ok(canonical);
    }
    std::path::absolute(path).map_err(|e| {
        ConfigError::new(
            ErrorKind::Io,
            format!("cannot resolve {}: {e}", path.display()),
        )
    })
}

/// A path as a config writes it: relative to `dir`, the directory of the file it is written in,
/// or `~/...` in the home directory (a secret file, an ssh key).
pub(crate) fn written_path(dir: &Path, written: &str) -> PathBuf {
    match written.strip_prefix("~/") {
        Some(rest) => std::env::home_dir().unwrap_or_default().join(rest),
        None => dir.join(written),
    }
}

pub(super) fn dir_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}
