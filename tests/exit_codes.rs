//! Each exit code of the one table (`mab::EXIT_CODES`) from a real case, and the table of docs/commands.md
//! the same as the code's.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{Project, SpawnCaptured, wait_at_most};

fn fake(p: &Project, cmd: &mut Command) {
    common::fake::stand_ins(
        cmd,
        p,
        &p.path().join("fake-state"),
        &p.path().join("podman.log"),
    );
}

fn project() -> Project {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"reg.test/acme\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n[images.app]\n",
    );
    p.file("Dockerfile", "FROM scratch\n");
    p
}

fn code(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Option<i32> {
    let mut cmd = p.mab(args);
    fake(p, &mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap().status.code()
}

#[test]
fn every_exit_code_has_a_real_case() {
    let p = project();
    assert_eq!(code(&p, &["plan"], &[]), Some(0), "a plan");
    assert_eq!(
        code(&p, &["run", "--progress", "plain"], &[]),
        Some(0),
        "a run"
    );
    let failing = [("FAKE_FAIL", "app:linux-amd64")];
    assert_eq!(
        code(&p, &["run", "--progress", "plain"], &failing),
        Some(1),
        "a failed build"
    );
    assert_eq!(
        code(&p, &["plan", "nosuchimage"], &[]),
        Some(2),
        "a bad selection"
    );
    assert_eq!(
        code(&p, &["plan", "--no-such-flag"], &[]),
        Some(2),
        "a bad flag"
    );
    // No podman on PATH: the machine cannot run the plan.
    let mut cmd = p.mab(&["run", "--progress", "plain"]);
    cmd.env("PATH", "/nonexistent").env_remove("MAB_PODMAN");
    assert_eq!(cmd.output().unwrap().status.code(), Some(3), "no podman");
    let mut cmd = p.mab(&["plan", "--changed-since", "HEAD"]);
    cmd.env("PATH", "/nonexistent");
    assert_eq!(cmd.output().unwrap().status.code(), Some(3), "no git");
    assert_eq!(
        code(&p, &["plan", "--changed-since", "HEAD"], &[]),
        Some(2),
        "not a git repository"
    );
    let report = p.path().join("no/such/dir/report.json");
    let args = [
        "run",
        "--progress",
        "plain",
        "--report",
        report.to_str().unwrap(),
    ];
    assert_eq!(
        code(&p, &args, &[]),
        Some(4),
        "a report that cannot be written"
    );
    for (signal, expected) in [("-INT", 130), ("-TERM", 143)] {
        let log = p.path().join("podman.log");
        let _ = std::fs::remove_file(&log);
        let mut cmd = p.mab(&["run", "--progress", "plain"]);
        fake(&p, &mut cmd);
        let child = cmd.env("FAKE_SLEEP_AMD64", "hold").spawn_captured();
        wait_at_most(
            std::time::Duration::from_secs(60),
            "the build started",
            || {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains(" start ")
            },
        );
        let killed = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        // The held build never ends by itself: the run ends only by stopping it.
        let out = common::output_of_within(
            child,
            std::time::Duration::from_secs(60),
            "the run, stopping its build",
        );
        assert_eq!(out.status.code(), Some(expected), "{signal}");
    }
}

#[test]
fn the_docs_list_the_exit_codes_of_the_code() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/commands.md");
    let doc = std::fs::read_to_string(page).unwrap();
    for (code, meaning) in mab::EXIT_CODES {
        let row = format!("| {code} | {meaning} |");
        assert!(doc.contains(&row), "docs/commands.md lacks the row `{row}`");
    }
}
