//! Container platforms (`os/arch[/variant]`), parsed and normalised the way containerd's
//! `platforms` package does, so that what a user writes, what podman builds and what a registry
//! index lists compare equal.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A normalised platform. It can only be built by parsing, so every value is canonical:
/// `arm` always carries its variant (`v7` unless told otherwise) and `arm64/v8` is plain `arm64`,
/// which is how containerd's matcher and podman's pushed indexes spell them.
///
/// Cheap to clone (a plan clones one per build and per dependency): the OS and architecture
/// are entries of the known tables, the rare variant is shared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    os: &'static str,
    arch: &'static str,
    variant: Option<Arc<str>>,
}

/// The table's entry equal to `word`; a word from elsewhere (the host's architecture, when no
/// table has it) is kept for the life of the process.
fn intern(word: String, table: &[&'static str]) -> &'static str {
    table
        .iter()
        .find(|k| **k == word)
        .copied()
        .unwrap_or_else(|| Box::leak(word.into_boxed_str()))
}

/// Why a platform string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("a platform cannot be empty")]
    Empty,
    #[error("`{component}` is not a valid platform component (letters, digits, `_` and `-` only)")]
    InvalidComponent { component: String },
    #[error("too many components: expected `os/arch[/variant]`")]
    TooManyComponents,
    #[error("unknown operating system `{0}`")]
    UnknownOs(String),
    #[error("unknown architecture `{0}`")]
    UnknownArch(String),
    #[error("`{0}` is neither a known operating system nor a known architecture")]
    UnknownOsOrArch(String),
}

impl PlatformError {
    /// A close known name for the misspelt part, if there is one.
    pub fn suggestion(&self) -> Option<&'static str> {
        let (word, known) = match self {
            Self::UnknownOs(w) => (w, KNOWN_OS),
            Self::UnknownArch(w) => (w, KNOWN_ARCH),
            Self::UnknownOsOrArch(w) => (w, KNOWN_ARCH),
            _ => return None,
        };
        crate::error::did_you_mean(word, known.iter().copied())
    }
}

// From Go's syslist.go, as containerd's database.go lists them.
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

fn normalize_os(os: &str) -> String {
    let os = os.to_ascii_lowercase();
    if os == "macos" { "darwin".into() } else { os }
}

/// containerd's `normalizeArch`: the one table that maps the many spellings of an
/// architecture (uname, Debian, Docker) to the OCI one.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.to_ascii_lowercase();
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let variant = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), variant)
        }
        "aarch64" | "arm64" => {
            let variant = if variant == "8" || variant == "v8" {
                String::new()
            } else {
                variant
            };
            ("arm64".into(), variant)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let variant = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), variant)
        }
        _ => (arch, variant),
    }
}

fn valid_component(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Platform {
    /// The platform of the machine mab runs on.
    pub fn host() -> Self {
        let (arch, variant) = normalize_arch(std::env::consts::ARCH, "");
        Self::from_parts("linux".into(), arch, variant)
    }

    fn from_parts(os: String, arch: String, variant: String) -> Self {
        Self {
            os: intern(os, KNOWN_OS),
            arch: intern(arch, KNOWN_ARCH),
            variant: (!variant.is_empty()).then(|| variant.into()),
        }
    }

    pub fn os(&self) -> &str {
        self.os
    }

    pub fn arch(&self) -> &str {
        self.arch
    }

    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// `linux-arm-v7`: for file names, local tags and build ids, where `/` cannot appear.
    pub fn slug(&self) -> String {
        let variant = self.variant.as_deref().unwrap_or_default();
        let mut s = String::with_capacity(self.os.len() + self.arch.len() + variant.len() + 2);
        for (i, part) in [self.os, self.arch, variant].into_iter().enumerate() {
            if !part.is_empty() {
                if i > 0 {
                    s.push('-');
                }
                s.push_str(part);
            }
        }
        s
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(PlatformError::Empty);
        }
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() > 3 {
            return Err(PlatformError::TooManyComponents);
        }
        if let Some(bad) = parts.iter().find(|p| !valid_component(p)) {
            return Err(PlatformError::InvalidComponent {
                component: (*bad).to_string(),
            });
        }
        let (os, arch, variant) = match parts[..] {
            [single] => {
                let os = normalize_os(single);
                if KNOWN_OS.contains(&os.as_str()) {
                    // containerd picks the host's architecture for a lone OS.
                    let host = Self::host();
                    return Ok(Self {
                        os: intern(os, KNOWN_OS),
                        ..host
                    });
                }
                let (arch, variant) = normalize_arch(single, "");
                if !KNOWN_ARCH.contains(&arch.as_str()) {
                    return Err(PlatformError::UnknownOsOrArch(single.to_string()));
                }
                // mab builds Linux images: a lone architecture means Linux, whatever the host.
                ("linux".to_string(), arch, variant)
            }
            [os, arch] => {
                let (arch, variant) = normalize_arch(arch, "");
                (normalize_os(os), arch, variant)
            }
            [os, arch, variant] => {
                let (arch, variant) = normalize_arch(arch, variant);
                (normalize_os(os), arch, variant)
            }
            _ => unreachable!("split yields one to three parts here"),
        };
        // containerd accepts any `os/arch`; a build tool should not, since a typo would only
        // surface as a failed pull or an "exec format error" much later.
        if !KNOWN_OS.contains(&os.as_str()) {
            return Err(PlatformError::UnknownOs(os));
        }
        if !KNOWN_ARCH.contains(&arch.as_str()) {
            return Err(PlatformError::UnknownArch(arch));
        }
        Ok(Self::from_parts(os, arch, variant))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads back what `Serialize` wrote (a run's report, in the tests).
impl<'de> serde::Deserialize<'de> for Platform {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Platform {
        s.parse()
            .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    /// containerd's TestParseSelector cases, with their expected values mapped through
    /// `Normalize` (the form containerd matches on and podman pushes): containerd's `Parse`
    /// prints `linux/arm` for v7 and keeps an explicit `arm64/v8`; mab spells both canonically.
    #[test]
    fn containerd_parse_cases() {
        let host = Platform::host();
        let cases: &[(&str, &str)] = &[
            ("linux/arm64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("linux/arm/v7", "linux/arm/v7"),
            ("arm", "linux/arm/v7"),
            ("armel", "linux/arm/v6"),
            ("armhf", "linux/arm/v7"),
            ("Aarch64", "linux/arm64"),
            ("x86_64", "linux/amd64"),
            ("Linux/x86_64", "linux/amd64"),
            ("i386", "linux/386"),
            ("s390x", "linux/s390x"),
            ("linux/s390x", "linux/s390x"),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).to_string(), *want, "input {input:?}");
            // Canonical output parses back to itself.
            assert_eq!(parse(want), parse(input), "round trip of {input:?}");
        }
        for (input, os) in [
            ("linux", "linux"),
            ("macOS", "darwin"),
            ("windows", "windows"),
        ] {
            let p = parse(input);
            assert_eq!(p.os(), os, "input {input:?}");
            assert_eq!(
                p.arch(),
                host.arch(),
                "lone OS {input:?} takes the host arch"
            );
        }
    }

    /// The matcher cases of TestParseSelector: each spelling must normalise to the same value.
    #[test]
    fn containerd_match_cases() {
        let equal: &[(&str, &[&str])] = &[
            (
                "linux/arm64",
                &["linux/aarch64", "linux/aarch64/v8", "linux/arm64/v8"],
            ),
            ("linux/arm", &["linux/arm/v7", "linux/armhf", "linux/arm/7"]),
            ("linux/arm/v6", &["linux/armel", "linux/arm/6"]),
            ("linux/amd64", &["linux/x86-64", "linux/amd64/v1", "amd64"]),
        ];
        for (canonical, spellings) in equal {
            for s in *spellings {
                assert_eq!(
                    parse(s),
                    parse(canonical),
                    "{s:?} should equal {canonical:?}"
                );
            }
        }
        assert_ne!(parse("linux/arm/v6"), parse("linux/arm/v7"));
        assert_ne!(parse("linux/amd64/v3"), parse("linux/amd64"));
    }

    /// containerd's TestParseSelectorInvalid, plus what mab refuses on top (unknown names,
    /// wildcards, OS versions).
    #[test]
    fn invalid_platforms() {
        let cases: &[(&str, PlatformError)] = &[
            ("", PlatformError::Empty),
            (
                "/linux/arm",
                PlatformError::InvalidComponent {
                    component: "".into(),
                },
            ),
            (
                "linux/arm/",
                PlatformError::InvalidComponent {
                    component: "".into(),
                },
            ),
            (
                "linux /arm",
                PlatformError::InvalidComponent {
                    component: "linux ".into(),
                },
            ),
            (
                "linux/&arm",
                PlatformError::InvalidComponent {
                    component: "&arm".into(),
                },
            ),
            ("linux/arm/foo/bar", PlatformError::TooManyComponents),
            (
                "*",
                PlatformError::InvalidComponent {
                    component: "*".into(),
                },
            ),
            (
                "windows(10.0.17763)",
                PlatformError::InvalidComponent {
                    component: "windows(10.0.17763)".into(),
                },
            ),
            ("linux/amd46", PlatformError::UnknownArch("amd46".into())),
            ("lnux/amd64", PlatformError::UnknownOs("lnux".into())),
            ("potato", PlatformError::UnknownOsOrArch("potato".into())),
        ];
        for (input, want) in cases {
            assert_eq!(
                input.parse::<Platform>().unwrap_err(),
                *want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn suggestions_and_slugs() {
        let err = "linux/amd46".parse::<Platform>().unwrap_err();
        assert_eq!(err.suggestion(), Some("amd64"));
        assert_eq!(parse("linux/arm/v7").slug(), "linux-arm-v7");
        assert_eq!(parse("linux/arm/v7").variant(), Some("v7"));
        assert_eq!(parse("linux/arm64").variant(), None);
    }
}
