//! The stand-in podman and skopeo (tests/fake) and `mab run` against them.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Project;
use super::test::Outcome;

pub fn fake_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake")
}

/// base -> app (literal FROM), and an independent `other`, for amd64 and arm64.
pub fn project() -> Project {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"reg.test/acme\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\", \"latest\"]\n\n\
         [images.base]\ncontext = \"base\"\n\n[images.app]\ncontext = \"app\"\n\n[images.other]\ncontext = \"other\"\n",
    );
    p.file("base/Dockerfile", "FROM scratch\n");
    p.file("app/Dockerfile", "FROM reg.test/acme/base:1\n");
    p.file("other/Dockerfile", "FROM scratch\n");
    p
}

/// `PATH` with the stand-ins first.
pub fn path() -> String {
    format!(
        "{}:{}",
        fake_bin().display(),
        std::env::var("PATH").unwrap()
    )
}

/// Points `cmd` (a mab in `p`) at the stand-ins, their state in `state` and their log in `log`.
/// Its turn is taken on a lock of `p`'s own (mab waits on `$TMPDIR/mab-<uid>.lock`): stand-ins
/// share no podman storage with the user's real runs, and an end-to-end run in the same test
/// binary holds the user's lock for minutes. A test of the turns themselves sets `TMPDIR` after.
pub fn stand_ins<'c>(
    cmd: &'c mut Command,
    p: &Project,
    state: &Path,
    log: &Path,
) -> &'c mut Command {
    cmd.env("PATH", path())
        .env("FAKE_STATE", state)
        .env("FAKE_LOG", log)
        .env("TMPDIR", p.runtime.path())
        .env_remove("MAB_PODMAN")
}

/// `mab run --progress plain ARGS` in `p` against the stand-ins, `env` added.
pub fn run<'p>(p: &'p Project, args: &[&str], env: &[(&str, &str)]) -> Outcome<'p> {
    p.test()
        .fake_podman()
        .args(["run", "--progress", "plain"])
        .args(args)
        .envs(env.iter().copied())
        .run()
}
