//! mab's own SBOM of an image read from its layers (a build on another node: the image copied
//! from the registry into an OCI layout) against the same files read from a mounted root (a
//! local build). The layer is a gzip tar of a directory of this machine, default /usr/bin
//! (Go binaries among its ELF files). `cargo bench --bench sbom [-- DIR [RUNS]]`.
//!
//! What it leaves out: the `skopeo copy` from the registry (shared with the content check,
//! which copies the same image first) and podman's mount/unmount of a local image.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use mab::config::SbomFormat;
use mab::content::layout::Layout;

fn put(blobs: &Path, bytes: &[u8]) -> String {
    let digest = mab::attach::digest_of(bytes);
    std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).unwrap();
    digest
}

/// An OCI layout at `dir` of one image whose one layer holds `source` under its own path.
fn layout_of(dir: &Path, source: &Path) -> (Layout, usize) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let inside = source.strip_prefix("/").unwrap_or(source);
    tar.append_dir_all(inside, source).unwrap();
    let plain = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let layer = put(&blobs, &gz.finish().unwrap());
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-12-02T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": [mab::attach::digest_of(&plain)]},
    });
    let config = put(&blobs, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "config": {"digest": config, "size": 1},
        "layers": [{"digest": layer, "size": 1}],
    });
    let manifest = put(&blobs, manifest.to_string().as_bytes());
    let index =
        serde_json::json!({"schemaVersion": 2, "manifests": [{"digest": manifest, "size": 1}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    (Layout::open(dir).unwrap(), plain.len())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let source = Path::new(args.first().map_or("/usr/bin", String::as_str)).to_path_buf();
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let (layout, bytes) = layout_of(tmp.path(), &source);
    let image = mab::sbom::Image {
        name: "127.0.0.1:5000/bench".into(),
        platform: "linux/amd64".into(),
        id: "bench".into(),
        created: "2026-12-02T00:00:00Z".into(),
    };
    let mut from_layers = Vec::new();
    let mut from_root = Vec::new();
    let mut doc = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        doc = mab::sbom::builtin_of_layout(&layout, &image, SbomFormat::SpdxJson).unwrap();
        from_layers.push(t.elapsed());
        let t = Instant::now();
        mab::sbom::builtin(&source, &image, SbomFormat::SpdxJson).unwrap();
        from_root.push(t.elapsed());
    }
    let v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    println!(
        "{}: {} files, {} packages, {} MB uncompressed; median of {runs}: from the gzip layer {:?}, from the directory {:?}",
        source.display(),
        v["files"].as_array().map_or(0, Vec::len),
        v["packages"].as_array().map_or(0, Vec::len),
        bytes >> 20,
        median(from_layers),
        median(from_root),
    );
}
