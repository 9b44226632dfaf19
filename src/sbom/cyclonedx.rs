//! An [`Inventory`] as a CycloneDX 1.5 JSON document.
//!
//! Deterministic: no serial number or timestamp (both optional in 1.5), so the same image
//! gives the same document and a rebuilt image of the same digest attaches nothing new.

use serde_json::{Value, json};

use super::Image;
use super::builtin::{Ecosystem, Inventory};

pub fn document(inv: &Inventory, image: &Image) -> Value {
    let mut components = Vec::new();
    if let Some(os) = &inv.os {
        let mut c = json!({
            "type": "operating-system",
            "bom-ref": "os",
            "name": os.id,
        });
        if let Some(v) = &os.version_id {
            c["version"] = json!(v);
        }
        if let Some(p) = &os.pretty_name {
            c["description"] = json!(p);
        }
        components.push(c);
    }
    for (i, p) in inv.packages.iter().enumerate() {
        let mut c = json!({
            "type": "library",
            "bom-ref": format!("pkg-{i}"),
            "name": p.name,
            "version": p.version,
            "purl": p.purl(inv.os.as_ref()),
        });
        if let Ecosystem::Go { binary } = &p.ecosystem {
            c["properties"] = json!([{ "name": "mab:found-in", "value": binary }]);
        }
        components.push(c);
    }
    for (i, f) in inv.files.iter().enumerate() {
        components.push(json!({
            "type": "file",
            "bom-ref": format!("file-{i}"),
            "name": f.path,
            "hashes": [
                { "alg": "SHA-256", "content": f.sha256 },
                { "alg": "SHA-1", "content": f.sha1 },
            ],
        }));
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "tools": { "components": [
                { "type": "application", "name": "mab", "version": env!("CARGO_PKG_VERSION") }
            ]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": image.name,
                "properties": [
                    { "name": "mab:platform", "value": image.platform },
                    { "name": "mab:image-id", "value": image.id },
                ],
            },
        },
        "components": components,
    })
}
