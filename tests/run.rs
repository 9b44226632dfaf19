//! `mab run` scheduling and failure handling, fast, against stand-in podman and skopeo scripts
//! (tests/fake). The real thing is tested in tests/e2e.rs; these cover timing and error paths
//! that a real build would make slow or hard to provoke.

use crate::common;

use std::path::{Path, PathBuf};

use common::fake::{fake_bin, project, run};
use common::{Project, SpawnCaptured, Test, wait_at_most};

#[test]
fn a_dependent_starts_as_soon_as_its_own_platform_is_built() {
    let p = project();
    // base for amd64 ends only once app for arm64 has started: with a level barrier between
    // base and app, app@linux-arm64 would wait for it and the order below would be wrong.
    let r = run(
        &p,
        &["--jobs", "2", "app"],
        &[("FAKE_AWAIT", "base:linux-amd64=app:linux-arm64")],
    );
    assert!(r.out.status.success(), "{}", r.text());
    // No level barrier: app for arm64 does not wait for base for amd64.
    assert!(
        r.at("start localhost/mab/app:linux-arm64") < r.at("end localhost/mab/base:linux-amd64"),
        "app@linux-arm64 waited for base@linux-amd64:\n{}",
        r.log
    );
    // But never before its own dependency.
    assert!(
        r.at("start localhost/mab/app:linux-arm64") >= r.at("end localhost/mab/base:linux-arm64")
    );
    assert!(
        r.at("start localhost/mab/app:linux-amd64") >= r.at("end localhost/mab/base:linux-amd64")
    );
    assert_eq!(
        r.pushed(),
        [
            "reg.test/acme/app:1",
            "reg.test/acme/app:latest",
            "reg.test/acme/base:1",
            "reg.test/acme/base:latest"
        ]
    );
}

#[test]
fn jobs_bound_the_builds_running_at_once() {
    let p = project();
    let r = run(
        &p,
        &["--jobs", "1"],
        &[("FAKE_SLEEP_AMD64", "0.05"), ("FAKE_SLEEP_ARM64", "0.05")],
    );
    assert!(r.out.status.success(), "{}", r.text());
    let mut running = 0;
    for line in r.log.lines() {
        let event = line.split_once(' ').unwrap().1;
        if event.starts_with("start ") {
            running += 1;
            assert_eq!(running, 1, "two builds at once with --jobs 1:\n{}", r.log);
        } else if event.starts_with("end ") {
            running -= 1;
        }
    }
}

#[test]
fn a_failure_skips_dependents_pushes_nothing_for_them_and_stops() {
    let p = project();
    let r = run(&p, &["--jobs", "1"], &[("FAKE_FAIL", "base:linux-arm64")]);
    let text = r.text();
    assert_eq!(r.out.status.code(), Some(1), "{text}");
    assert!(
        !r.has("start localhost/mab/app:linux-arm64"),
        "a dependent of the failed build ran"
    );
    assert!(
        r.pushed()
            .iter()
            .all(|t| !t.contains("/base:") && !t.contains("/app:")),
        "pushed {:?}",
        r.pushed()
    );
    assert!(
        text.contains("FAILED base@linux-arm64: `podman build` failed with exit code 1"),
        "{text}"
    );
    assert!(
        text.contains("| error: simulated failure of base:linux-arm64"),
        "the log tail is shown: {text}"
    );
    assert!(
        text.contains("skipped  app@linux-arm64: depends on base@linux-arm64, which failed"),
        "{text}"
    );
    // Default: no new work after the first failure, so builds still queued never start.
    let started = r.log.lines().filter(|l| l.contains(" start ")).count();
    assert!(started < 6, "work went on after the failure:\n{}", r.log);
    // A build's own failure is not tried again.
    assert_eq!(
        r.count("start localhost/mab/base:linux-arm64"),
        1,
        "{}",
        r.log
    );
}

/// Another podman process removed a layer while the build read the storage (buildah#5674): the
/// build runs again, says so in its log, and the run publishes everything.
#[test]
fn a_build_that_lost_a_layer_to_another_process_runs_again() {
    let p = project();
    let r = run(&p, &[], &[("FAKE_RACE", "base:linux-arm64")]);
    let text = r.text();
    assert_eq!(r.out.status.code(), Some(0), "{text}");
    assert!(r.has("race localhost/mab/base:linux-arm64"), "{}", r.log);
    assert_eq!(
        r.count("start localhost/mab/base:linux-arm64"),
        2,
        "{}",
        r.log
    );
    let log = p.job_log("base@linux-arm64").expect("the build's log");
    assert!(
        log.contains("getting top layer info: layer not known\nmab: transient failure, retry 1 of 3 in 1s: `podman build` failed with exit code 125"),
        "{log}"
    );
    assert!(
        r.pushed().contains(&"reg.test/acme/base:1".to_string()),
        "{:?}",
        r.pushed()
    );
}

#[test]
fn keep_going_publishes_what_does_not_depend_on_the_failure() {
    let p = project();
    let r = run(
        &p,
        &["--keep-going", "--jobs", "2"],
        &[("FAKE_FAIL", "base:linux-arm64")],
    );
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    assert_eq!(
        r.pushed(),
        ["reg.test/acme/other:1", "reg.test/acme/other:latest"]
    );
    // app@linux-amd64 only needs base@linux-amd64: it is built, but app's list is not pushed.
    assert!(r.has("end localhost/mab/app:linux-amd64"), "{}", r.log);
    assert!(
        r.text()
            .contains("its build app@linux-arm64 failed (it depends on base@linux-arm64)"),
        "{}",
        r.text()
    );
}

#[test]
fn a_list_a_failure_left_incomplete_is_removed() {
    let p = project();
    // base@linux-arm64 fails only once app@linux-amd64 has started: base@linux-amd64 is built
    // by then, and the list job that creates base's list to take it has started before it.
    let r = run(
        &p,
        &["--keep-going", "--jobs", "2"],
        &[
            ("FAKE_FAIL", "base:linux-arm64"),
            ("FAKE_AWAIT", "base:linux-arm64=app:linux-amd64"),
        ],
    );
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    let create = "argv manifest create localhost/mab/base:manifest";
    let remove = "argv manifest rm localhost/mab/base:manifest";
    assert!(r.at(create) < r.at(remove), "{}", r.log);
    assert!(
        !r.state().join("lists/localhost_mab_base:manifest").exists(),
        "the half-assembled list is left:\n{}",
        r.log
    );
    assert_eq!(
        r.pushed(),
        ["reg.test/acme/other:1", "reg.test/acme/other:latest"]
    );
    // The lists that were completed stay, as after any run.
    assert!(
        r.state()
            .join("lists/localhost_mab_other:manifest")
            .exists()
    );
}

#[test]
fn atomic_pushes_nothing_when_any_build_fails() {
    let p = project();
    let r = run(
        &p,
        &["--atomic", "--keep-going"],
        &[("FAKE_FAIL", "other:linux-amd64")],
    );
    assert_eq!(r.out.status.code(), Some(1), "{}", r.text());
    assert!(
        r.has("end localhost/mab/app:linux-arm64"),
        "the other builds still ran:\n{}",
        r.log
    );
    assert_eq!(r.pushed(), Vec::<String>::new(), "{}", r.text());
    assert!(
        r.text()
            .contains("--atomic: a build of this run failed, so nothing is pushed"),
        "{}",
        r.text()
    );

    let fresh = project();
    let ok = run(&fresh, &["--atomic"], &[]);
    assert!(ok.out.status.success(), "{}", ok.text());
    assert_eq!(ok.pushed().len(), 6);
    // Every push comes after every build.
    let last_build = ok
        .log
        .lines()
        .filter(|l| l.contains(" end "))
        .map(|l| l.split(' ').next().unwrap().parse::<f64>().unwrap());
    let first_push = ok
        .log
        .lines()
        .filter(|l| l.contains(" push "))
        .map(|l| l.split(' ').next().unwrap().parse::<f64>().unwrap());
    assert!(last_build.fold(0.0, f64::max) <= first_push.fold(f64::MAX, f64::min));
}

#[test]
fn no_push_assembles_local_lists_only() {
    let p = project();
    let r = run(&p, &["--no-push"], &[]);
    assert!(r.out.status.success(), "{}", r.text());
    assert_eq!(r.pushed(), Vec::<String>::new());
    assert!(r.has("manifest create"));
    assert!(
        r.text().contains("localhost/mab/base:manifest (local)"),
        "{}",
        r.text()
    );
}

#[test]
fn report_has_image_ids_digests_and_tags() {
    let p = project();
    let report = p.path().join("report.json");
    let r = run(&p, &["--report", report.to_str().unwrap(), "other"], &[]);
    assert!(r.out.status.success(), "{}", r.text());
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["success"], true);
    let builds = json["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 2);
    for b in builds {
        assert_eq!(b["status"], "built");
        assert!(b["image_id"].as_str().unwrap().starts_with("sha256:"));
        assert!(
            Path::new(b["log"].as_str().unwrap()).is_file(),
            "a log file per job"
        );
    }
    let m = &json["manifests"][0];
    assert_eq!(m["status"], "pushed");
    let tags: Vec<&str> = m["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        ["reg.test/acme/other:1", "reg.test/acme/other:latest"]
    );
    assert!(
        m["tags"][0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn mab_podman_passes_global_options_through() {
    let p = project();
    let podman = format!(
        "{} --root /srv/other-storage",
        fake_bin().join("podman").display()
    );
    let plan = p
        .mab(&["plan", "other", "--format", "json"])
        .env("MAB_PODMAN", &podman)
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["builds"][0]["argv"][1], "--root");
    assert_eq!(plan["builds"][0]["argv"][3], "build");
    let r = run(&p, &["other"], &[("MAB_PODMAN", &podman)]);
    assert!(r.out.status.success(), "{}", r.text());
    assert!(
        r.log.contains("argv --root /srv/other-storage build"),
        "{}",
        r.log
    );
}

#[test]
fn a_push_that_reads_back_wrong_is_an_error() {
    // A stand-in skopeo that serves an index with one platform missing.
    let p = project();
    let bin = p.path().join("bad-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("skopeo"),
        "#!/bin/sh\nprintf '{\"schemaVersion\":2,\"manifests\":[{\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("skopeo"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}:{}",
        bin.display(),
        fake_bin().display(),
        std::env::var("PATH").unwrap()
    );
    // The bad skopeo first, then the stand-ins.
    let out = p
        .test()
        .fake_podman()
        .env("PATH", path)
        .args(["run", "other", "--progress", "plain"])
        .run()
        .out;
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // The index is pushed once, to the marker tag, and read back before any tag moves.
    let marker = word_starting(&text, "reg.test/acme/other:mab-inputs-");
    assert!(
        text.contains(&format!(
            "{marker} does not match the plan: the registry serves sha256:"
        )),
        "{text}"
    );
}

/// The whole word of `text` that starts with `prefix`.
fn word_starting(text: &str, prefix: &str) -> String {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in {text}"));
    text[at..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

/// Processes still alive in any process group the stand-in podman ran as (it leads its group).
fn survivors(state: &Path) -> Vec<String> {
    let groups: Vec<String> = std::fs::read_dir(state.join("pids"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(!groups.is_empty(), "the stand-in podman never ran");
    let mut alive = Vec::new();
    for proc in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(proc.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() != Some(&"Z")
            && fields.get(2).is_some_and(|g| groups.iter().any(|x| x == g))
        {
            alive.push(stat);
        }
    }
    alive
}

/// Starts a run whose two first builds run until stopped, and returns once both have started.
fn slow_run(p: &Project, extra_env: &[(&str, &str)]) -> std::process::Child {
    let log = p.path().join("podman.log");
    let mut cmd = p.mab(&["run", "--progress", "plain", "--jobs", "2"]);
    common::fake::stand_ins(&mut cmd, p, &p.path().join("fake-state"), &log)
        .env("FAKE_SLEEP_AMD64", "hold")
        .env("FAKE_SLEEP_ARM64", "hold");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd.spawn_captured();
    wait_until("two builds started", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(" start ")
            .count()
            >= 2
    });
    child
}

/// Polls `done` until it holds, for at most `limit`.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    wait_at_most(std::time::Duration::from_secs(60), what, done);
}

fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A SIGKILL (a cancelled CI job, the OOM killer) gives mab no chance to stop anything: its
/// reaper does, within seconds.
#[test]
fn sigkill_of_mab_leaves_no_process_running() {
    let p = project();
    let mut child = slow_run(&p, &[]);
    let state = p.path().join("fake-state");
    assert!(!survivors(&state).is_empty());
    kill("-KILL", child.id());
    let _ = child.wait();
    // The limit only turns a hang into a failure: 5 s was a guess at how fast a busy machine
    // reaps.
    wait_at_most(
        std::time::Duration::from_secs(60),
        "the builds stopped",
        || survivors(&state).is_empty(),
    );
}

/// The reaper of this process, if it has one (`mab __reap`, a child of `pid`).
fn reaper_of(pid: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        (ppid == pid && cmdline.windows(7).any(|w| w == b"__reap\0"))
            .then(|| e.file_name().to_string_lossy().parse().ok())
            .flatten()
    })
}

/// With its reaper killed too, a run's builds outlive it: the next run in the project stops
/// them first, and says so.
#[test]
fn the_next_run_stops_what_a_dead_run_left() {
    let p = project();
    let mut child = slow_run(&p, &[]);
    let state = p.path().join("fake-state");
    let reaper = reaper_of(child.id()).expect("mab run has a reaper");
    kill("-KILL", reaper);
    kill("-KILL", child.id());
    let _ = child.wait();
    assert!(!survivors(&state).is_empty(), "nothing was left to stop");
    // The ledger is the user's, never the repository's.
    assert!(!p.path().join(".mab/processes").exists());
    let r = run(&p, &["other"], &[]);
    assert!(r.out.status.success(), "{}", r.text());
    assert!(
        r.text()
            .contains("stopped 2 command(s) left running by the dead run"),
        "{}",
        r.text()
    );
    wait_at_most(
        std::time::Duration::from_secs(15),
        "the leftovers stopped",
        || survivors(&state).is_empty(),
    );
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            std::fs::read(e.path())
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// A secret that a build prints is masked before it reaches the log: it is in no file of the
/// project while the build is still printing, nor after mab is killed. Logs are the user's.
#[test]
fn a_secret_a_build_prints_never_reaches_the_disk() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"reg.test/acme\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n\
         [images.app]\nsecrets = { token = { env = \"MAB_TEST_CANARY\" } }\n",
    );
    p.file("Dockerfile", "FROM scratch\n");
    let canary = "canary-4f1e9a7b-c0ffee";
    // The stand-in's own files are its business: keep them out of the project.
    let outside = tempfile::tempdir().unwrap();
    let log = outside.path().join("podman.log");
    let mut child = common::fake::stand_ins(
        &mut p.mab(&["run", "--progress", "plain", "--jobs", "2"]),
        &p,
        &outside.path().join("state"),
        &log,
    )
    .env("FAKE_SLEEP_AMD64", "hold")
    .env("FAKE_SLEEP_ARM64", "hold")
    .env("FAKE_PRINT", format!("the token is {canary}"))
    .env("MAB_TEST_CANARY", canary)
    .spawn_captured();
    let runs = p.path().join(".mab/runs");
    let build_log = || {
        std::fs::read_dir(&runs)
            .ok()?
            .flatten()
            .map(|r| r.path().join("app@linux-amd64.log"))
            .find(|l| l.is_file())
    };
    wait_until("the build printed the masked token", || {
        build_log().is_some_and(|l| {
            std::fs::read_to_string(l).is_ok_and(|t| t.contains("the token is ***"))
        })
    });
    assert_eq!(files_holding(p.path(), canary), Vec::<PathBuf>::new());
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let log_file = build_log().unwrap();
    assert_eq!(mode(&log_file), 0o600, "{}", log_file.display());
    assert_eq!(mode(log_file.parent().unwrap()), 0o700);
    kill("-KILL", child.id());
    let _ = child.wait();
    assert_eq!(files_holding(p.path(), canary), Vec::<PathBuf>::new());
    // The limit only turns a hang into a failure: 5 s was a guess at how fast a busy machine
    // reaps.
    wait_at_most(
        std::time::Duration::from_secs(60),
        "the builds stopped",
        || survivors(&outside.path().join("state")).is_empty(),
    );
}

fn interrupt(signal: &str, expected: i32) {
    let p = project();
    let state = p.path().join("fake-state");
    let log = p.path().join("podman.log");
    let child = common::fake::stand_ins(
        &mut p.mab(&["run", "--progress", "plain", "--jobs", "2"]),
        &p,
        &state,
        &log,
    )
    .env("FAKE_SLEEP_AMD64", "hold")
    .env("FAKE_SLEEP_ARM64", "hold")
    .spawn_captured();
    wait_at_most(
        std::time::Duration::from_secs(20),
        "both builds started",
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches(" start ")
                .count()
                >= 2
        },
    );
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The held builds never end by themselves: the run ends only by stopping them.
    let out = common::output_of_within(
        child,
        std::time::Duration::from_secs(15),
        "the run, stopping its builds",
    );
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(expected), "{text}");
    assert_eq!(
        survivors(&state),
        Vec::<String>::new(),
        "podman processes left running"
    );
    assert!(
        text.contains("interrupted: stopping 2 running command(s)"),
        "{text}"
    );
    assert!(text.contains("INTERRUPTED: 0/6 builds"), "{text}");
    // Each build was asked to stop (SIGTERM to its group) before any SIGKILL.
    assert_eq!(
        std::fs::read_to_string(&log)
            .unwrap()
            .matches(" term ")
            .count(),
        2
    );
    // Nothing was pushed, and no later work started.
    assert!(!std::fs::read_to_string(&log).unwrap().contains(" push "));
    assert_eq!(
        std::fs::read_to_string(&log)
            .unwrap()
            .matches(" start ")
            .count(),
        2
    );
}

#[test]
fn sigint_stops_every_podman_and_exits_130() {
    interrupt("-INT", 130);
}

#[test]
fn sigterm_stops_every_podman_and_exits_143() {
    interrupt("-TERM", 143);
}

#[test]
fn a_build_over_its_timeout_fails_cleanly() {
    let p = project();
    let r = run(
        &p,
        &["other", "--timeout", "1s", "--keep-going"],
        &[("FAKE_SLEEP_AMD64", "hold"), ("FAKE_SLEEP_ARM64", "0")],
    );
    let text = r.text();
    assert_eq!(r.out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAILED other@linux-amd64: `podman build` timed out after 1s"),
        "{text}"
    );
    assert!(text.contains("built    other@linux-arm64"), "{text}");
    // Asked to stop first (SIGTERM), as every stop does, not killed outright.
    assert!(r.has("term localhost/mab/other:linux-amd64"), "{}", r.log);
    assert_eq!(
        survivors(&r.state()),
        Vec::<String>::new(),
        "the timed-out build is still running"
    );
    assert!(
        r.pushed().is_empty(),
        "a list without its amd64 image was pushed"
    );
}

#[test]
fn a_platform_subset_is_never_pushed() {
    let p = project();
    let r = run(&p, &["--platform", "linux/arm64"], &[]);
    assert_eq!(r.out.status.code(), Some(2), "{}", r.text());
    assert!(r.text().contains("add --no-push"), "{}", r.text());
    assert!(r.log.is_empty(), "podman ran:\n{}", r.log);
    let r = run(&p, &["--platform", "linux/arm64", "--no-push"], &[]);
    assert!(r.out.status.success(), "{}", r.text());
    assert!(
        r.has("end localhost/mab/base:linux-arm64")
            && !r.has("start localhost/mab/base:linux-amd64")
    );
}

#[test]
fn two_runs_at_once_both_succeed_without_clobbering() {
    let p = project();
    let state = p.path().join("fake-state");
    let log = p.path().join("podman.log");
    let start = |report: &str| {
        // --rebuild: the second run would otherwise find the first's push and build nothing.
        common::fake::stand_ins(
            &mut p.mab(&[
                "run",
                "--rebuild",
                "--progress",
                "plain",
                "--report",
                report,
                "other",
            ]),
            &p,
            &state,
            &log,
        )
        .env("FAKE_SLEEP_AMD64", "0.5")
        .env("FAKE_SLEEP_ARM64", "0.5")
        .spawn_captured()
    };
    let (a, b) = (p.path().join("a.json"), p.path().join("b.json"));
    let first = start(a.to_str().unwrap());
    let second = start(b.to_str().unwrap());
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", common::text(&out));
    }
    // Each run verified its own push.
    for report in [a, b] {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
        assert_eq!(json["manifests"][0]["status"], "pushed");
    }
    // The runs took turns: no build of one started while the other's were running.
    let log = std::fs::read_to_string(&log).unwrap();
    let mut running = 0;
    let mut finished_runs = 0;
    for line in log.lines().map(|l| l.split_once(' ').unwrap().1) {
        if line.starts_with("start ") {
            running += 1;
        } else if line.starts_with("end ") {
            running -= 1;
        } else if line.starts_with("push ") && line.ends_with(":latest") {
            finished_runs += 1;
        }
        assert!(running <= 2, "builds of two runs overlapped:\n{log}");
    }
    assert_eq!(finished_runs, 2, "{log}");
}

#[test]
fn quiet_prints_only_failures_and_verbose_prints_commands() {
    let p = project();
    let quiet = run(
        &p,
        &["-q", "--keep-going"],
        &[("FAKE_FAIL", "other:linux-amd64")],
    );
    let text = quiet.text();
    assert_eq!(quiet.out.status.code(), Some(1), "{text}");
    assert!(
        !text.contains("start build") && !text.contains("built "),
        "{text}"
    );
    assert!(
        !text.contains("manifest list  status"),
        "no table with -q: {text}"
    );
    assert!(
        text.contains("FAILED other@linux-amd64: `podman build` failed"),
        "{text}"
    );
    assert!(text.contains("FAILED: 5/6 builds"), "{text}");

    let verbose = run(&p, &["-v", "other"], &[]);
    let text = verbose.text();
    assert!(verbose.out.status.success(), "{text}");
    assert!(
        text.contains("start build other@linux-arm64: podman build --platform linux/arm64"),
        "{text}"
    );
}

#[test]
fn changed_since_builds_and_pushes_only_what_changed() {
    let p = project();
    p.git_commit("all");
    p.file("app/config.txt", "v2\n");
    let r = run(&p, &["--changed-since", "HEAD"], &[]);
    assert!(r.out.status.success(), "{}", r.text());
    // app alone: base is unchanged, so app's FROM reads it from the registry.
    assert!(r.has("start localhost/mab/app:linux-arm64"));
    assert!(!r.has("start localhost/mab/base:linux-arm64"));
    assert!(!r.has("start localhost/mab/other:linux-arm64"));
    assert_eq!(
        r.pushed(),
        ["reg.test/acme/app:1", "reg.test/acme/app:latest"]
    );

    // Nothing else changed since: nothing runs, and that is a success.
    std::fs::remove_dir_all(p.path().join("fake-state")).unwrap();
    std::fs::remove_file(p.path().join("podman.log")).unwrap();
    p.git_commit("app config");
    let r = run(&p, &["--changed-since", "HEAD"], &[]);
    assert!(r.out.status.success(), "{}", r.text());
    assert!(!r.has("start localhost/mab/app:linux-arm64"), "{}", r.log);
    assert_eq!(r.pushed(), Vec::<String>::new());
}

/// The stand-ins' project with a stall rule of `stall` and one retry.
fn stalling_project(stall: &str) -> Project {
    let p = project();
    let config = std::fs::read_to_string(p.path().join("multiarch.toml")).unwrap();
    p.file(
        "multiarch.toml",
        &format!("[builder]\nregistry_stall = \"{stall}\"\nretries = 1\n\n{config}"),
    );
    p
}

/// `mab run other` in `p` against the stand-ins, its pushes hanging as `FAKE_HANG` says;
/// bounded, so that a hang fails the test (generously: other runs of this user, e2e ones
/// included, may hold the per-user lock first).
fn run_other<'p>(p: &'p Project, hang: &str, args: &[&str]) -> Test<'p> {
    // --rebuild: no registry check, so no marker tag: the list's one push goes to its first
    // tag, which `hang` names, and the other tags are copies of it.
    p.test()
        .fake_podman()
        .args(["run", "--progress", "plain", "--rebuild", "other"])
        .args(args)
        .env("FAKE_HANG", hang)
        .within(std::time::Duration::from_secs(300))
}

/// The per-user lock is held by a run whose push hangs only as long as the registry limits
/// allow: a second run waits for its turn and then succeeds (on main it waited forever).
#[test]
fn a_run_waiting_behind_a_hanging_push_gets_its_turn() {
    // The stall rule takes 3 s, twice (one retry), to end the hanging run.
    let hanging = stalling_project("3s");
    let log = hanging.path().join("podman.log");
    // The two runs' turns on one lock of their own.
    let turns = tempfile::tempdir().unwrap();
    let first_turns = turns.path().to_owned();
    let first = std::thread::spawn(move || {
        let r = run_other(&hanging, "reg.test/acme/other:1", &[])
            .env("TMPDIR", first_turns)
            .run();
        (r.out.status.code(), r.text())
    });
    // The first run holds the lock from its start to its end: once its push hangs, a run
    // started now must wait for its turn.
    wait_at_most(
        std::time::Duration::from_secs(300),
        "the first run's push hangs",
        || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("hang reg.test/acme/other:1")),
    );
    let other = project();
    let second = run_other(&other, "", &[]).env("TMPDIR", turns.path()).run();
    let text = second.text();
    assert!(
        text.contains("waiting for another mab run of this user to finish"),
        "{text}"
    );
    assert_eq!(second.out.status.code(), Some(0), "{text}");
    let (code, text) = first.join().unwrap();
    assert_eq!(code, Some(1), "{text}");
}

/// A registry that stops answering mid-push (issue 17): the push is stopped once it has moved
/// no data for `registry_stall`, retried, and the run fails naming the step, the reference and
/// the limit, instead of hanging (and holding the per-user lock) forever.
#[test]
fn a_push_that_stalls_is_stopped_retried_and_fails_the_run() {
    let p = stalling_project("1s");
    let r = run_other(&p, "reg.test/acme/other:1", &[]).run();
    let text = r.text();
    assert_eq!(r.out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "pushing reg.test/acme/other:1 to registry reg.test failed: `podman manifest push` of reg.test/acme/other:1 stalled: it moved no data for 1s ([builder] registry_stall) and was stopped"
        ),
        "{text}"
    );
    // The first attempt and its one retry, each stopped.
    assert_eq!(
        r.log.matches("hang reg.test/acme/other:1").count(),
        2,
        "{}",
        r.log
    );
    assert_eq!(survivors(&r.state()), Vec::<String>::new());
    assert!(r.pushed().is_empty(), "{:?}", r.pushed());
}

#[test]
fn registry_timeout_on_the_command_line_stops_a_hanging_push() {
    let p = stalling_project("1h");
    let r = run_other(
        &p,
        "reg.test/acme/other:1@once",
        &["--registry-timeout", "1s"],
    )
    .run();
    let text = r.text();
    assert_eq!(r.out.status.code(), Some(0), "{text}");
    assert_eq!(
        r.log.matches("hang reg.test/acme/other:1").count(),
        1,
        "{}",
        r.log
    );
    let log = p.job_log("other@manifest").expect("the list's log");
    assert!(
        log.contains("retry 1 of 1 in 1s: `podman manifest push` of reg.test/acme/other:1 timed out after 1s ([builder] registry_timeout) and was stopped"),
        "{log}"
    );
}

#[test]
fn a_push_that_stalls_once_succeeds_on_its_retry() {
    let p = stalling_project("1s");
    let r = run_other(&p, "reg.test/acme/other:1@once", &[]).run();
    let text = r.text();
    assert_eq!(r.out.status.code(), Some(0), "{text}");
    assert_eq!(
        r.log.matches("hang reg.test/acme/other:1").count(),
        1,
        "{}",
        r.log
    );
    assert_eq!(
        r.pushed(),
        ["reg.test/acme/other:1", "reg.test/acme/other:latest"]
    );
}
