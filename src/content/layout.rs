//! An image copied from a registry into an OCI layout (`skopeo copy docker://REF oci:DIR`):
//! its layers' diff ids, from its config, and its layer blobs, read with [`super::tarball`].
//! How a build on another node, whose storage this machine cannot read, is checked.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::tarball::Visitor;
use crate::plan::{Command, CommandKind};

/// The image of an OCI layout holding one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Its config's digest (`sha256:HEX`): HEX is the image's id, as podman names it.
    pub config: String,
    /// Its config's `created`, if it says.
    pub created: Option<String>,
    /// `rootfs.diff_ids` of its config, bottom first: what podman's `RootFS.Layers` says.
    pub diff_ids: Vec<String>,
    /// Each layer's blob, bottom first, as many as `diff_ids`.
    pub layers: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

#[derive(Deserialize)]
struct Config {
    rootfs: RootFs,
    #[serde(default)]
    created: Option<String>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// `skopeo copy` of `reference` (`REPO@DIGEST`) into the OCI layout `dir`, reaching the
/// registry as pushes do (`insecure`, the registries.conf podman was given).
pub fn copy_command(
    reference: &str,
    dir: &Path,
    insecure: bool,
    registries_conf: Option<&std::ffi::OsStr>,
) -> Command {
    let mut c = Command::new(CommandKind::Copy, ["skopeo"], ["copy", "--quiet"]);
    if insecure {
        c.arg("--src-tls-verify=false");
    }
    // skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF, which podman honours.
    if let Some(conf) = registries_conf {
        c.arg("--registries-conf")
            .arg(conf.to_string_lossy().into_owned());
    }
    c.registry(reference.to_string())
        .arg(format!("oci:{}", dir.display()));
    c
}

/// The podman arguments (after its program and global options) that save the local `image`
/// as an OCI layout at `dir` (uncompressed layers), for a storage driver whose layers are not
/// directories mab reads.
pub fn save_args(image: &str, dir: &Path) -> Vec<String> {
    vec![
        "save".into(),
        "--quiet".into(),
        "--format".into(),
        "oci-dir".into(),
        "-o".into(),
        dir.display().to_string(),
        image.into(),
    ]
}

/// `blobs/ALG/HEX` of `dir` for `digest`; a digest that is not `alg:hex` is refused rather than
/// joined into a path.
fn blob(dir: &Path, digest: &str) -> Result<PathBuf, String> {
    let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    match digest.split_once(':') {
        Some((alg, hex)) if valid(alg) && valid(hex) => Ok(dir.join("blobs").join(alg).join(hex)),
        _ => Err(format!("not a digest: {digest:?}")),
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

impl Layout {
    /// Reads the layout `dir` (its first image).
    pub fn open(dir: &Path) -> Result<Self, String> {
        let index: Index = read_json(&dir.join("index.json"))?;
        let first = index
            .manifests
            .first()
            .ok_or_else(|| format!("{}: the OCI layout holds no image", dir.display()))?;
        let manifest: Manifest = read_json(&blob(dir, &first.digest)?)?;
        let config: Config = read_json(&blob(dir, &manifest.config.digest)?)?;
        let diff_ids = config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(format!(
                "the image's config names {} layers, its manifest {}",
                diff_ids.len(),
                manifest.layers.len()
            ));
        }
        let layers = manifest
            .layers
            .iter()
            .map(|l| blob(dir, &l.digest))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            config: manifest.config.digest,
            created: config.created,
            diff_ids,
            layers,
        })
    }

    /// Feeds the files of the top `own` layers to `visitor`, top first (all of them: the
    /// image's whole file system).
    pub fn walk_top(&self, own: usize, visitor: &mut dyn Visitor) -> Result<(), String> {
        let own = own.min(self.layers.len());
        for path in self.layers[self.layers.len() - own..].iter().rev() {
            let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            super::tarball::decompress(file)
                .and_then(|tar| super::tarball::walk(tar, visitor))
                .map_err(|e| format!("layer {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_a_blob_path_and_nothing_else() {
        let d = Path::new("/l");
        assert_eq!(
            blob(d, "sha256:abc").unwrap(),
            PathBuf::from("/l/blobs/sha256/abc")
        );
        for bad in ["sha256:../../x", "abc", "sha256:", ":x", "sha256:a/b"] {
            assert!(blob(d, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_layout_gives_diff_ids_and_layers_bottom_first() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("blobs/sha256")).unwrap();
        let put = |hex: &str, body: &str| std::fs::write(d.join("blobs/sha256").join(hex), body);
        put("c0", r#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:d1","sha256:d2"]}}"#).unwrap();
        put("m0", r#"{"schemaVersion":2,"config":{"digest":"sha256:c0","size":1},"layers":[{"digest":"sha256:l1","size":1},{"digest":"sha256:l2","size":1}]}"#).unwrap();
        std::fs::write(
            d.join("index.json"),
            r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:m0","size":1}]}"#,
        )
        .unwrap();
        let layout = Layout::open(d).unwrap();
        assert_eq!(layout.config, "sha256:c0");
        assert_eq!(layout.diff_ids, ["sha256:d1", "sha256:d2"]);
        assert_eq!(
            layout.layers,
            [d.join("blobs/sha256/l1"), d.join("blobs/sha256/l2")]
        );
    }
}
