//! The stand-in podman and skopeo (tests/fake) and `mab run` against them.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::Project;

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

pub struct Run {
    pub out: Output,
    pub log: String,
    pub state: PathBuf,
}

impl Run {
    pub fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.out.stdout),
            String::from_utf8_lossy(&self.out.stderr)
        )
    }

    /// When the stand-in podman logged `event` (e.g. `start localhost/mab/app:linux-arm64`).
    pub fn at(&self, event: &str) -> f64 {
        self.log
            .lines()
            .find_map(|l| {
                l.split_once(' ')
                    .filter(|(_, e)| *e == event)
                    .map(|(t, _)| t.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no `{event}` in the podman log:\n{}", self.log))
    }

    pub fn has(&self, event: &str) -> bool {
        self.log
            .lines()
            .any(|l| l.split_once(' ').is_some_and(|(_, e)| e == event))
    }

    /// The tags in the stand-in registry, less the marker tags (`mab-inputs-HEX`).
    pub fn pushed(&self) -> Vec<String> {
        self.tags()
            .into_iter()
            .filter(|t| !t.contains(":mab-inputs-"))
            .collect()
    }

    /// Every tag in the stand-in registry.
    pub fn tags(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.state.join("registry"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().replace('_', "/"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// `PATH` with the stand-ins first.
pub fn path() -> String {
    format!(
        "{}:{}",
        fake_bin().display(),
        std::env::var("PATH").unwrap()
    )
}

pub fn run(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Run {
    let state = p.path().join("fake-state");
    let log = p.path().join("podman.log");
    let path = path();
    let mut full = vec!["run", "--progress", "plain"];
    full.extend_from_slice(args);
    let mut cmd = p.mab(&full);
    cmd.env("PATH", path)
        .env("FAKE_STATE", &state)
        .env("FAKE_LOG", &log)
        .env_remove("MAB_PODMAN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Each run's own calls only.
    let _ = std::fs::remove_file(&log);
    let out = cmd.output().unwrap();
    Run {
        out,
        log: std::fs::read_to_string(&log).unwrap_or_default(),
        state,
    }
}
