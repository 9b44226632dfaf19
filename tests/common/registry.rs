//! A real registry on 127.0.0.1, started for a test and stopped when dropped: Debian's
//! docker-registry, or (for the referrers API, which it lacks) tests/referrers-registry.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// tests/referrers-registry as scripts/test-env.sh installs it.
pub const REFERRERS_REGISTRY: &str = "/var/cache/mab/referrers-registry/bin/mab-referrers-registry";

/// Which registry serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// docker-registry 2.8.2: no referrers API (404).
    Distribution,
    /// ferro-oci-server (tests/referrers-registry): OCI Distribution 1.1 with the referrers API.
    /// It keeps manifests in memory: a [`Registry::resume`] starts it empty.
    Referrers,
}

pub struct Registry {
    pub port: u16,
    dir: TempDir,
    kind: Kind,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Registry {
    pub fn start() -> Self {
        Self::start_kind(Kind::Distribution)
    }

    /// A registry that has the OCI 1.1 referrers API (tests/referrers-registry).
    pub fn start_with_referrers() -> Self {
        Self::start_kind(Kind::Referrers)
    }

    fn start_kind(kind: Kind) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write registry config");
        // For podman: this registry speaks plain HTTP.
        let conf = format!("[[registry]]\nlocation = \"127.0.0.1:{port}\"\ninsecure = true\n");
        std::fs::write(dir.path().join("registries.conf"), conf).expect("write registries.conf");
        let mut r = Self {
            port,
            dir,
            kind,
            child: None,
        };
        r.resume();
        r
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A registries.conf that marks this registry insecure, for `CONTAINERS_REGISTRIES_CONF`.
    pub fn registries_conf(&self) -> PathBuf {
        self.dir.path().join("registries.conf")
    }

    /// Starts (again) serving on the same port and storage.
    pub fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).expect("log");
        let mut cmd = match self.kind {
            Kind::Distribution => {
                let mut cmd = Command::new("docker-registry");
                cmd.arg("serve").arg(self.dir.path().join("config.yml"));
                cmd
            }
            Kind::Referrers => {
                let data = self.dir.path().join("data");
                std::fs::create_dir_all(&data).expect("registry storage");
                let mut cmd = Command::new(REFERRERS_REGISTRY);
                cmd.arg(self.port.to_string())
                    .arg(data)
                    .env("RUST_LOG", "warn");
                cmd
            }
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the registry starts (scripts/test-env.sh installs it)");
        self.child = Some(child);
        let listening = format!("the registry listens on {}", self.port);
        super::wait_at_most(Duration::from_secs(20), &listening, || {
            TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The raw manifest (index) of `reference` as the registry serves it, or `None` if absent.
    pub fn raw(&self, reference: &str) -> Option<serde_json::Value> {
        inspect_raw(reference)
            .ok()
            .map(|bytes| serde_json::from_slice(&bytes).expect("JSON manifest"))
    }

    /// Reads `path` from the `arch` image of `reference`, by copying the pushed image out of
    /// the registry and unpacking its layers (topmost last wins).
    pub fn read_file(
        &self,
        reference: &str,
        os_arch_variant: (&str, &str, Option<&str>),
        path: &str,
    ) -> Option<String> {
        let out = tempfile::tempdir().expect("temp dir");
        let (os, arch, variant) = os_arch_variant;
        let mut args: Vec<String> = [
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--override-os",
            os,
            "--override-arch",
            arch,
        ]
        .map(String::from)
        .to_vec();
        if let Some(v) = variant {
            args.extend(["--override-variant".into(), v.into()]);
        }
        args.extend([
            format!("docker://{reference}"),
            format!("dir:{}", out.path().display()),
        ]);
        let status = Command::new("skopeo")
            .args(&args)
            .status()
            .expect("skopeo runs");
        assert!(
            status.success(),
            "skopeo copy of {reference} for {arch} failed"
        );
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.path().join("manifest.json")).expect("manifest"),
        )
        .expect("JSON");
        let mut found = None;
        for layer in manifest["layers"].as_array().expect("layers") {
            let digest = layer["digest"]
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:");
            if let Some(text) = extract(&out.path().join(digest), path) {
                found = Some(text);
            }
        }
        found
    }
}

fn extract(layer: &Path, path: &str) -> Option<String> {
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(layer)
        .arg("-O")
        .arg(path.trim_start_matches('/'))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The raw bytes `reference` serves, read from its registry with skopeo; it must be there.
pub fn raw_bytes(reference: &str) -> Vec<u8> {
    inspect_raw(reference)
        .unwrap_or_else(|stderr| panic!("{reference} is not in the registry: {stderr}"))
}

/// `skopeo inspect --raw` of `reference` over plain HTTP: the bytes, or what skopeo said.
fn inspect_raw(reference: &str) -> Result<Vec<u8>, String> {
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .expect("skopeo runs");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A git-committed project whose images are pushed to `registry` under `namespace` with `tags`
/// (a TOML array) on amd64 and arm64, each from `from`: none is the test base, a name is that
/// image as pushed (`HOST/NAMESPACE/NAME:1`), so a dependency is read through the registry
/// name. Each copies a file of its own and records its machine.
pub fn chained_project(
    registry: &Registry,
    namespace: &str,
    tags: &str,
    images: &[(&str, Option<&str>)],
) -> super::Project {
    let host = registry.host();
    let p = super::Project::new();
    let mut toml = format!(
        "[defaults]\nregistry = \"{host}/{namespace}\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = {tags}\n\n[registries.\"{host}\"]\ninsecure = true\n"
    );
    for (name, from) in images {
        let from = match from {
            None => super::BASE.to_string(),
            Some(dep) => format!("{host}/{namespace}/{dep}:1"),
        };
        toml.push_str(&format!("\n[images.{name}]\ncontext = \"{name}\"\n"));
        p.file(
            &format!("{name}/Dockerfile"),
            &format!("FROM {from}\nCOPY file /{name}\nRUN uname -m > /{name}-arch\n"),
        );
        p.file(&format!("{name}/file"), name);
    }
    p.file("multiarch.toml", &toml);
    p.git_commit("fixture");
    p
}
