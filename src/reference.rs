//! Image names: a [`Repository`], a [`Tag`], and the [`ImageRef`] that joins them. Each can only
//! hold a value that the OCI distribution reference grammar accepts, so a rendered template that
//! turns into `$(touch x)` or `my tag` never reaches podman.
//!
//! The grammar is checked here directly rather than with `oci-spec`'s `Reference`: its regex
//! costs about 50 µs a parse (a capture search over a large NFA), which was three quarters of
//! the time of planning 1,000 images. A test checks this parser against `oci-spec` case by case.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const DOCKER_HUB: &str = "docker.io";
const NAME_MAX: usize = 255;

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let run = i;
        while i < b.len() && lower_alnum(b[i]) {
            i += 1;
        }
        if i == run {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `host(:port)?`, host being dot-separated `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` labels.
fn is_domain(s: &str) -> bool {
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    host.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// The registry and the rest of a reference whose first component names one (has a `.` or a
/// `:`, or is `localhost`): distribution's `splitDomain` rule.
fn split_domain(reference: &str) -> Option<(&str, &str)> {
    reference
        .split_once('/')
        .filter(|(first, _)| first.contains(['.', ':']) || *first == "localhost")
}

/// The registry part of an image reference as a `FROM` line writes it (`docker.io` for
/// `debian:12`, `localhost` for `localhost/x`): as written, where [`Repository::registry`] is
/// the qualified one.
pub fn registry_of(reference: &str) -> &str {
    split_domain(reference).map_or(DOCKER_HUB, |(domain, _)| domain)
}

/// Splits a reference's name into registry and path, filling in Docker Hub's defaults the way
/// distribution's `splitDomain` does; `None` when the name is outside the grammar.
fn split_name(name: &str) -> Option<(String, String)> {
    let valid_path = |p: &str| p.split('/').all(is_path_component);
    let valid = match name.split_once('/') {
        Some((first, rest)) => (is_domain(first) && valid_path(rest)) || valid_path(name),
        None => valid_path(name),
    };
    if !valid {
        return None;
    }
    let (mut registry, mut path) = match split_domain(name) {
        Some((domain, rest)) => (domain.to_string(), rest.to_string()),
        None => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if registry == "index.docker.io" {
        registry = DOCKER_HUB.to_string();
    }
    if registry == DOCKER_HUB && !path.contains('/') {
        path = format!("library/{path}");
    }
    (path.len() <= NAME_MAX).then_some((registry, path))
}

/// Splits `name[:tag]` (no digest) at the tag's colon: the last one after the last `/`.
fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], Some(&reference[slash + i + 1..])),
        None => (reference, None),
    }
}

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
    #[error("`{0}` names no tag (expected `repository:tag`)")]
    NoTag(String),
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

    /// The registry host (`host[:port]`), `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        self.qualified.split_once('/').map_or("", |(r, _)| r)
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
        if let Some((name, _)) = s.split_once('@') {
            return Err(match split_name(split_tag(name).0) {
                Some(_) => ReferenceError::RepositoryWithTag(s.to_string()),
                None => ReferenceError::InvalidRepository(s.to_string()),
            });
        }
        let (name, tag) = split_tag(s);
        let Some((registry, path)) = split_name(name) else {
            return Err(ReferenceError::InvalidRepository(s.to_string()));
        };
        match tag {
            Some(t) if t.parse::<Tag>().is_ok() => {
                Err(ReferenceError::RepositoryWithTag(s.to_string()))
            }
            Some(_) => Err(ReferenceError::InvalidRepository(s.to_string())),
            None => Ok(Self {
                written: s.to_string(),
                qualified: format!("{registry}/{path}"),
            }),
        }
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

/// Read the way it is written: parsed, so a file read back holds only valid repositories.
impl<'de> Deserialize<'de> for Repository {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
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
        if written.contains('@') {
            return None;
        }
        let (name, tag) = split_tag(written);
        let tag = match tag {
            Some(t) => t.parse::<Tag>().ok()?.0,
            None => "latest".to_string(),
        };
        let (registry, path) = split_name(name)?;
        Some(format!("{registry}/{path}:{tag}"))
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    /// `repository:tag`, the tag required (`quay.io/argoproj/argocd:latest`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, tag) = split_tag(s);
        let Some(tag) = tag else {
            // Words that are no repository either were meant as a tag.
            return Err(match name.parse::<Repository>() {
                Ok(_) => ReferenceError::NoTag(s.to_string()),
                Err(_) => ReferenceError::InvalidTag(s.to_string()),
            });
        };
        Ok(Self {
            repository: name.parse()?,
            tag: tag.parse()?,
        })
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

/// A content digest (`sha256:HEX`), as registries name manifests and blobs and podman names
/// images: oci-spec's, which checks the algorithm and the length and alphabet of the rest.
pub use oci_spec::image::Digest;

/// The `sha256:` digest of `bytes`: the one place mab writes a digest.
pub fn digest_of(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    sha256_hex(&format!("{:x}", sha2::Sha256::digest(bytes))).expect("64 lowercase hex digits")
}

/// `sha256:HEX` of the bare hex podman prints for an image id (`{{.Id}}`).
pub fn sha256_hex(hex: &str) -> Option<Digest> {
    hex.parse::<oci_spec::image::Sha256Digest>()
        .ok()
        .map(Digest::from)
}

/// The digest a reference as written pins (`alpine:3@sha256:...`), if it pins a valid one.
pub fn pinned_digest(reference: &str) -> Option<Digest> {
    reference.rsplit_once('@')?.1.parse().ok()
}

/// The name of a reference as written, without its tag or digest (`127.0.0.1:5000/app` of
/// `127.0.0.1:5000/app:1`: a port's colon is not a tag's).
pub fn name_of(reference: &str) -> &str {
    let name = reference
        .split_once('@')
        .map_or(reference, |(name, _)| name);
    split_tag(name).0
}

/// An image pinned by digest in a repository, `REPOSITORY@DIGEST`: how mab names an image in
/// a registry (one a node or a split runner pushed, an unchanged list's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pinned {
    pub repository: Repository,
    pub digest: Digest,
}

impl FromStr for Pinned {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (repository, digest) = s
            .rsplit_once('@')
            .ok_or_else(|| format!("`{s}` names no digest (expected `repository@digest`)"))?;
        Ok(Self {
            repository: repository
                .parse()
                .map_err(|e: ReferenceError| e.to_string())?,
            digest: digest
                .parse()
                .map_err(|e| format!("`{digest}` is no digest: {e}"))?,
        })
    }
}

impl fmt::Display for Pinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.repository, self.digest)
    }
}

impl Serialize for Pinned {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pinned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
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
            assert_eq!(repo.registry(), qualified.split('/').next().unwrap());
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

/// This parser against `oci-spec`'s regex-based one, on the grammar's corner cases: both must
/// accept the same references and split them the same way.
#[cfg(test)]
mod differential {
    use super::*;
    use oci_spec::distribution::Reference;

    #[test]
    fn agrees_with_oci_spec() {
        let domains = [
            "",
            "ghcr.io/",
            "localhost/",
            "test:5000/",
            "Foo/",
            "a-b.c/",
            "-x.com/",
            "x_y.com/",
            "a.b:/",
            "1.2.3.4:80/",
            "sub-dom1.foo.com/",
            "xn--n3h.com/",
        ];
        let paths = [
            "a",
            "a/b",
            "a__b",
            "a___b",
            "a--b",
            "a---b",
            "a.b",
            "a._b",
            "a.-b",
            "A",
            "a/",
            "/a",
            "a//b",
            "0",
            "a-",
            "-a",
            "_a",
            "a_b/c.d/e-f",
            "ab$",
            "a b",
            "test.com",
            "library/busybox",
            "foo_bar.com",
            "a..b",
        ];
        let tags = [
            "", ":latest", ":1.0", ":-x", ":_x", ":.x", ":a b", ":Upper", ":5000",
        ];
        let long_tag = format!(":{}", "t".repeat(128));
        let too_long_tag = format!(":{}", "t".repeat(129));
        let long_path = "a".repeat(256);
        let (mut checked, mut accepted) = (0, 0);
        for d in domains {
            for p in paths.iter().copied().chain([long_path.as_str()]) {
                for t in tags
                    .iter()
                    .copied()
                    .chain([long_tag.as_str(), too_long_tag.as_str()])
                {
                    let input = format!("{d}{p}{t}");
                    let theirs = Reference::try_from(input.as_str()).ok();
                    let ours = ImageRef::qualify_written(&input);
                    let theirs_qualified = theirs.as_ref().map(|r| {
                        format!("{}/{}:{}", r.registry(), r.repository(), r.tag().unwrap())
                    });
                    assert_eq!(ours, theirs_qualified, "input {input:?}");
                    checked += 1;
                    accepted += usize::from(ours.is_some());
                }
            }
        }
        assert!(checked > 2000);
        // Both outcomes are well represented, so agreement means something.
        assert!(
            accepted > 300 && checked - accepted > 300,
            "{accepted} of {checked} accepted"
        );
    }

    #[test]
    fn digests_are_written_once_and_pinned_references_parse_whole() {
        let d = digest_of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha256_hex(d.digest()), Some(d.clone()));
        assert_eq!(sha256_hex("abc"), None);
        let written = format!("127.0.0.1:5000/app@{d}");
        let pinned: Pinned = written.parse().unwrap();
        assert_eq!(pinned.repository.as_str(), "127.0.0.1:5000/app");
        assert_eq!(pinned.digest, d);
        assert_eq!(pinned.to_string(), written);
        assert!("r/app@sha256:1".parse::<Pinned>().is_err());
        assert!("r/app:1".parse::<Pinned>().is_err());
        assert_eq!(pinned_digest(&format!("alpine:3@{d}")), Some(d));
        assert_eq!(pinned_digest("alpine:3"), None);
        assert_eq!(name_of("127.0.0.1:5000/app:1"), "127.0.0.1:5000/app");
        assert_eq!(name_of("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(name_of("r/app@sha256:ab"), "r/app");
    }
}
