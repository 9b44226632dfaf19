//! mab's own SBOM generator: what an image root holds, read without running anything in it
//! (the image is hostile input: no link is followed, only regular files are read).
//!
//! The operating system from `os-release`, Debian packages from `/var/lib/dpkg/status`, Alpine
//! packages from `/lib/apk/db/installed`, the Go version and modules of every Go binary, and
//! the SHA-256 and SHA-1 (SPDX's mandatory checksum) of every regular file.

use std::io::Read;
use std::path::Path;

use sha1::Digest as _;

use super::goinfo;

/// An image's operating system (`os-release`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Os {
    pub id: String,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ecosystem {
    Deb {
        arch: String,
    },
    Apk {
        arch: String,
    },
    /// A Go module, or the Go standard library (`stdlib`), found in `binary`.
    Go {
        binary: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub ecosystem: Ecosystem,
}

impl Package {
    /// Its package URL (purl), with the distribution from `os` for system packages.
    pub fn purl(&self, os: Option<&Os>) -> String {
        let distro = os.map(|o| match &o.version_id {
            Some(v) => format!("{}-{v}", o.id),
            None => o.id.clone(),
        });
        let distro_q = distro.map(|d| format!("&distro={d}")).unwrap_or_default();
        match &self.ecosystem {
            Ecosystem::Deb { arch } => {
                let ns = os.map_or("debian", |o| o.id.as_str());
                format!(
                    "pkg:deb/{ns}/{}@{}?arch={arch}{distro_q}",
                    self.name,
                    encode(&self.version)
                )
            }
            Ecosystem::Apk { arch } => {
                let ns = os.map_or("alpine", |o| o.id.as_str());
                format!(
                    "pkg:apk/{ns}/{}@{}?arch={arch}{distro_q}",
                    self.name,
                    encode(&self.version)
                )
            }
            Ecosystem::Go { .. } => {
                format!("pkg:golang/{}@{}", self.name, encode(&self.version))
            }
        }
    }
}

/// purl's percent-encoding of a version (`1:2.3+dfsg` → `1%3A2.3%2Bdfsg`).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Absolute in the image.
    pub path: String,
    pub sha256: String,
    pub sha1: String,
}

/// What an image holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub os: Option<Os>,
    /// Sorted.
    pub packages: Vec<Package>,
    /// Sorted by path.
    pub files: Vec<FileEntry>,
}

/// Where the files the inventory reads as text are, in the order they are preferred.
const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];
const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const APK_INSTALLED: &str = "/lib/apk/db/installed";

/// The most of a file read as text (a package database): dpkg's status of a large image is a
/// few MB.
const MAX_TEXT: u64 = 64 << 20;

/// The most of an ELF file read whole for its Go build info; a larger file is hashed only.
const MAX_BINARY: u64 = 1 << 30;

const ELF_MAGIC: &[u8] = &[0x7f, b'E', b'L', b'F'];

/// What the inventory needs of one regular file, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub sha256: String,
    pub sha1: String,
    /// Its Go build info, if it is a Go binary.
    pub go: Option<goinfo::BuildInfo>,
    /// Its text, if it is a file the inventory reads ([`OS_RELEASE`], the package databases).
    pub text: Option<String>,
}

/// Reads the file at `path` (absolute in the image) from `content`: its hashes, streamed; the
/// whole of it only when it is an ELF file (for Go's build info) or a package database.
pub fn facts(path: &str, content: &mut dyn Read) -> std::io::Result<FileFacts> {
    let mut sha256 = sha2::Sha256::new();
    let mut sha1 = sha1::Sha1::new();
    let wanted_text = OS_RELEASE.contains(&path) || path == DPKG_STATUS || path == APK_INSTALLED;
    let limit = if wanted_text { MAX_TEXT } else { MAX_BINARY };
    // Kept until it is known not to be wanted: not an ELF file, or over the limit.
    let mut kept: Option<Vec<u8>> = Some(Vec::new());
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match content.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        sha256.update(chunk);
        sha1.update(chunk);
        total += n as u64;
        if let Some(k) = &mut kept {
            k.extend_from_slice(chunk);
            let not_elf = !wanted_text && k.len() >= 4 && !k.starts_with(ELF_MAGIC);
            if not_elf || total > limit {
                kept = None;
            }
        }
    }
    let (go, text) = match kept {
        Some(bytes) if wanted_text => (None, String::from_utf8(bytes).ok()),
        Some(bytes) => (goinfo::read(&bytes), None),
        None => (None, None),
    };
    Ok(FileFacts {
        sha256: format!("{:x}", sha256.finalize()),
        sha1: format!("{:x}", sha1.finalize()),
        go,
        text,
    })
}

/// The inventory of an image whose regular files are `files` (path absolute in the image, in
/// any order).
pub fn inventory(files: impl IntoIterator<Item = (String, FileFacts)>) -> Inventory {
    let mut files: Vec<(String, FileFacts)> = files.into_iter().collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let text = |path: &str| {
        files
            .binary_search_by(|(p, _)| p.as_str().cmp(path))
            .ok()
            .and_then(|i| files[i].1.text.as_deref())
    };
    let mut inv = Inventory {
        os: OS_RELEASE.iter().find_map(|p| text(p)).map(os_release),
        ..Default::default()
    };
    if let Some(text) = text(DPKG_STATUS) {
        inv.packages.extend(dpkg_status(text));
    }
    if let Some(text) = text(APK_INSTALLED) {
        inv.packages.extend(apk_installed(text));
    }
    for (path, facts) in files {
        if let Some(info) = facts.go {
            inv.packages.extend(go_packages(&path, info));
        }
        inv.files.push(FileEntry {
            path,
            sha256: facts.sha256,
            sha1: facts.sha1,
        });
    }
    inv.packages
        .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    inv.packages.dedup();
    inv
}

/// Reads the image whose root is `root` (a mounted image). No link is followed: walkdir does
/// not enter a linked directory, and only regular files are read, so a package database
/// reached through a link out of the image is not read.
pub fn scan(root: &Path) -> std::io::Result<Inventory> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(std::io::Error::other)?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let path = format!("/{}", rel.display());
        let facts = facts(&path, &mut std::fs::File::open(entry.path())?)?;
        files.push((path, facts));
    }
    Ok(inventory(files))
}

fn os_release(text: &str) -> Os {
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().trim_matches(['"', '\'']).to_string())
    };
    Os {
        id: value("ID").unwrap_or_else(|| "linux".into()),
        version_id: value("VERSION_ID"),
        pretty_name: value("PRETTY_NAME"),
    }
}

/// Paragraphs of `Key: value` lines (continuation lines start with a space).
fn paragraphs(text: &str, sep: char) -> Vec<Vec<(&str, &str)>> {
    text.split("\n\n")
        .map(|p| {
            p.lines()
                .filter(|l| !l.starts_with(' '))
                .filter_map(|l| l.split_once(sep))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect::<Vec<_>>()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

fn field<'a>(p: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn dpkg_status(text: &str) -> Vec<Package> {
    paragraphs(text, ':')
        .iter()
        .filter(|p| field(p, "Status").is_some_and(|s| s.ends_with(" installed")))
        .filter_map(|p| {
            Some(Package {
                name: field(p, "Package")?.to_string(),
                version: field(p, "Version")?.to_string(),
                ecosystem: Ecosystem::Deb {
                    arch: field(p, "Architecture").unwrap_or("all").to_string(),
                },
            })
        })
        .collect()
}

fn apk_installed(text: &str) -> Vec<Package> {
    paragraphs(text, ':')
        .iter()
        .filter_map(|p| {
            Some(Package {
                name: field(p, "P")?.to_string(),
                version: field(p, "V")?.to_string(),
                ecosystem: Ecosystem::Apk {
                    arch: field(p, "A").unwrap_or("noarch").to_string(),
                },
            })
        })
        .collect()
}

fn go_packages(binary: &str, info: goinfo::BuildInfo) -> Vec<Package> {
    let eco = || Ecosystem::Go {
        binary: binary.to_string(),
    };
    let stdlib = Package {
        name: "stdlib".into(),
        version: info.go_version.trim_start_matches("go").to_string(),
        ecosystem: eco(),
    };
    info.main
        .into_iter()
        .chain(info.deps)
        .filter(|m| !m.path.is_empty())
        .map(|m| Package {
            name: m.path,
            version: m.version,
            ecosystem: eco(),
        })
        .chain([stdlib])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: arm64\nVersion: 2.36-9+deb12u4\nDescription: GNU C\n multi-line\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: base-files\nStatus: install ok installed\nArchitecture: arm64\nVersion: 12.4+deb12u5\n";

    #[test]
    fn dpkg_lists_installed_packages_only() {
        let p = dpkg_status(STATUS);
        assert_eq!(
            p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["libc6", "base-files"]
        );
        let os = os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        assert_eq!(
            p[0].purl(Some(&os)),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=arm64&distro=debian-12"
        );
    }

    #[test]
    fn apk_database() {
        let p = apk_installed(
            "C:Q1x=\nP:musl\nV:1.2.4-r2\nA:aarch64\n\nP:busybox\nV:1.36.1-r5\nA:aarch64\n",
        );
        assert_eq!(p.len(), 2);
        let os = os_release("ID=alpine\nVERSION_ID=3.19.1\n");
        assert_eq!(
            p[1].purl(Some(&os)),
            "pkg:apk/alpine/busybox@1.36.1-r5?arch=aarch64&distro=alpine-3.19.1"
        );
    }

    #[test]
    fn a_root_with_links_that_lead_out_is_read_without_following_them() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("var/lib")).unwrap();
        std::fs::create_dir_all(tmp.path().join("outside/dpkg")).unwrap();
        std::fs::write(tmp.path().join("outside/dpkg/status"), STATUS).unwrap();
        std::fs::write(tmp.path().join("secret"), "x").unwrap();
        // A directory link and a file link that lead out of the image.
        std::os::unix::fs::symlink(tmp.path().join("outside/dpkg"), root.join("var/lib/dpkg"))
            .unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("etc/os-release")).unwrap();
        std::fs::write(root.join("usr-file"), "hello").unwrap();
        let inv = scan(&root).unwrap();
        assert!(inv.packages.is_empty());
        assert_eq!(inv.os, None);
        assert_eq!(inv.files.len(), 1);
        assert_eq!(inv.files[0].path, "/usr-file");
        assert_eq!(
            inv.files[0].sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            inv.files[0].sha1,
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
        );
    }
}
