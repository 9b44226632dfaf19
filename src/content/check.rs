//! The content check's judgement: given the files a build's own layers hold, top layer first,
//! which ELF files are not of the build's platform.
//!
//! Layers are fed top-down, one at a time ([`Checker::next_layer`] between them), so that a
//! file is judged by the layer that last wrote it: a path a higher layer wrote, deleted (a
//! whiteout) or replaced by a non-directory is not in the image as a lower layer has it, nor is
//! anything below it, nor anything below a directory a higher layer made opaque. Within one
//! layer the last entry of a path wins, as when a tar is unpacked.

use std::io::{self, Read};

use globset::GlobSet;
use serde::Serialize;

use super::elf::{HEADER_LEN, Machine, read_head};
use super::stack::{Kept, Stack};
use super::tarball::Visitor;

/// One file of a layer, as the walker of a layer format reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A regular file and its first bytes (at least [`super::elf::HEADER_LEN`] if it has them).
    File(&'a [u8]),
    /// A whiteout: the path, and all below it, is deleted from the layers below.
    Whiteout,
    /// A directory: what lower layers hold below it stays.
    Dir,
    /// The path is a directory whose lower layers' contents are hidden (an opaque directory:
    /// overlay's `opaque` xattr, a tar's `.wh..wh..opq`). Comes besides the directory's own
    /// entry.
    Opaque,
    /// A link or device: nothing to judge, but it hides the path below.
    Other,
}

/// A file that is not its platform's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Mismatch {
    /// Absolute in the image: `/usr/bin/tool`.
    pub path: String,
    /// What the file is, as [`Machine`]'s `Display` words it.
    pub found: String,
    /// What the platform's binaries are.
    pub expected: String,
}

/// The counts the report shows, and the files that failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    /// Regular files the build's own layers added or changed.
    pub files: usize,
    /// Of those, ELF files.
    pub elf: usize,
    /// ELF files of another machine that `allow` exempts.
    pub allowed: usize,
    pub mismatches: Vec<Mismatch>,
}

/// Judges a build's files against its platform's machine.
pub struct Checker<'a> {
    expected: Machine,
    allow: &'a GlobSet,
    /// Each file's first bytes (as many as it has, up to [`HEADER_LEN`]).
    stack: Stack<([u8; HEADER_LEN], usize)>,
    counts: Counts,
}

impl<'a> Checker<'a> {
    pub fn new(expected: Machine, allow: &'a GlobSet) -> Self {
        Self {
            expected,
            allow,
            stack: Stack::default(),
            counts: Counts::default(),
        }
    }

    /// One entry of the current layer; `path` is absolute in the image (`/usr/bin/x`).
    pub fn see(&mut self, path: &str, entry: Entry<'_>) {
        let kept = match entry {
            Entry::File(bytes) => {
                let mut head = [0u8; HEADER_LEN];
                let n = bytes.len().min(HEADER_LEN);
                head[..n].copy_from_slice(&bytes[..n]);
                Kept::File((head, n))
            }
            Entry::Whiteout | Entry::Other => Kept::Hides,
            Entry::Dir => Kept::Dir,
            Entry::Opaque => return self.stack.opaque(path),
        };
        self.stack.put(path, kept);
    }

    /// The current layer is complete: its entries are judged against the layers above, and
    /// the next entries are of the layer below.
    pub fn next_layer(&mut self) {
        for (path, (head, n)) in self.stack.next_layer() {
            self.judge(path, &head[..n]);
        }
    }

    fn judge(&mut self, path: String, head: &[u8]) {
        self.counts.files += 1;
        let Some(found) = super::elf::read(head) else {
            return;
        };
        self.counts.elf += 1;
        if found == self.expected {
            return;
        }
        if self.allow.is_match(&path) {
            self.counts.allowed += 1;
            return;
        }
        self.counts.mismatches.push(Mismatch {
            path,
            found: found.to_string(),
            expected: self.expected.to_string(),
        });
    }

    pub fn finish(mut self) -> Counts {
        self.next_layer();
        self.counts.mismatches.sort_by(|a, b| a.path.cmp(&b.path));
        self.counts
    }
}

/// A layer's tar stream read for the check: a file only as far as its ELF header.
impl Visitor for Checker<'_> {
    fn file(&mut self, path: &str, mut content: &mut dyn Read) -> io::Result<()> {
        let mut head = [0u8; HEADER_LEN];
        let n = read_head(&mut content, &mut head)?;
        self.see(path, Entry::File(&head[..n]));
        Ok(())
    }

    /// A hard link is its target's file. One whose target is in a lower layer is counted as a
    /// file of unknown content: the target itself is checked there.
    fn hard_link(&mut self, path: &str, target: Option<&str>) {
        let head = match target.and_then(|t| self.stack.in_layer(t)) {
            Some(Kept::File(head)) => *head,
            _ => ([0; HEADER_LEN], 0),
        };
        self.stack.put(path, Kept::File(head));
    }

    fn entry(&mut self, path: &str, entry: Entry<'_>) {
        self.see(path, entry);
    }

    fn next_layer(&mut self) {
        Checker::next_layer(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    fn machine(p: &str) -> Machine {
        Machine::of(&p.parse::<Platform>().unwrap()).unwrap()
    }

    fn elf_of(p: &str) -> Vec<u8> {
        let m = machine(p);
        let mut b = b"\x7fELF".to_vec();
        b.push(match m.class {
            super::super::elf::Class::Elf32 => 1,
            super::super::elf::Class::Elf64 => 2,
        });
        let big = m.endian == super::super::elf::Endian::Big;
        b.push(if big { 2 } else { 1 });
        b.extend([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let (t, e) = if big {
            (2u16.to_be_bytes(), m.machine.to_be_bytes())
        } else {
            (2u16.to_le_bytes(), m.machine.to_le_bytes())
        };
        b.extend(t);
        b.extend(e);
        b
    }

    fn globs(g: &[&str]) -> GlobSet {
        let mut b = globset::GlobSetBuilder::new();
        for g in g {
            b.add(
                globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .unwrap(),
            );
        }
        b.build().unwrap()
    }

    #[test]
    fn a_foreign_binary_is_a_mismatch_with_what_it_is_and_should_be() {
        let allow = globs(&[]);
        let mut c = Checker::new(machine("linux/arm64"), &allow);
        c.see("/usr/bin/tool", Entry::File(&elf_of("linux/amd64")));
        c.see("/bin/ok", Entry::File(&elf_of("linux/arm64")));
        c.see("/etc/motd", Entry::File(b"hello"));
        c.see("/usr", Entry::Other);
        let counts = c.finish();
        assert_eq!((counts.files, counts.elf, counts.allowed), (3, 2, 0));
        assert_eq!(
            counts.mismatches,
            vec![Mismatch {
                path: "/usr/bin/tool".into(),
                found: "ELF 64-bit LSB x86-64 (amd64)".into(),
                expected: "ELF 64-bit LSB AArch64 (arm64)".into(),
            }]
        );
    }

    #[test]
    fn allow_globs_exempt_and_stay_within_a_directory() {
        let allow = globs(&["/usr/bin/qemu-*-static"]);
        let mut c = Checker::new(machine("linux/arm/v7"), &allow);
        c.see(
            "/usr/bin/qemu-arm-static",
            Entry::File(&elf_of("linux/amd64")),
        );
        c.see(
            "/usr/bin/qemu-x/y-static",
            Entry::File(&elf_of("linux/amd64")),
        );
        let counts = c.finish();
        assert_eq!(counts.allowed, 1);
        assert_eq!(counts.mismatches.len(), 1);
        assert_eq!(counts.mismatches[0].path, "/usr/bin/qemu-x/y-static");
    }

    #[test]
    fn a_higher_layer_decides_a_path() {
        let allow = globs(&[]);
        let mut c = Checker::new(machine("linux/arm64"), &allow);
        // Top layer: deleted, and replaced by the right binary.
        c.see("/gone", Entry::Whiteout);
        c.see("/tool", Entry::File(&elf_of("linux/arm64")));
        c.next_layer();
        // Lower layer: the wrong ones, hidden.
        c.see("/gone", Entry::File(&elf_of("linux/amd64")));
        c.see("/tool", Entry::File(&elf_of("linux/amd64")));
        let counts = c.finish();
        assert_eq!((counts.files, counts.elf), (1, 1));
        assert!(counts.mismatches.is_empty());
    }

    #[test]
    fn whiteouts_links_and_opaque_dirs_hide_what_lower_layers_hold_below_them() {
        let allow = globs(&[]);
        let mut c = Checker::new(machine("linux/arm64"), &allow);
        let bad = elf_of("linux/amd64");
        // Top layer: a deleted directory, a directory replaced by a link, an opaque one that
        // holds a file of its own, and a file written twice (the last entry wins).
        c.see("/gone", Entry::Whiteout);
        c.see("/lib", Entry::Other);
        c.see("/opt", Entry::Dir);
        c.see("/opt", Entry::Opaque);
        c.see("/opt/own", Entry::File(&bad));
        c.see("/twice", Entry::File(&elf_of("linux/arm64")));
        c.see("/twice", Entry::File(&bad));
        c.next_layer();
        for hidden in ["/gone/bin/x", "/lib/x", "/opt/old/x", "/opt/own"] {
            c.see(hidden, Entry::File(&bad));
        }
        // Only a lower layer's file in a directory the top layer kept stays.
        c.see("/opt2/x", Entry::File(&bad));
        let counts = c.finish();
        let paths: Vec<&str> = counts.mismatches.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["/opt/own", "/opt2/x", "/twice"]);
        assert_eq!(counts.files, 3);
    }

    #[test]
    fn an_opaque_root_hides_every_lower_file() {
        let allow = globs(&[]);
        let mut c = Checker::new(machine("linux/arm64"), &allow);
        c.see("/", Entry::Opaque);
        c.see("/a", Entry::File(b"x"));
        c.next_layer();
        c.see("/b", Entry::File(&elf_of("linux/amd64")));
        let counts = c.finish();
        assert_eq!((counts.files, counts.mismatches.len()), (1, 0));
    }

    #[test]
    fn arm_variants_and_big_endian_platforms() {
        let allow = globs(&[]);
        let mut c = Checker::new(machine("linux/s390x"), &allow);
        c.see("/a", Entry::File(&elf_of("linux/s390x")));
        c.see("/b", Entry::File(&elf_of("linux/ppc64le")));
        let counts = c.finish();
        assert_eq!(counts.mismatches.len(), 1);
        assert_eq!(
            counts.mismatches[0].found,
            "ELF 64-bit LSB PowerPC64 (ppc64le)"
        );
        assert_eq!(machine("linux/arm/v6"), machine("linux/arm/v7"));
    }
}
