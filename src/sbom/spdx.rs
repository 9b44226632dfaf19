//! An [`Inventory`] as an SPDX 2.3 JSON document.
//!
//! SPDX requires a creation time and a unique namespace: the time is the image's own (its
//! config's `created`, fixed by `--timestamp` in reproducible builds) and the namespace is
//! derived from the image id, so the same image gives the same document.

use serde_json::{Value, json};

use super::Image;
use super::builtin::Inventory;

pub fn document(inv: &Inventory, image: &Image) -> Value {
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": image.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "comment": format!("platform {}, image id {}", image.platform, image.id),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    if let Some(os) = &inv.os {
        let mut p = json!({
            "SPDXID": "SPDXRef-OS",
            "name": os.id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        });
        if let Some(v) = &os.version_id {
            p["versionInfo"] = json!(v);
        }
        packages.push(p);
        relationships.push(contains("SPDXRef-OS"));
    }
    for (i, p) in inv.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{i}");
        packages.push(json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl(inv.os.as_ref()),
            }],
        }));
        relationships.push(contains(&id));
    }
    let files: Vec<Value> = inv
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let id = format!("SPDXRef-File-{i}");
            relationships.push(contains(&id));
            json!({
                "SPDXID": id,
                "fileName": format!(".{}", f.path),
                "checksums": [
                    { "algorithm": "SHA1", "checksumValue": f.sha1 },
                    { "algorithm": "SHA256", "checksumValue": f.sha256 },
                ],
            })
        })
        .collect();
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image.name,
        "documentNamespace": format!("urn:mab:spdx:{}:{}", image.name, image.id),
        "creationInfo": {
            "created": image.created,
            "creators": [format!("Tool: mab-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    })
}

fn contains(id: &str) -> Value {
    json!({
        "spdxElementId": "SPDXRef-Image",
        "relationshipType": "CONTAINS",
        "relatedSpdxElement": id,
    })
}
