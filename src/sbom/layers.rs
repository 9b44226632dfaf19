//! The builtin SBOM of an image read from its layers (an OCI layout copied from the registry:
//! a build on another node, whose storage this machine cannot mount), without unpacking them.
//!
//! Every layer is walked top first by the content check's reader ([`crate::content::tarball`]),
//! and what each layer holds is decided as the content check decides it
//! ([`crate::content::stack`]: whiteouts, opaque directories, replaced paths): the files are
//! those a container of the image sees, each read once, as [`super::builtin::scan`] reads a
//! mounted root.

use std::collections::HashMap;
use std::io::{self, Read};

use super::builtin::{self, FileFacts, Inventory};
use crate::content::check::Entry;
use crate::content::layout::Layout;
use crate::content::stack::{Kept, Stack};
use crate::content::tarball::Visitor;

/// A file of a layer: read, or a hard link to a file of a lower layer (resolved once every
/// layer is read).
#[derive(Debug, Clone)]
enum Found {
    Read(FileFacts),
    LinkTo(String),
}

/// Collects the files of an image's layers, top first.
#[derive(Default)]
struct Collector {
    stack: Stack<Found>,
    files: Vec<(String, Found)>,
}

impl Visitor for Collector {
    fn file(&mut self, path: &str, content: &mut dyn Read) -> io::Result<()> {
        let facts = builtin::facts(path, content)?;
        self.stack.put(path, Kept::File(Found::Read(facts)));
        Ok(())
    }

    fn hard_link(&mut self, path: &str, target: Option<&str>) {
        let kept = match target {
            // Its target read in this layer: the same file.
            Some(t) => match self.stack.in_layer(t) {
                Some(Kept::File(found)) => Kept::File(found.clone()),
                _ => Kept::File(Found::LinkTo(t.to_string())),
            },
            // A target that is no path of the image: the path holds no readable file.
            None => Kept::Hides,
        };
        self.stack.put(path, kept);
    }

    fn entry(&mut self, path: &str, entry: Entry<'_>) {
        match entry {
            Entry::Opaque => self.stack.opaque(path),
            Entry::Dir => self.stack.put(path, Kept::Dir),
            Entry::File(_) | Entry::Whiteout | Entry::Other => self.stack.put(path, Kept::Hides),
        }
    }

    fn next_layer(&mut self) {
        let files = self.stack.next_layer();
        self.files.extend(files);
    }
}

impl Collector {
    /// The image's files: hard links to a lower layer's file are that file, if the image has
    /// it (a link whose target a higher layer removed is left out).
    fn finish(mut self) -> Vec<(String, FileFacts)> {
        self.next_layer();
        let read: HashMap<String, FileFacts> = self
            .files
            .iter()
            .filter_map(|(p, f)| match f {
                Found::Read(facts) => Some((p.clone(), facts.clone())),
                Found::LinkTo(_) => None,
            })
            .collect();
        self.files
            .into_iter()
            .filter_map(|(path, found)| match found {
                Found::Read(facts) => Some((path, facts)),
                Found::LinkTo(target) => Some((path, read.get(&target)?.clone())),
            })
            .collect()
    }
}

/// The inventory of the image in `layout`: all its layers.
pub fn scan(layout: &Layout) -> Result<Inventory, String> {
    let mut collector = Collector::default();
    layout.walk_top(layout.layers.len(), &mut collector)?;
    Ok(builtin::inventory(collector.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::tarball::tests::tar_of;
    use std::io::Write as _;
    use std::path::Path;
    use tar::EntryType as T;

    const STATUS: &str =
        "Package: hello\nStatus: install ok installed\nArchitecture: arm64\nVersion: 2.10-3\n";

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// An OCI layout at `dir` of an image whose layers are `layers`, bottom first.
    fn layout_of(dir: &Path, layers: &[Vec<u8>]) -> Layout {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| {
            let digest = crate::attach::digest_of(bytes);
            std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).unwrap();
            digest
        };
        let digests: Vec<String> = layers.iter().map(|l| put(l)).collect();
        let config = serde_json::json!({
            "architecture": "arm64", "os": "linux", "created": "2026-12-02T07:10:50.123456789Z",
            "rootfs": {"type": "layers", "diff_ids": digests},
        });
        let config = put(config.to_string().as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": {"digest": config, "size": 1},
            "layers": digests.iter().map(|d| serde_json::json!({"digest": d, "size": 1})).collect::<Vec<_>>(),
        });
        let manifest = put(manifest.to_string().as_bytes());
        let index =
            serde_json::json!({"schemaVersion": 2, "manifests": [{"digest": manifest, "size": 1}]});
        std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
        Layout::open(dir).unwrap()
    }

    /// The same image unpacked by hand, as a mounted root shows it.
    fn root_of(dir: &Path) {
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("var/lib/dpkg")).unwrap();
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
        std::fs::write(dir.join("var/lib/dpkg/status"), STATUS).unwrap();
        std::fs::write(dir.join("bin/sh"), b"new shell").unwrap();
        std::fs::write(dir.join("bin/kept"), b"kept").unwrap();
        std::fs::write(dir.join("bin/hard"), b"kept").unwrap();
        std::os::unix::fs::symlink("/bin/sh", dir.join("bin/link")).unwrap();
    }

    fn image_layers() -> Vec<Vec<u8>> {
        let low = tar_of(&[
            ("etc/", T::Directory, b""),
            (
                "etc/os-release",
                T::Regular,
                b"ID=debian\nVERSION_ID=\"12\"\n",
            ),
            ("bin/", T::Directory, b""),
            ("bin/sh", T::Regular, b"old shell"),
            ("bin/kept", T::Regular, b"kept"),
            ("bin/gone", T::Regular, b"gone"),
            ("opt/", T::Directory, b""),
            ("opt/old", T::Regular, b"old"),
            (
                "var/lib/dpkg/status",
                T::Regular,
                b"Package: stale\nStatus: install ok installed\nVersion: 1\n",
            ),
        ]);
        let top = tar_of(&[
            // Replaced, deleted, a hard link to a lower layer's file, a link (not followed).
            ("bin/sh", T::Regular, b"new shell"),
            ("bin/.wh.gone", T::Regular, b""),
            ("bin/hard", T::Link, b"bin/kept"),
            ("bin/link", T::Symlink, b"/bin/sh"),
            // An opaque directory left empty: the lower layer's file is gone.
            ("opt/", T::Directory, b""),
            ("opt/.wh..wh..opq", T::Regular, b""),
            ("var/lib/dpkg/status", T::Regular, STATUS.as_bytes()),
        ]);
        vec![gzip(&low), top]
    }

    #[test]
    fn the_layers_of_an_image_give_what_its_mounted_root_gives() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = layout_of(&tmp.path().join("layout"), &image_layers());
        root_of(&tmp.path().join("root"));
        let from_layers = scan(&layout).unwrap();
        let from_root = builtin::scan(&tmp.path().join("root")).unwrap();
        assert_eq!(from_layers, from_root);
        let paths: Vec<&str> = from_layers.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/bin/hard",
                "/bin/kept",
                "/bin/sh",
                "/etc/os-release",
                "/var/lib/dpkg/status"
            ]
        );
        assert_eq!(from_layers.packages.len(), 1);
        assert_eq!(from_layers.packages[0].name, "hello");
        assert_eq!(from_layers.os.as_ref().unwrap().id, "debian");
    }

    #[test]
    fn a_document_of_a_layout_names_its_packages() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = layout_of(tmp.path(), &image_layers());
        let image = super::super::Image {
            name: "127.0.0.1:5000/app".into(),
            platform: "linux/arm64".into(),
            id: layout.config.trim_start_matches("sha256:").into(),
            created: "2026-12-02T07:10:50Z".into(),
        };
        let raw =
            super::super::builtin_of_layout(&layout, &image, crate::config::SbomFormat::SpdxJson)
                .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let names: Vec<&str> = v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"hello"), "{names:?}");
        assert!(!names.contains(&"stale"), "{names:?}");
    }

    #[test]
    fn a_layer_that_climbs_out_of_the_image_fails_the_scan() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        let name = b"../../etc/passwd";
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, b"x".as_slice()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let layout = layout_of(tmp.path(), &[b.into_inner().unwrap()]);
        let err = scan(&layout).unwrap_err();
        assert!(err.contains("outside the image"), "{err}");
    }
}
