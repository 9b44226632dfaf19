//! An OCI image layout directory holding one manifest under one name: what skopeo copies to a
//! registry with `--preserve-digests` (bytes unchanged, measured with skopeo 1.9.3), and what
//! it copies a registry's signature tag into for mab to read its blobs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use serde_json::json;

use super::manifest::{MANIFEST_MEDIA_TYPE, digest_of};

/// The name a layout's one manifest has (`oci:DIR:NAME`).
pub const NAME: &str = "sig";

/// A private scratch directory under the temporary directory, removed when dropped. Created
/// with a random name and `create_dir` (which fails on anything already there), so no one can
/// have prepared it.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> io::Result<Self> {
        let base = std::env::temp_dir();
        loop {
            let path = base.join(format!("mab-sign-{:016x}", OsRng.next_u64()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A fresh sub-directory (skopeo writes a layout into an empty or absent one).
    pub fn dir(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn blob_path(dir: &Path, digest: &str) -> io::Result<PathBuf> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(dir.join("blobs/sha256").join(hex))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("`{digest}` is not a sha256 digest"),
        )),
    }
}

/// Writes `manifest` and `blobs` as an OCI layout in `dir` (created), the manifest named
/// [`NAME`].
pub fn write(dir: &Path, manifest: &[u8], blobs: &[Vec<u8>]) -> io::Result<()> {
    fs::create_dir_all(dir.join("blobs/sha256"))?;
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for blob in blobs.iter().map(Vec::as_slice).chain([manifest]) {
        fs::write(blob_path(dir, &digest_of(blob))?, blob)?;
    }
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": digest_of(manifest),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": NAME},
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)
}

/// Reads blob `digest` of the layout in `dir`, checking that its bytes are that digest.
pub fn blob(dir: &Path, digest: &str) -> io::Result<Vec<u8>> {
    let bytes = fs::read(blob_path(dir, digest)?)?;
    if digest_of(&bytes) != digest {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("blob {digest} does not hash to its name"),
        ));
    }
    Ok(bytes)
}

/// The manifest named [`NAME`] in the layout in `dir`.
pub fn manifest(dir: &Path) -> io::Result<Vec<u8>> {
    let index: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("index.json"))?)?;
    let named = index["manifests"].as_array().and_then(|all| {
        all.iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(NAME))
    });
    let Some(digest) = named.and_then(|m| m["digest"].as_str()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the layout in {} names no `{NAME}`", dir.display()),
        ));
    };
    blob(dir, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_layout_reads_back() {
        let scratch = Scratch::new().unwrap();
        let dir = scratch.dir("l");
        write(&dir, b"{\"m\":1}", &[b"blob".to_vec()]).unwrap();
        assert_eq!(manifest(&dir).unwrap(), b"{\"m\":1}");
        assert_eq!(blob(&dir, &digest_of(b"blob")).unwrap(), b"blob");
        assert!(blob(&dir, "sha256:../../etc/passwd").is_err());
        let path = scratch.path().to_path_buf();
        drop(scratch);
        assert!(!path.exists());
    }
}
