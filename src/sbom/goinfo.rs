//! The build information Go (1.18 and later) writes into every binary, in the ELF section
//! `.go.buildinfo`: the Go version and the modules the binary was built from (what
//! `go version -m` prints).
//!
//! Layout (Go's `debug/buildinfo`): a 32-byte header, the magic `\xff Go buildinf:`, the pointer
//! size and a flags byte; with flag 2 the version and the module info follow the header inline,
//! each a uvarint length then the bytes. Module info is framed by 16 bytes on each side and holds
//! tab-separated lines: `path`, `mod PATH VERSION SUM`, `dep PATH VERSION SUM`, `=> ...` (the
//! replacement of the line above). Binaries older than Go 1.18 keep pointers instead: they are
//! named without modules.

use object::{Object, ObjectSection};

const MAGIC: &[u8] = b"\xff Go buildinf:";
const INLINE: u8 = 2;

/// A module a Go binary was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub path: String,
    pub version: String,
}

/// What a Go binary says of its build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.21.5`.
    pub go_version: String,
    /// The main package's path (`path` line).
    pub path: Option<String>,
    /// The main module (`mod` line).
    pub main: Option<Module>,
    /// `dep` lines, a replacement taking the place of what it replaces.
    pub deps: Vec<Module>,
}

/// The build info of an ELF file's bytes, if it is a Go binary that has one.
pub fn read(file: &[u8]) -> Option<BuildInfo> {
    let obj = object::File::parse(file).ok()?;
    let section = obj.section_by_name(".go.buildinfo")?;
    parse_section(section.data().ok()?)
}

fn uvarint(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in data.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn string(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, n) = uvarint(data)?;
    let end = n.checked_add(usize::try_from(len).ok()?)?;
    Some((data.get(n..end)?, data.get(end..)?))
}

pub(crate) fn parse_section(data: &[u8]) -> Option<BuildInfo> {
    if data.len() < 32 || !data.starts_with(MAGIC) || data[15] & INLINE == 0 {
        return None;
    }
    let (version, rest) = string(&data[32..])?;
    let (mut modinfo, _) = string(rest)?;
    // Framed by 16 bytes on each side when present.
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        modinfo = &modinfo[16..modinfo.len() - 16];
    }
    let mut info = BuildInfo {
        go_version: String::from_utf8_lossy(version).into_owned(),
        path: None,
        main: None,
        deps: Vec::new(),
    };
    let module = |f: &[&str]| Module {
        path: f.get(1).unwrap_or(&"").to_string(),
        version: f.get(2).unwrap_or(&"").to_string(),
    };
    for line in String::from_utf8_lossy(modinfo).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[0] {
            "path" => info.path = fields.get(1).map(|s| s.to_string()),
            "mod" => info.main = Some(module(&fields)),
            "dep" => info.deps.push(module(&fields)),
            "=>" => {
                if let Some(last) = info.deps.last_mut() {
                    *last = module(&fields);
                }
            }
            _ => {}
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(version: &str, modinfo: &str) -> Vec<u8> {
        let mut s = MAGIC.to_vec();
        s.extend([8, INLINE]);
        s.resize(32, 0);
        let framed = format!("{}{modinfo}{}", "0".repeat(16), "1".repeat(16));
        for text in [version, &framed] {
            let mut n = text.len();
            while n >= 0x80 {
                s.push((n as u8) | 0x80);
                n >>= 7;
            }
            s.push(n as u8);
            s.extend(text.as_bytes());
        }
        s
    }

    #[test]
    fn modules_and_replacements() {
        let data = section(
            "go1.21.5",
            "path\texample.com/cmd/tool\nmod\texample.com\tv1.2.3\th1:x=\ndep\tgolang.org/x/sys\tv0.1.0\th1:y=\ndep\told.example/a\tv1.0.0\n=>\tnew.example/a\tv1.1.0\th1:z=\nbuild\tGOARCH=arm64\n",
        );
        let info = parse_section(&data).unwrap();
        assert_eq!(info.go_version, "go1.21.5");
        assert_eq!(info.path.as_deref(), Some("example.com/cmd/tool"));
        assert_eq!(info.main.unwrap().version, "v1.2.3");
        assert_eq!(
            info.deps,
            [
                Module {
                    path: "golang.org/x/sys".into(),
                    version: "v0.1.0".into()
                },
                Module {
                    path: "new.example/a".into(),
                    version: "v1.1.0".into()
                }
            ]
        );
    }

    #[test]
    fn old_or_broken_sections_are_none() {
        let mut old = section("go1.17", "");
        old[15] = 0;
        assert_eq!(parse_section(&old), None);
        assert_eq!(parse_section(b"\xff Go buildinf:"), None);
        let mut cut = section("go1.21.5", "path\tx\n");
        cut.truncate(40);
        assert_eq!(parse_section(&cut), None);
    }

    /// podman and skopeo on this machine are Go binaries (Debian builds them with Go 1.19).
    #[test]
    fn a_real_go_binary() {
        let Ok(bytes) = std::fs::read("/usr/bin/skopeo") else {
            return;
        };
        let info = read(&bytes).expect("skopeo has Go build info");
        assert!(info.go_version.starts_with("go1."), "{info:?}");
        assert!(read(&std::fs::read("/proc/self/exe").unwrap()).is_none());
    }
}
