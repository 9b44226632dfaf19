//! The digest of a build context: every file, directory and link its ignore file lets in, with
//! path, mode and content, in a fixed order. Files are hashed in parallel and streamed; those
//! whose stamp matches the cache are not read.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use walkdir::WalkDir;

use super::cache::{Digest, Files, Stamp};
use super::patterns::Patterns;

/// What one walk found.
pub struct Tree {
    pub digest: Digest,
    /// The files' digests with their stamps, for the cache (racy ones left out), when they
    /// differ from what the cache held.
    pub files: Option<Files>,
    /// Files in the tree, and how many were read (not served from the cache).
    pub count: usize,
    pub read: usize,
}

enum Kind {
    Dir,
    File,
    Link(std::path::PathBuf),
}

struct Entry {
    rel: String,
    kind: Kind,
    mode: u32,
    meta: std::fs::Metadata,
}

fn hash_file(path: &Path) -> std::io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Hashes directory `root` (a context) as `patterns` let it in. `cached` holds earlier
/// digests of its files; `since_ns` is when this run started, to tell racy stamps.
pub fn hash(
    root: &Path,
    patterns: &Patterns,
    cached: &Files,
    since_ns: i128,
) -> std::io::Result<Tree> {
    let mut entries = Vec::new();
    let mut walk = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = rel_of(root, entry.path());
        if patterns.excluded(&rel) {
            if entry.file_type().is_dir() && patterns.prunes(&rel) {
                walk.skip_current_dir();
            }
            continue;
        }
        let meta = entry.metadata().map_err(std::io::Error::other)?;
        let ft = entry.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Link(std::fs::read_link(entry.path())?)
        } else if ft.is_file() {
            Kind::File
        } else {
            // Sockets and pipes are not copied into images.
            continue;
        };
        entries.push(Entry {
            rel,
            kind,
            mode: meta.permissions().mode() & 0o7777,
            meta,
        });
    }
    let digests: Vec<Option<(Digest, bool)>> = entries
        .par_iter()
        .map(|e| match e.kind {
            Kind::File => {
                let stamp = Stamp::of(&e.meta);
                if let Some((s, d)) = cached.get(&e.rel)
                    && *s == stamp
                {
                    return Ok(Some((*d, false)));
                }
                hash_file(&root.join(&e.rel)).map(|d| Some((d, true)))
            }
            _ => Ok(None),
        })
        .collect::<std::io::Result<_>>()?;
    let mut hasher = Sha256::new();
    let mut files = Files::with_capacity(entries.len());
    let mut read = 0;
    let mut record = String::new();
    for (e, digest) in entries.iter().zip(&digests) {
        // One record per entry, every field ended so that no two trees hash alike.
        record.clear();
        match (&e.kind, digest) {
            (Kind::Dir, _) => {
                let _ = write!(record, "d {:o} {}\0", e.mode, e.rel);
                hasher.update(&record);
            }
            (Kind::Link(to), _) => {
                let _ = write!(record, "l {}\0", e.rel);
                hasher.update(&record);
                hasher.update(to.as_os_str().as_encoded_bytes());
                hasher.update(b"\0");
            }
            (Kind::File, Some((d, was_read))) => {
                let _ = write!(record, "f {:o} {}\0", e.mode, e.rel);
                hasher.update(&record);
                hasher.update(d);
                read += usize::from(*was_read);
                let stamp = Stamp::of(&e.meta);
                if !stamp.racy(since_ns) {
                    files.insert(e.rel.clone(), (stamp, *d));
                }
            }
            (Kind::File, None) => unreachable!("every file has a digest"),
        }
    }
    // Unchanged when every file came from the cache and the cache held no other.
    let files = (read > 0 || files.len() != cached.len()).then_some(files);
    Ok(Tree {
        digest: hasher.finalize().into(),
        count: digests.iter().flatten().count(),
        files,
        read,
    })
}

/// `path` relative to `root`, `/`-separated, as ignore patterns see it.
fn rel_of(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_ns() -> i128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128
    }

    #[test]
    fn content_mode_names_and_ignored_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("target")).unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}").unwrap();
        std::fs::write(root.join("target/app"), "binary").unwrap();
        let patterns = Patterns::parse("target\n");
        let digest = |p: &Patterns| hash(root, p, &Files::new(), now_ns()).unwrap().digest;
        let first = digest(&patterns);
        // An ignored file changes nothing.
        std::fs::write(root.join("target/app"), "other binary").unwrap();
        assert_eq!(digest(&patterns), first);
        // Content, mode and names do.
        std::fs::write(root.join("src/main.rs"), "fn main() { }").unwrap();
        let content = digest(&patterns);
        assert_ne!(content, first);
        std::fs::set_permissions(
            root.join("src/main.rs"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let mode = digest(&patterns);
        assert_ne!(mode, content);
        std::fs::rename(root.join("src/main.rs"), root.join("src/lib.rs")).unwrap();
        assert_ne!(digest(&patterns), mode);
        // Without the pattern, target/ is part of the context.
        assert_ne!(digest(&Patterns::default()), digest(&patterns));
    }

    #[test]
    fn a_link_out_of_the_context_is_hashed_as_a_link_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("ctx"), dir.path().join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(outside.join("dir")).unwrap();
        std::fs::write(outside.join("auth.json"), "one").unwrap();
        std::os::unix::fs::symlink(outside.join("auth.json"), root.join("auth.json")).unwrap();
        std::os::unix::fs::symlink(outside.join("dir"), root.join("dir")).unwrap();
        let p = Patterns::default();
        let hashed = || hash(&root, &p, &Files::new(), now_ns()).unwrap();
        let first = hashed();
        assert_eq!(first.read, 0, "no file is read through a link");
        // What the links lead to changes: the context's digest does not.
        std::fs::write(outside.join("auth.json"), "two").unwrap();
        std::fs::write(outside.join("dir/new"), "new").unwrap();
        assert_eq!(hashed().digest, first.digest);
        // Where a link leads is part of the context.
        std::fs::remove_file(root.join("auth.json")).unwrap();
        std::os::unix::fs::symlink(outside.join("dir/new"), root.join("auth.json")).unwrap();
        assert_ne!(hashed().digest, first.digest);
    }

    #[test]
    fn the_cache_serves_unchanged_files_and_not_racy_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a"), "one").unwrap();
        let p = Patterns::default();
        // Written just now: too recent to be cached.
        let fresh = hash(root, &p, &Files::new(), now_ns()).unwrap();
        assert!(fresh.files.is_some_and(|f| f.is_empty()));
        // As if the run started an hour later.
        let later = now_ns() + 3_600_000_000_000;
        let cold = hash(root, &p, &Files::new(), later).unwrap();
        assert_eq!(cold.read, 1);
        let cached = cold.files.unwrap();
        let warm = hash(root, &p, &cached, later).unwrap();
        assert_eq!((warm.read, warm.digest), (0, cold.digest));
        assert!(warm.files.is_none(), "nothing to save");
        // A cached digest whose stamp no longer matches is not used.
        std::fs::write(root.join("a"), "two").unwrap();
        let changed = hash(root, &p, &cached, later).unwrap();
        assert_eq!(changed.read, 1);
        assert_ne!(changed.digest, cold.digest);
    }
}
