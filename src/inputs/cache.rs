//! The digests of files hashed by earlier runs, kept under the state directory and keyed by what
//! changes when a file does (inode, size, mtime, ctime), so that a rerun reads only the files
//! that changed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The stat fields a file's cached digest is valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    pub fn of(meta: &Metadata) -> Self {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file changed so recently that a change within the clock's resolution could
    /// leave this stamp as it is (git's "racy" entries): such a digest is not kept.
    pub fn racy(&self, since_ns: i128) -> bool {
        const MARGIN_NS: i128 = 2_000_000_000;
        self.mtime_ns.max(self.ctime_ns) >= since_ns - MARGIN_NS
    }
}

pub type Digest = [u8; 32];

/// Per context directory (as the plan names it), per file path in it: a stamp and a digest.
pub type Files = HashMap<String, (Stamp, Digest)>;

#[derive(Debug, Default)]
pub struct Cache {
    pub contexts: HashMap<String, Files>,
}

const HEADER: &str = "mab-hash-cache 1";

fn hex(d: &Digest) -> String {
    let mut s = String::with_capacity(64);
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Digest> {
    let mut d = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, b) in d.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(d)
}

impl Cache {
    /// What `path` holds; empty when it is missing or not of this version (the cache only
    /// saves work, so a damaged one is dropped, never trusted).
    pub fn load(path: &Path) -> Self {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Self::default();
        };
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Self::default();
        }
        let mut contexts: HashMap<String, Files> = HashMap::new();
        let mut current: Option<&mut Files> = None;
        for line in lines {
            if let Some(context) = line.strip_prefix("C ") {
                current = Some(contexts.entry(context.to_string()).or_default());
                continue;
            }
            let parsed = (|| {
                let mut f = line.splitn(6, ' ');
                let stamp = Stamp {
                    ino: f.next()?.parse().ok()?,
                    size: f.next()?.parse().ok()?,
                    mtime_ns: f.next()?.parse().ok()?,
                    ctime_ns: f.next()?.parse().ok()?,
                };
                let digest = unhex(f.next()?)?;
                Some((f.next()?.to_string(), (stamp, digest)))
            })();
            match (parsed, current.as_deref_mut()) {
                (Some((file, entry)), Some(files)) => {
                    files.insert(file, entry);
                }
                _ => return Self::default(),
            }
        }
        Self { contexts }
    }

    /// Writes the cache whole, through a temporary file, so that a run that dies while saving
    /// leaves the old cache or the new one.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut text = String::from(HEADER);
        text.push('\n');
        let mut contexts: Vec<_> = self.contexts.iter().collect();
        contexts.sort_by(|a, b| a.0.cmp(b.0));
        for (context, files) in contexts {
            if context.contains('\n') {
                continue;
            }
            let _ = writeln!(text, "C {context}");
            for (file, (s, d)) in files {
                if file.contains('\n') {
                    continue;
                }
                let _ = writeln!(
                    text,
                    "{} {} {} {} {} {file}",
                    s.ino,
                    s.size,
                    s.mtime_ns,
                    s.ctime_ns,
                    hex(d)
                );
            }
        }
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_drops_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        let meta = std::fs::metadata(dir.path()).unwrap();
        let mut cache = Cache::default();
        let stamp = Stamp::of(&meta);
        cache
            .contexts
            .entry("services/api".into())
            .or_default()
            .insert("src/a b.rs".into(), (stamp, [7; 32]));
        cache.save(&path).unwrap();
        let back = Cache::load(&path);
        assert_eq!(
            back.contexts["services/api"]["src/a b.rs"],
            (stamp, [7; 32])
        );
        std::fs::write(&path, format!("{HEADER}\nC x\n1 2 3 4 zz file\n")).unwrap();
        assert!(Cache::load(&path).contexts.is_empty());
    }
}
