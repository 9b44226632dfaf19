//! The file a split runner writes (`mab run --platform P --digests-out FILE`) and `mab merge`
//! reads: per image of the runner's platforms, the digest it pushed by digest (or that the
//! registry holds, when unchanged), with its input digest and node; and the lists the runner's
//! selection holds, which the merge must complete.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::platform::Platform;
use crate::reference::Repository;

/// The version of the format; bumped on any incompatible change, and a file of another
/// version is refused (a merge must not guess what a runner meant).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestsFile {
    pub version: u32,
    /// The run that wrote it.
    pub run_id: String,
    /// The platforms the runner built (`--platform`).
    pub platforms: Vec<Platform>,
    /// Every list (instance name) of the runner's selection that is pushed: the merge
    /// publishes these, and only once every platform of each is in some file.
    pub lists: Vec<String>,
    pub images: Vec<ImageDigest>,
}

/// One platform's image of a list, in its list's repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDigest {
    /// The instance name (the list's).
    pub image: String,
    pub platform: Platform,
    pub repository: Repository,
    /// The image manifest's digest in `repository`, `sha256:HEX`.
    pub digest: String,
    /// Its build's input digest, which the list's entry is annotated with.
    pub inputs: String,
    /// The build node it was built on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The registry held it already (its list was unchanged): nothing was built.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
}

/// Whether `s` is a sha256 digest as registries write it.
fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl DigestsFile {
    /// Reads and checks `path`: a file of another version, or a digest that is not one, is
    /// refused with the reason.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version = serde_json::from_str(text)
            .map_err(|e| format!("not a digests file of `mab run --digests-out`: {e}"))?;
        if version.version != FORMAT_VERSION {
            return Err(format!(
                "a digests file of format version {}, this mab reads version {FORMAT_VERSION}: write it with the same mab as merges it",
                version.version
            ));
        }
        let file: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for i in &file.images {
            for (what, value) in [("digest", &i.digest), ("inputs", &i.inputs)] {
                if !is_digest(value) {
                    return Err(format!(
                        "{} {}: {what} `{value}` is not a sha256 digest",
                        i.image, i.platform
                    ));
                }
            }
        }
        Ok(file)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a digests file serialises") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> DigestsFile {
        DigestsFile {
            version: FORMAT_VERSION,
            run_id: "20260101-000000-1".into(),
            platforms: vec!["linux/arm64".parse().unwrap()],
            lists: vec!["app".into()],
            images: vec![ImageDigest {
                image: "app".into(),
                platform: "linux/arm64".parse().unwrap(),
                repository: "r.io/a/app".parse().unwrap(),
                digest: format!("sha256:{}", "a".repeat(64)),
                inputs: format!("sha256:{}", "b".repeat(64)),
                node: None,
                unchanged: false,
            }],
        }
    }

    #[test]
    fn a_file_reads_back_as_written() {
        let f = file();
        assert_eq!(DigestsFile::parse(&f.to_json()), Ok(f));
    }

    #[test]
    fn another_version_or_a_bad_digest_is_refused() {
        let mut f = file();
        f.version = 99;
        let err = DigestsFile::parse(&f.to_json()).unwrap_err();
        assert!(err.contains("format version 99"), "{err}");
        let mut f = file();
        f.images[0].digest = "sha256:1".into();
        let err = DigestsFile::parse(&f.to_json()).unwrap_err();
        assert!(err.contains("app linux/arm64: digest `sha256:1`"), "{err}");
        let err = DigestsFile::parse("{}").unwrap_err();
        assert!(err.contains("not a digests file"), "{err}");
    }
}
