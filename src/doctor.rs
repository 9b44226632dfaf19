//! `mab doctor`: what on this machine would stop a run, each with the exact fix. `mab run` runs
//! the same checks first and refuses to start on a failing one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod features;
mod signing;
mod syft;

use crate::native::Companion;
use crate::plan::Plan;
use crate::platform::Platform;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Pass,
    /// Worth knowing; does not stop a run.
    Warn,
    /// Stops a run.
    Fail,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub level: Level,
    pub what: String,
    pub fix: Option<String>,
}

impl Check {
    fn pass(what: impl Into<String>) -> Self {
        Self {
            level: Level::Pass,
            what: what.into(),
            fix: None,
        }
    }

    fn warn(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            level: Level::Warn,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            level: Level::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// What `podman version` and `podman info` say of this machine: the slow part of the checks
/// (a tenth of a second or more each), which needs no plan.
pub struct Machine {
    podman: Check,
    version: Option<String>,
    disk: Check,
}

impl Machine {
    pub fn gather(podman: &[String]) -> Self {
        Probe::start(podman).finish()
    }
}

/// [`Machine`]'s podman command, started early: `mab run` starts it while it reads the
/// registry. Dropped unfinished (the registry left nothing to build), it kills it.
///
/// One `podman --log-level=debug version` says both the version (stdout) and where the storage
/// is (its "Using graph root" debug line) in 40 ms; `podman info` takes 240 ms, so it is only
/// asked when that line is missing.
pub struct Probe {
    podman: Vec<String>,
    version: Option<std::io::Result<Child>>,
}

impl Probe {
    pub fn start(podman: &[String]) -> Self {
        let version = Command::new(&podman[0])
            .args(&podman[1..])
            .args([
                "--log-level=debug",
                "version",
                "--format",
                "{{.Client.Version}}",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        Self {
            version: Some(version),
            podman: podman.to_vec(),
        }
    }

    pub fn finish(mut self) -> Machine {
        let out = self
            .version
            .take()
            .expect("taken once")
            .and_then(Child::wait_with_output);
        let root = out.as_ref().ok().and_then(|o| graph_root(&o.stderr));
        let root = root.or_else(|| {
            let info = Command::new(&self.podman[0])
                .args(&self.podman[1..])
                .args(["info", "--format", "{{.Store.GraphRoot}}"])
                .output()
                .ok()
                .filter(|o| o.status.success())?;
            Some(PathBuf::from(String::from_utf8_lossy(&info.stdout).trim()))
        });
        let (podman, version) = podman_check(&self.podman, out);
        Machine {
            podman,
            version,
            disk: disk_check(root),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(Ok(mut child)) = self.version.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The storage path in podman's debug log: `... msg="Using graph root /var/lib/containers/storage"`.
fn graph_root(log: &[u8]) -> Option<PathBuf> {
    let log = String::from_utf8_lossy(log);
    let at = log.find("Using graph root ")? + "Using graph root ".len();
    let path = log[at..].split(['"', '\n']).next()?.trim();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// The machine's checks, and the plan's (foreign platforms, registries) when there is one.
/// `network` adds the registry reachability checks, which may take seconds offline.
pub fn checks(podman: &[String], plan: Option<&Plan>, network: bool) -> Vec<Check> {
    checks_on(Machine::gather(podman), podman, plan, network)
}

/// [`checks`], with the machine's part gathered already.
pub fn checks_on(
    machine: Machine,
    podman: &[String],
    plan: Option<&Plan>,
    network: bool,
) -> Vec<Check> {
    let Machine {
        podman: podman_check,
        version,
        disk,
    } = machine;
    let mut out = vec![podman_check, isolation_check()];
    if let Some(plan) = plan {
        out.extend(platform_checks(plan, &Platform::host()));
        let (checks, nodes) = node_checks(podman, plan);
        out.extend(checks);
        let versions = features::Versions {
            local: version.as_deref(),
            nodes: &nodes,
        };
        out.extend(features::checks(plan, &versions));
        out.extend(syft::checks(plan));
        if network {
            // `mab run` opens the key itself before it starts: only `mab doctor` checks it here.
            out.extend(signing::check(plan));
            let mut registries: Vec<&str> = plan
                .manifests
                .iter()
                .filter(|m| m.push)
                .map(|m| m.repository.registry())
                .collect();
            registries.sort();
            registries.dedup();
            for r in registries {
                out.push(reachable_check(r));
                out.push(credentials_check(r));
            }
        }
    }
    out.push(disk);
    out
}

/// Whether podman runs, and its version.
fn podman_check(podman: &[String], out: std::io::Result<Output>) -> (Check, Option<String>) {
    let check = match out {
        Ok(o) if o.status.success() => {
            let version = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let check = Check::pass(format!("podman {version} ({})", podman[0]));
            return (check, Some(version));
        }
        Ok(o) => Check::fail(
            format!(
                "`{} version` failed: {}",
                podman[0],
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            "check podman's own configuration (`podman info`), or MAB_PODMAN",
        ),
        Err(_) => Check::fail(
            format!("podman not found (`{}`)", podman[0]),
            "install it (Debian/Ubuntu: `apt-get install podman`), or point MAB_PODMAN at it",
        ),
    };
    (check, None)
}

/// One line per platform other than the machine's that the plan builds or runs steps on:
/// an emulator where RUN steps run on it, none where the builds are cross-compiled.
fn platform_checks(plan: &Plan, host: &Platform) -> Vec<Check> {
    let foreign = |p: &&Platform| p.os() != host.os() || p.arch() != host.arch();
    let native = |p: &Platform| crate::native::native(host, p).flatten();
    // A build on another node emulates there, if at all: the node checks say so.
    let here = || plan.builds.iter().filter(|b| b.publish.is_none());
    let emulated: BTreeSet<&Platform> = here().flat_map(|b| b.emulated(host)).collect();
    let targets = here().map(|b| &b.platform).filter(foreign);
    let all: BTreeSet<&Platform> = targets.chain(emulated.iter().copied()).collect();
    let mut handlers = BTreeSet::new();
    let mut out = Vec::new();
    for p in all {
        let os = p.os();
        if let Some(companion) = native(p) {
            out.push(Check::pass(format!(
                "{p}: runs natively here, no emulator needed ({})",
                match companion {
                    Companion::Ia32Emulation => "an amd64 Linux kernel runs i386 code, and this one is not booted or built without it",
                    Companion::Aarch32 => "this arm64 processor and kernel run 32-bit code: `setarch linux32` works",
                }
            )));
        } else if !emulated.contains(p) {
            let how = if os == "linux" {
                "none of its builds runs a step on it"
            } else {
                "none of its builds runs a step on it, so podman on Linux assembles it"
            };
            out.push(Check::pass(format!(
                "{p}: cross-compiled, no emulator needed ({how})"
            )));
        } else if os != "linux" {
            out.push(Check::fail(
                format!("{p}: its builds RUN steps on {os}, which podman on Linux cannot run (qemu emulates processors, not operating systems)"),
                format!("cross-compile: run the steps in a `FROM --platform=$BUILDPLATFORM` stage and COPY the result into a `FROM scratch` stage, or build {p} on a {os} machine"),
            ));
        } else if handlers.insert(qemu_name(p.arch()).to_string()) {
            out.push(binfmt_check(p));
        }
    }
    out
}

/// Per build node other than this machine: whether its podman answers, its version and its
/// platform against those it claims to build natively; and the versions of those that answered,
/// by node name, which the features of their builds are judged by. Nodes are asked side by side.
fn node_checks(podman: &[String], plan: &Plan) -> (Vec<Check>, BTreeMap<String, String>) {
    let remote: Vec<&crate::plan::PlanNode> = plan
        .nodes
        .iter()
        .filter(|n| !n.podman_args.is_empty())
        .collect();
    std::thread::scope(|s| {
        let asked: Vec<_> = remote
            .iter()
            .map(|n| s.spawn(move || (n.name.clone(), node_check(podman, n))))
            .collect();
        let mut checks = Vec::new();
        let mut versions = BTreeMap::new();
        for a in asked {
            let (name, (c, version)) = a.join().expect("a node check does not panic");
            checks.extend(c);
            versions.extend(version.map(|v| (name, v)));
        }
        (checks, versions)
    })
}

/// The checks of one node, and its podman version if it answered.
fn node_check(podman: &[String], node: &crate::plan::PlanNode) -> (Vec<Check>, Option<String>) {
    let what = format!("node {} ({})", node.name, node.address);
    // A node that does not answer must not hang the run: 20 s, as `timeout` counts them.
    let out = Command::new("timeout")
        .arg("20")
        .args(podman)
        .args(&node.podman_args)
        .args([
            "info",
            "--format",
            "{{.Version.Version}}|{{.Host.OS}}/{{.Host.Arch}}|{{.Store.GraphRootAllocated}}|{{.Store.GraphRootUsed}}",
        ])
        .output();
    let answer = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => {
            let said = String::from_utf8_lossy(&o.stderr);
            let line = said
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no answer in 20 s");
            return (
                vec![Check::fail(
                    format!("{what}: unreachable: {}", line.trim()),
                    "start podman's API on it (`systemctl enable --now podman.socket`, or `podman system service --time=0 URL`), and check its url, connection or identity",
                )],
                None,
            );
        }
        Err(e) => {
            return (
                vec![Check::fail(
                    format!("{what}: cannot run `{}`: {e}", podman[0]),
                    "install podman here: it is the client of every node",
                )],
                None,
            );
        }
    };
    let mut fields = answer.split('|');
    let (version, platform) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
    let bytes = |f: Option<&str>| f.and_then(|n| n.trim().parse::<u64>().ok());
    let free = bytes(fields.next())
        .zip(bytes(fields.next()))
        .map(|(total, used)| total.saturating_sub(used) as f64 / (1u64 << 30) as f64);
    let Ok(own) = platform.parse::<Platform>() else {
        return (
            vec![Check::warn(
                format!("{what}: podman {version}, on a platform it does not say (`{platform}`)"),
                "check the node's podman (`podman info`)",
            )],
            Some(version.to_string()),
        );
    };
    let mut out = vec![Check::pass(format!("{what}: podman {version} on {own}"))];
    out.push(match free {
        Some(gib) => free_space_check(format!("{what}: {gib:.1} GiB free for its storage"), gib),
        None => Check::warn(
            format!("{what}: free space of its storage unknown"),
            "check it on the node: `podman info`",
        ),
    });
    for p in &node.platforms {
        if p.os() != own.os() || p.arch() != own.arch() {
            out.push(Check::warn(
                format!("{what} claims {p} natively, but is {own}: it builds {p} through an emulator, slower, if it has one"),
                format!("list {p} under `emulates` of that node, or point the node at an {} machine", p.arch()),
            ));
        }
    }
    (out, Some(version.to_string()))
}

/// podman's default (OCI) isolation needs a cgroup layout it supports; on a hybrid cgroup v1/v2
/// host it fails with "cgroups in hybrid mode not supported" and chroot isolation works.
fn isolation_check() -> Check {
    let hybrid = Path::new("/sys/fs/cgroup/unified").is_dir()
        && !Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let chosen = std::env::var("BUILDAH_ISOLATION").unwrap_or_default();
    match (hybrid, chosen.as_str()) {
        (true, "chroot") => Check::pass(
            "build isolation: chroot (BUILDAH_ISOLATION), which works with this host's hybrid cgroups",
        ),
        (true, _) => Check::fail(
            "build isolation: this host has hybrid cgroups, where podman's default isolation fails (\"cgroups in hybrid mode not supported\")",
            "export BUILDAH_ISOLATION=chroot",
        ),
        (false, "") => Check::pass("build isolation: podman's default"),
        (false, other) => Check::pass(format!("build isolation: {other} (BUILDAH_ISOLATION)")),
    }
}

/// The name qemu-user-static registers its handler under for an OCI architecture.
fn qemu_name(arch: &str) -> &str {
    match arch {
        "arm64" => "aarch64",
        "amd64" => "x86_64",
        "386" => "i386",
        "loong64" => "loongarch64",
        "mips64le" => "mips64el",
        "mipsle" => "mipsel",
        other => other,
    }
}

/// Where binfmt_misc shows registered handlers, and where systemd-binfmt reads the ones
/// installed packages (qemu-user-static, binfmt-support) ship.
const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";
const BINFMT_D: [&str; 3] = ["/etc/binfmt.d", "/run/binfmt.d", "/usr/lib/binfmt.d"];

/// A registered, enabled handler is what makes a foreign platform work; an installed one that
/// is not registered (or disabled) needs registering, not installing.
fn binfmt_check(platform: &Platform) -> Check {
    let name = qemu_name(platform.arch());
    let entry = PathBuf::from(BINFMT_MISC).join(format!("qemu-{name}"));
    let state = std::fs::read_to_string(&entry).ok();
    if state
        .as_deref()
        .is_some_and(|s| s.lines().next() == Some("enabled"))
    {
        return Check::pass(format!(
            "{platform}: emulated by the qemu-{name} binfmt handler"
        ));
    }
    let what =
        |why: &str| format!("{platform}: {why}, so its RUN steps fail with \"exec format error\"");
    if state.is_some() {
        return Check::fail(
            what(&format!(
                "the binfmt handler qemu-{name} is registered but disabled"
            )),
            format!("enable it: `echo 1 | sudo tee {}`", entry.display()),
        );
    }
    let installed = BINFMT_D
        .iter()
        .map(|d| PathBuf::from(d).join(format!("qemu-{name}.conf")))
        .find(|f| f.is_file());
    if let Some(conf) = installed {
        let mount = if Path::new(BINFMT_MISC).join("register").exists() {
            String::new()
        } else {
            format!("`sudo mount -t binfmt_misc binfmt_misc {BINFMT_MISC}`, then ")
        };
        return Check::fail(
            what(&format!(
                "the binfmt handler qemu-{name} is installed ({}) but not registered",
                conf.display()
            )),
            format!(
                "register it: {mount}`sudo systemctl restart systemd-binfmt`, or without systemd \
                 `grep -v '^[#;]' {} | sudo tee {BINFMT_MISC}/register`; then {} exists",
                conf.display(),
                entry.display()
            ),
        );
    }
    Check::fail(
        what(&format!("no binfmt handler for {name}")),
        format!(
            "install qemu-user-static (Debian/Ubuntu: `apt-get install qemu-user-static`), or register handlers as \
             tonistiigi/binfmt --install all does; then {} exists",
            entry.display()
        ),
    )
}

fn reachable_check(registry: &str) -> Check {
    let addr = if registry.contains(':') {
        registry.to_string()
    } else {
        format!("{registry}:443")
    };
    let connected = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    if connected {
        Check::pass(format!("registry {registry} reachable"))
    } else {
        Check::warn(
            format!("registry {registry} not reachable from here"),
            "check the network, or the registry's address",
        )
    }
}

/// Where podman and docker keep registry logins, first match wins (never printed).
fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(f) = std::env::var("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Ok(d) = std::env::var("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(d).join("containers/auth.json"));
    }
    files.push(PathBuf::from(format!(
        "/run/containers/{}/auth.json",
        rustix::process::getuid().as_raw()
    )));
    if let Some(home) = std::env::home_dir() {
        files.push(home.join(".config/containers/auth.json"));
        files.push(home.join(".docker/config.json"));
    }
    files
}

/// Whether an `auths` key (`host[:port]`, optionally as a URL with a path) names `registry`
/// exactly: `ghcr.io` is not `ghcr.io.example.com`.
fn names_registry(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    host == registry || (registry == "docker.io" && host == "index.docker.io")
}

fn credentials_check(registry: &str) -> Check {
    for file in auth_files() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let keys = |field: &str| {
            json[field]
                .as_object()
                .is_some_and(|a| a.keys().any(|k| names_registry(k, registry)))
        };
        if keys("auths") || keys("credHelpers") {
            return Check::pass(format!("credentials for {registry} in {}", file.display()));
        }
        if let Some(store) = json["credsStore"].as_str() {
            return Check::pass(format!(
                "credentials for {registry} may come from the credential store `{store}` ({})",
                file.display()
            ));
        }
    }
    Check::warn(
        format!("no credentials for {registry} (fine for a registry that needs none)"),
        format!("podman login {registry}"),
    )
}

/// The free space where podman says its storage is (`root`, if it said).
fn disk_check(root: Option<PathBuf>) -> Check {
    let root = root
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from("/var/lib/containers/storage"));
    let probe = root
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let Ok(st) = rustix::fs::statvfs(probe) else {
        return Check::warn(
            "free disk space: unknown",
            "check podman's storage location",
        );
    };
    let free_gib = (st.f_bavail as f64 * st.f_frsize as f64) / (1u64 << 30) as f64;
    free_space_check(
        format!(
            "{free_gib:.1} GiB free for podman's storage ({})",
            root.display()
        ),
        free_gib,
    )
}

/// `what` (a line saying how much is free) as a pass, a warning (under 5 GiB) or a failure
/// (under 1 GiB).
fn free_space_check(what: String, free_gib: f64) -> Check {
    match free_gib {
        g if g < 1.0 => Check::fail(
            what,
            "free space: `podman system prune`, or move podman's storage",
        ),
        g if g < 5.0 => Check::warn(what, "builds may run out of space: `podman system prune`"),
        _ => Check::pass(what),
    }
}

pub fn blocking(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.level == Level::Fail)
}

/// One line per check, and the fix under each that is not a pass.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let mark = match c.level {
            Level::Pass => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        out.push_str(&format!("{mark} {}\n", c.what));
        if let (Some(fix), false) = (&c.fix, c.level == Level::Pass) {
            out.push_str(&format!("     fix: {fix}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_root_from_podmans_debug_log() {
        let log = b"time=\"2026-12-01T14:06:49Z\" level=debug msg=\"Using graph driver overlay\"\ntime=\"2026-12-01T14:06:49Z\" level=debug msg=\"Using graph root /var/lib/containers/storage\"\n";
        assert_eq!(
            graph_root(log),
            Some(PathBuf::from("/var/lib/containers/storage"))
        );
        assert_eq!(
            graph_root(b"level=debug msg=\"Called version.PersistentPreRunE\"\n"),
            None
        );
    }

    #[test]
    fn qemu_names() {
        assert_eq!(qemu_name("arm64"), "aarch64");
        assert_eq!(qemu_name("arm"), "arm");
        assert_eq!(qemu_name("s390x"), "s390x");
    }

    #[test]
    fn registry_hosts_match_exactly() {
        assert!(names_registry("ghcr.io", "ghcr.io"));
        assert!(names_registry("https://ghcr.io/v2/", "ghcr.io"));
        assert!(!names_registry("ghcr.io.example.com", "ghcr.io"));
        assert!(!names_registry("ghcr.io", "ghcr.io:5000"));
        assert!(names_registry("https://index.docker.io/v1/", "docker.io"));
    }

    #[test]
    fn a_missing_podman_fails_with_the_fix() {
        let machine = Machine::gather(&["/nonexistent/podman".into()]);
        let (c, version) = (machine.podman, machine.version);
        assert_eq!(version, None);
        assert_eq!(c.level, Level::Fail);
        assert!(c.fix.unwrap().contains("apt-get install podman"));
    }
}
