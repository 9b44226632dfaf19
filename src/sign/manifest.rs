//! The image manifest a signature tag holds, as cosign writes it (pkg/oci/empty,
//! pkg/oci/mutate): an OCI image manifest whose config is go-containerregistry's empty image
//! with one diff id per layer, and one layer per signature: the payload, with the signature
//! (base64 of the DER ECDSA signature) in the annotation `dev.cosignproject.cosign/signature`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::payload;

pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// The tag that holds the signatures of `digest` (`sha256:HEX`): `sha256-HEX.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

pub fn digest_of(bytes: &[u8]) -> String {
    crate::reference::digest_of(bytes).to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
    pub digest: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.to_string(),
            size: bytes.len() as u64,
            digest: digest_of(bytes),
            annotations: BTreeMap::new(),
        }
    }

    /// The signature a layer carries, if it is a simple-signing one.
    pub fn signature(&self) -> Option<&str> {
        (self.media_type == payload::MEDIA_TYPE)
            .then(|| self.annotations.get(SIGNATURE_ANNOTATION))
            .flatten()
            .map(String::as_str)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// One signature: its layer (descriptor with the annotation) and the payload it carries.
#[derive(Debug, Clone)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub payload: Vec<u8>,
}

impl Layer {
    /// A new signature layer: `payload` signed with `signature` (DER bytes).
    pub fn new(payload: Vec<u8>, signature: &[u8]) -> Self {
        let mut descriptor = Descriptor::of(payload::MEDIA_TYPE, &payload);
        descriptor.annotations.insert(
            SIGNATURE_ANNOTATION.to_string(),
            super::key::base64(signature),
        );
        Self {
            descriptor,
            payload,
        }
    }
}

/// A signature manifest and the blobs it names (config first, then each layer's payload).
pub struct Built {
    pub manifest: Vec<u8>,
    pub blobs: Vec<Vec<u8>>,
}

/// The config go-containerregistry's `mutate.Append` writes onto its empty image: layers
/// uncompressed, so each diff id is the layer's digest.
fn config(layers: &[Layer]) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers
        .iter()
        .map(|l| l.descriptor.digest.as_str())
        .collect();
    let history: Vec<serde_json::Value> = layers
        .iter()
        .map(|_| serde_json::json!({"created": "0001-01-01T00:00:00Z"}))
        .collect();
    // Field order as go-containerregistry's ConfigFile marshals it.
    let text = format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":{},"os":"","rootfs":{{"type":"layers","diff_ids":{}}},"config":{{}}}}"#,
        serde_json::to_string(&history).expect("json"),
        serde_json::to_string(&diff_ids).expect("json"),
    );
    text.into_bytes()
}

/// The manifest holding `layers` (earlier signatures first, as cosign appends).
pub fn build(layers: &[Layer]) -> Built {
    let config = config(layers);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.to_string(),
        config: Descriptor::of(CONFIG_MEDIA_TYPE, &config),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
    };
    let mut blobs = vec![config];
    blobs.extend(layers.iter().map(|l| l.payload.clone()));
    Built {
        manifest: serde_json::to_vec(&manifest).expect("a manifest serializes"),
        blobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_tags_are_cosigns() {
        assert_eq!(signature_tag("sha256:abcd"), "sha256-abcd.sig");
    }

    #[test]
    fn a_built_manifest_names_its_blobs() {
        let layer = Layer::new(payload::bytes("r/a", "sha256:aa"), b"sig");
        let built = build(std::slice::from_ref(&layer));
        let m: ImageManifest = serde_json::from_slice(&built.manifest).unwrap();
        assert_eq!(m.media_type, MANIFEST_MEDIA_TYPE);
        assert_eq!(m.config.digest, digest_of(&built.blobs[0]));
        assert_eq!(m.layers[0].digest, digest_of(&layer.payload));
        assert_eq!(m.layers[0].media_type, payload::MEDIA_TYPE);
        assert_eq!(m.layers[0].signature(), Some("c2ln"));
        let config: serde_json::Value = serde_json::from_slice(&built.blobs[0]).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], m.layers[0].digest.as_str());
    }
}
