//! The digests of files hashed by earlier runs, kept under the state directory and keyed by what
//! changes when a file does (inode, size, mtime, ctime), so that a rerun reads only the files
//! that changed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

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

/// One context's files by path (relative to the context): a stamp and a digest.
pub type Files = HashMap<String, (Stamp, Digest)>;

/// The cache file as read: one section per context directory (as the plan names it), each
/// parsed only when a run walks that context, on the thread that walks it, and written back
/// as it was unless the walk changed it.
#[derive(Debug, Default)]
pub struct Cache {
    text: String,
    sections: HashMap<String, std::ops::Range<usize>>,
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

fn parse_line(line: &str) -> Option<(String, (Stamp, Digest))> {
    let mut f = line.splitn(6, ' ');
    let stamp = Stamp {
        ino: f.next()?.parse().ok()?,
        size: f.next()?.parse().ok()?,
        mtime_ns: f.next()?.parse().ok()?,
        ctime_ns: f.next()?.parse().ok()?,
    };
    let digest = unhex(f.next()?)?;
    Some((f.next()?.to_string(), (stamp, digest)))
}

fn write_files(text: &mut String, context: &str, files: &Files) {
    if context.contains('\n') {
        return;
    }
    let _ = writeln!(text, "C {context}");
    for (file, (s, d)) in files {
        if !file.contains('\n') {
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
}

impl Cache {
    /// The cache `text` holds; empty when it is not of this version (the cache only saves
    /// work, so a damaged one is dropped, never trusted).
    pub fn parse(text: String) -> Self {
        let Some(body) = text.strip_prefix(HEADER).and_then(|t| t.strip_prefix('\n')) else {
            return Self::default();
        };
        let mut sections = HashMap::new();
        let mut current: Option<(String, usize)> = None;
        let mut at = HEADER.len() + 1;
        for line in body.split_inclusive('\n') {
            if let Some(context) = line.strip_prefix("C ") {
                if let Some((name, start)) = current.take() {
                    sections.insert(name, start..at);
                }
                current = Some((context.trim_end_matches('\n').to_string(), at + line.len()));
            } else if current.is_none() {
                return Self::default();
            }
            at += line.len();
        }
        if let Some((name, start)) = current {
            sections.insert(name, start..at);
        }
        Self { text, sections }
    }

    /// The cached files of `context`; none if its section is damaged.
    pub fn files(&self, context: &str) -> Files {
        let Some(range) = self.sections.get(context) else {
            return Files::new();
        };
        let mut files = Files::new();
        for line in self.text[range.clone()].lines() {
            match parse_line(line) {
                Some((file, entry)) => files.insert(file, entry),
                None => return Files::new(),
            };
        }
        files
    }

    /// The text of the cache with `updated` contexts replaced, the others as they were (the
    /// state directory writes it through a temporary file, so that a run that dies while
    /// saving leaves the old cache or the new).
    pub fn render(&self, updated: &HashMap<String, Files>) -> String {
        let mut text = String::with_capacity(self.text.len());
        text.push_str(HEADER);
        text.push('\n');
        for (context, range) in &self.sections {
            if !updated.contains_key(context) {
                let _ = writeln!(text, "C {context}");
                text.push_str(&self.text[range.clone()]);
            }
        }
        for (context, files) in updated {
            write_files(&mut text, context, files);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_drops_a_damaged_section() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = Stamp::of(&std::fs::metadata(dir.path()).unwrap());
        let files = |name: &str, d: u8| Files::from([(name.to_string(), (stamp, [d; 32]))]);
        let updated = HashMap::from([
            ("services/api".to_string(), files("src/a b.rs", 7)),
            ("web".to_string(), files("index.html", 9)),
        ]);
        let back = Cache::parse(Cache::default().render(&updated));
        assert_eq!(back.files("services/api")["src/a b.rs"], (stamp, [7; 32]));
        // A context left alone is written back as it was.
        let only_web = HashMap::from([("web".to_string(), files("other.html", 1))]);
        let again = Cache::parse(back.render(&only_web));
        assert_eq!(again.files("services/api")["src/a b.rs"], (stamp, [7; 32]));
        assert!(!again.files("web").contains_key("index.html"));
        let damaged = format!("{HEADER}\nC x\n1 2 3 4 zz file\nC y\n");
        assert!(Cache::parse(damaged).files("x").is_empty());
        assert!(Cache::parse("1 2 3 4 zz file\n".into()).sections.is_empty());
    }
}
