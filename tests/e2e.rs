//! End to end, with the real podman and a real registry on 127.0.0.1: no mocks. Needs what
//! scripts/test-env.sh sets up (podman, skopeo, docker-registry, binfmt handlers, and the
//! busybox base images), and `MAB_E2E=1` (scripts/test.sh sets both up): build.rs then checks
//! the environment and compiles these tests in; without it they are reported ignored.

use crate::common;

use common::{BASE, text};

use std::process::{Command, Output};

use common::registry::Registry;
use common::{Project, SpawnCaptured, each, find, wait_at_most};

/// One test at a time, with a fresh registry.
fn setup() -> (std::sync::MutexGuard<'static, ()>, Registry) {
    let serial = common::e2e_serial();
    (serial, Registry::start())
}

/// Polls `done` until it holds; a generous deadline only turns a hang into a failure.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    wait_at_most(std::time::Duration::from_secs(300), what, done);
}

/// `mab ARGS` in `p`, without the environment's registries.conf: tests name their own.
fn mab(p: &Project, args: &[&str]) -> Output {
    p.mab(args)
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .output()
        .expect("mab runs")
}

/// Platforms an index lists, as `os/arch[/variant]`, sorted.
fn platforms(index: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(v) = p["variant"].as_str() {
                s = format!("{s}/{v}");
            }
            s
        })
        .collect();
    out.sort();
    out
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn monorepo_is_built_pushed_and_verified() {
    let (_serial, registry) = setup();
    let p = Project::example("monorepo");
    p.git_commit("fixture");
    let repo = format!("{}/acme", registry.host());
    let report = p.path().join("report.json");
    // `mab run` of the example, offline: pushed to the test's registry, reached the
    // registries.conf way (the other way to a plain-HTTP registry).
    let run = |args: &[&str]| {
        let registry_var = format!("registry={repo}");
        let root_var = format!("root_image={BASE}");
        let vars = ["run", "--var", &registry_var, "--var", &root_var];
        p.mab(&[&vars[..], args].concat())
            .env("CONTAINERS_REGISTRIES_CONF", registry.registries_conf())
            .output()
            .unwrap()
    };
    let out = run(&["--jobs", "2", "--report", report.to_str().unwrap()]);
    assert!(out.status.success(), "mab run failed:\n{}", text(&out));

    // Every tag of every image: an index of exactly the planned platforms.
    let tags = [
        "base:1.4.2",
        "base:latest",
        "runtime:1.4.2",
        "runtime:latest",
        "api:1.4.2-go1.22",
        "api:1.4.2-go1.23",
        "worker:1.4.2",
        "worker:latest",
    ];
    for tag in tags {
        let index = registry
            .raw(&format!("{repo}/{tag}"))
            .unwrap_or_else(|| panic!("{tag} was not pushed"));
        assert_eq!(platforms(&index), ["linux/amd64", "linux/arm64"], "{tag}");
    }

    // RUN steps ran on the right architecture, and the dependent image's arm64 variant is built
    // on the arm64 base.
    let expected = [
        ("base:1.4.2", "arm64", "/opt/acme/base-arch", "aarch64"),
        ("base:1.4.2", "amd64", "/opt/acme/base-arch", "x86_64"),
        ("worker:latest", "arm64", "/opt/acme/base-arch", "aarch64"),
        ("worker:latest", "arm64", "/opt/acme/worker-arch", "aarch64"),
        ("worker:latest", "amd64", "/opt/acme/base-arch", "x86_64"),
        // Per-platform args reach the arm64 build only.
        (
            "api:1.4.2-go1.23",
            "arm64",
            "/opt/acme/api-build",
            "go 1.23 -march=armv8-a",
        ),
        (
            "api:1.4.2-go1.23",
            "amd64",
            "/opt/acme/api-build",
            "go 1.23",
        ),
    ];
    for (image, arch, path, want) in expected {
        let got = registry.read_file(&format!("{repo}/{image}"), ("linux", arch, None), path);
        assert_eq!(
            got.as_deref(),
            Some(want),
            "{path} in the {arch} image of {image}"
        );
    }

    // The report has every build's image id and each pushed digest, matching the registry.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["success"], true);
    assert_eq!(report["builds"].as_array().unwrap().len(), 10);
    assert!(
        report["builds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["image_id"].as_str().is_some_and(|i| i.len() >= 64))
    );
    let base_report = find(&report["manifests"], "image", "base");
    assert_eq!(base_report["status"], "pushed");
    for t in base_report["tags"].as_array().unwrap() {
        let out = Command::new("skopeo")
            .args([
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{}", t["reference"].as_str().unwrap()),
            ])
            .output()
            .unwrap();
        let digest = format!("sha256:{}", sha256_hex(&out.stdout));
        assert_eq!(t["digest"], digest.as_str());
    }

    // Running again replaces the local manifest lists instead of failing on them (--rebuild:
    // unchanged inputs would otherwise build and assemble nothing).
    let again = run(&["base", "--rebuild", "--progress", "plain"]);
    assert!(
        again.status.success(),
        "second run failed:\n{}",
        text(&again)
    );
    let base = registry.raw(&format!("{repo}/base:1.4.2")).unwrap();
    assert_eq!(platforms(&base), ["linux/amd64", "linux/arm64"]);

    // Only what changed since the commit: the worker, built on the runtime the first run
    // pushed (pulled from the registry, not rebuilt).
    let runtime_before = registry.raw(&format!("{repo}/runtime:latest")).unwrap();
    let dockerfile = p.path().join("services/worker/Dockerfile");
    let changed_text = std::fs::read_to_string(&dockerfile).unwrap()
        + "RUN echo changed > /opt/acme/worker-changed\n";
    std::fs::write(&dockerfile, changed_text).unwrap();
    let report = p.path().join("changed.json");
    let changed = run(&[
        "--changed-since",
        "HEAD",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(
        changed.status.success(),
        "changed-since run failed:\n{}",
        text(&changed)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(
        each(&report["builds"], "id"),
        ["worker@linux-amd64", "worker@linux-arm64"]
    );
    let worker = format!("{repo}/worker:latest");
    for (arch, uname) in [("arm64", "aarch64"), ("amd64", "x86_64")] {
        let platform = ("linux", arch, None);
        let got = registry.read_file(&worker, platform, "/opt/acme/worker-changed");
        assert_eq!(got.as_deref(), Some("changed"), "{arch}");
        let got = registry.read_file(&worker, platform, "/opt/acme/base-arch");
        assert_eq!(
            got.as_deref(),
            Some(uname),
            "{arch} worker on the pushed runtime"
        );
    }
    assert_eq!(
        registry.raw(&format!("{repo}/runtime:latest")).unwrap(),
        runtime_before
    );
}

/// The cross-compile example: a toolchain built for this machine only, an app for amd64, arm64
/// and s390x that compiles in a `--platform=$BUILDPLATFORM` stage from it and ends `FROM scratch`
/// + `COPY`. No s390x emulator is registered here, and none is needed.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn cross_compiled_platforms_need_no_emulator() {
    let (_serial, registry) = setup();
    assert!(
        !std::path::Path::new("/proc/sys/fs/binfmt_misc/qemu-s390x").exists(),
        "this test shows a build without an s390x emulator: unregister qemu-s390x first"
    );
    let p = Project::example("cross");
    p.git_commit("fixture");
    let repo = format!("{}/acme", registry.host());
    let vars = [
        "--var".to_string(),
        format!("registry={repo}"),
        "--var".to_string(),
        format!("root_image={BASE}"),
    ];
    let with = |cmd: &str, args: &[&str]| {
        let mut all: Vec<&str> = vec![cmd];
        all.extend(vars.iter().map(String::as_str));
        all.extend(args);
        p.mab(&all)
            .env("CONTAINERS_REGISTRIES_CONF", registry.registries_conf())
            .output()
            .unwrap()
    };
    // doctor takes no --var: it checks the example as written, and the platforms are the same.
    let doctor = p
        .mab(&["doctor"])
        .env("CONTAINERS_REGISTRIES_CONF", registry.registries_conf())
        .output()
        .unwrap();
    let said = text(&doctor);
    assert!(doctor.status.success(), "mab doctor failed:\n{said}");
    for platform in ["linux/arm64", "linux/s390x"] {
        assert!(
            said.contains(&format!(
                "ok   {platform}: cross-compiled, no emulator needed"
            )),
            "{said}"
        );
    }

    let out = with("run", &["--jobs", "2", "--progress", "plain"]);
    assert!(out.status.success(), "mab run failed:\n{}", text(&out));
    let index = registry
        .raw(&format!("{repo}/app:1.0"))
        .expect("app:1.0 pushed");
    assert_eq!(
        platforms(&index),
        ["linux/amd64", "linux/arm64", "linux/s390x"]
    );
    let toolchain = registry
        .raw(&format!("{repo}/toolchain:1.0"))
        .expect("toolchain pushed");
    assert_eq!(platforms(&toolchain), ["linux/amd64"]);
    // The labels, set in one LABEL instruction of a Dockerfile copy, reach the image.
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--override-arch", "s390x"])
        .arg(format!("docker://{repo}/app:1.0"))
        .output()
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(config["Labels"]["org.opencontainers.image.version"], "1.0");
    assert!(config["Labels"]["org.opencontainers.image.revision"].is_string());
    for arch in ["amd64", "arm64", "s390x"] {
        let made = registry.read_file(&format!("{repo}/app:1.0"), ("linux", arch, None), "/app");
        assert_eq!(
            made.as_deref(),
            Some(format!("made on x86_64 for {arch}").as_str()),
            "the {arch} image's /app"
        );
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A config in a scratch project that pushes to `registry` and marks it insecure in the config
/// itself (the other way to reach a plain-HTTP registry).
fn scratch(registry: &Registry, images: &str) -> Project {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nregistry = \"{host}/e2e\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n{images}",
            host = registry.host()
        ),
    );
    p
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn arm_v7_is_pushed_as_arm_variant_v7() {
    let (_serial, registry) = setup();
    let p = scratch(
        &registry,
        "[images.e2e-armv7]\nplatforms = [\"linux/amd64\", \"linux/arm/v7\"]\n",
    );
    p.file(
        "Dockerfile",
        &format!("FROM {BASE}\nRUN uname -m > /arch\n"),
    );
    let out = mab(&p, &["run", "--progress", "plain"]);
    assert!(out.status.success(), "{}", text(&out));
    let reference = format!("{}/e2e/e2e-armv7:1", registry.host());
    let index = registry.raw(&reference).expect("pushed");
    assert_eq!(platforms(&index), ["linux/amd64", "linux/arm/v7"]);
    let arm = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm")
        .unwrap();
    assert_eq!(arm["platform"]["variant"], "v7");
    assert_eq!(
        registry
            .read_file(&reference, ("linux", "arm", Some("v7")), "/arch")
            .as_deref(),
        Some("armv7l")
    );
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn literal_from_reads_the_local_dependency() {
    let (_serial, registry) = setup();
    let host = registry.host();
    let p = scratch(
        &registry,
        "[images.e2e-lit-base]\ncontext = \"base\"\n\n[images.e2e-lit-app]\ncontext = \"app\"\n",
    );
    p.file(
        "base/Dockerfile",
        &format!("FROM {BASE}\nRUN uname -m > /base-arch\n"),
    );
    // A literal reference to the base's tag: redirected with --build-context, never pulled.
    p.file("app/Dockerfile", &format!("FROM {host}/e2e/e2e-lit-base:1\nCOPY --from={host}/e2e/e2e-lit-base:1 /base-arch /copied\n"));
    let plan: serde_json::Value =
        serde_json::from_slice(&mab(&p, &["plan", "--format", "json"]).stdout).unwrap();
    let app = find(&plan["builds"], "id", "e2e-lit-app@linux-arm64");
    let context = format!(
        "{host}/e2e/e2e-lit-base:1=container-image://localhost/mab/e2e-lit-base:linux-arm64"
    );
    assert!(
        app["argv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == context.as_str()),
        "{app}"
    );
    let out = mab(&p, &["run", "--progress", "plain"]);
    assert!(out.status.success(), "{}", text(&out));
    let app = format!("{host}/e2e/e2e-lit-app:1");
    assert_eq!(
        registry
            .read_file(&app, ("linux", "arm64", None), "/base-arch")
            .as_deref(),
        Some("aarch64")
    );
    assert_eq!(
        registry
            .read_file(&app, ("linux", "arm64", None), "/copied")
            .as_deref(),
        Some("aarch64")
    );
    assert_eq!(
        registry
            .read_file(&app, ("linux", "amd64", None), "/copied")
            .as_deref(),
        Some("x86_64")
    );
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_build_failing_on_arm64_pushes_nothing_for_its_image() {
    let (_serial, registry) = setup();
    let p = scratch(
        &registry,
        "[images.e2e-fails]\ncontext = \"fails\"\n\n[images.e2e-fine]\ncontext = \"fine\"\n",
    );
    p.file("fails/Dockerfile", &format!("FROM {BASE}\nRUN echo checking; test \"$(uname -m)\" != aarch64 || (echo 'no arm64 support here' >&2; exit 3)\n"));
    p.file(
        "fine/Dockerfile",
        &format!("FROM {BASE}\nRUN uname -m > /arch\n"),
    );
    let out = mab(
        &p,
        &["run", "--keep-going", "--progress", "plain", "--jobs", "2"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    // Nothing for the failing image, not even its amd64 build under the tag.
    assert!(
        registry
            .raw(&format!("{}/e2e/e2e-fails:1", registry.host()))
            .is_none(),
        "a partial list was pushed"
    );
    // --keep-going: the independent image is published.
    assert!(
        registry
            .raw(&format!("{}/e2e/e2e-fine:1", registry.host()))
            .is_some(),
        "{all}"
    );
    // The summary names the image and platform, and shows the end of the log.
    assert!(all.contains("FAILED e2e-fails@linux-arm64"), "{all}");
    assert!(all.contains("| no arm64 support here"), "{all}");
    assert!(
        all.contains("its build e2e-fails@linux-arm64 failed"),
        "the list says why it was not pushed: {all}"
    );
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_registry_that_comes_up_late_is_retried() {
    let (_serial, mut registry) = setup();
    let p = scratch(&registry, "[images.e2e-late]\n");
    p.file("Dockerfile", &format!("FROM {BASE}\nRUN true\n"));
    registry.stop();
    let report = p.path().join("report.json");
    let child = p
        .mab(&[
            "run",
            "--progress",
            "plain",
            "--report",
            report.to_str().unwrap(),
        ])
        .spawn_captured();
    // The first push is refused: once the log says it will retry, the registry comes back, long
    // before the retries run out (1 s, 2 s, 4 s).
    let runs = p.path().join(".mab/runs");
    wait_until("the push log says it retries", || {
        std::fs::read_dir(&runs)
            .ok()
            .into_iter()
            .flatten()
            .any(|run| {
                let log = run.unwrap().path().join("e2e-late@manifest.log");
                std::fs::read_to_string(log).is_ok_and(|t| t.contains("retry 1 of 3"))
            })
    });
    registry.resume();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        registry
            .raw(&format!("{}/e2e/e2e-late:1", registry.host()))
            .is_some()
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let log = std::fs::read_to_string(report["manifests"][0]["log"].as_str().unwrap()).unwrap();
    assert!(
        // The first registry step of a publication records what the tag holds.
        log.contains("mab: transient failure, retry 1 of 3 in 1s: `skopeo inspect` failed"),
        "{log}"
    );
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_stopped_registry_is_a_clear_error() {
    let (_serial, mut registry) = setup();
    let p = scratch(&registry, "[images.e2e-noreg]\n");
    p.file("Dockerfile", &format!("FROM {BASE}\nRUN true\n"));
    registry.stop();
    let out = mab(&p, &["run", "--progress", "plain"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("from registry {} failed", registry.host())),
        "{all}"
    );
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn sigint_during_a_real_build_leaves_no_podman_running() {
    let (_serial, registry) = setup();
    let p = scratch(
        &registry,
        "[images.e2e-sigint]\nplatforms = [\"linux/amd64\"]\n",
    );
    let marker = format!("mab-sigint-{}", std::process::id());
    p.file(
        "Dockerfile",
        // The step runs until the interrupt stops it, however long the test takes to send it.
        &format!("FROM {BASE}\nRUN echo {marker} && while :; do sleep 1; done\n"),
    );
    let child = p.mab(&["run", "--progress", "plain"]).spawn_captured();
    let running = |pattern: &str| {
        Command::new("pgrep")
            .args(["-f", pattern])
            .output()
            .unwrap()
            .status
            .success()
    };
    wait_at_most(
        std::time::Duration::from_secs(60),
        "the RUN step started",
        || running(&format!("echo {marker}")),
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        !running("localhost/mab/e2e-sigint"),
        "podman build still running"
    );
    assert!(
        !running(&format!("echo {marker}")),
        "the RUN step still running"
    );
    assert!(
        registry
            .raw(&format!("{}/e2e/e2e-sigint:1", registry.host()))
            .is_none()
    );
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn secrets_reach_the_build_and_no_output_or_log() {
    let (_serial, registry) = setup();
    let token = format!("tok-{}-s3cr3t", std::process::id());
    let file_secret = format!("npm-{}-filesecret", std::process::id());
    let p = scratch(
        &registry,
        "[images.e2e-secret]\nplatforms = [\"linux/amd64\"]\nsecrets = { token = { env = \"MAB_E2E_TOKEN\" }, npmrc = { file = \"npmrc\" } }\n",
    );
    p.file("npmrc", &format!("{file_secret}\n"));
    // A careless build that prints its secrets: mab's logs must still not hold them. (The
    // process id in the RUN line keeps an earlier run's cached layer out: secrets are not part
    // of the cache key.)
    p.file(
        "Dockerfile",
        &format!(
            "FROM {BASE}\nRUN --mount=type=secret,id=token --mount=type=secret,id=npmrc echo run {} && cat /run/secrets/token /run/secrets/npmrc && wc -c < /run/secrets/token > /token-length\n",
            std::process::id()
        ),
    );
    let report = p.path().join("report.json");
    let out = p
        .mab(&[
            "run",
            "--progress",
            "plain",
            "--report",
            report.to_str().unwrap(),
        ])
        .env("MAB_E2E_TOKEN", &token)
        .output()
        .unwrap();
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let reference = format!("{}/e2e/e2e-secret:1", registry.host());
    let length = registry
        .read_file(&reference, ("linux", "amd64", None), "/token-length")
        .unwrap();
    assert_eq!(length, token.len().to_string(), "the build read the secret");
    let plan = text(&mab(&p, &["plan", "--format", "json"]));
    let mut places = vec![
        ("output".to_string(), all),
        ("plan".into(), plan),
        ("report".into(), std::fs::read_to_string(&report).unwrap()),
    ];
    for entry in walkdir::WalkDir::new(p.path().join(".mab")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            places.push((
                entry.path().display().to_string(),
                std::fs::read_to_string(entry.path()).unwrap_or_default(),
            ));
        }
    }
    let logs = places
        .iter()
        .filter(|(name, _)| name.ends_with(".log"))
        .count();
    assert!(logs >= 2, "the run wrote its logs");
    for (name, content) in &places {
        assert!(
            !content.contains(&token) && !content.contains(&file_secret),
            "a secret value is in {name}:\n{content}"
        );
    }
    let build_log = places
        .iter()
        .find(|(n, _)| n.ends_with("e2e-secret@linux-amd64.log"))
        .unwrap();
    assert!(
        build_log.1.contains("***"),
        "the printed secret is masked: {}",
        build_log.1
    );
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn shell_metacharacters_in_a_build_arg_reach_the_build_literally() {
    let (_serial, registry) = setup();
    let canary = std::env::temp_dir().join(format!("mab-pwned-{}", std::process::id()));
    let hostile = format!(
        "$(touch {0}); `touch {0}` && echo 'x' | cat; rm -rf \"$HOME\" #",
        canary.display()
    );
    let p = scratch(
        &registry,
        "[images.e2e-hostile]\nplatforms = [\"linux/amd64\"]\nargs = { MSG = \"{{ vars.msg }}\" }\n",
    );
    p.file(
        "Dockerfile",
        &format!("FROM {BASE}\nARG MSG\nRUN printf '%s' \"$MSG\" > /msg\n"),
    );
    let out = p
        .mab(&[
            "run",
            "--progress",
            "plain",
            "--var",
            &format!("msg={hostile}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!canary.exists(), "a build arg was run as a command");
    let reference = format!("{}/e2e/e2e-hostile:1", registry.host());
    let msg = registry.read_file(&reference, ("linux", "amd64", None), "/msg");
    assert_eq!(msg.as_deref(), Some(hostile.as_str()));
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn two_real_runs_at_once_both_succeed() {
    let (_serial, registry) = setup();
    let p = scratch(&registry, "[images.e2e-twice]\n");
    p.file(
        "Dockerfile",
        &format!("FROM {BASE}\nRUN uname -m > /arch\n"),
    );
    let start = || p.mab(&["run", "--progress", "plain"]).spawn_captured();
    let (first, second) = (start(), start());
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let index = registry
        .raw(&format!("{}/e2e/e2e-twice:1", registry.host()))
        .expect("pushed");
    assert_eq!(platforms(&index), ["linux/amd64", "linux/arm64"]);
    let runs = std::fs::read_dir(p.path().join(".mab/runs"))
        .unwrap()
        .count();
    assert_eq!(runs, 2, "each run keeps its own logs");
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_context_of_dot_leaves_the_run_state_out_and_keeps_its_own_ignore_file() {
    let (_serial, registry) = setup();
    let p = scratch(
        &registry,
        "[images.e2e-dot]\nplatforms = [\"linux/amd64\"]\n",
    );
    p.file("Dockerfile", &format!("FROM {BASE}\nCOPY . /ctx/\n"))
        .file(".dockerignore", "*.txt\n")
        .file("secret.txt", "not for the image\n")
        .file("app.sh", "echo app\n");
    let first = mab(&p, &["run", "--progress", "plain"]);
    assert!(first.status.success(), "{}", text(&first));
    let reference = format!("{}/e2e/e2e-dot:1", registry.host());
    let read = |path: &str| registry.read_file(&reference, ("linux", "amd64", None), path);
    assert_eq!(read("/ctx/app.sh").as_deref(), Some("echo app"));
    // The context's own .dockerignore still applies...
    assert_eq!(read("/ctx/secret.txt"), None);
    // ...and the logs of this run (in .mab, inside the context) are not in the image.
    assert!(p.path().join(".mab/runs").is_dir());
    assert_eq!(read("/ctx/.mab/.gitignore"), None);

    // So a second run, with new logs in .mab, finds the inputs unchanged...
    let second = mab(&p, &["run", "--progress", "plain"]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("unchanged 1 of 1 image(s)"),
        "{}",
        text(&second)
    );
    // ...and a rebuild takes the COPY from podman's cache.
    let second = mab(&p, &["run", "--rebuild", "--progress", "plain"]);
    assert!(second.status.success(), "{}", text(&second));
    let log = p.job_log("e2e-dot@linux-amd64").expect("the build's log");
    assert!(
        log.contains("COPY . /ctx/\n--> Using cache"),
        "the COPY step was not cached:\n{log}"
    );
}

/// The labels of one platform's image, read from the registry.
fn labels_of(reference: &str, arch: &str) -> serde_json::Value {
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--override-arch", arch])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", text(&inspect));
    let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    config["Labels"].clone()
}

/// Issue 18's home-assistant and linuxserver shapes on the real podman and registry: a
/// `latest` only the newest alpine gets, and labels that say each platform's arch (one from
/// the platform override).
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_conditional_tag_and_per_platform_labels_reach_the_registry() {
    let (_serial, registry) = setup();
    let p = scratch(
        &registry,
        r#"[vars]
latest = "3.23"

[images.e2e-hass]
matrix = { alpine = ["3.22", "3.23"] }
tags = ["{{ matrix.alpine }}", "{% if matrix.alpine == vars.latest %}latest{% endif %}"]
labels = { "io.hass.arch" = "{{ platform.arch }}", "io.hass.alpine" = "{{ matrix.alpine }}" }

[images.e2e-hass.platform."linux/arm64"]
labels = { "io.hass.machine" = "aarch64" }
"#,
    );
    // No RUN step: nothing is emulated, each platform's image is the base's plus the labels.
    p.file("Dockerfile", &format!("FROM {BASE}\n"));
    let out = mab(&p, &["run", "--progress", "plain"]);
    assert!(out.status.success(), "{}", text(&out));
    let repo = format!("{}/e2e/e2e-hass", registry.host());
    let newest = registry.raw(&format!("{repo}:3.23")).expect("3.23 pushed");
    assert_eq!(
        registry.raw(&format!("{repo}:latest")),
        Some(newest),
        "latest is the 3.23 list"
    );
    assert!(registry.raw(&format!("{repo}:3.22")).is_some());
    let arm64 = labels_of(&format!("{repo}:latest"), "arm64");
    assert_eq!(arm64["io.hass.arch"], "arm64");
    assert_eq!(arm64["io.hass.machine"], "aarch64");
    assert_eq!(arm64["io.hass.alpine"], "3.23");
    let amd64 = labels_of(&format!("{repo}:3.22"), "amd64");
    assert_eq!(amd64["io.hass.arch"], "amd64");
    assert_eq!(amd64["io.hass.alpine"], "3.22");
    assert!(amd64.get("io.hass.machine").is_none(), "{amd64}");
}

/// Issue 18's linuxserver shape on the real podman and registry: the arm64 build uses
/// `Dockerfile.aarch64`, the amd64 one `Dockerfile`, and home-assistant's context per matrix
/// value; the files in each platform's pushed image say which.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_platform_dockerfile_and_a_templated_context_reach_the_registry() {
    let (_serial, registry) = setup();
    let p = scratch(
        &registry,
        r#"[images.e2e-lsio]
matrix = { flavor = ["alpine", "ubuntu"] }
context = "{{ matrix.flavor }}"
tags = ["{{ matrix.flavor }}"]

[images.e2e-lsio.platform."linux/arm64"]
dockerfile = "Dockerfile.aarch64"
"#,
    );
    // No RUN step: nothing is emulated; each build copies a file that names its Dockerfile.
    for flavor in ["alpine", "ubuntu"] {
        p.file(
            &format!("{flavor}/Dockerfile"),
            &format!("FROM {BASE}\nCOPY which /which\nCOPY flavor /flavor\n"),
        );
        p.file(
            &format!("{flavor}/Dockerfile.aarch64"),
            &format!("FROM {BASE}\nCOPY which.aarch64 /which\nCOPY flavor /flavor\n"),
        );
        p.file(&format!("{flavor}/which"), "Dockerfile");
        p.file(&format!("{flavor}/which.aarch64"), "Dockerfile.aarch64");
        p.file(&format!("{flavor}/flavor"), flavor);
    }
    let out = mab(&p, &["run", "--progress", "plain"]);
    assert!(out.status.success(), "{}", text(&out));
    let repo = format!("{}/e2e/e2e-lsio", registry.host());
    for flavor in ["alpine", "ubuntu"] {
        let reference = format!("{repo}:{flavor}");
        let index = registry.raw(&reference).expect("pushed");
        assert_eq!(platforms(&index), ["linux/amd64", "linux/arm64"]);
        let read = |arch, path| registry.read_file(&reference, ("linux", arch, None), path);
        assert_eq!(read("amd64", "/which").as_deref(), Some("Dockerfile"));
        assert_eq!(
            read("arm64", "/which").as_deref(),
            Some("Dockerfile.aarch64")
        );
        assert_eq!(read("amd64", "/flavor").as_deref(), Some(flavor));
        assert_eq!(read("arm64", "/flavor").as_deref(), Some(flavor));
    }
}
