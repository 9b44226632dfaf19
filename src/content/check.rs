//! The content check's judgement: given the files a build's own layers hold, top layer first,
//! which ELF files are not of the build's platform.
//!
//! Layers are fed top-down so that a file is judged by the layer that last wrote it: a path
//! already seen (written, or deleted by a whiteout) in a higher layer is not in the image as a
//! lower layer has it.

use std::collections::HashSet;

use globset::GlobSet;
use serde::Serialize;

use super::elf::Machine;

/// One file of a layer, as the walker of a layer format reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A regular file and its first bytes (at least [`super::elf::HEADER_LEN`] if it has them).
    File(&'a [u8]),
    /// A whiteout: the path is deleted from the layers below.
    Whiteout,
    /// A directory, link or device: nothing to judge, but it hides the path below.
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
    seen: HashSet<String>,
    counts: Counts,
}

impl<'a> Checker<'a> {
    pub fn new(expected: Machine, allow: &'a GlobSet) -> Self {
        Self {
            expected,
            allow,
            seen: HashSet::new(),
            counts: Counts::default(),
        }
    }

    /// One file of the current layer; `path` is absolute in the image (`/usr/bin/x`).
    /// Layers must come top first.
    pub fn see(&mut self, path: &str, entry: Entry<'_>) {
        if !self.seen.insert(path.to_string()) {
            return;
        }
        let Entry::File(head) = entry else {
            return;
        };
        self.counts.files += 1;
        let Some(found) = super::elf::read(head) else {
            return;
        };
        self.counts.elf += 1;
        if found == self.expected {
            return;
        }
        if self.allow.is_match(path) {
            self.counts.allowed += 1;
            return;
        }
        self.counts.mismatches.push(Mismatch {
            path: path.to_string(),
            found: found.to_string(),
            expected: self.expected.to_string(),
        });
    }

    pub fn finish(mut self) -> Counts {
        self.counts.mismatches.sort_by(|a, b| a.path.cmp(&b.path));
        self.counts
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
        // Lower layer: the wrong ones, hidden.
        c.see("/gone", Entry::File(&elf_of("linux/amd64")));
        c.see("/tool", Entry::File(&elf_of("linux/amd64")));
        let counts = c.finish();
        assert_eq!((counts.files, counts.elf), (1, 1));
        assert!(counts.mismatches.is_empty());
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
