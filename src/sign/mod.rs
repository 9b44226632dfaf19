//! Signatures in cosign's format: keys ([`key`]), the payload signed ([`payload`]), the
//! manifest a signature tag holds ([`manifest`]), the OCI layout skopeo pushes it from
//! ([`layout`]), the plan's signing steps ([`steps`]) and what runs them ([`ensure`]).
//!
//! Signing is offline with a key (no transparency log): a consumer checks with
//! `cosign verify --key cosign.pub --insecure-ignore-tlog` or `mab verify`.

pub mod attached;
pub mod config;
pub mod ensure;
pub mod key;
pub mod keygen;
pub mod layout;
pub mod manifest;
pub mod payload;
pub mod steps;
pub mod verify;

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};

pub use config::{KeySource, Signing};
pub use steps::SignStep;

/// The key a run signs with, opened once before anything is built.
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(key: SigningKey) -> Self {
        Self { key }
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// A signature layer for image `digest` in `repository` (ECDSA P-256 / SHA-256 over the
    /// payload bytes, DER-encoded, as cosign signs).
    pub fn sign(&self, repository: &str, digest: &str) -> manifest::Layer {
        let payload = payload::bytes(repository, digest);
        let signature: Signature = self.key.sign(&payload);
        manifest::Layer::new(payload, signature.to_der().as_bytes())
    }
}

/// Checks one signature layer: its payload names `digest` in `repository`, and its signature
/// is `key`'s over the payload bytes.
pub fn check(
    layer: &manifest::Layer,
    key: &VerifyingKey,
    repository: &str,
    digest: &str,
) -> Result<(), String> {
    use base64::Engine;
    let Some(encoded) = layer.descriptor.signature() else {
        return Err("it is no cosign signature layer".into());
    };
    let der = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("its signature is not base64: {e}"))?;
    let signature = DerSignature::from_bytes(&der)
        .map_err(|e| format!("its signature is no DER ECDSA signature: {e}"))?;
    key.verify(&layer.payload, &signature)
        .map_err(|_| "its signature is not the key's over its payload".to_string())?;
    payload::names(&layer.payload, repository, digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn a_signature_checks_with_its_key_only() {
        let signer = Signer::new(SigningKey::random(&mut OsRng));
        let layer = signer.sign("r/app", "sha256:aa");
        check(&layer, signer.verifying_key(), "r/app", "sha256:aa").unwrap();
        let other = SigningKey::random(&mut OsRng);
        assert!(check(&layer, other.verifying_key(), "r/app", "sha256:aa").is_err());
        // Replayed for another image, or in another repository.
        assert!(check(&layer, signer.verifying_key(), "r/app", "sha256:bb").is_err());
        assert!(check(&layer, signer.verifying_key(), "r/other", "sha256:aa").is_err());
        // A payload changed after signing.
        let mut tampered = layer.clone();
        tampered.payload = payload::bytes("r/app", "sha256:bb");
        assert!(check(&tampered, signer.verifying_key(), "r/app", "sha256:bb").is_err());
    }
}
