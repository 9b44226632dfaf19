//! Running a signing step: the image keeps a signature of the run's key that its signature
//! tag holds already (a second run re-signs nothing), else gets one added beside whatever
//! signatures the tag holds, and the tag is read back.

use std::path::Path;

use crate::plan::Command;

use super::layout::{self, Scratch};
use super::manifest::{self, ImageManifest, Layer, digest_of};
use super::{SignStep, Signer, check};

/// How mab reaches the registry: the run's supervised, retried commands, or plain ones.
pub trait Registry {
    /// `command`'s output (a registry read); `None` when the reference does not exist.
    fn read(&self, command: &Command) -> Result<Option<Vec<u8>>, String>;
    /// Runs `command` (a copy).
    fn run(&self, command: &Command) -> Result<(), String>;
}

/// What a signing step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signed {
    /// The tag held a signature of the key already.
    Kept,
    /// A signature was added (the tag did not exist, or held only others').
    Added,
}

/// The signatures of the manifest named in the layout in `dir`, each with its payload.
pub fn layers(dir: &Path) -> Result<Vec<Layer>, String> {
    let raw = layout::manifest(dir).map_err(|e| e.to_string())?;
    let m: ImageManifest = serde_json::from_slice(&raw)
        .map_err(|e| format!("the signature tag holds no image manifest: {e}"))?;
    m.layers
        .into_iter()
        .map(|descriptor| {
            let payload = layout::blob(dir, &descriptor.digest).map_err(|e| e.to_string())?;
            Ok(Layer {
                descriptor,
                payload,
            })
        })
        .collect()
}

/// The signatures `step`'s tag holds for image `digest` (none when the tag does not exist),
/// copied into `scratch`.
pub fn existing(
    registry: &dyn Registry,
    step: &SignStep,
    digest: &str,
    scratch: &Scratch,
) -> Result<Vec<Layer>, String> {
    let dir = scratch.dir("existing");
    let [read, fetch, _] = step.filled(digest, &dir);
    if registry.read(&read)?.is_none() {
        return Ok(Vec::new());
    }
    registry.run(&fetch)?;
    layers(&dir)
}

/// Makes sure image `digest` carries a signature of `signer` in `step`'s repository.
pub fn ensure(
    registry: &dyn Registry,
    signer: &Signer,
    step: &SignStep,
    digest: &str,
) -> Result<Signed, String> {
    let repository = step.repository.to_string();
    let scratch = Scratch::new().map_err(|e| format!("cannot make a scratch directory: {e}"))?;
    let mut held = existing(registry, step, digest, &scratch)?;
    let key = signer.verifying_key();
    if held
        .iter()
        .any(|l| check(l, key, &repository, digest).is_ok())
    {
        return Ok(Signed::Kept);
    }
    held.push(signer.sign(&repository, digest));
    let built = manifest::build(&held);
    let dir = scratch.dir("new");
    layout::write(&dir, &built.manifest, &built.blobs)
        .map_err(|e| format!("cannot write the signature's layout: {e}"))?;
    let [read, _, push] = step.filled(digest, &dir);
    registry.run(&push)?;
    let back = registry
        .read(&read)?
        .ok_or("the signature tag is missing after the push")?;
    let (served, pushed) = (digest_of(&back), digest_of(&built.manifest));
    if served != pushed {
        return Err(format!(
            "the registry serves {served} at the signature tag, {pushed} was pushed"
        ));
    }
    Ok(Signed::Added)
}

/// One signature a run made sure of, for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignatureReport {
    /// The signature tag, `REPO:sha256-HEX.sig`.
    pub reference: String,
    /// The image signed: the index, or a platform's image.
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<crate::platform::Platform>,
    /// `added`, or `kept` (it held a signature of the key already).
    pub status: Signed,
}
