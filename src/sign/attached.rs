//! `mab verify`'s checks of a platform image's attachments: the SBOM and the provenance
//! statement the config asks for are attached (found through the registry's referrers API when
//! it has one, else the fallback tag), each is a document of its kind about that image, and
//! each carries a signature of the key.

use std::path::Path;

use crate::attach::{self, Access, Commands, Referrer, Subject};
use crate::plan::{Command, CommandKind};
use crate::platform::Platform;
use crate::reference::Repository;

use super::ensure::Registry;
use super::layout::{self, Scratch};
use super::steps::kind_word;
use super::verify::Finding;

/// [`attach::Commands`] over `mab verify`'s plain registry reads.
struct Reads<'a>(&'a dyn Registry);

impl Commands for Reads<'_> {
    fn read(&mut self, command: &Command) -> Result<Option<Vec<u8>>, String> {
        self.0.read(command)
    }

    fn run(&mut self, command: &Command) -> Result<(), String> {
        self.0.run(command)
    }
}

/// One platform image to check the attachments of.
pub struct Image<'a> {
    pub repository: &'a Repository,
    pub platform: &'a Platform,
    pub digest: &'a str,
    pub access: Access,
}

/// The attachment of each type of `kinds` to `image`: found, its document read and checked.
/// Each found one's [`Referrer`] comes back with its finding, for its signature's check.
pub fn check(
    registry: &dyn Registry,
    image: &Image,
    kinds: &[String],
) -> (Vec<Finding>, Vec<Referrer>) {
    let Image {
        repository,
        platform,
        digest,
        access,
    } = image;
    let subject = Subject::named((*repository).clone(), digest);
    let referrers = match attach::referrers(&mut Reads(registry), access, &subject) {
        Ok(r) => r,
        Err(e) => {
            let finding = Finding {
                what: format!("the attachments of its {platform} image {digest}"),
                result: Err(format!("reading them failed: {e}")),
            };
            return (vec![finding], Vec::new());
        }
    };
    let mut findings = Vec::new();
    let mut found = Vec::new();
    for kind in kinds {
        let what = format!(
            "the {} ({kind}) of its {platform} image {digest}",
            kind_word(kind)
        );
        let Some(r) = referrers.iter().find(|r| &r.artifact_type == kind) else {
            findings.push(Finding {
                what,
                result: Err(format!(
                    "none is attached (neither the registry's referrers API nor the fallback tag {} lists one)",
                    subject.fallback_reference()
                )),
            });
            continue;
        };
        let result = document(registry, access, r).and_then(|bytes| {
            if kind == crate::provenance::MEDIA_TYPE {
                check_provenance(&bytes, digest)
            } else {
                check_sbom(kind, &bytes)
            }
        });
        findings.push(Finding {
            what,
            result: result.map(|detail| format!("{}: {detail}", r.reference)),
        });
        found.push(r.clone());
    }
    (findings, found)
}

/// The document an artifact manifest carries (its one layer), copied out of the registry.
fn document(registry: &dyn Registry, access: &Access, r: &Referrer) -> Result<Vec<u8>, String> {
    let scratch = Scratch::new().map_err(|e| format!("cannot make a scratch directory: {e}"))?;
    let dir = scratch.dir("artifact");
    let mut copy = Command::new(
        CommandKind::Copy,
        ["skopeo"],
        ["copy", "--preserve-digests", "--quiet"],
    );
    if access.insecure {
        copy.arg("--src-tls-verify=false");
    }
    if let Some(conf) = &access.registries_conf {
        copy.arg("--registries-conf")
            .arg(conf.to_string_lossy().into_owned());
    }
    copy.registry(r.reference.as_str())
        .arg(format!("oci:{}:{}", dir.display(), layout::NAME));
    registry
        .run(&copy)
        .map_err(|e| format!("copying it failed: {e}"))?;
    read_layer(&dir)
}

fn read_layer(dir: &Path) -> Result<Vec<u8>, String> {
    let manifest = layout::manifest(dir).map_err(|e| e.to_string())?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| format!("its manifest is not JSON: {e}"))?;
    let digest = manifest["layers"][0]["digest"]
        .as_str()
        .ok_or("its manifest has no layer")?;
    layout::blob(dir, digest).map_err(|e| e.to_string())
}

fn field<'v>(doc: &'v serde_json::Value, name: &str) -> Result<&'v str, String> {
    doc[name]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("it has no `{name}`"))
}

/// An SBOM's required fields: CycloneDX's `bomFormat` and `specVersion`; SPDX 2.3's
/// `spdxVersion`, `dataLicense`, `SPDXID`, `name`, `documentNamespace` and `creationInfo`
/// (`created`, `creators`). What it lists, in words.
pub fn check_sbom(media_type: &str, bytes: &[u8]) -> Result<String, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON: {e}"))?;
    if media_type.contains("cyclonedx") {
        if field(&doc, "bomFormat")? != "CycloneDX" {
            return Err("its `bomFormat` is not CycloneDX".into());
        }
        let version = field(&doc, "specVersion")?;
        let components = doc["components"].as_array().map_or(0, Vec::len);
        return Ok(format!("CycloneDX {version}, {components} components"));
    }
    let version = field(&doc, "spdxVersion")?;
    if !version.starts_with("SPDX-") {
        return Err(format!("its `spdxVersion` is {version}"));
    }
    for name in ["dataLicense", "name", "documentNamespace"] {
        field(&doc, name)?;
    }
    if field(&doc, "SPDXID")? != "SPDXRef-DOCUMENT" {
        return Err("its `SPDXID` is not SPDXRef-DOCUMENT".into());
    }
    let info = &doc["creationInfo"];
    field(info, "created").map_err(|e| format!("creationInfo: {e}"))?;
    if info["creators"].as_array().is_none_or(Vec::is_empty) {
        return Err("creationInfo: it names no creators".into());
    }
    let packages = doc["packages"].as_array().map_or(0, Vec::len);
    Ok(format!("{version}, {packages} packages"))
}

/// A provenance statement: an in-toto statement v1 with the SLSA provenance v1 predicate whose
/// subject is the image `digest`.
pub fn check_provenance(bytes: &[u8], digest: &str) -> Result<String, String> {
    use crate::provenance::{PREDICATE_TYPE, STATEMENT_TYPE};
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON: {e}"))?;
    if field(&doc, "_type")? != STATEMENT_TYPE {
        return Err(format!("it is no in-toto statement ({STATEMENT_TYPE})"));
    }
    let predicate = field(&doc, "predicateType")?;
    if predicate != PREDICATE_TYPE {
        return Err(format!(
            "its predicate is {predicate}, not {PREDICATE_TYPE}"
        ));
    }
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("{digest} is no digest"));
    };
    let subjects = doc["subject"].as_array().map_or(&[][..], Vec::as_slice);
    if !subjects
        .iter()
        .any(|s| s["digest"][algorithm].as_str() == Some(hex))
    {
        let named: Vec<String> = subjects.iter().map(|s| s["digest"].to_string()).collect();
        return Err(format!(
            "its subject is [{}], not this image",
            named.join(", ")
        ));
    }
    Ok(format!("SLSA provenance v1 of {digest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sboms_need_their_required_fields() {
        let cdx = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{}]}"#;
        assert_eq!(
            check_sbom("application/vnd.cyclonedx+json", cdx).unwrap(),
            "CycloneDX 1.5, 1 components"
        );
        assert!(
            check_sbom(
                "application/vnd.cyclonedx+json",
                br#"{"bomFormat":"CycloneDX"}"#
            )
            .is_err()
        );
        assert!(check_sbom("application/vnd.cyclonedx+json", b"not json").is_err());
        let spdx = serde_json::json!({
            "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
            "name": "x", "documentNamespace": "https://example/x",
            "creationInfo": {"created": "2026-01-01T00:00:00Z", "creators": ["Tool: mab"]},
            "packages": []
        });
        let bytes = serde_json::to_vec(&spdx).unwrap();
        assert_eq!(
            check_sbom("application/spdx+json", &bytes).unwrap(),
            "SPDX-2.3, 0 packages"
        );
        let mut broken = spdx.clone();
        broken["creationInfo"]["creators"] = serde_json::json!([]);
        let err = check_sbom(
            "application/spdx+json",
            &serde_json::to_vec(&broken).unwrap(),
        );
        assert!(err.unwrap_err().contains("creators"));
    }

    #[test]
    fn provenance_must_name_the_image() {
        use crate::provenance::{PREDICATE_TYPE, STATEMENT_TYPE};
        let doc = |hex: &str| {
            serde_json::to_vec(&serde_json::json!({
                "_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE,
                "subject": [{"name": "r", "digest": {"sha256": hex}}]
            }))
            .unwrap()
        };
        assert!(check_provenance(&doc("ab"), "sha256:ab").is_ok());
        let err = check_provenance(&doc("cd"), "sha256:ab").unwrap_err();
        assert!(err.contains("not this image"), "{err}");
    }
}
