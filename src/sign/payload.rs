//! The simple-signing payload cosign signs: which image (by manifest digest) in which
//! repository. Its bytes are what the signature covers, so they are written exactly as cosign
//! writes them (sigstore/sigstore `payload.Cosign`, key order included).

use serde::{Deserialize, Serialize};

/// The media type of the layer that holds a payload.
pub const MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const TYPE: &str = "cosign container image signature";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Payload {
    pub critical: Critical,
    /// Always null in what mab writes; cosign puts `-a KEY=VALUE` annotations here.
    pub optional: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Critical {
    pub identity: Identity,
    pub image: Image,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Image {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

/// The payload bytes that sign `digest` (`sha256:HEX`) in `repository` (`host/path`, no tag).
pub fn bytes(repository: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: repository.to_string(),
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: TYPE.to_string(),
        },
        optional: None,
    })
    .expect("a payload serializes")
}

/// Whether `raw` is a payload for `digest` in `repository`: what a verifier must check beside
/// the signature, so that a signature of another image (or of this image elsewhere) does not
/// pass for this one's.
pub fn names(raw: &[u8], repository: &str, digest: &str) -> Result<(), String> {
    let p: Payload = serde_json::from_slice(raw)
        .map_err(|e| format!("its payload is not a cosign payload: {e}"))?;
    if p.critical.kind != TYPE {
        return Err(format!("its payload is of type `{}`", p.critical.kind));
    }
    if p.critical.image.docker_manifest_digest != digest {
        return Err(format!(
            "its payload signs {}, not {digest}",
            p.critical.image.docker_manifest_digest
        ));
    }
    if p.critical.identity.docker_reference != repository {
        return Err(format!(
            "its payload names repository {}, not {repository}",
            p.critical.identity.docker_reference
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_cosigns() {
        let raw = bytes("127.0.0.1:5000/app", "sha256:ab12");
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/app"},"image":{"docker-manifest-digest":"sha256:ab12"},"type":"cosign container image signature"},"optional":null}"#
        );
    }

    #[test]
    fn names_checks_digest_and_repository() {
        let raw = bytes("r.example/app", "sha256:aa");
        names(&raw, "r.example/app", "sha256:aa").unwrap();
        assert!(names(&raw, "r.example/app", "sha256:bb").is_err());
        assert!(names(&raw, "r.example/other", "sha256:aa").is_err());
        assert!(names(b"{}", "r.example/app", "sha256:aa").is_err());
    }
}
