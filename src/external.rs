//! External platforms (`from = "docker://REF"` in a platform override): a platform's entry of
//! a list taken from an image that is already in a registry (caddy's Windows images built
//! elsewhere, an image another CI job pushed) instead of being built here.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::platform::Platform;
use crate::reference::{Repository, Tag};

/// The only transport `from` takes: the image must be in a registry, where the list's other
/// entries are pushed too.
pub const SCHEME: &str = "docker://";

/// What `from` names: a repository and a tag (resolved to a digest once per run) or a digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExternalRef {
    pub repository: Repository,
    pub pin: Pin,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pin {
    Tag(Tag),
    /// `sha256:HEX`.
    Digest(String),
}

impl ExternalRef {
    /// The digest, when `from` names one: nothing to resolve.
    pub fn digest(&self) -> Option<&str> {
        match &self.pin {
            Pin::Digest(d) => Some(d),
            Pin::Tag(_) => None,
        }
    }

    /// `REPOSITORY@DIGEST`.
    pub fn at_digest(&self, digest: &str) -> String {
        format!("{}@{digest}", self.repository)
    }
}

impl FromStr for ExternalRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some(reference) = s.strip_prefix(SCHEME) else {
            return Err(format!(
                "`{s}` does not start with `{SCHEME}`: an external platform is read from a registry"
            ));
        };
        let (name, pin) = match reference.split_once('@') {
            Some((name, digest)) => {
                let hex = digest.strip_prefix("sha256:").unwrap_or("");
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "`{digest}` is not a digest (`sha256:` and 64 hexadecimal digits)"
                    ));
                }
                (name, Pin::Digest(digest.to_ascii_lowercase()))
            }
            None => {
                let slash = reference.rfind('/').map_or(0, |i| i + 1);
                match reference[slash..].rfind(':') {
                    Some(i) => {
                        let tag = &reference[slash + i + 1..];
                        let tag = tag.parse::<Tag>().map_err(|e| e.to_string())?;
                        (&reference[..slash + i], Pin::Tag(tag))
                    }
                    None => {
                        return Err(format!(
                            "`{s}` names no tag or digest: write `{s}:TAG` or `{s}@sha256:...`"
                        ));
                    }
                }
            }
        };
        let repository = name.parse::<Repository>().map_err(|e| e.to_string())?;
        Ok(Self { repository, pin })
    }
}

impl fmt::Display for ExternalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pin {
            Pin::Tag(t) => write!(f, "{}:{t}", self.repository),
            Pin::Digest(d) => write!(f, "{}@{d}", self.repository),
        }
    }
}

impl Serialize for ExternalRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One platform of an instance taken from a registry image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct External {
    pub platform: Platform,
    pub from: ExternalRef,
    /// Where `from` is written (`FILE:LINE:COL`), for the errors of the run that reads it.
    pub at: String,
}

/// What an image's config says its platform is (`os`, `architecture`, `variant`,
/// `os.version`), as `os/arch[/variant]` plus the version when there is one.
pub fn config_platform(config: &serde_json::Value) -> Option<(String, Option<String>)> {
    let field = |k: &str| {
        config
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    let mut platform = format!("{}/{}", field("os")?, field("architecture")?);
    if let Some(v) = field("variant") {
        platform.push('/');
        platform.push_str(v);
    }
    Some((platform, field("os.version").map(String::from)))
}

/// Whether an image of `found` (from its config) may stand for the override's `key`: same
/// os, architecture and variant. Keys name no `os.version`: an image of any version fits, and
/// the list's entry carries the image's own (podman reads it from the config).
pub fn platform_matches(key: &Platform, found: &str) -> bool {
    found.parse::<Platform>().is_ok_and(|found| {
        found.os() == key.os() && found.arch() == key.arch() && found.variant() == key.variant()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_or_a_digest_after_the_scheme() {
        let r: ExternalRef = "docker://ghcr.io/caddy/caddy:2-windows".parse().unwrap();
        assert_eq!(r.to_string(), "ghcr.io/caddy/caddy:2-windows");
        assert_eq!(r.digest(), None);
        let d = format!("sha256:{}", "a".repeat(64));
        let r: ExternalRef = format!("docker://127.0.0.1:5000/x/y@{d}").parse().unwrap();
        assert_eq!(r.digest(), Some(d.as_str()));
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/x/y@{d}"));
        for bad in [
            "ghcr.io/a/b:1",
            "docker://ghcr.io/a/b",
            "docker://ghcr.io/a/b@sha256:12",
            "docker://ghcr.io/A/b:1",
            "oci-archive:x.tar",
        ] {
            assert!(bad.parse::<ExternalRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_config_says_the_platform() {
        let c = serde_json::json!({"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.2113"});
        let (p, v) = config_platform(&c).unwrap();
        assert_eq!(p, "windows/amd64");
        assert_eq!(v.as_deref(), Some("10.0.20348.2113"));
        assert!(platform_matches(&"windows/amd64".parse().unwrap(), &p));
        assert!(!platform_matches(&"linux/amd64".parse().unwrap(), &p));
        let c = serde_json::json!({"os": "linux", "architecture": "arm", "variant": "v7"});
        let (p, _) = config_platform(&c).unwrap();
        assert!(platform_matches(&"linux/arm/v7".parse().unwrap(), &p));
        assert!(!platform_matches(&"linux/arm/v6".parse().unwrap(), &p));
    }
}
