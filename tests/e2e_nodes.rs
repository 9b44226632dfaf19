//! Build nodes end to end: two podman API services on this machine, each with storage of its
//! own, as an amd64 node and an arm64 node (emulated here, declared native), reached through
//! `unix://` sockets; a real registry on 127.0.0.1. Needs what scripts/test-env.sh sets up and
//! `MAB_E2E=1` (see tests/e2e.rs).

use crate::common;

use common::text;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::registry::Registry;
use common::{Project, wait_at_most};

/// A `podman system service` with its own storage, stopped when dropped.
struct Service {
    child: Child,
    dir: tempfile::TempDir,
}

impl Service {
    /// Starts one and loads `image` (this machine's `arch` image of the test base) into it as
    /// `localhost/mab-node/busybox:latest`.
    fn start(arch: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("podman.sock");
        let child = Command::new("podman")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("runroot"))
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", sock.display()))
            .env("BUILDAH_ISOLATION", "chroot")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service starts");
        let service = Self { child, dir };
        wait_at_most(Duration::from_secs(60), "the service answers", || {
            service.podman(&["version"]).status.success()
        });
        let archive = service.dir.path().join("base.tar");
        let tag = format!("localhost/mab-test/busybox:{arch}");
        let saved = Command::new("podman")
            .args(["save", "-o"])
            .arg(&archive)
            .arg(&tag)
            .output()
            .unwrap();
        assert!(
            saved.status.success(),
            "{}",
            String::from_utf8_lossy(&saved.stderr)
        );
        let loaded = service.podman(&["load", "-i", archive.to_str().unwrap()]);
        assert!(
            loaded.status.success(),
            "{}",
            String::from_utf8_lossy(&loaded.stderr)
        );
        let tagged = service.podman(&["tag", &tag, "localhost/mab-node/busybox:latest"]);
        assert!(
            tagged.status.success(),
            "{}",
            String::from_utf8_lossy(&tagged.stderr)
        );
        service
    }

    fn url(&self) -> String {
        format!("unix://{}", self.dir.path().join("podman.sock").display())
    }

    fn podman(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .arg("--url")
            .arg(self.url())
            .args(args)
            .output()
            .unwrap()
    }

    fn has(&self, image: &str) -> bool {
        self.podman(&["image", "exists", image]).status.success()
    }
}

/// sshd on 127.0.0.1 with a host key and a client key made for the test, so that a node can be
/// `ssh://USER@127.0.0.1:PORT/path/of/a/service.sock`; stopped when dropped.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keygen = |name: &str| {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.path().join(name))
                .status()
                .unwrap()
                .success();
            assert!(ok, "ssh-keygen");
        };
        keygen("host_key");
        keygen("id");
        std::fs::copy(
            dir.path().join("id.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PidFile {d}/sshd.pid\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nAllowStreamLocalForwarding yes\n"
            ),
        )
        .unwrap();
        // sshd wants its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(dir.path().join("sshd_config"))
            .arg("-E")
            .arg(dir.path().join("sshd.log"))
            .spawn()
            .expect("sshd starts (scripts/test-env.sh installs openssh-server)");
        wait_at_most(Duration::from_secs(30), "sshd listens", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { child, port, dir }
    }

    /// The node url of `service` through this sshd.
    fn url(&self, service: &Service) -> String {
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            user.trim(),
            self.port,
            service.dir.path().join("podman.sock").display()
        )
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("id")
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config pushing to `host` with the two nodes, and `images`.
fn config(host: &str, amd: &Service, arm: &Service, images: &str) -> String {
    format!(
        "[defaults]\nregistry = \"{host}/nodes\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n\
         [registries.\"{host}\"]\ninsecure = true\n\n\
         [nodes.amd]\nurl = \"{}\"\nplatforms = [\"linux/amd64\"]\n\n\
         [nodes.arm]\nurl = \"{}\"\nplatforms = [\"linux/arm64\"]\n\n{images}",
        amd.url(),
        arm.url()
    )
}

/// One test at a time, with a fresh registry and the two nodes: amd64 and arm64.
fn nodes() -> (
    std::sync::MutexGuard<'static, ()>,
    Registry,
    Service,
    Service,
) {
    let serial = common::e2e_serial();
    (
        serial,
        Registry::start(),
        Service::start("amd64"),
        Service::start("arm64"),
    )
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn each_platform_builds_on_its_node_and_the_lists_join_them() {
    let (_serial, registry, amd, arm) = nodes();
    let host = registry.host();
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &config(
            &host,
            &amd,
            &arm,
            "[images.node-base]\ncontext = \"base\"\n\n[images.node-app]\ncontext = \"app\"\n",
        ),
    );
    p.file(
        "base/Dockerfile",
        "FROM localhost/mab-node/busybox:latest\nRUN uname -m > /base-arch\n",
    );
    p.file(
        "app/Dockerfile",
        &format!("FROM {host}/nodes/node-base:1\nRUN uname -m > /app-arch\n"),
    );
    let report_path: PathBuf = p.path().join("report.json");
    let out = p
        .mab(&[
            "run",
            "--progress",
            "plain",
            "--report",
            report_path.to_str().unwrap(),
        ])
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report = report(&report_path);

    // Every list holds both platforms, and each file written by `uname -m` reads right.
    for image in ["node-base", "node-app"] {
        let index = registry.raw(&format!("{host}/nodes/{image}:1")).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{image}");
    }
    let app = format!("{host}/nodes/node-app:1");
    for (arch, uname) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        let platform = ("linux", arch, None);
        assert_eq!(
            registry.read_file(&app, platform, "/app-arch").as_deref(),
            Some(uname)
        );
        assert_eq!(
            registry.read_file(&app, platform, "/base-arch").as_deref(),
            Some(uname)
        );
    }

    // Each node's storage holds its own platform's images only, and this machine's none of
    // them.
    assert!(amd.has("localhost/mab/node-app:linux-amd64"));
    assert!(!amd.has("localhost/mab/node-app:linux-arm64"));
    assert!(arm.has("localhost/mab/node-app:linux-arm64"));
    assert!(!arm.has("localhost/mab/node-base:linux-amd64"));
    for b in report["builds"].as_array().unwrap() {
        let id = b["image_id"].as_str().unwrap();
        let here = Command::new("podman")
            .args(["image", "exists", id])
            .status()
            .unwrap();
        assert!(!here.success(), "{} is in this machine's storage", b["id"]);
        // And the list holds the digest its node pushed.
        let published = b["published"].as_str().unwrap();
        let digest = published.rsplit_once('@').unwrap().1;
        let image = b["image"].as_str().unwrap();
        let index = registry.raw(&format!("{host}/nodes/{image}:1")).unwrap();
        assert!(
            index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["digest"] == digest),
            "{published} is not in {image}'s index"
        );
    }
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_node_that_dies_mid_build_fails_its_builds_by_name_and_nothing_is_published() {
    use common::SpawnCaptured;
    let (_serial, registry, amd, mut arm) = nodes();
    let host = registry.host();
    let marker = format!("mab-node-dies-{}", std::process::id());
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &config(
            &host,
            &amd,
            &arm,
            "[images.node-slow]\ncontext = \".\"\n[images.node-slow.platform.\"linux/arm64\"]\nargs = { HOLD = \"yes\" }\n",
        ),
    );
    p.file(
        "Dockerfile",
        &format!("FROM localhost/mab-node/busybox:latest\nARG HOLD=no\nRUN echo {marker}-$HOLD && if [ $HOLD = yes ]; then while :; do sleep 1; done; fi\n"),
    );
    let child = p
        .mab(&["run", "--progress", "plain"])
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .spawn_captured();
    // The arm64 build is running on its node once its log shows the RUN step's line.
    let log_says = |what: &str| {
        std::fs::read_dir(p.path().join(".mab/runs"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|run| {
                std::fs::read_to_string(run.path().join("node-slow@linux-arm64.log"))
                    .is_ok_and(|l| l.contains(what))
            })
    };
    wait_at_most(
        Duration::from_secs(120),
        "the arm64 RUN step started",
        || log_says(&format!("{marker}-yes")),
    );
    // The node goes away.
    let _ = arm.child.kill();
    let _ = arm.child.wait();
    let out = child.wait_with_output().unwrap();
    // The orphaned RUN step is the dead node's; not this test's to leave behind.
    let _ = Command::new("pkill").args(["-f", &marker]).status();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("on node arm:"),
        "the failure does not name the node:\n{said}"
    );
    assert!(
        registry.raw(&format!("{host}/nodes/node-slow:1")).is_none(),
        "a partial list was pushed"
    );
    // No client of the run is left talking to the dead node.
    let clients = Command::new("pgrep")
        .args(["-f", "-a", &arm.url()])
        .output()
        .unwrap();
    // pgrep exits 1 when nothing matches (2 or 3 would be its own error).
    assert_eq!(
        clients.status.code(),
        Some(1),
        "still running: {}",
        String::from_utf8_lossy(&clients.stdout)
    );
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn nodes_are_reached_over_ssh_too() {
    let (_serial, registry, amd, arm) = nodes();
    let host = registry.host();
    let sshd = Sshd::start();
    let p = Project::new();
    let key = sshd.key();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nregistry = \"{host}/ssh\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n\
             [registries.\"{host}\"]\ninsecure = true\n\n\
             [nodes.amd]\nurl = \"{}\"\nidentity = \"{}\"\nplatforms = [\"linux/amd64\"]\n\n\
             [nodes.arm]\nurl = \"{}\"\nidentity = \"{}\"\nplatforms = [\"linux/arm64\"]\n\n\
             [images.ssh-app]\ncontext = \".\"\n",
            sshd.url(&amd),
            key.display(),
            sshd.url(&arm),
            key.display()
        ),
    );
    p.file(
        "Dockerfile",
        "FROM localhost/mab-node/busybox:latest\nRUN uname -m > /arch\n",
    );
    // A home of its own: podman keeps the host keys it meets in ~/.ssh/known_hosts.
    let home = tempfile::tempdir().unwrap();
    // The key is outside the project, as keys are: the command line allows it.
    let allow = format!("fs.read={}", key.display());
    let out = p
        .mab(&["run", "--progress", "plain", "--allow", &allow])
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let image = format!("{host}/ssh/ssh-app:1");
    for (arch, uname) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        let got = registry.read_file(&image, ("linux", arch, None), "/arch");
        assert_eq!(got.as_deref(), Some(uname), "{arch}");
    }
    assert!(amd.has("localhost/mab/ssh-app:linux-amd64"));
    assert!(arm.has("localhost/mab/ssh-app:linux-arm64"));
    assert!(!arm.has("localhost/mab/ssh-app:linux-amd64"));
}

/// The content check of builds on other nodes reads their layers from the registry: an arm64
/// image built on the arm64 node that carries an x86-64 binary fails the run with the path and
/// both machines, and nothing is published; allowed, the run passes and the report counts the
/// file of the build's own layer only (not the base's busybox), and the amd64 build on the
/// other node is checked clean.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn builds_on_other_nodes_are_checked_from_the_registry() {
    let (_serial, registry, amd, arm) = nodes();
    let host = registry.host();
    let p = Project::new();
    let images = "[images.node-check]\ncontext = \".\"\n";
    p.file("multiarch.toml", &config(&host, &amd, &arm, images));
    p.file(
        "Dockerfile",
        "FROM localhost/mab-node/busybox:latest\nCOPY tool /usr/local/bin/tool\n",
    );
    // An x86-64 binary: right for the amd64 image, wrong for the arm64 one.
    std::fs::copy("/usr/bin/qemu-aarch64-static", p.path().join("tool")).unwrap();
    let report_path: PathBuf = p.path().join("report.json");
    let run = || {
        p.mab(&[
            "run",
            "--progress",
            "plain",
            "--report",
            report_path.to_str().unwrap(),
        ])
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .output()
        .unwrap()
    };
    let out = run();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("/usr/local/bin/tool"), "{said}");
    assert!(said.contains("x86-64"), "{said}");
    assert!(said.contains("AArch64"), "{said}");
    assert!(
        registry
            .raw(&format!("{host}/nodes/node-check:1"))
            .is_none(),
        "a list was pushed"
    );

    p.file(
        "multiarch.toml",
        &format!(
            "{}[check]\nallow = [\"/usr/local/bin/tool\"]\n",
            config(&host, &amd, &arm, images)
        ),
    );
    let out = run();
    assert!(out.status.success(), "{}", text(&out));
    let report = report(&report_path);
    let check = |platform: &str| {
        let builds = report["builds"].as_array().unwrap();
        let b = builds
            .iter()
            .find(|b| b["id"] == format!("node-check@{platform}"))
            .unwrap_or_else(|| panic!("no {platform} build in {report:#}"));
        assert!(b["published"].is_string(), "built on a node: {b:#}");
        eprintln!(
            "content check of {platform} from the registry: {} ms",
            b["content"]["check_ms"]
        );
        b["content"]["check"].clone()
    };
    let arm64 = check("linux-arm64");
    assert_eq!(arm64["status"], "checked", "{report:#}");
    assert_eq!(
        (&arm64["files"], &arm64["elf"], &arm64["allowed"]),
        (&1.into(), &1.into(), &1.into()),
        "{arm64:#}"
    );
    let amd64 = check("linux-amd64");
    assert_eq!(amd64["status"], "checked", "{report:#}");
    assert_eq!(
        (&amd64["files"], &amd64["elf"], &amd64["allowed"]),
        (&1.into(), &1.into(), &0.into()),
        "{amd64:#}"
    );
    assert_eq!(amd64["mismatches"], serde_json::json!([]), "{amd64:#}");
}

/// syft's SBOM of a build on another node is made from the image copied from the registry
/// (`syft scan oci-dir:`), and attached beside the list like a local build's.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn syft_sboms_of_builds_on_other_nodes_come_from_the_registry_copy() {
    let (_serial, registry, amd, arm) = nodes();
    let host = registry.host();
    let p = Project::new();
    let images = "[images.node-sbom]\ncontext = \".\"\n\n[sbom]\ngenerator = \"syft\"\nformat = \"spdx-json\"\n";
    p.file("multiarch.toml", &config(&host, &amd, &arm, images));
    p.file(
        "Dockerfile",
        "FROM localhost/mab-node/busybox:latest\nCOPY status /var/lib/dpkg/status\n",
    );
    p.file(
        "status",
        "Package: hello\nStatus: install ok installed\nArchitecture: all\nVersion: 2.10-3\n",
    );
    let report_path: PathBuf = p.path().join("report.json");
    let out = p
        .mab(&[
            "run",
            "--progress",
            "plain",
            "--report",
            report_path.to_str().unwrap(),
        ])
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report = report(&report_path);
    for b in report["builds"].as_array().unwrap() {
        assert!(b["published"].is_string(), "built on a node: {b:#}");
        let sbom = &b["content"]["sbom"];
        assert_eq!(sbom["generator"], "syft", "{b:#}");
        assert!(sbom["bytes"].as_u64().unwrap() > 0, "{b:#}");
        eprintln!(
            "syft SBOM of {} from the registry copy: {} ms",
            b["id"], sbom["ms"]
        );
    }
    // Each platform image has it attached: its fallback index lists an SPDX document.
    let index = registry.raw(&format!("{host}/nodes/node-sbom:1")).unwrap();
    for m in index["manifests"].as_array().unwrap() {
        let hex = m["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let fallback = registry
            .raw(&format!("{host}/nodes/node-sbom:sha256-{hex}"))
            .unwrap_or_else(|| panic!("no fallback index for {m}"));
        assert!(
            fallback.to_string().contains("application/spdx+json"),
            "{fallback:#}"
        );
    }
}

/// The document an artifact in the registry carries (its one layer), and that layer's digest:
/// copied out with skopeo, digests kept.
fn artifact_document(reference: &str) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--preserve-digests", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", dir.path().display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let bytes = std::fs::read(dir.path().join(layer.trim_start_matches("sha256:"))).unwrap();
    (serde_json::from_slice(&bytes).unwrap(), layer.to_string())
}

/// mab's own SBOM of a build on another node is made from the layers of the image copied from
/// the registry, all of them (the base's busybox too), and attached to that platform's image
/// like a local build's.
#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn builtin_sboms_of_builds_on_other_nodes_are_read_from_the_registry_layers() {
    let (_serial, registry, amd, arm) = nodes();
    let host = registry.host();
    let p = Project::new();
    let images = "[images.node-bsbom]\ncontext = \".\"\n\n[sbom]\ngenerator = \"builtin\"\nformat = \"cyclonedx-json\"\n";
    p.file("multiarch.toml", &config(&host, &amd, &arm, images));
    // A file one layer adds and a later one deletes (a whiteout): the SBOM must not list it.
    p.file(
        "Dockerfile",
        "FROM localhost/mab-node/busybox:latest\nCOPY status /var/lib/dpkg/status\nCOPY os-release /etc/os-release\nCOPY status /tmp/gone\nRUN rm /tmp/gone\n",
    );
    p.file(
        "status",
        "Package: hello\nStatus: install ok installed\nArchitecture: all\nVersion: 2.10-3\n",
    );
    p.file("os-release", "ID=debian\nVERSION_ID=\"12\"\n");
    let report_path: PathBuf = p.path().join("report.json");
    let out = p
        .mab(&[
            "run",
            "--progress",
            "plain",
            "--report",
            report_path.to_str().unwrap(),
        ])
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report = report(&report_path);
    let mut made = Vec::new();
    for b in report["builds"].as_array().unwrap() {
        assert!(b["published"].is_string(), "built on a node: {b:#}");
        let sbom = &b["content"]["sbom"];
        assert_eq!(sbom["generator"], "builtin", "{b:#}");
        eprintln!(
            "builtin SBOM of {} from the registry copy: {} ms",
            b["id"], sbom["ms"]
        );
        made.push(sbom["digest"].as_str().unwrap().to_string());
    }
    // Each platform image has its own attached: found through the fallback index of its
    // digest, and it describes that image's file system.
    let index = registry.raw(&format!("{host}/nodes/node-bsbom:1")).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for m in entries {
        let digest = m["digest"].as_str().unwrap();
        let platform = format!(
            "{}/{}",
            m["platform"]["os"].as_str().unwrap(),
            m["platform"]["architecture"].as_str().unwrap()
        );
        let hex = digest.trim_start_matches("sha256:");
        let fallback = registry
            .raw(&format!("{host}/nodes/node-bsbom:sha256-{hex}"))
            .unwrap_or_else(|| panic!("no fallback index for {m}"));
        let artifacts = fallback["manifests"].as_array().unwrap();
        assert_eq!(artifacts.len(), 1, "{fallback:#}");
        assert_eq!(
            artifacts[0]["annotations"]["dev.mab.artifact-type"], "application/vnd.cyclonedx+json",
            "{fallback:#}"
        );
        let artifact = artifacts[0]["digest"].as_str().unwrap();
        let (doc, layer) = artifact_document(&format!("{host}/nodes/node-bsbom@{artifact}"));
        // The document the build's SBOM step made (the report's digest) is what is attached.
        assert!(made.contains(&layer), "{platform}: {layer} not in {made:?}");
        assert_eq!(doc["bomFormat"], "CycloneDX");
        let comps = doc["components"].as_array().unwrap();
        let purls: Vec<&str> = comps.iter().filter_map(|c| c["purl"].as_str()).collect();
        assert!(
            purls.contains(&"pkg:deb/debian/hello@2.10-3?arch=all&distro=debian-12"),
            "{platform}: {purls:?}"
        );
        let files: Vec<&str> = comps
            .iter()
            .filter(|c| c["type"] == "file")
            .filter_map(|c| c["name"].as_str())
            .collect();
        for path in ["/bin/busybox", "/var/lib/dpkg/status", "/etc/os-release"] {
            assert!(files.contains(&path), "{platform}: {path} not in {files:?}");
        }
        assert!(!files.contains(&"/tmp/gone"), "{platform}: {files:?}");
    }
}
