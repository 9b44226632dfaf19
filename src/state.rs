//! The state directory (`.mab/` in the workdir): the one place in a repository that mab writes.
//!
//! A repository can hold anything there, such as a symbolic link to `~/.bashrc` named like a
//! file mab writes, so every write goes through [`StateDir`]: each directory on the way from
//! the workdir is opened without following a link (`O_NOFOLLOW`, one `openat` per step from the
//! directory before, so no link can be swapped in between the check and the write) and must be
//! a real directory of this user that no one else can write; files are written to a fresh
//! temporary file (`O_EXCL`) renamed into place, and the files podman writes (`--iidfile`,
//! `--digestfile`) are made sure not to exist before it runs. A link on the way is refused,
//! naming it: that is the repository's fault (exit 2), and nothing is built. So is a `.mab`
//! tracked by git: the state is the run's, never the repository's.
//!
//! The workdir itself may be reached through links: it is the one the person running mab chose.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::error::{ConfigError, Error, ErrorKind};
use crate::plan::STATE_DIR;

/// The state directory cannot be used as it is, by the repository's doing: a config error.
#[derive(Debug)]
pub struct Refused(pub ConfigError);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Refused {}

impl From<Refused> for std::io::Error {
    fn from(r: Refused) -> Self {
        std::io::Error::other(r)
    }
}

/// Whether `e` is a refusal of the state directory.
pub fn is_refused(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Refused>())
}

/// What becomes of an error of a run: a refused state directory is the repository's fault
/// (exit 2); anything else is mab's own part failing (exit 4), said with `context`.
pub fn run_error(e: std::io::Error, context: impl FnOnce() -> String) -> Error {
    if !is_refused(&e) {
        return anyhow::Error::new(e).context(context()).into();
    }
    match e.into_inner().map(|inner| inner.downcast::<Refused>()) {
        Some(Ok(refused)) => Error::Config(refused.0),
        _ => unreachable!("a refusal, checked above"),
    }
}

const FIX: &str = "remove it (`rm -rf .mab` is safe: mab makes what it needs again), and keep `.mab` out of the repository";

fn refused(message: String) -> std::io::Error {
    Refused(ConfigError::new(ErrorKind::State, message).with_help(FIX)).into()
}

/// Refuses a `.mab` that git tracks in the repository of `workdir`: a repository must not
/// ship mab's state. Outside a git work tree (or without git) there is nothing to ask.
pub fn refuse_tracked(workdir: &Path) -> std::io::Result<()> {
    let Ok(out) = Command::new("git")
        .args(["ls-files", "-z", "--", STATE_DIR])
        .current_dir(workdir)
        .output()
    else {
        return Ok(());
    };
    let listed = String::from_utf8_lossy(&out.stdout);
    let tracked: Vec<&str> = listed.split('\0').filter(|f| !f.is_empty()).collect();
    if !out.status.success() || tracked.is_empty() {
        return Ok(());
    }
    Err(Refused(
        ConfigError::new(
            ErrorKind::State,
            format!(
                "`{STATE_DIR}` is tracked by git ({} file(s), such as `{}`): it is mab's state for a run, never part of the repository",
                tracked.len(),
                tracked[0]
            ),
        )
        .with_help(format!(
            "remove it from git: `git rm -r --cached {STATE_DIR}`, then commit (mab keeps `{STATE_DIR}` ignored by writing its own .gitignore)"
        )),
    )
    .into())
}

/// The checked state directory of a workdir; every write under `.mab/` goes through it.
pub struct StateDir {
    workdir: PathBuf,
    root: OwnedFd,
}

impl StateDir {
    /// Opens (and makes, mode 0700) `.mab` in `workdir`.
    pub fn open(workdir: &Path) -> std::io::Result<Self> {
        let top = rustix::fs::open(
            workdir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let root = subdir(&top, OsStr::new(STATE_DIR), Path::new(STATE_DIR), true)?;
        Ok(Self {
            workdir: workdir.to_path_buf(),
            root,
        })
    }

    /// Refuses a link anywhere in the state directory's first two levels, where every file mab
    /// and podman write lives, before a run waits for its turn: a forged state directory is
    /// then refused at once, whatever other runs do. Only a first look: every write checks its
    /// own way again, so a link put there later is still never followed.
    pub fn refuse_links(&self) -> std::io::Result<()> {
        let top = self.workdir.join(STATE_DIR);
        for entry in walkdir::WalkDir::new(&top)
            .min_depth(1)
            .max_depth(2)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = entry.map_err(std::io::Error::other)?;
            if entry.path_is_symlink() {
                let rel = Path::new(STATE_DIR)
                    .join(entry.path().strip_prefix(&top).unwrap_or(entry.path()));
                let to = std::fs::read_link(entry.path()).unwrap_or_default();
                return Err(refused(linked(&rel, &to)));
            }
        }
        Ok(())
    }

    /// The directory that holds `rel` (a path relative to the workdir, under `.mab/`), each
    /// directory on the way checked and made if missing, and the last word of `rel`.
    fn parent<'a>(&self, rel: &'a Path) -> std::io::Result<(OwnedFd, &'a OsStr)> {
        let not_under =
            || std::io::Error::other(format!("not a path under {STATE_DIR}: {}", rel.display()));
        let words: Option<Vec<&OsStr>> = rel
            .components()
            .map(|c| match c {
                Component::Normal(w) => Some(w),
                _ => None,
            })
            .collect();
        let mut words = words
            .filter(|w| w.len() > 1 && w[0] == OsStr::new(STATE_DIR))
            .ok_or_else(not_under)?;
        let name = words.pop().expect("two words or more");
        let mut dir = self.root.try_clone()?;
        let mut at = PathBuf::from(STATE_DIR);
        for w in &words[1..] {
            at.push(w);
            dir = subdir(&dir, w, &at, true)?;
        }
        Ok((dir, name))
    }

    /// A directory that this call makes (mode 0700), such as a run's log directory: nothing
    /// that was there before is used.
    pub fn new_dir(&self, rel: impl AsRef<Path>) -> std::io::Result<PathBuf> {
        let rel = rel.as_ref();
        let (parent, name) = self.parent(rel)?;
        match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => {
                return Err(match link_target(&parent, name) {
                    Some(to) => refused(linked(rel, &to)),
                    None => refused(format!(
                        "`{}` is there already, but this run was to make it",
                        rel.display()
                    )),
                });
            }
            Err(e) => return Err(e.into()),
        }
        subdir(&parent, name, rel, false)?;
        Ok(self.workdir.join(rel))
    }

    /// Writes `bytes` to the file `rel`: a fresh temporary file beside it (mode 0600), renamed
    /// over it.
    pub fn write(&self, rel: impl AsRef<Path>, bytes: &[u8]) -> std::io::Result<()> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent(rel)?;
        check_file(&dir, name, rel)?;
        let mut tmp_name = OsStr::new(".").to_os_string();
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let create = || {
            rustix::fs::openat(
                &dir,
                &tmp_name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        };
        let fd = match create() {
            // Left by a run of the same pid that died while writing (or put there): replaced.
            Err(rustix::io::Errno::EXIST) => {
                rustix::fs::unlinkat(&dir, &tmp_name, AtFlags::empty())?;
                create()?
            }
            other => other?,
        };
        let mut f = File::from(fd);
        f.write_all(bytes)?;
        drop(f);
        rustix::fs::renameat(&dir, &tmp_name, &dir, name)?;
        Ok(())
    }

    /// Reads the file `rel`, never through a link; `NotFound` when it is missing.
    pub fn read(&self, rel: impl AsRef<Path>) -> std::io::Result<String> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent(rel)?;
        check_file(&dir, name, rel)?;
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut text = String::new();
        File::from(fd).read_to_string(&mut text)?;
        Ok(text)
    }

    /// Makes sure that a command (podman's `--iidfile`, `--digestfile`) can create the file
    /// `rel` itself: its directory checked, an earlier run's file removed, a link refused.
    pub fn clear(&self, rel: impl AsRef<Path>) -> std::io::Result<()> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent(rel)?;
        if check_file(&dir, name, rel)? {
            rustix::fs::unlinkat(&dir, name, AtFlags::empty())?;
        }
        Ok(())
    }
}

/// `rel is a symbolic link`, the message.
fn linked(rel: &Path, to: &Path) -> String {
    format!(
        "`{}` is a symbolic link (to `{}`): mab never writes through a link in its state directory",
        rel.display(),
        to.display()
    )
}

/// Where the link `name` in `dir` points, if it is one.
fn link_target(dir: &impl AsFd, name: &OsStr) -> Option<PathBuf> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::Symlink).then(|| {
        rustix::fs::readlinkat(dir, name, Vec::new())
            .map(|t| PathBuf::from(OsStr::from_bytes(t.as_bytes())))
            .unwrap_or_else(|_| PathBuf::from("?"))
    })
}

/// Whether a file `name` is in `dir` (`rel` for messages): a regular file is; a link, or
/// anything else in the way of a file, is refused.
fn check_file(dir: &OwnedFd, name: &OsStr, rel: &Path) -> std::io::Result<bool> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Ok(true),
            FileType::Symlink => Err(refused(linked(
                rel,
                &link_target(dir, name).unwrap_or_default(),
            ))),
            _ => Err(refused(format!(
                "`{}` is in the way: mab writes a file there",
                rel.display()
            ))),
        },
    }
}

/// Opens the directory `name` in `parent` (`rel` for messages), made (mode 0700) if missing
/// and `create`: a real directory of this user that no other user can write.
fn subdir(parent: &impl AsFd, name: &OsStr, rel: &Path, create: bool) -> std::io::Result<OwnedFd> {
    if create {
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let opened = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    );
    let fd = match opened {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
            return Err(match link_target(parent, name) {
                Some(to) => refused(linked(rel, &to)),
                None => refused(format!(
                    "`{}` is not a directory: mab keeps its state there",
                    rel.display()
                )),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&fd)?;
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me {
        return Err(refused(format!(
            "`{}` belongs to user {}, not to this user ({me})",
            rel.display(),
            st.st_uid
        )));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(refused(format!(
            "`{}` can be written by other users (mode {:o})",
            rel.display(),
            st.st_mode & 0o7777
        )));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn files_are_replaced_in_private_directories_and_outputs_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        state.write(".mab/ignore/app", b"one\n").unwrap();
        state.write(".mab/ignore/app", b"two\n").unwrap();
        assert_eq!(state.read(".mab/ignore/app").unwrap(), "two\n");
        assert_eq!(mode(&tmp.path().join(".mab")), 0o700);
        assert_eq!(mode(&tmp.path().join(".mab/ignore")), 0o700);
        assert_eq!(mode(&tmp.path().join(".mab/ignore/app")), 0o600);
        let names: Vec<_> = std::fs::read_dir(tmp.path().join(".mab/ignore"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["app"], "no temporary file is left");
        // An earlier run's output is removed; a missing one is fine.
        state
            .write(".mab/iid/app@linux-amd64", b"sha256:old\n")
            .unwrap();
        state.clear(".mab/iid/app@linux-amd64").unwrap();
        assert!(!tmp.path().join(".mab/iid/app@linux-amd64").exists());
        state.clear(".mab/iid/app@linux-amd64").unwrap();
        assert!(tmp.path().join(".mab/iid").is_dir());
        // A run's own directory is new.
        state.new_dir(".mab/runs/1").unwrap();
        assert!(is_refused(&state.new_dir(".mab/runs/1").unwrap_err()));
        // Only paths under the state directory.
        assert!(state.write("elsewhere", b"x").is_err());
        assert!(state.write(".mab/../x", b"x").is_err());
        assert!(state.write(".mab", b"x").is_err());
    }

    #[test]
    fn links_and_what_others_can_write_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "precious").unwrap();
        std::fs::create_dir_all(tmp.path().join(".mab/iid")).unwrap();
        std::os::unix::fs::symlink(&outside, tmp.path().join(".mab/iid/x")).unwrap();
        for e in [
            state.clear(".mab/iid/x").unwrap_err(),
            state.write(".mab/iid/x", b"y").unwrap_err(),
            state.read(".mab/iid/x").unwrap_err(),
        ] {
            assert!(is_refused(&e), "{e}");
            assert!(
                e.to_string().contains("`.mab/iid/x` is a symbolic link"),
                "{e}"
            );
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        // A directory where a file goes is in the way.
        std::fs::create_dir(tmp.path().join(".mab/iid/d")).unwrap();
        assert!(is_refused(&state.clear(".mab/iid/d").unwrap_err()));
        // A directory others can write is not mab's own.
        let shared = tmp.path().join(".mab/digest");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = state.clear(".mab/digest/x@1").unwrap_err();
        assert!(
            e.to_string().contains("can be written by other users"),
            "{e}"
        );
        // And the error of the run says whose fault: exit 2 for a refusal, 4 otherwise.
        assert_eq!(run_error(e, || "context".into()).exit_code(), 2);
        let other = std::io::Error::other("disk full");
        assert_eq!(run_error(other, || "context".into()).exit_code(), 4);
    }
}
