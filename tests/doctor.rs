//! `mab doctor`, and the checks `mab run` makes before it starts.

use crate::common;

use common::text;

use std::path::Path;

use common::Project;

/// An architecture of `candidates` this machine has no binfmt handler for (test-env registers
/// only arm64 and arm), with its qemu name.
fn unhandled(candidates: &[&'static str]) -> &'static str {
    candidates
        .iter()
        .copied()
        .find(|a| !Path::new(&format!("/proc/sys/fs/binfmt_misc/qemu-{a}")).exists())
        .expect("every candidate platform has a binfmt handler here; extend the list")
}

#[test]
fn a_missing_podman_is_reported_with_the_fix() {
    let p = Project::new();
    // A PATH without podman.
    let all = p
        .test()
        .arg("doctor")
        .env("PATH", "/nonexistent")
        .env_remove("MAB_PODMAN")
        .status(3)
        .run()
        .text();
    assert!(all.contains("FAIL podman not found (`podman`)"), "{all}");
    assert!(
        all.contains("fix: install it (Debian/Ubuntu: `apt-get install podman`)"),
        "{all}"
    );
}

#[test]
fn a_platform_without_a_binfmt_handler_fails_doctor_and_stops_run() {
    let arch = unhandled(&["s390x", "ppc64le", "riscv64", "mips64el"]);
    let platform = format!("linux/{}", arch.replace("mips64el", "mips64le"));
    let missing = format!("FAIL {platform}: ");
    let p = Project::new();
    // The RUN step runs on the target platform: it needs the emulator.
    p.file("Dockerfile", "FROM busybox\nRUN true\n");
    p.file(
        "multiarch.toml",
        &format!("[defaults]\nregistry = \"127.0.0.1:9/x\"\nplatforms = [\"linux/amd64\", \"{platform}\"]\ntags = [\"1\"]\n[images.app]\n"),
    );
    let out = p.test().fake_podman().args(["doctor"]).run().out;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("ok   podman 4.3.1-stand-in"), "{all}");
    assert!(all.contains(&missing), "{all}");
    // Installed but not registered, it is registered; not installed, installed.
    let conf = format!("/usr/lib/binfmt.d/qemu-{arch}.conf");
    if Path::new(&conf).exists() {
        assert!(
            all.contains(&format!("is installed ({conf}) but not registered"))
                && all.contains("fix: register it: ")
                && all.contains("systemctl restart systemd-binfmt")
                && !all.contains("apt-get install qemu-user-static"),
            "{all}"
        );
    } else {
        assert!(
            all.contains("qemu-user-static") && all.contains("tonistiigi/binfmt --install all"),
            "{all}"
        );
    }
    assert!(all.contains("registry 127.0.0.1:9 not reachable"), "{all}");

    let out = p
        .test()
        .fake_podman()
        .args(["run", "--progress", "plain"])
        .run()
        .out;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains(&missing), "{all}");
    assert!(all.contains("mab run did not start"), "{all}");
    let podman_calls = std::fs::read_to_string(p.path().join("podman.log")).unwrap_or_default();
    assert!(
        !podman_calls.contains(" build"),
        "a build ran:\n{podman_calls}"
    );
}

/// The same platform, cross-compiled: the RUN step is on the build platform, the target stage
/// only copies. No emulator is needed; a non-Linux platform gets its own honest line.
#[test]
fn a_cross_compiled_platform_needs_no_emulator() {
    let arch = unhandled(&["s390x", "ppc64le", "riscv64"]);
    let p = Project::new();
    p.file(
        "Dockerfile",
        "FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETARCH\nRUN echo $TARGETARCH > /out\nFROM scratch\nCOPY --from=build /out /out\n",
    );
    p.file("win/Dockerfile", "FROM busybox\nRUN true\n");
    p.file(
        "multiarch.toml",
        &format!("[defaults]\nregistry = \"127.0.0.1:9/x\"\ntags = [\"1\"]\n[images.app]\nplatforms = [\"linux/amd64\", \"linux/{arch}\", \"darwin/arm64\"]\n[images.win]\ncontext = \"win\"\nplatforms = [\"windows/amd64\"]\n"),
    );
    let out = p.test().fake_podman().args(["doctor"]).run().out;
    let all = text(&out);
    let platform_lines: Vec<&str> = all
        .lines()
        .filter(|l| {
            !l.starts_with(' ')
                && ["linux/s", "linux/p", "linux/r", "darwin", "windows"]
                    .iter()
                    .any(|p| l.contains(p))
        })
        .collect();
    assert_eq!(
        platform_lines,
        [
            "ok   darwin/arm64: cross-compiled, no emulator needed (none of its builds runs a step on it, so podman on Linux assembles it)".to_string(),
            format!("ok   linux/{arch}: cross-compiled, no emulator needed (none of its builds runs a step on it)"),
            "FAIL windows/amd64: its builds RUN steps on windows, which podman on Linux cannot run (qemu emulates processors, not operating systems)".to_string(),
        ],
        "{all}"
    );
    assert_eq!(out.status.code(), Some(3), "{all}");
}

#[test]
fn a_healthy_machine_passes() {
    let p = Project::new();
    let out = p.test().fake_podman().args(["doctor"]).run().out;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("ok   podman") && all.contains("free for podman's storage"),
        "{all}"
    );
}

/// A login for a registry whose name only starts like ours is not ours; a credential helper
/// for ours is.
#[test]
fn credentials_match_the_registry_host_exactly() {
    let p = Project::new();
    p.file("Dockerfile", "FROM scratch\n");
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"127.0.0.1:9/x\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n[images.app]\n",
    );
    let doctor = |auth: &str| {
        p.file("auth.json", auth);
        p.test()
            .fake_podman()
            .arg("doctor")
            .env("REGISTRY_AUTH_FILE", p.path().join("auth.json"))
            .env("HOME", p.path())
            .env("XDG_RUNTIME_DIR", p.path())
            .run()
            .text()
    };
    let decoy = doctor(r#"{"auths": {"127.0.0.1:90": {"auth": "eDp5"}}}"#);
    assert!(
        decoy.contains("warn no credentials for 127.0.0.1:9 "),
        "{decoy}"
    );
    let helper = doctor(r#"{"credHelpers": {"127.0.0.1:9": "pass"}}"#);
    assert!(
        helper.contains("ok   credentials for 127.0.0.1:9 in "),
        "{helper}"
    );
    let store = doctor(r#"{"credsStore": "secretservice"}"#);
    assert!(
        store.contains(
            "credentials for 127.0.0.1:9 may come from the credential store `secretservice`"
        ),
        "{store}"
    );
}

#[test]
fn each_build_node_is_asked_and_a_dead_one_blocks_the_run() {
    let p = Project::new();
    p.file("Dockerfile", "FROM busybox\nRUN true\n");
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"127.0.0.1:9/x\"\ntags = [\"1\"]\nplatforms = [\"linux/amd64\", \"linux/arm64\", \"linux/s390x\"]\n\
         [nodes.local]\nplatforms = [\"linux/amd64\"]\n\
         [nodes.arm]\nurl = \"unix:///run/arm.sock\"\nplatforms = [\"linux/arm64\"]\n\
         [nodes.z]\nurl = \"unix:///run/z.sock\"\nplatforms = [\"linux/s390x\"]\n\
         [images.app]\n",
    );
    let doctor = |down: &str| {
        p.test()
            .fake_podman()
            .args(["doctor"])
            .env("FAKE_DOWN", down)
            .run()
            .out
    };
    let out = doctor("unix:///run/z.sock");
    let all = text(&out);
    // The stand-in podman says it is linux/amd64 wherever it is asked.
    assert!(
        all.contains(
            "warn node arm (unix:///run/arm.sock) claims linux/arm64 natively, but is linux/amd64"
        ),
        "{all}"
    );
    assert!(
        all.contains("FAIL node z (unix:///run/z.sock): unreachable: Error: unable to connect to Podman socket"),
        "{all}"
    );
    assert_eq!(out.status.code(), Some(3), "{all}");
    // The local node is this machine's podman, checked as always; no emulator is needed here
    // for platforms other nodes build.
    assert!(!all.contains("binfmt"), "{all}");
    let out = doctor("");
    let all = text(&out);
    assert!(
        all.contains("ok   node z (unix:///run/z.sock): podman 4.3.1-stand-in on linux/amd64"),
        "{all}"
    );
    assert!(
        all.contains("ok   node z (unix:///run/z.sock): 90.0 GiB free for its storage"),
        "{all}"
    );
    // A node whose storage is full blocks the run.
    let out = p
        .test()
        .fake_podman()
        .args(["doctor"])
        .env("FAKE_DISK", "11000000000")
        .run()
        .out;
    let all = text(&out);
    assert!(
        all.contains("FAIL node arm (unix:///run/arm.sock): 0.2 GiB free for its storage"),
        "{all}"
    );
    assert_eq!(out.status.code(), Some(3), "{all}");
}

/// An installed handler that is not registered (qemu-user-static's file in binfmt.d, nothing in
/// binfmt_misc) is fixed by registering it, not by installing qemu-user-static again.
#[test]
fn an_installed_unregistered_handler_gets_the_command_that_registers_it() {
    let arch = ["riscv64", "s390x", "ppc64le"]
        .into_iter()
        .find(|a| {
            Path::new(&format!("/usr/lib/binfmt.d/qemu-{a}.conf")).exists()
                && !Path::new(&format!("/proc/sys/fs/binfmt_misc/qemu-{a}")).exists()
        })
        .expect(
            "qemu-user-static is installed (scripts/test-env.sh) and registers only arm64 and arm",
        );
    let p = Project::new();
    p.file("Dockerfile", "FROM busybox\nRUN true\n");
    p.file(
        "multiarch.toml",
        &format!("[defaults]\nregistry = \"127.0.0.1:9/x\"\nplatforms = [\"linux/{arch}\"]\ntags = [\"1\"]\n[images.app]\n"),
    );
    let out = p.test().fake_podman().args(["doctor"]).run().out;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains(&format!(
            "FAIL linux/{arch}: the binfmt handler qemu-{arch} is installed (/usr/lib/binfmt.d/qemu-{arch}.conf) but not registered"
        )),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "grep -v '^[#;]' /usr/lib/binfmt.d/qemu-{arch}.conf | sudo tee /proc/sys/fs/binfmt_misc/register"
        )),
        "{all}"
    );
    assert!(!all.contains("apt-get install qemu-user-static"), "{all}");
}

/// An amd64 kernel runs i386 code: a linux/386 build that RUNs steps needs no handler (this
/// machine registers none for i386, scripts/test-env.sh).
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "i386 is native on amd64 machines only"
)]
fn linux_386_runs_natively_on_amd64() {
    assert!(
        !Path::new("/proc/sys/fs/binfmt_misc/qemu-i386").exists(),
        "an i386 handler is registered here: this test would not show that none is needed"
    );
    let p = Project::new();
    p.file("Dockerfile", "FROM busybox\nRUN true\n");
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"127.0.0.1:9/x\"\nplatforms = [\"linux/amd64\", \"linux/386\"]\ntags = [\"1\"]\n[images.app]\n",
    );
    let out = p.test().fake_podman().args(["doctor"]).run().out;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("ok   linux/386: runs natively here, no emulator needed (an amd64 Linux kernel runs i386 code"),
        "{all}"
    );
    assert!(!all.contains("binfmt"), "{all}");
}

/// A Dockerfile of docker/compose's shape: heredocs and `COPY --link` in stages the target does
/// not reach, a heredoc and a `# check=` directive in ones it does.
const FEATURES: &str = "# check=skip=all\n\
FROM busybox AS docs\n\
COPY <<EOF /docs.md\n\
hi\n\
EOF\n\
FROM busybox AS validate\n\
COPY --link . /src\n\
FROM busybox AS build\n\
RUN <<EOF\n\
echo built > /out\n\
EOF\n\
FROM busybox\n\
COPY --exclude=*.log --from=build /out /out\n";

fn features_project(target: Option<&str>) -> Project {
    let p = Project::new();
    p.file("Dockerfile", FEATURES);
    let target = target.map_or(String::new(), |t| format!("target = \"{t}\"\n"));
    p.file(
        "multiarch.toml",
        &format!("[defaults]\nregistry = \"127.0.0.1:9/x\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n[images.app]\n{target}"),
    );
    p
}

fn doctor_on(p: &Project, version: &str) -> (Option<i32>, String) {
    let out = p
        .test()
        .fake_podman()
        .args(["doctor"])
        .env("FAKE_VERSION", version)
        .run()
        .out;
    (out.status.code(), text(&out))
}

#[test]
fn podman_4_fails_a_reached_heredoc_with_its_place_and_the_fix() {
    let p = features_project(None);
    let (code, all) = doctor_on(&p, "4.3.1");
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains("FAIL Dockerfile:9:1: a heredoc (`RUN <<EOF`, `COPY <<EOF`), which podman 4.3.1 cannot build (measured on 4.3.1:"),
        "{all}"
    );
    assert!(
        all.contains(
            "fix: use podman 5.4.2 or later, or write the heredoc's lines to a script file"
        ),
        "{all}"
    );
    assert!(
        all.contains("FAIL Dockerfile:13:6: `COPY --exclude`, which podman 4.3.1 cannot build"),
        "{all}"
    );
    assert!(
        all.contains("warn Dockerfile:1:1: a `# check=` directive, which podman 4.3.1 builds differently from BuildKit"),
        "{all}"
    );
    // The docs and validate stages are not reached: their heredoc and `--link` never count.
    assert!(
        !all.contains("Dockerfile:3:") && !all.contains("Dockerfile:7:"),
        "{all}"
    );
    assert!(!all.contains("--link"), "{all}");

    // mab run checks the same first, and builds nothing.
    let out = p
        .test()
        .fake_podman()
        .args(["run", "--progress", "plain"])
        .run()
        .out;
    let run = text(&out);
    assert_eq!(out.status.code(), Some(3), "{run}");
    assert!(run.contains("FAIL Dockerfile:9:1: a heredoc"), "{run}");
    let podman_calls = std::fs::read_to_string(p.path().join("podman.log")).unwrap_or_default();
    assert!(
        !podman_calls.contains(" build"),
        "a build ran:\n{podman_calls}"
    );
}

#[test]
fn podman_5_builds_the_heredoc_and_warns_of_copy_exclude() {
    let p = features_project(None);
    let (code, all) = doctor_on(&p, "5.4.2");
    assert_eq!(code, Some(0), "{all}");
    assert!(!all.contains("heredoc"), "{all}");
    assert!(
        all.contains("warn Dockerfile:13:6: `COPY --exclude`, which podman 5.4.2 builds differently from BuildKit (measured on 5.4.2: its patterns match from the context's root"),
        "{all}"
    );
    // Between two measurements that disagree, it is a warning, never a pass or a failure.
    let (code, all) = doctor_on(&p, "4.9.3");
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("warn Dockerfile:9:1: a heredoc (`RUN <<EOF`, `COPY <<EOF`), not measured on podman 4.9.3: 4.3.1 rejects it, 5.4.2 builds it"),
        "{all}"
    );
}

/// Only the reached stages count: a target whose stages use nothing podman 4.3.1 rejects
/// passes, though other stages of its Dockerfile use heredocs and `COPY --link`.
#[test]
fn unreached_stages_never_count() {
    let p = features_project(Some("validate"));
    let (code, all) = doctor_on(&p, "4.3.1");
    // `validate` reaches its own `COPY --link`, which no measured podman builds.
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains(
            "FAIL Dockerfile:7:6: `COPY --link` / `ADD --link`, which podman 4.3.1 cannot build"
        ),
        "{all}"
    );
    assert!(
        all.contains("fix: no measured podman version builds it; drop `--link`"),
        "{all}"
    );
    assert!(!all.contains("heredoc"), "{all}");
    let p = features_project(Some("docs"));
    let (code, all) = doctor_on(&p, "5.4.2");
    assert_eq!(code, Some(0), "{all}");
    let (code, all) = doctor_on(&p, "4.3.1");
    assert_eq!(code, Some(3), "{all}");
    assert!(all.contains("FAIL Dockerfile:3:1: a heredoc"), "{all}");
}

/// `FROM binary-$TARGETOS` with no `ARG TARGETOS`, which podman 4.3.1 cannot build as written:
/// mab's copy of the Dockerfile declares it, and doctor says so rather than failing.
#[test]
fn from_lines_reading_platform_args_pass_because_mab_declares_them() {
    let p = Project::new();
    p.file(
        "Dockerfile",
        "FROM busybox AS binary-linux\nFROM binary-$TARGETOS\n",
    );
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"127.0.0.1:9/x\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n[images.app]\n",
    );
    let (code, all) = doctor_on(&p, "4.3.1");
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("ok   Dockerfile:2:1: `FROM x-$TARGETOS` with no global `ARG TARGETOS`: mab makes it work: its copy of the Dockerfile declares the platform ARGs that FROM lines use at its top"),
        "{all}"
    );
}
