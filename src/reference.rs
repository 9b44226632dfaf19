//! Image names: a [`Repository`], a [`Tag`], and the [`ImageRef`] that joins them. Each can only
//! hold a value that the OCI distribution reference grammar accepts, so a rendered template that
//! turns into `$(touch x)` or `my tag` never reaches podman.

use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::Reference;
use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("a repository cannot be empty")]
    EmptyRepository,
    #[error("repository `{0}` must be lowercase")]
    Uppercase(String),
    #[error(
        "`{0}` is not a valid repository (expected `[registry[:port]/]path`, lowercase path components of letters, digits and `._-` separators)"
    )]
    InvalidRepository(String),
    #[error("repository `{0}` must not carry a tag or digest; tags go in `tags`")]
    RepositoryWithTag(String),
    #[error(
        "`{0}` is not a valid tag (up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`)"
    )]
    InvalidTag(String),
}

/// A repository such as `ghcr.io/acme/api`, kept as written, with the fully qualified form
/// (`docker.io/library/alpine` for `alpine`) used to compare it with `FROM` lines.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repository {
    written: String,
    qualified: String,
}

impl Repository {
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// `registry/path`, with Docker Hub's implicit parts filled in.
    pub fn qualified(&self) -> &str {
        &self.qualified
    }
}

impl FromStr for Repository {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ReferenceError::EmptyRepository);
        }
        let path = s.split_once('/').map_or(s, |(_, rest)| rest);
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(s.to_string()));
        }
        let parsed =
            Reference::try_from(s).map_err(|_| ReferenceError::InvalidRepository(s.to_string()))?;
        // The parser fills in `latest`: a repository is valid only if that is all it added.
        if parsed.digest().is_some() || s.ends_with(&format!(":{}", parsed.tag().unwrap_or(""))) {
            return Err(ReferenceError::RepositoryWithTag(s.to_string()));
        }
        let qualified = format!("{}/{}", parsed.registry(), parsed.repository());
        Ok(Self {
            written: s.to_string(),
            qualified,
        })
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl Serialize for Repository {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.written)
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, the grammar's `tag` rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let ok = match s.as_bytes() {
            [first, rest @ ..] => {
                word(*first)
                    && rest.len() < 128
                    && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
            }
            [] => false,
        };
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ReferenceError::InvalidTag(s.to_string()))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `repository:tag`: one name of a manifest list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    pub repository: Repository,
    pub tag: Tag,
}

impl ImageRef {
    /// The fully qualified form, for comparing with references written elsewhere.
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.repository.qualified(), self.tag)
    }

    /// Qualifies a reference as written in a `FROM` line (`alpine` → `docker.io/library/alpine:latest`),
    /// or `None` when it is not a plain tagged reference (a digest, a variable left unresolved).
    pub fn qualify_written(written: &str) -> Option<String> {
        let parsed = Reference::try_from(written).ok()?;
        if parsed.digest().is_some() {
            return None;
        }
        Some(format!(
            "{}/{}:{}",
            parsed.registry(),
            parsed.repository(),
            parsed.tag()?
        ))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        for (input, qualified) in [
            ("ghcr.io/acme/api", "ghcr.io/acme/api"),
            ("alpine", "docker.io/library/alpine"),
            ("acme/api", "docker.io/acme/api"),
            ("127.0.0.1:5000/mab/base", "127.0.0.1:5000/mab/base"),
            ("localhost/base", "localhost/base"),
            (
                "Registry.Example.com/a__b/c-d.e",
                "Registry.Example.com/a__b/c-d.e",
            ),
        ] {
            let repo: Repository = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(repo.as_str(), input);
            assert_eq!(repo.qualified(), qualified);
        }
    }

    #[test]
    fn bad_repositories() {
        use ReferenceError::*;
        for (input, want) in [
            ("", EmptyRepository),
            ("ghcr.io/Acme/api", Uppercase("ghcr.io/Acme/api".into())),
            (
                "ghcr.io/acme/api:1.0",
                RepositoryWithTag("ghcr.io/acme/api:1.0".into()),
            ),
            (
                "ghcr.io/acme/api:latest",
                RepositoryWithTag("ghcr.io/acme/api:latest".into()),
            ),
            (
                "$(touch /tmp/x)",
                InvalidRepository("$(touch /tmp/x)".into()),
            ),
            ("acme/my api", InvalidRepository("acme/my api".into())),
            ("acme/api;rm", InvalidRepository("acme/api;rm".into())),
            ("acme//api", InvalidRepository("acme//api".into())),
            ("acme/-api", InvalidRepository("acme/-api".into())),
        ] {
            assert_eq!(
                input.parse::<Repository>().unwrap_err(),
                want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn tags() {
        for ok in [
            "latest",
            "1.4.2",
            "v1.4.2-go1.22",
            "_x",
            "A",
            &"a".repeat(128),
        ] {
            assert!(ok.parse::<Tag>().is_ok(), "{ok:?} should be a tag");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a b",
            "a;b",
            "$(x)",
            "a/b",
            "a:b",
            &"a".repeat(129),
        ] {
            assert!(bad.parse::<Tag>().is_err(), "{bad:?} should not be a tag");
        }
    }

    #[test]
    fn qualify_written_references() {
        assert_eq!(
            ImageRef::qualify_written("alpine").as_deref(),
            Some("docker.io/library/alpine:latest")
        );
        assert_eq!(
            ImageRef::qualify_written("ghcr.io/acme/base:1").as_deref(),
            Some("ghcr.io/acme/base:1")
        );
        assert_eq!(ImageRef::qualify_written("${BASE}"), None);
        let digest = format!("alpine@sha256:{}", "f".repeat(64));
        assert_eq!(ImageRef::qualify_written(&digest), None);
        let r = ImageRef {
            repository: "acme/base".parse().unwrap(),
            tag: "1".parse().unwrap(),
        };
        assert_eq!(r.to_string(), "acme/base:1");
        assert_eq!(r.qualified(), "docker.io/acme/base:1");
    }
}
