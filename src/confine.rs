//! The repository's boundary: every path a config names (a context, a Dockerfile and the
//! ignore file podman reads with them, a named context directory, a secret file, a `watch`
//! pattern, a node's ssh key) must lead, symlinks followed, inside the repository, or below a
//! path the person running mab allows on the command line (`--allow fs.read=PATH`, as `docker
//! buildx bake` has it). A config can never allow itself anything: a pull request's config
//! would otherwise bake the CI machine's registry credentials into an image and push them.
//! The config files themselves are read only inside their repository.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use crate::error::{ConfigError, ErrorKind, Source};

/// One `--allow` value, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entitlement {
    /// `fs.read=PATH`: the config may read PATH and everything below it.
    FsRead(PathBuf),
}

impl FromStr for Entitlement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some(("fs.read", path)) if !path.is_empty() => Ok(Self::FsRead(path.into())),
            Some(("fs.read", _)) => Err("`fs.read=` names no path".into()),
            _ => Err(format!(
                "`{s}` is not an entitlement mab knows: write fs.read=PATH"
            )),
        }
    }
}

/// What the command line allows a config to read outside its repository: resolved once, when
/// the command starts, then handed to config loading.
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    /// Resolved ([`resolve`]); each allows itself and everything below it.
    read: Vec<PathBuf>,
}

impl Allowed {
    /// The `--allow` values, relative ones taken from `cwd`; a leading `~/` is the home
    /// directory `home` (the shell does not expand it after `fs.read=`).
    pub fn resolve(entries: &[Entitlement], cwd: &Path, home: Option<&Path>) -> Self {
        let read = entries
            .iter()
            .map(|Entitlement::FsRead(path)| {
                let path = match (path.strip_prefix("~"), home) {
                    (Ok(rest), Some(home)) => home.join(rest),
                    _ => cwd.join(path),
                };
                resolve(&path)
            })
            .collect();
        Self { read }
    }

    fn reads(&self, path: &Path) -> bool {
        self.read.iter().any(|a| path.starts_with(a))
    }
}

/// Where a config's paths may lead.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// Resolved: the top of the git work tree holding the root config file, else its directory.
    repository: PathBuf,
    allowed: Allowed,
    /// Paths [`check_from`](Self::check_from) found to be no link: the directories many images
    /// share (`services/`) are looked at once.
    plain: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Confinement {
    pub fn new(repository: &Path, allowed: Allowed) -> Self {
        Self {
            repository: resolve(repository),
            allowed,
            plain: Default::default(),
        }
    }

    /// Whether `path` is no symbolic link (and exists).
    fn plain(&self, path: &Path) -> bool {
        let seen = |p: &Path| self.plain.lock().expect("no panic holds it").contains(p);
        if seen(path) {
            return true;
        }
        let plain = path
            .symlink_metadata()
            .is_ok_and(|m| !m.file_type().is_symlink());
        if plain {
            let mut known = self.plain.lock().expect("no panic holds it");
            known.insert(path.to_path_buf());
        }
        plain
    }

    /// [`check`](Self::check) of `path` written relative to `base`, a directory inside the
    /// repository with no link on its way (a config file's own, or the root): only the parts of
    /// `path` below `base` are looked at, one `lstat` each (once per load), and all of it is
    /// resolved only when one of them is a link or missing. A plan of a thousand images checks
    /// a few thousand paths, most of them plain directories right below their config file.
    pub fn check_from(
        &self,
        base: &Path,
        path: &Path,
        at: (&Source, Range<usize>),
        what: impl fmt::Display,
    ) -> Result<(), ConfigError> {
        debug_assert_eq!(base, resolve(base), "a base without links");
        let Ok(rel) = path.strip_prefix(base) else {
            return self.check(path, at, what);
        };
        let mut real = base.to_path_buf();
        for c in rel.components() {
            match c {
                Component::Normal(part) => {
                    real.push(part);
                    if !self.plain(&real) {
                        return self.check(path, at, what);
                    }
                }
                // The parent of a directory reached without a link is its parent on disk.
                Component::ParentDir => {
                    real.pop();
                }
                _ => {}
            }
        }
        if real.starts_with(&self.repository) {
            return Ok(());
        }
        self.check(path, at, what)
    }

    /// Checks that `path` (absolute: already joined to the directory it is relative to)
    /// resolves inside the repository or below an allowed path. `what` says what it is, for the
    /// message ("context directory `../x` of image `api`"); `at` is where it is written.
    pub fn check(
        &self,
        path: &Path,
        at: (&Source, Range<usize>),
        what: impl fmt::Display,
    ) -> Result<(), ConfigError> {
        let resolved = resolve(path);
        if resolved.starts_with(&self.repository) || self.allowed.reads(&resolved) {
            return Ok(());
        }
        let (source, span) = at;
        Err(source
            .error(
                ErrorKind::Outside,
                span,
                outside(what, &resolved, &self.repository),
            )
            .with_help(format!(
                "a config reads only files inside its repository (symlinks followed): move it there, or, if you trust this config, allow it on the command line with --allow fs.read={}",
                resolved.display()
            )))
    }
}

fn outside(what: impl fmt::Display, resolved: &Path, repository: &Path) -> String {
    format!(
        "{what} is outside the repository: it resolves to {}, and the repository is {}",
        resolved.display(),
        repository.display()
    )
}

/// Checks that a config file, as found or named (`written`, its links unresolved), resolves
/// inside `repository`, the work tree that holds it as written. A committed `multiarch.toml`
/// that links to `/var/run/secrets/.../token` would otherwise be read, and a syntax error
/// would quote its first line. The user who trusts the file it leads to can name that instead.
pub fn check_config_file(written: &Path, repository: &Path) -> Result<(), ConfigError> {
    let (resolved, repository) = (resolve(written), resolve(repository));
    if resolved.starts_with(&repository) {
        return Ok(());
    }
    let shown = crate::config::display_path(written);
    Err(ConfigError::new(
        ErrorKind::Outside,
        outside(format_args!("config file {shown}"), &resolved, &repository),
    )
    .with_help(format!(
        "mab reads no config through a link out of its repository; if you trust the file it leads to, name it: -f {}",
        resolved.display()
    )))
}

/// `path` (absolute) with every symbolic link resolved: the canonical path where it exists;
/// else its longest existing ancestor's, with the rest appended as written (without `.` and
/// `..`: no link can hide in a part that does not exist).
pub fn resolve(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let parts: Vec<Component> = path.components().collect();
    for keep in (1..parts.len()).rev() {
        let prefix: PathBuf = parts[..keep].iter().collect();
        if let Ok(mut out) = prefix.canonicalize() {
            for c in &parts[keep..] {
                match c {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(n) => out.push(n),
                    _ => {}
                }
            }
            return out;
        }
    }
    path.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        Source::new("m.toml".into(), "m.toml".into(), "x = 1\n".into())
    }

    #[test]
    fn entitlements_parse() {
        assert_eq!(
            "fs.read=/a/b".parse::<Entitlement>(),
            Ok(Entitlement::FsRead("/a/b".into()))
        );
        assert!("fs.read=".parse::<Entitlement>().is_err());
        assert!("fs.write=/a".parse::<Entitlement>().is_err());
        assert!("network.host".parse::<Entitlement>().is_err());
    }

    #[test]
    fn inside_outside_links_and_allowed_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let repo = root.join("repo");
        std::fs::create_dir_all(repo.join("src")).unwrap();
        std::fs::create_dir_all(root.join("outside/deep")).unwrap();
        std::os::unix::fs::symlink(root.join("outside"), repo.join("link")).unwrap();
        let strict = Confinement::new(&repo, Allowed::default());
        let ok = |c: &Confinement, p: &Path| {
            let full = c.check(p, (&source(), 0..1), "it").is_ok();
            let from = c.check_from(&repo, p, (&source(), 0..1), "it").is_ok();
            assert_eq!(full, from, "{}", p.display());
            full
        };
        assert!(ok(&strict, &repo.join("src")));
        assert!(ok(&strict, &repo.join("src/../src/not-yet")));
        assert!(!ok(&strict, &repo.join("../outside")));
        assert!(!ok(&strict, &repo.join("link/deep")));
        assert!(!ok(&strict, Path::new("/etc")));
        assert!(ok(&strict, &repo.join("src/..")));
        assert!(!ok(&strict, &repo.join("src/../link/deep")));
        assert!(!ok(&strict, &repo.join("src/../../outside/deep")));
        assert!(!ok(&strict, &repo.join("no/such/../../../outside")));
        // A sibling whose name starts like the repository's is not inside it.
        std::fs::create_dir_all(root.join("repo2")).unwrap();
        assert!(!ok(&strict, &root.join("repo2")));

        let home = root.join("outside");
        let entries = ["fs.read=~/deep".parse().unwrap()];
        let allowed = Allowed::resolve(&entries, &repo, Some(&home));
        let c = Confinement::new(&repo, allowed);
        assert!(ok(&c, &repo.join("link/deep")));
        assert!(ok(&c, &root.join("outside/deep/file")));
        assert!(!ok(&c, &root.join("outside")));
        // Relative to the working directory, through the link.
        let allowed = Allowed::resolve(&["fs.read=link".parse().unwrap()], &repo, None);
        assert!(ok(&Confinement::new(&repo, allowed), &root.join("outside")));

        let e = strict
            .check(&root.join("outside"), (&source(), 0..1), "context `x`")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Outside);
        assert_eq!(e.location(), Some("m.toml:1:1"));
    }
}
