//! A list's signing steps, run through the run's supervised, retried registry commands.

use std::io::Write as _;
use std::path::Path;

use crate::attach::{self, Access, Subject};
use crate::plan::{Command, Manifest, Plan, Step};
use crate::platform::Platform;
use crate::sign::SignStep;
use crate::sign::ensure::{self, Registry, SignatureReport};

use super::attachments::AttachedImage;
use super::runner::{Failure, Runner};

/// The run's registry commands, logged to one log (a list's, or `mab verify`'s).
pub(super) struct Logged<'r, 'a> {
    pub(super) runner: &'r Runner<'a>,
    pub(super) log: &'r Path,
}

impl Registry for Logged<'_, '_> {
    fn read(&self, command: &Command) -> Result<Option<Vec<u8>>, String> {
        self.runner.read(command, self.log).map_err(|f| f.reason)
    }

    fn run(&self, command: &Command) -> Result<(), String> {
        self.runner
            .retrying(self.log, || self.runner.logged(command, self.log))
            .map_err(|f| f.reason)
    }
}

impl Runner<'_> {
    /// Makes sure image `digest` carries a signature of the run's key, as `step` says.
    pub(super) fn sign(
        &self,
        step: &SignStep,
        digest: &str,
        log: &Path,
    ) -> Result<SignatureReport, Failure> {
        let Some(signer) = &self.signer else {
            return Err(Failure::new("the plan signs, but the run opened no key"));
        };
        let what = step.what();
        let registry = Logged { runner: self, log };
        let status = ensure::ensure(&registry, signer, step, digest).map_err(|reason| {
            Failure::new(format!(
                "signing {what} ({digest}) in {} failed: {reason}",
                step.repository
            ))
        })?;
        Ok(SignatureReport {
            reference: step.reference(digest),
            digest: digest.to_string(),
            platform: step.platform.clone(),
            attachment: step.attachment.clone(),
            status,
        })
    }

    /// The digest of the attachment `step` signs: the one this publication attached, else (an
    /// unchanged list, attached by an earlier run) the one its image's referrers list. None
    /// when the image has no attachment of that kind (published before the config asked for
    /// it): nothing to sign, said in the log (and by `mab verify`).
    pub(super) fn attachment_digest(
        &self,
        plan: &Plan,
        m: &Manifest,
        step: &SignStep,
        (images, attached): (&[(Platform, String)], &[AttachedImage]),
        log: &Path,
    ) -> Result<Option<String>, Failure> {
        let (Some(platform), Some(kind)) = (&step.platform, step.attachment.as_deref()) else {
            return Ok(None);
        };
        let this_run = attached
            .iter()
            .filter(|a| &a.platform == platform)
            .flat_map(|a| &a.referrers)
            .find(|r| r.artifact_type == kind);
        if let Some(r) = this_run {
            return Ok(Some(r.digest.clone()));
        }
        // The image: pushed by this publication, or held by an unchanged list's tags (its
        // signing step knows the digest the registry check read).
        let image = images
            .iter()
            .find(|(p, _)| p == platform)
            .map(|(_, d)| d.clone())
            .or_else(|| {
                m.publish.iter().find_map(|s| match s {
                    Step::Sign(o)
                        if o.attachment.is_none()
                            && o.platform.as_ref() == Some(platform)
                            && o.repository == step.repository =>
                    {
                        o.digest.clone()
                    }
                    _ => None,
                })
            });
        let found = match image {
            Some(image) => {
                let access = Access {
                    insecure: m.reach().insecure(&step.repository),
                    registries_conf: plan.registries_conf.clone(),
                    limits: self.registry,
                };
                let subject = Subject::named(step.repository.clone(), &image);
                let mut cmds = super::attachments::Logged { runner: self, log };
                attach::referrers(&mut cmds, &access, &subject)
                    .map_err(|e| {
                        Failure::new(format!(
                            "reading what is attached to its {platform} image ({image}) in {} failed: {e}",
                            step.repository
                        ))
                    })?
                    .into_iter()
                    .find(|r| r.artifact_type == kind)
            }
            None => None,
        };
        if found.is_none() {
            let _ = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(log)
                .and_then(|mut f| {
                    writeln!(f, "mab: nothing to sign: {} is not attached", step.what())
                });
        }
        Ok(found.map(|r| r.digest))
    }
}
